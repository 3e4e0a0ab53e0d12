/* Engine metrics extraction: matches samples against the mapping table and aggregates them per field. */
#include "cluster/engine_metrics.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#define MIB 1048576.0

static const char *const field_names[VORO_ENGINE_NFIELDS] = {
    [VORO_ENGINE_QUEUE_DEPTH] = "queue_depth",
    [VORO_ENGINE_RUNNING] = "running",
    [VORO_ENGINE_KV_CACHE_USAGE] = "kv_cache_usage",
    [VORO_ENGINE_GPU_UTIL] = "gpu_util",
    [VORO_ENGINE_GPU_MEM_USED] = "gpu_mem_used_bytes",
    [VORO_ENGINE_GPU_MEM_FREE] = "gpu_mem_free_bytes",
    [VORO_ENGINE_GPU_MEM_TOTAL] = "gpu_mem_total_bytes",
    [VORO_ENGINE_XID_ERRORS] = "xid_errors",
};

/* The built-in rows. Order matters only between rows of the same field (first match wins). */
static const struct {
    const char *metric;
    enum voro_engine_field field;
    double scale;
    enum voro_engine_agg agg;
} defaults[] = {
    /* vLLM: gauges per model_name; one process serves one model, several add up */
    {"vllm:num_requests_waiting", VORO_ENGINE_QUEUE_DEPTH, 1.0, VORO_ENGINE_AGG_SUM},
    {"vllm:num_requests_running", VORO_ENGINE_RUNNING, 1.0, VORO_ENGINE_AGG_SUM},
    {"vllm:kv_cache_usage_perc", VORO_ENGINE_KV_CACHE_USAGE, 1.0, VORO_ENGINE_AGG_MAX}, /* V1, 0..1 */
    {"vllm:gpu_cache_usage_perc", VORO_ENGINE_KV_CACHE_USAGE, 1.0, VORO_ENGINE_AGG_MAX}, /* V0, 0..1 */
    /* SGLang: per model_name (and tp_rank in newer versions) */
    {"sglang:num_queue_reqs", VORO_ENGINE_QUEUE_DEPTH, 1.0, VORO_ENGINE_AGG_SUM},
    {"sglang:num_running_reqs", VORO_ENGINE_RUNNING, 1.0, VORO_ENGINE_AGG_SUM},
    {"sglang:token_usage", VORO_ENGINE_KV_CACHE_USAGE, 1.0, VORO_ENGINE_AGG_MAX}, /* 0..1 */
    /* TGI: unlabelled gauges */
    {"tgi_queue_size", VORO_ENGINE_QUEUE_DEPTH, 1.0, VORO_ENGINE_AGG_SUM},
    {"tgi_batch_current_size", VORO_ENGINE_RUNNING, 1.0, VORO_ENGINE_AGG_SUM},
    /* Triton: pending requests per model/version; GPU gauges per gpu_uuid */
    {"nv_inference_pending_request_count", VORO_ENGINE_QUEUE_DEPTH, 1.0, VORO_ENGINE_AGG_SUM},
    /* DCGM exporter: per GPU (and per MIG instance for memory); it is the hardware's own view,
     * so it ranks before Triton's copies of the same figures */
    {"DCGM_FI_DEV_GPU_UTIL", VORO_ENGINE_GPU_UTIL, 0.01, VORO_ENGINE_AGG_AVG}, /* percent */
    {"nv_gpu_utilization", VORO_ENGINE_GPU_UTIL, 1.0, VORO_ENGINE_AGG_AVG},    /* 0..1 */
    {"DCGM_FI_DEV_FB_USED", VORO_ENGINE_GPU_MEM_USED, MIB, VORO_ENGINE_AGG_SUM}, /* MiB */
    {"nv_gpu_memory_used_bytes", VORO_ENGINE_GPU_MEM_USED, 1.0, VORO_ENGINE_AGG_SUM},
    {"DCGM_FI_DEV_FB_FREE", VORO_ENGINE_GPU_MEM_FREE, MIB, VORO_ENGINE_AGG_SUM}, /* MiB */
    {"DCGM_FI_DEV_FB_TOTAL", VORO_ENGINE_GPU_MEM_TOTAL, MIB, VORO_ENGINE_AGG_SUM}, /* MiB */
    {"nv_gpu_memory_total_bytes", VORO_ENGINE_GPU_MEM_TOTAL, 1.0, VORO_ENGINE_AGG_SUM},
    {"DCGM_FI_DEV_XID_ERRORS", VORO_ENGINE_XID_ERRORS, 1.0, VORO_ENGINE_AGG_MAX}, /* last XID code */
};

/* Labels whose values name the served model (vLLM/SGLang model_name, Triton model). */
static const char *const model_labels[] = {"model_name", "model"};

void voro_engine_map_init(struct voro_engine_map *m)
{
    m->n = 0;
}

static int copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        return -ENAMETOOLONG;
    memcpy(dst, src, n + 1);
    return 0;
}

