/*
 * SigV4 for S3, in the stages of the specification: canonical request,
 * string to sign, signature. Allocation-free on the hot path: all strings are
 * built in buffers owned by the signer and reused, and the signing key is
 * derived once per UTC day and kept as a pre-keyed HMAC state.
 */
#include "sigv4_int.h" /* first: it sets OPENSSL_SUPPRESS_DEPRECATED */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>


#define ALGORITHM "AWS4-HMAC-SHA256"
#define SCRATCH_MAX (64 * 1024)
#define SIG_PARAM "&X-Amz-Signature="

struct qparam {
    size_t name_off, name_len, val_off, val_len;
};

struct hdr_ref {
    const char *name;
    const char *value;
    size_t order; /* position in the caller's list, to keep repeats in order */
};

struct r2b_sigv4_signer {
    char *access_key;
    char *secret;
    char *token;
    char *region;
    char *service;

    /* signing-key cache: valid for key_date (YYYYMMDD) */
    char key_date[9];
    int have_key;
    struct r2b_hmac_key key;
    struct r2b_buf scope; /* "YYYYMMDD/region/service/aws4_request" */

    struct r2b_buf canon;   /* canonical request */
    size_t epath_off, epath_len; /* the encoded path inside canon, reused for the URL */
    struct r2b_buf sts;     /* string to sign */
    struct r2b_buf qenc;    /* encoded query names and values */
    struct r2b_buf qout;    /* canonical query string */
    struct r2b_buf shdrs;   /* signed headers list */
    struct r2b_buf hblock;  /* canonical headers block + signed headers list */
    struct r2b_buf tmp;     /* X-Amz-Credential value, URI-encoded, cached with the key */
    struct qparam qp[R2B_SIGV4_MAX_PARAMS + 8];
    struct hdr_ref hr[R2B_SIGV4_MAX_HEADERS + 4];
};

/* RFC 3986 unreserved characters, which S3 never encodes. */
static const unsigned char unreserved[256] = {
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1,
    ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1,
    ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
    ['Y'] = 1, ['Z'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1,
    ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1,
    ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1,
    ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1, ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1,
    ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1, ['-'] = 1, ['.'] = 1,
    ['_'] = 1, ['~'] = 1,
};

/* Writes the encoding of s[0..n) at p (room for 3*n bytes) and returns the new end. */
static char *put_encoded(char *p, const char *s, size_t n, int keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (unreserved[c] || (c == '/' && keep_slash)) {
            *p++ = (char)c;
        } else {
            *p++ = '%';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 15];
        }
    }
    return p;
}

enum r2b_status r2b_sigv4_uri_encode(struct r2b_buf *out, const char *s, size_t n, int keep_slash)
{
    enum r2b_status st;
    char *p;

    if (n > SIZE_MAX / 3)
        return R2B_ERR_LIMIT;
    st = r2b_buf_reserve(out, n * 3);
    if (st == R2B_ERR_LIMIT) {
        /* The worst case is over the cap, but the exact encoding may fit. */
        size_t need = 0;

        for (size_t i = 0; i < n; i++)
            need += (unreserved[(unsigned char)s[i]] || (s[i] == '/' && keep_slash)) ? 1 : 3;
        st = r2b_buf_reserve(out, need);
    }
    if (st != R2B_OK)
        return st;
    p = put_encoded(out->ptr + out->len, s, n, keep_slash);
    out->len = (size_t)(p - out->ptr);
    *p = '\0';
    return R2B_OK;
}

/*
 * Appends n bytes at p and returns the new end. The callers below reserve the
 * whole string once and then write through a pointer: per-character
 * r2b_buf_addc() calls were a fifth of a presign's time.
 */
static char *put(char *p, const void *src, size_t n)
{
    memcpy(p, src, n);
    return p + n;
}

static char *dup_nonempty(const char *s)
{
    return (s && *s) ? r2b_strdup(s) : NULL;
}

