/* A tiny blocking HTTP/1.1 server on a thread, for unit tests: answers every request with the current canned response. */
#ifndef VORO_TESTS_MINI_HTTP_SERVER_H
#define VORO_TESTS_MINI_HTTP_SERVER_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum mini_mode {
    MINI_RESPOND = 0, /* send `response`, close */
    MINI_HANG = 1,    /* read the request, never answer; close when the client does */
};

struct mini_server {
    int lfd;
    uint16_t port;
    pthread_t thread;
    pthread_mutex_t lock;
    char response[8192]; /* under lock */
    size_t response_len;
    enum mini_mode mode;
    char last_request[4096]; /* under lock */
    atomic_int requests;
    atomic_int posts; /* requests whose method is POST */
    atomic_bool stop;
};

static void mini_set(struct mini_server *m, enum mini_mode mode, const char *response)
{
    pthread_mutex_lock(&m->lock);
    m->mode = mode;
    m->response_len = response ? strlen(response) : 0;
    if (response)
        memcpy(m->response, response, m->response_len);
    pthread_mutex_unlock(&m->lock);
}

/* Reads one request head (+ Content-Length body) into buf; returns bytes or -1. Bounded by 2 s of silence. */
static int mini_read_request(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    for (int spins = 0; spins < 200 && len + 1 < cap; spins++) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 10) <= 0)
            continue;
        ssize_t n = recv(fd, buf + len, cap - 1 - len, 0);
        if (n <= 0)
            return -1;
        len += (size_t)n;
        buf[len] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (end) {
            size_t head = (size_t)(end + 4 - buf);
            const char *cl = strcasestr(buf, "Content-Length:");
            size_t body = cl && cl < end ? strtoul(cl + 15, NULL, 10) : 0;
            if (len >= head + body)
                return (int)len;
        }
    }
    return -1;
}

static void *mini_thread(void *arg)
{
    struct mini_server *m = arg;
    while (!atomic_load(&m->stop)) {
        struct pollfd p = {.fd = m->lfd, .events = POLLIN};
        if (poll(&p, 1, 20) <= 0)
            continue;
        int fd = accept(m->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        char req[4096];
        int n = mini_read_request(fd, req, sizeof(req));
        if (n > 0) {
            pthread_mutex_lock(&m->lock);
            memcpy(m->last_request, req, (size_t)n + 1);
            enum mini_mode mode = m->mode;
            char resp[8192];
            size_t rl = m->response_len;
            memcpy(resp, m->response, rl);
            pthread_mutex_unlock(&m->lock);
            atomic_fetch_add(&m->requests, 1);
            if (strncmp(req, "POST ", 5) == 0)
                atomic_fetch_add(&m->posts, 1);
            if (mode == MINI_RESPOND) {
                (void)!send(fd, resp, rl, MSG_NOSIGNAL);
            } else {
                /* wait for the client to give up (bounded: 10 s) */
                for (int i = 0; i < 500 && !atomic_load(&m->stop); i++) {
                    struct pollfd q = {.fd = fd, .events = POLLIN};
                    char b[256];
                    if (poll(&q, 1, 20) > 0 && recv(fd, b, sizeof(b), 0) <= 0)
                        break;
                }
            }
        }
        close(fd);
    }
    return NULL;
}

static void mini_start(struct mini_server *m, const char *response)
{
    memset(m, 0, sizeof(*m));
    pthread_mutex_init(&m->lock, NULL);
    atomic_init(&m->requests, 0);
    atomic_init(&m->posts, 0);
    atomic_init(&m->stop, false);
    mini_set(m, MINI_RESPOND, response);
    m->lfd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(m->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    (void)!bind(m->lfd, (struct sockaddr *)&sa, sizeof(sa));
    (void)!listen(m->lfd, 64);
    socklen_t len = sizeof(sa);
    getsockname(m->lfd, (struct sockaddr *)&sa, &len);
    m->port = ntohs(sa.sin_port);
    pthread_create(&m->thread, NULL, mini_thread, m);
}

static void mini_stop(struct mini_server *m)
{
    atomic_store(&m->stop, true);
    pthread_join(m->thread, NULL);
    close(m->lfd);
    pthread_mutex_destroy(&m->lock);
}

#endif
