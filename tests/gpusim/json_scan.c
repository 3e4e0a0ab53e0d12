/* gpusim: bounded, allocation-free JSON validator and field scanner for request bodies. */
#include "tests/gpusim/json_scan.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* p at the opening quote; returns the byte after the closing quote or NULL. */
static const char *skip_string(const char *p, const char *end)
{
    p++;
    while (p < end) {
        unsigned char c = (unsigned char)*p;
        if (c == '"')
            return p + 1;
        if (c < 0x20)
            return NULL;
        if (c == '\\') {
            if (++p >= end)
                return NULL;
            switch (*p) {
            case '"':
            case '\\':
            case '/':
            case 'b':
            case 'f':
            case 'n':
            case 'r':
            case 't': p++; break;
            case 'u':
                if (end - p < 5)
                    return NULL;
                for (int i = 1; i <= 4; i++)
                    if (hexval(p[i]) < 0)
                        return NULL;
                p += 5;
                break;
            default: return NULL;
            }
            continue;
        }
        p++;
    }
    return NULL;
}

static const char *skip_digits(const char *p, const char *end)
{
    while (p < end && *p >= '0' && *p <= '9')
        p++;
    return p;
}

static const char *skip_number(const char *p, const char *end)
{
    if (p < end && *p == '-')
        p++;
    if (p >= end)
        return NULL;
    if (*p == '0')
        p++;
    else if (*p >= '1' && *p <= '9')
        p = skip_digits(p, end);
    else
        return NULL;
    if (p < end && *p == '.') {
        const char *q = skip_digits(p + 1, end);
        if (q == p + 1)
            return NULL;
        p = q;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        const char *q = skip_digits(p, end);
        if (q == p)
            return NULL;
        p = q;
    }
    return p;
}

static const char *skip_literal(const char *p, const char *end, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(end - p) < n || memcmp(p, lit, n) != 0)
        return NULL;
    return p + n;
}

/* Validates and skips one value starting at p (no leading whitespace); NULL on error. */
static const char *skip_value(const char *p, const char *end, int depth)
{
    if (p >= end)
        return NULL;
    switch (*p) {
    case '"': return skip_string(p, end);
    case 't': return skip_literal(p, end, "true");
    case 'f': return skip_literal(p, end, "false");
    case 'n': return skip_literal(p, end, "null");
    case '{':
    case '[': {
        if (depth >= GPUSIM_JSON_MAX_DEPTH)
            return NULL;
        const char close = *p == '{' ? '}' : ']';
        const bool obj = *p == '{';
        p = skip_ws(p + 1, end);
        if (p < end && *p == close)
            return p + 1;
        for (;;) {
            if (obj) {
                if (p >= end || *p != '"')
                    return NULL;
                p = skip_string(p, end);
                if (!p)
                    return NULL;
                p = skip_ws(p, end);
                if (p >= end || *p != ':')
                    return NULL;
                p = skip_ws(p + 1, end);
            }
            p = skip_value(p, end, depth + 1);
            if (!p)
                return NULL;
            p = skip_ws(p, end);
            if (p >= end)
                return NULL;
            if (*p == close)
                return p + 1;
            if (*p != ',')
                return NULL;
            p = skip_ws(p + 1, end);
        }
    }
    default: return skip_number(p, end);
    }
}

int voro_gpusim_json_root(const char *buf, size_t n, struct gpusim_json *out)
{
    const char *end = buf + n;
    const char *p = skip_ws(buf, end);
    const char *q = skip_value(p, end, 0);
    if (!q || skip_ws(q, end) != end)
        return -EINVAL;
    out->p = p;
    out->len = (size_t)(q - p);
    return 0;
}

char voro_gpusim_json_type(struct gpusim_json v)
{
    if (v.len == 0)
        return 0;
    char c = v.p[0];
    if (c == '-' || (c >= '0' && c <= '9'))
        return '0';
    return c;
}

int voro_gpusim_json_iter_begin(struct gpusim_json v, struct gpusim_json_iter *it)
{
    char t = voro_gpusim_json_type(v);
    if (t != '{' && t != '[')
        return -EINVAL;
    it->p = v.p + 1;
    it->end = v.p + v.len - 1; /* the closing bracket */
    return 0;
}

/* Object members: key string (returned in *key) then value. */
bool voro_gpusim_json_iter_member(struct gpusim_json_iter *it, struct gpusim_json *key, struct gpusim_json *val)
{
    const char *p = skip_ws(it->p, it->end);
    if (p < it->end && *p == ',')
        p = skip_ws(p + 1, it->end);
    if (p >= it->end)
        return false;
    const char *k = p;
    p = skip_string(p, it->end);
    key->p = k;
    key->len = (size_t)(p - k);
    p = skip_ws(p, it->end);
    p = skip_ws(p + 1, it->end); /* ':' */
    const char *v = p;
    p = skip_value(p, it->end, 0);
    val->p = v;
    val->len = (size_t)(p - v);
    it->p = p;
    return true;
}

