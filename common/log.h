/* Structured, levelled log lines ("ts level component: message key=value") to stderr. */
#ifndef VORO_COMMON_LOG_H
#define VORO_COMMON_LOG_H

#include <stdarg.h>

enum voro_log_level {
    VORO_LOG_DEBUG = 0,
    VORO_LOG_INFO = 1,
    VORO_LOG_WARN = 2,
    VORO_LOG_ERROR = 3,
};

/* Sets the minimum level written; default INFO. Thread-safe (atomic). */
void voro_log_set_level(enum voro_log_level level);
/* Parses "debug|info|warn|error"; returns 0 or -EINVAL. */
int voro_log_parse_level(const char *name, enum voro_log_level *out);
enum voro_log_level voro_log_get_level(void);

/* Writes one line atomically (a single write(2)); never allocates. `component`
 * is a static string such as "worker" or "config". Never call per byte or per
 * request on the data path except for errors. */
void voro_log(enum voro_log_level level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void voro_logv(enum voro_log_level level, const char *component, const char *fmt, va_list ap);

#define VORO_DEBUG(comp, ...) do { if (voro_log_get_level() <= VORO_LOG_DEBUG) voro_log(VORO_LOG_DEBUG, comp, __VA_ARGS__); } while (0)
#define VORO_INFO(comp, ...)  voro_log(VORO_LOG_INFO, comp, __VA_ARGS__)
#define VORO_WARN(comp, ...)  voro_log(VORO_LOG_WARN, comp, __VA_ARGS__)
#define VORO_ERROR(comp, ...) voro_log(VORO_LOG_ERROR, comp, __VA_ARGS__)

#endif
