/* Data-plane lifecycle: socket registry, snapshot publication, worker start and replacement,
 * drain and teardown. Runs on the control thread only. */
#include "node/node.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "node/listen_socket.h"

/* All the SO_REUSEPORT sockets of one (mode, address), kept across reloads. */
struct voro_listen_entry {
    struct voro_listen_entry *next;
    enum voro_listener_mode mode;
    char addr_text[VORO_ADDR_TEXT_MAX];
    struct voro_listen_set set;
    uint64_t last_generation; /* the newest snapshot naming it */
};

static bool same_socket_kind(enum voro_listener_mode a, enum voro_listener_mode b)
{
    return (a == VORO_MODE_UDP) == (b == VORO_MODE_UDP);
}

static struct voro_listen_entry *registry_find(struct voro_node *node, const struct voro_listener_config *lc)
{
    for (struct voro_listen_entry *e = node->sockets; e; e = e->next)
        if (same_socket_kind(e->mode, lc->mode) && strcmp(e->addr_text, lc->bind.text) == 0)
            return e;
    return NULL;
}

static void registry_close_entry(struct voro_listen_entry *e)
{
    for (unsigned i = 0; i < e->set.n_fds; i++)
        close(e->set.fds[i]);
    free(e);
}

/* Makes sure each listener of `cfg` has >= threads sockets; fills snap->listen. Sockets
 * opened by a failing call are closed again so a bad reload changes nothing. */
static int registry_prepare(struct voro_node *node, struct voro_snapshot *snap)
{
    const struct voro_config *cfg = snap->cfg;
    unsigned threads = cfg->threads ? cfg->threads : 1;
    struct {
        struct voro_listen_entry *e;
        unsigned had;
        bool fresh;
    } touched[cfg->n_listeners ? cfg->n_listeners : 1];
    size_t n_touched = 0;
    int rc = 0;
    for (size_t l = 0; l < cfg->n_listeners; l++) {
        const struct voro_listener_config *lc = &cfg->listeners[l];
        struct voro_listen_entry *e = registry_find(node, lc);
        bool fresh = false;
        if (!e) {
            e = calloc(1, sizeof(*e));
            if (!e) {
                rc = -ENOMEM;
                goto rollback;
            }
            e->mode = lc->mode;
            snprintf(e->addr_text, sizeof(e->addr_text), "%s", lc->bind.text);
            fresh = true;
        }
        touched[n_touched].e = e;
        touched[n_touched].had = e->set.n_fds;
        touched[n_touched].fresh = fresh;
        n_touched++;
        /* A UDP listener keeps the sockets it was created with: adding one to a SO_REUSEPORT
         * group re-hashes every client onto possibly another socket, which would orphan the
         * sessions (they live with the socket that received the client's first datagram). */
        unsigned want = (lc->mode == VORO_MODE_UDP && e->set.n_fds) ? e->set.n_fds : threads;
        while (e->set.n_fds < want) {
            int fd = voro_listen_socket_open(&lc->bind, lc->mode);
            if (fd < 0) {
                rc = fd;
                VORO_ERROR("node", "listener %s: cannot listen on %s/%s: %s", lc->name, lc->bind.text,
                           voro_listener_mode_name(lc->mode), strerror(-rc));
                goto rollback;
            }
            e->set.fds[e->set.n_fds++] = fd;
        }
        snap->listen[l] = e->set;
    }
    for (size_t i = 0; i < n_touched; i++) {
        touched[i].e->last_generation = snap->generation;
        if (touched[i].fresh) {
            touched[i].e->next = node->sockets;
            node->sockets = touched[i].e;
        }
    }
    return 0;
rollback:
    for (size_t i = 0; i < n_touched; i++) {
        struct voro_listen_entry *e = touched[i].e;
        while (e->set.n_fds > touched[i].had)
            close(e->set.fds[--e->set.n_fds]);
        if (touched[i].fresh)
            free(e);
    }
    return rc;
}

int voro_node_init(struct voro_node *node, const struct voro_config *cfg)
{
    memset(node, 0, sizeof(*node));
    node->dp.pipes_per_worker = UINT32_MAX; /* main() lowers it to what the fd budget allows */
    node->started_ms = voro_now_ms();
    node->io_model = (enum voro_io_model)cfg->io_model;
    int rc = voro_udp_handovers_init(&node->dp.udp_handovers);
    if (rc)
        return rc;
    rc = voro_conn_limits_init(&node->dp.limits, cfg->per_ip_table_size ? cfg->per_ip_table_size : 65536);
    if (rc)
        voro_udp_handovers_destroy(&node->dp.udp_handovers);
    return rc;
}

static void retire_worker(struct voro_node *node, struct voro_worker *w)
{
    struct voro_worker **r = realloc(node->retiring, (node->n_retiring + 1) * sizeof(*r));
    if (!r) {
        voro_worker_destroy(w); /* stops it at once: better than leaking a thread */
        return;
    }
    node->retiring = r;
    node->retiring[node->n_retiring++] = w;
    voro_worker_post(w, VORO_WORKER_CMD_DRAIN);
}

