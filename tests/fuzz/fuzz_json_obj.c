/* libFuzzer target: cluster API request bodies through the flat-object JSON reader
 * (cluster/json_obj.c): invariants of what it returns, the typed getters, a rebuild-and-reparse
 * round trip, and a differential check against the tree reader (cluster/json_value.c) on
 * what is and is not a JSON object.
 *
 * Seeds: corpus_json_obj/ holds the bodies vorocluster and the integration tests send to every
 * POST endpoint of docs/cluster-api.md (join, join-via, leave, config push and rollback,
 * node-active, backends, drain); json_obj.seeds adds the OpenAI bodies of tests/fixtures. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Both readers name their type enum voro_json_type: the tree reader's names are moved aside. */
#define voro_json_type voro_jv_type
#define VORO_JSON_NULL VORO_JV_NULL
#define VORO_JSON_BOOL VORO_JV_BOOL
#define VORO_JSON_NUMBER VORO_JV_NUMBER
#define VORO_JSON_STRING VORO_JV_STRING
#define VORO_JSON_ARRAY VORO_JV_ARRAY
#define VORO_JSON_OBJECT VORO_JV_OBJECT
#include "cluster/json_value.h"
#undef voro_json_type
#undef VORO_JSON_NULL
#undef VORO_JSON_BOOL
#undef VORO_JSON_NUMBER
#undef VORO_JSON_STRING
#undef VORO_JSON_ARRAY
#undef VORO_JSON_OBJECT
#include "cluster/json_obj.h"

#define OBJ_MAX_DEPTH 16 /* json_obj.h: nesting depth of member values */

static void check(int cond)
{
    if (!cond)
        abort();
}

static bool inside(const char *p, size_t n, const char *buf, size_t len)
{
    return p >= buf && p + n <= buf + len;
}

/* The tree reader refuses numbers of 128 characters or more (no useful precision beyond). */
static bool long_number(const char *buf, size_t len)
{
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        run = strchr("0123456789.eE+-", buf[i]) && buf[i] ? run + 1 : 0;
        if (run >= 128)
            return true;
    }
    return false;
}

/* Deepest container level under v (v itself at `level`). */
static int depth_of(const struct voro_json *v, int level)
{
    int d = level;
    for (size_t i = 0; i < voro_json_count(v); i++) {
        const struct voro_json *c = voro_json_item(v, i);
        if (c->type == VORO_JV_ARRAY || c->type == VORO_JV_OBJECT) {
            int cd = depth_of(c, level + 1);
            d = cd > d ? cd : d;
        }
    }
    return d;
}

static void check_member(const struct voro_json_obj *o, const struct voro_json_member *m, const char *buf,
                         size_t len)
{
    check(m->key_len < len && inside(m->key, m->key_len, buf, len) && m->key[-1] == '"' && m->key[m->key_len] == '"');
    check(m->val_len > 0 || m->type == VORO_JSON_STRING);
    check(inside(m->val, m->val_len, buf, len));
    switch (m->type) {
    case VORO_JSON_STRING:
        check(m->val[-1] == '"' && m->val[m->val_len] == '"');
        break;
    case VORO_JSON_NUMBER:
        check(m->val[0] == '-' || (m->val[0] >= '0' && m->val[0] <= '9'));
        break;
    case VORO_JSON_BOOL:
        check((m->val_len == 4 && !memcmp(m->val, "true", 4)) || (m->val_len == 5 && !memcmp(m->val, "false", 5)));
        break;
    case VORO_JSON_NULL:
        check(m->val_len == 4 && !memcmp(m->val, "null", 4));
        break;
    case VORO_JSON_OTHER:
        check((m->val[0] == '{' && m->val[m->val_len - 1] == '}') || (m->val[0] == '[' && m->val[m->val_len - 1] == ']'));
        break;
    default:
        check(0);
    }

    /* The getters look keys up as C strings: only keys without NUL and escapes are reachable. */
    if (memchr(m->key, '\0', m->key_len) || memchr(m->key, '\\', m->key_len) || m->key_len > 255)
        return;
    char key[256];
    memcpy(key, m->key, m->key_len);
    key[m->key_len] = '\0';

    char *s = NULL;
    size_t n = 0;
    int rc = voro_json_get_string_alloc(o, key, &s, &n);
    if (m->type != VORO_JSON_STRING) {
        check(rc == -EINVAL);
    } else {
        check(rc == 0 || rc == -EINVAL);
        if (rc == 0) {
            check(s != NULL && n <= m->val_len && strlen(s) == n);
            check(memchr(m->val, '\\', m->val_len) || (n == m->val_len && !memcmp(s, m->val, n)));
            /* the fixed-size getter agrees: exactly n + 1 bytes fit, n do not */
            char *fixed = malloc(n + 1);
            check(fixed != NULL);
            check(voro_json_get_string(o, key, fixed, n + 1) == 0 && !memcmp(fixed, s, n + 1));
            check(voro_json_get_string(o, key, fixed, n) == -EMSGSIZE);
            free(fixed);
            free(s);
        } else {
            char one[1];
            check(voro_json_get_string(o, key, one, sizeof one) == -EINVAL);
        }
    }

    uint64_t u = 0;
    rc = voro_json_get_u64(o, key, &u);
    bool digits = m->type == VORO_JSON_NUMBER && m->val_len <= 20;
    for (size_t i = 0; digits && i < m->val_len; i++)
        digits = m->val[i] >= '0' && m->val[i] <= '9';
    if (!digits) {
        check(rc == -EINVAL);
    } else {
        char tmp[24];
        memcpy(tmp, m->val, m->val_len);
        tmp[m->val_len] = '\0';
        errno = 0;
        unsigned long long want = strtoull(tmp, NULL, 10);
        check(errno == ERANGE ? rc == -EINVAL : (rc == 0 && u == want));
    }
}