struct r2b_sigv4_signer *r2b_sigv4_signer_new(const char *access_key, const char *secret_key,
                                              const char *session_token, const char *region,
                                              const char *service, struct r2b_error *err)
{
    struct r2b_sigv4_signer *s = NULL;

    if (access_key == NULL || *access_key == '\0' || secret_key == NULL || *secret_key == '\0') {
        r2b_error_set(err, R2B_ERR_CONFIG, "missing access key id or secret access key");
        return NULL;
    }
    if (region == NULL || *region == '\0' || service == NULL || *service == '\0') {
        r2b_error_set(err, R2B_ERR_CONFIG, "missing region or service for signing");
        return NULL;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        goto nomem;
    r2b_buf_init(&s->scope, 256);
    r2b_buf_init(&s->canon, SCRATCH_MAX);
    r2b_buf_init(&s->sts, SCRATCH_MAX);
    r2b_buf_init(&s->qenc, SCRATCH_MAX);
    r2b_buf_init(&s->qout, SCRATCH_MAX);
    r2b_buf_init(&s->shdrs, SCRATCH_MAX);
    r2b_buf_init(&s->hblock, SCRATCH_MAX);
    r2b_buf_init(&s->tmp, SCRATCH_MAX);
    s->access_key = r2b_strdup(access_key);
    s->secret = r2b_strdup(secret_key);
    s->token = dup_nonempty(session_token);
    s->region = r2b_strdup(region);
    s->service = r2b_strdup(service);
    if (!s->access_key || !s->secret || !s->region || !s->service ||
        (session_token && *session_token && !s->token))
        goto nomem;
    return s;
nomem:
    r2b_sigv4_signer_free(s);
    r2b_error_set(err, R2B_ERR_NOMEM, "out of memory creating signer");
    return NULL;
}

void r2b_sigv4_signer_free(struct r2b_sigv4_signer *s)
{
    if (s == NULL)
        return;
    if (s->secret)
        OPENSSL_cleanse(s->secret, strlen(s->secret));
    if (s->token)
        OPENSSL_cleanse(s->token, strlen(s->token));
    r2b_hmac_wipe(&s->key);
    free(s->access_key);
    free(s->secret);
    free(s->token);
    free(s->region);
    free(s->service);
    r2b_buf_release(&s->scope);
    r2b_buf_release(&s->canon);
    r2b_buf_release(&s->sts);
    r2b_buf_release(&s->qenc);
    r2b_buf_release(&s->qout);
    r2b_buf_release(&s->shdrs);
    r2b_buf_release(&s->hblock);
    r2b_buf_release(&s->tmp);
    free(s);
}

const char *r2b_sigv4_last_canonical_request(const struct r2b_sigv4_signer *s)
{
    return r2b_buf_str(&s->canon);
}

const char *r2b_sigv4_last_string_to_sign(const struct r2b_sigv4_signer *s)
{
    return r2b_buf_str(&s->sts);
}

/* The signing key depends on the UTC date only: derive it once per day. */
static enum r2b_status ensure_key(struct r2b_sigv4_signer *s, const char amz_date[17])
{
    unsigned char k[32];

    if (s->have_key && memcmp(s->key_date, amz_date, 8) == 0)
        return R2B_OK;
    s->have_key = 0; /* until key, scope and credential all match the new date */
    memcpy(s->key_date, amz_date, 8);
    s->key_date[8] = '\0';
    r2b_sigv4_derive_key(s->secret, s->key_date, s->region, s->service, k);
    r2b_hmac_prekey(&s->key, k, sizeof(k));
    OPENSSL_cleanse(k, sizeof(k));
    r2b_buf_reset(&s->scope);
    if (r2b_buf_addf(&s->scope, "%s/%s/%s/aws4_request", s->key_date, s->region, s->service) !=
        R2B_OK)
        return R2B_ERR_LIMIT;
    r2b_buf_reset(&s->tmp);
    if (r2b_sigv4_uri_encode(&s->tmp, s->access_key, strlen(s->access_key), 0) != R2B_OK ||
        r2b_sigv4_uri_encode(&s->tmp, "/", 1, 0) != R2B_OK ||
        r2b_sigv4_uri_encode(&s->tmp, s->scope.ptr, s->scope.len, 0) != R2B_OK)
        return R2B_ERR_LIMIT;
    s->have_key = 1;
    return R2B_OK;
}

static int is_space(char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r'); /* \t \n \v \f \r */
}

static int ascii_lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}

static int name_cmp(const char *a, const char *b)
{
    for (;; a++, b++) {
        int ca = ascii_lower((unsigned char)*a), cb = ascii_lower((unsigned char)*b);

        if (ca != cb || ca == 0)
            return ca - cb;
    }
}

