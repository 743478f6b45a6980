/*
 * Fuzz target: the SigV4 canonicalizer and signer (src/sigv4). The input is
 * a request in lines (0x1f inside a line stands for '\n'):
 *   METHOD / HOST / PATH, then any of
 *   "q NAME=VALUE" or "q NAME" (valueless), "h NAME:VALUE",
 *   "p PAYLOAD-HASH", "t UNIX-TIME", "e EXPIRES", "k ACCESS SECRET",
 *   "r REGION", "o TOKEN", "s SCHEME"
 * Invariants, for header signing and presigning:
 *  - what the signer refuses is refused with INVALID or LIMIT, one line, and
 *    never without a reason; it refuses header values with control
 *    characters, hosts with '/', '?', '#', '@', '\' or spaces, methods that
 *    are not tokens, paths not starting with '/';
 *  - the canonical request has the documented shape: method, the path
 *    encoded once (decoding gives the path back), a query of sorted
 *    name=value pairs of encoded bytes, lowercase sorted header names,
 *    a blank line, the signed header list, the payload hash;
 *  - a reused signer (with its signing-key cache) signs exactly like a
 *    fresh one, for a second date too;
 *  - the secret never appears in a URL, header or error.
 */
#include "fuzz_common.h"

#include "r2bridge/sigv4.h"

#define MAXP 80
#define MAXH 80

struct req {
    struct r2b_sigv4_request r;
    struct r2b_sigv4_param params[MAXP];
    struct r2b_sigv4_header headers[MAXH];
    const char *ak, *sk, *region, *token, *scheme;
    int64_t now;
    long expires;
};

static const char default_secret[] = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

static long long parse_ll(const char *s)
{
    return strtoll(s, NULL, 10);
}

static void parse(struct fz_lines *l, struct req *q)
{
    size_t len;
    char *line;

    memset(q, 0, sizeof(*q));
    q->ak = "AKIDEXAMPLE";
    q->sk = default_secret;
    q->region = "auto";
    q->scheme = "https";
    q->now = 1700000000;
    q->expires = 900;
    q->r.method = fz_line(l, &len);
    q->r.host = fz_line(l, &len);
    q->r.path = fz_line(l, &len);
    if (q->r.path)
        q->r.path_len = len; /* a NUL inside is the signer's to refuse */
    q->r.params = q->params;
    q->r.headers = q->headers;
    while ((line = fz_line(l, &len)) != NULL) {
        char *arg = len >= 2 ? line + 2 : line + len, *sep;

        if (len < 2 || line[1] != ' ')
            continue;
        switch (line[0]) {
        case 'q':
            if (q->r.n_params < MAXP) {
                sep = strchr(arg, '=');
                if (sep)
                    *sep++ = '\0';
                q->params[q->r.n_params++] = (struct r2b_sigv4_param){arg, sep};
            }
            break;
        case 'h':
            if (q->r.n_headers < MAXH) {
                sep = strchr(arg, ':');
                if (sep)
                    *sep++ = '\0';
                q->headers[q->r.n_headers++] = (struct r2b_sigv4_header){arg, sep ? sep : ""};
            }
            break;
        case 'p':
            q->r.payload_hash = arg;
            break;
        case 't':
            q->now = (int64_t)parse_ll(arg);
            break;
        case 'e':
            q->expires = (long)parse_ll(arg);
            break;
        case 'k':
            sep = strchr(arg, ' ');
            if (sep) {
                *sep++ = '\0';
                q->ak = arg;
                q->sk = sep;
            }
            break;
        case 'r':
            q->region = arg;
            break;
        case 'o':
            q->token = arg;
            break;
        case 's':
            q->scheme = arg;
            break;
        default:
            break;
        }
    }
}

