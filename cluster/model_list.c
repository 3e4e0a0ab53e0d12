/* Bounded scan of a /v1/models answer for the ids of the top-level "data" array's objects. */
#include "cluster/model_list.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#define MAX_DEPTH 32
#define KEY_MAX 8 /* only "data" and "id" matter: longer keys are stored as "" */

/* Scans a string starting after its opening quote; copies the decoded text into out (when it
 * fits in size - 1 bytes, else *fits = false). Returns the index after the closing quote, or 0. */
static size_t scan_string(const char *t, size_t len, size_t i, char *out, size_t size, bool *fits)
{
    size_t o = 0;
    *fits = true;
    while (i < len) {
        char c = t[i++];
        if (c == '"') {
            if (size)
                out[o < size ? o : size - 1] = '\0';
            return i;
        }
        if (c == '\\') {
            if (i >= len)
                return 0;
            char e = t[i++];
            if (e == 'u') {
                i += 4; /* ids with \u escapes are not ours to decode: mark as unusable */
                *fits = false;
                continue;
            }
            c = (e == 'n') ? '\n' : (e == 't') ? '\t' : (e == 'r') ? '\r' : (e == 'b') ? '\b' : (e == 'f') ? '\f' : e;
        }
        if (o + 1 < size)
            out[o++] = c;
        else
            *fits = false;
    }
    return 0;
}

int voro_model_list_parse(const char *text, size_t len, char ids[][VORO_MODEL_ID_MAX], size_t max, size_t *n,
                          int *truncated)
{
    char stack[MAX_DEPTH];        /* '{' or '[' per level */
    char keys[MAX_DEPTH][KEY_MAX]; /* the current key of each object level */
    size_t depth = 0;
    bool expect_key = false, saw_data = false;
    *n = 0;
    if (truncated)
        *truncated = 0;
    for (size_t i = 0; i < len;) {
        char c = text[i];
        if (c == '{' || c == '[') {
            if (depth >= MAX_DEPTH)
                return -EINVAL;
            if (depth == 0 && c != '{')
                return -EINVAL;
            if (depth == 1 && c == '[' && strcmp(keys[0], "data") == 0)
                saw_data = true;
            stack[depth] = c;
            keys[depth][0] = '\0';
            depth++;
            expect_key = c == '{';
            i++;
        } else if (c == '}' || c == ']') {
            if (depth == 0 || stack[depth - 1] != (c == '}' ? '{' : '['))
                return -EINVAL;
            depth--;
            expect_key = false;
            i++;
            if (depth == 0)
                break;
        } else if (c == ',') {
            expect_key = depth > 0 && stack[depth - 1] == '{';
            i++;
        } else if (c == ':') {
            expect_key = false;
            i++;
        } else if (c == '"') {
            if (depth == 0)
                return -EINVAL;
            char buf[VORO_MODEL_ID_MAX];
            bool fits;
            size_t next = scan_string(text, len, i + 1, buf, sizeof(buf), &fits);
            if (!next)
                return -EINVAL;
            if (expect_key && stack[depth - 1] == '{') {
                if (fits && strlen(buf) < KEY_MAX)
                    strcpy(keys[depth - 1], buf);
                else
                    keys[depth - 1][0] = '\0';
            } else if (depth == 3 && stack[1] == '[' && stack[2] == '{' && strcmp(keys[0], "data") == 0 &&
                       strcmp(keys[2], "id") == 0 && fits && buf[0]) {
                if (*n < max)
                    memcpy(ids[(*n)++], buf, strlen(buf) + 1);
                else if (truncated)
                    *truncated = 1;
            }
            i = next;
        } else {
            i++;
        }
    }
    if (depth != 0 || !saw_data)
        return -EINVAL;
    return 0;
}
