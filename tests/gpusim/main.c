/* gpusim: command line, start-up and clean shutdown of the simulated inference server. */
#include "tests/gpusim/gpusim.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: gpusim [options]\n"
               "  --host ADDR         listen address (default 127.0.0.1)\n"
               "  --port N            listen port (default 8000; 0 = any, printed on stderr)\n"
               "  --name NAME         backend name: X-Gpusim-Name header and system_fingerprint (default gpusim)\n"
               "  --models LIST       served models, e.g. 'llama,llama-big@v2,lora:llama-sql' (default gpusim-8b)\n"
               "  --gpus N            simulated GPUs, each with its own batch and queue (default 1)\n"
               "  --max-batch B       sequences per decode step per GPU (default 16)\n"
               "  --step-ms S         decode step = S * (1 + 0.02 * batch) ms (default 20)\n"
               "  --prefill-ms P      prefill time per 100 prompt tokens, in the step a request joins (default 10)\n"
               "  --kv-blocks K       KV cache per GPU in blocks of 16 tokens (default 2048)\n"
               "  --slow F            multiplies step and prefill time (default 1)\n"
               "  --fail-rate R       share of inference requests answered 500 (default 0)\n"
               "  --seed N            seed of the fail_rate generator (default 1)\n"
               "  --hang              accept requests and never answer them (except /control)\n"
               "  --embed-dim D       embedding dimension, 1..1024 (default 256)\n"
               "  --fb-mib M          simulated GPU memory in MiB for DCGM metrics (default 81920)\n");
}

static int parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || *s == '-' || v < lo || v > hi)
        return -EINVAL;
    *out = v;
    return 0;
}

static int parse_dbl(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi))
        return -EINVAL;
    *out = v;
    return 0;
}

static bool name_ok(const char *s)
{
    if (!*s || strlen(s) >= GPUSIM_MAX_NAME)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '-' ||
              *s == '_' || *s == '.'))
            return false;
    return true;
}

static int parse_args(int argc, char **argv, struct gpusim_config *cfg)
{
    enum {
        O_HOST = 256,
        O_PORT,
        O_NAME,
        O_MODELS,
        O_GPUS,
        O_BATCH,
        O_STEP,
        O_PREFILL,
        O_KV,
        O_SLOW,
        O_FAIL,
        O_SEED,
        O_HANG,
        O_EMBED,
        O_FB,
        O_HELP
    };
    static const struct option opts[] = {
        {"host", required_argument, 0, O_HOST},
        {"port", required_argument, 0, O_PORT},
        {"name", required_argument, 0, O_NAME},
        {"models", required_argument, 0, O_MODELS},
        {"gpus", required_argument, 0, O_GPUS},
        {"max-batch", required_argument, 0, O_BATCH},
        {"step-ms", required_argument, 0, O_STEP},
        {"prefill-ms", required_argument, 0, O_PREFILL},
        {"kv-blocks", required_argument, 0, O_KV},
        {"slow", required_argument, 0, O_SLOW},
        {"fail-rate", required_argument, 0, O_FAIL},
        {"seed", required_argument, 0, O_SEED},
        {"hang", no_argument, 0, O_HANG},
        {"embed-dim", required_argument, 0, O_EMBED},
        {"fb-mib", required_argument, 0, O_FB},
        {"help", no_argument, 0, O_HELP},
        {0, 0, 0, 0},
    };
    uint64_t u;
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int rc = 0;
        switch (o) {
        case O_HOST:
            if (strlen(optarg) >= sizeof(cfg->host))
                rc = -EINVAL;
            else
                snprintf(cfg->host, sizeof(cfg->host), "%s", optarg);
            break;
        case O_PORT:
            rc = parse_u64(optarg, 0, 65535, &u);
            cfg->port = (int)u;
            break;
        case O_NAME:
            if (!name_ok(optarg))
                rc = -EINVAL;
            else
                snprintf(cfg->name, sizeof(cfg->name), "%s", optarg);
            break;
        case O_MODELS: rc = voro_gpusim_models_parse(optarg, strlen(optarg), &cfg->models); break;
        case O_GPUS:
            rc = parse_u64(optarg, 1, GPUSIM_MAX_GPUS, &u);
            cfg->gpus = (unsigned)u;
            break;
        case O_BATCH:
            rc = parse_u64(optarg, 1, GPUSIM_MAX_BATCH, &u);
            cfg->max_batch = (unsigned)u;
            break;
        case O_STEP: rc = parse_dbl(optarg, 0, 1e6, &cfg->knobs.step_ms); break;
        case O_PREFILL: rc = parse_dbl(optarg, 0, 1e6, &cfg->knobs.prefill_ms); break;
        case O_KV: rc = parse_u64(optarg, 1, 1ull << 32, &cfg->kv_blocks); break;
        case O_SLOW: rc = parse_dbl(optarg, 0.001, 1e6, &cfg->knobs.slow); break;
        case O_FAIL: rc = parse_dbl(optarg, 0, 1, &cfg->knobs.fail_rate); break;
        case O_SEED: rc = parse_u64(optarg, 0, UINT64_MAX, &cfg->seed); break;
        case O_HANG: cfg->knobs.hang = true; break;
        case O_EMBED:
            rc = parse_u64(optarg, 1, 1024, &u);
            cfg->embed_dim = (unsigned)u;
            break;
        case O_FB: rc = parse_u64(optarg, 1024, 1ull << 24, &cfg->fb_mib); break;
        case O_HELP: usage(stdout); exit(0);
        default: usage(stderr); return -EINVAL;
        }
        if (rc) {
            fprintf(stderr, "gpusim: invalid value for --%s: '%s'\n", opts[o - O_HOST].name, optarg);
            return -EINVAL;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return -EINVAL;
    }
    return 0;
}

