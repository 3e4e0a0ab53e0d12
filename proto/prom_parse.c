/* Prometheus text 0.0.4 / OpenMetrics 1.0 parser: line tokenizer, family tracking and OpenMetrics rules. */
#include "proto/prom_parse.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FAM_HELP 0x01u
#define FAM_TYPE 0x02u
#define FAM_UNIT 0x04u
#define FAM_SAMPLES 0x08u

#define NUM_MAX 256 /* longest number accepted (leading zeros are legal, so be generous) */
#define EXEMPLAR_MAX_CHARS 128

#define FAIL(p, code, why) fail((p), (code), (why))

static int fail(struct voro_prom_parser *p, int code, const char *why)
{
    if (p->err == 0) {
        p->err = code;
        p->err_line = p->line;
        p->err_reason = why;
    }
    return p->err;
}

/* ---- small helpers ---- */

static bool is_name_start(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}

static bool is_name_char(unsigned char c)
{
    return is_name_start(c) || (c >= '0' && c <= '9');
}

static bool is_label_start(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_label_char(unsigned char c)
{
    return is_label_start(c) || (c >= '0' && c <= '9');
}

static bool is_blank(unsigned char c)
{
    return c == ' ' || c == '\t';
}

static size_t skip_blanks(const char *s, size_t n, size_t i)
{
    while (i < n && is_blank((unsigned char)s[i]))
        i++;
    return i;
}

static bool slice_eq(const char *a, size_t alen, const char *b)
{
    size_t blen = strlen(b);
    return alen == blen && memcmp(a, b, alen) == 0;
}

static bool ends_with(const char *s, size_t n, const char *suf)
{
    size_t l = strlen(suf);
    return n >= l && memcmp(s + n - l, suf, l) == 0;
}

static uint64_t fnv(uint64_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

#define FNV_INIT 0xcbf29ce484222325ull

static uint64_t mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x ? x : 1; /* 0 marks an empty slot */
}

static uint64_t name_key(const char *s, size_t n)
{
    return mix(fnv(FNV_INIT, s, n));
}

static uint64_t name_key2(const char *s, size_t n, const char *suf)
{
    return mix(fnv(fnv(FNV_INIT, s, n), suf, strlen(suf)));
}

/* ---- numbers ---- */

/* Decimal real number: [sign] (digits [. digits*] | . digits) [(e|E) [sign] digits]. */
static bool is_realnumber(const char *s, size_t n)
{
    size_t i = 0, digits = 0;
    if (i < n && (s[i] == '+' || s[i] == '-'))
        i++;
    while (i < n && s[i] >= '0' && s[i] <= '9') {
        i++;
        digits++;
    }
    if (i < n && s[i] == '.') {
        i++;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            i++;
            digits++;
        }
    }
    if (digits == 0)
        return false;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t ed = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            i++;
            ed++;
        }
        if (ed == 0)
            return false;
    }
    return i == n;
}

static int parse_real(const char *s, size_t n, double *out)
{
    char tmp[NUM_MAX + 1];
    if (n == 0 || n > NUM_MAX || !is_realnumber(s, n))
        return -EINVAL;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    *out = strtod(tmp, NULL); /* overflow gives +/-HUGE_VAL, which is what the value means */
    return 0;
}

int voro_prom_parse_double(const char *s, size_t len, double *out)
{
    if (s == NULL || out == NULL)
        return -EINVAL;
    size_t i = 0;
    double sign = 1.0;
    if (len > 0 && (s[0] == '+' || s[0] == '-')) {
        sign = s[0] == '-' ? -1.0 : 1.0;
        i = 1;
    }
    if ((len - i == 3 && strncasecmp(s + i, "inf", 3) == 0) ||
        (len - i == 8 && strncasecmp(s + i, "infinity", 8) == 0)) {
        *out = sign * INFINITY;
        return 0;
    }
    if (len == 3 && strncasecmp(s, "nan", 3) == 0) {
        *out = NAN;
        return 0;
    }
    return parse_real(s, len, out);
}

/* OpenMetrics timestamps: real numbers in seconds; no NaN, no Inf, no hex. */
static int parse_om_ts(const char *s, size_t n, double *sec)
{
    return parse_real(s, n, sec);
}

/* Text timestamps: a decimal int64 in milliseconds. */
static int parse_text_ts(const char *s, size_t n, int64_t *ms)
{
    size_t i = 0;
    bool neg = false;
    if (n > 0 && (s[0] == '+' || s[0] == '-')) {
        neg = s[0] == '-';
        i = 1;
    }
    if (i == n)
        return -EINVAL;
    uint64_t v = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_C(9223372036854775808) - d) / 10)
            return -EINVAL;
        v = v * 10 + d;
    }
    if (!neg && v > INT64_MAX)
        return -EINVAL;
    *ms = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

static int64_t sec_to_ms(double s)
{
    double ms = s * 1000.0;
    if (!(ms < 9.2e18))
        return INT64_MAX;
    if (!(ms > -9.2e18))
        return INT64_MIN;
    return (int64_t)llround(ms);
}

/* ---- public helpers ---- */

ssize_t voro_prom_unescape(const char *src, size_t len, char *dst, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = src[i];
        if (c == '\\' && i + 1 < len) {
            char e = src[i + 1];
            if (e == 'n' || e == '\\' || e == '"') {
                c = e == 'n' ? '\n' : e;
                i++;
            }
        }
        if (o >= cap)
            return -ENOSPC;
        dst[o++] = c;
    }
    return (ssize_t)o;
}

const struct voro_prom_label *voro_prom_label_get(const struct voro_prom_sample *s, const char *name)
{
    for (size_t i = 0; i < s->n_labels; i++)
        if (slice_eq(s->labels[i].name.ptr, s->labels[i].name.len, name))
            return &s->labels[i];
    return NULL;
}

