/* Health verdicts: one timer per server drives TCP/HTTP/script checks and rise/fall; ejection, warm-up and slow start compose the published verdict. */
#include "cluster/health_check.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "cluster/http_probe.h"
#include "cluster/outlier.h"

#define MAINT_MS 100
#define RAMP_START_PERMILLE 50
#define WARM_MAX_MODELS 16
#define SCRIPT_MAX_ARGS 32

struct hc_server;

/* One connect attempt; outlives its server when the server is removed mid-probe. */
struct hc_probe {
    uv_tcp_t tcp;
    uv_connect_t req;
    struct hc_server *srv; /* NULL once detached */
};

/* One script run; outlives its server (killed, then closed from its exit callback). */
struct hc_proc {
    uv_process_t proc;
    struct hc_server *srv; /* NULL once detached */
};

struct hc_warm_req {
    struct hc_server *srv;
    struct voro_http_probe *probe; /* NULL when answered or never started */
};

struct hc_server {
    struct voro_health *h;
    uv_timer_t timer;
    struct hc_probe *probe;        /* TCP check in flight */
    struct voro_http_probe *http;  /* HTTP check in flight */
    struct hc_proc *proc;          /* script check in flight */
    char pool_name[VORO_NAME_MAX];
    char addr_text[VORO_ADDR_TEXT_MAX];
    struct sockaddr_storage ss;
    size_t pool, server;
    struct voro_health_config cfg;
    struct voro_pool_l7_config l7;
    uint64_t check_start;
    uint32_t oks, fails;
    bool active_up;   /* the check's rise/fall verdict */
    bool published;   /* the verdict last announced */
    const char *check_reason;
    const char *up_reason; /* overrides check_reason while up ("warm-up timed out", "ejection ended") */
    const char *reason;    /* published reason */
    char check_buf[96];
    char eject_buf[96];
    char warm_buf[64];
    /* warm-up */
    char (*models)[VORO_NAME_MAX];
    size_t n_models;
    bool need_warm, warming, warm_timed_out, warm_failed;
    size_t warm_pending;
    struct hc_warm_req warm[WARM_MAX_MODELS];
    /* slow start */
    bool ramping, pending_ramp;
    uint64_t ramp_start;
};

struct hc_pool {
    struct hc_server **servers;
    size_t n;
    struct voro_outlier out;
};

struct voro_health {
    uv_loop_t *loop;
    voro_health_cb cb;
    voro_health_weight_cb weight_cb;
    void *ctx;
    struct hc_pool *pools;
    size_t n_pools;
    uint64_t rng;
    uv_timer_t *maint; /* ejection expiry and ramps; freed by its close callback */
    bool configured;   /* a config was applied before: new servers slow-start */
};

static uint32_t hc_rand(struct voro_health *h)
{
    /* xorshift64*: jitter only, no need for quality */
    h->rng ^= h->rng >> 12;
    h->rng ^= h->rng << 25;
    h->rng ^= h->rng >> 27;
    return (uint32_t)((h->rng * 0x2545F4914F6CDD1DULL) >> 32);
}

static void maint_schedule(struct voro_health *h);

static bool server_ejected(const struct hc_server *s)
{
    const struct voro_health *h = s->h;
    return s->pool < h->n_pools && h->pools[s->pool].servers && h->pools[s->pool].n > s->server &&
           h->pools[s->pool].servers[s->server] == s && voro_outlier_is_ejected(&h->pools[s->pool].out, s->server);
}

static void notify(struct hc_server *s)
{
    if (s->h->cb)
        s->h->cb(s->h->ctx, s->pool, s->server, s->published, s->reason);
}

static void set_weight(struct hc_server *s, uint32_t permille)
{
    if (s->h->weight_cb)
        s->h->weight_cb(s->h->ctx, s->pool, s->server, permille);
}

static void ramp_start(struct hc_server *s)
{
    if (!s->l7.slow_start_ms)
        return;
    s->ramping = true;
    s->ramp_start = uv_now(s->h->loop);
    set_weight(s, RAMP_START_PERMILLE);
    maint_schedule(s->h);
}

static const char *current_reason(struct hc_server *s)
{
    if (!s->active_up)
        return s->check_reason;
    if (server_ejected(s))
        return s->eject_buf;
    if (s->need_warm)
        return s->warm_buf[0] ? s->warm_buf : "warming up";
    return s->up_reason ? s->up_reason : s->check_reason;
}

