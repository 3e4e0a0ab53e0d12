/* gpusim: the HTTP endpoints (OpenAI completions/chat/embeddings/models, /metrics, /health, /control). */
#include "tests/gpusim/gpusim.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "tests/gpusim/json_scan.h"

#define DEFAULT_MAX_TOKENS 16
#define MAX_EMBED_INPUTS 2048

/* ---------------------------------------------------------------- errors */

static const char *error_type(int status)
{
    if (status >= 500)
        return "server_error";
    return "invalid_request_error";
}

void voro_gpusim_api_error_param(struct gpusim_conn *c, int status, const char *code, const char *param,
                                 const char *message)
{
    struct voro_strbuf *sb = &c->srv->scratch;
    voro_strbuf_reset(sb);
    voro_strbuf_puts(sb, "{\"error\":{\"message\":");
    voro_strbuf_json_string(sb, message);
    voro_strbuf_printf(sb, ",\"type\":\"%s\",\"param\":", error_type(status));
    if (param)
        voro_strbuf_json_string(sb, param);
    else
        voro_strbuf_puts(sb, "null");
    voro_strbuf_puts(sb, ",\"code\":");
    if (code)
        voro_strbuf_json_string(sb, code);
    else
        voro_strbuf_puts(sb, "null");
    voro_strbuf_puts(sb, "}}\n");
    voro_gpusim_conn_respond(c, status, "application/json", NULL, sb->data, sb->len);
    voro_gpusim_conn_request_done(c);
}

void voro_gpusim_api_error(struct gpusim_conn *c, int status, const char *code, const char *message)
{
    voro_gpusim_api_error_param(c, status, code, NULL, message);
}

static void respond_json(struct gpusim_conn *c, int status, const char *extra_headers)
{
    struct voro_strbuf *sb = &c->srv->scratch;
    voro_gpusim_conn_respond(c, status, "application/json", extra_headers, sb->data, sb->len);
    voro_gpusim_conn_request_done(c);
}

/* ---------------------------------------------------------------- models */

static bool id_char_ok(char ch) { return ch > 0x20 && ch < 0x7f && ch != '"' && ch != '\\' && ch != ','; }

/* An adapter's base: the base model whose id is the longest prefix of the adapter's id followed
 * by '-' (lora:llama-sql -> llama), else the first base model listed. */
static void assign_parents(struct gpusim_models *m, const bool *lora)
{
    int first_base = -1;
    for (unsigned i = 0; i < m->n && first_base < 0; i++)
        if (!lora[i])
            first_base = (int)i;
    for (unsigned i = 0; i < m->n; i++) {
        if (!lora[i])
            continue;
        int best = first_base;
        size_t best_len = 0;
        for (unsigned j = 0; j < m->n; j++) {
            size_t l = strlen(m->m[j].id);
            if (!lora[j] && l > best_len && strncmp(m->m[i].id, m->m[j].id, l) == 0 && m->m[i].id[l] == '-') {
                best = (int)j;
                best_len = l;
            }
        }
        memcpy(m->m[i].parent, m->m[best].id, sizeof(m->m[i].parent));
    }
}

int voro_gpusim_models_parse(const char *s, size_t len, struct gpusim_models *out)
{
    struct gpusim_models m;
    bool lora_of[GPUSIM_MAX_MODELS];
    bool have_base = false;
    memset(&m, 0, sizeof(m));
    size_t i = 0;
    while (i <= len) {
        size_t j = i;
        while (j < len && s[j] != ',')
            j++;
        const char *item = s + i;
        size_t n = j - i;
        i = j + 1;
        if (n == 0)
            continue;
        if (m.n >= GPUSIM_MAX_MODELS)
            return -EINVAL;
        struct gpusim_model *md = &m.m[m.n];
        bool lora = n > 5 && memcmp(item, "lora:", 5) == 0;
        if (lora) {
            item += 5;
            n -= 5;
        }
        size_t at = 0;
        while (at < n && item[at] != '@')
            at++;
        if (at == 0 || at >= sizeof(md->id) || (at < n && (n - at - 1 == 0 || n - at - 1 >= sizeof(md->version))))
            return -EINVAL;
        for (size_t k = 0; k < n; k++)
            if (!id_char_ok(item[k]))
                return -EINVAL;
        memcpy(md->id, item, at);
        if (at < n)
            memcpy(md->version, item + at + 1, n - at - 1);
        for (unsigned k = 0; k < m.n; k++)
            if (strcmp(m.m[k].id, md->id) == 0)
                return -EINVAL; /* duplicate id */
        lora_of[m.n] = lora;
        have_base |= !lora;
        m.n++;
    }
    if (!have_base)
        return -EINVAL;
    assign_parents(&m, lora_of);
    *out = m;
    return 0;
}

