/*
 * Integration tests of the S3 client against the real local S3 server that
 * scripts/test starts (Swift + s3api, which verifies SigV4). They fail, never
 * skip, when the server's environment is missing.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "r2bridge/s3.h"
#include "r2bridge/sigv4.h"
#include "s3/s3_int.h"

struct env {
    const char *endpoint, *access_key, *secret_key, *bucket;
    char prefix[64]; /* unique per run, so reruns never see old objects */
    char tmpdir[256];
};

static struct env E;

static const char *need(const char *name)
{
    const char *v = getenv(name);

    if (v == NULL || *v == '\0') {
        fprintf(stderr, "test_s3_integration: %s is not set: run through scripts/test, which "
                        "starts the local S3 server\n", name);
        exit(1);
    }
    return v;
}

static struct r2b_s3_client *new_client(const char *secret, int parallel)
{
    struct r2b_s3_options o;
    struct r2b_error err;
    struct r2b_s3_client *c;

    r2b_s3_options_init(&o);
    o.endpoint = E.endpoint;
    o.access_key = E.access_key;
    o.secret_key = secret ? secret : E.secret_key;
    o.path_style = 1;
    o.part_size_bytes = 5 * 1024 * 1024;
    o.parallel = parallel;
    o.retry_base_ms = 50;
    c = r2b_s3_client_new(&o, &err);
    if (c == NULL)
        fail_msg("client: %s", err.message);
    return c;
}

static void key_of(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", E.prefix, name);
}

/* A temp file holding `size` deterministic pseudo-random bytes; returns an open fd. */
static int make_file(uint64_t size, unsigned seed, char path[512])
{
    unsigned char buf[65536];
    uint64_t x = 0x9e3779b97f4a7c15ULL ^ seed, done = 0;
    int fd;

    snprintf(path, 512, "%s/r2b-it-XXXXXX", E.tmpdir);
    fd = mkstemp(path);
    assert_true(fd >= 0);
    while (done < size) {
        size_t n = size - done < sizeof(buf) ? (size_t)(size - done) : sizeof(buf);

        for (size_t i = 0; i < n; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            buf[i] = (unsigned char)x;
        }
        assert_int_equal(write(fd, buf, n), (ssize_t)n);
        done += n;
    }
    return fd;
}

/* Downloads `key` to a temp file and compares it byte for byte with `fd`. */
static void assert_object_equals_fd(struct r2b_s3_client *c, const char *key, int fd)
{
    char path[512];
    struct r2b_error err;
    struct r2b_s3_object obj;
    unsigned char a[65536], b[65536];
    int out;
    off_t size = lseek(fd, 0, SEEK_END);

    snprintf(path, sizeof(path), "%s/r2b-it-get-XXXXXX", E.tmpdir);
    out = mkstemp(path);
    assert_true(out >= 0);
    if (r2b_s3_get_fd(c, E.bucket, key, out, &obj, &err) != R2B_OK)
        fail_msg("get %s: %s", key, err.message);
    assert_true(obj.size_bytes == (uint64_t)size);
    assert_int_equal(lseek(out, 0, SEEK_END), size);
    for (off_t off = 0; off < size;) {
        ssize_t na = pread(fd, a, sizeof(a), off), nb = pread(out, b, sizeof(b), off);

        assert_true(na > 0);
        assert_int_equal(na, nb);
        assert_memory_equal(a, b, (size_t)na);
        off += na;
    }
    close(out);
    unlink(path);
}

static void md5_of_fd(int fd, uint64_t off, uint64_t len, char hex[33])
{
    struct r2b_digest d;
    unsigned char buf[65536];

    r2b_digest_init(&d);
    while (len) {
        size_t n = len < sizeof(buf) ? (size_t)len : sizeof(buf);
        ssize_t got = pread(fd, buf, n, (off_t)off);

        assert_true(got > 0);
        r2b_digest_update(&d, buf, (size_t)got);
        off += (uint64_t)got;
        len -= (uint64_t)got;
    }
    r2b_digest_final(&d, NULL, hex, NULL);
}

