/* Pads log entries to 8 bytes for raft_uv and strips the padding before the FSM decodes them. */
#include "raft/entry_pad.h"

#include <errno.h>
#include <string.h>

#include "proto/mp_read.h"

int voro_entry_pad(struct raft_buffer *buf)
{
    size_t padded = (buf->len + 7u) & ~(size_t)7u;
    if (padded == buf->len && buf->len)
        return 0;
    if (!padded)
        padded = 8;
    void *p = raft_realloc(buf->base, padded);
    if (!p)
        return -ENOMEM;
    memset((char *)p + buf->len, 0, padded - buf->len);
    buf->base = p;
    buf->len = padded;
    return 0;
}

/* The length of the first msgpack object when only zero bytes (fewer than 8) follow it; else the
 * whole length, so the FSM sees (and refuses) exactly what is there. */
static size_t unpadded_len(const void *data, size_t len)
{
    struct voro_mp_reader r;
    voro_mp_reader_init(&r, data, len);
    if (voro_mp_skip(&r) != 0)
        return len;
    size_t rest = voro_mp_remaining(&r);
    if (rest >= 8)
        return len;
    const unsigned char *tail = (const unsigned char *)data + (len - rest);
    for (size_t i = 0; i < rest; i++)
        if (tail[i])
            return len;
    return len - rest;
}

static int pad_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
    struct raft_fsm *inner = fsm->data;
    struct raft_buffer b = {.base = buf->base, .len = unpadded_len(buf->base, buf->len)};
    return inner->apply(inner, &b, result);
}

static int pad_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct raft_fsm *inner = fsm->data;
    return inner->snapshot(inner, bufs, n_bufs);
}

static int pad_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    struct raft_fsm *inner = fsm->data;
    return inner->restore(inner, buf);
}

void voro_entry_pad_wrap(struct raft_fsm *outer, struct raft_fsm *inner)
{
    memset(outer, 0, sizeof(*outer));
    outer->version = 1;
    outer->data = inner;
    outer->apply = pad_apply;
    outer->snapshot = pad_snapshot;
    outer->restore = pad_restore;
}
