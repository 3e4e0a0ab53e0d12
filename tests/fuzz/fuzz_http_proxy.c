/* libFuzzer target: the HTTP proxy's state machine (node/http/) fed arbitrary client and server
 * bytes over one proxied connection, through a real data-plane worker.
 *
 * Set-up (once): a worker (node/worker.h) runs its event loop (epoll; VORO_FUZZ_IO_MODEL=io_uring,
 * poll or select for another) in its own thread on a snapshot
 * with one `mode = http` listener whose socket is ours, three pools, path/model/header/host
 * routes and six fake upstream servers (two per pool): listening sockets on 127.0.0.1 that this
 * thread serves itself. Only
 * the worker's public interface is used (voro_worker_create/start, the dataplane, the
 * snapshot, worker stats), never the proxy's internals.
 *
 * Input: a script of chunks. It starts with client bytes; a three-byte marker starts the next
 * chunk and says what it is:
 *   "~C~" client bytes: written to the client socket (the connection the proxy accepted)
 *   "~S~" server bytes: written on the upstream connection the proxy used last (waiting a
 *         bounded time for the proxy to open one; dropped when it opens none)
 *   "~E~" the server closes that connection (what follows is ignored up to the next marker)
 *   "~F~" the client half-closes (shutdown SHUT_WR)
 * e.g. "GET / HTTP/1.1\r\nHost: a\r\n\r\n~S~HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".
 * After the script the servers close, then the client half-closes and reads to EOF.
 *
 * Bounds: at most MAX_CHUNKS chunks, each step waits for quiet (no byte for QUIET_MS) at most
 * STEP_MS (server bytes wait at most UPSTREAM_WAIT_MS for a connection), the script at most
 * INPUT_MS, the close-down at most FINISH_MS; the proxy's own timeouts are shorter.
 *
 * Checks, besides ASan/UBSan in the worker thread: whatever the client receives starts with a
 * complete, valid response head (the proxy never passes on a server's garbage nor a cut head);
 * whatever a server receives starts with a valid request head (the rewritten head parses); and
 * once both peers closed, the proxy closes the client connection and frees it within FINISH_MS.
 * VORO_FUZZ_TRACE=1 prints what each side received (for writing seeds).
 *
 * Seeds (corpus_http_proxy/): keep-alive and pipelining, HTTP/1.0, absolute-form targets,
 * percent-encoded paths and dot segments, OPTIONS *, X-Model header against the body's model,
 * model rewriting, chunked bodies both ways, SSE, 100-continue and 103, a 101 WebSocket
 * upgrade, CL+TE smuggling, bad server responses, early closes, and regress-* reproducers. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cluster/config.h"
#include "common/log.h"
#include "node/dataplane.h"
#include "node/snapshot.h"
#include "node/worker.h"
#include "proto/http1.h"

#define MAX_CHUNKS 32
#define MAX_UPSTREAMS 16  /* upstream connections kept per input */
#define RX_CAP (256u * 1024u)
#define QUIET_MS 3
#define STEP_MS 150
#define UPSTREAM_WAIT_MS 40 /* for the proxy to connect and send a request, before server bytes */
#define INPUT_MS 1500
#define FINISH_MS 3000 /* for the proxy to close the connection after the script (its timeouts are shorter) */
#define N_SERVERS 6 /* two per pool, so a trace shows where a request went */

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_http_proxy: check failed: %s\n", what);
        abort();
    }
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- the worker under test --------------------------------------------------------------- */

static struct voro_dataplane dp;
static struct voro_worker *worker;
static int listen_fd = -1;
static uint16_t listen_port;
static int server_fds[N_SERVERS];
static const char *const server_names[N_SERVERS] = {"w1", "w2", "g1", "g2", "u1", "u2"};
static uint16_t server_ports[N_SERVERS];

