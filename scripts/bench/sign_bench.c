/*
 * bench_sign: the program behind scripts/bench/sign. Privacy-checked signing
 * (manifest lookup + privacy decision + presign) per second on the calling
 * thread, against a bare database point lookup over the same random keys.
 *
 *   bench_sign version
 *       the generator's version: scripts/bench/sign names cached manifests
 *       after it, so a change to gen_record() must bump GEN_VERSION
 *   bench_sign build  DB N [--put]
 *       creates the SQLite manifest DB with N generated records: the schema
 *       from r2b_manifest_open(), then one transaction of prepared INSERTs
 *       (or, with --put, one r2b_manifest_put() per record, to compare).
 *       Written to DB.tmp and renamed, so an existing DB is always complete.
 *   bench_sign schema URL
 *       opens the manifest at URL once (creates and migrates its schema)
 *   bench_sign dump   N objects|audience
 *       the same N records as PostgreSQL COPY text, for psql's \copy
 *       (objects: the columns of GET_COLUMNS, in that order)
 *   bench_sign bench  URL N SECONDS ROUNDS [--extra] [--only OP]
 *       checks that the manifest at URL holds the generated records and that
 *       r2b_pipeline_sign() decides as the privacy table says, then times, in
 *       each of ROUNDS rounds of about SECONDS seconds per measurement, over
 *       the same random keys:
 *         bare   the backend's own prepared point lookup by primary key
 *                (sqlite3 or libpq linked directly: the baseline only)
 *         rtt    PostgreSQL only: a prepared "SELECT 1" (one round trip)
 *         get    r2b_manifest_get()
 *         sign   r2b_pipeline_sign() with a mix of viewers
 *       and prints key=value lines: medians, outcome counts, allocations.
 *       --extra adds r2b_manifest_in_audience() alone (the second lookup a
 *       sign makes for a logged-in viewer of private media) and SQLite
 *       variants of the bare lookup (the decision's columns only; a 256 MiB
 *       page cache; memory-mapped I/O) to show where a sign's time goes.
 *       --only OP times that measurement alone, for a profiler:
 *       perf record -g bench_sign bench ... --only sign
 *
 * The records are a pure function of their index (splitmix64), so the bench
 * regenerates any record's key, visibility, owner and audience without
 * reading them back, and a cached manifest is checked against the generator
 * before it is timed. Credentials are made up; nothing goes over the network
 * except to the PostgreSQL server, if one is given.
 */
#include <assert.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>
#if R2B_BENCH_HAVE_PQ
#include <libpq-fe.h>
#endif

#include "r2bridge/config.h"
#include "r2bridge/manifest.h"
#include "r2bridge/pipeline.h"
#include "r2bridge/privacy.h"

#define MAX_RECORDS 100000000ULL
#define MAX_ROUNDS 99
#define MAX_SECONDS 3600
#define MAX_AUDIENCE 8     /* owner + up to 6 others */
#define N_DRAWS (1u << 20) /* random (key, viewer) pairs, reused across measurements */
#define KEY_SLOT_BYTES 128 /* room per drawn key in the arena */
#define VERIFY_DRAWS 20000
#define WARMUP_S 1.0
#define CLOCK_EVERY 256 /* ops between clock reads */
#define SLICE_S 0.25    /* measurements take turns in slices this long */

#define GEN_VERSION 1 /* bump when gen_record() changes: cached manifests are named after it */
#define SEED 0x72326272696467ULL
#define DRAW_SEED 0x5349474e42454e43ULL
#define T0_MS 1700000000000LL      /* snowflake ids: ms since the epoch << 16 */
#define ACCOUNT0 109000000000000LL /* first account id */
#define N_ACCOUNTS 100000          /* owners and audience members */
#define STRANGER0 (ACCOUNT0 + N_ACCOUNTS)

#define PUBLIC_BUCKET "mastodon-media"
#define PRIVATE_BUCKET "mastodon-media-private"
#define ALIAS_HOST "media.example.social"
#define ENDPOINT "http://127.0.0.1:9"

/*
 * The bare lookup's connection must read like the manifest's own: the same
 * open flags, and the same pragmas that change a read. manifest_sqlite.c sets
 * none today (journal_mode, synchronous and foreign_keys change writes only);
 * if it ever sets mmap_size or cache_size, set them here too, or the ratio
 * compares a tuned lookup with an untuned one.
 */
#define MANIFEST_READ_PRAGMAS NULL

/* The manifest's own record query (src/manifest/manifest_sqlite.c, S_GET). */
#define GET_COLUMNS                                                                                \
    "key, bucket, style, visibility, owner_id, status_id, content_type, size, sha256, etag,"       \
    " state, created_at, updated_at, source_path"

#include "alloc_count.h"

/* --- the generated manifest ------------------------------------------------------------ */

struct gen {
    struct r2b_manifest_record rec;
    int64_t aud[MAX_AUDIENCE]; /* aud[0] is the owner, as r2b_pipeline_upload() stores it */
    size_t n_aud;
};

static uint64_t mix64(uint64_t x) /* splitmix64's finalizer */
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static uint64_t rnd(uint64_t a, unsigned k)
{
    return mix64(SEED ^ (a * 64 + k));
}

static void hex64(uint64_t v, char out[17])
{
    static const char digits[] = "0123456789abcdef";

    for (int i = 15; i >= 0; i--, v >>= 4)
        out[i] = digits[v & 15];
    out[16] = '\0';
}

