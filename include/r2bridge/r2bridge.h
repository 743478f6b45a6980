/*
 * r2bridge core: status codes, the error struct, logging, bounded buffers,
 * hex/base64 and time helpers. Everything else in r2bridge builds on this.
 *
 * Thread-safety: every function here is safe to call from several threads
 * on distinct objects; the log level is a process-wide setting read without
 * locking (set it once at start-up).
 */
#ifndef R2BRIDGE_H
#define R2BRIDGE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define R2B_VERSION "0.1.0"

#if defined(__GNUC__)
#define R2B_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define R2B_PRINTF(a, b)
#endif

/* Append-only: new codes go at the end, values never change. */
enum r2b_status {
    R2B_OK = 0,
    R2B_ERR_NOMEM,       /* allocation failed */
    R2B_ERR_INVALID,     /* invalid argument (caller's or user's input) */
    R2B_ERR_CONFIG,      /* missing or inconsistent configuration */
    R2B_ERR_IO,          /* local file system error */
    R2B_ERR_NETWORK,     /* connection, timeout, reset: transient */
    R2B_ERR_HTTP,        /* server answered with an error (see http_status, s3_code) */
    R2B_ERR_NOT_FOUND,   /* object, bucket or record does not exist */
    R2B_ERR_AUTH,        /* credentials rejected (403, SignatureDoesNotMatch, ...) */
    R2B_ERR_PARSE,       /* a response or file could not be parsed */
    R2B_ERR_LIMIT,       /* an input exceeded a named limit */
    R2B_ERR_INTEGRITY,   /* checksum, size or ETag mismatch */
    R2B_ERR_INTERRUPTED, /* stopped by a signal or the caller */
    R2B_ERR_UNSUPPORTED, /* not supported by this build or this server */
    R2B_ERR_REJECTED,    /* media refused by validation: retrying will not help */
    R2B_ERR_BUSY,        /* another job holds the record (an upload still pending): later */
    R2B__STATUS_COUNT
};

/*
 * Detail about a failure. The function that first detects the failure fills
 * it in; callers pass the code on without rewording. A caller that does not
 * care may pass NULL wherever a `struct r2b_error *` is taken.
 */
struct r2b_error {
    enum r2b_status code;
    long http_status;  /* 0 when no HTTP exchange was involved */
    int retryable;     /* 1 when trying again later may succeed */
    char s3_code[64];  /* S3 <Code>, e.g. "NoSuchKey"; "" if none */
    char message[512]; /* one line, lowercase, no final period, never a secret */
    int sys_errno;     /* the errno behind a local failure (r2b_error_set_errno), else 0 */
};

/* Short, static description of a status code; never NULL. */
const char *r2b_strerror(enum r2b_status code);

/* Resets `err` to R2B_OK with empty strings. Accepts NULL. */
void r2b_error_clear(struct r2b_error *err);

/*
 * Sets `err` (if not NULL) to `code` with a printf-style message, truncated to
 * fit, and returns `code` so that `return r2b_error_set(...)` reads naturally.
 * http_status, s3_code and retryable are reset; set them afterwards if needed.
 */
enum r2b_status r2b_error_set(struct r2b_error *err, enum r2b_status code, const char *fmt, ...)
    R2B_PRINTF(3, 4);

/*
 * r2b_error_set() for a failed system call: the message gets ": " and
 * strerror(errnum) appended, sys_errno is errnum, and retryable is set when
 * errnum says the file system is full (r2b_errno_is_disk_full): with room
 * again, the same call may succeed.
 */
enum r2b_status r2b_error_set_errno(struct r2b_error *err, enum r2b_status code, int errnum,
                                    const char *fmt, ...) R2B_PRINTF(4, 5);

/* ENOSPC, EDQUOT or EFBIG (a file size limit): a full disk, for the caller's purposes. */
int r2b_errno_is_disk_full(int errnum);

/* --- logging --------------------------------------------------------------- */

enum r2b_log_level { R2B_LOG_ERROR = 0, R2B_LOG_WARN, R2B_LOG_INFO, R2B_LOG_DEBUG };

/* Process-wide level; messages above it are dropped. Default: R2B_LOG_WARN. */
void r2b_log_set_level(enum r2b_log_level level);
enum r2b_log_level r2b_log_get_level(void);

