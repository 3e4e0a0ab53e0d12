/* vorocluster: the command-line client of the cluster API (docs/cluster-api.md, docs/cluster.md). */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster/cluster_client.h"
#include "cluster/json_value.h"
#include "common/strbuf.h"
#include "proto/http1.h"

/* Exit codes (documented in docs/cluster.md). */
#define EXIT_OK 0
#define EXIT_REFUSED 1 /* the server answered 4xx/5xx, or its answer was unusable */
#define EXIT_USAGE 2
#define EXIT_CONNECT 3

#define DEFAULT_ADMIN "127.0.0.1:9100"
#define CONNECT_TIMEOUT_MS 3000
#define READ_TIMEOUT_MS 30000 /* a write may wait 5 s for its commit, plus forwarding and catch-up */
#define MAX_CONFIG_FILE (1u << 20)
#define MAX_POS 8

/* Options, as bits so each command can say which ones it takes. */
enum {
    OPT_VIA = 1 << 0,
    OPT_EXPECTED = 1 << 1,
    OPT_AUTHOR = 1 << 2,
    OPT_VERSION = 1 << 3,
    OPT_WEIGHT = 1 << 4,
};

struct cli {
    const char *admin;
    const char *token; /* never printed */
    bool json;
    bool help;
    int timeout_ms; /* --timeout: bound on one exchange after connecting */
    unsigned seen; /* OPT_* given */
    const char *via;
    const char *author;
    int64_t expected_version;
    int64_t version;
    int64_t weight;
    const char *pos[MAX_POS];
    int npos;
};

struct command {
    const char *name; /* "config push" */
    unsigned opts;
    int min_args, max_args; /* positionals after the command words */
    const char *usage;
    int (*run)(struct cli *c, const char **args, int nargs);
};

static void errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void errorf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("vorocluster: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static int parse_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
    char *end;
    if (!s || !*s || *s == '+' || *s == ' ')
        return -EINVAL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return -EINVAL;
    *out = v;
    return 0;
}

/* ---- talking to the node ---- */

struct answer {
    struct voro_cluster_response resp;
    struct voro_json *json; /* parsed body, or NULL when it is not JSON */
};

static void answer_free(struct answer *a)
{
    voro_cluster_response_free(&a->resp);
    voro_json_free(a->json);
    a->json = NULL;
}

static const char *json_error_text(const struct voro_json *j)
{
    const char *e = voro_json_string(voro_json_get(j, "error"));
    return e ? e : "";
}

/* One exchange with `address`; parses a JSON body. Returns 0 with an answer, or an exit code. */
static int exchange(struct cli *c, const char *address, const char *method, const char *path, const char *body,
                    bool no_forward, struct answer *a)
{
    struct voro_cluster_request req = {
        .method = method,
        .path = path,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .token = c->token,
        .no_forward = no_forward,
        .connect_timeout_ms = CONNECT_TIMEOUT_MS,
        .timeout_ms = c->timeout_ms ? c->timeout_ms : READ_TIMEOUT_MS,
    };
    memset(a, 0, sizeof(*a));
    int rc = voro_cluster_http(address, &req, &a->resp);
    if (rc < 0) {
        errorf("%s", a->resp.error);
        int code = a->resp.connected || rc == -EINVAL ? EXIT_REFUSED : EXIT_CONNECT;
        if (rc == -EINVAL && !a->resp.connected)
            code = EXIT_USAGE;
        answer_free(a);
        return code;
    }
    voro_json_parse(a->resp.body, a->resp.body_len, &a->json, NULL);
    return 0;
}

/* Prints the one-line reason of a refusal (and a config push's file:line errors). */
static void report_refusal(const char *address, const struct answer *a)
{
    int st = a->resp.status;
    const struct voro_json *j = a->json;
    const char *err = json_error_text(j);
    if (st == 401) {
        errorf("unauthorized (401 from %s): the token is missing or wrong (--token or VOROCLUSTER_TOKEN)", address);
        return;
    }
    const struct voro_json *errors = voro_json_get(j, "errors");
    for (size_t i = 0; i < voro_json_count(errors); i++) {
        const char *line = voro_json_string(voro_json_item(errors, i));
        if (line)
            fprintf(stderr, "%s\n", line);
    }
    struct voro_strbuf sb;
    voro_strbuf_init(&sb);
    voro_strbuf_printf(&sb, "%d %s from %s", st, voro_http1_status_text(st), address);
    if (*err)
        voro_strbuf_printf(&sb, ": %s", err);
    else if (!j && a->resp.body_len)
        voro_strbuf_printf(&sb, ": %.120s", a->resp.body);
    const char *code = voro_json_string(voro_json_get(j, "code"));
    if (code)
        voro_strbuf_printf(&sb, " (code %s)", code);
    const char *field = voro_json_string(voro_json_get(j, "field"));
    if (field)
        voro_strbuf_printf(&sb, " (field %s)", field);
    if (voro_json_count(errors))
        voro_strbuf_printf(&sb, " (%zu error%s above)", voro_json_count(errors), voro_json_count(errors) == 1 ? "" : "s");
    errorf("%s", sb.data ? sb.data : "refused");
    voro_strbuf_free(&sb);
}

