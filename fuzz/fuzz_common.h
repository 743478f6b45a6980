/* fuzz_common.h: exists so the libFuzzer harnesses share the entry-point
 * prototypes, the input-splitting helpers and one way to report a broken
 * invariant (abort: libFuzzer saves the input as a crash). Test code only. */
#ifndef R2B_FUZZ_COMMON_H
#define R2B_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* A broken invariant: say which, then abort so libFuzzer keeps the input. */
#define FZ_CHECK(cond)                                                                             \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__);     \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Occurrences of `needle` in data[0..n). */
static inline size_t fz_count(const uint8_t *data, size_t n, const char *needle)
{
    size_t k = strlen(needle), c = 0;

    for (size_t i = 0; k && i + k <= n; i++)
        if (memcmp(data + i, needle, k) == 0)
            c++;
    return c;
}

/* A NUL-terminated heap copy of data[0..n) (NUL bytes inside kept). */
static inline char *fz_strndup(const uint8_t *data, size_t n)
{
    char *s = malloc(n + 1);

    if (s == NULL)
        abort();
    if (n)
        memcpy(s, data, n);
    s[n] = '\0';
    return s;
}

/*
 * Reads the input as lines: fz_line() returns the next line (without its
 * '\n') as a pointer into a private copy, NUL-terminated, with the byte
 * 0x1f turned into '\n' so a field can still carry a newline; NULL at the
 * end. `len` receives the length (NUL bytes may be inside).
 */
struct fz_lines {
    char *copy;
    size_t n, pos;
};

static inline void fz_lines_init(struct fz_lines *l, const uint8_t *data, size_t n)
{
    l->copy = fz_strndup(data, n);
    l->n = n;
    l->pos = 0;
}

static inline char *fz_line(struct fz_lines *l, size_t *len)
{
    char *start, *nl;

    if (l->pos >= l->n)
        return NULL;
    start = l->copy + l->pos;
    nl = memchr(start, '\n', l->n - l->pos);
    if (nl == NULL)
        nl = l->copy + l->n;
    *nl = '\0';
    *len = (size_t)(nl - start);
    l->pos += *len + 1;
    for (size_t i = 0; i < *len; i++)
        if (start[i] == 0x1f)
            start[i] = '\n';
    return start;
}

static inline void fz_lines_release(struct fz_lines *l)
{
    free(l->copy);
    l->copy = NULL;
}

static inline int fz_hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1; /* S3 encoding is uppercase only */
}

/*
 * Percent-decodes s[0..n) into out (room for n bytes); returns the length,
 * or -1 when s holds anything but unreserved characters, '/' (when
 * allow_slash) and uppercase %XX escapes: the independent check of the URI
 * encoder.
 */
static inline long fz_uri_decode(const char *s, size_t n, int allow_slash, char *out)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~' || (c == '/' && allow_slash)) {
            out[o++] = (char)c;
        } else if (c == '%' && i + 2 < n && fz_hexval((unsigned char)s[i + 1]) >= 0 &&
                   fz_hexval((unsigned char)s[i + 2]) >= 0) {
            int v = fz_hexval((unsigned char)s[i + 1]) * 16 + fz_hexval((unsigned char)s[i + 2]);

            /* an escaped unreserved character (or '/') would be a second spelling */
            if ((v >= 'A' && v <= 'Z') || (v >= 'a' && v <= 'z') || (v >= '0' && v <= '9') ||
                v == '-' || v == '.' || v == '_' || v == '~' || (v == '/' && allow_slash))
                return -1;
            out[o++] = (char)v;
            i += 2;
        } else {
            return -1;
        }
    }
    return (long)o;
}

#endif
