/*
 * Unit tests for the SigV4 signer and the digests (src/sigv4). Table-driven
 * like curl's unit tests: each table row is one input and its expected
 * outcome. The stages are checked through the canonical request and string
 * to sign the signer exposes, not only through the final signature.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sigv4/sigv4_int.h"

#define AK "AKIAIOSFODNN7EXAMPLE"
#define SK "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define EX_HOST "examplebucket.s3.amazonaws.com"
#define EX_TIME INT64_C(1369353600) /* 20130524T000000Z */
#define DAY INT64_C(86400)
#define EMPTY R2B_SIGV4_EMPTY_SHA256

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* --- fixture ------------------------------------------------------------------ */

struct fx {
    struct r2b_sigv4_signer *s; /* the AWS example credentials, us-east-1, s3 */
    struct r2b_buf out;         /* Authorization header or URL */
    struct r2b_buf tmp;
    struct r2b_error err;
    char amz_date[17];
};

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return -1;
    f->s = r2b_sigv4_signer_new(AK, SK, NULL, "us-east-1", "s3", &f->err);
    if (f->s == NULL) {
        free(f);
        return -1;
    }
    r2b_buf_init(&f->out, 64 * 1024);
    r2b_buf_init(&f->tmp, 64 * 1024);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;

    r2b_sigv4_signer_free(f->s);
    r2b_buf_release(&f->out);
    r2b_buf_release(&f->tmp);
    free(f);
    return 0;
}