/*
 * Writes a header value at p trimmed, with inner runs of whitespace collapsed
 * (room for strlen(v) bytes), and returns the new end.
 */
static char *put_trimmed(char *p, const char *v)
{
    int pending_space = 0, any = 0;

    for (; *v; v++) {
        if (is_space(*v)) {
            pending_space = any;
            continue;
        }
        if (pending_space)
            *p++ = ' ';
        pending_space = 0;
        any = 1;
        *p++ = *v;
    }
    return p;
}

static int qparam_cmp(const char *base, const struct qparam *a, const struct qparam *b)
{
    size_t n = a->name_len < b->name_len ? a->name_len : b->name_len;
    int c = memcmp(base + a->name_off, base + b->name_off, n);

    if (c != 0)
        return c;
    if (a->name_len != b->name_len)
        return a->name_len < b->name_len ? -1 : 1;
    n = a->val_len < b->val_len ? a->val_len : b->val_len;
    c = memcmp(base + a->val_off, base + b->val_off, n);
    if (c != 0)
        return c;
    return a->val_len == b->val_len ? 0 : (a->val_len < b->val_len ? -1 : 1);
}

/* Adds a parameter to s->qenc, URI-encoding it unless `encoded` says it already is. */
static enum r2b_status add_qparam(struct r2b_sigv4_signer *s, size_t *n, const char *name,
                                  size_t name_len, const char *value, int encoded)
{
    struct qparam *q = &s->qp[*n];

    q->name_off = s->qenc.len;
    if ((encoded ? r2b_buf_add(&s->qenc, name, name_len)
                 : r2b_sigv4_uri_encode(&s->qenc, name, name_len, 0)) != R2B_OK)
        return R2B_ERR_LIMIT;
    q->name_len = s->qenc.len - q->name_off;
    q->val_off = s->qenc.len;
    if (value && (encoded ? r2b_buf_adds(&s->qenc, value)
                          : r2b_sigv4_uri_encode(&s->qenc, value, strlen(value), 0)) != R2B_OK)
        return R2B_ERR_LIMIT;
    q->val_len = s->qenc.len - q->val_off;
    (*n)++;
    return R2B_OK;
}

/*
 * Builds s->qout, the canonical query string: the caller's parameters plus
 * `extra` (the X-Amz-* presign parameters), encoded, sorted by name then
 * value, joined with '&'. Bit i of `encoded_mask` says extra[i] is already
 * URI-encoded: the constant ones are, and encoding them again on every
 * presign cost more than the path.
 */
static enum r2b_status build_query(struct r2b_sigv4_signer *s, const struct r2b_sigv4_request *req,
                                   const struct r2b_sigv4_param *extra, size_t n_extra,
                                   unsigned encoded_mask)
{
    size_t n = 0;
    char *p;

    r2b_buf_reset(&s->qenc);
    r2b_buf_reset(&s->qout);
    for (size_t i = 0; i < req->n_params; i++) {
        const char *nm = req->params[i].name;

        if (nm == NULL || add_qparam(s, &n, nm, strlen(nm), req->params[i].value, 0) != R2B_OK)
            return R2B_ERR_INVALID;
    }
    for (size_t i = 0; i < n_extra; i++)
        if (add_qparam(s, &n, extra[i].name, strlen(extra[i].name), extra[i].value,
                       (encoded_mask >> i) & 1u) != R2B_OK)
            return R2B_ERR_LIMIT;
    /* insertion sort: n is small (bounded by R2B_SIGV4_MAX_PARAMS + 8) */
    for (size_t i = 1; i < n; i++) {
        struct qparam cur = s->qp[i];
        size_t j = i;

        while (j > 0 && qparam_cmp(s->qenc.ptr, &s->qp[j - 1], &cur) > 0) {
            s->qp[j] = s->qp[j - 1];
            j--;
        }
        s->qp[j] = cur;
    }
    if (r2b_buf_reserve(&s->qout, s->qenc.len + 2 * n) != R2B_OK)
        return R2B_ERR_LIMIT;
    p = s->qout.ptr;
    for (size_t i = 0; i < n; i++) {
        const struct qparam *q = &s->qp[i];

        if (i)
            *p++ = '&';
        p = put(p, s->qenc.ptr + q->name_off, q->name_len);
        *p++ = '=';
        p = put(p, s->qenc.ptr + q->val_off, q->val_len);
    }
    *p = '\0';
    s->qout.len = (size_t)(p - s->qout.ptr);
    return R2B_OK;
}

