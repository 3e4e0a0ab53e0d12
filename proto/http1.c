/* HTTP/1.1 head parser and chunked decoder: byte-driven state machines resumable at any byte. */
#include "proto/http1.h"

#include <string.h>

enum {
    ST_START = 0,
    ST_START_LF,
    ST_METHOD,
    ST_TARGET,
    ST_REQ_VERSION,
    ST_REQ_LINE_LF,
    ST_RESP_VERSION,
    ST_STATUS,
    ST_STATUS_SP,
    ST_REASON,
    ST_STATUS_LF,
    ST_HDR_START,
    ST_HDR_NAME,
    ST_HDR_OWS,
    ST_HDR_VALUE,
    ST_HDR_LF,
    ST_END_LF,
    ST_DONE,
    ST_ERROR,
};

/* tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA */
static bool is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '.': case '^': case '_': case '`': case '|': case '~':
        return true;
    default:
        return false;
    }
}

/* field-vchar (VCHAR / obs-text) */
static bool is_field_vchar(unsigned char c) { return (c >= 0x21 && c != 0x7f); }
static bool is_ws(unsigned char c) { return c == ' ' || c == '\t'; }
static unsigned char lower(unsigned char c) { return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c; }

static enum voro_http1_result fail(struct voro_http1_parser *p, int status, const char *reason)
{
    p->state = ST_ERROR;
    p->error_status = status;
    p->error_reason = reason;
    return VORO_HTTP1_ERROR;
}

void voro_http1_init(struct voro_http1_parser *p, enum voro_http1_kind kind, const struct voro_http1_limits *limits)
{
    p->kind = kind;
    p->limits.max_line = VORO_HTTP1_DEFAULT_MAX_LINE;
    p->limits.max_head = VORO_HTTP1_DEFAULT_MAX_HEAD;
    p->limits.max_headers = VORO_HTTP1_MAX_HEADERS;
    if (limits) {
        if (limits->max_line)
            p->limits.max_line = limits->max_line;
        if (limits->max_head)
            p->limits.max_head = limits->max_head;
        if (limits->max_headers && limits->max_headers < VORO_HTTP1_MAX_HEADERS)
            p->limits.max_headers = limits->max_headers;
    }
    voro_http1_reset(p);
}

void voro_http1_reset(struct voro_http1_parser *p)
{
    enum voro_http1_kind kind = p->kind;
    struct voro_http1_limits limits = p->limits;
    /* the header array is not cleared: n_headers bounds what is valid */
    memset(p, 0, offsetof(struct voro_http1_parser, headers));
    memset(&p->error_status, 0, sizeof(*p) - offsetof(struct voro_http1_parser, error_status));
    p->kind = kind;
    p->limits = limits;
    p->state = (kind == VORO_HTTP1_REQUEST) ? ST_START : ST_RESP_VERSION;
}

bool voro_http1_span_eq(const char *buf, struct voro_http1_span sp, const char *s)
{
    size_t n = strlen(s);
    return sp.len == n && memcmp(buf + sp.off, s, n) == 0;
}

bool voro_http1_span_ieq(const char *buf, struct voro_http1_span sp, const char *s)
{
    size_t n = strlen(s);
    if (sp.len != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)buf[sp.off + i]) != lower((unsigned char)s[i]))
            return false;
    return true;
}

const struct voro_http1_header *voro_http1_find_header(const struct voro_http1_parser *p, const char *buf,
                                                       const char *name)
{
    for (uint32_t i = 0; i < p->n_headers; i++)
        if (voro_http1_span_ieq(buf, p->headers[i].name, name))
            return &p->headers[i];
    return NULL;
}

/* "HTTP/" DIGIT "." DIGIT: 0 ok (minor set), 505 other version, 400 malformed. */
static int check_version(struct voro_http1_parser *p, const char *v, uint32_t n)
{
    if (n != 8 || memcmp(v, "HTTP/", 5) != 0 || v[6] != '.' || v[5] < '0' || v[5] > '9' || v[7] < '0' ||
        v[7] > '9')
        return 400;
    if (v[5] != '1' || (v[7] != '0' && v[7] != '1'))
        return 505;
    p->version_minor = v[7] - '0';
    return 0;
}

