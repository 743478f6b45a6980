/*
 * Multipart uploads under R2's rules: all non-trailing parts the same size,
 * 5 MiB <= part <= 5 GiB, at most 10,000 parts. Parts of one upload go in
 * parallel on worker threads, each with its own client (own connection);
 * the workers are kept in the parent client and reused by the next upload.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3_int.h"

#define MIB (1024ULL * 1024)

enum r2b_status r2b_s3_part_plan(uint64_t size_bytes, uint64_t preferred_bytes,
                                 uint64_t *part_bytes, unsigned *n_parts, struct r2b_error *err)
{
    uint64_t part =
        preferred_bytes < R2B_S3_MIN_PART_BYTES ? R2B_S3_MIN_PART_BYTES : preferred_bytes;
    uint64_t min_for_count = (size_bytes + R2B_S3_MAX_PARTS - 1) / R2B_S3_MAX_PARTS;

    if (part > R2B_S3_MAX_PART_BYTES)
        part = R2B_S3_MAX_PART_BYTES;
    if (min_for_count > part) {
        /* round up to a whole MiB: equal parts, fewer than 10,000 of them */
        part = (min_for_count + MIB - 1) / MIB * MIB;
    }
    if (part > R2B_S3_MAX_PART_BYTES || size_bytes == 0)
        return r2b_error_set(err, R2B_ERR_LIMIT,
                             size_bytes ? "object of %llu bytes is too large for 10,000 parts of "
                                          "at most 5 GiB"
                                        : "multipart upload of %llu bytes: empty body",
                             (unsigned long long)size_bytes);
    *part_bytes = part;
    *n_parts = (unsigned)((size_bytes + part - 1) / part);
    return R2B_OK;
}

static struct r2b_sigv4_param upload_id_param(const char *upload_id)
{
    return (struct r2b_sigv4_param){"uploadId", upload_id};
}

enum r2b_status r2b_s3_multipart_create(struct r2b_s3_client *c, const char *bucket,
                                        const char *key, const struct r2b_s3_put_options *opts,
                                        char **upload_id, struct r2b_error *err)
{
    struct r2b_sigv4_param params[1] = {{"uploads", NULL}};
    struct r2b_sigv4_header hdrs[2];
    size_t nh = 0;
    struct s3_request req;
    struct s3_response resp;
    struct r2b_buf body;
    enum r2b_status st;

    *upload_id = NULL;
    hdrs[nh++] = (struct r2b_sigv4_header){"Content-Type", opts && opts->content_type
                                                               ? opts->content_type
                                                               : "application/octet-stream"};
    if (opts && opts->cache_control)
        hdrs[nh++] = (struct r2b_sigv4_header){"Cache-Control", opts->cache_control};
    r2b_buf_init(&body, R2B_S3_MAX_ERROR_BODY_BYTES);
    memset(&req, 0, sizeof(req));
    req.method = "POST";
    req.bucket = bucket;
    req.key = key;
    req.params = params;
    req.n_params = 1;
    req.headers = hdrs;
    req.n_headers = nh;
    req.out_fd = -1;
    req.out_body = &body;
    for (int att = 0;; att++) {
        st = r2b_s3__perform(c, &req, &resp, err);
        if (st != R2B_OK)
            break;
        *upload_id = r2b_s3__xml_upload_id(r2b_buf_str(&body), body.len);
        if (*upload_id != NULL)
            break;
        /* a garbled answer (cut, or not XML): ask again, like a 5xx. The upload
         * that answer created cannot be aborted (its id is unknown); R2 drops
         * incomplete uploads after 7 days. */
        st = r2b_error_set(err, R2B_ERR_PARSE,
                           "create multipart upload '%s/%s': no UploadId in response", bucket, key);
        if (err)
            err->retryable = 1;
        if (att >= c->opts.retry_limit || (c->opts.cancel && *c->opts.cancel))
            break;
        r2b_sleep_ms(r2b_s3__backoff_ms(&c->rng, att, c->opts.retry_base_ms, c->opts.retry_cap_ms));
    }
    r2b_buf_release(&body);
    return st;
}

