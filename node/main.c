/* voro: the node process. The composition root: parses the command line and the config,
 * starts the data plane (workers) and runs the control plane on the main thread. */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/config.h"
#include "cluster/control.h"
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

int main(int argc, char **argv)
{
    static const struct option long_opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check", required_argument, NULL, 't'},
        {"io-model", required_argument, NULL, 'm'},
        {"log-level", required_argument, NULL, 'l'},
        {"version", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config_path = NULL, *check_path = NULL, *io_model_name = NULL, *log_level = NULL;
    int opt;
    while ((opt = getopt_long(argc, argv, "c:t:vh", long_opts, NULL)) != -1) {
        switch (opt) {
        case 'c': config_path = optarg; break;
        case 't': check_path = optarg; break;
        case 'm': io_model_name = optarg; break;
        case 'l': log_level = optarg; break;
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
    if (voro_node_init(&node, cfg) != 0) {
        voro_config_free(cfg);
        goto out_mask;
    }
    node.dp.fd_connection_cap = budget.connections > UINT32_MAX ? UINT32_MAX : (uint32_t)budget.connections;
    node.dp.pipes_per_worker = budget.pipes_per_worker;
    if (io_model_name) {
        node.io_model = forced_model;
        node.io_model_forced = true;
    }
    voro_bridge_init(&bridge, &node, config_path);
    if (voro_node_apply(&node, cfg) != 0) /* takes cfg */
        goto out_node;
    struct voro_control_hooks hooks = voro_bridge_hooks(&bridge);
    int rc = voro_control_create(&control, node.current->cfg, &hooks);
    if (rc) {
        VORO_ERROR("node", "cannot start the admin server on %s: %s", node.current->cfg->admin_bind.text, strerror(-rc));
        goto out_node;
    }
    if ((rc = voro_bridge_attach(&bridge, control)) != 0) {
        VORO_ERROR("node", "cannot set up the admin endpoints: %s", strerror(-rc));
        goto out_control;
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
    voro_control_destroy(control);
out_node:
    voro_node_destroy(&node);
    voro_bridge_destroy(&bridge);
out_mask:
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    if (exit_code == 0)
        VORO_INFO("node", "stopped");
    return exit_code;
}
