/*
 * Reconciling the buckets with the manifest, both ways, like tootctl media
 * remove-orphans but also the other way round:
 *   1. list each bucket (streamed) into an index on disk — a private,
 *      temporary SQLite manifest keyed "<bucket>/<key>" — reporting at once
 *      any private/direct object found in the public bucket (privacy alarm);
 *   2. walk the index: objects with no live record are orphans, objects whose
 *      record says another size or ETag differ;
 *   3. walk the manifest's stored records: those absent from the index are
 *      missing.
 * Memory stays bounded by one listing page whatever the bucket size.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "r2bridge/pipeline.h"

struct vctx {
    const struct r2b_verify_options *o;
    struct r2b_verify_stats *st;
    struct r2b_pipeline *p;
    struct r2b_manifest *man; /* the real manifest */
    struct r2b_manifest *idx; /* the listing index */
    const char *bucket;       /* being listed */
    int public_bucket;
    const char *public_name, *private_name;
    int64_t now;
    long grace_s;
    enum r2b_status failed;
    struct r2b_error err;
};

const char *r2b_verify_finding_name(enum r2b_verify_finding f)
{
    static const char *const names[] = {"privacy_alarm", "missing", "differs", "orphan"};

    return (unsigned)f < 4 ? names[f] : "unknown";
}

static void found(struct vctx *v, enum r2b_verify_finding f, const char *bucket, const char *key,
                  const char *detail, int fixed)
{
    v->st->found[f]++;
    v->st->fixed += (uint64_t)fixed;
    if (v->o->finding)
        v->o->finding(v->o->ud, f, bucket, key, detail, fixed);
}

static int restricted(enum r2b_visibility vis)
{
    return vis == R2B_VIS_PRIVATE || vis == R2B_VIS_DIRECT;
}

/* The index key: "0/<key>" for the public bucket, "1/<key>" for the private one. */
static int index_key(const struct vctx *v, const char *bucket, const char *key, char *out,
                     size_t size)
{
    int which = strcmp(bucket, v->public_name) == 0    ? 0
                : strcmp(bucket, v->private_name) == 0 ? 1
                                                       : -1;

    if (which < 0)
        return -1;
    return (size_t)snprintf(out, size, "%d/%s", which, key) < size ? 0 : -1;
}

/* pass 1: one listed object */
static int on_object(void *ud, const struct r2b_s3_object *obj)
{
    struct vctx *v = ud;
    struct r2b_manifest_record e, rec;
    struct r2b_error err;
    enum r2b_status gs;

    v->st->objects_listed++;
    /* the privacy alarm first, reported as soon as seen: a restricted record
     * (even deleted) whose object sits in the public bucket */
    if (v->public_bucket) {
        gs = r2b_manifest_get(v->man, obj->key, &rec, &err);
        if (gs != R2B_OK && gs != R2B_ERR_NOT_FOUND) {
            v->failed = gs;
            v->err = err;
            return 1;
        }
        if (gs == R2B_OK && restricted(rec.visibility)) {
            int fixed = 0;
            char detail[160];

            if (v->o->fix && rec.state == R2B_STATE_STORED)
                fixed = r2b_pipeline_set_visibility(v->p, obj->key, rec.visibility, &err) == R2B_OK;
            else if (v->o->fix) /* deleted or pending: nothing to keep, it just goes */
                fixed = r2b_s3_delete(r2b_pipeline_s3(v->p), v->bucket, obj->key, &err) == R2B_OK;
            snprintf(detail, sizeof(detail), "%s media (%s) in the public bucket%s",
                     r2b_visibility_name(rec.visibility), r2b_state_name(rec.state),
                     fixed ? (rec.state == R2B_STATE_STORED ? "; moved to the private bucket"
                                                            : "; deleted")
                           : "");
            found(v, R2B_FINDING_PRIVACY_ALARM, v->bucket, obj->key, detail, fixed);
        }
    }
    memset(&e, 0, sizeof(e));
    if (index_key(v, v->bucket, obj->key, e.key, sizeof(e.key)) != 0)
        return 0; /* keys are at most 1024 bytes: cannot happen with S3's own limit */
    r2b_strlcpy(e.bucket, v->bucket, sizeof(e.bucket));
    r2b_strlcpy(e.etag, obj->etag, sizeof(e.etag));
    e.size_bytes = obj->size_bytes;
    e.status_id = obj->last_modified; /* the index keeps the object's time here */
    e.state = R2B_STATE_STORED;
    if (r2b_manifest_put(v->idx, &e, NULL, 0, &err) != R2B_OK) {
        v->failed = err.code;
        v->err = err;
        return 1;
    }
    return 0;
}