enum r2b_status r2b_s3_multipart_upload_part(struct r2b_s3_client *c, const char *bucket,
                                             const char *key, const char *upload_id,
                                             unsigned part_number, const struct r2b_s3_source *src,
                                             uint64_t offset, uint64_t size_bytes,
                                             char etag_out[80], struct r2b_error *err)
{
    char num[16], sha_hex[65], md5_hex[33], md5_b64[25];
    struct r2b_sigv4_param params[2];
    struct r2b_sigv4_header hdrs[1];
    struct s3_request req;
    struct s3_response resp;
    enum r2b_status st;

    if (part_number < 1 || part_number > R2B_S3_MAX_PARTS)
        return r2b_error_set(err, R2B_ERR_INVALID, "part number %u out of range 1..10000",
                             part_number);
    st = r2b_s3__digest_range(c, src, offset, size_bytes, r2b_s3__body_sha(c) ? sha_hex : NULL,
                              md5_hex, md5_b64, err);
    if (st != R2B_OK)
        return st;
    snprintf(num, sizeof(num), "%u", part_number);
    params[0] = (struct r2b_sigv4_param){"partNumber", num};
    params[1] = upload_id_param(upload_id);
    hdrs[0] = (struct r2b_sigv4_header){"Content-MD5", md5_b64};
    memset(&req, 0, sizeof(req));
    req.method = "PUT";
    req.bucket = bucket;
    req.key = key;
    req.params = params;
    req.n_params = 2;
    req.headers = hdrs;
    req.n_headers = 1;
    req.src = src;
    req.src_offset = offset;
    req.body_bytes = size_bytes;
    req.upload = 1;
    req.out_fd = -1;
    req.payload_hash = r2b_s3__body_sha(c) ? sha_hex : R2B_SIGV4_UNSIGNED_PAYLOAD;
    req.expect_md5_hex = md5_hex;
    st = r2b_s3__perform(c, &req, &resp, err);
    if (st != R2B_OK)
        return st;
    if (resp.info.etag[0] == '\0')
        r2b_strlcpy(resp.info.etag, md5_hex, sizeof(resp.info.etag));
    r2b_strlcpy(etag_out, resp.info.etag, 80);
    return R2B_OK;
}

/* The multipart ETag S3 computes: hex MD5 of the concatenated binary part MD5s, "-N". */
static int expected_multipart_etag(char (*etags)[80], unsigned n, char out[80])
{
    struct r2b_digest d;
    unsigned char bin[16];
    char hex[33];

    r2b_digest_init(&d);
    for (unsigned i = 0; i < n; i++) {
        if (strlen(etags[i]) != 32 || r2b_hex_decode(etags[i], bin, sizeof(bin)) != 16)
            return -1; /* parts not plain MD5s: no expectation */
        r2b_digest_update(&d, bin, sizeof(bin));
    }
    r2b_digest_final(&d, NULL, hex, NULL);
    snprintf(out, 80, "%s-%u", hex, n);
    return 0;
}

/*
 * The answer to a completion was lost or garbled (a reset, a stall, a cut
 * body), or a retried completion found the upload gone because the first one
 * had worked: the object is ours if the server now holds it with the
 * multipart ETag of our parts (the MD5 of their MD5s: only these bytes, cut
 * the same way, give it). 1 and the ETag in `etag_out` if so.
 */
static int completed_anyway(struct r2b_s3_client *c, const char *bucket, const char *key,
                            char (*etags)[80], unsigned n_parts, char etag_out[80])
{
    struct r2b_s3_object head;
    char expect[80];

    if (expected_multipart_etag(etags, n_parts, expect) != 0 ||
        r2b_s3_head(c, bucket, key, &head, NULL) != R2B_OK || strcmp(head.etag, expect) != 0)
        return 0;
    r2b_strlcpy(etag_out, expect, 80);
    return 1;
}

enum r2b_status r2b_s3_multipart_complete(struct r2b_s3_client *c, const char *bucket,
                                          const char *key, const char *upload_id, char (*etags)[80],
                                          unsigned n_parts, struct r2b_s3_object *out,
                                          struct r2b_error *err)
{
    struct r2b_sigv4_param params[1];
    struct r2b_sigv4_header hdrs[1] = {{"Content-Type", "application/xml"}};
    struct r2b_buf xml, body;
    struct s3_request req;
    struct s3_response resp;
    char code[64], msg[256], etag[80], expect[80];
    enum r2b_status st = R2B_OK;

