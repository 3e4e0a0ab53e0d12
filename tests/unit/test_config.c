/* Unit tests for cluster/config: seed form, defaults, every error class, addresses, durations,
 * and agreement between docs/config.md, deploy/voro.conf.example and voro_config_schema(). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster/config.h"

#define BASE "[listener l]\nbind = 127.0.0.1:8080\npool = p\n[pool p]\nserver = s1 127.0.0.1:9001\n" /* 5 lines */

#define SEED \
    "[server]\n" \
    "port = 8080\n" \
    "io_model = io_uring        # io_uring|epoll|poll|select\n" \
    "threads = 4                # N | auto\n" \
    "mode = tcp                 # tcp|udp|http, default tcp\n" \
    "[backend]\n" \
    "backend1 = 127.0.0.1:9001\n" \
    "backend2 = 127.0.0.1:9002\n" \
    "[balancer]\n" \
    "algorithm = round_robin    # round_robin|least_connections|consistent_hash|power_of_two\n" \
    "[limit]\n" \
    "max_connections = 10000\n" \
    "max_connections_per_ip = 100\n" \
    "global_qps = 5000\n" \
    "[monitor]\n" \
    "enable_dashboard = true\n" \
    "stats_port = 9100\n"

static int parse(const char *text, struct voro_config **cfg, struct voro_config_errors *errs)
{
    return voro_config_parse("t.conf", text, strlen(text), cfg, errs);
}

static struct voro_config *parse_ok(const char *text)
{
    struct voro_config *cfg = NULL;
    struct voro_config_errors errs = {0};
    int rc = parse(text, &cfg, &errs);
    for (size_t i = 0; i < errs.count; i++)
        print_error("unexpected: %s\n", errs.items[i].message);
    voro_config_errors_free(&errs);
    assert_int_equal(rc, 0);
    assert_non_null(cfg);
    return cfg;
}

/* Asserts that parsing fails and that one of the messages is exactly `expected`. */
static void expect_error(const char *text, const char *expected)
{
    struct voro_config *cfg = (struct voro_config *)0x1;
    struct voro_config_errors errs = {0};
    assert_int_equal(parse(text, &cfg, &errs), -EINVAL);
    assert_null(cfg);
    bool found = false;
    for (size_t i = 0; i < errs.count; i++)
        if (!strcmp(errs.items[i].message, expected))
            found = true;
    if (!found) {
        for (size_t i = 0; i < errs.count; i++)
            print_error("got: %s\n", errs.items[i].message);
        voro_config_errors_free(&errs);
        fail_msg("missing error: %s", expected);
    }
    voro_config_errors_free(&errs);
}

static void test_seed(void **state)
{
    (void)state;
    struct voro_config *cfg = parse_ok(SEED);
    assert_string_equal(cfg->source_path, "t.conf");
    assert_int_equal(cfg->threads, 4);
    assert_false(cfg->threads_auto);
    assert_int_equal(cfg->io_model, VORO_CFG_IO_URING);
    assert_int_equal(cfg->max_connections, 10000);
    assert_int_equal(cfg->max_connections_per_ip, 100);
    assert_int_equal(cfg->global_qps, 5000);
    assert_true(cfg->enable_dashboard);
    assert_string_equal(cfg->admin_bind.text, "127.0.0.1:9100");

    assert_int_equal(cfg->n_listeners, 1);
    const struct voro_listener_config *l = &cfg->listeners[0];
    assert_string_equal(l->name, "default");
    assert_int_equal(l->mode, VORO_MODE_TCP);
    assert_string_equal(l->bind.text, "0.0.0.0:8080");
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&l->bind.ss;
    assert_int_equal(sin->sin_family, AF_INET);
    assert_int_equal(ntohs(sin->sin_port), 8080);
    assert_int_equal(sin->sin_addr.s_addr, htonl(INADDR_ANY));
    assert_int_equal(l->bind.len, sizeof(struct sockaddr_in));
    assert_string_equal(l->pool_name, "default");
    assert_int_equal(l->line, 2);

    assert_int_equal(cfg->n_pools, 1);
    const struct voro_pool_config *p = &cfg->pools[l->pool_index];
    assert_string_equal(p->name, "default");
    assert_int_equal(p->algorithm, VORO_LB_ROUND_ROBIN);
    assert_int_equal(p->n_servers, 2);
    assert_string_equal(p->servers[0].name, "backend1");
    assert_string_equal(p->servers[0].addr.text, "127.0.0.1:9001");
    assert_int_equal(p->servers[0].weight, 1);
    assert_string_equal(p->servers[1].name, "backend2");
    assert_string_equal(p->servers[1].addr.text, "127.0.0.1:9002");
    voro_config_free(cfg);
}

static void test_defaults(void **state)
{
    (void)state;
    struct voro_config *cfg = parse_ok(BASE);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    assert_true(cfg->threads_auto);
    assert_int_equal(cfg->threads, cpus < 1 ? 1 : cpus > 256 ? 256 : cpus);
    assert_int_equal(cfg->io_model, VORO_CFG_IO_URING);
    assert_false(cfg->hugepages);
    assert_int_equal(cfg->buf_size, 16384);
    assert_int_equal(cfg->buf_count, 1024);
    assert_string_equal(cfg->log_level, "info");
    assert_string_equal(cfg->admin_bind.text, "127.0.0.1:9100");
    assert_true(cfg->enable_dashboard);
    assert_string_equal(cfg->data_dir, "/var/lib/voro");
    assert_true(cfg->node_name[0] != '\0'); /* host name */
    assert_int_equal(cfg->max_connections, 0);
    assert_int_equal(cfg->max_connections_per_ip, 0);
    assert_int_equal(cfg->global_qps, 0);
    assert_int_equal(cfg->per_ip_table_size, 65536);
    assert_int_equal(cfg->connect_timeout_ms, 3000);
    assert_int_equal(cfg->idle_timeout_ms, 300000);
    assert_int_equal(cfg->udp_idle_timeout_ms, 30000);
    assert_int_equal(cfg->drain_timeout_ms, 30000);

    const struct voro_listener_config *l = &cfg->listeners[0];
    assert_int_equal(l->mode, VORO_MODE_TCP);
    assert_int_equal(l->idle_timeout_ms, 300000);
    const struct voro_pool_config *p = &cfg->pools[0];
    assert_int_equal(p->algorithm, VORO_LB_ROUND_ROBIN);
    assert_int_equal(p->health.type, VORO_HEALTH_CHECK_TCP);
    assert_int_equal(p->health.interval_ms, 2000);
    assert_int_equal(p->health.timeout_ms, 1000);
    assert_int_equal(p->health.rise, 2);
    assert_int_equal(p->health.fall, 3);
    assert_int_equal(p->connect_timeout_ms, 3000);
    assert_int_equal(p->retries, 2);
    assert_true(p->hash_balance_factor == 1.25);
    assert_int_equal(p->servers[0].weight, 1);
    assert_int_equal(p->line, 4);
    voro_config_free(cfg);

    /* defaults that follow other keys */
    cfg = parse_ok("[timeouts]\nconnect = 700ms\nidle = 1h\nudp_idle = 9s\n"
                   "[listener u]\nmode = udp\nbind = 127.0.0.1:53\npool = p\n"
                   "[listener t]\nbind = 127.0.0.1:53\npool = p\n"
                   "[listener own]\nbind = 127.0.0.1:54\npool = p\nidle_timeout = 5s\n"
                   "[pool p]\nserver = a 127.0.0.1:1\n"
                   "[pool q]\nserver = a 127.0.0.1:1\nconnect_timeout = 2s\n"
                   "[monitor]\nstats_port = 9300\n");
    assert_int_equal(cfg->listeners[0].idle_timeout_ms, 9000);
    assert_int_equal(cfg->listeners[1].idle_timeout_ms, 3600000);
    assert_int_equal(cfg->listeners[2].idle_timeout_ms, 5000);
    assert_int_equal(cfg->pools[0].connect_timeout_ms, 700);
    assert_int_equal(cfg->pools[1].connect_timeout_ms, 2000);
    assert_string_equal(cfg->admin_bind.text, "127.0.0.1:9300");
    voro_config_free(cfg);
}

