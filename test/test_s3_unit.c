/* Unit tests for the pure parts of the S3 module: part planning, error
 * classification, backoff, XML readers, ETags, endpoint and URL shapes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "s3/s3_int.h"

#define MIB (1024ULL * 1024)
#define GIB (1024ULL * MIB)

static void test_part_plan(void **state)
{
    static const struct {
        uint64_t size, preferred, part;
        unsigned n;
        enum r2b_status st;
    } cases[] = {
        {1, 16 * MIB, 16 * MIB, 1, R2B_OK},
        {16 * MIB, 16 * MIB, 16 * MIB, 1, R2B_OK},
        {16 * MIB + 1, 16 * MIB, 16 * MIB, 2, R2B_OK},
        {100 * MIB, 1 * MIB, 5 * MIB, 20, R2B_OK}, /* raised to R2's 5 MiB minimum */
        {50000 * MIB, 5 * MIB, 5 * MIB, 10000, R2B_OK},
        {50000 * MIB + 1, 5 * MIB, 6 * MIB, 8334, R2B_OK}, /* raised to fit 10,000 parts */
        {10000ULL * 5 * GIB, 16 * MIB, 5 * GIB, 10000, R2B_OK},
        {10000ULL * 5 * GIB + 1, 16 * MIB, 0, 0, R2B_ERR_LIMIT},
        {0, 16 * MIB, 0, 0, R2B_ERR_LIMIT},
        {1 * GIB, 8 * GIB, 5 * GIB, 1, R2B_OK}, /* preferred above 5 GiB is capped */
    };
    struct r2b_error err;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t part = 0;
        unsigned n = 0;
        enum r2b_status st = r2b_s3_part_plan(cases[i].size, cases[i].preferred, &part, &n, &err);

        assert_int_equal(st, cases[i].st);
        if (st != R2B_OK)
            continue;
        assert_true(part == cases[i].part);
        assert_int_equal(n, cases[i].n);
        /* R2's rules: equal non-trailing parts, last not larger, within bounds */
        assert_true(part >= 5 * MIB && part <= 5 * GIB);
        assert_true(n >= 1 && n <= 10000);
        assert_true((uint64_t)(n - 1) * part < cases[i].size);
        assert_true((uint64_t)n * part >= cases[i].size);
    }
}

static void test_classify(void **state)
{
    static const struct {
        long http;
        const char *code;
        enum r2b_status st;
        int retry;
    } cases[] = {
        {200, "", R2B_OK, 0},
        {204, "", R2B_OK, 0},
        {500, "InternalError", R2B_ERR_HTTP, 1},
        {502, "", R2B_ERR_HTTP, 1},
        {503, "SlowDown", R2B_ERR_HTTP, 1},
        {503, "", R2B_ERR_HTTP, 1},
        {429, "", R2B_ERR_HTTP, 1},
        {400, "RequestTimeout", R2B_ERR_HTTP, 1},
        {400, "BadDigest", R2B_ERR_INTEGRITY, 1},
        {400, "InvalidArgument", R2B_ERR_HTTP, 0},
        {400, "EntityTooSmall", R2B_ERR_HTTP, 0},
        {403, "SignatureDoesNotMatch", R2B_ERR_AUTH, 0},
        {403, "AccessDenied", R2B_ERR_AUTH, 0},
        {403, "RequestTimeTooSkewed", R2B_ERR_AUTH, 0},
        {404, "NoSuchKey", R2B_ERR_NOT_FOUND, 0},
        {404, "NoSuchBucket", R2B_ERR_NOT_FOUND, 0},
        {404, "NoSuchUpload", R2B_ERR_NOT_FOUND, 0},
        {409, "BucketNotEmpty", R2B_ERR_HTTP, 0},
        {412, "PreconditionFailed", R2B_ERR_HTTP, 0},
        {501, "NotImplemented", R2B_ERR_UNSUPPORTED, 0}, /* e.g. R2 and x-amz-acl */
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int retry = -1;

        assert_int_equal(r2b_s3__classify_http(cases[i].http, cases[i].code, &retry), cases[i].st);
        assert_int_equal(retry, cases[i].retry);
    }
}

