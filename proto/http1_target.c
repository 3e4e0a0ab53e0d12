/* Request-target forms and in-place path normalisation for routing and forwarding. */
#include "proto/http1_target.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool is_alpha(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

/* RFC 3986 §2.3 unreserved */
static bool is_unreserved(unsigned char c)
{
    return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

/* A byte that may appear raw in a request target (visible ASCII, the parser's rule too). */
static bool is_target_byte(unsigned char c) { return c > 0x20 && c < 0x7f; }

static int fail(const char **reason, const char *why)
{
    if (reason)
        *reason = why;
    return -EINVAL;
}

/* reg-name / IPv4 characters of an authority's host (RFC 3986 §3.2.2), escapes included. */
static bool is_host_byte(unsigned char c)
{
    return is_unreserved(c) || c == '%' || c == '!' || c == '$' || c == '&' || c == '\'' || c == '(' || c == ')' ||
           c == '*' || c == '+' || c == ',' || c == ';' || c == '=';
}

/* Splits "host[:port]" into the host and the port digits (port_len 0 = none). -1 if malformed. */
static int split_authority(const char *a, size_t len, size_t *host_len, const char **port, size_t *port_len)
{
    size_t h;
    if (len && a[0] == '[') {
        const char *close = memchr(a, ']', len);
        if (!close || close == a + 1)
            return -1;
        h = (size_t)(close - a) + 1;
        for (size_t i = 1; i + 1 < h; i++)
            if (!(hexval((unsigned char)a[i]) >= 0 || a[i] == ':' || a[i] == '.'))
                return -1;
    } else {
        h = 0;
        while (h < len && a[h] != ':') {
            if (!is_host_byte((unsigned char)a[h]))
                return -1;
            h++;
        }
        if (h == 0)
            return -1;
    }
    *host_len = h;
    *port = NULL;
    *port_len = 0;
    if (h == len)
        return 0;
    if (a[h] != ':')
        return -1;
    *port = a + h + 1;
    *port_len = len - h - 1;
    if (*port_len > 5)
        return -1;
    for (size_t i = 0; i < *port_len; i++)
        if (!is_digit((unsigned char)(*port)[i]))
            return -1;
    return 0;
}

int voro_target_parse(const char *in, size_t len, struct voro_target *t, const char **reason)
{
    if (!in || !t)
        return -EINVAL;
    memset(t, 0, sizeof(*t));
    if (len == 0)
        return fail(reason, "empty request target");
    if (in[0] == '/') {
        t->form = VORO_TARGET_ORIGIN;
        return 0;
    }
    if (len == 1 && in[0] == '*') {
        t->form = VORO_TARGET_ASTERISK;
        return 0;
    }
    /* absolute-form: scheme "://" authority [path] ["?" query] */
    size_t i = 0;
    while (i < len && (is_alpha((unsigned char)in[i]) || (i && (is_digit((unsigned char)in[i]) || in[i] == '+' ||
                                                                    in[i] == '-' || in[i] == '.'))))
        i++;
    if (i == 0 || len - i < 3 || memcmp(in + i, "://", 3) != 0)
        return fail(reason, "the request target is neither a path nor an absolute URI");
    if (i == 4 && !strncasecmp(in, "http", 4))
        t->https = false;
    else if (i == 5 && !strncasecmp(in, "https", 5))
        t->https = true;
    else
        return fail(reason, "the request target's scheme is not http or https");
    size_t a = i + 3, e = a;
    while (e < len && in[e] != '/' && in[e] != '?' && in[e] != '#')
        e++;
    if (memchr(in + a, '@', e - a))
        return fail(reason, "userinfo in the request target's authority");
    size_t hl, pl;
    const char *port;
    if (e == a || split_authority(in + a, e - a, &hl, &port, &pl) != 0)
        return fail(reason, "invalid authority in the request target");
    t->form = VORO_TARGET_ABSOLUTE;
    t->authority_off = (uint32_t)a;
    t->authority_len = (uint32_t)(e - a);
    t->path_off = (uint32_t)e;
    return 0;
}

/* Drops the last segment of out[0..*w) (from its '/' on). */
static void pop_segment(const char *out, size_t *w)
{
    while (*w > 0 && out[*w - 1] != '/')
        (*w)--;
    if (*w > 0)
        (*w)--; /* the '/' in front of it */
}

int voro_path_normalize(const char *in, size_t len, char *out, size_t cap, size_t *out_len, size_t *path_len,
                        const char **reason)
{
    if (!in || !out || !out_len || !path_len)
        return -EINVAL;
    if (cap < len)
        return -ENOSPC;
    size_t plen = 0;
    while (plen < len && in[plen] != '?')
        plen++;
    if (plen == 0 || in[0] != '/')
        return fail(reason, "the path does not start with '/'");
    /* Invariant: w <= r (the output never overtakes the input, so out == in is fine). */
    size_t r = 0, w = 0;
    while (r < plen) {
        /* in[r] == '/' here: one '/' for the whole run */
        out[w++] = '/';
        while (r < plen && in[r] == '/')
            r++;
        size_t seg = w;
        while (r < plen && in[r] != '/') {
            unsigned char c = (unsigned char)in[r];
            if (c == '%') {
                int hi = r + 2 < plen ? hexval((unsigned char)in[r + 1]) : -1;
                int lo = hi >= 0 ? hexval((unsigned char)in[r + 2]) : -1;
                if (lo < 0)
                    return fail(reason, "invalid percent-encoding in the path");
                unsigned char v = (unsigned char)(hi << 4 | lo);
                if (v == '/' || v == '\\')
                    return fail(reason, "an encoded '/' or '\\' in the path");
                if (v < 0x20 || v == 0x7f)
                    return fail(reason, "an encoded NUL or control character in the path");
                if (is_unreserved(v)) {
                    out[w++] = (char)v;
                } else {
                    static const char hex[] = "0123456789ABCDEF";
                    out[w++] = '%';
                    out[w++] = hex[v >> 4];
                    out[w++] = hex[v & 15];
                }
                r += 3;
                continue;
            }
            if (!is_target_byte(c))
                return fail(reason, "a control character, space or non-ASCII byte in the path");
            if (c == '\\')
                return fail(reason, "a backslash in the path");
            if (c == '#')
                return fail(reason, "a fragment ('#') in the request target");
            out[w++] = (char)c;
            r++;
        }
        size_t sl = w - seg;
        bool dot = sl == 1 && out[seg] == '.';
        bool dotdot = sl == 2 && out[seg] == '.' && out[seg + 1] == '.';
        if (dot || dotdot) {
            w = seg - 1; /* the segment and its '/' */
            if (dotdot) {
                if (w == 0)
                    return fail(reason, "the path climbs above the root ('..')");
                pop_segment(out, &w);
            }
            if (r == plen)
                out[w++] = '/'; /* "/a/." and "/a/b/.." name the directory "/a/" */
        }
    }
    *path_len = w;
    for (size_t q = plen; q < len; q++) {
        unsigned char c = (unsigned char)in[q];
        if (!is_target_byte(c))
            return fail(reason, "a control character, space or non-ASCII byte in the query");
        if (c == '#')
            return fail(reason, "a fragment ('#') in the request target");
    }
    memmove(out + w, in + plen, len - plen);
    *out_len = w + (len - plen);
    return 0;
}

bool voro_authority_equal(const char *a, size_t alen, const char *b, size_t blen, bool https)
{
    size_t ah, bh, apl, bpl;
    const char *ap, *bp;
    if (!a || !b || split_authority(a, alen, &ah, &ap, &apl) != 0 || split_authority(b, blen, &bh, &bp, &bpl) != 0)
        return false;
    if (ah > 1 && a[ah - 1] == '.')
        ah--;
    if (bh > 1 && b[bh - 1] == '.')
        bh--;
    if (ah != bh || strncasecmp(a, b, ah) != 0)
        return false;
    const char *def = https ? "443" : "80";
    if (!apl) {
        ap = def;
        apl = strlen(def);
    }
    if (!bpl) {
        bp = def;
        bpl = strlen(def);
    }
    /* leading zeros do not change a port */
    while (apl > 1 && ap[0] == '0')
        ap++, apl--;
    while (bpl > 1 && bp[0] == '0')
        bp++, bpl--;
    return apl == bpl && memcmp(ap, bp, apl) == 0;
}