static void test_all_keys(void **state)
{
    (void)state;
    struct voro_config *cfg = parse_ok("[node]\nname = n1\ndata_dir = /tmp/x\nadmin_address = [::1]:9999\n"
                                       "bind.l = 127.0.0.2:8081\n"
                                       "[server]\nthreads = 256\nio_model = select\nhugepages = yes\n"
                                       "buffer_size = 2k\nbuffers = 16\nlog_level = debug\n"
                                       "[monitor]\nstats_port = 9200\nenable_dashboard = off\n"
                                       "[limit]\nper_ip_table_size = 64\n"
                                       "[timeouts]\ndrain = 0\n" BASE
                                       "algorithm = power_of_two\nhealth_check = none\nhealth_interval = 100ms\n"
                                       "health_timeout = 1h\nhealth_rise = 100\nhealth_fall = 1\nretries = 0\n"
                                       "hash_balance_factor = 2.5\nserver = s2 [::1]:9002 weight=0\n"
                                       "server = s3 127.0.0.1:9003 weight=256\n");
    assert_string_equal(cfg->node_name, "n1");
    assert_string_equal(cfg->data_dir, "/tmp/x");
    assert_string_equal(cfg->admin_bind.text, "[::1]:9999"); /* wins over stats_port */
    assert_int_equal(cfg->threads, 256);
    assert_int_equal(cfg->io_model, VORO_CFG_IO_SELECT);
    assert_true(cfg->hugepages);
    assert_int_equal(cfg->buf_size, 2048);
    assert_int_equal(cfg->buf_count, 16);
    assert_string_equal(cfg->log_level, "debug");
    assert_false(cfg->enable_dashboard);
    assert_int_equal(cfg->per_ip_table_size, 64);
    assert_int_equal(cfg->drain_timeout_ms, 0);
    assert_string_equal(cfg->listeners[0].bind.text, "127.0.0.2:8081"); /* node override */
    const struct voro_pool_config *p = &cfg->pools[0];
    assert_int_equal(p->algorithm, VORO_LB_POWER_OF_TWO);
    assert_int_equal(p->health.type, VORO_HEALTH_CHECK_NONE);
    assert_int_equal(p->health.interval_ms, 100);
    assert_int_equal(p->health.timeout_ms, 3600000);
    assert_int_equal(p->health.rise, 100);
    assert_int_equal(p->health.fall, 1);
    assert_int_equal(p->retries, 0);
    assert_true(p->hash_balance_factor == 2.5);
    assert_int_equal(p->n_servers, 3);
    assert_string_equal(p->servers[1].addr.text, "[::1]:9002");
    assert_int_equal(p->servers[1].weight, 0);
    assert_int_equal(p->servers[2].weight, 256);
    voro_config_free(cfg);

    cfg = parse_ok("[server]\nport = 80\nbind = ::1\nmode = http\n[backend]\nb = 127.0.0.1:1 weight=3\n"
                   "[balancer]\nalgorithm = consistent_hash\nhash_balance_factor = 1.5\n");
    assert_string_equal(cfg->listeners[0].bind.text, "[::1]:80");
    assert_int_equal(cfg->listeners[0].mode, VORO_MODE_HTTP);
    assert_int_equal(cfg->pools[0].algorithm, VORO_LB_CONSISTENT_HASH);
    assert_true(cfg->pools[0].hash_balance_factor == 1.5);
    assert_int_equal(cfg->pools[0].servers[0].weight, 3);
    voro_config_free(cfg);

    cfg = parse_ok("[server]\nport = 80\nbind = *\nthreads = auto\n[backend]\nb = 127.0.0.1:1\n"
                   "[balancer]\nalgorithm = least_connections\n");
    assert_string_equal(cfg->listeners[0].bind.text, "0.0.0.0:80");
    assert_true(cfg->threads_auto);
    assert_true(cfg->threads >= 1);
    assert_int_equal(cfg->pools[0].algorithm, VORO_LB_LEAST_CONNECTIONS);
    voro_config_free(cfg);
}

static void test_values(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        uint32_t ms;
    } durations[] = {{"500ms", 500}, {"3s", 3000}, {"2m", 120000}, {"1h", 3600000}, {"0", 0}};
    for (size_t i = 0; i < sizeof(durations) / sizeof(durations[0]); i++) {
        char text[256];
        snprintf(text, sizeof(text), BASE "[timeouts]\ndrain = %s\n", durations[i].text);
        struct voro_config *cfg = parse_ok(text);
        assert_int_equal(cfg->drain_timeout_ms, durations[i].ms);
        voro_config_free(cfg);
    }
    expect_error(BASE "[timeouts]\ndrain = 30\n",
                 "t.conf:7: bad value '30' for drain in [timeouts]: a duration needs a unit (ms, s, m, h), e.g. 30s "
                 "or 30ms");
    expect_error(BASE "[timeouts]\ndrain = 3d\n",
                 "t.conf:7: bad value '3d' for drain in [timeouts]: unknown unit 'd' (use ms, s, m or h)");
    expect_error(BASE "[timeouts]\ndrain = 2h\n",
                 "t.conf:7: bad value '2h' for drain in [timeouts]: out of range 0ms..3600000ms");
    expect_error(BASE "[timeouts]\nconnect = 0\n",
                 "t.conf:7: bad value '0' for connect in [timeouts]: out of range 1ms..3600000ms");
    expect_error(BASE "[timeouts]\nidle = 99999999999999999999999h\n",
                 "t.conf:7: bad value '99999999999999999999999h' for idle in [timeouts]: expected a number with a "
                 "unit: 500ms, 3s, 2m, 1h");
    expect_error(BASE "[timeouts]\nidle = -1s\n",
                 "t.conf:7: bad value '-1s' for idle in [timeouts]: expected a number with a unit: 500ms, 3s, 2m, 1h");

    static const char *const bools[] = {"true", "on", "yes", "1", "TRUE", "false", "off", "no", "0", "No"};
    for (size_t i = 0; i < 10; i++) {
        char text[256];
        snprintf(text, sizeof(text), BASE "[server]\nhugepages = %s\n", bools[i]);
        struct voro_config *cfg = parse_ok(text);
        assert_int_equal(cfg->hugepages, i < 5);
        voro_config_free(cfg);
    }
    expect_error(BASE "[server]\nhugepages = maybe\n",
                 "t.conf:7: bad value 'maybe' for hugepages in [server]: expected true/false, on/off, yes/no or 1/0");

    static const struct {
        const char *text;
        uint32_t bytes;
    } sizes[] = {{"4096", 4096}, {"16k", 16384}, {"16K", 16384}, {"1m", 1048576}, {"1M", 1048576}};
    for (size_t i = 0; i < 5; i++) {
        char text[256];
        snprintf(text, sizeof(text), BASE "[server]\nbuffer_size = %s\n", sizes[i].text);
        struct voro_config *cfg = parse_ok(text);
        assert_int_equal(cfg->buf_size, sizes[i].bytes);
        voro_config_free(cfg);
    }
    expect_error(BASE "[server]\nbuffer_size = 16kb\n",
                 "t.conf:7: bad value '16kb' for buffer_size in [server]: unknown suffix 'kb' (use k, m, g or t)");
    expect_error(BASE "[server]\nbuffer_size = 2m\n",
                 "t.conf:7: bad value '2m' for buffer_size in [server]: out of range 1024..1048576 bytes");
    expect_error(BASE "[server]\nbuffers = 1000\n",
                 "t.conf:7: bad value '1000' for buffers in [server]: must be a power of two (16, 32, ... 32768)");
    expect_error(BASE "[server]\nlog_level = loud\n",
                 "t.conf:7: bad value 'loud' for log_level in [server]: expected one of debug|info|warn|error");
    expect_error(BASE "hash_balance_factor = 0.5\n",
                 "t.conf:6: bad value '0.5' for hash_balance_factor in [pool]: expected a number 1.0..100.0");
    expect_error(BASE "hash_balance_factor = nan\n",
                 "t.conf:6: bad value 'nan' for hash_balance_factor in [pool]: expected a number 1.0..100.0");
    expect_error(BASE "health_rise = 0\n",
                 "t.conf:6: bad value '0' for health_rise in [pool]: expected an integer 1..100");
    expect_error(BASE "[limit]\nmax_connections = 4294967296\n",
                 "t.conf:7: bad value '4294967296' for max_connections in [limit]: expected an integer "
                 "0..4294967295");
    expect_error(BASE "[node]\nname = a/b\n",
                 "t.conf:7: bad value 'a/b' for name in [node]: a name has 1..63 letters, digits, '_', '-' or '.'");
}

static void test_threads(void **state)
{
    (void)state;
    expect_error(BASE "[server]\nthreads = 0\n", "t.conf:7: bad value '0' for threads in [server]: expected 1..256 or auto");
    expect_error(BASE "[server]\nthreads = 257\n",
                 "t.conf:7: bad value '257' for threads in [server]: expected 1..256 or auto");
    expect_error(BASE "[server]\nthreads = many\n",
                 "t.conf:7: bad value 'many' for threads in [server]: expected 1..256 or auto");
}

static void test_algorithms(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        enum voro_lb_algorithm algo;
    } algos[] = {{"round_robin", VORO_LB_ROUND_ROBIN},       {"least_connections", VORO_LB_LEAST_CONNECTIONS},
                 {"consistent_hash", VORO_LB_CONSISTENT_HASH}, {"power_of_two", VORO_LB_POWER_OF_TWO},
                 {"ewma", VORO_LB_EWMA},                       {"queue_length", VORO_LB_QUEUE_LENGTH},
                 {"gpu_aware", VORO_LB_GPU_AWARE}};
    for (size_t i = 0; i < sizeof(algos) / sizeof(algos[0]); i++) {
        char text[256];
        snprintf(text, sizeof(text), BASE "algorithm = %s\n", algos[i].name);
        struct voro_config *cfg = parse_ok(text);
        assert_int_equal(cfg->pools[0].algorithm, algos[i].algo);
        assert_string_equal(voro_lb_algorithm_name(cfg->pools[0].algorithm), algos[i].name);
        voro_config_free(cfg);
        snprintf(text, sizeof(text), "[server]\nport = 8080\n[backend]\nb = 127.0.0.1:1\n[balancer]\nalgorithm = %s\n",
                 algos[i].name);
        cfg = parse_ok(text);
        assert_int_equal(cfg->pools[0].algorithm, algos[i].algo);
        voro_config_free(cfg);
    }
    expect_error(BASE "algorithm = random\n",
                 "t.conf:6: bad value 'random' for algorithm in [pool]: expected one of "
                 "round_robin|least_connections|consistent_hash|power_of_two|ewma|queue_length|gpu_aware");
    expect_error("[server]\nport = 8080\n[backend]\nb = 127.0.0.1:1\n[balancer]\nalgorithm = GPU_aware\n",
                 "t.conf:6: bad value 'GPU_aware' for algorithm in [balancer]: expected one of "
                 "round_robin|least_connections|consistent_hash|power_of_two|ewma|queue_length|gpu_aware");
}

