/*
 * The manifest contract, run against every backend: a fresh SQLite file,
 * and each URL in R2B_TEST_MANIFEST_URLS (scripts/test puts the local
 * PostgreSQL server's there). Also: eight processes writing to one SQLite
 * manifest at once lose nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "r2bridge/manifest.h"

static char urls[8][1024];
static int n_urls;
static char run_id[32];

static struct r2b_manifest *open_url(const char *url)
{
    struct r2b_error err;
    struct r2b_manifest *m = r2b_manifest_open(url, &err);

    if (m == NULL)
        fail_msg("open %s: %s", url, err.message);
    return m;
}

static void make_record(struct r2b_manifest_record *r, const char *key, enum r2b_visibility v,
                        int64_t owner)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->key, sizeof(r->key), "%s/%s", run_id, key);
    r2b_strlcpy(r->bucket, v >= R2B_VIS_PRIVATE ? "private" : "public", sizeof(r->bucket));
    r2b_strlcpy(r->style, "original", sizeof(r->style));
    r->visibility = v;
    r->owner_id = owner;
    r2b_strlcpy(r->content_type, "image/jpeg", sizeof(r->content_type));
    r->size_bytes = 1234;
    r2b_strlcpy(r->sha256, "ab", sizeof(r->sha256));
    r->state = R2B_STATE_PENDING;
}

static void contract(const char *url)
{
    struct r2b_manifest *m = open_url(url);
    struct r2b_manifest_record r, got;
    struct r2b_error err;
    int64_t aud[] = {42, 7, 42, 1001}, add[] = {5, 7}, rm[] = {7, 999}, *ids = NULL;
    size_t n = 0;
    int yes = -1;
    char key[1100];

    /* put, then get exactly what was put, in state pending */
    make_record(&r, "a/photo.jpg", R2B_VIS_DIRECT, 1001);
    r.status_id = 77;
    r2b_strlcpy(r.source_path, "/srv/mastodon/public/system/x.jpg", sizeof(r.source_path));
    assert_int_equal(r2b_manifest_put(m, &r, aud, 4, &err), R2B_OK);
    assert_int_equal(r2b_manifest_get(m, r.key, &got, &err), R2B_OK);
    assert_string_equal(got.key, r.key);
    assert_string_equal(got.bucket, "private");
    assert_int_equal(got.visibility, R2B_VIS_DIRECT);
    assert_int_equal(got.owner_id, 1001);
    assert_int_equal(got.status_id, 77);
    assert_int_equal(got.state, R2B_STATE_PENDING);
    assert_string_equal(got.source_path, r.source_path);
    assert_true(got.created_at > 1700000000 && got.updated_at >= got.created_at);
    /* the audience: distinct, ascending */
    assert_int_equal(r2b_manifest_audience(m, r.key, &ids, &n, &err), R2B_OK);
    assert_int_equal(n, 3);
    assert_true(ids[0] == 7 && ids[1] == 42 && ids[2] == 1001);
    free(ids);
    assert_int_equal(r2b_manifest_in_audience(m, r.key, 42, &yes, &err), R2B_OK);
    assert_int_equal(yes, 1);
    assert_int_equal(r2b_manifest_in_audience(m, r.key, 43, &yes, &err), R2B_OK);
    assert_int_equal(yes, 0);
    /* grant and revoke are idempotent and take effect at once */
    assert_int_equal(r2b_manifest_audience_add(m, r.key, add, 2, &err), R2B_OK);
    assert_int_equal(r2b_manifest_audience_add(m, r.key, add, 2, &err), R2B_OK);
    assert_int_equal(r2b_manifest_in_audience(m, r.key, 5, &yes, &err), R2B_OK);
    assert_int_equal(yes, 1);
    assert_int_equal(r2b_manifest_audience_remove(m, r.key, rm, 2, &err), R2B_OK);
    assert_int_equal(r2b_manifest_audience_remove(m, r.key, rm, 2, &err), R2B_OK);
    assert_int_equal(r2b_manifest_in_audience(m, r.key, 7, &yes, &err), R2B_OK);
    assert_int_equal(yes, 0);
    assert_int_equal(r2b_manifest_audience(m, r.key, &ids, &n, &err), R2B_OK);
    assert_int_equal(n, 3); /* 5, 42, 1001 */
    free(ids);
    /* state: stored with the server's etag and size */
    assert_int_equal(r2b_manifest_set_state(m, r.key, R2B_STATE_STORED, "etag-1", 999, &err),
                     R2B_OK);
    assert_int_equal(r2b_manifest_get(m, r.key, &got, &err), R2B_OK);
    assert_int_equal(got.state, R2B_STATE_STORED);
    assert_string_equal(got.etag, "etag-1");
    assert_true(got.size_bytes == 999);
    /* visibility moves with the bucket */
    assert_int_equal(r2b_manifest_set_visibility(m, r.key, R2B_VIS_PUBLIC, "public", &err),
                     R2B_OK);
    assert_int_equal(r2b_manifest_get(m, r.key, &got, &err), R2B_OK);
    assert_int_equal(got.visibility, R2B_VIS_PUBLIC);
    assert_string_equal(got.bucket, "public");
    /* an upsert replaces the record and its audience but keeps created_at */
    {
        int64_t created = got.created_at, only[] = {9};

        make_record(&r, "a/photo.jpg", R2B_VIS_PRIVATE, 1001);
        assert_int_equal(r2b_manifest_put(m, &r, only, 1, &err), R2B_OK);
        assert_int_equal(r2b_manifest_get(m, r.key, &got, &err), R2B_OK);
        assert_int_equal(got.created_at, created);
        assert_int_equal(got.state, R2B_STATE_PENDING);
        assert_int_equal(got.status_id, 0);
        assert_int_equal(r2b_manifest_audience(m, r.key, &ids, &n, &err), R2B_OK);
        assert_int_equal(n, 1);
        assert_true(ids[0] == 9);
        free(ids);
    }
    /* exact keys: case and a trailing slash are different keys */
    snprintf(key, sizeof(key), "%s/A/photo.jpg", run_id);
    assert_int_equal(r2b_manifest_get(m, key, &got, &err), R2B_ERR_NOT_FOUND);
    snprintf(key, sizeof(key), "%s/a/photo.jpg/", run_id);
    assert_int_equal(r2b_manifest_get(m, key, &got, &err), R2B_ERR_NOT_FOUND);
    /* no record: every operation says so */
    snprintf(key, sizeof(key), "%s/missing", run_id);
    assert_int_equal(r2b_manifest_set_state(m, key, R2B_STATE_STORED, "e", 1, &err),
                     R2B_ERR_NOT_FOUND);
    assert_int_equal(r2b_manifest_set_visibility(m, key, R2B_VIS_PUBLIC, "b", &err),
                     R2B_ERR_NOT_FOUND);
    assert_int_equal(r2b_manifest_audience_add(m, key, add, 2, &err), R2B_ERR_NOT_FOUND);
    assert_int_equal(r2b_manifest_audience(m, key, &ids, &n, &err), R2B_ERR_NOT_FOUND);
    assert_int_equal(r2b_manifest_in_audience(m, key, 1, &yes, &err), R2B_OK);
    assert_int_equal(yes, 0);
    /* bad input is refused before the database */
    assert_int_equal(r2b_manifest_get(m, "", &got, &err), R2B_ERR_INVALID);
    assert_int_equal(r2b_manifest_get(m, "bad\xff", &got, &err), R2B_ERR_INVALID);
    r2b_manifest_close(m);
}