static void test_backoff(void **state)
{
    uint64_t rng = 0x9e3779b97f4a7c15ULL;
    long max_seen[8] = {0};

    (void)state;
    /* full jitter: uniform in [0, min(cap, base*2^attempt)] */
    for (int round = 0; round < 2000; round++) {
        for (int att = 0; att < 8; att++) {
            long d = r2b_s3__backoff_ms(&rng, att, 100, 2000);
            long ceil_ms = 100L << att;

            if (ceil_ms > 2000)
                ceil_ms = 2000;
            assert_true(d >= 0 && d <= ceil_ms);
            if (d > max_seen[att])
                max_seen[att] = d;
        }
    }
    /* it does spread out, and the ceiling grows then stops at the cap */
    assert_true(max_seen[0] > 50);
    assert_true(max_seen[3] > 400);
    assert_true(max_seen[7] > 1000 && max_seen[7] <= 2000);
}

static void test_etag_copy(void **state)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"\"abc\"", "abc"},
        {"abc", "abc"},
        {"W/\"abc\"", "abc"},
        {"\"d41d8cd98f00b204e9800998ecf8427e-3\"", "d41d8cd98f00b204e9800998ecf8427e-3"},
        {"\"\"", ""},
        {" \"x\" \r\n", "x"},
    };
    char out[80];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        r2b_s3__etag_copy(out, cases[i].in, strlen(cases[i].in));
        assert_string_equal(out, cases[i].out);
    }
}

static void test_xml_error(void **state)
{
    static const char ns[] =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error "
        "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Code>SlowDown</Code><Message>Please "
        "reduce\nyour request rate.</Message><RequestId>1</RequestId></Error>";
    static const char plain[] = "<Error><Code>NoSuchKey</Code><Message>The specified key does "
                                "not exist.</Message></Error>";
    static const char xxe[] =
        "<?xml version=\"1.0\"?><!DOCTYPE Error [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
        "<Error><Code>&x;</Code><Message>m</Message></Error>";
    char code[64], msg[256];

    (void)state;
    assert_int_equal(r2b_s3__xml_error(ns, strlen(ns), code, sizeof(code), msg, sizeof(msg)), 1);
    assert_string_equal(code, "SlowDown");
    assert_string_equal(msg, "Please reduce your request rate."); /* newline flattened */
    assert_int_equal(r2b_s3__xml_error(plain, strlen(plain), code, sizeof(code), msg, sizeof(msg)),
                     1);
    assert_string_equal(code, "NoSuchKey");
    /* an external entity is never fetched or expanded */
    r2b_s3__xml_error(xxe, strlen(xxe), code, sizeof(code), msg, sizeof(msg));
    assert_null(strstr(code, "root"));
    /* not an error document, or not XML at all */
    assert_int_equal(r2b_s3__xml_error("<ListBucketResult/>", 19, code, sizeof(code), msg,
                                       sizeof(msg)),
                     0);
    assert_int_equal(r2b_s3__xml_error("<Error><Code>Slo", 16, code, sizeof(code), msg,
                                       sizeof(msg)),
                     0);
    assert_int_equal(r2b_s3__xml_error("", 0, code, sizeof(code), msg, sizeof(msg)), 0);
    assert_string_equal(code, "");
}

/* DeleteResult's first error, cleaned like an Error document's text: it goes
 * into a one-line error message and the JSON s3_code. */
static void test_xml_delete_errors(void **state)
{
    static const char two[] =
        "<DeleteResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Deleted><Key>a</Key>"
        "</Deleted><Error><Key>b\n.jpg</Key><Code>Access\xc3\xa9"
        "Denied</Code><Message>no\r\n"
        "\tway</Message></Error><Error><Key>c</Key><Code>InternalError</Code></Error>"
        "</DeleteResult>";
    char code[64], msg[256], key[64];

    (void)state;
    assert_int_equal(r2b_s3__xml_delete_errors(two, strlen(two), code, sizeof(code), msg,
                                               sizeof(msg), key, sizeof(key)),
                     2);
    assert_string_equal(code, "Access??Denied");
    assert_string_equal(msg, "no  way"); /* XML allows no other control characters */
    assert_string_equal(key, "b .jpg");
    assert_int_equal(r2b_s3__xml_delete_errors("<DeleteResult/>", 15, code, sizeof(code), msg,
                                               sizeof(msg), key, sizeof(key)),
                     0);
    assert_int_equal(r2b_s3__xml_delete_errors("<Error/>", 8, code, sizeof(code), msg, sizeof(msg),
                                               key, sizeof(key)),
                     -1);
}

