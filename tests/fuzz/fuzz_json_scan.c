/* libFuzzer target: arbitrary bytes through the JSON model scanner, every prefix consistency,
 * and rewrite-then-rescan round trips. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/json_scan.h"

static void check(int cond)
{
    if (!cond)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a private copy, so ASan catches any read past the end */
    char *body = malloc(size ? size : 1);
    if (!body)
        return 0;
    memcpy(body, data, size);
    struct voro_slice sl = {0};
    int rc = voro_json_find_model(body, size, &sl);
    check(rc == 0 || rc == -ENOENT || rc == -EINVAL || rc == -E2BIG);

    /* a cut of a complete object is never a definite answer about the model */
    if (rc == 0 || rc == -ENOENT) {
        size_t close = size;
        while (close && body[close - 1] != '}')
            close--;
        check(close > 0);
        struct voro_slice s2;
        check(voro_json_find_model(body, close - 1, &s2) == -E2BIG);
        if (size / 2 < close)
            check(voro_json_find_model(body, size / 2, &s2) == -E2BIG);
    }

    if (rc == 0) {
        check(sl.off >= 1 && sl.off + sl.len < size);
        check(body[sl.off - 1] == '"' && body[sl.off + sl.len] == '"');
        check(!memchr(body + sl.off, '\\', sl.len));
        static const char *const names[] = {"", "llama", "a\"b\\c\n\x7f", "meta-llama/Llama-3.1-8B-Instruct"};
        const char *m = names[size % 4];
        size_t need = 0;
        check(voro_json_rewrite_model(body, size, &sl, m, NULL, 0, &need) == (need ? -ENOSPC : 0));
        char *out = malloc(need ? need : 1);
        if (out) {
            size_t n = 0;
            check(voro_json_rewrite_model(body, size, &sl, m, out, need, &n) == 0 && n == need);
            struct voro_slice s3;
            int rc3 = voro_json_find_model(out, n, &s3);
            if (strpbrk(m, "\"\\\n"))
                check(rc3 == -EINVAL); /* valid JSON, but an escaped model */
            else
                check(rc3 == 0 && s3.off == sl.off && s3.len == strlen(m) && !memcmp(out + s3.off, m, s3.len));
            free(out);
        }
    }
    free(body);
    return 0;
}
