/* libFuzzer target: arbitrary bytes through the bounded JSON reader used by vorocluster, checking the tree's invariants. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/json_value.h"

static void check(int cond)
{
    if (!cond)
        abort();
}

static void walk(const struct voro_json *v, int depth)
{
    check(depth <= VORO_JSON_MAX_DEPTH);
    switch (v->type) {
    case VORO_JSON_STRING:
        check(v->str != NULL && strlen(v->str) == v->str_len); /* "\u0000" is refused: no embedded NUL */
        break;
    case VORO_JSON_ARRAY:
    case VORO_JSON_OBJECT:
        check(voro_json_count(v) == v->n);
        for (size_t i = 0; i < v->n; i++) {
            check(voro_json_item(v, i) == v->items[i]);
            if (v->type == VORO_JSON_OBJECT)
                check(voro_json_get(v, v->keys[i]) != NULL);
            walk(v->items[i], depth + 1);
        }
        check(voro_json_item(v, v->n) == NULL);
        break;
    case VORO_JSON_NUMBER: {
        int64_t x;
        check((voro_json_int(v, &x) == 0) == v->is_integer);
        break;
    }
    default:
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct voro_json *v = NULL;
    size_t off = 0;
    int rc = voro_json_parse((const char *)data, size, &v, &off);
    if (rc == 0) {
        check(v != NULL);
        walk(v, 1);
        voro_json_free(v);
    } else {
        check(v == NULL && (rc == -EINVAL || rc == -E2BIG) && off <= size);
    }
    return 0;
}