static void test_syntax_errors(void **state)
{
    (void)state;
    expect_error(BASE "[pool q\n", "t.conf:6: missing ']' in section header");
    expect_error(BASE "retries\n", "t.conf:6: expected 'key = value' or '[section]', got 'retries'");
    expect_error(BASE "= 3\n", "t.conf:6: empty key before '='");
    expect_error(BASE "retries = \x02\n", "t.conf:6: control character 0x02 at column 11");
    expect_error(BASE "[pool q!]\n",
                 "t.conf:6: invalid character in section name 'q!' (allowed: letters, digits, '_', '-', '.')");
    expect_error("port = 1\n" BASE, "t.conf:1: key 'port' outside any section (start with a [section] header)");

    char *big = malloc(5000 + sizeof(BASE));
    assert_non_null(big);
    strcpy(big, BASE "retries = ");
    size_t n = strlen(big);
    memset(big + n, '1', 4200);
    strcpy(big + n + 4200, "\n");
    expect_error(big, "t.conf:6: line longer than 4096 bytes");
    free(big);

    /* a bad section header stops keys from landing in the previous section */
    struct voro_config *cfg = NULL;
    struct voro_config_errors errs = {0};
    assert_int_equal(parse(BASE "[pool q\nbogus = 1\n", &cfg, &errs), -EINVAL);
    assert_int_equal(errs.count, 1);
    voro_config_errors_free(&errs);
}

static void test_unknown_and_suggestions(void **state)
{
    (void)state;
    expect_error(BASE "[limit]\nmax_conection = 5\n",
                 "t.conf:7: unknown key 'max_conection' in [limit]; did you mean 'max_connections'?");
    expect_error(BASE "helth_check = tcp\n", "t.conf:6: unknown key 'helth_check' in [pool p]; did you mean 'health_check'?");
    expect_error(BASE "[timeouts]\nfoo = 1s\n",
                 "t.conf:7: unknown key 'foo' in [timeouts]; valid keys: connect, idle, udp_idle, drain");
    expect_error(BASE "[limits]\nmax_connections = 1\n", "t.conf:6: unknown section [limits]; did you mean [limit]?");
    expect_error(BASE "[frontend]\n",
                 "t.conf:6: unknown section [frontend]; valid sections: server, backend, balancer, limit, monitor, "
                 "node, timeouts, listener NAME, pool NAME, http, route NAME, cluster");
    expect_error(BASE "[pool]\n", "t.conf:6: section [pool] needs a name: [pool NAME]");
    expect_error(BASE "[limit x]\n", "t.conf:6: section [limit] takes no name (got 'x')");
    expect_error(BASE "[node]\nbnd.l = 127.0.0.1:1\n",
                 "t.conf:7: unknown key 'bnd.l' in [node]; valid keys: name, data_dir, admin_address, bind.LISTENER");
}

static void test_duplicates(void **state)
{
    (void)state;
    expect_error(BASE "retries = 1\nretries = 2\n",
                 "t.conf:7: duplicate key 'retries' in [pool p] (first set at line 6)");
    expect_error("[limit]\nglobal_qps = 1\n" BASE "[limit]\nglobal_qps = 2\n",
                 "t.conf:9: duplicate key 'global_qps' in [limit] (first set at line 2)");
    expect_error(BASE "[listener l]\n", "t.conf:6: duplicate listener 'l' (first defined at line 1)");
    expect_error(BASE "[pool p]\n", "t.conf:6: duplicate pool 'p' (first defined at line 4)");
    expect_error(BASE "server = s1 127.0.0.1:9009\n", "t.conf:6: duplicate server 's1' in pool 'p'");
    expect_error(SEED "[backend]\nbackend1 = 127.0.0.1:1\n", "t.conf:19: duplicate server 'backend1' in pool 'default'");
    expect_error(SEED "[pool default]\n",
                 "t.conf:18: pool 'default' is already defined by [backend]/[balancer] at line 7; use one form");
    expect_error("[pool default]\nserver = a 127.0.0.1:1\n" "[backend]\nb = 127.0.0.1:2\n[listener l]\nbind = *:1\n",
                 "t.conf:4: [backend] and [balancer] define pool 'default', which [pool default] at line 1 already "
                 "defines; use one form");
    expect_error(SEED "[listener default]\nbind = 127.0.0.1:1\n",
                 "t.conf:2: [server] port defines listener 'default', which [listener default] at line 18 already "
                 "defines; use one form");
    expect_error(BASE "[node]\nbind.l = 127.0.0.1:1\nbind.l = 127.0.0.1:2\n",
                 "t.conf:8: duplicate key 'bind.l' in [node] (first set at line 7)");
}

static void test_structure_errors(void **state)
{
    (void)state;
    expect_error("[listener l]\nbind = 127.0.0.1:1\npool = nope\n[pool p]\nserver = a 127.0.0.1:2\n",
                 "t.conf:3: listener 'l' uses unknown pool 'nope'");
    expect_error("[listener l]\nbind = 127.0.0.1:1\n[pool p]\nserver = a 127.0.0.1:2\n",
                 "t.conf:1: listener 'l' uses unknown pool 'default' (define it with [backend] or [pool default])");
    expect_error("[listener l]\nbind = 127.0.0.1:1\npool = q\n[pool alpha]\nserver = a 127.0.0.1:2\n[pool qq]\nserver = a 127.0.0.1:2\n",
                 "t.conf:3: listener 'l' uses unknown pool 'q'; did you mean 'qq'?");
    expect_error("[listener l]\npool = p\n[pool p]\nserver = a 127.0.0.1:2\n",
                 "t.conf:1: listener 'l' has no bind address (bind = ADDR:PORT)");
    expect_error(BASE "[pool empty]\n", "t.conf:6: pool 'empty' has no servers (add server = NAME ADDR:PORT)");
    expect_error("[server]\nport = 1\n[balancer]\nalgorithm = round_robin\n",
                 "t.conf:4: pool 'default' has no servers (add NAME = ADDR:PORT lines under [backend])");
    expect_error(BASE "[listener m]\nbind = 127.0.0.1:8080\npool = p\n",
                 "t.conf:6: listeners 'l' and 'm' both bind 127.0.0.1:8080/tcp");
    expect_error(BASE "[listener m]\nmode = http\nbind = 127.0.0.1:8080\npool = p\n",
                 "t.conf:6: listeners 'l' and 'm' both bind 127.0.0.1:8080/tcp");
    expect_error("[pool p]\nserver = a 127.0.0.1:2\n", "t.conf:2: no listener: set [server] port or add a [listener NAME] section");
    expect_error("", "t.conf:1: no listener: set [server] port or add a [listener NAME] section");
    expect_error("[server]\nport = 1\nbind = 127.0.0.1:80\n[backend]\nb = 127.0.0.1:1\n",
                 "t.conf:3: bad value '127.0.0.1:80' for bind in [server]: an address without port is expected here; "
                 "the port is [server] port");
    expect_error("[server]\nport = 1\nbind = [::1]:80\n[backend]\nb = 127.0.0.1:1\n",
                 "t.conf:3: bad value '[::1]:80' for bind in [server]: an address without port is expected here; "
                 "the port is [server] port");
    expect_error("[server]\nport = 1\nbind = example.com\n[backend]\nb = 127.0.0.1:1\n",
                 "t.conf:3: bad value 'example.com' for bind in [server]: 'example.com' is a hostname; only numeric "
                 "addresses are accepted (no DNS), e.g. 127.0.0.1");
    expect_error(BASE "[server]\nbind = 127.0.0.1\n", "t.conf:7: [server] bind has no effect without [server] port");
    expect_error(BASE "[node]\nbind.zz = 127.0.0.1:1\n", "t.conf:7: bind.zz: no listener named 'zz'");

    /* same port, other transport or other address: fine */
    struct voro_config *cfg = parse_ok(BASE "[listener u]\nmode = udp\nbind = 127.0.0.1:8080\npool = p\n"
                                            "[listener v6]\nbind = [::1]:8080\npool = p\n");
    assert_int_equal(cfg->n_listeners, 3);
    voro_config_free(cfg);
    /* a node override can resolve a clash */
    cfg = parse_ok(BASE "[listener m]\nbind = 127.0.0.1:8080\npool = p\n[node]\nbind.m = 127.0.0.1:8081\n");
    assert_string_equal(cfg->listeners[1].bind.text, "127.0.0.1:8081");
    voro_config_free(cfg);
}

