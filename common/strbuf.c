/* Growable byte buffer with printf and JSON-escaping helpers (control plane only). */
#include "common/strbuf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void voro_strbuf_init(struct voro_strbuf *sb) { memset(sb, 0, sizeof(*sb)); }

void voro_strbuf_free(struct voro_strbuf *sb)
{
    free(sb->data);
    memset(sb, 0, sizeof(*sb));
}

void voro_strbuf_reset(struct voro_strbuf *sb)
{
    sb->len = 0;
    if (sb->data)
        sb->data[0] = '\0';
}

static int strbuf_reserve(struct voro_strbuf *sb, size_t extra)
{
    if (sb->failed)
        return -ENOMEM;
    if (sb->len + extra + 1 <= sb->cap)
        return 0;
    size_t cap = sb->cap ? sb->cap : 256;
    while (cap < sb->len + extra + 1)
        cap *= 2;
    char *p = realloc(sb->data, cap);
    if (!p) {
        sb->failed = 1;
        return -ENOMEM;
    }
    sb->data = p;
    sb->cap = cap;
    return 0;
}

int voro_strbuf_append(struct voro_strbuf *sb, const void *data, size_t len)
{
    int rc = strbuf_reserve(sb, len);
    if (rc)
        return rc;
    memcpy(sb->data + sb->len, data, len);
    sb->len += len;
    sb->data[sb->len] = '\0';
    return 0;
}

int voro_strbuf_puts(struct voro_strbuf *sb, const char *s) { return voro_strbuf_append(sb, s, strlen(s)); }

int voro_strbuf_printf(struct voro_strbuf *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -EINVAL;
    int rc = strbuf_reserve(sb, (size_t)n);
    if (rc)
        return rc;
    va_start(ap, fmt);
    vsnprintf(sb->data + sb->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb->len += (size_t)n;
    return 0;
}

int voro_strbuf_json_string(struct voro_strbuf *sb, const char *s)
{
    int rc = voro_strbuf_append(sb, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; rc == 0 && *p; p++) {
        switch (*p) {
        case '"': rc = voro_strbuf_append(sb, "\\\"", 2); break;
        case '\\': rc = voro_strbuf_append(sb, "\\\\", 2); break;
        case '\n': rc = voro_strbuf_append(sb, "\\n", 2); break;
        case '\r': rc = voro_strbuf_append(sb, "\\r", 2); break;
        case '\t': rc = voro_strbuf_append(sb, "\\t", 2); break;
        default:
            if (*p < 0x20)
                rc = voro_strbuf_printf(sb, "\\u%04x", *p);
            else
                rc = voro_strbuf_append(sb, p, 1);
        }
    }
    if (rc == 0)
        rc = voro_strbuf_append(sb, "\"", 1);
    return rc;
}

char *voro_strbuf_detach(struct voro_strbuf *sb, size_t *len_out)
{
    char *d = sb->data;
    if (len_out)
        *len_out = sb->len;
    memset(sb, 0, sizeof(*sb));
    return d;
}
