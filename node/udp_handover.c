/* UDP session hand-over between a replaced worker and its successor (control path: a mutex
 * is fine here, it is taken only during worker replacement). */
#include "node/udp_handover.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int voro_udp_handovers_init(struct voro_udp_handovers *h)
{
    memset(h, 0, sizeof(*h));
    return -pthread_mutex_init(&h->lock, NULL);
}

void voro_udp_handover_free(struct voro_udp_handover *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->n_records; i++)
        if (e->records[i].upstream_fd >= 0)
            close(e->records[i].upstream_fd);
    free(e->records);
    free(e);
}

void voro_udp_handovers_destroy(struct voro_udp_handovers *h)
{
    while (h->list) {
        struct voro_udp_handover *e = h->list;
        h->list = e->next;
        voro_udp_handover_free(e);
    }
    pthread_mutex_destroy(&h->lock);
}

int voro_udp_handover_expect(struct voro_udp_handovers *h, int listen_fd, uint64_t deadline_ms)
{
    struct voro_udp_handover *e = calloc(1, sizeof(*e));
    if (!e)
        return -ENOMEM;
    e->listen_fd = listen_fd;
    e->deadline_ms = deadline_ms;
    pthread_mutex_lock(&h->lock);
    e->next = h->list;
    h->list = e;
    atomic_fetch_add(&h->pending, 1);
    pthread_mutex_unlock(&h->lock);
    return 0;
}

bool voro_udp_handover_expected(struct voro_udp_handovers *h, int listen_fd)
{
    if (atomic_load(&h->pending) == 0)
        return false;
    bool found = false;
    pthread_mutex_lock(&h->lock);
    for (struct voro_udp_handover *e = h->list; e && !found; e = e->next)
        found = e->listen_fd == listen_fd && !e->ready;
    pthread_mutex_unlock(&h->lock);
    return found;
}

struct voro_udp_handover *voro_udp_handover_new(int listen_fd)
{
    struct voro_udp_handover *e = calloc(1, sizeof(*e));
    if (e)
        e->listen_fd = listen_fd;
    return e;
}

int voro_udp_handover_add(struct voro_udp_handover *e, const struct voro_udp_session_record *rec)
{
    if (e->n_records == e->cap_records) {
        size_t cap = e->cap_records ? e->cap_records * 2 : 64;
        struct voro_udp_session_record *r = realloc(e->records, cap * sizeof(*r));
        if (!r)
            return -ENOMEM;
        e->records = r;
        e->cap_records = cap;
    }
    e->records[e->n_records++] = *rec;
    return 0;
}

int voro_udp_handover_publish(struct voro_udp_handovers *h, struct voro_udp_handover *mine)
{
    int rc = -ENOENT;
    pthread_mutex_lock(&h->lock);
    for (struct voro_udp_handover *e = h->list; e; e = e->next) {
        if (e->listen_fd == mine->listen_fd && !e->ready) {
            e->records = mine->records;
            e->n_records = mine->n_records;
            e->cap_records = mine->cap_records;
            mine->records = NULL;
            mine->n_records = mine->cap_records = 0;
            e->ready = true;
            rc = 0;
            break;
        }
    }
    pthread_mutex_unlock(&h->lock);
    return rc;
}

enum voro_udp_claim voro_udp_handover_claim(struct voro_udp_handovers *h, int listen_fd, uint64_t now_ms,
                                            struct voro_udp_handover **out)
{
    *out = NULL;
    if (atomic_load(&h->pending) == 0)
        return VORO_UDP_CLAIM_NONE;
    enum voro_udp_claim verdict = VORO_UDP_CLAIM_NONE;
    struct voro_udp_handover *expired = NULL;
    pthread_mutex_lock(&h->lock);
    for (struct voro_udp_handover **pp = &h->list; *pp; pp = &(*pp)->next) {
        struct voro_udp_handover *e = *pp;
        if (e->listen_fd != listen_fd)
            continue;
        if (e->ready) {
            *pp = e->next;
            atomic_fetch_sub(&h->pending, 1);
            *out = e;
            verdict = VORO_UDP_CLAIM_READY;
        } else if (now_ms >= e->deadline_ms) {
            /* The old owner never published (it may still do so later: it then finds no
             * entry and closes its sessions itself). */
            *pp = e->next;
            atomic_fetch_sub(&h->pending, 1);
            expired = e;
            verdict = VORO_UDP_CLAIM_NONE;
        } else {
            verdict = VORO_UDP_CLAIM_WAIT;
        }
        break;
    }
    pthread_mutex_unlock(&h->lock);
    voro_udp_handover_free(expired);
    return verdict;
}
