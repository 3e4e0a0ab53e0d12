/* A strict, allocation-free msgpack reader: bounds-checked cursor over untrusted bytes. */
#include "proto/mp_read.h"

#include <errno.h>

void voro_mp_reader_init(struct voro_mp_reader *r, const void *data, size_t len)
{
    r->p = data;
    r->end = r->p + len;
}

size_t voro_mp_remaining(const struct voro_mp_reader *r)
{
    return (size_t)(r->end - r->p);
}

/* Big-endian unsigned of `width` bytes at the cursor; the caller checked the length. */
static uint64_t be(const uint8_t *p, unsigned width)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < width; i++)
        v = (v << 8) | p[i];
    return v;
}

/* Reads a `width`-byte length after the type byte and checks `per_item * n` more bytes exist. */
static int read_len(struct voro_mp_reader *r, unsigned width, uint64_t per_item, uint32_t *n)
{
    if (voro_mp_remaining(r) < 1 + (size_t)width)
        return -ENODATA;
    uint64_t v = be(r->p + 1, width);
    if (v * per_item > voro_mp_remaining(r) - 1 - width)
        return -ENODATA;
    *n = (uint32_t)v;
    r->p += 1 + width;
    return 0;
}

int voro_mp_read_map(struct voro_mp_reader *r, uint32_t *n)
{
    if (r->p >= r->end)
        return -ENODATA;
    uint8_t b = r->p[0];
    if (b >= 0x80 && b <= 0x8f) {
        if (2 * (size_t)(b & 0x0f) > voro_mp_remaining(r) - 1)
            return -ENODATA;
        *n = b & 0x0f;
        r->p++;
        return 0;
    }
    if (b == 0xde)
        return read_len(r, 2, 2, n);
    if (b == 0xdf)
        return read_len(r, 4, 2, n);
    return b == 0xc1 ? -EBADMSG : -EPROTO;
}

int voro_mp_read_array(struct voro_mp_reader *r, uint32_t *n)
{
    if (r->p >= r->end)
        return -ENODATA;
    uint8_t b = r->p[0];
    if (b >= 0x90 && b <= 0x9f) {
        if ((size_t)(b & 0x0f) > voro_mp_remaining(r) - 1)
            return -ENODATA;
        *n = b & 0x0f;
        r->p++;
        return 0;
    }
    if (b == 0xdc)
        return read_len(r, 2, 1, n);
    if (b == 0xdd)
        return read_len(r, 4, 1, n);
    return b == 0xc1 ? -EBADMSG : -EPROTO;
}

int voro_mp_read_str(struct voro_mp_reader *r, const char **s, uint32_t *len)
{
    if (r->p >= r->end)
        return -ENODATA;
    uint8_t b = r->p[0];
    unsigned width;
    uint32_t n;
    if (b >= 0xa0 && b <= 0xbf) {
        width = 0;
        n = b & 0x1f;
        if (n > voro_mp_remaining(r) - 1)
            return -ENODATA;
        r->p++;
    } else if (b >= 0xd9 && b <= 0xdb) {
        width = 1u << (b - 0xd9);
        int rc = read_len(r, width, 1, &n);
        if (rc < 0)
            return rc;
    } else {
        return b == 0xc1 ? -EBADMSG : -EPROTO;
    }
    *s = (const char *)r->p;
    *len = n;
    r->p += n;
    return 0;
}

int voro_mp_read_uint(struct voro_mp_reader *r, uint64_t *v)
{
    if (r->p >= r->end)
        return -ENODATA;
    uint8_t b = r->p[0];
    if (b <= 0x7f) {
        *v = b;
        r->p++;
        return 0;
    }
    if (b >= 0xcc && b <= 0xcf) {
        unsigned width = 1u << (b - 0xcc);
        if (voro_mp_remaining(r) < 1 + (size_t)width)
            return -ENODATA;
        *v = be(r->p + 1, width);
        r->p += 1 + width;
        return 0;
    }
    return b == 0xc1 ? -EBADMSG : -EPROTO;
}

int voro_mp_read_bool(struct voro_mp_reader *r, bool *v)
{
    if (r->p >= r->end)
        return -ENODATA;
    uint8_t b = r->p[0];
    if (b != 0xc2 && b != 0xc3)
        return b == 0xc1 ? -EBADMSG : -EPROTO;
    *v = b == 0xc3;
    r->p++;
    return 0;
}

int voro_mp_read_nil(struct voro_mp_reader *r)
{
    if (r->p >= r->end)
        return -ENODATA;
    if (r->p[0] != 0xc0)
        return 0;
    r->p++;
    return 1;
}

/* Skips a value whose payload is a `width`-byte length then that many bytes (+ `extra`). */
static int skip_sized(struct voro_mp_reader *r, unsigned width, unsigned extra)
{
    if (voro_mp_remaining(r) < 1 + (size_t)width)
        return -ENODATA;
    uint64_t n = be(r->p + 1, width) + extra;
    if (n > voro_mp_remaining(r) - 1 - width)
        return -ENODATA;
    r->p += 1 + width + n;
    return 0;
}

static int skip_fixed(struct voro_mp_reader *r, size_t n)
{
    if (voro_mp_remaining(r) < 1 + n)
        return -ENODATA;
    r->p += 1 + n;
    return 0;
}

static int skip_depth(struct voro_mp_reader *r, int depth)
{
    if (depth > VORO_MP_MAX_DEPTH)
        return -EBADMSG;
    if (r->p >= r->end)
        return -ENODATA;
    uint8_t b = r->p[0];
    uint32_t n;
    uint64_t items;
    int rc;
    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
        return skip_fixed(r, 0);
    if (b >= 0xa0 && b <= 0xbf)
        return skip_fixed(r, b & 0x1f);
    switch (b) {
    case 0xc1:
        return -EBADMSG;
    case 0xc4: case 0xd9: return skip_sized(r, 1, 0);
    case 0xc5: case 0xda: return skip_sized(r, 2, 0);
    case 0xc6: case 0xdb: return skip_sized(r, 4, 0);
    case 0xc7: return skip_sized(r, 1, 1);
    case 0xc8: return skip_sized(r, 2, 1);
    case 0xc9: return skip_sized(r, 4, 1);
    case 0xca: case 0xce: case 0xd2: return skip_fixed(r, 4);
    case 0xcb: case 0xcf: case 0xd3: return skip_fixed(r, 8);
    case 0xcc: case 0xd0: return skip_fixed(r, 1);
    case 0xcd: case 0xd1: return skip_fixed(r, 2);
    case 0xd4: return skip_fixed(r, 2);
    case 0xd5: return skip_fixed(r, 3);
    case 0xd6: return skip_fixed(r, 5);
    case 0xd7: return skip_fixed(r, 9);
    case 0xd8: return skip_fixed(r, 17);
    default:
        break;
    }
    if ((b >= 0x80 && b <= 0x8f) || b == 0xde || b == 0xdf) {
        rc = voro_mp_read_map(r, &n);
        items = 2 * (uint64_t)n;
    } else {
        rc = voro_mp_read_array(r, &n);
        items = n;
    }
    if (rc < 0)
        return rc;
    for (uint64_t i = 0; i < items; i++) {
        rc = skip_depth(r, depth + 1);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int voro_mp_skip(struct voro_mp_reader *r)
{
    struct voro_mp_reader save = *r;
    int rc = skip_depth(r, 0);
    if (rc < 0)
        *r = save;
    return rc;
}