    r2b_buf_init(&xml, (size_t)R2B_S3_MAX_PARTS * 128 + 128);
    r2b_buf_init(&body, R2B_S3_MAX_ERROR_BODY_BYTES);
    if (r2b_buf_adds(&xml, "<CompleteMultipartUpload>") != R2B_OK)
        st = R2B_ERR_NOMEM;
    for (unsigned i = 0; i < n_parts && st == R2B_OK; i++)
        st = r2b_buf_addf(&xml, "<Part><PartNumber>%u</PartNumber><ETag>\"%s\"</ETag></Part>",
                          i + 1, etags[i]);
    if (st == R2B_OK)
        st = r2b_buf_adds(&xml, "</CompleteMultipartUpload>");
    if (st != R2B_OK) {
        st = r2b_error_set(err, st, "cannot build multipart completion");
        goto cleanup;
    }
    params[0] = upload_id_param(upload_id);
    memset(&req, 0, sizeof(req));
    req.method = "POST";
    req.bucket = bucket;
    req.key = key;
    req.params = params;
    req.n_params = 1;
    req.headers = hdrs;
    req.n_headers = 1;
    req.mem_body = xml.ptr;
    req.mem_len = xml.len;
    req.out_fd = -1;
    req.out_body = &body;
    st = r2b_s3__perform(c, &req, &resp, err);
    if (st != R2B_OK)
        goto failed;
    /* CompleteMultipartUpload may answer 200 with an <Error> body */
    if (r2b_s3__xml_error(r2b_buf_str(&body), body.len, code, sizeof(code), msg, sizeof(msg))) {
        int retryable;

        st = r2b_s3__classify_http(500, code, &retryable);
        r2b_error_set(err, st, "complete multipart '%s/%s': %s: %s", bucket, key, code, msg);
        if (err)
            err->retryable = retryable;
        goto cleanup;
    }
    if (r2b_s3__xml_result_etag(r2b_buf_str(&body), body.len, "CompleteMultipartUploadResult",
                                etag) != 0) {
        st = r2b_error_set(err, R2B_ERR_PARSE, "complete multipart '%s/%s': unreadable response",
                           bucket, key);
        goto failed;
    }
    if (expected_multipart_etag(etags, n_parts, expect) == 0 && strchr(etag, '-') &&
        strcmp(etag, expect) != 0) {
        st = r2b_error_set(err, R2B_ERR_INTEGRITY,
                           "complete multipart '%s/%s': etag %s, expected %s", bucket, key, etag,
                           expect);
        goto cleanup;
    }
    goto done;
failed:
    /* the server may have completed it all the same: ask before calling it failed */
    if (st == R2B_ERR_AUTH || st == R2B_ERR_INVALID || st == R2B_ERR_NOMEM ||
        st == R2B_ERR_INTERRUPTED || st == R2B_ERR_INTEGRITY)
        goto cleanup;
    if (completed_anyway(c, bucket, key, etags, n_parts, etag)) {
        r2b_log(R2B_LOG_INFO,
                "complete multipart '%s/%s': the answer was lost (%s), but the "
                "object is there with the expected etag",
                bucket, key, err ? err->message : r2b_strerror(st));
        r2b_error_clear(err);
        st = R2B_OK;
        goto done;
    }
    if (st == R2B_ERR_NOT_FOUND) /* NoSuchUpload: it is gone, the whole upload must be redone */
        st = r2b_error_set(err, R2B_ERR_HTTP, "complete multipart '%s/%s': the upload is gone",
                           bucket, key);
    if (err && (st == R2B_ERR_HTTP || st == R2B_ERR_PARSE))
        err->retryable = 1; /* a garbled or lost answer: another upload may well work */
    goto cleanup;
done:
    if (out) {
        memset(out, 0, sizeof(*out));
        out->last_modified = -1;
        r2b_strlcpy(out->etag, etag, sizeof(out->etag));
    }
cleanup:
    r2b_buf_release(&xml);
    r2b_buf_release(&body);
    return st;
}

