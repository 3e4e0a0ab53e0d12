/* Raft commands of the cluster state machine: typed structs and their strict msgpack encoding. */
#ifndef VORO_PROTO_CLUSTER_CMD_H
#define VORO_PROTO_CLUSTER_CMD_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VORO_CMD_VERSION 1                   /* the only "v" this build reads and writes */
#define VORO_CMD_STR_MAX 256                 /* bytes in any string field but the config text */
#define VORO_CMD_TEXT_MAX (1024u * 1024u)    /* bytes of config text */
#define VORO_CMD_ENCODED_MAX (VORO_CMD_TEXT_MAX + 16u * 1024u) /* whole encoded command */
#define VORO_CMD_HASH_LEN 64                 /* sha256, lowercase hex */
#define VORO_CMD_WEIGHT_MAX 65535u
#define VORO_CMD_VIP_PRIORITY_MAX 255u

/* Decode errors (negative errno). Each class has its own code so callers and tests can tell
 * them apart; a command is either decoded exactly or refused, never guessed at. */
#define VORO_CMD_ETRUNCATED (-ENODATA)       /* input ends inside a value */
#define VORO_CMD_EMALFORMED (-EBADMSG)       /* not msgpack, not a map, trailing bytes, dup key */
#define VORO_CMD_EFIELDTYPE (-EPROTO)        /* a field of the wrong msgpack type, or unknown key */
#define VORO_CMD_EUNKNOWNTYPE (-ENOMSG)      /* "type" names no command */
#define VORO_CMD_EVERSION (-EPROTONOSUPPORT) /* "v" is not VORO_CMD_VERSION */
#define VORO_CMD_EMISSING (-ENOKEY)          /* a required field is absent */
#define VORO_CMD_ETOOBIG (-EMSGSIZE)         /* a string, the text or the whole input too long */
#define VORO_CMD_EVALUE (-EINVAL)            /* right type, bad value (empty id, NUL byte, ...) */

enum voro_cmd_type {
    VORO_CMD_NOOP = 0,
    VORO_CMD_CONFIG_PUSH,
    VORO_CMD_CONFIG_ROLLBACK,
    VORO_CMD_NODE_CONFIG_ACTIVE,
    VORO_CMD_MEMBER_UPSERT,
    VORO_CMD_MEMBER_REMOVE,
    VORO_CMD_BACKEND_ADD,
    VORO_CMD_BACKEND_REMOVE,
    VORO_CMD_BACKEND_DRAIN,
    VORO_CMD_BACKEND_HEALTH,
    VORO_CMD_QUOTA_GRANT,
    VORO_CMD__COUNT
};

enum voro_health_state {
    VORO_HEALTH_UP = 0,
    VORO_HEALTH_DOWN = 1,
    VORO_HEALTH_DRAINING = 2,
};

/* Every string is NUL-terminated in a fixed array, so a decoded command owns no memory, except
 * config_push.text which is BORROWED: it points into the decoded input (not NUL-terminated,
 * text_len bytes) and is valid only while that input is. */
struct voro_cmd {
    enum voro_cmd_type type;
    union {
        struct {
            const char *text;
            size_t text_len;
            char hash[VORO_CMD_HASH_LEN + 1];
            char author[VORO_CMD_STR_MAX + 1];
            uint64_t time_ms;
            uint64_t expected_version; /* 0 = any */
        } config_push;
        struct {
            uint64_t to_version;
            char author[VORO_CMD_STR_MAX + 1];
            uint64_t time_ms;
        } config_rollback;
        struct {
            uint64_t node_id;
            uint64_t version;
            bool ok;
            char reason[VORO_CMD_STR_MAX + 1];
        } node_config_active;
        struct {
            uint64_t id;
            char name[VORO_CMD_STR_MAX + 1];
            char raft_address[VORO_CMD_STR_MAX + 1];
            char admin_address[VORO_CMD_STR_MAX + 1];
            char data_address[VORO_CMD_STR_MAX + 1];
            uint32_t vip_priority;
        } member_upsert;
        struct {
            uint64_t id;
        } member_remove;
        struct {
            char pool[VORO_CMD_STR_MAX + 1];
            char address[VORO_CMD_STR_MAX + 1];
            uint32_t weight;
        } backend_add;
        /* backend_remove and backend_drain */
        struct {
            char pool[VORO_CMD_STR_MAX + 1];
            char address[VORO_CMD_STR_MAX + 1];
        } backend_ref;
        struct {
            char pool[VORO_CMD_STR_MAX + 1];
            char address[VORO_CMD_STR_MAX + 1];
            enum voro_health_state state;
            char reason[VORO_CMD_STR_MAX + 1];
            uint64_t time_ms;
        } backend_health;
        struct {
            char limit_name[VORO_CMD_STR_MAX + 1];
            uint64_t node_id;
            uint64_t share; /* 0 revokes the lease */
            uint64_t expires_ms;
        } quota_grant;
    } u;
};

/* Decodes one command from `len` bytes (the whole input must be exactly one map). Returns 0 or
 * one of the VORO_CMD_E* codes above; on error *cmd is zeroed. No allocation. */
int voro_cmd_decode(const void *data, size_t len, struct voro_cmd *cmd);

/* Checks a command against the same rules the decoder applies (sizes, required non-empty
 * strings, ranges), so that whatever encodes also decodes. Returns 0 or a VORO_CMD_E* code. */
int voro_cmd_check(const struct voro_cmd *cmd);

/* Encodes `cmd` (after voro_cmd_check) into a malloc'd buffer the caller frees with free().
 * Returns 0, a VORO_CMD_E* code, or -ENOMEM. */
int voro_cmd_encode(const struct voro_cmd *cmd, void **out, size_t *out_len);

/* Wire names: "config_push", ... and "up"/"down"/"draining". The *_from_name functions return
 * the enum value or -ENOENT; the *_name functions NULL for an out-of-range value. */
const char *voro_cmd_type_name(enum voro_cmd_type type);
int voro_cmd_type_from_name(const char *s, size_t len);
const char *voro_health_state_name(enum voro_health_state s);
int voro_health_state_from_name(const char *s, size_t len);

/* Zeroes `cmd` and sets its type: the starting point for building a command to encode. */
void voro_cmd_init(struct voro_cmd *cmd, enum voro_cmd_type type);

/* Copies a string field with the decoder's rules: -EMSGSIZE if longer than VORO_CMD_STR_MAX. */
int voro_cmd_set_str(char dst[VORO_CMD_STR_MAX + 1], const char *src);

#endif
