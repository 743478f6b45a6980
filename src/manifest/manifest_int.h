/* manifest_int.h: exists so manifest.c can dispatch to the SQLite and
 * PostgreSQL backends through one table of operations. Each backend file is
 * the only one that includes its database's header. */
#ifndef R2B_MANIFEST_INT_H
#define R2B_MANIFEST_INT_H

#include "r2bridge/manifest.h"

struct r2b_manifest_ops {
    const char *name;
    void (*close)(struct r2b_manifest *m);
    enum r2b_status (*put)(struct r2b_manifest *m, const struct r2b_manifest_record *rec,
                           const int64_t *audience, size_t n_audience, int64_t now,
                           struct r2b_error *err);
    enum r2b_status (*claim)(struct r2b_manifest *m, const struct r2b_manifest_record *rec,
                             const int64_t *audience, size_t n_audience, const char *worker,
                             int64_t now, int64_t expires, int *claimed, struct r2b_error *err);
    /* the distinct live claim owners starting with prefix (cb per owner), then release one */
    enum r2b_status (*claim_owners)(struct r2b_manifest *m, const char *prefix,
                                    int (*cb)(void *ud, const char *owner), void *ud,
                                    struct r2b_error *err);
    enum r2b_status (*release_owner)(struct r2b_manifest *m, const char *owner,
                                     struct r2b_error *err);
    enum r2b_status (*get)(struct r2b_manifest *m, const char *key,
                           struct r2b_manifest_record *out, struct r2b_error *err);
    enum r2b_status (*set_state)(struct r2b_manifest *m, const char *key, enum r2b_state state,
                                 const char *etag, uint64_t size_bytes, int64_t now,
                                 struct r2b_error *err);
    enum r2b_status (*set_visibility)(struct r2b_manifest *m, const char *key,
                                      enum r2b_visibility vis, const char *bucket, int64_t now,
                                      struct r2b_error *err);
    enum r2b_status (*in_audience)(struct r2b_manifest *m, const char *key, int64_t account_id,
                                   int *yes, struct r2b_error *err);
    /* add != 0: insert the ids (ignoring present ones); add == 0: delete them */
    enum r2b_status (*audience_change)(struct r2b_manifest *m, const char *key,
                                       const int64_t *ids, size_t n, int add, int64_t now,
                                       struct r2b_error *err);
    enum r2b_status (*audience)(struct r2b_manifest *m, const char *key, int64_t **ids,
                                size_t *n, struct r2b_error *err);
    enum r2b_status (*list)(struct r2b_manifest *m, int visibility, int state,
                            const char *key_prefix, r2b_manifest_cb cb, void *ud,
                            struct r2b_error *err);
};

struct r2b_manifest {
    const struct r2b_manifest_ops *ops;
    void *impl;
};

/* Backends: each returns NULL with err set on failure. */
struct r2b_manifest *r2b_manifest__open_sqlite(const char *path, struct r2b_error *err);
struct r2b_manifest *r2b_manifest__open_pg(const char *conninfo, struct r2b_error *err);

/*
 * The schema both backends create (SQL that both SQLite and PostgreSQL
 * accept), version R2B_MANIFEST_SCHEMA_VERSION. Visibility and state are
 * stored as their names, so the database reads well from a SQL prompt.
 */
#define R2B_MANIFEST_SCHEMA_V1                                                                 \
    "CREATE TABLE IF NOT EXISTS r2b_objects ("                                                 \
    " key TEXT PRIMARY KEY,"                                                                   \
    " bucket TEXT NOT NULL,"                                                                   \
    " style TEXT NOT NULL,"                                                                    \
    " visibility TEXT NOT NULL CHECK (visibility IN ('public','unlisted','private','direct')),"\
    " owner_id BIGINT NOT NULL,"                                                               \
    " status_id BIGINT,"                                                                       \
    " content_type TEXT NOT NULL DEFAULT '',"                                                  \
    " size BIGINT NOT NULL DEFAULT 0,"                                                         \
    " sha256 TEXT NOT NULL DEFAULT '',"                                                        \
    " etag TEXT NOT NULL DEFAULT '',"                                                          \
    " state TEXT NOT NULL CHECK (state IN ('pending','stored','deleted')),"                    \
    " created_at BIGINT NOT NULL,"                                                             \
    " updated_at BIGINT NOT NULL,"                                                             \
    " source_path TEXT NOT NULL DEFAULT '');"                                                  \
    "CREATE TABLE IF NOT EXISTS r2b_audience ("                                                \
    " key TEXT NOT NULL REFERENCES r2b_objects(key) ON DELETE CASCADE,"                         \
    " account_id BIGINT NOT NULL,"                                                             \
    " PRIMARY KEY (key, account_id));"                                                         \
    "CREATE INDEX IF NOT EXISTS r2b_objects_state ON r2b_objects (state, visibility);"

/* Version 2: claims on work items (migrate on several hosts). */
#define R2B_MANIFEST_SCHEMA_V2                                                                 \
    "ALTER TABLE r2b_objects ADD COLUMN claim_owner TEXT NOT NULL DEFAULT '';"                 \
    "ALTER TABLE r2b_objects ADD COLUMN claim_expires BIGINT NOT NULL DEFAULT 0;"

/*
 * The claim, SQL both backends accept ($n placeholders; SQLite reads them as
 * ?n): the upsert of r2b_manifest_put plus the claim, applied only when the
 * key is claimable. $12 is now, $14 the worker, $15 the expiry.
 */
#define R2B_MANIFEST_CLAIM_SQL                                                                 \
    "INSERT INTO r2b_objects (key, bucket, style, visibility, owner_id, status_id,"            \
    " content_type, size, sha256, etag, state, created_at, updated_at, source_path,"           \
    " claim_owner, claim_expires)"                                                             \
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $13, $14, $15)"           \
    " ON CONFLICT (key) DO UPDATE SET bucket = excluded.bucket, style = excluded.style,"       \
    " visibility = excluded.visibility, owner_id = excluded.owner_id,"                         \
    " status_id = excluded.status_id, content_type = excluded.content_type,"                   \
    " size = excluded.size, sha256 = excluded.sha256, etag = excluded.etag,"                   \
    " state = excluded.state, updated_at = excluded.updated_at,"                               \
    " source_path = excluded.source_path, claim_owner = excluded.claim_owner,"                 \
    " claim_expires = excluded.claim_expires"                                                  \
    " WHERE (r2b_objects.state <> 'stored' OR r2b_objects.bucket <> excluded.bucket"           \
    "        OR r2b_objects.size <> excluded.size)"                                            \
    " AND r2b_objects.state <> 'deleted'"                                                      \
    " AND (r2b_objects.claim_owner = '' OR r2b_objects.claim_owner = excluded.claim_owner"     \
    "      OR r2b_objects.claim_expires < $12 OR r2b_objects.state = 'stored')"

#endif
