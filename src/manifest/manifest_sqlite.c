/*
 * SQLite manifest backend. WAL mode and a busy timeout let several worker
 * processes on one host share a file; every write is one IMMEDIATE
 * transaction (the write lock is taken up front, so two writers never
 * deadlock upgrading a read lock); statements are prepared once per handle.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "manifest_int.h"

#define BUSY_TIMEOUT_MS 30000

enum stmt_id {
    S_BEGIN,
    S_COMMIT,
    S_ROLLBACK,
    S_UPSERT,
    S_AUD_CLEAR,
    S_AUD_ADD,
    S_AUD_DEL,
    S_GET,
    S_EXISTS,
    S_SET_STATE,
    S_SET_STATE_STORED,
    S_SET_VIS,
    S_IN_AUD,
    S_AUD_LIST,
    S_TOUCH,
    S_CLAIM,
    S__COUNT
};

static const char *const stmt_sql[S__COUNT] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_UPSERT] = "INSERT INTO r2b_objects (key, bucket, style, visibility, owner_id, status_id,"
                 " content_type, size, sha256, etag, state, created_at, updated_at, source_path)"
                 " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12, ?13)"
                 " ON CONFLICT (key) DO UPDATE SET bucket = excluded.bucket,"
                 " style = excluded.style, visibility = excluded.visibility,"
                 " owner_id = excluded.owner_id, status_id = excluded.status_id,"
                 " content_type = excluded.content_type, size = excluded.size,"
                 " sha256 = excluded.sha256, etag = excluded.etag, state = excluded.state,"
                 " updated_at = excluded.updated_at, source_path = excluded.source_path",
    [S_AUD_CLEAR] = "DELETE FROM r2b_audience WHERE key = ?1",
    [S_AUD_ADD] = "INSERT OR IGNORE INTO r2b_audience (key, account_id) VALUES (?1, ?2)",
    [S_AUD_DEL] = "DELETE FROM r2b_audience WHERE key = ?1 AND account_id = ?2",
    [S_GET] = "SELECT key, bucket, style, visibility, owner_id, status_id, content_type, size,"
              " sha256, etag, state, created_at, updated_at, source_path"
              " FROM r2b_objects WHERE key = ?1",
    [S_EXISTS] = "SELECT 1 FROM r2b_objects WHERE key = ?1",
    /* a state change ends any claim; "stored" only from "pending": a record
     * deleted meanwhile stays deleted (the uploader then removes its object) */
    [S_SET_STATE] = "UPDATE r2b_objects SET state = ?2, updated_at = ?3, claim_owner = '',"
                    " claim_expires = 0 WHERE key = ?1",
    [S_SET_STATE_STORED] = "UPDATE r2b_objects SET state = ?2, updated_at = ?3, etag = ?4,"
                           " size = ?5, claim_owner = '', claim_expires = 0"
                           " WHERE key = ?1 AND state = 'pending'",
    [S_SET_VIS] = "UPDATE r2b_objects SET visibility = ?2, bucket = ?3, updated_at = ?4"
                  " WHERE key = ?1",
    [S_IN_AUD] = "SELECT 1 FROM r2b_audience WHERE key = ?1 AND account_id = ?2",
    [S_AUD_LIST] = "SELECT account_id FROM r2b_audience WHERE key = ?1 ORDER BY account_id",
    [S_TOUCH] = "UPDATE r2b_objects SET updated_at = ?2 WHERE key = ?1",
    [S_CLAIM] = NULL, /* R2B_MANIFEST_CLAIM_SQL with ?n for $n, made at open */
};

struct sqlite_impl {
    sqlite3 *db;
    sqlite3_stmt *st[S__COUNT];
    char path[1024];
};

/* Where the manifest cannot be written at all: a setting to fix (exit 3), not
 * a failure to retry. */
static int not_writable(int code)
{
    return code == SQLITE_READONLY || code == SQLITE_CANTOPEN || code == SQLITE_PERM ||
           code == SQLITE_AUTH;
}