/*
 * Sends a request to the node named by --admin; on 421 (not the leader), or a 502/503 that names the
 * leader, retries once at the leader's admin address from the answer, with X-Voro-No-Forward. With --json the server's body is printed as is, whatever the status.
 * Returns EXIT_OK with a 2xx answer in *a (its JSON parsed; the caller frees it), or an exit code.
 */
static int call(struct cli *c, const char *method, const char *path, const char *body, struct answer *a)
{
    const char *address = c->admin;
    char leader_addr[256];
    int rc = exchange(c, address, method, path, body, false, a);
    if (rc)
        return rc;
    /* 421: the node does not forward (X-Voro-No-Forward, or by policy). 502/503 naming a leader:
     * the node knows the leader but could not forward to it. Not 504: that write may still commit. */
    int st = a->resp.status;
    if (st == 421 || st == 502 || st == 503) {
        const struct voro_json *leader = voro_json_get(a->json, "leader");
        const char *la = voro_json_string(voro_json_get(leader, "admin_address"));
        if (la && *la && strlen(la) < sizeof(leader_addr)) {
            snprintf(leader_addr, sizeof(leader_addr), "%s", la);
            fprintf(stderr, "vorocluster: %s is not the leader (%d); retrying at %s\n", address, st, leader_addr);
            answer_free(a);
            address = leader_addr;
            rc = exchange(c, address, method, path, body, true, a);
            if (rc)
                return rc;
        }
    }
    if (c->json) {
        fwrite(a->resp.body, 1, a->resp.body_len, stdout);
        if (a->resp.body_len && a->resp.body[a->resp.body_len - 1] != '\n')
            fputc('\n', stdout);
    }
    if (a->resp.status >= 200 && a->resp.status < 300) {
        if (!a->json && !c->json) {
            errorf("the answer from %s is not JSON", address);
            answer_free(a);
            return EXIT_REFUSED;
        }
        return EXIT_OK;
    }
    report_refusal(address, a);
    answer_free(a);
    return EXIT_REFUSED;
}

/* ---- output helpers ---- */

#define TABLE_MAX_COLS 12
#define TABLE_MAX_ROWS 1024

struct table {
    int ncols;
    size_t nrows;
    char *cells[TABLE_MAX_ROWS + 1][TABLE_MAX_COLS]; /* row 0 is the header */
};

