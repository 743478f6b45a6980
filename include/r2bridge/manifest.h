/*
 * The manifest: one record per stored object (per style) with its
 * visibility, owner, audience, checksum and state, behind one interface with
 * two backends chosen by URL:
 *   sqlite:///var/lib/r2bridge/manifest.db   (embedded default, created on first use)
 *   postgresql://user@host:5432/db           (several hosts share one manifest)
 *
 * States make every operation restartable: a record is `pending` before the
 * first byte is sent, `stored` only after the server confirmed the object,
 * `deleted` before the object is removed. A crash at any point leaves no
 * record that claims an object that is not there.
 *
 * The schema is versioned; migrations are applied when a manifest is opened.
 * SQLite runs in WAL mode with a busy timeout so several processes on one host
 * share it; every write is one transaction.
 *
 * Thread-safety: a handle is used by one thread at a time; open one per
 * thread or process.
 */
#ifndef R2BRIDGE_MANIFEST_H
#define R2BRIDGE_MANIFEST_H

#include "r2bridge.h"

#define R2B_MANIFEST_MAX_KEY_BYTES 1024
#define R2B_MANIFEST_MAX_AUDIENCE 100000 /* accounts on one record's audience */
#define R2B_MANIFEST_SCHEMA_VERSION 2

/* Mastodon's visibilities. Stored as their names. */
enum r2b_visibility {
    R2B_VIS_PUBLIC = 0,
    R2B_VIS_UNLISTED,
    R2B_VIS_PRIVATE, /* followers-only */
    R2B_VIS_DIRECT,
};

enum r2b_state {
    R2B_STATE_PENDING = 0,
    R2B_STATE_STORED,
    R2B_STATE_DELETED,
};

struct r2b_manifest_record {
    char key[R2B_MANIFEST_MAX_KEY_BYTES + 1];
    char bucket[64];
    char style[16]; /* "original", "small" */
    enum r2b_visibility visibility;
    int64_t owner_id;  /* Mastodon account id */
    int64_t status_id; /* 0: none */
    char content_type[64];
    uint64_t size_bytes;
    char sha256[65];
    char etag[80];
    enum r2b_state state;
    int64_t created_at, updated_at; /* seconds since the epoch */
    char source_path[1024];         /* migration: where it came from; "" if none */
};

struct r2b_manifest;

/*
 * Opens (creating if needed, migrating to the current schema) the manifest
 * at `url`. R2B_ERR_CONFIG for an unknown scheme or a backend this build
 * lacks; R2B_ERR_IO when the file or server cannot be reached (retryable
 * for a server); R2B_ERR_AUTH when the database refuses the role. Errors
 * never contain a password from the URL. Busy or locked databases give a
 * retryable R2B_ERR_NETWORK after a 30 s wait.
 */
struct r2b_manifest *r2b_manifest_open(const char *url, struct r2b_error *err);
/* Closes. Accepts NULL. */
void r2b_manifest_close(struct r2b_manifest *m);
/* "sqlite" or "postgresql". */
const char *r2b_manifest_backend(const struct r2b_manifest *m);

/*
 * Inserts the record, or replaces one with the same key (keeping its
 * created_at), and sets its audience to `audience` (n may be 0), in one
 * transaction. The record's times are set by the manifest.
 */
enum r2b_status r2b_manifest_put(struct r2b_manifest *m, const struct r2b_manifest_record *rec,
                                 const int64_t *audience, size_t n_audience,
                                 struct r2b_error *err);

/*
 * Claims a work item for `worker` (several migrate processes, on several
 * hosts, share one job without overlap): atomically writes `rec` (as
 * r2b_manifest_put does) only when the key has no record, or its record is
 * not stored as `rec` wants (state, bucket, size), and no other worker holds
 * a claim that has not expired. *claimed is 1 when this worker now holds
 * the key until now + ttl_s (a crashed worker's claims expire and are taken
 * over), 0 when another worker holds it or it is already stored.
 */
