/* Unit tests for cluster/dynamic_backends: merging the cluster's dynamic backends into a config. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/config.h"
#include "cluster/dynamic_backends.h"
#include "common/strbuf.h"

static const char TEXT[] = "[listener web]\n"
                           "bind = 127.0.0.1:28000\n"
                           "pool = gpu\n"
                           "[pool gpu]\n"
                           "server = g1 127.0.0.1:9101 models=m1 capacity=4\n"
                           "server = g2 127.0.0.1:9102 weight=3\n"
                           "server = dyn-127.0.0.1-9201 127.0.0.1:9999\n"
                           "server = v6 [::1]:9300\n"
                           "[pool other]\n"
                           "server = o1 127.0.0.1:9401\n";

static struct voro_config *parse(const char *text)
{
    struct voro_config *cfg = NULL;
    struct voro_config_errors errors = {0};
    int rc = voro_config_parse_cluster("cluster", text, strlen(text), &cfg, &errors);
    for (size_t i = 0; i < errors.count; i++)
        fprintf(stderr, "%s\n", errors.items[i].message);
    voro_config_errors_free(&errors);
    assert_int_equal(rc, 0);
    assert_non_null(cfg);
    return cfg;
}

static struct voro_backend be(const char *pool, const char *addr, uint32_t weight, bool draining)
{
    struct voro_backend b = {.weight = weight, .draining = draining};
    snprintf(b.pool, sizeof(b.pool), "%s", pool);
    snprintf(b.address, sizeof(b.address), "%s", addr);
    return b;
}

static const struct voro_pool_config *pool(const struct voro_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_pools; i++)
        if (!strcmp(cfg->pools[i].name, name))
            return &cfg->pools[i];
    fail_msg("no pool %s", name);
    return NULL;
}

static const struct voro_server_config *server(const struct voro_pool_config *p, const char *name)
{
    for (size_t i = 0; i < p->n_servers; i++)
        if (!strcmp(p->servers[i].name, name))
            return &p->servers[i];
    return NULL;
}

static void test_no_backends_changes_nothing(void **state)
{
    (void)state;
    struct voro_config *cfg = parse(TEXT);
    struct voro_backend_merge_stats st = {9, 9, 9};
    assert_int_equal(voro_config_merge_backends(cfg, NULL, 0, &st), 0);
    assert_int_equal(st.added + st.updated + st.skipped, 0);
    assert_int_equal(pool(cfg, "gpu")->n_servers, 4);
    assert_int_equal(pool(cfg, "other")->n_servers, 1);
    voro_config_free(cfg);
}

static void test_new_address_is_appended_without_l7_fields(void **state)
{
    (void)state;
    struct voro_config *cfg = parse(TEXT);
    struct voro_backend b[] = {be("gpu", "127.0.0.1:9202", 7, false), be("other", "127.0.0.1:9402", 1, false)};
    struct voro_backend_merge_stats st;
    assert_int_equal(voro_config_merge_backends(cfg, b, 2, &st), 0);
    assert_int_equal(st.added, 2);
    assert_int_equal(st.updated, 0);
    assert_int_equal(st.skipped, 0);
    const struct voro_pool_config *g = pool(cfg, "gpu");
    assert_int_equal(g->n_servers, 5);
    const struct voro_server_config *s = &g->servers[4];
    assert_string_equal(s->name, "dyn-127.0.0.1-9202");
    assert_string_equal(s->addr.text, "127.0.0.1:9202");
    assert_int_equal(s->addr.len, sizeof(struct sockaddr_in));
    assert_int_equal(s->weight, 7);
    assert_null(s->models);
    assert_int_equal(s->n_models, 0);
    assert_string_equal(s->metrics_url, "");
    assert_int_equal(s->capacity, 0);
    /* the servers of the text are untouched (models kept: voro_config_free frees them) */
    assert_int_equal(server(g, "g1")->n_models, 1);
    assert_int_equal(server(g, "g1")->capacity, 4);
    assert_int_equal(server(g, "g2")->weight, 3);
    assert_int_equal(pool(cfg, "other")->n_servers, 2);
    assert_string_equal(pool(cfg, "other")->servers[1].name, "dyn-127.0.0.1-9402");
    voro_config_free(cfg);
}

static void test_draining_new_backend_is_appended_with_weight_zero(void **state)
{
    (void)state;
    struct voro_config *cfg = parse(TEXT);
    struct voro_backend b = be("gpu", "127.0.0.1:9203", 5, true);
    assert_int_equal(voro_config_merge_backends(cfg, &b, 1, NULL), 0);
    const struct voro_server_config *s = server(pool(cfg, "gpu"), "dyn-127.0.0.1-9203");
    assert_non_null(s);
    assert_int_equal(s->weight, 0);
    voro_config_free(cfg);
}