static void table_cell(struct table *t, size_t row, int col, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void table_cell(struct table *t, size_t row, int col, const char *fmt, ...)
{
    if (row > TABLE_MAX_ROWS || col >= t->ncols)
        return;
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    free(t->cells[row][col]);
    t->cells[row][col] = s;
    if (row > t->nrows)
        t->nrows = row;
}

static struct table *table_new(const char *const *headers, int ncols)
{
    struct table *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->ncols = ncols;
    for (int i = 0; i < ncols; i++)
        table_cell(t, 0, i, "%s", headers[i]);
    return t;
}

static void table_print_free(struct table *t)
{
    size_t w[TABLE_MAX_COLS] = {0};
    for (size_t r = 0; r <= t->nrows; r++)
        for (int col = 0; col < t->ncols; col++) {
            size_t l = t->cells[r][col] ? strlen(t->cells[r][col]) : 1;
            if (l > w[col])
                w[col] = l;
        }
    for (size_t r = 0; r <= t->nrows; r++) {
        for (int col = 0; col < t->ncols; col++) {
            const char *s = t->cells[r][col] ? t->cells[r][col] : "-";
            if (col == t->ncols - 1)
                printf("%s\n", s);
            else
                printf("%-*s  ", (int)w[col], s);
        }
    }
    for (size_t r = 0; r <= t->nrows; r++)
        for (int col = 0; col < t->ncols; col++)
            free(t->cells[r][col]);
    free(t);
}

/* A JSON scalar as text for a table cell ("-" for absent or null). */
static void scalar_text(const struct voro_json *v, char *buf, size_t cap)
{
    if (voro_json_is_null(v))
        snprintf(buf, cap, "-");
    else if (v->type == VORO_JSON_STRING)
        snprintf(buf, cap, "%s", v->str[0] ? v->str : "-");
    else if (v->type == VORO_JSON_BOOL)
        snprintf(buf, cap, "%s", v->boolean ? "yes" : "no");
    else if (v->type == VORO_JSON_NUMBER && v->is_integer)
        snprintf(buf, cap, "%" PRId64, v->integer);
    else if (v->type == VORO_JSON_NUMBER)
        snprintf(buf, cap, "%g", v->number);
    else
        snprintf(buf, cap, "%s", v->type == VORO_JSON_ARRAY ? "[...]" : "{...}");
}

static int64_t int_or(const struct voro_json *v, int64_t dflt)
{
    int64_t x;
    return voro_json_int(v, &x) == 0 ? x : dflt;
}

/* The node id a `vip` value names as its holder, or 0 (null, or a shape without a holder). */
static int64_t vip_holder(const struct voro_json *vip)
{
    if (voro_json_is_null(vip))
        return 0;
    if (vip->type == VORO_JSON_NUMBER)
        return int_or(vip, 0);
    static const char *const keys[] = {"holder", "holder_id", "node_id", "node", "id"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const struct voro_json *h = voro_json_get(vip, keys[i]);
        if (h && h->type == VORO_JSON_OBJECT)
            h = voro_json_get(h, "id");
        int64_t id = int_or(h, 0);
        if (id)
            return id;
    }
    return 0;
}

/*
 * The members table. `top` is the whole answer: its node/term/commit_index/applied_index fill the
 * answering node's row when a member object does not carry its own; other nodes' counters are "-"
 * unless the server puts them in the member objects.
 */
static void print_members(const struct voro_json *top)
{
    static const char *const hdr[] = {"ID", "NAME", "ROLE", "RAFT", "ADMIN", "REACHABLE",
                                      "TERM", "COMMIT", "APPLIED", "CONFIG", "VIP"};
    const struct voro_json *members = voro_json_get(top, "members");
    int64_t self = int_or(voro_json_get(voro_json_get(top, "node"), "id"), 0);
    int64_t leader = int_or(voro_json_get(voro_json_get(top, "leader"), "id"), 0);
    int64_t vip = vip_holder(voro_json_get(top, "vip"));
    struct table *t = table_new(hdr, 11);
    if (!t)
        return;
    char b[256];
    for (size_t i = 0; i < voro_json_count(members) && i < TABLE_MAX_ROWS; i++) {
        const struct voro_json *m = voro_json_item(members, i);
        size_t r = i + 1;
        int64_t id = int_or(voro_json_get(m, "id"), 0);
        table_cell(t, r, 0, "%" PRId64, id);
        scalar_text(voro_json_get(m, "name"), b, sizeof(b));
        table_cell(t, r, 1, "%s", b);
        scalar_text(voro_json_get(m, "role"), b, sizeof(b));
        table_cell(t, r, 2, "%s%s", b, id && id == leader ? " (leader)" : "");
        scalar_text(voro_json_get(m, "raft_address"), b, sizeof(b));
        table_cell(t, r, 3, "%s", b);
        scalar_text(voro_json_get(m, "admin_address"), b, sizeof(b));
        table_cell(t, r, 4, "%s", b);
        scalar_text(voro_json_get(m, "reachable"), b, sizeof(b));
        table_cell(t, r, 5, "%s", b);
        static const char *const counters[] = {"term", "commit_index", "applied_index"};
        for (int k = 0; k < 3; k++) {
            const struct voro_json *v = voro_json_get(m, counters[k]);
            if (!v && id && id == self)
                v = voro_json_get(top, counters[k]);
            scalar_text(v, b, sizeof(b));
            table_cell(t, r, 6 + k, "%s", b);
        }
        const struct voro_json *ver = voro_json_get(m, "active_config_version");
        const struct voro_json *ok = voro_json_get(m, "active_config_ok");
        scalar_text(ver, b, sizeof(b));
        if (ok && ok->type == VORO_JSON_BOOL && !ok->boolean)
            table_cell(t, r, 9, "%s FAILED", b);
        else
            table_cell(t, r, 9, "%s", b);
        table_cell(t, r, 10, "%s", id && id == vip ? "holder" : "-");
    }
    table_print_free(t);
    for (size_t i = 0; i < voro_json_count(members); i++) {
        const struct voro_json *m = voro_json_item(members, i);
        const struct voro_json *ok = voro_json_get(m, "active_config_ok");
        const char *reason = voro_json_string(voro_json_get(m, "active_config_reason"));
        if (ok && ok->type == VORO_JSON_BOOL && !ok->boolean)
            printf("  node %" PRId64 ": config version %" PRId64 " not active: %s\n", int_or(voro_json_get(m, "id"), 0),
                   int_or(voro_json_get(m, "active_config_version"), 0), reason && *reason ? reason : "(no reason)");
    }
}

static const char *node_name(const struct voro_json *top)
{
    const char *n = voro_json_string(voro_json_get(voro_json_get(top, "node"), "name"));
    return n ? n : "?";
}

static int64_t node_id(const struct voro_json *top)
{
    return int_or(voro_json_get(voro_json_get(top, "node"), "id"), 0);
}

static char *json_body(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *json_body(const char *fmt, ...)
{
    char *s = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    return s;
}

/* A JSON string literal of s (malloc'd), or NULL. */
static char *jstr(const char *s)
{
    struct voro_strbuf sb;
    voro_strbuf_init(&sb);
    voro_strbuf_json_string(&sb, s);
    if (sb.failed) {
        voro_strbuf_free(&sb);
        return NULL;
    }
    return voro_strbuf_detach(&sb, NULL);
}

static const char *default_author(struct cli *c)
{
    if (c->author)
        return c->author;
    const char *u = getenv("USER");
    return u && *u ? u : "vorocluster";
}

/* ---- commands ---- */

static int cmd_init(struct cli *c, const char **args, int nargs)
{
    (void)args, (void)nargs;
    struct answer a;
    int rc = call(c, "POST", "/cluster/init", "{}", &a);
    if (rc)
        return rc;
    if (!c->json)
        printf("initialised a one-node cluster: node %" PRId64 " (%s), term %" PRId64 "\n", node_id(a.json),
               node_name(a.json), int_or(voro_json_get(a.json, "term"), 0));
    answer_free(&a);
    return EXIT_OK;
}

static int cmd_join(struct cli *c, const char **args, int nargs)
{
    (void)args, (void)nargs;
    if (!c->via) {
        errorf("join needs --via HOST:PORT (the admin address of a cluster member)");
        return EXIT_USAGE;
    }
    char *via = jstr(c->via);
    char *body = via ? json_body("{\"via\":%s}", via) : NULL;
    free(via);
    if (!body) {
        errorf("out of memory");
        return EXIT_REFUSED;
    }
    struct answer a;
    int rc = call(c, "POST", "/cluster/join-via", body, &a);
    free(body);
    if (rc)
        return rc;
    if (!c->json) {
        printf("node %" PRId64 " (%s) joined the cluster via %s\n", node_id(a.json), node_name(a.json), c->via);
        if (voro_json_get(a.json, "members"))
            print_members(a.json);
    }
    answer_free(&a);
    return EXIT_OK;
}

static int cmd_leave(struct cli *c, const char **args, int nargs)
{
    int64_t id = 0;
    if (nargs == 1 && parse_int(args[0], 1, INT64_MAX, &id) < 0) {
        errorf("leave: bad node id '%s' (a positive integer)", args[0]);
        return EXIT_USAGE;
    }
    char self_name[128] = "";
    if (nargs == 0) {
        /* The node named by --admin, by its id: "{}" means "the node that handles it", which
         * is the leader when the write is retried there, and the answer names whoever handled
         * it, not the node that left. */
        struct answer st;
        int rc = exchange(c, c->admin, "GET", "/cluster/status", NULL, true, &st);
        if (rc)
            return rc;
        if (st.resp.status != 200 || (id = node_id(st.json)) <= 0) {
            if (st.resp.status != 200)
                report_refusal(c->admin, &st);
            else
                errorf("%s did not say which node it is", c->admin);
            answer_free(&st);
            return EXIT_REFUSED;
        }
        snprintf(self_name, sizeof(self_name), "%s", node_name(st.json));
        answer_free(&st);
    }
    char *body = json_body("{\"id\":%" PRId64 "}", id);
    if (!body) {
        errorf("out of memory");
        return EXIT_REFUSED;
    }
    struct answer a;
    int rc = call(c, "POST", "/cluster/leave", body, &a);
    free(body);
    if (rc)
        return rc;
    if (!c->json) {
        if (nargs == 1)
            printf("node %" PRId64 " left the cluster\n", id);
        else
            printf("node %" PRId64 " (%s) left the cluster\n", id, self_name);
        if (voro_json_get(a.json, "members"))
            print_members(a.json);
    }
    answer_free(&a);
    return EXIT_OK;
}

static int cmd_status(struct cli *c, const char **args, int nargs)
{
    (void)args, (void)nargs;
    struct answer a;
    int rc = call(c, "GET", "/cluster/status", NULL, &a);
    if (rc)
        return rc;
    if (c->json)
        goto out;
    const struct voro_json *j = a.json;
    char b[256];
    scalar_text(voro_json_get(j, "state"), b, sizeof(b));
    printf("answered by node %" PRId64 " (%s): state %s, term %" PRId64 ", commit %" PRId64 ", applied %" PRId64 "\n",
           node_id(j), node_name(j), b, int_or(voro_json_get(j, "term"), 0),
           int_or(voro_json_get(j, "commit_index"), 0), int_or(voro_json_get(j, "applied_index"), 0));
    const struct voro_json *leader = voro_json_get(j, "leader");
    if (voro_json_is_null(leader)) {
        printf("leader: none known\n");
    } else {
        char name[128], addr[128];
        scalar_text(voro_json_get(leader, "name"), name, sizeof(name));
        scalar_text(voro_json_get(leader, "admin_address"), addr, sizeof(addr));
        printf("leader: node %" PRId64 " (%s) at %s\n", int_or(voro_json_get(leader, "id"), 0), name, addr);
    }
    printf("cluster config version: %" PRId64 "\n", int_or(voro_json_get(j, "config_version"), 0));
    const struct voro_json *be = voro_json_get(j, "backends");
    printf("backends: %" PRId64 " up, %" PRId64 " down, %" PRId64 " draining\n", int_or(voro_json_get(be, "up"), 0),
           int_or(voro_json_get(be, "down"), 0), int_or(voro_json_get(be, "draining"), 0));
    const struct voro_json *vip = voro_json_get(j, "vip");
    if (voro_json_is_null(vip)) {
        printf("vip: -\n");
    } else if (vip->type == VORO_JSON_OBJECT) {
        char addr[128];
        scalar_text(voro_json_get(vip, "address"), addr, sizeof(addr));
        int64_t h = vip_holder(vip);
        if (h)
            printf("vip: %s held by node %" PRId64 "\n", addr, h);
        else
            printf("vip: %s\n", addr);
    } else {
        scalar_text(vip, b, sizeof(b));
        printf("vip: %s\n", b);
    }
    if (voro_json_count(voro_json_get(j, "members")))
        print_members(j);
    else if (voro_json_string(voro_json_get(j, "state")) &&
             strcmp(voro_json_string(voro_json_get(j, "state")), "uninitialised") == 0)
        printf("this node is not in a cluster yet: run 'vorocluster init' on the first node, "
               "'vorocluster join --via HOST:PORT' on the others\n");
out:
    answer_free(&a);
    return EXIT_OK;
}

static int read_file(const char *path, char **out, size_t *len_out)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        errorf("cannot read %s: %s", path, strerror(errno));
        return EXIT_USAGE;
    }
    char *buf = malloc(MAX_CONFIG_FILE + 1);
    if (!buf) {
        fclose(f);
        errorf("out of memory");
        return EXIT_REFUSED;
    }
    size_t n = fread(buf, 1, MAX_CONFIG_FILE + 1, f);
    int err = ferror(f);
    fclose(f);
    if (err || n > MAX_CONFIG_FILE) {
        free(buf);
        errorf(err ? "cannot read %s" : "%s is larger than 1 MiB, the cluster's limit for config text", path);
        return EXIT_USAGE;
    }
    if (memchr(buf, '\0', n)) {
        free(buf);
        errorf("%s contains a NUL byte: not a config file", path);
        return EXIT_USAGE;
    }
    buf[n] = '\0';
    *out = buf;
    *len_out = n;
    return 0;
}

