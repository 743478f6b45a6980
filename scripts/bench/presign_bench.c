/*
 * bench_presign: the r2bridge side of scripts/bench/presign.
 *
 *   bench_presign urls  KEYS SCHEME HOST BUCKET TIME COUNT
 *       prints the presigned GET URL of the first COUNT keys at the fixed
 *       time TIME, one a line, for the byte-for-byte comparison with botocore
 *   bench_presign bench KEYS SCHEME HOST BUCKET SECONDS ROUNDS
 *       presigned GET URLs per second on the calling thread (pin it with
 *       taskset), median of ROUNDS rounds of about SECONDS seconds, and the
 *       number of heap allocations per presign after warm-up
 *
 * KEYS is a file of object keys, one a line. Credentials come from
 * R2B_BENCH_ACCESS_KEY and R2B_BENCH_SECRET_KEY; the secret is never printed.
 *
 * Each timed presign does what a server handing out URLs does: read the
 * clock, build "/<bucket>/<key>" and presign into a reused buffer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "r2bridge/sigv4.h"

#define EXPIRES_S 300L
#define MAX_KEY_BYTES 1024 /* S3 and R2 limit on object key length */
#define MAX_KEYS 1000000
#define MAX_ROUNDS 99
#define WARMUP_PRESIGNS 100000

#include "alloc_count.h"

struct keyset {
    char **keys;
    size_t *lens;
    size_t n;
};

/*
 * 1 if the counter sees allocations made inside shared libraries (glibc's
 * strdup() calls malloc through the interposable symbol, as libcrypto does).
 */
static int alloc_count_works(void)
{
    char *(*volatile dup)(const char *) = strdup; /* no builtin: call glibc's */
    unsigned long long before = n_allocs;
    char *p = dup("x");
    int ok = p != NULL && n_allocs > before;

    free(p);
    return HAVE_ALLOC_COUNT && ok;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int read_keys(const char *path, struct keyset *ks)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0, alloc = 0;
    ssize_t n;
    int rc = -1;

    if (f == NULL) {
        fprintf(stderr, "bench_presign: cannot open '%s'\n", path);
        return -1;
    }
    while ((n = getline(&line, &cap, f)) >= 0) {
        size_t len = (size_t)n;

        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            len--;
        if (len == 0)
            continue;
        if (len > MAX_KEY_BYTES || ks->n >= MAX_KEYS) {
            fprintf(stderr, "bench_presign: key too long or too many keys in '%s'\n", path);
            goto cleanup;
        }
        if (ks->n == alloc) {
            size_t na = alloc ? alloc * 2 : 1024;
            char **k = realloc(ks->keys, na * sizeof(*k));
            size_t *l;

            if (k == NULL)
                goto cleanup;
            ks->keys = k;
            l = realloc(ks->lens, na * sizeof(*l));
            if (l == NULL)
                goto cleanup;
            ks->lens = l;
            alloc = na;
        }
        ks->keys[ks->n] = malloc(len + 1);
        if (ks->keys[ks->n] == NULL)
            goto cleanup;
        memcpy(ks->keys[ks->n], line, len);
        ks->keys[ks->n][len] = '\0';
        ks->lens[ks->n++] = len;
    }
    if (ks->n == 0) {
        fprintf(stderr, "bench_presign: no keys in '%s'\n", path);
        goto cleanup;
    }
    rc = 0;
cleanup:
    free(line);
    fclose(f);
    return rc;
}

static void free_keys(struct keyset *ks)
{
    for (size_t i = 0; i < ks->n; i++)
        free(ks->keys[i]);
    free(ks->keys);
    free(ks->lens);
}

/* Presigns key `i` at `now`; `path` is a reused buffer holding "/<bucket>/". */
static enum r2b_status presign_one(struct r2b_sigv4_signer *s, const struct keyset *ks, size_t i,
                                   const char *scheme, const char *host, char *path,
                                   size_t prefix_len, int64_t now, struct r2b_buf *url,
                                   struct r2b_error *err)
{
    struct r2b_sigv4_request req;

