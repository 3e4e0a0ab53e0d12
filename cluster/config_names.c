/* Printable names of config enums (algorithms, listener modes), shared by parser, /stats and docs. */
#include "cluster/config.h"

static const char *const g_lb_names[VORO_LB_ALGORITHM_COUNT] = {
    "round_robin", "least_connections", "consistent_hash", "power_of_two", "ewma", "queue_length", "gpu_aware",
};

const char *voro_lb_algorithm_name(enum voro_lb_algorithm algo)
{
    return (unsigned)algo < VORO_LB_ALGORITHM_COUNT ? g_lb_names[algo] : "unknown";
}

const char *voro_listener_mode_name(enum voro_listener_mode mode)
{
    switch (mode) {
    case VORO_MODE_TCP: return "tcp";
    case VORO_MODE_UDP: return "udp";
    case VORO_MODE_HTTP: return "http";
    }
    return "unknown";
}