/* Copies line `n` (0-based) of `text` into `out` (size `size`); "" if absent. */
static const char *line_of(const char *text, int n, char *out, size_t size)
{
    const char *p = text, *end;
    size_t len;

    for (int i = 0; i < n && p; i++) {
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    if (p == NULL) {
        out[0] = '\0';
        return out;
    }
    end = strchr(p, '\n');
    len = end ? (size_t)(end - p) : strlen(p);
    if (len >= size)
        len = size - 1;
    memcpy(out, p, len);
    out[len] = '\0';
    return out;
}

/*
 * Copies the canonical headers block of the last canonical request (the lines
 * between the query line and the blank line, each ending in '\n') into out.
 */
static const char *header_block(const struct r2b_sigv4_signer *s, char *out, size_t size)
{
    const char *c = r2b_sigv4_last_canonical_request(s), *start, *end;
    size_t len;

    start = strchr(c, '\n');
    start = start ? strchr(start + 1, '\n') : NULL;
    start = start ? strchr(start + 1, '\n') : NULL; /* after METHOD, path, query */
    end = start ? strstr(start + 1, "\n\n") : NULL;
    if (start == NULL || end == NULL) {
        out[0] = '\0';
        return out;
    }
    len = (size_t)(end - start); /* from after the query line to the blank line */
    if (len >= size)
        len = size - 1;
    memcpy(out, start + 1, len);
    out[len] = '\0';
    return out;
}

static struct r2b_sigv4_request simple_req(const char *path)
{
    struct r2b_sigv4_request r;

    memset(&r, 0, sizeof(r));
    r.method = "GET";
    r.host = EX_HOST;
    r.path = path;
    r.payload_hash = EMPTY;
    return r;
}

/* --- the five published AWS S3 SigV4 examples ------------------------------- */

struct aws_example {
    const char *name;
    const char *method;
    const char *path;
    struct r2b_sigv4_param params[2];
    size_t n_params;
    struct r2b_sigv4_header headers[2];
    size_t n_headers;
    const char *payload;
    long presign_expires; /* 0: header signing */
    const char *canonical;
    const char *string_to_sign;
    const char *result; /* Authorization header or URL */
};

static const struct aws_example aws_examples[] = {
    {"GET Object",
     "GET",
     "/test.txt",
     {{NULL, NULL}},
     0,
     {{"Range", "bytes=0-9"}},
     1,
     EMPTY,
     0,
     "GET\n/test.txt\n\n"
     "host:examplebucket.s3.amazonaws.com\n"
     "range:bytes=0-9\n"
     "x-amz-content-sha256:" EMPTY "\n"
     "x-amz-date:20130524T000000Z\n\n"
     "host;range;x-amz-content-sha256;x-amz-date\n" EMPTY,
     "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
     "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972",
     "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
     "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
     "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"},
    {"PUT Object",
     "PUT",
     "/test$file.text",
     {{NULL, NULL}},
     0,
     {{"Date", "Fri, 24 May 2013 00:00:00 GMT"}, {"x-amz-storage-class", "REDUCED_REDUNDANCY"}},
     2,
     "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
     0,
     "PUT\n/test%24file.text\n\n"
     "date:Fri, 24 May 2013 00:00:00 GMT\n"
     "host:examplebucket.s3.amazonaws.com\n"
     "x-amz-content-sha256:44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072\n"
     "x-amz-date:20130524T000000Z\n"
     "x-amz-storage-class:REDUCED_REDUNDANCY\n\n"
     "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class\n"
     "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
     "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
     "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d",
     "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
     "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class, "
     "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"},
    {"GET Bucket Lifecycle",
     "GET",
     "/",
     {{"lifecycle", NULL}},
     1,
     {{NULL, NULL}},
     0,
     EMPTY,
     0,
     "GET\n/\nlifecycle=\n"
     "host:examplebucket.s3.amazonaws.com\n"
     "x-amz-content-sha256:" EMPTY "\n"
     "x-amz-date:20130524T000000Z\n\n"
     "host;x-amz-content-sha256;x-amz-date\n" EMPTY,
     "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
     "9766c798316ff2757b517bc739a67f6213b4ab36dd5da2f94eaebf79c77395ca",
     "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
     "SignedHeaders=host;x-amz-content-sha256;x-amz-date, "
     "Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"},
    {"GET Bucket (List Objects)",
     "GET",
     "/",
     {{"prefix", "J"}, {"max-keys", "2"}},
     2,
     {{NULL, NULL}},
     0,
     EMPTY,
     0,
     "GET\n/\nmax-keys=2&prefix=J\n"
     "host:examplebucket.s3.amazonaws.com\n"
     "x-amz-content-sha256:" EMPTY "\n"
     "x-amz-date:20130524T000000Z\n\n"
     "host;x-amz-content-sha256;x-amz-date\n" EMPTY,
     "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
     "df57d21db20da04d7fa30298dd4488ba3a2b47ca3a489c74750e0f1e7df1b9b7",
     "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
     "SignedHeaders=host;x-amz-content-sha256;x-amz-date, "
     "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"},
    {"presigned GET Object",
     "GET",
     "/test.txt",
     {{NULL, NULL}},
     0,
     {{NULL, NULL}},
     0,
     NULL,
     86400,
     "GET\n/test.txt\n"
     "X-Amz-Algorithm=AWS4-HMAC-SHA256&"
     "X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&"
     "X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host\n"
     "host:examplebucket.s3.amazonaws.com\n\n"
     "host\nUNSIGNED-PAYLOAD",
     "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
     "3bfa292879f6447bbcda7001decf97f4a54dc650c8942174ae0a9121cf58ad04",
     "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&"
     "X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&"
     "X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&"
     "X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"},
};

static void test_aws_examples(void **state)
{
    struct fx *f = *state;

    for (size_t i = 0; i < N_ELEMS(aws_examples); i++) {
        const struct aws_example *e = &aws_examples[i];
        struct r2b_sigv4_request r = simple_req(e->path);
        enum r2b_status st;

        print_message("AWS example: %s\n", e->name);
        r.method = e->method;
        r.params = e->params;
        r.n_params = e->n_params;
        r.headers = e->headers;
        r.n_headers = e->n_headers;
        r.payload_hash = e->payload;
        if (e->presign_expires)
            st =
                r2b_sigv4_presign(f->s, &r, EX_TIME, e->presign_expires, "https", &f->out, &f->err);
        else
            st = r2b_sigv4_sign_headers(f->s, &r, EX_TIME, &f->out, f->amz_date, &f->err);
        assert_int_equal(st, R2B_OK);
        assert_string_equal(r2b_sigv4_last_canonical_request(f->s), e->canonical);
        assert_string_equal(r2b_sigv4_last_string_to_sign(f->s), e->string_to_sign);
        assert_string_equal(r2b_buf_str(&f->out), e->result);
        if (!e->presign_expires)
            assert_string_equal(f->amz_date, "20130524T000000Z");
    }
}

/* --- URI encoding ---------------------------------------------------------------- */

struct enc_case {
    const char *in;
    int keep_slash;
    const char *out;
};

static const struct enc_case enc_cases[] = {
    {"", 0, ""},
    {"ABCXYZabcxyz0189-._~", 0, "ABCXYZabcxyz0189-._~"}, /* unreserved kept */
    {"~", 1, "~"},
    {"a/b", 1, "a/b"},
    {"a/b", 0, "a%2Fb"}, /* '/' kept only with keep_slash */
    {"/", 0, "%2F"},
    {"a b", 1, "a%20b"}, /* space is %20, never '+' */
    {"a+b", 1, "a%2Bb"},
    {"a=b", 0, "a%3Db"},
    {"a&b", 0, "a%26b"},
    {"100%", 1, "100%25"},
    {"%20", 1, "%2520"}, /* already-encoded input is encoded again */
    {"?#[]@!$'()*,;:", 1, "%3F%23%5B%5D%40%21%24%27%28%29%2A%2C%3B%3A"},
    {"\"<>\\^`{|}", 1, "%22%3C%3E%5C%5E%60%7B%7C%7D"},
    {"\t\n\x7f", 0, "%09%0A%7F"},
    {"caf\xc3\xa9", 1, "caf%C3%A9"},                       /* UTF-8 bytes, uppercase hex */
    {"\xe6\x97\xa5\xe6\x9c\xac", 1, "%E6%97%A5%E6%9C%AC"}, /* 日本 */
    {"\xf0\x9f\x98\x80", 1, "%F0%9F%98%80"},               /* emoji, 4 bytes */
    {"\xff\xfe", 1, "%FF%FE"},                             /* not UTF-8: still per byte */
    /* never normalized */
    {"/a//b/./c/../d/", 1, "/a//b/./c/../d/"},
    {"//", 1, "//"},
    {"/.", 1, "/."},
    {"/..", 1, "/.."},
    {"/../x", 0, "%2F..%2Fx"},
};

static void test_uri_encode(void **state)
{
    struct fx *f = *state;

    for (size_t i = 0; i < N_ELEMS(enc_cases); i++) {
        const struct enc_case *c = &enc_cases[i];

        r2b_buf_reset(&f->tmp);
        assert_int_equal(r2b_sigv4_uri_encode(&f->tmp, c->in, strlen(c->in), c->keep_slash),
                         R2B_OK);
        assert_string_equal(r2b_buf_str(&f->tmp), c->out);
    }
}

static void test_uri_encode_appends_and_limits(void **state)
{
    struct fx *f = *state;
    struct r2b_buf *b = &f->tmp;

    b->max_bytes = 10;
    assert_int_equal(r2b_buf_adds(b, "x="), R2B_OK);
    assert_int_equal(r2b_sigv4_uri_encode(b, "a b", 3, 0), R2B_OK); /* appends */
    assert_string_equal(r2b_buf_str(b), "x=a%20b");
    /* an encoding that just fits the cap is not refused for its worst case */
    assert_int_equal(r2b_sigv4_uri_encode(b, "zzz", 3, 0), R2B_OK);
    assert_string_equal(r2b_buf_str(b), "x=a%20bzzz");
    assert_int_equal(b->len, 10);
    /* one byte more is over the cap: R2B_ERR_LIMIT, buffer left as it was */
    assert_int_equal(r2b_sigv4_uri_encode(b, "z", 1, 0), R2B_ERR_LIMIT);
    assert_string_equal(r2b_buf_str(b), "x=a%20bzzz");
    r2b_buf_reset(b);
    assert_int_equal(r2b_sigv4_uri_encode(b, "\xc3\xa9\xc3\xa9", 4, 0), R2B_ERR_LIMIT);
    assert_string_equal(r2b_buf_str(b), "");
    /* embedded NUL is a byte like any other when a length is given */
    assert_int_equal(r2b_sigv4_uri_encode(b, "a\0b", 3, 0), R2B_OK);
    assert_string_equal(r2b_buf_str(b), "a%00b");
}

/* The path as signed (line 2) and as put in a presigned URL: encoded once, never normalized. */
struct path_case {
    const char *raw;
    const char *signed_path;
};

static const struct path_case path_cases[] = {
    {"/", "/"},
    {"/bucket/a key.jpg", "/bucket/a%20key.jpg"},
    {"/bucket//double", "/bucket//double"},
    {"//", "//"},
    {"/bucket/./x", "/bucket/./x"},
    {"/bucket/../x", "/bucket/../x"},
    {"/bucket/..", "/bucket/.."},
    {"/b/1+1=2&x?y#z", "/b/1%2B1%3D2%26x%3Fy%23z"},
    {"/b/%41", "/b/%2541"},
    {"/b/~user/\xc3\xb1", "/b/~user/%C3%B1"},
};

static void test_path_not_normalized(void **state)
{
    struct fx *f = *state;
    char line[256], want_url[512];

    for (size_t i = 0; i < N_ELEMS(path_cases); i++) {
        struct r2b_sigv4_request r = simple_req(path_cases[i].raw);

        assert_int_equal(r2b_sigv4_sign_headers(f->s, &r, EX_TIME, &f->out, f->amz_date, &f->err),
                         R2B_OK);
        assert_string_equal(line_of(r2b_sigv4_last_canonical_request(f->s), 1, line, sizeof(line)),
                            path_cases[i].signed_path);
        assert_int_equal(r2b_sigv4_presign(f->s, &r, EX_TIME, 60, "https", &f->out, &f->err),
                         R2B_OK);
        assert_string_equal(line_of(r2b_sigv4_last_canonical_request(f->s), 1, line, sizeof(line)),
                            path_cases[i].signed_path);
        snprintf(want_url, sizeof(want_url), "https://" EX_HOST "%s?", path_cases[i].signed_path);
        assert_memory_equal(r2b_buf_str(&f->out), want_url, strlen(want_url));
    }
}

static void test_path_len(void **state)
{
    struct fx *f = *state;
    struct r2b_sigv4_request r = simple_req("/abc/def");
    char line[64];

    r.path_len = 4; /* only "/abc" */
    assert_int_equal(r2b_sigv4_sign_headers(f->s, &r, EX_TIME, &f->out, f->amz_date, &f->err),
                     R2B_OK);
    assert_string_equal(line_of(r2b_sigv4_last_canonical_request(f->s), 1, line, sizeof(line)),
                        "/abc");
}

/* --- query canonicalization ---------------------------------------------------------- */

struct query_case {
    const char *name;
    struct r2b_sigv4_param params[6];
    size_t n;
    const char *query; /* line 3 of the canonical request */
};

static const struct query_case query_cases[] = {
    {"none", {{NULL, NULL}}, 0, ""},
    {"valueless", {{"uploads", NULL}}, 1, "uploads="},
    {"empty value", {{"prefix", ""}}, 1, "prefix="},
    {"valueless and empty are the same", {{"a", NULL}, {"a", ""}}, 2, "a=&a="},
    {"sorted by name", {{"uploadId", "x"}, {"partNumber", "2"}}, 2, "partNumber=2&uploadId=x"},
    {"uppercase before lowercase (code points)",
     {{"b", "1"}, {"B", "2"}, {"a", "3"}, {"A", "4"}},
     4,
     "A=4&B=2&a=3&b=1"},
    {"repeated names sorted by value",
     {{"tag", "b"}, {"tag", "a"}, {"tag", ""}, {"tag", "B"}},
     4,
     "tag=&tag=B&tag=a&tag=b"},
    {"name prefix sorts first", {{"a-b", "1"}, {"a", "2"}, {"a.b", "3"}}, 3, "a=2&a-b=1&a.b=3"},
    {"sorted by encoded name", {{"~", "1"}, {"%", "2"}, {"z", "3"}}, 3, "%25=2&z=3&~=1"},
    {"reserved characters in values",
     {{"prefix", "a b+c=d&e/f?g#h%i"}},
     1,
     "prefix=a%20b%2Bc%3Dd%26e%2Ff%3Fg%23h%25i"},
    {"reserved characters in names", {{"a b", "1"}, {"c+d", NULL}}, 2, "a%20b=1&c%2Bd="},
    {"unreserved kept", {{"x-._~", "-._~Az09"}}, 1, "x-._~=-._~Az09"},
    {"UTF-8", {{"\xc3\xa9", "\xf0\x9f\x98\x80"}}, 1, "%C3%A9=%F0%9F%98%80"},
    {"response-content-disposition",
     {{"response-content-disposition", "attachment; filename=\"a b.jpg\""}},
     1,
     "response-content-disposition=attachment%3B%20filename%3D%22a%20b.jpg%22"},
    {"list-objects-v2",
     {{"list-type", "2"},
      {"max-keys", "1000"},
      {"prefix", "photos/2024/"},
      {"delimiter", "/"},
      {"continuation-token", "1/ab+c=="}},
     5,
     "continuation-token=1%2Fab%2Bc%3D%3D&delimiter=%2F&list-type=2&max-keys=1000&"
     "prefix=photos%2F2024%2F"},
};

static void test_query_canonicalization(void **state)
{
    struct fx *f = *state;
    char line[1024];

    for (size_t i = 0; i < N_ELEMS(query_cases); i++) {
        const struct query_case *q = &query_cases[i];
        struct r2b_sigv4_request r = simple_req("/bucket");

        print_message("query: %s\n", q->name);
        r.params = q->params;
        r.n_params = q->n;
        assert_int_equal(r2b_sigv4_sign_headers(f->s, &r, EX_TIME, &f->out, f->amz_date, &f->err),
                         R2B_OK);
        assert_string_equal(line_of(r2b_sigv4_last_canonical_request(f->s), 2, line, sizeof(line)),
                            q->query);
    }
}

/* In a presigned URL the caller's parameters sort among the X-Amz-* ones. */
static void test_presign_query_merge(void **state)
{
    struct fx *f = *state;
    const struct r2b_sigv4_param p[] = {{"uploadId", "a+b"}, {"partNumber", "3"}, {"Z", NULL}};
    struct r2b_sigv4_request r = simple_req("/bucket/key");
    char line[1024];

    r.params = p;
    r.n_params = N_ELEMS(p);
    assert_int_equal(r2b_sigv4_presign(f->s, &r, EX_TIME, 3600, "https", &f->out, &f->err), R2B_OK);
    assert_string_equal(line_of(r2b_sigv4_last_canonical_request(f->s), 2, line, sizeof(line)),
                        "X-Amz-Algorithm=AWS4-HMAC-SHA256&"
                        "X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2F"
                        "aws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=3600&"
                        "X-Amz-SignedHeaders=host&Z=&partNumber=3&uploadId=a%2Bb");
    /* the URL carries exactly the canonical query, then the signature */
    snprintf(line + strlen(line), sizeof(line) - strlen(line), "&X-Amz-Signature=");
    assert_non_null(strstr(r2b_buf_str(&f->out), line));
}

/* --- header canonicalization ---------------------------------------------------------- */

struct header_case {
    const char *name;
    const char *host;
    struct r2b_sigv4_header headers[5];
    size_t n;
    const char *block;       /* canonical header lines */
    const char *signed_list; /* signed headers list */
};

#define FIXED_SHA "x-amz-content-sha256:" EMPTY "\n"
#define FIXED_DATE "x-amz-date:20130524T000000Z\n"

static const struct header_case header_cases[] = {
    {"only the signer's headers",
     EX_HOST,
     {{NULL, NULL}},
     0,
     "host:" EX_HOST "\n" FIXED_SHA FIXED_DATE,
     "host;x-amz-content-sha256;x-amz-date"},
    {"names lowercased and sorted",
     EX_HOST,
     {{"X-Amz-Meta-Zeta", "z"}, {"Content-Type", "image/jpeg"}, {"CACHE-CONTROL", "no-cache"}},
     3,
     "cache-control:no-cache\ncontent-type:image/jpeg\nhost:" EX_HOST "\n" FIXED_SHA FIXED_DATE
     "x-amz-meta-zeta:z\n",
     "cache-control;content-type;host;x-amz-content-sha256;x-amz-date;x-amz-meta-zeta"},
    {"values trimmed, inner runs collapsed",
     EX_HOST,
     {{"x-amz-meta-a", "  leading"},
      {"x-amz-meta-b", "trailing \t "},
      {"x-amz-meta-c", " a   b \t\t c  "},
      {"x-amz-meta-d", "   "},
      {"x-amz-meta-e", ""}},
     5,
     "host:" EX_HOST "\n" FIXED_SHA FIXED_DATE
     "x-amz-meta-a:leading\nx-amz-meta-b:trailing\nx-amz-meta-c:a b c\n"
     "x-amz-meta-d:\nx-amz-meta-e:\n",
     "host;x-amz-content-sha256;x-amz-date;x-amz-meta-a;x-amz-meta-b;x-amz-meta-c;"
     "x-amz-meta-d;x-amz-meta-e"},
    {"quoted value not special",
     EX_HOST,
     {{"x-amz-meta-q", "\"a   b\""}},
     1,
     "host:" EX_HOST "\n" FIXED_SHA FIXED_DATE "x-amz-meta-q:\"a b\"\n",
     "host;x-amz-content-sha256;x-amz-date;x-amz-meta-q"},
    {"repeated names joined with ',' in the given order",
     EX_HOST,
     {{"x-amz-meta-tag", "second "},
      {"X-Amz-Meta-Tag", " first"},
      {"x-amz-meta-a", "1"},
      {"x-amz-meta-TAG", "  "}},
     4,
     "host:" EX_HOST "\n" FIXED_SHA FIXED_DATE "x-amz-meta-a:1\nx-amz-meta-tag:second,first,\n",
     "host;x-amz-content-sha256;x-amz-date;x-amz-meta-a;x-amz-meta-tag"},
    {"host with a non-default port signed as given",
     "127.0.0.1:9000",
     {{NULL, NULL}},
     0,
     "host:127.0.0.1:9000\n" FIXED_SHA FIXED_DATE,
     "host;x-amz-content-sha256;x-amz-date"},
    {"IPv6 host and port",
     "[::1]:8443",
     {{NULL, NULL}},
     0,
     "host:[::1]:8443\n" FIXED_SHA FIXED_DATE,
     "host;x-amz-content-sha256;x-amz-date"},
    {"R2 endpoint",
     "0123456789abcdef0123456789abcdef.r2.cloudflarestorage.com",
     {{"content-md5", "1B2M2Y8AsgTpgAmY7PhCfg=="}},
     1,
     "content-md5:1B2M2Y8AsgTpgAmY7PhCfg==\n"
     "host:0123456789abcdef0123456789abcdef.r2.cloudflarestorage.com\n" FIXED_SHA FIXED_DATE,
     "content-md5;host;x-amz-content-sha256;x-amz-date"},
};

static void test_header_canonicalization(void **state)
{
    struct fx *f = *state;
    char block[2048], line[512], want_auth[512];

    for (size_t i = 0; i < N_ELEMS(header_cases); i++) {
        const struct header_case *h = &header_cases[i];
        struct r2b_sigv4_request r = simple_req("/bucket/key");
        const char *canon;

        print_message("headers: %s\n", h->name);
        r.host = h->host;
        r.headers = h->headers;
        r.n_headers = h->n;
        assert_int_equal(r2b_sigv4_sign_headers(f->s, &r, EX_TIME, &f->out, f->amz_date, &f->err),
                         R2B_OK);
        canon = r2b_sigv4_last_canonical_request(f->s);
        assert_string_equal(header_block(f->s, block, sizeof(block)), h->block);
        /* the signed-headers line follows the blank line after the block */
        assert_non_null(strstr(canon, h->block));
        assert_string_equal(
            line_of(strstr(canon, h->block) + strlen(h->block), 1, line, sizeof(line)),
            h->signed_list);
        snprintf(want_auth, sizeof(want_auth), "SignedHeaders=%s, Signature=", h->signed_list);
        assert_non_null(strstr(r2b_buf_str(&f->out), want_auth));
    }
}

/* --- payload hash ------------------------------------------------------------------------ */

struct payload_case {
    const char *hash;
    enum r2b_status status;
    const char *signed_as;
};

static const struct payload_case payload_cases[] = {
    {NULL, R2B_OK, "UNSIGNED-PAYLOAD"},
    {"UNSIGNED-PAYLOAD", R2B_OK, "UNSIGNED-PAYLOAD"},
    {EMPTY, R2B_OK, EMPTY},
    {"E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855", R2B_ERR_INVALID, NULL},
    {"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85", R2B_ERR_INVALID, NULL},
    {"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8555", R2B_ERR_INVALID, NULL},
    {"g3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", R2B_ERR_INVALID, NULL},
    {"", R2B_ERR_INVALID, NULL},
    {"unsigned-payload", R2B_ERR_INVALID, NULL},
    {"STREAMING-AWS4-HMAC-SHA256-PAYLOAD", R2B_ERR_INVALID, NULL},
};

static void test_payload_hash(void **state)
{
    struct fx *f = *state;
    char want[128], last[128];

    for (size_t i = 0; i < N_ELEMS(payload_cases); i++) {
        struct r2b_sigv4_request r = simple_req("/b/k");
        const char *canon, *nl;

        r.payload_hash = payload_cases[i].hash;
        assert_int_equal(r2b_sigv4_sign_headers(f->s, &r, EX_TIME, &f->out, f->amz_date, &f->err),
                         payload_cases[i].status);
        if (payload_cases[i].status != R2B_OK) {
            assert_int_equal(f->err.code, payload_cases[i].status);
            continue;
        }
        canon = r2b_sigv4_last_canonical_request(f->s);
        snprintf(want, sizeof(want), "\nx-amz-content-sha256:%s\n", payload_cases[i].signed_as);
        assert_non_null(strstr(canon, want));
        nl = strrchr(canon, '\n');
        assert_non_null(nl);
        r2b_strlcpy(last, nl + 1, sizeof(last));
        assert_string_equal(last, payload_cases[i].signed_as);
    }
}

/* presigned URLs are always UNSIGNED-PAYLOAD, whatever payload_hash says */
static void test_presign_ignores_payload_hash(void **state)
{
    struct fx *f = *state;
    struct r2b_sigv4_request r = simple_req("/test.txt");
    const char *canon;

    r.payload_hash = "not even a hash";
    assert_int_equal(r2b_sigv4_presign(f->s, &r, EX_TIME, 86400, "https", &f->out, &f->err),
                     R2B_OK);
    canon = r2b_sigv4_last_canonical_request(f->s);
    assert_string_equal(canon + strlen(canon) - strlen("\nUNSIGNED-PAYLOAD"), "\nUNSIGNED-PAYLOAD");
    assert_null(strstr(canon, "x-amz-content-sha256"));
    assert_string_equal(r2b_buf_str(&f->out), aws_examples[4].result);
}

/* --- presign expiry and scheme ------------------------------------------------------------- */

struct expiry_case {
    long expires_s;
    enum r2b_status status;
    const char *param; /* the X-Amz-Expires parameter on success */
};

static const struct expiry_case expiry_cases[] = {
    {0, R2B_ERR_INVALID, NULL},
    {-1, R2B_ERR_INVALID, NULL},
    {-604800, R2B_ERR_INVALID, NULL},
    {604801, R2B_ERR_INVALID, NULL}, /* not clamped to 604800 */
    {LONG_MAX, R2B_ERR_INVALID, NULL},
    {LONG_MIN, R2B_ERR_INVALID, NULL},
    {1, R2B_OK, "&X-Amz-Expires=1&"},
    {9, R2B_OK, "&X-Amz-Expires=9&"},
    {10, R2B_OK, "&X-Amz-Expires=10&"},
    {3600, R2B_OK, "&X-Amz-Expires=3600&"},
    {604800, R2B_OK, "&X-Amz-Expires=604800&"},
};

static void test_presign_expiry(void **state)
{
    struct fx *f = *state;

    for (size_t i = 0; i < N_ELEMS(expiry_cases); i++) {
        struct r2b_sigv4_request r = simple_req("/test.txt");
        enum r2b_status st;

        r2b_buf_reset(&f->out);
        r2b_error_clear(&f->err);
        st = r2b_sigv4_presign(f->s, &r, EX_TIME, expiry_cases[i].expires_s, "https", &f->out,
                               &f->err);
        assert_int_equal(st, expiry_cases[i].status);
        if (st != R2B_OK) {
            assert_int_equal(f->err.code, st);
            assert_non_null(strstr(f->err.message, "expiry"));
            assert_string_equal(r2b_buf_str(&f->out), ""); /* no URL on failure */
            continue;
        }
        assert_non_null(strstr(r2b_buf_str(&f->out), expiry_cases[i].param));
        assert_non_null(strstr(r2b_sigv4_last_canonical_request(f->s), expiry_cases[i].param));
    }
}

/* A time outside 1970..9999 is refused, not signed as some other date
 * (fuzz_sigv4 found INT64_MIN overflowing the date arithmetic). */
static void test_time_range(void **state)
{
    struct fx *f = *state;
    static const int64_t bad[] = {-1, INT64_MIN, R2B_TIME_MAX + 1, INT64_MAX};
    struct r2b_sigv4_request r = simple_req("/test.txt");
    char d[17];

    for (size_t i = 0; i < N_ELEMS(bad); i++) {
        assert_int_equal(r2b_sigv4_sign_headers(f->s, &r, bad[i], &f->out, d, &f->err),
                         R2B_ERR_INVALID);
        assert_non_null(strstr(f->err.message, "time"));
        assert_int_equal(r2b_sigv4_presign(f->s, &r, bad[i], 60, "https", &f->out, &f->err),
                         R2B_ERR_INVALID);
    }
    assert_int_equal(r2b_sigv4_sign_headers(f->s, &r, 0, &f->out, d, &f->err), R2B_OK);
    assert_string_equal(d, "19700101T000000Z");
    assert_int_equal(r2b_sigv4_presign(f->s, &r, R2B_TIME_MAX, 60, "https", &f->out, &f->err),
                     R2B_OK);
    assert_non_null(strstr(r2b_buf_str(&f->out), "X-Amz-Date=99991231T235959Z"));
}

struct scheme_case {
    const char *scheme;
    enum r2b_status status;
    const char *prefix;
};

static const struct scheme_case scheme_cases[] = {
    {"https", R2B_OK, "https://" EX_HOST "/test.txt?"},
    {"http", R2B_OK, "http://" EX_HOST "/test.txt?"},
    {NULL, R2B_ERR_INVALID, NULL},
    {"", R2B_ERR_INVALID, NULL},
    {"HTTPS", R2B_ERR_INVALID, NULL},
    {"ftp", R2B_ERR_INVALID, NULL},
    {"https://", R2B_ERR_INVALID, NULL},
    {"http ", R2B_ERR_INVALID, NULL},
};

static void test_presign_scheme(void **state)
{
    struct fx *f = *state;

    for (size_t i = 0; i < N_ELEMS(scheme_cases); i++) {
        struct r2b_sigv4_request r = simple_req("/test.txt");
        enum r2b_status st;

        st = r2b_sigv4_presign(f->s, &r, EX_TIME, 60, scheme_cases[i].scheme, &f->out, &f->err);
        assert_int_equal(st, scheme_cases[i].status);
        if (st == R2B_OK)
            assert_memory_equal(r2b_buf_str(&f->out), scheme_cases[i].prefix,
                                strlen(scheme_cases[i].prefix));
    }
}

/* --- signing-key cache ---------------------------------------------------------------------- */

static void sign_at(struct r2b_sigv4_signer *s, int64_t t, char *auth, size_t auth_size, char *sts,
                    size_t sts_size)
{
    struct r2b_sigv4_request r = simple_req("/test.txt");
    struct r2b_buf out;
    char d[17];

    r2b_buf_init(&out, 4096);
    assert_int_equal(r2b_sigv4_sign_headers(s, &r, t, &out, d, NULL), R2B_OK);
    r2b_strlcpy(auth, r2b_buf_str(&out), auth_size);
    r2b_strlcpy(sts, r2b_sigv4_last_string_to_sign(s), sts_size);
    r2b_buf_release(&out);
}

static void test_signing_key_cache(void **state)
{
    struct fx *f = *state;
    struct r2b_sigv4_signer *fresh;
    char a1[512], a2[512], a3[512], a4[512], af[512];
    char s1[256], s2[256], s3[256], s4[256], sf[256], line[128];

    sign_at(f->s, EX_TIME, a1, sizeof(a1), s1, sizeof(s1));
    sign_at(f->s, EX_TIME + DAY, a2, sizeof(a2), s2, sizeof(s2));
    /* two dates: two scopes and two signatures */
    assert_string_equal(line_of(s1, 2, line, sizeof(line)), "20130524/us-east-1/s3/aws4_request");
    assert_string_equal(line_of(s2, 2, line, sizeof(line)), "20130525/us-east-1/s3/aws4_request");
    assert_non_null(strstr(a2, "Credential=" AK "/20130525/us-east-1/s3/aws4_request,"));
    assert_string_not_equal(a1, a2);
    /* back to the first date: the same result as the first time */
    sign_at(f->s, EX_TIME, a3, sizeof(a3), s3, sizeof(s3));
    assert_string_equal(a3, a1);
    assert_string_equal(s3, s1);
    /* the same date twice: identical results */
    sign_at(f->s, EX_TIME, a4, sizeof(a4), s4, sizeof(s4));
    assert_string_equal(a4, a3);
    /* a later second of the same day reuses the key: equal to a fresh signer's */
    sign_at(f->s, EX_TIME + DAY - 1, a4, sizeof(a4), s4, sizeof(s4));
    fresh = r2b_sigv4_signer_new(AK, SK, NULL, "us-east-1", "s3", NULL);
    assert_non_null(fresh);
    sign_at(fresh, EX_TIME + DAY - 1, af, sizeof(af), sf, sizeof(sf));
    assert_string_equal(a4, af);
    assert_string_equal(s4, sf);
    assert_string_equal(line_of(s4, 1, line, sizeof(line)), "20130524T235959Z");
    assert_string_equal(line_of(s4, 2, line, sizeof(line)), "20130524/us-east-1/s3/aws4_request");
    /* the first second of the next day uses the next day's key */
    sign_at(f->s, EX_TIME + DAY, a4, sizeof(a4), s4, sizeof(s4));
    assert_string_equal(a4, a2);
    /* presign after header signing on another day also switches keys */
    {
        struct r2b_sigv4_request r = simple_req("/test.txt");

        r.payload_hash = NULL;
        assert_int_equal(r2b_sigv4_presign(f->s, &r, EX_TIME, 86400, "https", &f->out, &f->err),
                         R2B_OK);
        assert_string_equal(r2b_buf_str(&f->out), aws_examples[4].result);
    }
    r2b_sigv4_signer_free(fresh);
}

/* signers differing only in region, service or secret give different signatures */
static void test_scope_inputs(void **state)
{
    static const struct {
        const char *secret, *region, *service, *scope;
    } rows[] = {
        {SK, "auto", "s3", "20130524/auto/s3/aws4_request"},
        {SK, "us-east-1", "s3", "20130524/us-east-1/s3/aws4_request"},
        {SK, "eu-west-3", "s3", "20130524/eu-west-3/s3/aws4_request"},
        {SK "x", "us-east-1", "s3", "20130524/us-east-1/s3/aws4_request"},
        {SK, "us-east-1", "s3express", "20130524/us-east-1/s3express/aws4_request"},
    };
    char auth[N_ELEMS(rows)][512], sts[256], line[128];

    (void)state;
    for (size_t i = 0; i < N_ELEMS(rows); i++) {
        struct r2b_sigv4_signer *s =
            r2b_sigv4_signer_new(AK, rows[i].secret, NULL, rows[i].region, rows[i].service, NULL);

        assert_non_null(s);
        sign_at(s, EX_TIME, auth[i], sizeof(auth[i]), sts, sizeof(sts));
        assert_string_equal(line_of(sts, 2, line, sizeof(line)), rows[i].scope);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(auth[i], auth[j]);
        r2b_sigv4_signer_free(s);
    }
}

/* --- session token ---------------------------------------------------------------------------- */

#define TOKEN "FQoGZXIvYXdzE+/a=b"

static void test_session_token(void **state)
{
    struct r2b_sigv4_signer *s = r2b_sigv4_signer_new(AK, SK, TOKEN, "auto", "s3", NULL);
    struct r2b_sigv4_signer *empty = r2b_sigv4_signer_new(AK, SK, "", "auto", "s3", NULL);
    struct r2b_sigv4_request r = simple_req("/b/k");
    struct r2b_buf out;
    char d[17], block[1024], line[1024];
    const char *url;

    (void)state;
    assert_non_null(s);
    assert_non_null(empty);
    r2b_buf_init(&out, 8192);
    /* header signing: a signed x-amz-security-token header */
    assert_int_equal(r2b_sigv4_sign_headers(s, &r, EX_TIME, &out, d, NULL), R2B_OK);
    assert_string_equal(header_block(s, block, sizeof(block)),
                        "host:" EX_HOST "\n" FIXED_SHA FIXED_DATE "x-amz-security-token:" TOKEN
                        "\n");
    assert_non_null(strstr(r2b_buf_str(&out), "SignedHeaders=host;x-amz-content-sha256;x-amz-date;"
                                              "x-amz-security-token, Signature="));
    /* presign: an X-Amz-Security-Token parameter, signed, not a header */
    assert_int_equal(r2b_sigv4_presign(s, &r, EX_TIME, 60, "https", &out, NULL), R2B_OK);
    url = r2b_buf_str(&out);
    assert_non_null(strstr(url, "&X-Amz-Security-Token=FQoGZXIvYXdzE%2B%2Fa%3Db&"));
    assert_non_null(strstr(url, "&X-Amz-SignedHeaders=host&"));
    line_of(r2b_sigv4_last_canonical_request(s), 2, line, sizeof(line));
    assert_non_null(strstr(line, "&X-Amz-Security-Token=FQoGZXIvYXdzE%2B%2Fa%3Db&"));
    assert_null(strstr(r2b_sigv4_last_canonical_request(s), "x-amz-security-token"));
    /* an empty token is no token */
    assert_int_equal(r2b_sigv4_presign(empty, &r, EX_TIME, 60, "https", &out, NULL), R2B_OK);
    assert_null(strstr(r2b_buf_str(&out), "Security-Token"));
    assert_int_equal(r2b_sigv4_sign_headers(empty, &r, EX_TIME, &out, d, NULL), R2B_OK);
    assert_null(strstr(r2b_sigv4_last_canonical_request(empty), "security-token"));
    r2b_buf_release(&out);
    r2b_sigv4_signer_free(s);
    r2b_sigv4_signer_free(empty);
}

/* --- errors ------------------------------------------------------------------------------------
 */

struct signer_new_case {
    const char *ak, *sk, *region, *service;
};

static const struct signer_new_case signer_new_cases[] = {
    {NULL, SK, "auto", "s3"}, {"", SK, "auto", "s3"}, {AK, NULL, "auto", "s3"},
    {AK, "", "auto", "s3"},   {AK, SK, NULL, "s3"},   {AK, SK, "", "s3"},
    {AK, SK, "auto", NULL},   {AK, SK, "auto", ""},
};

static void test_signer_new_errors(void **state)
{
    struct r2b_error err;

    (void)state;
    for (size_t i = 0; i < N_ELEMS(signer_new_cases); i++) {
        const struct signer_new_case *c = &signer_new_cases[i];

        r2b_error_clear(&err);
        assert_null(r2b_sigv4_signer_new(c->ak, c->sk, NULL, c->region, c->service, &err));
        assert_int_equal(err.code, R2B_ERR_CONFIG);
        assert_true(err.message[0] != '\0');
        assert_null(strstr(err.message, SK)); /* never a secret */
        /* err may be NULL */
        assert_null(r2b_sigv4_signer_new(c->ak, c->sk, NULL, c->region, c->service, NULL));
    }
    r2b_sigv4_signer_free(NULL); /* accepts NULL */
}

enum which { SIGN = 1, PRESIGN = 2, BOTH = 3 };

struct error_case {
    const char *name;
    enum which api;
    const char *method, *host, *path;
    size_t path_len;
    const struct r2b_sigv4_param *params;
    size_t n_params;
    const struct r2b_sigv4_header *headers;
    size_t n_headers;
    enum r2b_status status;
};

static struct r2b_sigv4_param many_params[R2B_SIGV4_MAX_PARAMS + 1];
static struct r2b_sigv4_header many_headers[R2B_SIGV4_MAX_HEADERS + 1];
static char many_names[R2B_SIGV4_MAX_HEADERS + 1][24];
static char long_path[R2B_SIGV4_MAX_PATH_BYTES + 2];

static const struct r2b_sigv4_header h_host[] = {{"Host", "evil.example"}};
static const struct r2b_sigv4_header h_auth[] = {{"authorization", "x"}};
static const struct r2b_sigv4_header h_date[] = {{"X-Amz-Date", "20130524T000000Z"}};
static const struct r2b_sigv4_header h_sha[] = {{"x-amz-content-SHA256", EMPTY}};
static const struct r2b_sigv4_header h_token[] = {{"X-Amz-Security-Token", "t"}};
static const struct r2b_sigv4_header h_noname[] = {{"", "v"}};
static const struct r2b_sigv4_header h_nullname[] = {{NULL, "v"}};
static const struct r2b_sigv4_header h_nullvalue[] = {{"x-amz-meta-a", NULL}};
static const struct r2b_sigv4_header h_colon[] = {{"x-amz-meta:a", "v"}};
static const struct r2b_sigv4_header h_space[] = {{"x-amz-meta a", "v"}};
static const struct r2b_sigv4_header h_crlf[] = {{"x-amz-meta-a", "v\r\nx-amz-acl: public-read"}};
static const struct r2b_sigv4_header h_lf[] = {{"x-amz-meta-a", "v\nw"}};
static const struct r2b_sigv4_header h_ctl[] = {{"x-amz-meta-a", "v\x01w"}};
static const struct r2b_sigv4_param p_nullname[] = {{NULL, "v"}};
static const struct r2b_sigv4_param p_sig[] = {{"X-Amz-Signature", "x"}};
static const struct r2b_sigv4_param p_expires[] = {{"x-amz-expires", "5"}};
static const struct r2b_sigv4_param p_cred[] = {{"X-Amz-Credential", NULL}};
static const struct r2b_sigv4_param p_token[] = {{"X-Amz-Security-Token", "t"}};

static const struct error_case error_cases[] = {
    {"no method", BOTH, NULL, EX_HOST, "/k", 0, NULL, 0, NULL, 0, R2B_ERR_INVALID},
    {"empty method", BOTH, "", EX_HOST, "/k", 0, NULL, 0, NULL, 0, R2B_ERR_INVALID},
    {"method with a space", BOTH, "GET /x", EX_HOST, "/k", 0, NULL, 0, NULL, 0, R2B_ERR_INVALID},
    {"method with a newline", BOTH, "GET\n", EX_HOST, "/k", 0, NULL, 0, NULL, 0, R2B_ERR_INVALID},
    {"no host", BOTH, "GET", NULL, "/k", 0, NULL, 0, NULL, 0, R2B_ERR_INVALID},
    {"empty host", BOTH, "GET", "", "/k", 0, NULL, 0, NULL, 0, R2B_ERR_INVALID},
    {"host with a path", BOTH, "GET", "h.example/x", "/k", 0, NULL, 0, NULL, 0, R2B_ERR_INVALID},
    {"host with a query", BOTH, "GET", "h.example?x", "/k", 0, NULL, 0, NULL, 0, R2B_ERR_INVALID},
    {"host with userinfo", BOTH, "GET", "u@h.example", "/k", 0, NULL, 0, NULL, 0, R2B_ERR_INVALID},
    {"host with CRLF", BOTH, "GET", "h.example\r\nx: y", "/k", 0, NULL, 0, NULL, 0,
     R2B_ERR_INVALID},
    {"host with a space", BOTH, "GET", "h .example", "/k", 0, NULL, 0, NULL, 0, R2B_ERR_INVALID},
    {"no path", BOTH, "GET", EX_HOST, NULL, 0, NULL, 0, NULL, 0, R2B_ERR_INVALID},
    {"empty path", BOTH, "GET", EX_HOST, "", 0, NULL, 0, NULL, 0, R2B_ERR_INVALID},
    {"relative path", BOTH, "GET", EX_HOST, "bucket/key", 0, NULL, 0, NULL, 0, R2B_ERR_INVALID},
    {"absolute URL as path", BOTH, "GET", EX_HOST, "https://h/k", 0, NULL, 0, NULL, 0,
     R2B_ERR_INVALID},
    {"NUL inside path_len", BOTH, "GET", EX_HOST, "/a\0b", 4, NULL, 0, NULL, 0, R2B_ERR_INVALID},
    {"path over the limit", BOTH, "GET", EX_HOST, long_path, 0, NULL, 0, NULL, 0, R2B_ERR_LIMIT},
    {"too many params", BOTH, "GET", EX_HOST, "/k", 0, many_params, R2B_SIGV4_MAX_PARAMS + 1, NULL,
     0, R2B_ERR_LIMIT},
    {"too many headers", BOTH, "GET", EX_HOST, "/k", 0, NULL, 0, many_headers,
     R2B_SIGV4_MAX_HEADERS + 1, R2B_ERR_LIMIT},
    {"param without a name", BOTH, "GET", EX_HOST, "/k", 0, p_nullname, 1, NULL, 0,
     R2B_ERR_INVALID},
    {"reserved header host", BOTH, "GET", EX_HOST, "/k", 0, NULL, 0, h_host, 1, R2B_ERR_INVALID},
    {"reserved header authorization", BOTH, "GET", EX_HOST, "/k", 0, NULL, 0, h_auth, 1,
     R2B_ERR_INVALID},
    {"reserved header x-amz-date", BOTH, "GET", EX_HOST, "/k", 0, NULL, 0, h_date, 1,
     R2B_ERR_INVALID},
    {"reserved header x-amz-content-sha256", BOTH, "GET", EX_HOST, "/k", 0, NULL, 0, h_sha, 1,
     R2B_ERR_INVALID},
    {"reserved header x-amz-security-token", BOTH, "GET", EX_HOST, "/k", 0, NULL, 0, h_token, 1,
     R2B_ERR_INVALID},
    {"empty header name", BOTH, "GET", EX_HOST, "/k", 0, NULL, 0, h_noname, 1, R2B_ERR_INVALID},
    {"NULL header name", BOTH, "GET", EX_HOST, "/k", 0, NULL, 0, h_nullname, 1, R2B_ERR_INVALID},
    {"NULL header value", BOTH, "GET", EX_HOST, "/k", 0, NULL, 0, h_nullvalue, 1, R2B_ERR_INVALID},
    {"header name with ':'", BOTH, "GET", EX_HOST, "/k", 0, NULL, 0, h_colon, 1, R2B_ERR_INVALID},
    {"header name with a space", BOTH, "GET", EX_HOST, "/k", 0, NULL, 0, h_space, 1,
     R2B_ERR_INVALID},
    {"header value with CRLF", BOTH, "GET", EX_HOST, "/k", 0, NULL, 0, h_crlf, 1, R2B_ERR_INVALID},
    {"header value with LF", BOTH, "GET", EX_HOST, "/k", 0, NULL, 0, h_lf, 1, R2B_ERR_INVALID},
    {"header value with a control byte", BOTH, "GET", EX_HOST, "/k", 0, NULL, 0, h_ctl, 1,
     R2B_ERR_INVALID},
    {"presign param X-Amz-Signature", PRESIGN, "GET", EX_HOST, "/k", 0, p_sig, 1, NULL, 0,
     R2B_ERR_INVALID},
    {"presign param x-amz-expires", PRESIGN, "GET", EX_HOST, "/k", 0, p_expires, 1, NULL, 0,
     R2B_ERR_INVALID},
    {"presign param X-Amz-Credential", PRESIGN, "GET", EX_HOST, "/k", 0, p_cred, 1, NULL, 0,
     R2B_ERR_INVALID},
    {"presign param X-Amz-Security-Token", PRESIGN, "GET", EX_HOST, "/k", 0, p_token, 1, NULL, 0,
     R2B_ERR_INVALID},
};

static void init_big_inputs(void)
{
    for (size_t i = 0; i < N_ELEMS(many_params); i++)
        many_params[i] = (struct r2b_sigv4_param){"p", "v"};
    for (size_t i = 0; i < N_ELEMS(many_headers); i++) {
        snprintf(many_names[i], sizeof(many_names[i]), "x-amz-meta-%zu", i);
        many_headers[i] = (struct r2b_sigv4_header){many_names[i], "v"};
    }
    memset(long_path, 'a', sizeof(long_path) - 1);
    long_path[0] = '/';
    long_path[sizeof(long_path) - 1] = '\0'; /* MAX + 1 bytes */
}

static void test_request_errors(void **state)
{
    struct fx *f = *state;

    init_big_inputs();
    for (size_t i = 0; i < N_ELEMS(error_cases); i++) {
        const struct error_case *c = &error_cases[i];
        struct r2b_sigv4_request r;

        print_message("error: %s\n", c->name);
        memset(&r, 0, sizeof(r));
        r.method = c->method;
        r.host = c->host;
        r.path = c->path;
        r.path_len = c->path_len;
        r.params = c->params;
        r.n_params = c->n_params;
        r.headers = c->headers;
        r.n_headers = c->n_headers;
        if (c->api & SIGN) {
            r2b_error_clear(&f->err);
            assert_int_equal(
                r2b_sigv4_sign_headers(f->s, &r, EX_TIME, &f->out, f->amz_date, &f->err),
                c->status);
            assert_int_equal(f->err.code, c->status);
            assert_true(f->err.message[0] != '\0');
            /* err may be NULL */
            assert_int_equal(r2b_sigv4_sign_headers(f->s, &r, EX_TIME, &f->out, f->amz_date, NULL),
                             c->status);
        }
        if (c->api & PRESIGN) {
            r2b_error_clear(&f->err);
            assert_int_equal(r2b_sigv4_presign(f->s, &r, EX_TIME, 60, "https", &f->out, &f->err),
                             c->status);
            assert_int_equal(f->err.code, c->status);
            assert_true(f->err.message[0] != '\0');
        }
    }
}

/* the limits themselves are accepted */
static void test_limits_accepted(void **state)
{
    struct fx *f = *state;
    struct r2b_sigv4_request r;
    size_t n_signed = 0;

    init_big_inputs();
    long_path[R2B_SIGV4_MAX_PATH_BYTES] = '\0'; /* exactly the limit */
    r = simple_req(long_path);
    r.params = many_params;
    r.n_params = R2B_SIGV4_MAX_PARAMS;
    r.headers = many_headers;
    r.n_headers = R2B_SIGV4_MAX_HEADERS;
    assert_int_equal(r2b_sigv4_sign_headers(f->s, &r, EX_TIME, &f->out, f->amz_date, &f->err),
                     R2B_OK);
    for (const char *p = strstr(f->out.ptr, "SignedHeaders="); p && *p != ','; p++)
        n_signed += *p == ';';
    assert_int_equal(n_signed + 1, R2B_SIGV4_MAX_HEADERS + 3);
    assert_int_equal(r2b_sigv4_presign(f->s, &r, EX_TIME, 60, "https", &f->out, &f->err), R2B_OK);
}

/* a small result buffer: R2B_ERR_LIMIT, not a truncated header or URL */
static void test_output_buffer_limit(void **state)
{
    struct fx *f = *state;
    struct r2b_sigv4_request r = simple_req("/test.txt");
    struct r2b_buf small;

    r2b_buf_init(&small, 100);
    assert_int_equal(r2b_sigv4_sign_headers(f->s, &r, EX_TIME, &small, f->amz_date, &f->err),
                     R2B_ERR_LIMIT);
    assert_int_equal(r2b_sigv4_presign(f->s, &r, EX_TIME, 60, "https", &small, &f->err),
                     R2B_ERR_LIMIT);
    assert_int_equal(f->err.code, R2B_ERR_LIMIT);
    r2b_buf_release(&small);
}

/* --- digests -----------------------------------------------------------------------------------
 */

struct digest_case {
    const char *in;
    const char *sha256, *md5, *md5_b64;
};

static const struct digest_case digest_cases[] = {
    {"", EMPTY, "d41d8cd98f00b204e9800998ecf8427e", "1B2M2Y8AsgTpgAmY7PhCfg=="},
    {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
     "900150983cd24fb0d6963f7d28e17f72", "kAFQmDzST7DWlj99KOF/cg=="},
};

static void test_digest_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ELEMS(digest_cases); i++) {
        const struct digest_case *c = &digest_cases[i];
        struct r2b_digest d;
        char sha[65], md5[33], b64[25];

        r2b_digest_init(&d);
        r2b_digest_update(&d, c->in, strlen(c->in));
        r2b_digest_final(&d, sha, md5, b64);
        assert_string_equal(sha, c->sha256);
        assert_string_equal(md5, c->md5);
        assert_string_equal(b64, c->md5_b64);
        assert_int_equal(d.bytes, strlen(c->in));
        r2b_sha256_hex(c->in, strlen(c->in), sha);
        assert_string_equal(sha, c->sha256);
        /* any output may be NULL */
        r2b_digest_init(&d);
        r2b_digest_update(&d, c->in, strlen(c->in));
        r2b_digest_final(&d, NULL, NULL, b64);
        assert_string_equal(b64, c->md5_b64);
    }
}

