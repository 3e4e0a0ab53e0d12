/* tcpload: epoll TCP load generator for the L4 benchmark (connection rate, held connections + ping latency). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
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

#define MAX_MSG 65536
#define MAX_EVENTS 1024
#define MAX_SAMPLES (4u * 1024 * 1024)

enum cstate { C_FREE, C_CONNECTING, C_SENDING, C_RECEIVING, C_IDLE };

struct conn {
	int fd;
	enum cstate state;
	uint32_t id;       /* serial of the connection: seeds the payload pattern */
	uint32_t msg;      /* serial of the exchange on this connection */
	uint32_t off;      /* bytes sent or received in the current exchange */
	int active;        /* hold mode: this connection sends pings */
	uint64_t t_start;  /* connection start (rate mode latency) */
	uint64_t t_req;    /* current request start */
	uint64_t deadline; /* the current step must finish before this */
	uint64_t next_ping;
};

struct samples {
	uint64_t *v; /* owned, grows up to MAX_SAMPLES */
	size_t n;
	size_t cap;
	uint64_t dropped;
};

struct opts {
	const char *mode;
	struct sockaddr_in target;
	double duration;
	int concurrency;
	int size;
	int conns;
	int active;
	double interval_ms;
	int parallel;
	double timeout;
	double establish_timeout;
	int json;
};

struct stats {
	uint64_t completed;   /* rate: full connect/request/echo/close cycles */
	uint64_t requests;    /* hold: ping exchanges completed */
	uint64_t connect_errors;
	uint64_t io_errors;
	uint64_t mismatches;
	uint64_t timeouts;
	uint64_t dropped_idle;
	uint64_t established;
	uint64_t bytes_verified;
};

struct load {
	struct opts o;
	struct stats st;
	struct conn *c; /* owned array of o.concurrency (rate) or o.conns (hold) */
	size_t nc;
	int epfd;
	uint32_t next_id;
	char *sbuf; /* request scratch */
	char *rbuf; /* receive scratch */
	struct samples lat;
};

static volatile sig_atomic_t g_stop; /* set from the signal handler only */

