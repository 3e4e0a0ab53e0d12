/* A strict reader for the flat JSON objects of cluster API requests: one top-level object whose
 * members are looked up by key; nested values are validated and skipped. */
#ifndef VORO_CLUSTER_JSON_OBJ_H
#define VORO_CLUSTER_JSON_OBJ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VORO_JSON_MAX_MEMBERS 32

enum voro_json_type { VORO_JSON_STRING, VORO_JSON_NUMBER, VORO_JSON_BOOL, VORO_JSON_NULL, VORO_JSON_OTHER };

struct voro_json_member {
    const char *key; /* raw (escapes not decoded), key_len bytes, points into the input */
    size_t key_len;
    enum voro_json_type type;
    const char *val; /* raw value text (strings: between the quotes, still escaped) */
    size_t val_len;
};

/* Members point into the parsed text, which must outlive the object. */
struct voro_json_obj {
    struct voro_json_member m[VORO_JSON_MAX_MEMBERS];
    size_t n;
};

/* Parses `text` (exactly one object, whitespace around it allowed, nesting depth <= 16).
 * 0 or -EINVAL (not JSON, not an object, duplicate key, too many members). */
int voro_json_parse_object(const char *text, size_t len, struct voro_json_obj *out);
/* Lookups: 0, -ENOENT (absent), -EINVAL (wrong type or value), -EMSGSIZE (does not fit). */
int voro_json_get_string(const struct voro_json_obj *o, const char *key, char *buf, size_t cap);
/* Decodes a string member into a malloc'd NUL-terminated buffer (*out, *len). */
int voro_json_get_string_alloc(const struct voro_json_obj *o, const char *key, char **out, size_t *len);
/* Non-negative integer member (no fraction, no exponent). */
int voro_json_get_u64(const struct voro_json_obj *o, const char *key, uint64_t *out);

#endif
