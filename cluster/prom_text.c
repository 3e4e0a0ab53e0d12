/* Prometheus text exposition writers: HELP/TYPE lines, escaped label values, sample lines. */
#include "cluster/prom_text.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int sb_status(const struct voro_strbuf *sb) { return sb->failed ? -ENOMEM : 0; }

/* Escapes backslash and newline, plus double quote when `quote` (label values). */
static void put_escaped(struct voro_strbuf *sb, const char *s, int quote)
{
    const char *run = s;
    for (; *s; s++) {
        const char *esc = NULL;
        if (*s == '\\')
            esc = "\\\\";
        else if (*s == '\n')
            esc = "\\n";
        else if (quote && *s == '"')
            esc = "\\\"";
        if (esc) {
            voro_strbuf_append(sb, run, (size_t)(s - run));
            voro_strbuf_puts(sb, esc);
            run = s + 1;
        }
    }
    voro_strbuf_append(sb, run, (size_t)(s - run));
}

int voro_prom_header(struct voro_strbuf *sb, const char *name, const char *type, const char *help)
{
    voro_strbuf_printf(sb, "# HELP %s ", name);
    put_escaped(sb, help ? help : "", 0);
    voro_strbuf_printf(sb, "\n# TYPE %s %s\n", name, type);
    return sb_status(sb);
}

int voro_prom_label_value(struct voro_strbuf *sb, const char *value)
{
    put_escaped(sb, value ? value : "", 1);
    return sb_status(sb);
}

static void put_name_labels(struct voro_strbuf *sb, const char *name, const char *const *labels)
{
    voro_strbuf_puts(sb, name);
    if (!labels || !labels[0])
        return;
    voro_strbuf_puts(sb, "{");
    for (size_t i = 0; labels[i] && labels[i + 1]; i += 2) {
        voro_strbuf_printf(sb, "%s%s=\"", i ? "," : "", labels[i]);
        put_escaped(sb, labels[i + 1], 1);
        voro_strbuf_puts(sb, "\"");
    }
    voro_strbuf_puts(sb, "}");
}

int voro_prom_value(struct voro_strbuf *sb, double value)
{
    if (isnan(value))
        voro_strbuf_puts(sb, "NaN");
    else if (isinf(value))
        voro_strbuf_puts(sb, value > 0 ? "+Inf" : "-Inf");
    else if (value == (double)(int64_t)value && fabs(value) < 1e15)
        voro_strbuf_printf(sb, "%" PRId64, (int64_t)value);
    else {
        /* shortest form that reads back to the same double */
        char buf[32];
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(buf, sizeof(buf), "%.*g", prec, value);
            if (strtod(buf, NULL) == value)
                break;
        }
        voro_strbuf_puts(sb, buf);
    }
    return sb_status(sb);
}

int voro_prom_sample(struct voro_strbuf *sb, const char *name, const char *const *labels, double value)
{
    put_name_labels(sb, name, labels);
    voro_strbuf_puts(sb, " ");
    voro_prom_value(sb, value);
    voro_strbuf_puts(sb, "\n");
    return sb_status(sb);
}

int voro_prom_sample_u64(struct voro_strbuf *sb, const char *name, const char *const *labels, uint64_t value)
{
    put_name_labels(sb, name, labels);
    voro_strbuf_printf(sb, " %" PRIu64 "\n", value);
    return sb_status(sb);
}