/*
 * Record i: attachment i / 2, style "original" (even i) or "small" (odd).
 * Both styles share an attachment's visibility, owner and audience, like
 * Mastodon's. About 45% public, 15% unlisted, 28% private, 12% direct;
 * 0.5% pending and 0.5% deleted; 30% carry a migration source path.
 */
static void gen_record(uint64_t i, struct gen *g)
{
    static const char *const ext[4][2] = {
        {"jpg", "jpg"}, {"png", "png"}, {"webp", "webp"}, {"mp4", "png"}};
    static const char *const ctype[4][2] = {{"image/jpeg", "image/jpeg"},
                                            {"image/png", "image/png"},
                                            {"image/webp", "image/webp"},
                                            {"video/mp4", "image/png"}};
    struct r2b_manifest_record *r = &g->rec;
    uint64_t a = i / 2, small = i % 2, t = rnd(a, 3) % 100, v = rnd(a, 4) % 100,
             s = rnd(a, 5) % 1000;
    int64_t id = (int64_t)((((uint64_t)T0_MS + a * 37) << 16) | (rnd(a, 1) & 0xffff));
    int type = t < 55 ? 0 : t < 70 ? 1 : t < 82 ? 2 : 3;
    char part[32], hex[17], h[4][17];

    /* only the strings are written: no 2 KiB memset per record */
    r2b_id_partition(id, part);
    hex64(rnd(a, 2), hex);
    snprintf(r->key, sizeof(r->key), "media_attachments/files/%s/%s/%s.%s", part,
             small ? "small" : "original", hex, ext[type][small]);
    r->visibility = v < 45   ? R2B_VIS_PUBLIC
                    : v < 60 ? R2B_VIS_UNLISTED
                    : v < 88 ? R2B_VIS_PRIVATE
                             : R2B_VIS_DIRECT;
    r2b_strlcpy(r->bucket, r->visibility <= R2B_VIS_UNLISTED ? PUBLIC_BUCKET : PRIVATE_BUCKET,
                sizeof(r->bucket));
    r2b_strlcpy(r->style, small ? "small" : "original", sizeof(r->style));
    r->owner_id = ACCOUNT0 + (int64_t)(rnd(a, 6) % N_ACCOUNTS);
    r->status_id = id + (int64_t)(rnd(a, 7) & 0xffff);
    r2b_strlcpy(r->content_type, ctype[type][small], sizeof(r->content_type));
    r->size_bytes = small ? 20000 + rnd(i, 8) % 60000 : 50000 + rnd(i, 8) % 4000000;
    for (unsigned k = 0; k < 4; k++)
        hex64(mix64(SEED ^ (i * 8 + k) ^ 0xabcdef), h[k]);
    snprintf(r->sha256, sizeof(r->sha256), "%.16s%.16s%.16s%.16s", h[0], h[1], h[2], h[3]);
    snprintf(r->etag, sizeof(r->etag), "\"%.16s%.16s\"", h[2], h[0]);
    r->state = s < 5 ? R2B_STATE_PENDING : s < 10 ? R2B_STATE_DELETED : R2B_STATE_STORED;
    r->created_at = (T0_MS + (int64_t)a * 37) / 1000;
    r->updated_at = r->created_at + (int64_t)(rnd(a, 9) % 60);
    if (rnd(a, 10) % 100 < 30)
        snprintf(r->source_path, sizeof(r->source_path), "/home/mastodon/live/public/system/%.900s",
                 r->key);
    else
        r->source_path[0] = '\0';

    g->aud[0] = r->owner_id;
    g->n_aud = 1;
    if (r->visibility >= R2B_VIS_PRIVATE) {
        /* followers-only: 2..6 others; direct: the 1..3 mentioned accounts */
        size_t want = r->visibility == R2B_VIS_PRIVATE ? 2 + rnd(a, 11) % 5 : 1 + rnd(a, 11) % 3;

        for (unsigned k = 0; g->n_aud < want + 1 && k < 32; k++) {
            int64_t acc = ACCOUNT0 + (int64_t)(rnd(a, 12 + k) % N_ACCOUNTS);
            size_t j = 0;

            while (j < g->n_aud && g->aud[j] != acc)
                j++;
            if (j == g->n_aud)
                g->aud[g->n_aud++] = acc;
        }
    }
}

static int in_aud(const struct gen *g, int64_t acc)
{
    for (size_t j = 0; j < g->n_aud; j++)
        if (g->aud[j] == acc)
            return 1;
    return 0;
}

