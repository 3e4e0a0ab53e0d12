/* Start-up check of the file-descriptor budget: raises the soft RLIMIT_NOFILE to the hard
 * limit and says how many proxied connections the node can hold with what it must keep open
 * (listeners, rings, eventfds, splice pipes, the admin server, health checks); with select(2)
 * the budget stops at FD_SETSIZE. */
#ifndef VORO_NODE_FD_BUDGET_H
#define VORO_NODE_FD_BUDGET_H

#include <stdbool.h>
#include <stdint.h>

#include "cluster/config.h"

struct voro_fd_budget {
    unsigned long limit;        /* RLIMIT_NOFILE after raising the soft limit */
    unsigned long fixed;        /* descriptors the node keeps open regardless of traffic */
    unsigned long descriptors;  /* sockets traffic may hold: L4 connections take 2, HTTP clients 1 plus
                                 * 1 per server connection in use or pooled */
    unsigned long connections;  /* proxied L4 connections that fit (2 fds each) */
    uint32_t pipes_per_worker;  /* splice pipes each worker may keep (2 fds each), <= [server] pipes */
};

/* Computes the budget for `cfg`; logs it, and warns when max_connections cannot fit.
 * Returns 0, or -EMFILE when not even the fixed descriptors fit. */
int voro_fd_budget_check(const struct voro_config *cfg, bool select_model, struct voro_fd_budget *out);

#endif