/* pass 2: one indexed object against the manifest */
static int on_indexed(void *ud, const struct r2b_manifest_record *e)
{
    struct vctx *v = ud;
    const char *slash = strchr(e->key, '/');
    const char *key = slash ? slash + 1 : e->key;
    struct r2b_manifest_record rec;
    struct r2b_error err;
    char detail[256];
    enum r2b_status gs = r2b_manifest_get(v->man, key, &rec, &err);
    int have = gs == R2B_OK;
    int is_public = strcmp(e->bucket, v->public_name) == 0;

    if (gs != R2B_OK && gs != R2B_ERR_NOT_FOUND) { /* never guess "no record" */
        v->failed = gs;
        v->err = err;
        return 1;
    }
    if (have && is_public && restricted(rec.visibility))
        return 0; /* already reported as a privacy alarm */
    if (!have || rec.state == R2B_STATE_DELETED || strcmp(rec.bucket, e->bucket) != 0) {
        int old = e->status_id > 0 && v->now - e->status_id > v->grace_s, fixed = 0;

        if (v->o->fix && old) {
            fixed = r2b_s3_delete(r2b_pipeline_s3(v->p), e->bucket, key, &err) == R2B_OK;
        }
        snprintf(detail, sizeof(detail), "%llu bytes, %s%s", (unsigned long long)e->size_bytes,
                 !have                            ? "no record"
                 : rec.state == R2B_STATE_DELETED ? "record deleted"
                                                  : "recorded in another bucket",
                 fixed                 ? "; deleted"
                 : (v->o->fix && !old) ? "; newer than the grace period, kept"
                                       : "");
        found(v, R2B_FINDING_ORPHAN, e->bucket, key, detail, fixed);
        return 0;
    }
    if (rec.state == R2B_STATE_STORED &&
        (rec.size_bytes != e->size_bytes || (rec.etag[0] && strcmp(rec.etag, e->etag) != 0))) {
        int recent = v->now - rec.updated_at <= v->grace_s, fixed = 0;

        /* like a missing object: the record no longer claims it, the next migrate re-uploads */
        if (v->o->fix && !recent)
            fixed = r2b_manifest_set_state(v->man, key, R2B_STATE_PENDING, NULL, 0, &err) == R2B_OK;
        snprintf(detail, sizeof(detail),
                 "store: %llu bytes, etag %s; manifest: %llu bytes, etag %s%s",
                 (unsigned long long)e->size_bytes, e->etag, (unsigned long long)rec.size_bytes,
                 rec.etag, fixed ? "; marked pending" : "");
        found(v, R2B_FINDING_DIFFERS, e->bucket, key, detail, fixed);
    }
    return 0;
}