static const struct gpusim_model *find_model(const struct gpusim_server *srv, const char *id)
{
    for (unsigned i = 0; i < srv->cfg.models.n; i++)
        if (strcmp(srv->cfg.models.m[i].id, id) == 0)
            return &srv->cfg.models.m[i];
    return NULL;
}

static void handle_models(struct gpusim_conn *c)
{
    struct gpusim_server *srv = c->srv;
    struct voro_strbuf *sb = &srv->scratch;
    voro_strbuf_reset(sb);
    voro_strbuf_puts(sb, "{\"object\":\"list\",\"data\":[");
    for (unsigned i = 0; i < srv->cfg.models.n; i++) {
        const struct gpusim_model *m = &srv->cfg.models.m[i];
        voro_strbuf_printf(sb,
                           "%s{\"id\":\"%s\",\"object\":\"model\",\"created\":%" PRIu64
                           ",\"owned_by\":\"gpusim\",\"root\":null,\"parent\":",
                           i ? "," : "", m->id, srv->start_unix);
        if (m->parent[0])
            voro_strbuf_printf(sb, "\"%s\"", m->parent);
        else
            voro_strbuf_puts(sb, "null");
        if (m->version[0])
            voro_strbuf_printf(sb, ",\"version\":\"%s\"", m->version);
        voro_strbuf_puts(sb, "}");
    }
    voro_strbuf_puts(sb, "]}\n");
    respond_json(c, 200, NULL);
}

/* ---------------------------------------------------------------- inference */

static uint32_t chars_to_tokens(size_t chars)
{
    size_t t = (chars + 3) / 4;
    if (t == 0)
        t = 1;
    return t > UINT32_MAX ? UINT32_MAX : (uint32_t)t;
}

/* Characters of a message "content": a string, or an array of parts with "text". */
static size_t content_chars(struct gpusim_json v)
{
    if (voro_gpusim_json_type(v) == '"')
        return voro_gpusim_json_string_chars(v);
    size_t n = 0;
    struct gpusim_json_iter it;
    struct gpusim_json part, text;
    if (voro_gpusim_json_type(v) == '[' && voro_gpusim_json_iter_begin(v, &it) == 0)
        while (voro_gpusim_json_iter_next(&it, &part))
            if (voro_gpusim_json_member(part, "text", &text) == 0)
                n += voro_gpusim_json_string_chars(text);
    return n;
}

/* Prompt tokens of a completions "prompt" or embeddings "input": a string, an array of token ids,
 * or an array of those. Returns the number of inputs (0 = invalid). */
static unsigned prompt_inputs(struct gpusim_json v, uint64_t *tokens)
{
    *tokens = 0;
    char t = voro_gpusim_json_type(v);
    if (t == '"') {
        *tokens = chars_to_tokens(voro_gpusim_json_string_chars(v));
        return 1;
    }
    if (t != '[')
        return 0;
    struct gpusim_json_iter it;
    struct gpusim_json e;
    voro_gpusim_json_iter_begin(v, &it);
    unsigned n = 0, ints = 0;
    while (voro_gpusim_json_iter_next(&it, &e)) {
        char et = voro_gpusim_json_type(e);
        if (et == '0') {
            ints++;
            continue;
        }
        if (et == '"') {
            *tokens += chars_to_tokens(voro_gpusim_json_string_chars(e));
        } else if (et == '[') {
            struct gpusim_json_iter it2;
            struct gpusim_json tok;
            uint64_t k = 0;
            voro_gpusim_json_iter_begin(e, &it2);
            while (voro_gpusim_json_iter_next(&it2, &tok)) {
                if (voro_gpusim_json_type(tok) != '0')
                    return 0;
                k++;
            }
            if (k == 0)
                return 0;
            *tokens += k;
        } else {
            return 0;
        }
        n++;
    }
    if (ints > 0) { /* a flat array of token ids is one input */
        if (n > 0)
            return 0;
        *tokens = ints;
        return 1;
    }
    return n;
}

