/* Unit tests for the Prometheus text / OpenMetrics parser: every fixture in tests/fixtures's verdict, values, incremental use. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/prom_parse.h"

#define FIXTURES VORO_FIXTURES_DIR

static struct voro_prom_parser parser; /* ~100 KiB: static, not on the stack */
static char scratch[VORO_PROM_DEFAULT_MAX_LINE];

/* Reads a file into an exact-size heap buffer (no NUL), so ASan catches any read past the end. */
static char *load(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc(n > 0 ? (size_t)n : 1);
    if (buf != NULL && n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = (size_t)(n > 0 ? n : 0);
    return buf;
}

static char *load_fixture(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", FIXTURES, name);
    char *b = load(path, len);
    if (b == NULL)
        fail_msg("cannot read %s", path);
    return b;
}

/* Collects what the callbacks saw. */
struct collect {
    size_t samples, metas, exemplars, with_ts;
    double value_sum; /* finite values only */
    uint64_t fingerprint;
    const char *want_name; /* record the sample with this name (and label, if set) */
    const char *want_label, *want_label_value;
    bool found;
    double found_value;
    bool found_has_ts;
    int64_t found_ts_ms;
    char found_label[256];
    size_t found_label_len;
    enum voro_prom_type found_type;
    char found_family[128];
    int stop_after; /* 0 = never */
};

static uint64_t fp_mix(uint64_t h, const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ c[i]) * 0x100000001b3ull;
    return h;
}

static int on_sample(void *ud, const struct voro_prom_sample *s)
{
    struct collect *c = ud;
    c->samples++;
    if (isfinite(s->value))
        c->value_sum += s->value;
    c->exemplars += s->has_exemplar;
    c->with_ts += s->has_timestamp;
    c->fingerprint = fp_mix(c->fingerprint, s->name.ptr, s->name.len);
    for (size_t i = 0; i < s->n_labels; i++) {
        c->fingerprint = fp_mix(c->fingerprint, s->labels[i].name.ptr, s->labels[i].name.len);
        c->fingerprint = fp_mix(c->fingerprint, s->labels[i].value.ptr, s->labels[i].value.len);
    }
    c->fingerprint = fp_mix(c->fingerprint, &s->value, sizeof(s->value));
    if (c->want_name != NULL && s->name.len == strlen(c->want_name) &&
        memcmp(s->name.ptr, c->want_name, s->name.len) == 0) {
        const struct voro_prom_label *l = c->want_label ? voro_prom_label_get(s, c->want_label) : NULL;
        if (c->want_label == NULL || (l != NULL && c->want_label_value == NULL) ||
            (l != NULL && l->raw.len == strlen(c->want_label_value) &&
             memcmp(l->raw.ptr, c->want_label_value, l->raw.len) == 0)) {
            c->found = true;
            c->found_value = s->value;
            c->found_has_ts = s->has_timestamp;
            c->found_ts_ms = s->timestamp_ms;
            c->found_type = s->type;
            snprintf(c->found_family, sizeof(c->found_family), "%.*s", (int)s->family.len, s->family.ptr);
            if (l != NULL && l->value.len < sizeof(c->found_label)) {
                memcpy(c->found_label, l->value.ptr, l->value.len);
                c->found_label_len = l->value.len;
                assert_false(l->escaped);
            }
        }
    }
    if (c->stop_after && (int)c->samples >= c->stop_after)
        return -ECANCELED;
    return 0;
}

static int on_meta(void *ud, const struct voro_prom_meta *m)
{
    struct collect *c = ud;
    c->metas++;
    assert_true(m->name.len > 0);
    return 0;
}

static int parse_buf(const char *buf, size_t len, enum voro_prom_format fmt, unsigned flags, struct collect *c)
{
    struct voro_prom_opts o = {.format = fmt, .flags = flags, .scratch = scratch, .scratch_len = sizeof(scratch)};
    struct voro_prom_handler h = {.on_sample = on_sample, .on_meta = on_meta, .ud = c};
    voro_prom_parser_init(&parser, &o);
    int rc = voro_prom_parse(&parser, buf, len, &h);
    if (rc != 0) {
        assert_non_null(parser.err_reason);
        assert_true(parser.err_line >= 1);
        assert_int_equal(parser.err, rc);
    }
    return rc;
}