int voro_engine_map_add(struct voro_engine_map *m, const char *metric, const char *label, const char *label_value,
                        enum voro_engine_field field, double scale, enum voro_engine_agg agg)
{
    if (m == NULL || metric == NULL || metric[0] == '\0' || (label == NULL) != (label_value == NULL) ||
        (label != NULL && label[0] == '\0') || (unsigned)field >= VORO_ENGINE_NFIELDS ||
        (unsigned)agg > VORO_ENGINE_AGG_AVG || !isfinite(scale) || scale == 0.0)
        return -EINVAL;
    if (m->n >= VORO_ENGINE_MAP_MAX)
        return -ENOSPC;
    struct voro_engine_map_entry *e = &m->rows[m->n];
    int rc;
    if ((rc = copy_str(e->metric, sizeof(e->metric), metric)) != 0)
        return rc;
    e->label[0] = e->label_value[0] = '\0';
    if (label != NULL) {
        if ((rc = copy_str(e->label, sizeof(e->label), label)) != 0)
            return rc;
        if ((rc = copy_str(e->label_value, sizeof(e->label_value), label_value)) != 0)
            return rc;
    }
    e->metric_len = strlen(e->metric);
    e->field = field;
    e->scale = scale;
    e->agg = agg;
    m->n++;
    return 0;
}

int voro_engine_map_add_defaults(struct voro_engine_map *m)
{
    for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++) {
        int rc = voro_engine_map_add(m, defaults[i].metric, NULL, NULL, defaults[i].field, defaults[i].scale,
                                     defaults[i].agg);
        if (rc)
            return rc;
    }
    return 0;
}

int voro_engine_field_from_name(const char *name, enum voro_engine_field *out)
{
    for (int f = 0; name != NULL && f < VORO_ENGINE_NFIELDS; f++)
        if (strcmp(name, field_names[f]) == 0) {
            *out = (enum voro_engine_field)f;
            return 0;
        }
    return -EINVAL;
}

int voro_engine_agg_from_name(const char *name, enum voro_engine_agg *out)
{
    static const char *const names[] = {"sum", "max", "avg"};
    for (int a = 0; name != NULL && a < 3; a++)
        if (strcmp(name, names[a]) == 0) {
            *out = (enum voro_engine_agg)a;
            return 0;
        }
    return -EINVAL;
}

const char *voro_engine_field_name(enum voro_engine_field f)
{
    return (unsigned)f < VORO_ENGINE_NFIELDS ? field_names[f] : "?";
}

static double *field_ptr(struct voro_engine_metrics *m, enum voro_engine_field f)
{
    switch (f) {
    case VORO_ENGINE_QUEUE_DEPTH: return &m->queue_depth;
    case VORO_ENGINE_RUNNING: return &m->running;
    case VORO_ENGINE_KV_CACHE_USAGE: return &m->kv_cache_usage;
    case VORO_ENGINE_GPU_UTIL: return &m->gpu_util;
    case VORO_ENGINE_GPU_MEM_USED: return &m->gpu_mem_used_bytes;
    case VORO_ENGINE_GPU_MEM_FREE: return &m->gpu_mem_free_bytes;
    case VORO_ENGINE_GPU_MEM_TOTAL: return &m->gpu_mem_total_bytes;
    case VORO_ENGINE_XID_ERRORS: return &m->xid_errors;
    default: return NULL;
    }
}

bool voro_engine_metrics_get(const struct voro_engine_metrics *m, enum voro_engine_field f, double *v)
{
    if ((unsigned)f >= VORO_ENGINE_NFIELDS || !(m->present & VORO_ENGINE_HAS(f)))
        return false;
    *v = *field_ptr((struct voro_engine_metrics *)m, f);
    return true;
}

void voro_engine_scrape_begin(struct voro_engine_scrape *sc, const struct voro_engine_map *map)
{
    memset(sc, 0, sizeof(*sc));
    sc->map = map;
}

/* Compares a label value (maybe still escaped) with a plain string. */
static bool label_value_eq(const struct voro_prom_label *l, const char *want)
{
    size_t wl = strlen(want);
    if (!l->escaped)
        return l->value.len == wl && memcmp(l->value.ptr, want, wl) == 0;
    char tmp[VORO_ENGINE_LABEL_VALUE_MAX];
    ssize_t n = voro_prom_unescape(l->raw.ptr, l->raw.len, tmp, sizeof(tmp));
    return n >= 0 && (size_t)n == wl && memcmp(tmp, want, wl) == 0;
}

