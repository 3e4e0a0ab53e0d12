/* INI tokenizer: one bounded line buffer, events point into it, errors carry a line number. */
#include "proto/ini.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

void voro_ini_init(struct voro_ini *it, const char *text, size_t len)
{
    memset(it, 0, sizeof(*it));
    it->text = text;
    it->len = text ? len : 0;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

static bool is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
           c == '.';
}

static char *trim(char *s)
{
    while (is_space(*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && is_space(s[n - 1]))
        s[--n] = '\0';
    return s;
}

static int fail(struct voro_ini *it, const char *fmt, const char *arg)
{
    it->error_line = it->line;
    snprintf(it->error, sizeof(it->error), fmt, arg ? arg : "");
    return -EINVAL;
}

/* Copies the next physical line into it->buf; returns its length, or -1 when it is too long
 * (the rest of the line is skipped so the caller can continue with the next one). */
static long take_line(struct voro_ini *it)
{
    size_t start = it->pos;
    const char *nl = memchr(it->text + start, '\n', it->len - start);
    size_t end = nl ? (size_t)(nl - it->text) : it->len;
    it->pos = nl ? end + 1 : end;
    it->line++;
    size_t n = end - start;
    if (n > 0 && it->text[end - 1] == '\r') /* CRLF files */
        n--;
    if (n > VORO_INI_LINE_MAX)
        return -1;
    memcpy(it->buf, it->text + start, n);
    it->buf[n] = '\0';
    return (long)n;
}

static int parse_section(struct voro_ini *it, char *s, struct voro_ini_event *ev)
{
    char *close = strchr(s, ']');
    if (!close)
        return fail(it, "missing ']' in section header%s", NULL);
    *close = '\0';
    char *rest = trim(close + 1);
    if (*rest && *rest != '#' && *rest != ';')
        return fail(it, "unexpected text '%s' after section header", rest);
    char *type = trim(s + 1);
    if (!*type)
        return fail(it, "empty section header '[]'%s", NULL);
    char *name = type;
    while (*name && !is_space(*name))
        name++;
    if (*name) {
        *name++ = '\0';
        name = trim(name);
    }
    for (const char *p = type; *p; p++)
        if (!is_name_char(*p))
            return fail(it, "invalid character in section '%s' (allowed: letters, digits, '_', '-', '.')", type);
    for (const char *p = name; *p; p++) {
        if (is_space(*p))
            return fail(it, "section header takes at most one name, got '%s'", name);
        if (!is_name_char(*p))
            return fail(it, "invalid character in section name '%s' (allowed: letters, digits, '_', '-', '.')",
                        name);
    }
    ev->type = VORO_INI_SECTION;
    ev->section = type;
    ev->name = name;
    return 1;
}

/* Cuts an inline comment: '#' or ';' preceded by whitespace. */
static void cut_comment(char *v)
{
    for (char *p = v; *p; p++) {
        if ((*p == '#' || *p == ';') && p > v && is_space(p[-1])) {
            *p = '\0';
            return;
        }
    }
}

static int parse_pair(struct voro_ini *it, char *s, struct voro_ini_event *ev)
{
    char *eq = strchr(s, '=');
    if (!eq)
        return fail(it, "expected 'key = value' or '[section]', got '%.60s'", s);
    *eq = '\0';
    char *key = trim(s);
    if (!*key)
        return fail(it, "empty key before '='%s", NULL);
    for (const char *p = key; *p; p++)
        if (!is_name_char(*p))
            return fail(it, "invalid character in key '%.60s' (allowed: letters, digits, '_', '-', '.')", key);
    char *value = eq + 1;
    if (*value == '#' || *value == ';')
        *value = '\0';
    cut_comment(value);
    ev->type = VORO_INI_KEY;
    ev->key = key;
    ev->value = trim(value);
    return 1;
}

int voro_ini_next(struct voro_ini *it, struct voro_ini_event *ev)
{
    while (it->pos < it->len) {
        long n = take_line(it);
        memset(ev, 0, sizeof(*ev));
        ev->line = it->line;
        if (n < 0)
            return fail(it, "line longer than %s bytes", "4096");
        for (long i = 0; i < n; i++) {
            unsigned char c = (unsigned char)it->buf[i];
            if ((c < 0x20 && c != '\t') || c == 0x7f) {
                it->error_line = it->line;
                snprintf(it->error, sizeof(it->error), "control character 0x%02x at column %ld", c, i + 1);
                return -EINVAL;
            }
        }
        char *s = trim(it->buf);
        if (!*s || *s == '#' || *s == ';')
            continue;
        if (*s == '[') {
            ev->type = VORO_INI_SECTION; /* also on error: the caller knows a section was meant */
            return parse_section(it, s, ev);
        }
        return parse_pair(it, s, ev);
    }
    return 0;
}
