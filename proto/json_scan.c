/* Single-pass JSON validator that locates the top-level "model" string, and its rewriter. */
#include "proto/json_scan.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

struct scan {
    const char *p;
    const char *end;
};

static void skip_ws(struct scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
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

/* At the opening quote: validates the string and leaves s->p after the closing quote;
 * [*start, *stop) are the raw contents. */
static int scan_string(struct scan *s, const char **start, const char **stop, bool *escaped)
{
    const char *p = s->p + 1;
    *escaped = false;
    *start = p;
    for (;;) {
        if (p >= s->end)
            return -E2BIG;
        unsigned char c = (unsigned char)*p;
        if (c == '"')
            break;
        if (c < 0x20)
            return -EINVAL;
        if (c != '\\') {
            p++;
            continue;
        }
        *escaped = true;
        if (p + 1 >= s->end)
            return -E2BIG;
        char e = p[1];
        if (e == 'u') {
            for (int i = 0; i < 4; i++) {
                if (p + 2 + i >= s->end)
                    return -E2BIG;
                if (hexval(p[2 + i]) < 0)
                    return -EINVAL;
            }
            p += 6;
        } else if (e && strchr("\"\\/bfnrt", e)) {
            p += 2;
        } else {
            return -EINVAL;
        }
    }
    *stop = p;
    s->p = p + 1;
    return 0;
}

/* Whether the validated raw key [p, end) decodes to the ASCII string `want`. */
static bool key_is(const char *p, const char *end, const char *want)
{
    while (p < end) {
        unsigned c;
        if (*p != '\\') {
            c = (unsigned char)*p++;
        } else if (p[1] == 'u') {
            c = (unsigned)(hexval(p[2]) << 12 | hexval(p[3]) << 8 | hexval(p[4]) << 4 | hexval(p[5]));
            p += 6;
        } else {
            static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
            c = (unsigned char)to[strchr(from, p[1]) - from];
            p += 2;
        }
        if (!*want || c != (unsigned char)*want)
            return false;
        want++;
    }
    return !*want;
}

static int scan_number(struct scan *s)
{
    const char *p = s->p;
    if (*p == '-')
        p++;
    if (p >= s->end)
        return -E2BIG;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < s->end && *p >= '0' && *p <= '9')
            p++;
    } else {
        return -EINVAL;
    }
    if (p < s->end && *p == '.') {
        p++;
        if (p >= s->end)
            return -E2BIG;
        if (*p < '0' || *p > '9')
            return -EINVAL;
        while (p < s->end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < s->end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < s->end && (*p == '+' || *p == '-'))
            p++;
        if (p >= s->end)
            return -E2BIG;
        if (*p < '0' || *p > '9')
            return -EINVAL;
        while (p < s->end && *p >= '0' && *p <= '9')
            p++;
    }
    /* A number is always inside the object, so running out here means the body was cut. */
    if (p >= s->end)
        return -E2BIG;
    s->p = p;
    return 0;
}

static int scan_literal(struct scan *s)
{
    const char *word = *s->p == 't' ? "true" : *s->p == 'f' ? "false" : "null";
    size_t n = strlen(word);
    for (size_t i = 0; i < n; i++) {
        if (s->p + i >= s->end)
            return -E2BIG;
        if (s->p[i] != word[i])
            return -EINVAL;
    }
    s->p += n;
    return 0;
}