static int open_listener(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    check(fd >= 0, "socket");
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    check(bind(fd, (struct sockaddr *)&a, sizeof a) == 0, "bind 127.0.0.1:0");
    check(listen(fd, 256) == 0, "listen");
    socklen_t len = sizeof a;
    check(getsockname(fd, (struct sockaddr *)&a, &len) == 0, "getsockname");
    *port = ntohs(a.sin_port);
    return fd;
}

static const char CONFIG[] =
    "[server]\n"
    "threads = 1\n"
    "io_model = epoll\n"
    "buffer_size = 1k\n" /* small buffers: heads and bodies span several reads */
    "buffers = 64\n"
    "splice = off\n"
    "log_level = error\n"
    "[timeouts]\n"
    "connect = 100ms\n"
    "idle = 2s\n"
    "drain = 0\n"
    "[listener api]\n"
    "mode = http\n"
    "bind = 127.0.0.1:%u\n"
    "pool = web\n"
    "[http]\n"
    "max_request_line = 512\n"
    "max_header_bytes = 2k\n"
    "max_headers = 24\n"
    "max_body = 16k\n"
    "header_timeout = 300ms\n"
    "body_timeout = 300ms\n"
    "response_timeout = 300ms\n"
    "keepalive_timeout = 300ms\n"
    "add_request_id = true\n"
    "[pool web]\n"
    "algorithm = round_robin\n"
    "health_check = none\n"
    "retries = 1\n"
    "upstream_max_idle = 2\n"
    "upstream_idle_timeout = 1s\n"
    "server = w1 127.0.0.1:%u\n"
    "server = w2 127.0.0.1:%u\n"
    "[pool llm]\n"
    "algorithm = consistent_hash\n"
    "hash_key = model\n"
    "health_check = none\n"
    "learn_models = false\n"
    "server = g1 127.0.0.1:%u models=llama-3-8b,llama-3-8b@v2\n"
    "server = g2 127.0.0.1:%u models=mistral-7b\n"
    "[pool users]\n"
    "algorithm = consistent_hash\n"
    "hash_key = header:X-User\n"
    "health_check = none\n"
    "server = u1 127.0.0.1:%u\n"
    "server = u2 127.0.0.1:%u\n"
    "[route embeddings]\n"
    "methods = POST\n"
    "path_prefix = /v1/embeddings\n"
    "pool = users\n"
    "[route tenant]\n"
    "host = *.example.com\n"
    "header = X-Tenant: blue\n"
    "pool = users\n"
    "[route llama]\n"
    "path_prefix = /v1/\n"
    "model = llama-3-8b\n"
    "pool = llm\n"
    "rewrite_model = true\n"
    "body_limit = 2k\n"
    "[route models]\n"
    "path_prefix = /v1/\n"
    "model = *\n"
    "pool = llm\n"
    "body_limit = 4k\n"
    "[route rest]\n"
    "pool = web\n";

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN);
    voro_log_set_level(VORO_LOG_ERROR);
    for (int i = 0; i < N_SERVERS; i++)
        server_fds[i] = open_listener(&server_ports[i]);
    listen_fd = open_listener(&listen_port);

    char text[sizeof CONFIG + 64];
    unsigned l = listen_port, sp[N_SERVERS];
    for (int i = 0; i < N_SERVERS; i++)
        sp[i] = server_ports[i];
    int n = snprintf(text, sizeof text, CONFIG, l, sp[0], sp[1], sp[2], sp[3], sp[4], sp[5]);
    check(n > 0 && (size_t)n < sizeof text, "config fits");
    struct voro_config *cfg = NULL;
    struct voro_config_errors errs = {0};
    if (voro_config_parse("fuzz_http_proxy", text, (size_t)n, &cfg, &errs) != 0) {
        for (size_t i = 0; i < errs.count; i++)
            fprintf(stderr, "%s\n", errs.items[i].message);
        check(0, "the harness's config parses");
    }
    voro_config_errors_free(&errs);

    struct voro_snapshot *snap = NULL;
    check(voro_snapshot_create(&snap, cfg, NULL, 1, 1) == 0, "snapshot");
    snap->cohort = 1;
    snap->listen[0].fds[0] = listen_fd;
    snap->listen[0].n_fds = 1;

    dp.pipes_per_worker = UINT32_MAX;
    check(voro_udp_handovers_init(&dp.udp_handovers) == 0, "udp handovers");
    check(voro_conn_limits_init(&dp.limits, 64) == 0, "conn limits");
    atomic_store(&dp.generation, 1);
    atomic_store(&dp.current, snap);
    /* epoll by default (deterministic enough, works everywhere); VORO_FUZZ_IO_MODEL picks another */
    enum voro_io_model model = VORO_IO_EPOLL;
    const char *want = getenv("VORO_FUZZ_IO_MODEL");
    check(!want || voro_io_model_parse(want, &model) == 0, "VORO_FUZZ_IO_MODEL is io_uring, epoll, poll or select");
    check(voro_worker_create(&worker, &dp, 0, 1, 1, model, snap->cfg) == 0, "worker create");
    check(voro_worker_start(worker) == 0, "worker start");
}