static void accumulate_retired(struct voro_node *node, const struct voro_worker *w)
{
    struct voro_retired_totals *t = &node->retired_totals;
    t->accepted += voro_counter_get(&w->stats.accepted);
    t->bytes_from_clients += voro_counter_get(&w->stats.bytes_from_clients);
    t->bytes_to_clients += voro_counter_get(&w->stats.bytes_to_clients);
    t->errors += voro_counter_get(&w->stats.errors);
    t->connect_failures += voro_counter_get(&w->stats.connect_failures);
}

/* Starts the workers of a new generation one slot at a time; the old worker of a slot is told
 * to drain only after its replacement accepts on the same sockets, so no listener ever has
 * nobody accepting on it. */
static int replace_workers(struct voro_node *node, unsigned threads, enum voro_io_model model,
                           const struct voro_config *cfg)
{
    struct voro_worker *fresh[VORO_MAX_THREADS] = {0};
    int rc = 0;
    for (unsigned slot = 0; slot < threads; slot++) {
        rc = voro_worker_create(&fresh[slot], &node->dp, slot, node->next_worker_id++, node->cohort, model, cfg);
        if (rc == 0)
            rc = voro_worker_start(fresh[slot]);
        if (rc) {
            VORO_ERROR("node", "cannot start worker %u: %s", slot, strerror(-rc));
            for (unsigned s = 0; s <= slot; s++)
                voro_worker_destroy(fresh[s]);
            return rc;
        }
        if (slot < node->n_workers && node->workers[slot])
            retire_worker(node, node->workers[slot]);
        node->workers[slot] = fresh[slot];
    }
    for (unsigned slot = threads; slot < node->n_workers; slot++) {
        retire_worker(node, node->workers[slot]);
        node->workers[slot] = NULL;
    }
    node->n_workers = threads;
    enum voro_io_model running = voro_loop_model(node->workers[0]->loop);
    VORO_INFO("node", "%u worker%s running (io_model %s%s%s)", threads, threads == 1 ? "" : "s",
              voro_io_model_name(running), running != model ? ", configured " : "",
              running != model ? voro_io_model_name(model) : "");
    return 0;
}

/* Before workers are replaced: every UDP socket the old workers read (the sockets of `old`
 * that the new config keeps) will have its sessions handed over to its new reader. */
static void expect_udp_handovers(struct voro_node *node, const struct voro_snapshot *old, const struct voro_snapshot *fresh)
{
    if (!old)
        return;
    const struct voro_config *cfg = fresh->cfg;
    uint64_t deadline = voro_now_ms() + 2000;
    for (size_t l = 0; l < cfg->n_listeners; l++) {
        if (cfg->listeners[l].mode != VORO_MODE_UDP)
            continue;
        for (size_t o = 0; o < old->cfg->n_listeners; o++) {
            if (old->cfg->listeners[o].mode != VORO_MODE_UDP ||
                strcmp(old->cfg->listeners[o].bind.text, cfg->listeners[l].bind.text) != 0)
                continue;
            for (unsigned j = 0; j < old->listen[o].n_fds; j++)
                if (voro_udp_handover_expect(&node->dp.udp_handovers, old->listen[o].fds[j], deadline) != 0)
                    VORO_WARN("node", "out of memory: UDP sessions on %s may be lost in this reload",
                              cfg->listeners[l].bind.text);
        }
    }
}

int voro_node_apply(struct voro_node *node, struct voro_config *cfg)
{
    enum voro_io_model model = node->io_model_forced ? node->io_model : (enum voro_io_model)cfg->io_model;
    unsigned threads = cfg->threads ? cfg->threads : 1;
    if (threads > VORO_MAX_THREADS)
        threads = VORO_MAX_THREADS;
    unsigned prev_threads = node->current ? (node->current->cfg->threads ? node->current->cfg->threads : 1) : 0;
    unsigned n_slots = threads > prev_threads ? threads : prev_threads;
    struct voro_snapshot *snap;
    int rc = voro_snapshot_create(&snap, cfg, node->current, n_slots, node->generation + 1);
    if (rc) {
        VORO_ERROR("node", "cannot build the new configuration: %s", strerror(-rc));
        return rc;
    }
    rc = registry_prepare(node, snap);
    if (rc) {
        voro_snapshot_destroy(snap);
        return rc;
    }
    bool structural = node->n_workers != threads || (node->n_workers && model != node->io_model);
    snap->cohort = (node->n_workers == 0 || structural) ? node->cohort + 1 : node->cohort;
    struct voro_snapshot *old = node->current;
    if (node->n_workers && structural)
        expect_udp_handovers(node, old, snap); /* before any old worker can see the new snapshot */
    node->generation = snap->generation;
    node->current = snap;
    atomic_store_explicit(&node->dp.current, snap, memory_order_release);
    if (old) {
        atomic_fetch_sub(&old->refs, 1);
        old->retired_next = node->retired;
        node->retired = old;
    }
    node->cohort = snap->cohort;
    node->io_model = model;
    if (node->n_workers == 0 || structural) {
        rc = replace_workers(node, threads, model, cfg);
        if (rc && node->n_workers == 0)
            return rc;
    }
    for (unsigned i = 0; i < node->n_workers; i++)
        voro_worker_notify(node->workers[i]);
    return 0;
}

