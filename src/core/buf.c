/* Bounded growable buffers (curl's dynbuf is the model). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "r2bridge/r2bridge.h"

void r2b_buf_init(struct r2b_buf *b, size_t max_bytes)
{
    b->ptr = NULL;
    b->len = 0;
    b->cap = 0;
    b->max_bytes = max_bytes;
}

void r2b_buf_release(struct r2b_buf *b)
{
    if (b == NULL)
        return;
    free(b->ptr);
    r2b_buf_init(b, b->max_bytes);
}

void r2b_buf_reset(struct r2b_buf *b)
{
    b->len = 0;
    if (b->ptr)
        b->ptr[0] = '\0';
}

enum r2b_status r2b_buf_reserve(struct r2b_buf *b, size_t extra)
{
    size_t need, cap;
    char *p;

    if (extra > b->max_bytes || b->len > b->max_bytes - extra)
        return R2B_ERR_LIMIT;
    need = b->len + extra + 1;
    if (need <= b->cap)
        return R2B_OK;
    cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (cap > b->max_bytes + 1)
        cap = b->max_bytes + 1 >= need ? b->max_bytes + 1 : need;
    p = realloc(b->ptr, cap);
    if (p == NULL)
        return R2B_ERR_NOMEM;
    b->ptr = p;
    b->cap = cap;
    return R2B_OK;
}

enum r2b_status r2b_buf_add(struct r2b_buf *b, const void *data, size_t n)
{
    enum r2b_status st = r2b_buf_reserve(b, n);

    if (st != R2B_OK)
        return st;
    if (n)
        memcpy(b->ptr + b->len, data, n);
    b->len += n;
    b->ptr[b->len] = '\0';
    return R2B_OK;
}

enum r2b_status r2b_buf_adds(struct r2b_buf *b, const char *s)
{
    return r2b_buf_add(b, s, strlen(s));
}

enum r2b_status r2b_buf_addc(struct r2b_buf *b, char c)
{
    return r2b_buf_add(b, &c, 1);
}

enum r2b_status r2b_buf_addf(struct r2b_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;
    enum r2b_status st;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return R2B_ERR_INVALID;
    st = r2b_buf_reserve(b, (size_t)n);
    if (st != R2B_OK)
        return st;
    va_start(ap, fmt);
    vsnprintf(b->ptr + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return R2B_OK;
}

const char *r2b_buf_str(const struct r2b_buf *b)
{
    return b->ptr ? b->ptr : "";
}

char *r2b_buf_detach(struct r2b_buf *b)
{
    char *p = b->ptr;

    if (p == NULL)
        p = calloc(1, 1);
    r2b_buf_init(b, b->max_bytes);
    return p;
}