/* A full disk (or a file size limit) passes once space is freed. */
static int disk_full(sqlite3 *db, int code)
{
    int e = sqlite3_system_errno(db);

    return code == SQLITE_FULL || e == ENOSPC || e == EDQUOT || e == EFBIG;
}

static enum r2b_status db_fail(struct sqlite_impl *s, struct r2b_error *err, const char *what)
{
    int code = sqlite3_errcode(s->db);
    enum r2b_status st = (code == SQLITE_BUSY || code == SQLITE_LOCKED) ? R2B_ERR_NETWORK
                         : (code == SQLITE_NOMEM)                       ? R2B_ERR_NOMEM
                         : not_writable(code)                           ? R2B_ERR_CONFIG
                                                                        : R2B_ERR_IO;
    int full = disk_full(s->db, code);

    r2b_error_set(err, st, "manifest '%s': %s: %s%s", s->path, what, sqlite3_errmsg(s->db),
                  st == R2B_ERR_CONFIG          ? " (the file and its directory must be writable)"
                  : full && code != SQLITE_FULL ? " (no space left on the device)"
                                                : "");
    if (err && (st == R2B_ERR_NETWORK || full))
        err->retryable = 1; /* still locked after the busy timeout, or a full disk: later */
    return st;
}

/*
 * Switching a new file to WAL needs an exclusive lock, and SQLite may answer
 * SQLITE_BUSY at once, without the busy handler, when other connections are
 * opening the same file: several threads or processes opening a fresh
 * manifest together got "database is locked" (seen under valgrind's
 * scheduling, scripts/test --valgrind). Retried for the busy timeout.
 */
static int exec_retry_busy(sqlite3 *db, const char *sql)
{
    int rc;

    for (int waited_ms = 0;; waited_ms += 10) {
        rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
        if ((rc != SQLITE_BUSY && rc != SQLITE_LOCKED) || waited_ms >= BUSY_TIMEOUT_MS)
            return rc;
        sqlite3_sleep(10);
    }
}

static sqlite3_stmt *stmt(struct sqlite_impl *s, enum stmt_id id)
{
    sqlite3_stmt *p = s->st[id];

    sqlite3_reset(p);
    sqlite3_clear_bindings(p);
    return p;
}

