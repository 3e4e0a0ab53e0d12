/* http_backend: single-threaded epoll HTTP/1.1 keep-alive server answering every request with a small fixed body (L7 benchmark backend). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define IN_SIZE 8192      /* a request head plus a small body must fit: larger heads get 431 */
#define OUT_SCRATCH 65536 /* responses to pipelined requests are batched into one send */
#define MAX_EVENTS 512
#define MAX_BODY 4096

/* One client connection; `in` and `pend` are owned and freed on close. */
struct conn {
	char *in;
	size_t in_len;
	char *pend; /* unsent response bytes (only after a short write) */
	size_t pend_len;
	size_t pend_off;
	size_t skip;      /* request body bytes still to discard */
	int close_after;  /* the client asked for Connection: close (or spoke HTTP/1.0) */
};

struct server {
	int epfd;
	int lfd;
	struct conn *conns; /* indexed by fd, sized by the fd limit */
	size_t nconns;
	char *out;
	char resp_keep[512];
	size_t resp_keep_len;
	char resp_close[512];
	size_t resp_close_len;
	unsigned long long served;
};

static volatile sig_atomic_t g_stop; /* set from the signal handler only */

static void on_signal(int sig)
{
	(void)sig;
	g_stop = 1;
}

static void conn_close(struct server *s, int fd)
{
	struct conn *c = &s->conns[fd];

	free(c->in);
	free(c->pend);
	memset(c, 0, sizeof(*c));
	epoll_ctl(s->epfd, EPOLL_CTL_DEL, fd, NULL);
	close(fd);
}