/*
 * RFC 9110: a method is a token, a Host header value carries no path, query,
 * fragment or userinfo, and a field value has no control characters but HTAB.
 * What the signer would sign differently from what goes on the wire (a CR/LF
 * folded into a space, a '/' moving part of the host into the path) is refused.
 */
static int bad_method_char(unsigned char c)
{
    return c <= ' ' || c >= 127;
}

static int bad_host_char(unsigned char c)
{
    return c <= ' ' || c == 127 || c == '/' || c == '?' || c == '#' || c == '@' || c == '\\';
}

static int bad_value_char(unsigned char c)
{
    return (c < ' ' && c != '\t') || c == 127;
}

static int any_char(const char *s, int (*bad)(unsigned char))
{
    for (; *s; s++)
        if (bad((unsigned char)*s))
            return 1;
    return 0;
}

static enum r2b_status check_request(const struct r2b_sigv4_request *req, size_t *path_len,
                                     struct r2b_error *err)
{
    if (req->method == NULL || *req->method == '\0' || req->host == NULL || *req->host == '\0' ||
        req->path == NULL)
        return r2b_error_set(err, R2B_ERR_INVALID, "request to sign lacks method, host or path");
    if (any_char(req->method, bad_method_char))
        return r2b_error_set(err, R2B_ERR_INVALID, "invalid method to sign");
    if (any_char(req->host, bad_host_char))
        return r2b_error_set(err, R2B_ERR_INVALID, "invalid host to sign");
    *path_len = req->path_len ? req->path_len : strlen(req->path);
    if (*path_len == 0 || req->path[0] != '/')
        return r2b_error_set(err, R2B_ERR_INVALID, "path to sign must start with '/'");
    if (*path_len > R2B_SIGV4_MAX_PATH_BYTES)
        return r2b_error_set(err, R2B_ERR_LIMIT, "path to sign is longer than %d bytes",
                             R2B_SIGV4_MAX_PATH_BYTES);
    if (memchr(req->path, '\0', *path_len) != NULL)
        return r2b_error_set(err, R2B_ERR_INVALID, "path to sign contains a NUL byte");
    if (req->n_params > R2B_SIGV4_MAX_PARAMS || req->n_headers > R2B_SIGV4_MAX_HEADERS)
        return r2b_error_set(err, R2B_ERR_LIMIT, "too many query parameters or headers to sign");
    for (size_t i = 0; i < req->n_params; i++)
        if (req->params[i].name == NULL)
            return r2b_error_set(err, R2B_ERR_INVALID, "query parameter to sign lacks a name");
    for (size_t i = 0; i < req->n_headers; i++) {
        const char *nm = req->headers[i].name;

        if (nm == NULL || *nm == '\0' || req->headers[i].value == NULL)
            return r2b_error_set(err, R2B_ERR_INVALID, "header to sign lacks a name or value");
        if (name_cmp(nm, "host") == 0 || name_cmp(nm, "authorization") == 0 ||
            name_cmp(nm, "x-amz-date") == 0 || name_cmp(nm, "x-amz-content-sha256") == 0 ||
            name_cmp(nm, "x-amz-security-token") == 0)
            return r2b_error_set(err, R2B_ERR_INVALID, "header '%s' is set by the signer", nm);
        for (const char *c = nm; *c; c++)
            if (*c <= ' ' || *c == ':' || *c >= 127)
                return r2b_error_set(err, R2B_ERR_INVALID, "invalid header name to sign");
        if (any_char(req->headers[i].value, bad_value_char))
            return r2b_error_set(err, R2B_ERR_INVALID,
                                 "header '%s' to sign has a control character in its value", nm);
    }
    return R2B_OK;
}

/*
 * Canonical headers and signed-header list. `fixed` are the headers the
 * signer itself adds (already lowercase); the caller's are merged in sorted
 * order, repeats joined with ','.
 */
