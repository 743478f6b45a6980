/*
 * The S3 request engine over libcurl, and the single-request operations.
 * One curl easy handle per client: curl_easy_reset() between requests keeps
 * the connection cache, so a worker's requests reuse one connection.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <libxml/parser.h>

#include "s3_int.h"

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static int global_ok;

static void global_init(void)
{
    /* curl_global_init and xmlInitParser are not thread-safe: once per process. */
    global_ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
    xmlInitParser();
}

void r2b_s3_options_init(struct r2b_s3_options *o)
{
    memset(o, 0, sizeof(*o));
    o->region = "auto";
    o->connect_timeout_ms = 5000;
    o->read_timeout_ms = 5000;
    o->retry_limit = 3;
    o->retry_base_ms = 100;
    o->retry_cap_ms = 20000;
    o->multipart_threshold_bytes = 15ULL * 1024 * 1024;
    o->part_size_bytes = 16ULL * 1024 * 1024;
    o->parallel = 4;
}

void r2b_s3_options_from_config(struct r2b_s3_options *o, const struct r2b_config *cfg)
{
    r2b_s3_options_init(o);
    o->endpoint = cfg->endpoint;
    o->region = cfg->region;
    o->access_key = cfg->access_key;
    o->secret_key = cfg->secret_key;
    o->session_token = cfg->session_token;
    o->path_style = cfg->path_style;
    o->connect_timeout_ms = cfg->connect_timeout_ms;
    o->read_timeout_ms = cfg->read_timeout_ms;
    o->retry_limit = cfg->retry_limit;
    o->multipart_threshold_bytes = cfg->multipart_threshold_bytes;
    o->part_size_bytes = cfg->part_size_bytes;
    o->parallel = cfg->parallel;
    o->sha256_object_bodies = cfg->payload_sha256;
}

/* Splits "scheme://host[:port][/]" into scheme and Host header value. */
static enum r2b_status parse_endpoint(struct r2b_s3_client *c, struct r2b_error *err)
{
    const char *e = c->endpoint, *auth, *end, *port = NULL;
    size_t hlen;

    if (strncmp(e, "https://", 8) == 0) {
        c->scheme = r2b_strdup("https");
        auth = e + 8;
    } else if (strncmp(e, "http://", 7) == 0) {
        c->scheme = r2b_strdup("http");
        auth = e + 7;
    } else {
        return r2b_error_set(err, R2B_ERR_CONFIG,
                             "endpoint must start with http:// or https://, not '%s'", e);
    }
    end = auth + strcspn(auth, "/?#");
    if (*end == '?' || *end == '#' || (*end == '/' && end[1] != '\0'))
        return r2b_error_set(err, R2B_ERR_CONFIG,
                             "endpoint must be scheme://host[:port] without a path, not '%s'", e);
    if (end == auth || memchr(auth, '@', (size_t)(end - auth)))
        return r2b_error_set(err, R2B_ERR_CONFIG, "endpoint has no usable host: '%s'", e);
    hlen = (size_t)(end - auth);
    /* find a port after an IPv6 literal's ']' or after the last ':' */
    {
        const char *rb = memchr(auth, ']', hlen);
        const char *from = rb ? rb : auth;
        const char *colon = memchr(from, ':', (size_t)(end - from));

        if (colon)
            port = colon + 1;
    }
    if (port) {
        long pn = 0;

        for (const char *p = port; p < end; p++) {
            if (*p < '0' || *p > '9' || pn > 65535)
                return r2b_error_set(err, R2B_ERR_CONFIG, "endpoint has a bad port: '%s'", e);
            pn = pn * 10 + (*p - '0');
        }
        if (pn < 1 || pn > 65535)
            return r2b_error_set(err, R2B_ERR_CONFIG, "endpoint has a bad port: '%s'", e);
        /* curl leaves a default port out of the Host header: sign what it sends */
        if ((pn == 443 && strcmp(c->scheme, "https") == 0) ||
            (pn == 80 && strcmp(c->scheme, "http") == 0))
            hlen = (size_t)(port - 1 - auth);
    }
    c->hostport = strndup(auth, hlen);
    if (c->scheme == NULL || c->hostport == NULL)
        return r2b_error_set(err, R2B_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < hlen; i++)
        if ((unsigned char)c->hostport[i] <= ' ' || c->hostport[i] == 127)
            return r2b_error_set(err, R2B_ERR_CONFIG, "endpoint host has invalid characters");
    return R2B_OK;
}

struct r2b_s3_client *r2b_s3_client_new(const struct r2b_s3_options *o, struct r2b_error *err)
{
    struct r2b_s3_client *c = NULL;
    unsigned char seed[8];