#define MB (1024 * 1024)
/* of buf[i] = (i * 31 + (i >> 8)) & 0xff, i < 1 MiB (computed with Python's hashlib) */
#define MB_SHA256 "f6a34d4c79c3d12c297589206bf216b084347471a53ea5e7fe9a46bd1230f098"
#define MB_MD5 "717f0920b9c39605f4ad6923e0e0953b"
#define MB_MD5_B64 "cX8JILnDlgX0rWkj4OCVOw=="

static void test_digest_chunked(void **state)
{
    static const size_t chunks[] = {1, 3, 7, 63, 64, 65, 127, 1000, 4093, 65537};
    unsigned char *buf = malloc(MB);
    struct r2b_digest one, many;
    char sha1[65], md51[33], b641[25], sha2[65], md52[33], b642[25], sha3[65];
    size_t off = 0, k = 0;

    (void)state;
    assert_non_null(buf);
    for (size_t i = 0; i < MB; i++)
        buf[i] = (unsigned char)((i * 31 + (i >> 8)) & 0xff);
    r2b_digest_init(&one);
    r2b_digest_update(&one, buf, MB);
    r2b_digest_final(&one, sha1, md51, b641);
    r2b_digest_init(&many);
    r2b_digest_update(&many, buf, 0); /* empty updates are harmless */
    while (off < MB) {
        size_t n = chunks[k++ % N_ELEMS(chunks)];

        if (n > MB - off)
            n = MB - off;
        r2b_digest_update(&many, buf + off, n);
        off += n;
    }
    assert_int_equal(many.bytes, MB);
    r2b_digest_final(&many, sha2, md52, b642);
    r2b_sha256_hex(buf, MB, sha3);
    assert_string_equal(sha1, MB_SHA256);
    assert_string_equal(md51, MB_MD5);
    assert_string_equal(b641, MB_MD5_B64);
    assert_string_equal(sha2, sha1);
    assert_string_equal(md52, md51);
    assert_string_equal(b642, b641);
    assert_string_equal(sha3, sha1);
    free(buf);
}