/* Iterates the elements of a comma-separated list value (RFC 9110 5.6.1), calling `fn` on each
 * element's leading token (parameters after ';' are skipped). Returns what fn returns if non-zero. */
typedef int (*list_fn)(struct voro_http1_parser *p, const char *tok, uint32_t n);

static int for_each_token(struct voro_http1_parser *p, const char *v, uint32_t n, list_fn fn)
{
    uint32_t i = 0;
    while (i < n) {
        while (i < n && (is_ws((unsigned char)v[i]) || v[i] == ','))
            i++;
        if (i >= n)
            break;
        uint32_t start = i;
        while (i < n && is_tchar((unsigned char)v[i]))
            i++;
        int rc = fn(p, v + start, i - start);
        if (rc)
            return rc;
        while (i < n && v[i] != ',')
            i++;
    }
    return 0;
}

static bool tok_ieq(const char *tok, uint32_t n, const char *s)
{
    size_t l = strlen(s);
    if (n != l)
        return false;
    for (uint32_t i = 0; i < n; i++)
        if (lower((unsigned char)tok[i]) != (unsigned char)s[i])
            return false;
    return true;
}

static int te_token(struct voro_http1_parser *p, const char *tok, uint32_t n)
{
    if (n == 0)
        return 400;
    if (tok_ieq(tok, n, "chunked")) {
        p->te_chunked_count++;
        p->te_last_chunked = 1;
    } else if (tok_ieq(tok, n, "gzip") || tok_ieq(tok, n, "x-gzip") || tok_ieq(tok, n, "deflate") ||
               tok_ieq(tok, n, "compress") || tok_ieq(tok, n, "x-compress")) {
        p->te_last_chunked = 0;
    } else {
        p->te_unknown = 1;
        p->te_last_chunked = 0;
    }
    return 0;
}

static int conn_token(struct voro_http1_parser *p, const char *tok, uint32_t n)
{
    if (tok_ieq(tok, n, "close"))
        p->flags |= VORO_HTTP1_F_CONN_CLOSE;
    else if (tok_ieq(tok, n, "keep-alive"))
        p->flags |= VORO_HTTP1_F_CONN_KEEP_ALIVE;
    else if (tok_ieq(tok, n, "upgrade"))
        p->flags |= VORO_HTTP1_F_CONN_UPGRADE;
    return 0;
}

/* Semantic checks of one complete field line; returns NEED_MORE to go on. */
static enum voro_http1_result apply_header(struct voro_http1_parser *p, const char *buf,
                                           const struct voro_http1_header *h)
{
    const char *v = buf + h->value.off;
    uint32_t n = h->value.len;
    if (voro_http1_span_ieq(buf, h->name, "content-length")) {
        if (p->flags & VORO_HTTP1_F_CONTENT_LENGTH)
            return fail(p, 400, "duplicate content-length");
        if (n == 0 || n > 18)
            return fail(p, 400, "invalid content-length");
        uint64_t val = 0;
        for (uint32_t i = 0; i < n; i++) {
            if (v[i] < '0' || v[i] > '9')
                return fail(p, 400, "invalid content-length");
            val = val * 10 + (uint64_t)(v[i] - '0');
        }
        p->content_length = val;
        p->flags |= VORO_HTTP1_F_CONTENT_LENGTH;
    } else if (voro_http1_span_ieq(buf, h->name, "transfer-encoding")) {
        p->flags |= VORO_HTTP1_F_TRANSFER_ENCODING;
        if (n == 0 || for_each_token(p, v, n, te_token) != 0)
            return fail(p, 400, "invalid transfer-encoding");
    } else if (voro_http1_span_ieq(buf, h->name, "host")) {
        if (p->kind == VORO_HTTP1_REQUEST && ++p->n_host > 1)
            return fail(p, 400, "duplicate host");
    } else if (voro_http1_span_ieq(buf, h->name, "connection")) {
        for_each_token(p, v, n, conn_token);
    } else if (voro_http1_span_ieq(buf, h->name, "expect")) {
        if (tok_ieq(v, n, "100-continue"))
            p->flags |= VORO_HTTP1_F_EXPECT_CONTINUE;
    }
    return VORO_HTTP1_NEED_MORE;
}

