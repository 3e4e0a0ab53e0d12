/* Unit tests for engine-metrics extraction: real dumps per engine, aggregation rules, custom mapping rows. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/engine_metrics.h"

#define FIXTURES VORO_FIXTURES_DIR
#define MIB 1048576.0

static struct voro_prom_parser parser;
static struct voro_engine_map defmap;

static char *load_fixture(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", FIXTURES, name);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot read %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void extract_fixture(const char *name, const struct voro_engine_map *map, struct voro_engine_metrics *m)
{
    size_t len;
    char *buf = load_fixture(name, &len);
    int rc = voro_engine_metrics_parse(map, &parser, buf, len, NULL, m);
    if (rc != 0)
        fail_msg("%s: %d at line %u: %s", name, rc, parser.err_line, parser.err_reason);
    free(buf);
}

static void extract_text(const char *text, const struct voro_engine_map *map, struct voro_engine_metrics *m)
{
    assert_int_equal(voro_engine_metrics_parse(map, &parser, text, strlen(text), NULL, m), 0);
}

#define HAS(m, f) (((m).present & VORO_ENGINE_HAS(f)) != 0)

static int setup(void **state)
{
    (void)state;
    voro_engine_map_init(&defmap);
    return voro_engine_map_add_defaults(&defmap);
}

static void test_vllm(void **state)
{
    (void)state;
    struct voro_engine_metrics m;
    extract_fixture("vllm.prom", &defmap, &m);
    assert_true(HAS(m, VORO_ENGINE_QUEUE_DEPTH) && m.queue_depth == 0.0);
    assert_true(HAS(m, VORO_ENGINE_RUNNING) && m.running == 0.0);
    assert_true(HAS(m, VORO_ENGINE_KV_CACHE_USAGE) && m.kv_cache_usage == 0.0);
    assert_false(HAS(m, VORO_ENGINE_GPU_UTIL));
    assert_false(HAS(m, VORO_ENGINE_GPU_MEM_USED));
    assert_false(HAS(m, VORO_ENGINE_GPU_MEM_FREE));
    assert_false(HAS(m, VORO_ENGINE_XID_ERRORS));
    assert_int_equal(m.n_models, 1);
    assert_string_equal(m.models[0], "facebook/opt-125m");
    assert_false(m.models_truncated);
    assert_false(m.has_timestamp);
}

static void test_sglang(void **state)
{
    (void)state;
    struct voro_engine_metrics m;
    extract_fixture("sglang.prom", &defmap, &m);
    assert_true(HAS(m, VORO_ENGINE_QUEUE_DEPTH) && m.queue_depth == 2826.0);
    assert_true(HAS(m, VORO_ENGINE_RUNNING) && m.running == 162.0);
    assert_true(HAS(m, VORO_ENGINE_KV_CACHE_USAGE) && m.kv_cache_usage == 0.28);
    assert_false(HAS(m, VORO_ENGINE_GPU_UTIL));
    assert_int_equal(m.n_models, 1);
    assert_string_equal(m.models[0], "meta-llama/Llama-3.1-8B-Instruct");

    extract_fixture("sglang-datadog.prom", &defmap, &m);
    assert_true(HAS(m, VORO_ENGINE_QUEUE_DEPTH) && m.queue_depth == 0.0);
    assert_true(HAS(m, VORO_ENGINE_RUNNING) && m.running == 0.0);
    assert_true(HAS(m, VORO_ENGINE_KV_CACHE_USAGE) && m.kv_cache_usage == 0.25);
    assert_string_equal(m.models[0], "facebook/opt-125m");
}

static void test_tgi(void **state)
{
    (void)state;
    struct voro_engine_metrics m;
    extract_fixture("tgi.prom", &defmap, &m);
    assert_true(HAS(m, VORO_ENGINE_QUEUE_DEPTH) && m.queue_depth == 0.0);
    assert_true(HAS(m, VORO_ENGINE_RUNNING) && m.running == 0.0);
    assert_false(HAS(m, VORO_ENGINE_KV_CACHE_USAGE));
    assert_int_equal(m.present, VORO_ENGINE_HAS(VORO_ENGINE_QUEUE_DEPTH) | VORO_ENGINE_HAS(VORO_ENGINE_RUNNING));
}

static void test_triton(void **state)
{
    (void)state;
    struct voro_engine_metrics m;
    extract_fixture("triton.prom", &defmap, &m);
    assert_true(HAS(m, VORO_ENGINE_GPU_UTIL) && m.gpu_util == 0.0);
    assert_true(HAS(m, VORO_ENGINE_GPU_MEM_USED) && m.gpu_mem_used_bytes == 4930404352.0);
    assert_true(HAS(m, VORO_ENGINE_GPU_MEM_TOTAL) && m.gpu_mem_total_bytes == 15842934784.0);
    /* free is derived: total - used */
    assert_true(HAS(m, VORO_ENGINE_GPU_MEM_FREE) && m.gpu_mem_free_bytes == 15842934784.0 - 4930404352.0);
    assert_false(HAS(m, VORO_ENGINE_QUEUE_DEPTH)); /* this older Triton has no pending-count metric */

    extract_fixture("triton-2.prom", &defmap, &m);
    assert_true(m.gpu_mem_used_bytes == 1497366528.0);

    extract_fixture("triton-3.prom", &defmap, &m);
    assert_true(HAS(m, VORO_ENGINE_QUEUE_DEPTH) && m.queue_depth == 0.0);
    assert_true(m.gpu_mem_used_bytes == 266338304.0 && m.gpu_mem_total_bytes == 16106127360.0);
    assert_true(m.gpu_mem_free_bytes == 16106127360.0 - 266338304.0);
    assert_int_equal(m.n_models, 8); /* Triton's `model` label */
    assert_false(m.models_truncated);
}