struct counted {
    int n, by_vis[4];
    char last[1100];
    int ordered;
};

static int count_cb(void *ud, const struct r2b_manifest_record *rec)
{
    struct counted *c = ud;

    if (c->n && strcmp(c->last, rec->key) >= 0)
        c->ordered = 0;
    r2b_strlcpy(c->last, rec->key, sizeof(c->last));
    c->n++;
    c->by_vis[rec->visibility]++;
    return 0;
}

static void listing(const char *url)
{
    struct r2b_manifest *m = open_url(url);
    struct r2b_manifest_record r;
    struct r2b_error err;
    struct counted c;
    char prefix[128], name[64];

    for (int i = 0; i < 40; i++) {
        snprintf(name, sizeof(name), "list/%s/%03d", i % 4 == 0 ? "p%_" : "pxx", i);
        make_record(&r, name, (enum r2b_visibility)(i % 4), i);
        r.state = i % 2 ? R2B_STATE_STORED : R2B_STATE_PENDING;
        assert_int_equal(r2b_manifest_put(m, &r, NULL, 0, &err), R2B_OK);
    }
    snprintf(prefix, sizeof(prefix), "%s/list/", run_id);
    memset(&c, 0, sizeof(c));
    c.ordered = 1;
    assert_int_equal(r2b_manifest_list(m, -1, -1, prefix, count_cb, &c, &err), R2B_OK);
    assert_int_equal(c.n, 40);
    assert_int_equal(c.ordered, 1);
    memset(&c, 0, sizeof(c));
    assert_int_equal(r2b_manifest_list(m, R2B_VIS_UNLISTED, R2B_STATE_STORED, prefix, count_cb,
                                       &c, &err),
                     R2B_OK);
    assert_int_equal(c.n, 10); /* i % 4 == 1 is always odd: stored */
    /* '%' and '_' in a prefix are literal characters, not patterns */
    snprintf(prefix, sizeof(prefix), "%s/list/p%%_", run_id);
    memset(&c, 0, sizeof(c));
    assert_int_equal(r2b_manifest_list(m, -1, -1, prefix, count_cb, &c, &err), R2B_OK);
    assert_int_equal(c.n, 10);
    assert_int_equal(c.by_vis[R2B_VIS_PUBLIC], 10);
    r2b_manifest_close(m);
}