static int step_done(sqlite3_stmt *p)
{
    int rc = sqlite3_step(p);

    sqlite3_reset(p);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

static enum r2b_status begin(struct sqlite_impl *s, struct r2b_error *err)
{
    return step_done(stmt(s, S_BEGIN)) == SQLITE_OK ? R2B_OK : db_fail(s, err, "begin");
}

static enum r2b_status commit(struct sqlite_impl *s, struct r2b_error *err)
{
    if (step_done(stmt(s, S_COMMIT)) == SQLITE_OK)
        return R2B_OK;
    db_fail(s, err, "commit");
    step_done(stmt(s, S_ROLLBACK));
    return err ? err->code : R2B_ERR_IO;
}

static void rollback(struct sqlite_impl *s)
{
    if (!sqlite3_get_autocommit(s->db))
        step_done(stmt(s, S_ROLLBACK));
}

static void bind_key(sqlite3_stmt *p, const char *key)
{
    sqlite3_bind_text(p, 1, key, -1, SQLITE_STATIC);
}

static void sqlite_close(struct r2b_manifest *m)
{
    struct sqlite_impl *s = m->impl;

    if (s) {
        for (int i = 0; i < S__COUNT; i++)
            sqlite3_finalize(s->st[i]);
        sqlite3_close(s->db);
        free(s);
    }
    free(m);
}

/*
 * put and claim: the upsert (S_UPSERT, or S_CLAIM with worker and expiry),
 * then the audience, in one transaction. *changed (may be NULL) says whether
 * the row was written: a claim that is not ours writes nothing.
 */
static enum r2b_status write_record(struct sqlite_impl *s, const struct r2b_manifest_record *r,
                                    const int64_t *aud, size_t n_aud, int64_t now,
                                    const char *worker, int64_t expires, int *changed,
                                    struct r2b_error *err)
{
    sqlite3_stmt *p;
    enum r2b_status st;

    if ((st = begin(s, err)) != R2B_OK)
        return st;
    p = stmt(s, worker ? S_CLAIM : S_UPSERT);
    if (worker) {
        sqlite3_bind_text(p, 14, worker, -1, SQLITE_STATIC);
        sqlite3_bind_int64(p, 15, expires);
    }
    bind_key(p, r->key);
    sqlite3_bind_text(p, 2, r->bucket, -1, SQLITE_STATIC);
    sqlite3_bind_text(p, 3, r->style, -1, SQLITE_STATIC);
    sqlite3_bind_text(p, 4, r2b_visibility_name(r->visibility), -1, SQLITE_STATIC);
    sqlite3_bind_int64(p, 5, r->owner_id);
    if (r->status_id)
        sqlite3_bind_int64(p, 6, r->status_id);
    sqlite3_bind_text(p, 7, r->content_type, -1, SQLITE_STATIC);
    sqlite3_bind_int64(p, 8, (sqlite3_int64)r->size_bytes);
    sqlite3_bind_text(p, 9, r->sha256, -1, SQLITE_STATIC);
    sqlite3_bind_text(p, 10, r->etag, -1, SQLITE_STATIC);
    sqlite3_bind_text(p, 11, r2b_state_name(r->state), -1, SQLITE_STATIC);
    sqlite3_bind_int64(p, 12, now);
    sqlite3_bind_text(p, 13, r->source_path, -1, SQLITE_STATIC);
    if (step_done(p) != SQLITE_OK)
        goto fail;
    if (changed)
        *changed = sqlite3_changes(s->db) > 0;
    if (changed && !*changed) { /* claimed by another worker, or already stored */
        rollback(s);
        return R2B_OK;
    }
    p = stmt(s, S_AUD_CLEAR);
    bind_key(p, r->key);
    if (step_done(p) != SQLITE_OK)
        goto fail;
    for (size_t i = 0; i < n_aud; i++) {
        p = stmt(s, S_AUD_ADD);
        bind_key(p, r->key);
        sqlite3_bind_int64(p, 2, aud[i]);
        if (step_done(p) != SQLITE_OK)
            goto fail;
    }
    return commit(s, err);
fail:
    db_fail(s, err, worker ? "claim" : "put");
    rollback(s);
    return err ? err->code : R2B_ERR_IO;
}

static enum r2b_status sqlite_put(struct r2b_manifest *m, const struct r2b_manifest_record *r,
                                  const int64_t *aud, size_t n_aud, int64_t now,
                                  struct r2b_error *err)
{
    return write_record(m->impl, r, aud, n_aud, now, NULL, 0, NULL, err);
}

static enum r2b_status sqlite_claim(struct r2b_manifest *m, const struct r2b_manifest_record *r,
                                    const int64_t *aud, size_t n_aud, const char *worker,
                                    int64_t now, int64_t expires, int *claimed,
                                    struct r2b_error *err)
{
    return write_record(m->impl, r, aud, n_aud, now, worker, expires, claimed, err);
}

static void copy_col(sqlite3_stmt *p, int col, char *out, size_t size)
{
    const unsigned char *t = sqlite3_column_text(p, col);

    r2b_strlcpy(out, t ? (const char *)t : "", size);
}

static void read_row(sqlite3_stmt *p, struct r2b_manifest_record *out)
{
    char name[16];

    memset(out, 0, sizeof(*out));
    copy_col(p, 0, out->key, sizeof(out->key));
    copy_col(p, 1, out->bucket, sizeof(out->bucket));
    copy_col(p, 2, out->style, sizeof(out->style));
    copy_col(p, 3, name, sizeof(name));
    if (r2b_visibility_parse(name, &out->visibility) != 0)
        out->visibility = R2B_VIS_DIRECT; /* unreadable: the most restrictive */
    out->owner_id = sqlite3_column_int64(p, 4);
    out->status_id = sqlite3_column_int64(p, 5);
    copy_col(p, 6, out->content_type, sizeof(out->content_type));
    out->size_bytes = (uint64_t)sqlite3_column_int64(p, 7);
    copy_col(p, 8, out->sha256, sizeof(out->sha256));
    copy_col(p, 9, out->etag, sizeof(out->etag));
    copy_col(p, 10, name, sizeof(name));
    if (r2b_state_parse(name, &out->state) != 0)
        out->state = R2B_STATE_PENDING; /* unreadable: never "stored" */
    out->created_at = sqlite3_column_int64(p, 11);
    out->updated_at = sqlite3_column_int64(p, 12);
    copy_col(p, 13, out->source_path, sizeof(out->source_path));
}

static enum r2b_status sqlite_get(struct r2b_manifest *m, const char *key,
                                  struct r2b_manifest_record *out, struct r2b_error *err)
{
    struct sqlite_impl *s = m->impl;
    sqlite3_stmt *p = stmt(s, S_GET);
    int rc;

    bind_key(p, key);
    rc = sqlite3_step(p);
    if (rc == SQLITE_ROW) {
        read_row(p, out);
        sqlite3_reset(p);
        return R2B_OK;
    }
    sqlite3_reset(p);
    if (rc == SQLITE_DONE)
        return r2b_error_set(err, R2B_ERR_NOT_FOUND, "no manifest record for '%s'", key);
    return db_fail(s, err, "get");
}

/* Runs an UPDATE on one key; NOT_FOUND when it touched nothing. */
static enum r2b_status update_one(struct sqlite_impl *s, sqlite3_stmt *p, const char *key,
                                  const char *what, struct r2b_error *err)
{
    if (step_done(p) != SQLITE_OK)
        return db_fail(s, err, what);
    if (sqlite3_changes(s->db) == 0)
        return r2b_error_set(err, R2B_ERR_NOT_FOUND, "no manifest record for '%s'", key);
    return R2B_OK;
}

static enum r2b_status sqlite_set_state(struct r2b_manifest *m, const char *key,
                                        enum r2b_state state, const char *etag, uint64_t size_bytes,
                                        int64_t now, struct r2b_error *err)
{
    struct sqlite_impl *s = m->impl;
    int stored = state == R2B_STATE_STORED && etag != NULL;
    sqlite3_stmt *p = stmt(s, stored ? S_SET_STATE_STORED : S_SET_STATE);

    bind_key(p, key);
    sqlite3_bind_text(p, 2, r2b_state_name(state), -1, SQLITE_STATIC);
    sqlite3_bind_int64(p, 3, now);
    if (stored) {
        sqlite3_bind_text(p, 4, etag, -1, SQLITE_STATIC);
        sqlite3_bind_int64(p, 5, (sqlite3_int64)size_bytes);
    }
    return update_one(s, p, key, "set state", err);
}

static enum r2b_status sqlite_set_visibility(struct r2b_manifest *m, const char *key,
                                             enum r2b_visibility vis, const char *bucket,
                                             int64_t now, struct r2b_error *err)
{
    struct sqlite_impl *s = m->impl;
    sqlite3_stmt *p = stmt(s, S_SET_VIS);

    bind_key(p, key);
    sqlite3_bind_text(p, 2, r2b_visibility_name(vis), -1, SQLITE_STATIC);
    sqlite3_bind_text(p, 3, bucket, -1, SQLITE_STATIC);
    sqlite3_bind_int64(p, 4, now);
    return update_one(s, p, key, "set visibility", err);
}

static enum r2b_status sqlite_in_audience(struct r2b_manifest *m, const char *key,
                                          int64_t account_id, int *yes, struct r2b_error *err)
{
    struct sqlite_impl *s = m->impl;
    sqlite3_stmt *p = stmt(s, S_IN_AUD);
    int rc;

    bind_key(p, key);
    sqlite3_bind_int64(p, 2, account_id);
    rc = sqlite3_step(p);
    sqlite3_reset(p);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return db_fail(s, err, "audience lookup");
    *yes = rc == SQLITE_ROW;
    return R2B_OK;
}

static enum r2b_status sqlite_audience_change(struct r2b_manifest *m, const char *key,
                                              const int64_t *ids, size_t n, int add, int64_t now,
                                              struct r2b_error *err)
{
    struct sqlite_impl *s = m->impl;
    sqlite3_stmt *p;
    enum r2b_status st;

    if ((st = begin(s, err)) != R2B_OK)
        return st;
    p = stmt(s, S_TOUCH); /* also proves the record exists */
    bind_key(p, key);
    sqlite3_bind_int64(p, 2, now);
    if ((st = update_one(s, p, key, "audience", err)) != R2B_OK) {
        rollback(s);
        return st;
    }
    for (size_t i = 0; i < n; i++) {
        p = stmt(s, add ? S_AUD_ADD : S_AUD_DEL);
        bind_key(p, key);
        sqlite3_bind_int64(p, 2, ids[i]);
        if (step_done(p) != SQLITE_OK) {
            db_fail(s, err, "audience");
            rollback(s);
            return err ? err->code : R2B_ERR_IO;
        }
    }
    return commit(s, err);
}

static enum r2b_status sqlite_audience(struct r2b_manifest *m, const char *key, int64_t **ids,
                                       size_t *n, struct r2b_error *err)
{
    struct sqlite_impl *s = m->impl;
    sqlite3_stmt *p;
    size_t cap = 0;
    int rc;

    p = stmt(s, S_EXISTS);
    bind_key(p, key);
    rc = sqlite3_step(p);
    sqlite3_reset(p);
    if (rc == SQLITE_DONE)
        return r2b_error_set(err, R2B_ERR_NOT_FOUND, "no manifest record for '%s'", key);
    if (rc != SQLITE_ROW)
        return db_fail(s, err, "audience");
    p = stmt(s, S_AUD_LIST);
    bind_key(p, key);
    while ((rc = sqlite3_step(p)) == SQLITE_ROW) {
        if (*n == cap) {
            int64_t *g;

            cap = cap ? cap * 2 : 16;
            g = realloc(*ids, cap * sizeof(**ids));
            if (g == NULL) {
                sqlite3_reset(p);
                free(*ids);
                *ids = NULL;
                *n = 0;
                return r2b_error_set(err, R2B_ERR_NOMEM, "out of memory");
            }
            *ids = g;
        }
        (*ids)[(*n)++] = sqlite3_column_int64(p, 0);
    }
    sqlite3_reset(p);
    if (rc != SQLITE_DONE) {
        free(*ids);
        *ids = NULL;
        *n = 0;
        return db_fail(s, err, "audience");
    }
    return R2B_OK;
}

static enum r2b_status sqlite_list(struct r2b_manifest *m, int visibility, int state,
                                   const char *prefix, r2b_manifest_cb cb, void *ud,
                                   struct r2b_error *err)
{
    struct sqlite_impl *s = m->impl;
    struct r2b_manifest_record rec;
    sqlite3_stmt *p = NULL;
    enum r2b_status st = R2B_OK;
    int rc;
    /* substr() compares bytes exactly: no LIKE, so '%' and '_' in a prefix are literal */
    const char *sql = "SELECT key, bucket, style, visibility, owner_id, status_id, content_type,"
                      " size, sha256, etag, state, created_at, updated_at, source_path"
                      " FROM r2b_objects WHERE (?1 IS NULL OR visibility = ?1)"
                      " AND (?2 IS NULL OR state = ?2)"
                      " AND (?3 IS NULL OR substr(CAST(key AS BLOB), 1, length(CAST(?3 AS BLOB)))"
                      "     = CAST(?3 AS BLOB))"
                      " ORDER BY key";

    if (sqlite3_prepare_v2(s->db, sql, -1, &p, NULL) != SQLITE_OK)
        return db_fail(s, err, "list");
    if (visibility >= 0)
        sqlite3_bind_text(p, 1, r2b_visibility_name((enum r2b_visibility)visibility), -1,
                          SQLITE_STATIC);
    if (state >= 0)
        sqlite3_bind_text(p, 2, r2b_state_name((enum r2b_state)state), -1, SQLITE_STATIC);
    if (prefix && *prefix)
        sqlite3_bind_text(p, 3, prefix, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(p)) == SQLITE_ROW) {
        read_row(p, &rec);
        if (cb(ud, &rec) != 0)
            break;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        st = db_fail(s, err, "list");
    sqlite3_finalize(p);
    return st;
}

static enum r2b_status sqlite_claim_owners(struct r2b_manifest *m, const char *prefix,
                                           int (*cb)(void *ud, const char *owner), void *ud,
                                           struct r2b_error *err)
{
    struct sqlite_impl *s = m->impl;
    sqlite3_stmt *p = NULL;
    enum r2b_status st = R2B_OK;
    int rc;

    if (sqlite3_prepare_v2(s->db,
                           "SELECT DISTINCT claim_owner FROM r2b_objects WHERE claim_owner <> ''"
                           " AND state <> 'stored'"
                           " AND substr(claim_owner, 1, length(?1)) = ?1",
                           -1, &p, NULL) != SQLITE_OK)
        return db_fail(s, err, "claims");
    sqlite3_bind_text(p, 1, prefix, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(p)) == SQLITE_ROW)
        if (cb(ud, (const char *)sqlite3_column_text(p, 0)) != 0)
            break;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        st = db_fail(s, err, "claims");
    sqlite3_finalize(p);
    return st;
}