static void accept_all(struct server *s)
{
	int one = 1;

	for (int i = 0; i < 1024; i++) {
		struct epoll_event ev;
		int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
			return; /* EAGAIN, or EMFILE: retried on the next wakeup */
		if ((size_t)fd >= s->nconns) {
			close(fd);
			continue;
		}
		s->conns[fd].in = malloc(IN_SIZE);
		if (!s->conns[fd].in) {
			close(fd);
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		ev.events = EPOLLIN | EPOLLRDHUP;
		ev.data.fd = fd;
		if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
			conn_close(s, fd);
	}
}

/* Case-insensitive search for a header line "name: value..." inside head[0..len); returns the value or NULL. */
static const char *header_value(const char *head, size_t len, const char *name, size_t *vlen)
{
	size_t nlen = strlen(name);
	const char *p = memchr(head, '\n', len);

	while (p && (size_t)(p + 1 - head) < len) {
		const char *line = p + 1;
		const char *eol = memchr(line, '\n', len - (size_t)(line - head));

		if (!eol)
			break;
		if ((size_t)(eol - line) > nlen && !strncasecmp(line, name, nlen) && line[nlen] == ':') {
			const char *v = line + nlen + 1;

			while (v < eol && (*v == ' ' || *v == '\t'))
				v++;
			*vlen = (size_t)(eol - v);
			if (*vlen && v[*vlen - 1] == '\r')
				(*vlen)--;
			return v;
		}
		p = eol;
	}
	return NULL;
}

/* Sends buf; a short write parks the rest in c->pend and switches to EPOLLOUT. Returns -1 if closed. */
static int send_or_park(struct server *s, int fd, const char *buf, size_t len)
{
	struct conn *c = &s->conns[fd];
	struct epoll_event ev;
	size_t off = 0;

	while (off < len) {
		ssize_t n = send(fd, buf + off, len - off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n < 0) {
			conn_close(s, fd);
			return -1;
		}
		off += (size_t)n;
	}
	if (off == len)
		return 0;
	c->pend = malloc(len - off);
	if (!c->pend) {
		conn_close(s, fd);
		return -1;
	}
	memcpy(c->pend, buf + off, len - off);
	c->pend_len = len - off;
	c->pend_off = 0;
	ev.events = EPOLLOUT | EPOLLRDHUP;
	ev.data.fd = fd;
	epoll_ctl(s->epfd, EPOLL_CTL_MOD, fd, &ev);
	return 0;
}

static void finish_close(struct server *s, int fd)
{
	/* FIN first so the client reads the whole answer, then drop the socket. */
	shutdown(fd, SHUT_WR);
	conn_close(s, fd);
}

static void flush_pending(struct server *s, int fd)
{
	struct conn *c = &s->conns[fd];
	struct epoll_event ev;

	while (c->pend_off < c->pend_len) {
		ssize_t n = send(fd, c->pend + c->pend_off, c->pend_len - c->pend_off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n < 0) {
			conn_close(s, fd);
			return;
		}
		c->pend_off += (size_t)n;
	}
	free(c->pend);
	c->pend = NULL;
	c->pend_len = c->pend_off = 0;
	if (c->close_after) {
		finish_close(s, fd);
		return;
	}
	ev.events = EPOLLIN | EPOLLRDHUP;
	ev.data.fd = fd;
	epoll_ctl(s->epfd, EPOLL_CTL_MOD, fd, &ev);
}

static const char BAD_REQUEST[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
static const char TOO_LARGE[] = "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/* Answers complete requests in c->in. Returns -1 when the connection was closed, 1 when complete
 * requests are left because the batch was full, else 0. */
static int serve_buffer(struct server *s, int fd)
{
	struct conn *c = &s->conns[fd];
	size_t pos = 0, out_len = 0;
	int rc, more = 0;

	while (pos < c->in_len && !c->close_after) {
		const char *head = c->in + pos, *end, *v;
		size_t avail = c->in_len - pos, hlen, vlen;

		if (c->skip) {
			size_t k = c->skip < avail ? c->skip : avail;

			c->skip -= k;
			pos += k;
			continue;
		}
		end = memmem(head, avail, "\r\n\r\n", 4);
		if (!end) {
			if (avail >= IN_SIZE) {
				send_or_park(s, fd, TOO_LARGE, sizeof(TOO_LARGE) - 1);
				if (s->conns[fd].in)
					finish_close(s, fd);
				return -1;
			}
			break;
		}
		if (out_len + s->resp_close_len > OUT_SCRATCH) {
			more = 1; /* scratch full: the caller calls again after this batch is sent */
			break;
		}
		hlen = (size_t)(end - head) + 4;
		if (header_value(head, hlen, "Transfer-Encoding", &vlen)) {
			send_or_park(s, fd, BAD_REQUEST, sizeof(BAD_REQUEST) - 1);
			if (s->conns[fd].in)
				finish_close(s, fd);
			return -1;
		}
		v = header_value(head, hlen, "Content-Length", &vlen);
		if (v) {
			unsigned long n = strtoul(v, NULL, 10);

			if (n > MAX_BODY) {
				send_or_park(s, fd, BAD_REQUEST, sizeof(BAD_REQUEST) - 1);
				if (s->conns[fd].in)
					finish_close(s, fd);
				return -1;
			}
			c->skip = n;
		}
		v = header_value(head, hlen, "Connection", &vlen);
		if ((v && vlen >= 5 && !strncasecmp(v, "close", 5)) || memmem(head, hlen, " HTTP/1.0\r\n", 11))
			c->close_after = 1;
		if (c->close_after) {
			memcpy(s->out + out_len, s->resp_close, s->resp_close_len);
			out_len += s->resp_close_len;
		} else {
			memcpy(s->out + out_len, s->resp_keep, s->resp_keep_len);
			out_len += s->resp_keep_len;
		}
		s->served++;
		pos += hlen;
	}
	if (pos) {
		memmove(c->in, c->in + pos, c->in_len - pos);
		c->in_len -= pos;
	}
	if (!out_len)
		return 0;
	rc = send_or_park(s, fd, s->out, out_len);
	if (rc < 0)
		return -1;
	if (c->close_after && !c->pend) {
		finish_close(s, fd);
		return -1;
	}
	return more && !c->pend;
}

static void readable(struct server *s, int fd)
{
	struct conn *c = &s->conns[fd];
	ssize_t n;

	/* One recv per wakeup: epoll is level-triggered, so a busy connection cannot starve the others. */
	do
		n = recv(fd, c->in + c->in_len, IN_SIZE - c->in_len, 0);
	while (n < 0 && errno == EINTR);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
		conn_close(s, fd);
		return;
	}
	if (n > 0) {
		c->in_len += (size_t)n;
		for (int i = 0; i < 64 && serve_buffer(s, fd) == 1; i++)
			;
	}
}

static int open_listener(const char *host, int port, int *out_port)
{
	struct sockaddr_in sa;
	socklen_t salen = sizeof(sa);
	int one = 1;
	int fd, err;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
		err = -EINVAL;
		goto fail;
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4096) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &salen) < 0) {
		err = -errno;
		goto fail;
	}
	*out_port = ntohs(sa.sin_port);
	return fd;