static void note_model(struct voro_engine_metrics *m, const struct voro_prom_label *l)
{
    char name[VORO_ENGINE_MODEL_NAME_MAX];
    ssize_t n = -ENOSPC;
    if (l->escaped) {
        n = voro_prom_unescape(l->raw.ptr, l->raw.len, name, sizeof(name) - 1);
    } else if (l->value.len < sizeof(name)) {
        memcpy(name, l->value.ptr, l->value.len);
        n = (ssize_t)l->value.len;
    }
    if (n < 0) {
        m->models_truncated = true;
        return;
    }
    if (n == 0)
        return;
    name[n] = '\0';
    for (unsigned i = 0; i < m->n_models; i++)
        if (strcmp(m->models[i], name) == 0)
            return;
    if (m->n_models >= VORO_ENGINE_MAX_MODELS) {
        m->models_truncated = true;
        return;
    }
    memcpy(m->models[m->n_models++], name, (size_t)n + 1);
}

int voro_engine_scrape_sample(void *ud, const struct voro_prom_sample *s)
{
    struct voro_engine_scrape *sc = ud;
    struct voro_engine_metrics *m = &sc->m;

    for (size_t i = 0; i < s->n_labels; i++)
        for (size_t k = 0; k < sizeof(model_labels) / sizeof(model_labels[0]); k++)
            if (s->labels[i].name.len == strlen(model_labels[k]) &&
                memcmp(s->labels[i].name.ptr, model_labels[k], s->labels[i].name.len) == 0)
                note_model(m, &s->labels[i]);

    if (s->has_timestamp && (!m->has_timestamp || s->timestamp_ms > m->newest_timestamp_ms)) {
        m->has_timestamp = true;
        m->newest_timestamp_ms = s->timestamp_ms;
    }
    if (!isfinite(s->value) || sc->map == NULL)
        return 0;
    for (size_t r = 0; r < sc->map->n; r++) {
        const struct voro_engine_map_entry *e = &sc->map->rows[r];
        if (e->metric_len != s->name.len || memcmp(e->metric, s->name.ptr, s->name.len) != 0)
            continue;
        if (e->label[0] != '\0') {
            const struct voro_prom_label *l = voro_prom_label_get(s, e->label);
            if (l == NULL || !label_value_eq(l, e->label_value))
                continue;
        }
        double v = s->value * e->scale;
        if (sc->acc[r].n == 0 || v > sc->acc[r].max)
            sc->acc[r].max = v;
        sc->acc[r].sum += v;
        sc->acc[r].n++;
    }
    return 0;
}

static double clamp01(double v)
{
    return v < 0 ? 0 : v > 1 ? 1 : v;
}

void voro_engine_scrape_end(const struct voro_engine_scrape *sc, struct voro_engine_metrics *out)
{
    *out = sc->m;
    out->present = 0;
    for (int f = 0; f < VORO_ENGINE_NFIELDS; f++)
        *field_ptr(out, (enum voro_engine_field)f) = 0;
    for (size_t r = 0; sc->map != NULL && r < sc->map->n; r++) {
        const struct voro_engine_map_entry *e = &sc->map->rows[r];
        if (sc->acc[r].n == 0 || (out->present & VORO_ENGINE_HAS(e->field)))
            continue;
        double v = e->agg == VORO_ENGINE_AGG_MAX ? sc->acc[r].max
                 : e->agg == VORO_ENGINE_AGG_AVG ? sc->acc[r].sum / sc->acc[r].n
                                                 : sc->acc[r].sum;
        *field_ptr(out, e->field) = v;
        out->present |= VORO_ENGINE_HAS(e->field);
    }
    uint32_t both = VORO_ENGINE_HAS(VORO_ENGINE_GPU_MEM_USED) | VORO_ENGINE_HAS(VORO_ENGINE_GPU_MEM_TOTAL);
    if (!(out->present & VORO_ENGINE_HAS(VORO_ENGINE_GPU_MEM_FREE)) && (out->present & both) == both) {
        double free_b = out->gpu_mem_total_bytes - out->gpu_mem_used_bytes;
        out->gpu_mem_free_bytes = free_b > 0 ? free_b : 0;
        out->present |= VORO_ENGINE_HAS(VORO_ENGINE_GPU_MEM_FREE);
    }
    out->kv_cache_usage = clamp01(out->kv_cache_usage);
    out->gpu_util = clamp01(out->gpu_util);
}

int voro_engine_metrics_parse(const struct voro_engine_map *map, struct voro_prom_parser *p, const char *buf,
                              size_t len, const char *content_type, struct voro_engine_metrics *out)
{
    /* The scrape state is ~4 KiB: fine on a scraper thread's stack, and it keeps this reentrant. */
    struct voro_engine_scrape sc;
    struct voro_prom_opts o = {.format = content_type != NULL && content_type[0] != '\0'
                                             ? voro_prom_detect_format(buf, len, content_type)
                                             : VORO_PROM_FMT_AUTO};
    voro_prom_parser_init(p, &o);
    voro_engine_scrape_begin(&sc, map);
    struct voro_prom_handler h = {.on_sample = voro_engine_scrape_sample, .ud = &sc};
    int rc = voro_prom_parse(p, buf, len, &h);
    voro_engine_scrape_end(&sc, out);
    return rc;
}
