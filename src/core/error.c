/* Status codes and the error struct: set where detected, passed on as is. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "r2bridge/r2bridge.h"

static const char *const status_text[R2B__STATUS_COUNT] = {
    [R2B_OK] = "success",
    [R2B_ERR_NOMEM] = "out of memory",
    [R2B_ERR_INVALID] = "invalid argument",
    [R2B_ERR_CONFIG] = "configuration error",
    [R2B_ERR_IO] = "i/o error",
    [R2B_ERR_NETWORK] = "network error",
    [R2B_ERR_HTTP] = "server error",
    [R2B_ERR_NOT_FOUND] = "not found",
    [R2B_ERR_AUTH] = "access denied",
    [R2B_ERR_PARSE] = "malformed data",
    [R2B_ERR_LIMIT] = "limit exceeded",
    [R2B_ERR_INTEGRITY] = "integrity check failed",
    [R2B_ERR_INTERRUPTED] = "interrupted",
    [R2B_ERR_UNSUPPORTED] = "not supported",
    [R2B_ERR_REJECTED] = "media rejected",
    [R2B_ERR_BUSY] = "busy",
};

const char *r2b_strerror(enum r2b_status code)
{
    if ((int)code < 0 || code >= R2B__STATUS_COUNT || status_text[code] == NULL)
        return "unknown error";
    return status_text[code];
}

void r2b_error_clear(struct r2b_error *err)
{
    if (err == NULL)
        return;
    memset(err, 0, sizeof(*err));
    err->code = R2B_OK;
}

static void error_vset(struct r2b_error *err, enum r2b_status code, const char *fmt, va_list ap)
    R2B_PRINTF(3, 0);

static void error_vset(struct r2b_error *err, enum r2b_status code, const char *fmt, va_list ap)
{
    r2b_error_clear(err);
    err->code = code;
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
}

/*
 * One printable line: a newline from an outside source (a server's message,
 * a file or key name) would break log parsing, and other control characters
 * (ESC sequences) would reach the operator's terminal.
 */
static void one_line(char *p)
{
    for (; *p; p++) {
        if (*p == '\n' || *p == '\r' || *p == '\t')
            *p = ' ';
        else if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f)
            *p = '?';
    }
}

enum r2b_status r2b_error_set(struct r2b_error *err, enum r2b_status code, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL)
        return code;
    va_start(ap, fmt);
    error_vset(err, code, fmt, ap);
    va_end(ap);
    one_line(err->message);
    return code;
}

int r2b_errno_is_disk_full(int errnum)
{
    return errnum == ENOSPC || errnum == EDQUOT || errnum == EFBIG;
}

enum r2b_status r2b_error_set_errno(struct r2b_error *err, enum r2b_status code, int errnum,
                                    const char *fmt, ...)
{
    va_list ap;
    size_t n;

    if (err == NULL)
        return code;
    va_start(ap, fmt);
    error_vset(err, code, fmt, ap);
    va_end(ap);
    n = strlen(err->message);
    snprintf(err->message + n, sizeof(err->message) - n, ": %s", strerror(errnum));
    one_line(err->message);
    err->sys_errno = errnum;
    err->retryable = r2b_errno_is_disk_full(errnum);
    return code;
}
