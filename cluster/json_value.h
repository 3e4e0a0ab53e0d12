/* A small bounded JSON reader (RFC 8259) that builds a tree: for vorocluster reading cluster API answers. */
#ifndef VORO_CLUSTER_JSON_VALUE_H
#define VORO_CLUSTER_JSON_VALUE_H

/*
 * voro_json_parse reads one JSON text into a tree of malloc'd nodes owned by the caller (free the
 * root with voro_json_free). It is strict: no comments, no trailing commas, no bare control
 * characters in strings, no leading zeros, nothing but whitespace after the value, no "\u0000"
 * (strings are C strings). Nesting is bounded (VORO_JSON_MAX_DEPTH) and so is the input
 * (VORO_JSON_MAX_INPUT), so a hostile answer cannot exhaust the stack or the memory. Duplicate object
 * keys are kept; voro_json_get returns the first. It is not for the data path.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VORO_JSON_MAX_DEPTH 64
#define VORO_JSON_MAX_INPUT (64u << 20)

enum voro_json_type {
    VORO_JSON_NULL = 0,
    VORO_JSON_BOOL,
    VORO_JSON_NUMBER,
    VORO_JSON_STRING,
    VORO_JSON_ARRAY,
    VORO_JSON_OBJECT,
};

struct voro_json {
    enum voro_json_type type;
    bool boolean;             /* BOOL */
    bool is_integer;          /* NUMBER written without fraction or exponent and within int64 */
    int64_t integer;          /* NUMBER when is_integer */
    double number;            /* NUMBER */
    char *str;                /* STRING: decoded UTF-8, NUL-terminated, owned by the node */
    size_t str_len;           /* STRING */
    size_t n;                 /* ARRAY / OBJECT: number of items */
    struct voro_json **items; /* ARRAY / OBJECT: children, owned */
    char **keys;              /* OBJECT: keys[i] names items[i], owned, NUL-terminated */
};

/* Parses text[0 .. len) into *out. Returns 0; -EINVAL on a syntax error (*err_off, when not NULL,
 * is the byte offset where it was found); -E2BIG when nesting is deeper than VORO_JSON_MAX_DEPTH
 * or the input is longer than VORO_JSON_MAX_INPUT; -ENOMEM. On error *out is NULL. `text` is
 * borrowed for the call and need not be NUL-terminated. */
int voro_json_parse(const char *text, size_t len, struct voro_json **out, size_t *err_off);
/* Frees a tree returned by voro_json_parse (NULL is fine). */
void voro_json_free(struct voro_json *v);

/* Member `key` of an object, or NULL (not an object, or no such key). */
const struct voro_json *voro_json_get(const struct voro_json *obj, const char *key);
/* Item i of an array or object, or NULL when out of range or not a container. */
const struct voro_json *voro_json_item(const struct voro_json *v, size_t i);
/* Number of items of an array or object; 0 for anything else (NULL included). */
size_t voro_json_count(const struct voro_json *v);
/* The string of a STRING node, or NULL for anything else (NULL included). */
const char *voro_json_string(const struct voro_json *v);
/* An integral NUMBER as int64: 0, or -EINVAL when v is NULL, not a number or not integral. */
int voro_json_int(const struct voro_json *v, int64_t *out);
/* True when v is a BOOL true; false for anything else. */
bool voro_json_true(const struct voro_json *v);
/* True when v is NULL (absent) or a JSON null. */
bool voro_json_is_null(const struct voro_json *v);

#endif