/* Recomputes the published verdict; announces a change. */
static void publish(struct hc_server *s)
{
    bool v = s->active_up && !server_ejected(s) && !s->need_warm;
    s->reason = current_reason(s);
    if (v == s->published)
        return;
    s->published = v;
    if (v)
        ramp_start(s); /* weight first, so the first picks see the low weight */
    else
        s->ramping = false;
    notify(s);
}

/* ---- warm-up ---------------------------------------------------------------------------- */

static void warm_cancel(struct hc_server *s)
{
    for (size_t i = 0; i < WARM_MAX_MODELS; i++)
        if (s->warm[i].probe) {
            voro_http_probe_cancel(s->warm[i].probe);
            s->warm[i].probe = NULL;
        }
    s->warming = false;
    s->warm_pending = 0;
}

static void warm_done(struct hc_server *s)
{
    s->warming = false;
    if (s->warm_failed) {
        /* stays down; the next passing check retries */
        publish(s);
        return;
    }
    s->need_warm = false;
    s->warm_buf[0] = '\0';
    s->up_reason = s->warm_timed_out ? "warm-up timed out" : NULL;
    publish(s);
}

static void on_warm(void *ctx, const struct voro_http_result *r)
{
    struct hc_warm_req *w = ctx;
    struct hc_server *s = w->srv;
    w->probe = NULL;
    if (r->err == UV_ETIMEDOUT) {
        s->warm_timed_out = true;
    } else if (r->err) {
        s->warm_failed = true;
        snprintf(s->warm_buf, sizeof(s->warm_buf), "warm-up failed: %s", r->reason);
    } else if (r->status < 200 || r->status > 299) {
        s->warm_failed = true;
        snprintf(s->warm_buf, sizeof(s->warm_buf), "warm-up failed: http %d", r->status);
    }
    if (--s->warm_pending == 0)
        warm_done(s);
}

static void warm_start(struct hc_server *s)
{
    s->warming = true;
    s->warm_timed_out = s->warm_failed = false;
    s->warm_buf[0] = '\0';
    s->warm_pending = 0;
    uint32_t timeout = s->cfg.timeout_ms * 10;
    for (size_t i = 0; i < s->n_models && i < WARM_MAX_MODELS; i++) {
        char body[VORO_NAME_MAX + 96];
        int n = snprintf(body, sizeof(body), "{\"model\":\"%s\",\"prompt\":\"warm-up\",\"max_tokens\":1}", s->models[i]);
        struct voro_http_request req = {.addr = (const struct sockaddr *)&s->ss,
                                        .method = "POST",
                                        .host = s->addr_text,
                                        .path = "/v1/completions",
                                        .content_type = "application/json",
                                        .body = body,
                                        .body_len = (size_t)n,
                                        .timeout_ms = timeout,
                                        .max_response = 65536};
        s->warm[i].srv = s;
        if (voro_http_probe_start(&s->warm[i].probe, s->h->loop, &req, on_warm, &s->warm[i]) == 0) {
            s->warm_pending++;
        } else {
            s->warm[i].probe = NULL;
            s->warm_failed = true;
            snprintf(s->warm_buf, sizeof(s->warm_buf), "warm-up failed: out of memory");
        }
    }
    if (s->warm_pending == 0)
        warm_done(s);
}

/* ---- rise / fall ------------------------------------------------------------------------ */

static void count_result(struct hc_server *s, bool ok, const char *reason)
{
    if (ok) {
        s->fails = 0;
        s->oks++;
        if (!s->active_up && s->oks >= s->cfg.rise) {
            s->active_up = true;
            s->up_reason = NULL;
            s->need_warm = s->l7.warmup && s->n_models > 0;
        }
        if (s->active_up)
            s->check_reason = reason;
        if (s->active_up && s->need_warm && !s->warming)
            warm_start(s);
    } else {
        s->oks = 0;
        s->fails++;
        if (s->active_up && s->fails >= s->cfg.fall) {
            s->active_up = false;
            s->up_reason = NULL;
            s->need_warm = false;
            warm_cancel(s);
        }
        if (!s->active_up)
            s->check_reason = reason;
    }
    publish(s);
}

static const char *connect_reason(int status)
{
    switch (status) {
    case 0: return "ok";
    case UV_ECONNREFUSED: return "connect refused";
    case UV_ETIMEDOUT: return "connect timeout";
    case UV_ENETUNREACH:
    case UV_EHOSTUNREACH: return "unreachable";
    default: return "connect error";
    }
}

