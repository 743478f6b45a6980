/* alloc_count.h: exists so the bench programs share one allocation counter.
 * Include it in exactly one file of a bench executable. */
#ifndef R2B_BENCH_ALLOC_COUNT_H
#define R2B_BENCH_ALLOC_COUNT_H

#include <stddef.h>

/*
 * Allocation counter. A definition of malloc & co. in the executable
 * interposes on every caller in the process, libcrypto included (ELF symbol
 * interposition); the calls are forwarded to glibc's own allocator. Left out
 * under AddressSanitizer, whose own malloc it would bypass.
 */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define R2B_BENCH_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define R2B_BENCH_ASAN 1
#endif
#if defined(__GLIBC__) && !defined(R2B_BENCH_ASAN)
#define HAVE_ALLOC_COUNT 1
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void __libc_free(void *p);

static unsigned long long n_allocs;

void *malloc(size_t n)
{
    n_allocs++;
    return __libc_malloc(n);
}

void *calloc(size_t n, size_t size)
{
    n_allocs++;
    return __libc_calloc(n, size);
}

void *realloc(void *p, size_t n)
{
    n_allocs++;
    return __libc_realloc(p, n);
}

void free(void *p)
{
    __libc_free(p);
}
#else
#define HAVE_ALLOC_COUNT 0
static unsigned long long n_allocs;
#endif

#endif
