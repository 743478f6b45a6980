/* sigv4_int.h: exists so sigv4.c and digest.c share the allocation-free
 * SHA-256/HMAC primitives (and so the unit tests can reach them). */
#ifndef R2B_SIGV4_INT_H
#define R2B_SIGV4_INT_H

/*
 * OpenSSL 3 marks the low-level SHA256_* calls deprecated in favour of EVP.
 * We use them on purpose: a SHA256_CTX is a plain struct, so a pre-keyed HMAC
 * state can be snapshotted by assignment, while EVP_MD_CTX_copy_ex() allocates
 * a provider context on every copy. That is the difference between a presign
 * that allocates nothing and one that calls malloc several times.
 */
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <openssl/md5.h>
#include <openssl/sha.h>

#include "r2bridge/sigv4.h"

/* An HMAC-SHA256 key absorbed into the inner and outer hash states once. */
struct r2b_hmac_key {
    SHA256_CTX inner;
    SHA256_CTX outer;
};

void r2b_hmac_prekey(struct r2b_hmac_key *k, const void *key, size_t key_len);
void r2b_hmac_final(const struct r2b_hmac_key *k, const void *msg, size_t n,
                    unsigned char out[32]);
/* Wipes the key states. */
void r2b_hmac_wipe(struct r2b_hmac_key *k);

/* Derives the SigV4 signing key for a date ("YYYYMMDD"), region and service. */
void r2b_sigv4_derive_key(const char *secret, const char *date8, const char *region,
                          const char *service, unsigned char out[32]);

#endif