static void probe_closed(uv_handle_t *handle) { free(handle->data); }
static void proc_closed(uv_handle_t *handle) { free(handle->data); }

/* Reaps a SIGKILLed child: bounded (about 200 ms), a child stuck in the kernel stays a zombie. */
static void reap(int pid)
{
    for (int i = 0; i < 200; i++) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid || (r < 0 && errno != EINTR))
            return;
        struct timespec ts = {0, 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

static void probe_detach(struct hc_server *s)
{
    struct hc_probe *p = s->probe;
    if (p) {
        s->probe = NULL;
        p->srv = NULL;
        uv_close((uv_handle_t *)&p->tcp, probe_closed);
    }
    if (s->http) {
        voro_http_probe_cancel(s->http);
        s->http = NULL;
    }
    if (s->proc) {
        /* killed by pid and reaped here: once closed, libuv no longer reaps it, and waiting for
         * its exit callback would keep the loop (and a shutdown) waiting on a child */
        int pid = s->proc->proc.pid;
        s->proc->srv = NULL;
        uv_process_kill(&s->proc->proc, SIGKILL);
        uv_close((uv_handle_t *)&s->proc->proc, proc_closed);
        s->proc = NULL;
        reap(pid);
    }
}

static void on_timer(uv_timer_t *t);

static void finish_check(struct hc_server *s, bool ok, const char *reason)
{
    probe_detach(s);
    count_result(s, ok, reason);
    uint64_t now = uv_now(s->h->loop);
    uint64_t elapsed = now - s->check_start;
    uint64_t delay = s->cfg.interval_ms > elapsed ? s->cfg.interval_ms - elapsed : 0;
    uv_timer_start(&s->timer, on_timer, delay, 0);
}

static void on_connect(uv_connect_t *req, int status)
{
    struct hc_probe *p = req->data;
    if (!p->srv)
        return; /* detached: timed out, removed or shutting down */
    finish_check(p->srv, status == 0, connect_reason(status));
}

static void start_tcp(struct hc_server *s)
{
    struct hc_probe *p = calloc(1, sizeof(*p));
    if (!p) {
        finish_check(s, false, "connect error");
        return;
    }
    int rc = uv_tcp_init(s->h->loop, &p->tcp);
    if (rc) {
        free(p);
        finish_check(s, false, "connect error");
        return;
    }
    p->tcp.data = p;
    p->req.data = p;
    p->srv = s;
    s->probe = p;
    rc = uv_tcp_connect(&p->req, &p->tcp, (const struct sockaddr *)&s->ss, on_connect);
    if (rc) {
        finish_check(s, false, connect_reason(rc));
        return;
    }
    uv_timer_start(&s->timer, on_timer, s->cfg.timeout_ms, 0);
}

/* HTTP: the probe bounds itself by timeout_ms and always calls back. */
static void on_http(void *ctx, const struct voro_http_result *r)
{
    struct hc_server *s = ctx;
    s->http = NULL;
    if (r->err) {
        finish_check(s, false, r->reason);
        return;
    }
    uint32_t want = s->cfg.expect_status ? s->cfg.expect_status : 200;
    if ((uint32_t)r->status != want) {
        snprintf(s->check_buf, sizeof(s->check_buf), "http %d", r->status);
        finish_check(s, false, s->check_buf);
        return;
    }
    if (s->cfg.expect_body[0] && !memmem(r->body, r->body_len, s->cfg.expect_body, strlen(s->cfg.expect_body))) {
        finish_check(s, false, "body mismatch");
        return;
    }
    finish_check(s, true, "ok");
}

static void start_http(struct hc_server *s)
{
    struct voro_http_request req = {.addr = (const struct sockaddr *)&s->ss,
                                    .method = s->cfg.method[0] ? s->cfg.method : "GET",
                                    .host = s->addr_text,
                                    .path = s->cfg.path[0] ? s->cfg.path : "/health",
                                    .timeout_ms = s->cfg.timeout_ms,
                                    .max_response = 65536};
    if (voro_http_probe_start(&s->http, s->h->loop, &req, on_http, s) != 0) {
        s->http = NULL;
        finish_check(s, false, "connect error");
    }
}

static void on_proc_exit(uv_process_t *proc, int64_t exit_status, int term_signal)
{
    struct hc_proc *pr = proc->data;
    struct hc_server *s = pr->srv;
    if (!s)
        return; /* detached: already closed and reaped */
    uv_close((uv_handle_t *)proc, proc_closed);
    s->proc = NULL;
    if (term_signal) {
        snprintf(s->check_buf, sizeof(s->check_buf), "signal %d", term_signal);
        finish_check(s, false, s->check_buf);
    } else if (exit_status) {
        snprintf(s->check_buf, sizeof(s->check_buf), "exit %lld", (long long)exit_status);
        finish_check(s, false, s->check_buf);
    } else {
        finish_check(s, true, "ok");
    }
}

/* Copies `word` into `out` with {host} and {port} replaced. */
static int substitute(const char *word, size_t len, const char *host, const char *port, char *out, size_t size)
{
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        const char *rep = NULL;
        size_t skip = 1;
        if (len - i >= 6 && memcmp(word + i, "{host}", 6) == 0)
            rep = host, skip = 6;
        else if (len - i >= 6 && memcmp(word + i, "{port}", 6) == 0)
            rep = port, skip = 6;
        size_t rl = rep ? strlen(rep) : 1;
        if (o + rl + 1 > size)
            return -ENAMETOOLONG;
        memcpy(out + o, rep ? rep : word + i, rl);
        o += rl;
        i += skip;
    }
    out[o] = '\0';
    return 0;
}