/* RFC 4231 HMAC-SHA-256 test cases 1, 2 and 6 (key longer than a block) */
struct hmac_case {
    const char *name;
    unsigned char key[131];
    size_t key_len;
    const char *data;
    const char *mac;
};

static const struct hmac_case hmac_cases[] = {
    {"RFC 4231 case 1",
     {0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b,
      0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b},
     20,
     "Hi There",
     "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
    {"RFC 4231 case 2", "Jefe", 4, "what do ya want for nothing?",
     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
    {"RFC 4231 case 6",
     {0},
     131,
     "Test Using Larger Than Block-Size Key - Hash Key First",
     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
};

static void test_hmac_rfc4231(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ELEMS(hmac_cases); i++) {
        const struct hmac_case *c = &hmac_cases[i];
        unsigned char key[131], mac[32];
        char hex[65];
        struct r2b_hmac_key k;

        memcpy(key, c->key, sizeof(key));
        if (i == 2)
            memset(key, 0xaa, sizeof(key)); /* 131 bytes of 0xaa */
        r2b_hmac_prekey(&k, key, c->key_len);
        r2b_hmac_final(&k, c->data, strlen(c->data), mac);
        r2b_hex_lower(mac, sizeof(mac), hex);
        assert_string_equal(hex, c->mac);
        /* a pre-keyed state is reusable: the same MAC again */
        r2b_hmac_final(&k, c->data, strlen(c->data), mac);
        r2b_hex_lower(mac, sizeof(mac), hex);
        assert_string_equal(hex, c->mac);
        r2b_hmac_wipe(&k);
    }
}

/* kSigning from the AWS documentation, and "AWS4"+secret around one SHA-256 block */
struct derive_case {
    const char *secret, *date8, *region, *service, *key_hex;
};

static const struct derive_case derive_cases[] = {
    {"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215", "us-east-1", "iam",
     "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"},
    /* "AWS4" + 60 bytes: exactly one block, used as is */
    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "20240229", "auto", "s3",
     "607ce6f458143df6fb9fc843429707649567e88eaf26b9f48adfd0b681f10d76"},
    /* "AWS4" + 61 bytes: one byte over, hashed first (RFC 2104) */
    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "20240229", "auto", "s3",
     "50f5154c0532baa27a719ded401ba93c3a0c091957a23d5287f6f0a8107e5235"},
    {"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx/+LongSecretKeyThatIsMoreThan"
     "OneBlock0123456789",
     "20240229", "auto", "s3", "b0bcb38c63bb5ac0c2d375529c05253fb55587bedf40c68429407fc3b54632d9"},
};

