/* voro: the node process. The composition root: parses the command line and the config,
 * starts the data plane (workers) and runs the control plane on the main thread. */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster.h"
#include "cluster/config.h"
#include "cluster/control.h"
#include "cluster/dynamic_backends.h"
#include "common/log.h"
#include "node/bridge.h"
#include "node/fd_budget.h"
#include "node/loop/loop.h"
#include "node/node.h"

#ifndef VORO_VERSION
#define VORO_VERSION "0.1.0"
#endif

#define EXIT_CONFIG 2

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: voro -c FILE [--io-model NAME] [--log-level LEVEL]\n"
            "       voro -t FILE\n"
            "\n"
            "  -c, --config FILE     run with this configuration (INI, see docs/config.md)\n"
            "  -t, --check FILE      validate FILE: exit 0 if valid, else print every error as\n"
            "                        file:line: reason and exit 2\n"
            "      --io-model NAME   io_uring | epoll | poll | select (overrides [server] io_model)\n"
            "      --log-level LEVEL debug | info | warn | error (overrides [server] log_level)\n"
            "      --recover-raft    with -c: after losing the Raft majority, make this node the only\n"
            "                        voter of its cluster (every node stopped; see docs/cluster.md)\n"
            "  -v, --version         print the version and exit\n"
            "  -h, --help            print this help and exit\n"
            "\n"
            "Signals: SIGHUP reloads the configuration without dropping connections;\n"
            "SIGTERM/SIGINT stop accepting and drain (a second one closes everything).\n");
}

static int load_config(const char *path, struct voro_config **out)
{
    struct voro_config_errors errors = {0};
    int rc = voro_config_load(path, out, &errors);
    for (size_t i = 0; i < errors.count; i++)
        fprintf(stderr, "%s\n", errors.items[i].message);
    if (rc && errors.count == 0)
        fprintf(stderr, "%s: %s\n", path, strerror(-rc));
    voro_config_errors_free(&errors);
    return rc;
}

/* A cluster member: the replicated config versions and SIGHUP go through the layered config
 * (local node-scoped keys + the cluster's text); the bridge's other hooks are wrapped as they are. */
struct member {
    struct voro_node *node;
    struct voro_bridge *bridge;
    struct voro_control *control;
    struct voro_cluster *cluster;
    const char *config_path;
    struct voro_control_hooks inner;
    bool told_ignored;
    char *text_in_force; /* owned: the cluster text of version_in_force, NULL before the first */
    size_t text_in_force_len;
    uint64_t version_in_force;
};

/* Builds the effective config from the local file, cluster `text` and the cluster's dynamic
 * backends, and swaps it into the workers. 0 or a negative errno, with `reason` filled. */
static int member_build(struct member *m, uint64_t version, const char *text, size_t len, char *reason, size_t rn)
{
    char name[64];
    snprintf(name, sizeof(name), "cluster-config-v%llu", (unsigned long long)version);
    struct voro_config *cfg = NULL;
    struct voro_config_errors errors = {0};
    size_t ignored = 0;
    int rc = voro_config_load_layered(m->config_path, name, text, len, &cfg, &errors, &ignored);
    if (rc) {
        for (size_t i = 0; i < errors.count; i++)
            VORO_ERROR("config", "%s", errors.items[i].message);
        snprintf(reason, rn, "%.250s", errors.count ? errors.items[0].message : strerror(-rc));
        voro_config_errors_free(&errors);
        return rc;
    }
    voro_config_errors_free(&errors);
    if (ignored && !m->told_ignored) {
        m->told_ignored = true;
        VORO_INFO("config", "%s: %zu cluster-scoped key%s and section%s ignored: the cluster's config is in force",
                  m->config_path, ignored, ignored == 1 ? "" : "s", ignored == 1 ? "" : "s");
    }
    size_t n_backends = 0;
    const struct voro_backend *backends = voro_cluster_backends(m->cluster, &n_backends);
    struct voro_backend_merge_stats st;
    if ((rc = voro_config_merge_backends(cfg, backends, n_backends, &st)) != 0) {
        voro_config_free(cfg);
        snprintf(reason, rn, "cannot merge the dynamic backends: %s", strerror(-rc));
        return rc;
    }
    if (n_backends)
        VORO_INFO("config", "dynamic backends: %zu added, %zu overriding a configured server, %zu skipped", st.added,
                  st.updated, st.skipped);
    if ((rc = voro_node_apply(m->node, cfg)) != 0) { /* takes cfg */
        snprintf(reason, rn, "cannot apply: %s", strerror(-rc));
        return rc;
    }
    voro_control_set_config(m->control, m->node->current->cfg);
    return 0;
}