static void test_put_head_get(void **state)
{
    struct r2b_s3_client *c = new_client(NULL, 1);
    struct r2b_s3_put_options po = {"image/jpeg", "public, max-age=315576000, immutable", 0, NULL, NULL, NULL};
    struct r2b_s3_object put, head;
    struct r2b_error err;
    char key[256], path[512], md5[33];
    int fd = make_file(100000, 1, path);

    (void)state;
    key_of(key, sizeof(key), "photo.jpg");
    if (r2b_s3_put_file(c, E.bucket, key, path, &po, &put, &err) != R2B_OK)
        fail_msg("put: %s", err.message);
    md5_of_fd(fd, 0, 100000, md5);
    assert_string_equal(put.etag, md5);
    assert_true(put.size_bytes == 100000);
    assert_int_equal(r2b_s3_head(c, E.bucket, key, &head, &err), R2B_OK);
    assert_true(head.size_bytes == 100000);
    assert_string_equal(head.etag, md5);
    assert_string_equal(head.content_type, "image/jpeg");
    assert_string_equal(head.cache_control, "public, max-age=315576000, immutable");
    assert_true(head.last_modified > 1700000000);
    assert_object_equals_fd(c, key, fd);
    close(fd);
    unlink(path);
    r2b_s3_client_free(c);
}

/* A callback source over memory: positional reads, as the contract asks. */
static ssize_t mem_read(const struct r2b_s3_source *src, void *buf, size_t n, uint64_t off)
{
    const unsigned char *data = src->ud;

    if (off >= src->size_bytes)
        return 0;
    if (n > src->size_bytes - off)
        n = (size_t)(src->size_bytes - off);
    memcpy(buf, data + off, n);
    return (ssize_t)n;
}

static void test_put_from_callback(void **state)
{
    struct r2b_s3_client *c = new_client(NULL, 2);
    size_t size = 3 * 1024 * 1024 + 7;
    unsigned char *data = malloc(size);
    struct r2b_s3_source src = {0};
    struct r2b_s3_object put;
    struct r2b_error err;
    char key[256], path[512];
    int fd;

    (void)state;
    for (size_t i = 0; i < size; i++)
        data[i] = (unsigned char)(i * 31 + (i >> 9));
    src.size_bytes = size;
    src.read = mem_read;
    src.ud = data;
    key_of(key, sizeof(key), "from-callback.bin");
    if (r2b_s3_put(c, E.bucket, key, &src, NULL, &put, &err) != R2B_OK)
        fail_msg("put: %s", err.message);
    /* the same source, forced through multipart with 5 MiB parts: one short part */
    key_of(key, sizeof(key), "from-callback-mp.bin");
    {
        struct r2b_s3_put_options po = {NULL, NULL, 1, NULL, NULL, NULL};

        if (r2b_s3_put(c, E.bucket, key, &src, &po, &put, &err) != R2B_OK)
            fail_msg("put multipart: %s", err.message);
        assert_non_null(strstr(put.etag, "-1"));
    }
    snprintf(path, sizeof(path), "%s/r2b-it-mem-XXXXXX", E.tmpdir);
    fd = mkstemp(path);
    assert_int_equal(write(fd, data, size), (ssize_t)size);
    assert_object_equals_fd(c, key, fd);
    key_of(key, sizeof(key), "from-callback.bin");
    assert_object_equals_fd(c, key, fd);
    close(fd);
    unlink(path);
    free(data);
    r2b_s3_client_free(c);
}