static enum voro_http1_result finish_head(struct voro_http1_parser *p)
{
    bool req = p->kind == VORO_HTTP1_REQUEST;
    if (req && p->version_minor == 1 && p->n_host == 0)
        return fail(p, 400, "missing host");
    if (p->flags & VORO_HTTP1_F_TRANSFER_ENCODING) {
        if (p->flags & VORO_HTTP1_F_CONTENT_LENGTH)
            return fail(p, 400, "transfer-encoding with content-length");
        if (req && p->version_minor == 0)
            return fail(p, 400, "transfer-encoding in http/1.0");
        if (p->te_unknown)
            return fail(p, 501, "unknown transfer coding");
        if (p->te_chunked_count > 1)
            return fail(p, 400, "chunked applied twice");
        if (p->te_chunked_count == 1 && !p->te_last_chunked)
            return fail(p, 400, "chunked is not the final coding");
        if (req && !p->te_last_chunked)
            return fail(p, 400, "final transfer coding not chunked");
        if (p->te_last_chunked)
            p->flags |= VORO_HTTP1_F_CHUNKED;
    }
    p->head_len = p->pos;
    p->state = ST_DONE;
    return VORO_HTTP1_DONE;
}

enum voro_http1_result voro_http1_parse(struct voro_http1_parser *p, const char *buf, size_t len)
{
    if (p->state == ST_DONE)
        return VORO_HTTP1_DONE;
    if (p->state == ST_ERROR)
        return VORO_HTTP1_ERROR;
    const uint32_t max_head = p->limits.max_head;
    const uint32_t max_line = p->limits.max_line;
    while (p->pos < len) {
        if (p->pos >= max_head)
            return fail(p, 431, "request header fields too large");
        const unsigned char c = (unsigned char)buf[p->pos];
        const uint32_t at = p->pos++;
        switch (p->state) {
        case ST_START:
            if (c == '\r') {
                p->state = ST_START_LF;
                break;
            }
            if (!is_tchar(c))
                return fail(p, 400, "invalid method");
            p->line_start = p->mark = at;
            p->state = ST_METHOD;
            break;
        case ST_START_LF:
            if (c != '\n')
                return fail(p, 400, "bare CR");
            if (++p->empty_lines > 2)
                return fail(p, 400, "empty lines before request");
            p->state = ST_START;
            break;
        case ST_METHOD:
            if (c == ' ') {
                p->method.off = p->mark;
                p->method.len = at - p->mark;
                p->mark = p->pos;
                p->state = ST_TARGET;
            } else if (!is_tchar(c)) {
                return fail(p, 400, "invalid method");
            }
            break;
        case ST_TARGET:
            if (c == ' ') {
                if (at == p->mark)
                    return fail(p, 400, "empty request target");
                p->target.off = p->mark;
                p->target.len = at - p->mark;
                p->mark = p->pos;
                p->state = ST_REQ_VERSION;
            } else if (c < 0x21 || c >= 0x7f) {
                return fail(p, 400, "invalid request target");
            }
            break;
        case ST_REQ_VERSION:
            if (c == '\r') {
                int rc = check_version(p, buf + p->mark, at - p->mark);
                if (rc)
                    return fail(p, rc, rc == 505 ? "http version not supported" : "invalid http version");
                p->state = ST_REQ_LINE_LF;
            } else if (c < 0x21 || c >= 0x7f) {
                return fail(p, 400, "invalid http version");
            }
            break;
        case ST_REQ_LINE_LF:
        case ST_STATUS_LF:
            if (c != '\n')
                return fail(p, 400, "bare CR");
            p->state = ST_HDR_START;
            break;
        case ST_RESP_VERSION:
            if (c == ' ') {
                int rc = check_version(p, buf + p->mark, at - p->mark);
                if (rc)
                    return fail(p, rc, rc == 505 ? "http version not supported" : "invalid http version");
                p->mark = p->pos;
                p->state = ST_STATUS;
            } else if (c < 0x21 || c >= 0x7f) {
                return fail(p, 400, "invalid http version");
            }
            break;
        case ST_STATUS:
            if (c < '0' || c > '9')
                return fail(p, 400, "invalid status code");
            p->status = p->status * 10 + (c - '0');
            if (at - p->mark == 2) {
                if (p->status < 100)
                    return fail(p, 400, "invalid status code");
                p->state = ST_STATUS_SP;
            }
            break;
        case ST_STATUS_SP:
            /* a missing reason phrase (even without its SP) is tolerated */
            if (c == ' ') {
                p->mark = p->pos;
                p->reason.off = p->pos;
                p->state = ST_REASON;
            } else if (c == '\r') {
                p->reason.off = at;
                p->state = ST_STATUS_LF;
            } else {
                return fail(p, 400, "invalid status line");
            }
            break;
        case ST_REASON:
            if (c == '\r') {
                p->reason.len = at - p->reason.off;
                p->state = ST_STATUS_LF;
            } else if (!is_ws(c) && !is_field_vchar(c)) {
                return fail(p, 400, "invalid reason phrase");
            }
            break;
        case ST_HDR_START:
            if (c == '\r') {
                p->state = ST_END_LF;
            } else if (is_ws(c)) {
                return fail(p, 400, p->n_headers ? "obsolete line folding" : "whitespace before first header");
            } else if (is_tchar(c)) {
                if (p->n_headers >= p->limits.max_headers)
                    return fail(p, 431, "too many header fields");
                p->headers[p->n_headers].name.off = at;
                p->mark = at;
                p->state = ST_HDR_NAME;
            } else {
                return fail(p, 400, c == '\n' ? "bare LF" : "invalid header name");
            }
            break;
        case ST_HDR_NAME:
            if (c == ':') {
                p->headers[p->n_headers].name.len = at - p->mark;
                p->state = ST_HDR_OWS;
            } else if (is_ws(c)) {
                return fail(p, 400, "whitespace before colon");
            } else if (!is_tchar(c)) {
                return fail(p, 400, "invalid header name");
            }
            break;
        case ST_HDR_OWS:
            if (is_ws(c))
                break;
            p->headers[p->n_headers].value.off = at;
            p->value_end = at;
            p->state = ST_HDR_VALUE;
            /* fall through */
        case ST_HDR_VALUE:
            if (c == '\r') {
                struct voro_http1_header *h = &p->headers[p->n_headers];
                h->value.len = p->value_end - h->value.off;
                p->state = ST_HDR_LF;
            } else if (is_field_vchar(c)) {
                p->value_end = p->pos;
            } else if (!is_ws(c)) {
                return fail(p, 400, c == '\n' ? "bare LF" : "invalid character in header value");
            }
            break;
        case ST_HDR_LF: {
            if (c != '\n')
                return fail(p, 400, "bare CR");
            const struct voro_http1_header *h = &p->headers[p->n_headers++];
            if (apply_header(p, buf, h) == VORO_HTTP1_ERROR)
                return VORO_HTTP1_ERROR;
            p->state = ST_HDR_START;
            break;
        }
        case ST_END_LF:
            if (c != '\n')
                return fail(p, 400, "bare CR");
            return finish_head(p);
        default:
            return fail(p, 400, "parser state");
        }
        if (p->state <= ST_STATUS_LF && p->state >= ST_METHOD && p->pos - p->line_start > max_line)
            return fail(p, p->kind == VORO_HTTP1_REQUEST ? 414 : 400,
                        p->kind == VORO_HTTP1_REQUEST ? "request line too long" : "status line too long");
    }
    return VORO_HTTP1_NEED_MORE;
}