/*
 * Writes one line to stderr as "r2bridge: <level>: <message>". Callers never
 * pass a secret: the library logs only keys, buckets, sizes and status codes.
 */
void r2b_log(enum r2b_log_level level, const char *fmt, ...) R2B_PRINTF(2, 3);

/* --- bounded buffers --------------------------------------------------------- */

/*
 * A growable byte buffer with a hard cap (curl's dynbuf is the model). The
 * content is always NUL-terminated so it can be used as a C string. Growth
 * beyond `max_bytes` fails with R2B_ERR_LIMIT and leaves the buffer as it was.
 */
struct r2b_buf {
    char *ptr;        /* NULL until the first append */
    size_t len;       /* bytes used, excluding the terminating NUL */
    size_t cap;       /* bytes allocated */
    size_t max_bytes; /* cap on len */
};

void r2b_buf_init(struct r2b_buf *b, size_t max_bytes);
/* Frees the storage and re-initializes with the same cap. Accepts NULL. */
void r2b_buf_release(struct r2b_buf *b);
/* Sets len to 0, keeping the storage for reuse. */
void r2b_buf_reset(struct r2b_buf *b);
/* Ensures room for `extra` more bytes plus the NUL. */
enum r2b_status r2b_buf_reserve(struct r2b_buf *b, size_t extra);
enum r2b_status r2b_buf_add(struct r2b_buf *b, const void *data, size_t n);
enum r2b_status r2b_buf_adds(struct r2b_buf *b, const char *s);
enum r2b_status r2b_buf_addc(struct r2b_buf *b, char c);
enum r2b_status r2b_buf_addf(struct r2b_buf *b, const char *fmt, ...) R2B_PRINTF(2, 3);
/* Returns the content (never NULL: "" for an empty buffer). */
const char *r2b_buf_str(const struct r2b_buf *b);
/* Hands the storage to the caller (free() it) and re-initializes `b`. */
char *r2b_buf_detach(struct r2b_buf *b);

/* --- encodings ---------------------------------------------------------------- */

/* Writes 2*n lowercase hex digits and a NUL into `out` (size >= 2*n+1). */
void r2b_hex_lower(const unsigned char *in, size_t n, char *out);
/* Standard base64 with padding; `out` must hold 4*((n+2)/3)+1 bytes. Returns length. */
size_t r2b_base64_encode(const unsigned char *in, size_t n, char *out);
/* Decodes lowercase or uppercase hex; returns bytes written or -1 on bad input. */
long r2b_hex_decode(const char *hex, unsigned char *out, size_t out_size);

/* --- time --------------------------------------------------------------------- */

/* Seconds since the epoch (wall clock). */
int64_t r2b_time_now(void);
/* Monotonic milliseconds, for timeouts and rates. */
int64_t r2b_time_mono_ms(void);
/* The last second with a four-digit year: 9999-12-31T23:59:59Z. */
#define R2B_TIME_MAX INT64_C(253402300799)
/*
 * "YYYYMMDDTHHMMSSZ" (16 chars + NUL) for the UTC time `t`; a `t` outside
 * 0..R2B_TIME_MAX is clamped to that range.
 */
void r2b_time_amz(int64_t t, char out[17]);
/* Parses an RFC 7231 HTTP date or an ISO 8601 UTC time; returns -1 on failure. */
int64_t r2b_time_parse(const char *s);
/* Sleeps for `ms` milliseconds; returns early (R2B_ERR_INTERRUPTED) if a signal arrives. */
enum r2b_status r2b_sleep_ms(long ms);

/* --- small string helpers ------------------------------------------------------ */

/* strdup that returns NULL for NULL. */
char *r2b_strdup(const char *s);
/*
 * write() until all `n` bytes are written (a short write is followed by
 * another, which reports the reason: ENOSPC, EFBIG...). 0, or -1 with errno.
 */
int r2b_write_all(int fd, const void *buf, size_t n);
/* Copies at most size-1 bytes and always terminates; returns strlen(src). */
size_t r2b_strlcpy(char *dst, const char *src, size_t size);
/* 1 if `s` is valid UTF-8 of length `n` (no overlongs, no surrogates), else 0. */
int r2b_utf8_valid(const char *s, size_t n);
/* Parses a non-negative decimal integer with a maximum; 0 on success, -1 otherwise. */
int r2b_parse_u64(const char *s, uint64_t max, uint64_t *out);

#endif
