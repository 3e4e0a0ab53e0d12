/* A small INI tokenizer with no I/O: turns text into section and key/value events with line numbers. */
#ifndef VORO_PROTO_INI_H
#define VORO_PROTO_INI_H

#include <stddef.h>

#define VORO_INI_LINE_MAX 4096 /* bytes per line, newline excluded */

enum voro_ini_event_type {
    VORO_INI_SECTION = 1, /* `[section]` or `[section name]` */
    VORO_INI_KEY = 2,     /* `key = value` */
};

/* Strings point into the iterator's line buffer: NUL-terminated, valid until the next
 * voro_ini_next() call. Whitespace is trimmed, inline comments removed. */
struct voro_ini_event {
    enum voro_ini_event_type type;
    int line;            /* 1-based */
    const char *section; /* SECTION: the section type, e.g. "pool" */
    const char *name;    /* SECTION: the instance name, e.g. "gpu", or "" */
    const char *key;     /* KEY */
    const char *value;   /* KEY: may be "" */
};

/* Iterator over one text. The text is borrowed (not copied, not owned) and must outlive the
 * iterator; it need not be NUL-terminated and may contain any bytes. No allocation. */
struct voro_ini {
    const char *text;
    size_t len;
    size_t pos;
    int line;
    int error_line;
    char error[160]; /* reason of the last -EINVAL, without file or line */
    char buf[VORO_INI_LINE_MAX + 2];
};

void voro_ini_init(struct voro_ini *it, const char *text, size_t len);

/* Advances to the next event. Returns 1 with *ev filled, 0 at the end of the text, or -EINVAL
 * for a bad line (it->error_line, it->error say why); iteration may continue after an error,
 * the bad line is skipped (ev->type is VORO_INI_SECTION when it looked like a section header, so
 * the caller can stop attributing keys to the previous section). Rejected: a section without `]` or with text after it, a section
 * type or name with characters outside [A-Za-z0-9_.-], more than one name, a line that is
 * neither a section nor `key = value`, an empty key or one with spaces, control characters
 * and lines longer than VORO_INI_LINE_MAX. Comments: full lines starting with `#` or `;`,
 * and ` # ...` / ` ; ...` after whitespace in a value. */
int voro_ini_next(struct voro_ini *it, struct voro_ini_event *ev);

#endif