bool voro_http1_keep_alive(const struct voro_http1_parser *p)
{
    if (p->flags & VORO_HTTP1_F_CONN_CLOSE)
        return false;
    if (p->version_minor >= 1)
        return true;
    return (p->flags & VORO_HTTP1_F_CONN_KEEP_ALIVE) != 0;
}

enum voro_http1_body voro_http1_body_kind(const struct voro_http1_parser *p, bool request_was_head,
                                          bool request_was_connect)
{
    if (p->kind == VORO_HTTP1_RESPONSE) {
        if (request_was_head || (p->status >= 100 && p->status < 200) || p->status == 204 || p->status == 304)
            return VORO_HTTP1_BODY_NONE;
        if (request_was_connect && p->status >= 200 && p->status < 300)
            return VORO_HTTP1_BODY_NONE;
        if (p->flags & VORO_HTTP1_F_CHUNKED)
            return VORO_HTTP1_BODY_CHUNKED;
        if (p->flags & VORO_HTTP1_F_TRANSFER_ENCODING)
            return VORO_HTTP1_BODY_UNTIL_CLOSE;
        if (p->flags & VORO_HTTP1_F_CONTENT_LENGTH)
            return VORO_HTTP1_BODY_LENGTH;
        return VORO_HTTP1_BODY_UNTIL_CLOSE;
    }
    if (p->flags & VORO_HTTP1_F_CHUNKED)
        return VORO_HTTP1_BODY_CHUNKED;
    if ((p->flags & VORO_HTTP1_F_CONTENT_LENGTH) && p->content_length > 0)
        return VORO_HTTP1_BODY_LENGTH;
    return VORO_HTTP1_BODY_NONE;
}

