/* A strict, allocation-free msgpack reader for untrusted input (Raft commands and snapshots). */
#ifndef VORO_PROTO_MP_READ_H
#define VORO_PROTO_MP_READ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Why not msgpack_unpack(): it allocates arrays and maps from their declared counts before
 * reading their elements, so five hostile bytes can ask for gigabytes. This reader walks the
 * bytes in place and checks every declared length against what is left.
 *
 * Errors (negative errno), shared by every function:
 *   -ENODATA  the input ends inside a value (truncated)
 *   -EBADMSG  a byte that is no msgpack type (0xc1), or nesting deeper than VORO_MP_MAX_DEPTH
 *   -EPROTO   a well-formed value of another type than the one asked for
 * On error the cursor is left where it was. */
#define VORO_MP_MAX_DEPTH 16

/* The input is borrowed and must outlive the reader. */
struct voro_mp_reader {
    const uint8_t *p;
    const uint8_t *end;
};

void voro_mp_reader_init(struct voro_mp_reader *r, const void *data, size_t len);
/* Bytes not yet consumed. */
size_t voro_mp_remaining(const struct voro_mp_reader *r);

/* Map/array header: *n is the number of pairs/elements that follow. Rejects counts that cannot
 * fit in the remaining bytes (-ENODATA). */
int voro_mp_read_map(struct voro_mp_reader *r, uint32_t *n);
int voro_mp_read_array(struct voro_mp_reader *r, uint32_t *n);
/* String: *s points into the input (not NUL-terminated). Binary is not accepted as a string. */
int voro_mp_read_str(struct voro_mp_reader *r, const char **s, uint32_t *len);
/* Non-negative integer of any width; negative integers are -EPROTO. */
int voro_mp_read_uint(struct voro_mp_reader *r, uint64_t *v);
int voro_mp_read_bool(struct voro_mp_reader *r, bool *v);
/* Returns 1 (and consumes it) if the next value is nil, 0 if it is something else. */
int voro_mp_read_nil(struct voro_mp_reader *r);
/* Skips one complete value of any type, nested values included. */
int voro_mp_skip(struct voro_mp_reader *r);

#endif