static void test_derive_key(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ELEMS(derive_cases); i++) {
        const struct derive_case *c = &derive_cases[i];
        unsigned char k[32];
        char hex[65];

        r2b_sigv4_derive_key(c->secret, c->date8, c->region, c->service, k);
        r2b_hex_lower(k, sizeof(k), hex);
        assert_string_equal(hex, c->key_hex);
    }
}

/* --- no allocation on a presign into a reused buffer
 * ---------------------------------------------- */

static void test_presign_reuses_buffers(void **state)
{
    struct fx *f = *state;
    struct r2b_sigv4_signer *check = r2b_sigv4_signer_new(AK, SK, NULL, "us-east-1", "s3", NULL);
    const struct r2b_sigv4_param p[] = {{"response-content-type", "image/jpeg"}};
    struct r2b_sigv4_request r = simple_req("/bucket/key-0000.jpg");
    struct r2b_buf expect;
    char path[64];
    const char *canon_ptr, *sts_ptr;
    char *url_ptr;
    size_t url_cap;

    assert_non_null(check);
    r2b_buf_init(&expect, 64 * 1024);
    r.params = p;
    r.n_params = 1;
    r.path = path;
    snprintf(path, sizeof(path), "/bucket/key-%04d.jpg", 0);
    /* warm-up: buffers grow to their working size */
    assert_int_equal(r2b_sigv4_presign(f->s, &r, EX_TIME, 3600, "https", &f->out, &f->err), R2B_OK);
    url_ptr = f->out.ptr;
    url_cap = f->out.cap;
    canon_ptr = r2b_sigv4_last_canonical_request(f->s);
    sts_ptr = r2b_sigv4_last_string_to_sign(f->s);
    for (int i = 1; i <= 1000; i++) {
        snprintf(path, sizeof(path), "/bucket/key-%04d.jpg", i % 10000);
        assert_int_equal(r2b_sigv4_presign(f->s, &r, EX_TIME + i, 3600, "https", &f->out, &f->err),
                         R2B_OK);
        /* neither the caller's URL buffer nor the signer's scratch moved or grew */
        assert_ptr_equal(f->out.ptr, url_ptr);
        assert_int_equal(f->out.cap, url_cap);
        assert_ptr_equal(r2b_sigv4_last_canonical_request(f->s), canon_ptr);
        assert_ptr_equal(r2b_sigv4_last_string_to_sign(f->s), sts_ptr);
        assert_non_null(strstr(f->out.ptr, path));
        if (i % 97 == 0 || i == 1000) { /* and the results stay right */
            assert_int_equal(
                r2b_sigv4_presign(check, &r, EX_TIME + i, 3600, "https", &expect, NULL), R2B_OK);
            assert_string_equal(f->out.ptr, expect.ptr);
            assert_string_equal(r2b_sigv4_last_canonical_request(f->s),
                                r2b_sigv4_last_canonical_request(check));
        }
    }
    /* the same holds for header signing into a reused Authorization buffer */
    r.payload_hash = EMPTY;
    assert_int_equal(r2b_sigv4_sign_headers(f->s, &r, EX_TIME, &f->tmp, f->amz_date, &f->err),
                     R2B_OK);
    url_ptr = f->tmp.ptr;
    url_cap = f->tmp.cap;
    for (int i = 0; i < 100; i++) {
        assert_int_equal(
            r2b_sigv4_sign_headers(f->s, &r, EX_TIME + i, &f->tmp, f->amz_date, &f->err), R2B_OK);
        assert_ptr_equal(f->tmp.ptr, url_ptr);
        assert_int_equal(f->tmp.cap, url_cap);
    }
    r2b_buf_release(&expect);
    r2b_sigv4_signer_free(check);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_aws_examples, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_uri_encode, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_uri_encode_appends_and_limits, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_path_not_normalized, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_path_len, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_query_canonicalization, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_presign_query_merge, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_header_canonicalization, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_payload_hash, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_presign_ignores_payload_hash, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_presign_expiry, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_presign_scheme, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_time_range, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_signing_key_cache, fx_setup, fx_teardown),
        cmocka_unit_test(test_scope_inputs),
        cmocka_unit_test(test_session_token),
        cmocka_unit_test(test_signer_new_errors),
        cmocka_unit_test_setup_teardown(test_request_errors, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_limits_accepted, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_output_buffer_limit, fx_setup, fx_teardown),
        cmocka_unit_test(test_digest_vectors),
        cmocka_unit_test(test_digest_chunked),
        cmocka_unit_test(test_hmac_rfc4231),
        cmocka_unit_test(test_derive_key),
        cmocka_unit_test_setup_teardown(test_presign_reuses_buffers, fx_setup, fx_teardown),
    };

    return cmocka_run_group_tests_name("sigv4", tests, NULL, NULL);
}