/* ---- one proxied connection ---------------------------------------------------------------- */

struct peer {
    int fd;           /* -1 once closed */
    uint8_t *rx;      /* what it received (first RX_CAP bytes) */
    size_t rx_len;
    uint64_t last_rx; /* sequence number of its last read, to find the one in use */
    int server;       /* upstreams: which fake server accepted it */
};

static struct peer client;
static bool client_eof, client_reset;
static struct peer ups[MAX_UPSTREAMS];
static size_t n_ups;
static uint64_t rx_seq;
static bool refuse_upstreams; /* closing down: accept and close at once */

static void peer_close(struct peer *p)
{
    if (p->fd >= 0)
        close(p->fd);
    p->fd = -1;
}

/* Reads what is there; returns false at EOF or on an error (then the caller closes). */
static bool peer_read(struct peer *p, int *err)
{
    uint8_t tmp[16384];
    for (int i = 0; i < 64; i++) {
        ssize_t n = recv(p->fd, tmp, sizeof tmp, MSG_DONTWAIT);
        if (n > 0) {
            size_t keep = (size_t)n;
            if (p->rx_len + keep > RX_CAP)
                keep = RX_CAP - p->rx_len;
            memcpy(p->rx + p->rx_len, tmp, keep);
            p->rx_len += keep;
            p->last_rx = ++rx_seq;
            continue;
        }
        if (n == 0) {
            *err = 0;
            return false;
        }
        if (errno == EAGAIN || errno == EINTR)
            return true;
        *err = errno;
        return false;
    }
    return true;
}

static void accept_upstreams(void)
{
    for (int s = 0; s < N_SERVERS; s++) {
        for (int i = 0; i < 16; i++) {
            int fd = accept4(server_fds[s], NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0)
                break;
            if (refuse_upstreams || n_ups == MAX_UPSTREAMS) {
                close(fd);
                continue;
            }
            struct peer *p = &ups[n_ups++];
            p->fd = fd;
            p->rx_len = 0;
            p->last_rx = 0;
            p->server = s;
        }
    }
}

