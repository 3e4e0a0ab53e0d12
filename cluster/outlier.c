/* Passive outlier ejection: failure streaks, exponential ejection times, the pool-wide cap. */
#include "cluster/outlier.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int voro_outlier_init(struct voro_outlier *o, size_t n, uint32_t consecutive, uint32_t base_ms, uint32_t max_percent)
{
    memset(o, 0, sizeof(*o));
    o->consecutive = consecutive;
    o->base_ms = base_ms ? base_ms : 10000;
    o->max_percent = max_percent > 100 ? 100 : max_percent;
    o->n = n;
    if (n && !(o->s = calloc(n, sizeof(*o->s))))
        return -ENOMEM;
    return 0;
}

void voro_outlier_destroy(struct voro_outlier *o)
{
    free(o->s);
    o->s = NULL;
    o->n = o->n_ejected = 0;
}

size_t voro_outlier_max_ejected(const struct voro_outlier *o) { return o->n * o->max_percent / 100; }

bool voro_outlier_failure(struct voro_outlier *o, size_t server, uint64_t now_ms, uint64_t *eject_ms)
{
    if (!o->consecutive || server >= o->n)
        return false;
    struct voro_outlier_server *s = &o->s[server];
    if (s->ejected)
        return false; /* late reports of traffic sent before the ejection */
    if (s->streak < UINT32_MAX)
        s->streak++;
    if (s->streak < o->consecutive || o->n_ejected + 1 > voro_outlier_max_ejected(o))
        return false;
    if (s->times_ejected && s->back_ms && now_ms - s->back_ms >= VORO_OUTLIER_MAX_EJECT_MS)
        s->times_ejected = 0;
    uint64_t d = o->base_ms;
    for (uint32_t i = 0; i < s->times_ejected && d < VORO_OUTLIER_MAX_EJECT_MS; i++)
        d *= 2;
    if (d > VORO_OUTLIER_MAX_EJECT_MS)
        d = VORO_OUTLIER_MAX_EJECT_MS;
    if (s->times_ejected < 32)
        s->times_ejected++;
    s->ejected = true;
    s->until_ms = now_ms + d;
    s->last_eject_ms = d;
    s->streak = 0;
    o->n_ejected++;
    if (eject_ms)
        *eject_ms = d;
    return true;
}

void voro_outlier_success(struct voro_outlier *o, size_t server)
{
    if (server < o->n)
        o->s[server].streak = 0;
}

size_t voro_outlier_expire(struct voro_outlier *o, uint64_t now_ms, void (*cb)(void *ctx, size_t server), void *ctx)
{
    size_t k = 0;
    for (size_t i = 0; i < o->n && o->n_ejected; i++) {
        struct voro_outlier_server *s = &o->s[i];
        if (!s->ejected || now_ms < s->until_ms)
            continue;
        s->ejected = false;
        s->streak = 0;
        s->back_ms = now_ms ? now_ms : 1;
        o->n_ejected--;
        k++;
        if (cb)
            cb(ctx, i);
    }
    return k;
}

bool voro_outlier_is_ejected(const struct voro_outlier *o, size_t server) { return server < o->n && o->s[server].ejected; }
