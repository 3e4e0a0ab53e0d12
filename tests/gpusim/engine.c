/* gpusim: the capacity model, continuous batching per simulated GPU driven by one step timer each. */
#include "tests/gpusim/gpusim.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "common/clock.h"

static void on_step(uv_timer_t *t);

static uint64_t seq_kv_tokens(const struct gpusim_seq *s)
{
    return (uint64_t)s->prompt_tokens + (uint64_t)s->generated * s->n;
}

static uint64_t kv_capacity(const struct gpusim_server *srv) { return srv->cfg.kv_blocks * GPUSIM_KV_BLOCK_TOKENS; }

static void queue_remove(struct gpusim_gpu *g, struct gpusim_seq *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        g->q_head = s->next;
    if (s->next)
        s->next->prev = s->prev;
    else
        g->q_tail = s->prev;
    s->next = s->prev = NULL;
    g->n_waiting--;
}

static void batch_remove(struct gpusim_gpu *g, struct gpusim_seq *s)
{
    unsigned last = --g->n_running;
    if (s->slot != last) {
        g->running[s->slot] = g->running[last];
        g->running[s->slot]->slot = s->slot;
    }
    g->running[last] = NULL;
    g->kv_tokens -= seq_kv_tokens(s);
    s->state = GPUSIM_SEQ_IDLE;
}

/* A step boundary: queued sequences join (FIFO, while the batch and the KV cache have room), then
 * the next step is timed: decode time grows with the batch, and a joining sequence's prefill
 * stalls the whole step (no chunked prefill), which is what makes TTFT grow under load. */
static void start_step(struct gpusim_gpu *g)
{
    struct gpusim_server *srv = g->srv;
    const struct gpusim_knobs *k = &srv->cfg.knobs;
    uint64_t prefill_tokens = 0;
    uint64_t cap = kv_capacity(srv);

    while (g->q_head && g->n_running < srv->cfg.max_batch) {
        struct gpusim_seq *s = g->q_head;
        /* A sequence that alone exceeds the cache still runs when the batch is empty, so an
         * oversized request cannot block the queue forever. */
        if (g->n_running > 0 && g->kv_tokens + s->prompt_tokens + s->n > cap)
            break;
        queue_remove(g, s);
        s->state = GPUSIM_SEQ_RUNNING;
        s->slot = g->n_running;
        g->running[g->n_running++] = s;
        g->kv_tokens += seq_kv_tokens(s);
        srv->stats.prompt_tokens += s->prompt_tokens;
        prefill_tokens += s->prompt_tokens;
    }
    if (g->n_running == 0) {
        g->stepping = false;
        g->carry_us = 0;
        return;
    }
    double us =
        (k->step_ms * (1.0 + 0.02 * g->n_running) + k->prefill_ms * (double)prefill_tokens / 100.0) * k->slow * 1000.0;
    if (!(us >= 0))
        us = 0;
    us += g->carry_us;
    double ms = floor(us / 1000.0);
    g->carry_us = us - ms * 1000.0;
    g->stepping = true;
    uv_timer_start(&g->timer, on_step, (uint64_t)ms, 0);
}

static void on_step(uv_timer_t *t)
{
    struct gpusim_gpu *g = t->data;
    struct gpusim_server *srv = g->srv;
    uint64_t now = voro_now_us();

    for (unsigned i = 0; i < g->n_running;) {
        struct gpusim_seq *s = g->running[i];
        s->generated++;
        g->kv_tokens += s->n;
        srv->stats.generation_tokens += s->n;
        if (s->generated == 1)
            voro_gpusim_metrics_observe_ttft(&srv->stats, (double)(now - s->arrival_us) / 1e6);
        if (s->generated < s->max_tokens) {
            voro_gpusim_api_token(s, false);
            i++;
            continue;
        }
        /* Leave the batch before answering: answering may start the connection's next
         * pipelined request, which reuses this sequence object. */
        batch_remove(g, s);
        srv->stats.success_length++;
        voro_gpusim_metrics_observe_e2e(&srv->stats, (double)(now - s->arrival_us) / 1e6);
        voro_gpusim_api_token(s, true);
    }
    start_step(g);
}

int voro_gpusim_engine_init(struct gpusim_server *srv)
{
    for (unsigned i = 0; i < srv->cfg.gpus; i++) {
        struct gpusim_gpu *g = &srv->gpus[i];
        g->srv = srv;
        g->index = i;
        g->running = calloc(srv->cfg.max_batch, sizeof(*g->running));
        if (!g->running)
            goto fail;
    }
    /* Timers only once nothing can fail: the caller closes them with every other handle. */
    for (unsigned i = 0; i < srv->cfg.gpus; i++) {
        uv_timer_init(srv->loop, &srv->gpus[i].timer);
        srv->gpus[i].timer.data = &srv->gpus[i];
    }
    return 0;
fail:
    voro_gpusim_engine_close(srv);
    return -ENOMEM;
}

void voro_gpusim_engine_close(struct gpusim_server *srv)
{
    for (unsigned i = 0; i < srv->cfg.gpus; i++) {
        struct gpusim_gpu *g = &srv->gpus[i];
        free(g->running);
        g->running = NULL;
    }
}

void voro_gpusim_engine_submit(struct gpusim_server *srv, struct gpusim_seq *seq)
{
    unsigned best = 0;
    unsigned best_load = ~0u;
    for (unsigned i = 0; i < srv->cfg.gpus; i++) {
        unsigned load = srv->gpus[i].n_running + srv->gpus[i].n_waiting;
        if (load < best_load) {
            best_load = load;
            best = i;
        }
    }
    struct gpusim_gpu *g = &srv->gpus[best];
    seq->gpu = best;
    seq->generated = 0;
    seq->state = GPUSIM_SEQ_QUEUED;
    seq->next = NULL;
    seq->prev = g->q_tail;
    if (g->q_tail)
        g->q_tail->next = seq;
    else
        g->q_head = seq;
    g->q_tail = seq;
    g->n_waiting++;
    if (!g->stepping)
        start_step(g);
}

void voro_gpusim_engine_cancel(struct gpusim_server *srv, struct gpusim_seq *seq)
{
    struct gpusim_gpu *g = &srv->gpus[seq->gpu];
    if (seq->state == GPUSIM_SEQ_QUEUED) {
        queue_remove(g, seq);
        seq->state = GPUSIM_SEQ_IDLE;
        srv->stats.cancelled++;
    } else if (seq->state == GPUSIM_SEQ_RUNNING) {
        batch_remove(g, seq);
        srv->stats.cancelled++;
    }
}