static void test_servers(void **state)
{
    (void)state;
    expect_error(BASE "server = s2 127.0.0.1:1 weight=257\n",
                 "t.conf:6: server 's2': bad weight '257' (expected 1..256, or 0 = drained)");
    expect_error(BASE "server = s2 127.0.0.1:1 prio=1\n", "t.conf:6: server 's2': unexpected 'prio=1' (expected weight=N, "
                 "models=LIST, metrics=URL or capacity=N)");
    expect_error(BASE "server = 127.0.0.1:1\n",
                 "t.conf:6: bad server '127.0.0.1:1' in [pool p]: expected NAME ADDR:PORT [weight=N]");
    expect_error(BASE "server = a:b 127.0.0.1:1\n",
                 "t.conf:6: bad server name 'a:b': a name has 1..63 letters, digits, '_', '-' or '.'");
    expect_error("[server]\nport = 1\n[backend]\nb1 = localhost:80\n",
                 "t.conf:4: server 'b1': 'localhost' is a hostname; only numeric addresses are accepted (no DNS), e.g. "
                 "127.0.0.1");

    /* exactly VORO_POOL_MAX_SERVERS is fine, one more is not */
    size_t cap = 64 * (VORO_POOL_MAX_SERVERS + 2) + sizeof(BASE);
    char *text = malloc(cap);
    assert_non_null(text);
    size_t n = (size_t)snprintf(text, cap, "%s", BASE);
    for (int i = 2; i <= VORO_POOL_MAX_SERVERS; i++)
        n += (size_t)snprintf(text + n, cap - n, "server = s%d 127.0.0.1:%d\n", i, 10000 + i);
    struct voro_config *cfg = parse_ok(text);
    assert_int_equal(cfg->pools[0].n_servers, VORO_POOL_MAX_SERVERS);
    voro_config_free(cfg);
    snprintf(text + n, cap - n, "server = extra 127.0.0.1:1\n");
    char expected[128];
    snprintf(expected, sizeof(expected), "t.conf:%d: pool 'p' has more than %d servers", VORO_POOL_MAX_SERVERS + 5,
             VORO_POOL_MAX_SERVERS);
    expect_error(text, expected);
    free(text);
}

static void test_sockaddr(void **state)
{
    (void)state;
    struct voro_sockaddr sa;
    assert_int_equal(voro_sockaddr_parse("127.0.0.1:8080", &sa), 0);
    assert_string_equal(sa.text, "127.0.0.1:8080");
    assert_int_equal(sa.len, sizeof(struct sockaddr_in));

    assert_int_equal(voro_sockaddr_parse("[::1]:8080", &sa), 0);
    assert_string_equal(sa.text, "[::1]:8080");
    assert_int_equal(sa.len, sizeof(struct sockaddr_in6));
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&sa.ss;
    assert_int_equal(s6->sin6_family, AF_INET6);
    assert_int_equal(ntohs(s6->sin6_port), 8080);
    assert_true(IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr));

    assert_int_equal(voro_sockaddr_parse("[0:0:0:0:0:0:0:1]:1", &sa), 0);
    assert_string_equal(sa.text, "[::1]:1"); /* normalised */
    assert_int_equal(voro_sockaddr_parse("[::]:65535", &sa), 0);
    assert_int_equal(voro_sockaddr_parse("*:8080", &sa), 0);
    assert_string_equal(sa.text, "0.0.0.0:8080");

    static const char *const bad[] = {"",          "127.0.0.1",    "127.0.0.1:",  "127.0.0.1:0", "127.0.0.1:65536",
                                      "1.2.3:80",  "localhost:80", "::1:80",      "[::1:80",     "[::1]80",
                                      "[::1]",     "[1.2.3.4]:80", "[fe80::zz]:1", ":80",        "127.0.0.1:8x",
                                      "1.2.3.4:-1", "[]:80"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (voro_sockaddr_parse(bad[i], &sa) != -EINVAL)
            fail_msg("accepted '%s'", bad[i]);
    assert_int_equal(voro_sockaddr_parse(NULL, &sa), -EINVAL);

    /* the reasons users see */
    expect_error(BASE "[listener m]\nbind = ::1:80\n",
                 "t.conf:7: bad value '::1:80' for bind in [listener]: IPv6 addresses need brackets: write "
                 "[ADDR]:PORT, e.g. [::1]:8080");
    expect_error(BASE "[listener m]\nbind = [::1:80\n",
                 "t.conf:7: bad value '[::1:80' for bind in [listener]: missing ']' in IPv6 address '[::1:80' "
                 "(expected [ADDR]:PORT)");
    expect_error(BASE "[listener m]\nbind = [::1]80\n",
                 "t.conf:7: bad value '[::1]80' for bind in [listener]: expected ':PORT' after ']' in '[::1]80'");
    expect_error(BASE "[listener m]\nbind = [10.0.0.1]:80\n",
                 "t.conf:7: bad value '[10.0.0.1]:80' for bind in [listener]: '10.0.0.1' is an IPv4 address: write "
                 "it without brackets");
    expect_error(BASE "[listener m]\nbind = [fe80::zz]:80\n",
                 "t.conf:7: bad value '[fe80::zz]:80' for bind in [listener]: 'fe80::zz' is not a valid IPv6 address");
    expect_error(BASE "[listener m]\nbind = localhost:80\n",
                 "t.conf:7: bad value 'localhost:80' for bind in [listener]: 'localhost' is a hostname; only numeric "
                 "addresses are accepted (no DNS), e.g. 127.0.0.1");
    expect_error(BASE "[listener m]\nbind = 127.0.0.1:0\n",
                 "t.conf:7: bad value '127.0.0.1:0' for bind in [listener]: bad port '0' (expected 1..65535)");
    expect_error(BASE "[listener m]\nbind = 8080\n",
                 "t.conf:7: bad value '8080' for bind in [listener]: missing ':PORT' in '8080'");
}

static void test_collects_all_errors(void **state)
{
    (void)state;
    struct voro_config *cfg = NULL;
    struct voro_config_errors errs = {0};
    assert_int_equal(parse("[server]\nport = x\nthreads = 0\n[limit]\nglobal_qps = -1\n[what]\n", &cfg, &errs),
                     -EINVAL);
    assert_int_equal(errs.count, 4); /* port, threads, global_qps, [what]; nothing about the listener */
    assert_string_equal(errs.items[0].message,
                        "t.conf:2: bad value 'x' for port in [server]: expected a port 1..65535");
    voro_config_errors_free(&errs);
    assert_null(errs.items);

    /* a garbage file gives a bounded list that says how much was left out */
    char *text = malloc(20 * 1000 + 16);
    assert_non_null(text);
    size_t n = (size_t)sprintf(text, "[limit]\n");
    for (int i = 0; i < 1000; i++)
        n += (size_t)sprintf(text + n, "x%d = 1\n", i);
    assert_int_equal(parse(text, &cfg, &errs), -EINVAL);
    assert_int_equal(errs.count, 201);
    assert_string_equal(errs.items[200].message, "t.conf: 801 more errors not shown"); /* + no listener */
    voro_config_errors_free(&errs);
    free(text);

    /* errors may be NULL: still fails */
    assert_int_equal(parse("[server]\nport = x\n", &cfg, NULL), -EINVAL);
    assert_null(cfg);
}

static void test_load(void **state)
{
    (void)state;
    struct voro_config *cfg = NULL;
    struct voro_config_errors errs = {0};
    assert_int_equal(voro_config_load("/nonexistent/voro.conf", &cfg, &errs), -ENOENT);
    assert_int_equal(errs.count, 1);
    assert_non_null(strstr(errs.items[0].message, "/nonexistent/voro.conf: cannot open"));
    voro_config_errors_free(&errs);

    char path[] = "/tmp/voro-test-config-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "[server]\nport = 8080\n[backend]\nb = 127.0.0.1:1\n[limit]\nglobal_qps = z\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    assert_int_equal(voro_config_load(path, &cfg, &errs), -EINVAL);
    assert_int_equal(errs.count, 1);
    char expected[256];
    snprintf(expected, sizeof(expected), "%s:6: bad value 'z' for global_qps in [limit]: expected an integer 0..4294967295",
             path);
    assert_string_equal(errs.items[0].message, expected);
    voro_config_errors_free(&errs);
    unlink(path);
}

/* ---- L7: server options, pool keys, [http], [route NAME] ---- */

/* 9 lines, ending inside [pool p] */
#define HTTP_BASE "[listener h]\nmode = http\nbind = 127.0.0.1:8090\npool = p\n" BASE

static void test_l7_defaults(void **state)
{
    (void)state;
    struct voro_config *cfg = parse_ok(BASE);
    const struct voro_pool_config *p = &cfg->pools[0];
    assert_int_equal(p->l7.hash_key, VORO_HASH_CLIENT_IP);
    assert_string_equal(p->l7.hash_key_name, "");
    assert_string_equal(p->health.method, "GET");
    assert_string_equal(p->health.path, "/health");
    assert_int_equal(p->health.expect_status, 200);
    assert_string_equal(p->health.expect_body, "");
    assert_string_equal(p->health.script, "");
    assert_int_equal(p->l7.eject_consecutive, 5);
    assert_int_equal(p->l7.eject_base_ms, 10000);
    assert_int_equal(p->l7.eject_max_percent, 50);
    assert_int_equal(p->l7.slow_start_ms, 0);
    assert_false(p->l7.warmup);
    assert_true(p->l7.learn_models);
    assert_int_equal(p->l7.metrics_interval_ms, 1000);
    assert_int_equal(p->l7.metrics_stale_ms, 3000);
    assert_int_equal(p->l7.upstream_max_idle, 256);
    assert_int_equal(p->l7.upstream_idle_timeout_ms, 4000);
    const struct voro_server_config *s = &p->servers[0];
    assert_null(s->models);
    assert_int_equal(s->n_models, 0);
    assert_string_equal(s->metrics_url, "");
    assert_int_equal(s->capacity, 0);
    const struct voro_http_config *h = &cfg->http;
    assert_int_equal(h->max_request_line, 8192);
    assert_int_equal(h->max_header_bytes, 32768);
    assert_int_equal(h->max_headers, 100);
    assert_true(h->max_body == 0);
    assert_int_equal(h->header_timeout_ms, 10000);
    assert_int_equal(h->body_timeout_ms, 30000);
    assert_int_equal(h->response_timeout_ms, 300000);
    assert_int_equal(h->keepalive_timeout_ms, 60000);
    assert_true(h->add_request_id);
    assert_string_equal(h->via, "voro");
    assert_int_equal(cfg->n_routes, 0);
    assert_null(cfg->routes);
    voro_config_free(cfg);

    cfg = parse_ok(HTTP_BASE "[route r]\npool = p\n");
    assert_int_equal(cfg->listeners[0].mode, VORO_MODE_HTTP);
    assert_int_equal(cfg->n_routes, 1);
    const struct voro_route_config *r = &cfg->routes[0];
    assert_string_equal(r->name, "r");
    assert_string_equal(r->listener, "");
    assert_string_equal(r->host, "");
    assert_string_equal(r->path_prefix, "");
    assert_int_equal(r->methods, 0);
    assert_string_equal(r->header_name, "");
    assert_string_equal(r->header_value, "");
    assert_string_equal(r->model, "");
    assert_string_equal(r->pool_name, "p");
    assert_int_equal(r->pool_index, 0);
    assert_false(r->rewrite_model);
    assert_int_equal(r->body_limit, 1048576);
    assert_int_equal(r->line, 10);
    voro_config_free(cfg);
}

