/*
 * The pipeline: media + S3 + manifest + privacy composed into the product's
 * operations. Each operation orders its steps so that a crash anywhere
 * leaves state that says exactly what happened:
 *  - upload: record `pending` -> PUT (verified) -> record `stored`;
 *  - delete: record `deleted` -> object removed (the check denies at once);
 *  - visibility: copy to the target bucket -> verify -> record moved ->
 *    object removed from the old bucket; running it again finishes the move.
 *
 * Thread-safety: one pipeline per thread.
 */
#ifndef R2BRIDGE_PIPELINE_H
#define R2BRIDGE_PIPELINE_H

#include <signal.h>

#include "config.h"
#include "manifest.h"
#include "media.h"
#include "privacy.h"
#include "s3.h"

#define R2B_CACHE_CONTROL_PUBLIC "public, max-age=315576000, immutable"
#define R2B_CACHE_CONTROL_PRIVATE "private, no-store"
#define R2B_DEFAULT_CLASS "media_attachments/files"

struct r2b_pipeline;

/*
 * Builds a pipeline from the configuration: the S3 client now, the manifest
 * (R2B_MANIFEST) when first needed. Returns NULL with err set.
 */
struct r2b_pipeline *r2b_pipeline_new(const struct r2b_config *cfg, struct r2b_error *err);
void r2b_pipeline_free(struct r2b_pipeline *p);

/* The pipeline's S3 client (owned by the pipeline). */
struct r2b_s3_client *r2b_pipeline_s3(struct r2b_pipeline *p);

/* The manifest, opened on first use (R2B_ERR_CONFIG when none is configured). */
enum r2b_status r2b_pipeline_manifest(struct r2b_pipeline *p, struct r2b_manifest **out,
                                      struct r2b_error *err);

/* --- keys ---------------------------------------------------------------------------- */

/*
 * Whether `key` may be built or given by the pipeline: 1..1024 bytes of
 * printable ASCII from a safe set (A-Za-z0-9 and - _ . / ~ + = ,), no ".."
 * segment, no leading '/', no "//". 0 when valid, -1 otherwise (with a
 * reason in err). The S3 layer itself signs any UTF-8 key: this stricter
 * rule is for keys r2bridge chooses or is told to use.
 */
int r2b_key_validate(const char *key, struct r2b_error *err);

/*
 * The looser rule for keys that already exist (migrated names with spaces or
 * UTF-8, keys given to sign, visibility, delete and the low-level commands):
 * 1..1024 bytes of valid UTF-8, no control character (0x00-0x1f, 0x7f), no
 * leading '/', no "." or ".." segment. Such a key cannot change meaning when
 * a proxy or CDN normalizes the path ("/bucket/../other/key" would leave the
 * bucket). 0 when safe, -1 otherwise (R2B_ERR_INVALID in err; the message
 * never echoes a control character).
 */
int r2b_key_safe(const char *key, struct r2b_error *err);

/*
 * Paperclip's id partition as Mastodon uses it: the id zero-padded to 9
 * digits, in whole groups of three, digits after the last whole group
 * dropped as Paperclip drops them: 1 -> "000/000/001",
 * 1234567890 -> "123/456/789", 109876543210987654 -> "109/876/543/210/987/654".
 */
void r2b_id_partition(int64_t id, char out[32]);

/* --- upload ---------------------------------------------------------------------------- */

struct r2b_upload_request {
    const char *path;
    enum r2b_visibility visibility;
    int64_t account_id;
    int64_t status_id;       /* 0: none */
    const int64_t *audience; /* besides the owner; may be NULL */
    size_t n_audience;
    /*
     * Either an explicit key for the original style (the small style's key is
     * the same with "/original/" replaced by "/small/" and its extension), or
     * an attachment id and class for Paperclip's layout
     * "<class>/<id partition>/<style>/<16 hex>.<ext>".
     */
    const char *key;
    int64_t id;
    const char *klass; /* NULL: "media_attachments/files" */
    const char *claimed_type;
    int gifv; /* an animated GIF becomes a silent MP4 (r2b_media_options.gifv) */
};

struct r2b_upload_style {
    char name[16];
    char key[R2B_MANIFEST_MAX_KEY_BYTES + 1];
    char bucket[64];
    char url[2048]; /* public URL for public/unlisted, "" for private/direct */
    char content_type[32];
    uint64_t size_bytes;
    int width, height;
    char sha256[65];
    char etag[80];
};

struct r2b_upload_result {
    struct r2b_media_result media; /* type, kind, blurhash, reject reason */
    struct r2b_upload_style styles[R2B_MEDIA_MAX_STYLES];
    int n_styles;
};

/*
 * sniff -> validate -> transcode -> for each style: record pending, PUT to
 * the visibility's bucket (private/direct need R2B_PRIVATE_BUCKET: refused
 * with R2B_ERR_CONFIG before any work otherwise), record stored. Returns
 * R2B_ERR_REJECTED for refused media (result->media says why).
 */
enum r2b_status r2b_pipeline_upload(struct r2b_pipeline *p, const struct r2b_upload_request *req,
                                    struct r2b_upload_result *result, struct r2b_error *err);
void r2b_upload_result_release(struct r2b_upload_result *r);

/* --- sign --------------------------------------------------------------------------------- */

struct r2b_sign_result {
    struct r2b_privacy_decision decision;
    char url[4096]; /* "" when denied */
};

/*
 * The privacy-checked URL for `key` as seen by `viewer` (anonymous when
 * viewer->anonymous). R2B_OK with decision.outcome telling what was granted
 * (a denial is R2B_OK too: it is an answer, not a failure); other statuses
 * only for failures (manifest unreachable, ...). Never logs the viewer.
 */
