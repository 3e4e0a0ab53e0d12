/* gpusim: /metrics in Prometheus text format, vLLM and DCGM exporter names computed from the engine state. */
#include "tests/gpusim/gpusim.h"

#include <inttypes.h>
#include <math.h>

/* Bucket bounds as vLLM (v1 engine) uses them. */
static const double ttft_le[GPUSIM_TTFT_BUCKETS] = {0.001, 0.005, 0.01, 0.02,  0.04,  0.06,  0.08, 0.1,
                                                    0.25,  0.5,   0.75, 1.0,   2.5,   5.0,   7.5,  10.0,
                                                    20.0,  40.0,  80.0, 160.0, 640.0, 2560.0};
static const double e2e_le[GPUSIM_E2E_BUCKETS] = {0.3,   0.5,   0.8,   1.0,   1.5,    2.5,    5.0,
                                                  10.0,  15.0,  20.0,  30.0,  40.0,   50.0,   60.0,
                                                  120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0, 15360.0};

static void observe(uint64_t *buckets, const double *le, unsigned n, double v)
{
    for (unsigned i = 0; i < n; i++)
        if (v <= le[i]) {
            buckets[i]++;
            return;
        }
}

void voro_gpusim_metrics_observe_ttft(struct gpusim_stats *st, double seconds)
{
    observe(st->ttft_buckets, ttft_le, GPUSIM_TTFT_BUCKETS, seconds);
    st->ttft_count++;
    st->ttft_sum += seconds;
}

void voro_gpusim_metrics_observe_e2e(struct gpusim_stats *st, double seconds)
{
    observe(st->e2e_buckets, e2e_le, GPUSIM_E2E_BUCKETS, seconds);
    st->e2e_count++;
    st->e2e_sum += seconds;
}

