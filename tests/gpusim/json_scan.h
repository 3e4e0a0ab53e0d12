/* gpusim: bounded, allocation-free JSON validator and field scanner for request bodies. */
#ifndef VORO_GPUSIM_JSON_SCAN_H
#define VORO_GPUSIM_JSON_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GPUSIM_JSON_MAX_DEPTH 64

/* A JSON value as raw text inside the caller's buffer (borrowed, never copied). Only values
 * produced by voro_gpusim_json_root and the accessors below are valid inputs to the accessors:
 * the document was validated once, so later scans cannot run off its end. */
struct gpusim_json {
    const char *p;
    size_t len;
};

struct gpusim_json_iter {
    const char *p;
    const char *end;
};

/* Validates buf[0..n) as one JSON value (RFC 8259, nesting <= GPUSIM_JSON_MAX_DEPTH) and
 * returns it without surrounding whitespace; 0 or -EINVAL. */
int voro_gpusim_json_root(const char *buf, size_t n, struct gpusim_json *out);
/* '{', '[', '"', 't', 'f', 'n' or '0' (any number). */
char voro_gpusim_json_type(struct gpusim_json v);
/* First member `key` of object `obj` (keys compared raw, so `key` must need no escaping);
 * 0, -ENOENT when absent, -EINVAL when obj is not an object. */
int voro_gpusim_json_member(struct gpusim_json obj, const char *key, struct gpusim_json *out);
/* Iterates over an array's elements or an object's member values; -EINVAL if not a container. */
int voro_gpusim_json_iter_begin(struct gpusim_json v, struct gpusim_json_iter *it);
bool voro_gpusim_json_iter_next(struct gpusim_json_iter *it, struct gpusim_json *elem);
/* Next member of an object being iterated: its key (a string value) and its value. */
bool voro_gpusim_json_iter_member(struct gpusim_json_iter *it, struct gpusim_json *key, struct gpusim_json *val);
/* Integer value (an integral number within int64); 0 or -EINVAL. */
int voro_gpusim_json_int(struct gpusim_json v, int64_t *out);
int voro_gpusim_json_number(struct gpusim_json v, double *out);
int voro_gpusim_json_bool(struct gpusim_json v, bool *out);
/* Number of characters (code points) of a string value; 0 for a non-string. */
size_t voro_gpusim_json_string_chars(struct gpusim_json v);
/* Decodes a string value into dst (NUL-terminated UTF-8); -EINVAL if not a string,
 * -ENOSPC if it does not fit in cap bytes. */
int voro_gpusim_json_string(struct gpusim_json v, char *dst, size_t cap);

#endif