static int all_dead(void *ud, const char *owner)
{
    (void)ud;
    return strcmp(owner, "hostA:1") == 0;
}

static void claims(const char *url)
{
    struct r2b_manifest *m = open_url(url);
    struct r2b_manifest_record r, got;
    struct r2b_error err;
    uint64_t released = 0;
    int c = -1;

    make_record(&r, "claims/x.jpg", R2B_VIS_PUBLIC, 1);
    /* A claims; B cannot while A's claim lives; A may claim again */
    assert_int_equal(r2b_manifest_claim(m, &r, NULL, 0, "hostA:1", 60, &c, &err), R2B_OK);
    assert_int_equal(c, 1);
    assert_int_equal(r2b_manifest_claim(m, &r, NULL, 0, "hostB:2", 60, &c, &err), R2B_OK);
    assert_int_equal(c, 0);
    assert_int_equal(r2b_manifest_claim(m, &r, NULL, 0, "hostA:1", 60, &c, &err), R2B_OK);
    assert_int_equal(c, 1);
    /* A's process is gone: releasing its claims lets B in at once */
    assert_int_equal(r2b_manifest_release_claims(m, "hostA:", all_dead, NULL, &released, &err),
                     R2B_OK);
    assert_true(released == 1);
    assert_int_equal(r2b_manifest_claim(m, &r, NULL, 0, "hostB:2", 60, &c, &err), R2B_OK);
    assert_int_equal(c, 1);
    /* stored as wanted: nobody may claim it, not even B */
    assert_int_equal(r2b_manifest_set_state(m, r.key, R2B_STATE_STORED, "e", r.size_bytes, &err),
                     R2B_OK);
    assert_int_equal(r2b_manifest_claim(m, &r, NULL, 0, "hostB:2", 60, &c, &err), R2B_OK);
    assert_int_equal(c, 0);
    assert_int_equal(r2b_manifest_get(m, r.key, &got, &err), R2B_OK);
    assert_int_equal(got.state, R2B_STATE_STORED);
    /* stored in another bucket than wanted (its visibility changed): claimable */
    r2b_strlcpy(r.bucket, "private", sizeof(r.bucket));
    r.visibility = R2B_VIS_PRIVATE;
    assert_int_equal(r2b_manifest_claim(m, &r, NULL, 0, "hostB:2", 60, &c, &err), R2B_OK);
    assert_int_equal(c, 1);
    assert_int_equal(r2b_manifest_get(m, r.key, &got, &err), R2B_OK);
    assert_int_equal(got.state, R2B_STATE_PENDING);
    /* an expired claim is free: C takes it after B's 1 s claim ran out */
    make_record(&r, "claims/y.jpg", R2B_VIS_PUBLIC, 1);
    assert_int_equal(r2b_manifest_claim(m, &r, NULL, 0, "hostB:2", 1, &c, &err), R2B_OK);
    assert_int_equal(c, 1);
    sleep(2);
    assert_int_equal(r2b_manifest_claim(m, &r, NULL, 0, "hostC:3", 60, &c, &err), R2B_OK);
    assert_int_equal(c, 1);
    r2b_manifest_close(m);
}

static void test_backends(void **state)
{
    (void)state;
    for (int i = 0; i < n_urls; i++) {
        fprintf(stderr, "# manifest backend: %.*s\n", 20, urls[i]);
        contract(urls[i]);
        listing(urls[i]);
        claims(urls[i]);
    }
}

