/* Parser for the Prometheus text exposition format 0.0.4 and OpenMetrics 1.0 text: zero-copy, no malloc. */
#ifndef VORO_PROTO_PROM_PARSE_H
#define VORO_PROTO_PROM_PARSE_H

/*
 * Usage (whole buffer):
 *   static struct voro_prom_parser p;                       // ~100 KiB: keep it off the stack
 *   struct voro_prom_opts o = { .format = VORO_PROM_FMT_AUTO };
 *   voro_prom_parser_init(&p, &o);
 *   rc = voro_prom_parse(&p, body, len, &handler);          // 0, or negative errno + p.err_line/err_reason
 *
 * Usage (incremental): resolve the format first (voro_prom_detect_format), then
 *   n = voro_prom_feed(&p, buf, len, &h);   // parses complete lines only, returns bytes consumed
 *   ... drop buf[0..n), append more bytes, call again ...
 *   rc = voro_prom_finish(&p, rest, rest_len, &h);   // the unterminated tail (may be empty) + end checks
 * The parser never retains `buf` between calls: every slice handed to a callback is valid only during
 * that callback. The line being parsed must be complete in one call (lines are at most max_line bytes).
 *
 * Prometheus text (0.0.4) is parsed as prometheus/common expfmt does: blank lines and free comments
 * are ignored, whitespace may surround labels, `# HELP`/`# TYPE` with nothing after the name are
 * ignored, a second HELP or TYPE for a family, a TYPE after the family's samples, an unknown type,
 * an invalid escape in a label value, a third field, a non-integer timestamp, `__name__` as a label,
 * an unparsable `le` (histogram) or `quantile` (summary) are errors. Timestamps are integer ms.
 * Only with VORO_PROM_STRICT is an unterminated last line an error (expfmt's "unexpected end of
 * input"): real dumps are often stored without the final newline, so the default accepts it.
 *
 * OpenMetrics 1.0 is checked strictly (the conformance suite's bad_* cases are rejected): `# EOF`
 * must end the input, no blank lines or free comments, single spaces, families contiguous and never
 * repeated or clashing (`a_created` gauge vs counter `a`), metadata before samples and at most once,
 * UNIT a suffix of the name and not on info/stateset, per-type sample names, counter/bucket/count/
 * sum values not NaN or negative, histogram buckets sorted and cumulative with a `+Inf` bucket that
 * equals `_count`, `_sum` and `_count` together, no `_sum` with negative buckets, quantile in [0,1],
 * stateset 0/1, info 1, timestamps (float seconds) never decreasing within a series, exemplars only
 * on `_total` and `_bucket` and at most 128 label characters. Exemplars are validated and skipped.
 * Three value rules that real client libraries break (negative summary quantile values and sums, a
 * histogram `_sum` next to negative buckets) are only enforced with VORO_PROM_STRICT; with it, all
 * 167 bad_* conformance cases are rejected, without it all but three.
 *
 * Label values with escapes are unescaped into the caller's scratch buffer when it has room;
 * otherwise the value is reported raw with `escaped` set (see voro_prom_unescape).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define VORO_PROM_MAX_LABELS 64            /* per sample (exemplar labels included) */
#define VORO_PROM_MAX_NAME 256             /* metric and label names, bytes */
#define VORO_PROM_DEFAULT_MAX_LINE 65536   /* bytes, without the newline */
#define VORO_PROM_FAMILY_SLOTS 4096        /* families tracked for HELP/TYPE/ordering checks */
#define VORO_PROM_GROUP_SLOTS 2048         /* label sets tracked per OpenMetrics family */

enum voro_prom_format {
    VORO_PROM_FMT_AUTO = 0,    /* voro_prom_parse: a trailing `# EOF` and a clean OpenMetrics validation
                                  pass (no callbacks) select OPENMETRICS, else TEXT; feed/finish: TEXT */
    VORO_PROM_FMT_TEXT = 1,    /* text/plain; version=0.0.4 */
    VORO_PROM_FMT_OPENMETRICS = 2, /* application/openmetrics-text; version=1.0.0 */
};

/* Flags for voro_prom_opts.flags. */
#define VORO_PROM_STRICT 0x1u /* Prometheus text: reject an input whose last line has no newline */

enum voro_prom_type {
    VORO_PROM_UNTYPED = 0, /* "untyped" (text) / "unknown" (OpenMetrics) / no TYPE line */
    VORO_PROM_COUNTER,
    VORO_PROM_GAUGE,
    VORO_PROM_HISTOGRAM,
    VORO_PROM_GAUGEHISTOGRAM,
    VORO_PROM_SUMMARY,
    VORO_PROM_INFO,
    VORO_PROM_STATESET,
};

/* Bytes of the buffer being parsed (or of the scratch buffer); not NUL-terminated. */
struct voro_prom_slice {
    const char *ptr;
    size_t len;
};

struct voro_prom_label {
    struct voro_prom_slice name;
    struct voro_prom_slice value; /* unescaped, unless `escaped` */
    struct voro_prom_slice raw;   /* as written between the quotes */
    bool escaped;                 /* value still holds escapes: scratch was too small */
};

struct voro_prom_sample {
    struct voro_prom_slice name;     /* full sample name, e.g. foo_bucket */
    struct voro_prom_slice family;   /* family name as resolved (foo), or name when unknown */
    enum voro_prom_type type;        /* type of the family (UNTYPED when not declared) */
    const struct voro_prom_label *labels;
    size_t n_labels;
    double value;                    /* NaN, +/-Inf allowed */
    bool has_timestamp;
    int64_t timestamp_ms;            /* text: as written; OpenMetrics: seconds*1000, saturated */
    double timestamp_s;              /* the timestamp in seconds */
    bool has_exemplar;               /* OpenMetrics exemplar present (validated, not reported) */
    uint32_t line;
};