/* Rebuilds the config version in force with the current dynamic backends. Its version number
 * is not reported again (the text in force did not change; docs/cluster.md). */
static void member_reapply(struct member *m)
{
    if (!m->text_in_force) {
        VORO_INFO("config", "dynamic backends: applied with the first cluster config version in force");
        return;
    }
    char reason[256] = "";
    if (member_build(m, m->version_in_force, m->text_in_force, m->text_in_force_len, reason, sizeof(reason)) != 0) {
        VORO_ERROR("config", "dynamic backends changed but not applied: %s; the running configuration stays in force",
                   reason);
        return;
    }
    VORO_INFO("config", "dynamic backends applied to cluster config version %llu (generation %llu)",
              (unsigned long long)m->version_in_force, (unsigned long long)m->node->generation);
}

/* Applies config `version` and reports the outcome to the cluster. A failure keeps the running
 * config; it is reported only for a new version (after a failed SIGHUP the version in force is
 * still the good one). The text in force is kept for re-applying when the backends change. */
static void member_apply(struct member *m, uint64_t version, const char *text, size_t len, bool new_version)
{
    char reason[256] = "";
    if (member_build(m, version, text, len, reason, sizeof(reason)) != 0) {
        VORO_ERROR("config", "cluster config version %llu not activated: %s; the running configuration stays in force",
                   (unsigned long long)version, reason);
        if (new_version) {
            voro_cluster_report_active(m->cluster, version, false, reason);
            size_t n_backends = 0;
            voro_cluster_backends(m->cluster, &n_backends);
            if (n_backends) /* a backend change handed over with this version still applies */
                member_reapply(m);
        }
        return;
    }
    char *copy = malloc(len + 1);
    if (copy) {
        memcpy(copy, text, len);
        copy[len] = '\0';
    }
    free(m->text_in_force); /* without a copy, backend changes wait for the next version */
    m->text_in_force = copy;
    m->text_in_force_len = len;
    m->version_in_force = version;
    VORO_INFO("config", "cluster config version %llu in force (generation %llu)", (unsigned long long)version,
              (unsigned long long)m->node->generation);
    voro_cluster_report_active(m->cluster, version, true, "");
}

/* The dynamic backends changed (and no new version came with them). */
static void member_on_backends(void *ctx)
{
    struct member *m = ctx;
    if (!m->bridge->shutting_down)
        member_reapply(m);
}

static void member_on_config(void *ctx, uint64_t version, const char *text, size_t len)
{
    struct member *m = ctx;
    if (!m->bridge->shutting_down)
        member_apply(m, version, text, len, true);
}

static void member_on_reload(void *ctx)
{
    struct member *m = ctx;
    uint64_t version = 0;
    size_t len = 0;
    const char *text = m->cluster ? voro_cluster_config_text(m->cluster, &version, &len) : NULL;
    if (!text || m->bridge->shutting_down) {
        m->inner.on_reload(m->inner.ctx);
        return;
    }
    VORO_INFO("config", "SIGHUP: reloading the node-scoped keys of %s with cluster config version %llu",
              m->config_path, (unsigned long long)version);
    member_apply(m, version, text, len, false);
}

static int member_server_health(void *ctx, const char *pool, const char *address, const char **reason)
{
    struct member *m = ctx;
    struct voro_sockaddr sa;
    if (!m->node->current || voro_sockaddr_parse(address, &sa) != 0)
        return -1;
    const struct voro_config *cfg = m->node->current->cfg;
    for (size_t p = 0; p < cfg->n_pools; p++) {
        if (strcmp(cfg->pools[p].name, pool))
            continue;
        for (size_t s = 0; s < cfg->pools[p].n_servers; s++)
            if (!strcmp(cfg->pools[p].servers[s].addr.text, sa.text))
                return voro_control_server_up(m->control, p, s, reason) ? 1 : 0;
    }
    return -1;
}