/* ---- chunked decoder ---- */

enum {
    CS_SIZE_FIRST = 0,
    CS_SIZE,
    CS_SIZE_WS,
    CS_EXT,
    CS_SIZE_LF,
    CS_DATA,
    CS_DATA_CR,
    CS_DATA_LF,
    CS_TRAILER_START,
    CS_TRAILER_NAME,
    CS_TRAILER_VALUE,
    CS_TRAILER_LF,
    CS_END_LF,
    CS_DONE,
    CS_ERROR,
};

#define CHUNK_LINE_MAX 4096u
#define CHUNK_TRAILER_MAX 8192u
#define CHUNK_DEFAULT_MAX ((uint64_t)1 << 48)

void voro_http1_chunked_init(struct voro_http1_chunked *d, uint64_t max_chunk)
{
    memset(d, 0, sizeof(*d));
    d->max_chunk = max_chunk ? max_chunk : CHUNK_DEFAULT_MAX;
    d->state = CS_SIZE_FIRST;
}

static enum voro_http1_result cfail(struct voro_http1_chunked *d, int status, const char *reason)
{
    d->state = CS_ERROR;
    d->error_status = status;
    d->error_reason = reason;
    return VORO_HTTP1_ERROR;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = lower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

enum voro_http1_result voro_http1_chunked_decode(struct voro_http1_chunked *d, const char *data, size_t n,
                                                 size_t *used, struct voro_http1_span *span)
{
    size_t i = 0;
    span->off = span->len = 0;
    *used = 0;
    if (d->state == CS_DONE)
        return VORO_HTTP1_DONE;
    if (d->state == CS_ERROR)
        return VORO_HTTP1_ERROR;
    while (i < n) {
        if (d->state == CS_DATA) {
            size_t avail = n - i;
            size_t take = avail < d->remaining ? avail : (size_t)d->remaining;
            if (take > UINT32_MAX)
                take = UINT32_MAX;
            span->off = (uint32_t)i;
            span->len = (uint32_t)take;
            d->remaining -= take;
            if (d->remaining == 0)
                d->state = CS_DATA_CR;
            *used = i + take;
            return VORO_HTTP1_DATA;
        }
        const unsigned char c = (unsigned char)data[i++];
        if (d->state <= CS_SIZE_LF && ++d->line_len > CHUNK_LINE_MAX)
            return cfail(d, 400, "chunk size line too long");
        if (d->state >= CS_TRAILER_START && d->state <= CS_END_LF && ++d->trailer_len > CHUNK_TRAILER_MAX)
            return cfail(d, 431, "trailers too large");
        switch (d->state) {
        case CS_SIZE_FIRST:
        case CS_SIZE: {
            int h = hexval(c);
            if (h >= 0) {
                if (d->remaining > (d->max_chunk >> 4) || ++d->digits > 16)
                    return cfail(d, 400, "chunk size too large");
                d->remaining = (d->remaining << 4) | (uint64_t)h;
                if (d->remaining > d->max_chunk)
                    return cfail(d, 400, "chunk size too large");
                d->state = CS_SIZE;
                break;
            }
            if (d->state == CS_SIZE_FIRST)
                return cfail(d, 400, "invalid chunk size");
            if (c == '\r')
                d->state = CS_SIZE_LF;
            else if (c == ';')
                d->state = CS_EXT;
            else if (is_ws(c))
                d->state = CS_SIZE_WS;
            else
                return cfail(d, 400, "invalid chunk size");
            break;
        }
        case CS_SIZE_WS:
            if (c == ';')
                d->state = CS_EXT;
            else if (c == '\r')
                d->state = CS_SIZE_LF;
            else if (!is_ws(c))
                return cfail(d, 400, "invalid chunk size");
            break;
        case CS_EXT:
            /* chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] ), ext-val token / quoted-string */
            if (d->in_quote) {
                if (d->in_quote == 2) {
                    if (!is_ws(c) && !is_field_vchar(c))
                        return cfail(d, 400, "invalid chunk extension");
                    d->in_quote = 1;
                } else if (c == '\\') {
                    d->in_quote = 2;
                } else if (c == '"') {
                    d->in_quote = 0;
                } else if (!is_ws(c) && !is_field_vchar(c)) {
                    return cfail(d, 400, "invalid chunk extension");
                }
            } else if (c == '\r') {
                d->state = CS_SIZE_LF;
            } else if (c == '"') {
                d->in_quote = 1;
            } else if (!is_tchar(c) && !is_ws(c) && c != ';' && c != '=') {
                return cfail(d, 400, "invalid chunk extension");
            }
            break;
        case CS_SIZE_LF:
            if (c != '\n')
                return cfail(d, 400, "bare CR in chunk size line");
            d->line_len = 0;
            d->digits = 0;
            d->state = d->remaining ? CS_DATA : CS_TRAILER_START;
            break;
        case CS_DATA_CR:
            if (c != '\r')
                return cfail(d, 400, "missing CRLF after chunk data");
            d->state = CS_DATA_LF;
            break;
        case CS_DATA_LF:
            if (c != '\n')
                return cfail(d, 400, "missing CRLF after chunk data");
            d->state = CS_SIZE_FIRST;
            break;
        case CS_TRAILER_START:
            if (c == '\r')
                d->state = CS_END_LF;
            else if (is_tchar(c))
                d->state = CS_TRAILER_NAME;
            else
                return cfail(d, 400, "invalid trailer field");
            break;
        case CS_TRAILER_NAME:
            if (c == ':')
                d->state = CS_TRAILER_VALUE;
            else if (!is_tchar(c))
                return cfail(d, 400, "invalid trailer field");
            break;
        case CS_TRAILER_VALUE:
            if (c == '\r')
                d->state = CS_TRAILER_LF;
            else if (!is_ws(c) && !is_field_vchar(c))
                return cfail(d, 400, "invalid trailer field");
            break;
        case CS_TRAILER_LF:
            if (c != '\n')
                return cfail(d, 400, "bare CR in trailer");
            d->state = CS_TRAILER_START;
            break;
        case CS_END_LF:
            if (c != '\n')
                return cfail(d, 400, "bare CR after trailers");
            d->state = CS_DONE;
            *used = i;
            return VORO_HTTP1_DONE;
        default:
            return cfail(d, 400, "decoder state");
        }
    }
    *used = n;
    return VORO_HTTP1_NEED_MORE;
}

const char *voro_http1_status_text(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 103: return "Early Hints";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}