static enum r2b_status build_headers(struct r2b_sigv4_signer *s, const struct r2b_sigv4_request *req,
                                     const struct r2b_sigv4_header *fixed, size_t n_fixed)
{
    size_t n = 0, need = 1;
    struct r2b_buf *c = &s->hblock;
    char *p, *q;

    for (size_t i = 0; i < n_fixed; i++, n++) {
        s->hr[n].name = fixed[i].name;
        s->hr[n].value = fixed[i].value;
        s->hr[n].order = n;
    }
    for (size_t i = 0; i < req->n_headers; i++, n++) {
        s->hr[n].name = req->headers[i].name;
        s->hr[n].value = req->headers[i].value;
        s->hr[n].order = n;
    }
    for (size_t i = 1; i < n; i++) { /* stable insertion sort by lowercase name */
        struct hdr_ref cur = s->hr[i];
        size_t j = i;

        while (j > 0 && name_cmp(s->hr[j - 1].name, cur.name) > 0) {
            s->hr[j] = s->hr[j - 1];
            j--;
        }
        s->hr[j] = cur;
    }
    /* block: "name:value\n" each, "\n", then the list "name;name": at most
     * 2 * name + value + 3 bytes per header, plus the blank line */
    for (size_t i = 0; i < n; i++)
        need += 2 * strlen(s->hr[i].name) + strlen(s->hr[i].value) + 3;
    r2b_buf_reset(&s->shdrs);
    r2b_buf_reset(c);
    if (r2b_buf_reserve(c, need) != R2B_OK || r2b_buf_reserve(&s->shdrs, need) != R2B_OK)
        return R2B_ERR_LIMIT;
    p = c->ptr;
    q = s->shdrs.ptr;
    for (size_t i = 0; i < n; i++) {
        int repeat = i > 0 && name_cmp(s->hr[i - 1].name, s->hr[i].name) == 0;

        if (repeat) {
            p[-1] = ','; /* replace the previous '\n' and append this value */
        } else {
            if (i > 0)
                *q++ = ';';
            for (const char *nm = s->hr[i].name; *nm; nm++) {
                char lc = (char)ascii_lower((unsigned char)*nm);

                *p++ = lc;
                *q++ = lc;
            }
            *p++ = ':';
        }
        p = put_trimmed(p, s->hr[i].value);
        *p++ = '\n';
    }
    *p++ = '\n';
    *q = '\0';
    s->shdrs.len = (size_t)(q - s->shdrs.ptr);
    p = put(p, s->shdrs.ptr, s->shdrs.len);
    *p = '\0';
    c->len = (size_t)(p - c->ptr);
    return R2B_OK;
}

/* canonical request -> string to sign -> hex signature */
static void finish_signature(struct r2b_sigv4_signer *s, const char amz_date[17], char sig_hex[65])
{
    unsigned char hash[32], sig[32];
    SHA256_CTX c;

    /* Not the one-shot SHA256(): in OpenSSL 3 it fetches an EVP_MD and allocates. */
    SHA256_Init(&c);
    SHA256_Update(&c, s->canon.ptr, s->canon.len);
    SHA256_Final(hash, &c);
    r2b_buf_reset(&s->sts);
    r2b_buf_reserve(&s->sts, sizeof(ALGORITHM) + 17 + s->scope.len + 66);
    r2b_buf_add(&s->sts, ALGORITHM "\n", sizeof(ALGORITHM));
    r2b_buf_add(&s->sts, amz_date, 16);
    r2b_buf_addc(&s->sts, '\n');
    r2b_buf_add(&s->sts, s->scope.ptr, s->scope.len);
    r2b_buf_addc(&s->sts, '\n');
    r2b_hex_lower(hash, sizeof(hash), sig_hex);
    r2b_buf_add(&s->sts, sig_hex, 64);
    r2b_hmac_final(&s->key, s->sts.ptr, s->sts.len, sig);
    r2b_hex_lower(sig, sizeof(sig), sig_hex);
}

/* "%ld" without printf, which dominated a presign's non-hash time; v >= 0. */
static void fmt_decimal(char out[24], long v)
{
    char tmp[24];
    size_t n = 0;

    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    out[n] = '\0';
}