/* --- build ---------------------------------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int sql_exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;

    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "bench_sign: %s: %s\n", sql, msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

static void remove_db(const char *path)
{
    char p[4200];

    unlink(path);
    snprintf(p, sizeof(p), "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", path);
    unlink(p);
}

/* One transaction of prepared INSERTs, keys in sorted order (ids ascend). */
static int bulk_insert(const char *path, uint64_t n)
{
    static struct gen g;
    sqlite3 *db = NULL;
    sqlite3_stmt *obj = NULL, *aud = NULL;
    int rc = -1;

    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        fprintf(stderr, "bench_sign: cannot open '%s': %s\n", path, sqlite3_errmsg(db));
        goto cleanup;
    }
    /* a scratch file until the rename: no journal, no fsync, a large cache */
    if (sql_exec(db, "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;"
                     " PRAGMA cache_size = -1048576; BEGIN") != 0)
        goto cleanup;
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO r2b_objects (" GET_COLUMNS ") VALUES"
                           " (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                           -1, &obj, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "INSERT INTO r2b_audience (key, account_id) VALUES (?1, ?2)", -1,
                           &aud, NULL) != SQLITE_OK) {
        fprintf(stderr, "bench_sign: prepare: %s\n", sqlite3_errmsg(db));
        goto cleanup;
    }
    for (uint64_t i = 0; i < n; i++) {
        const struct r2b_manifest_record *r = &g.rec;

        gen_record(i, &g);
        sqlite3_bind_text(obj, 1, r->key, -1, SQLITE_STATIC);
        sqlite3_bind_text(obj, 2, r->bucket, -1, SQLITE_STATIC);
        sqlite3_bind_text(obj, 3, r->style, -1, SQLITE_STATIC);
        sqlite3_bind_text(obj, 4, r2b_visibility_name(r->visibility), -1, SQLITE_STATIC);
        sqlite3_bind_int64(obj, 5, r->owner_id);
        sqlite3_bind_int64(obj, 6, r->status_id);
        sqlite3_bind_text(obj, 7, r->content_type, -1, SQLITE_STATIC);
        sqlite3_bind_int64(obj, 8, (sqlite3_int64)r->size_bytes);
        sqlite3_bind_text(obj, 9, r->sha256, -1, SQLITE_STATIC);
        sqlite3_bind_text(obj, 10, r->etag, -1, SQLITE_STATIC);
        sqlite3_bind_text(obj, 11, r2b_state_name(r->state), -1, SQLITE_STATIC);
        sqlite3_bind_int64(obj, 12, r->created_at);
        sqlite3_bind_int64(obj, 13, r->updated_at);
        sqlite3_bind_text(obj, 14, r->source_path, -1, SQLITE_STATIC);
        if (sqlite3_step(obj) != SQLITE_DONE)
            goto step_failed;
        sqlite3_reset(obj);
        for (size_t j = 0; j < g.n_aud; j++) {
            sqlite3_bind_text(aud, 1, r->key, -1, SQLITE_STATIC);
            sqlite3_bind_int64(aud, 2, g.aud[j]);
            if (sqlite3_step(aud) != SQLITE_DONE)
                goto step_failed;
            sqlite3_reset(aud);
        }
    }
    if (sql_exec(db, "COMMIT; PRAGMA journal_mode = WAL") != 0)
        goto cleanup;
    rc = 0;
    goto cleanup;
step_failed:
    fprintf(stderr, "bench_sign: insert: %s\n", sqlite3_errmsg(db));
cleanup:
    sqlite3_finalize(obj);
    sqlite3_finalize(aud);
    sqlite3_close(db);
    return rc;
}

/* The library's own write path: one transaction per record. */
static int put_all(const char *url, uint64_t n)
{
    static struct gen g;
    struct r2b_error err;
    struct r2b_manifest *m = r2b_manifest_open(url, &err);
    int rc = 0;

    if (m == NULL) {
        fprintf(stderr, "bench_sign: %s\n", err.message);
        return -1;
    }
    for (uint64_t i = 0; i < n && rc == 0; i++) {
        gen_record(i, &g);
        if (r2b_manifest_put(m, &g.rec, g.aud, g.n_aud, &err) != R2B_OK) {
            fprintf(stderr, "bench_sign: %s\n", err.message);
            rc = -1;
        }
    }
    r2b_manifest_close(m);
    return rc;
}

static int cmd_build(const char *path, uint64_t n, int use_put)
{
    char tmp[4096], url[4200];
    struct r2b_error err;
    struct r2b_manifest *m;
    double t0 = now_s(), t1;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
        fprintf(stderr, "bench_sign: path too long\n");
        return 1;
    }
    remove_db(tmp);
    snprintf(url, sizeof(url), "sqlite://%s", tmp);
    m = r2b_manifest_open(url, &err); /* the schema, exactly as the library creates it */
    if (m == NULL) {
        fprintf(stderr, "bench_sign: %s\n", err.message);
        return 1;
    }
    r2b_manifest_close(m);
    if ((use_put ? put_all(url, n) : bulk_insert(tmp, n)) != 0) {
        remove_db(tmp);
        return 1;
    }
    t1 = now_s();
    if (rename(tmp, path) != 0) {
        fprintf(stderr, "bench_sign: cannot rename '%s' to '%s'\n", tmp, path);
        remove_db(tmp);
        return 1;
    }
    printf("build_records=%llu\nbuild_seconds=%.2f\nbuild_rate=%.0f\nbuild_method=%s\n",
           (unsigned long long)n, t1 - t0, (double)n / (t1 - t0), use_put ? "put" : "bulk");
    return 0;
}

static int cmd_schema(const char *url)
{
    struct r2b_error err;
    struct r2b_manifest *m = r2b_manifest_open(url, &err);

    if (m == NULL) {
        fprintf(stderr, "bench_sign: %s\n", err.message);
        return 1;
    }
    r2b_manifest_close(m);
    return 0;
}

