/* Finds and rewrites the top-level "model" of a JSON request body (OpenAI-style APIs) without
 * allocating or building a tree: one bounded pass that also validates the whole document. */
#ifndef VORO_PROTO_JSON_SCAN_H
#define VORO_PROTO_JSON_SCAN_H

#include <stddef.h>

#define VORO_JSON_MAX_DEPTH 64

/* A piece of a caller's buffer: buf[off .. off + len). Offsets, not pointers, so the buffer
 * may move between the scan and its use. */
struct voro_slice {
    size_t off;
    size_t len;
};

/*
 * Scans body[0 .. len) (borrowed for the call) as one JSON object (RFC 8259, nesting at most
 * VORO_JSON_MAX_DEPTH) and finds the value of its top-level member "model".
 * Returns:
 *   0        *out is the string's contents between the quotes (body[out->off - 1] and
 *            body[out->off + out->len] are the quotes); the value has no escapes.
 *   -ENOENT  a valid object without a top-level "model" (nested "model" keys and "model" as a
 *            value do not count).
 *   -E2BIG   the input ends before the object does: the caller holds only part of the body
 *            (or, if it holds all of it, the body is truncated JSON).
 *   -EINVAL  not a JSON object (bad token, string, number, nesting deeper than the bound, data
 *            after the object), or "model" is not a string, or it appears twice at top level
 *            (engines keep the last one, a scan that kept the first could be steered past a
 *            route), or its value contains backslash escapes (routing compares bytes, and a
 *            model name never needs them).
 * Keys are compared after decoding escapes, so "mod\u0065l" is "model". The whole input is
 * always validated: a problem after the model still gives -EINVAL / -E2BIG.
 */
int voro_json_find_model(const char *body, size_t len, struct voro_slice *out);

/*
 * Writes body with the model's value replaced by the JSON string for `new_model` (NUL-terminated,
 * escaped as needed: '"', '\\' and control characters) into out[0 .. out_cap); *out_len is the
 * new length (also when the answer is -ENOSPC: then it is the capacity needed). Bytes outside
 * the value are copied unchanged. `model_value_span` is what voro_json_find_model returned for
 * this body. `out` must not overlap `body`. Returns 0, -ENOSPC, or -EINVAL (span not inside
 * body between two quotes, or NULL arguments).
 */
int voro_json_rewrite_model(const char *body, size_t len, const struct voro_slice *model_value_span,
                            const char *new_model, char *out, size_t out_cap, size_t *out_len);

#endif