static void test_multipart_parallel(void **state)
{
    struct r2b_s3_client *c = new_client(NULL, 3);
    uint64_t size = 17ULL * 1024 * 1024 + 333, part = 5ULL * 1024 * 1024;
    struct r2b_s3_put_options po = {"video/mp4", NULL, 0, NULL, NULL, NULL};
    struct r2b_s3_object put, head;
    struct r2b_s3_stats st1, st2;
    struct r2b_error err;
    struct r2b_digest d;
    char key[256], path[512], expect[80], hex[33];
    unsigned char bin[16];
    int fd = make_file(size, 2, path);

    (void)state;
    /* expected ETag: md5 of the concatenated part md5s, "-4" (5+5+5+2.0003 MiB) */
    r2b_digest_init(&d);
    for (uint64_t off = 0; off < size; off += part) {
        md5_of_fd(fd, off, size - off < part ? size - off : part, hex);
        r2b_hex_decode(hex, bin, sizeof(bin));
        r2b_digest_update(&d, bin, sizeof(bin));
    }
    r2b_digest_final(&d, NULL, hex, NULL);
    snprintf(expect, sizeof(expect), "%s-4", hex);

    key_of(key, sizeof(key), "big/video.mp4");
    c->opts.multipart_threshold_bytes = 8 * 1024 * 1024;
    if (r2b_s3_put_file(c, E.bucket, key, path, &po, &put, &err) != R2B_OK)
        fail_msg("multipart put: %s", err.message);
    assert_string_equal(put.etag, expect);
    assert_true(put.size_bytes == size);
    assert_int_equal(r2b_s3_head(c, E.bucket, key, &head, &err), R2B_OK);
    assert_true(head.size_bytes == size);
    assert_string_equal(head.etag, expect);
    assert_string_equal(head.content_type, "video/mp4");
    assert_object_equals_fd(c, key, fd);
    /* a second upload reuses the two worker clients (and their connections) */
    assert_int_equal(c->n_workers, 2);
    r2b_s3_client_stats(c, &st1);
    key_of(key, sizeof(key), "big/video2.mp4");
    assert_int_equal(r2b_s3_put_file(c, E.bucket, key, path, &po, &put, &err), R2B_OK);
    assert_int_equal(c->n_workers, 2);
    r2b_s3_client_stats(c, &st2);
    assert_true(st2.requests - st1.requests == 6); /* create + 4 parts + complete */
    assert_true(st2.bytes_sent - st1.bytes_sent >= size);
    close(fd);
    unlink(path);
    r2b_s3_client_free(c);
}

/*
 * Object bodies are sent as UNSIGNED-PAYLOAD bound by a signed Content-MD5
 * by default, with SHA-256 in the signature when sha256_object_bodies is set
 * (R2B_PAYLOAD_SHA256): the real server accepts both, single and multipart.
 */
static void test_payload_modes(void **state)
{
    uint64_t sizes[2] = {70001, 11ULL * 1024 * 1024 + 7};
    struct r2b_s3_put_options po = {"image/png", NULL, 0, NULL, NULL, NULL};
    struct r2b_s3_object put, head;
    struct r2b_error err;
    char key[256], path[512], expect[80];

    (void)state;
    for (int mode = 0; mode < 3; mode++) {
        struct r2b_s3_client *c = new_client(NULL, 2);

        c->opts.multipart_threshold_bytes = 8 * 1024 * 1024;
        c->opts.sha256_object_bodies = mode == 1;
        c->opts.unsigned_payload = mode == 2;
        for (int i = 0; i < 2; i++) {
            int fd = make_file(sizes[i], 40u + (unsigned)(mode * 2 + i), path);
            char name[64];

            snprintf(name, sizeof(name), "payload/mode%d-%d.bin", mode, i);
            key_of(key, sizeof(key), name);
            struct r2b_s3_source src;

            r2b_s3_source_fd(&src, fd, 0, sizes[i]);
            if (r2b_s3_expected_etag(c, &src, &po, expect, &err) != R2B_OK)
                fail_msg("expected etag: %s", err.message);
            if (r2b_s3_put_file(c, E.bucket, key, path, &po, &put, &err) != R2B_OK)
                fail_msg("put mode %d size %llu: %s", mode, (unsigned long long)sizes[i],
                         err.message);
            assert_string_equal(put.etag, expect);
            assert_int_equal(r2b_s3_head(c, E.bucket, key, &head, &err), R2B_OK);
            assert_true(head.size_bytes == sizes[i]);
            assert_string_equal(head.etag, expect);
            assert_object_equals_fd(c, key, fd);
            close(fd);
            unlink(path);
        }
        r2b_s3_client_free(c);
    }
}

static int count_uploads_with(struct r2b_s3_client *c, const char *upload_id)
{
    struct r2b_sigv4_param params[1] = {{"uploads", NULL}};
    struct s3_request req;
    struct s3_response resp;
    struct r2b_buf body;
    struct r2b_error err;
    int found;

    memset(&req, 0, sizeof(req));
    r2b_buf_init(&body, 1 << 20);
    req.method = "GET";
    req.bucket = E.bucket;
    req.params = params;
    req.n_params = 1;
    req.out_fd = -1;
    req.out_body = &body;
    if (r2b_s3__perform(c, &req, &resp, &err) != R2B_OK)
        fail_msg("list uploads: %s", err.message);
    found = strstr(r2b_buf_str(&body), upload_id) != NULL;
    r2b_buf_release(&body);
    return found;
}

