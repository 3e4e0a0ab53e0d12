/* Structured log writer: one write(2) per line so lines from threads never interleave. */
#include "common/log.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static _Atomic int g_log_level = VORO_LOG_INFO;
static const char *const g_level_names[] = {"debug", "info", "warn", "error"};

void voro_log_set_level(enum voro_log_level level) { atomic_store(&g_log_level, (int)level); }

enum voro_log_level voro_log_get_level(void) { return (enum voro_log_level)atomic_load_explicit(&g_log_level, memory_order_relaxed); }

int voro_log_parse_level(const char *name, enum voro_log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(name, g_level_names[i]) == 0) {
            *out = (enum voro_log_level)i;
            return 0;
        }
    }
    return -EINVAL;
}

void voro_logv(enum voro_log_level level, const char *component, const char *fmt, va_list ap)
{
    if ((int)level < atomic_load_explicit(&g_log_level, memory_order_relaxed))
        return;
    char line[1024];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %s: ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, g_level_names[level & 3], component);
    if (n < 0)
        return;
    if ((size_t)n < sizeof(line)) {
        int m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
        if (m > 0)
            n += m;
    }
    if ((size_t)n >= sizeof(line) - 1)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}

void voro_log(enum voro_log_level level, const char *component, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    voro_logv(level, component, fmt, ap);
    va_end(ap);
}