/* Writes {"k":v,...} from the members' raw texts: it must parse to the same members. */
static void check_rebuild(const struct voro_json_obj *o)
{
    size_t cap = 2;
    for (size_t i = 0; i < o->n; i++)
        cap += o->m[i].key_len + o->m[i].val_len + 8;
    char *buf = malloc(cap);
    check(buf != NULL);
    size_t len = 0;
    buf[len++] = '{';
    for (size_t i = 0; i < o->n; i++) {
        const struct voro_json_member *m = &o->m[i];
        if (i)
            buf[len++] = ',';
        buf[len++] = '"';
        memcpy(buf + len, m->key, m->key_len);
        len += m->key_len;
        buf[len++] = '"';
        buf[len++] = ':';
        if (m->type == VORO_JSON_STRING)
            buf[len++] = '"';
        memcpy(buf + len, m->val, m->val_len);
        len += m->val_len;
        if (m->type == VORO_JSON_STRING)
            buf[len++] = '"';
    }
    buf[len++] = '}';
    check(len <= cap);
    static struct voro_json_obj again;
    check(voro_json_parse_object(buf, len, &again) == 0 && again.n == o->n);
    for (size_t i = 0; i < o->n; i++) {
        const struct voro_json_member *a = &o->m[i], *b = &again.m[i];
        check(a->type == b->type && a->key_len == b->key_len && !memcmp(a->key, b->key, a->key_len) &&
              a->val_len == b->val_len && !memcmp(a->val, b->val, a->val_len));
    }
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a private copy, so ASan sees any read past the end */
    char *buf = malloc(size ? size : 1);
    check(buf != NULL);
    memcpy(buf, data, size);
    static struct voro_json_obj o;
    int rc = voro_json_parse_object(buf, size, &o);
    check(rc == 0 || rc == -EINVAL);

    if (rc == 0) {
        check(o.n <= VORO_JSON_MAX_MEMBERS);
        for (size_t i = 0; i < o.n; i++) {
            check_member(&o, &o.m[i], buf, size);
            for (size_t j = 0; j < i; j++)
                check(o.m[i].key_len != o.m[j].key_len || memcmp(o.m[i].key, o.m[j].key, o.m[i].key_len) != 0);
        }
        uint64_t none;
        check(voro_json_get_u64(&o, "no\x01such key", &none) == -ENOENT); /* raw control bytes never make a key */
        check_rebuild(&o);
        /* every cut before the closing brace is refused */
        size_t close = size;
        while (close && buf[close - 1] != '}')
            close--;
        static struct voro_json_obj cut;
        check(close > 0 && voro_json_parse_object(buf, close - 1, &cut) == -EINVAL);
        if (size / 2 < close)
            check(voro_json_parse_object(buf, size / 2, &cut) == -EINVAL);
    }

    /* The grammar is the tree reader's, less what the flat reader refuses on purpose. Escapes
     * are validated syntactically only here (a "\u0000" or lone surrogate fails in the getter),
     * so inputs with "\u" are compared in one direction. */
    struct voro_json *tree = NULL;
    int trc = voro_json_parse(buf, size, &tree, NULL);
    bool has_u = false;
    for (size_t i = 0; i + 1 < size && !has_u; i++)
        has_u = buf[i] == '\\' && buf[i + 1] == 'u';
    if (rc == 0 && !has_u && !long_number(buf, size))
        check(trc == 0 && tree->type == VORO_JV_OBJECT && tree->n == o.n);
    if (trc == 0 && tree->type == VORO_JV_OBJECT && !memchr(buf, '\\', size)) {
        bool distinct = true;
        for (size_t i = 0; i < tree->n && distinct; i++)
            for (size_t j = 0; j < i && distinct; j++)
                distinct = strcmp(tree->keys[i], tree->keys[j]) != 0;
        bool fits = distinct && tree->n <= VORO_JSON_MAX_MEMBERS && depth_of(tree, 0) <= OBJ_MAX_DEPTH;
        check(fits == (rc == 0));
    }
    voro_json_free(tree);
    free(buf);
    return 0;
}