static void test_multipart_steps_and_abort(void **state)
{
    struct r2b_s3_client *c = new_client(NULL, 1);
    struct r2b_s3_source src;
    struct r2b_error err;
    char key[256], path[512], etag[80], *upload_id = NULL, md5[33];
    uint64_t size = 6ULL * 1024 * 1024;
    int fd = make_file(size, 3, path);

    (void)state;
    r2b_s3_source_fd(&src, fd, 0, size);
    key_of(key, sizeof(key), "aborted.bin");
    assert_int_equal(r2b_s3_multipart_create(c, E.bucket, key, NULL, &upload_id, &err), R2B_OK);
    assert_non_null(upload_id);
    assert_int_equal(r2b_s3_multipart_upload_part(c, E.bucket, key, upload_id, 1, &src, 0,
                                                  5ULL * 1024 * 1024, etag, &err),
                     R2B_OK);
    md5_of_fd(fd, 0, 5ULL * 1024 * 1024, md5);
    assert_string_equal(etag, md5); /* the part was verified with Content-MD5 */
    assert_int_equal(count_uploads_with(c, upload_id), 1);
    assert_int_equal(r2b_s3_multipart_abort(c, E.bucket, key, upload_id, &err), R2B_OK);
    assert_int_equal(count_uploads_with(c, upload_id), 0);
    /* aborting again is not an error; the object never appeared */
    assert_int_equal(r2b_s3_multipart_abort(c, E.bucket, key, upload_id, &err), R2B_OK);
    assert_int_equal(r2b_s3_head(c, E.bucket, key, NULL, &err), R2B_ERR_NOT_FOUND);
    /* part numbers outside 1..10000 are refused before any request */
    assert_int_equal(r2b_s3_multipart_upload_part(c, E.bucket, key, upload_id, 10001, &src, 0, 1,
                                                  etag, &err),
                     R2B_ERR_INVALID);
    free(upload_id);
    close(fd);
    unlink(path);
    r2b_s3_client_free(c);
}

struct listed {
    int n;
    char last[R2B_S3_MAX_KEY_BYTES + 1];
    int in_order;
};

static int on_listed(void *ud, const struct r2b_s3_object *o)
{
    struct listed *l = ud;

    if (l->n > 0 && strcmp(l->last, o->key) >= 0)
        l->in_order = 0;
    r2b_strlcpy(l->last, o->key, sizeof(l->last));
    l->n++;
    return 0;
}

static void test_odd_keys_and_pagination(void **state)
{
    static const char *const names[] = {
        "space name.jpg", "plus+sign.jpg", "eq=and&amp.jpg", "percent%41.jpg", "tilde~.jpg",
        "caf\xc3\xa9/\xe2\x82\xac.jpg", "emoji-\xf0\x9f\x98\x80.png", "double//slash.gif",
        "dots/../kept.webp", "star*paren().jpg", "quote'dq\".jpg", "comma,semi;colon:.jpg",
        "bracket[]{}.jpg", "at@hash#q?.jpg", "caret^pipe|back`tick.jpg",
    };
    const size_t n = sizeof(names) / sizeof(names[0]);
    struct r2b_s3_client *c = new_client(NULL, 1);
    struct r2b_s3_stats s1, s2;
    struct r2b_error err;
    struct listed l;
    char key[512], prefix[128], path[512];
    int fd = make_file(1000, 4, path);

    (void)state;
    snprintf(prefix, sizeof(prefix), "%s/odd/", E.prefix);
    for (size_t i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "%s%s", prefix, names[i]);
        if (r2b_s3_put_file(c, E.bucket, key, path, NULL, NULL, &err) != R2B_OK)
            fail_msg("put '%s': %s", key, err.message);
        assert_object_equals_fd(c, key, fd);
    }
    /* 15 keys, 4 per page: 4 ListObjectsV2 requests, every key once, in order */
    r2b_strlcpy(c->list_page_size, "4", sizeof(c->list_page_size));
    memset(&l, 0, sizeof(l));
    l.in_order = 1;
    r2b_s3_client_stats(c, &s1);
    assert_int_equal(r2b_s3_list(c, E.bucket, prefix, on_listed, &l, &err), R2B_OK);
    r2b_s3_client_stats(c, &s2);
    assert_int_equal(l.n, (int)n);
    assert_int_equal(l.in_order, 1);
    assert_true(s2.requests - s1.requests == 4);
    close(fd);
    unlink(path);
    r2b_s3_client_free(c);
}