enum r2b_status r2b_s3_multipart_abort(struct r2b_s3_client *c, const char *bucket, const char *key,
                                       const char *upload_id, struct r2b_error *err)
{
    struct r2b_sigv4_param params[1];
    struct s3_request req;
    struct s3_response resp;
    enum r2b_status st;

    params[0] = upload_id_param(upload_id);
    memset(&req, 0, sizeof(req));
    req.method = "DELETE";
    req.bucket = bucket;
    req.key = key;
    req.params = params;
    req.n_params = 1;
    req.out_fd = -1;
    req.ignore_cancel = 1;
    st = r2b_s3__perform(c, &req, &resp, err);
    if (st == R2B_ERR_NOT_FOUND) { /* NoSuchUpload: already gone */
        r2b_error_clear(err);
        return R2B_OK;
    }
    return st;
}

/* --- parallel upload ---------------------------------------------------------------- */

struct mp_job {
    pthread_mutex_t lock;
    const char *bucket, *key, *upload_id;
    const struct r2b_s3_source *src;
    uint64_t part_bytes;
    unsigned n_parts;
    unsigned next; /* next part index to hand out */
    int failed;    /* set once: later parts are not started */
    char (*etags)[80];
    unsigned char *have; /* resumed upload: have[i] = part i+1 already stored as ours */
    struct r2b_error first_err;
};

struct mp_worker {
    struct mp_job *job;
    struct r2b_s3_client *client;
};

static void *mp_run(void *arg)
{
    struct mp_worker *w = arg;
    struct mp_job *j = w->job;
    struct r2b_error err;

    for (;;) {
        unsigned i;
        uint64_t off, len;
        enum r2b_status st;

        pthread_mutex_lock(&j->lock);
        if (j->failed || j->next >= j->n_parts) {
            pthread_mutex_unlock(&j->lock);
            break;
        }
        i = j->next++;
        pthread_mutex_unlock(&j->lock);
        if (j->have && j->have[i])
            continue; /* stored by the run we resume */
        off = (uint64_t)i * j->part_bytes;
        len = j->src->size_bytes - off < j->part_bytes ? j->src->size_bytes - off : j->part_bytes;
        r2b_error_clear(&err);
        st = r2b_s3_multipart_upload_part(w->client, j->bucket, j->key, j->upload_id, i + 1, j->src,
                                          off, len, j->etags[i], &err);
        if (st != R2B_OK) {
            pthread_mutex_lock(&j->lock);
            if (!j->failed) {
                j->failed = 1;
                j->first_err = err;
            }
            pthread_mutex_unlock(&j->lock);
            break;
        }
    }
    return NULL;
}

struct stored_parts {
    struct mp_job *job;
    uint64_t part_bytes;
    unsigned n_parts;
    char (*remote)[80]; /* the stored part's etag, "" if none */
    uint64_t *remote_size;
};

static void on_part(void *ud, unsigned n, const char *etag, uint64_t size)
{
    struct stored_parts *sp = ud;

    if (n >= 1 && n <= sp->n_parts) {
        r2b_strlcpy(sp->remote[n - 1], etag, 80);
        sp->remote_size[n - 1] = size;
    }
}

/*
 * Lists the parts of `upload_id` and marks in job->have those that hold
 * exactly our bytes (size and MD5 ETag). R2B_ERR_NOT_FOUND when the upload
 * is gone (completed or aborted): then a new one must start.
 */
static enum r2b_status resume_parts(struct r2b_s3_client *c, const char *bucket, const char *key,
                                    const char *upload_id, const struct r2b_s3_source *src,
                                    struct mp_job *j, struct r2b_error *err)
{
    struct stored_parts sp = {j, j->part_bytes, j->n_parts, NULL, NULL};
    struct r2b_buf body;
    unsigned marker = 0;
    enum r2b_status st = R2B_OK;