static bool all_workers_adopted(const struct voro_node *node, uint64_t generation)
{
    for (unsigned i = 0; i < node->n_workers; i++)
        if (atomic_load(&node->workers[i]->adopted_generation) < generation)
            return false;
    return true;
}

static bool all_listeners_released(const struct voro_node *node)
{
    for (unsigned i = 0; i < node->n_workers; i++)
        if (!atomic_load(&node->workers[i]->listeners_released))
            return false;
    for (unsigned i = 0; i < node->n_retiring; i++)
        if (!atomic_load(&node->retiring[i]->listeners_released))
            return false;
    return true;
}

void voro_node_tick(struct voro_node *node)
{
    /* Draining: once no worker accepts any more, close the listening sockets so new clients
     * are refused at once instead of waiting in a backlog nobody reads. */
    if (node->draining && !node->sockets_closed && all_listeners_released(node)) {
        node->sockets_closed = true;
        while (node->sockets) {
            struct voro_listen_entry *e = node->sockets;
            node->sockets = e->next;
            registry_close_entry(e);
        }
    }
    /* Snapshots nobody references any more. */
    struct voro_snapshot **pp = &node->retired;
    while (*pp) {
        struct voro_snapshot *s = *pp;
        if (atomic_load(&s->refs) == 0) {
            *pp = s->retired_next;
            voro_snapshot_destroy(s);
        } else {
            pp = &s->retired_next;
        }
    }
    /* Retired workers that finished draining. */
    for (unsigned i = 0; i < node->n_retiring;) {
        struct voro_worker *w = node->retiring[i];
        if (atomic_load(&w->exited)) {
            accumulate_retired(node, w);
            voro_worker_destroy(w);
            node->retiring[i] = node->retiring[--node->n_retiring];
        } else {
            i++;
        }
    }
    /* Sockets the current config no longer names, once every worker stopped using them
     * (their accept ops were cancelled when they adopted the snapshot). */
    if (node->current && !node->draining && node->n_retiring == 0 && all_workers_adopted(node, node->generation)) {
        struct voro_listen_entry **ep = &node->sockets;
        while (*ep) {
            struct voro_listen_entry *e = *ep;
            if (e->last_generation < node->generation) {
                VORO_INFO("node", "closing listening sockets of %s/%s (no longer configured)", e->addr_text,
                          voro_listener_mode_name(e->mode));
                *ep = e->next;
                registry_close_entry(e);
            } else {
                ep = &e->next;
            }
        }
    }
}

void voro_node_drain(struct voro_node *node)
{
    node->draining = true;
    for (unsigned i = 0; i < node->n_workers; i++)
        voro_worker_post(node->workers[i], VORO_WORKER_CMD_DRAIN);
    for (unsigned i = 0; i < node->n_retiring; i++)
        voro_worker_post(node->retiring[i], VORO_WORKER_CMD_DRAIN);
}

void voro_node_stop_now(struct voro_node *node)
{
    node->draining = true;
    for (unsigned i = 0; i < node->n_workers; i++)
        voro_worker_post(node->workers[i], VORO_WORKER_CMD_STOP);
    for (unsigned i = 0; i < node->n_retiring; i++)
        voro_worker_post(node->retiring[i], VORO_WORKER_CMD_STOP);
}

bool voro_node_stopped(const struct voro_node *node)
{
    for (unsigned i = 0; i < node->n_workers; i++)
        if (!atomic_load(&node->workers[i]->exited))
            return false;
    for (unsigned i = 0; i < node->n_retiring; i++)
        if (!atomic_load(&node->retiring[i]->exited))
            return false;
    return true;
}

void voro_node_set_health(struct voro_node *node, size_t pool, size_t server, bool up)
{
    struct voro_snapshot *snap = node->current;
    if (!snap || pool >= snap->cfg->n_pools || server >= snap->cfg->pools[pool].n_servers)
        return;
    atomic_store_explicit(&snap->servers[pool][server].health, up ? 1u : 0u, memory_order_relaxed);
}

void voro_node_destroy(struct voro_node *node)
{
    for (unsigned i = 0; i < node->n_workers; i++)
        voro_worker_destroy(node->workers[i]);
    for (unsigned i = 0; i < node->n_retiring; i++)
        voro_worker_destroy(node->retiring[i]);
    free(node->retiring);
    node->n_workers = node->n_retiring = 0;
    if (node->current) {
        atomic_fetch_sub(&node->current->refs, 1);
        node->current->retired_next = node->retired;
        node->retired = node->current;
        node->current = NULL;
    }
    while (node->retired) {
        struct voro_snapshot *s = node->retired;
        node->retired = s->retired_next;
        voro_snapshot_destroy(s);
    }
    while (node->sockets) {
        struct voro_listen_entry *e = node->sockets;
        node->sockets = e->next;
        registry_close_entry(e);
    }
    voro_conn_limits_destroy(&node->dp.limits);
    voro_udp_handovers_destroy(&node->dp.udp_handovers);
}
