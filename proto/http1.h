/* HTTP/1.1 (RFC 9112) message-head parser and chunked-body decoder: incremental, zero-copy, no malloc. */
#ifndef VORO_PROTO_HTTP1_H
#define VORO_PROTO_HTTP1_H

/*
 * Usage (head):
 *   struct voro_http1_parser p;
 *   voro_http1_init(&p, VORO_HTTP1_REQUEST, NULL);          // NULL = default limits
 *   for (;;) {                                              // buf grows as bytes arrive
 *       r = voro_http1_parse(&p, buf, len);                 // len = ALL bytes buffered so far
 *       if (r == VORO_HTTP1_NEED_MORE) read more, append to buf, continue;
 *       if (r == VORO_HTTP1_ERROR) answer p.error_status with p.error_reason, close;
 *       // VORO_HTTP1_DONE: head is buf[0 .. p.head_len); body/next message starts at head_len
 *   }
 * The parser never copies or retains `buf`: it remembers how far it got (p.pos) and resumes there,
 * so feeding one byte at a time costs O(n) in total. The caller must keep the head bytes at the
 * same offsets between calls (it may move the whole buffer: only offsets are stored). Every
 * reported piece (method, target, reason, header names and values) is a voro_http1_span, an
 * (offset, length) pair into `buf`; header values have surrounding whitespace trimmed.
 *
 * Validation is strict (request smuggling is the threat): tokens must be tchar, field values
 * field-vchar / SP / HTAB / obs-text, lines end in CRLF (bare CR and bare LF are rejected),
 * no whitespace between a field name and the colon, no obs-fold. Semantic checks on the
 * complete head: Host exactly once on an HTTP/1.1 request; Content-Length a single decimal
 * number (repeats, lists and overflow rejected); Transfer-Encoding never together with
 * Content-Length, never in an HTTP/1.0 request; on a request its final coding must be chunked
 * and chunked must appear once; unknown codings give 501. Versions other than HTTP/1.0 and
 * HTTP/1.1 give 505. Up to two empty lines before a request line are ignored (RFC 9112 2.2).
 *
 * After DONE, voro_http1_body_kind tells how the body is framed: none, Content-Length bytes,
 * chunked (decode with struct voro_http1_chunked), or until close (responses only).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VORO_HTTP1_MAX_HEADERS 100
#define VORO_HTTP1_DEFAULT_MAX_LINE 8192
#define VORO_HTTP1_DEFAULT_MAX_HEAD 16384

enum voro_http1_kind {
    VORO_HTTP1_REQUEST = 0,
    VORO_HTTP1_RESPONSE = 1,
};

enum voro_http1_result {
    VORO_HTTP1_ERROR = -1,    /* error_status / error_reason are set; the parser stays in error */
    VORO_HTTP1_NEED_MORE = 0, /* every byte given was consumed; call again with more */
    VORO_HTTP1_DONE = 1,      /* head complete: head_len bytes (head), or see the chunked decoder */
    VORO_HTTP1_DATA = 2,      /* chunked decoder only: a span of body data is ready */
};

/* A slice of the caller's buffer. */
struct voro_http1_span {
    uint32_t off;
    uint32_t len;
};

struct voro_http1_header {
    struct voro_http1_span name;
    struct voro_http1_span value;
};

struct voro_http1_limits {
    uint32_t max_line;    /* request line (414) / status line (400); default 8192 */
    uint32_t max_head;    /* whole head incl. the final CRLF (431); default 16384 */
    uint32_t max_headers; /* header fields (431); default and upper bound VORO_HTTP1_MAX_HEADERS */
};

/* Facts collected from the head (bit flags in voro_http1_parser.flags). */
#define VORO_HTTP1_F_CONTENT_LENGTH (1u << 0)
#define VORO_HTTP1_F_TRANSFER_ENCODING (1u << 1)
#define VORO_HTTP1_F_CHUNKED (1u << 2)  /* final transfer coding is chunked */
#define VORO_HTTP1_F_CONN_CLOSE (1u << 3)
#define VORO_HTTP1_F_CONN_KEEP_ALIVE (1u << 4)
#define VORO_HTTP1_F_CONN_UPGRADE (1u << 5)
#define VORO_HTTP1_F_EXPECT_CONTINUE (1u << 6)

