/* Unit tests for connection admission: node-wide cap, per-IP counts across threads, token bucket. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "node/conn_limit.h"

static struct sockaddr_in v4(const char *ip)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(1234)};
    inet_pton(AF_INET, ip, &a.sin_addr);
    return a;
}

static void test_max_total(void **state)
{
    (void)state;
    struct voro_conn_limits l;
    assert_int_equal(voro_conn_limits_init(&l, 1024), 0);
    struct voro_conn_admission adm[3];
    char ip[32];
    for (int i = 0; i < 3; i++) {
        snprintf(ip, sizeof(ip), "10.0.0.%d", i + 1);
        struct sockaddr_in a = v4(ip);
        assert_int_equal(voro_conn_limits_admit(&l, (struct sockaddr *)&a, 3, 0, 1, &adm[i]), VORO_ADMIT_OK);
    }
    struct sockaddr_in a = v4("10.0.0.9");
    struct voro_conn_admission extra;
    assert_int_equal(voro_conn_limits_admit(&l, (struct sockaddr *)&a, 3, 0, 1, &extra), VORO_ADMIT_MAX_CONNECTIONS);
    assert_int_equal(atomic_load(&l.total), 3);
    voro_conn_limits_release(&l, &adm[0]);
    assert_int_equal(voro_conn_limits_admit(&l, (struct sockaddr *)&a, 3, 0, 1, &extra), VORO_ADMIT_OK);
    voro_conn_limits_release(&l, &extra);
    voro_conn_limits_release(&l, &adm[1]);
    voro_conn_limits_release(&l, &adm[2]);
    assert_int_equal(atomic_load(&l.total), 0);
    voro_conn_limits_destroy(&l);
}

/* The descriptor budget: an L4 connection takes two slots, an HTTP client one; server sockets
 * take theirs separately; a refusal for any reason gives back what it took. */
static void test_fd_budget(void **state)
{
    (void)state;
    struct voro_conn_limits l;
    assert_int_equal(voro_conn_limits_init(&l, 1024), 0);
    l.fd_cap = 5;
    struct sockaddr_in a = v4("10.0.0.1");
    struct voro_conn_admission tcp, http1, http2, extra;
    assert_int_equal(voro_conn_limits_admit(&l, (struct sockaddr *)&a, 0, 0, 2, &tcp), VORO_ADMIT_OK);
    assert_int_equal(voro_conn_limits_admit(&l, (struct sockaddr *)&a, 0, 0, 1, &http1), VORO_ADMIT_OK);
    assert_int_equal(voro_conn_limits_admit(&l, (struct sockaddr *)&a, 0, 0, 1, &http2), VORO_ADMIT_OK);
    assert_true(voro_conn_limits_fd_take(&l, 1)); /* a server socket for http1: 5 of 5 */
    assert_false(voro_conn_limits_fd_take(&l, 1));
    assert_int_equal(voro_conn_limits_admit(&l, (struct sockaddr *)&a, 0, 0, 1, &extra), VORO_ADMIT_MAX_FDS);
    assert_int_equal(atomic_load(&l.total), 3);
    assert_int_equal(atomic_load(&l.fds), 5);
    voro_conn_limits_fd_give(&l, 1);
    /* A refusal by max_connections gives its slots back. */
    assert_int_equal(voro_conn_limits_admit(&l, (struct sockaddr *)&a, 3, 0, 1, &extra), VORO_ADMIT_MAX_CONNECTIONS);
    assert_int_equal(atomic_load(&l.fds), 4);
    voro_conn_limits_release(&l, &tcp);
    assert_int_equal(atomic_load(&l.fds), 2);
    voro_conn_limits_release(&l, &http1);
    voro_conn_limits_release(&l, &http2);
    assert_int_equal(atomic_load(&l.fds), 0);
    assert_int_equal(atomic_load(&l.total), 0);
    voro_conn_limits_destroy(&l);
}

static void test_per_ip(void **state)
{
    (void)state;
    struct voro_conn_limits l;
    assert_int_equal(voro_conn_limits_init(&l, 1024), 0);
    struct sockaddr_in a = v4("192.0.2.1"), b = v4("192.0.2.2");
    struct voro_conn_admission adm[4];
    assert_int_equal(voro_conn_limits_admit(&l, (struct sockaddr *)&a, 0, 2, 1, &adm[0]), VORO_ADMIT_OK);
    a.sin_port = htons(999); /* the port does not matter */
    assert_int_equal(voro_conn_limits_admit(&l, (struct sockaddr *)&a, 0, 2, 1, &adm[1]), VORO_ADMIT_OK);
    assert_int_equal(voro_conn_limits_admit(&l, (struct sockaddr *)&a, 0, 2, 1, &adm[2]), VORO_ADMIT_MAX_PER_IP);
    assert_int_equal(voro_conn_limits_ip_count(&l, (struct sockaddr *)&a), 2);
    assert_int_equal(voro_conn_limits_admit(&l, (struct sockaddr *)&b, 0, 2, 1, &adm[3]), VORO_ADMIT_OK);
    assert_int_equal(voro_conn_limits_ip_count(&l, (struct sockaddr *)&b), 1);
    assert_int_equal(atomic_load(&l.total), 3); /* the refused one was not counted */
    voro_conn_limits_release(&l, &adm[0]);
    assert_int_equal(voro_conn_limits_ip_count(&l, (struct sockaddr *)&a), 1);
    assert_int_equal(voro_conn_limits_admit(&l, (struct sockaddr *)&a, 0, 2, 1, &adm[0]), VORO_ADMIT_OK);
    voro_conn_limits_release(&l, &adm[0]);
    voro_conn_limits_release(&l, &adm[1]);
    voro_conn_limits_release(&l, &adm[3]);
    assert_int_equal(voro_conn_limits_ip_count(&l, (struct sockaddr *)&a), 0);
    assert_int_equal(atomic_load(&l.total), 0);
    voro_conn_limits_destroy(&l);
}

