/* Config layering for cluster members: cluster-only validation of pushed texts and the effective
 * config built from a local file's node-scoped keys and a cluster text's cluster-scoped keys. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster/config.h"

static const char LOCAL[] = "[node]\n"                          /* 1 */
                            "name = n1\n"                       /* 2 */
                            "admin_address = 127.0.0.1:9301\n"  /* 3 */
                            "bind.web = 127.0.0.1:18001\n"      /* 4 */
                            "[cluster]\n"                       /* 5 */
                            "node_id = 7\n"                     /* 6 */
                            "raft_address = 127.0.0.1:7007\n"   /* 7 */
                            "token = t0k\n"                     /* 8 */
                            "election_timeout = 500ms\n"        /* 9 */
                            "[server]\n"                        /* 10 */
                            "threads = 3\n"                     /* 11 */
                            "io_model = epoll\n"                /* 12 */
                            "port = 8080\n"                     /* 13 */
                            "[backend]\n"                       /* 14 */
                            "local1 = 127.0.0.1:9001\n"         /* 15 */
                            "[limit]\n"                         /* 16 */
                            "max_connections = 11\n"            /* 17 */
                            "[listener web]\n"                  /* 18 */
                            "bind = 127.0.0.1:18000\n"          /* 19 */
                            "pool = default\n";                 /* 20 */

static const char CLUSTER[] = "[listener web]\n"
                              "bind = 127.0.0.1:28000\n"
                              "pool = gpu\n"
                              "[pool gpu]\n"
                              "server = g1 127.0.0.1:9101\n"
                              "server = g2 127.0.0.1:9102 weight=3\n"
                              "[limit]\n"
                              "max_connections = 99\n"
                              "[timeouts]\n"
                              "drain = 2s\n";

static bool has_error(const struct voro_config_errors *e, const char *prefix, const char *needle)
{
    for (size_t i = 0; i < e->count; i++)
        if (!strncmp(e->items[i].message, prefix, strlen(prefix)) && strstr(e->items[i].message, needle))
            return true;
    return false;
}

static void test_local_file_alone_is_a_whole_config(void **state)
{
    (void)state;
    struct voro_config *cfg = NULL;
    struct voro_config_errors errs = {0};
    assert_int_equal(voro_config_parse("local", LOCAL, strlen(LOCAL), &cfg, &errs), 0);
    assert_true(cfg->cluster_enabled);
    assert_int_equal(cfg->cluster_node_id, 7);
    assert_string_equal(cfg->raft_addr.text, "127.0.0.1:7007");
    assert_string_equal(cfg->cluster_token, "t0k");
    assert_int_equal(cfg->election_timeout_ms, 500);
    assert_int_equal(cfg->heartbeat_timeout_ms, 50);
    assert_string_equal(cfg->cluster_data_dir, "/var/lib/voro/raft");
    assert_int_equal(cfg->n_listeners, 2); /* web + the [server] port listener */
    assert_int_equal(cfg->max_connections, 11);
    voro_config_free(cfg);
    voro_config_errors_free(&errs);
}

static void test_effective_takes_each_scope_from_its_layer(void **state)
{
    (void)state;
    struct voro_config *cfg = NULL;
    struct voro_config_errors errs = {0};
    size_t ignored = 0;
    int rc = voro_config_parse_layered("local", LOCAL, strlen(LOCAL), "push", CLUSTER, strlen(CLUSTER), &cfg, &errs,
                                       &ignored);
    for (size_t i = 0; i < errs.count; i++)
        print_error("%s\n", errs.items[i].message);
    assert_int_equal(rc, 0);
    /* node scope from the local file */
    assert_string_equal(cfg->node_name, "n1");
    assert_int_equal(cfg->threads, 3);
    assert_int_equal(cfg->io_model, VORO_CFG_IO_EPOLL);
    assert_string_equal(cfg->admin_bind.text, "127.0.0.1:9301");
    assert_true(cfg->cluster_enabled);
    assert_int_equal(cfg->cluster_node_id, 7);
    /* cluster scope from the pushed text only: the local port listener, backend and limit are gone */
    assert_int_equal(cfg->n_listeners, 1);
    assert_string_equal(cfg->listeners[0].name, "web");
    assert_string_equal(cfg->listeners[0].pool_name, "gpu");
    assert_int_equal(cfg->n_pools, 1);
    assert_string_equal(cfg->pools[0].name, "gpu");
    assert_int_equal(cfg->pools[0].n_servers, 2);
    assert_int_equal(cfg->pools[0].servers[1].weight, 3);
    assert_int_equal(cfg->max_connections, 99);
    assert_int_equal(cfg->drain_timeout_ms, 2000);
    /* the node's bind override applies to the replicated listener */
    assert_string_equal(cfg->listeners[0].bind.text, "127.0.0.1:18001");
    /* ignored: [server] port, [backend] local1, [limit] max_connections, [listener web] */
    assert_int_equal(ignored, 4);
    voro_config_free(cfg);
    voro_config_errors_free(&errs);
}