static int cmd_config_push(struct cli *c, const char **args, int nargs)
{
    (void)nargs;
    char *text = NULL, *jtext = NULL, *jauthor = NULL, *body = NULL;
    size_t len;
    int rc = read_file(args[0], &text, &len);
    if (rc)
        return rc;
    jtext = jstr(text);
    jauthor = jstr(default_author(c));
    if (jtext && jauthor)
        body = json_body("{\"text\":%s,\"author\":%s,\"expected_version\":%" PRId64 "}", jtext, jauthor,
                         (c->seen & OPT_EXPECTED) ? c->expected_version : 0);
    if (!body) {
        errorf("out of memory");
        rc = EXIT_REFUSED;
        goto out;
    }
    struct answer a;
    rc = call(c, "POST", "/cluster/config", body, &a);
    if (rc)
        goto out;
    if (!c->json) {
        char hash[80];
        scalar_text(voro_json_get(a.json, "hash"), hash, sizeof(hash));
        printf("pushed %s as config version %" PRId64 " (sha256 %.12s)\n", args[0],
               int_or(voro_json_get(a.json, "version"), 0), hash);
    }
    answer_free(&a);
out:
    free(text);
    free(jtext);
    free(jauthor);
    free(body);
    return rc;
}

static int cmd_config_get(struct cli *c, const char **args, int nargs)
{
    (void)args, (void)nargs;
    char path[64];
    if (c->seen & OPT_VERSION)
        snprintf(path, sizeof(path), "/cluster/config?version=%" PRId64, c->version);
    else
        snprintf(path, sizeof(path), "/cluster/config");
    struct answer a;
    int rc = call(c, "GET", path, NULL, &a);
    if (rc)
        return rc;
    if (!c->json) {
        const char *text = voro_json_string(voro_json_get(a.json, "text"));
        if (!text) {
            errorf("the answer has no config text");
            answer_free(&a);
            return EXIT_REFUSED;
        }
        fputs(text, stdout);
        if (*text && text[strlen(text) - 1] != '\n')
            fputc('\n', stdout);
    }
    answer_free(&a);
    return EXIT_OK;
}