    r2b_buf_init(&body, R2B_S3_MAX_XML_BYTES);
    sp.remote = calloc(j->n_parts, sizeof(*sp.remote));
    sp.remote_size = calloc(j->n_parts, sizeof(*sp.remote_size));
    j->have = calloc(j->n_parts, 1);
    if (sp.remote == NULL || sp.remote_size == NULL || j->have == NULL) {
        st = r2b_error_set(err, R2B_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (;;) {
        char num[16];
        struct r2b_sigv4_param params[2] = {{"part-number-marker", num}, {"uploadId", upload_id}};
        struct s3_request req;
        struct s3_response resp;
        int truncated = 0;

        snprintf(num, sizeof(num), "%u", marker);
        memset(&req, 0, sizeof(req));
        req.method = "GET";
        req.bucket = bucket;
        req.key = key;
        req.params = params;
        req.n_params = 2;
        req.out_fd = -1;
        req.out_body = &body;
        if ((st = r2b_s3__perform(c, &req, &resp, err)) != R2B_OK)
            goto done;
        if (r2b_s3__xml_parts(r2b_buf_str(&body), body.len, on_part, &sp, &truncated, &marker) !=
            0) {
            st = r2b_error_set(err, R2B_ERR_PARSE, "list parts of '%s/%s': malformed answer",
                               bucket, key);
            goto done;
        }
        if (!truncated || marker == 0)
            break;
    }
    for (unsigned i = 0; i < j->n_parts; i++) {
        uint64_t off = (uint64_t)i * j->part_bytes;
        uint64_t len =
            src->size_bytes - off < j->part_bytes ? src->size_bytes - off : j->part_bytes;
        char md5[33], b64[25];

        if (sp.remote[i][0] == '\0' || sp.remote_size[i] != len)
            continue;
        if ((st = r2b_s3__digest_range(c, src, off, len, NULL, md5, b64, err)) != R2B_OK)
            goto done;
        if (strcmp(md5, sp.remote[i]) == 0) { /* our bytes: keep the part */
            j->have[i] = 1;
            r2b_strlcpy(j->etags[i], md5, 80);
        }
    }
done:
    free(sp.remote);
    free(sp.remote_size);
    r2b_buf_release(&body);
    return st;
}

/* Worker clients share the parent's options; created once, kept for reuse. */
static enum r2b_status ensure_workers(struct r2b_s3_client *c, int n, struct r2b_error *err)
{
    struct r2b_s3_client **w;

    if (c->n_workers >= n)
        return R2B_OK;
    w = realloc(c->workers, (size_t)n * sizeof(*w));
    if (w == NULL)
        return r2b_error_set(err, R2B_ERR_NOMEM, "out of memory");
    c->workers = w;
    while (c->n_workers < n) {
        struct r2b_s3_options o = c->opts;

        o.parallel = 1;
        o.cancel = c->opts.cancel;
        w[c->n_workers] = r2b_s3_client_new(&o, err);
        if (w[c->n_workers] == NULL)
            return err ? err->code : R2B_ERR_NOMEM;
        c->n_workers++;
    }
    return R2B_OK;
}

enum r2b_status r2b_s3__put_multipart(struct r2b_s3_client *c, const char *bucket, const char *key,
                                      const struct r2b_s3_source *src,
                                      const struct r2b_s3_put_options *opts,
                                      struct r2b_s3_object *out, struct r2b_error *err);
enum r2b_status r2b_s3__put_multipart(struct r2b_s3_client *c, const char *bucket, const char *key,
                                      const struct r2b_s3_source *src,
                                      const struct r2b_s3_put_options *opts,
                                      struct r2b_s3_object *out, struct r2b_error *err)
{
    struct mp_job job;
    struct mp_worker *workers = NULL;
    pthread_t *threads = NULL;
    char *upload_id = NULL;
    int n_threads, started = 0;
    enum r2b_status st;

    memset(&job, 0, sizeof(job));
    pthread_mutex_init(&job.lock, NULL);
    st = r2b_s3_part_plan(src->size_bytes, c->opts.part_size_bytes, &job.part_bytes, &job.n_parts,
                          err);
    if (st != R2B_OK)
        goto cleanup;
    job.etags = calloc(job.n_parts, sizeof(*job.etags));
    if (job.etags == NULL) {
        st = r2b_error_set(err, R2B_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    n_threads = c->opts.parallel < (int)job.n_parts ? c->opts.parallel : (int)job.n_parts;
    if (n_threads > 1 && (st = ensure_workers(c, n_threads - 1, err)) != R2B_OK)
        goto cleanup;
    if (opts && opts->resume_upload_id && *opts->resume_upload_id) {
        /* continue the upload a killed run left: only missing parts go out */
        upload_id = r2b_strdup(opts->resume_upload_id);
        st = upload_id ? resume_parts(c, bucket, key, upload_id, src, &job, err) : R2B_ERR_NOMEM;
        if (st == R2B_ERR_NOT_FOUND) { /* gone: start afresh */
            free(upload_id);
            upload_id = NULL;
            free(job.have);
            job.have = NULL;
            r2b_error_clear(err);
            st = R2B_OK;
        } else if (st != R2B_OK) {
            goto cleanup;
        }
    }
    if (upload_id == NULL) {
        st = r2b_s3_multipart_create(c, bucket, key, opts, &upload_id, err);
        if (st != R2B_OK)
            goto cleanup;
        if (opts && opts->on_upload_id)
            opts->on_upload_id(opts->ud, upload_id);
    }
    job.bucket = bucket;
    job.key = key;
    job.upload_id = upload_id;
    job.src = src;
    workers = calloc((size_t)n_threads, sizeof(*workers));
    threads = calloc((size_t)n_threads, sizeof(*threads));
    if (workers == NULL || threads == NULL) {
        st = r2b_error_set(err, R2B_ERR_NOMEM, "out of memory");
        goto abort;
    }
    /* worker 0 is the calling thread with the parent client */
    for (int i = 0; i < n_threads; i++) {
        workers[i].job = &job;
        workers[i].client = i == 0 ? c : c->workers[i - 1];
    }
    for (int i = 1; i < n_threads; i++) {
        if (pthread_create(&threads[i], NULL, mp_run, &workers[i]) != 0)
            break;
        started = i;
    }
    mp_run(&workers[0]);
    for (int i = 1; i <= started; i++)
        pthread_join(threads[i], NULL);
    if (job.failed) {
        if (err)
            *err = job.first_err;
        st = job.first_err.code ? job.first_err.code : R2B_ERR_HTTP;
        goto abort;
    }
    if (job.next < job.n_parts) { /* could not start threads and the caller stopped early */
        st = r2b_error_set(err, R2B_ERR_INTERRUPTED, "multipart upload '%s/%s' incomplete", bucket,
                           key);
        goto abort;
    }
    st = r2b_s3_multipart_complete(c, bucket, key, upload_id, job.etags, job.n_parts, out, err);
    if (st != R2B_OK)
        goto abort;
    if (out)
        out->size_bytes = src->size_bytes;
    goto cleanup;
abort : {
    /* leave no parts behind; the first error is the one that matters */
    struct r2b_error ignored;

    if (r2b_s3_multipart_abort(c, bucket, key, upload_id, &ignored) != R2B_OK)
        r2b_log(R2B_LOG_WARN, "cannot abort multipart upload of '%s/%s': %s", bucket, key,
                ignored.message);
}
cleanup:
    pthread_mutex_destroy(&job.lock);
    free(job.etags);
    free(job.have);
    free(workers);
    free(threads);
    free(upload_id);
    return st;
}

enum r2b_status r2b_s3_expected_etag(struct r2b_s3_client *c, const struct r2b_s3_source *src,
                                     const struct r2b_s3_put_options *opts, char etag[80],
                                     struct r2b_error *err)
{
    char md5[33], b64[25];
    uint64_t part = 0;
    unsigned n = 0;
    struct r2b_digest all;
    unsigned char bin[16];
    enum r2b_status st;

    /* the same choice r2b_s3_put makes */
    if (!((opts && opts->force_multipart && src->size_bytes > 0) ||
          src->size_bytes > c->opts.multipart_threshold_bytes ||
          src->size_bytes > R2B_S3_MAX_SINGLE_PUT_BYTES)) {
        st = r2b_s3__digest_range(c, src, 0, src->size_bytes, NULL, md5, b64, err);
        if (st == R2B_OK)
            r2b_strlcpy(etag, md5, 80);
        return st;
    }
    if ((st = r2b_s3_part_plan(src->size_bytes, c->opts.part_size_bytes, &part, &n, err)) != R2B_OK)
        return st;
    r2b_digest_init(&all);
    for (unsigned i = 0; i < n; i++) {
        uint64_t off = (uint64_t)i * part,
                 len = src->size_bytes - off < part ? src->size_bytes - off : part;

        if ((st = r2b_s3__digest_range(c, src, off, len, NULL, md5, b64, err)) != R2B_OK)
            return st;
        r2b_hex_decode(md5, bin, sizeof(bin));
        r2b_digest_update(&all, bin, sizeof(bin));
    }
    r2b_digest_final(&all, NULL, md5, NULL);
    snprintf(etag, 80, "%s-%u", md5, n);
    return R2B_OK;
}