static void test_dcgm(void **state)
{
    (void)state;
    struct voro_engine_metrics m;
    extract_fixture("dcgm-datadog.prom", &defmap, &m);
    assert_true(HAS(m, VORO_ENGINE_GPU_UTIL) && m.gpu_util == 0.0);
    assert_true(HAS(m, VORO_ENGINE_GPU_MEM_USED) && m.gpu_mem_used_bytes == 0.0);
    assert_true(HAS(m, VORO_ENGINE_GPU_MEM_FREE) && m.gpu_mem_free_bytes == 15109.0 * MIB);
    assert_true(HAS(m, VORO_ENGINE_GPU_MEM_TOTAL) && m.gpu_mem_total_bytes == 15109.0 * MIB);
    assert_true(HAS(m, VORO_ENGINE_XID_ERRORS) && m.xid_errors == 0.0);
    assert_false(HAS(m, VORO_ENGINE_QUEUE_DEPTH));
    assert_int_equal(m.n_models, 0); /* modelName is the GPU model, not a served model */

    /* MIG: 7 full GPUs report utilisation, memory comes per MIG instance (10 series) */
    extract_fixture("dcgm-mig.prom", &defmap, &m);
    assert_true(HAS(m, VORO_ENGINE_GPU_UTIL) && m.gpu_util == 0.0);
    assert_true(m.gpu_mem_used_bytes == 44.0 * MIB);
    assert_true(m.gpu_mem_free_bytes == 628453.0 * MIB);
    assert_false(HAS(m, VORO_ENGINE_GPU_MEM_TOTAL));
    assert_true(HAS(m, VORO_ENGINE_XID_ERRORS) && m.xid_errors == 0.0);
}

/* Aggregation: SUM over models, MAX for cache usage, AVG over GPUs, MAX for the XID code. */
static void test_aggregation(void **state)
{
    (void)state;
    struct voro_engine_metrics m;
    extract_text("vllm:num_requests_waiting{model_name=\"a\"} 3\n"
                 "vllm:num_requests_waiting{model_name=\"b\"} 4\n"
                 "vllm:num_requests_running{model_name=\"a\"} 7\n"
                 "vllm:gpu_cache_usage_perc{model_name=\"a\"} 0.9\n"
                 "vllm:kv_cache_usage_perc{model_name=\"a\"} 0.25\n"
                 "vllm:kv_cache_usage_perc{model_name=\"b\"} 0.5\n"
                 "DCGM_FI_DEV_GPU_UTIL{gpu=\"0\"} 20\n"
                 "DCGM_FI_DEV_GPU_UTIL{gpu=\"1\"} 60\n"
                 "DCGM_FI_DEV_FB_USED{gpu=\"0\"} 1024\n"
                 "DCGM_FI_DEV_FB_USED{gpu=\"1\"} 2048\n"
                 "DCGM_FI_DEV_FB_FREE{gpu=\"0\"} 1\n"
                 "DCGM_FI_DEV_XID_ERRORS{gpu=\"0\"} 0\n"
                 "DCGM_FI_DEV_XID_ERRORS{gpu=\"1\"} 79\n"
                 "vllm:num_requests_waiting{model_name=\"c\"} NaN\n",
                 &defmap, &m);
    assert_true(m.queue_depth == 7.0); /* 3 + 4; NaN ignored */
    assert_true(m.running == 7.0);
    assert_true(m.kv_cache_usage == 0.5); /* kv_cache_usage_perc outranks gpu_cache_usage_perc; max */
    assert_true(fabs(m.gpu_util - 0.4) < 1e-12);   /* (20 + 60) / 2 percent */
    assert_true(m.gpu_mem_used_bytes == 3072.0 * MIB);
    assert_true(m.gpu_mem_free_bytes == 1.0 * MIB); /* exported free wins over derivation */
    assert_true(m.xid_errors == 79.0);
    assert_int_equal(m.n_models, 3);
    assert_string_equal(m.models[0], "a");
    assert_string_equal(m.models[1], "b");
    assert_string_equal(m.models[2], "c");

    /* only the older name: it is used */
    extract_text("vllm:gpu_cache_usage_perc{model_name=\"a\"} 0.75\n", &defmap, &m);
    assert_true(HAS(m, VORO_ENGINE_KV_CACHE_USAGE) && m.kv_cache_usage == 0.75);
    assert_int_equal(m.present, VORO_ENGINE_HAS(VORO_ENGINE_KV_CACHE_USAGE));

    /* out-of-range usage is clamped; timestamps are tracked for staleness */
    extract_text("sglang:token_usage 1.5 1700000000000\nnv_gpu_utilization{gpu_uuid=\"x\"} -0.1 1700000001000\n",
                 &defmap, &m);
    assert_true(m.kv_cache_usage == 1.0 && m.gpu_util == 0.0);
    assert_true(m.has_timestamp && m.newest_timestamp_ms == 1700000001000);
}