enum voro_prom_meta_kind {
    VORO_PROM_META_HELP = 0,
    VORO_PROM_META_TYPE = 1,
    VORO_PROM_META_UNIT = 2,
};

struct voro_prom_meta {
    enum voro_prom_meta_kind kind;
    struct voro_prom_slice name;
    struct voro_prom_slice text;     /* HELP: raw (escaped) text; UNIT: the unit; TYPE: the type word */
    enum voro_prom_type type;        /* TYPE only */
    uint32_t line;
};

/* Callbacks may be NULL. A non-zero return stops parsing; parse/feed/finish return it unchanged
 * (use a negative errno). `ud` is the caller's and is passed back untouched. */
struct voro_prom_handler {
    int (*on_sample)(void *ud, const struct voro_prom_sample *s);
    int (*on_meta)(void *ud, const struct voro_prom_meta *m);
    void *ud;
};

struct voro_prom_opts {
    enum voro_prom_format format;
    unsigned flags;            /* VORO_PROM_* flags */
    size_t max_line;           /* 0 = VORO_PROM_DEFAULT_MAX_LINE */
    char *scratch;             /* caller-owned, outlives the parser; NULL = report escaped values raw */
    size_t scratch_len;
};

struct voro_prom_family_slot {
    uint64_t key;   /* hash of the family name; 0 = empty */
    uint8_t type;   /* enum voro_prom_type */
    uint8_t flags;  /* private */
};

struct voro_prom_group_slot {
    uint64_t key;
    uint32_t gen;   /* family generation that inserted it */
};

/* All state lives here (caller-allocated, no malloc). Fields below `err_reason` are private. */
struct voro_prom_parser {
    int err;                   /* first error (negative errno), sticky */
    uint32_t err_line;         /* 1-based line of the first error */
    const char *err_reason;    /* static string */

    enum voro_prom_format format;
    unsigned flags;
    size_t max_line;
    char *scratch;
    size_t scratch_len;
    size_t scratch_used;

    uint32_t line;
    bool eof_seen;
    bool finished;

    struct voro_prom_label labels[VORO_PROM_MAX_LABELS];

    /* current family */
    bool have_fam;
    char fam_name[VORO_PROM_MAX_NAME];
    size_t fam_len;
    uint64_t fam_key;
    enum voro_prom_type fam_type;
    uint8_t fam_flags;
    uint32_t fam_gen;

    /* current OpenMetrics group (one label set of a family) and its histogram/summary state */
    bool have_group;
    uint64_t group_key;
    uint32_t g_buckets;
    bool g_inf, g_sum, g_count, g_neg;
    double g_inf_val, g_sum_val, g_count_val, g_prev_le, g_prev_bucket;

    /* previous OpenMetrics sample's series, for timestamp order */
    bool have_prev;
    uint64_t prev_series;
    bool prev_has_ts;
    double prev_ts;

    size_t n_families;
    size_t n_groups;
    struct voro_prom_family_slot families[VORO_PROM_FAMILY_SLOTS];
    struct voro_prom_group_slot groups[VORO_PROM_GROUP_SLOTS];
};

/* Resets `p` for a new exposition. `opts` may be NULL (AUTO, defaults); it is copied. */
void voro_prom_parser_init(struct voro_prom_parser *p, const struct voro_prom_opts *opts);

/* Parses a whole exposition: feed + finish. With FMT_AUTO the format is detected first (see above). Returns 0,
 * -EBADMSG (syntax/semantics), -E2BIG (a bound exceeded) or a callback's non-zero return. */
int voro_prom_parse(struct voro_prom_parser *p, const char *buf, size_t len, const struct voro_prom_handler *h);

/* Parses the complete lines of buf[0..len): returns the bytes consumed (up to and including the last
 * newline), or a negative errno. Incomplete tails are left for the next call or for finish. */
ssize_t voro_prom_feed(struct voro_prom_parser *p, const char *buf, size_t len, const struct voro_prom_handler *h);

/* Ends the exposition: buf[0..len) is whatever was not consumed (complete lines are parsed too).
 * Runs the end-of-input checks (OpenMetrics: `# EOF` present, last family complete). */
int voro_prom_finish(struct voro_prom_parser *p, const char *buf, size_t len, const struct voro_prom_handler *h);

/* Picks the format: from `content_type` if given (NULL or empty = unknown; openmetrics-text ->
 * OPENMETRICS, anything else -> TEXT), else OPENMETRICS if the last line of buf is `# EOF`. */
enum voro_prom_format voro_prom_detect_format(const char *buf, size_t len, const char *content_type);

/* Unescapes a label value or HELP text (\\ \" \n; other escapes are kept as written) into dst.
 * Returns the length, or -ENOSPC if dst (cap bytes) is too small. dst is not NUL-terminated. */
ssize_t voro_prom_unescape(const char *src, size_t len, char *dst, size_t cap);

/* Looks a label up by name in a sample; NULL when absent. */
const struct voro_prom_label *voro_prom_label_get(const struct voro_prom_sample *s, const char *name);

/* Parses a sample value as both formats spell it (decimal, exponent, [+-]Inf, NaN; no hex, no '_').
 * Returns 0 or -EINVAL. */
int voro_prom_parse_double(const char *s, size_t len, double *out);

/* "counter", "gauge", ... ("untyped" for VORO_PROM_UNTYPED). */
const char *voro_prom_type_name(enum voro_prom_type t);

#endif
