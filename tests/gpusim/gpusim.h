/* gpusim: shared types of the simulated OpenAI-compatible inference server (config, engine, connections). */
#ifndef VORO_GPUSIM_H
#define VORO_GPUSIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/strbuf.h"
#include "proto/http1.h"

#define GPUSIM_MAX_MODELS 32
#define GPUSIM_MAX_MODEL_ID 128 /* bytes incl. NUL */
#define GPUSIM_MAX_NAME 64
#define GPUSIM_MAX_GPUS 64
#define GPUSIM_MAX_BATCH 1024
#define GPUSIM_MAX_HEAD 16384           /* request head bound -> 431 */
#define GPUSIM_MAX_BODY (1024u * 1024u) /* request body bound -> 413 */
#define GPUSIM_MAX_N 16                 /* "n" choices per request */
#define GPUSIM_MAX_TOKENS_LIMIT 65536   /* max_tokens above this -> 400 */
#define GPUSIM_KV_BLOCK_TOKENS 16       /* tokens per KV block, as vLLM's default block_size */
#define GPUSIM_TTFT_BUCKETS 22
#define GPUSIM_E2E_BUCKETS 21

/* One served model. A LoRA adapter has a parent (its base model); a version is reported in
 * /v1/models and in the X-Gpusim-Model-Version response header. */
struct gpusim_model {
    char id[GPUSIM_MAX_MODEL_ID];
    char version[32];
    char parent[GPUSIM_MAX_MODEL_ID]; /* "" for a base model */
};

struct gpusim_models {
    unsigned n;
    struct gpusim_model m[GPUSIM_MAX_MODELS];
};

/* Run-time knobs: set by flags at start, changed by POST /control. */
struct gpusim_knobs {
    double slow;       /* multiplies step and prefill time */
    double fail_rate;  /* share of inference requests answered 500 */
    bool hang;         /* read requests and never answer (except /control) */
    double step_ms;    /* decode step base time */
    double prefill_ms; /* prefill time per 100 prompt tokens */
    uint64_t xid;      /* value reported as DCGM_FI_DEV_XID_ERRORS (last XID error) */
};

struct gpusim_config {
    char host[64];
    int port;
    unsigned gpus;
    unsigned max_batch;
    uint64_t kv_blocks; /* per GPU; capacity = kv_blocks * GPUSIM_KV_BLOCK_TOKENS tokens */
    unsigned embed_dim;
    uint64_t seed;
    uint64_t fb_mib; /* simulated frame-buffer size per GPU */
    char name[GPUSIM_MAX_NAME];
    struct gpusim_knobs knobs;
    struct gpusim_models models;
};

enum gpusim_api {
    GPUSIM_API_CHAT = 0,
    GPUSIM_API_COMPLETION = 1,
};

enum gpusim_seq_state {
    GPUSIM_SEQ_IDLE = 0,
    GPUSIM_SEQ_QUEUED = 1,
    GPUSIM_SEQ_RUNNING = 2,
};

struct gpusim_conn;

/* One inference request in the capacity model. Embedded in its connection (a connection has at
 * most one request in flight), so the engine never allocates. */
struct gpusim_seq {
    struct gpusim_conn *conn;
    struct gpusim_seq *next, *prev; /* queue links while QUEUED */
    enum gpusim_seq_state state;
    enum gpusim_api api;
    unsigned gpu;
    unsigned slot; /* index in the GPU's batch while RUNNING */
    bool stream;
    bool include_usage;
    unsigned n;            /* choices */
    uint32_t max_tokens;
    uint32_t generated; /* tokens per choice so far */
    uint32_t prompt_tokens;
    uint64_t id;
    uint64_t created;    /* unix seconds */
    uint64_t arrival_us; /* monotonic */
    char model[GPUSIM_MAX_MODEL_ID];
};

/* One simulated GPU: a batch of running sequences, a FIFO queue and one step timer. */
struct gpusim_gpu {
    struct gpusim_server *srv;
    unsigned index;
    uv_timer_t timer;
    bool stepping; /* a step is in progress (the timer is armed) */
    unsigned n_running;
    struct gpusim_seq **running; /* [max_batch] */
    struct gpusim_seq *q_head, *q_tail;
    unsigned n_waiting;
    uint64_t kv_tokens; /* tokens held by running sequences */
    double carry_us;    /* sub-millisecond remainder of step times (uv timers are in ms) */
};

/* Counters and histograms exported as vLLM metrics (summed over GPUs). */
struct gpusim_stats {
    uint64_t prompt_tokens;
    uint64_t generation_tokens;
    uint64_t success_length;
    uint64_t failed_injected;
    uint64_t cancelled;
    uint64_t embeddings;
    uint64_t ttft_buckets[GPUSIM_TTFT_BUCKETS];
    uint64_t ttft_count;
    double ttft_sum;
    uint64_t e2e_buckets[GPUSIM_E2E_BUCKETS];
    uint64_t e2e_count;
    double e2e_sum;
};