    pthread_once(&global_once, global_init);
    if (!global_ok) {
        r2b_error_set(err, R2B_ERR_UNSUPPORTED, "cannot initialize libcurl");
        return NULL;
    }
    if (o->endpoint == NULL || *o->endpoint == '\0') {
        r2b_error_set(err, R2B_ERR_CONFIG, "no S3 endpoint configured");
        return NULL;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        goto nomem;
    c->opts = *o;
    c->endpoint = r2b_strdup(o->endpoint);
    c->region = r2b_strdup(o->region ? o->region : "auto");
    c->access_key = r2b_strdup(o->access_key);
    c->secret_key = r2b_strdup(o->secret_key);
    c->session_token = r2b_strdup(o->session_token);
    r2b_buf_init(&c->url, 16 * 1024);
    r2b_buf_init(&c->auth, 4 * 1024);
    r2b_buf_init(&c->path, 8 * 1024);
    r2b_buf_init(&c->body, R2B_S3_MAX_XML_BYTES);
    if (!c->endpoint || !c->region || (o->access_key && !c->access_key) ||
        (o->secret_key && !c->secret_key) || (o->session_token && !c->session_token))
        goto nomem;
    c->opts.endpoint = c->endpoint;
    c->opts.region = c->region;
    c->opts.access_key = c->access_key;
    c->opts.secret_key = c->secret_key;
    c->opts.session_token = c->session_token;
    if (c->opts.retry_base_ms <= 0)
        c->opts.retry_base_ms = 100;
    if (c->opts.retry_cap_ms <= 0)
        c->opts.retry_cap_ms = 20000;
    if (c->opts.parallel < 1)
        c->opts.parallel = 1;
    if (c->opts.part_size_bytes < R2B_S3_MIN_PART_BYTES)
        c->opts.part_size_bytes = R2B_S3_MIN_PART_BYTES;
    if (parse_endpoint(c, err) != R2B_OK)
        goto fail;
    c->signer = r2b_sigv4_signer_new(c->access_key, c->secret_key, c->session_token, c->region,
                                     "s3", err);
    if (c->signer == NULL)
        goto fail;
    c->curl = curl_easy_init();
    c->iobuf = malloc(R2B_S3_IOBUF_BYTES);
    if (c->curl == NULL || c->iobuf == NULL)
        goto nomem;
    if (r2b_random_bytes(seed, sizeof(seed), err) != R2B_OK)
        goto fail;
    memcpy(&c->rng, seed, sizeof(seed));
    c->rng |= 1;
    r2b_strlcpy(c->list_page_size, "1000", sizeof(c->list_page_size));
    return c;
nomem:
    r2b_error_set(err, R2B_ERR_NOMEM, "out of memory creating s3 client");
fail:
    r2b_s3_client_free(c);
    return NULL;
}

static void wipe_str(char *s)
{
    if (s) {
        volatile char *v = s;
        while (*v)
            *v++ = 0;
    }
}

void r2b_s3_client_free(struct r2b_s3_client *c)
{
    if (c == NULL)
        return;
    for (int i = 0; i < c->n_workers; i++)
        r2b_s3_client_free(c->workers[i]);
    free(c->workers);
    if (c->curl)
        curl_easy_cleanup(c->curl);
    r2b_sigv4_signer_free(c->signer);
    wipe_str(c->secret_key);
    wipe_str(c->session_token);
    if (c->auth.ptr)
        memset(c->auth.ptr, 0, c->auth.cap);
    free(c->endpoint);
    free(c->region);
    free(c->access_key);
    free(c->secret_key);
    free(c->session_token);
    free(c->scheme);
    free(c->hostport);
    free(c->iobuf);
    r2b_buf_release(&c->url);
    r2b_buf_release(&c->auth);
    r2b_buf_release(&c->path);
    r2b_buf_release(&c->body);
    free(c);
}

void r2b_s3_client_set_cancel(struct r2b_s3_client *c, volatile sig_atomic_t *cancel)
{
    c->opts.cancel = cancel;
    for (int i = 0; i < c->n_workers; i++)
        c->workers[i]->opts.cancel = cancel;
}

void r2b_s3_client_stats(const struct r2b_s3_client *c, struct r2b_s3_stats *out)
{
    *out = c->stats;
    for (int i = 0; i < c->n_workers; i++) {
        out->requests += c->workers[i]->stats.requests;
        out->retries += c->workers[i]->stats.retries;
        out->bytes_sent += c->workers[i]->stats.bytes_sent;
        out->bytes_received += c->workers[i]->stats.bytes_received;
    }
}

/* --- pure pieces ---------------------------------------------------------------- */

enum r2b_status r2b_s3__classify_http(long http_status, const char *s3_code, int *retryable)
{
    const char *code = s3_code ? s3_code : "";

    *retryable = 0;
    if (http_status >= 200 && http_status < 300)
        return R2B_OK;
    if (strcmp(code, "SlowDown") == 0 || strcmp(code, "RequestTimeout") == 0 ||
        strcmp(code, "InternalError") == 0 || strcmp(code, "ServiceUnavailable") == 0 ||
        http_status == 429 || (http_status >= 500 && http_status != 501)) {
        *retryable = 1;
        return R2B_ERR_HTTP;
    }
    if (strcmp(code, "BadDigest") == 0 || strcmp(code, "InvalidDigest") == 0) {
        *retryable = 1; /* corrupted in transit: another attempt re-sends the bytes */
        return R2B_ERR_INTEGRITY;
    }
    if (http_status == 404 || strcmp(code, "NoSuchKey") == 0 || strcmp(code, "NoSuchBucket") == 0 ||
        strcmp(code, "NoSuchUpload") == 0)
        return R2B_ERR_NOT_FOUND;
    if (http_status == 401 || http_status == 403)
        return R2B_ERR_AUTH;
    if (http_status == 501)
        return R2B_ERR_UNSUPPORTED;
    return R2B_ERR_HTTP;
}

long r2b_s3__backoff_ms(uint64_t *rng, int attempt, long base_ms, long cap_ms)
{
    long ceil_ms = base_ms;
    uint64_t x = *rng;

    for (int i = 0; i < attempt && ceil_ms < cap_ms; i++)
        ceil_ms *= 2;
    if (ceil_ms > cap_ms)
        ceil_ms = cap_ms;
    /* xorshift64 */
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *rng = x;
    return (long)(x % ((uint64_t)ceil_ms + 1));
}

void r2b_s3__etag_copy(char out[80], const char *etag, size_t len)
{
    if (len >= 2 && etag[0] == 'W' && etag[1] == '/') {
        etag += 2;
        len -= 2;
    }
    while (len && (*etag == '"' || *etag == ' ')) {
        etag++;
        len--;
    }
    while (len && (etag[len - 1] == '"' || etag[len - 1] == ' ' || etag[len - 1] == '\r' ||
                   etag[len - 1] == '\n'))
        len--;
    if (len > 79)
        len = 79;
    memcpy(out, etag, len);
    out[len] = '\0';
}

/* --- one attempt ------------------------------------------------------------------ */

struct xfer {
    struct r2b_s3_client *c;
    const struct s3_request *req;
    uint64_t sent;
    uint64_t received;
    struct r2b_buf errbody;
    int write_failed; /* errno of a failed local write, or -1 for a capped buffer */
    int read_failed;  /* errno of a failed source read */
    /* read timeout: no byte either way for read_timeout_ms once connected */
    int64_t last_move_ms;
    curl_off_t last_bytes;
    int stalled;
};

static size_t read_cb(char *buf, size_t size, size_t nmemb, void *ud)
{
    struct xfer *x = ud;
    const struct s3_request *req = x->req;
    size_t want = size * nmemb;
    uint64_t left = req->body_bytes - x->sent;
    ssize_t got;

    if (want > left)
        want = (size_t)left;
    if (want == 0)
        return 0;
    if (req->src) {
        got = req->src->read(req->src, buf, want, req->src_offset + x->sent);
        if (got < 0) {
            x->read_failed = errno ? errno : EIO;
            return CURL_READFUNC_ABORT;
        }
        if (got == 0) { /* the file shrank under us */
            x->read_failed = ENODATA;
            return CURL_READFUNC_ABORT;
        }
    } else {
        memcpy(buf, req->mem_body + x->sent, want);
        got = (ssize_t)want;
    }
    x->sent += (uint64_t)got;
    return (size_t)got;
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *ud)
{
    struct xfer *x = ud;
    size_t n = size * nmemb;
    long status = 0;

    curl_easy_getinfo(x->c->curl, CURLINFO_RESPONSE_CODE, &status);
    if (status < 200 || status >= 300) {
        /* error documents are small; keep the first 64 KiB */
        if (x->errbody.len < x->errbody.max_bytes) {
            size_t room = x->errbody.max_bytes - x->errbody.len;
            r2b_buf_add(&x->errbody, data, n < room ? n : room);
        }
        return n;
    }
    if (x->req->out_fd >= 0) {
        size_t off = 0;

        while (off < n) {
            ssize_t w = write(x->req->out_fd, data + off, n - off);

            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                x->write_failed = errno ? errno : EIO;
                return 0;
            }
            off += (size_t)w;
        }
    } else if (x->req->out_body) {
        if (r2b_buf_add(x->req->out_body, data, n) != R2B_OK) {
            x->write_failed = -1;
            return 0;
        }
    }
    x->received += n;
    return n;
}