static void format_time_ms(const struct voro_json *v, char *buf, size_t cap)
{
    int64_t ms;
    if (voro_json_int(v, &ms) < 0 || ms <= 0) {
        snprintf(buf, cap, "-");
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(buf, cap, "%Y-%m-%d %H:%M:%SZ", &tm) == 0)
        snprintf(buf, cap, "%" PRId64, ms);
}

static int cmd_config_history(struct cli *c, const char **args, int nargs)
{
    (void)args, (void)nargs;
    struct answer a;
    int rc = call(c, "GET", "/cluster/config/history", NULL, &a);
    if (rc)
        return rc;
    if (!c->json) {
        static const char *const hdr[] = {"VERSION", "TIME (UTC)", "AUTHOR", "SHA256"};
        struct table *t = table_new(hdr, 4);
        const struct voro_json *vs = voro_json_get(a.json, "versions");
        char b[256];
        for (size_t i = 0; t && i < voro_json_count(vs) && i < TABLE_MAX_ROWS; i++) {
            const struct voro_json *v = voro_json_item(vs, i);
            table_cell(t, i + 1, 0, "%" PRId64, int_or(voro_json_get(v, "version"), 0));
            format_time_ms(voro_json_get(v, "time_ms"), b, sizeof(b));
            table_cell(t, i + 1, 1, "%s", b);
            scalar_text(voro_json_get(v, "author"), b, sizeof(b));
            table_cell(t, i + 1, 2, "%s", b);
            scalar_text(voro_json_get(v, "hash"), b, sizeof(b));
            table_cell(t, i + 1, 3, "%.12s", b);
        }
        if (t)
            table_print_free(t);
    }
    answer_free(&a);
    return EXIT_OK;
}