/* METHOD \n path \n query \n headers-block \n payload */
static enum r2b_status assemble_canon(struct r2b_sigv4_signer *s,
                                      const struct r2b_sigv4_request *req, size_t path_len,
                                      const char *payload)
{
    struct r2b_buf *c = &s->canon;
    size_t method_len = strlen(req->method), payload_len = strlen(payload);
    char *p;

    /* path_len <= R2B_SIGV4_MAX_PATH_BYTES, the other parts are bounded buffers */
    r2b_buf_reset(c);
    if (r2b_buf_reserve(c, method_len + 3 * path_len + s->qout.len + s->hblock.len + payload_len +
                               4) != R2B_OK)
        return R2B_ERR_LIMIT;
    p = put(c->ptr, req->method, method_len);
    *p++ = '\n';
    s->epath_off = (size_t)(p - c->ptr);
    p = put_encoded(p, req->path, path_len, 1);
    s->epath_len = (size_t)(p - c->ptr) - s->epath_off;
    *p++ = '\n';
    p = put(p, s->qout.ptr, s->qout.len);
    *p++ = '\n';
    p = put(p, s->hblock.ptr, s->hblock.len);
    *p++ = '\n';
    p = put(p, payload, payload_len);
    *p = '\0';
    c->len = (size_t)(p - c->ptr);
    return R2B_OK;
}

static int valid_payload_hash(const char *h)
{
    if (strcmp(h, R2B_SIGV4_UNSIGNED_PAYLOAD) == 0)
        return 1;
    if (strlen(h) != 64)
        return 0;
    for (; *h; h++)
        if (!((*h >= '0' && *h <= '9') || (*h >= 'a' && *h <= 'f')))
            return 0;
    return 1;
}

enum r2b_status r2b_sigv4_sign_headers(struct r2b_sigv4_signer *s,
                                       const struct r2b_sigv4_request *req, int64_t now,
                                       struct r2b_buf *authorization, char amz_date[17],
                                       struct r2b_error *err)
{
    const char *payload = req->payload_hash ? req->payload_hash : R2B_SIGV4_UNSIGNED_PAYLOAD;
    struct r2b_sigv4_header fixed[4];
    size_t n_fixed = 0, path_len;
    char sig[65];
    enum r2b_status st;

    st = check_request(req, &path_len, err);
    if (st != R2B_OK)
        return st;
    if (!valid_payload_hash(payload))
        return r2b_error_set(err, R2B_ERR_INVALID, "payload hash must be 64 lowercase hex digits");
    if (now < 0 || now > R2B_TIME_MAX)
        return r2b_error_set(err, R2B_ERR_INVALID, "time to sign is outside 1970..9999");
    r2b_time_amz(now, amz_date);
    if (ensure_key(s, amz_date) != R2B_OK)
        return r2b_error_set(err, R2B_ERR_LIMIT, "credential scope too long");
    fixed[n_fixed++] = (struct r2b_sigv4_header){"host", req->host};
    fixed[n_fixed++] = (struct r2b_sigv4_header){"x-amz-content-sha256", payload};
    fixed[n_fixed++] = (struct r2b_sigv4_header){"x-amz-date", amz_date};
    if (s->token)
        fixed[n_fixed++] = (struct r2b_sigv4_header){"x-amz-security-token", s->token};
    if (build_query(s, req, NULL, 0, 0) != R2B_OK || build_headers(s, req, fixed, n_fixed) != R2B_OK ||
        assemble_canon(s, req, path_len, payload) != R2B_OK)
        return r2b_error_set(err, R2B_ERR_LIMIT, "request to sign is too large");
    finish_signature(s, amz_date, sig);
    r2b_buf_reset(authorization);
    if (r2b_buf_addf(authorization, ALGORITHM " Credential=%s/%s, SignedHeaders=%s, Signature=%s",
                     s->access_key, s->scope.ptr, s->shdrs.ptr, sig) != R2B_OK)
        return r2b_error_set(err, R2B_ERR_LIMIT, "authorization header too large");
    return R2B_OK;
}

enum r2b_status r2b_sigv4_presign(struct r2b_sigv4_signer *s, const struct r2b_sigv4_request *req,
                                  int64_t now, long expires_s, const char *scheme,
                                  struct r2b_buf *url, struct r2b_error *err)
{
    struct r2b_sigv4_param extra[6];
    struct r2b_sigv4_header fixed[1];
    size_t n_extra = 0, path_len, scheme_len, host_len;
    char amz_date[17], expires[24], sig[65], *p;
    enum r2b_status st;

