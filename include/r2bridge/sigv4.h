/*
 * AWS Signature Version 4 for S3 (and R2): header signing and presigned URLs.
 *
 * Pure: no I/O and no clock. The time is a parameter, so the same inputs
 * always give the same signature (the differential tests rely on this).
 *
 * The S3 flavour of SigV4 is implemented, which differs from the generic one:
 *  - the path is URI-encoded exactly once and never normalized: "//", "."
 *    and ".." segments are signed as sent;
 *  - query names and values are strictly encoded (unreserved A-Za-z0-9-._~
 *    kept, everything else %XX uppercase; "+" is %2B, space is %20), sorted
 *    by encoded name then encoded value, a valueless parameter is "name=";
 *  - header names are lowercased, values trimmed with inner runs of
 *    whitespace collapsed to one space; "host" is always signed;
 *  - the payload is the hex SHA-256 of the body, or "UNSIGNED-PAYLOAD";
 *    presigned URLs always use "UNSIGNED-PAYLOAD".
 *
 * Thread-safety: a signer keeps reusable scratch buffers and a signing-key
 * cache, so one signer must not be used by two threads at once. Create one
 * per thread; they are cheap.
 */
#ifndef R2BRIDGE_SIGV4_H
#define R2BRIDGE_SIGV4_H

#include "r2bridge.h"

#define R2B_SIGV4_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"
/* SHA-256 of the empty string, the payload hash of bodiless requests. */
#define R2B_SIGV4_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
/* R2 (and S3) accept presigned URLs valid for 1 second to 7 days. */
#define R2B_SIGV4_PRESIGN_MIN_S 1L
#define R2B_SIGV4_PRESIGN_MAX_S 604800L
/* Named limits on caller input. */
#define R2B_SIGV4_MAX_PATH_BYTES 4096
#define R2B_SIGV4_MAX_PARAMS 64
#define R2B_SIGV4_MAX_HEADERS 64

/* A query parameter, not encoded. value == NULL means a valueless parameter. */
struct r2b_sigv4_param {
    const char *name;
    const char *value;
};

/* A header to sign, not canonicalized. Names are case-insensitive. */
struct r2b_sigv4_header {
    const char *name;
    const char *value;
};

/* Everything about a request that enters the signature. All borrowed. */
/*
 * Rejected with R2B_ERR_INVALID before anything is signed: a method that is
 * not an HTTP token; a host holding '/', '?', '#', '@', '\', spaces or
 * control characters; header values with control characters other than tab
 * (they would be signed as something other than what is sent); and, for
 * presign, caller parameters named like the signer's own X-Amz-* ones; a
 * time `now` outside 0..R2B_TIME_MAX (years 1970 to 9999).
 */
struct r2b_sigv4_request {
    const char *method; /* "GET", "PUT", "HEAD", "DELETE", "POST" */
    /*
     * The Host header exactly as it will be sent: "host" or "host:port".
     * A default port (80 for http, 443 for https) must be left out by the
     * caller, as clients do not send it.
     */
    const char *host;
    /* The raw (not encoded) absolute path, e.g. "/bucket/a key.jpg". */
    const char *path;
    size_t path_len; /* 0 means strlen(path); paths may not contain NUL */
    const struct r2b_sigv4_param *params;
    size_t n_params;
    /*
     * Extra headers to sign (e.g. content-md5, content-type, x-amz-meta-*).
     * The caller must send exactly these. Do not pass host, x-amz-date,
     * x-amz-content-sha256 or authorization: the signer adds them.
     * Repeated names are joined with "," in the given order.
     */
    const struct r2b_sigv4_header *headers;
    size_t n_headers;
    /* 64 lowercase hex digits, or R2B_SIGV4_UNSIGNED_PAYLOAD; NULL means unsigned. */
    const char *payload_hash;
};

struct r2b_sigv4_signer;

/*
 * Creates a signer for one set of credentials, one region ("auto" for R2) and
 * one service ("s3"). The strings are copied; the copy of the secret is wiped
 * with OPENSSL_cleanse() when the signer is freed. session_token may be NULL.
 * Returns NULL and sets `err` on failure (empty access key, secret, region).
 */
