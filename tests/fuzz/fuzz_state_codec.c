/* libFuzzer target: arbitrary bytes through the Raft snapshot decoder (raft/state_codec.c); a
 * state that decodes must be one the FSM could have built, and encode then decode to itself
 * with the same bytes (decode(encode(x)) == x in the encoded form).
 *
 * Seeds (corpus_state_codec/) are snapshots written by voro_cluster_state_encode of states built
 * with the FSM's mutators: empty, one config, a rolled-back config with history, members,
 * config-active records, backends, health verdicts and quota leases. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "raft/state.h"

static void check(int cond)
{
    if (!cond)
        abort();
}

static bool is_empty(const struct voro_cluster_state *s)
{
    return s->last_version == 0 && s->current.version == 0 && s->current.text == NULL && s->n_history == 0 &&
           s->members == NULL && s->n_members == 0 && s->actives == NULL && s->n_actives == 0 && s->backends == NULL &&
           s->n_backends == 0 && s->health == NULL && s->n_health == 0 && s->leases == NULL && s->n_leases == 0;
}

static void check_config(const struct voro_config_version *v)
{
    check(v->version != 0 && v->source_version < v->version);
    check(v->text != NULL && v->text_len <= VORO_CMD_TEXT_MAX && v->text[v->text_len] == '\0' &&
          strlen(v->text) == v->text_len);
    check(strlen(v->hash) == VORO_CMD_HASH_LEN);
}

/* What every state the FSM builds satisfies, and the lookups finding what the tables hold. */
static void check_state(const struct voro_cluster_state *s)
{
    if (s->current.version == 0) {
        check(s->last_version == 0 && s->n_history == 0 && s->current.text == NULL);
    } else {
        check_config(&s->current);
        /* voro_state_config_add makes every new version current: the last one assigned is it */
        check(s->current.version == s->last_version);
        check(voro_state_config(s, s->current.version) == &s->current);
    }
    /* the history is the versions right before the current one, up to its bound */
    uint64_t older = s->current.version ? s->current.version - 1 : 0;
    check(s->n_history == (older < VORO_STATE_HISTORY_MAX ? older : VORO_STATE_HISTORY_MAX));
    for (size_t i = 0; i < s->n_history; i++) {
        check_config(&s->history[i]);
        check(s->history[i].version == s->current.version - s->n_history + i);
        check(voro_state_config(s, s->history[i].version) == &s->history[i]);
    }
    check(s->n_members <= VORO_STATE_MEMBERS_MAX && s->n_actives <= VORO_STATE_MEMBERS_MAX);
    for (size_t i = 0; i < s->n_members; i++) {
        const struct voro_member *m = &s->members[i];
        check(m->id != 0 && m->name[0] && m->raft_address[0] && m->vip_priority <= VORO_CMD_VIP_PRIORITY_MAX);
        check(voro_state_member(s, m->id) == m);
    }
    for (size_t i = 0; i < s->n_actives; i++) {
        const struct voro_node_active *a = &s->actives[i];
        check(a->node_id != 0 && a->version <= s->last_version);
        check(voro_state_active(s, a->node_id) == a);
    }
    check(s->n_backends <= VORO_STATE_BACKENDS_MAX);
    for (size_t i = 0; i < s->n_backends; i++) {
        const struct voro_backend *b = &s->backends[i];
        check(b->pool[0] && b->address[0] && b->weight >= 1 && b->weight <= VORO_CMD_WEIGHT_MAX);
        check(voro_state_backend(s, b->pool, b->address) == b);
    }
    check(s->n_health <= VORO_STATE_HEALTH_MAX);
    for (size_t i = 0; i < s->n_health; i++) {
        const struct voro_health_verdict *h = &s->health[i];
        check(h->pool[0] && h->address[0] && voro_health_state_name(h->state) != NULL);
        check(voro_state_health(s, h->pool, h->address) == h);
    }
    check(s->n_leases <= VORO_STATE_LEASES_MAX);
    for (size_t i = 0; i < s->n_leases; i++) {
        const struct voro_quota_lease *l = &s->leases[i];
        check(l->limit_name[0] && l->node_id != 0 && l->share != 0);
        check(voro_state_lease(s, l->limit_name, l->node_id) == l);
    }
}

static void encode(const struct voro_cluster_state *s, msgpack_sbuffer *sb)
{
    msgpack_packer pk;
    msgpack_sbuffer_init(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    check(voro_cluster_state_encode(s, &pk) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct voro_cluster_state s, again, copy;
    int rc = voro_cluster_state_decode(data, size, &s);
    if (rc != 0) {
        check(rc == VORO_CMD_ETRUNCATED || rc == VORO_CMD_EMALFORMED || rc == VORO_CMD_EFIELDTYPE ||
              rc == VORO_CMD_EVERSION || rc == VORO_CMD_ETOOBIG || rc == VORO_CMD_EVALUE || rc == -ENOMEM);
        check(is_empty(&s)); /* refused: the state is left empty */
        return 0;
    }
    check_state(&s);

    /* Canonical form: the encoder's bytes decode to an equal state that encodes identically.
     * (The input itself may differ: msgpack has several widths for one integer or string.) */
    msgpack_sbuffer first, second;
    encode(&s, &first);
    check(voro_cluster_state_decode(first.data, first.size, &again) == 0);
    check(voro_cluster_state_equal(&s, &again));
    encode(&again, &second);
    check(first.size == second.size && memcmp(first.data, second.data, first.size) == 0);

    /* A deep copy is equal and independent of the original. */
    check(voro_cluster_state_copy(&copy, &s) == 0);
    check(voro_cluster_state_equal(&copy, &s));
    voro_cluster_state_free(&s);
    check(voro_cluster_state_equal(&copy, &again));

    msgpack_sbuffer_destroy(&first);
    msgpack_sbuffer_destroy(&second);
    voro_cluster_state_free(&again);
    voro_cluster_state_free(&copy);
    return 0;
}