static void on_walk_close(uv_handle_t *h, void *arg)
{
    struct gpusim_server *srv = arg;
    if (uv_is_closing(h))
        return;
    if (h->type == UV_TCP && h != (uv_handle_t *)&srv->listener)
        voro_gpusim_conn_close(h->data); /* its close callback frees the connection */
    else
        uv_close(h, NULL);
}

static void on_signal(uv_signal_t *sig, int signum)
{
    (void)signum;
    /* Connections' close callbacks free them; every other handle is embedded in the server. */
    uv_stop(sig->loop);
}

int main(int argc, char **argv)
{
    static struct gpusim_server srv; /* large (batch tables, GPUs): keep it off the stack */
    struct gpusim_config *cfg = &srv.cfg;
    uv_loop_t loop;
    uv_signal_t sigterm, sigint;
    int rc;

    snprintf(cfg->host, sizeof(cfg->host), "127.0.0.1");
    cfg->port = 8000;
    cfg->gpus = 1;
    cfg->max_batch = 16;
    cfg->kv_blocks = 2048;
    cfg->embed_dim = 256;
    cfg->seed = 1;
    cfg->fb_mib = 81920;
    snprintf(cfg->name, sizeof(cfg->name), "gpusim");
    cfg->knobs.slow = 1;
    cfg->knobs.step_ms = 20;
    cfg->knobs.prefill_ms = 10;
    voro_gpusim_models_parse("gpusim-8b", 9, &cfg->models);
    if (parse_args(argc, argv, cfg) < 0)
        return 2;

    signal(SIGPIPE, SIG_IGN);
    if (uv_loop_init(&loop) < 0)
        return 1;
    srv.loop = &loop;
    srv.rng = cfg->seed ? cfg->seed : 0x9E3779B97F4A7C15ULL;
    srv.start_unix = (uint64_t)time(NULL);
    voro_strbuf_init(&srv.scratch);
    rc = voro_gpusim_engine_init(&srv);
    if (rc < 0)
        goto out_loop;
    rc = voro_gpusim_server_listen(&srv);
    if (rc < 0) {
        fprintf(stderr, "gpusim: cannot listen on %s:%d: %s\n", cfg->host, cfg->port, uv_strerror(rc));
        goto out_handles;
    }
    uv_signal_init(&loop, &sigterm);
    uv_signal_init(&loop, &sigint);
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    uv_signal_start(&sigint, on_signal, SIGINT);
    fprintf(stderr, "gpusim: %s listening on %s:%d (gpus=%u max_batch=%u step_ms=%g prefill_ms=%g models=%u)\n",
            cfg->name, cfg->host, cfg->port, cfg->gpus, cfg->max_batch, cfg->knobs.step_ms, cfg->knobs.prefill_ms,
            cfg->models.n);

    uv_run(&loop, UV_RUN_DEFAULT);
    rc = 0;
out_handles:
    /* Clean shutdown (so ASan can check for leaks): close every handle and let the close
     * callbacks run; connections leave the engine there, so the engine goes last. */
    uv_walk(&loop, on_walk_close, &srv);
    uv_run(&loop, UV_RUN_DEFAULT);
    voro_gpusim_engine_close(&srv);
out_loop:
    voro_gpusim_server_free_conns(&srv);
    voro_strbuf_free(&srv.scratch);
    uv_loop_close(&loop);
    return rc < 0 ? 1 : 0;
}