static void head(struct voro_strbuf *sb, const char *name, const char *type, const char *help)
{
    voro_strbuf_printf(sb, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Buckets are stored per bucket; Prometheus wants them cumulative. */
static void histogram(struct voro_strbuf *sb, const char *name, const char *help, const char *model,
                      const uint64_t *buckets, const double *le, unsigned n, uint64_t count, double sum)
{
    head(sb, name, "histogram", help);
    uint64_t cum = 0;
    for (unsigned i = 0; i < n; i++) {
        cum += buckets[i];
        /* As Python's prometheus_client prints them: "1.0", "0.001". */
        voro_strbuf_printf(sb,
                           le[i] == floor(le[i]) ? "%s_bucket{le=\"%.1f\",model_name=\"%s\"} %" PRIu64 "\n"
                                                 : "%s_bucket{le=\"%g\",model_name=\"%s\"} %" PRIu64 "\n",
                           name, le[i], model, cum);
    }
    voro_strbuf_printf(sb, "%s_bucket{le=\"+Inf\",model_name=\"%s\"} %" PRIu64 "\n", name, model, count);
    voro_strbuf_printf(sb, "%s_count{model_name=\"%s\"} %" PRIu64 "\n", name, model, count);
    voro_strbuf_printf(sb, "%s_sum{model_name=\"%s\"} %.6f\n", name, model, sum);
}

void voro_gpusim_metrics_render(struct gpusim_server *srv, struct voro_strbuf *sb)
{
    const struct gpusim_config *cfg = &srv->cfg;
    const struct gpusim_stats *st = &srv->stats;
    /* One engine serves the base model and its adapters: vLLM labels engine-wide metrics with the
     * served (first) model name. */
    const char *model = cfg->models.m[0].id;
    for (unsigned i = cfg->models.n; i-- > 0;)
        if (!cfg->models.m[i].parent[0])
            model = cfg->models.m[i].id;
    unsigned running = 0, waiting = 0;
    uint64_t kv = 0;
    for (unsigned i = 0; i < cfg->gpus; i++) {
        running += srv->gpus[i].n_running;
        waiting += srv->gpus[i].n_waiting;
        kv += srv->gpus[i].kv_tokens;
    }
    double cap = (double)cfg->kv_blocks * GPUSIM_KV_BLOCK_TOKENS * cfg->gpus;
    double kv_usage = cap > 0 ? (double)kv / cap : 0;
    if (kv_usage > 1)
        kv_usage = 1;

    voro_strbuf_reset(sb);
    head(sb, "vllm:cache_config_info", "gauge", "Information of the LLMEngine CacheConfig");
    voro_strbuf_printf(sb, "vllm:cache_config_info{block_size=\"%d\",num_gpu_blocks=\"%" PRIu64 "\"} 1.0\n",
                       GPUSIM_KV_BLOCK_TOKENS, cfg->kv_blocks);
    head(sb, "vllm:num_requests_running", "gauge", "Number of requests in model execution batches.");
    voro_strbuf_printf(sb, "vllm:num_requests_running{model_name=\"%s\"} %u.0\n", model, running);
    head(sb, "vllm:num_requests_waiting", "gauge", "Number of requests waiting to be processed.");
    voro_strbuf_printf(sb, "vllm:num_requests_waiting{model_name=\"%s\"} %u.0\n", model, waiting);
    head(sb, "vllm:kv_cache_usage_perc", "gauge", "KV-cache usage. 1 means 100 percent usage.");
    voro_strbuf_printf(sb, "vllm:kv_cache_usage_perc{model_name=\"%s\"} %.6f\n", model, kv_usage);
    head(sb, "vllm:gpu_cache_usage_perc", "gauge", "GPU KV-cache usage. 1 means 100 percent usage.");
    voro_strbuf_printf(sb, "vllm:gpu_cache_usage_perc{model_name=\"%s\"} %.6f\n", model, kv_usage);
    head(sb, "vllm:prompt_tokens_total", "counter", "Number of prefill tokens processed.");
    voro_strbuf_printf(sb, "vllm:prompt_tokens_total{model_name=\"%s\"} %" PRIu64 ".0\n", model, st->prompt_tokens);
    head(sb, "vllm:generation_tokens_total", "counter", "Number of generation tokens processed.");
    voro_strbuf_printf(sb, "vllm:generation_tokens_total{model_name=\"%s\"} %" PRIu64 ".0\n", model,
                       st->generation_tokens);
    head(sb, "vllm:request_success_total", "counter", "Count of successfully processed requests.");
    voro_strbuf_printf(sb, "vllm:request_success_total{finished_reason=\"length\",model_name=\"%s\"} %" PRIu64 ".0\n",
                       model, st->success_length);
    histogram(sb, "vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.", model,
              st->ttft_buckets, ttft_le, GPUSIM_TTFT_BUCKETS, st->ttft_count, st->ttft_sum);
    histogram(sb, "vllm:e2e_request_latency_seconds", "Histogram of e2e request latency in seconds.", model,
              st->e2e_buckets, e2e_le, GPUSIM_E2E_BUCKETS, st->e2e_count, st->e2e_sum);

    head(sb, "gpusim_requests_failed_total", "counter", "Requests answered 500 by the fail_rate knob.");
    voro_strbuf_printf(sb, "gpusim_requests_failed_total %" PRIu64 "\n", st->failed_injected);
    head(sb, "gpusim_requests_cancelled_total", "counter", "Requests whose client went away before the answer.");
    voro_strbuf_printf(sb, "gpusim_requests_cancelled_total %" PRIu64 "\n", st->cancelled);
    head(sb, "gpusim_embeddings_total", "counter", "Embedding requests answered.");
    voro_strbuf_printf(sb, "gpusim_embeddings_total %" PRIu64 "\n", st->embeddings);
    head(sb, "gpusim_connections", "gauge", "Open client connections.");
    voro_strbuf_printf(sb, "gpusim_connections %u\n", srv->n_conns);

    /* DCGM exporter names, one series per simulated GPU. */
    static const struct {
        const char *name, *type, *help;
    } dcgm[] = {
        {"DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %)."},
        {"DCGM_FI_DEV_FB_USED", "gauge", "Framebuffer memory used (in MiB)."},
        {"DCGM_FI_DEV_FB_FREE", "gauge", "Framebuffer memory free (in MiB)."},
        {"DCGM_FI_DEV_XID_ERRORS", "gauge", "Value of the last XID error encountered."},
    };
    for (unsigned m = 0; m < sizeof(dcgm) / sizeof(dcgm[0]); m++) {
        head(sb, dcgm[m].name, dcgm[m].type, dcgm[m].help);
        for (unsigned i = 0; i < cfg->gpus; i++) {
            const struct gpusim_gpu *g = &srv->gpus[i];
            double gcap = (double)cfg->kv_blocks * GPUSIM_KV_BLOCK_TOKENS;
            double usage = gcap > 0 ? (double)g->kv_tokens / gcap : 0;
            if (usage > 1)
                usage = 1;
            /* Weights take 40% of the frame buffer; the KV cache may use the next 50%. */
            uint64_t used = (uint64_t)llround((double)cfg->fb_mib * (0.4 + 0.5 * usage));
            uint64_t v = 0;
            switch (m) {
            case 0: v = g->n_running ? (uint64_t)llround(30.0 + 70.0 * g->n_running / cfg->max_batch) : 0; break;
            case 1: v = used; break;
            case 2: v = cfg->fb_mib - used; break;
            default: v = cfg->knobs.xid; break;
            }
            voro_strbuf_printf(sb,
                               "%s{gpu=\"%u\",UUID=\"GPU-gpusim-%s-%u\",device=\"nvidia%u\",modelName=\"gpusim\","
                               "Hostname=\"%s\"} %" PRIu64 "\n",
                               dcgm[m].name, i, cfg->name, i, i, cfg->name, v);
        }
    }
}