fail:
	close(fd);
	return err;
}

static int run(struct server *s)
{
	struct epoll_event evs[MAX_EVENTS];

	while (!g_stop) {
		int n = epoll_wait(s->epfd, evs, MAX_EVENTS, 200);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;

			if (fd == s->lfd)
				accept_all(s);
			else if (!s->conns[fd].in)
				continue; /* closed earlier in this batch */
			else if (s->conns[fd].pend)
				flush_pending(s, fd);
			else
				readable(s, fd);
		}
	}
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: http_backend [--host 127.0.0.1] [--port P] [--body-size N]\n"
			"  answers every HTTP/1.1 request with 200 and an N-byte body (default 13, at most 256),\n"
			"  keeps connections alive unless asked to close; prints 'READY port' on stdout;\n"
			"  on SIGTERM/SIGINT prints 'SERVED n' on stderr and exits 0\n");
}

int main(int argc, char **argv)
{
	struct server s = { .epfd = -1, .lfd = -1 };
	const char *host = "127.0.0.1";
	char body[257];
	int port = 0, body_size = 13, rc = 1;
	struct rlimit rl;
	struct sigaction sa;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--host") && i + 1 < argc) {
			host = argv[++i];
		} else if (!strcmp(argv[i], "--port") && i + 1 < argc) {
			port = atoi(argv[++i]);
		} else if (!strcmp(argv[i], "--body-size") && i + 1 < argc) {
			body_size = atoi(argv[++i]);
		} else {
			usage();
			return 2;
		}
	}
	if (body_size < 0 || body_size > 256 || port < 0 || port > 65535) {
		usage();
		return 2;
	}
	for (int i = 0; i < body_size; i++)
		body[i] = (char)('a' + i % 26);
	if (body_size >= 1)
		body[body_size - 1] = '\n';
	body[body_size] = '\0';
	s.resp_keep_len = (size_t)snprintf(s.resp_keep, sizeof(s.resp_keep),
					   "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s",
					   body_size, body);
	s.resp_close_len = (size_t)snprintf(s.resp_close, sizeof(s.resp_close),
					    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
					    "Connection: close\r\n\r\n%s",
					    body_size, body);

	/* c1000 through a proxy needs thousands of sockets: use the whole hard limit. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	s.nconns = (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 1u << 20) ? rl.rlim_cur : 65536;
	s.conns = calloc(s.nconns, sizeof(*s.conns));
	s.out = malloc(OUT_SCRATCH);
	if (!s.conns || !s.out)
		goto out;
	s.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (s.epfd < 0)
		goto out;
	s.lfd = open_listener(host, port, &port);
	if (s.lfd < 0) {
		fprintf(stderr, "http_backend: listen %s:%d: %s\n", host, port, strerror(-s.lfd));
		goto out;
	}
	{
		struct epoll_event ev = { .events = EPOLLIN, .data.fd = s.lfd };

		if (epoll_ctl(s.epfd, EPOLL_CTL_ADD, s.lfd, &ev) < 0)
			goto out;
	}
	printf("READY %d\n", port);
	fflush(stdout);
	rc = run(&s) < 0 ? 1 : 0;
	fprintf(stderr, "SERVED %llu\n", s.served);
out:
	for (size_t fd = 0; s.conns && fd < s.nconns; fd++) {
		if (s.conns[fd].in)
			conn_close(&s, (int)fd);
	}
	if (s.lfd >= 0)
		close(s.lfd);
	if (s.epfd >= 0)
		close(s.epfd);
	free(s.conns);
	free(s.out);
	return rc;
}