/* Lets curl rewind the body itself (e.g. a reused connection that died). */
static int seek_cb(void *ud, curl_off_t offset, int origin)
{
    struct xfer *x = ud;

    if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > x->req->body_bytes)
        return CURL_SEEKFUNC_CANTSEEK;
    x->sent = (uint64_t)offset;
    return CURL_SEEKFUNC_OK;
}

static int progress_cb(void *ud, curl_off_t dlt, curl_off_t dln, curl_off_t ult, curl_off_t uln)
{
    struct xfer *x = ud;
    curl_off_t connected = 0;
    int64_t now;

    (void)dlt;
    (void)ult;
    if (!x->req->ignore_cancel && x->c->opts.cancel && *x->c->opts.cancel)
        return 1;
    if (x->c->opts.read_timeout_ms <= 0)
        return 0;
    /* curl's low-speed limit averages over a window of several seconds, so a
     * stall after a fast body was noticed up to ~5 s late: count from the
     * last byte instead. Until the request goes out, the connect timeout rules. */
    now = r2b_time_mono_ms();
    curl_easy_getinfo(x->c->curl, CURLINFO_PRETRANSFER_TIME_T, &connected);
    if (connected <= 0 || dln + uln != x->last_bytes) {
        x->last_bytes = dln + uln;
        x->last_move_ms = now;
    } else if (now - x->last_move_ms >= x->c->opts.read_timeout_ms) {
        x->stalled = 1;
        return 1;
    }
    return 0;
}

static int header_value(CURL *h, const char *name, const char **value)
{
    struct curl_header *hd = NULL;

    if (curl_easy_header(h, name, 0, CURLH_HEADER, -1, &hd) != CURLHE_OK || hd == NULL)
        return 0;
    *value = hd->value;
    return 1;
}

static void read_response_headers(CURL *h, struct s3_response *resp)
{
    const char *v;
    curl_off_t cl = -1;

    if (header_value(h, "ETag", &v))
        r2b_s3__etag_copy(resp->info.etag, v, strlen(v));
    if (header_value(h, "Content-Type", &v))
        r2b_strlcpy(resp->info.content_type, v, sizeof(resp->info.content_type));
    if (header_value(h, "Cache-Control", &v))
        r2b_strlcpy(resp->info.cache_control, v, sizeof(resp->info.cache_control));
    if (header_value(h, "Last-Modified", &v))
        resp->info.last_modified = r2b_time_parse(v);
    if (curl_easy_getinfo(h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) == CURLE_OK && cl >= 0)
        resp->info.size_bytes = (uint64_t)cl;
}

/* Builds c->path (raw "/bucket/key" or "/key") and c->url, and returns the Host value. */
static enum r2b_status build_target(struct r2b_s3_client *c, const struct s3_request *req,
                                    struct r2b_buf *host, struct r2b_error *err)
{
    enum r2b_status st = R2B_OK;

    r2b_buf_reset(&c->path);
    r2b_buf_reset(&c->url);
    r2b_buf_reset(host);
    if (req->bucket && !c->opts.path_style) {
        st |= r2b_buf_adds(host, req->bucket);
        st |= r2b_buf_addc(host, '.');
    }
    st |= r2b_buf_adds(host, c->hostport);
    st |= r2b_buf_addc(&c->path, '/');
    if (req->bucket && c->opts.path_style) {
        st |= r2b_buf_adds(&c->path, req->bucket);
        if (req->key)
            st |= r2b_buf_addc(&c->path, '/');
    }
    if (req->key)
        st |= r2b_buf_adds(&c->path, req->key);
    st |= r2b_buf_addf(&c->url, "%s://%s", c->scheme, r2b_buf_str(host));
    st |= r2b_sigv4_uri_encode(&c->url, c->path.ptr, c->path.len, 1);
    for (size_t i = 0; i < req->n_params; i++) {
        const struct r2b_sigv4_param *p = &req->params[i];

        st |= r2b_buf_addc(&c->url, i == 0 ? '?' : '&');
        st |= r2b_sigv4_uri_encode(&c->url, p->name, strlen(p->name), 0);
        if (p->value) {
            st |= r2b_buf_addc(&c->url, '=');
            st |= r2b_sigv4_uri_encode(&c->url, p->value, strlen(p->value), 0);
        }
    }
    if (st != R2B_OK)
        return r2b_error_set(err, R2B_ERR_LIMIT, "request url too long");
    return R2B_OK;
}

/* Hashes the body for the payload signature (a pass over the source range). */
static enum r2b_status hash_body(struct r2b_s3_client *c, const struct s3_request *req,
                                 char sha_hex[65], struct r2b_error *err)
{
    struct r2b_digest d;
    uint64_t done = 0;

    r2b_digest_init(&d);
    if (req->src) {
        while (done < req->body_bytes) {
            uint64_t left = req->body_bytes - done;
            size_t want = left < R2B_S3_IOBUF_BYTES ? (size_t)left : R2B_S3_IOBUF_BYTES;
            ssize_t got = req->src->read(req->src, c->iobuf, want, req->src_offset + done);

            if (got <= 0)
                return r2b_error_set(err, R2B_ERR_IO, "cannot read upload body for '%s': %s",
                                     req->key ? req->key : "", got < 0 ? strerror(errno)
                                                                       : "file shrank");
            r2b_digest_update(&d, c->iobuf, (size_t)got);
            done += (uint64_t)got;
        }
    } else if (req->mem_body) {
        r2b_digest_update(&d, req->mem_body, req->mem_len);
    }
    r2b_digest_final(&d, sha_hex, NULL, NULL);
    return R2B_OK;
}

