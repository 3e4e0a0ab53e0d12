/* Hands UDP sessions from a worker being replaced to the worker that takes over its
 * listening socket, so a reload that changes threads or io_model keeps every client's
 * upstream socket (and so its backend and source port). Keyed by listening fd; the node
 * announces which sockets will be handed over before it starts the new workers. */
#ifndef VORO_NODE_UDP_HANDOVER_H
#define VORO_NODE_UDP_HANDOVER_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "cluster/config.h"

/* One session in transit: the upstream socket moves with it (owned by the record). */
struct voro_udp_session_record {
    struct sockaddr_storage client;
    socklen_t client_len;
    bool has_local;
    union {
        struct in_pktinfo v4;
        struct in6_pktinfo v6;
    } local;
    int upstream_fd;
    char server_addr[VORO_ADDR_TEXT_MAX];
    uint64_t key;
};

struct voro_udp_handover {
    struct voro_udp_handover *next;
    int listen_fd;
    bool ready;          /* the old owner published its sessions */
    uint64_t deadline_ms;/* the new owner stops waiting after this */
    struct voro_udp_session_record *records; /* owned */
    size_t n_records, cap_records;
};

struct voro_udp_handovers {
    pthread_mutex_t lock;
    struct voro_udp_handover *list; /* owned */
    _Atomic int pending;            /* entries in the list: lets workers skip the lock */
};

int voro_udp_handovers_init(struct voro_udp_handovers *h);
/* Closes the upstream fds of every record still in transit and frees everything. */
void voro_udp_handovers_destroy(struct voro_udp_handovers *h);

/* Node: sessions on `listen_fd` will be handed over (call before starting new workers). */
int voro_udp_handover_expect(struct voro_udp_handovers *h, int listen_fd, uint64_t deadline_ms);

/* Old owner: whether a hand-over is expected for `listen_fd` (else it closes its sessions). */
bool voro_udp_handover_expected(struct voro_udp_handovers *h, int listen_fd);
/* Old owner: collects records in its own entry (from voro_udp_handover_new, not in the list). */
struct voro_udp_handover *voro_udp_handover_new(int listen_fd);
int voro_udp_handover_add(struct voro_udp_handover *e, const struct voro_udp_session_record *rec);
/* Old owner: moves the records of `mine` into the expected entry and marks it ready. Returns 0
 * (the records now belong to the successor; `mine` is emptied), or -ENOENT when nobody waits
 * any more. Either way the caller frees `mine` with voro_udp_handover_free. */
int voro_udp_handover_publish(struct voro_udp_handovers *h, struct voro_udp_handover *mine);

enum voro_udp_claim {
    VORO_UDP_CLAIM_NONE = 0, /* nothing expected: read the socket right away */
    VORO_UDP_CLAIM_WAIT,     /* the old owner has not published yet */
    VORO_UDP_CLAIM_READY,    /* *out is the published entry, removed from the list: caller frees */
};
/* New owner: what to do with `listen_fd`. A waiting entry past its deadline is dropped (NONE). */
enum voro_udp_claim voro_udp_handover_claim(struct voro_udp_handovers *h, int listen_fd, uint64_t now_ms,
                                            struct voro_udp_handover **out);
/* Frees an entry, closing the upstream fds of records the caller did not take (fd set to -1). */
void voro_udp_handover_free(struct voro_udp_handover *e);

#endif
