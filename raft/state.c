/* The cluster state: sorted tables with deep copy, equality, lookups and mutators. */
#include "raft/state.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef int (*cmp_fn)(const void *a, const void *b);

/* Binary search in a sorted table; returns true if found. *pos is the match or the insertion
 * point. */
static bool tab_find(const void *arr, size_t n, size_t size, const void *key, cmp_fn cmp, size_t *pos)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = cmp(key, (const char *)arr + mid * size);
        if (c == 0) {
            *pos = mid;
            return true;
        }
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    *pos = lo;
    return false;
}

static int tab_put(void **arr, size_t *n, size_t size, size_t max, const void *elem, cmp_fn cmp)
{
    size_t pos;
    if (tab_find(*arr, *n, size, elem, cmp, &pos)) {
        memcpy((char *)*arr + pos * size, elem, size);
        return 0;
    }
    if (*n >= max)
        return -ENOSPC;
    void *grown = realloc(*arr, (*n + 1) * size);
    if (grown == NULL)
        return -ENOMEM;
    *arr = grown;
    char *base = grown;
    memmove(base + (pos + 1) * size, base + pos * size, (*n - pos) * size);
    memcpy(base + pos * size, elem, size);
    (*n)++;
    return 0;
}

static int tab_del(void *arr, size_t *n, size_t size, const void *key, cmp_fn cmp)
{
    size_t pos;
    if (!tab_find(arr, *n, size, key, cmp, &pos))
        return -ENOENT;
    char *base = arr;
    memmove(base + pos * size, base + (pos + 1) * size, (*n - pos - 1) * size);
    (*n)--;
    return 0;
}

static const void *tab_get(const void *arr, size_t n, size_t size, const void *key, cmp_fn cmp)
{
    size_t pos;
    return tab_find(arr, n, size, key, cmp, &pos) ? (const char *)arr + pos * size : NULL;
}

static int cmp_u64(uint64_t a, uint64_t b)
{
    return a < b ? -1 : a > b;
}

static int cmp_member(const void *a, const void *b)
{
    return cmp_u64(((const struct voro_member *)a)->id, ((const struct voro_member *)b)->id);
}

static int cmp_active(const void *a, const void *b)
{
    return cmp_u64(((const struct voro_node_active *)a)->node_id,
                   ((const struct voro_node_active *)b)->node_id);
}

static int cmp_backend(const void *a, const void *b)
{
    const struct voro_backend *x = a, *y = b;
    int c = strcmp(x->pool, y->pool);
    return c ? c : strcmp(x->address, y->address);
}

static int cmp_health(const void *a, const void *b)
{
    const struct voro_health_verdict *x = a, *y = b;
    int c = strcmp(x->pool, y->pool);
    return c ? c : strcmp(x->address, y->address);
}

static int cmp_lease(const void *a, const void *b)
{
    const struct voro_quota_lease *x = a, *y = b;
    int c = strcmp(x->limit_name, y->limit_name);
    return c ? c : cmp_u64(x->node_id, y->node_id);
}

/* Bounded copy of a key string; longer keys cannot be in the state, so truncation is harmless
 * for a lookup (the caller's own checks refuse them earlier). */