static const char *const type_names[] = {
    [VORO_PROM_UNTYPED] = "untyped",       [VORO_PROM_COUNTER] = "counter",
    [VORO_PROM_GAUGE] = "gauge",           [VORO_PROM_HISTOGRAM] = "histogram",
    [VORO_PROM_GAUGEHISTOGRAM] = "gaugehistogram", [VORO_PROM_SUMMARY] = "summary",
    [VORO_PROM_INFO] = "info",             [VORO_PROM_STATESET] = "stateset",
};

const char *voro_prom_type_name(enum voro_prom_type t)
{
    if ((unsigned)t >= sizeof(type_names) / sizeof(type_names[0]))
        return "untyped";
    return type_names[t];
}

static bool contains_nocase(const char *hay, const char *needle)
{
    size_t nl = strlen(needle);
    for (; *hay; hay++)
        if (strncasecmp(hay, needle, nl) == 0)
            return true;
    return false;
}

enum voro_prom_format voro_prom_detect_format(const char *buf, size_t len, const char *content_type)
{
    if (content_type != NULL && content_type[0] != '\0')
        return contains_nocase(content_type, "openmetrics-text") ? VORO_PROM_FMT_OPENMETRICS : VORO_PROM_FMT_TEXT;
    if (buf == NULL)
        return VORO_PROM_FMT_TEXT;
    size_t end = len;
    if (end > 0 && buf[end - 1] == '\n')
        end--;
    return end >= 5 && memcmp(buf + end - 5, "# EOF", 5) == 0 && (end == 5 || buf[end - 6] == '\n')
               ? VORO_PROM_FMT_OPENMETRICS
               : VORO_PROM_FMT_TEXT;
}

void voro_prom_parser_init(struct voro_prom_parser *p, const struct voro_prom_opts *opts)
{
    memset(p, 0, sizeof(*p));
    if (opts != NULL) {
        p->format = opts->format;
        p->flags = opts->flags;
        p->max_line = opts->max_line;
        p->scratch = opts->scratch;
        p->scratch_len = opts->scratch != NULL ? opts->scratch_len : 0;
    }
    if (p->max_line == 0)
        p->max_line = VORO_PROM_DEFAULT_MAX_LINE;
}

/* ---- family table ---- */

static struct voro_prom_family_slot *fam_find(struct voro_prom_parser *p, uint64_t key)
{
    size_t mask = VORO_PROM_FAMILY_SLOTS - 1;
    for (size_t i = key & mask, n = 0; n < VORO_PROM_FAMILY_SLOTS; i = (i + 1) & mask, n++) {
        if (p->families[i].key == key)
            return &p->families[i];
        if (p->families[i].key == 0)
            return NULL;
    }
    return NULL;
}

/* Returns NULL when the table is full: the checks that need it are then skipped (documented). */
static struct voro_prom_family_slot *fam_insert(struct voro_prom_parser *p, uint64_t key, enum voro_prom_type type)
{
    if (p->n_families >= VORO_PROM_FAMILY_SLOTS * 3 / 4)
        return NULL;
    size_t mask = VORO_PROM_FAMILY_SLOTS - 1;
    size_t i = key & mask;
    while (p->families[i].key != 0 && p->families[i].key != key)
        i = (i + 1) & mask;
    if (p->families[i].key == 0) {
        p->families[i].key = key;
        p->families[i].type = (uint8_t)type;
        p->families[i].flags = 0;
        p->n_families++;
    }
    return &p->families[i];
}

/* Label sets seen in the current OpenMetrics family; generation-tagged so no clearing is needed. */
static bool group_seen_insert(struct voro_prom_parser *p, uint64_t key)
{
    size_t mask = VORO_PROM_GROUP_SLOTS - 1;
    if (p->n_groups >= VORO_PROM_GROUP_SLOTS * 3 / 4)
        return false; /* table full: stop checking rather than fail */
    size_t i = key & mask;
    for (size_t n = 0; n < VORO_PROM_GROUP_SLOTS; n++, i = (i + 1) & mask) {
        struct voro_prom_group_slot *g = &p->groups[i];
        if (g->gen != p->fam_gen || g->key == 0) {
            g->key = key;
            g->gen = p->fam_gen;
            p->n_groups++;
            return false;
        }
        if (g->key == key)
            return true;
    }
    return false;
}

/* ---- per-type suffixes (OpenMetrics) ---- */

static const char *const suffixes_counter[] = {"_total", "_created", NULL};
static const char *const suffixes_histogram[] = {"_bucket", "_count", "_sum", "_created", NULL};
static const char *const suffixes_gh[] = {"_bucket", "_gcount", "_gsum", NULL};
static const char *const suffixes_summary[] = {"", "_count", "_sum", "_created", NULL};
static const char *const suffixes_info[] = {"_info", NULL};
static const char *const suffixes_plain[] = {"", NULL};
static const char *const all_suffixes[] = {"_total", "_created", "_bucket", "_count", "_sum",
                                           "_gcount", "_gsum", "_info", NULL};

static const char *const *type_suffixes(enum voro_prom_type t)
{
    switch (t) {
    case VORO_PROM_COUNTER: return suffixes_counter;
    case VORO_PROM_HISTOGRAM: return suffixes_histogram;
    case VORO_PROM_GAUGEHISTOGRAM: return suffixes_gh;
    case VORO_PROM_SUMMARY: return suffixes_summary;
    case VORO_PROM_INFO: return suffixes_info;
    default: return suffixes_plain;
    }
}

static bool type_has_suffix(enum voro_prom_type t, const char *suf)
{
    for (const char *const *s = type_suffixes(t); *s; s++)
        if (strcmp(*s, suf) == 0)
            return true;
    return false;
}

