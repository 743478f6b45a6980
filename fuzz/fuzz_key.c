/*
 * Fuzz target: object keys. The first input byte picks options, the rest is
 * the key (or a URI-encoding input when it holds NUL bytes).
 *  - r2b_key_validate() against an independent statement of the rule
 *    (DESIGN.md: printable-ASCII safe set, no '.'/'..' or empty segment, no
 *    leading/trailing '/', 1..1024 bytes);
 *  - r2b_sigv4_uri_encode() decoded back to the input (only unreserved
 *    characters, '/' when kept, and uppercase %XX in the output);
 *  - r2b_utf8_valid() against an independent decoder;
 *  - r2b_s3_presign() for the key (path style and virtual-host style): the
 *    URL's path decodes back to the bucket and key exactly.
 */
#include "fuzz_common.h"

#include "r2bridge/pipeline.h"
#include "r2bridge/s3.h"
#include "r2bridge/sigv4.h"

static struct r2b_s3_client *path_client, *vhost_client;

static struct r2b_s3_client *client(int path_style)
{
    struct r2b_s3_options o;
    struct r2b_error err;
    struct r2b_s3_client *c;

    r2b_s3_options_init(&o);
    o.endpoint = "https://account.r2.cloudflarestorage.com";
    o.access_key = "AKIDFUZZ";
    o.secret_key = "fuzz-secret-key";
    o.path_style = path_style;
    c = r2b_s3_client_new(&o, &err);
    if (c == NULL) {
        fprintf(stderr, "client: %s\n", err.message);
        abort();
    }
    return c;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    path_client = client(1);
    vhost_client = client(0);
    return 0;
}

/* The rule, stated independently of pipeline.c. */
static int key_ok(const char *k, size_t n)
{
    if (n == 0 || n > 1024 || k[0] == '/' || k[n - 1] == '/')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = k[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.' || c == '/' || c == '~' || c == '+' || c == '=' ||
              c == ','))
            return 0;
    }
    for (size_t s = 0; s <= n;) { /* each segment */
        size_t e = s;

        while (e < n && k[e] != '/')
            e++;
        if (e == s || (e - s == 1 && k[s] == '.') || (e - s == 2 && k[s] == '.' && k[s + 1] == '.'))
            return 0;
        s = e + 1;
    }
    return 1;
}

/* An independent UTF-8 check: shortest form, no surrogates, at most U+10FFFF. */
static int utf8_ok(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned c = s[i], cp, len;

        if (c < 0x80) {
            i++;
            continue;
        }
        len = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
        if (len == 0 || i + len > n)
            return 0;
        cp = c & (0x7F >> len);
        for (unsigned j = 1; j < len; j++) {
            if ((s[i + j] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + j] & 0x3F);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += len;
    }
    return 1;
}

static void check_encode(const char *s, size_t n, int keep_slash)
{
    struct r2b_buf b;
    char *dec;
    long m;

    r2b_buf_init(&b, 3 * n + 16);
    FZ_CHECK(r2b_sigv4_uri_encode(&b, s, n, keep_slash) == R2B_OK);
    dec = malloc(b.len + 1);
    FZ_CHECK(dec != NULL);
    m = fz_uri_decode(b.ptr ? b.ptr : "", b.len, keep_slash, dec);
    FZ_CHECK(m >= 0 && (size_t)m == n && memcmp(dec, s, n) == 0);
    free(dec);
    r2b_buf_release(&b);
}

/* The presigned URL's path decodes back to /bucket/key (path style) or /key. */
static void check_presign(struct r2b_s3_client *c, int path_style, const char *key, size_t n,
                          int valid_utf8)
{
    struct r2b_buf url;
    struct r2b_error err;
    enum r2b_status st;
    const char *p, *q;
    char *dec, *want;
    long m;

    r2b_buf_init(&url, 64 * 1024);
    st = r2b_s3_presign(c, "GET", "media-bucket", key, 600, 1700000000, &url, &err);
    if (n == 0 || n > R2B_S3_MAX_KEY_BYTES || !valid_utf8) {
        FZ_CHECK(st != R2B_OK); /* S3 refuses what it cannot sign faithfully */
        r2b_buf_release(&url);
        return;
    }
    FZ_CHECK(st == R2B_OK);
    p = strstr(url.ptr, "://");
    FZ_CHECK(p != NULL);
    p = strchr(p + 3, '/');
    FZ_CHECK(p != NULL);
    q = strchr(p, '?');
    FZ_CHECK(q != NULL);
    dec = malloc((size_t)(q - p) + 1);
    want = malloc(n + 32);
    FZ_CHECK(dec && want);
    m = fz_uri_decode(p, (size_t)(q - p), 1, dec);
    FZ_CHECK(m >= 0);
    snprintf(want, n + 32, "%s%s", path_style ? "/media-bucket/" : "/", key);
    FZ_CHECK((size_t)m == strlen(want) && memcmp(dec, want, (size_t)m) == 0);
    FZ_CHECK(strstr(q, "X-Amz-Signature=") != NULL);
    free(dec);
    free(want);
    r2b_buf_release(&url);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct r2b_error err;
    size_t n;
    char *key;
    int ok, utf8;

    if (size < 1 || size > 4096)
        return 0;
    n = size - 1;
    key = fz_strndup(data + 1, n);
    /* encoding works on any bytes, NUL included */
    check_encode(key, n, data[0] & 1);
    utf8 = utf8_ok((const unsigned char *)key, n);
    FZ_CHECK(r2b_utf8_valid(key, n) == utf8);
    if (memchr(key, '\0', n) == NULL) {
        ok = r2b_key_validate(key, &err) == 0;
        FZ_CHECK(ok == key_ok(key, n));
        if (!ok) {
            FZ_CHECK(err.code == R2B_ERR_INVALID);
            FZ_CHECK(strchr(err.message, '\n') == NULL && strchr(err.message, '\r') == NULL);
            for (const char *p = err.message; *p; p++)
                FZ_CHECK((unsigned char)*p >= 32 && (unsigned char)*p != 127);
        }
        check_presign((data[0] & 2) ? path_client : vhost_client, (data[0] & 2) != 0, key, n, utf8);
    }
    free(key);
    return 0;
}
