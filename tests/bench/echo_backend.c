/* echo_backend: single-threaded epoll TCP echo server used as the backend of the L4 benchmark. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_PORTS 16
#define READ_BUF_SIZE (64 * 1024)
#define MAX_EVENTS 512

/* Data that could not be written at once; reading from the fd pauses until it drains
 * so one connection never buffers more than one read's worth. */
struct pending {
	char *buf; /* owned, malloc'd only on a short write (rare on loopback) */
	size_t len;
	size_t off;
};

struct server {
	int epfd;
	int listen_fds[MAX_PORTS];
	int nlisten;
	struct pending *pend; /* indexed by fd, sized by the fd limit */
	size_t npend;
	char *rbuf;
	volatile sig_atomic_t *stop;
};

static volatile sig_atomic_t g_stop; /* set from the signal handler only */

static void on_signal(int sig)
{
	(void)sig;
	g_stop = 1;
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
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4096) < 0) {
		err = -errno;
		goto fail;
	}
	if (getsockname(fd, (struct sockaddr *)&sa, &salen) < 0) {
		err = -errno;
		goto fail;
	}
	*out_port = ntohs(sa.sin_port);
	return fd;
fail:
	close(fd);
	return err;
}

static void conn_close(struct server *s, int fd)
{
	if ((size_t)fd < s->npend) {
		free(s->pend[fd].buf);
		memset(&s->pend[fd], 0, sizeof(s->pend[fd]));
	}
	epoll_ctl(s->epfd, EPOLL_CTL_DEL, fd, NULL);
	close(fd);
}

static void accept_all(struct server *s, int lfd)
{
	int one = 1;

	for (int i = 0; i < 1024; i++) {
		struct epoll_event ev;
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
			return; /* EAGAIN, or EMFILE: retried on the next wakeup */
		if ((size_t)fd >= s->npend) {
			close(fd);
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		ev.events = EPOLLIN | EPOLLRDHUP;
		ev.data.fd = fd;
		if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
			close(fd);
	}
}

/* Returns 0 while the connection stays open, -1 once it was closed. */
static int flush_pending(struct server *s, int fd)
{
	struct pending *p = &s->pend[fd];
	struct epoll_event ev;

	while (p->off < p->len) {
		ssize_t n = send(fd, p->buf + p->off, p->len - p->off, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			if (errno == EINTR)
				continue;
			conn_close(s, fd);
			return -1;
		}
		p->off += (size_t)n;
	}
	free(p->buf);
	memset(p, 0, sizeof(*p));
	ev.events = EPOLLIN | EPOLLRDHUP;
	ev.data.fd = fd;
	epoll_ctl(s->epfd, EPOLL_CTL_MOD, fd, &ev);
	return 0;
}

static void echo_readable(struct server *s, int fd)
{
	/* Bounded so one busy connection cannot starve the others. */
	for (int i = 0; i < 16; i++) {
		ssize_t n = recv(fd, s->rbuf, READ_BUF_SIZE, 0);
		size_t sent = 0;

		if (n == 0) {
			conn_close(s, fd);
			return;
		}
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			if (errno == EINTR)
				continue;
			conn_close(s, fd);
			return;
		}
		while (sent < (size_t)n) {
			ssize_t w = send(fd, s->rbuf + sent, (size_t)n - sent, MSG_NOSIGNAL);

			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
				conn_close(s, fd);
				return;
			}
			if (w < 0) {
				struct pending *p = &s->pend[fd];
				struct epoll_event ev;

				p->len = (size_t)n - sent;
				p->off = 0;
				p->buf = malloc(p->len);
				if (!p->buf) {
					conn_close(s, fd);
					return;
				}
				memcpy(p->buf, s->rbuf + sent, p->len);
				ev.events = EPOLLOUT | EPOLLRDHUP;
				ev.data.fd = fd;
				epoll_ctl(s->epfd, EPOLL_CTL_MOD, fd, &ev);
				return;
			}
			sent += (size_t)w;
		}
		if ((size_t)n < READ_BUF_SIZE)
			return;
	}
}

static int is_listener(const struct server *s, int fd)
{
	for (int i = 0; i < s->nlisten; i++)
		if (s->listen_fds[i] == fd)
			return 1;
	return 0;
}

static int run(struct server *s)
{
	struct epoll_event evs[MAX_EVENTS];

	while (!*s->stop) {
		int n = epoll_wait(s->epfd, evs, MAX_EVENTS, 200);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;

			if (is_listener(s, fd)) {
				accept_all(s, fd);
			} else if (s->pend[fd].buf) {
				if (evs[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
					flush_pending(s, fd);
			} else if (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP)) {
				echo_readable(s, fd);
			}
		}
	}
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: echo_backend [--host 127.0.0.1] [--port P]... [--ports N]\n"
			"  listens on each --port (0 = pick a free one) or on N free ports,\n"
			"  prints 'READY port...' on stdout, echoes until SIGTERM/SIGINT\n");
}

int main(int argc, char **argv)
{
	struct server s = { .epfd = -1, .stop = &g_stop };
	const char *host = "127.0.0.1";
	int want[MAX_PORTS];
	int nwant = 0, nfree = 0, rc = 1;
	struct rlimit rl;
	struct sigaction sa;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--host") && i + 1 < argc) {
			host = argv[++i];
		} else if (!strcmp(argv[i], "--port") && i + 1 < argc && nwant < MAX_PORTS) {
			want[nwant++] = atoi(argv[++i]);
		} else if (!strcmp(argv[i], "--ports") && i + 1 < argc) {
			nfree = atoi(argv[++i]);
		} else {
			usage();
			return 2;
		}
	}
	for (int i = 0; i < nfree && nwant < MAX_PORTS; i++)
		want[nwant++] = 0;
	if (nwant == 0)
		want[nwant++] = 0;

	/* Held-connection scenarios need thousands of sockets: use the whole hard limit. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	s.npend = (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 1u << 20) ? rl.rlim_cur : 65536;
	s.pend = calloc(s.npend, sizeof(*s.pend));
	s.rbuf = malloc(READ_BUF_SIZE);
	if (!s.pend || !s.rbuf)
		goto out;
	s.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (s.epfd < 0)
		goto out;

	for (int i = 0; i < nwant; i++) {
		struct epoll_event ev;
		int port = 0;
		int fd = open_listener(host, want[i], &port);

		if (fd < 0) {
			fprintf(stderr, "echo_backend: listen %s:%d: %s\n", host, want[i], strerror(-fd));
			goto out;
		}
		s.listen_fds[s.nlisten++] = fd;
		ev.events = EPOLLIN;
		ev.data.fd = fd;
		if (epoll_ctl(s.epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
			goto out;
		want[i] = port;
	}
	printf("READY");
	for (int i = 0; i < nwant; i++)
		printf(" %d", want[i]);
	printf("\n");
	fflush(stdout);
	rc = run(&s) < 0 ? 1 : 0;
out:
	for (size_t fd = 0; s.pend && fd < s.npend; fd++)
		free(s.pend[fd].buf);
	for (int i = 0; i < s.nlisten; i++)
		close(s.listen_fds[i]);
	if (s.epfd >= 0)
		close(s.epfd);
	free(s.pend);
	free(s.rbuf);
	return rc;
}