/* The suffix of `name` if it belongs to the current family, else NULL. */
static const char *cur_family_suffix(const struct voro_prom_parser *p, const char *name, size_t n)
{
    if (!p->have_fam || n < p->fam_len || memcmp(name, p->fam_name, p->fam_len) != 0)
        return NULL;
    for (const char *const *s = type_suffixes(p->fam_type); *s; s++)
        if (slice_eq(name + p->fam_len, n - p->fam_len, *s))
            return *s;
    return NULL;
}

/* ---- OpenMetrics group (MetricPoint) checks ---- */

static int om_group_end(struct voro_prom_parser *p)
{
    if (!p->have_group)
        return 0;
    p->have_group = false;
    enum voro_prom_type t = p->fam_type;
    if (t != VORO_PROM_HISTOGRAM && t != VORO_PROM_GAUGEHISTOGRAM)
        return 0;
    if (!p->g_inf)
        return FAIL(p, -EBADMSG, "histogram without a +Inf bucket");
    if (p->g_sum != p->g_count)
        return FAIL(p, -EBADMSG, "histogram needs both or neither of _sum and _count");
    if (p->g_count && p->g_count_val != p->g_inf_val)
        return FAIL(p, -EBADMSG, "histogram _count differs from the +Inf bucket");
    if (t == VORO_PROM_HISTOGRAM && p->g_neg && p->g_sum && (p->flags & VORO_PROM_STRICT))
        return FAIL(p, -EBADMSG, "histogram with negative buckets must not have _sum");
    if (t == VORO_PROM_GAUGEHISTOGRAM && p->g_sum && p->g_sum_val < 0 && !p->g_neg)
        return FAIL(p, -EBADMSG, "negative _gsum without negative buckets");
    return 0;
}

static int family_end(struct voro_prom_parser *p)
{
    int rc = 0;
    if (p->format == VORO_PROM_FMT_OPENMETRICS)
        rc = om_group_end(p);
    p->have_fam = false;
    p->have_prev = false;
    return rc;
}

/* Starts family `name` (OpenMetrics): it must not have appeared before, nor clash with the sample
 * names of an earlier family. */
static int om_family_start(struct voro_prom_parser *p, const char *name, size_t n)
{
    int rc = family_end(p);
    if (rc)
        return rc;
    uint64_t key = name_key(name, n);
    if (fam_find(p, key) != NULL)
        return FAIL(p, -EBADMSG, "family repeated or not contiguous");
    for (const char *const *s = all_suffixes; *s; s++) {
        if (!ends_with(name, n, *s))
            continue;
        size_t sl = strlen(*s);
        struct voro_prom_family_slot *f = fam_find(p, name_key(name, n - sl));
        if (f != NULL && type_has_suffix((enum voro_prom_type)f->type, *s))
            return FAIL(p, -EBADMSG, "family name clashes with an earlier family's samples");
    }
    (void)fam_insert(p, key, VORO_PROM_UNTYPED); /* NULL (table full) only disables later checks */
    memcpy(p->fam_name, name, n);
    p->fam_len = n;
    p->fam_key = key;
    p->fam_type = VORO_PROM_UNTYPED;
    p->fam_flags = 0;
    p->fam_gen++;
    p->n_groups = 0;
    p->have_fam = true;
    return 0;
}

/* OpenMetrics TYPE: checks that no earlier family owns one of the new type's sample names. */
static int om_set_type(struct voro_prom_parser *p, enum voro_prom_type t)
{
    for (const char *const *s = type_suffixes(t); *s; s++) {
        if (**s == '\0')
            continue;
        if (fam_find(p, name_key2(p->fam_name, p->fam_len, *s)) != NULL)
            return FAIL(p, -EBADMSG, "family name clashes with an earlier family");
    }
    p->fam_type = t;
    struct voro_prom_family_slot *f = fam_find(p, p->fam_key);
    if (f != NULL)
        f->type = (uint8_t)t;
    return 0;
}

/* ---- lines ---- */

static int emit_meta(struct voro_prom_parser *p, const struct voro_prom_handler *h, enum voro_prom_meta_kind kind,
                     const char *name, size_t nlen, const char *text, size_t tlen, enum voro_prom_type t)
{
    if (h == NULL || h->on_meta == NULL)
        return 0;
    struct voro_prom_meta m = {
        .kind = kind,
        .name = {name, nlen},
        .text = {text, tlen},
        .type = t,
        .line = p->line,
    };
    int rc = h->on_meta(h->ud, &m);
    if (rc != 0 && p->err == 0) {
        p->err = rc;
        p->err_line = p->line;
        p->err_reason = "stopped by callback";
    }
    return rc;
}

static bool parse_type_word(const char *s, size_t n, bool om, enum voro_prom_type *t)
{
    static const struct { const char *w; enum voro_prom_type t; bool om, text; } words[] = {
        {"counter", VORO_PROM_COUNTER, true, true},
        {"gauge", VORO_PROM_GAUGE, true, true},
        {"histogram", VORO_PROM_HISTOGRAM, true, true},
        {"summary", VORO_PROM_SUMMARY, true, true},
        {"untyped", VORO_PROM_UNTYPED, false, true},
        {"unknown", VORO_PROM_UNTYPED, true, false},
        {"gaugehistogram", VORO_PROM_GAUGEHISTOGRAM, true, false},
        {"info", VORO_PROM_INFO, true, false},
        {"stateset", VORO_PROM_STATESET, true, false},
    };
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        size_t wl = strlen(words[i].w);
        if (n != wl)
            continue;
        if (om ? (words[i].om && memcmp(s, words[i].w, n) == 0)
               : (words[i].text && strncasecmp(s, words[i].w, n) == 0)) {
            *t = words[i].t;
            return true;
        }
    }
    return false;
}