/* PostgreSQL COPY text: tab-separated; the generated strings need no escaping. */
static int cmd_dump(uint64_t n, const char *table)
{
    static struct gen g;
    static char out_buf[1 << 20];
    int objects = strcmp(table, "objects") == 0;

    if (!objects && strcmp(table, "audience") != 0) {
        fprintf(stderr, "bench_sign: dump objects or audience, not '%s'\n", table);
        return 2;
    }
    setvbuf(stdout, out_buf, _IOFBF, sizeof(out_buf));
    for (uint64_t i = 0; i < n; i++) {
        const struct r2b_manifest_record *r = &g.rec;

        gen_record(i, &g);
        if (objects)
            printf("%s\t%s\t%s\t%s\t%lld\t%lld\t%s\t%llu\t%s\t%s\t%s\t%lld\t%lld\t%s\n", r->key,
                   r->bucket, r->style, r2b_visibility_name(r->visibility), (long long)r->owner_id,
                   (long long)r->status_id, r->content_type, (unsigned long long)r->size_bytes,
                   r->sha256, r->etag, r2b_state_name(r->state), (long long)r->created_at,
                   (long long)r->updated_at, r->source_path);
        else
            for (size_t j = 0; j < g.n_aud; j++)
                printf("%s\t%lld\n", r->key, (long long)g.aud[j]);
    }
    return fflush(stdout) == 0 ? 0 : 1;
}

/* --- bench ---------------------------------------------------------------------------- */

enum viewer_kind { V_OWNER, V_AUDIENCE, V_STRANGER, V_ANONYMOUS, V__COUNT };
static const char *const viewer_names[V__COUNT] = {"owner", "audience", "stranger", "anonymous"};

struct draw {
    const char *key;
    int key_len;
    struct r2b_privacy_viewer viewer; /* in_audience stays 0: the manifest says */
    enum viewer_kind kind;
    /* what the privacy table says, from the generator */
    enum r2b_privacy_outcome outcome;
    enum r2b_deny_reason reason;
    long ttl_s;
};

enum op {
    OP_BARE,
    OP_RTT,
    OP_GET,
    OP_SIGN,
    OP_AUDIENCE,
    OP_NARROW,
    OP_BIGCACHE,
    OP_MMAP,
    OP__COUNT
};
static const char *const op_names[OP__COUNT] = {
    "bare", "rtt", "get", "sign", "audience", "bare_narrow", "bare_cache", "bare_mmap"};

struct ctx {
    struct draw *draws;
    char *arena;
    struct r2b_pipeline *p;
    struct r2b_manifest *m;
    int pg;
    sqlite3 *db[3]; /* bare, cache_size 256 MiB, mmap */
    sqlite3_stmt *st_bare, *st_narrow, *st_cache, *st_mmap;
#if R2B_BENCH_HAVE_PQ
    PGconn *conn;
#endif
    struct r2b_manifest_record rec;
    struct r2b_sign_result res;
    struct r2b_error err;
    unsigned long long outcomes[3], reasons[5], by_viewer[V__COUNT][3], found, lookups;
};

/* Draw j: a uniformly random record and a viewer (20% owner, 20% in its audience,
 * 30% a stranger, 30% anonymous), with the decision the privacy table gives. */
static void make_draw(uint64_t j, uint64_t n, const struct r2b_privacy_policy *pol, struct draw *d,
                      char **arena)
{
    static struct gen g;
    uint64_t r = mix64(DRAW_SEED ^ j), k = (r >> 40) % 100;
    const struct r2b_manifest_record *rec = &g.rec;
    int may;
    size_t len;

    gen_record(r % n, &g);
    len = strlen(rec->key);
    assert(len < KEY_SLOT_BYTES); /* generated keys are about 80 bytes */
    memcpy(*arena, rec->key, len + 1);
    d->key = *arena;
    d->key_len = (int)len;
    *arena += len + 1;
    memset(&d->viewer, 0, sizeof(d->viewer));
    d->kind = k < 20 ? V_OWNER : k < 40 ? V_AUDIENCE : k < 70 ? V_STRANGER : V_ANONYMOUS;
    switch (d->kind) {
    case V_OWNER:
        d->viewer.account_id = rec->owner_id;
        break;
    case V_AUDIENCE: /* public records list only the owner: then any logged-in account */
        d->viewer.account_id = g.n_aud > 1 ? g.aud[1 + (r >> 50) % (g.n_aud - 1)]
                                           : ACCOUNT0 + (int64_t)((r >> 20) % N_ACCOUNTS);
        break;
    case V_STRANGER: /* never an owner nor in an audience */
        d->viewer.account_id = STRANGER0 + (int64_t)((r >> 20) % N_ACCOUNTS);
        break;
    default:
        d->viewer.anonymous = 1;
        break;
    }
    /* the table in privacy.h, written out independently */
    may = !d->viewer.anonymous && in_aud(&g, d->viewer.account_id);
    d->ttl_s = 0;
    d->reason = R2B_DENY_NONE;
    if (rec->state == R2B_STATE_PENDING) {
        d->outcome = R2B_PRIVACY_DENY;
        d->reason = R2B_DENY_PENDING;
    } else if (rec->state == R2B_STATE_DELETED) {
        d->outcome = R2B_PRIVACY_DENY;
        d->reason = R2B_DENY_DELETED;
    } else if (rec->visibility <= R2B_VIS_UNLISTED) {
        d->outcome = R2B_PRIVACY_PUBLIC_URL;
    } else if (may) {
        d->outcome = R2B_PRIVACY_PRESIGNED;
        d->ttl_s = rec->visibility == R2B_VIS_PRIVATE ? pol->private_ttl_s : pol->direct_ttl_s;
    } else {
        d->outcome = R2B_PRIVACY_DENY;
        d->reason = R2B_DENY_NOT_IN_AUDIENCE;
    }
}