/* Head parser state and results; owned by the caller (stack or connection struct), ~1.7 KiB. */
struct voro_http1_parser {
    /* results, valid after DONE (spans are filled as parsing goes) */
    struct voro_http1_span method;  /* request */
    struct voro_http1_span target;  /* request */
    struct voro_http1_span reason;  /* response; may be empty */
    int status;                     /* response: 100..999 */
    int version_minor;              /* 0 or 1 (HTTP/1.x) */
    uint32_t flags;                 /* VORO_HTTP1_F_* */
    uint64_t content_length;        /* valid when flags has VORO_HTTP1_F_CONTENT_LENGTH */
    uint32_t head_len;              /* bytes of the head incl. the empty line, after DONE */
    uint32_t n_headers;
    struct voro_http1_header headers[VORO_HTTP1_MAX_HEADERS];

    /* error, after ERROR: an HTTP status (400, 414, 431, 501, 505) and a static reason */
    int error_status;
    const char *error_reason;

    /* private state */
    enum voro_http1_kind kind;
    struct voro_http1_limits limits;
    uint32_t pos;        /* next byte to look at */
    uint32_t mark;       /* start of the current token / line */
    uint32_t value_end;  /* end of the current value without trailing whitespace */
    uint32_t line_start;
    uint8_t state;
    uint8_t empty_lines;
    uint8_t n_host;
    uint8_t te_unknown;
    uint8_t te_chunked_count;
    uint8_t te_last_chunked;
};

void voro_http1_init(struct voro_http1_parser *p, enum voro_http1_kind kind, const struct voro_http1_limits *limits);
/* Resets for the next message on the same connection, keeping kind and limits. */
void voro_http1_reset(struct voro_http1_parser *p);
/* Parses buf[p->pos .. len). `buf` holds the message from its first byte; borrowed for the call. */
enum voro_http1_result voro_http1_parse(struct voro_http1_parser *p, const char *buf, size_t len);

/* First header named `name` (ASCII case-insensitive), or NULL. */
const struct voro_http1_header *voro_http1_find_header(const struct voro_http1_parser *p, const char *buf,
                                                       const char *name);
/* True when span equals `s` exactly (case-sensitive: methods) or case-insensitively. */
bool voro_http1_span_eq(const char *buf, struct voro_http1_span sp, const char *s);
bool voro_http1_span_ieq(const char *buf, struct voro_http1_span sp, const char *s);
/* After DONE: whether the connection may carry another message. HTTP/1.1 unless
 * "Connection: close"; HTTP/1.0 only with "Connection: keep-alive" and no close. */
bool voro_http1_keep_alive(const struct voro_http1_parser *p);

enum voro_http1_body {
    VORO_HTTP1_BODY_NONE = 0,
    VORO_HTTP1_BODY_LENGTH = 1,  /* content_length bytes */
    VORO_HTTP1_BODY_CHUNKED = 2,
    VORO_HTTP1_BODY_UNTIL_CLOSE = 3, /* response without length (or final coding not chunked) */
};
/* After DONE: body framing (RFC 9112 6.3). For a response, `request_was_head` and 1xx/204/304
 * mean no body; a 2xx answer to CONNECT is a tunnel, reported as NONE. */
enum voro_http1_body voro_http1_body_kind(const struct voro_http1_parser *p, bool request_was_head,
                                          bool request_was_connect);

/*
 * Chunked body decoder (RFC 9112 7.1), zero-copy:
 *   struct voro_http1_chunked d; voro_http1_chunked_init(&d, 0);
 *   r = voro_http1_chunked_decode(&d, data, n, &used, &span);
 * Consumes data[0 .. used). DATA: data[span.off .. +span.len) is body payload (used stops right
 * after it; call again with the rest). NEED_MORE: all n bytes used, nothing to deliver.
 * DONE: the last chunk and trailers ended at data[used - 1]; bytes after belong to the next
 * message. ERROR: 400 with a reason (bad hex, size overflow, missing CRLF, bad trailer) or 431
 * (trailers too large). Chunk extensions are validated and skipped; trailers are validated
 * and skipped (their size is bounded).
 */
struct voro_http1_chunked {
    uint64_t remaining;   /* bytes left in the current chunk */
    uint64_t max_chunk;   /* bound on one chunk's size (0 = 2^48) */
    uint32_t line_len;    /* bytes in the current size / trailer line */
    uint32_t trailer_len; /* total trailer bytes */
    uint8_t state;
    uint8_t digits;
    uint8_t in_quote;
    int error_status;
    const char *error_reason;
};

void voro_http1_chunked_init(struct voro_http1_chunked *d, uint64_t max_chunk);
enum voro_http1_result voro_http1_chunked_decode(struct voro_http1_chunked *d, const char *data, size_t n,
                                                 size_t *used, struct voro_http1_span *span);

/* Standard reason phrase ("Not Found"), or "Unknown". */
const char *voro_http1_status_text(int status);

#endif
