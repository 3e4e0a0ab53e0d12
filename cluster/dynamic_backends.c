/* Merges the cluster's dynamic backends into an effective config (see dynamic_backends.h). */
#include "cluster/dynamic_backends.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

#define MAX_WEIGHT 256u /* the config's server weight range; the API accepts up to 65535 */

static struct voro_pool_config *find_pool(struct voro_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_pools; i++)
        if (!strcmp(cfg->pools[i].name, name))
            return &cfg->pools[i];
    return NULL;
}

static struct voro_server_config *find_server_by_addr(struct voro_pool_config *p, const char *addr_text)
{
    for (size_t i = 0; i < p->n_servers; i++)
        if (!strcmp(p->servers[i].addr.text, addr_text))
            return &p->servers[i];
    return NULL;
}

static bool name_taken(const struct voro_pool_config *p, const char *name)
{
    for (size_t i = 0; i < p->n_servers; i++)
        if (!strcmp(p->servers[i].name, name))
            return true;
    return false;
}

/* "dyn-" + the address with every character a server name cannot hold turned into '-' (the
 * brackets of an IPv6 address dropped); a clash with a server of the text gets "-2", "-3"... */
static void make_name(const struct voro_pool_config *p, const char *addr_text, char out[VORO_NAME_MAX])
{
    char base[VORO_NAME_MAX - 8]; /* room for a "-NNN" suffix */
    size_t len = (size_t)snprintf(base, sizeof(base), "dyn-");
    for (const char *c = addr_text; *c && len + 1 < sizeof(base); c++) {
        if (*c == '[' || *c == ']')
            continue;
        base[len++] = (isalnum((unsigned char)*c) || *c == '.' || *c == '_' || *c == '-') ? *c : '-';
    }
    base[len] = '\0';
    snprintf(out, VORO_NAME_MAX, "%s", base);
    /* bounded: a pool holds at most VORO_POOL_MAX_SERVERS names, so one suffix in that range is free */
    for (unsigned k = 2; name_taken(p, out) && k <= VORO_POOL_MAX_SERVERS + 1; k++)
        snprintf(out, VORO_NAME_MAX, "%s-%u", base, k);
}

static uint32_t effective_weight(const struct voro_backend *b)
{
    if (b->draining)
        return 0;
    return b->weight > MAX_WEIGHT ? MAX_WEIGHT : b->weight;
}

static int append_server(struct voro_pool_config *p, const struct voro_sockaddr *addr, uint32_t weight)
{
    /* one realloc per appended server: merges are rare (a config or backend change) */
    struct voro_server_config *s = realloc(p->servers, (p->n_servers + 1) * sizeof(*s));
    if (!s)
        return -ENOMEM;
    p->servers = s;
    struct voro_server_config *srv = &s[p->n_servers];
    memset(srv, 0, sizeof(*srv));
    make_name(p, addr->text, srv->name);
    srv->addr = *addr;
    srv->weight = weight;
    p->n_servers++;
    return 0;
}

int voro_config_merge_backends(struct voro_config *cfg, const struct voro_backend *backends, size_t n,
                               struct voro_backend_merge_stats *stats)
{
    struct voro_backend_merge_stats st = {0};
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        const struct voro_backend *b = &backends[i];
        struct voro_pool_config *p = find_pool(cfg, b->pool);
        if (!p) {
            VORO_WARN("config", "dynamic backend %s skipped: the config in force has no pool '%s'", b->address,
                      b->pool);
            st.skipped++;
            continue;
        }
        struct voro_sockaddr addr;
        if (voro_sockaddr_parse(b->address, &addr) != 0) {
            VORO_WARN("config", "dynamic backend '%s' of pool %s skipped: not a numeric ip:port address", b->address,
                      b->pool);
            st.skipped++;
            continue;
        }
        struct voro_server_config *srv = find_server_by_addr(p, addr.text);
        if (srv) {
            srv->weight = effective_weight(b);
            st.updated++;
            continue;
        }
        if (p->n_servers >= VORO_POOL_MAX_SERVERS) {
            VORO_WARN("config", "dynamic backend %s skipped: pool %s already has %d servers", b->address, b->pool,
                      VORO_POOL_MAX_SERVERS);
            st.skipped++;
            continue;
        }
        if ((rc = append_server(p, &addr, effective_weight(b))) != 0)
            break;
        st.added++;
    }
    if (stats)
        *stats = st;
    return rc;
}
