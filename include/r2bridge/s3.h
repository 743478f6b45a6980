/*
 * S3 operations over libcurl, shaped by what Cloudflare R2 accepts:
 *  - SigV4 only, region "auto"; path-style or virtual-hosted addressing;
 *  - an empty "Expect:" header on every upload (R2 does not answer
 *    100-continue and curl would wait for it);
 *  - never "x-amz-acl" (R2 answers 501), never aws-chunked payloads;
 *  - multipart: every part but the last has the same size, the last is not
 *    larger, 5 MiB <= part <= 5 GiB, at most 10,000 parts.
 *
 * Uploads stream from a positional reader (a file descriptor or a callback):
 * a body is never loaded into memory whole. Single PUTs carry Content-MD5,
 * so the server verifies the bytes; multipart parts carry it too, and the
 * final ETag is checked against the parts.
 *
 * Failures that may pass (connection errors, timeouts, 5xx, 429, SlowDown,
 * RequestTimeout) are retried with exponential backoff and full jitter up
 * to `retry_limit` times; a 4xx that cannot succeed is not retried. The S3
 * error code and message reach the caller in struct r2b_error.
 *
 * Thread-safety: a client is used by one thread at a time; it keeps one
 * curl handle, so consecutive requests reuse the connection. Use one client
 * per worker thread. A multipart upload with parallel > 1 runs its parts on
 * internal threads, each with its own connection, kept for the next upload.
 */
#ifndef R2BRIDGE_S3_H
#define R2BRIDGE_S3_H

#include <signal.h>
#include <sys/types.h>

#include "config.h"
#include "r2bridge.h"

/* S3/R2 limits. */
#define R2B_S3_MIN_PART_BYTES (5ULL * 1024 * 1024)
#define R2B_S3_MAX_PART_BYTES (5ULL * 1024 * 1024 * 1024)
#define R2B_S3_MAX_PARTS 10000U
#define R2B_S3_MAX_SINGLE_PUT_BYTES (5ULL * 1024 * 1024 * 1024)
#define R2B_S3_MAX_KEY_BYTES 1024
/* Named caps on what a server may send us. */
#define R2B_S3_MAX_XML_BYTES (8 * 1024 * 1024)
#define R2B_S3_MAX_ERROR_BODY_BYTES (64 * 1024)

struct r2b_s3_options {
    const char *endpoint; /* "https://<account>.r2.cloudflarestorage.com", "http://127.0.0.1:8080" */
    const char *region;   /* "auto" for R2 */
    const char *access_key;
    const char *secret_key;
    const char *session_token; /* may be NULL */
    int path_style;            /* 1: <endpoint>/<bucket>/<key>; 0: <bucket>.<host>/<key> */
    long connect_timeout_ms;
    long read_timeout_ms; /* no byte moving for this long fails the attempt */
    int retry_limit;      /* retries after the first attempt */
    long retry_base_ms;   /* first backoff ceiling (default 100) */
    long retry_cap_ms;    /* largest backoff ceiling (default 20000) */
    int unsigned_payload; /* sign UNSIGNED-PAYLOAD instead of hashing bodies (HTTPS only is wise) */
    /*
     * Object bodies (PutObject, UploadPart) carry a signed Content-MD5 that
     * the server checks, which binds the body to the signature: by default
     * they are sent as UNSIGNED-PAYLOAD and only MD5 is computed (SHA-256 of
     * every byte would be a third more CPU for no added integrity). 1: hash
     * them with SHA-256 as well (config R2B_PAYLOAD_SHA256=true).
     */
    int sha256_object_bodies;
    uint64_t multipart_threshold_bytes; /* bodies larger than this go multipart */
    uint64_t part_size_bytes;           /* preferred part size (raised to fit 10,000 parts) */
    int parallel;                       /* parts in flight for one multipart upload */
    /* When non-NULL and non-zero, transfers stop with R2B_ERR_INTERRUPTED. */
    volatile sig_atomic_t *cancel;
    /* Test hook: a fixed clock for signatures (0 = use the real clock). */
    int64_t fixed_time;
};

/* Fills the defaults (timeouts 5 s, 3 retries, 15 MiB threshold, 16 MiB parts, 4 parallel). */
void r2b_s3_options_init(struct r2b_s3_options *o);

/* Defaults, then the configuration's S3 settings. The strings stay borrowed from `cfg`. */
void r2b_s3_options_from_config(struct r2b_s3_options *o, const struct r2b_config *cfg);