/* Moves bytes until nothing happened for quiet_ms or the deadline passed. */
static void pump(uint64_t deadline, int quiet_ms)
{
    for (;;) {
        uint64_t now = now_ms();
        if (now >= deadline)
            return;
        struct pollfd pfd[N_SERVERS + 1 + MAX_UPSTREAMS];
        struct peer *who[N_SERVERS + 1 + MAX_UPSTREAMS];
        nfds_t n = 0;
        for (int s = 0; s < N_SERVERS; s++) {
            who[n] = NULL;
            pfd[n++] = (struct pollfd){.fd = server_fds[s], .events = POLLIN};
        }
        if (client.fd >= 0 && !client_eof) {
            who[n] = &client;
            pfd[n++] = (struct pollfd){.fd = client.fd, .events = POLLIN};
        }
        for (size_t i = 0; i < n_ups; i++) {
            if (ups[i].fd >= 0) {
                who[n] = &ups[i];
                pfd[n++] = (struct pollfd){.fd = ups[i].fd, .events = POLLIN};
            }
        }
        int wait = (int)(deadline - now) < quiet_ms ? (int)(deadline - now) : quiet_ms;
        int r = poll(pfd, n, wait);
        if (r <= 0)
            return;
        for (nfds_t i = 0; i < n; i++) {
            if (!pfd[i].revents)
                continue;
            if (!who[i]) {
                accept_upstreams();
                continue;
            }
            int err = 0;
            if (peer_read(who[i], &err))
                continue;
            if (who[i] == &client) {
                client_eof = true;
                client_reset = client_reset || err != 0;
            } else {
                peer_close(who[i]);
            }
        }
    }
}

/* Writes all of buf, moving bytes meanwhile (the proxy may need us to read to make progress). */
static void write_all(int fd, const uint8_t *buf, size_t len, uint64_t deadline)
{
    while (len > 0 && now_ms() < deadline) {
        ssize_t n = send(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            pump(deadline, 1);
        } else {
            return; /* the proxy closed: what is left is dropped */
        }
    }
}

/* The upstream connection in use: the open one that received bytes last, else the newest. */
static struct peer *current_upstream(void)
{
    struct peer *best = NULL;
    for (size_t i = 0; i < n_ups; i++) {
        struct peer *p = &ups[i];
        if (p->fd < 0)
            continue;
        if (!best || p->last_rx >= best->last_rx)
            best = p;
    }
    return best;
}

static struct peer *wait_upstream(uint64_t deadline)
{
    for (;;) {
        struct peer *p = current_upstream();
        if ((p && p->rx_len > 0) || client_eof || now_ms() >= deadline)
            return p; /* (once the proxy closed the client, no request is coming) */
        pump(deadline, 1);
    }
}

/* Checks that bytes start with a valid head of `kind`. A cut head is allowed only when the
 * stream was cut (`complete` false). */
static void check_head(const struct peer *p, enum voro_http1_kind kind, bool complete, const char *what)
{
    if (p->rx_len == 0)
        return;
    static struct voro_http1_parser parser;
    static const struct voro_http1_limits big = {.max_line = RX_CAP, .max_head = RX_CAP,
                                                 .max_headers = VORO_HTTP1_MAX_HEADERS};
    voro_http1_init(&parser, kind, &big);
    enum voro_http1_result r = voro_http1_parse(&parser, (const char *)p->rx, p->rx_len);
    if (r == VORO_HTTP1_ERROR) {
        fprintf(stderr, "fuzz_http_proxy: %s: %d %s in:\n%.*s\n", what, parser.error_status, parser.error_reason,
                (int)(p->rx_len < 2048 ? p->rx_len : 2048), (const char *)p->rx);
        check(0, what);
    }
    if (r == VORO_HTTP1_NEED_MORE && complete && p->rx_len < RX_CAP) {
        fprintf(stderr, "fuzz_http_proxy: %s: cut head:\n%.*s\n", what, (int)p->rx_len, (const char *)p->rx);
        check(0, what);
    }
}