static uint64_t rng_next(struct gpusim_server *srv)
{
    uint64_t x = srv->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    srv->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* Deterministic for a given --seed and request order. */
static bool inject_failure(struct gpusim_server *srv)
{
    double f = srv->cfg.knobs.fail_rate;
    if (f <= 0)
        return false;
    double r = (double)(rng_next(srv) >> 11) / 9007199254740992.0; /* [0, 1) */
    return r < f;
}

static void fail_injected(struct gpusim_conn *c)
{
    c->srv->stats.failed_injected++;
    voro_gpusim_api_error(c, 500, "internal_error",
                          "The server had an error while processing your request (simulated by gpusim).");
}

/* Parses the common request fields; answers 400/404 itself and returns -1 then. */
static int parse_model(struct gpusim_conn *c, struct gpusim_json root, char *model, size_t cap,
                       const struct gpusim_model **out)
{
    struct gpusim_json v;
    if (voro_gpusim_json_member(root, "model", &v) != 0) {
        voro_gpusim_api_error_param(c, 400, "missing_required_parameter", "model",
                                    "Missing required parameter: 'model'.");
        return -1;
    }
    int rc = voro_gpusim_json_string(v, model, cap);
    if (rc == -EINVAL) {
        voro_gpusim_api_error_param(c, 400, "invalid_type", "model", "Invalid type for 'model': expected a string.");
        return -1;
    }
    if (rc == 0)
        *out = find_model(c->srv, model);
    if (rc != 0 || !*out) {
        char msg[GPUSIM_MAX_MODEL_ID + 96];
        if (rc != 0)
            snprintf(msg, sizeof(msg), "The model does not exist or you do not have access to it.");
        else
            snprintf(msg, sizeof(msg), "The model `%s` does not exist or you do not have access to it.", model);
        voro_gpusim_api_error(c, 404, "model_not_found", msg);
        return -1;
    }
    return 0;
}

static int parse_root(struct gpusim_conn *c, struct gpusim_json *root)
{
    if (voro_gpusim_json_root(voro_gpusim_conn_body(c), c->body_len, root) != 0 ||
        voro_gpusim_json_type(*root) != '{') {
        voro_gpusim_api_error(
            c, 400, NULL,
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using "
            "your HTTP library correctly. The OpenAI API expects a JSON payload.)");
        return -1;
    }
    return 0;
}

static int get_int_field(struct gpusim_conn *c, struct gpusim_json root, const char *key, int64_t lo, int64_t hi,
                         int64_t *out)
{
    struct gpusim_json v;
    if (voro_gpusim_json_member(root, key, &v) != 0 || voro_gpusim_json_type(v) == 'n')
        return 0;
    int64_t x;
    if (voro_gpusim_json_int(v, &x) != 0 || x < lo || x > hi) {
        char msg[160];
        snprintf(msg, sizeof(msg), "Invalid '%s': expected an integer between %" PRId64 " and %" PRId64 ".", key, lo,
                 hi);
        voro_gpusim_api_error_param(c, 400, "invalid_value", key, msg);
        return -1;
    }
    *out = x;
    return 0;
}

static int get_bool_field(struct gpusim_conn *c, struct gpusim_json obj, const char *key, bool *out)
{
    struct gpusim_json v;
    if (voro_gpusim_json_member(obj, key, &v) != 0 || voro_gpusim_json_type(v) == 'n')
        return 0;
    if (voro_gpusim_json_bool(v, out) != 0) {
        char msg[96];
        snprintf(msg, sizeof(msg), "Invalid type for '%s': expected a boolean.", key);
        voro_gpusim_api_error_param(c, 400, "invalid_type", key, msg);
        return -1;
    }
    return 0;
}

static void handle_generate(struct gpusim_conn *c, enum gpusim_api api)
{
    struct gpusim_server *srv = c->srv;
    struct gpusim_seq *s = &c->seq;
    struct gpusim_json root, v;
    const struct gpusim_model *model = NULL;

    if (parse_root(c, &root) < 0 || parse_model(c, root, s->model, sizeof(s->model), &model) < 0)
        return;
    uint64_t prompt_tokens = 0;
    if (api == GPUSIM_API_CHAT) {
        struct gpusim_json_iter it;
        struct gpusim_json msg, content;
        unsigned n_msgs = 0;
        size_t chars = 0;
        if (voro_gpusim_json_member(root, "messages", &v) != 0 || voro_gpusim_json_type(v) != '[') {
            voro_gpusim_api_error_param(c, 400, "missing_required_parameter", "messages",
                                        "Missing required parameter: 'messages'.");
            return;
        }
        voro_gpusim_json_iter_begin(v, &it);
        while (voro_gpusim_json_iter_next(&it, &msg)) {
            if (voro_gpusim_json_type(msg) != '{') {
                voro_gpusim_api_error_param(c, 400, "invalid_type", "messages",
                                            "Invalid type for 'messages': expected an array of objects.");
                return;
            }
            n_msgs++;
            if (voro_gpusim_json_member(msg, "content", &content) == 0)
                chars += content_chars(content);
        }
        if (n_msgs == 0) {
            voro_gpusim_api_error_param(c, 400, "empty_array", "messages",
                                        "Invalid 'messages': empty array. Expected an array with minimum length 1.");
            return;
        }
        prompt_tokens = chars_to_tokens(chars);
    } else {
        if (voro_gpusim_json_member(root, "prompt", &v) != 0 || prompt_inputs(v, &prompt_tokens) == 0) {
            voro_gpusim_api_error_param(c, 400, "invalid_value", "prompt",
                                        "Invalid 'prompt': expected a string, an array of strings or token arrays.");
            return;
        }
    }
    int64_t max_tokens = DEFAULT_MAX_TOKENS, n = 1;
    bool stream = false, include_usage = false;
    if (get_int_field(c, root, "max_tokens", 1, GPUSIM_MAX_TOKENS_LIMIT, &max_tokens) < 0 ||
        get_int_field(c, root, "max_completion_tokens", 1, GPUSIM_MAX_TOKENS_LIMIT, &max_tokens) < 0 ||
        get_int_field(c, root, "n", 1, GPUSIM_MAX_N, &n) < 0 || get_bool_field(c, root, "stream", &stream) < 0)
        return;
    if (voro_gpusim_json_member(root, "stream_options", &v) == 0 && voro_gpusim_json_type(v) == '{' &&
        get_bool_field(c, v, "include_usage", &include_usage) < 0)
        return;
    if (inject_failure(srv)) {
        fail_injected(c);
        return;
    }
    s->api = api;
    s->stream = stream;
    s->include_usage = stream && include_usage;
    s->n = (unsigned)n;
    s->max_tokens = (uint32_t)max_tokens;
    s->prompt_tokens = prompt_tokens > UINT32_MAX ? UINT32_MAX : (uint32_t)prompt_tokens;
    s->id = ++srv->next_id;
    s->created = (uint64_t)time(NULL);
    s->arrival_us = voro_now_us();
    voro_gpusim_engine_submit(srv, s);
}

static void extra_headers(const struct gpusim_seq *s, char *buf, size_t cap)
{
    const struct gpusim_model *m = find_model(s->conn->srv, s->model);
    int n = snprintf(buf, cap, "X-Gpusim-Gpu: %u\r\n", s->gpu);
    if (m && m->version[0] && n > 0 && (size_t)n < cap)
        snprintf(buf + n, cap - (size_t)n, "X-Gpusim-Model-Version: %s\r\n", m->version);
}

static void put_id(struct voro_strbuf *sb, const struct gpusim_seq *s)
{
    voro_strbuf_printf(sb, "\"id\":\"%s-gpusim-%" PRIu64 "\"", s->api == GPUSIM_API_CHAT ? "chatcmpl" : "cmpl", s->id);
}

static void put_usage(struct voro_strbuf *sb, const struct gpusim_seq *s)
{
    uint64_t completion = (uint64_t)s->generated * s->n;
    voro_strbuf_printf(
        sb, "\"usage\":{\"prompt_tokens\":%" PRIu32 ",\"completion_tokens\":%" PRIu64 ",\"total_tokens\":%" PRIu64 "}",
        s->prompt_tokens, completion, s->prompt_tokens + completion);
}

static void stream_token(struct gpusim_conn *c, struct gpusim_seq *s, bool finished)
{
    struct gpusim_server *srv = c->srv;
    struct voro_strbuf *sb = &srv->scratch;
    const bool chat = s->api == GPUSIM_API_CHAT;
    if (s->generated == 1) {
        char hdrs[256];
        extra_headers(s, hdrs, sizeof(hdrs));
        voro_gpusim_conn_stream_begin(c, hdrs);
    }
    voro_strbuf_reset(sb);
    for (unsigned i = 0; i < s->n; i++) {
        voro_strbuf_puts(sb, "data: {");
        put_id(sb, s);
        voro_strbuf_printf(sb,
                           ",\"object\":\"%s\",\"created\":%" PRIu64 ",\"model\":\"%s\",\"system_fingerprint\":\"%s\","
                           "\"choices\":[{\"index\":%u,",
                           chat ? "chat.completion.chunk" : "text_completion", s->created, s->model, srv->cfg.name, i);
        const char *sp = s->generated == 1 ? "" : " ";
        if (chat)
            voro_strbuf_printf(sb, "\"delta\":{%s\"content\":\"%stok%" PRIu32 "\"},",
                               s->generated == 1 ? "\"role\":\"assistant\"," : "", sp, s->generated);
        else
            voro_strbuf_printf(sb, "\"text\":\"%stok%" PRIu32 "\",", sp, s->generated);
        voro_strbuf_printf(sb, "\"logprobs\":null,\"finish_reason\":%s}]", finished ? "\"length\"" : "null");
        if (s->include_usage)
            voro_strbuf_puts(sb, ",\"usage\":null");
        voro_strbuf_puts(sb, "}\n\n");
        /* One SSE event per write, so a reader sees each token as soon as it is produced. */
        voro_gpusim_conn_stream_chunk(c, sb->data, sb->len);
        voro_strbuf_reset(sb);
    }
    if (!finished)
        return;
    if (s->include_usage) {
        voro_strbuf_puts(sb, "data: {");
        put_id(sb, s);
        voro_strbuf_printf(sb,
                           ",\"object\":\"%s\",\"created\":%" PRIu64
                           ",\"model\":\"%s\",\"system_fingerprint\":\"%s\",\"choices\":[],",
                           chat ? "chat.completion.chunk" : "text_completion", s->created, s->model, srv->cfg.name);
        put_usage(sb, s);
        voro_strbuf_puts(sb, "}\n\n");
        voro_gpusim_conn_stream_chunk(c, sb->data, sb->len);
    }
    voro_gpusim_conn_stream_chunk(c, "data: [DONE]\n\n", 14);
    voro_gpusim_conn_stream_end(c);
    voro_gpusim_conn_request_done(c);
}

static void complete_whole(struct gpusim_conn *c, struct gpusim_seq *s)
{
    struct gpusim_server *srv = c->srv;
    struct voro_strbuf *sb = &srv->scratch;
    const bool chat = s->api == GPUSIM_API_CHAT;
    voro_strbuf_reset(sb);
    voro_strbuf_puts(sb, "{");
    put_id(sb, s);
    voro_strbuf_printf(
        sb, ",\"object\":\"%s\",\"created\":%" PRIu64 ",\"model\":\"%s\",\"system_fingerprint\":\"%s\",\"choices\":[",
        chat ? "chat.completion" : "text_completion", s->created, s->model, srv->cfg.name);
    for (unsigned i = 0; i < s->n; i++) {
        voro_strbuf_printf(sb, "%s{\"index\":%u,", i ? "," : "", i);
        voro_strbuf_puts(sb, chat ? "\"message\":{\"role\":\"assistant\",\"content\":\"" : "\"text\":\"");
        for (uint32_t k = 1; k <= s->generated; k++)
            voro_strbuf_printf(sb, k == 1 ? "tok%" PRIu32 : " tok%" PRIu32, k);
        voro_strbuf_puts(sb, chat ? "\"}," : "\",");
        voro_strbuf_puts(sb, "\"logprobs\":null,\"finish_reason\":\"length\"}");
    }
    voro_strbuf_puts(sb, "],");
    put_usage(sb, s);
    voro_strbuf_puts(sb, "}\n");
    char hdrs[256];
    extra_headers(s, hdrs, sizeof(hdrs));
    respond_json(c, 200, hdrs);
}

void voro_gpusim_api_token(struct gpusim_seq *s, bool finished)
{
    struct gpusim_conn *c = s->conn;
    if (c->close_called)
        return;
    if (s->stream)
        stream_token(c, s, finished);
    else if (finished)
        complete_whole(c, s);
}

/* ---------------------------------------------------------------- embeddings */

static uint64_t fnv1a(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ULL;
    }
    return h ? h : 1;
}