static void start_script(struct hc_server *s)
{
    char host[64] = "", port[8] = "";
    if (s->ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&s->ss;
        uv_ip6_name(a, host, sizeof(host));
        snprintf(port, sizeof(port), "%u", (unsigned)ntohs(a->sin6_port));
    } else {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&s->ss;
        uv_ip4_name(a, host, sizeof(host));
        snprintf(port, sizeof(port), "%u", (unsigned)ntohs(a->sin_port));
    }
    /* words live in one buffer: the script line is at most 255 bytes, substitutions are short */
    char words[1024];
    char *argv[SCRIPT_MAX_ARGS + 1];
    size_t argc = 0, used = 0;
    const char *p = s->cfg.script;
    while (*p && argc < SCRIPT_MAX_ARGS) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        const char *e = p;
        while (*e && *e != ' ')
            e++;
        if (substitute(p, (size_t)(e - p), host, port, words + used, sizeof(words) - used) != 0)
            break;
        argv[argc++] = words + used;
        used += strlen(words + used) + 1;
        p = e;
    }
    argv[argc] = NULL;
    if (argc == 0) {
        finish_check(s, false, "spawn failed: empty script");
        return;
    }
    struct hc_proc *pr = calloc(1, sizeof(*pr));
    if (!pr) {
        finish_check(s, false, "spawn failed: out of memory");
        return;
    }
    uv_stdio_container_t stdio[3] = {{.flags = UV_IGNORE}, {.flags = UV_IGNORE}, {.flags = UV_IGNORE}};
    uv_process_options_t opt = {.file = argv[0], .args = argv, .exit_cb = on_proc_exit, .stdio_count = 3, .stdio = stdio};
    pr->proc.data = pr;
    int rc = uv_spawn(s->h->loop, &pr->proc, &opt);
    if (rc) {
        uv_close((uv_handle_t *)&pr->proc, proc_closed);
        snprintf(s->check_buf, sizeof(s->check_buf), "spawn failed: %s", uv_strerror(rc));
        finish_check(s, false, s->check_buf);
        return;
    }
    pr->srv = s;
    s->proc = pr;
    uv_timer_start(&s->timer, on_timer, s->cfg.timeout_ms, 0);
}

static void start_check(struct hc_server *s)
{
    s->check_start = uv_now(s->h->loop);
    switch (s->cfg.type) {
    case VORO_HEALTH_CHECK_HTTP: start_http(s); break;
    case VORO_HEALTH_CHECK_SCRIPT: start_script(s); break;
    case VORO_HEALTH_CHECK_TCP: start_tcp(s); break;
    case VORO_HEALTH_CHECK_NONE: break;
    }
}

static void on_timer(uv_timer_t *t)
{
    struct hc_server *s = t->data;
    if (s->probe)
        finish_check(s, false, "connect timeout");
    else if (s->proc)
        finish_check(s, false, "timeout"); /* probe_detach kills it */
    else
        start_check(s);
}