static void test_concurrent_writers(void **state)
{
    struct r2b_manifest *m;
    struct r2b_error err;
    struct counted c;
    char prefix[128];
    const int procs = 8, each = 150;

    (void)state;
    for (int p = 0; p < procs; p++) {
        pid_t pid = fork();

        assert_true(pid >= 0);
        if (pid == 0) {
            struct r2b_manifest *cm = r2b_manifest_open(urls[0], &err);
            struct r2b_manifest_record r;
            char name[64];
            int64_t aud[] = {1, 2, 3};
            int bad = cm == NULL;

            for (int i = 0; i < each && !bad; i++) {
                snprintf(name, sizeof(name), "conc/%d/%04d", p, i);
                make_record(&r, name, R2B_VIS_PRIVATE, p);
                bad |= r2b_manifest_put(cm, &r, aud, 3, &err) != R2B_OK;
                bad |= r2b_manifest_set_state(cm, r.key, R2B_STATE_STORED, "e", 1, &err) != R2B_OK;
            }
            if (bad)
                fprintf(stderr, "writer %d: %s\n", p, err.message);
            r2b_manifest_close(cm);
            _exit(bad);
        }
    }
    for (int p = 0; p < procs; p++) {
        int status = 0;

        wait(&status);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    m = open_url(urls[0]);
    snprintf(prefix, sizeof(prefix), "%s/conc/", run_id);
    memset(&c, 0, sizeof(c));
    assert_int_equal(r2b_manifest_list(m, -1, R2B_STATE_STORED, prefix, count_cb, &c, &err),
                     R2B_OK);
    assert_int_equal(c.n, procs * each); /* nothing lost */
    r2b_manifest_close(m);
}

/* Threads opening one fresh SQLite manifest at the same moment all get it:
 * switching the new file to WAL used to answer "database is locked" at once
 * (seen with scripts/test --valgrind, whose scheduling widens the race). */
static char first_open_url[600];

static void *first_open(void *arg)
{
    struct r2b_error err;
    struct r2b_manifest *m = r2b_manifest_open(first_open_url, &err);

    if (m == NULL)
        fprintf(stderr, "concurrent first open: %s\n", err.message);
    *(int *)arg = m != NULL;
    r2b_manifest_close(m);
    return NULL;
}

static void test_concurrent_first_open(void **state)
{
    char dir[512];
    const char *slash;

    (void)state;
    slash = strrchr(urls[0], '/');
    snprintf(dir, sizeof(dir), "%.*s", (int)(slash - urls[0]) - (int)strlen("sqlite://"),
             urls[0] + strlen("sqlite://"));
    for (int round = 0; round < 10; round++) {
        pthread_t t[8];
        int ok[8] = {0};

        snprintf(first_open_url, sizeof(first_open_url), "sqlite://%s/first-%d.db", dir, round);
        for (int i = 0; i < 8; i++)
            assert_int_equal(pthread_create(&t[i], NULL, first_open, &ok[i]), 0);
        for (int i = 0; i < 8; i++) {
            pthread_join(t[i], NULL);
            assert_true(ok[i]);
        }
    }
}

static void test_open_errors(void **state)
{
    struct r2b_error err;

    (void)state;
    assert_null(r2b_manifest_open("mysql://x", &err));
    assert_int_equal(err.code, R2B_ERR_CONFIG);
    assert_null(r2b_manifest_open("", &err));
    assert_int_equal(err.code, R2B_ERR_CONFIG);
    assert_null(r2b_manifest_open("sqlite://", &err));
    assert_null(r2b_manifest_open("sqlite:///nonexistent-dir/x/manifest.db", &err));
    assert_int_equal(err.code, R2B_ERR_CONFIG); /* a setting to fix (exit 3), not a retry */
    assert_non_null(strstr(err.message, "nonexistent-dir"));
}

static void test_names(void **state)
{
    enum r2b_visibility v;
    enum r2b_state s;

    (void)state;
    assert_int_equal(r2b_visibility_parse("unlisted", &v), 0);
    assert_int_equal(v, R2B_VIS_UNLISTED);
    assert_int_equal(r2b_visibility_parse("Public", &v), -1);
    assert_int_equal(r2b_visibility_parse(NULL, &v), -1);
    assert_string_equal(r2b_visibility_name(R2B_VIS_DIRECT), "direct");
    assert_int_equal(r2b_state_parse("deleted", &s), 0);
    assert_int_equal(s, R2B_STATE_DELETED);
    assert_int_equal(r2b_state_parse("gone", &s), -1);
    assert_string_equal(r2b_state_name(R2B_STATE_STORED), "stored");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_backends),
        cmocka_unit_test(test_concurrent_writers),
        cmocka_unit_test(test_concurrent_first_open),
    };
    const char *base = getenv("R2B_TEST_TMP") ? getenv("R2B_TEST_TMP") : "/tmp";
    const char *more = getenv("R2B_TEST_MANIFEST_URLS");
    char dir[512];
    int rc;

    snprintf(run_id, sizeof(run_id), "run%ld", (long)getpid());
    snprintf(dir, sizeof(dir), "%s/r2b-manifest-XXXXXX", base);
    if (mkdtemp(dir) == NULL)
        return 1;
    snprintf(urls[n_urls++], sizeof(urls[0]), "sqlite://%s/manifest.db", dir);
    if (more) { /* space-separated extra backends */
        char buf[4096], *save = NULL;

        r2b_strlcpy(buf, more, sizeof(buf));
        for (char *t = strtok_r(buf, " ", &save); t && n_urls < 8; t = strtok_r(NULL, " ", &save))
            r2b_strlcpy(urls[n_urls++], t, sizeof(urls[0]));
    }
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    {
        char cmd[600];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            rc = rc ? rc : 1;
    }
    return rc;
}