static size_t last_sample_lines; /* of the last fixture parsed */

/* Lines whose first non-blank byte is not '#': each must yield exactly one sample. */
static size_t count_sample_lines(const char *b, size_t len)
{
    size_t n = 0, i = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && (b[j] == ' ' || b[j] == '\t'))
            j++;
        if (j < len && b[j] != '\n' && b[j] != '#')
            n++;
        const char *nl = memchr(b + i, '\n', len - i);
        i = nl ? (size_t)(nl - b) + 1 : len;
    }
    return n;
}

static int parse_fixture(const char *name, enum voro_prom_format fmt, unsigned flags, struct collect *c)
{
    size_t len;
    char *buf = load_fixture(name, &len);
    last_sample_lines = count_sample_lines(buf, len);
    int rc = parse_buf(buf, len, fmt, flags, c);
    free(buf);
    return rc;
}

static bool in_list(const char *name, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(name, *list) == 0)
            return true;
    return false;
}

static bool has_suffix(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

/* Conformance cases the default (non-strict) OpenMetrics mode accepts on purpose: real producers
 * (client_golang's demo, openmetrics-exemplars.om) emit negative summary values and sums, and a
 * histogram _sum next to negative buckets. VORO_PROM_STRICT rejects them. */
static const char *const om_lenient_accepts[] = {"bad_counter_values_17.om", "bad_counter_values_19.om",
                                                 "bad_histograms_3.om", NULL};

/* Every OpenMetrics conformance case, against MANIFEST.tsv, in strict and default mode. */
static void test_openmetrics_conformance(void **state)
{
    (void)state;
    size_t mlen;
    char *manifest = load_fixture("openmetrics/MANIFEST.tsv", &mlen);
    char *text = malloc(mlen + 1);
    memcpy(text, manifest, mlen);
    text[mlen] = '\0';
    free(manifest);

    size_t cases = 0, good = 0, bad = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char name[128], verdict[16];
        if (sscanf(line, "%127s %15s", name, verdict) != 2 || strcmp(name, "case") == 0)
            continue;
        bool should = strcmp(verdict, "true") == 0;
        char rel[200];
        snprintf(rel, sizeof(rel), "openmetrics/%s", name);
        struct collect c = {0};
        int rc = parse_fixture(rel, VORO_PROM_FMT_OPENMETRICS, VORO_PROM_STRICT, &c);
        if ((rc == 0) != should)
            fail_msg("%s: strict verdict %s, expected %s (line %u: %s)", name, rc == 0 ? "parse" : "reject",
                     verdict, parser.err_line, parser.err_reason ? parser.err_reason : "");
        if (!should)
            assert_int_equal(rc, -EBADMSG);
        if (should && c.samples != last_sample_lines)
            fail_msg("%s: %zu samples from %zu sample lines", name, c.samples, last_sample_lines);
        struct collect c2 = {0};
        rc = parse_fixture(rel, VORO_PROM_FMT_OPENMETRICS, 0, &c2);
        bool lenient = should || in_list(name, om_lenient_accepts);
        if ((rc == 0) != lenient)
            fail_msg("%s: default verdict %s (line %u: %s)", name, rc == 0 ? "parse" : "reject", parser.err_line,
                     parser.err_reason ? parser.err_reason : "");
        /* AUTO detects OpenMetrics from the trailing # EOF; the good cases all end in one */
        if (should) {
            struct collect c3 = {0};
            assert_int_equal(parse_fixture(rel, VORO_PROM_FMT_AUTO, VORO_PROM_STRICT, &c3), 0);
            assert_int_equal(c3.samples, c.samples);
        }
        cases++;
        good += should;
        bad += !should;
    }
    free(text);
    assert_int_equal(cases, 211);
    assert_int_equal(good, 44);
    assert_int_equal(bad, 167);
}

/* Files whose only defect is a missing final newline, or negative summary/histogram sums. */
static const char *const strict_rejects[] = {"vllm.prom", "dcgm-datadog.prom", "openmetrics-exemplars.om", NULL};