static const uint8_t *find_marker(const uint8_t *p, const uint8_t *end)
{
    for (; p + 3 <= end; p++)
        if (p[0] == '~' && p[2] == '~' && (p[1] == 'C' || p[1] == 'S' || p[1] == 'E' || p[1] == 'F'))
            return p;
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!worker) {
        setup();
        client.rx = malloc(RX_CAP);
        for (size_t i = 0; i < MAX_UPSTREAMS; i++)
            ups[i].rx = malloc(RX_CAP);
        check(client.rx != NULL, "rx buffers");
        for (size_t i = 0; i < MAX_UPSTREAMS; i++)
            check(ups[i].rx != NULL, "rx buffers");
    }
    const uint64_t start = now_ms(), input_deadline = start + INPUT_MS;

    /* a clean slate: late connections from the previous input are closed */
    refuse_upstreams = true;
    n_ups = 0;
    accept_upstreams();
    refuse_upstreams = false;
    client_eof = client_reset = false;
    client.rx_len = 0;

    client.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    check(client.fd >= 0, "client socket");
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(listen_port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    check(connect(client.fd, (struct sockaddr *)&a, sizeof a) == 0, "connect to the proxy");
    int one = 1;
    setsockopt(client.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

    const uint8_t *p = data, *end = data + size;
    char kind = 'C';
    for (int chunk = 0; chunk < MAX_CHUNKS && p <= end && now_ms() < input_deadline; chunk++) {
        const uint8_t *m = find_marker(p, end);
        const uint8_t *stop = m ? m : end;
        uint64_t step = now_ms() + STEP_MS;
        if (step > input_deadline)
            step = input_deadline;
        struct peer *up;
        switch (kind) {
        case 'C':
            if (stop > p && !client_eof)
                write_all(client.fd, p, (size_t)(stop - p), step);
            break;
        case 'S':
            up = wait_upstream(now_ms() + UPSTREAM_WAIT_MS < step ? now_ms() + UPSTREAM_WAIT_MS : step);
            if (up && stop > p)
                write_all(up->fd, p, (size_t)(stop - p), step);
            break;
        case 'E':
            up = wait_upstream(now_ms() + UPSTREAM_WAIT_MS < step ? now_ms() + UPSTREAM_WAIT_MS : step);
            if (up)
                peer_close(up);
            break;
        case 'F':
            shutdown(client.fd, SHUT_WR);
            break;
        }
        pump(step, QUIET_MS);
        if (!m)
            break;
        kind = (char)m[1];
        p = m + 3;
    }

    /* The servers close (a request still waiting gets its 502), then the client half-closes
     * and reads the rest; connections the proxy still opens are refused. With no peer left,
     * the proxy must close the connection, and free it. */
    for (size_t i = 0; i < n_ups; i++)
        peer_close(&ups[i]);
    refuse_upstreams = true;
    const uint64_t finish = now_ms() + FINISH_MS;
    pump(now_ms() + 4 * STEP_MS, QUIET_MS);
    shutdown(client.fd, SHUT_WR);
    while (!client_eof && now_ms() < finish)
        pump(finish, 10);
    bool complete = client_eof && !client_reset;
    close(client.fd);
    client.fd = -1;

    if (getenv("VORO_FUZZ_TRACE")) { /* shows what went where, for writing seeds */
        fprintf(stderr, "=== input of %zu bytes, %llu ms\n", size, (unsigned long long)(now_ms() - start));
        for (size_t i = 0; i < n_ups; i++)
            fprintf(stderr, "--- connection %zu to server %s received %zu bytes:\n%.*s\n", i,
                    server_names[ups[i].server], ups[i].rx_len, (int)ups[i].rx_len, (const char *)ups[i].rx);
        fprintf(stderr, "--- client received %zu bytes (%s):\n%.*s\n", client.rx_len,
                complete ? "EOF" : client_reset ? "reset" : "cut", (int)client.rx_len, (const char *)client.rx);
    }
    check(client_eof, "the proxy never closed the client connection (both peers had closed)");
    check_head(&client, VORO_HTTP1_RESPONSE, complete, "the client got a bad response head");
    for (size_t i = 0; i < n_ups; i++)
        check_head(&ups[i], VORO_HTTP1_REQUEST, false, "a server got a bad request head");

    /* The worker frees the connection (and the next input starts from a clean slate). */
    while (atomic_load_explicit(&worker->stats.active, memory_order_relaxed) > 0 && now_ms() < finish)
        pump(finish, 2);
    check(atomic_load_explicit(&worker->stats.active, memory_order_relaxed) == 0,
          "a connection outlived both its peers");
    return 0;
}