static void test_server_options(void **state)
{
    (void)state;
    struct voro_config *cfg = parse_ok(
        BASE "server = g1 127.0.0.1:9002 models=llama,llama-3,llama@v2,lora:llama-3-sql,lora:other,meta/x:8b "
             "metrics=http://127.0.0.1:9002/metrics capacity=64 weight=3\n"
             "server = g2 [::1]:9003 metrics=http://[::1]:9003/m?x=1 models=lora:zed,b\n"
             "[backend]\nbk = 127.0.0.1:9004 models=m1 capacity=0\n[server]\nport = 8081\n");
    const struct voro_server_config *s = &cfg->pools[0].servers[1];
    assert_int_equal(s->weight, 3);
    assert_int_equal(s->capacity, 64);
    assert_string_equal(s->metrics_url, "http://127.0.0.1:9002/metrics");
    assert_int_equal(s->n_models, 6);
    assert_string_equal(s->models[0].name, "llama");
    assert_string_equal(s->models[0].version, "");
    assert_false(s->models[0].adapter);
    assert_string_equal(s->models[2].name, "llama");
    assert_string_equal(s->models[2].version, "v2");
    assert_string_equal(s->models[3].name, "llama-3-sql");
    assert_true(s->models[3].adapter);
    assert_string_equal(s->models[3].base, "llama-3"); /* longest prefix followed by '-' */
    assert_string_equal(s->models[4].name, "other");
    assert_string_equal(s->models[4].base, "llama"); /* no prefix: first declared model */
    assert_string_equal(s->models[5].name, "meta/x:8b");
    assert_string_equal(s->models[0].base, "");
    s = &cfg->pools[0].servers[2];
    assert_string_equal(s->metrics_url, "http://[::1]:9003/m?x=1");
    assert_string_equal(s->models[0].base, "b"); /* the first non-adapter, declared later */
    const struct voro_pool_config *d = &cfg->pools[1];
    assert_string_equal(d->name, "default");
    assert_string_equal(d->servers[0].models[0].name, "m1");
    voro_config_free(cfg);

    expect_error(BASE "server = s2 127.0.0.1:1 models=\n", "t.conf:6: server 's2': empty model name in models=");
    expect_error(BASE "server = s2 127.0.0.1:1 models=a,,b\n", "t.conf:6: server 's2': empty model name in models=");
    expect_error(BASE "server = s2 127.0.0.1:1 models=a b\n",
                 "t.conf:6: server 's2': unexpected 'b' (expected weight=N, models=LIST, metrics=URL or capacity=N)");
    expect_error(BASE "server = s2 127.0.0.1:1 models=a$b\n",
                 "t.conf:6: server 's2': bad model name 'a$b' (1..63 letters, digits, '_', '-', '.', '/', ':')");
    expect_error(BASE "server = s2 127.0.0.1:1 models=@v1\n",
                 "t.conf:6: server 's2': bad model name '' (1..63 letters, digits, '_', '-', '.', '/', ':')");
    expect_error(BASE "server = s2 127.0.0.1:1 models=lora:\n",
                 "t.conf:6: server 's2': bad model name 'lora:' (1..63 letters, digits, '_', '-', '.', '/', ':')");
    expect_error(BASE "server = s2 127.0.0.1:1 models="
                      "a234567890123456789012345678901234567890123456789012345678901234\n",
                 "t.conf:6: server 's2': bad model name 'a234567890123456789012345678901234567890123456789012345678901234'"
                 " (1..63 letters, digits, '_', '-', '.', '/', ':')");
    expect_error(BASE "server = s2 127.0.0.1:1 models=a@\n",
                 "t.conf:6: server 's2': bad version '' of model 'a' (1..31 letters, digits, '_', '-', '.')");
    expect_error(BASE "server = s2 127.0.0.1:1 models=a@v/1\n",
                 "t.conf:6: server 's2': bad version 'v/1' of model 'a' (1..31 letters, digits, '_', '-', '.')");
    expect_error(BASE "server = s2 127.0.0.1:1 models=a@12345678901234567890123456789012\n",
                 "t.conf:6: server 's2': bad version '12345678901234567890123456789012' of model 'a' (1..31 letters, "
                 "digits, '_', '-', '.')");
    expect_error(BASE "server = s2 127.0.0.1:1 models=a,lora:a-x@v1\n",
                 "t.conf:6: server 's2': adapter 'lora:a-x' takes no version");
    expect_error(BASE "server = s2 127.0.0.1:1 models=a,b,a\n", "t.conf:6: server 's2': model 'a' listed twice");
    expect_error(BASE "server = s2 127.0.0.1:1 models=a@v1,a@v1\n", "t.conf:6: server 's2': model 'a@v1' listed twice");
    expect_error(BASE "server = s2 127.0.0.1:1 models=a,lora:a\n",
                 "t.conf:6: server 's2': 'a' is declared both as a model and as an adapter");
    expect_error(BASE "server = s2 127.0.0.1:1 models=lora:a-sql\n",
                 "t.conf:6: server 's2': adapter 'lora:a-sql' needs a base model in the same models= list");
    expect_error(BASE "server = s2 127.0.0.1:1 models=a weight=1 models=b\n", "t.conf:6: server 's2': models given twice");
    expect_error(BASE "server = s2 127.0.0.1:1 weight=1 weight=2\n", "t.conf:6: server 's2': weight given twice");
    expect_error(BASE "server = s2 127.0.0.1:1 capacity=1000001\n",
                 "t.conf:6: server 's2': bad capacity '1000001' (expected 0..1000000, 0 = learn it)");
    expect_error(BASE "server = s2 127.0.0.1:1 capacity=x\n",
                 "t.conf:6: server 's2': bad capacity 'x' (expected 0..1000000, 0 = learn it)");
    expect_error(BASE "server = s2 127.0.0.1:1 metrics=https://127.0.0.1:1/metrics\n",
                 "t.conf:6: server 's2': metrics URL 'https://127.0.0.1:1/metrics' must start with http://");
    expect_error(BASE "server = s2 127.0.0.1:1 metrics=http://127.0.0.1:1\n",
                 "t.conf:6: server 's2': metrics URL 'http://127.0.0.1:1' needs a path, e.g. "
                 "http://127.0.0.1:8000/metrics");
    expect_error(BASE "server = s2 127.0.0.1:1 metrics=http://gpu1:8000/metrics\n",
                 "t.conf:6: server 's2': metrics URL: 'gpu1' is a hostname; only numeric addresses are accepted (no "
                 "DNS), e.g. 127.0.0.1");
    expect_error(BASE "server = s2 127.0.0.1:1 metrics=http://127.0.0.1/metrics\n",
                 "t.conf:6: server 's2': metrics URL: missing ':PORT' in '127.0.0.1'");
    expect_error(BASE "server = s2 127.0.0.1:1 metrics=http://*:80/metrics\n",
                 "t.conf:6: server 's2': metrics URL needs a concrete address, not '*:80'");
    expect_error(BASE "server = s2 127.0.0.1:1 metrics=http://127.0.0.1:80/m#x\n",
                 "t.conf:6: server 's2': metrics URL path has an invalid character");
    expect_error("[server]\nport = 1\n[backend]\nb1 = 127.0.0.1:80 models=x@\n",
                 "t.conf:4: server 'b1': bad version '' of model 'x' (1..31 letters, digits, '_', '-', '.')");

    /* at most 64 models */
    char text[2048];
    size_t n = (size_t)snprintf(text, sizeof(text), BASE "server = s2 127.0.0.1:1 models=m0");
    for (int i = 1; i < 64; i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n, ",m%d", i);
    snprintf(text + n, sizeof(text) - n, "\n");
    cfg = parse_ok(text);
    assert_int_equal(cfg->pools[0].servers[1].n_models, 64);
    voro_config_free(cfg);
    snprintf(text + n, sizeof(text) - n, ",m64\n");
    expect_error(text, "t.conf:6: server 's2': more than 64 models");
}

