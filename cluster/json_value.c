/* Bounded recursive-descent JSON reader building a tree (see json_value.h). */
#include "cluster/json_value.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct reader {
    const char *s;
    size_t len;
    size_t pos;
    int err; /* first error: -EINVAL, -E2BIG or -ENOMEM */
};

static int fail(struct reader *r, int err)
{
    if (!r->err)
        r->err = err;
    return r->err;
}

static void skip_ws(struct reader *r)
{
    while (r->pos < r->len) {
        char c = r->s[r->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        r->pos++;
    }
}

static struct voro_json *new_node(struct reader *r, enum voro_json_type type)
{
    struct voro_json *v = calloc(1, sizeof(*v));
    if (!v) {
        fail(r, -ENOMEM);
        return NULL;
    }
    v->type = type;
    return v;
}

static bool match(struct reader *r, const char *word)
{
    size_t n = strlen(word);
    if (r->len - r->pos < n || memcmp(r->s + r->pos, word, n) != 0)
        return false;
    r->pos += n;
    return true;
}

static int hex4(struct reader *r, unsigned *out)
{
    unsigned v = 0;
    if (r->len - r->pos < 4)
        return fail(r, -EINVAL);
    for (int i = 0; i < 4; i++) {
        char c = r->s[r->pos + (size_t)i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return fail(r, -EINVAL);
    }
    r->pos += 4;
    *out = v;
    return 0;
}

static size_t put_utf8(char *dst, unsigned cp)
{
    if (cp < 0x80) {
        dst[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        dst[0] = (char)(0xc0 | (cp >> 6));
        dst[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        dst[0] = (char)(0xe0 | (cp >> 12));
        dst[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        dst[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    dst[0] = (char)(0xf0 | (cp >> 18));
    dst[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    dst[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    dst[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Reads a string literal at r->pos (the opening quote). The decoded form is never longer than the
 * literal (an escape of 6 or 12 bytes yields at most 4), so one allocation of the literal's size
 * suffices. */
static char *read_string(struct reader *r, size_t *len_out)
{
    size_t start = ++r->pos, end = start;
    while (end < r->len && r->s[end] != '"') {
        if (r->s[end] == '\\')
            end++;
        end++;
    }
    if (end >= r->len) {
        r->pos = r->len;
        fail(r, -EINVAL);
        return NULL;
    }
    char *out = malloc(end - start + 1);
    if (!out) {
        fail(r, -ENOMEM);
        return NULL;
    }
    size_t o = 0;
    while (r->pos < end) {
        unsigned char c = (unsigned char)r->s[r->pos];
        if (c < 0x20)
            goto bad;
        if (c != '\\') {
            out[o++] = (char)c;
            r->pos++;
            continue;
        }
        r->pos++;
        char e = r->s[r->pos++];
        switch (e) {
        case '"': out[o++] = '"'; break;
        case '\\': out[o++] = '\\'; break;
        case '/': out[o++] = '/'; break;
        case 'b': out[o++] = '\b'; break;
        case 'f': out[o++] = '\f'; break;
        case 'n': out[o++] = '\n'; break;
        case 'r': out[o++] = '\r'; break;
        case 't': out[o++] = '\t'; break;
        case 'u': {
            unsigned cp, lo;
            if (hex4(r, &cp) < 0)
                goto bad;
            if (cp >= 0xdc00 && cp <= 0xdfff)
                goto bad; /* a low surrogate alone */
            if (cp >= 0xd800 && cp <= 0xdbff) {
                if (end - r->pos < 6 || r->s[r->pos] != '\\' || r->s[r->pos + 1] != 'u')
                    goto bad;
                r->pos += 2;
                if (hex4(r, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff)
                    goto bad;
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            if (cp == 0)
                goto bad;
            o += put_utf8(out + o, cp);
            break;
        }
        default:
            goto bad;
        }
        if (r->pos > end)
            goto bad;
    }
    r->pos = end + 1;
    out[o] = '\0';
    *len_out = o;
    return out;
bad:
    free(out);
    fail(r, -EINVAL);
    return NULL;
}

static struct voro_json *read_number(struct reader *r)
{
    size_t start = r->pos;
    bool integral = true;
    if (r->pos < r->len && r->s[r->pos] == '-')
        r->pos++;
    if (r->pos >= r->len)
        goto bad;
    if (r->s[r->pos] == '0') {
        r->pos++;
    } else if (r->s[r->pos] >= '1' && r->s[r->pos] <= '9') {
        while (r->pos < r->len && r->s[r->pos] >= '0' && r->s[r->pos] <= '9')
            r->pos++;
    } else {
        goto bad;
    }
    if (r->pos < r->len && r->s[r->pos] == '.') {
        integral = false;
        r->pos++;
        size_t d = r->pos;
        while (r->pos < r->len && r->s[r->pos] >= '0' && r->s[r->pos] <= '9')
            r->pos++;
        if (r->pos == d)
            goto bad;
    }
    if (r->pos < r->len && (r->s[r->pos] == 'e' || r->s[r->pos] == 'E')) {
        integral = false;
        r->pos++;
        if (r->pos < r->len && (r->s[r->pos] == '+' || r->s[r->pos] == '-'))
            r->pos++;
        size_t d = r->pos;
        while (r->pos < r->len && r->s[r->pos] >= '0' && r->s[r->pos] <= '9')
            r->pos++;
        if (r->pos == d)
            goto bad;
    }
    /* strtod needs a NUL-terminated copy; longer numbers than this carry no useful precision */
    char buf[128];
    size_t n = r->pos - start;
    if (n >= sizeof(buf))
        goto bad;
    memcpy(buf, r->s + start, n);
    buf[n] = '\0';
    struct voro_json *v = new_node(r, VORO_JSON_NUMBER);
    if (!v)
        return NULL;
    v->number = strtod(buf, NULL);
    if (integral) {
        errno = 0;
        long long ll = strtoll(buf, NULL, 10);
        if (errno == 0) {
            v->is_integer = true;
            v->integer = ll;
        }
    }
    return v;
bad:
    fail(r, -EINVAL);
    return NULL;
}

static struct voro_json *read_value(struct reader *r, int depth);

static int push_item(struct reader *r, struct voro_json *c, struct voro_json *item, char *key, size_t *cap)
{
    if (c->n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 4;
        struct voro_json **items = realloc(c->items, ncap * sizeof(*items));
        if (!items)
            return fail(r, -ENOMEM);
        c->items = items;
        if (c->type == VORO_JSON_OBJECT) {
            char **keys = realloc(c->keys, ncap * sizeof(*keys));
            if (!keys)
                return fail(r, -ENOMEM);
            c->keys = keys;
        }
        *cap = ncap;
    }
    c->items[c->n] = item;
    if (c->type == VORO_JSON_OBJECT)
        c->keys[c->n] = key;
    c->n++;
    return 0;
}

static struct voro_json *read_container(struct reader *r, int depth, bool object)
{
    char close = object ? '}' : ']';
    size_t cap = 0;
    struct voro_json *c = new_node(r, object ? VORO_JSON_OBJECT : VORO_JSON_ARRAY);
    if (!c)
        return NULL;
    r->pos++;
    skip_ws(r);
    if (r->pos < r->len && r->s[r->pos] == close) {
        r->pos++;
        return c;
    }
    for (;;) {
        char *key = NULL;
        skip_ws(r);
        if (object) {
            size_t klen;
            if (r->pos >= r->len || r->s[r->pos] != '"') {
                fail(r, -EINVAL);
                goto err;
            }
            key = read_string(r, &klen);
            if (!key)
                goto err;
            skip_ws(r);
            if (r->pos >= r->len || r->s[r->pos] != ':') {
                free(key);
                fail(r, -EINVAL);
                goto err;
            }
            r->pos++;
        }
        struct voro_json *item = read_value(r, depth + 1);
        if (!item) {
            free(key);
            goto err;
        }
        if (push_item(r, c, item, key, &cap) < 0) {
            free(key);
            voro_json_free(item);
            goto err;
        }
        skip_ws(r);
        if (r->pos < r->len && r->s[r->pos] == ',') {
            r->pos++;
            continue;
        }
        if (r->pos < r->len && r->s[r->pos] == close) {
            r->pos++;
            return c;
        }
        fail(r, -EINVAL);
        goto err;
    }
err:
    voro_json_free(c);
    return NULL;
}

static struct voro_json *read_value(struct reader *r, int depth)
{
    if (depth > VORO_JSON_MAX_DEPTH) {
        fail(r, -E2BIG);
        return NULL;
    }
    skip_ws(r);
    if (r->pos >= r->len) {
        fail(r, -EINVAL);
        return NULL;
    }
    char c = r->s[r->pos];
    struct voro_json *v;
    switch (c) {
    case '{':
        return read_container(r, depth, true);
    case '[':
        return read_container(r, depth, false);
    case '"': {
        size_t len;
        char *s = read_string(r, &len);
        if (!s)
            return NULL;
        v = new_node(r, VORO_JSON_STRING);
        if (!v) {
            free(s);
            return NULL;
        }
        v->str = s;
        v->str_len = len;
        return v;
    }
    case 't':
    case 'f':
        if (!match(r, c == 't' ? "true" : "false"))
            break;
        v = new_node(r, VORO_JSON_BOOL);
        if (v)
            v->boolean = c == 't';
        return v;
    case 'n':
        if (!match(r, "null"))
            break;
        return new_node(r, VORO_JSON_NULL);
    default:
        if (c == '-' || (c >= '0' && c <= '9'))
            return read_number(r);
        break;
    }
    fail(r, -EINVAL);
    return NULL;
}

int voro_json_parse(const char *text, size_t len, struct voro_json **out, size_t *err_off)
{
    struct reader r = {.s = text, .len = len, .pos = 0, .err = 0};
    *out = NULL;
    if (err_off)
        *err_off = 0;
    if (len > VORO_JSON_MAX_INPUT)
        return -E2BIG;
    struct voro_json *v = read_value(&r, 1);
    if (v) {
        skip_ws(&r);
        if (r.pos != r.len) {
            fail(&r, -EINVAL);
            voro_json_free(v);
            v = NULL;
        }
    }
    if (!v) {
        if (err_off)
            *err_off = r.pos;
        return r.err ? r.err : -EINVAL;
    }
    *out = v;
    return 0;
}

void voro_json_free(struct voro_json *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->n; i++) {
        voro_json_free(v->items[i]);
        if (v->keys)
            free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->str);
    free(v);
}

const struct voro_json *voro_json_get(const struct voro_json *obj, const char *key)
{
    if (!obj || obj->type != VORO_JSON_OBJECT)
        return NULL;
    for (size_t i = 0; i < obj->n; i++)
        if (strcmp(obj->keys[i], key) == 0)
            return obj->items[i];
    return NULL;
}

const struct voro_json *voro_json_item(const struct voro_json *v, size_t i)
{
    if (!v || (v->type != VORO_JSON_ARRAY && v->type != VORO_JSON_OBJECT) || i >= v->n)
        return NULL;
    return v->items[i];
}

size_t voro_json_count(const struct voro_json *v)
{
    if (!v || (v->type != VORO_JSON_ARRAY && v->type != VORO_JSON_OBJECT))
        return 0;
    return v->n;
}

const char *voro_json_string(const struct voro_json *v)
{
    return v && v->type == VORO_JSON_STRING ? v->str : NULL;
}

int voro_json_int(const struct voro_json *v, int64_t *out)
{
    if (!v || v->type != VORO_JSON_NUMBER || !v->is_integer)
        return -EINVAL;
    *out = v->integer;
    return 0;
}

bool voro_json_true(const struct voro_json *v)
{
    return v && v->type == VORO_JSON_BOOL && v->boolean;
}

bool voro_json_is_null(const struct voro_json *v)
{
    return !v || v->type == VORO_JSON_NULL;
}