static void put_base64(struct voro_strbuf *sb, const unsigned char *d, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char out[4];
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)d[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)d[i + 1] << 8;
        if (i + 2 < n)
            v |= d[i + 2];
        out[0] = tab[(v >> 18) & 63];
        out[1] = tab[(v >> 12) & 63];
        out[2] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        out[3] = i + 2 < n ? tab[v & 63] : '=';
        voro_strbuf_append(sb, out, 4);
    }
}

/* A deterministic unit vector derived from the input's text: equal inputs embed equally. */
static void put_embedding(struct voro_strbuf *sb, struct gpusim_json input, unsigned dim, bool b64)
{
    uint64_t x = fnv1a(input.p, input.len);
    float vec[1024];
    double norm = 0;
    for (unsigned i = 0; i < dim; i++) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        double r = (double)((x * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0 * 2.0 - 1.0;
        vec[i] = (float)r;
        norm += r * r;
    }
    norm = norm > 0 ? sqrt(norm) : 1;
    for (unsigned i = 0; i < dim; i++)
        vec[i] = (float)(vec[i] / norm);
    if (b64) {
        voro_strbuf_append(sb, "\"", 1);
        put_base64(sb, (const unsigned char *)vec, dim * sizeof(float)); /* little-endian float32, as OpenAI */
        voro_strbuf_append(sb, "\"", 1);
        return;
    }
    voro_strbuf_append(sb, "[", 1);
    for (unsigned i = 0; i < dim; i++)
        voro_strbuf_printf(sb, i ? ",%.7g" : "%.7g", (double)vec[i]);
    voro_strbuf_append(sb, "]", 1);
}

static void handle_embeddings(struct gpusim_conn *c)
{
    struct gpusim_server *srv = c->srv;
    struct gpusim_json root, input, fmt;
    const struct gpusim_model *model = NULL;
    char name[GPUSIM_MAX_MODEL_ID];
    if (parse_root(c, &root) < 0 || parse_model(c, root, name, sizeof(name), &model) < 0)
        return;
    uint64_t tokens = 0;
    unsigned n_inputs = 0;
    if (voro_gpusim_json_member(root, "input", &input) != 0 || (n_inputs = prompt_inputs(input, &tokens)) == 0 ||
        n_inputs > MAX_EMBED_INPUTS) {
        voro_gpusim_api_error_param(c, 400, "invalid_value", "input",
                                    "Invalid 'input': expected a non-empty string, array of strings or token arrays.");
        return;
    }
    bool b64 = false;
    if (voro_gpusim_json_member(root, "encoding_format", &fmt) == 0) {
        char f[16];
        if (voro_gpusim_json_string(fmt, f, sizeof(f)) != 0 || (strcmp(f, "float") != 0 && strcmp(f, "base64") != 0)) {
            voro_gpusim_api_error_param(c, 400, "invalid_value", "encoding_format",
                                        "Invalid 'encoding_format': expected 'float' or 'base64'.");
            return;
        }
        b64 = strcmp(f, "base64") == 0;
    }
    if (inject_failure(srv)) {
        fail_injected(c);
        return;
    }
    struct voro_strbuf *sb = &srv->scratch;
    voro_strbuf_reset(sb);
    voro_strbuf_puts(sb, "{\"object\":\"list\",\"data\":[");
    char t = voro_gpusim_json_type(input);
    bool single = t == '"';
    if (t == '[') { /* a flat array of token ids is one input */
        struct gpusim_json_iter it;
        struct gpusim_json e;
        voro_gpusim_json_iter_begin(input, &it);
        single = voro_gpusim_json_iter_next(&it, &e) && voro_gpusim_json_type(e) == '0';
    }
    if (single) {
        voro_strbuf_puts(sb, "{\"object\":\"embedding\",\"index\":0,\"embedding\":");
        put_embedding(sb, input, srv->cfg.embed_dim, b64);
        voro_strbuf_puts(sb, "}");
    } else {
        struct gpusim_json_iter it;
        struct gpusim_json e;
        unsigned i = 0;
        voro_gpusim_json_iter_begin(input, &it);
        while (voro_gpusim_json_iter_next(&it, &e)) {
            voro_strbuf_printf(sb, "%s{\"object\":\"embedding\",\"index\":%u,\"embedding\":", i ? "," : "", i);
            put_embedding(sb, e, srv->cfg.embed_dim, b64);
            voro_strbuf_puts(sb, "}");
            i++;
        }
    }
    voro_strbuf_printf(sb,
                       "],\"model\":\"%s\",\"usage\":{\"prompt_tokens\":%" PRIu64 ",\"total_tokens\":%" PRIu64 "}}\n",
                       model->id, tokens, tokens);
    srv->stats.embeddings++;
    srv->stats.prompt_tokens += tokens;
    respond_json(c, 200, NULL);
}

/* ---------------------------------------------------------------- control */

static void control_state(struct gpusim_server *srv, struct voro_strbuf *sb)
{
    const struct gpusim_knobs *k = &srv->cfg.knobs;
    voro_strbuf_reset(sb);
    voro_strbuf_printf(sb,
                       "{\"name\":\"%s\",\"slow\":%g,\"fail_rate\":%g,\"hang\":%s,\"step_ms\":%g,\"prefill_ms\":%g,"
                       "\"xid\":%" PRIu64 ",\"models\":[",
                       srv->cfg.name, k->slow, k->fail_rate, k->hang ? "true" : "false", k->step_ms, k->prefill_ms,
                       k->xid);
    for (unsigned i = 0; i < srv->cfg.models.n; i++) {
        const struct gpusim_model *m = &srv->cfg.models.m[i];
        voro_strbuf_printf(sb, "%s\"%s%s%s%s\"", i ? "," : "", m->parent[0] ? "lora:" : "", m->id,
                           m->version[0] ? "@" : "", m->version);
    }
    voro_strbuf_puts(sb, "]}\n");
}

static int parse_double(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    if (errno || end == s || *end || !(d >= lo && d <= hi))
        return -EINVAL;
    *out = d;
    return 0;
}

static int parse_flag(const char *s, bool *out)
{
    if (!strcmp(s, "1") || !strcmp(s, "true") || !strcmp(s, "on")) {
        *out = true;
        return 0;
    }
    if (!strcmp(s, "0") || !strcmp(s, "false") || !strcmp(s, "off")) {
        *out = false;
        return 0;
    }
    return -EINVAL;
}

/* Applies one knob to `k` (a copy: nothing changes unless every pair is valid). */
static int apply_knob(struct gpusim_server *srv, struct gpusim_knobs *k, struct gpusim_models *models, bool *models_set,
                      bool *die, const char *key, const char *val)
{
    double d;
    if (!strcmp(key, "slow"))
        return parse_double(val, 0.001, 1e6, &k->slow);
    if (!strcmp(key, "fail_rate"))
        return parse_double(val, 0, 1, &k->fail_rate);
    if (!strcmp(key, "hang"))
        return parse_flag(val, &k->hang);
    if (!strcmp(key, "die"))
        return parse_flag(val, die);
    if (!strcmp(key, "step_ms"))
        return parse_double(val, 0, 1e6, &k->step_ms);
    if (!strcmp(key, "prefill_ms"))
        return parse_double(val, 0, 1e6, &k->prefill_ms);
    if (!strcmp(key, "xid")) {
        if (parse_double(val, 0, 1e9, &d) < 0 || d != floor(d))
            return -EINVAL;
        k->xid = (uint64_t)d;
        return 0;
    }
    if (!strcmp(key, "models")) {
        *models_set = true;
        return voro_gpusim_models_parse(val, strlen(val), models);
    }
    (void)srv;
    return -ENOENT;
}

static int unhex(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Percent-decodes s[0..n) into dst (cap bytes, NUL-terminated); '+' is a space. */
static int url_decode(const char *s, size_t n, char *dst, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '+') {
            ch = ' ';
        } else if (ch == '%') {
            if (i + 2 >= n)
                return -EINVAL;
            int hi = unhex(s[i + 1]), lo = unhex(s[i + 2]);
            if (hi < 0 || lo < 0)
                return -EINVAL;
            ch = (char)(hi << 4 | lo);
            i += 2;
        }
        if (o + 1 >= cap)
            return -ENOSPC;
        dst[o++] = ch;
    }
    dst[o] = '\0';
    return 0;
}