struct gpusim_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    struct gpusim_config cfg;
    struct gpusim_gpu gpus[GPUSIM_MAX_GPUS];
    struct gpusim_stats stats;
    uint64_t rng; /* xorshift64* state for fail_rate */
    uint64_t next_id;
    uint64_t start_unix;
    unsigned n_conns;
    struct gpusim_conn *free_conns; /* recycled connection objects */
    unsigned n_free_conns;
    struct voro_strbuf scratch; /* response bodies are built here, then copied to a conn */
};

/* A client connection. Owned by the server; freed (or recycled) in the close callback. */
struct gpusim_conn {
    uv_tcp_t tcp;
    struct gpusim_server *srv;
    struct gpusim_conn *next_free;
    struct voro_http1_parser parser;
    char *in; /* received bytes; message starts at in[0] */
    size_t in_len, in_cap;
    /* body framing of the message being received */
    bool head_done;
    int body_kind; /* enum voro_http1_body */
    struct voro_http1_chunked chunked;
    size_t body_len; /* decoded body bytes at in[head_len ..) */
    size_t raw_pos;  /* next undecoded raw byte (chunked) */
    bool sent_continue;
    /* state */
    bool busy;       /* a request is being answered: parsing of the next one waits */
    bool in_handler; /* inside voro_gpusim_api_handle (a synchronous answer) */
    bool hung;       /* hang knob: never answer */
    bool keep_alive;
    bool http10;      /* the request being answered is HTTP/1.0 */
    bool chunked_out; /* streaming response uses chunked transfer coding */
    bool closing;     /* close once output is flushed */
    bool lingering;   /* output done and FIN sent: discard input until the client closes */
    size_t lingered;  /* bytes discarded while lingering (bounded) */
    bool close_called;
    bool reading;
    bool writing;
    struct voro_strbuf out;      /* pending output */
    struct voro_strbuf inflight; /* bytes handed to uv_write */
    uv_write_t wreq;
    uv_shutdown_t sreq;
    struct gpusim_seq seq;
};

/* ---- engine.c: capacity model ---- */
int voro_gpusim_engine_init(struct gpusim_server *srv);
/* Frees the batch tables; the step timers are closed with every other handle (uv_walk) first. */
void voro_gpusim_engine_close(struct gpusim_server *srv);
/* Queues `seq` (filled by the caller) on the least-loaded GPU; the step timer picks it up. */
void voro_gpusim_engine_submit(struct gpusim_server *srv, struct gpusim_seq *seq);
/* Removes a queued or running sequence without answering it (client went away). */
void voro_gpusim_engine_cancel(struct gpusim_server *srv, struct gpusim_seq *seq);

/* ---- api.c: endpoints ---- */
/* Handles one complete request: head in c->in[0..head_len), body at c->in[head_len..+body_len). */
void voro_gpusim_api_handle(struct gpusim_conn *c);
/* Called by the engine for every step in which `seq` produced a token (and when it finished). */
void voro_gpusim_api_token(struct gpusim_seq *seq, bool finished);
/* Answers with OpenAI's error shape {"error":{"message","type","param","code"}}; param may be NULL.
 * Ends the request (voro_gpusim_conn_request_done) unless the connection is failing. */
void voro_gpusim_api_error_param(struct gpusim_conn *c, int status, const char *code, const char *param,
                                 const char *message);
void voro_gpusim_api_error(struct gpusim_conn *c, int status, const char *code, const char *message);
/* Parses a model list ("a,b@v2,lora:x,lora:y:base") into `out`; 0 or -EINVAL. */
int voro_gpusim_models_parse(const char *s, size_t len, struct gpusim_models *out);

/* ---- metrics.c ---- */
void voro_gpusim_metrics_render(struct gpusim_server *srv, struct voro_strbuf *sb);
void voro_gpusim_metrics_observe_ttft(struct gpusim_stats *st, double seconds);
void voro_gpusim_metrics_observe_e2e(struct gpusim_stats *st, double seconds);

/* ---- conn.c: HTTP connections ---- */
int voro_gpusim_server_listen(struct gpusim_server *srv);
/* Appends a complete response (status line, headers incl. X-Gpusim-Name, body) to c's output. */
void voro_gpusim_conn_respond(struct gpusim_conn *c, int status, const char *content_type, const char *extra_headers,
                              const char *body, size_t body_len);
/* Starts a streamed (SSE) response; then voro_gpusim_conn_stream_chunk per event, voro_gpusim_conn_stream_end. */
void voro_gpusim_conn_stream_begin(struct gpusim_conn *c, const char *extra_headers);
void voro_gpusim_conn_stream_chunk(struct gpusim_conn *c, const char *data, size_t len);
void voro_gpusim_conn_stream_end(struct gpusim_conn *c);
void voro_gpusim_server_free_conns(struct gpusim_server *srv);
/* Closes a connection; a request in flight leaves the engine in the close callback. */
void voro_gpusim_conn_close(struct gpusim_conn *c);
/* The current request is answered: parse the next pipelined one (if any). */
void voro_gpusim_conn_request_done(struct gpusim_conn *c);
/* Starts writing queued output. */
void voro_gpusim_conn_flush(struct gpusim_conn *c);
/* The decoded body of the request being handled (c->body_len bytes). */
static inline const char *voro_gpusim_conn_body(const struct gpusim_conn *c) { return c->in + c->parser.head_len; }

#endif