enum r2b_status r2b_manifest_claim(struct r2b_manifest *m, const struct r2b_manifest_record *rec,
                                   const int64_t *audience, size_t n_audience, const char *worker,
                                   long ttl_s, int *claimed, struct r2b_error *err);

/*
 * Releases the claims of owners whose name starts with `owner_prefix` and
 * for whom dead(ud, owner) returns 1 (a migrate process on this host that
 * no longer runs), so a restart takes their files at once. *released counts
 * the owners released (may be NULL).
 */
enum r2b_status r2b_manifest_release_claims(struct r2b_manifest *m, const char *owner_prefix,
                                            int (*dead)(void *ud, const char *owner), void *ud,
                                            uint64_t *released, struct r2b_error *err);

/* Reads the record with exactly this key (byte-for-byte, case-sensitive). R2B_ERR_NOT_FOUND if none. */
enum r2b_status r2b_manifest_get(struct r2b_manifest *m, const char *key,
                                 struct r2b_manifest_record *out, struct r2b_error *err);

/*
 * Moves a record to `state` and ends any claim on it; for R2B_STATE_STORED
 * also records the ETag and size the server confirmed (etag may be NULL
 * otherwise). A record becomes stored only from pending: R2B_ERR_NOT_FOUND
 * when there is no such record, or (for stored) no pending one — e.g. it was
 * deleted during the upload, and the uploader must remove what it wrote.
 * A deleted record is never claimable.
 */
enum r2b_status r2b_manifest_set_state(struct r2b_manifest *m, const char *key,
                                       enum r2b_state state, const char *etag,
                                       uint64_t size_bytes, struct r2b_error *err);

/* Changes visibility and bucket (after the object moved). */
enum r2b_status r2b_manifest_set_visibility(struct r2b_manifest *m, const char *key,
                                            enum r2b_visibility vis, const char *bucket,
                                            struct r2b_error *err);

/* *yes = 1 when account_id is in the record's audience; 0 (and R2B_OK) when it is not,
 * including when there is no record at all. */
enum r2b_status r2b_manifest_in_audience(struct r2b_manifest *m, const char *key,
                                         int64_t account_id, int *yes, struct r2b_error *err);

/* Adds (grant) or removes (revoke) accounts; idempotent. R2B_ERR_NOT_FOUND if no record. */
enum r2b_status r2b_manifest_audience_add(struct r2b_manifest *m, const char *key,
                                          const int64_t *ids, size_t n, struct r2b_error *err);
enum r2b_status r2b_manifest_audience_remove(struct r2b_manifest *m, const char *key,
                                             const int64_t *ids, size_t n,
                                             struct r2b_error *err);
/* The audience, in ascending order, into a heap array the caller frees. */
enum r2b_status r2b_manifest_audience(struct r2b_manifest *m, const char *key, int64_t **ids,
                                      size_t *n, struct r2b_error *err);

/*
 * Calls cb for each record matching the filters (a negative filter value
 * means any; key_prefix matches bytes exactly, '%' and '_' included), in
 * byte order of the keys. cb returns non-zero to stop, and may call other
 * functions on the same handle. A listing is not a snapshot: records written
 * meanwhile may or may not appear.
 */
typedef int (*r2b_manifest_cb)(void *ud, const struct r2b_manifest_record *rec);
enum r2b_status r2b_manifest_list(struct r2b_manifest *m, int visibility, int state,
                                  const char *key_prefix, r2b_manifest_cb cb, void *ud,
                                  struct r2b_error *err);

/* --- names -------------------------------------------------------------------------- */

const char *r2b_visibility_name(enum r2b_visibility v);
/* 0 and *out set, or -1 for an unknown name. */
int r2b_visibility_parse(const char *s, enum r2b_visibility *out);
const char *r2b_state_name(enum r2b_state s);
int r2b_state_parse(const char *s, enum r2b_state *out);

#endif