    memcpy(path + prefix_len, ks->keys[i], ks->lens[i] + 1);
    memset(&req, 0, sizeof(req));
    req.method = "GET";
    req.host = host;
    req.path = path;
    req.path_len = prefix_len + ks->lens[i];
    return r2b_sigv4_presign(s, &req, now, EXPIRES_S, scheme, url, err);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

static int parse_num(const char *s, uint64_t max, uint64_t *out, const char *what)
{
    if (r2b_parse_u64(s, max, out) != 0) {
        fprintf(stderr, "bench_presign: invalid %s '%s'\n", what, s);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *ak = getenv("R2B_BENCH_ACCESS_KEY"), *sk = getenv("R2B_BENCH_SECRET_KEY");
    struct keyset ks = {NULL, NULL, 0};
    struct r2b_sigv4_signer *s = NULL;
    struct r2b_buf url;
    struct r2b_error err;
    char path[1 + 63 + 1 + MAX_KEY_BYTES + 1];
    const char *mode, *scheme, *host, *bucket;
    size_t prefix_len;
    uint64_t a, b;
    int rc = 1;

    r2b_buf_init(&url, 64 * 1024);
    if (argc != 8 || (strcmp(argv[1], "urls") != 0 && strcmp(argv[1], "bench") != 0)) {
        fprintf(stderr, "usage: bench_presign urls KEYS SCHEME HOST BUCKET TIME COUNT\n"
                        "       bench_presign bench KEYS SCHEME HOST BUCKET SECONDS ROUNDS\n");
        return 2;
    }
    if (ak == NULL || sk == NULL) {
        fprintf(stderr, "bench_presign: set R2B_BENCH_ACCESS_KEY and R2B_BENCH_SECRET_KEY\n");
        return 2;
    }
    mode = argv[1];
    scheme = argv[3];
    host = argv[4];
    bucket = argv[5];
    if (strlen(bucket) < 3 || strlen(bucket) > 63) {
        fprintf(stderr, "bench_presign: bucket name must be 3 to 63 bytes\n");
        return 2;
    }
    if (parse_num(argv[6], INT64_MAX, &a, mode[0] == 'u' ? "time" : "seconds") != 0 ||
        parse_num(argv[7], mode[0] == 'u' ? MAX_KEYS : MAX_ROUNDS, &b,
                  mode[0] == 'u' ? "count" : "rounds") != 0)
        return 2;
    if (read_keys(argv[2], &ks) != 0)
        goto cleanup;
    s = r2b_sigv4_signer_new(ak, sk, NULL, "auto", "s3", &err);
    if (s == NULL) {
        fprintf(stderr, "bench_presign: %s\n", err.message);
        goto cleanup;
    }
    prefix_len = (size_t)snprintf(path, sizeof(path), "/%s/", bucket);

    if (strcmp(mode, "urls") == 0) {
        for (size_t i = 0; i < ks.n && i < b; i++) {
            if (presign_one(s, &ks, i, scheme, host, path, prefix_len, (int64_t)a, &url, &err) !=
                R2B_OK) {
                fprintf(stderr, "bench_presign: %s\n", err.message);
                goto cleanup;
            }
            printf("%s\n", r2b_buf_str(&url));
        }
    } else {
        double seconds = (double)a, rates[MAX_ROUNDS];
        unsigned long long total = 0, allocs = 0;
        size_t k = 0;
        uint64_t rounds = b ? b : 1;

        if (seconds <= 0)
            seconds = 1;
        for (size_t i = 0; i < WARMUP_PRESIGNS; i++, k = (k + 1) % ks.n)
            if (presign_one(s, &ks, k, scheme, host, path, prefix_len, r2b_time_now(), &url,
                            &err) != R2B_OK) {
                fprintf(stderr, "bench_presign: %s\n", err.message);
                goto cleanup;
            }
        for (uint64_t r = 0; r < rounds; r++) {
            unsigned long long done = 0, allocs_before = n_allocs;
            double t0 = now_s(), t1;
            int failed = 0;

            do { /* read the clock once per 1024 presigns */
                for (int j = 0; j < 1024; j++, k = k + 1 == ks.n ? 0 : k + 1)
                    failed |= presign_one(s, &ks, k, scheme, host, path, prefix_len,
                                          r2b_time_now(), &url, &err) != R2B_OK;
                done += 1024;
                t1 = now_s();
            } while (t1 - t0 < seconds);
            allocs += n_allocs - allocs_before; /* the timed loop only, not the printing */
            if (failed) {
                fprintf(stderr, "bench_presign: presign failed in the timed loop\n");
                goto cleanup;
            }
            rates[r] = (double)done / (t1 - t0);
            total += done;
            fprintf(stderr, "r2bridge round %llu: %.1f presigns/s (%llu in %.3f s)\n",
                    (unsigned long long)r + 1, rates[r], done, t1 - t0);
        }
        qsort(rates, (size_t)rounds, sizeof(rates[0]), cmp_double);
        printf("r2bridge_rate=%.1f\n",
               rounds % 2 ? rates[rounds / 2] : (rates[rounds / 2 - 1] + rates[rounds / 2]) / 2);
        printf("r2bridge_presigns=%llu\n", total);
        if (alloc_count_works())
            printf("r2bridge_allocs=%llu\nr2bridge_allocs_per_presign=%.6f\n", allocs,
                   (double)allocs / (double)total);
        else
            printf("r2bridge_allocs=n/a\nr2bridge_allocs_per_presign=n/a\n");
        printf("r2bridge_url_bytes=%zu\n", url.len);
    }
    rc = 0;
cleanup:
    r2b_sigv4_signer_free(s);
    r2b_buf_release(&url);
    free_keys(&ks);
    return rc;
}
