/* The access-log filter: one structured line per request ([http] access_log = on), written
 * with a single write(2) when the request ends. Off by default: it is the one per-request log. */
#include <inttypes.h>

#include "common/log.h"
#include "node/http/http_filter.h"

static void access_log(const struct voro_http_exchange *x)
{
    if (!x->cfg->http.access_log)
        return;
    const char *server = "-";
    if (x->server >= 0 && x->routed)
        server = x->cfg->pools[x->pool].servers[x->server].name;
    uint64_t total = x->end_us > x->start_us ? x->end_us - x->start_us : 0;
    uint64_t ttfb = x->first_byte_us > x->start_us ? x->first_byte_us - x->start_us : 0;
    voro_log(VORO_LOG_INFO, "access",
             "client=%s method=%s path=%s status=%d route=%s pool=%s server=%s model=%s bytes_in=%" PRIu64
             " bytes_out=%" PRIu64 " ttfb_us=%" PRIu64 " total_us=%" PRIu64 "%s",
             x->client_ip, x->method, x->path, x->status, x->route >= 0 ? x->cfg->routes[x->route].name : "-",
             x->routed ? x->cfg->pools[x->pool].name : "-", server, x->model[0] ? x->model : "-", x->bytes_in,
             x->bytes_out, ttfb, total, x->local_reply ? " local=1" : "");
}

const struct voro_http_filter voro_filter_access_log = {
    .name = "access_log",
    .on_log = access_log,
};