struct r2b_s3_client;

/* Copies every string of `o`. Returns NULL and sets `err` on bad options. */
struct r2b_s3_client *r2b_s3_client_new(const struct r2b_s3_options *o, struct r2b_error *err);
/* Points the client (and its multipart workers) at a cancel flag (NULL: none). */
void r2b_s3_client_set_cancel(struct r2b_s3_client *c, volatile sig_atomic_t *cancel);

/* Closes connections, wipes the credentials. Accepts NULL. */
void r2b_s3_client_free(struct r2b_s3_client *c);

/* What the server says about one object. */
struct r2b_s3_object {
    char key[R2B_S3_MAX_KEY_BYTES + 1]; /* filled by list only */
    uint64_t size_bytes;
    char etag[80]; /* without quotes */
    int64_t last_modified; /* seconds since the epoch, -1 if unknown */
    char content_type[128];
    char cache_control[128];
};

/*
 * A body to upload, read by position so that a retry or a parallel part can
 * read any range again. read() gets the source itself (for ud, fd and
 * fd_offset) and returns bytes read (0 only at end of data) or -1 with
 * errno set. It may be called from several threads at once for different
 * ranges (parallel multipart), so it must not keep a file position.
 */
struct r2b_s3_source {
    uint64_t size_bytes;
    ssize_t (*read)(const struct r2b_s3_source *src, void *buf, size_t n, uint64_t offset);
    void *ud;
    int fd;             /* for r2b_s3_source_fd() */
    uint64_t fd_offset; /* for r2b_s3_source_fd() */
};

/* A source reading `size_bytes` of `fd` from `offset` with pread(). */
void r2b_s3_source_fd(struct r2b_s3_source *src, int fd, uint64_t offset, uint64_t size_bytes);

struct r2b_s3_put_options {
    const char *content_type;  /* NULL: application/octet-stream */
    const char *cache_control; /* NULL: none */
    int force_multipart;       /* 1: multipart even below the threshold (tests, resumability) */
    /*
     * Resumable multipart: when resume_upload_id is set, that upload is
     * continued (its stored parts listed, only missing or different parts
     * sent); if it no longer exists a new one starts. on_upload_id (may be
     * NULL) is told a new upload's id before any part is sent, so a caller
     * can record it and resume after a crash.
     */
    const char *resume_upload_id;
    void (*on_upload_id)(void *ud, const char *upload_id);
    void *ud;
};

/*
 * Uploads `src` to bucket/key: a single PUT with Content-MD5 up to the
 * multipart threshold, a multipart upload above it (aborted on failure, so
 * no parts are left behind). On success `out` (may be NULL) holds the size
 * and ETag the server confirmed.
 */
enum r2b_status r2b_s3_put(struct r2b_s3_client *c, const char *bucket, const char *key,
                           const struct r2b_s3_source *src, const struct r2b_s3_put_options *opts,
                           struct r2b_s3_object *out, struct r2b_error *err);

/*
 * The ETag the server gives `src` when this client uploads it with `opts`:
 * hex MD5 for a single PUT, MD5 of the part MD5s and "-N" for multipart
 * (the same threshold and part plan as r2b_s3_put). Reads the source once.
 * Lets a restarted upload recognise an object that already made it.
 */
enum r2b_status r2b_s3_expected_etag(struct r2b_s3_client *c, const struct r2b_s3_source *src,
                                     const struct r2b_s3_put_options *opts, char etag[80],
                                     struct r2b_error *err);

/* r2b_s3_put() of a whole regular file. */
enum r2b_status r2b_s3_put_file(struct r2b_s3_client *c, const char *bucket, const char *key,
                                const char *path, const struct r2b_s3_put_options *opts,
                                struct r2b_s3_object *out, struct r2b_error *err);

/* HEAD: R2B_ERR_NOT_FOUND when the object does not exist. */
enum r2b_status r2b_s3_head(struct r2b_s3_client *c, const char *bucket, const char *key,
                            struct r2b_s3_object *out, struct r2b_error *err);

/*
 * GET into `fd` from its current offset. If fd is seekable, a retried
 * attempt truncates what the failed one wrote; otherwise a failure after the
 * first byte is not retried. The received size is checked against
 * Content-Length.
 */
enum r2b_status r2b_s3_get_fd(struct r2b_s3_client *c, const char *bucket, const char *key, int fd,
                              struct r2b_s3_object *out, struct r2b_error *err);