static void key_str(char dst[VORO_STATE_STR], const char *src)
{
    size_t n = strnlen(src, VORO_STATE_STR - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static void copy_str(char *dst, size_t size, const char *src)
{
    size_t n = strnlen(src, size - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

void voro_cluster_state_init(struct voro_cluster_state *s)
{
    memset(s, 0, sizeof *s);
}

static void config_version_free(struct voro_config_version *v)
{
    free(v->text);
    memset(v, 0, sizeof *v);
}

void voro_cluster_state_free(struct voro_cluster_state *s)
{
    config_version_free(&s->current);
    for (size_t i = 0; i < s->n_history; i++)
        config_version_free(&s->history[i]);
    free(s->members);
    free(s->actives);
    free(s->backends);
    free(s->health);
    free(s->leases);
    voro_cluster_state_init(s);
}

static int config_version_copy(struct voro_config_version *dst, const struct voro_config_version *src)
{
    *dst = *src;
    dst->text = NULL;
    if (src->text == NULL)
        return 0;
    dst->text = malloc(src->text_len + 1);
    if (dst->text == NULL)
        return -ENOMEM;
    memcpy(dst->text, src->text, src->text_len);
    dst->text[src->text_len] = '\0';
    return 0;
}

static int dup_array(void **dst, const void *src, size_t n, size_t size)
{
    *dst = NULL;
    if (n == 0)
        return 0;
    *dst = malloc(n * size);
    if (*dst == NULL)
        return -ENOMEM;
    memcpy(*dst, src, n * size);
    return 0;
}

int voro_cluster_state_copy(struct voro_cluster_state *dst, const struct voro_cluster_state *src)
{
    voro_cluster_state_init(dst);
    dst->last_version = src->last_version;
    if (config_version_copy(&dst->current, &src->current) < 0)
        goto fail;
    for (size_t i = 0; i < src->n_history; i++) {
        if (config_version_copy(&dst->history[i], &src->history[i]) < 0)
            goto fail;
        dst->n_history = i + 1;
    }
    if (dup_array((void **)&dst->members, src->members, src->n_members, sizeof *src->members) < 0)
        goto fail;
    dst->n_members = src->n_members;
    if (dup_array((void **)&dst->actives, src->actives, src->n_actives, sizeof *src->actives) < 0)
        goto fail;
    dst->n_actives = src->n_actives;
    if (dup_array((void **)&dst->backends, src->backends, src->n_backends, sizeof *src->backends) < 0)
        goto fail;
    dst->n_backends = src->n_backends;
    if (dup_array((void **)&dst->health, src->health, src->n_health, sizeof *src->health) < 0)
        goto fail;
    dst->n_health = src->n_health;
    if (dup_array((void **)&dst->leases, src->leases, src->n_leases, sizeof *src->leases) < 0)
        goto fail;
    dst->n_leases = src->n_leases;
    return 0;
fail:
    voro_cluster_state_free(dst);
    return -ENOMEM;
}

void voro_cluster_state_move(struct voro_cluster_state *dst, struct voro_cluster_state *src)
{
    voro_cluster_state_free(dst);
    *dst = *src;
    voro_cluster_state_init(src);
}

static bool config_version_equal(const struct voro_config_version *a, const struct voro_config_version *b)
{
    if (a->version != b->version || a->source_version != b->source_version ||
        a->time_ms != b->time_ms || a->text_len != b->text_len ||
        strcmp(a->hash, b->hash) != 0 || strcmp(a->author, b->author) != 0)
        return false;
    if (a->text_len == 0)
        return true;
    return a->text && b->text && memcmp(a->text, b->text, a->text_len) == 0;
}

static bool member_equal(const struct voro_member *a, const struct voro_member *b)
{
    return a->id == b->id && a->vip_priority == b->vip_priority && !strcmp(a->name, b->name) &&
           !strcmp(a->raft_address, b->raft_address) && !strcmp(a->admin_address, b->admin_address) &&
           !strcmp(a->data_address, b->data_address);
}

static bool active_equal(const struct voro_node_active *a, const struct voro_node_active *b)
{
    return a->node_id == b->node_id && a->version == b->version && a->ok == b->ok &&
           !strcmp(a->reason, b->reason);
}

static bool backend_equal(const struct voro_backend *a, const struct voro_backend *b)
{
    return !cmp_backend(a, b) && a->weight == b->weight && a->draining == b->draining;
}

static bool health_equal(const struct voro_health_verdict *a, const struct voro_health_verdict *b)
{
    return !cmp_health(a, b) && a->state == b->state && a->time_ms == b->time_ms &&
           !strcmp(a->reason, b->reason);
}

static bool lease_equal(const struct voro_quota_lease *a, const struct voro_quota_lease *b)
{
    return !cmp_lease(a, b) && a->share == b->share && a->expires_ms == b->expires_ms;
}

bool voro_cluster_state_equal(const struct voro_cluster_state *a, const struct voro_cluster_state *b)
{
    if (a->last_version != b->last_version || a->n_history != b->n_history ||
        a->n_members != b->n_members || a->n_actives != b->n_actives ||
        a->n_backends != b->n_backends || a->n_health != b->n_health || a->n_leases != b->n_leases)
        return false;
    if (!config_version_equal(&a->current, &b->current))
        return false;
    for (size_t i = 0; i < a->n_history; i++)
        if (!config_version_equal(&a->history[i], &b->history[i]))
            return false;
    for (size_t i = 0; i < a->n_members; i++)
        if (!member_equal(&a->members[i], &b->members[i]))
            return false;
    for (size_t i = 0; i < a->n_actives; i++)
        if (!active_equal(&a->actives[i], &b->actives[i]))
            return false;
    for (size_t i = 0; i < a->n_backends; i++)
        if (!backend_equal(&a->backends[i], &b->backends[i]))
            return false;
    for (size_t i = 0; i < a->n_health; i++)
        if (!health_equal(&a->health[i], &b->health[i]))
            return false;
    for (size_t i = 0; i < a->n_leases; i++)
        if (!lease_equal(&a->leases[i], &b->leases[i]))
            return false;
    return true;
}

const struct voro_config_version *voro_state_config(const struct voro_cluster_state *s, uint64_t version)
{
    if (version == 0)
        return NULL;
    if (s->current.version == version)
        return &s->current;
    for (size_t i = 0; i < s->n_history; i++)
        if (s->history[i].version == version)
            return &s->history[i];
    return NULL;
}

const struct voro_member *voro_state_member(const struct voro_cluster_state *s, uint64_t id)
{
    struct voro_member key = {.id = id};
    return tab_get(s->members, s->n_members, sizeof key, &key, cmp_member);
}

const struct voro_member *voro_state_member_by_raft_address(const struct voro_cluster_state *s,
                                                            const char *raft_address)
{
    for (size_t i = 0; i < s->n_members; i++)
        if (strcmp(s->members[i].raft_address, raft_address) == 0)
            return &s->members[i];
    return NULL;
}

const struct voro_node_active *voro_state_active(const struct voro_cluster_state *s, uint64_t node_id)
{
    struct voro_node_active key = {.node_id = node_id};
    return tab_get(s->actives, s->n_actives, sizeof key, &key, cmp_active);
}

const struct voro_backend *voro_state_backend(const struct voro_cluster_state *s, const char *pool,
                                              const char *address)
{
    struct voro_backend key;
    key_str(key.pool, pool);
    key_str(key.address, address);
    return tab_get(s->backends, s->n_backends, sizeof key, &key, cmp_backend);
}

const struct voro_health_verdict *voro_state_health(const struct voro_cluster_state *s,
                                                    const char *pool, const char *address)
{
    struct voro_health_verdict key;
    key_str(key.pool, pool);
    key_str(key.address, address);
    return tab_get(s->health, s->n_health, sizeof key, &key, cmp_health);
}

const struct voro_quota_lease *voro_state_lease(const struct voro_cluster_state *s,
                                                const char *limit_name, uint64_t node_id)
{
    struct voro_quota_lease key = {.node_id = node_id};
    key_str(key.limit_name, limit_name);
    return tab_get(s->leases, s->n_leases, sizeof key, &key, cmp_lease);
}

int voro_state_config_add(struct voro_cluster_state *s, const char *text, size_t text_len,
                          const char *hash, const char *author, uint64_t time_ms,
                          uint64_t source_version)
{
    struct voro_config_version v;
    memset(&v, 0, sizeof v);
    v.text = malloc(text_len + 1);
    if (v.text == NULL)
        return -ENOMEM;
    if (text_len > 0)
        memcpy(v.text, text, text_len);
    v.text[text_len] = '\0';
    v.text_len = text_len;
    v.version = s->last_version + 1;
    v.source_version = source_version;
    v.time_ms = time_ms;
    copy_str(v.hash, sizeof v.hash, hash);
    copy_str(v.author, sizeof v.author, author);
    if (s->current.version != 0) {
        if (s->n_history == VORO_STATE_HISTORY_MAX) {
            config_version_free(&s->history[0]);
            memmove(&s->history[0], &s->history[1], (VORO_STATE_HISTORY_MAX - 1) * sizeof s->history[0]);
            s->n_history--;
        }
        s->history[s->n_history++] = s->current;
    }
    s->current = v;
    s->last_version = v.version;
    return 0;
}

int voro_state_member_put(struct voro_cluster_state *s, const struct voro_member *m)
{
    return tab_put((void **)&s->members, &s->n_members, sizeof *m, VORO_STATE_MEMBERS_MAX, m, cmp_member);
}

int voro_state_member_del(struct voro_cluster_state *s, uint64_t id)
{
    struct voro_member key = {.id = id};
    return tab_del(s->members, &s->n_members, sizeof key, &key, cmp_member);
}

int voro_state_active_put(struct voro_cluster_state *s, const struct voro_node_active *a)
{
    /* One record per member at most, so the members bound applies. */
    return tab_put((void **)&s->actives, &s->n_actives, sizeof *a, VORO_STATE_MEMBERS_MAX, a, cmp_active);
}

int voro_state_active_del(struct voro_cluster_state *s, uint64_t node_id)
{
    struct voro_node_active key = {.node_id = node_id};
    return tab_del(s->actives, &s->n_actives, sizeof key, &key, cmp_active);
}

int voro_state_backend_put(struct voro_cluster_state *s, const struct voro_backend *b)
{
    return tab_put((void **)&s->backends, &s->n_backends, sizeof *b, VORO_STATE_BACKENDS_MAX, b, cmp_backend);
}

int voro_state_backend_del(struct voro_cluster_state *s, const char *pool, const char *address)
{
    struct voro_backend key;
    key_str(key.pool, pool);
    key_str(key.address, address);
    return tab_del(s->backends, &s->n_backends, sizeof key, &key, cmp_backend);
}

int voro_state_health_put(struct voro_cluster_state *s, const struct voro_health_verdict *h)
{
    return tab_put((void **)&s->health, &s->n_health, sizeof *h, VORO_STATE_HEALTH_MAX, h, cmp_health);
}

int voro_state_health_del(struct voro_cluster_state *s, const char *pool, const char *address)
{
    struct voro_health_verdict key;
    key_str(key.pool, pool);
    key_str(key.address, address);
    return tab_del(s->health, &s->n_health, sizeof key, &key, cmp_health);
}

int voro_state_lease_put(struct voro_cluster_state *s, const struct voro_quota_lease *l)
{
    return tab_put((void **)&s->leases, &s->n_leases, sizeof *l, VORO_STATE_LEASES_MAX, l, cmp_lease);
}

int voro_state_lease_del(struct voro_cluster_state *s, const char *limit_name, uint64_t node_id)
{
    struct voro_quota_lease key = {.node_id = node_id};
    key_str(key.limit_name, limit_name);
    return tab_del(s->leases, &s->n_leases, sizeof key, &key, cmp_lease);
}

void voro_state_lease_del_node(struct voro_cluster_state *s, uint64_t node_id)
{
    size_t out = 0;
    for (size_t i = 0; i < s->n_leases; i++)
        if (s->leases[i].node_id != node_id)
            s->leases[out++] = s->leases[i];
    s->n_leases = out;
}
