/* Logging: one line per message to stderr; the level is process-wide. */
#include <stdio.h>

#include "r2bridge/r2bridge.h"

static enum r2b_log_level log_level = R2B_LOG_WARN;

void r2b_log_set_level(enum r2b_log_level level)
{
    log_level = level;
}

enum r2b_log_level r2b_log_get_level(void)
{
    return log_level;
}

void r2b_log(enum r2b_log_level level, const char *fmt, ...)
{
    static const char *const names[] = {"error", "warning", "info", "debug"};
    char line[1024];
    va_list ap;

    if (level > log_level)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    /* A single fputs keeps lines from concurrent threads from interleaving. */
    fprintf(stderr, "r2bridge: %s: %s\n", names[level], line);
}