/* A custom row for an engine Voro does not know, with a label filter, and nothing else matching. */
static void test_custom_mapping(void **state)
{
    (void)state;
    struct voro_engine_map map;
    voro_engine_map_init(&map);
    assert_int_equal(voro_engine_map_add(&map, "myengine_queue", "state", "waiting", VORO_ENGINE_QUEUE_DEPTH, 1.0,
                                         VORO_ENGINE_AGG_SUM), 0);
    assert_int_equal(voro_engine_map_add(&map, "myengine_queue", "state", "active", VORO_ENGINE_RUNNING, 1.0,
                                         VORO_ENGINE_AGG_MAX), 0);
    assert_int_equal(voro_engine_map_add(&map, "myengine_kv_percent", NULL, NULL, VORO_ENGINE_KV_CACHE_USAGE, 0.01,
                                         VORO_ENGINE_AGG_AVG), 0);
    struct voro_engine_metrics m;
    extract_text("# TYPE myengine_queue gauge\n"
                 "myengine_queue{state=\"waiting\",shard=\"0\"} 5\n"
                 "myengine_queue{state=\"waiting\",shard=\"1\"} 6\n"
                 "myengine_queue{state=\"active\",shard=\"0\"} 2\n"
                 "myengine_queue{state=\"active\",shard=\"1\"} 9\n"
                 "myengine_queue{shard=\"2\"} 100\n"
                 "myengine_kv_percent{shard=\"0\"} 40\n"
                 "myengine_kv_percent{shard=\"1\"} 60\n"
                 "vllm:num_requests_waiting 1000\n",
                 &map, &m);
    assert_true(m.queue_depth == 11.0);
    assert_true(m.running == 9.0);
    assert_true(fabs(m.kv_cache_usage - 0.5) < 1e-12);
    assert_int_equal(m.present, VORO_ENGINE_HAS(VORO_ENGINE_QUEUE_DEPTH) | VORO_ENGINE_HAS(VORO_ENGINE_RUNNING) |
                                    VORO_ENGINE_HAS(VORO_ENGINE_KV_CACHE_USAGE));
    double v;
    assert_true(voro_engine_metrics_get(&m, VORO_ENGINE_RUNNING, &v) && v == 9.0);
    assert_false(voro_engine_metrics_get(&m, VORO_ENGINE_GPU_UTIL, &v));

    /* the same rows, but the filter value escaped in the exposition: compared unescaped */
    struct voro_engine_map m2;
    voro_engine_map_init(&m2);
    assert_int_equal(voro_engine_map_add(&m2, "x", "k", "a\"b", VORO_ENGINE_RUNNING, 2.0, VORO_ENGINE_AGG_SUM), 0);
    extract_text("x{k=\"a\\\"b\"} 4\nx{k=\"ab\"} 50\n", &m2, &m);
    assert_true(HAS(m, VORO_ENGINE_RUNNING) && m.running == 8.0);
}

/* One scrape state fed by two expositions (engine + DCGM exporter of the same backend). */
static void test_two_sources(void **state)
{
    (void)state;
    struct voro_engine_scrape sc;
    struct voro_engine_metrics m;
    voro_engine_scrape_begin(&sc, &defmap);
    struct voro_prom_handler h = {.on_sample = voro_engine_scrape_sample, .ud = &sc};
    static const char *const files[] = {"sglang.prom", "dcgm-mig.prom"};
    for (int i = 0; i < 2; i++) {
        size_t len;
        char *buf = load_fixture(files[i], &len);
        voro_prom_parser_init(&parser, NULL);
        assert_int_equal(voro_prom_parse(&parser, buf, len, &h), 0);
        free(buf);
    }
    voro_engine_scrape_end(&sc, &m);
    assert_true(m.queue_depth == 2826.0 && m.gpu_mem_used_bytes == 44.0 * MIB);
    assert_true(HAS(m, VORO_ENGINE_GPU_UTIL) && HAS(m, VORO_ENGINE_KV_CACHE_USAGE));
}