static void test_l7_pool_keys(void **state)
{
    (void)state;
    struct voro_config *cfg = parse_ok(
        BASE "algorithm = consistent_hash\nhash_key = header:X-User\nhealth_check = http\nhealth_method = HEAD\n"
             "health_path = /v1/models?x=1\nhealth_expect_status = 204\nhealth_expect_body = \"ok\"\n"
             "eject_consecutive = 0\neject_base_time = 1s\neject_max_percent = 100\nslow_start = 30s\n"
             "warmup = yes\nlearn_models = off\nmetrics_interval = 100ms\nmetrics_stale = 1h\n"
             "upstream_max_idle = 0\nupstream_idle_timeout = 1ms\n"
             "[pool q]\nserver = a 127.0.0.1:2\nhash_key = cookie:sid\nhealth_check = script\n"
             "health_script = /bin/check {host} {port}\n"
             "[pool r]\nserver = a 127.0.0.1:2\nhash_key = model\n"
             "[pool s]\nserver = a 127.0.0.1:2\nhash_key = client_ip\nhealth_check = none\n");
    const struct voro_pool_config *p = &cfg->pools[0];
    assert_int_equal(p->l7.hash_key, VORO_HASH_HEADER);
    assert_string_equal(p->l7.hash_key_name, "X-User");
    assert_int_equal(p->health.type, VORO_HEALTH_CHECK_HTTP);
    assert_string_equal(p->health.method, "HEAD");
    assert_string_equal(p->health.path, "/v1/models?x=1");
    assert_int_equal(p->health.expect_status, 204);
    assert_string_equal(p->health.expect_body, "\"ok\"");
    assert_int_equal(p->l7.eject_consecutive, 0);
    assert_int_equal(p->l7.eject_base_ms, 1000);
    assert_int_equal(p->l7.eject_max_percent, 100);
    assert_int_equal(p->l7.slow_start_ms, 30000);
    assert_true(p->l7.warmup);
    assert_false(p->l7.learn_models);
    assert_int_equal(p->l7.metrics_interval_ms, 100);
    assert_int_equal(p->l7.metrics_stale_ms, 3600000);
    assert_int_equal(p->l7.upstream_max_idle, 0);
    assert_int_equal(p->l7.upstream_idle_timeout_ms, 1);
    p = &cfg->pools[1];
    assert_int_equal(p->l7.hash_key, VORO_HASH_COOKIE);
    assert_string_equal(p->l7.hash_key_name, "sid");
    assert_int_equal(p->health.type, VORO_HEALTH_CHECK_SCRIPT);
    assert_string_equal(p->health.script, "/bin/check {host} {port}");
    assert_int_equal(cfg->pools[2].l7.hash_key, VORO_HASH_MODEL);
    assert_int_equal(cfg->pools[3].l7.hash_key, VORO_HASH_CLIENT_IP);
    assert_int_equal(cfg->pools[3].health.type, VORO_HEALTH_CHECK_NONE);
    voro_config_free(cfg);

    cfg = parse_ok("[server]\nport = 1\n[backend]\nb = 127.0.0.1:1\n[balancer]\nalgorithm = consistent_hash\n"
                   "hash_key = cookie:session\n");
    assert_int_equal(cfg->pools[0].l7.hash_key, VORO_HASH_COOKIE);
    assert_string_equal(cfg->pools[0].l7.hash_key_name, "session");
    voro_config_free(cfg);

    expect_error(BASE "hash_key = ip\n",
                 "t.conf:6: bad value 'ip' for hash_key in [pool]: expected client_ip, model, header:NAME or "
                 "cookie:NAME");
    expect_error(BASE "hash_key = header:\n",
                 "t.conf:6: bad value 'header:' for hash_key in [pool]: the header or cookie name must be a token of "
                 "1..63 characters");
    expect_error(BASE "hash_key = cookie:a;b\n",
                 "t.conf:6: bad value 'cookie:a;b' for hash_key in [pool]: the header or cookie name must be a token "
                 "of 1..63 characters");
    expect_error("[server]\nport = 1\n[backend]\nb = 127.0.0.1:1\n[balancer]\nhash_key = nope\n",
                 "t.conf:6: bad value 'nope' for hash_key in [balancer]: expected client_ip, model, header:NAME or "
                 "cookie:NAME");
    expect_error(BASE "health_check = grpc\n",
                 "t.conf:6: bad value 'grpc' for health_check in [pool]: expected one of none|tcp|http|script");
    expect_error(BASE "health_check = http\nhealth_method = POST\n",
                 "t.conf:7: bad value 'POST' for health_method in [pool]: expected one of GET|HEAD");
    expect_error(BASE "health_check = http\nhealth_path = health\n",
                 "t.conf:7: bad value 'health' for health_path in [pool]: a path starts with '/'");
    expect_error(BASE "health_check = http\nhealth_path = /a b\n",
                 "t.conf:7: bad value '/a b' for health_path in [pool]: a path has no spaces, '#' or non-ASCII bytes");
    expect_error(BASE "health_check = http\nhealth_expect_status = 99\n",
                 "t.conf:7: bad value '99' for health_expect_status in [pool]: expected an integer 100..599");
    expect_error(BASE "health_path = /ready\n",
                 "t.conf:6: pool 'p': health_path has no effect unless health_check = http");
    expect_error(BASE "health_check = tcp\nhealth_expect_body = ok\n",
                 "t.conf:7: pool 'p': health_expect_body has no effect unless health_check = http");
    expect_error(BASE "health_check = script\n",
                 "t.conf:6: pool 'p': health_check = script needs health_script = COMMAND");
    expect_error(BASE "health_script = /bin/true\n",
                 "t.conf:6: pool 'p': health_script has no effect unless health_check = script");
    expect_error(BASE "eject_max_percent = 101\n",
                 "t.conf:6: bad value '101' for eject_max_percent in [pool]: expected an integer 0..100");
    expect_error(BASE "eject_base_time = 0\n",
                 "t.conf:6: bad value '0' for eject_base_time in [pool]: out of range 1ms..3600000ms");
    expect_error(BASE "metrics_interval = 10ms\n",
                 "t.conf:6: bad value '10ms' for metrics_interval in [pool]: out of range 100ms..3600000ms");
    expect_error(BASE "learn_models = sometimes\n",
                 "t.conf:6: bad value 'sometimes' for learn_models in [pool]: expected true/false, on/off, yes/no or "
                 "1/0");
    expect_error(BASE "upstream_max_idle = 4097\n",
                 "t.conf:6: bad value '4097' for upstream_max_idle in [pool]: expected an integer 0..4096");
}

static void test_http_section(void **state)
{
    (void)state;
    struct voro_config *cfg = parse_ok(BASE "[http]\nmax_request_line = 1k\nmax_header_bytes = 1m\nmax_headers = 1\n"
                                            "max_body = 1g\nheader_timeout = 1ms\nbody_timeout = 1h\n"
                                            "response_timeout = 24h\nkeepalive_timeout = 0\nadd_request_id = no\n"
                                            "via = edge-1.example\n");
    const struct voro_http_config *h = &cfg->http;
    assert_int_equal(h->max_request_line, 1024);
    assert_int_equal(h->max_header_bytes, 1048576);
    assert_int_equal(h->max_headers, 1);
    assert_true(h->max_body == 1ull << 30);
    assert_int_equal(h->header_timeout_ms, 1);
    assert_int_equal(h->body_timeout_ms, 3600000);
    assert_int_equal(h->response_timeout_ms, 24 * 3600000);
    assert_int_equal(h->keepalive_timeout_ms, 0);
    assert_false(h->add_request_id);
    assert_string_equal(h->via, "edge-1.example");
    voro_config_free(cfg);
    /* 2t is beyond max_body's range: the 64-bit size path still range-checks */
    expect_error(BASE "[http]\nmax_body = 2t\n",
                 "t.conf:7: bad value '2t' for max_body in [http]: out of range 0..1099511627776 bytes");
    cfg = parse_ok(BASE "[http]\nmax_body = 5g\n");
    assert_true(cfg->http.max_body == 5ull << 30);
    voro_config_free(cfg);
    cfg = parse_ok(BASE "[http]\nmax_body = 1t\n");
    assert_true(cfg->http.max_body == 1ull << 40);
    voro_config_free(cfg);
    expect_error(BASE "[http]\nmax_body = 99999999999t\n",
                 "t.conf:7: bad value '99999999999t' for max_body in [http]: too large");
    expect_error(BASE "[server]\nbuffer_size = 1g\n",
                 "t.conf:7: bad value '1g' for buffer_size in [server]: out of range 1024..1048576 bytes");
    expect_error(BASE "[http]\nmax_headers = 101\n",
                 "t.conf:7: bad value '101' for max_headers in [http]: expected an integer 1..100");
    expect_error(BASE "[http]\nvia = a b\n",
                 "t.conf:7: bad value 'a b' for via in [http]: a name uses letters, digits, '_', '-' and '.'");
    expect_error(BASE "[http]\nmax_request_line = 64k\n",
                 "t.conf:7: [http] max_request_line (65536) is larger than max_header_bytes (32768)");
    expect_error(BASE "[http]\nmax_header_bytes = 1k\n",
                 "t.conf:7: [http] max_request_line (8192) is larger than max_header_bytes (1024)");
    expect_error(BASE "[http x]\n", "t.conf:6: section [http] takes no name (got 'x')");
}