int voro_json_find_model(const char *body, size_t len, struct voro_slice *out)
{
    if (!body || !out)
        return -EINVAL;
    struct scan s = {body, body + len};
    uint64_t is_object = 0; /* bit d-1: the container at depth d is an object */
    unsigned depth = 0;
    bool found = false, value_is_model = false;
    const char *a, *b;
    bool esc;
    int rc;

    skip_ws(&s);
    if (s.p >= s.end)
        return -E2BIG;
    if (*s.p != '{')
        return -EINVAL;
    goto value;

    for (;;) {
        /* after a value: a separator, the end of a container, or the end of the document */
        skip_ws(&s);
        if (depth == 0) {
            if (s.p != s.end)
                return -EINVAL;
            return found ? 0 : -ENOENT;
        }
        if (s.p >= s.end)
            return -E2BIG;
        bool obj = (is_object >> (depth - 1)) & 1;
        if (*s.p == (obj ? '}' : ']')) {
            s.p++;
            depth--;
            continue;
        }
        if (*s.p != ',')
            return -EINVAL;
        s.p++;
        if (!obj)
            goto value;
    key:
        skip_ws(&s);
        if (s.p >= s.end)
            return -E2BIG;
        if (*s.p != '"')
            return -EINVAL;
        if ((rc = scan_string(&s, &a, &b, &esc)) < 0)
            return rc;
        value_is_model = depth == 1 && key_is(a, b, "model");
        skip_ws(&s);
        if (s.p >= s.end)
            return -E2BIG;
        if (*s.p != ':')
            return -EINVAL;
        s.p++;
    value:
        skip_ws(&s);
        if (s.p >= s.end)
            return -E2BIG;
        if (value_is_model) {
            value_is_model = false;
            if (*s.p != '"' || found)
                return -EINVAL;
            if ((rc = scan_string(&s, &a, &b, &esc)) < 0)
                return rc;
            if (esc)
                return -EINVAL;
            out->off = (size_t)(a - body);
            out->len = (size_t)(b - a);
            found = true;
            continue;
        }
        switch (*s.p) {
        case '{':
        case '[':
            if (depth >= VORO_JSON_MAX_DEPTH)
                return -EINVAL;
            if (*s.p == '{')
                is_object |= 1ull << depth;
            else
                is_object &= ~(1ull << depth);
            depth++;
            s.p++;
            skip_ws(&s);
            if (s.p >= s.end)
                return -E2BIG;
            bool opened_object = (is_object >> (depth - 1)) & 1;
            if (*s.p == (opened_object ? '}' : ']')) {
                s.p++;
                depth--;
                continue;
            }
            if (opened_object)
                goto key;
            goto value;
        case '"':
            if ((rc = scan_string(&s, &a, &b, &esc)) < 0)
                return rc;
            continue;
        case 't':
        case 'f':
        case 'n':
            if ((rc = scan_literal(&s)) < 0)
                return rc;
            continue;
        default:
            if (*s.p == '-' || (*s.p >= '0' && *s.p <= '9')) {
                if ((rc = scan_number(&s)) < 0)
                    return rc;
                continue;
            }
            return -EINVAL;
        }
    }
}

static size_t escaped_len(const char *m)
{
    size_t n = 0;
    for (; *m; m++) {
        unsigned char c = (unsigned char)*m;
        n += c == '"' || c == '\\' ? 2 : c < 0x20 ? 6 : 1;
    }
    return n;
}

int voro_json_rewrite_model(const char *body, size_t len, const struct voro_slice *span, const char *new_model,
                            char *out, size_t out_cap, size_t *out_len)
{
    if (!body || !span || !new_model || !out_len || (!out && out_cap))
        return -EINVAL;
    if (span->off < 1 || span->off > len || span->len >= len - span->off || body[span->off - 1] != '"' ||
        body[span->off + span->len] != '"')
        return -EINVAL;
    size_t head = span->off, tail = len - span->off - span->len;
    size_t need = head + escaped_len(new_model) + tail;
    *out_len = need;
    if (need > out_cap)
        return -ENOSPC;
    memcpy(out, body, head);
    char *w = out + head;
    for (const char *m = new_model; *m; m++) {
        unsigned char c = (unsigned char)*m;
        if (c == '"' || c == '\\') {
            *w++ = '\\';
            *w++ = (char)c;
        } else if (c < 0x20) {
            static const char hex[] = "0123456789abcdef";
            memcpy(w, "\\u00", 4);
            w[4] = hex[c >> 4];
            w[5] = hex[c & 15];
            w += 6;
        } else {
            *w++ = (char)c;
        }
    }
    memcpy(w, body + span->off + span->len, tail);
    return 0;
}