static void test_missing_and_errors(void **state)
{
    (void)state;
    struct voro_engine_metrics m;
    extract_fixture("prometheus-server.prom", &defmap, &m);
    assert_int_equal(m.present, 0);
    assert_true(m.queue_depth == 0.0 && m.gpu_util == 0.0);

    /* a parse error is reported and what came before it is kept */
    const char *bad = "tgi_queue_size 4\ntgi_batch_current_size{ 1\n";
    assert_int_equal(voro_engine_metrics_parse(&defmap, &parser, bad, strlen(bad), NULL, &m), -EBADMSG);
    assert_int_equal(parser.err_line, 2);
    assert_true(HAS(m, VORO_ENGINE_QUEUE_DEPTH) && m.queue_depth == 4.0);
    assert_false(HAS(m, VORO_ENGINE_RUNNING));

    /* more than 16 models: the first 16 are kept, truncation is flagged */
    char text[4096];
    size_t o = 0;
    for (int i = 0; i < 20; i++)
        o += (size_t)snprintf(text + o, sizeof(text) - o, "vllm:num_requests_running{model_name=\"m%02d\"} 1\n", i);
    extract_text(text, &defmap, &m);
    assert_int_equal(m.n_models, VORO_ENGINE_MAX_MODELS);
    assert_true(m.models_truncated);
    assert_string_equal(m.models[15], "m15");
    assert_true(m.running == 20.0);

    struct voro_engine_map map;
    voro_engine_map_init(&map);
    assert_int_equal(voro_engine_map_add(&map, "", NULL, NULL, VORO_ENGINE_RUNNING, 1, VORO_ENGINE_AGG_SUM), -EINVAL);
    assert_int_equal(voro_engine_map_add(&map, "x", "l", NULL, VORO_ENGINE_RUNNING, 1, VORO_ENGINE_AGG_SUM), -EINVAL);
    assert_int_equal(voro_engine_map_add(&map, "x", NULL, NULL, VORO_ENGINE_NFIELDS, 1, VORO_ENGINE_AGG_SUM), -EINVAL);
    assert_int_equal(voro_engine_map_add(&map, "x", NULL, NULL, VORO_ENGINE_RUNNING, NAN, VORO_ENGINE_AGG_SUM), -EINVAL);
    assert_int_equal(voro_engine_map_add(&map, "x", NULL, NULL, VORO_ENGINE_RUNNING, 0, VORO_ENGINE_AGG_SUM), -EINVAL);
    char longname[VORO_PROM_MAX_NAME + 1];
    memset(longname, 'n', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_int_equal(voro_engine_map_add(&map, longname, NULL, NULL, VORO_ENGINE_RUNNING, 1, VORO_ENGINE_AGG_SUM),
                     -ENAMETOOLONG);
    for (int i = 0; i < VORO_ENGINE_MAP_MAX; i++)
        assert_int_equal(voro_engine_map_add(&map, "x", NULL, NULL, VORO_ENGINE_RUNNING, 1, VORO_ENGINE_AGG_SUM), 0);
    assert_int_equal(voro_engine_map_add(&map, "x", NULL, NULL, VORO_ENGINE_RUNNING, 1, VORO_ENGINE_AGG_SUM), -ENOSPC);

    enum voro_engine_field f;
    enum voro_engine_agg a;
    assert_int_equal(voro_engine_field_from_name("gpu_mem_free_bytes", &f), 0);
    assert_int_equal(f, VORO_ENGINE_GPU_MEM_FREE);
    assert_string_equal(voro_engine_field_name(f), "gpu_mem_free_bytes");
    assert_int_equal(voro_engine_field_from_name("nope", &f), -EINVAL);
    assert_int_equal(voro_engine_agg_from_name("avg", &a), 0);
    assert_int_equal(a, VORO_ENGINE_AGG_AVG);
    assert_int_equal(voro_engine_agg_from_name("median", &a), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vllm),          cmocka_unit_test(test_sglang),
        cmocka_unit_test(test_tgi),           cmocka_unit_test(test_triton),
        cmocka_unit_test(test_dcgm),          cmocka_unit_test(test_aggregation),
        cmocka_unit_test(test_custom_mapping), cmocka_unit_test(test_two_sources),
        cmocka_unit_test(test_missing_and_errors),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