static void test_routes(void **state)
{
    (void)state;
    struct voro_config *cfg = parse_ok(
        HTTP_BASE "server = g 127.0.0.1:9009 models=llama@v2,mistral,lora:mistral-sql\n"
                  "learn_models = false\n"
                  "[pool q]\nserver = a 127.0.0.1:2\n"
                  "[route first]\nlistener = h\nhost = API.Example.com\npath_prefix = /v1/\nmethods = POST, GET ,OTHER\n"
                  "header = X-Tenant:  blue team \nmodel = llama@v2\npool = p\nrewrite_model = true\nbody_limit = 2m\n"
                  "[route second]\nhost = *.example.com\nheader = X-Debug\nmodel = *\npool = q\n"
                  "[route third]\nhost = [::1]\nmodel = mistral-sql\npool = p\n"
                  "[route fourth]\nmodel = llama\npool = p\n"
                  "[route fifth]\nmodel = anything@v9\npool = q\n" /* q learns its models */
                  "[route sixth]\nmethods = DELETE,PUT,PATCH,OPTIONS,HEAD\npool = q\n");
    assert_int_equal(cfg->n_routes, 6);
    const struct voro_route_config *r = &cfg->routes[0];
    assert_string_equal(r->name, "first");
    assert_string_equal(r->listener, "h");
    assert_string_equal(r->host, "api.example.com"); /* stored lower-case */
    assert_string_equal(r->path_prefix, "/v1/");
    assert_int_equal(r->methods, VORO_METHOD_POST | VORO_METHOD_GET | VORO_METHOD_OTHER);
    assert_string_equal(r->header_name, "X-Tenant");
    assert_string_equal(r->header_value, "blue team");
    assert_string_equal(r->model, "llama@v2");
    assert_string_equal(r->pool_name, "p");
    assert_int_equal(r->pool_index, 0);
    assert_true(r->rewrite_model);
    assert_int_equal(r->body_limit, 2 * 1048576);
    assert_int_equal(r->line, 14);
    r = &cfg->routes[1];
    assert_string_equal(r->name, "second"); /* file order kept */
    assert_string_equal(r->host, "*.example.com");
    assert_string_equal(r->header_name, "X-Debug");
    assert_string_equal(r->header_value, "");
    assert_string_equal(r->model, "*");
    assert_int_equal(r->pool_index, 1);
    assert_string_equal(cfg->routes[2].host, "[::1]");
    assert_int_equal(cfg->routes[5].methods, VORO_METHOD_DELETE | VORO_METHOD_PUT | VORO_METHOD_PATCH |
                                                 VORO_METHOD_OPTIONS | VORO_METHOD_HEAD);
    voro_config_free(cfg);

    /* [server] mode = http makes an http listener too */
    cfg = parse_ok("[server]\nport = 8080\nmode = http\n[backend]\nb = 127.0.0.1:1 models=m\n[route r]\npool = default\n"
                   "model = m\n");
    assert_int_equal(cfg->routes[0].pool_index, 0);
    voro_config_free(cfg);

    expect_error(HTTP_BASE "[route r]\nhost = x\n", "t.conf:10: route 'r' has no pool (pool = NAME)");
    expect_error(HTTP_BASE "[route r]\npool = nope\n", "t.conf:11: route 'r' uses unknown pool 'nope'");
    expect_error(HTTP_BASE "[pool gpu]\nserver = a 127.0.0.1:2\n[route r]\npool = gpus\n",
                 "t.conf:13: route 'r' uses unknown pool 'gpus'; did you mean 'gpu'?");
    expect_error(HTTP_BASE "[route r]\npool = p\nlistener = zz\n", "t.conf:12: route 'r' uses unknown listener 'zz'");
    expect_error(HTTP_BASE "[route r]\npool = p\nlistener = l\n",
                 "t.conf:12: route 'r': listener 'l' has mode tcp; routes apply only to mode = http listeners");
    expect_error(BASE "[route r]\npool = p\n",
                 "t.conf:6: route 'r' applies to no listener: no listener has mode = http");
    expect_error(HTTP_BASE "[route r]\npool = p\n[route r]\npool = p\n",
                 "t.conf:12: duplicate route 'r' (first defined at line 10)");
    expect_error(HTTP_BASE "[route r]\npool = p\npool = p\n",
                 "t.conf:12: duplicate key 'pool' in [route r] (first set at line 11)");
    expect_error(HTTP_BASE "[route r]\npool = p\nprefix = /v1\n",
                 "t.conf:12: unknown key 'prefix' in [route r]; valid keys: listener, host, path_prefix, "
                 "path_prefix_mode, methods, header, model, pool, rewrite_model, model_from_header, body_limit");
    expect_error(HTTP_BASE "[route]\n", "t.conf:10: section [route] needs a name: [route NAME]");
    expect_error(HTTP_BASE "[rout r]\n", "t.conf:10: unknown section [rout]; did you mean [route]?");
    /* model conditions against declared models when the pool does not learn them */
    expect_error(HTTP_BASE "learn_models = false\nserver = g 127.0.0.1:3 models=llama@v1\n[route r]\npool = p\n"
                           "model = llama@v2\n",
                 "t.conf:14: route 'r': no server of pool 'p' declares model 'llama@v2' (add it to a server's "
                 "models= or set learn_models = true in the pool)");
    expect_error(HTTP_BASE "learn_models = false\n[route r]\npool = p\nmodel = llama\n",
                 "t.conf:13: route 'r': no server of pool 'p' declares model 'llama' (add it to a server's models= "
                 "or set learn_models = true in the pool)");
    cfg = parse_ok(HTTP_BASE "learn_models = false\nserver = g 127.0.0.1:3 models=llama@v1\n[route r]\npool = p\n"
                             "model = llama\n[route s]\npool = p\nmodel = *\n");
    voro_config_free(cfg);
    /* value errors */
    expect_error(HTTP_BASE "[route r]\npool = p\nhost = a.example.com:80\n",
                 "t.conf:12: bad value 'a.example.com:80' for host in [route]: a host has letters, digits, '-' and "
                 "'.' (no port; '*.' only as the first label)");
    expect_error(HTTP_BASE "[route r]\npool = p\nhost = a.*.com\n",
                 "t.conf:12: bad value 'a.*.com' for host in [route]: a host has letters, digits, '-' and '.' (no "
                 "port; '*.' only as the first label)");
    expect_error(HTTP_BASE "[route r]\npool = p\nhost = *.\n",
                 "t.conf:12: bad value '*.' for host in [route]: expected a host name, *.domain, an IPv4 address or "
                 "[IPv6]");
    expect_error(HTTP_BASE "[route r]\npool = p\nhost = [::1\n",
                 "t.conf:12: bad value '[::1' for host in [route]: expected a host name, *.domain, an IPv4 address "
                 "or [IPv6]");
    expect_error(HTTP_BASE "[route r]\npool = p\npath_prefix = v1\n",
                 "t.conf:12: bad value 'v1' for path_prefix in [route]: a path starts with '/'");
    expect_error(HTTP_BASE "[route r]\npool = p\nmethods = GET,post\n",
                 "t.conf:12: bad value 'GET,post' for methods in [route]: unknown method 'post' (GET, HEAD, POST, "
                 "PUT, DELETE, PATCH, OPTIONS or OTHER, comma-separated)");
    expect_error(HTTP_BASE "[route r]\npool = p\nmethods = GET,\n",
                 "t.conf:12: bad value 'GET,' for methods in [route]: unknown method '' (GET, HEAD, POST, PUT, "
                 "DELETE, PATCH, OPTIONS or OTHER, comma-separated)");
    expect_error(HTTP_BASE "[route r]\npool = p\nheader = X Y: z\n",
                 "t.conf:12: bad value 'X Y: z' for header in [route]: the header name must be a token (letters, "
                 "digits, !#$%&'*+-.^_`|~)");
    expect_error(HTTP_BASE "[route r]\npool = p\nheader = : z\n",
                 "t.conf:12: bad value ': z' for header in [route]: expected NAME: VALUE or NAME (a header name of "
                 "1..63 characters)");
    expect_error(HTTP_BASE "[route r]\npool = p\nheader = X-A:\n",
                 "t.conf:12: bad value 'X-A:' for header in [route]: empty value after ':' (write NAME alone to "
                 "require presence)");
    expect_error(HTTP_BASE "[route r]\npool = p\nmodel = a@b@c\n",
                 "t.conf:12: bad value 'a@b@c' for model in [route]: expected *, NAME or NAME@VERSION (a name has "
                 "1..63 letters, digits, '_', '-', '.', '/', ':'; a version 1..31 letters, digits, '_', '-', '.')");
    expect_error(HTTP_BASE "[route r]\npool = p\nmodel = **\n",
                 "t.conf:12: bad value '**' for model in [route]: expected *, NAME or NAME@VERSION (a name has "
                 "1..63 letters, digits, '_', '-', '.', '/', ':'; a version 1..31 letters, digits, '_', '-', '.')");
    expect_error(HTTP_BASE "[route r]\npool = p\nbody_limit = 100\n",
                 "t.conf:12: bad value '100' for body_limit in [route]: out of range 1024..268435456 bytes");
    expect_error(HTTP_BASE "[route r]\npool = p\nlistener = a/b\n",
                 "t.conf:12: bad value 'a/b' for listener in [route]: a name uses letters, digits, '_', '-' and '.'");
}

/* ---- docs/config.md and deploy/voro.conf.example ---- */

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    char *buf = malloc(1 << 20);
    assert_non_null(buf);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* Splits one markdown table row on unescaped '|' into trimmed cells without backticks and with
 * "\|" unescaped. Returns the number of cells. */