bool voro_gpusim_json_iter_next(struct gpusim_json_iter *it, struct gpusim_json *elem)
{
    const char *p = skip_ws(it->p, it->end);
    if (p < it->end && *p == ',')
        p = skip_ws(p + 1, it->end);
    if (p >= it->end)
        return false;
    /* An object member starts with a key followed by ':'; an array element never does. */
    if (*p == '"') {
        const char *q = skip_ws(skip_string(p, it->end), it->end);
        if (q < it->end && *q == ':') {
            struct gpusim_json key;
            it->p = p;
            return voro_gpusim_json_iter_member(it, &key, elem);
        }
    }
    const char *v = p;
    p = skip_value(p, it->end, 0);
    elem->p = v;
    elem->len = (size_t)(p - v);
    it->p = p;
    return true;
}

int voro_gpusim_json_member(struct gpusim_json obj, const char *key, struct gpusim_json *out)
{
    if (voro_gpusim_json_type(obj) != '{')
        return -EINVAL;
    struct gpusim_json_iter it;
    voro_gpusim_json_iter_begin(obj, &it);
    size_t klen = strlen(key);
    struct gpusim_json k, v;
    while (voro_gpusim_json_iter_member(&it, &k, &v)) {
        if (k.len == klen + 2 && memcmp(k.p + 1, key, klen) == 0) {
            *out = v;
            return 0;
        }
    }
    return -ENOENT;
}

int voro_gpusim_json_number(struct gpusim_json v, double *out)
{
    if (voro_gpusim_json_type(v) != '0' || v.len > 64)
        return -EINVAL;
    char tmp[65];
    memcpy(tmp, v.p, v.len);
    tmp[v.len] = '\0';
    *out = strtod(tmp, NULL);
    return 0;
}

int voro_gpusim_json_int(struct gpusim_json v, int64_t *out)
{
    double d;
    if (voro_gpusim_json_number(v, &d) < 0)
        return -EINVAL;
    if (!(d >= -9.2e18 && d <= 9.2e18) || d != (double)(int64_t)d)
        return -EINVAL;
    *out = (int64_t)d;
    return 0;
}

int voro_gpusim_json_bool(struct gpusim_json v, bool *out)
{
    char t = voro_gpusim_json_type(v);
    if (t != 't' && t != 'f')
        return -EINVAL;
    *out = t == 't';
    return 0;
}

size_t voro_gpusim_json_string_chars(struct gpusim_json v)
{
    if (voro_gpusim_json_type(v) != '"')
        return 0;
    size_t n = 0;
    const char *p = v.p + 1, *end = v.p + v.len - 1;
    while (p < end) {
        unsigned char c = (unsigned char)*p;
        if (c == '\\') {
            p += p[1] == 'u' ? 6 : 2;
        } else {
            p++;
            while (p < end && ((unsigned char)*p & 0xC0) == 0x80) /* UTF-8 continuation bytes */
                p++;
        }
        n++;
    }
    return n;
}

static size_t put_utf8(char *d, uint32_t cp)
{
    if (cp < 0x80) {
        d[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        d[0] = (char)(0xC0 | (cp >> 6));
        d[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        d[0] = (char)(0xE0 | (cp >> 12));
        d[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        d[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    d[0] = (char)(0xF0 | (cp >> 18));
    d[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    d[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    d[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static uint32_t hex4(const char *p)
{
    return (uint32_t)(hexval(p[0]) << 12 | hexval(p[1]) << 8 | hexval(p[2]) << 4 | hexval(p[3]));
}

int voro_gpusim_json_string(struct gpusim_json v, char *dst, size_t cap)
{
    if (voro_gpusim_json_type(v) != '"')
        return -EINVAL;
    if (cap == 0)
        return -ENOSPC;
    const char *p = v.p + 1, *end = v.p + v.len - 1;
    size_t o = 0;
    while (p < end) {
        char tmp[4];
        size_t n = 1;
        if (*p != '\\') {
            tmp[0] = *p++;
        } else {
            char e = p[1];
            p += 2;
            switch (e) {
            case 'b': tmp[0] = '\b'; break;
            case 'f': tmp[0] = '\f'; break;
            case 'n': tmp[0] = '\n'; break;
            case 'r': tmp[0] = '\r'; break;
            case 't': tmp[0] = '\t'; break;
            case 'u': {
                uint32_t cp = hex4(p);
                p += 4;
                if (cp >= 0xD800 && cp < 0xDC00 && end - p >= 6 && p[0] == '\\' && p[1] == 'u') {
                    uint32_t lo = hex4(p + 2);
                    if (lo >= 0xDC00 && lo < 0xE000) {
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                        p += 6;
                    }
                }
                n = put_utf8(tmp, cp);
                break;
            }
            default: tmp[0] = e; break;
            }
        }
        if (o + n + 1 > cap)
            return -ENOSPC;
        memcpy(dst + o, tmp, n);
        o += n;
    }
    dst[o] = '\0';
    return 0;
}