/* ---- ejection and ramps (maintenance timer) ----------------------------------------------- */

static void on_unejected(void *ctx, size_t server)
{
    struct hc_pool *hp = ctx;
    struct hc_server *s = hp->servers[server];
    s->up_reason = "ejection ended";
    publish(s);
}

static bool maint_needed(struct voro_health *h)
{
    for (size_t i = 0; i < h->n_pools; i++) {
        if (h->pools[i].out.n_ejected)
            return true;
        for (size_t j = 0; j < h->pools[i].n; j++)
            if (h->pools[i].servers[j]->ramping)
                return true;
    }
    return false;
}

static void on_maint(uv_timer_t *t)
{
    struct voro_health *h = t->data;
    uint64_t now = uv_now(h->loop);
    for (size_t i = 0; i < h->n_pools; i++) {
        struct hc_pool *hp = &h->pools[i];
        voro_outlier_expire(&hp->out, now, on_unejected, hp);
        for (size_t j = 0; j < hp->n; j++) {
            struct hc_server *s = hp->servers[j];
            if (!s->ramping)
                continue;
            uint64_t el = now - s->ramp_start;
            uint32_t w = 1000;
            if (el < s->l7.slow_start_ms)
                w = RAMP_START_PERMILLE + (uint32_t)((1000 - RAMP_START_PERMILLE) * el / s->l7.slow_start_ms);
            else
                s->ramping = false;
            set_weight(s, w);
        }
    }
    if (!maint_needed(h))
        uv_timer_stop(t);
}

static void maint_schedule(struct voro_health *h)
{
    if (h->maint && !uv_is_active((uv_handle_t *)h->maint))
        uv_timer_start(h->maint, on_maint, MAINT_MS, MAINT_MS);
}

/* ---- targets ------------------------------------------------------------------------------ */

static void server_closed(uv_handle_t *handle)
{
    struct hc_server *s = handle->data;
    free(s->models);
    free(s);
}

static void server_close(struct hc_server *s)
{
    probe_detach(s);
    warm_cancel(s);
    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *)&s->timer, server_closed);
}

static struct hc_server *server_new(struct voro_health *h, const struct voro_pool_config *pc)
{
    struct hc_server *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    if (uv_timer_init(h->loop, &s->timer) != 0) {
        free(s);
        return NULL;
    }
    s->timer.data = s;
    s->h = h;
    s->active_up = s->published = true;
    s->check_reason = s->reason = pc->health.type == VORO_HEALTH_CHECK_NONE ? "no check" : "initial";
    return s;
}

static int server_copy_models(struct hc_server *s, const struct voro_server_config *sc)
{
    size_t nm = sc->n_models < WARM_MAX_MODELS ? sc->n_models : WARM_MAX_MODELS;
    char(*models)[VORO_NAME_MAX] = NULL;
    if (nm && !(models = calloc(nm, sizeof(*models))))
        return -ENOMEM;
    for (size_t i = 0; i < nm; i++)
        snprintf(models[i], sizeof(models[i]), "%s", sc->models[i].name);
    free(s->models);
    s->models = models;
    s->n_models = nm;
    return 0;
}

static void server_apply(struct hc_server *s, size_t pool, size_t server, const struct voro_pool_config *pc,
                         const struct voro_server_config *sc)
{
    s->pool = pool;
    s->server = server;
    s->cfg = pc->health;
    s->l7 = pc->l7;
    /* zeros would spin the timer or never decide: use the documented defaults */
    if (!s->cfg.interval_ms)
        s->cfg.interval_ms = 2000;
    if (!s->cfg.timeout_ms)
        s->cfg.timeout_ms = 1000;
    if (!s->cfg.rise)
        s->cfg.rise = 2;
    if (!s->cfg.fall)
        s->cfg.fall = 3;
    snprintf(s->pool_name, sizeof(s->pool_name), "%s", pc->name);
    snprintf(s->addr_text, sizeof(s->addr_text), "%s", sc->addr.text);
    memset(&s->ss, 0, sizeof(s->ss));
    memcpy(&s->ss, &sc->addr.ss, sc->addr.len <= sizeof(s->ss) ? sc->addr.len : sizeof(s->ss));
}

/* Finds the old target for (pool name, address, check type) and detaches it from the old table;
 * *ej receives its ejection state. */