    st = check_request(req, &path_len, err);
    if (st != R2B_OK)
        return st;
    if (expires_s < R2B_SIGV4_PRESIGN_MIN_S || expires_s > R2B_SIGV4_PRESIGN_MAX_S)
        return r2b_error_set(err, R2B_ERR_INVALID,
                             "expiry %ld s is outside the allowed range %ld..%ld s", expires_s,
                             R2B_SIGV4_PRESIGN_MIN_S, R2B_SIGV4_PRESIGN_MAX_S);
    if (scheme == NULL || (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0))
        return r2b_error_set(err, R2B_ERR_INVALID, "scheme must be http or https");
    if (now < 0 || now > R2B_TIME_MAX)
        return r2b_error_set(err, R2B_ERR_INVALID, "time to sign is outside 1970..9999");
    /* A second X-Amz-Date or X-Amz-Signature would make the URL ambiguous. */
    for (size_t i = 0; i < req->n_params; i++) {
        const char *nm = req->params[i].name;

        if (name_cmp(nm, "X-Amz-Algorithm") == 0 || name_cmp(nm, "X-Amz-Credential") == 0 ||
            name_cmp(nm, "X-Amz-Date") == 0 || name_cmp(nm, "X-Amz-Expires") == 0 ||
            name_cmp(nm, "X-Amz-SignedHeaders") == 0 ||
            name_cmp(nm, "X-Amz-Security-Token") == 0 || name_cmp(nm, "X-Amz-Signature") == 0)
            return r2b_error_set(err, R2B_ERR_INVALID, "query parameter '%s' is set by the signer",
                                 nm);
    }
    r2b_time_amz(now, amz_date);
    if (ensure_key(s, amz_date) != R2B_OK)
        return r2b_error_set(err, R2B_ERR_LIMIT, "credential scope too long");
    /* The header block comes first: it fixes X-Amz-SignedHeaders. */
    fixed[0] = (struct r2b_sigv4_header){"host", req->host};
    if (build_headers(s, req, fixed, 1) != R2B_OK)
        return r2b_error_set(err, R2B_ERR_LIMIT, "request to sign is too large");
    fmt_decimal(expires, expires_s);
    /* These four are unreserved characters only (the credential is cached encoded). */
    extra[n_extra++] = (struct r2b_sigv4_param){"X-Amz-Algorithm", ALGORITHM};
    extra[n_extra++] = (struct r2b_sigv4_param){"X-Amz-Credential", s->tmp.ptr};
    extra[n_extra++] = (struct r2b_sigv4_param){"X-Amz-Date", amz_date};
    extra[n_extra++] = (struct r2b_sigv4_param){"X-Amz-Expires", expires};
    if (s->token)
        extra[n_extra++] = (struct r2b_sigv4_param){"X-Amz-Security-Token", s->token};
    extra[n_extra++] = (struct r2b_sigv4_param){"X-Amz-SignedHeaders", s->shdrs.ptr};
    if (build_query(s, req, extra, n_extra, 0xfu) != R2B_OK)
        return r2b_error_set(err, R2B_ERR_LIMIT, "query to sign is too large");
    if (assemble_canon(s, req, path_len, R2B_SIGV4_UNSIGNED_PAYLOAD) != R2B_OK)
        return r2b_error_set(err, R2B_ERR_LIMIT, "request to sign is too large");
    finish_signature(s, amz_date, sig);
    scheme_len = strlen(scheme);
    host_len = strlen(req->host);
    r2b_buf_reset(url);
    if (r2b_buf_reserve(url, scheme_len + 3 + host_len + s->epath_len + 1 + s->qout.len +
                                 sizeof(SIG_PARAM) - 1 + 64) != R2B_OK)
        return r2b_error_set(err, R2B_ERR_LIMIT, "presigned url too large");
    p = put(url->ptr, scheme, scheme_len);
    p = put(p, "://", 3);
    p = put(p, req->host, host_len);
    p = put(p, s->canon.ptr + s->epath_off, s->epath_len);
    *p++ = '?';
    p = put(p, s->qout.ptr, s->qout.len);
    p = put(p, SIG_PARAM, sizeof(SIG_PARAM) - 1);
    p = put(p, sig, 64);
    *p = '\0';
    url->len = (size_t)(p - url->ptr);
    return R2B_OK;
}
