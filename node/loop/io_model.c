/* Names of the event-loop backends, for config, flags and /stats. */
#include "node/loop/loop.h"

#include <errno.h>
#include <string.h>

static const char *const g_io_model_names[VORO_IO_MODEL_COUNT] = {"io_uring", "epoll", "poll", "select"};

const char *voro_io_model_name(enum voro_io_model model)
{
    return (unsigned)model < VORO_IO_MODEL_COUNT ? g_io_model_names[model] : "unknown";
}

int voro_io_model_parse(const char *name, enum voro_io_model *out)
{
    for (int i = 0; i < VORO_IO_MODEL_COUNT; i++) {
        if (strcmp(name, g_io_model_names[i]) == 0) {
            *out = (enum voro_io_model)i;
            return 0;
        }
    }
    return -EINVAL;
}