static struct hc_server *take_old(struct voro_health *h, const struct voro_pool_config *pc,
                                  const struct voro_server_config *sc, struct voro_outlier_server *ej)
{
    for (size_t i = 0; i < h->n_pools; i++) {
        struct hc_pool *op = &h->pools[i];
        for (size_t j = 0; j < op->n; j++) {
            struct hc_server *s = op->servers[j];
            if (s && s->cfg.type == pc->health.type && strcmp(s->pool_name, pc->name) == 0 &&
                strcmp(s->addr_text, sc->addr.text) == 0) {
                op->servers[j] = NULL;
                *ej = op->out.s ? op->out.s[j] : (struct voro_outlier_server){0};
                return s;
            }
        }
    }
    return NULL;
}

static void free_table(struct hc_pool *pools, size_t n, bool close_servers)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; close_servers && j < pools[i].n; j++)
            if (pools[i].servers[j])
                server_close(pools[i].servers[j]);
        free(pools[i].servers);
        voro_outlier_destroy(&pools[i].out);
    }
    free(pools);
}

static void maint_closed(uv_handle_t *handle) { free(handle); }

int voro_health_create(struct voro_health **out, uv_loop_t *loop, voro_health_cb cb, void *ctx)
{
    struct voro_health *h = calloc(1, sizeof(*h));
    if (!h)
        return -ENOMEM;
    h->maint = calloc(1, sizeof(*h->maint));
    if (!h->maint || uv_timer_init(loop, h->maint) != 0) {
        free(h->maint);
        free(h);
        return -ENOMEM;
    }
    h->maint->data = h;
    h->loop = loop;
    h->cb = cb;
    h->ctx = ctx;
    h->rng = (uint64_t)uv_hrtime() ^ (uint64_t)(uintptr_t)h ^ 0x9E3779B97F4A7C15ULL;
    if (!h->rng)
        h->rng = 1;
    *out = h;
    return 0;
}

void voro_health_set_weight_cb(struct voro_health *h, voro_health_weight_cb cb) { h->weight_cb = cb; }

int voro_health_set_config(struct voro_health *h, const struct voro_config *cfg)
{
    size_t n_pools = cfg ? cfg->n_pools : 0;
    struct hc_pool *np = n_pools ? calloc(n_pools, sizeof(*np)) : NULL;
    if (n_pools && !np)
        return -ENOMEM;
    /* allocate everything first so a failure leaves the old targets untouched */
    for (size_t i = 0; i < n_pools; i++) {
        const struct voro_pool_config *pc = &cfg->pools[i];
        np[i].n = pc->n_servers;
        if ((pc->n_servers && !(np[i].servers = calloc(pc->n_servers, sizeof(*np[i].servers)))) ||
            voro_outlier_init(&np[i].out, pc->n_servers, pc->l7.eject_consecutive, pc->l7.eject_base_ms,
                              pc->l7.eject_max_percent) != 0) {
            free_table(np, n_pools, false);
            return -ENOMEM;
        }
    }
    size_t n_new = 0;
    for (size_t i = 0; i < n_pools; i++)
        n_new += np[i].n;
    struct hc_server **fresh = n_new ? calloc(n_new, sizeof(*fresh)) : NULL;
    if (n_new && !fresh) {
        free_table(np, n_pools, false);
        return -ENOMEM;
    }
    /* model names are copied per server: allocate those up front too (into the fresh ones) */
    size_t k = 0;
    bool failed = false;
    for (size_t i = 0; i < n_pools && !failed; i++)
        for (size_t j = 0; j < np[i].n; j++) {
            if (!(fresh[k++] = server_new(h, &cfg->pools[i])) ||
                server_copy_models(fresh[k - 1], &cfg->pools[i].servers[j]) != 0) {
                failed = true;
                break;
            }
        }
    if (failed) {
        for (size_t m = 0; m < k; m++)
            if (fresh[m])
                uv_close((uv_handle_t *)&fresh[m]->timer, server_closed);
        free(fresh);
        free_table(np, n_pools, false);
        return -ENOMEM;
    }

    /* commit: move kept servers, use fresh ones for the rest */
    k = 0;
    for (size_t i = 0; i < n_pools; i++) {
        const struct voro_pool_config *pc = &cfg->pools[i];
        for (size_t j = 0; j < np[i].n; j++, k++) {
            const struct voro_server_config *sc = &pc->servers[j];
            struct voro_outlier_server ej = {0};
            struct hc_server *s = take_old(h, pc, sc, &ej);
            bool start = false, ramp = false;
            if (s) {
                /* the fresh one already holds the new model copy: swap it over */
                char(*models)[VORO_NAME_MAX] = s->models;
                size_t nm = s->n_models;
                s->models = fresh[k]->models;
                s->n_models = fresh[k]->n_models;
                fresh[k]->models = models;
                fresh[k]->n_models = nm;
                uv_close((uv_handle_t *)&fresh[k]->timer, server_closed);
                /* a new interval applies now, not after the old one elapsed */
                uint32_t iv = pc->health.interval_ms ? pc->health.interval_ms : 2000;
                start = !s->probe && !s->http && !s->proc && s->cfg.interval_ms != iv;
                if (np[i].out.s) {
                    np[i].out.s[j] = ej;
                    if (ej.ejected)
                        np[i].out.n_ejected++;
                }
            } else {
                s = fresh[k];
                start = pc->health.type != VORO_HEALTH_CHECK_NONE;
                ramp = h->configured;
            }
            server_apply(s, i, j, pc, sc);
            if (start) {
                uint32_t span = s->cfg.interval_ms < 1000 ? s->cfg.interval_ms : 1000;
                uv_timer_start(&s->timer, on_timer, hc_rand(h) % (span / 2 + 1), 0);
            }
            s->pending_ramp = ramp;
            np[i].servers[j] = s;
        }
    }
    free(fresh);
    free_table(h->pools, h->n_pools, true);
    h->pools = np;
    h->n_pools = n_pools;
    h->configured = true;
    for (size_t i = 0; i < n_pools; i++)
        for (size_t j = 0; j < np[i].n; j++) {
            struct hc_server *s = np[i].servers[j];
            if (s->pending_ramp) {
                s->pending_ramp = false;
                ramp_start(s);
            }
            if (!s->published)
                notify(s);
        }
    if (maint_needed(h))
        maint_schedule(h);
    return 0;
}