static enum r2b_status classify_curl(CURLcode cc, struct xfer *x, const char *what,
                                     struct r2b_error *err)
{
    enum r2b_status st;

    if (cc == CURLE_ABORTED_BY_CALLBACK && x->stalled) {
        st = r2b_error_set(err, R2B_ERR_NETWORK, "%s: no data for %ld ms (S3_READ_TIMEOUT)", what,
                           x->c->opts.read_timeout_ms);
        if (err)
            err->retryable = 1;
        return st;
    }
    if (cc == CURLE_ABORTED_BY_CALLBACK)
        return r2b_error_set(err, R2B_ERR_INTERRUPTED, "%s: interrupted", what);
    if (x->read_failed)
        return r2b_error_set(err, R2B_ERR_IO, "%s: cannot read upload body: %s", what,
                             x->read_failed == ENODATA ? "file shrank while uploading"
                                                       : strerror(x->read_failed));
    if (x->write_failed == -1)
        return r2b_error_set(err, R2B_ERR_LIMIT, "%s: response larger than %d bytes", what,
                             R2B_S3_MAX_XML_BYTES);
    if (x->write_failed)
        return r2b_error_set_errno(err, R2B_ERR_IO, x->write_failed, "%s: cannot write output",
                                   what);
    switch (cc) {
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        return r2b_error_set(err, R2B_ERR_CONFIG, "%s: %s", what, curl_easy_strerror(cc));
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
        return r2b_error_set(err, R2B_ERR_CONFIG, "%s: tls: %s", what, curl_easy_strerror(cc));
    default:
        st = r2b_error_set(err, R2B_ERR_NETWORK, "%s: %s", what, curl_easy_strerror(cc));
        if (err)
            err->retryable = 1;
        return st;
    }
}

static enum r2b_status attempt(struct r2b_s3_client *c, const struct s3_request *req,
                               const char *payload_hash, struct s3_response *resp,
                               struct r2b_error *err)
{
    CURL *h = c->curl;
    struct curl_slist *hl = NULL;
    struct r2b_sigv4_request sr;
    struct r2b_buf host, line;
    struct xfer x;
    char amz_date[17], what[160];
    enum r2b_status st = R2B_OK;
    CURLcode cc;
    int64_t now = c->opts.fixed_time ? c->opts.fixed_time : r2b_time_now();

    memset(&x, 0, sizeof(x));
    x.c = c;
    x.req = req;
    x.last_move_ms = r2b_time_mono_ms();
    r2b_buf_init(&x.errbody, R2B_S3_MAX_ERROR_BODY_BYTES);
    r2b_buf_init(&host, 1024);
    r2b_buf_init(&line, 64 * 1024);
    memset(resp, 0, sizeof(*resp));
    resp->info.last_modified = -1;
    snprintf(what, sizeof(what), "%s '%s%s%.100s'", req->method, req->bucket ? req->bucket : "",
             req->key ? "/" : "", req->key ? req->key : "");

    st = build_target(c, req, &host, err);
    if (st != R2B_OK)
        goto cleanup;
    sr = (struct r2b_sigv4_request){req->method, host.ptr, c->path.ptr, c->path.len,
                                    req->params, req->n_params, req->headers, req->n_headers,
                                    payload_hash};
    st = r2b_sigv4_sign_headers(c->signer, &sr, now, &c->auth, amz_date, err);
    if (st != R2B_OK)
        goto cleanup;

    curl_easy_reset(h);
    /* headers: what was signed, plus Expect: (R2 does not do 100-continue) */
    for (size_t i = 0; i < req->n_headers; i++) {
        struct curl_slist *n;

        r2b_buf_reset(&line);
        if (r2b_buf_addf(&line, "%s: %s", req->headers[i].name, req->headers[i].value) != R2B_OK ||
            (n = curl_slist_append(hl, line.ptr)) == NULL) {
            st = r2b_error_set(err, R2B_ERR_NOMEM, "%s: cannot build headers", what);
            goto cleanup;
        }
        hl = n;
    }
    r2b_buf_reset(&line);
    r2b_buf_addf(&line, "x-amz-date: %s", amz_date);
    hl = curl_slist_append(hl, line.ptr);
    r2b_buf_reset(&line);
    r2b_buf_addf(&line, "x-amz-content-sha256: %s", payload_hash);
    hl = curl_slist_append(hl, line.ptr);
    if (c->session_token) {
        r2b_buf_reset(&line);
        r2b_buf_addf(&line, "x-amz-security-token: %s", c->session_token);
        hl = curl_slist_append(hl, line.ptr);
    }
    r2b_buf_reset(&line);
    r2b_buf_addf(&line, "Authorization: %s", c->auth.ptr);
    hl = curl_slist_append(hl, line.ptr);
    hl = curl_slist_append(hl, "Expect:");
    if (!req->upload && !req->mem_body)
        hl = curl_slist_append(hl, "Content-Type:"); /* none unless signed */
    if (hl == NULL) {
        st = r2b_error_set(err, R2B_ERR_NOMEM, "%s: cannot build headers", what);
        goto cleanup;
    }

