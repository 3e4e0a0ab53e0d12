/* libFuzzer target: arbitrary bytes through the Raft command decoder; whatever decodes must
 * re-encode and decode to the same command (the FSM relies on that to never misread). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/cluster_cmd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct voro_cmd cmd, again;
    if (voro_cmd_decode(data, size, &cmd) != 0)
        return 0;
    void *out = NULL;
    size_t out_len = 0;
    if (voro_cmd_encode(&cmd, &out, &out_len) != 0)
        abort(); /* decoded means valid: it must encode */
    if (voro_cmd_decode(out, out_len, &again) != 0)
        abort();
    void *out2 = NULL;
    size_t out2_len = 0;
    if (voro_cmd_encode(&again, &out2, &out2_len) != 0 || out2_len != out_len || memcmp(out, out2, out_len) != 0)
        abort(); /* a stable round trip */
    free(out);
    free(out2);
    return 0;
}