static int cmd_config_rollback(struct cli *c, const char **args, int nargs)
{
    (void)nargs;
    int64_t v;
    if (parse_int(args[0], 1, INT64_MAX, &v) < 0) {
        errorf("config rollback: bad version '%s' (a positive integer)", args[0]);
        return EXIT_USAGE;
    }
    char *jauthor = jstr(default_author(c));
    char *body = jauthor ? json_body("{\"version\":%" PRId64 ",\"author\":%s}", v, jauthor) : NULL;
    free(jauthor);
    if (!body) {
        errorf("out of memory");
        return EXIT_REFUSED;
    }
    struct answer a;
    int rc = call(c, "POST", "/cluster/config/rollback", body, &a);
    free(body);
    if (rc)
        return rc;
    if (!c->json)
        printf("rolled back to the text of version %" PRId64 " as config version %" PRId64 "\n", v,
               int_or(voro_json_get(a.json, "version"), 0));
    answer_free(&a);
    return EXIT_OK;
}

static int backend_write(struct cli *c, const char **args, const char *method, const char *path, const char *done)
{
    char *jpool = jstr(args[0]), *jaddr = jstr(args[1]), *body = NULL;
    if (jpool && jaddr) {
        if (strcmp(path, "/cluster/backends") == 0 && strcmp(method, "POST") == 0)
            body = json_body("{\"pool\":%s,\"address\":%s,\"weight\":%" PRId64 "}", jpool, jaddr,
                             (c->seen & OPT_WEIGHT) ? c->weight : 1);
        else
            body = json_body("{\"pool\":%s,\"address\":%s}", jpool, jaddr);
    }
    free(jpool);
    free(jaddr);
    if (!body) {
        errorf("out of memory");
        return EXIT_REFUSED;
    }
    struct answer a;
    int rc = call(c, method, path, body, &a);
    free(body);
    if (rc)
        return rc;
    if (!c->json)
        printf("%s %s in pool %s\n", done, args[1], args[0]);
    answer_free(&a);
    return EXIT_OK;
}

static int cmd_backend_add(struct cli *c, const char **args, int nargs)
{
    (void)nargs;
    return backend_write(c, args, "POST", "/cluster/backends", "added");
}

static int cmd_backend_remove(struct cli *c, const char **args, int nargs)
{
    (void)nargs;
    return backend_write(c, args, "DELETE", "/cluster/backends", "removed");
}

static int cmd_backend_drain(struct cli *c, const char **args, int nargs)
{
    (void)nargs;
    return backend_write(c, args, "POST", "/cluster/backends/drain", "draining");
}