    curl_easy_setopt(h, CURLOPT_URL, c->url.ptr);
    curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L); /* SigV4 for S3: "..", "//" sent as signed */
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "r2bridge/" R2B_VERSION);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->opts.connect_timeout_ms);
    if (c->opts.read_timeout_ms > 0) {
        /* "no byte for read_timeout" as curl's low-speed limit: < 1 B/s for that long */
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME,
                         (c->opts.read_timeout_ms + 999) / 1000);
    }
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, progress_cb);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &x);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    if (req->head) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (req->upload) {
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)req->body_bytes);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, read_cb);
        curl_easy_setopt(h, CURLOPT_READDATA, &x);
        curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, seek_cb);
        curl_easy_setopt(h, CURLOPT_SEEKDATA, &x);
        if (strcmp(req->method, "PUT") != 0)
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
    } else if (req->mem_body) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->mem_body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->mem_len);
        if (strcmp(req->method, "POST") != 0)
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
    } else if (strcmp(req->method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
    } else if (strcmp(req->method, "GET") != 0) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
    }

    c->stats.requests++;
    cc = curl_easy_perform(h);
    c->stats.bytes_sent += x.sent;
    c->stats.bytes_received += x.received;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
    resp->body_bytes = x.received; /* also on failure: a retry must undo a partial body */
    if (cc != CURLE_OK) {
        st = classify_curl(cc, &x, what, err);
        goto cleanup;
    }
    read_response_headers(h, resp);
    if (resp->status < 200 || resp->status >= 300) {
        char code[64] = "", msg[256] = "";
        int retryable = 0;

        if (x.errbody.len)
            r2b_s3__xml_error(x.errbody.ptr, x.errbody.len, code, sizeof(code), msg, sizeof(msg));
        st = r2b_s3__classify_http(resp->status, code, &retryable);
        if (*code == '\0' && resp->status == 404)
            r2b_strlcpy(code, "NoSuchKey", sizeof(code));
        r2b_error_set(err, st, "%s: %ld %s%s%s", what, resp->status,
                      *code ? code : "error", *msg ? ": " : "", msg);
        if (err) {
            err->http_status = resp->status;
            err->retryable = retryable;
            r2b_strlcpy(err->s3_code, code, sizeof(err->s3_code));
        }
        goto cleanup;
    }
    /* S3 and R2: a single PUT's (or part's) ETag is the hex MD5 of its body.
     * A mismatch means the stored bytes are not ours: retry like BadDigest. */
    if (req->expect_md5_hex && strlen(resp->info.etag) == 32 &&
        strcmp(resp->info.etag, req->expect_md5_hex) != 0) {
        st = r2b_error_set(err, R2B_ERR_INTEGRITY, "%s: server etag %s does not match md5 %s",
                           what, resp->info.etag, req->expect_md5_hex);
        if (err)
            err->retryable = 1;
        goto cleanup;
    }
    if (req->upload && x.sent != req->body_bytes) {
        st = r2b_error_set(err, R2B_ERR_INTEGRITY, "%s: sent %llu of %llu bytes", what,
                           (unsigned long long)x.sent, (unsigned long long)req->body_bytes);
        if (err)
            err->retryable = 1;
    }
cleanup:
    curl_slist_free_all(hl);
    if (c->auth.ptr)
        memset(c->auth.ptr, 0, c->auth.len);
    r2b_buf_release(&x.errbody);
    r2b_buf_release(&host);
    r2b_buf_release(&line);
    return st;
}

enum r2b_status r2b_s3__perform(struct r2b_s3_client *c, const struct s3_request *req,
                                struct s3_response *resp, struct r2b_error *err)
{
    char sha_hex[65];
    const char *payload = req->payload_hash;
    enum r2b_status st;
    off_t fd_start = -1;
    struct r2b_error local;

    if (err == NULL)
        err = &local;
    r2b_error_clear(err);
    if (payload == NULL) {
        if (c->opts.unsigned_payload && (req->src || req->mem_body)) {
            payload = R2B_SIGV4_UNSIGNED_PAYLOAD;
        } else if (req->src || req->mem_body) {
            st = hash_body(c, req, sha_hex, err);
            if (st != R2B_OK)
                return st;
            payload = sha_hex;
        } else {
            payload = R2B_SIGV4_EMPTY_SHA256;
        }
    }
    if (req->out_fd >= 0)
        fd_start = lseek(req->out_fd, 0, SEEK_CUR);
    for (int att = 0;; att++) {
        if (req->out_body)
            r2b_buf_reset(req->out_body);
        st = attempt(c, req, payload, resp, err);
        if (st == R2B_OK || !err->retryable || att >= c->opts.retry_limit)
            break;
        if (!req->ignore_cancel && c->opts.cancel && *c->opts.cancel)
            break;
        if (req->out_fd >= 0 && resp->body_bytes > 0) {
            /* undo the partial body before trying again, if the fd allows it */
            if (fd_start < 0 || ftruncate(req->out_fd, fd_start) != 0 ||
                lseek(req->out_fd, fd_start, SEEK_SET) != fd_start)
                break;
        }
        c->stats.retries++;
        {
            long delay = r2b_s3__backoff_ms(&c->rng, att, c->opts.retry_base_ms,
                                            c->opts.retry_cap_ms);

            r2b_log(R2B_LOG_INFO, "retrying in %ld ms (%d/%d): %s", delay, att + 1,
                    c->opts.retry_limit, err->message);
            r2b_sleep_ms(delay);
        }
    }
    if (st != R2B_OK && err->retryable && err->code != R2B_ERR_INTERRUPTED &&
        c->opts.retry_limit > 0) {
        /* say that retries were spent, keeping the first-detected message */
        size_t n = strlen(err->message);

        snprintf(err->message + n, sizeof(err->message) - n, " (after %d retries)",
                 c->opts.retry_limit);
    }
    return st;
}

/* --- single-request operations ----------------------------------------------------- */

static ssize_t fd_read(const struct r2b_s3_source *src, void *buf, size_t n, uint64_t offset)
{
    ssize_t r;

    do {
        r = pread(src->fd, buf, n, (off_t)(src->fd_offset + offset));
    } while (r < 0 && errno == EINTR);
    return r;
}

void r2b_s3_source_fd(struct r2b_s3_source *src, int fd, uint64_t offset, uint64_t size_bytes)
{
    src->size_bytes = size_bytes;
    src->read = fd_read;
    src->ud = NULL;
    src->fd = fd;
    src->fd_offset = offset;
}

static enum r2b_status check_names(const char *bucket, const char *key, struct r2b_error *err)
{
    size_t n;

    if (bucket == NULL || *bucket == '\0')
        return r2b_error_set(err, R2B_ERR_CONFIG, "no bucket given (set S3_BUCKET or --bucket)");
    for (const char *p = bucket; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' ||
              *p == '_'))
            return r2b_error_set(err, R2B_ERR_INVALID, "invalid bucket name '%s'", bucket);
    if (key == NULL)
        return R2B_OK;
    n = strlen(key);
    if (n == 0)
        return r2b_error_set(err, R2B_ERR_INVALID, "empty object key");
    if (n > R2B_S3_MAX_KEY_BYTES)
        return r2b_error_set(err, R2B_ERR_INVALID, "object key longer than %d bytes",
                             R2B_S3_MAX_KEY_BYTES);
    if (!r2b_utf8_valid(key, n))
        return r2b_error_set(err, R2B_ERR_INVALID, "object key is not valid UTF-8");
    return R2B_OK;
}