static void on_signal(int sig)
{
	(void)sig;
	g_stop = 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The byte every echo must carry back: depends on connection, message and offset so that
 * swapped, shifted or cross-connection data is detected. */
static inline uint8_t pattern(uint32_t id, uint32_t msg, uint32_t i)
{
	return (uint8_t)(id * 131u + msg * 31u + i * 7u + (i >> 8) + 1u);
}

static void samples_add(struct samples *s, uint64_t v)
{
	if (s->n == s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 65536;
		uint64_t *nv;

		if (ncap > MAX_SAMPLES)
			ncap = MAX_SAMPLES;
		if (ncap <= s->cap) {
			s->dropped++;
			return;
		}
		nv = realloc(s->v, ncap * sizeof(*nv));
		if (!nv) {
			s->dropped++;
			return;
		}
		s->v = nv;
		s->cap = ncap;
	}
	s->v[s->n++] = v;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void samples_sort(struct samples *s)
{
	if (s->n > 1) /* qsort must not see the NULL array of an empty sample set */
		qsort(s->v, s->n, sizeof(*s->v), cmp_u64);
}

/* Nearest-rank percentile in microseconds; samples must be sorted. */
static double pct_us(const struct samples *s, double p)
{
	size_t k;

	if (s->n == 0)
		return -1.0;
	k = (size_t)(p / 100.0 * (double)s->n + 0.999999);
	if (k < 1)
		k = 1;
	if (k > s->n)
		k = s->n;
	return (double)s->v[k - 1] / 1000.0;
}

static void conn_close(struct load *l, struct conn *c)
{
	(void)l; /* kept for symmetry with the other conn_ helpers */
	if (c->fd >= 0)
		close(c->fd); /* close() also removes it from the epoll set */
	c->fd = -1;
	c->state = C_FREE;
	c->active = 0;
}

static int conn_watch(struct load *l, struct conn *c, uint32_t events, int op)
{
	struct epoll_event ev;

	ev.events = events;
	ev.data.u64 = (uint64_t)(c - l->c);
	return epoll_ctl(l->epfd, op, c->fd, &ev);
}

static int conn_open(struct load *l, struct conn *c, uint64_t now)
{
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		l->st.connect_errors++;
		return -errno;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->fd = fd;
	c->id = l->next_id++;
	c->msg = 0;
	c->off = 0;
	c->t_start = now;
	c->deadline = now + (uint64_t)(l->o.timeout * 1e9);
	if (connect(fd, (struct sockaddr *)&l->o.target, sizeof(l->o.target)) < 0 && errno != EINPROGRESS) {
		int err = -errno;

		l->st.connect_errors++;
		conn_close(l, c);
		return err;
	}
	c->state = C_CONNECTING;
	if (conn_watch(l, c, EPOLLOUT | EPOLLIN | EPOLLRDHUP, EPOLL_CTL_ADD) < 0) {
		int err = -errno;

		l->st.connect_errors++;
		conn_close(l, c);
		return err;
	}
	return 0;
}

static void fill_request(struct load *l, struct conn *c)
{
	for (uint32_t i = 0; i < (uint32_t)l->o.size; i++)
		l->sbuf[i] = (char)pattern(c->id, c->msg, i);
}

/* Sends what is left of the current request; returns 0, or -1 once the connection was closed. */
static int conn_send(struct load *l, struct conn *c)
{
	if (c->state != C_SENDING) {
		c->state = C_SENDING;
		c->off = 0;
	}
	fill_request(l, c);
	while (c->off < (uint32_t)l->o.size) {
		ssize_t n = send(c->fd, l->sbuf + c->off, (size_t)l->o.size - c->off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			conn_watch(l, c, EPOLLOUT | EPOLLIN | EPOLLRDHUP, EPOLL_CTL_MOD);
			return 0;
		}
		if (n < 0) {
			l->st.io_errors++;
			conn_close(l, c);
			return -1;
		}
		c->off += (uint32_t)n;
	}
	c->state = C_RECEIVING;
	c->off = 0;
	return 0;
}

static void start_request(struct load *l, struct conn *c, uint64_t now)
{
	c->t_req = now;
	c->deadline = now + (uint64_t)(l->o.timeout * 1e9);
	conn_send(l, c);
}

/* Returns 1 when a full echo arrived, 0 when more is needed, -1 when the connection was closed. */
static int conn_recv(struct load *l, struct conn *c)
{
	for (int rounds = 0; rounds < 64; rounds++) {
		size_t want = (size_t)l->o.size - c->off;
		ssize_t n;

		if (want == 0)
			return 1;
		n = recv(c->fd, l->rbuf, want, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n <= 0) {
			l->st.io_errors++;
			conn_close(l, c);
			return -1;
		}
		for (ssize_t i = 0; i < n; i++) {
			if ((uint8_t)l->rbuf[i] != pattern(c->id, c->msg, c->off + (uint32_t)i)) {
				l->st.mismatches++;
				conn_close(l, c);
				return -1;
			}
		}
		c->off += (uint32_t)n;
		l->st.bytes_verified += (uint64_t)n;
	}
	return c->off == (uint32_t)l->o.size;
}

/* Drives one connection on an epoll event; returns 1 when an exchange finished. */
static int conn_event(struct load *l, struct conn *c, uint32_t ev)
{
	if (c->state == C_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return 0;
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0 ||
		    (ev & (EPOLLERR | EPOLLHUP))) {
			l->st.connect_errors++;
			conn_close(l, c);
			return 0;
		}
		conn_watch(l, c, EPOLLIN | EPOLLRDHUP, EPOLL_CTL_MOD);
		c->t_req = now_ns();
		if (conn_send(l, c) < 0)
			return 0;
		return 0;
	}
	if (c->state == C_SENDING) {
		if (ev & EPOLLOUT) {
			if (conn_send(l, c) < 0)
				return 0;
			if (c->state == C_RECEIVING)
				conn_watch(l, c, EPOLLIN | EPOLLRDHUP, EPOLL_CTL_MOD);
		}
		if (ev & (EPOLLERR | EPOLLHUP)) {
			l->st.io_errors++;
			conn_close(l, c);
		}
		return 0;
	}
	if (c->state == C_RECEIVING) {
		if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP))
			return conn_recv(l, c) == 1;
		return 0;
	}
	if (c->state == C_IDLE) {
		/* An idle held connection must stay silent: any event means the proxy dropped it. */
		char b;
		ssize_t n = recv(c->fd, &b, 1, MSG_PEEK);

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n > 0)
			l->st.mismatches++;
		else
			l->st.dropped_idle++;
		conn_close(l, c);
	}
	return 0;
}

