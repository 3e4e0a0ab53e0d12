/* Engine metrics: turns one scrape's Prometheus samples into the per-backend load figures the balancer scores. */
#ifndef VORO_CLUSTER_ENGINE_METRICS_H
#define VORO_CLUSTER_ENGINE_METRICS_H

/*
 * One mechanism: a table of rows {metric name, optional label filter, target field, scale, aggregate}.
 * voro_engine_map_add_defaults() fills it with the real names of vLLM, SGLang, TGI, Triton and the
 * DCGM exporter; the config can add rows for other engines with voro_engine_map_add(). Rows that
 * feed the same field are alternatives in priority order: the first row that matched at least one
 * finite sample gives the field its value (so vLLM's kv_cache_usage_perc wins over the older
 * gpu_cache_usage_perc when a server exports both). A row aggregates all the samples it matched
 * (one per label set: per model, per GPU, per MIG instance) with SUM, MAX or AVG, after scaling
 * each sample. NaN and +/-Inf samples are ignored. See docs/metrics-scraping.md for every rule.
 *
 * Usage, one buffer:   voro_engine_metrics_parse(&map, &parser, body, len, content_type, &out);
 * Usage, several scrapes of one backend (engine /metrics + DCGM exporter):
 *   voro_engine_scrape_begin(&sc, &map);
 *   h = { .on_sample = voro_engine_scrape_sample, .ud = &sc };  voro_prom_parse(..., &h);  (repeat)
 *   voro_engine_scrape_end(&sc, &out);
 * No malloc anywhere; the map and the scrape state are caller-owned plain structs.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/prom_parse.h"

#define VORO_ENGINE_MAP_MAX 64        /* rows in a map (defaults use 18) */
#define VORO_ENGINE_MAX_MODELS 16     /* model names remembered per scrape */
#define VORO_ENGINE_MODEL_NAME_MAX 128 /* bytes per model name, NUL included */
#define VORO_ENGINE_LABEL_MAX 64      /* label-filter name, NUL included */
#define VORO_ENGINE_LABEL_VALUE_MAX 128 /* label-filter value, NUL included */

enum voro_engine_field {
    VORO_ENGINE_QUEUE_DEPTH = 0,  /* requests waiting (not yet scheduled) */
    VORO_ENGINE_RUNNING,          /* requests being processed */
    VORO_ENGINE_KV_CACHE_USAGE,   /* 0..1 */
    VORO_ENGINE_GPU_UTIL,         /* 0..1 */
    VORO_ENGINE_GPU_MEM_USED,     /* bytes */
    VORO_ENGINE_GPU_MEM_FREE,     /* bytes */
    VORO_ENGINE_GPU_MEM_TOTAL,    /* bytes (used to derive free when only used+total are exported) */
    VORO_ENGINE_XID_ERRORS,       /* last XID code seen (max over GPUs); non-zero means a GPU error */
    VORO_ENGINE_NFIELDS
};

#define VORO_ENGINE_HAS(f) (1u << (f))

enum voro_engine_agg {
    VORO_ENGINE_AGG_SUM = 0,
    VORO_ENGINE_AGG_MAX = 1,
    VORO_ENGINE_AGG_AVG = 2,
};

struct voro_engine_metrics {
    double queue_depth;
    double running;
    double kv_cache_usage;      /* clamped to 0..1 */
    double gpu_util;            /* clamped to 0..1 */
    double gpu_mem_used_bytes;
    double gpu_mem_free_bytes;
    double gpu_mem_total_bytes;
    double xid_errors;
    uint32_t present;           /* VORO_ENGINE_HAS(field) bits; absent fields read 0 */
    bool has_timestamp;         /* some sample carried an exposition timestamp */
    int64_t newest_timestamp_ms;
    unsigned n_models;          /* distinct model_name / model label values seen */
    bool models_truncated;      /* more than VORO_ENGINE_MAX_MODELS, or a name too long */
    char models[VORO_ENGINE_MAX_MODELS][VORO_ENGINE_MODEL_NAME_MAX];
};

struct voro_engine_map_entry {
    char metric[VORO_PROM_MAX_NAME];
    char label[VORO_ENGINE_LABEL_MAX];             /* "" = no filter */
    char label_value[VORO_ENGINE_LABEL_VALUE_MAX];
    size_t metric_len;
    enum voro_engine_field field;
    double scale;
    enum voro_engine_agg agg;
};

struct voro_engine_map {
    size_t n;
    struct voro_engine_map_entry rows[VORO_ENGINE_MAP_MAX];
};

struct voro_engine_scrape {
    const struct voro_engine_map *map; /* borrowed; must outlive the scrape */
    struct {
        double sum, max;
        uint32_t n;
    } acc[VORO_ENGINE_MAP_MAX];
    struct voro_engine_metrics m;
};

/* Empties `m`. */
void voro_engine_map_init(struct voro_engine_map *m);
/* Appends a row. `label`/`label_value` NULL = no filter (both or neither). `scale` must be finite and
 * non-zero. Strings are copied. Returns 0, -EINVAL, -ENAMETOOLONG or -ENOSPC (table full). */
int voro_engine_map_add(struct voro_engine_map *m, const char *metric, const char *label, const char *label_value,
                        enum voro_engine_field field, double scale, enum voro_engine_agg agg);
/* Appends the built-in rows (vLLM, SGLang, TGI, Triton, DCGM). Returns 0 or -ENOSPC. */
int voro_engine_map_add_defaults(struct voro_engine_map *m);

/* Config spellings: "queue_depth", "running", "kv_cache_usage", "gpu_util", "gpu_mem_used_bytes",
 * "gpu_mem_free_bytes", "gpu_mem_total_bytes", "xid_errors"; "sum", "max", "avg". 0 or -EINVAL. */
int voro_engine_field_from_name(const char *name, enum voro_engine_field *out);
int voro_engine_agg_from_name(const char *name, enum voro_engine_agg *out);
const char *voro_engine_field_name(enum voro_engine_field f);

/* Reads field `f` of `m`: returns true and sets *v when present. */
bool voro_engine_metrics_get(const struct voro_engine_metrics *m, enum voro_engine_field f, double *v);

void voro_engine_scrape_begin(struct voro_engine_scrape *sc, const struct voro_engine_map *map);
/* A voro_prom_handler.on_sample: `ud` is the struct voro_engine_scrape. Always returns 0. */
int voro_engine_scrape_sample(void *ud, const struct voro_prom_sample *s);
/* Computes the fields (priority, aggregation, derived free memory, clamping) into *out. */
void voro_engine_scrape_end(const struct voro_engine_scrape *sc, struct voro_engine_metrics *out);

/* Parses one exposition with `p` (caller-owned, reinitialised here; the format comes from
 * `content_type`, NULL = detect) and extracts *out. Returns 0 or the parser's error (then
 * p->err_line / p->err_reason say why and *out holds what was extracted before the error). */
int voro_engine_metrics_parse(const struct voro_engine_map *map, struct voro_prom_parser *p, const char *buf,
                              size_t len, const char *content_type, struct voro_engine_metrics *out);

#endif