int r2b_s3__body_sha(const struct r2b_s3_client *c)
{
    return !c->opts.unsigned_payload && c->opts.sha256_object_bodies;
}

enum r2b_status r2b_s3__digest_range(struct r2b_s3_client *c, const struct r2b_s3_source *src,
                                     uint64_t offset, uint64_t size, char sha_hex[65],
                                     char md5_hex[33], char md5_b64[25], struct r2b_error *err)
{
    struct r2b_digest d;
    uint64_t done = 0;

    if (sha_hex)
        r2b_digest_init(&d);
    else
        r2b_digest_init_md5(&d);
    while (done < size) {
        uint64_t left = size - done;
        size_t want = left < R2B_S3_IOBUF_BYTES ? (size_t)left : R2B_S3_IOBUF_BYTES;
        ssize_t got = src->read(src, c->iobuf, want, offset + done);

        if (got <= 0)
            return r2b_error_set(err, R2B_ERR_IO, "cannot read upload body: %s",
                                 got < 0 ? strerror(errno) : "file shrank");
        r2b_digest_update(&d, c->iobuf, (size_t)got);
        done += (uint64_t)got;
    }
    r2b_digest_final(&d, sha_hex, md5_hex, md5_b64);
    return R2B_OK;
}

enum r2b_status r2b_s3__put_single(struct r2b_s3_client *c, const char *bucket, const char *key,
                                   const struct r2b_s3_source *src,
                                   const struct r2b_s3_put_options *opts, struct r2b_s3_object *out,
                                   struct r2b_error *err);
enum r2b_status r2b_s3__put_single(struct r2b_s3_client *c, const char *bucket, const char *key,
                                   const struct r2b_s3_source *src,
                                   const struct r2b_s3_put_options *opts, struct r2b_s3_object *out,
                                   struct r2b_error *err)
{
    struct r2b_sigv4_header hdrs[3];
    size_t nh = 0;
    char sha_hex[65], md5_hex[33], md5_b64[25];
    struct s3_request req;
    struct s3_response resp;
    enum r2b_status st;

    if (src->size_bytes > R2B_S3_MAX_SINGLE_PUT_BYTES)
        return r2b_error_set(err, R2B_ERR_LIMIT, "single PUT larger than 5 GiB: use multipart");
    st = r2b_s3__digest_range(c, src, 0, src->size_bytes, r2b_s3__body_sha(c) ? sha_hex : NULL,
                              md5_hex, md5_b64, err);
    if (st != R2B_OK)
        return st;
    hdrs[nh++] = (struct r2b_sigv4_header){"Content-MD5", md5_b64};
    hdrs[nh++] = (struct r2b_sigv4_header){
        "Content-Type", opts && opts->content_type ? opts->content_type : "application/octet-stream"};
    if (opts && opts->cache_control)
        hdrs[nh++] = (struct r2b_sigv4_header){"Cache-Control", opts->cache_control};
    memset(&req, 0, sizeof(req));
    req.method = "PUT";
    req.bucket = bucket;
    req.key = key;
    req.headers = hdrs;
    req.n_headers = nh;
    req.src = src;
    req.body_bytes = src->size_bytes;
    req.upload = 1;
    req.out_fd = -1;
    req.payload_hash = r2b_s3__body_sha(c) ? sha_hex : R2B_SIGV4_UNSIGNED_PAYLOAD;
    req.expect_md5_hex = md5_hex;
    st = r2b_s3__perform(c, &req, &resp, err);
    if (st != R2B_OK)
        return st;
    if (out) {
        memset(out, 0, sizeof(*out));
        out->size_bytes = src->size_bytes;
        r2b_strlcpy(out->etag, resp.info.etag[0] ? resp.info.etag : md5_hex, sizeof(out->etag));
        out->last_modified = -1;
    }
    return R2B_OK;
}

enum r2b_status r2b_s3__put_multipart(struct r2b_s3_client *c, const char *bucket, const char *key,
                                      const struct r2b_s3_source *src,
                                      const struct r2b_s3_put_options *opts,
                                      struct r2b_s3_object *out, struct r2b_error *err);

enum r2b_status r2b_s3_put(struct r2b_s3_client *c, const char *bucket, const char *key,
                           const struct r2b_s3_source *src, const struct r2b_s3_put_options *opts,
                           struct r2b_s3_object *out, struct r2b_error *err)
{
    enum r2b_status st = check_names(bucket, key, err);

    if (st != R2B_OK)
        return st;
    if ((opts && opts->force_multipart && src->size_bytes > 0) ||
        src->size_bytes > c->opts.multipart_threshold_bytes ||
        src->size_bytes > R2B_S3_MAX_SINGLE_PUT_BYTES)
        return r2b_s3__put_multipart(c, bucket, key, src, opts, out, err);
    return r2b_s3__put_single(c, bucket, key, src, opts, out, err);
}

enum r2b_status r2b_s3_put_file(struct r2b_s3_client *c, const char *bucket, const char *key,
                                const char *path, const struct r2b_s3_put_options *opts,
                                struct r2b_s3_object *out, struct r2b_error *err)
{
    struct r2b_s3_source src;
    struct stat sb;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    enum r2b_status st;

    if (fd < 0)
        return r2b_error_set_errno(err, errno == ENOENT ? R2B_ERR_NOT_FOUND : R2B_ERR_IO, errno,
                                   "cannot open '%s'", path);
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return r2b_error_set(err, R2B_ERR_INVALID, "'%s' is not a regular file", path);
    }
    r2b_s3_source_fd(&src, fd, 0, (uint64_t)sb.st_size);
    st = r2b_s3_put(c, bucket, key, &src, opts, out, err);
    close(fd);
    return st;
}

enum r2b_status r2b_s3_head(struct r2b_s3_client *c, const char *bucket, const char *key,
                            struct r2b_s3_object *out, struct r2b_error *err)
{
    struct s3_request req;
    struct s3_response resp;
    enum r2b_status st = check_names(bucket, key, err);

    if (st != R2B_OK)
        return st;
    memset(&req, 0, sizeof(req));
    req.method = "HEAD";
    req.bucket = bucket;
    req.key = key;
    req.head = 1;
    req.out_fd = -1;
    st = r2b_s3__perform(c, &req, &resp, err);
    if (st == R2B_OK && out) {
        *out = resp.info;
        r2b_strlcpy(out->key, key, sizeof(out->key));
    }
    return st;
}