struct r2b_sigv4_signer *r2b_sigv4_signer_new(const char *access_key, const char *secret_key,
                                              const char *session_token, const char *region,
                                              const char *service, struct r2b_error *err);
/* Wipes and frees. Accepts NULL. */
void r2b_sigv4_signer_free(struct r2b_sigv4_signer *s);

/*
 * Signs `req` for sending at time `now` (seconds since the epoch) with an
 * Authorization header. On success:
 *  - `authorization` (reset first) holds the Authorization header value;
 *  - `amz_date` holds the value of the x-amz-date header to send;
 * the caller then sends Host, x-amz-date, x-amz-content-sha256 (the payload
 * hash, or UNSIGNED-PAYLOAD when req->payload_hash is NULL), any
 * x-amz-security-token, the extra headers, and Authorization.
 */
enum r2b_status r2b_sigv4_sign_headers(struct r2b_sigv4_signer *s,
                                       const struct r2b_sigv4_request *req, int64_t now,
                                       struct r2b_buf *authorization, char amz_date[17],
                                       struct r2b_error *err);

/*
 * Builds a presigned URL "<scheme>://<host><encoded path>?<query>" valid for
 * `expires_s` seconds from `now`. The expiry must be within
 * [R2B_SIGV4_PRESIGN_MIN_S, R2B_SIGV4_PRESIGN_MAX_S]; anything else is
 * R2B_ERR_INVALID, never silently clamped. req->payload_hash is ignored
 * (presigned URLs are always UNSIGNED-PAYLOAD). The URL is written to `url`
 * (reset first); with a reused `url` buffer a presign allocates nothing.
 */
enum r2b_status r2b_sigv4_presign(struct r2b_sigv4_signer *s, const struct r2b_sigv4_request *req,
                                  int64_t now, long expires_s, const char *scheme,
                                  struct r2b_buf *url, struct r2b_error *err);

/*
 * The canonical request and string to sign of the last successful sign or
 * presign call on `s`, for tests and debugging. Valid until the next call on
 * `s`; undefined after a call that failed. Neither contains the secret.
 */
const char *r2b_sigv4_last_canonical_request(const struct r2b_sigv4_signer *s);
const char *r2b_sigv4_last_string_to_sign(const struct r2b_sigv4_signer *s);

/*
 * Appends the S3 URI encoding of `n` bytes of `s` to `out`: unreserved
 * characters kept, "/" kept when keep_slash is non-zero, everything else
 * %XX with uppercase hex.
 */
enum r2b_status r2b_sigv4_uri_encode(struct r2b_buf *out, const char *s, size_t n, int keep_slash);

/* --- digests (the only place OpenSSL is used outside the signer) -------------- */

/* Incremental SHA-256 and MD5 over the same bytes. Caller-owned, no heap. */
struct r2b_digest {
    uint64_t state[64]; /* opaque; large enough for both contexts */
    uint64_t bytes;           /* bytes fed so far */
};

void r2b_digest_init(struct r2b_digest *d);
/* One of the two only (MD5 alone: a third of the CPU; SHA-256 alone: half):
 * r2b_digest_final() then writes "" for the other's outputs. */
void r2b_digest_init_md5(struct r2b_digest *d);
void r2b_digest_init_sha256(struct r2b_digest *d);
void r2b_digest_update(struct r2b_digest *d, const void *data, size_t n);
/*
 * Finishes both digests. Any output pointer may be NULL.
 *  sha256_hex: 65 bytes, lowercase hex; md5_hex: 33 bytes; md5_b64: 25 bytes
 *  (the Content-MD5 header value).
 */
void r2b_digest_final(struct r2b_digest *d, char sha256_hex[65], char md5_hex[33],
                      char md5_b64[25]);

/* One-shot SHA-256 as lowercase hex. */
void r2b_sha256_hex(const void *data, size_t n, char out[65]);

/* Fills `buf` with `n` bytes from a cryptographically secure generator. */
enum r2b_status r2b_random_bytes(unsigned char *buf, size_t n, struct r2b_error *err);

#endif