enum r2b_status r2b_pipeline_sign(struct r2b_pipeline *p, const char *key,
                                  const struct r2b_privacy_viewer *viewer, long ttl_s,
                                  struct r2b_sign_result *out, struct r2b_error *err);

/* Decisions so far, by outcome (the only record the check keeps). */
struct r2b_sign_counters {
    uint64_t public_urls, presigned, denied;
};
void r2b_pipeline_sign_counters(const struct r2b_pipeline *p, struct r2b_sign_counters *out);

/* --- changes ------------------------------------------------------------------------------ */

/* Moves the object to the bucket `vis` requires and updates the record (see top). */
enum r2b_status r2b_pipeline_set_visibility(struct r2b_pipeline *p, const char *key,
                                            enum r2b_visibility vis, struct r2b_error *err);

/*
 * Marks each record deleted, then removes the objects (batched DeleteObjects
 * of up to 1,000 keys per bucket). Keys without a record are removed from
 * the store too (idempotent). *n_deleted counts keys handled.
 */
enum r2b_status r2b_pipeline_delete(struct r2b_pipeline *p, const char *const *keys, size_t n,
                                    size_t *n_deleted, struct r2b_error *err);

/* --- migrate ------------------------------------------------------------------------------ */

struct r2b_migrate_stats {
    uint64_t files_seen, files_moved, files_skipped, files_failed, files_verified;
    uint64_t files_claimed_elsewhere; /* held by another migrate process (another host) */
    /* of files_failed, those a later run may well move: network, 5xx, throttling,
     * a busy manifest, a full disk */
    uint64_t files_failed_temporary;
    uint64_t bytes_seen, bytes_moved, bytes_skipped;
    int64_t elapsed_ms;
    int done; /* 1 in the final call */
};

struct r2b_migrate_options {
    const char *from_dir;       /* a Mastodon public/system tree; keys are paths relative to it */
    /* or another S3-compatible bucket (keys kept as they are); from_dir must then be NULL */
    const char *from_bucket;
    const struct r2b_s3_options *from_s3; /* the source's endpoint and credentials */
    const char *prefix;         /* only keys starting with this; NULL: all */
    int jobs;                   /* files in flight (worker threads, each with its own connection) */
    int dry_run;                /* walk and report, write nothing */
    int verify;                 /* HEAD every already-stored object: size and ETag must match */
    const char *visibility_map; /* CSV "key_prefix_or_key,visibility,account_id[,audience...]"; NULL: all public */
    int64_t default_owner_id;   /* owner recorded for unmapped files (0: unknown) */
    long claim_ttl_s;           /* a file claimed by a crashed process is free after this (3600) */
    volatile sig_atomic_t *cancel; /* set by a signal handler: in-flight uploads abort, summary returned */
    /* called about every progress_ms from the walking thread, and once at the end */
    void (*progress)(void *ud, const struct r2b_migrate_stats *s);
    void *ud;
    long progress_ms;
    /* one call per file that did not make it (thread-safe: serialized by the migrator) */
    void (*failure)(void *ud, const char *key, const char *reason);
};

/*
 * Moves every regular file under from_dir into the bucket its visibility
 * requires, recording it in the manifest (pending -> stored), `jobs` at a
 * time. Resumable and idempotent: a file whose record is `stored` with the
 * same size is skipped without a request, so a migration killed at any
 * moment and started again finishes the job and uploads nothing twice.
 * Symlinks are never followed; unreadable, empty and path-unsafe names are
 * reported through `failure`, never skipped silently. Returns R2B_OK when the
 * walk finished (check stats.files_failed), R2B_ERR_INTERRUPTED when
 * cancelled, or the error that stopped it (configuration, manifest).
 */
enum r2b_status r2b_migrate(const struct r2b_config *cfg, const struct r2b_migrate_options *opts,
                            struct r2b_migrate_stats *stats, struct r2b_error *err);

/* --- verify (reconcile the buckets with the manifest) ------------------------------------------- */

enum r2b_verify_finding {
    R2B_FINDING_PRIVACY_ALARM = 0, /* a private/direct object found in the public bucket */
    R2B_FINDING_MISSING,           /* a stored record whose object is absent */
    R2B_FINDING_DIFFERS,           /* a stored record whose object has another size or ETag */
    R2B_FINDING_ORPHAN,            /* an object with no (live) record */
};

struct r2b_verify_stats {
    uint64_t objects_listed, records_checked;
    uint64_t found[4]; /* by enum r2b_verify_finding */
    uint64_t fixed;
};

struct r2b_verify_options {
    int fix;             /* delete old orphans, mark missing records pending, move alarms */
    long grace_s;        /* never touch objects newer than this (default 86400) */
    const char *tmp_dir; /* for the on-disk listing index; NULL: $TMPDIR or /tmp */
    /* one call per finding, privacy alarms first (serial) */
    void (*finding)(void *ud, enum r2b_verify_finding f, const char *bucket, const char *key,
                    const char *detail, int fixed);
    void *ud;
};

/*
 * Lists both buckets and compares them with the manifest, both ways. The
 * listing streams (1,000 keys a page) into an index on disk, so millions of
 * objects need little memory. Reports privacy alarms first. With fix: moves
 * alarmed objects to the private bucket, marks records of missing objects
 * pending, deletes orphans older than the grace period; never anything newer.
 */
enum r2b_status r2b_verify(const struct r2b_config *cfg, const struct r2b_verify_options *opts,
                           struct r2b_verify_stats *stats, struct r2b_error *err);

const char *r2b_verify_finding_name(enum r2b_verify_finding f);

#endif