static int op_bare_stmt(struct ctx *c, sqlite3_stmt *st, const struct draw *d)
{
    int rc;

    sqlite3_bind_text(st, 1, d->key, d->key_len, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    c->lookups++;
    if (rc == SQLITE_ROW) {
        c->found++;
        return 0;
    }
    return rc == SQLITE_DONE ? 0 : -1;
}

#if R2B_BENCH_HAVE_PQ
static int op_pg(struct ctx *c, const char *name, const struct draw *d)
{
    const char *vals[1] = {d ? d->key : NULL};
    PGresult *res = PQexecPrepared(c->conn, name, d ? 1 : 0, d ? vals : NULL, NULL, NULL, 0);
    int ok = PQresultStatus(res) == PGRES_TUPLES_OK;

    c->lookups++;
    if (ok && PQntuples(res) == 1)
        c->found++;
    PQclear(res);
    return ok ? 0 : -1;
}
#endif

static int run_op(struct ctx *c, enum op op, const struct draw *d)
{
    enum r2b_status st;

    switch (op) {
    case OP_BARE:
#if R2B_BENCH_HAVE_PQ
        if (c->pg)
            return op_pg(c, "get", d);
#endif
        return op_bare_stmt(c, c->st_bare, d);
    case OP_RTT:
#if R2B_BENCH_HAVE_PQ
        return op_pg(c, "one", NULL);
#else
        return -1;
#endif
    case OP_NARROW:
        return op_bare_stmt(c, c->st_narrow, d);
    case OP_BIGCACHE:
        return op_bare_stmt(c, c->st_cache, d);
    case OP_MMAP:
        return op_bare_stmt(c, c->st_mmap, d);
    case OP_GET:
        st = r2b_manifest_get(c->m, d->key, &c->rec, &c->err);
        c->lookups++;
        c->found += st == R2B_OK;
        return st == R2B_OK || st == R2B_ERR_NOT_FOUND ? 0 : -1;
    case OP_AUDIENCE: { /* the second lookup a sign makes for some viewers */
        int yes = 0;

        st = r2b_manifest_in_audience(
            c->m, d->key, d->viewer.anonymous ? STRANGER0 : d->viewer.account_id, &yes, &c->err);
        c->lookups++;
        c->found += (unsigned)yes;
        return st == R2B_OK ? 0 : -1;
    }
    case OP_SIGN:
        if (r2b_pipeline_sign(c->p, d->key, &d->viewer, 0, &c->res, &c->err) != R2B_OK)
            return -1;
        c->outcomes[c->res.decision.outcome]++;
        c->reasons[c->res.decision.reason]++;
        c->by_viewer[d->kind][c->res.decision.outcome]++;
        return 0;
    default:
        return -1;
    }
}

/* r2b_pipeline_sign() against the privacy table, and the URL's shape. */
static int verify(struct ctx *c)
{
    char want[2048];

    for (size_t j = 0; j < VERIFY_DRAWS; j++) {
        const struct draw *d = &c->draws[j];
        const struct r2b_sign_result *r = &c->res;
        const char *bad = NULL;

        if (r2b_pipeline_sign(c->p, d->key, &d->viewer, 0, &c->res, &c->err) != R2B_OK) {
            fprintf(stderr, "bench_sign: sign '%s': %s\n", d->key, c->err.message);
            return -1;
        }
        if (r->decision.outcome != d->outcome || r->decision.reason != d->reason ||
            (d->outcome == R2B_PRIVACY_PRESIGNED && r->decision.ttl_s != d->ttl_s))
            bad = "decision";
        else if (d->outcome == R2B_PRIVACY_DENY && r->url[0] != '\0')
            bad = "url on a denial";
        else if (d->outcome == R2B_PRIVACY_PUBLIC_URL) {
            snprintf(want, sizeof(want), "https://%s/%s", ALIAS_HOST, d->key);
            if (strcmp(r->url, want) != 0)
                bad = "public url";
        } else if (d->outcome == R2B_PRIVACY_PRESIGNED) {
            char expires[64];

            snprintf(want, sizeof(want), "%s/%s/%s?X-Amz-Algorithm=AWS4-HMAC-SHA256&", ENDPOINT,
                     PRIVATE_BUCKET, d->key);
            snprintf(expires, sizeof(expires), "&X-Amz-Expires=%ld&", d->ttl_s);
            if (strncmp(r->url, want, strlen(want)) != 0 || strstr(r->url, expires) == NULL ||
                strstr(r->url, "&X-Amz-Signature=") == NULL)
                bad = "presigned url";
        }
        if (bad) {
            fprintf(stderr,
                    "bench_sign: WRONG %s for '%s', viewer %s: got %d/%s ttl %ld url '%.200s',"
                    " want %d/%s ttl %ld\n",
                    bad, d->key, viewer_names[d->kind], (int)r->decision.outcome,
                    r2b_deny_reason_name(r->decision.reason), r->decision.ttl_s, r->url,
                    (int)d->outcome, r2b_deny_reason_name(d->reason), d->ttl_s);
            return -1;
        }
    }
    return 0;
}

/* Reads the database file once so the page cache holds it (SQLite only). */
static void warm_file(const char *path)
{
    static char buf[1 << 20];
    char p[4200];

    for (int k = 0; k < 2; k++) {
        int fd;

        snprintf(p, sizeof(p), k ? "%s-wal" : "%s", path);
        if ((fd = open(p, O_RDONLY)) < 0)
            continue;
        while (read(fd, buf, sizeof(buf)) > 0)
            ;
        close(fd);
    }
}

static int open_bare(struct ctx *c, const char *path, int which, const char *pragmas,
                     const char *columns, sqlite3_stmt **st)
{
    char sql[512];
    sqlite3 **db = &c->db[which];

    if (*db == NULL) {
        /* as the manifest opens it: read-write, no mutex, WAL (persistent in the file) */
        if (sqlite3_open_v2(path, db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
                SQLITE_OK ||
            (pragmas && sql_exec(*db, pragmas) != 0)) {
            fprintf(stderr, "bench_sign: cannot open '%s': %s\n", path, sqlite3_errmsg(*db));
            return -1;
        }
    }
    snprintf(sql, sizeof(sql), "SELECT %s FROM r2b_objects WHERE key = ?1", columns);
    if (sqlite3_prepare_v3(*db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK) {
        fprintf(stderr, "bench_sign: prepare: %s\n", sqlite3_errmsg(*db));
        return -1;
    }
    return 0;
}

#if R2B_BENCH_HAVE_PQ
static int open_pg(struct ctx *c, const char *url)
{
    PGresult *r1, *r2;
    int ok;

    c->conn = PQconnectdb(url);
    if (PQstatus(c->conn) != CONNECTION_OK) {
        fprintf(stderr, "bench_sign: cannot connect: %s", PQerrorMessage(c->conn));
        return -1;
    }
    r1 = PQprepare(c->conn, "get", "SELECT " GET_COLUMNS " FROM r2b_objects WHERE key = $1", 1,
                   NULL);
    r2 = PQprepare(c->conn, "one", "SELECT 1", 0, NULL);
    ok = PQresultStatus(r1) == PGRES_COMMAND_OK && PQresultStatus(r2) == PGRES_COMMAND_OK;
    if (!ok)
        fprintf(stderr, "bench_sign: prepare: %s", PQerrorMessage(c->conn));
    PQclear(r1);
    PQclear(r2);
    return ok ? 0 : -1;
}
#endif

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* What one measurement did in one round. */
struct tally {
    unsigned long long done, allocs;
    double seconds;
};

/* Runs `op` over the draws from *cursor for about `seconds`, adding to *t. */
static int timed(struct ctx *c, enum op op, size_t *cursor, double seconds, struct tally *t)
{
    unsigned long long done = 0, a0 = n_allocs;
    size_t j = *cursor;
    double t0 = now_s(), t1;
    int failed = 0;

    do {
        for (int k = 0; k < CLOCK_EVERY; k++, j = j + 1 == N_DRAWS ? 0 : j + 1)
            failed |= run_op(c, op, &c->draws[j]);
        done += CLOCK_EVERY;
        t1 = now_s();
    } while (t1 - t0 < seconds && !failed);
    t->allocs += n_allocs - a0;
    t->done += done;
    t->seconds += t1 - t0;
    *cursor = j;
    if (failed) {
        fprintf(stderr, "bench_sign: %s failed in the timed loop: %s\n", op_names[op],
                c->err.message[0] ? c->err.message : "database error");
        return -1;
    }
    return 0;
}

static int cmd_bench(const char *url, uint64_t n, double seconds, size_t rounds, int extra,
                     const char *only)
{
    static struct ctx c;
    struct r2b_config cfg;
    struct r2b_privacy_policy pol;
    struct r2b_sign_counters sc;
    const char *path = NULL;
    enum op ops[OP__COUNT];
    size_t n_ops = 0;
    double rates[OP__COUNT][MAX_ROUNDS], ratios[MAX_ROUNDS], t_draws;
    unsigned long long allocs[OP__COUNT] = {0}, done[OP__COUNT] = {0};
    char *arena;
    int rc = 1;

    c.pg = strncmp(url, "sqlite://", 9) != 0;
    if (!c.pg)
        path = url + 9;
#if !R2B_BENCH_HAVE_PQ
    if (c.pg) {
        fprintf(stderr, "bench_sign: this bench_sign was built without libpq"
                        " (cmake -DR2B_POSTGRES=ON)\n");
        return 2;
    }
#endif
    if (c.pg && extra) {
        fprintf(stderr, "bench_sign: --extra is for SQLite manifests\n");
        return 2;
    }
    r2b_config_init(&cfg);
    cfg.endpoint = r2b_strdup(ENDPOINT);
    cfg.bucket = r2b_strdup(PUBLIC_BUCKET);
    cfg.private_bucket = r2b_strdup(PRIVATE_BUCKET);
    cfg.alias_host = r2b_strdup(ALIAS_HOST);
    cfg.region = r2b_strdup("auto");
    cfg.path_style = 1;
    cfg.manifest = r2b_strdup(url);
    /* made up, in R2's shape (32 and 64 hex digits); never printed */
    cfg.access_key = r2b_strdup("3c9f0e7b2a6d41e8b5f0c2d9a7e61b43");
    cfg.secret_key = r2b_strdup("9e1f4c7a2b8d3e6f0a5c9b2d7e4f1a8c3b6d9e2f5a8c1b4d7e0f3a6c9b2d5e8f");
    pol.private_ttl_s = cfg.private_ttl_s;
    pol.direct_ttl_s = cfg.direct_ttl_s;

    /* the draws: keys laid out in draw order, so reading them costs little */
    t_draws = now_s();
    c.draws = calloc(N_DRAWS, sizeof(*c.draws));
    c.arena = arena = malloc((size_t)N_DRAWS * KEY_SLOT_BYTES);
    if (c.draws == NULL || c.arena == NULL) {
        fprintf(stderr, "bench_sign: out of memory\n");
        goto cleanup;
    }
    for (size_t j = 0; j < N_DRAWS; j++)
        make_draw(j, n, &pol, &c.draws[j], &arena);
    t_draws = now_s() - t_draws;

    c.p = r2b_pipeline_new(&cfg, &c.err);
    if (c.p == NULL || r2b_pipeline_manifest(c.p, &c.m, &c.err) != R2B_OK) {
        fprintf(stderr, "bench_sign: %s\n", c.err.message);
        goto cleanup;
    }
    if (!c.pg) {
        warm_file(path);
        if (open_bare(&c, path, 0, MANIFEST_READ_PRAGMAS, GET_COLUMNS, &c.st_bare) != 0)
            goto cleanup;
        if (extra &&
            (open_bare(&c, path, 0, NULL, "bucket, visibility, owner_id, state", &c.st_narrow) !=
                 0 ||
             open_bare(&c, path, 1, "PRAGMA cache_size = -262144", GET_COLUMNS, &c.st_cache) != 0 ||
             open_bare(&c, path, 2, "PRAGMA mmap_size = 4294967296", GET_COLUMNS, &c.st_mmap) != 0))
            goto cleanup;
    }
#if R2B_BENCH_HAVE_PQ
    else if (open_pg(&c, url) != 0)
        goto cleanup;
#endif

    /* every drawn key exists, as the generator says; then the decisions */
    for (size_t j = 0; j < VERIFY_DRAWS; j++) {
        if (run_op(&c, OP_GET, &c.draws[j]) != 0 || c.found != j + 1 ||
            strcmp(c.rec.key, c.draws[j].key) != 0) {
            fprintf(stderr,
                    "bench_sign: the manifest at '%s' does not hold generated record '%s'"
                    " (built for another N or generator version?)\n",
                    c.pg ? "postgresql" : path, c.draws[j].key);
            goto cleanup;
        }
    }
    if (verify(&c) != 0)
        goto cleanup;

    ops[n_ops++] = OP_BARE;
    if (c.pg)
        ops[n_ops++] = OP_RTT;
    ops[n_ops++] = OP_GET;
    ops[n_ops++] = OP_SIGN;
    if (extra) {
        ops[n_ops++] = OP_AUDIENCE;
        ops[n_ops++] = OP_NARROW;
        ops[n_ops++] = OP_BIGCACHE;
        ops[n_ops++] = OP_MMAP;
    }
    if (only) {
        size_t i = 0;

        while (i < n_ops && strcmp(op_names[ops[i]], only) != 0)
            i++;
        if (i == n_ops) {
            fprintf(stderr, "bench_sign: no measurement '%s' here\n", only);
            goto cleanup;
        }
        ops[0] = ops[i];
        n_ops = 1;
    }
    /* warm-up: SQLite's page cache (or the server's) and the code paths */
    for (size_t i = 0; i < n_ops; i++) {
        struct tally t = {0, 0, 0};
        size_t cursor = 0;

        if (timed(&c, ops[i], &cursor, WARMUP_S, &t) != 0)
            goto cleanup;
    }
    memset(c.outcomes, 0, sizeof(c.outcomes));
    memset(c.reasons, 0, sizeof(c.reasons));
    memset(c.by_viewer, 0, sizeof(c.by_viewer));
    r2b_pipeline_sign_counters(c.p, &sc); /* before the timed rounds */

    /*
     * Interleaved in slices: within a round every measurement runs for
     * SLICE_S in turn until each has had `seconds`, each from the same
     * offset in the draws, so a change in the machine's load falls on all of
     * them alike and the ratios stay meaningful.
     */
    for (size_t r = 0; r < rounds; r++) {
        struct tally t[OP__COUNT];
        size_t cursor[OP__COUNT];
        size_t n_slices = (size_t)(seconds / SLICE_S + 0.5);

        memset(t, 0, sizeof(t));
        for (size_t i = 0; i < OP__COUNT; i++)
            cursor[i] = (size_t)(mix64(r + 1) % N_DRAWS);
        for (size_t sl = 0; sl < (n_slices ? n_slices : 1); sl++)
            for (size_t i = 0; i < n_ops; i++)
                if (timed(&c, ops[i], &cursor[ops[i]], seconds / (double)(n_slices ? n_slices : 1),
                          &t[ops[i]]) != 0)
                    goto cleanup;
        for (size_t i = 0; i < n_ops; i++) {
            enum op o = ops[i];

            rates[o][r] = (double)t[o].done / t[o].seconds;
            allocs[o] += t[o].allocs;
            done[o] += t[o].done;
            fprintf(stderr, "round %zu: %-11s %10.0f /s\n", r + 1, op_names[o], rates[o][r]);
        }
        if (!only)
            ratios[r] = rates[OP_SIGN][r] / rates[OP_BARE][r];
    }

    printf("backend=%s\nrecords=%llu\ndraws=%u\ndraws_seconds=%.2f\nverified=%d\n",
           r2b_manifest_backend(c.m), (unsigned long long)n, N_DRAWS, t_draws, VERIFY_DRAWS);
    printf("sqlite_version=%s\n", sqlite3_libversion());
#if R2B_BENCH_HAVE_PQ
    if (c.pg)
        printf("server_version=%d\n", PQserverVersion(c.conn));
#endif
    for (size_t i = 0; i < n_ops; i++) {
        enum op o = ops[i];

        printf("%s_rate=%.1f\n%s_ops=%llu\n", op_names[o], median(rates[o], rounds), op_names[o],
               done[o]);
        if (HAVE_ALLOC_COUNT)
            printf("%s_allocs_per_op=%.3f\n", op_names[o], (double)allocs[o] / (double)done[o]);
        else
            printf("%s_allocs_per_op=n/a\n", op_names[o]);
    }
    if (!only)
        printf("sign_bare_ratio=%.4f\n", median(ratios, rounds));
    if (done[OP_SIGN] > 0) {
        struct r2b_sign_counters sc2;
        unsigned long long total = c.outcomes[0] + c.outcomes[1] + c.outcomes[2];

        r2b_pipeline_sign_counters(c.p, &sc2);
        printf("sign_public=%llu\nsign_presigned=%llu\nsign_denied=%llu\n",
               c.outcomes[R2B_PRIVACY_PUBLIC_URL], c.outcomes[R2B_PRIVACY_PRESIGNED],
               c.outcomes[R2B_PRIVACY_DENY]);
        for (int k = 1; k < 5; k++)
            printf("deny_%s=%llu\n", r2b_deny_reason_name((enum r2b_deny_reason)k), c.reasons[k]);
        for (int v = 0; v < V__COUNT; v++)
            printf("viewer_%s=%llu/%llu/%llu\n", viewer_names[v], c.by_viewer[v][1],
                   c.by_viewer[v][2], c.by_viewer[v][0]);
        /* the pipeline's own counters must agree with what the bench saw */
        printf("counters_agree=%d\n",
               sc2.public_urls - sc.public_urls == c.outcomes[R2B_PRIVACY_PUBLIC_URL] &&
                   sc2.presigned - sc.presigned == c.outcomes[R2B_PRIVACY_PRESIGNED] &&
                   sc2.denied - sc.denied == c.outcomes[R2B_PRIVACY_DENY] && total > 0);
    }
    rc = 0;
cleanup:
    sqlite3_finalize(c.st_bare);
    sqlite3_finalize(c.st_narrow);
    sqlite3_finalize(c.st_cache);
    sqlite3_finalize(c.st_mmap);
    for (int k = 0; k < 3; k++)
        sqlite3_close(c.db[k]);
#if R2B_BENCH_HAVE_PQ
    if (c.conn)
        PQfinish(c.conn);
#endif
    r2b_pipeline_free(c.p);
    r2b_config_release(&cfg);
    free(c.draws);
    free(c.arena);
    return rc;
}

static int parse_num(const char *s, uint64_t max, uint64_t *out, const char *what)
{
    if (r2b_parse_u64(s, max, out) != 0) {
        fprintf(stderr, "bench_sign: invalid %s '%s'\n", what, s);
        return -1;
    }
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: bench_sign version\n"
                    "       bench_sign build  DB N [--put]\n"
                    "       bench_sign schema URL\n"
                    "       bench_sign dump   N objects|audience\n"
                    "       bench_sign bench  URL N SECONDS ROUNDS [--extra] [--only OP]\n");
    return 2;
}

int main(int argc, char **argv)
{
    uint64_t n, secs, rounds;

    if (argc == 2 && strcmp(argv[1], "version") == 0) {
        printf("%d\n", GEN_VERSION);
        return 0;
    }
    if (argc < 3)
        return usage();
    if (strcmp(argv[1], "schema") == 0 && argc == 3)
        return cmd_schema(argv[2]);
    if (strcmp(argv[1], "build") == 0 && (argc == 4 || argc == 5)) {
        if (argc == 5 && strcmp(argv[4], "--put") != 0)
            return usage();
        if (parse_num(argv[3], MAX_RECORDS, &n, "record count") != 0 || n < 2)
            return 2;
        return cmd_build(argv[2], n, argc == 5);
    }
    if (strcmp(argv[1], "dump") == 0 && argc == 4) {
        if (parse_num(argv[2], MAX_RECORDS, &n, "record count") != 0)
            return 2;
        return cmd_dump(n, argv[3]);
    }
    if (strcmp(argv[1], "bench") == 0 && argc >= 6) {
        const char *only = NULL;
        int extra = 0;

        for (int i = 6; i < argc; i++) {
            if (strcmp(argv[i], "--extra") == 0)
                extra = 1;
            else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc)
                only = argv[++i];
            else
                return usage();
        }
        if (parse_num(argv[3], MAX_RECORDS, &n, "record count") != 0 || n < 2 ||
            parse_num(argv[4], MAX_SECONDS, &secs, "seconds") != 0 || secs < 1 ||
            parse_num(argv[5], MAX_ROUNDS, &rounds, "rounds") != 0 || rounds < 1)
            return 2;
        return cmd_bench(argv[2], n, (double)secs, (size_t)rounds, extra, only);
    }
    return usage();
}