/* DELETE: succeeds when the object is absent too (S3 semantics). */
enum r2b_status r2b_s3_delete(struct r2b_s3_client *c, const char *bucket, const char *key,
                              struct r2b_error *err);

/*
 * DeleteObjects: removes up to R2B_S3_MAX_DELETE_KEYS keys in one request
 * (absent keys count as deleted). Fails with the first per-key error the
 * server reports, naming the key.
 */
#define R2B_S3_MAX_DELETE_KEYS 1000
enum r2b_status r2b_s3_delete_many(struct r2b_s3_client *c, const char *bucket,
                                   const char *const *keys, size_t n, struct r2b_error *err);

/*
 * Server-side copy. With `meta` NULL the metadata is copied with the object;
 * otherwise it is replaced by meta's Content-Type and Cache-Control
 * (x-amz-metadata-directive: REPLACE). `out` may be NULL.
 */
enum r2b_status r2b_s3_copy(struct r2b_s3_client *c, const char *src_bucket, const char *src_key,
                            const char *dst_bucket, const char *dst_key,
                            const struct r2b_s3_put_options *meta, struct r2b_s3_object *out,
                            struct r2b_error *err);

/*
 * ListObjectsV2, page by page (1,000 keys per request), calling `cb` for
 * each object in key order. Memory stays bounded by one page. `cb` returns
 * 0 to go on, non-zero to stop early (then this returns R2B_OK).
 */
typedef int (*r2b_s3_list_cb)(void *ud, const struct r2b_s3_object *obj);
enum r2b_status r2b_s3_list(struct r2b_s3_client *c, const char *bucket, const char *prefix,
                            r2b_s3_list_cb cb, void *ud, struct r2b_error *err);

/*
 * A presigned URL for `method` (GET, HEAD, PUT or DELETE: what R2 allows)
 * valid `expires_s` seconds (1..604800, else R2B_ERR_INVALID) from `now`
 * (0: the current time). Written to `url` (reset first).
 */
enum r2b_status r2b_s3_presign(struct r2b_s3_client *c, const char *method, const char *bucket,
                               const char *key, long expires_s, int64_t now, struct r2b_buf *url,
                               struct r2b_error *err);

/* --- multipart, step by step (r2b_s3_put() does all of it) --------------------- */

/*
 * The part size for a body of `size_bytes` given a preferred size: at least
 * the preferred size and 5 MiB, large enough for at most 10,000 parts, at
 * most 5 GiB. R2B_ERR_LIMIT when the body cannot fit.
 */
enum r2b_status r2b_s3_part_plan(uint64_t size_bytes, uint64_t preferred_bytes,
                                 uint64_t *part_bytes, unsigned *n_parts, struct r2b_error *err);

/* CreateMultipartUpload; `upload_id` receives a heap string the caller frees. */
enum r2b_status r2b_s3_multipart_create(struct r2b_s3_client *c, const char *bucket,
                                        const char *key, const struct r2b_s3_put_options *opts,
                                        char **upload_id, struct r2b_error *err);
/* UploadPart of `size_bytes` from `src` at `offset`, with Content-MD5; etag_out gets the ETag. */
enum r2b_status r2b_s3_multipart_upload_part(struct r2b_s3_client *c, const char *bucket,
                                             const char *key, const char *upload_id,
                                             unsigned part_number, const struct r2b_s3_source *src,
                                             uint64_t offset, uint64_t size_bytes,
                                             char etag_out[80], struct r2b_error *err);
/* CompleteMultipartUpload with parts 1..n_parts and their ETags. */
enum r2b_status r2b_s3_multipart_complete(struct r2b_s3_client *c, const char *bucket,
                                          const char *key, const char *upload_id,
                                          char (*etags)[80], unsigned n_parts,
                                          struct r2b_s3_object *out, struct r2b_error *err);
/* AbortMultipartUpload; succeeds if the upload is already gone. */
enum r2b_status r2b_s3_multipart_abort(struct r2b_s3_client *c, const char *bucket,
                                       const char *key, const char *upload_id,
                                       struct r2b_error *err);

/* Counters for this client since creation (requests sent, retries made). */
struct r2b_s3_stats {
    uint64_t requests;
    uint64_t retries;
    uint64_t bytes_sent;
    uint64_t bytes_received;
};
void r2b_s3_client_stats(const struct r2b_s3_client *c, struct r2b_s3_stats *out);

#endif
