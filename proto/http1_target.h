/* HTTP request-target parsing (RFC 9112 §3.2) and path normalisation (RFC 3986 §6.2.2, §5.2.4):
 * pure functions, no allocation, safe in place. */
#ifndef VORO_PROTO_HTTP1_TARGET_H
#define VORO_PROTO_HTTP1_TARGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum voro_target_form {
    VORO_TARGET_ORIGIN = 0,   /* "/path?query" */
    VORO_TARGET_ABSOLUTE = 1, /* "http://authority/path?query" (http or https only) */
    VORO_TARGET_ASTERISK = 2, /* "*" (OPTIONS) */
};

struct voro_target {
    enum voro_target_form form;
    uint32_t authority_off, authority_len; /* absolute form: host[:port], offsets into the input */
    uint32_t path_off;                     /* where the path (or, when the path is empty, the
                                            * query or the end) starts in the input */
    bool https;                            /* absolute form with scheme https */
};

/*
 * Splits the request-target in[0..len). Absolute form: scheme http/https (any case), no
 * userinfo, a non-empty authority of host (reg-name, IPv4 or [IPv6]) and an optional port.
 * Returns 0, or -EINVAL with *reason (a static string) for anything else.
 */
int voro_target_parse(const char *in, size_t len, struct voro_target *t, const char **reason);

/*
 * Normalises "path[?query]" in[0..len) into out[0..cap) (cap >= len; out may equal in: the
 * output never overtakes the input, so it works in place without a buffer):
 *  - percent-encoded unreserved characters (ALPHA DIGIT - . _ ~) are decoded, other escapes
 *    keep their encoding with upper-case hex digits;
 *  - runs of '/' become one '/';
 *  - "." and ".." segments (also encoded, "%2e%2E") are removed (RFC 3986 §5.2.4);
 *  - the query is copied unchanged.
 * Rejected with -EINVAL and *reason: a path not starting with '/', an invalid escape, an
 * encoded '/' or '\' (%2F, %5C), an encoded NUL or control character, a raw '\', a '..' that
 * climbs above the root, a fragment ('#'), and control, space or non-ASCII bytes anywhere.
 * On success *out_len is the whole length and *path_len the path's (the query starts there).
 * -ENOSPC when cap < len.
 */
int voro_path_normalize(const char *in, size_t len, char *out, size_t cap, size_t *out_len, size_t *path_len,
                        const char **reason);

/*
 * Do two authorities ("host[:port]", Host-header form) name the same origin? Hosts compare
 * case-insensitively (one trailing dot ignored), an absent port equals the scheme's default
 * (80, or 443 with https).
 */
bool voro_authority_equal(const char *a, size_t alen, const char *b, size_t blen, bool https);

#endif
