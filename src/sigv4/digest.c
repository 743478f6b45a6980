/* SHA-256, MD5 and HMAC-SHA256 over OpenSSL's low-level digests (see
 * sigv4_int.h for why not EVP). */
#include "sigv4_int.h" /* first: it sets OPENSSL_SUPPRESS_DEPRECATED */

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>


struct digest_state {
    SHA256_CTX sha;
    MD5_CTX md5;
    int use_sha, use_md5; /* r2b_digest_init_md5() / _sha256(): one of the two only */
};

_Static_assert(sizeof(struct digest_state) <= sizeof(((struct r2b_digest *)0)->state),
               "r2b_digest.state too small");

/*
 * SHA-256 through a SHA256_CTX on the stack. Not the one-shot SHA256(): in
 * OpenSSL 3 it fetches an EVP_MD and allocates, and on failure returns NULL
 * without writing `out`, which callers here could not tell from a digest.
 */
static void sha256_parts(const void *a, size_t na, const void *b, size_t nb, unsigned char out[32])
{
    SHA256_CTX c;

    SHA256_Init(&c);
    SHA256_Update(&c, a, na);
    SHA256_Update(&c, b, nb);
    SHA256_Final(out, &c);
    OPENSSL_cleanse(&c, sizeof(c));
}

void r2b_hmac_prekey(struct r2b_hmac_key *k, const void *key, size_t key_len)
{
    unsigned char block[SHA256_CBLOCK], pad[SHA256_CBLOCK];

    memset(block, 0, sizeof(block));
    if (key_len > sizeof(block)) {
        sha256_parts(key, key_len, "", 0, block); /* RFC 2104: long keys are hashed first */
    } else {
        memcpy(block, key, key_len);
    }
    for (size_t i = 0; i < sizeof(pad); i++)
        pad[i] = block[i] ^ 0x36;
    SHA256_Init(&k->inner);
    SHA256_Update(&k->inner, pad, sizeof(pad));
    for (size_t i = 0; i < sizeof(pad); i++)
        pad[i] = block[i] ^ 0x5c;
    SHA256_Init(&k->outer);
    SHA256_Update(&k->outer, pad, sizeof(pad));
    OPENSSL_cleanse(block, sizeof(block));
    OPENSSL_cleanse(pad, sizeof(pad));
}

void r2b_hmac_final(const struct r2b_hmac_key *k, const void *msg, size_t n, unsigned char out[32])
{
    SHA256_CTX c = k->inner;
    unsigned char ih[32];

    SHA256_Update(&c, msg, n);
    SHA256_Final(ih, &c);
    c = k->outer;
    SHA256_Update(&c, ih, sizeof(ih));
    SHA256_Final(out, &c);
    OPENSSL_cleanse(&c, sizeof(c));
}

void r2b_hmac_wipe(struct r2b_hmac_key *k)
{
    OPENSSL_cleanse(k, sizeof(*k));
}

static void hmac_once(const void *key, size_t key_len, const char *msg, unsigned char out[32])
{
    struct r2b_hmac_key k;

    r2b_hmac_prekey(&k, key, key_len);
    r2b_hmac_final(&k, msg, strlen(msg), out);
    r2b_hmac_wipe(&k);
}

void r2b_sigv4_derive_key(const char *secret, const char *date8, const char *region,
                          const char *service, unsigned char out[32])
{
    size_t n = strlen(secret);
    unsigned char ksecret[SHA256_CBLOCK], k[32];
    size_t ksecret_len;

    /*
     * kSecret = "AWS4" + secret; kSigning = HMAC chain over date/region/service.
     * kSecret is built on the stack, not the heap: an allocation failure here
     * used to sign with an all-zero key and report nothing. A kSecret longer
     * than the block would be hashed by the HMAC anyway (RFC 2104), so hash it
     * here, in two parts.
     */
    if (n <= sizeof(ksecret) - 4) {
        memcpy(ksecret, "AWS4", 4);
        memcpy(ksecret + 4, secret, n);
        ksecret_len = n + 4;
    } else {
        sha256_parts("AWS4", 4, secret, n, ksecret);
        ksecret_len = 32;
    }
    hmac_once(ksecret, ksecret_len, date8, k);
    OPENSSL_cleanse(ksecret, sizeof(ksecret));
    hmac_once(k, 32, region, k);
    hmac_once(k, 32, service, k);
    hmac_once(k, 32, "aws4_request", out);
    OPENSSL_cleanse(k, sizeof(k));
}

static void digest_start(struct r2b_digest *d, int use_sha, int use_md5)
{
    struct digest_state *s = (struct digest_state *)(void *)d->state;

    s->use_sha = use_sha;
    s->use_md5 = use_md5;
    if (use_sha)
        SHA256_Init(&s->sha);
    if (use_md5)
        MD5_Init(&s->md5);
    d->bytes = 0;
}

void r2b_digest_init(struct r2b_digest *d)
{
    digest_start(d, 1, 1);
}

void r2b_digest_init_md5(struct r2b_digest *d)
{
    digest_start(d, 0, 1);
}

void r2b_digest_init_sha256(struct r2b_digest *d)
{
    digest_start(d, 1, 0);
}

void r2b_digest_update(struct r2b_digest *d, const void *data, size_t n)
{
    struct digest_state *s = (struct digest_state *)(void *)d->state;

    if (s->use_sha)
        SHA256_Update(&s->sha, data, n);
    if (s->use_md5)
        MD5_Update(&s->md5, data, n);
    d->bytes += n;
}

void r2b_digest_final(struct r2b_digest *d, char sha256_hex[65], char md5_hex[33], char md5_b64[25])
{
    struct digest_state *s = (struct digest_state *)(void *)d->state;
    unsigned char sha[32], md5[16];

    if (s->use_sha) {
        SHA256_Final(sha, &s->sha);
        if (sha256_hex)
            r2b_hex_lower(sha, sizeof(sha), sha256_hex);
    } else if (sha256_hex) {
        sha256_hex[0] = '\0';
    }
    if (s->use_md5) {
        MD5_Final(md5, &s->md5);
        if (md5_hex)
            r2b_hex_lower(md5, sizeof(md5), md5_hex);
        if (md5_b64)
            r2b_base64_encode(md5, sizeof(md5), md5_b64);
    } else {
        if (md5_hex)
            md5_hex[0] = '\0';
        if (md5_b64)
            md5_b64[0] = '\0';
    }
}

void r2b_sha256_hex(const void *data, size_t n, char out[65])
{
    unsigned char sha[32];

    sha256_parts(data, n, "", 0, sha);
    r2b_hex_lower(sha, sizeof(sha), out);
}

enum r2b_status r2b_random_bytes(unsigned char *buf, size_t n, struct r2b_error *err)
{
    if (n > (size_t)INT32_MAX || RAND_bytes(buf, (int)n) != 1)
        return r2b_error_set(err, R2B_ERR_UNSUPPORTED, "cannot get random bytes");
    return R2B_OK;
}
