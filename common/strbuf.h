/* Growable byte buffer for the control plane (admin responses, JSON, config text); never used on the data path. */
#ifndef VORO_COMMON_STRBUF_H
#define VORO_COMMON_STRBUF_H

#include <stddef.h>

/* The buffer owns `data` (malloc'd); `data` is always NUL-terminated when non-NULL. */
struct voro_strbuf {
    char *data;
    size_t len;
    size_t cap;
    int failed; /* set once an allocation failed; later appends are no-ops */
};

void voro_strbuf_init(struct voro_strbuf *sb);
/* Frees `data` and resets the buffer. */
void voro_strbuf_free(struct voro_strbuf *sb);
void voro_strbuf_reset(struct voro_strbuf *sb);
int voro_strbuf_append(struct voro_strbuf *sb, const void *data, size_t len);
int voro_strbuf_puts(struct voro_strbuf *sb, const char *s);
int voro_strbuf_printf(struct voro_strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends `s` as a JSON string literal (with quotes), escaping as RFC 8259 requires. */
int voro_strbuf_json_string(struct voro_strbuf *sb, const char *s);
/* Transfers ownership of the data to the caller (must free()); the buffer is reset. */
char *voro_strbuf_detach(struct voro_strbuf *sb, size_t *len_out);

#endif
