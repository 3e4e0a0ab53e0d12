/* libFuzzer target: backends' GET /v1/models answers through the model-id scanner
 * (cluster/model_list.c): bounds and truncation, and for answers that are valid JSON, the ids
 * must be exactly those the tree reader (cluster/json_value.c) finds at data[*].id.
 *
 * Seeds: corpus_model_list/ holds answers in the shapes engines send (the OpenAI API reference's
 * example, vLLM with its nested "permission" ids, SGLang, TGI, an empty list, an error body,
 * escapes); model_list.seeds adds tests/fixtures (vllm-router-models.json, a real answer). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/json_value.h"
#include "cluster/model_list.h"

static void check(int cond)
{
    if (!cond)
        abort();
}

/* The ids a strict reader finds: every string "id" member of every object directly in the
 * top-level "data" array(s), non-empty and short enough to keep. */
static size_t expected_ids(const struct voro_json *top, const char *want[], size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < top->n; i++) {
        const struct voro_json *data = top->items[i];
        if (strcmp(top->keys[i], "data") != 0 || data->type != VORO_JSON_ARRAY)
            continue;
        for (size_t j = 0; j < data->n; j++) {
            const struct voro_json *m = data->items[j];
            if (m->type != VORO_JSON_OBJECT)
                continue;
            for (size_t k = 0; k < m->n; k++) {
                const struct voro_json *id = m->items[k];
                if (strcmp(m->keys[k], "id") == 0 && id->type == VORO_JSON_STRING && id->str_len > 0 &&
                    id->str_len < VORO_MODEL_ID_MAX) {
                    if (n < max)
                        want[n] = id->str;
                    n++;
                }
            }
        }
    }
    return n;
}

/* Levels of nested containers, a top-level container being level 1. */
static int levels(const struct voro_json *v)
{
    if (v->type != VORO_JSON_ARRAY && v->type != VORO_JSON_OBJECT)
        return 0;
    int d = 0;
    for (size_t i = 0; i < voro_json_count(v); i++) {
        int c = levels(v->items[i]);
        d = c > d ? c : d;
    }
    return 1 + d;
}

static bool has_data_array(const struct voro_json *top)
{
    for (size_t i = 0; i < top->n; i++)
        if (strcmp(top->keys[i], "data") == 0 && top->items[i]->type == VORO_JSON_ARRAY)
            return true;
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char ids[VORO_MODEL_LIST_MAX][VORO_MODEL_ID_MAX];
    /* a private copy, so ASan sees any read past the end */
    char *text = malloc(size ? size : 1);
    check(text != NULL);
    memcpy(text, data, size);

    /* the cap comes from the input, so truncation is exercised with few ids */
    size_t max = size ? (size_t)data[0] % (VORO_MODEL_LIST_MAX + 1) : VORO_MODEL_LIST_MAX;
    size_t n = 0;
    int truncated = -1;
    memset(ids, 0xa5, sizeof ids);
    int rc = voro_model_list_parse(text, size, ids, max, &n, &truncated);
    check(rc == 0 || rc == -EINVAL);
    check(truncated == 0 || truncated == 1);
    if (rc == 0) {
        check(n <= max);
        check(!truncated || n == max);
        for (size_t i = 0; i < n; i++) {
            const char *nul = memchr(ids[i], '\0', VORO_MODEL_ID_MAX);
            check(nul != NULL && nul != ids[i]);
        }
        for (size_t i = n; i < VORO_MODEL_LIST_MAX; i++)
            check((unsigned char)ids[i][0] == 0xa5); /* nothing written beyond *n */
        /* the same answer with the full cap: a prefix relation */
        static char all[VORO_MODEL_LIST_MAX][VORO_MODEL_ID_MAX];
        size_t n_all = 0;
        int trunc_all = 0;
        check(voro_model_list_parse(text, size, all, VORO_MODEL_LIST_MAX, &n_all, &trunc_all) == 0);
        check(n_all >= n && (truncated == (n_all > n || trunc_all)));
        for (size_t i = 0; i < n; i++)
            check(strcmp(all[i], ids[i]) == 0);
        size_t n_null;
        check(voro_model_list_parse(text, size, all, max, &n_null, NULL) == 0 && n_null == n);
    }

    /* Differential: on valid JSON the scanner must agree with a strict reader. It skips ids
     * written with \u escapes (not decoded), which the strict reader cannot tell apart, and
 * refuses nesting beyond 32 levels. */
    struct voro_json *tree = NULL;
    bool has_u = false;
    for (size_t i = 0; i + 1 < size && !has_u; i++)
        has_u = text[i] == '\\' && text[i + 1] == 'u';
    if (!has_u && voro_json_parse(text, size, &tree, NULL) == 0 && levels(tree) <= 32 /* model_list.h */) {
        bool listy = tree->type == VORO_JSON_OBJECT && has_data_array(tree);
        check(listy == (rc == 0));
        if (listy) {
            const char *want[VORO_MODEL_LIST_MAX];
            size_t n_want = expected_ids(tree, want, max);
            check(n == (n_want < max ? n_want : max));
            check(truncated == (n_want > max));
            for (size_t i = 0; i < n; i++)
                check(strcmp(ids[i], want[i]) == 0);
        }
    }
    voro_json_free(tree);
    free(text);
    return 0;
}