static struct hc_server *find(const struct voro_health *h, size_t pool, size_t server)
{
    if (pool >= h->n_pools || server >= h->pools[pool].n)
        return NULL;
    return h->pools[pool].servers[server];
}

void voro_health_report_failure_kind(struct voro_health *h, size_t pool, size_t server, enum voro_failure_kind kind)
{
    struct hc_server *s = find(h, pool, server);
    if (!s)
        return;
    struct hc_pool *hp = &h->pools[pool];
    uint64_t d = 0;
    if (voro_outlier_failure(&hp->out, server, uv_now(h->loop), &d)) {
        if (d % 1000 == 0)
            snprintf(s->eject_buf, sizeof(s->eject_buf), "ejected: %u consecutive failures (%llus)", hp->out.consecutive,
                     (unsigned long long)(d / 1000));
        else
            snprintf(s->eject_buf, sizeof(s->eject_buf), "ejected: %u consecutive failures (%llums)",
                     hp->out.consecutive, (unsigned long long)d);
        s->up_reason = NULL;
        maint_schedule(h);
    }
    if (kind == VORO_FAILURE_CONNECT && s->cfg.type != VORO_HEALTH_CHECK_NONE)
        count_result(s, false, "passive failure"); /* publishes */
    else
        publish(s);
}

void voro_health_report_failure(struct voro_health *h, size_t pool, size_t server)
{
    voro_health_report_failure_kind(h, pool, server, VORO_FAILURE_CONNECT);
}

void voro_health_report_success(struct voro_health *h, size_t pool, size_t server)
{
    if (find(h, pool, server))
        voro_outlier_success(&h->pools[pool].out, server);
}

bool voro_health_server_ejected(const struct voro_health *h, size_t pool, size_t server)
{
    return find(h, pool, server) && voro_outlier_is_ejected(&h->pools[pool].out, server);
}

bool voro_health_server_up(const struct voro_health *h, size_t pool, size_t server, const char **reason)
{
    const struct hc_server *s = find(h, pool, server);
    if (!s) {
        if (reason)
            *reason = "unknown";
        return true;
    }
    if (reason)
        *reason = s->reason;
    return s->published;
}

void voro_health_destroy(struct voro_health *h)
{
    if (!h)
        return;
    free_table(h->pools, h->n_pools, true);
    uv_timer_stop(h->maint);
    uv_close((uv_handle_t *)h->maint, maint_closed);
    free(h);
}
