/* The model ids of an OpenAI-style GET /v1/models answer: a tiny bounded JSON scan, no malloc. */
#ifndef VORO_CLUSTER_MODEL_LIST_H
#define VORO_CLUSTER_MODEL_LIST_H

#include <stddef.h>

#define VORO_MODEL_LIST_MAX 64     /* ids kept per answer */
#define VORO_MODEL_ID_MAX 128      /* bytes per id, NUL included; longer ids are skipped */

/* Reads {"object":"list","data":[{"id":"m1",...},{"id":"m2",...}]}: the "id" string of every
 * object directly inside the top-level "data" array (nested ids such as vLLM's
 * "permission":[{"id":...}] are ignored). Simple escapes (\" \\ \/) are decoded. Stops at
 * VORO_MODEL_LIST_MAX ids (then *truncated is set, if given). Returns 0 with *n ids, or -EINVAL
 * when the text is not a JSON object with a "data" array, or nesting exceeds 32 levels. */
int voro_model_list_parse(const char *text, size_t len, char ids[][VORO_MODEL_ID_MAX], size_t max, size_t *n,
                          int *truncated);

#endif
