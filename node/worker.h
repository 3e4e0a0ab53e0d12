/* A data-plane worker: one thread, one event loop, its own listeners' accept ops, timer wheel,
 * connection slab, balancers and counters. Nothing here is shared with other workers except
 * the read-mostly dataplane (snapshot pointer, admission counters). */
#ifndef VORO_NODE_WORKER_H
#define VORO_NODE_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "node/balance/balance.h"
#include "node/conn_limit.h"
#include "node/dataplane.h"
#include "node/loop/loop.h"
#include "node/pipe_pool.h"
#include "node/slab.h"
#include "node/snapshot.h"
#include "node/timer_wheel.h"

/* Counters of one worker: written by it (relaxed), read by the stats handlers. */
struct voro_worker_stats {
    _Atomic uint64_t accepted;
    _Atomic uint64_t active;          /* gauge: TCP connections open now */
    _Atomic uint64_t bytes_from_clients;
    _Atomic uint64_t bytes_to_clients;
    _Atomic uint64_t rejected_max_connections;
    _Atomic uint64_t rejected_per_ip;
    _Atomic uint64_t rejected_rate;
    _Atomic uint64_t rejected_fds;    /* refused: the descriptor budget was spent */
    _Atomic uint64_t no_server;       /* no usable server (after retries) */
    _Atomic uint64_t connect_failures;
    _Atomic uint64_t connect_retries;
    _Atomic uint64_t connect_timeouts;
    _Atomic uint64_t idle_timeouts;
    _Atomic uint64_t errors;          /* resets and other I/O errors */
    _Atomic uint64_t accept_errors;   /* EMFILE/ENFILE/ENOBUFS back-offs */
    _Atomic uint64_t udp_sessions;    /* gauge */
    _Atomic uint64_t udp_sessions_total;
    _Atomic uint64_t udp_datagrams_in;
    _Atomic uint64_t udp_datagrams_out;
    _Atomic uint64_t udp_drops;
    _Atomic uint64_t drained_aborts;  /* connections cut at the end of a drain grace period */
    _Atomic uint64_t http_requests;   /* HTTP requests whose head was read */
    _Atomic uint64_t http_responses[5]; /* by class: 1xx (final: 101 only) .. 5xx, from servers */
    _Atomic uint64_t http_local_errors; /* responses Voro wrote itself (4xx/5xx with a JSON reason) */
    _Atomic uint64_t http_upstream_reused; /* requests sent on a pooled server connection */
    _Atomic uint64_t http_client_aborts;   /* clients gone while their request was upstream: request aborted */
    _Atomic uint64_t http_slow_clients;    /* clients cut for sending a head or body too slowly */
    _Atomic uint64_t http_body_memory_refused; /* 503s: the node-wide cap on buffered bodies was reached */
};

/* Commands the control thread posts (bits of voro_worker.commands). */
#define VORO_WORKER_CMD_DRAIN 1u  /* stop accepting, finish connections, exit when none left or at the deadline */
#define VORO_WORKER_CMD_STOP 2u   /* close everything now and exit */

/* The worker's view of one snapshot: per-pool balancers built for it. Connections hold it. */
struct voro_http_view;

struct voro_worker_view {
    struct voro_snapshot *snap; /* one reference taken on the snapshot */
    struct voro_lb *lbs;        /* [pool], owned */
    struct voro_http_view *http;/* HTTP keep-alive pools for this view, owned (NULL without http listeners) */
    uint32_t users;             /* connections and sessions using this view (+1 while current) */
};

/* One listening socket this worker accepts on (individually allocated: its op must not move). */
struct voro_accept_slot {
    struct voro_accept_slot *next;
    int fd;
    int listener;          /* index in the current view's config */
    bool armed;
    bool cancelling;
    bool backing_off;
    struct voro_op op;
    struct voro_timer backoff;
    struct voro_worker *worker;
};

struct voro_tcp_conn;
struct voro_http_conn;
struct voro_http_bodybuf;
struct voro_udp_listener;

struct voro_worker {
    unsigned slot;
    unsigned id;                 /* unique for the process lifetime */
    uint64_t cohort;             /* the worker generation it belongs to */
    struct voro_dataplane *dp;   /* not owned */
    pthread_t thread;
    bool thread_started;
    struct voro_loop *loop;      /* owned */
    enum voro_io_model requested_model;
    struct voro_timer_wheel wheel;
    struct voro_slab conn_slab;
    struct voro_slab http_slab;   /* HTTP client connections */
    struct voro_slab http_req_slab; /* state of HTTP requests in progress (idle connections hold none) */
    struct voro_slab http_small_slab; /* partial request heads kept out of receive buffers */
    struct voro_slab out_slab;    /* rewritten heads and error responses (VORO_HTTP_OUT_SIZE each) */
    struct voro_slab idle_slab;   /* pooled server connections */
    struct voro_http_conn *http_conns; /* intrusive list of live HTTP connections */
    struct voro_http_bodybuf *http_body_free; /* model-routing body buffers kept for reuse, owned */
    uint32_t http_body_free_count;
    struct voro_pipe_pool pipes;  /* splice forwarding; max 0 when splicing is off */
    uint64_t now_ms;             /* cached once per loop iteration */

    struct voro_worker_view *view; /* current, owned (other views die with their last user) */
    uint64_t view_generation;
    _Atomic uint64_t adopted_generation; /* runs this generation and no longer touches older sockets */