static void test_copy_delete(void **state)
{
    struct r2b_s3_client *c = new_client(NULL, 1);
    struct r2b_s3_object put, copy, head;
    struct r2b_error err;
    char src[256], dst[256], path[512];
    int fd = make_file(4321, 5, path);

    (void)state;
    key_of(src, sizeof(src), "copy-src.png");
    key_of(dst, sizeof(dst), "copy dst/\xc3\xbc.png");
    assert_int_equal(r2b_s3_put_file(c, E.bucket, src, path,
                                     &(struct r2b_s3_put_options){"image/png", NULL, 0, NULL, NULL, NULL}, &put, &err),
                     R2B_OK);
    if (r2b_s3_copy(c, E.bucket, src, E.bucket, dst, NULL, &copy, &err) != R2B_OK)
        fail_msg("copy: %s", err.message);
    assert_string_equal(copy.etag, put.etag);
    assert_int_equal(r2b_s3_head(c, E.bucket, dst, &head, &err), R2B_OK);
    assert_string_equal(head.content_type, "image/png");
    assert_object_equals_fd(c, dst, fd);
    assert_int_equal(r2b_s3_delete(c, E.bucket, src, &err), R2B_OK);
    assert_int_equal(r2b_s3_head(c, E.bucket, src, &head, &err), R2B_ERR_NOT_FOUND);
    assert_int_equal(err.http_status, 404);
    /* deleting what is gone succeeds: delete is idempotent */
    assert_int_equal(r2b_s3_delete(c, E.bucket, src, &err), R2B_OK);
    /* copying from a missing key is not found */
    assert_int_equal(r2b_s3_copy(c, E.bucket, src, E.bucket, dst, NULL, NULL, &err), R2B_ERR_NOT_FOUND);
    close(fd);
    unlink(path);
    r2b_s3_client_free(c);
}

static void test_errors(void **state)
{
    struct r2b_s3_client *bad = new_client("not-the-secret", 1);
    struct r2b_s3_client *c = new_client(NULL, 1);
    struct r2b_s3_stats st;
    struct r2b_error err;
    char key[256], path[512], gpath[512];
    int fd = make_file(10, 6, path), out;
    volatile sig_atomic_t cancel = 1;

    (void)state;
    key_of(key, sizeof(key), "denied.bin");
    assert_int_equal(r2b_s3_put_file(bad, E.bucket, key, path, NULL, NULL, &err), R2B_ERR_AUTH);
    assert_string_equal(err.s3_code, "SignatureDoesNotMatch");
    assert_int_equal(err.http_status, 403);
    assert_int_equal(err.retryable, 0);
    r2b_s3_client_stats(bad, &st);
    assert_true(st.requests == 1); /* a 403 is never retried */
    assert_null(strstr(err.message, "not-the-secret"));
    /* a missing object: not found, nothing written to the output */
    snprintf(gpath, sizeof(gpath), "%s/r2b-it-miss-XXXXXX", E.tmpdir);
    out = mkstemp(gpath);
    key_of(key, sizeof(key), "does-not-exist");
    assert_int_equal(r2b_s3_get_fd(c, E.bucket, key, out, NULL, &err), R2B_ERR_NOT_FOUND);
    assert_string_equal(err.s3_code, "NoSuchKey");
    assert_int_equal(lseek(out, 0, SEEK_END), 0);
    /* a missing bucket */
    assert_int_equal(r2b_s3_head(c, "no-such-bucket-r2b", "k", NULL, &err), R2B_ERR_NOT_FOUND);
    /* a cancelled client stops before sending */
    c->opts.cancel = &cancel;
    assert_int_equal(r2b_s3_put_file(c, E.bucket, key, path, NULL, NULL, &err),
                     R2B_ERR_INTERRUPTED);
    close(out);
    unlink(gpath);
    close(fd);
    unlink(path);
    r2b_s3_client_free(bad);
    r2b_s3_client_free(c);
}

static size_t sink(char *p, size_t s, size_t n, void *ud)
{
    struct r2b_buf *b = ud;

    (void)p;
    r2b_buf_add(b, p, s * n);
    return s * n;
}