/* pass 3: one stored record against the index */
static int on_record(void *ud, const struct r2b_manifest_record *rec)
{
    struct vctx *v = ud;
    struct r2b_manifest_record e;
    struct r2b_error err;
    enum r2b_status gs;
    char ikey[R2B_MANIFEST_MAX_KEY_BYTES + 8];

    v->st->records_checked++;
    if (index_key(v, rec->bucket, rec->key, ikey, sizeof(ikey)) != 0)
        return 0; /* a bucket not configured here: not ours to judge */
    gs = r2b_manifest_get(v->idx, ikey, &e, &err);
    if (gs != R2B_OK && gs != R2B_ERR_NOT_FOUND) {
        v->failed = gs;
        v->err = err;
        return 1;
    }
    if (gs == R2B_ERR_NOT_FOUND) {
        int recent = v->now - rec->updated_at <= v->grace_s, fixed = 0;

        if (v->o->fix && !recent)
            fixed = r2b_manifest_set_state(v->man, rec->key, R2B_STATE_PENDING, NULL, 0, &err) ==
                    R2B_OK;
        found(v, R2B_FINDING_MISSING, rec->bucket, rec->key,
              fixed                   ? "recorded as stored; marked pending"
              : (v->o->fix && recent) ? "recorded as stored; newer than the grace period, kept"
                                      : "recorded as stored",
              fixed);
    }
    return 0;
}

enum r2b_status r2b_verify(const struct r2b_config *cfg, const struct r2b_verify_options *o,
                           struct r2b_verify_stats *stats, struct r2b_error *err)
{
    struct vctx v;
    char dir[4096], url[4200];
    const char *tmp = o->tmp_dir ? o->tmp_dir : getenv("TMPDIR");
    const char *buckets[2];
    enum r2b_status st = R2B_OK;
    int have_dir = 0;

    memset(stats, 0, sizeof(*stats));
    memset(&v, 0, sizeof(v));
    v.o = o;
    v.st = stats;
    v.now = r2b_time_now();
    v.grace_s = o->grace_s > 0 ? o->grace_s : 86400;
    if (cfg->bucket == NULL || *cfg->bucket == '\0')
        return r2b_error_set(err, R2B_ERR_CONFIG, "S3_BUCKET is not set");
    v.public_name = cfg->bucket;
    v.private_name = cfg->private_bucket ? cfg->private_bucket : "";
    if ((v.p = r2b_pipeline_new(cfg, err)) == NULL)
        return err ? err->code : R2B_ERR_CONFIG;
    if ((st = r2b_pipeline_manifest(v.p, &v.man, err)) != R2B_OK)
        goto done;
    snprintf(dir, sizeof(dir), "%s/r2b-verify-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL) {
        st = r2b_error_set(err, R2B_ERR_IO, "cannot create a temp directory in '%s'",
                           tmp && *tmp ? tmp : "/tmp");
        goto done;
    }
    have_dir = 1;
    snprintf(url, sizeof(url), "sqlite://%s/index.db", dir);
    if ((v.idx = r2b_manifest_open(url, err)) == NULL) {
        st = err ? err->code : R2B_ERR_IO;
        goto done;
    }
    buckets[0] = cfg->bucket;
    buckets[1] = cfg->private_bucket;
    for (int i = 0; i < 2; i++) {
        if (buckets[i] == NULL || *buckets[i] == '\0')
            continue;
        v.bucket = buckets[i];
        v.public_bucket = i == 0;
        st = r2b_s3_list(r2b_pipeline_s3(v.p), buckets[i], NULL, on_object, &v, err);
        if (st == R2B_OK && v.failed) {
            st = v.failed;
            if (err)
                *err = v.err;
        }
        if (st != R2B_OK)
            goto done;
    }
    if ((st = r2b_manifest_list(v.idx, -1, -1, NULL, on_indexed, &v, err)) == R2B_OK && !v.failed)
        st = r2b_manifest_list(v.man, -1, R2B_STATE_STORED, NULL, on_record, &v, err);
    if (st == R2B_OK && v.failed) { /* a lookup failed: stop rather than misjudge */
        st = v.failed;
        if (err)
            *err = v.err;
    }
done:
    r2b_manifest_close(v.idx);
    if (have_dir) {
        char f[4300];
        static const char *const files[] = {"index.db", "index.db-wal", "index.db-shm"};

        for (size_t i = 0; i < 3; i++) {
            snprintf(f, sizeof(f), "%s/%s", dir, files[i]);
            unlink(f);
        }
        rmdir(dir);
    }
    r2b_pipeline_free(v.p);
    return st;
}