/* Closes every busy connection whose step ran past its deadline. */
static void expire(struct load *l, uint64_t now)
{
	for (size_t i = 0; i < l->nc; i++) {
		struct conn *c = &l->c[i];

		if (c->state == C_FREE || c->state == C_IDLE)
			continue;
		if (now > c->deadline) {
			l->st.timeouts++;
			conn_close(l, c);
		}
	}
}

static int wait_events(struct load *l, struct epoll_event *evs, int timeout_ms)
{
	int n = epoll_wait(l->epfd, evs, MAX_EVENTS, timeout_ms);

	if (n < 0 && errno != EINTR) {
		perror("epoll_wait");
		return -1;
	}
	return n < 0 ? 0 : n;
}

static int run_rate(struct load *l)
{
	struct epoll_event evs[MAX_EVENTS];
	uint64_t t0 = now_ns(), end = t0 + (uint64_t)(l->o.duration * 1e9), last_scan = t0, now = t0;
	double elapsed;

	for (size_t i = 0; i < l->nc; i++)
		conn_open(l, &l->c[i], now);
	while (!g_stop && (now = now_ns()) < end) {
		int n = wait_events(l, evs, 10);

		if (n < 0)
			return -1;
		now = now_ns();
		for (int i = 0; i < n; i++) {
			struct conn *c = &l->c[evs[i].data.u64];

			if (c->state == C_FREE)
				continue;
			if (conn_event(l, c, evs[i].events) == 1) {
				samples_add(&l->lat, now - c->t_start);
				l->st.completed++;
				conn_close(l, c);
			}
		}
		if (now - last_scan > 100000000ull) {
			expire(l, now);
			last_scan = now;
		}
		/* Refill the closed-loop window; a failed open is retried on the next round. */
		if (now < end)
			for (size_t i = 0; i < l->nc; i++)
				if (l->c[i].state == C_FREE)
					conn_open(l, &l->c[i], now);
	}
	elapsed = (double)(now_ns() - t0) / 1e9;
	for (size_t i = 0; i < l->nc; i++)
		if (l->c[i].state != C_FREE)
			conn_close(l, &l->c[i]);
	samples_sort(&l->lat);
	if (l->o.json)
		printf("{\"mode\":\"rate\",\"duration_s\":%.3f,\"concurrency\":%d,\"size\":%d,"
		       "\"completed\":%llu,\"conns_per_sec\":%.1f,\"connect_errors\":%llu,\"io_errors\":%llu,"
		       "\"mismatches\":%llu,\"timeouts\":%llu,\"bytes_verified\":%llu,"
		       "\"conn_p50_us\":%.1f,\"conn_p99_us\":%.1f}\n",
		       elapsed, l->o.concurrency, l->o.size, (unsigned long long)l->st.completed,
		       (double)l->st.completed / elapsed, (unsigned long long)l->st.connect_errors,
		       (unsigned long long)l->st.io_errors, (unsigned long long)l->st.mismatches,
		       (unsigned long long)l->st.timeouts, (unsigned long long)l->st.bytes_verified,
		       pct_us(&l->lat, 50), pct_us(&l->lat, 99));
	else
		printf("rate: %llu connections in %.2f s = %.0f conn/s (connect errors %llu, io errors %llu, "
		       "mismatches %llu, timeouts %llu), connection p50 %.0f us p99 %.0f us\n",
		       (unsigned long long)l->st.completed, elapsed, (double)l->st.completed / elapsed,
		       (unsigned long long)l->st.connect_errors, (unsigned long long)l->st.io_errors,
		       (unsigned long long)l->st.mismatches, (unsigned long long)l->st.timeouts,
		       pct_us(&l->lat, 50), pct_us(&l->lat, 99));
	return 0;
}