static int member_server_counts(void *ctx, size_t *up, size_t *down)
{
    struct member *m = ctx;
    if (!m->node->current)
        return -ENOENT;
    const struct voro_config *cfg = m->node->current->cfg;
    for (size_t p = 0; p < cfg->n_pools; p++)
        for (size_t s = 0; s < cfg->pools[p].n_servers; s++) {
            const char *reason;
            if (voro_control_server_up(m->control, p, s, &reason))
                (*up)++;
            else
                (*down)++;
        }
    return 0;
}

static void member_on_shutdown(void *ctx, int signo)
{
    struct member *m = ctx;
    m->inner.on_shutdown(m->inner.ctx, signo);
}

static void member_on_health(void *ctx, size_t pool, size_t server, bool up, const char *reason)
{
    struct member *m = ctx;
    m->inner.on_health(m->inner.ctx, pool, server, up, reason);
}

static void member_on_tick(void *ctx)
{
    struct member *m = ctx;
    m->inner.on_tick(m->inner.ctx);
}

int main(int argc, char **argv)
{
    static const struct option long_opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check", required_argument, NULL, 't'},
        {"io-model", required_argument, NULL, 'm'},
        {"log-level", required_argument, NULL, 'l'},
        {"recover-raft", no_argument, NULL, 'R'},
        {"version", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool recover_raft = false;
    const char *config_path = NULL, *check_path = NULL, *io_model_name = NULL, *log_level = NULL;
    int opt;
    while ((opt = getopt_long(argc, argv, "c:t:vh", long_opts, NULL)) != -1) {
        switch (opt) {
        case 'c': config_path = optarg; break;
        case 't': check_path = optarg; break;
        case 'm': io_model_name = optarg; break;
        case 'l': log_level = optarg; break;
        case 'R': recover_raft = true; break;
        case 'v': printf("voro %s\n", VORO_VERSION); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return EXIT_CONFIG;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "voro: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return EXIT_CONFIG;
    }
    enum voro_io_model forced_model = VORO_IO_URING;
    if (io_model_name && voro_io_model_parse(io_model_name, &forced_model) != 0) {
        fprintf(stderr, "voro: unknown io model '%s' (io_uring, epoll, poll or select)\n", io_model_name);
        return EXIT_CONFIG;
    }
    if (recover_raft) {
        struct voro_config *cfg = NULL;
        if (!config_path) {
            fprintf(stderr, "voro: --recover-raft needs -c FILE (the node's own config)\n");
            return EXIT_CONFIG;
        }
        if (load_config(config_path, &cfg) != 0)
            return EXIT_CONFIG;
        if (!cfg->cluster_enabled) {
            fprintf(stderr, "%s: no [cluster] node_id: this node is not a cluster member\n", config_path);
            voro_config_free(cfg);
            return EXIT_CONFIG;
        }
        int rc = voro_cluster_recover(cfg);
        voro_config_free(cfg);
        if (rc != 0) {
            fprintf(stderr, "voro: recovery failed: %s\n", strerror(-rc));
            return 1;
        }
        printf("recovered: this node is now the only voter; start it, then join the others again\n");
        return 0;
    }
    if (check_path) {
        struct voro_config *cfg = NULL;
        if (load_config(check_path, &cfg) != 0)
            return EXIT_CONFIG;
        printf("%s: configuration is valid (%zu listener%s, %zu pool%s)\n", check_path, cfg->n_listeners,
               cfg->n_listeners == 1 ? "" : "s", cfg->n_pools, cfg->n_pools == 1 ? "" : "s");
        voro_config_free(cfg);
        return 0;
    }
    if (!config_path) {
        usage(stderr);
        return EXIT_CONFIG;
    }

    struct voro_config *cfg = NULL;
    if (load_config(config_path, &cfg) != 0)
        return EXIT_CONFIG;
    enum voro_log_level level;
    const char *level_name = log_level ? log_level : (cfg->log_level[0] ? cfg->log_level : "info");
    if (voro_log_parse_level(level_name, &level) != 0) {
        fprintf(stderr, "voro: unknown log level '%s'\n", level_name);
        voro_config_free(cfg);
        return EXIT_CONFIG;
    }
    voro_log_set_level(level);

    signal(SIGPIPE, SIG_IGN);
    struct voro_fd_budget budget;
    enum voro_io_model model = io_model_name ? forced_model : (enum voro_io_model)cfg->io_model;
    if (voro_fd_budget_check(cfg, model == VORO_IO_SELECT, &budget) != 0) {
        voro_config_free(cfg);
        return 1;
    }

    /* Workers inherit a mask without the control signals, so only this thread handles them. */
    sigset_t ctl, old_mask;
    sigemptyset(&ctl);
    sigaddset(&ctl, SIGHUP);
    sigaddset(&ctl, SIGTERM);
    sigaddset(&ctl, SIGINT);
    pthread_sigmask(SIG_BLOCK, &ctl, &old_mask);

    int exit_code = 1;
    struct voro_node node;
    struct voro_bridge bridge;
    struct voro_control *control = NULL;
    struct member member = {.node = &node, .bridge = &bridge, .config_path = config_path};
    if (voro_node_init(&node, cfg) != 0) {
        voro_config_free(cfg);
        goto out_mask;
    }
    node.dp.limits.fd_cap = budget.descriptors > UINT32_MAX ? UINT32_MAX : (uint32_t)budget.descriptors;
    node.dp.pipes_per_worker = budget.pipes_per_worker;
    if (io_model_name) {
        node.io_model = forced_model;
        node.io_model_forced = true;
    }
    voro_bridge_init(&bridge, &node, config_path);
    if (voro_node_apply(&node, cfg) != 0) /* takes cfg */
        goto out_node;
    struct voro_control_hooks hooks = voro_bridge_hooks(&bridge);
    bool is_member = node.current->cfg->cluster_enabled;
    if (is_member) {
        member.inner = hooks;
        hooks = (struct voro_control_hooks){.ctx = &member, .on_reload = member_on_reload,
                                            .on_shutdown = member_on_shutdown, .on_health = member_on_health,
                                            .on_tick = member_on_tick};
    }
    int rc = voro_control_create(&control, node.current->cfg, &hooks);
    if (rc) {
        VORO_ERROR("node", "cannot start the admin server on %s: %s", node.current->cfg->admin_bind.text, strerror(-rc));
        goto out_node;
    }
    if ((rc = voro_bridge_attach(&bridge, control)) != 0) {
        VORO_ERROR("node", "cannot set up the admin endpoints: %s", strerror(-rc));
        goto out_control;
    }
    member.control = control;
    if (is_member) {
        struct voro_cluster_hooks ch = {.ctx = &member, .on_config = member_on_config,
                                        .on_backends = member_on_backends,
                                        .server_health = member_server_health,
                                        .server_counts = member_server_counts};
        if ((rc = voro_cluster_create(&member.cluster, control, node.current->cfg, &ch)) != 0) {
            VORO_ERROR("node", "cannot start the cluster member: %s", strerror(-rc));
            goto out_control;
        }
    }
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    {
        const struct voro_config *c = node.current->cfg;
        for (size_t i = 0; i < c->n_listeners; i++)
            VORO_INFO("node", "listener %s: %s %s -> pool %s", c->listeners[i].name, voro_listener_mode_name(c->listeners[i].mode),
                      c->listeners[i].bind.text, c->listeners[i].pool_name);
        VORO_INFO("node", "admin API on http://%s (/stats, /metrics, /healthz)", c->admin_bind.text);
    }
    rc = voro_control_run(control);
    exit_code = rc == 0 ? 0 : 1;
out_control:
    voro_cluster_destroy(member.cluster); /* closes Raft on the control loop first */
    voro_control_destroy(control);
out_node:
    voro_node_destroy(&node);
    voro_bridge_destroy(&bridge);
    free(member.text_in_force);
out_mask:
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    if (exit_code == 0)
        VORO_INFO("node", "stopped");
    return exit_code;
}
