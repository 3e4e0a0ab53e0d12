/* Blocking HTTP/1.1 client for the cluster API (see cluster_client.h). */
#include "cluster/cluster_client.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/strbuf.h"
#include "proto/http1.h"

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int set_error(struct voro_cluster_response *resp, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int set_error(struct voro_cluster_response *resp, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(resp->error, sizeof(resp->error), fmt, ap);
    va_end(ap);
    return rc;
}

/* Waits until fd is ready for `events` or the deadline passes: 0, -ETIMEDOUT or -errno. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return -ETIMEDOUT;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, (int)(left > 60000 ? 60000 : left));
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return -errno;
    }
}

static int split_address(const char *address, char *host, size_t hostcap, char *port, size_t portcap)
{
    const char *colon;
    size_t hlen;
    if (address[0] == '[') {
        const char *rb = strchr(address, ']');
        if (!rb || rb[1] != ':')
            return -EINVAL;
        colon = rb + 1;
        address++;
        hlen = (size_t)(rb - address);
    } else {
        colon = strrchr(address, ':');
        if (!colon || strchr(address, ':') != colon)
            return -EINVAL;
        hlen = (size_t)(colon - address);
    }
    size_t plen = strlen(colon + 1);
    if (hlen == 0 || hlen >= hostcap || plen == 0 || plen >= portcap)
        return -EINVAL;
    for (size_t i = 0; i < plen; i++)
        if (colon[1 + i] < '0' || colon[1 + i] > '9')
            return -EINVAL;
    memcpy(host, address, hlen);
    host[hlen] = '\0';
    memcpy(port, colon + 1, plen + 1);
    return 0;
}

static int connect_one(const struct addrinfo *ai, int64_t deadline)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0)
        return -errno;
    int rc = 0;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        if (errno != EINPROGRESS) {
            rc = -errno;
            goto fail;
        }
        rc = wait_fd(fd, POLLOUT, deadline);
        if (rc < 0)
            goto fail;
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0) {
            rc = -errno;
            goto fail;
        }
        if (soerr) {
            rc = -soerr;
            goto fail;
        }
    }
    return fd;
fail:
    close(fd);
    return rc;
}

static int send_all(int fd, const char *data, size_t len, int64_t deadline)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(fd, data + off, len - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int rc = wait_fd(fd, POLLOUT, deadline);
            if (rc < 0)
                return rc;
            continue;
        }
        return n < 0 ? -errno : -EPIPE;
    }
    return 0;
}

/* Reads more bytes into raw: >0 bytes read, 0 at EOF, <0 error. */
static ssize_t read_more(int fd, struct voro_strbuf *raw, int64_t deadline)
{
    char chunk[16384];
    for (;;) {
        ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
        if (n > 0) {
            if (raw->len + (size_t)n > VORO_CLUSTER_MAX_BODY + VORO_HTTP1_DEFAULT_MAX_HEAD)
                return -EMSGSIZE;
            if (voro_strbuf_append(raw, chunk, (size_t)n) < 0)
                return -ENOMEM;
            return n;
        }
        if (n == 0)
            return 0;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
        int rc = wait_fd(fd, POLLIN, deadline);
        if (rc < 0)
            return rc;
    }
}

static int build_request(const char *host_hdr, const struct voro_cluster_request *req, struct voro_strbuf *out)
{
    voro_strbuf_printf(out, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: vorocluster\r\nAccept: application/json\r\n"
                            "Connection: close\r\n",
                       req->method, req->path, host_hdr);
    if (req->token && req->token[0])
        voro_strbuf_printf(out, "Authorization: Bearer %s\r\n", req->token);
    if (req->no_forward)
        voro_strbuf_puts(out, "X-Voro-No-Forward: 1\r\n");
    if (req->body)
        voro_strbuf_printf(out, "Content-Type: application/json\r\nContent-Length: %zu\r\n", req->body_len);
    voro_strbuf_puts(out, "\r\n");
    if (req->body)
        voro_strbuf_append(out, req->body, req->body_len);
    return out->failed ? -ENOMEM : 0;
}

/* Reads the answer on fd into resp. */
static int read_response(int fd, const struct voro_cluster_request *req, struct voro_cluster_response *resp,
                         int64_t deadline)
{
    struct voro_strbuf raw, body;
    struct voro_http1_parser p;
    int rc = 0;
    ssize_t n;
    voro_strbuf_init(&raw);
    voro_strbuf_init(&body);
    voro_http1_init(&p, VORO_HTTP1_RESPONSE, NULL);

    for (;;) {
        enum voro_http1_result r = voro_http1_parse(&p, raw.data ? raw.data : "", raw.len);
        if (r == VORO_HTTP1_ERROR) {
            rc = set_error(resp, -EPROTO, "malformed HTTP answer (%s)", p.error_reason ? p.error_reason : "?");
            goto out;
        }
        if (r == VORO_HTTP1_DONE && p.status >= 200)
            break;
        if (r == VORO_HTTP1_DONE) { /* 1xx interim answer: drop it and read the final one */
            size_t hl = p.head_len;
            memmove(raw.data, raw.data + hl, raw.len - hl);
            raw.len -= hl;
            raw.data[raw.len] = '\0';
            voro_http1_reset(&p);
            continue;
        }
        n = read_more(fd, &raw, deadline);
        if (n <= 0) {
            rc = n == 0 ? -EPROTO : (int)n;
            goto io_error;
        }
    }

    enum voro_http1_body kind = voro_http1_body_kind(&p, strcmp(req->method, "HEAD") == 0, false);
    size_t off = p.head_len;
    if (kind == VORO_HTTP1_BODY_LENGTH) {
        if (p.content_length > VORO_CLUSTER_MAX_BODY) {
            rc = set_error(resp, -EMSGSIZE, "answer body too large (%llu bytes)",
                           (unsigned long long)p.content_length);
            goto out;
        }
        while (raw.len - off < p.content_length) {
            n = read_more(fd, &raw, deadline);
            if (n <= 0) {
                rc = n == 0 ? -EPROTO : (int)n;
                goto io_error;
            }
        }
        voro_strbuf_append(&body, raw.data + off, (size_t)p.content_length);
    } else if (kind == VORO_HTTP1_BODY_CHUNKED) {
        struct voro_http1_chunked d;
        voro_http1_chunked_init(&d, VORO_CLUSTER_MAX_BODY);
        for (;;) {
            size_t used = 0;
            struct voro_http1_span span;
            enum voro_http1_result r = voro_http1_chunked_decode(&d, raw.data + off, raw.len - off, &used, &span);
            if (r == VORO_HTTP1_ERROR) {
                rc = set_error(resp, -EPROTO, "malformed chunked answer (%s)",
                               d.error_reason ? d.error_reason : "?");
                goto out;
            }
            if (r == VORO_HTTP1_DATA) {
                if (body.len + span.len > VORO_CLUSTER_MAX_BODY) {
                    rc = set_error(resp, -EMSGSIZE, "answer body too large");
                    goto out;
                }
                voro_strbuf_append(&body, raw.data + off + span.off, span.len);
            }
            off += used;
            if (r == VORO_HTTP1_DONE)
                break;
            if (r == VORO_HTTP1_NEED_MORE || off == raw.len) {
                n = read_more(fd, &raw, deadline);
                if (n <= 0) {
                    rc = n == 0 ? -EPROTO : (int)n;
                    goto io_error;
                }
            }
        }
    } else if (kind == VORO_HTTP1_BODY_UNTIL_CLOSE) {
        while ((n = read_more(fd, &raw, deadline)) > 0)
            ;
        if (n < 0) {
            rc = (int)n;
            goto io_error;
        }
        voro_strbuf_append(&body, raw.data + off, raw.len - off);
    }
    if (body.failed) {
        rc = set_error(resp, -ENOMEM, "out of memory");
        goto out;
    }
    resp->status = p.status;
    if (!body.data)
        voro_strbuf_append(&body, "", 0);
    resp->body = voro_strbuf_detach(&body, &resp->body_len);
    if (!resp->body)
        rc = set_error(resp, -ENOMEM, "out of memory");
    goto out;

io_error:
    if (rc == -EPROTO)
        set_error(resp, rc, "the connection closed before the answer was complete");
    else if (rc == -ETIMEDOUT)
        set_error(resp, rc, "no complete answer within %d ms", req->timeout_ms);
    else if (rc == -EMSGSIZE)
        set_error(resp, rc, "answer too large");
    else
        set_error(resp, rc, "read failed: %s", strerror(-rc));
out:
    voro_strbuf_free(&raw);
    voro_strbuf_free(&body);
    return rc;
}

int voro_cluster_http(const char *address, const struct voro_cluster_request *req, struct voro_cluster_response *resp)
{
    char host[256], port[16];
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *ais = NULL;
    struct voro_strbuf out;
    int fd = -1, rc;

    memset(resp, 0, sizeof(*resp));
    voro_strbuf_init(&out);
    if (split_address(address, host, sizeof(host), port, sizeof(port)) < 0)
        return set_error(resp, -EINVAL, "bad address '%s' (want IP:PORT or [IPv6]:PORT)", address);
    int gai = getaddrinfo(host, port, &hints, &ais);
    if (gai != 0)
        return set_error(resp, -EHOSTUNREACH, "cannot resolve '%s': %s", host, gai_strerror(gai));

    int64_t deadline = now_ms() + (req->connect_timeout_ms > 0 ? req->connect_timeout_ms : 3000);
    rc = -ECONNREFUSED;
    for (const struct addrinfo *ai = ais; ai; ai = ai->ai_next) {
        fd = connect_one(ai, deadline);
        if (fd >= 0)
            break;
        rc = fd;
    }
    freeaddrinfo(ais);
    if (fd < 0)
        return set_error(resp, rc, "cannot connect to %s: %s", address,
                         rc == -ETIMEDOUT ? "connection timed out" : strerror(-rc));
    resp->connected = true;

    deadline = now_ms() + (req->timeout_ms > 0 ? req->timeout_ms : 15000);
    rc = build_request(address, req, &out);
    if (rc < 0) {
        set_error(resp, rc, "out of memory");
        goto out;
    }
    rc = send_all(fd, out.data, out.len, deadline);
    if (rc < 0 && rc != -EPIPE && rc != -ECONNRESET) {
        set_error(resp, rc, "cannot send the request to %s: %s", address, strerror(-rc));
        goto out;
    }
    /* a server may answer (e.g. 401) and close before reading the whole body: read that answer */
    int send_rc = rc;
    rc = read_response(fd, req, resp, deadline);
    if (rc < 0 && send_rc < 0)
        set_error(resp, send_rc, "cannot send the request to %s: %s", address, strerror(-send_rc));
out:
    voro_strbuf_free(&out);
    close(fd);
    return rc;
}

void voro_cluster_response_free(struct voro_cluster_response *resp)
{
    free(resp->body);
    resp->body = NULL;
    resp->body_len = 0;
    resp->status = 0;
}