/* Opens o.conns connections, o.parallel at a time, each proven end to end by one echo. */
static int hold_establish(struct load *l, double *secs)
{
	struct epoll_event evs[MAX_EVENTS];
	uint64_t t0 = now_ns(), end = t0 + (uint64_t)(l->o.establish_timeout * 1e9), last_scan = t0;
	size_t next = 0, busy = 0, failed_before;

	while (!g_stop) {
		uint64_t now = now_ns();
		int n;

		while (next < l->nc && busy < (size_t)l->o.parallel) {
			if (conn_open(l, &l->c[next], now) == 0)
				busy++;
			next++;
		}
		if ((next >= l->nc && busy == 0) || now > end)
			break;
		n = wait_events(l, evs, 10);
		if (n < 0)
			return -1;
		now = now_ns();
		for (int i = 0; i < n; i++) {
			struct conn *c = &l->c[evs[i].data.u64];
			enum cstate before = c->state;

			if (before == C_FREE || before == C_IDLE) {
				if (before == C_IDLE)
					conn_event(l, c, evs[i].events);
				continue;
			}
			if (conn_event(l, c, evs[i].events) == 1) {
				c->state = C_IDLE;
				c->msg++;
				l->st.established++;
				busy--;
			} else if (c->state == C_FREE) {
				busy--;
			}
		}
		if (now - last_scan > 100000000ull) {
			failed_before = l->st.timeouts;
			expire(l, now);
			busy -= (size_t)(l->st.timeouts - failed_before);
			last_scan = now;
		}
	}
	*secs = (double)(now_ns() - t0) / 1e9;
	return 0;
}