static enum r2b_status sqlite_release_owner(struct r2b_manifest *m, const char *owner,
                                            struct r2b_error *err)
{
    struct sqlite_impl *s = m->impl;
    sqlite3_stmt *p = NULL;
    int rc;

    if (sqlite3_prepare_v2(s->db,
                           "UPDATE r2b_objects SET claim_owner = '', claim_expires = 0"
                           " WHERE claim_owner = ?1",
                           -1, &p, NULL) != SQLITE_OK)
        return db_fail(s, err, "release claims");
    sqlite3_bind_text(p, 1, owner, -1, SQLITE_STATIC);
    rc = sqlite3_step(p);
    sqlite3_finalize(p);
    return rc == SQLITE_DONE ? R2B_OK : db_fail(s, err, "release claims");
}

static const struct r2b_manifest_ops sqlite_ops = {
    .name = "sqlite",
    .close = sqlite_close,
    .put = sqlite_put,
    .claim = sqlite_claim,
    .claim_owners = sqlite_claim_owners,
    .release_owner = sqlite_release_owner,
    .get = sqlite_get,
    .set_state = sqlite_set_state,
    .set_visibility = sqlite_set_visibility,
    .in_audience = sqlite_in_audience,
    .audience_change = sqlite_audience_change,
    .audience = sqlite_audience,
    .list = sqlite_list,
};