static int split_row(const char *line, char cells[][256], int max)
{
    int n = -1;
    size_t k = 0;
    for (const char *p = line; *p && *p != '\n'; p++) {
        if (*p == '|' && (p == line || p[-1] != '\\')) {
            if (n >= 0 && n < max) {
                cells[n][k] = '\0';
            }
            n++;
            k = 0;
            continue;
        }
        if (n < 0 || n >= max || *p == '`' || (*p == '\\' && p[1] == '|'))
            continue;
        if (k < 255)
            cells[n][k++] = *p;
    }
    for (int i = 0; i < n && i < max; i++) {
        char *c = cells[i];
        size_t len = strlen(c);
        while (len && c[len - 1] == ' ')
            c[--len] = '\0';
        size_t lead = strspn(c, " ");
        memmove(c, c + lead, len - lead + 1);
    }
    return n;
}

static void test_doc_matches_schema(void **state)
{
    (void)state;
    size_t len;
    char *doc = read_all(VORO_SOURCE_DIR "/docs/config.md", &len);
    const char *table = strstr(doc, "| Section | Key | Scope | Type | Default |");
    assert_non_null(table);

    size_t count;
    const struct voro_config_key_info *schema = voro_config_schema(&count);
    assert_true(count > 30);
    bool *documented = calloc(count, sizeof(bool));
    assert_non_null(documented);
    int rows = 0;
    const char *line = strchr(table, '\n') + 1;
    line = strchr(line, '\n') + 1; /* separator */
    for (; *line == '|'; line = strchr(line, '\n') + 1) {
        char cells[8][256];
        assert_int_equal(split_row(line, cells, 8), 7);
        rows++;
        /* "[listener NAME]" -> "listener" */
        char section[256];
        snprintf(section, sizeof(section), "%s", cells[0] + (cells[0][0] == '['));
        section[strcspn(section, " ]")] = '\0';
        size_t i;
        for (i = 0; i < count; i++)
            if (!strcmp(schema[i].section, section) && !strcmp(schema[i].key, cells[1]))
                break;
        if (i == count)
            fail_msg("docs/config.md documents [%s] %s, which the schema does not have", section, cells[1]);
        if (documented[i])
            fail_msg("docs/config.md documents [%s] %s twice", section, cells[1]);
        documented[i] = true;
        const char *scope = schema[i].scope == VORO_SCOPE_NODE ? "node" : "cluster";
        if (strcmp(scope, cells[2]))
            fail_msg("[%s] %s: doc scope '%s', schema '%s'", section, cells[1], cells[2], scope);
        if (strcmp(schema[i].type, cells[3]))
            fail_msg("[%s] %s: doc type '%s', schema '%s'", section, cells[1], cells[3], schema[i].type);
        if (strcmp(schema[i].default_value, cells[4]))
            fail_msg("[%s] %s: doc default '%s', schema '%s'", section, cells[1], cells[4], schema[i].default_value);
        if (!cells[5][0] || !cells[6][0])
            fail_msg("[%s] %s: no example or meaning", section, cells[1]);
        if (!strchr(line, '\n'))
            break;
    }
    for (size_t i = 0; i < count; i++)
        if (!documented[i])
            fail_msg("docs/config.md does not document [%s] %s", schema[i].section, schema[i].key);
    assert_int_equal(rows, (int)count);
    free(documented);
    free(doc);
}

static void test_doc_examples_valid(void **state)
{
    (void)state;
    size_t len;
    char *doc = read_all(VORO_SOURCE_DIR "/docs/config.md", &len);
    int blocks = 0;
    for (char *p = strstr(doc, "\n```ini\n"); p; p = strstr(p, "\n```ini\n")) {
        char *start = p + strlen("\n```ini\n");
        char *end = strstr(start, "\n```");
        assert_non_null(end);
        struct voro_config *cfg = NULL;
        struct voro_config_errors errs = {0};
        int rc = voro_config_parse("docs/config.md", start, (size_t)(end - start) + 1, &cfg, &errs);
        for (size_t i = 0; i < errs.count; i++)
            print_error("block %d: %s\n", blocks, errs.items[i].message);
        assert_int_equal(rc, 0);
        voro_config_free(cfg);
        voro_config_errors_free(&errs);
        blocks++;
        p = end + 1;
    }
    assert_true(blocks >= 2);
    /* the seed block is the seed form, verbatim */
    assert_non_null(strstr(doc, SEED));
    free(doc);

    struct voro_config *cfg = NULL;
    struct voro_config_errors errs = {0};
    int rc = voro_config_load(VORO_SOURCE_DIR "/deploy/voro.conf.example", &cfg, &errs);
    for (size_t i = 0; i < errs.count; i++)
        print_error("%s\n", errs.items[i].message);
    assert_int_equal(rc, 0);
    assert_true(cfg->n_listeners >= 2);
    assert_true(cfg->n_pools >= 2);
    voro_config_free(cfg);
    voro_config_errors_free(&errs);
}

static void test_schema(void **state)
{
    (void)state;
    size_t count = 0;
    const struct voro_config_key_info *s = voro_config_schema(&count);
    bool have_port = false, have_bind_override = false;
    for (size_t i = 0; i < count; i++) {
        assert_non_null(s[i].section);
        assert_non_null(s[i].key);
        assert_non_null(s[i].type);
        assert_non_null(s[i].default_value);
        if (!strcmp(s[i].section, "server") && !strcmp(s[i].key, "port")) {
            have_port = true;
            assert_int_equal(s[i].scope, VORO_SCOPE_CLUSTER);
        }
        if (!strcmp(s[i].section, "server") && !strcmp(s[i].key, "threads"))
            assert_int_equal(s[i].scope, VORO_SCOPE_NODE);
        if (!strcmp(s[i].section, "node") && !strcmp(s[i].key, "bind.*")) {
            have_bind_override = true;
            assert_int_equal(s[i].scope, VORO_SCOPE_NODE);
        }
        if (!strcmp(s[i].section, "monitor"))
            assert_int_equal(s[i].scope, VORO_SCOPE_NODE);
        if (!strcmp(s[i].section, "limit") || !strcmp(s[i].section, "pool") || !strcmp(s[i].section, "listener"))
            assert_int_equal(s[i].scope, VORO_SCOPE_CLUSTER);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(s[i].section, s[j].section) && !strcmp(s[i].key, s[j].key))
                fail_msg("schema lists [%s] %s twice", s[i].section, s[i].key);
    }
    assert_true(have_port);
    assert_true(have_bind_override);
}

/* Every literal default in the schema (and so in the docs) is itself a valid value. */
static void test_schema_defaults_parse(void **state)
{
    (void)state;
    size_t count;
    const struct voro_config_key_info *s = voro_config_schema(&count);
    int checked = 0;
    for (size_t i = 0; i < count; i++) {
        const char *d = s[i].default_value;
        if (!strcmp(d, "-") || d[0] == '(' || d[0] == '[' || !strcmp(s[i].key, "*"))
            continue;
        char text[1024];
        if (!strcmp(s[i].section, "pool") && !strncmp(s[i].key, "health_", 7) && strcmp(s[i].key, "health_check") &&
            !strstr(s[i].key, "interval") && !strstr(s[i].key, "timeout") && !strstr(s[i].key, "rise") &&
            !strstr(s[i].key, "fall"))
            snprintf(text, sizeof(text), BASE "health_check = http\n%s = %s\n", s[i].key, d);
        else if (!strcmp(s[i].section, "pool"))
            snprintf(text, sizeof(text), BASE "%s = %s\n", s[i].key, d);
        else if (!strcmp(s[i].section, "route"))
            snprintf(text, sizeof(text), BASE "[listener h]\nmode = http\nbind = 127.0.0.1:9999\npool = p\n"
                                              "[route r]\npool = p\n%s = %s\n", s[i].key, d);
        else if (!strcmp(s[i].section, "listener") && !strcmp(s[i].key, "pool"))
            snprintf(text, sizeof(text), BASE "[listener m]\nbind = 127.0.0.1:9999\npool = %s\n[pool %s]\n"
                                              "server = a 127.0.0.1:1\n", d, d);
        else if (!strcmp(s[i].section, "listener"))
            snprintf(text, sizeof(text), BASE "[listener m]\nbind = 127.0.0.1:9999\npool = p\n%s = %s\n", s[i].key, d);
        else if (!strcmp(s[i].section, "server") && (!strcmp(s[i].key, "bind") || !strcmp(s[i].key, "mode")))
            snprintf(text, sizeof(text), "[server]\nport = 1\n%s = %s\n[backend]\nb = 127.0.0.1:1\n", s[i].key, d);
        else if (!strcmp(s[i].section, "balancer"))
            snprintf(text, sizeof(text), "[server]\nport = 1\n[backend]\nb = 127.0.0.1:1\n[balancer]\n%s = %s\n",
                     s[i].key, d);
        else
            snprintf(text, sizeof(text), BASE "[%s]\n%s = %s\n", s[i].section, s[i].key, d);
        struct voro_config *cfg = parse_ok(text);
        voro_config_free(cfg);
        checked++;
    }
    assert_true(checked > 25);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_all_keys),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_algorithms),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_unknown_and_suggestions),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_structure_errors),
        cmocka_unit_test(test_servers),
        cmocka_unit_test(test_sockaddr),
        cmocka_unit_test(test_collects_all_errors),
        cmocka_unit_test(test_load),
        cmocka_unit_test(test_l7_defaults),
        cmocka_unit_test(test_server_options),
        cmocka_unit_test(test_l7_pool_keys),
        cmocka_unit_test(test_http_section),
        cmocka_unit_test(test_routes),
        cmocka_unit_test(test_doc_matches_schema),
        cmocka_unit_test(test_doc_examples_valid),
        cmocka_unit_test(test_schema),
        cmocka_unit_test(test_schema_defaults_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