static int run_hold(struct load *l)
{
	struct epoll_event evs[MAX_EVENTS];
	uint64_t interval = (uint64_t)(l->o.interval_ms * 1e6), t0, end, last_scan, now;
	double est_secs = 0, elapsed;
	int nactive = 0;
	uint64_t alive = 0;

	if (hold_establish(l, &est_secs) < 0)
		return -1;
	/* Tell the driver that the connections are open, so it can measure the proxy while they are held. */
	fprintf(stderr, "tcpload: established %llu of %d in %.2f s\n",
		(unsigned long long)l->st.established, l->o.conns, est_secs);
	printf("ESTABLISHED %llu\n", (unsigned long long)l->st.established);
	fflush(stdout);

	t0 = now_ns();
	for (size_t i = 0; i < l->nc && nactive < l->o.active; i++) {
		struct conn *c = &l->c[i];

		if (c->state != C_IDLE)
			continue;
		c->active = 1;
		/* Spread the first pings over one interval so they do not arrive in bursts. */
		c->next_ping = t0 + (interval ? interval * (uint64_t)nactive / (uint64_t)l->o.active : 0);
		nactive++;
	}
	end = t0 + (uint64_t)(l->o.duration * 1e9);
	last_scan = t0;
	while (!g_stop && (now = now_ns()) < end) {
		int timeout = 10, n;

		for (size_t i = 0; i < l->nc; i++) {
			struct conn *c = &l->c[i];

			if (!c->active || c->state != C_IDLE)
				continue;
			if (c->next_ping <= now) {
				start_request(l, c, now);
				c->next_ping = c->next_ping + interval > now ? c->next_ping + interval : now + interval;
			} else if ((c->next_ping - now) / 1000000 < (uint64_t)timeout) {
				timeout = (int)((c->next_ping - now) / 1000000);
			}
		}
		n = wait_events(l, evs, timeout);
		if (n < 0)
			return -1;
		now = now_ns();
		for (int i = 0; i < n; i++) {
			struct conn *c = &l->c[evs[i].data.u64];

			if (c->state == C_FREE)
				continue;
			if (conn_event(l, c, evs[i].events) == 1) {
				samples_add(&l->lat, now - c->t_req);
				l->st.requests++;
				c->state = C_IDLE;
				c->msg++;
				if (interval == 0)
					start_request(l, c, now);
			}
		}
		if (now - last_scan > 100000000ull) {
			expire(l, now);
			last_scan = now;
		}
	}
	elapsed = (double)(now_ns() - t0) / 1e9;
	for (size_t i = 0; i < l->nc; i++)
		if (l->c[i].state == C_IDLE || (l->c[i].active && l->c[i].state != C_FREE))
			alive++;
	for (size_t i = 0; i < l->nc; i++)
		if (l->c[i].state != C_FREE)
			conn_close(l, &l->c[i]);
	samples_sort(&l->lat);
	if (l->o.json)
		printf("{\"mode\":\"hold\",\"requested\":%d,\"established\":%llu,\"establish_s\":%.3f,"
		       "\"alive_at_end\":%llu,\"active\":%d,\"interval_ms\":%.3f,\"duration_s\":%.3f,"
		       "\"requests\":%llu,\"req_per_sec\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f,"
		       "\"connect_errors\":%llu,\"io_errors\":%llu,\"mismatches\":%llu,\"timeouts\":%llu,"
		       "\"dropped_idle\":%llu,\"bytes_verified\":%llu}\n",
		       l->o.conns, (unsigned long long)l->st.established, est_secs, (unsigned long long)alive,
		       nactive, l->o.interval_ms, elapsed, (unsigned long long)l->st.requests,
		       (double)l->st.requests / elapsed, pct_us(&l->lat, 50), pct_us(&l->lat, 99),
		       pct_us(&l->lat, 100), (unsigned long long)l->st.connect_errors,
		       (unsigned long long)l->st.io_errors, (unsigned long long)l->st.mismatches,
		       (unsigned long long)l->st.timeouts, (unsigned long long)l->st.dropped_idle,
		       (unsigned long long)l->st.bytes_verified);
	else
		printf("hold: %llu/%d established in %.2f s, %llu alive at end; %d active: %llu requests "
		       "(%.0f/s) p50 %.0f us p99 %.0f us max %.0f us; errors connect %llu io %llu mismatch %llu "
		       "timeout %llu dropped %llu\n",
		       (unsigned long long)l->st.established, l->o.conns, est_secs, (unsigned long long)alive,
		       nactive, (unsigned long long)l->st.requests, (double)l->st.requests / elapsed,
		       pct_us(&l->lat, 50), pct_us(&l->lat, 99), pct_us(&l->lat, 100),
		       (unsigned long long)l->st.connect_errors, (unsigned long long)l->st.io_errors,
		       (unsigned long long)l->st.mismatches, (unsigned long long)l->st.timeouts,
		       (unsigned long long)l->st.dropped_idle);
	return 0;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: tcpload rate --target IP:PORT [--duration S] [--concurrency C] [--size B] [--json]\n"
		"       tcpload hold --target IP:PORT --conns N [--active M] [--duration S] [--interval-ms MS]\n"
		"                    [--parallel P] [--size B] [--json]\n"
		"  rate: closed loop of C connections: connect, send B bytes, read the echo, close; for S s\n"
		"  hold: open N connections (each proven by one echo), print 'ESTABLISHED n', then for S s\n"
		"        M of them ping every MS ms (0 = back to back), reporting latency p50/p99\n"
		"  common: [--timeout S] per step (default 5), [--establish-timeout S] (default 60)\n");
}