/* Prometheus text: which family a sample or comment belongs to, as expfmt resolves it. */
static struct voro_prom_family_slot *text_family(struct voro_prom_parser *p, const char *name, size_t n,
                                                 size_t *fam_len)
{
    *fam_len = n;
    uint64_t key = name_key(name, n);
    struct voro_prom_family_slot *f = fam_find(p, key);
    if (f != NULL)
        return f;
    static const struct { const char *suf; bool summary; } stems[] = {
        {"_sum", true}, {"_count", true}, {"_bucket", false},
    };
    for (size_t i = 0; i < 3; i++) {
        if (!ends_with(name, n, stems[i].suf))
            continue;
        size_t sl = n - strlen(stems[i].suf);
        struct voro_prom_family_slot *s = fam_find(p, name_key(name, sl));
        if (s != NULL && (s->type == VORO_PROM_HISTOGRAM || (stems[i].summary && s->type == VORO_PROM_SUMMARY))) {
            *fam_len = sl;
            return s;
        }
    }
    return fam_insert(p, key, VORO_PROM_UNTYPED);
}

static int text_comment(struct voro_prom_parser *p, const char *s, size_t n, size_t i,
                        const struct voro_prom_handler *h)
{
    i = skip_blanks(s, n, i + 1); /* past '#' */
    size_t kw = i;
    while (i < n && !is_blank((unsigned char)s[i]))
        i++;
    bool help = slice_eq(s + kw, i - kw, "HELP");
    bool type = slice_eq(s + kw, i - kw, "TYPE");
    if (!help && !type)
        return 0; /* free comment */
    i = skip_blanks(s, n, i);
    if (i == n)
        return 0;
    size_t name = i;
    if (is_name_start((unsigned char)s[i]))
        while (i < n && is_name_char((unsigned char)s[i]))
            i++;
    size_t nlen = i - name;
    if (i < n && !is_blank((unsigned char)s[i]))
        return FAIL(p, -EBADMSG, "invalid metric name in comment");
    if (nlen == 0)
        return FAIL(p, -EBADMSG, "invalid metric name in comment");
    if (nlen >= VORO_PROM_MAX_NAME)
        return FAIL(p, -E2BIG, "metric name too long");
    i = skip_blanks(s, n, i);
    if (i == n)
        return 0; /* expfmt ignores HELP/TYPE with nothing after the name */
    size_t fl;
    struct voro_prom_family_slot *f = text_family(p, s + name, nlen, &fl);
    if (help) {
        if (f != NULL && (f->flags & FAM_HELP))
            return FAIL(p, -EBADMSG, "second HELP line for a metric");
        if (f != NULL)
            f->flags |= FAM_HELP;
        return emit_meta(p, h, VORO_PROM_META_HELP, s + name, nlen, s + i, n - i, VORO_PROM_UNTYPED);
    }
    size_t te = n;
    while (te > i && is_blank((unsigned char)s[te - 1]))
        te--;
    enum voro_prom_type t;
    if (!parse_type_word(s + i, te - i, false, &t))
        return FAIL(p, -EBADMSG, "unknown metric type");
    if (f != NULL && (f->flags & FAM_TYPE))
        return FAIL(p, -EBADMSG, "second TYPE line for a metric");
    if (f != NULL && (f->flags & FAM_SAMPLES))
        return FAIL(p, -EBADMSG, "TYPE line after samples of the metric");
    if (f != NULL) {
        f->flags |= FAM_TYPE;
        f->type = (uint8_t)t;
    }
    return emit_meta(p, h, VORO_PROM_META_TYPE, s + name, nlen, s + i, te - i, t);
}

static int om_comment(struct voro_prom_parser *p, const char *s, size_t n, const struct voro_prom_handler *h)
{
    if (slice_eq(s, n, "# EOF")) {
        p->eof_seen = true;
        return family_end(p);
    }
    enum voro_prom_meta_kind kind;
    if (n >= 7 && memcmp(s, "# HELP ", 7) == 0)
        kind = VORO_PROM_META_HELP;
    else if (n >= 7 && memcmp(s, "# TYPE ", 7) == 0)
        kind = VORO_PROM_META_TYPE;
    else if (n >= 7 && memcmp(s, "# UNIT ", 7) == 0)
        kind = VORO_PROM_META_UNIT;
    else
        return FAIL(p, -EBADMSG, "invalid comment line (only HELP, TYPE, UNIT and EOF)");
    size_t i = 7, name = 7;
    if (i < n && is_name_start((unsigned char)s[i]))
        while (i < n && is_name_char((unsigned char)s[i]))
            i++;
    size_t nlen = i - name;
    if (nlen == 0)
        return FAIL(p, -EBADMSG, "missing or invalid metric name in metadata");
    if (nlen >= VORO_PROM_MAX_NAME)
        return FAIL(p, -E2BIG, "metric name too long");
    if (i >= n || s[i] != ' ')
        return FAIL(p, -EBADMSG, "metadata needs a space after the name");
    i++;
    const char *text = s + i;
    size_t tlen = n - i;

    int rc;
    if (!(p->have_fam && p->fam_len == nlen && memcmp(p->fam_name, s + name, nlen) == 0)) {
        if ((rc = om_family_start(p, s + name, nlen)) != 0)
            return rc;
    }
    if (p->fam_flags & FAM_SAMPLES)
        return FAIL(p, -EBADMSG, "metadata after the family's samples");
    uint8_t bit = kind == VORO_PROM_META_HELP ? FAM_HELP : kind == VORO_PROM_META_TYPE ? FAM_TYPE : FAM_UNIT;
    if (p->fam_flags & bit)
        return FAIL(p, -EBADMSG, "repeated metadata for a family");
    p->fam_flags |= bit;

    enum voro_prom_type t = VORO_PROM_UNTYPED;
    if (kind == VORO_PROM_META_TYPE) {
        if (!parse_type_word(text, tlen, true, &t))
            return FAIL(p, -EBADMSG, "unknown metric type");
        if ((t == VORO_PROM_INFO || t == VORO_PROM_STATESET) && (p->fam_flags & FAM_UNIT))
            return FAIL(p, -EBADMSG, "info and stateset families have no unit");
        if ((rc = om_set_type(p, t)) != 0)
            return rc;
    } else if (kind == VORO_PROM_META_UNIT) {
        for (size_t k = 0; k < tlen; k++)
            if (!is_name_char((unsigned char)text[k]))
                return FAIL(p, -EBADMSG, "invalid unit");
        if (tlen > 0 && !(nlen > tlen && s[name + nlen - tlen - 1] == '_' &&
                          memcmp(s + name + nlen - tlen, text, tlen) == 0))
            return FAIL(p, -EBADMSG, "metric name must end with _<unit>");
        if (p->fam_type == VORO_PROM_INFO || p->fam_type == VORO_PROM_STATESET)
            return FAIL(p, -EBADMSG, "info and stateset families have no unit");
    }
    return emit_meta(p, h, kind, s + name, nlen, text, tlen, t);
}

