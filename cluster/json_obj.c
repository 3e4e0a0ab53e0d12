/* Strict flat-object JSON reader for cluster API bodies (RFC 8259 grammar, no allocation but strings). */
#include "cluster/json_obj.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct rd {
    const char *p, *end;
};

static void ws(struct rd *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
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

/* At the opening quote: skips the string, validating escapes; *s,*n = raw contents. */
static int skip_string(struct rd *r, const char **s, size_t *n)
{
    if (r->p >= r->end || *r->p != '"')
        return -EINVAL;
    const char *start = ++r->p;
    while (r->p < r->end) {
        unsigned char c = (unsigned char)*r->p;
        if (c == '"') {
            *s = start;
            *n = (size_t)(r->p - start);
            r->p++;
            return 0;
        }
        if (c < 0x20)
            return -EINVAL;
        if (c == '\\') {
            if (r->end - r->p < 2)
                return -EINVAL;
            char e = r->p[1];
            if (e == 'u') {
                if (r->end - r->p < 6)
                    return -EINVAL;
                for (int i = 2; i < 6; i++)
                    if (hexval(r->p[i]) < 0)
                        return -EINVAL;
                r->p += 6;
                continue;
            }
            if (!strchr("\"\\/bfnrt", e) || !e)
                return -EINVAL;
            r->p += 2;
            continue;
        }
        r->p++;
    }
    return -EINVAL;
}

static int skip_number(struct rd *r)
{
    const char *s = r->p;
    if (r->p < r->end && *r->p == '-')
        r->p++;
    if (r->p >= r->end)
        return -EINVAL;
    if (*r->p == '0') {
        r->p++;
    } else if (*r->p >= '1' && *r->p <= '9') {
        while (r->p < r->end && *r->p >= '0' && *r->p <= '9')
            r->p++;
    } else {
        return -EINVAL;
    }
    if (r->p < r->end && *r->p == '.') {
        r->p++;
        const char *d = r->p;
        while (r->p < r->end && *r->p >= '0' && *r->p <= '9')
            r->p++;
        if (r->p == d)
            return -EINVAL;
    }
    if (r->p < r->end && (*r->p == 'e' || *r->p == 'E')) {
        r->p++;
        if (r->p < r->end && (*r->p == '+' || *r->p == '-'))
            r->p++;
        const char *d = r->p;
        while (r->p < r->end && *r->p >= '0' && *r->p <= '9')
            r->p++;
        if (r->p == d)
            return -EINVAL;
    }
    return r->p > s ? 0 : -EINVAL;
}

static int skip_lit(struct rd *r, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(r->end - r->p) < n || memcmp(r->p, lit, n))
        return -EINVAL;
    r->p += n;
    return 0;
}

static int skip_value(struct rd *r, int depth, enum voro_json_type *type);

static int skip_container(struct rd *r, int depth, char close)
{
    if (depth > 16)
        return -EINVAL;
    r->p++;
    ws(r);
    if (r->p < r->end && *r->p == close) {
        r->p++;
        return 0;
    }
    for (;;) {
        enum voro_json_type t;
        if (close == '}') {
            const char *k;
            size_t kn;
            ws(r);
            if (skip_string(r, &k, &kn))
                return -EINVAL;
            ws(r);
            if (r->p >= r->end || *r->p != ':')
                return -EINVAL;
            r->p++;
        }
        ws(r);
        if (skip_value(r, depth + 1, &t))
            return -EINVAL;
        ws(r);
        if (r->p >= r->end)
            return -EINVAL;
        if (*r->p == close) {
            r->p++;
            return 0;
        }
        if (*r->p != ',')
            return -EINVAL;
        r->p++;
    }
}

static int skip_value(struct rd *r, int depth, enum voro_json_type *type)
{
    if (r->p >= r->end)
        return -EINVAL;
    const char *s;
    size_t n;
    switch (*r->p) {
    case '"':
        *type = VORO_JSON_STRING;
        return skip_string(r, &s, &n);
    case '{':
        *type = VORO_JSON_OTHER;
        return skip_container(r, depth, '}');
    case '[':
        *type = VORO_JSON_OTHER;
        return skip_container(r, depth, ']');
    case 't':
        *type = VORO_JSON_BOOL;
        return skip_lit(r, "true");
    case 'f':
        *type = VORO_JSON_BOOL;
        return skip_lit(r, "false");
    case 'n':
        *type = VORO_JSON_NULL;
        return skip_lit(r, "null");
    default:
        *type = VORO_JSON_NUMBER;
        return skip_number(r);
    }
}