/* Applies the schema up to R2B_MANIFEST_SCHEMA_VERSION (user_version tracks it). */
static enum r2b_status migrate(struct sqlite_impl *s, struct r2b_error *err)
{
    sqlite3_stmt *p = NULL;
    int version = 0;
    char *msg = NULL;

    /* up to date (every open but the first): no write lock, so that opening
     * (a `sign` process) never waits behind busy writers */
    if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &p, NULL) == SQLITE_OK &&
        sqlite3_step(p) == SQLITE_ROW)
        version = sqlite3_column_int(p, 0);
    sqlite3_finalize(p);
    p = NULL;
    if (version == R2B_MANIFEST_SCHEMA_VERSION)
        return R2B_OK;
    if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(s, err, "open");
    if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &p, NULL) == SQLITE_OK &&
        sqlite3_step(p) == SQLITE_ROW)
        version = sqlite3_column_int(p, 0);
    sqlite3_finalize(p);
    if (version > R2B_MANIFEST_SCHEMA_VERSION) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return r2b_error_set(err, R2B_ERR_CONFIG,
                             "manifest '%s' has schema version %d, newer than this r2bridge (%d)",
                             s->path, version, R2B_MANIFEST_SCHEMA_VERSION);
    }
    if (version < 1 && (sqlite3_exec(s->db, R2B_MANIFEST_SCHEMA_V1 "PRAGMA user_version = 1;", NULL,
                                     NULL, &msg) != SQLITE_OK)) {
        r2b_error_set(err, R2B_ERR_IO, "manifest '%s': cannot create schema: %s", s->path,
                      msg ? msg : "?");
        sqlite3_free(msg);
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return R2B_ERR_IO;
    }
    if (version < 2 && (sqlite3_exec(s->db, R2B_MANIFEST_SCHEMA_V2 "PRAGMA user_version = 2;", NULL,
                                     NULL, &msg) != SQLITE_OK)) {
        r2b_error_set(err, R2B_ERR_IO, "manifest '%s': cannot migrate schema: %s", s->path,
                      msg ? msg : "?");
        sqlite3_free(msg);
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return R2B_ERR_IO;
    }
    if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(s, err, "open");
    return R2B_OK;
}