/* Every top-level *.prom and *.om fixture: real dumps parse, expfmt's error corpus is rejected. */
static void test_all_dumps(void **state)
{
    (void)state;
    DIR *d = opendir(FIXTURES);
    assert_non_null(d);
    struct dirent *de;
    size_t n_good = 0, n_err = 0;
    while ((de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        bool om = has_suffix(name, ".om");
        if (!om && !has_suffix(name, ".prom"))
            continue;
        enum voro_prom_format fmt = om ? VORO_PROM_FMT_OPENMETRICS : VORO_PROM_FMT_TEXT;
        bool is_err = strncmp(name, "expfmt-parse-error-", 19) == 0;
        struct collect c = {0}, cs = {0};
        int rc = parse_fixture(name, fmt, 0, &c);
        int rcs = parse_fixture(name, fmt, VORO_PROM_STRICT, &cs);
        if (is_err) {
            n_err++;
            if (rcs != -EBADMSG)
                fail_msg("%s: strict mode accepted an input expfmt rejects", name);
            /* "bla 3.14" lacks only the final newline, which the default mode tolerates */
            if (strcmp(name, "expfmt-parse-error-0.prom") == 0)
                assert_int_equal(rc, 0);
            else if (rc != -EBADMSG)
                fail_msg("%s: default mode accepted an invalid input", name);
        } else {
            n_good++;
            if (rc != 0)
                fail_msg("%s: rejected at line %u: %s", name, parser.err_line, parser.err_reason);
            if ((rcs == 0) == in_list(name, strict_rejects))
                fail_msg("%s: unexpected strict verdict %d", name, rcs);
            if (c.samples != last_sample_lines || (c.samples == 0 && strcmp(name, "expfmt-parse-0.prom") != 0))
                fail_msg("%s: %zu samples from %zu sample lines", name, c.samples, last_sample_lines);
        }
    }
    closedir(d);
    assert_int_equal(n_err, 20);
    assert_int_equal(n_good, 21);
}

/* Prometheus' dumps end in `# EOF` but are text (a counter TYPE named *_total): AUTO falls back. */
static void test_auto_fallback(void **state)
{
    (void)state;
    struct collect t = {0}, a = {0};
    assert_int_equal(parse_fixture("prometheus-server.prom", VORO_PROM_FMT_TEXT, 0, &t), 0);
    assert_int_equal(parse_fixture("prometheus-server.prom", VORO_PROM_FMT_AUTO, 0, &a), 0);
    assert_int_equal(parser.format, VORO_PROM_FMT_TEXT);
    assert_true(t.samples > 1000 && a.samples == t.samples && a.fingerprint == t.fingerprint);
    struct collect o = {0};
    assert_int_equal(parse_fixture("openmetrics-1histogram.om", VORO_PROM_FMT_AUTO, 0, &o), 0);
    assert_int_equal(parser.format, VORO_PROM_FMT_OPENMETRICS);
    assert_true(o.samples > 0);
}

static void test_strict_reasons(void **state)
{
    (void)state;
    struct collect c = {0};
    assert_int_equal(parse_fixture("vllm.prom", VORO_PROM_FMT_TEXT, VORO_PROM_STRICT, &c), -EBADMSG);
    assert_non_null(strstr(parser.err_reason, "newline"));
    assert_int_equal(parse_fixture("openmetrics-exemplars.om", VORO_PROM_FMT_OPENMETRICS, VORO_PROM_STRICT, &c),
                     -EBADMSG);
    assert_int_equal(parser.err_line, 33);
    assert_non_null(strstr(parser.err_reason, "sum"));
    assert_int_equal(parse_fixture("openmetrics/bad_blank_line.om", VORO_PROM_FMT_OPENMETRICS, 0, &c), -EBADMSG);
    assert_int_equal(parser.err_line, 2);
    assert_int_equal(parse_fixture("expfmt-parse-error-14.prom", VORO_PROM_FMT_TEXT, 0, &c), -EBADMSG);
    assert_int_equal(parser.err_line, 3);
    assert_string_equal(parser.err_reason, "TYPE line after samples of the metric");
}

static void test_vllm_values(void **state)
{
    (void)state;
    struct collect c = {.want_name = "vllm:prompt_tokens_total", .want_label = "model_name",
                        .want_label_value = "facebook/opt-125m"};
    assert_int_equal(parse_fixture("vllm.prom", VORO_PROM_FMT_TEXT, 0, &c), 0);
    assert_int_equal(c.samples, 185);
    assert_true(c.found);
    assert_true(c.found_value == 5.0);
    assert_int_equal(c.found_type, VORO_PROM_COUNTER);
    assert_string_equal(c.found_label, "facebook/opt-125m");

    struct collect d = {.want_name = "process_max_fds"};
    assert_int_equal(parse_fixture("vllm.prom", VORO_PROM_FMT_TEXT, 0, &d), 0);
    struct collect big = {0};
    assert_int_equal(parse_fixture("expfmt-large.prom", VORO_PROM_FMT_TEXT, VORO_PROM_STRICT, &big), 0);
    assert_int_equal(big.samples, 25121);
    assert_true(d.found && d.found_value == 1048576.0);

    /* a histogram bucket resolves to its family */
    struct collect e = {.want_name = "vllm:time_to_first_token_seconds_bucket", .want_label = "le",
                        .want_label_value = "+Inf"};
    assert_int_equal(parse_fixture("vllm.prom", VORO_PROM_FMT_TEXT, 0, &e), 0);
    assert_true(e.found);
    assert_int_equal(e.found_type, VORO_PROM_HISTOGRAM);
    assert_string_equal(e.found_family, "vllm:time_to_first_token_seconds");
}

static void test_text_escapes_specials_timestamps(void **state)
{
    (void)state;
    struct collect c = {.want_name = "name", .want_label = "labelname", .want_label_value = "val2"};
    assert_int_equal(parse_fixture("expfmt-parse-2.prom", VORO_PROM_FMT_TEXT, VORO_PROM_STRICT, &c), 0);
    assert_int_equal(c.samples, 4);
    assert_true(c.found);
    assert_true(c.found_value == 0.23);
    assert_true(c.found_has_ts);
    assert_true(c.found_ts_ms == 1234567890);

    /* the basename label of that sample: base\"v\\al\nue unescaped */
    struct collect b = {.want_name = "name", .want_label = "basename", .want_label_value = "base\\\"v\\\\al\\nue"};
    assert_int_equal(parse_fixture("expfmt-parse-2.prom", VORO_PROM_FMT_TEXT, 0, &b), 0);
    assert_true(b.found);
    assert_int_equal(b.found_label_len, strlen("base\"v\\al\nue"));
    assert_memory_equal(b.found_label, "base\"v\\al\nue", b.found_label_len);

    struct collect nan_ = {.want_name = "name", .want_label = "labelname", .want_label_value = "val1"};
    assert_int_equal(parse_fixture("expfmt-parse-2.prom", VORO_PROM_FMT_TEXT, 0, &nan_), 0);
    assert_true(nan_.found && isnan(nan_.found_value) && !nan_.found_has_ts);

    struct collect inf = {.want_name = "name2", .want_label = "labelname", .want_label_value = "val2"};
    assert_int_equal(parse_fixture("expfmt-parse-2.prom", VORO_PROM_FMT_TEXT, 0, &inf), 0);
    assert_true(inf.found && isinf(inf.found_value) && inf.found_value > 0);
    assert_true(inf.found_has_ts && inf.found_ts_ms == 54321);

    struct collect ninf = {.want_name = "name2", .want_label = "labelname", .want_label_value = "val1"};
    assert_int_equal(parse_fixture("expfmt-parse-2.prom", VORO_PROM_FMT_TEXT, 0, &ninf), 0);
    assert_true(ninf.found && isinf(ninf.found_value) && ninf.found_value < 0);

    /* another_metric -3e3 103948 */
    struct collect e = {.want_name = "another_metric"};
    assert_int_equal(parse_fixture("expfmt-parse-1.prom", VORO_PROM_FMT_TEXT, 0, &e), 0);
    assert_true(e.found && e.found_value == -3000.0 && e.found_ts_ms == 103948);
}

static void test_openmetrics_values(void **state)
{
    (void)state;
    /* b\\a\z: \\ unescapes, the unknown \z stays as written */
    struct collect c = {.want_name = "a_total", .want_label = "foo", .want_label_value = "b\\\\a\\z"};
    assert_int_equal(parse_fixture("openmetrics/escaping.om", VORO_PROM_FMT_OPENMETRICS, VORO_PROM_STRICT, &c), 0);
    assert_true(c.found && c.found_value == 2.0);
    assert_int_equal(c.found_label_len, 5);
    assert_memory_equal(c.found_label, "b\\a\\z", 5);
    assert_int_equal(c.found_type, VORO_PROM_COUNTER);
    assert_string_equal(c.found_family, "a");
    assert_int_equal(c.metas, 2);

    /* OpenMetrics timestamps are seconds: 1.5e3 s = 1500000 ms */
    struct collect t = {.want_name = "a_total", .want_label = "foo", .want_label_value = "5"};
    assert_int_equal(parse_fixture("openmetrics/timestamps.om", VORO_PROM_FMT_OPENMETRICS, VORO_PROM_STRICT, &t), 0);
    assert_true(t.found && t.found_has_ts && t.found_ts_ms == 1500000);

    struct collect x = {0};
    assert_int_equal(parse_fixture("openmetrics-exemplars.om", VORO_PROM_FMT_OPENMETRICS, 0, &x), 0);
    assert_int_equal(x.samples, 53);
    assert_int_equal(x.exemplars, 6);

    struct collect u = {0};
    assert_int_equal(parse_fixture("openmetrics/counter_unit.om", VORO_PROM_FMT_OPENMETRICS, VORO_PROM_STRICT, &u),
                     0);
    assert_int_equal(u.metas, 3); /* HELP, TYPE, UNIT */
    assert_int_equal(u.samples, 2);

    struct collect big = {.want_name = "a_total"};
    assert_int_equal(parse_fixture("openmetrics/uint64_counter.om", VORO_PROM_FMT_OPENMETRICS, 0, &big), 0);
    assert_true(big.found && big.found_value == 9223372036854775808.0);
}

/* Feeding one byte at a time (and split at every offset) yields exactly the whole-buffer result. */
static void incremental(const char *name, enum voro_prom_format fmt)
{
    size_t len;
    char *buf = load_fixture(name, &len);
    struct collect whole = {0};
    assert_int_equal(parse_buf(buf, len, fmt, 0, &whole), 0);

    struct collect inc = {0};
    struct voro_prom_opts o = {.format = fmt, .scratch = scratch, .scratch_len = sizeof(scratch)};
    struct voro_prom_handler h = {.on_sample = on_sample, .on_meta = on_meta, .ud = &inc};
    voro_prom_parser_init(&parser, &o);
    size_t start = 0;
    for (size_t end = 1; end <= len; end++) {
        ssize_t r = voro_prom_feed(&parser, buf + start, end - start, &h);
        assert_true(r >= 0);
        start += (size_t)r;
    }
    assert_int_equal(voro_prom_finish(&parser, buf + start, len - start, &h), 0);
    assert_int_equal(inc.samples, whole.samples);
    assert_int_equal(inc.metas, whole.metas);
    assert_true(inc.fingerprint == whole.fingerprint);
    free(buf);
}

static void test_incremental_byte_at_a_time(void **state)
{
    (void)state;
    incremental("vllm.prom", VORO_PROM_FMT_TEXT);
    incremental("openmetrics-exemplars.om", VORO_PROM_FMT_OPENMETRICS);
    incremental("openmetrics/escaping.om", VORO_PROM_FMT_OPENMETRICS);
    incremental("openmetrics/no_newline_after_eof.om", VORO_PROM_FMT_OPENMETRICS);
}

static void test_split_everywhere(void **state)
{
    (void)state;
    size_t len;
    char *buf = load_fixture("expfmt-parse-3.prom", &len);
    struct collect whole = {0};
    assert_int_equal(parse_buf(buf, len, VORO_PROM_FMT_TEXT, 0, &whole), 0);
    for (size_t cut = 0; cut <= len; cut++) {
        struct collect c = {0};
        struct voro_prom_handler h = {.on_sample = on_sample, .ud = &c};
        voro_prom_parser_init(&parser, &(struct voro_prom_opts){.format = VORO_PROM_FMT_TEXT});
        ssize_t r = voro_prom_feed(&parser, buf, cut, &h);
        assert_true(r >= 0 && (size_t)r <= cut);
        /* the unconsumed tail is handed back together with the rest */
        assert_int_equal(voro_prom_finish(&parser, buf + r, len - (size_t)r, &h), 0);
        assert_int_equal(c.samples, whole.samples);
        assert_true(c.value_sum == whole.value_sum || (isnan(c.value_sum) && isnan(whole.value_sum)));
    }
    free(buf);
}

static void test_bounds(void **state)
{
    (void)state;
    struct collect c = {0};
    /* a line longer than max_line, complete or not */
    char line[300];
    memset(line, 'a', sizeof(line));
    memcpy(line + 280, " 1\n", 3);
    voro_prom_parser_init(&parser, &(struct voro_prom_opts){.format = VORO_PROM_FMT_TEXT, .max_line = 100});
    assert_int_equal(voro_prom_parse(&parser, line, 283, NULL), -E2BIG);
    voro_prom_parser_init(&parser, &(struct voro_prom_opts){.format = VORO_PROM_FMT_TEXT, .max_line = 100});
    assert_int_equal(voro_prom_feed(&parser, line, 200, NULL), -E2BIG);

    /* metric name limit */
    char name[VORO_PROM_MAX_NAME + 8];
    memset(name, 'm', VORO_PROM_MAX_NAME + 2);
    memcpy(name + VORO_PROM_MAX_NAME + 2, " 1\n", 3);
    assert_int_equal(parse_buf(name, VORO_PROM_MAX_NAME + 5, VORO_PROM_FMT_TEXT, 0, &c), -E2BIG);

    /* label count limit */
    char many[4096];
    size_t o = (size_t)snprintf(many, sizeof(many), "m{");
    for (int i = 0; i <= VORO_PROM_MAX_LABELS; i++)
        o += (size_t)snprintf(many + o, sizeof(many) - o, "l%d=\"v\",", i);
    o += (size_t)snprintf(many + o, sizeof(many) - o, "} 1\n");
    assert_int_equal(parse_buf(many, o, VORO_PROM_FMT_TEXT, 0, &c), -E2BIG);
    assert_string_equal(parser.err_reason, "too many labels");

    /* exactly the limit is fine */
    o = (size_t)snprintf(many, sizeof(many), "m{");
    for (int i = 0; i < VORO_PROM_MAX_LABELS; i++)
        o += (size_t)snprintf(many + o, sizeof(many) - o, "l%d=\"v\",", i);
    o += (size_t)snprintf(many + o, sizeof(many) - o, "} 1\n");
    struct collect ok = {0};
    assert_int_equal(parse_buf(many, o, VORO_PROM_FMT_TEXT, 0, &ok), 0);
    assert_int_equal(ok.samples, 1);

    /* input ending inside a label value / escape never reads past the buffer */
    static const char *const cut[] = {"m{a=\"x\\", "m{a=\"", "m{", "m{a", "# HELP", "m 1 ", "#"};
    for (size_t i = 0; i < sizeof(cut) / sizeof(cut[0]); i++) {
        size_t n = strlen(cut[i]);
        char *b = malloc(n);
        memcpy(b, cut[i], n);
        (void)parse_buf(b, n, VORO_PROM_FMT_TEXT, 0, &c);
        (void)parse_buf(b, n, VORO_PROM_FMT_OPENMETRICS, 0, &c);
        free(b);
    }
    /* empty input: fine as text, missing # EOF as OpenMetrics */
    assert_int_equal(parse_buf("", 0, VORO_PROM_FMT_TEXT, 0, &c), 0);
    assert_int_equal(parse_buf("", 0, VORO_PROM_FMT_OPENMETRICS, 0, &c), -EBADMSG);
}

static void test_scratch_too_small_reports_raw(void **state)
{
    (void)state;
    static const char in[] = "m{a=\"x\\ny\"} 1\n";
    char small[1];
    struct collect c = {.want_name = "m"};
    struct voro_prom_handler h = {.on_sample = on_sample, .ud = &c};
    voro_prom_parser_init(&parser, &(struct voro_prom_opts){.scratch = small, .scratch_len = sizeof(small)});
    assert_int_equal(voro_prom_parse(&parser, in, sizeof(in) - 1, &h), 0);
    assert_true(parser.labels[0].escaped);
    char out[8];
    assert_int_equal(voro_prom_unescape(parser.labels[0].raw.ptr, parser.labels[0].raw.len, out, sizeof(out)), 3);
    assert_memory_equal(out, "x\ny", 3);
    assert_int_equal(voro_prom_unescape("abcd", 4, out, 2), -ENOSPC);
}

static void test_callback_stops(void **state)
{
    (void)state;
    struct collect c = {.stop_after = 3};
    assert_int_equal(parse_fixture("vllm.prom", VORO_PROM_FMT_TEXT, 0, &c), -ECANCELED);
    assert_int_equal(c.samples, 3);
    assert_int_equal(parser.err, -ECANCELED);
}

static void test_numbers_and_detect(void **state)
{
    (void)state;
    double d;
    assert_int_equal(voro_prom_parse_double("1e+06", 5, &d), 0);
    assert_true(d == 1e6);
    assert_int_equal(voro_prom_parse_double("7.358146831393242e-05", 21, &d), 0);
    assert_true(d == 7.358146831393242e-05);
    assert_int_equal(voro_prom_parse_double("+Inf", 4, &d), 0);
    assert_true(isinf(d) && d > 0);
    assert_int_equal(voro_prom_parse_double("-Inf", 4, &d), 0);
    assert_true(isinf(d) && d < 0);
    assert_int_equal(voro_prom_parse_double("NaN", 3, &d), 0);
    assert_true(isnan(d));
    assert_int_equal(voro_prom_parse_double(".3", 2, &d), 0);
    assert_true(d == 0.3);
    assert_int_equal(voro_prom_parse_double("0x1p3", 5, &d), -EINVAL);
    assert_int_equal(voro_prom_parse_double("1_0", 3, &d), -EINVAL);
    assert_int_equal(voro_prom_parse_double("", 0, &d), -EINVAL);
    assert_int_equal(voro_prom_parse_double("1e", 2, &d), -EINVAL);
    assert_int_equal(voro_prom_parse_double("-NaN", 4, &d), -EINVAL);

    assert_int_equal(voro_prom_detect_format("a 1\n", 4, "application/openmetrics-text; version=1.0.0"),
                     VORO_PROM_FMT_OPENMETRICS);
    assert_int_equal(voro_prom_detect_format("a 1\n# EOF\n", 10, "text/plain; version=0.0.4"), VORO_PROM_FMT_TEXT);
    assert_int_equal(voro_prom_detect_format("a 1\n# EOF\n", 10, NULL), VORO_PROM_FMT_OPENMETRICS);
    assert_int_equal(voro_prom_detect_format("a 1\n# EOF", 9, ""), VORO_PROM_FMT_OPENMETRICS);
    assert_int_equal(voro_prom_detect_format("a 1\n", 4, NULL), VORO_PROM_FMT_TEXT);
    assert_string_equal(voro_prom_type_name(VORO_PROM_GAUGEHISTOGRAM), "gaugehistogram");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openmetrics_conformance),
        cmocka_unit_test(test_all_dumps),
        cmocka_unit_test(test_auto_fallback),
        cmocka_unit_test(test_strict_reasons),
        cmocka_unit_test(test_vllm_values),
        cmocka_unit_test(test_text_escapes_specials_timestamps),
        cmocka_unit_test(test_openmetrics_values),
        cmocka_unit_test(test_incremental_byte_at_a_time),
        cmocka_unit_test(test_split_everywhere),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_scratch_too_small_reports_raw),
        cmocka_unit_test(test_callback_stops),
        cmocka_unit_test(test_numbers_and_detect),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