static long fetch(const char *url, struct r2b_buf *body)
{
    CURL *h = curl_easy_init();
    long code = 0;

    r2b_buf_reset(body);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, body);
    curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
    assert_int_equal(curl_easy_perform(h), CURLE_OK);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(h);
    return code;
}

static void test_presigned_urls(void **state)
{
    struct r2b_s3_client *c = new_client(NULL, 1);
    struct r2b_buf url, body, tampered;
    struct r2b_error err;
    char key[256], other[256], path[512];
    int fd = make_file(2048, 7, path);
    unsigned char data[2048];
    char *sig;

    (void)state;
    r2b_buf_init(&url, 16384);
    r2b_buf_init(&body, 1 << 20);
    r2b_buf_init(&tampered, 16384);
    assert_int_equal(pread(fd, data, sizeof(data), 0), (ssize_t)sizeof(data));
    key_of(key, sizeof(key), "private photo \xc3\xa9+=.jpg");
    key_of(other, sizeof(other), "other.jpg");
    assert_int_equal(r2b_s3_put_file(c, E.bucket, key, path, NULL, NULL, &err), R2B_OK);
    assert_int_equal(r2b_s3_put_file(c, E.bucket, other, path, NULL, NULL, &err), R2B_OK);

    assert_int_equal(r2b_s3_presign(c, "GET", E.bucket, key, 60, 0, &url, &err), R2B_OK);
    assert_int_equal(fetch(url.ptr, &body), 200);
    assert_int_equal(body.len, sizeof(data));
    assert_memory_equal(body.ptr, data, sizeof(data));

    /* one flipped signature digit: refused */
    r2b_buf_adds(&tampered, url.ptr);
    sig = strstr(tampered.ptr, "X-Amz-Signature=") + 16;
    sig[10] = sig[10] == '0' ? '1' : '0';
    assert_int_equal(fetch(tampered.ptr, &body), 403);
    /* widening: same signature for another key, or a longer expiry: refused */
    {
        char *k = strstr(tampered.ptr, "private%20photo");
        r2b_buf_reset(&tampered);
        r2b_buf_adds(&tampered, url.ptr);
        k = strstr(tampered.ptr, "private%20photo");
        assert_non_null(k);
        k[0] = 'q';
        assert_int_equal(fetch(tampered.ptr, &body), 403);
        r2b_buf_reset(&tampered);
        r2b_buf_adds(&tampered, url.ptr);
        k = strstr(tampered.ptr, "X-Amz-Expires=60");
        k[14] = '9';
        assert_int_equal(fetch(tampered.ptr, &body), 403);
    }
    /* expired: signed 100 s ago for 10 s */
    assert_int_equal(r2b_s3_presign(c, "GET", E.bucket, key, 10, r2b_time_now() - 100, &url, &err),
                     R2B_OK);
    assert_int_equal(fetch(url.ptr, &body), 403);
    /* HEAD-method URL is not a GET URL */
    assert_int_equal(r2b_s3_presign(c, "HEAD", E.bucket, key, 60, 0, &url, &err), R2B_OK);
    assert_int_equal(fetch(url.ptr, &body), 403);
    r2b_buf_release(&url);
    r2b_buf_release(&body);
    r2b_buf_release(&tampered);
    close(fd);
    unlink(path);
    r2b_s3_client_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_head_get),
        cmocka_unit_test(test_put_from_callback),
        cmocka_unit_test(test_multipart_parallel),
        cmocka_unit_test(test_payload_modes),
        cmocka_unit_test(test_multipart_steps_and_abort),
        cmocka_unit_test(test_odd_keys_and_pagination),
        cmocka_unit_test(test_copy_delete),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_presigned_urls),
    };
    unsigned char rnd[6];
    char hex[13];
    int rc;

    E.endpoint = need("S3_ENDPOINT");
    E.access_key = need("AWS_ACCESS_KEY_ID");
    E.secret_key = need("AWS_SECRET_ACCESS_KEY");
    E.bucket = need("R2B_TEST_BUCKET");
    r2b_strlcpy(E.tmpdir, getenv("R2B_TEST_TMP") ? getenv("R2B_TEST_TMP") : "/tmp",
                sizeof(E.tmpdir));
    r2b_random_bytes(rnd, sizeof(rnd), NULL);
    r2b_hex_lower(rnd, sizeof(rnd), hex);
    snprintf(E.prefix, sizeof(E.prefix), "it-%s", hex);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