static void handle_control(struct gpusim_conn *c, const char *query, size_t qlen, bool is_post)
{
    struct gpusim_server *srv = c->srv;
    struct gpusim_knobs k = srv->cfg.knobs;
    struct gpusim_models models;
    bool models_set = false, die = false;
    char key[32], val[GPUSIM_MAX_MODELS * (GPUSIM_MAX_MODEL_ID + 40)];
    int rc = 0;

    /* Query string pairs first, then a JSON object body (its values: numbers, booleans, strings). */
    size_t i = 0;
    while (rc == 0 && i < qlen) {
        size_t j = i;
        while (j < qlen && query[j] != '&')
            j++;
        size_t eq = i;
        while (eq < j && query[eq] != '=')
            eq++;
        if (j > i) {
            if (url_decode(query + i, eq - i, key, sizeof(key)) < 0 ||
                url_decode(query + (eq < j ? eq + 1 : j), eq < j ? j - eq - 1 : 0, val, sizeof(val)) < 0)
                rc = -EINVAL;
            else
                rc = apply_knob(srv, &k, &models, &models_set, &die, key, eq < j ? val : "1");
        }
        i = j + 1;
    }
    if (rc == 0 && is_post && c->body_len > 0) {
        struct gpusim_json root, v, kv;
        struct gpusim_json_iter it;
        if (voro_gpusim_json_root(voro_gpusim_conn_body(c), c->body_len, &root) != 0 ||
            voro_gpusim_json_type(root) != '{') {
            rc = -EINVAL;
        } else {
            voro_gpusim_json_iter_begin(root, &it);
            while (rc == 0 && voro_gpusim_json_iter_member(&it, &kv, &v)) {
                if (voro_gpusim_json_string(kv, key, sizeof(key)) != 0) {
                    rc = -EINVAL;
                    break;
                }
                char t = voro_gpusim_json_type(v);
                if (t == '"') {
                    if (voro_gpusim_json_string(v, val, sizeof(val)) != 0)
                        rc = -EINVAL;
                } else if (t == 't' || t == 'f') {
                    snprintf(val, sizeof(val), "%s", t == 't' ? "1" : "0");
                } else if (t == '0' && v.len < 64) {
                    memcpy(val, v.p, v.len);
                    val[v.len] = '\0';
                } else {
                    rc = -EINVAL;
                }
                if (rc == 0)
                    rc = apply_knob(srv, &k, &models, &models_set, &die, key, val);
            }
        }
    }
    if (rc != 0) {
        char msg[128];
        snprintf(msg, sizeof(msg), "Invalid control request%s%s%s.", rc == -ENOENT ? " (unknown knob '" : "",
                 rc == -ENOENT ? key : "", rc == -ENOENT ? "')" : "");
        voro_gpusim_api_error(c, 400, "invalid_value", msg);
        return;
    }
    if (die)
        _exit(3); /* a crash: no answer, no cleanup */
    srv->cfg.knobs = k;
    if (models_set)
        srv->cfg.models = models;
    control_state(srv, &srv->scratch);
    respond_json(c, 200, NULL);
}

