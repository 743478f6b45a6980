/* s3_int.h: exists so the request engine (s3.c), the XML readers (s3_xml.c)
 * and multipart (s3_multipart.c) share one client struct, and so unit tests
 * can reach the pure pieces (XML parsing, error classification, backoff). */
#ifndef R2B_S3_INT_H
#define R2B_S3_INT_H

#include <pthread.h>

#include "r2bridge/s3.h"
#include "r2bridge/sigv4.h"

#define R2B_S3_IOBUF_BYTES (256 * 1024)

struct r2b_s3_client {
    /* owned copies of the options' strings */
    struct r2b_s3_options opts;
    char *endpoint, *region, *access_key, *secret_key, *session_token;
    char *scheme;   /* "http" or "https" */
    char *hostport; /* host[:port], default port removed */
    struct r2b_sigv4_signer *signer;
    void *curl; /* CURL *, kept for connection reuse */
    unsigned char *iobuf; /* hashing buffer */
    uint64_t rng;         /* xorshift state for backoff jitter */
    struct r2b_s3_stats stats;
    /* parallel multipart: lazily created helper clients, kept for reuse */
    struct r2b_s3_client **workers;
    int n_workers;
    struct r2b_buf url, auth, path, body; /* reused per request */
    char list_page_size[8];               /* "max-keys" of ListObjectsV2 ("1000"); tests lower it */
};

/* One request as the engine sends it. */
struct s3_request {
    const char *method;
    const char *bucket; /* NULL: service level */
    const char *key;    /* NULL: bucket level */
    const struct r2b_sigv4_param *params;
    size_t n_params;
    const struct r2b_sigv4_header *headers; /* extra headers, signed and sent */
    size_t n_headers;
    /* body from a source range, or from memory, or none */
    const struct r2b_s3_source *src;
    uint64_t src_offset;
    uint64_t body_bytes;
    const char *mem_body;
    size_t mem_len;
    const char *payload_hash; /* NULL: hash computed (or UNSIGNED-PAYLOAD per options) */
    int upload;               /* 1: PUT with body */
    int head;                 /* 1: no response body expected */
    int out_fd;               /* >= 0: a 2xx body goes to this fd */
    struct r2b_buf *out_body; /* a 2xx body goes here (capped) when not NULL */
    int ignore_cancel;        /* 1: clean-up requests (abort) that must run after a cancel */
    /* hex MD5 the response ETag must equal (when the ETag is a plain MD5); NULL: no check */
    const char *expect_md5_hex;
};

struct s3_response {
    long status;
    struct r2b_s3_object info;
    uint64_t body_bytes; /* bytes of the 2xx body received */
};

/* Sends with retries; classifies failures into `err`. */
/* Content-MD5 (base64) and hex MD5 (+ SHA-256 unless sha_hex is NULL) of a source range, in one pass. */
enum r2b_status r2b_s3__digest_range(struct r2b_s3_client *c, const struct r2b_s3_source *src,
                                     uint64_t offset, uint64_t size, char sha_hex[65],
                                     char md5_hex[33], char md5_b64[25], struct r2b_error *err);

/* Whether an object body (PutObject, UploadPart: signed Content-MD5) is SHA-256 hashed too. */
int r2b_s3__body_sha(const struct r2b_s3_client *c);

enum r2b_status r2b_s3__perform(struct r2b_s3_client *c, const struct s3_request *req,
                                struct s3_response *resp, struct r2b_error *err);

/*
 * Classification of a finished attempt, pure: from the HTTP status (0 when
 * no response) and the S3 error code, the status code and whether a retry
 * may succeed.
 */
enum r2b_status r2b_s3__classify_http(long http_status, const char *s3_code, int *retryable);

/* Full-jitter backoff: a delay in [0, min(cap, base * 2^attempt)]. */
long r2b_s3__backoff_ms(uint64_t *rng, int attempt, long base_ms, long cap_ms);

/* --- XML (libxml2; no network, no entities, namespace-agnostic) ---------------- */

/* <Error><Code>..</Code><Message>..</Message></Error>; 1 if it is an Error document. */
int r2b_s3__xml_error(const char *xml, size_t len, char *code, size_t code_size, char *msg,
                      size_t msg_size);
/* <InitiateMultipartUploadResult><UploadId>; heap string or NULL. */
char *r2b_s3__xml_upload_id(const char *xml, size_t len);
/* <CompleteMultipartUploadResult><ETag> / <CopyObjectResult><ETag>: 0 on success. */
int r2b_s3__xml_result_etag(const char *xml, size_t len, const char *root, char etag[80]);

/* <DeleteResult>: number of <Error> entries (the first one's code, message, key), -1 if malformed. */
int r2b_s3__xml_delete_errors(const char *xml, size_t len, char *code, size_t code_size,
                              char *msg, size_t msg_size, char *key, size_t key_size);

/* <ListPartsResult>: cb per <Part> (number, etag, size); next marker and truncation. -1 if malformed. */
int r2b_s3__xml_parts(const char *xml, size_t len, void (*cb)(void *ud, unsigned n, const char *etag,
                                                              uint64_t size),
                      void *ud, int *truncated, unsigned *next_marker);

struct s3_list_page {
    int truncated;
    char *next_token; /* heap, or NULL */
    unsigned n_objects;
};
/* ListBucketResult: calls cb for each <Contents>; returns 0, or -1 if malformed, 1 if cb stopped. */
int r2b_s3__xml_list(const char *xml, size_t len, struct s3_list_page *page, r2b_s3_list_cb cb,
                     void *ud);

/* Strips surrounding quotes (and a W/ prefix) from an ETag into out. */
void r2b_s3__etag_copy(char out[80], const char *etag, size_t len);

#endif