static int parse_target(const char *s, struct sockaddr_in *sa)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	size_t hl;

	if (!colon || (hl = (size_t)(colon - s)) >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, hl);
	host[hl] = '\0';
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &sa->sin_addr) != 1 || sa->sin_port == 0)
		return -EINVAL;
	return 0;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	int have_target = 0;

	if (argc < 2)
		return -EINVAL;
	o->mode = argv[1];
	if (strcmp(o->mode, "rate") && strcmp(o->mode, "hold"))
		return -EINVAL;
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--json")) {
			o->json = 1;
			continue;
		}
		if (!v)
			return -EINVAL;
		i++;
		if (!strcmp(a, "--target")) {
			if (parse_target(v, &o->target) < 0)
				return -EINVAL;
			have_target = 1;
		} else if (!strcmp(a, "--duration")) {
			o->duration = atof(v);
		} else if (!strcmp(a, "--concurrency")) {
			o->concurrency = atoi(v);
		} else if (!strcmp(a, "--size")) {
			o->size = atoi(v);
		} else if (!strcmp(a, "--conns")) {
			o->conns = atoi(v);
		} else if (!strcmp(a, "--active")) {
			o->active = atoi(v);
		} else if (!strcmp(a, "--interval-ms")) {
			o->interval_ms = atof(v);
		} else if (!strcmp(a, "--parallel")) {
			o->parallel = atoi(v);
		} else if (!strcmp(a, "--timeout")) {
			o->timeout = atof(v);
		} else if (!strcmp(a, "--establish-timeout")) {
			o->establish_timeout = atof(v);
		} else {
			return -EINVAL;
		}
	}
	if (!have_target || o->duration <= 0 || o->duration > 3600 || o->size < 1 || o->size > MAX_MSG ||
	    o->concurrency < 1 || o->concurrency > 100000 || o->conns < 1 || o->conns > 1000000 ||
	    o->active < 0 || o->parallel < 1 || o->timeout <= 0 || o->interval_ms < 0 ||
	    o->establish_timeout <= 0)
		return -EINVAL;
	return 0;
}

int main(int argc, char **argv)
{
	struct load l = { .epfd = -1 };
	struct rlimit rl;
	struct sigaction sa;
	int rc = 2;

	l.o = (struct opts){ .duration = 5, .concurrency = 50, .size = 64, .conns = 1, .active = 0,
			     .interval_ms = 10, .parallel = 256, .timeout = 5, .establish_timeout = 60 };
	if (parse_args(argc, argv, &l.o) < 0) {
		usage();
		return 2;
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	l.nc = !strcmp(l.o.mode, "rate") ? (size_t)l.o.concurrency : (size_t)l.o.conns;
	l.c = calloc(l.nc, sizeof(*l.c));
	l.sbuf = malloc(MAX_MSG);
	l.rbuf = malloc(MAX_MSG);
	if (!l.c || !l.sbuf || !l.rbuf)
		goto out;
	for (size_t i = 0; i < l.nc; i++)
		l.c[i].fd = -1;
	l.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l.epfd < 0)
		goto out;
	if (!strcmp(l.o.mode, "rate"))
		rc = run_rate(&l) < 0 ? 1 : 0;
	else
		rc = run_hold(&l) < 0 ? 1 : 0;
	fflush(stdout);
out:
	if (l.epfd >= 0)
		close(l.epfd);
	free(l.c);
	free(l.sbuf);
	free(l.rbuf);
	free(l.lat.v);
	return rc;
}