    struct voro_accept_slot *accepts; /* owned list */
    struct voro_udp_listener *udp;    /* owned list */

    struct voro_tcp_conn *conns;      /* intrusive list of live connections */
    struct voro_token_bucket rate;

    _Atomic uint32_t commands;
    bool draining;
    uint64_t drain_deadline_ms;
    _Atomic bool exited;              /* the thread has left its loop */
    _Atomic bool listeners_released;  /* draining and no accept/UDP op left on any listening socket */
    _Atomic bool running;             /* the loop started (io model known) */
    int start_error;

    struct voro_worker_stats stats;
};

/* Creates worker `slot` (thread not started). `id` must be unique in the process; `cohort`
 * names the generation of workers it belongs to (see voro_snapshot.cohort). */
int voro_worker_create(struct voro_worker **out, struct voro_dataplane *dp, unsigned slot, unsigned id,
                       uint64_t cohort, enum voro_io_model model, const struct voro_config *cfg);
/* Starts the thread and waits until its loop runs (or failed to start: returns its error). */
int voro_worker_start(struct voro_worker *w);
/* Posts commands; thread-safe. */
void voro_worker_post(struct voro_worker *w, uint32_t cmd);
/* Tells the worker a new snapshot was published; thread-safe. */
void voro_worker_notify(struct voro_worker *w);
/* Joins the thread (it must have exited or been told to) and frees everything. */
void voro_worker_destroy(struct voro_worker *w);

/* Worker-internal API used by the proxies (worker thread only). */
struct voro_worker_view *voro_worker_view_acquire(struct voro_worker *w);
void voro_worker_view_release(struct voro_worker *w, struct voro_worker_view *view);
/* Whether `w` should read listening socket `fd` of `ls` under `snap`. */
bool voro_worker_serves_fd(const struct voro_worker *w, const struct voro_snapshot *snap, const struct voro_listen_set *ls,
                           int fd);
struct voro_server_counters *voro_worker_server_counters(struct voro_worker *w, struct voro_worker_view *view,
                                                         size_t pool, size_t server);

/* The outcome of admitting an accepted connection. */
struct voro_admission_ticket {
    struct voro_conn_admission adm;
    bool admitted;                /* counted in the limits: release adm when the connection ends */
    bool have_peer;
    struct sockaddr_storage peer; /* the client's address when have_peer */
};

/* Admits an accepted fd on `listener`: this worker's share of global_qps, then the node-wide
 * and per-IP caps, and the descriptor budget: the connection takes `fds` slots of what the fd
 * limit leaves for traffic (2 for an L4 connection, 1 for an HTTP client, whose server socket is
 * counted only while it exists), so the admin API and health checks keep descriptors. The client address is looked up when
 * `need_peer` or per-IP limits are on. On refusal the fd is closed, the reason counted, and
 * false returned. */
bool voro_worker_admit(struct voro_worker *w, int listener, int fd, bool need_peer, uint32_t fds,
                       struct voro_admission_ticket *t);

/* Stops accepting for a short back-off period (descriptors ran out). */
void voro_worker_pause_accepts(struct voro_worker *w);

/* tcp_proxy.c */
size_t voro_tcp_conn_size(void);
void voro_tcp_proxy_accepted(struct voro_worker *w, int listener, int fd);
/* Turns an HTTP connection into a two-way tunnel (after a 101): takes over both sockets, the
 * admission and one balancer count on pools[pool].servers[server] of `view`. `to_client` and
 * `to_server` (loop buffers with `len` bytes from offset 0, may be NULL) are sent first. On
 * success the tunnel owns everything given; on failure the caller keeps it all. */
int voro_tcp_proxy_adopt(struct voro_worker *w, int listener, int cfd, int sfd, struct voro_worker_view *view, int pool,
                         int server, struct voro_buf *to_client, struct voro_buf *to_server,
                         const struct voro_conn_admission *adm, bool admitted);
void voro_tcp_proxy_abort_all(struct voro_worker *w);

/* http/http_proxy.c */
size_t voro_http_conn_size(void);
size_t voro_http_req_size(void);
size_t voro_http_small_head_size(void);
#define VORO_HTTP_SMALL_HEAD 1000 /* bytes of a partial request head kept outside receive buffers */
size_t voro_http_out_size(const struct voro_config *cfg);
void voro_http_proxy_accepted(struct voro_worker *w, int listener, int fd);
void voro_http_proxy_abort_all(struct voro_worker *w);
/* Frees the body buffers kept for reuse (at worker exit). */
void voro_http_proxy_free_buffers(struct voro_worker *w);
/* Draining: closes idle keep-alive connections now, the others after their response. */
void voro_http_proxy_drain(struct voro_worker *w);
/* Once a second: expires idle server connections. */
void voro_http_proxy_on_tick(struct voro_worker *w);

/* udp_proxy.c */
int voro_udp_proxy_attach(struct voro_worker *w, int listener, int fd);
void voro_udp_proxy_detach_missing(struct voro_worker *w);
/* Stops every UDP listener; sessions go to a successor when the node expects a hand-over. */
void voro_udp_proxy_close_all(struct voro_worker *w);
/* Re-checks listeners waiting for a predecessor's sessions. */
void voro_udp_proxy_poll_handovers(struct voro_worker *w);
bool voro_udp_proxy_idle(const struct voro_worker *w);
/* No UDP listener is being closed (its socket is no longer used by this worker). */
bool voro_udp_proxy_settled(const struct voro_worker *w);

#endif