enum r2b_status r2b_s3_get_fd(struct r2b_s3_client *c, const char *bucket, const char *key, int fd,
                              struct r2b_s3_object *out, struct r2b_error *err)
{
    struct s3_request req;
    struct s3_response resp;
    enum r2b_status st = check_names(bucket, key, err);

    if (st != R2B_OK)
        return st;
    memset(&req, 0, sizeof(req));
    req.method = "GET";
    req.bucket = bucket;
    req.key = key;
    req.out_fd = fd;
    st = r2b_s3__perform(c, &req, &resp, err);
    if (st != R2B_OK)
        return st;
    if (resp.body_bytes != resp.info.size_bytes)
        return r2b_error_set(err, R2B_ERR_INTEGRITY,
                             "GET '%s/%s': received %llu bytes, content-length %llu", bucket, key,
                             (unsigned long long)resp.body_bytes,
                             (unsigned long long)resp.info.size_bytes);
    if (out) {
        *out = resp.info;
        r2b_strlcpy(out->key, key, sizeof(out->key));
    }
    return R2B_OK;
}

enum r2b_status r2b_s3_delete(struct r2b_s3_client *c, const char *bucket, const char *key,
                              struct r2b_error *err)
{
    struct s3_request req;
    struct s3_response resp;
    enum r2b_status st = check_names(bucket, key, err);

    if (st != R2B_OK)
        return st;
    memset(&req, 0, sizeof(req));
    req.method = "DELETE";
    req.bucket = bucket;
    req.key = key;
    req.out_fd = -1;
    st = r2b_s3__perform(c, &req, &resp, err);
    if (st == R2B_ERR_NOT_FOUND && err && strcmp(err->s3_code, "NoSuchBucket") != 0) {
        r2b_error_clear(err); /* deleting an absent object succeeds */
        return R2B_OK;
    }
    return st;
}

static enum r2b_status xml_escape(struct r2b_buf *b, const char *s)
{
    enum r2b_status st = R2B_OK;

    for (; *s && st == R2B_OK; s++) {
        switch (*s) {
        case '&':
            st = r2b_buf_adds(b, "&amp;");
            break;
        case '<':
            st = r2b_buf_adds(b, "&lt;");
            break;
        case '>':
            st = r2b_buf_adds(b, "&gt;");
            break;
        case '"':
            st = r2b_buf_adds(b, "&quot;");
            break;
        case '\'':
            st = r2b_buf_adds(b, "&apos;");
            break;
        default:
            st = r2b_buf_addc(b, *s);
        }
    }
    return st;
}

enum r2b_status r2b_s3_delete_many(struct r2b_s3_client *c, const char *bucket,
                                   const char *const *keys, size_t n, struct r2b_error *err)
{
    struct r2b_sigv4_param params[1] = {{"delete", NULL}};
    struct r2b_sigv4_header hdrs[2];
    struct r2b_buf xml, body;
    struct r2b_digest d;
    struct s3_request req;
    struct s3_response resp;
    char md5_b64[25], sha_hex[65], code[64], msg[256], key[R2B_S3_MAX_KEY_BYTES + 1];
    enum r2b_status st = check_names(bucket, NULL, err);
    int nerr;

    if (st != R2B_OK)
        return st;
    if (n == 0)
        return R2B_OK;
    if (n > R2B_S3_MAX_DELETE_KEYS)
        return r2b_error_set(err, R2B_ERR_INVALID, "at most %d keys per DeleteObjects",
                             R2B_S3_MAX_DELETE_KEYS);
    r2b_buf_init(&xml, (size_t)R2B_S3_MAX_DELETE_KEYS * (R2B_S3_MAX_KEY_BYTES * 6 + 40) + 64);
    r2b_buf_init(&body, R2B_S3_MAX_XML_BYTES);
    /* Quiet: the answer lists only the keys that failed */
    st = r2b_buf_adds(&xml, "<Delete><Quiet>true</Quiet>");
    for (size_t i = 0; i < n && st == R2B_OK; i++) {
        if ((st = check_names(bucket, keys[i], err)) != R2B_OK)
            goto cleanup;
        st = r2b_buf_adds(&xml, "<Object><Key>");
        if (st == R2B_OK)
            st = xml_escape(&xml, keys[i]);
        if (st == R2B_OK)
            st = r2b_buf_adds(&xml, "</Key></Object>");
    }
    if (st == R2B_OK)
        st = r2b_buf_adds(&xml, "</Delete>");
    if (st != R2B_OK) {
        st = r2b_error_set(err, st, "cannot build DeleteObjects request");
        goto cleanup;
    }
    /* S3 requires Content-MD5 on DeleteObjects */
    r2b_digest_init(&d);
    r2b_digest_update(&d, xml.ptr, xml.len);
    r2b_digest_final(&d, sha_hex, NULL, md5_b64);
    hdrs[0] = (struct r2b_sigv4_header){"Content-MD5", md5_b64};
    hdrs[1] = (struct r2b_sigv4_header){"Content-Type", "application/xml"};
    memset(&req, 0, sizeof(req));
    req.method = "POST";
    req.bucket = bucket;
    req.params = params;
    req.n_params = 1;
    req.headers = hdrs;
    req.n_headers = 2;
    req.mem_body = xml.ptr;
    req.mem_len = xml.len;
    req.payload_hash = c->opts.unsigned_payload ? R2B_SIGV4_UNSIGNED_PAYLOAD : sha_hex;
    req.out_fd = -1;
    req.out_body = &body;
    st = r2b_s3__perform(c, &req, &resp, err);
    if (st != R2B_OK)
        goto cleanup;
    nerr = r2b_s3__xml_delete_errors(r2b_buf_str(&body), body.len, code, sizeof(code), msg,
                                     sizeof(msg), key, sizeof(key));
    if (nerr < 0 && body.len > 0) {
        st = r2b_error_set(err, R2B_ERR_PARSE, "delete in '%s': unreadable DeleteResult", bucket);
    } else if (nerr > 0) {
        int retryable;

        st = r2b_s3__classify_http(0, code, &retryable); /* per key: the code decides */
        if (st == R2B_OK)
            st = R2B_ERR_HTTP;
        r2b_error_set(err, st, "delete '%s/%.200s' (and %d more): %s: %s", bucket, key, nerr - 1,
                      code, msg);
        if (err) {
            err->retryable = retryable;
            r2b_strlcpy(err->s3_code, code, sizeof(err->s3_code));
        }
    }
cleanup:
    r2b_buf_release(&xml);
    r2b_buf_release(&body);
    return st;
}

