/* The node's data plane as a whole: the listening-socket registry, the workers (replaced one
 * at a time when threads or io_model change), snapshot publication and retirement, drain. All
 * of it runs on the control thread; workers only see the dataplane and their own commands. */
#ifndef VORO_NODE_NODE_H
#define VORO_NODE_NODE_H

#include <stdbool.h>
#include <stdint.h>

#include "cluster/config.h"
#include "node/dataplane.h"
#include "node/loop/loop.h"
#include "node/worker.h"

struct voro_listen_entry;

/* Totals of workers that have exited (so /stats keeps counting after a replacement). */
struct voro_retired_totals {
    uint64_t accepted, bytes_from_clients, bytes_to_clients, errors, connect_failures;
};

struct voro_node {
    struct voro_dataplane dp;
    struct voro_worker *workers[VORO_MAX_THREADS]; /* active, by slot; owned */
    unsigned n_workers;
    struct voro_worker **retiring; /* draining after a replacement; owned */
    unsigned n_retiring;
    struct voro_listen_entry *sockets; /* registry, owned (closes the fds) */
    struct voro_snapshot *current;     /* the node's reference */
    struct voro_snapshot *retired;     /* waiting for their last worker reference */
    uint64_t generation;
    uint64_t cohort;             /* bumped each time the workers are replaced */
    unsigned next_worker_id;
    enum voro_io_model io_model; /* configured (after the command-line override) */
    bool io_model_forced;        /* --io-model given: config io_model is ignored */
    bool draining;
    bool sockets_closed;         /* draining: listening sockets closed once no worker uses them */
    uint64_t started_ms;
    struct voro_retired_totals retired_totals;
};

/* Initialises `node` (caller-owned memory). */
int voro_node_init(struct voro_node *node, const struct voro_config *cfg);
/* Applies `cfg` (ownership taken, also on failure): opens sockets for new listeners, publishes
 * the snapshot, starts or replaces workers. On failure the previous config stays in force and
 * a negative errno is returned after logging why. */
int voro_node_apply(struct voro_node *node, struct voro_config *cfg);
/* Housekeeping from the control thread's tick: frees snapshots no worker uses, closes sockets
 * no listener names any more, joins workers that finished draining. */
void voro_node_tick(struct voro_node *node);
/* Stops accepting everywhere and lets connections finish (each worker exits when idle or at
 * the drain grace period). */
void voro_node_drain(struct voro_node *node);
/* Closes everything at once. */
void voro_node_stop_now(struct voro_node *node);
/* True once every worker has exited. */
bool voro_node_stopped(const struct voro_node *node);
/* Publishes a health verdict for pools[pool].servers[server] of the current config. */
void voro_node_set_health(struct voro_node *node, size_t pool, size_t server, bool up);
void voro_node_destroy(struct voro_node *node);

#endif