static void test_xml_upload_id_and_etag(void **state)
{
    static const char init[] =
        "<InitiateMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        "<Bucket>b</Bucket><Key>k</Key><UploadId>VXBsb2FkIElE</UploadId>"
        "</InitiateMultipartUploadResult>";
    static const char complete[] =
        "<CompleteMultipartUploadResult><Location>x</Location><Bucket>b</Bucket><Key>k</Key>"
        "<ETag>&quot;3858f62230ac3c915f300c664312c11f-9&quot;</ETag>"
        "</CompleteMultipartUploadResult>";
    char *id;
    char etag[80];

    (void)state;
    id = r2b_s3__xml_upload_id(init, strlen(init));
    assert_non_null(id);
    assert_string_equal(id, "VXBsb2FkIElE");
    free(id);
    assert_null(r2b_s3__xml_upload_id("<InitiateMultipartUploadResult/>", 32));
    assert_null(r2b_s3__xml_upload_id("<Error/>", 8));
    assert_int_equal(r2b_s3__xml_result_etag(complete, strlen(complete),
                                             "CompleteMultipartUploadResult", etag),
                     0);
    assert_string_equal(etag, "3858f62230ac3c915f300c664312c11f-9");
    assert_int_equal(r2b_s3__xml_result_etag(complete, strlen(complete), "CopyObjectResult", etag),
                     -1);
}

struct collected {
    int n;
    char keys[4][64];
    uint64_t sizes[4];
    int stop_after;
};

static int collect(void *ud, const struct r2b_s3_object *o)
{
    struct collected *c = ud;

    if (c->n < 4) {
        r2b_strlcpy(c->keys[c->n], o->key, sizeof(c->keys[0]));
        c->sizes[c->n] = o->size_bytes;
    }
    c->n++;
    return c->stop_after && c->n >= c->stop_after;
}

static void test_xml_list(void **state)
{
    static const char page[] =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
        "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>b</Name>"
        "<Prefix></Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys>"
        "<IsTruncated>true</IsTruncated><NextContinuationToken>tok+/=</NextContinuationToken>"
        "<Contents><Key>a b/\xc3\xbc.jpg</Key><LastModified>2024-02-29T00:00:00.000Z</LastModified>"
        "<ETag>&quot;abc&quot;</ETag><Size>12</Size></Contents>"
        "<Contents><Key>c&amp;d</Key><Size>0</Size></Contents></ListBucketResult>";
    static const char bad_size[] =
        "<ListBucketResult><IsTruncated>false</IsTruncated>"
        "<Contents><Key>a</Key><Size>-3</Size></Contents></ListBucketResult>";
    struct s3_list_page p;
    struct collected c;

    (void)state;
    memset(&c, 0, sizeof(c));
    assert_int_equal(r2b_s3__xml_list(page, strlen(page), &p, collect, &c), 0);
    assert_int_equal(p.truncated, 1);
    assert_string_equal(p.next_token, "tok+/=");
    assert_int_equal(p.n_objects, 2);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.keys[0], "a b/\xc3\xbc.jpg");
    assert_true(c.sizes[0] == 12);
    assert_string_equal(c.keys[1], "c&d");
    free(p.next_token);
    /* the callback can stop the walk */
    memset(&c, 0, sizeof(c));
    c.stop_after = 1;
    assert_int_equal(r2b_s3__xml_list(page, strlen(page), &p, collect, &c), 1);
    assert_int_equal(c.n, 1);
    free(p.next_token);
    /* malformed pages are errors, never silently empty */
    assert_int_equal(r2b_s3__xml_list(bad_size, strlen(bad_size), &p, collect, &c), -1);
    free(p.next_token);
    assert_int_equal(r2b_s3__xml_list("<ListBucketResult><Conte", 24, &p, NULL, NULL), -1);
    assert_int_equal(r2b_s3__xml_list("<Error/>", 8, &p, NULL, NULL), -1);
}

static struct r2b_s3_client *client_for(const char *endpoint, int path_style)
{
    struct r2b_s3_options o;
    struct r2b_error err;

    r2b_s3_options_init(&o);
    o.endpoint = endpoint;
    o.access_key = "AKIDEXAMPLE";
    o.secret_key = "secret-not-printed";
    o.path_style = path_style;
    o.fixed_time = 1369353600;
    return r2b_s3_client_new(&o, &err);
}