/* Parses `{...}` starting at s[*ip] == '{'; stores labels at p->labels[base..]. `chars` (optional)
 * counts the UTF-8 code points of names and values (exemplar limit). */
static int parse_labels(struct voro_prom_parser *p, const char *s, size_t n, size_t *ip, size_t base,
                        size_t *count, size_t *chars)
{
    bool om = p->format == VORO_PROM_FMT_OPENMETRICS;
    size_t i = *ip + 1, k = base;
    bool after_comma = false;
    for (;;) {
        if (!om)
            i = skip_blanks(s, n, i);
        if (i >= n)
            return FAIL(p, -EBADMSG, "unterminated label set");
        if (s[i] == '}') {
            if (om && after_comma)
                return FAIL(p, -EBADMSG, "trailing comma in label set");
            i++;
            break;
        }
        if (k > base && !after_comma)
            return FAIL(p, -EBADMSG, "expected ',' or '}' after a label");
        size_t ln = i;
        if (!is_label_start((unsigned char)s[i]))
            return FAIL(p, -EBADMSG, "invalid label name");
        while (i < n && is_label_char((unsigned char)s[i]))
            i++;
        size_t lnlen = i - ln;
        if (lnlen >= VORO_PROM_MAX_NAME)
            return FAIL(p, -E2BIG, "label name too long");
        if (slice_eq(s + ln, lnlen, "__name__"))
            return FAIL(p, -EBADMSG, "label name __name__ is reserved");
        if (!om)
            i = skip_blanks(s, n, i);
        if (i >= n || s[i] != '=')
            return FAIL(p, -EBADMSG, "expected '=' after a label name");
        i++;
        if (!om)
            i = skip_blanks(s, n, i);
        if (i >= n || s[i] != '"')
            return FAIL(p, -EBADMSG, "label value must be in double quotes");
        i++;
        size_t vs = i;
        bool esc = false;
        while (i < n && s[i] != '"') {
            if (s[i] == '\\') {
                if (i + 1 >= n)
                    return FAIL(p, -EBADMSG, "unterminated label value");
                char e = s[i + 1];
                if (!om && e != '\\' && e != '"' && e != 'n')
                    return FAIL(p, -EBADMSG, "invalid escape sequence in label value");
                esc = true;
                i += 2;
                continue;
            }
            i++;
        }
        if (i >= n)
            return FAIL(p, -EBADMSG, "unterminated label value");
        size_t vlen = i - vs;
        i++;
        if (k >= VORO_PROM_MAX_LABELS)
            return FAIL(p, -E2BIG, "too many labels");
        for (size_t j = base; j < k; j++)
            if (p->labels[j].name.len == lnlen && memcmp(p->labels[j].name.ptr, s + ln, lnlen) == 0)
                return FAIL(p, -EBADMSG, "duplicate label name");
        struct voro_prom_label *l = &p->labels[k++];
        l->name = (struct voro_prom_slice){s + ln, lnlen};
        l->raw = (struct voro_prom_slice){s + vs, vlen};
        l->value = l->raw;
        l->escaped = false;
        if (esc) {
            l->escaped = true;
            if (p->scratch != NULL && p->scratch_used <= p->scratch_len) {
                ssize_t r = voro_prom_unescape(s + vs, vlen, p->scratch + p->scratch_used,
                                               p->scratch_len - p->scratch_used);
                if (r >= 0) {
                    l->value = (struct voro_prom_slice){p->scratch + p->scratch_used, (size_t)r};
                    l->escaped = false;
                    p->scratch_used += (size_t)r;
                }
            }
        }
        if (chars != NULL) {
            for (size_t j = 0; j < lnlen; j++)
                *chars += 1;
            for (size_t j = 0; j < l->value.len; j++)
                if (((unsigned char)l->value.ptr[j] & 0xc0) != 0x80)
                    *chars += 1;
        }
        after_comma = false;
        if (!om)
            i = skip_blanks(s, n, i);
        if (i < n && s[i] == ',') {
            i++;
            after_comma = true;
        }
    }
    *ip = i;
    *count = k - base;
    return 0;
}

static uint64_t labels_hash(const struct voro_prom_label *l, size_t n, const char *skip)
{
    uint64_t h = 0;
    for (size_t i = 0; i < n; i++) {
        if (skip != NULL && slice_eq(l[i].name.ptr, l[i].name.len, skip))
            continue;
        uint64_t x = fnv(FNV_INIT, l[i].name.ptr, l[i].name.len);
        x = fnv(x, "=", 1);
        x = fnv(x, l[i].raw.ptr, l[i].raw.len);
        h ^= mix(x);
    }
    return h;
}

