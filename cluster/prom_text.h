/* Writers for the Prometheus text exposition format (0.0.4), used by /metrics handlers. */
#ifndef VORO_CLUSTER_PROM_TEXT_H
#define VORO_CLUSTER_PROM_TEXT_H

#include <stdint.h>

#include "common/strbuf.h"

#define VORO_PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* "# HELP name help\n# TYPE name type\n"; `help` escaped (backslash, newline). `type` is one of
 * counter, gauge, histogram, summary, untyped. Returns 0 or -ENOMEM (sticky in sb->failed). */
int voro_prom_header(struct voro_strbuf *sb, const char *name, const char *type, const char *help);
/* Appends a label value escaped as the format requires (backslash, double quote, newline). */
int voro_prom_label_value(struct voro_strbuf *sb, const char *value);
/* One sample line: name{k1="v1",k2="v2"} value\n. `labels` is NULL or a NULL-terminated list of
 * alternating keys and values ({"pool", "gpu", NULL}); keys are written as given. */
int voro_prom_sample(struct voro_strbuf *sb, const char *name, const char *const *labels, double value);
int voro_prom_sample_u64(struct voro_strbuf *sb, const char *name, const char *const *labels, uint64_t value);
/* Formats a double as the format spells it: NaN, +Inf, -Inf, or the shortest round-trip %.17g form. */
int voro_prom_value(struct voro_strbuf *sb, double value);

#endif