static int is_unreserved(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

/* What the signer promises to refuse (a subset of what it may refuse). */
static int must_refuse(const struct req *q)
{
    const struct r2b_sigv4_request *r = &q->r;

    if (!r->method || !*r->method || !r->host || !*r->host || !r->path || r->path[0] != '/')
        return 1;
    for (const char *c = r->method; *c; c++)
        if ((unsigned char)*c <= ' ' || (unsigned char)*c >= 127)
            return 1;
    for (const char *c = r->host; *c; c++)
        if ((unsigned char)*c <= ' ' || *c == 127 || strchr("/?#@\\", *c))
            return 1;
    if (memchr(r->path, '\0', r->path_len))
        return 1;
    for (size_t i = 0; i < r->n_headers; i++)
        for (const char *c = r->headers[i].value; *c; c++)
            if (((unsigned char)*c < ' ' && *c != '\t') || *c == 127)
                return 1;
    return 0;
}

/* How often the secret occurs in the raw input outside its own "k" line. */
static size_t secret_elsewhere;

/* The secret in signer output: a leak, unless the request itself carries it. */
static int secret_in(const char *text, const char *secret)
{
    return strlen(secret) >= 8 && secret_elsewhere == 0 && strstr(text, secret) != NULL;
}

/* The documented shape of a canonical request. */
static void check_canonical(const struct req *q, const char *canon, const char *payload)
{
    const struct r2b_sigv4_request *r = &q->r;
    size_t ml = strlen(r->method);
    const char *p = canon, *e;
    static char prev_name[65536 + 1], cur[65536 + 1];
    char *dec;
    long m;
    int n_lines = 0;

    prev_name[0] = '\0';

    FZ_CHECK(strncmp(p, r->method, ml) == 0 && p[ml] == '\n');
    p += ml + 1;
    e = strchr(p, '\n');
    FZ_CHECK(e != NULL);
    dec = malloc((size_t)(e - p) + 1);
    FZ_CHECK(dec != NULL);
    m = fz_uri_decode(p, (size_t)(e - p), 1, dec);
    FZ_CHECK(m >= 0 && (size_t)m == r->path_len && memcmp(dec, r->path, r->path_len) == 0);
    free(dec);
    /* query: name=value&... encoded bytes only, sorted */
    p = e + 1;
    e = strchr(p, '\n');
    FZ_CHECK(e != NULL);
    {
        const char *prev = NULL;
        size_t prev_len = 0;

        for (const char *a = p; a < e;) {
            const char *b = memchr(a, '&', (size_t)(e - a));
            const char *eq;

            if (b == NULL)
                b = e;
            eq = memchr(a, '=', (size_t)(b - a));
            FZ_CHECK(eq != NULL);
            for (const char *c = a; c < b; c++) {
                if (*c == '%') {
                    FZ_CHECK(c + 2 < b && fz_hexval(c[1]) >= 0 && fz_hexval(c[2]) >= 0);
                    c += 2;
                } else {
                    FZ_CHECK(c == eq || is_unreserved((unsigned char)*c));
                }
            }
            if (prev) {
                /* sorted by name, then value: compare name parts first */
                size_t pn = (size_t)((const char *)memchr(prev, '=', prev_len) - prev);
                size_t cn = (size_t)(eq - a);
                int c = memcmp(prev, a, pn < cn ? pn : cn);

                FZ_CHECK(c < 0 || (c == 0 && pn <= cn));
            }
            prev = a;
            prev_len = (size_t)(b - a);
            a = b + 1;
        }
    }
    /* headers: lowercase names, sorted, each "name:value" */
    p = e + 1;
    while (*p != '\n') {
        const char *colon = strchr(p, ':');
        size_t nl;

        e = strchr(p, '\n');
        FZ_CHECK(colon != NULL && e != NULL && colon < e);
        nl = (size_t)(colon - p);
        FZ_CHECK(nl > 0 && nl < sizeof(prev_name));
        for (const char *c = p; c < colon; c++)
            FZ_CHECK(!(*c >= 'A' && *c <= 'Z'));
        {
            memcpy(cur, p, nl);
            cur[nl] = '\0';
            FZ_CHECK(n_lines == 0 || strcmp(prev_name, cur) < 0);
            memcpy(prev_name, cur, nl + 1);
        }
        n_lines++;
        p = e + 1;
    }
    FZ_CHECK(n_lines >= 1);
    p++; /* the blank line */
    e = strchr(p, '\n');
    FZ_CHECK(e != NULL);
    FZ_CHECK(strcmp(e + 1, payload) == 0);
}

static struct r2b_sigv4_signer *signer(const struct req *q)
{
    struct r2b_error err;

    return r2b_sigv4_signer_new(q->ak, q->sk, q->token, q->region, "s3", &err);
}

static void check_error(const struct req *q, enum r2b_status st, const struct r2b_error *err)
{
    FZ_CHECK(st == R2B_ERR_INVALID || st == R2B_ERR_LIMIT);
    FZ_CHECK(err->code == st && err->message[0] != '\0');
    FZ_CHECK(strchr(err->message, '\n') == NULL);
    FZ_CHECK(!secret_in(err->message, q->sk));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz_lines l;
    struct req q;
    struct r2b_sigv4_signer *s = NULL, *fresh = NULL;
    struct r2b_buf auth, auth2, url, url2;
    struct r2b_error err;
    char date[17], date2[17];
    enum r2b_status st;

    if (size > 64 * 1024)
        return 0;
    fz_lines_init(&l, data, size);
    parse(&l, &q);
    r2b_buf_init(&auth, 64 * 1024);
    r2b_buf_init(&auth2, 64 * 1024);
    r2b_buf_init(&url, 256 * 1024);
    r2b_buf_init(&url2, 256 * 1024);
    secret_elsewhere = fz_count(data, size, q.sk);
    if (q.sk != default_secret && secret_elsewhere > 0)
        secret_elsewhere--; /* its own "k" line */
    s = signer(&q);
    if (s == NULL || q.r.method == NULL || q.r.host == NULL || q.r.path == NULL)
        goto done;

    /* header signing */
    st = r2b_sigv4_sign_headers(s, &q.r, q.now, &auth, date, &err);
    if (must_refuse(&q))
        FZ_CHECK(st != R2B_OK);
    if (st != R2B_OK) {
        check_error(&q, st, &err);
    } else {
        const char *payload = q.r.payload_hash ? q.r.payload_hash : R2B_SIGV4_UNSIGNED_PAYLOAD;

        check_canonical(&q, r2b_sigv4_last_canonical_request(s), payload);
        FZ_CHECK(strncmp(auth.ptr, "AWS4-HMAC-SHA256 Credential=", 28) == 0);
        FZ_CHECK(strlen(date) == 16 && date[8] == 'T' && date[15] == 'Z');
        FZ_CHECK(!secret_in(auth.ptr, q.sk));
        FZ_CHECK(!secret_in(r2b_sigv4_last_canonical_request(s), q.sk));
        FZ_CHECK(!secret_in(r2b_sigv4_last_string_to_sign(s), q.sk));
        /* the same request from a fresh signer: the cache changes nothing */
        fresh = signer(&q);
        FZ_CHECK(fresh != NULL);
        FZ_CHECK(r2b_sigv4_sign_headers(fresh, &q.r, q.now, &auth2, date2, &err) == R2B_OK);
        FZ_CHECK(strcmp(auth.ptr, auth2.ptr) == 0 && strcmp(date, date2) == 0);
        /* a day later on the reused signer == a fresh signer a day later */
        if (q.now < INT64_MAX - 86400 &&
            r2b_sigv4_sign_headers(s, &q.r, q.now + 86400, &auth, date, &err) == R2B_OK) {
            r2b_sigv4_signer_free(fresh);
            fresh = signer(&q);
            FZ_CHECK(r2b_sigv4_sign_headers(fresh, &q.r, q.now + 86400, &auth2, date2, &err) ==
                     R2B_OK);
            FZ_CHECK(strcmp(auth.ptr, auth2.ptr) == 0);
        }
        r2b_sigv4_signer_free(fresh);
        fresh = NULL;
    }

    /* presigning */
    st = r2b_sigv4_presign(s, &q.r, q.now, q.expires, q.scheme, &url, &err);
    if (must_refuse(&q) || q.expires < 1 || q.expires > 604800)
        FZ_CHECK(st != R2B_OK);
    if (st != R2B_OK) {
        check_error(&q, st, &err);
    } else {
        size_t sl = strlen(q.scheme), hl = strlen(q.r.host);
        const char *sig = NULL;

        /* the last one: a host may hold the same bytes (the signer allows any non-space) */
        for (const char *f = url.ptr; (f = strstr(f, "&X-Amz-Signature=")) != NULL; f++)
            sig = f;

        check_canonical(&q, r2b_sigv4_last_canonical_request(s), R2B_SIGV4_UNSIGNED_PAYLOAD);
        FZ_CHECK(strncmp(url.ptr, q.scheme, sl) == 0 && strncmp(url.ptr + sl, "://", 3) == 0);
        FZ_CHECK(strncmp(url.ptr + sl + 3, q.r.host, hl) == 0);
        FZ_CHECK(sig != NULL && strlen(sig + 17) == 64);
        FZ_CHECK(!secret_in(url.ptr, q.sk));
        fresh = signer(&q);
        FZ_CHECK(fresh != NULL);
        FZ_CHECK(r2b_sigv4_presign(fresh, &q.r, q.now, q.expires, q.scheme, &url2, &err) == R2B_OK);
        FZ_CHECK(strcmp(url.ptr, url2.ptr) == 0);
    }
done:
    r2b_sigv4_signer_free(s);
    r2b_sigv4_signer_free(fresh);
    r2b_buf_release(&auth);
    r2b_buf_release(&auth2);
    r2b_buf_release(&url);
    r2b_buf_release(&url2);
    fz_lines_release(&l);
    return 0;
}