/* OpenMetrics rules for one parsed sample. */
static int om_sample_checks(struct voro_prom_parser *p, struct voro_prom_sample *smp)
{
    const char *name = smp->name.ptr;
    size_t n = smp->name.len;
    int rc;
    const char *suf = cur_family_suffix(p, name, n);
    if (suf == NULL) {
        if ((rc = om_family_start(p, name, n)) != 0)
            return rc;
        suf = "";
    }
    p->fam_flags |= FAM_SAMPLES;
    enum voro_prom_type t = p->fam_type;
    smp->family = (struct voro_prom_slice){name, p->fam_len};
    smp->type = t;
    double v = smp->value;

    /* exemplars: only on counter _total and (gauge)histogram _bucket */
    if (smp->has_exemplar && !((t == VORO_PROM_COUNTER && strcmp(suf, "_total") == 0) ||
                               ((t == VORO_PROM_HISTOGRAM || t == VORO_PROM_GAUGEHISTOGRAM) &&
                                strcmp(suf, "_bucket") == 0)))
        return FAIL(p, -EBADMSG, "exemplar not allowed on this sample");

    const char *skip = NULL;
    if (t == VORO_PROM_HISTOGRAM || t == VORO_PROM_GAUGEHISTOGRAM)
        skip = "le";
    else if (t == VORO_PROM_SUMMARY)
        skip = "quantile";
    uint64_t gkey = mix(labels_hash(smp->labels, smp->n_labels, skip) ^ 0x9e3779b97f4a7c15ull);
    if (!p->have_group || gkey != p->group_key) {
        if ((rc = om_group_end(p)) != 0)
            return rc;
        if (group_seen_insert(p, gkey))
            return FAIL(p, -EBADMSG, "samples of a metric are not grouped together");
        p->have_group = true;
        p->group_key = gkey;
        p->g_buckets = 0;
        p->g_inf = p->g_sum = p->g_count = p->g_neg = false;
        p->g_inf_val = p->g_sum_val = p->g_count_val = 0;
    }

    bool is_bucket = strcmp(suf, "_bucket") == 0;
    bool is_count = strcmp(suf, "_count") == 0 || strcmp(suf, "_gcount") == 0;
    bool is_sum = strcmp(suf, "_sum") == 0 || strcmp(suf, "_gsum") == 0;
    switch (t) {
    case VORO_PROM_COUNTER:
        if (strcmp(suf, "_total") == 0 && (isnan(v) || v < 0))
            return FAIL(p, -EBADMSG, "counter value must not be NaN or negative");
        break;
    case VORO_PROM_HISTOGRAM:
    case VORO_PROM_GAUGEHISTOGRAM:
        if (is_bucket) {
            const struct voro_prom_label *le = voro_prom_label_get(smp, "le");
            if (le == NULL)
                return FAIL(p, -EBADMSG, "bucket without le label");
            double lev;
            if (slice_eq(le->raw.ptr, le->raw.len, "+Inf"))
                lev = INFINITY;
            else if (parse_real(le->raw.ptr, le->raw.len, &lev) != 0)
                return FAIL(p, -EBADMSG, "invalid le label value");
            if (isnan(v) || v < 0)
                return FAIL(p, -EBADMSG, "bucket value must not be NaN or negative");
            if (p->g_buckets > 0 && !(lev > p->g_prev_le))
                return FAIL(p, -EBADMSG, "histogram buckets out of order");
            if (p->g_buckets > 0 && v < p->g_prev_bucket)
                return FAIL(p, -EBADMSG, "histogram buckets not cumulative");
            p->g_buckets++;
            p->g_prev_le = lev;
            p->g_prev_bucket = v;
            if (lev < 0)
                p->g_neg = true;
            if (isinf(lev)) {
                p->g_inf = true;
                p->g_inf_val = v;
            }
        } else if (is_count) {
            if (isnan(v) || v < 0)
                return FAIL(p, -EBADMSG, "histogram count must not be NaN or negative");
            p->g_count = true;
            p->g_count_val = v;
        } else if (is_sum) {
            if (isnan(v))
                return FAIL(p, -EBADMSG, "histogram sum must not be NaN");
            if (t == VORO_PROM_HISTOGRAM && v < 0 && (p->flags & VORO_PROM_STRICT))
                return FAIL(p, -EBADMSG, "histogram sum must not be negative");
            p->g_sum = true;
            p->g_sum_val = v;
        }
        break;
    case VORO_PROM_SUMMARY:
        if (*suf == '\0') {
            const struct voro_prom_label *q = voro_prom_label_get(smp, "quantile");
            double qv;
            if (q == NULL)
                return FAIL(p, -EBADMSG, "summary sample without quantile label");
            if (parse_real(q->raw.ptr, q->raw.len, &qv) != 0 || qv < 0 || qv > 1)
                return FAIL(p, -EBADMSG, "quantile must be a number in [0,1]");
            if (v < 0 && (p->flags & VORO_PROM_STRICT))
                return FAIL(p, -EBADMSG, "quantile value must not be negative");
        } else if ((is_count || is_sum) && isnan(v)) {
            return FAIL(p, -EBADMSG, "summary count/sum must not be NaN");
        } else if (v < 0 && (is_count || (p->flags & VORO_PROM_STRICT))) {
            return FAIL(p, -EBADMSG, "summary count/sum must not be negative");
        }
        break;
    case VORO_PROM_INFO:
        if (v != 1.0)
            return FAIL(p, -EBADMSG, "info value must be 1");
        break;
    case VORO_PROM_STATESET: {
        bool found = false;
        for (size_t i = 0; i < smp->n_labels; i++)
            if (smp->labels[i].name.len == p->fam_len && memcmp(smp->labels[i].name.ptr, p->fam_name, p->fam_len) == 0)
                found = true;
        if (!found)
            return FAIL(p, -EBADMSG, "stateset sample without the family-named label");
        if (v != 0.0 && v != 1.0)
            return FAIL(p, -EBADMSG, "stateset value must be 0 or 1");
        break;
    }
    default:
        break;
    }

    /* timestamps within one series: all or none, never going backwards */
    uint64_t series = mix(labels_hash(smp->labels, smp->n_labels, NULL) ^ name_key(name, n));
    if (p->have_prev && p->prev_series == series) {
        if (p->prev_has_ts != smp->has_timestamp)
            return FAIL(p, -EBADMSG, "series mixes samples with and without timestamps");
        if (smp->has_timestamp && smp->timestamp_s < p->prev_ts)
            return FAIL(p, -EBADMSG, "timestamps go backwards within a series");
    }
    p->have_prev = true;
    p->prev_series = series;
    p->prev_has_ts = smp->has_timestamp;
    p->prev_ts = smp->timestamp_s;
    return 0;
}