enum r2b_status r2b_s3_copy(struct r2b_s3_client *c, const char *src_bucket, const char *src_key,
                            const char *dst_bucket, const char *dst_key,
                            const struct r2b_s3_put_options *meta, struct r2b_s3_object *out,
                            struct r2b_error *err)
{
    struct r2b_sigv4_header hdr[4];
    size_t nh = 0;
    struct s3_request req;
    struct s3_response resp;
    struct r2b_buf source, body;
    enum r2b_status st;
    char code[64] = "", msg[256] = "";

    r2b_buf_init(&source, 4096);
    r2b_buf_init(&body, R2B_S3_MAX_ERROR_BODY_BYTES);
    st = check_names(src_bucket, src_key, err);
    if (st == R2B_OK)
        st = check_names(dst_bucket, dst_key, err);
    if (st != R2B_OK)
        goto cleanup;
    if (r2b_buf_addc(&source, '/') || r2b_buf_adds(&source, src_bucket) ||
        r2b_buf_addc(&source, '/') ||
        r2b_sigv4_uri_encode(&source, src_key, strlen(src_key), 1)) {
        st = r2b_error_set(err, R2B_ERR_LIMIT, "copy source too long");
        goto cleanup;
    }
    hdr[nh++] = (struct r2b_sigv4_header){"x-amz-copy-source", source.ptr};
    if (meta) {
        hdr[nh++] = (struct r2b_sigv4_header){"x-amz-metadata-directive", "REPLACE"};
        hdr[nh++] = (struct r2b_sigv4_header){
            "Content-Type", meta->content_type ? meta->content_type : "application/octet-stream"};
        if (meta->cache_control)
            hdr[nh++] = (struct r2b_sigv4_header){"Cache-Control", meta->cache_control};
    }
    memset(&req, 0, sizeof(req));
    req.method = "PUT";
    req.bucket = dst_bucket;
    req.key = dst_key;
    req.headers = hdr;
    req.n_headers = nh;
    req.out_fd = -1;
    req.out_body = &body;
    st = r2b_s3__perform(c, &req, &resp, err);
    if (st != R2B_OK)
        goto cleanup;
    /* CopyObject can answer 200 and still fail: the body is then an <Error> */
    if (r2b_s3__xml_error(body.ptr ? body.ptr : "", body.len, code, sizeof(code), msg,
                          sizeof(msg))) {
        int retryable;

        st = r2b_s3__classify_http(500, code, &retryable);
        r2b_error_set(err, st, "copy to '%s/%s': %s: %s", dst_bucket, dst_key, code, msg);
        goto cleanup;
    }
    if (out) {
        memset(out, 0, sizeof(*out));
        out->last_modified = -1;
        r2b_strlcpy(out->key, dst_key, sizeof(out->key));
        if (r2b_s3__xml_result_etag(body.ptr ? body.ptr : "", body.len, "CopyObjectResult",
                                    out->etag) != 0) {
            st = r2b_error_set(err, R2B_ERR_PARSE, "copy to '%s/%s': unreadable response",
                               dst_bucket, dst_key);
            goto cleanup;
        }
    }
cleanup:
    r2b_buf_release(&source);
    r2b_buf_release(&body);
    return st;
}

enum r2b_status r2b_s3_list(struct r2b_s3_client *c, const char *bucket, const char *prefix,
                            r2b_s3_list_cb cb, void *ud, struct r2b_error *err)
{
    struct r2b_sigv4_param params[4];
    struct s3_request req;
    struct s3_response resp;
    struct s3_list_page page;
    char *token = NULL;
    enum r2b_status st = check_names(bucket, NULL, err);

    while (st == R2B_OK) {
        size_t np = 0;
        int rc;

        params[np++] = (struct r2b_sigv4_param){"list-type", "2"};
        params[np++] = (struct r2b_sigv4_param){"max-keys", c->list_page_size};
        if (prefix && *prefix)
            params[np++] = (struct r2b_sigv4_param){"prefix", prefix};
        if (token)
            params[np++] = (struct r2b_sigv4_param){"continuation-token", token};
        memset(&req, 0, sizeof(req));
        req.method = "GET";
        req.bucket = bucket;
        req.params = params;
        req.n_params = np;
        req.out_fd = -1;
        req.out_body = &c->body;
        st = r2b_s3__perform(c, &req, &resp, err);
        if (st != R2B_OK)
            break;
        memset(&page, 0, sizeof(page));
        rc = r2b_s3__xml_list(r2b_buf_str(&c->body), c->body.len, &page, cb, ud);
        free(token);
        token = page.next_token;
        if (rc < 0) {
            st = r2b_error_set(err, R2B_ERR_PARSE, "list '%s': malformed ListBucketResult",
                               bucket);
            break;
        }
        if (rc > 0 || !page.truncated)
            break;
        if (token == NULL || *token == '\0') {
            st = r2b_error_set(err, R2B_ERR_PARSE,
                               "list '%s': truncated page without a continuation token", bucket);
            break;
        }
    }
    free(token);
    r2b_buf_release(&c->body);
    return st;
}

enum r2b_status r2b_s3_presign(struct r2b_s3_client *c, const char *method, const char *bucket,
                               const char *key, long expires_s, int64_t now, struct r2b_buf *url,
                               struct r2b_error *err)
{
    struct s3_request req;
    struct r2b_buf host;
    struct r2b_sigv4_request sr;
    enum r2b_status st = check_names(bucket, key, err);

    if (st != R2B_OK)
        return st;
    if (method == NULL || (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0 &&
                           strcmp(method, "PUT") != 0 && strcmp(method, "DELETE") != 0))
        return r2b_error_set(err, R2B_ERR_INVALID,
                             "presigned urls support GET, HEAD, PUT and DELETE only");
    memset(&req, 0, sizeof(req));
    req.method = method;
    req.bucket = bucket;
    req.key = key;
    r2b_buf_init(&host, 1024);
    st = build_target(c, &req, &host, err);
    if (st == R2B_OK) {
        sr = (struct r2b_sigv4_request){method, host.ptr, c->path.ptr, c->path.len, NULL, 0,
                                        NULL, 0, NULL};
        if (now == 0)
            now = c->opts.fixed_time ? c->opts.fixed_time : r2b_time_now();
        st = r2b_sigv4_presign(c->signer, &sr, now, expires_s, c->scheme, url, err);
    }
    r2b_buf_release(&host);
    return st;
}