/* ---------------------------------------------------------------- routing */

void voro_gpusim_api_handle(struct gpusim_conn *c)
{
    struct gpusim_server *srv = c->srv;
    const struct voro_http1_parser *p = &c->parser;
    const char *target = c->in + p->target.off;
    size_t tlen = p->target.len;
    size_t plen = 0;
    while (plen < tlen && target[plen] != '?')
        plen++;
    const char *query = plen < tlen ? target + plen + 1 : "";
    size_t qlen = plen < tlen ? tlen - plen - 1 : 0;
    struct voro_http1_span path = {p->target.off, (uint32_t)plen};
    const bool get = voro_http1_span_eq(c->in, p->method, "GET");
    const bool post = voro_http1_span_eq(c->in, p->method, "POST");

    if (voro_http1_span_eq(c->in, path, "/control")) {
        if (!post && !(get && qlen == 0)) /* GET only reads the state: changes need POST */
            goto method;
        handle_control(c, query, qlen, post);
        return;
    }
    if (srv->cfg.knobs.hang) {
        c->hung = true; /* stays busy: nothing more is answered on this connection */
        return;
    }
    if (voro_http1_span_eq(c->in, path, "/v1/chat/completions")) {
        if (!post)
            goto method;
        handle_generate(c, GPUSIM_API_CHAT);
    } else if (voro_http1_span_eq(c->in, path, "/v1/completions")) {
        if (!post)
            goto method;
        handle_generate(c, GPUSIM_API_COMPLETION);
    } else if (voro_http1_span_eq(c->in, path, "/v1/embeddings")) {
        if (!post)
            goto method;
        handle_embeddings(c);
    } else if (voro_http1_span_eq(c->in, path, "/v1/models")) {
        if (!get)
            goto method;
        handle_models(c);
    } else if (voro_http1_span_eq(c->in, path, "/metrics")) {
        if (!get)
            goto method;
        voro_gpusim_metrics_render(srv, &srv->scratch);
        voro_gpusim_conn_respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", NULL, srv->scratch.data,
                                 srv->scratch.len);
        voro_gpusim_conn_request_done(c);
    } else if (voro_http1_span_eq(c->in, path, "/health")) {
        if (!get)
            goto method;
        voro_strbuf_reset(&srv->scratch);
        voro_strbuf_printf(&srv->scratch, "{\"status\":\"ok\",\"name\":\"%s\"}\n", srv->cfg.name);
        respond_json(c, 200, NULL);
    } else {
        voro_gpusim_api_error(c, 404, "not_found", "Unknown endpoint.");
    }
    return;
method:
    voro_gpusim_api_error(c, 405, "method_not_allowed", "Method not allowed for this endpoint.");
}