/* Prometheus text rules for one parsed sample. */
static int text_sample_checks(struct voro_prom_parser *p, struct voro_prom_sample *smp)
{
    size_t fl;
    struct voro_prom_family_slot *f = text_family(p, smp->name.ptr, smp->name.len, &fl);
    smp->family = (struct voro_prom_slice){smp->name.ptr, fl};
    smp->type = VORO_PROM_UNTYPED;
    if (f == NULL)
        return 0;
    f->flags |= FAM_SAMPLES;
    smp->type = (enum voro_prom_type)f->type;
    double d;
    if (smp->type == VORO_PROM_HISTOGRAM && ends_with(smp->name.ptr, smp->name.len, "_bucket")) {
        const struct voro_prom_label *le = voro_prom_label_get(smp, "le");
        if (le != NULL && voro_prom_parse_double(le->raw.ptr, le->raw.len, &d) != 0)
            return FAIL(p, -EBADMSG, "invalid le label value");
    }
    if (smp->type == VORO_PROM_SUMMARY && fl == smp->name.len) {
        const struct voro_prom_label *q = voro_prom_label_get(smp, "quantile");
        if (q != NULL && voro_prom_parse_double(q->raw.ptr, q->raw.len, &d) != 0)
            return FAIL(p, -EBADMSG, "invalid quantile label value");
    }
    return 0;
}

/* Skips an OpenMetrics exemplar: s[i..] starts right after "# ". */
static int om_exemplar(struct voro_prom_parser *p, const char *s, size_t n, size_t i, size_t base)
{
    if (i >= n || s[i] != '{')
        return FAIL(p, -EBADMSG, "exemplar must start with '{'");
    size_t cnt = 0, chars = 0;
    int rc = parse_labels(p, s, n, &i, base, &cnt, &chars);
    if (rc)
        return rc;
    if (chars > EXEMPLAR_MAX_CHARS)
        return FAIL(p, -EBADMSG, "exemplar labels longer than 128 characters");
    if (i >= n || s[i] != ' ')
        return FAIL(p, -EBADMSG, "exemplar needs a space before its value");
    i++;
    size_t vs = i;
    while (i < n && s[i] != ' ')
        i++;
    double d;
    if (voro_prom_parse_double(s + vs, i - vs, &d) != 0)
        return FAIL(p, -EBADMSG, "invalid exemplar value");
    if (i == n)
        return 0;
    i++;
    size_t ts = i;
    while (i < n && s[i] != ' ')
        i++;
    if (i != n || parse_om_ts(s + ts, i - ts, &d) != 0)
        return FAIL(p, -EBADMSG, "invalid exemplar timestamp");
    return 0;
}

static int sample_line(struct voro_prom_parser *p, const char *s, size_t n, size_t i,
                       const struct voro_prom_handler *h)
{
    bool om = p->format == VORO_PROM_FMT_OPENMETRICS;
    struct voro_prom_sample smp;
    memset(&smp, 0, sizeof(smp));
    smp.line = p->line;

    size_t name = i;
    if (i < n && is_name_start((unsigned char)s[i]))
        while (i < n && is_name_char((unsigned char)s[i]))
            i++;
    if (i == name)
        return FAIL(p, -EBADMSG, "invalid metric name");
    if (i - name >= VORO_PROM_MAX_NAME)
        return FAIL(p, -E2BIG, "metric name too long");
    smp.name = (struct voro_prom_slice){s + name, i - name};
    bool blank_after_name = i < n && is_blank((unsigned char)s[i]);
    if (!om)
        i = skip_blanks(s, n, i);
    size_t nl = 0;
    bool had_labels = false;
    if (i < n && s[i] == '{') {
        int rc = parse_labels(p, s, n, &i, 0, &nl, NULL);
        if (rc)
            return rc;
        had_labels = true;
    }
    smp.labels = p->labels;
    smp.n_labels = nl;

    /* value */
    if (om) {
        if (i >= n || s[i] != ' ')
            return FAIL(p, -EBADMSG, i >= n ? "missing value" : "expected a single space before the value");
        i++;
    } else {
        if (!had_labels && !blank_after_name)
            return FAIL(p, -EBADMSG, i >= n ? "missing value" : "invalid metric name");
        i = skip_blanks(s, n, i);
        if (i >= n)
            return FAIL(p, -EBADMSG, "missing value");
    }
    size_t vs = i;
    while (i < n && !(om ? s[i] == ' ' : is_blank((unsigned char)s[i])))
        i++;
    if (voro_prom_parse_double(s + vs, i - vs, &smp.value) != 0)
        return FAIL(p, -EBADMSG, "invalid sample value");

    /* timestamp, exemplar */
    if (om) {
        if (i < n) {
            i++; /* the space */
            if (i < n && s[i] != '#') {
                size_t ts = i;
                while (i < n && s[i] != ' ')
                    i++;
                if (parse_om_ts(s + ts, i - ts, &smp.timestamp_s) != 0)
                    return FAIL(p, -EBADMSG, "invalid timestamp");
                smp.has_timestamp = true;
                smp.timestamp_ms = sec_to_ms(smp.timestamp_s);
                if (i < n)
                    i++;
                else
                    goto done;
            }
            if (i + 1 >= n || s[i] != '#' || s[i + 1] != ' ')
                return FAIL(p, -EBADMSG, "unexpected text after the value");
            int rc = om_exemplar(p, s, n, i + 2, nl);
            if (rc)
                return rc;
            smp.has_exemplar = true;
        }
    } else {
        i = skip_blanks(s, n, i);
        if (i < n) {
            size_t ts = i;
            while (i < n && !is_blank((unsigned char)s[i]))
                i++;
            if (parse_text_ts(s + ts, i - ts, &smp.timestamp_ms) != 0)
                return FAIL(p, -EBADMSG, "invalid timestamp");
            smp.has_timestamp = true;
            smp.timestamp_s = (double)smp.timestamp_ms / 1000.0;
            if (skip_blanks(s, n, i) != n)
                return FAIL(p, -EBADMSG, "spurious text after the timestamp");
        }
    }
done:;
    int rc = om ? om_sample_checks(p, &smp) : text_sample_checks(p, &smp);
    if (rc)
        return rc;
    if (h != NULL && h->on_sample != NULL) {
        rc = h->on_sample(h->ud, &smp);
        if (rc != 0 && p->err == 0) {
            p->err = rc;
            p->err_line = p->line;
            p->err_reason = "stopped by callback";
        }
    }
    return rc;
}