static void test_ipv6_and_slot_reuse(void **state)
{
    (void)state;
    struct voro_conn_limits l;
    assert_int_equal(voro_conn_limits_init(&l, 1024), 0);
    /* Many distinct addresses come and go: slots whose count fell to zero are reused, so the
     * bounded table never fills up. */
    for (int round = 0; round < 20; round++) {
        struct voro_conn_admission adm[500];
        for (int i = 0; i < 500; i++) {
            struct sockaddr_in6 a = {.sin6_family = AF_INET6};
            a.sin6_addr.s6_addr[0] = 0x20;
            a.sin6_addr.s6_addr[1] = 0x01;
            memcpy(&a.sin6_addr.s6_addr[8], &round, sizeof(round));
            memcpy(&a.sin6_addr.s6_addr[12], &i, sizeof(i));
            assert_int_equal(voro_conn_limits_admit(&l, (struct sockaddr *)&a, 0, 1, 1, &adm[i]), VORO_ADMIT_OK);
            assert_true(adm[i].ip_slot >= 0);
        }
        for (int i = 0; i < 500; i++)
            voro_conn_limits_release(&l, &adm[i]);
    }
    assert_int_equal(atomic_load(&l.ip_table_full), 0);
    assert_int_equal(atomic_load(&l.total), 0);
    voro_conn_limits_destroy(&l);
}

struct race_arg {
    struct voro_conn_limits *l;
    int admitted;
};

static void *race_thread(void *p)
{
    struct race_arg *ra = p;
    struct sockaddr_in a = v4("198.51.100.7");
    for (int i = 0; i < 20000; i++) {
        struct voro_conn_admission adm;
        if (voro_conn_limits_admit(ra->l, (struct sockaddr *)&a, 0, 4, 1, &adm) == VORO_ADMIT_OK) {
            ra->admitted++;
            /* Never more than the cap in flight, whatever the interleaving. */
            if (voro_conn_limits_ip_count(ra->l, (struct sockaddr *)&a) > 4)
                ra->admitted = -1000000;
            voro_conn_limits_release(ra->l, &adm);
        }
    }
    return NULL;
}

static void test_threads_never_exceed_cap(void **state)
{
    (void)state;
    struct voro_conn_limits l;
    assert_int_equal(voro_conn_limits_init(&l, 1024), 0);
    pthread_t t[4];
    struct race_arg ra[4];
    for (int i = 0; i < 4; i++) {
        ra[i] = (struct race_arg){.l = &l};
        pthread_create(&t[i], NULL, race_thread, &ra[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_true(ra[i].admitted > 0);
    }
    struct sockaddr_in a = v4("198.51.100.7");
    assert_int_equal(voro_conn_limits_ip_count(&l, (struct sockaddr *)&a), 0);
    assert_int_equal(atomic_load(&l.total), 0);
    voro_conn_limits_destroy(&l);
}

static void test_token_bucket(void **state)
{
    (void)state;
    struct voro_token_bucket b;
    voro_token_bucket_init(&b, 10, 1000);
    int ok = 0;
    for (int i = 0; i < 100; i++)
        ok += voro_token_bucket_take(&b, 1000);
    assert_int_equal(ok, 10); /* a burst of one second's worth */
    assert_false(voro_token_bucket_take(&b, 1050));
    assert_true(voro_token_bucket_take(&b, 1100)); /* 100 ms later: one token back */
    assert_false(voro_token_bucket_take(&b, 1100));
    ok = 0;
    for (uint64_t t = 2000; t < 12000; t += 10)
        ok += voro_token_bucket_take(&b, t);
    assert_in_range(ok, 99, 111); /* 10/s over 10 s, plus at most the burst */
    voro_token_bucket_set_rate(&b, 0);
    assert_true(voro_token_bucket_take(&b, 12000)); /* 0 = unlimited */
    voro_token_bucket_set_rate(&b, 5); /* from unlimited: a full burst at once */
    ok = 0;
    for (int i = 0; i < 20; i++)
        ok += voro_token_bucket_take(&b, 12000);
    assert_int_equal(ok, 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_max_total),
        cmocka_unit_test(test_fd_budget), cmocka_unit_test(test_per_ip),
        cmocka_unit_test(test_ipv6_and_slot_reuse),
        cmocka_unit_test(test_threads_never_exceed_cap),
        cmocka_unit_test(test_token_bucket),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
