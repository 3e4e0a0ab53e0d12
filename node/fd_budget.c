/* File-descriptor budget at start-up (RLIMIT_NOFILE against what the config needs). */
#include "node/fd_budget.h"

#include <errno.h>
#include <sys/resource.h>
#include <sys/select.h>

#include "common/log.h"

#define ADMIN_MAX_CONNECTIONS 256
#define SPARE_FDS 32

int voro_fd_budget_check(const struct voro_config *cfg, bool select_model, struct voro_fd_budget *out)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -errno;
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t want = rl.rlim_max;
        struct rlimit raised = {.rlim_cur = want, .rlim_max = rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
            rl.rlim_cur = want;
    }
    unsigned threads = cfg->threads ? cfg->threads : 1;
    unsigned long health = 0;
    for (size_t p = 0; p < cfg->n_pools; p++)
        health += cfg->pools[p].n_servers;
    /* Per worker: its listening sockets, an io_uring or epoll fd, a wakeup eventfd. */
    unsigned long fixed = (unsigned long)threads * (cfg->n_listeners + 2) + ADMIN_MAX_CONNECTIONS + health + SPARE_FDS;
    out->limit = (unsigned long)rl.rlim_cur;
    if (select_model && out->limit > FD_SETSIZE) {
        /* select(2) cannot watch descriptors >= FD_SETSIZE: size the budget to what it can. */
        out->limit = FD_SETSIZE;
    }
    out->fixed = fixed;
    if (out->limit <= fixed) {
        VORO_ERROR("node", "file descriptor limit %lu is below the %lu this configuration needs before any traffic",
                   out->limit, fixed);
        return -EMFILE;
    }
    /* Splice pipes (two fds each) take at most a quarter of what is left: they are an
     * optimisation, connections come first. */
    unsigned long spare = out->limit - fixed;
    unsigned long pipes = cfg->splice ? cfg->pipes : 0;
    if (pipes * 2 * threads > spare / 4)
        pipes = spare / 4 / 2 / threads;
    out->pipes_per_worker = (uint32_t)pipes;
    out->descriptors = spare - pipes * 2 * threads;
    out->connections = out->descriptors / 2;
    VORO_INFO("node",
              "fd budget: limit %lu, %lu fixed, %u splice pipes per worker, %lu descriptors for traffic (about %lu L4 "
              "connections, or as many idle HTTP clients as descriptors)",
              out->limit, fixed, out->pipes_per_worker, out->descriptors, out->connections);
    if (!cfg->max_connections || cfg->max_connections > out->connections)
        VORO_WARN("node",
                  "max_connections %s%u: beyond about %lu L4 connections the fd limit refuses new clients "
                  "(raise LimitNOFILE to hold more)",
                  cfg->max_connections ? "= " : "(unlimited) ", cfg->max_connections, out->connections);
    return 0;
}