static void test_endpoints_and_urls(void **state)
{
    static const struct {
        const char *endpoint;
        int path_style;
        const char *url_prefix; /* of a presigned GET for bucket "media", key "a b/c.jpg" */
    } cases[] = {
        {"https://acct.r2.cloudflarestorage.com", 0,
         "https://media.acct.r2.cloudflarestorage.com/a%20b/c.jpg?X-Amz-Algorithm="},
        {"https://acct.r2.cloudflarestorage.com:443/", 1,
         "https://acct.r2.cloudflarestorage.com/media/a%20b/c.jpg?"},
        {"http://127.0.0.1:8080", 1, "http://127.0.0.1:8080/media/a%20b/c.jpg?"},
        {"http://127.0.0.1:80", 1, "http://127.0.0.1/media/a%20b/c.jpg?"},
        {"http://[::1]:9000", 1, "http://[::1]:9000/media/a%20b/c.jpg?"},
    };
    static const char *const bad[] = {
        "ftp://x", "acct.r2.cloudflarestorage.com", "https://", "https://h/path",
        "https://h:99999", "https://h:x", "https://user@h", "https://h?x=1",
    };
    struct r2b_buf url;
    struct r2b_error err;

    (void)state;
    r2b_buf_init(&url, 8192);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct r2b_s3_client *c = client_for(cases[i].endpoint, cases[i].path_style);

        assert_non_null(c);
        assert_int_equal(r2b_s3_presign(c, "GET", "media", "a b/c.jpg", 300, 0, &url, &err),
                         R2B_OK);
        assert_memory_equal(url.ptr, cases[i].url_prefix, strlen(cases[i].url_prefix));
        assert_non_null(strstr(url.ptr, "X-Amz-Expires=300&"));
        assert_null(strstr(url.ptr, "secret-not-printed"));
        r2b_s3_client_free(c);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct r2b_s3_options o;

        r2b_s3_options_init(&o);
        o.endpoint = bad[i];
        o.access_key = "a";
        o.secret_key = "s";
        assert_null(r2b_s3_client_new(&o, &err));
        assert_int_equal(err.code, R2B_ERR_CONFIG);
    }
    r2b_buf_release(&url);
}

static void test_presign_rules(void **state)
{
    struct r2b_s3_client *c = client_for("https://acct.r2.cloudflarestorage.com", 1);
    struct r2b_buf url;
    struct r2b_error err;
    char long_key[1100];

    (void)state;
    r2b_buf_init(&url, 8192);
    /* R2 presigns GET, HEAD, PUT and DELETE only; 1 s .. 7 days, never clamped */
    assert_int_equal(r2b_s3_presign(c, "POST", "b", "k", 60, 0, &url, &err), R2B_ERR_INVALID);
    assert_int_equal(r2b_s3_presign(c, "GET", "b", "k", 0, 0, &url, &err), R2B_ERR_INVALID);
    assert_int_equal(r2b_s3_presign(c, "GET", "b", "k", 604801, 0, &url, &err), R2B_ERR_INVALID);
    assert_int_equal(r2b_s3_presign(c, "PUT", "b", "k", 604800, 0, &url, &err), R2B_OK);
    assert_int_equal(r2b_s3_presign(c, "DELETE", "b", "k", 1, 0, &url, &err), R2B_OK);
    /* keys: valid UTF-8, 1..1024 bytes; buckets: DNS-ish names */
    assert_int_equal(r2b_s3_presign(c, "GET", "b", "bad\xff", 60, 0, &url, &err),
                     R2B_ERR_INVALID);
    memset(long_key, 'k', sizeof(long_key) - 1);
    long_key[sizeof(long_key) - 1] = '\0';
    assert_int_equal(r2b_s3_presign(c, "GET", "b", long_key, 60, 0, &url, &err), R2B_ERR_INVALID);
    long_key[1024] = '\0';
    assert_int_equal(r2b_s3_presign(c, "GET", "b", long_key, 60, 0, &url, &err), R2B_OK);
    assert_int_equal(r2b_s3_presign(c, "GET", "Bad/Bucket", "k", 60, 0, &url, &err),
                     R2B_ERR_INVALID);
    assert_int_equal(r2b_s3_presign(c, "GET", "", "k", 60, 0, &url, &err), R2B_ERR_CONFIG);
    /* "..", "//" and "." are kept as sent: S3 keys are not paths */
    assert_int_equal(r2b_s3_presign(c, "GET", "b", "a/../b//./c", 60, 0, &url, &err), R2B_OK);
    assert_non_null(strstr(url.ptr, "/b/a/../b//./c?"));
    r2b_buf_release(&url);
    r2b_s3_client_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_part_plan),     cmocka_unit_test(test_classify),
        cmocka_unit_test(test_backoff),       cmocka_unit_test(test_etag_copy),
        cmocka_unit_test(test_xml_error),     cmocka_unit_test(test_xml_upload_id_and_etag),
        cmocka_unit_test(test_xml_list),      cmocka_unit_test(test_endpoints_and_urls),
        cmocka_unit_test(test_presign_rules), cmocka_unit_test(test_xml_delete_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