static void test_cluster_text_refuses_node_keys(void **state)
{
    (void)state;
    const char *text = "[server]\n"
                       "port = 8080\n"
                       "threads = 4\n"
                       "[backend]\n"
                       "b = 127.0.0.1:1\n"
                       "[node]\n"
                       "name = x\n"
                       "[cluster]\n"
                       "token = leaked\n";
    struct voro_config *cfg = (struct voro_config *)1;
    struct voro_config_errors errs = {0};
    assert_int_equal(voro_config_parse_cluster("push", text, strlen(text), &cfg, &errs), -EINVAL);
    assert_true(has_error(&errs, "push:3: ", "'threads'"));
    assert_true(has_error(&errs, "push:3: ", "node-scoped"));
    assert_true(has_error(&errs, "push:7: ", "'name'"));
    assert_true(has_error(&errs, "push:9: ", "'token'"));
    assert_int_equal(errs.count, 3);
    voro_config_errors_free(&errs);

    /* the same refusal inside a layered build names the pushed text */
    struct voro_config_errors errs2 = {0};
    cfg = NULL;
    assert_int_equal(voro_config_parse_layered("local", LOCAL, strlen(LOCAL), "v5", text, strlen(text), &cfg, &errs2,
                                               NULL),
                     -EINVAL);
    assert_null(cfg);
    assert_true(has_error(&errs2, "v5:3: ", "'threads'"));
    voro_config_errors_free(&errs2);
}

static void test_cluster_text_validated_like_voro_t(void **state)
{
    (void)state;
    struct voro_config_errors errs = {0};
    const char *bad = "[listener web]\nbind = 127.0.0.1:99999\npool = nope\n[pool gpu]\nserver = g1 127.0.0.1:1\n";
    assert_int_equal(voro_config_parse_cluster("push", bad, strlen(bad), NULL, &errs), -EINVAL);
    assert_true(has_error(&errs, "push:2: ", "bad port"));
    assert_true(has_error(&errs, "push:3: ", "unknown pool 'nope'"));
    voro_config_errors_free(&errs);

    const char *empty = "# nothing\n";
    assert_int_equal(voro_config_parse_cluster("push", empty, strlen(empty), NULL, &errs), -EINVAL);
    assert_true(has_error(&errs, "push:", "no listener"));
    voro_config_errors_free(&errs);

    struct voro_config *cfg = NULL;
    assert_int_equal(voro_config_parse_cluster("push", CLUSTER, strlen(CLUSTER), &cfg, &errs), 0);
    assert_int_equal(errs.count, 0);
    assert_false(cfg->cluster_enabled);
    assert_int_equal(cfg->n_pools, 1);
    voro_config_free(cfg);
}

static void test_cluster_section_rules(void **state)
{
    (void)state;
    struct voro_config *cfg = NULL;
    struct voro_config_errors errs = {0};
    const char *no_addr = "[cluster]\nnode_id = 1\n[server]\nport = 1\n[backend]\nb = 127.0.0.1:1\n";
    assert_int_equal(voro_config_parse("f", no_addr, strlen(no_addr), &cfg, &errs), -EINVAL);
    assert_true(has_error(&errs, "f:2: ", "raft_address"));
    assert_true(has_error(&errs, "f:2: ", "token"));
    voro_config_errors_free(&errs);

    const char *timeouts = "[cluster]\nelection_timeout = 100ms\nheartbeat_timeout = 100ms\n"
                           "[server]\nport = 1\n[backend]\nb = 127.0.0.1:1\n";
    assert_int_equal(voro_config_parse("f", timeouts, strlen(timeouts), &cfg, &errs), -EINVAL);
    assert_true(has_error(&errs, "f:3: ", "shorter than election_timeout"));
    voro_config_errors_free(&errs);

    const char *both = "[node]\nadmin_address = 127.0.0.1:1\n[cluster]\nadmin_address = 127.0.0.1:2\n"
                       "[server]\nport = 1\n[backend]\nb = 127.0.0.1:1\n";
    assert_int_equal(voro_config_parse("f", both, strlen(both), &cfg, &errs), -EINVAL);
    assert_true(has_error(&errs, "f:4: ", "set one of them"));
    voro_config_errors_free(&errs);

    const char *alias = "[node]\ndata_dir = /srv/v\n[cluster]\nadmin_address = 127.0.0.1:9444\n"
                        "[server]\nport = 1\n[backend]\nb = 127.0.0.1:1\n";
    assert_int_equal(voro_config_parse("f", alias, strlen(alias), &cfg, &errs), 0);
    assert_string_equal(cfg->admin_bind.text, "127.0.0.1:9444");
    assert_string_equal(cfg->cluster_data_dir, "/srv/v/raft");
    assert_false(cfg->cluster_enabled);
    voro_config_free(cfg);
}

static void test_load_layered_reads_the_file(void **state)
{
    (void)state;
    char path[] = "/tmp/voro-layer-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, LOCAL, strlen(LOCAL)), (ssize_t)strlen(LOCAL));
    close(fd);
    struct voro_config *cfg = NULL;
    struct voro_config_errors errs = {0};
    size_t ignored = 0;
    assert_int_equal(voro_config_load_layered(path, "v1", CLUSTER, strlen(CLUSTER), &cfg, &errs, &ignored), 0);
    assert_int_equal(cfg->threads, 3);
    assert_int_equal(cfg->max_connections, 99);
    assert_int_equal(ignored, 4);
    voro_config_free(cfg);
    unlink(path);
    assert_int_equal(voro_config_load_layered(path, "v1", CLUSTER, strlen(CLUSTER), &cfg, &errs, NULL), -ENOENT);
    assert_int_equal(errs.count, 1);
    voro_config_errors_free(&errs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_local_file_alone_is_a_whole_config),
        cmocka_unit_test(test_effective_takes_each_scope_from_its_layer),
        cmocka_unit_test(test_cluster_text_refuses_node_keys),
        cmocka_unit_test(test_cluster_text_validated_like_voro_t),
        cmocka_unit_test(test_cluster_section_rules),
        cmocka_unit_test(test_load_layered_reads_the_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