static int cmd_backend_list(struct cli *c, const char **args, int nargs)
{
    (void)args, (void)nargs;
    struct answer a;
    int rc = call(c, "GET", "/cluster/backends", NULL, &a);
    if (rc)
        return rc;
    if (!c->json) {
        static const char *const hdr[] = {"POOL", "ADDRESS", "WEIGHT", "HEALTH", "REASON"};
        static const char *const keys[] = {"pool", "address", "weight", "health", "reason"};
        struct table *t = table_new(hdr, 5);
        const struct voro_json *bs = voro_json_get(a.json, "backends");
        char b[256];
        for (size_t i = 0; t && i < voro_json_count(bs) && i < TABLE_MAX_ROWS; i++)
            for (int k = 0; k < 5; k++) {
                scalar_text(voro_json_get(voro_json_item(bs, i), keys[k]), b, sizeof(b));
                table_cell(t, i + 1, k, "%s", b);
            }
        if (t)
            table_print_free(t);
    }
    answer_free(&a);
    return EXIT_OK;
}

static const struct command commands[] = {
    {"init", 0, 0, 0, "init\n  Bootstraps the node named by --admin (empty data dir) as a one-node cluster.", cmd_init},
    {"join", OPT_VIA, 0, 0,
     "join --via HOST:PORT\n  Makes the uninitialised node named by --admin join the cluster that the member at\n"
     "  HOST:PORT (its admin address) belongs to; returns once the node is a voter.",
     cmd_join},
    {"leave", 0, 0, 1,
     "leave [NODE_ID]\n  Removes NODE_ID (default: the node named by --admin) from the cluster; a leaving\n"
     "  leader hands leadership over first.",
     cmd_leave},
    {"status", 0, 0, 0,
     "status\n  Shows the answering node's Raft state, the leader, the members (role, addresses,\n"
     "  reachability, term, commit and applied index, active config version), backend health and\n"
     "  the VIP holder.",
     cmd_status},
    {"config push", OPT_EXPECTED | OPT_AUTHOR, 1, 1,
     "config push FILE [--expected-version N] [--author NAME]\n  Sends FILE (cluster-scoped keys only) as the "
     "next config version and prints it.\n  --expected-version N refuses the push unless the current version is N "
     "(0 = any).\n  On a refusal each file:line error is printed.",
     cmd_config_push},
    {"config get", OPT_VERSION, 0, 0, "config get [--version N]\n  Prints the text of the current (or Nth) config version.",
     cmd_config_get},
    {"config history", 0, 0, 0, "config history\n  Lists the stored config versions, newest first.", cmd_config_history},
    {"config rollback", OPT_AUTHOR, 1, 1,
     "config rollback N [--author NAME]\n  Commits a new config version with the text of version N.", cmd_config_rollback},
    {"backend add", OPT_WEIGHT, 2, 2, "backend add POOL HOST:PORT [--weight N]\n  Registers a backend (weight 1..65535, default 1).",
     cmd_backend_add},
    {"backend remove", 0, 2, 2, "backend remove POOL HOST:PORT\n  Removes a dynamically added backend.", cmd_backend_remove},
    {"backend drain", 0, 2, 2, "backend drain POOL HOST:PORT\n  Stops sending new connections to the backend.",
     cmd_backend_drain},
    {"backend list", 0, 0, 0, "backend list\n  Lists the dynamic backends with their health.", cmd_backend_list},
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
    fprintf(f, "usage: vorocluster [--admin HOST:PORT] [--token TOKEN] [--json] COMMAND [ARGS]\n\n"
               "Commands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++) {
        const char *nl = strchr(commands[i].usage, '\n');
        fprintf(f, "  %.*s\n", (int)(nl ? nl - commands[i].usage : (long)strlen(commands[i].usage)), commands[i].usage);
    }
    fprintf(f, "\nOptions (anywhere on the line):\n"
               "  --admin HOST:PORT  admin address of the node to talk to (env VOROCLUSTER_ADMIN, default " DEFAULT_ADMIN ")\n"
               "  --token TOKEN      the cluster token (env VOROCLUSTER_TOKEN); never printed\n"
               "  --json             print the server's JSON answer as is\n"
               "  --timeout SECONDS  how long to wait for an answer once connected (default 30)\n"
               "  -h, --help         this text; 'vorocluster COMMAND -h' for one command\n\n"
               "Exit codes: 0 ok, 1 refused by the server (4xx/5xx), 2 usage error, 3 cannot connect.\n");
}