static void test_existing_address_gets_weight_or_drain(void **state)
{
    (void)state;
    struct voro_config *cfg = parse(TEXT);
    struct voro_backend b[] = {
        be("gpu", "127.0.0.1:9101", 9, true),   /* g1 drained */
        be("gpu", "127.0.0.1:9102", 12, false), /* g2 reweighted */
        be("gpu", "[0:0::1]:9300", 1000, false), /* v6, written differently; weight capped */
    };
    struct voro_backend_merge_stats st;
    assert_int_equal(voro_config_merge_backends(cfg, b, 3, &st), 0);
    assert_int_equal(st.added, 0);
    assert_int_equal(st.updated, 3);
    const struct voro_pool_config *g = pool(cfg, "gpu");
    assert_int_equal(g->n_servers, 4);
    assert_int_equal(server(g, "g1")->weight, 0);
    assert_int_equal(server(g, "g1")->n_models, 1);
    assert_int_equal(server(g, "g2")->weight, 12);
    assert_int_equal(server(g, "v6")->weight, 256);
    voro_config_free(cfg);
}

static void test_unknown_pool_and_bad_address_are_skipped(void **state)
{
    (void)state;
    struct voro_config *cfg = parse(TEXT);
    struct voro_backend b[] = {
        be("nope", "127.0.0.1:9500", 1, false),
        be("gpu", "example.com:80", 1, false),
        be("gpu", "127.0.0.1:9501", 2, false),
    };
    struct voro_backend_merge_stats st;
    assert_int_equal(voro_config_merge_backends(cfg, b, 3, &st), 0);
    assert_int_equal(st.skipped, 2);
    assert_int_equal(st.added, 1);
    assert_int_equal(pool(cfg, "gpu")->n_servers, 5);
    assert_int_equal(pool(cfg, "other")->n_servers, 1);
    assert_non_null(server(pool(cfg, "gpu"), "dyn-127.0.0.1-9501"));
    voro_config_free(cfg);
}

static void test_generated_names_are_valid_and_unique(void **state)
{
    (void)state;
    struct voro_config *cfg = parse(TEXT);
    struct voro_backend b[] = {
        be("gpu", "127.0.0.1:9201", 1, false), /* "dyn-127.0.0.1-9201" is a server of the text */
        be("gpu", "[::2]:9301", 1, false),
    };
    assert_int_equal(voro_config_merge_backends(cfg, b, 2, NULL), 0);
    const struct voro_pool_config *g = pool(cfg, "gpu");
    assert_int_equal(g->n_servers, 6);
    assert_string_equal(g->servers[4].name, "dyn-127.0.0.1-9201-2");
    assert_string_equal(g->servers[4].addr.text, "127.0.0.1:9201");
    assert_string_equal(g->servers[5].name, "dyn---2-9301");
    assert_string_equal(g->servers[5].addr.text, "[::2]:9301");
    voro_config_free(cfg);
}

static void test_full_pool_takes_no_more(void **state)
{
    (void)state;
    struct voro_strbuf sb;
    voro_strbuf_init(&sb);
    voro_strbuf_puts(&sb, "[listener web]\nbind = 127.0.0.1:28000\npool = big\n[pool big]\n");
    for (int i = 0; i < VORO_POOL_MAX_SERVERS - 1; i++)
        voro_strbuf_printf(&sb, "server = s%d 127.0.0.1:%d\n", i, 20000 + i);
    assert_false(sb.failed);
    struct voro_config *cfg = parse(sb.data);
    voro_strbuf_free(&sb);
    struct voro_backend b[] = {
        be("big", "127.0.0.2:1", 1, false),
        be("big", "127.0.0.2:2", 1, false), /* would be server 257 */
        be("big", "127.0.0.1:20000", 1, true), /* an existing one can still be drained */
    };
    struct voro_backend_merge_stats st;
    assert_int_equal(voro_config_merge_backends(cfg, b, 3, &st), 0);
    assert_int_equal(st.added, 1);
    assert_int_equal(st.skipped, 1);
    assert_int_equal(st.updated, 1);
    const struct voro_pool_config *p = pool(cfg, "big");
    assert_int_equal(p->n_servers, VORO_POOL_MAX_SERVERS);
    assert_string_equal(p->servers[VORO_POOL_MAX_SERVERS - 1].addr.text, "127.0.0.2:1");
    assert_int_equal(server(p, "s0")->weight, 0);
    voro_config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_backends_changes_nothing),
        cmocka_unit_test(test_new_address_is_appended_without_l7_fields),
        cmocka_unit_test(test_draining_new_backend_is_appended_with_weight_zero),
        cmocka_unit_test(test_existing_address_gets_weight_or_drain),
        cmocka_unit_test(test_unknown_pool_and_bad_address_are_skipped),
        cmocka_unit_test(test_generated_names_are_valid_and_unique),
        cmocka_unit_test(test_full_pool_takes_no_more),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