struct r2b_manifest *r2b_manifest__open_sqlite(const char *path, struct r2b_error *err)
{
    struct r2b_manifest *m = calloc(1, sizeof(*m));
    struct sqlite_impl *s = calloc(1, sizeof(*s));

    if (m == NULL || s == NULL) {
        free(m);
        free(s);
        r2b_error_set(err, R2B_ERR_NOMEM, "out of memory");
        return NULL;
    }
    m->ops = &sqlite_ops;
    m->impl = s;
    r2b_strlcpy(s->path, path, sizeof(s->path));
    if (sqlite3_open_v2(path, &s->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        int code = s->db ? sqlite3_errcode(s->db) : SQLITE_NOMEM;

        r2b_error_set(err, not_writable(code) ? R2B_ERR_CONFIG : R2B_ERR_IO,
                      "cannot open manifest '%s': %s%s", path,
                      s->db ? sqlite3_errmsg(s->db) : "out of memory",
                      not_writable(code) ? " (its directory must exist and be writable)" : "");
        goto fail;
    }
    sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
    sqlite3_extended_result_codes(s->db, 0);
    /* WAL: readers never block the writer; NORMAL sync is durable across
     * process crashes (the WAL is fsynced at checkpoints). */
    if (exec_retry_busy(s->db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
                               " PRAGMA foreign_keys = ON;") != SQLITE_OK) {
        db_fail(s, err, "open");
        goto fail;
    }
    if (migrate(s, err) != R2B_OK)
        goto fail;
    for (int i = 0; i < S__COUNT; i++) {
        char claim[sizeof(R2B_MANIFEST_CLAIM_SQL)];
        const char *sql = stmt_sql[i];

        if (i == S_CLAIM) { /* $n -> ?n: SQLite numbers parameters the same way */
            r2b_strlcpy(claim, R2B_MANIFEST_CLAIM_SQL, sizeof(claim));
            for (char *c = claim; *c; c++)
                if (*c == '$')
                    *c = '?';
            sql = claim;
        }
        if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL) !=
            SQLITE_OK) {
            db_fail(s, err, "prepare");
            goto fail;
        }
    }
    return m;
fail:
    sqlite_close(m);
    return NULL;
}
