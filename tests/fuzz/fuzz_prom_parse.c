/* libFuzzer target: arbitrary bytes through the Prometheus text and OpenMetrics parsers and the engine extractor. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/engine_metrics.h"
#include "proto/prom_parse.h"

static void check(int cond)
{
    if (!cond)
        abort();
}

static const char *in_buf;
static size_t in_len;
static char scratch[4096];

static int in_range(struct voro_prom_slice s)
{
    const char *b = in_buf, *e = in_buf + in_len;
    const char *sb = scratch, *se = scratch + sizeof(scratch);
    return (s.ptr >= b && s.ptr + s.len <= e) || (s.ptr >= sb && s.ptr + s.len <= se) || s.len == 0;
}

static int on_sample(void *ud, const struct voro_prom_sample *s)
{
    size_t *count = ud;
    (*count)++;
    check(s->name.len > 0 && s->name.len < VORO_PROM_MAX_NAME && in_range(s->name));
    check(s->family.len > 0 && s->family.len <= s->name.len && s->family.ptr == s->name.ptr);
    check(s->n_labels <= VORO_PROM_MAX_LABELS);
    for (size_t i = 0; i < s->n_labels; i++) {
        check(s->labels[i].name.len > 0 && in_range(s->labels[i].name));
        check(in_range(s->labels[i].value) && in_range(s->labels[i].raw));
        check(s->labels[i].value.len <= s->labels[i].raw.len);
    }
    return 0;
}

static int on_meta(void *ud, const struct voro_prom_meta *m)
{
    (void)ud;
    check(m->name.len > 0 && in_range(m->name) && in_range(m->text));
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct voro_prom_parser p; /* ~100 KiB: keep it off the stack */
    static struct voro_engine_map map;
    static int map_ready;
    if (!map_ready) {
        voro_engine_map_init(&map);
        check(voro_engine_map_add_defaults(&map) == 0);
        map_ready = 1;
    }
    in_buf = (const char *)data;
    in_len = size;

    static const enum voro_prom_format fmts[] = {VORO_PROM_FMT_TEXT, VORO_PROM_FMT_OPENMETRICS, VORO_PROM_FMT_AUTO};
    for (size_t f = 0; f < 3; f++) {
        for (unsigned strict = 0; strict < 2; strict++) {
            size_t count = 0;
            struct voro_prom_opts o = {.format = fmts[f], .flags = strict ? VORO_PROM_STRICT : 0,
                                       .max_line = 1024, .scratch = scratch, .scratch_len = sizeof(scratch)};
            struct voro_prom_handler h = {.on_sample = on_sample, .on_meta = on_meta, .ud = &count};
            voro_prom_parser_init(&p, &o);
            int rc = voro_prom_parse(&p, in_buf, size, &h);
            check(rc == 0 || rc == -EBADMSG || rc == -E2BIG);
            if (rc != 0)
                check(p.err == rc && p.err_reason != NULL && p.err_line >= 1);
            check(count <= size);

            /* incremental: split at a data-derived point; the verdict must not change */
            if (fmts[f] != VORO_PROM_FMT_AUTO && size > 0) {
                size_t cut = data[0] % (size + 1), count2 = 0;
                struct voro_prom_handler h2 = {.on_sample = on_sample, .on_meta = on_meta, .ud = &count2};
                voro_prom_parser_init(&p, &o);
                ssize_t used = voro_prom_feed(&p, in_buf, cut, &h2);
                int rc2;
                if (used < 0) {
                    rc2 = (int)used;
                } else {
                    check((size_t)used <= cut);
                    rc2 = voro_prom_finish(&p, in_buf + used, size - (size_t)used, &h2);
                }
                check(rc2 == rc && count2 == count);
            }
        }
    }

    struct voro_engine_metrics m;
    int rc = voro_engine_metrics_parse(&map, &p, in_buf, size, NULL, &m);
    check(rc == 0 || rc == -EBADMSG || rc == -E2BIG);
    check(m.n_models <= VORO_ENGINE_MAX_MODELS);
    check(m.kv_cache_usage >= 0 && m.kv_cache_usage <= 1 && m.gpu_util >= 0 && m.gpu_util <= 1);
    for (unsigned i = 0; i < m.n_models; i++)
        check(memchr(m.models[i], '\0', VORO_ENGINE_MODEL_NAME_MAX) != NULL);
    return 0;
}