static int parse_line(struct voro_prom_parser *p, const char *s, size_t n, const struct voro_prom_handler *h)
{
    p->line++;
    p->scratch_used = 0;
    if (n > p->max_line)
        return FAIL(p, -E2BIG, "line too long");
    if (p->format == VORO_PROM_FMT_OPENMETRICS) {
        if (p->eof_seen)
            return FAIL(p, -EBADMSG, "text after # EOF");
        if (n == 0)
            return FAIL(p, -EBADMSG, "blank line");
        if (s[0] == '#')
            return om_comment(p, s, n, h);
        return sample_line(p, s, n, 0, h);
    }
    size_t i = skip_blanks(s, n, 0);
    if (i == n)
        return 0;
    if (s[i] == '#')
        return text_comment(p, s, n, i, h);
    return sample_line(p, s, n, i, h);
}

ssize_t voro_prom_feed(struct voro_prom_parser *p, const char *buf, size_t len, const struct voro_prom_handler *h)
{
    if (p->err)
        return p->err;
    if (p->finished)
        return FAIL(p, -EINVAL, "feed after finish");
    if (p->format == VORO_PROM_FMT_AUTO)
        p->format = VORO_PROM_FMT_TEXT;
    size_t pos = 0;
    while (pos < len) {
        if (p->format == VORO_PROM_FMT_OPENMETRICS && p->eof_seen) {
            p->line++;
            return FAIL(p, -EBADMSG, "text after # EOF");
        }
        const char *nl = memchr(buf + pos, '\n', len - pos);
        if (nl == NULL) {
            if (len - pos > p->max_line) {
                p->line++;
                return FAIL(p, -E2BIG, "line too long");
            }
            break;
        }
        size_t n = (size_t)(nl - (buf + pos));
        int rc = parse_line(p, buf + pos, n, h);
        if (rc)
            return rc;
        pos += n + 1;
    }
    return (ssize_t)pos;
}

int voro_prom_finish(struct voro_prom_parser *p, const char *buf, size_t len, const struct voro_prom_handler *h)
{
    if (p->err)
        return p->err;
    ssize_t used = voro_prom_feed(p, buf, len, h);
    if (used < 0)
        return (int)used;
    p->finished = true;
    size_t rest = len - (size_t)used;
    bool om = p->format == VORO_PROM_FMT_OPENMETRICS;
    if (rest > 0) {
        if (om && p->eof_seen) {
            p->line++;
            return FAIL(p, -EBADMSG, "text after # EOF");
        }
        if (!om && (p->flags & VORO_PROM_STRICT)) {
            p->line++;
            return FAIL(p, -EBADMSG, "unexpected end of input (no newline after the last line)");
        }
        int rc = parse_line(p, buf + used, rest, h);
        if (rc)
            return rc;
    }
    if (om && !p->eof_seen) {
        p->line++;
        return FAIL(p, -EBADMSG, "missing # EOF");
    }
    return family_end(p);
}

int voro_prom_parse(struct voro_prom_parser *p, const char *buf, size_t len, const struct voro_prom_handler *h)
{
    if (buf == NULL) {
        buf = "";
        len = 0;
    }
    if (p->format == VORO_PROM_FMT_AUTO && p->line == 0 && p->err == 0) {
        /* A trailing `# EOF` suggests OpenMetrics, but Prometheus' own test dumps end in one too:
         * validate as OpenMetrics without callbacks first, and fall back to text if that fails. */
        struct voro_prom_opts o = {.flags = p->flags, .max_line = p->max_line, .scratch = p->scratch,
                                   .scratch_len = p->scratch_len};
        o.format = voro_prom_detect_format(buf, len, NULL);
        if (o.format == VORO_PROM_FMT_OPENMETRICS) {
            voro_prom_parser_init(p, &o);
            if (voro_prom_finish(p, buf, len, NULL) != 0)
                o.format = VORO_PROM_FMT_TEXT;
        }
        voro_prom_parser_init(p, &o);
    }
    return voro_prom_finish(p, buf, len, h);
}