/* Splits argv into options and positionals. Returns 0 or EXIT_USAGE after printing why. */
static int parse_args(struct cli *c, int argc, char **argv)
{
    bool opts_done = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (opts_done || a[0] != '-' || a[1] == '\0') {
            if (c->npos == MAX_POS) {
                errorf("too many arguments");
                return EXIT_USAGE;
            }
            c->pos[c->npos++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            opts_done = true;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            c->help = true;
            continue;
        }
        if (strcmp(a, "--json") == 0) {
            c->json = true;
            continue;
        }
        static const char *const with_value[] = {"--admin",  "--token",  "--via",   "--expected-version",
                                                 "--author", "--version", "--weight", "--timeout"};
        const char *val = NULL;
        size_t k;
        for (k = 0; k < sizeof(with_value) / sizeof(with_value[0]); k++) {
            size_t n = strlen(with_value[k]);
            if (strncmp(a, with_value[k], n) == 0 && (a[n] == '\0' || a[n] == '=')) {
                if (a[n] == '=') {
                    val = a + n + 1;
                } else if (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) {
                    val = argv[++i];
                } else {
                    errorf("%s needs a value", with_value[k]);
                    return EXIT_USAGE;
                }
                break;
            }
        }
        if (!val) {
            /* "--tokne=SECRET": name the option, never echo a value that may be the token */
            errorf("unknown option '%.*s' (see vorocluster -h)", (int)strcspn(a, "="), a);
            return EXIT_USAGE;
        }
        int bad = 0;
        switch (k) {
        case 0: c->admin = val; break;
        case 1: c->token = val; break;
        case 2: c->via = val, c->seen |= OPT_VIA; break;
        case 3: bad = parse_int(val, 0, INT64_MAX, &c->expected_version), c->seen |= OPT_EXPECTED; break;
        case 4: c->author = val, c->seen |= OPT_AUTHOR; break;
        case 5: bad = parse_int(val, 1, INT64_MAX, &c->version), c->seen |= OPT_VERSION; break;
        case 6: bad = parse_int(val, 1, 65535, &c->weight), c->seen |= OPT_WEIGHT; break;
        case 7: {
            int64_t secs = 0;
            bad = parse_int(val, 1, 3600, &secs);
            c->timeout_ms = (int)secs * 1000;
            break;
        }
        }
        if (bad) {
            errorf("bad value '%s' for %s", val, with_value[k]);
            return EXIT_USAGE;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct cli c = {0};
    int rc = parse_args(&c, argc, argv);
    if (rc)
        return rc;
    if (!c.admin)
        c.admin = getenv("VOROCLUSTER_ADMIN");
    if (!c.admin || !*c.admin)
        c.admin = DEFAULT_ADMIN;
    if (!c.token)
        c.token = getenv("VOROCLUSTER_TOKEN");
    if (c.npos == 0) {
        if (c.help) {
            usage(stdout);
            return EXIT_OK;
        }
        usage(stderr);
        return EXIT_USAGE;
    }

    const struct command *cmd = NULL;
    int words = 0;
    for (size_t i = 0; i < N_COMMANDS && !cmd; i++) {
        const char *sp = strchr(commands[i].name, ' ');
        if (!sp && strcmp(commands[i].name, c.pos[0]) == 0) {
            cmd = &commands[i], words = 1;
        } else if (sp && c.npos >= 2 && strncmp(commands[i].name, c.pos[0], (size_t)(sp - commands[i].name)) == 0 &&
                   c.pos[0][sp - commands[i].name] == '\0' && strcmp(sp + 1, c.pos[1]) == 0) {
            cmd = &commands[i], words = 2;
        }
    }
    if (!cmd) {
        bool group = strcmp(c.pos[0], "config") == 0 || strcmp(c.pos[0], "backend") == 0;
        if (group && c.help) { /* "vorocluster config -h": the group's commands */
            for (size_t i = 0; i < N_COMMANDS; i++)
                if (strncmp(commands[i].name, c.pos[0], strlen(c.pos[0])) == 0)
                    printf("vorocluster %s\n\n", commands[i].usage);
            return EXIT_OK;
        }
        if (group)
            errorf("%s needs a subcommand%s%s (see vorocluster -h)", c.pos[0], c.npos > 1 ? ", not " : "",
                   c.npos > 1 ? c.pos[1] : "");
        else
            errorf("unknown command '%s' (see vorocluster -h)", c.pos[0]);
        return EXIT_USAGE;
    }
    if (c.help) {
        printf("usage: vorocluster [--admin HOST:PORT] [--token TOKEN] [--json] %s\n", cmd->usage);
        return EXIT_OK;
    }
    int nargs = c.npos - words;
    if (nargs < cmd->min_args || nargs > cmd->max_args) {
        const char *nl = strchr(cmd->usage, '\n');
        errorf("usage: vorocluster %.*s", (int)(nl ? nl - cmd->usage : (long)strlen(cmd->usage)), cmd->usage);
        return EXIT_USAGE;
    }
    if (c.seen & ~cmd->opts) {
        errorf("%s does not take %s", cmd->name,
               (c.seen & ~cmd->opts & OPT_VIA)        ? "--via"
               : (c.seen & ~cmd->opts & OPT_EXPECTED) ? "--expected-version"
               : (c.seen & ~cmd->opts & OPT_AUTHOR)   ? "--author"
               : (c.seen & ~cmd->opts & OPT_VERSION)  ? "--version"
                                                      : "--weight");
        return EXIT_USAGE;
    }
    rc = cmd->run(&c, c.pos + words, nargs);
    fflush(stdout);
    return rc;
}