int voro_json_parse_object(const char *text, size_t len, struct voro_json_obj *out)
{
    struct rd r = {.p = text, .end = text + len};
    out->n = 0;
    ws(&r);
    if (r.p >= r.end || *r.p != '{')
        return -EINVAL;
    r.p++;
    ws(&r);
    if (r.p < r.end && *r.p == '}') {
        r.p++;
        goto tail;
    }
    for (;;) {
        struct voro_json_member m;
        ws(&r);
        if (skip_string(&r, &m.key, &m.key_len))
            return -EINVAL;
        ws(&r);
        if (r.p >= r.end || *r.p != ':')
            return -EINVAL;
        r.p++;
        ws(&r);
        const char *vs = r.p;
        if (skip_value(&r, 1, &m.type))
            return -EINVAL;
        m.val = vs;
        m.val_len = (size_t)(r.p - vs);
        if (m.type == VORO_JSON_STRING) {
            m.val++;
            m.val_len -= 2;
        }
        for (size_t i = 0; i < out->n; i++)
            if (out->m[i].key_len == m.key_len && !memcmp(out->m[i].key, m.key, m.key_len))
                return -EINVAL;
        if (out->n >= VORO_JSON_MAX_MEMBERS)
            return -EINVAL;
        out->m[out->n++] = m;
        ws(&r);
        if (r.p >= r.end)
            return -EINVAL;
        if (*r.p == '}') {
            r.p++;
            break;
        }
        if (*r.p != ',')
            return -EINVAL;
        r.p++;
    }
tail:
    ws(&r);
    return r.p == r.end ? 0 : -EINVAL;
}

static const struct voro_json_member *find(const struct voro_json_obj *o, const char *key)
{
    size_t n = strlen(key);
    for (size_t i = 0; i < o->n; i++)
        if (o->m[i].key_len == n && !memcmp(o->m[i].key, key, n))
            return &o->m[i];
    return NULL;
}

static void put_utf8(char *dst, size_t *j, uint32_t cp)
{
    if (cp < 0x80) {
        dst[(*j)++] = (char)cp;
    } else if (cp < 0x800) {
        dst[(*j)++] = (char)(0xc0 | (cp >> 6));
        dst[(*j)++] = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        dst[(*j)++] = (char)(0xe0 | (cp >> 12));
        dst[(*j)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
        dst[(*j)++] = (char)(0x80 | (cp & 0x3f));
    } else {
        dst[(*j)++] = (char)(0xf0 | (cp >> 18));
        dst[(*j)++] = (char)(0x80 | ((cp >> 12) & 0x3f));
        dst[(*j)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
        dst[(*j)++] = (char)(0x80 | (cp & 0x3f));
    }
}

static uint32_t hex4(const char *p)
{
    return (uint32_t)(hexval(p[0]) << 12 | hexval(p[1]) << 8 | hexval(p[2]) << 4 | hexval(p[3]));
}

/* Decodes an (already validated) raw string into dst (room for raw_len + 1: decoding never
 * grows). NUL characters (\u0000) are refused: every consumer wants C strings. */
static int decode(const char *s, size_t n, char *dst, size_t *out_len)
{
    size_t j = 0;
    for (size_t i = 0; i < n;) {
        if (s[i] != '\\') {
            dst[j++] = s[i++];
            continue;
        }
        char e = s[i + 1];
        i += 2;
        switch (e) {
        case 'b': dst[j++] = '\b'; break;
        case 'f': dst[j++] = '\f'; break;
        case 'n': dst[j++] = '\n'; break;
        case 'r': dst[j++] = '\r'; break;
        case 't': dst[j++] = '\t'; break;
        case 'u': {
            uint32_t cp = hex4(s + i);
            i += 4;
            if (cp >= 0xd800 && cp < 0xdc00 && i + 6 <= n && s[i] == '\\' && s[i + 1] == 'u') {
                uint32_t lo = hex4(s + i + 2);
                if (lo >= 0xdc00 && lo < 0xe000) {
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    i += 6;
                }
            }
            if (cp == 0 || (cp >= 0xd800 && cp < 0xe000))
                return -EINVAL;
            put_utf8(dst, &j, cp);
            break;
        }
        default: dst[j++] = e; break;
        }
    }
    dst[j] = '\0';
    *out_len = j;
    return 0;
}

int voro_json_get_string(const struct voro_json_obj *o, const char *key, char *buf, size_t cap)
{
    char *s;
    size_t n;
    int rc = voro_json_get_string_alloc(o, key, &s, &n);
    if (rc)
        return rc;
    if (n + 1 > cap) {
        free(s);
        return -EMSGSIZE;
    }
    memcpy(buf, s, n + 1);
    free(s);
    return 0;
}

int voro_json_get_string_alloc(const struct voro_json_obj *o, const char *key, char **out, size_t *len)
{
    const struct voro_json_member *m = find(o, key);
    if (!m)
        return -ENOENT;
    if (m->type != VORO_JSON_STRING)
        return -EINVAL;
    char *s = malloc(m->val_len + 1);
    if (!s)
        return -ENOMEM;
    size_t n;
    if (decode(m->val, m->val_len, s, &n)) {
        free(s);
        return -EINVAL;
    }
    *out = s;
    *len = n;
    return 0;
}

int voro_json_get_u64(const struct voro_json_obj *o, const char *key, uint64_t *out)
{
    const struct voro_json_member *m = find(o, key);
    if (!m)
        return -ENOENT;
    if (m->type != VORO_JSON_NUMBER)
        return -EINVAL;
    uint64_t v = 0;
    for (size_t i = 0; i < m->val_len; i++) {
        char c = m->val[i];
        if (c < '0' || c > '9')
            return -EINVAL;
        unsigned d = (unsigned)(c - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -EINVAL;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}
