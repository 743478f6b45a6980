/*
 * Batch migration of a Mastodon public/system tree. One thread walks the
 * tree (never following symlinks) into a bounded queue; `jobs` workers, each
 * with its own pipeline (S3 connection and manifest handle), take files from
 * it. The manifest makes it resumable: a file whose record is `stored` with
 * the same size is skipped without any request.
 */
#define _XOPEN_SOURCE 700 /* realpath */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "r2bridge/pipeline.h"

#define QUEUE_CAP 1024
#define MAX_DEPTH 64
/* a map line lists an audience: a followers-only post of a big account is long */
#define MAP_MAX_LINE (64 * 1024 * 1024)

struct map_entry {
    char *prefix;
    size_t len;
    enum r2b_visibility vis;
    int64_t owner;
    int64_t *audience;
    size_t n_audience;
};

struct migrator {
    const struct r2b_config *cfg;
    const struct r2b_migrate_options *o;
    pthread_mutex_t lock;
    pthread_cond_t not_empty, not_full;
    char *queue[QUEUE_CAP];
    size_t head, count;
    int closed;
    struct r2b_migrate_stats st;
    int64_t start_ms;
    struct map_entry *map;
    size_t n_map;
    size_t root_len;
    struct r2b_error fatal; /* a worker's setup failure */
    char worker_id[300];    /* "<host>:<pid>": this process's claims in the manifest */
};

static void report(struct migrator *m, int temporary, const char *key, const char *fmt, ...)
    R2B_PRINTF(4, 5);

/* A failed file; `temporary` when running again later may well move it. */
static void report(struct migrator *m, int temporary, const char *key, const char *fmt, ...)
{
    char why[600];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&m->lock);
    m->st.files_failed++;
    if (temporary)
        m->st.files_failed_temporary++;
    if (m->o->failure)
        m->o->failure(m->o->ud, key, why);
    pthread_mutex_unlock(&m->lock);
}

/* Network, 5xx, throttling, a busy manifest, a full disk: the kind of failure that passes. */
static int temporary(const struct r2b_error *e)
{
    return e->retryable || e->code == R2B_ERR_NETWORK || e->code == R2B_ERR_INTERRUPTED;
}

/* --- visibility map -------------------------------------------------------------------------- */

static void free_map(struct migrator *m)
{
    for (size_t i = 0; i < m->n_map; i++) {
        free(m->map[i].prefix);
        free(m->map[i].audience);
    }
    free(m->map);
}

static int longest_first(const void *a, const void *b)
{
    const struct map_entry *x = a, *y = b;

    return x->len < y->len ? 1 : x->len > y->len ? -1 : 0;
}

static enum r2b_status load_map(struct migrator *m, const char *path, struct r2b_error *err)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0, line_cap = 0;
    ssize_t got;
    int lineno = 0;
    enum r2b_status st = R2B_OK;

    if (f == NULL) {
        st = r2b_error_set_errno(err, R2B_ERR_CONFIG, errno, "cannot open visibility map '%s'",
                                 path);
        goto done;
    }
    while ((got = getline(&line, &line_cap, f)) > 0) {
        char *fields[4], *p = line, *save = NULL, *tok;
        size_t nf = 0, len = (size_t)got;
        struct map_entry e;
        uint64_t owner;

        lineno++;
        if (len > MAP_MAX_LINE || memchr(line, '\0', len) != NULL) {
            st = r2b_error_set(err, R2B_ERR_CONFIG,
                               "visibility map '%s' line %d: %s", path, lineno,
                               len > MAP_MAX_LINE ? "longer than 64 MiB" : "contains a NUL byte");
            goto done;
        }
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0 || line[0] == '#')
            continue;
        /* three fields, then the rest of the line (no delimiter) as the fourth: the audience */
        for (tok = strtok_r(p, ",", &save); tok && nf < 4;
             tok = strtok_r(NULL, nf < 3 ? "," : "", &save))
            fields[nf++] = tok;
        memset(&e, 0, sizeof(e));
        if (nf < 3 || r2b_visibility_parse(fields[1], &e.vis) != 0 ||
            r2b_parse_u64(fields[2], INT64_MAX, &owner) != 0) {
            st = r2b_error_set(err, R2B_ERR_CONFIG,
                               "visibility map '%s' line %d: expected "
                               "key_prefix,visibility,account_id[,audience...]",
                               path, lineno);
            goto done;
        }
        e.owner = (int64_t)owner;
        e.prefix = r2b_strdup(fields[0]);
        e.len = strlen(fields[0]);
        /* the rest of the line (fields[3] and on) is the audience */
        for (char *a = nf == 4 ? fields[3] : NULL; a;) {
            char *comma = strchr(a, ',');
            uint64_t id;
            int64_t *g;

            if (comma)
                *comma = '\0';
            if (*a && r2b_parse_u64(a, INT64_MAX, &id) == 0) {
                g = realloc(e.audience, (e.n_audience + 1) * sizeof(*g));
                if (g == NULL)
                    break;
                e.audience = g;
                e.audience[e.n_audience++] = (int64_t)id;
            }
            a = comma ? comma + 1 : NULL;
        }
        if (m->n_map == cap) {
            struct map_entry *g = realloc(m->map, (cap = cap ? cap * 2 : 64) * sizeof(*g));

            if (g == NULL) {
                free(e.prefix);
                free(e.audience);
                st = r2b_error_set(err, R2B_ERR_NOMEM, "out of memory");
                goto done;
            }
            m->map = g;
        }
        m->map[m->n_map++] = e;
    }
    if (ferror(f)) {
        st = r2b_error_set_errno(err, R2B_ERR_CONFIG, errno, "cannot read visibility map '%s'",
                                 path);
        goto done;
    }
    qsort(m->map, m->n_map, sizeof(*m->map), longest_first);
done:
    if (f)
        fclose(f);
    free(line);
    return st;
}

static const struct map_entry *lookup_map(const struct migrator *m, const char *key)
{
    for (size_t i = 0; i < m->n_map; i++)
        if (strncmp(key, m->map[i].prefix, m->map[i].len) == 0)
            return &m->map[i];
    return NULL;
}

/* --- per file ----------------------------------------------------------------------------------
 */

static const char *content_type_of(const char *key)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".jpg", "image/jpeg"},      {".jpeg", "image/jpeg"}, {".png", "image/png"},
        {".gif", "image/gif"},       {".webp", "image/webp"}, {".avif", "image/avif"},
        {".heic", "image/heic"},     {".mp4", "video/mp4"},   {".webm", "video/webm"},
        {".mov", "video/quicktime"}, {".ogv", "video/ogg"},   {".mp3", "audio/mpeg"},
        {".ogg", "audio/ogg"},       {".oga", "audio/ogg"},   {".flac", "audio/flac"},
        {".wav", "audio/wav"},       {".m4a", "audio/mp4"},   {".aac", "audio/aac"},
    };
    const char *dot = strrchr(key, '.');

    for (size_t i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
        if (strcasecmp(dot, types[i].ext) == 0)
            return types[i].type;
    return "application/octet-stream";
}

/* Names a migration meets are uploaded as they are, but only valid, printable
 * UTF-8 that no path normalization can change (r2b_key_safe). */
static const char *unsafe_name(const char *key)
{
    size_t n = strlen(key);

    if (n > R2B_S3_MAX_KEY_BYTES)
        return "name longer than 1024 bytes";
    if (!r2b_utf8_valid(key, n))
        return "name is not valid UTF-8";
    for (const char *c = key; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            return "name has a control character";
    if (r2b_key_safe(key, NULL) != 0)
        return "name starts with '/' or has a '.' or '..' segment";
    return NULL;
}

static void count(struct migrator *m, uint64_t *files, uint64_t *bytes, uint64_t size)
{
    pthread_mutex_lock(&m->lock);
    (*files)++;
    *bytes += size;
    pthread_mutex_unlock(&m->lock);
}

/* Records a new multipart upload's id in the pending record ("mpu:<id>" in
 * its etag), so a run killed mid-upload is resumed, not restarted. */
struct upload_note {
    struct r2b_manifest *man;
    struct r2b_manifest_record *rec;
    const int64_t *aud;
    size_t n_aud;
};

static void note_upload_id(void *ud, const char *upload_id)
{
    struct upload_note *n = ud;

    if (strlen(upload_id) + 4 >= sizeof(n->rec->etag))
        return; /* too long to record: a restart starts this file afresh */
    snprintf(n->rec->etag, sizeof(n->rec->etag), "mpu:%s", upload_id);
    r2b_manifest_put(n->man, n->rec, n->aud, n->n_aud, NULL);
}

static int is_restricted(enum r2b_visibility v)
{
    return v == R2B_VIS_PRIVATE || v == R2B_VIS_DIRECT;
}

static void migrate_one(struct migrator *m, struct r2b_manifest *man, struct r2b_s3_client *s3,
                        const char *path, const char *key, const char *ctype, const char *source)
{
    const struct map_entry *me = lookup_map(m, key);
    enum r2b_visibility vis = me ? me->vis : R2B_VIS_PUBLIC;
    int64_t owner = me ? me->owner : m->o->default_owner_id;
    const int64_t *aud = me ? me->audience : NULL;
    size_t n_aud = me ? me->n_audience : 0;
    int64_t *kept_aud = NULL;
    struct r2b_manifest_record rec, old;
    struct r2b_s3_put_options po;
    struct upload_note note;
    struct r2b_s3_source src;
    struct r2b_s3_object obj;
    struct r2b_error err;
    enum r2b_status gst;
    const char *why, *bucket;
    char old_bucket[64] = "";
    struct stat sb;
    int fd = -1, have;

    if ((why = unsafe_name(key)) != NULL) {
        report(m, 0, key, "%s: not uploaded", why);
        return;
    }
    r2b_error_clear(&err);
    gst = r2b_manifest_get(man, key, &old, &err);
    if (gst != R2B_OK && gst != R2B_ERR_NOT_FOUND) {
        report(m, temporary(&err), key, "manifest: %s", err.message);
        return;
    }
    have = gst == R2B_OK;
    if (have && old.state == R2B_STATE_DELETED) { /* deleted media stays deleted */
        count(m, &m->st.files_skipped, &m->st.bytes_skipped, 0);
        return;
    }
    if (have && is_restricted(old.visibility)) {
        /* never widen: private stays private unless `r2bridge visibility` says otherwise */
        if (me && !is_restricted(me->vis)) {
            report(m, 0, key,
                   "the visibility map says %s but the manifest says %s: not widened "
                   "(use 'r2bridge visibility')",
                   r2b_visibility_name(me->vis), r2b_visibility_name(old.visibility));
            return;
        }
        if (!me) {
            vis = old.visibility;
            owner = old.owner_id;
        }
        if (n_aud == 0 && r2b_manifest_audience(man, key, &kept_aud, &n_aud, &err) == R2B_OK)
            aud = kept_aud; /* keep the audience the manifest has */
    }
    bucket = is_restricted(vis) ? m->cfg->private_bucket : m->cfg->bucket;
    if (bucket == NULL || *bucket == '\0') {
        report(m, 0, key, "%s media needs %s", r2b_visibility_name(vis),
               is_restricted(vis) ? "R2B_PRIVATE_BUCKET" : "S3_BUCKET");
        goto done;
    }
    /* the file itself, never through a symlink swapped in after the walk */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 || fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        report(m, 0, key, "cannot read: %s", fd < 0 ? strerror(errno) : "not a regular file");
        goto done;
    }
    if (sb.st_size == 0) {
        report(m, 0, key, "empty file: not uploaded");
        goto done;
    }
    /* the manifest knows: no request for what is already stored */
    if (have && old.state == R2B_STATE_STORED && old.size_bytes == (uint64_t)sb.st_size &&
        strcmp(old.bucket, bucket) == 0) {
        if (m->o->verify) {
            /* re-check against the store, never re-upload */
            enum r2b_status hs = r2b_s3_head(s3, bucket, key, &obj, &err);

            if (hs != R2B_OK && hs != R2B_ERR_NOT_FOUND) {
                report(m, temporary(&err), key, "verify: %s", err.message);
                goto done;
            }
            if (hs == R2B_ERR_NOT_FOUND || obj.size_bytes != old.size_bytes ||
                (old.etag[0] && strcmp(obj.etag, old.etag) != 0)) {
                /* the record claimed what the store does not hold: no longer "stored" */
                r2b_manifest_set_state(man, key, R2B_STATE_PENDING, NULL, 0, NULL);
                if (hs == R2B_ERR_NOT_FOUND)
                    report(m, 0, key,
                           "verify: missing from '%s'; marked pending, the next run "
                           "uploads it",
                           bucket);
                else
                    report(m, 0, key,
                           "verify: the store has %llu bytes, etag %s, the manifest "
                           "%llu, %s; marked pending, the next run uploads it",
                           (unsigned long long)obj.size_bytes, obj.etag,
                           (unsigned long long)old.size_bytes, old.etag);
                goto done;
            }
            pthread_mutex_lock(&m->lock);
            m->st.files_verified++;
            pthread_mutex_unlock(&m->lock);
        }
        count(m, &m->st.files_skipped, &m->st.bytes_skipped, (uint64_t)sb.st_size);
        goto done;
    }
    if (m->o->dry_run) {
        count(m, &m->st.files_moved, &m->st.bytes_moved, (uint64_t)sb.st_size);
        goto done;
    }
    /* stored before in the other bucket: that copy goes once this one is stored */
    if (have && strcmp(old.bucket, bucket) != 0)
        r2b_strlcpy(old_bucket, old.bucket, sizeof(old_bucket));
    memset(&rec, 0, sizeof(rec));
    r2b_strlcpy(rec.key, key, sizeof(rec.key));
    r2b_strlcpy(rec.bucket, bucket, sizeof(rec.bucket));
    r2b_strlcpy(rec.style, strstr(key, "/small/") ? "small" : "original", sizeof(rec.style));
    rec.visibility = vis;
    rec.owner_id = owner;
    r2b_strlcpy(rec.content_type, ctype ? ctype : content_type_of(key), sizeof(rec.content_type));
    rec.size_bytes = (uint64_t)sb.st_size;
    rec.state = R2B_STATE_PENDING;
    r2b_strlcpy(rec.source_path, source ? source : path, sizeof(rec.source_path));
    /* a killed run's multipart upload of these very bytes: keep its id through the claim */
    if (have && old.state == R2B_STATE_PENDING && strcmp(old.bucket, bucket) == 0 &&
        old.size_bytes == (uint64_t)sb.st_size && strncmp(old.etag, "mpu:", 4) == 0)
        r2b_strlcpy(rec.etag, old.etag, sizeof(rec.etag));
    {
        /* claim it: several processes (hosts) may walk the same tree at once */
        int claimed = 0;

        if (r2b_manifest_claim(man, &rec, aud, n_aud, m->worker_id,
                               m->o->claim_ttl_s > 0 ? m->o->claim_ttl_s : 3600, &claimed,
                               &err) != R2B_OK) {
            report(m, temporary(&err), key, "manifest: %s", err.message);
            goto done;
        }
        if (!claimed) {
            pthread_mutex_lock(&m->lock);
            m->st.files_claimed_elsewhere++;
            pthread_mutex_unlock(&m->lock);
            goto done;
        }
    }
    memset(&po, 0, sizeof(po));
    po.content_type = rec.content_type;
    po.cache_control = is_restricted(vis) ? R2B_CACHE_CONTROL_PRIVATE : R2B_CACHE_CONTROL_PUBLIC;
    note.man = man;
    note.rec = &rec;
    note.aud = aud;
    note.n_aud = n_aud;
    po.on_upload_id = note_upload_id;
    po.ud = &note;
    if (strncmp(rec.etag, "mpu:", 4) == 0)
        po.resume_upload_id = old.etag + 4; /* continue it, sending only what is missing */
    r2b_s3_source_fd(&src, fd, 0, (uint64_t)sb.st_size);
    /* left pending by a run that was killed: the object may have made it; if
     * the store holds exactly these bytes (size and ETag), do not send them again */
    if (have && old.state == R2B_STATE_PENDING && strcmp(old.bucket, bucket) == 0 &&
        r2b_s3_head(s3, bucket, key, &obj, NULL) == R2B_OK &&
        obj.size_bytes == (uint64_t)sb.st_size) {
        char want[80];

        if (r2b_s3_expected_etag(s3, &src, &po, want, NULL) == R2B_OK &&
            strcmp(want, obj.etag) == 0 &&
            r2b_manifest_set_state(man, key, R2B_STATE_STORED, obj.etag, obj.size_bytes, &err) ==
                R2B_OK) {
            count(m, &m->st.files_skipped, &m->st.bytes_skipped, (uint64_t)sb.st_size);
            goto done;
        }
    }
    if (r2b_s3_put(s3, bucket, key, &src, &po, &obj, &err) != R2B_OK) {
        if (err.code != R2B_ERR_INTERRUPTED)
            report(m, temporary(&err), key, "%s", err.message);
        goto done;
    }
    if (r2b_manifest_set_state(man, key, R2B_STATE_STORED, obj.etag, obj.size_bytes, &err) !=
        R2B_OK) {
        if (err.code == R2B_ERR_NOT_FOUND) { /* deleted while we uploaded: it stays deleted */
            r2b_s3_delete(s3, bucket, key, NULL);
            report(m, 0, key, "deleted in the manifest during the upload: removed again");
        } else {
            report(m, temporary(&err), key, "manifest: %s", err.message);
        }
        goto done;
    }
    if (old_bucket[0] && r2b_s3_delete(s3, old_bucket, key, &err) != R2B_OK) {
        report(m, temporary(&err), key, "stored in '%s' but the old copy in '%s' remains: %s",
               bucket, old_bucket, err.message);
        goto done;
    }
    count(m, &m->st.files_moved, &m->st.bytes_moved, (uint64_t)sb.st_size);
done:
    if (fd >= 0)
        close(fd);
    free(kept_aud);
}

/* --- queue and threads -------------------------------------------------------------------------
 */

static void push(struct migrator *m, char *path)
{
    pthread_mutex_lock(&m->lock);
    while (m->count == QUEUE_CAP)
        pthread_cond_wait(&m->not_full, &m->lock);
    m->queue[(m->head + m->count) % QUEUE_CAP] = path;
    m->count++;
    pthread_cond_signal(&m->not_empty);
    pthread_mutex_unlock(&m->lock);
}

static char *pop(struct migrator *m)
{
    char *p = NULL;

    pthread_mutex_lock(&m->lock);
    while (m->count == 0 && !m->closed)
        pthread_cond_wait(&m->not_empty, &m->lock);
    if (m->count) {
        p = m->queue[m->head];
        m->head = (m->head + 1) % QUEUE_CAP;
        m->count--;
        pthread_cond_signal(&m->not_full);
    }
    pthread_mutex_unlock(&m->lock);
    return p;
}

static int cancelled(const struct migrator *m)
{
    return m->o->cancel && *m->o->cancel;
}

static void progress(struct migrator *m, int done)
{
    struct r2b_migrate_stats s;

    if (m->o->progress == NULL)
        return;
    pthread_mutex_lock(&m->lock);
    m->st.elapsed_ms = r2b_time_mono_ms() - m->start_ms;
    m->st.done = done;
    s = m->st;
    pthread_mutex_unlock(&m->lock);
    m->o->progress(m->o->ud, &s);
}

/*
 * From a bucket: the manifest is asked first (no download for what is
 * stored), then the object goes through a temp file, keeping memory bounded
 * whatever its size.
 */
static void migrate_from_s3(struct migrator *m, struct r2b_manifest *man, struct r2b_s3_client *dst,
                            struct r2b_s3_client *src, const char *key)
{
    struct r2b_manifest_record rec;
    struct r2b_s3_object obj;
    struct r2b_error err;
    char tmp[4096];
    const char *dir = m->cfg->tmp_dir ? m->cfg->tmp_dir : getenv("TMPDIR");
    const char *why = unsafe_name(key);
    int fd;

    if (why != NULL) { /* never fetched: not even the source gets such a request */
        report(m, 0, key, "%s: not copied", why);
        return;
    }
    if (r2b_manifest_get(man, key, &rec, &err) == R2B_OK && rec.state == R2B_STATE_STORED &&
        !m->o->verify) {
        const struct map_entry *me = lookup_map(m, key);
        int restricted = me ? is_restricted(me->vis) : is_restricted(rec.visibility);
        const char *bucket = restricted ? m->cfg->private_bucket : m->cfg->bucket;

        if (bucket && strcmp(rec.bucket, bucket) == 0) {
            count(m, &m->st.files_skipped, &m->st.bytes_skipped, rec.size_bytes);
            return;
        }
    }
    if (m->o->dry_run) {
        count(m, &m->st.files_moved, &m->st.bytes_moved, 0);
        return;
    }
    snprintf(tmp, sizeof(tmp), "%s/r2b-migrate-XXXXXX", dir && *dir ? dir : "/tmp");
    if ((fd = mkstemp(tmp)) < 0) {
        int e = errno;

        report(m, r2b_errno_is_disk_full(e), key, "cannot create a temp file in '%s': %s",
               dir && *dir ? dir : "/tmp", strerror(e));
        return;
    }
    if (r2b_s3_get_fd(src, m->o->from_bucket, key, fd, &obj, &err) != R2B_OK) {
        if (err.code != R2B_ERR_INTERRUPTED)
            report(m, temporary(&err), key, "source: %s", err.message);
    } else {
        char source[R2B_MANIFEST_MAX_KEY_BYTES + 80];

        snprintf(source, sizeof(source), "s3://%s/%s", m->o->from_bucket, key);
        migrate_one(m, man, dst, tmp, key, obj.content_type[0] ? obj.content_type : NULL, source);
    }
    close(fd);
    unlink(tmp);
}

/* A claim of this host whose process is gone: "<host>:<pid>" with no such pid. */
static int local_owner_dead(void *ud, const char *owner)
{
    const char *colon = strrchr(owner, ':');
    uint64_t pid;

    (void)ud;
    if (colon == NULL || r2b_parse_u64(colon + 1, INT32_MAX, &pid) != 0 || pid == 0)
        return 0;
    return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

static void *worker(void *arg)
{
    struct migrator *m = arg;
    struct r2b_error err;
    struct r2b_pipeline *p = r2b_pipeline_new(m->cfg, &err);
    struct r2b_s3_client *src = NULL;
    struct r2b_manifest *man = NULL;
    char *path;

    if (p == NULL || r2b_pipeline_manifest(p, &man, &err) != R2B_OK ||
        (m->o->from_s3 && (src = r2b_s3_client_new(m->o->from_s3, &err)) == NULL)) {
        man = NULL;
        pthread_mutex_lock(&m->lock);
        if (m->fatal.code == R2B_OK)
            m->fatal = err;
        pthread_mutex_unlock(&m->lock);
    }
    if (p)
        r2b_s3_client_set_cancel(r2b_pipeline_s3(p), m->o->cancel);
    if (src)
        r2b_s3_client_set_cancel(src, m->o->cancel);
    while ((path = pop(m)) != NULL) {
        if (man == NULL)
            report(m, temporary(&err), m->o->from_s3 ? path : path + m->root_len + 1,
                   "not migrated: %s", err.message);
        else if (!cancelled(m)) {
            if (src)
                migrate_from_s3(m, man, r2b_pipeline_s3(p), src, path);
            else
                migrate_one(m, man, r2b_pipeline_s3(p), path, path + m->root_len + 1, NULL, NULL);
        }
        free(path);
    }
    r2b_s3_client_free(src);
    r2b_pipeline_free(p);
    return NULL;
}

struct lister {
    struct migrator *m;
    int64_t next_report;
};

/* The source bucket's listing, streamed into the queue (push blocks when it is full). */
static int on_source_object(void *ud, const struct r2b_s3_object *obj)
{
    struct lister *l = ud;
    struct migrator *m = l->m;
    char *key;

    if (cancelled(m))
        return 1;
    if (m->o->prefix && strncmp(obj->key, m->o->prefix, strlen(m->o->prefix)) != 0)
        return 0;
    if (obj->size_bytes == 0) {
        report(m, 0, obj->key, "empty object: not copied");
        return 0;
    }
    if ((key = r2b_strdup(obj->key)) == NULL)
        return 1;
    pthread_mutex_lock(&m->lock);
    m->st.files_seen++;
    m->st.bytes_seen += obj->size_bytes;
    pthread_mutex_unlock(&m->lock);
    push(m, key);
    if (m->o->progress_ms > 0 && r2b_time_mono_ms() >= l->next_report) {
        progress(m, 0);
        l->next_report = r2b_time_mono_ms() + m->o->progress_ms;
    }
    return 0;
}

/* Depth-first walk; symlinks and special files are reported, never followed. */
static void walk(struct migrator *m, const char *dir, int depth, int64_t *next_report)
{
    DIR *d;
    struct dirent *e;

    if (depth > MAX_DEPTH) {
        report(m, 0, dir + m->root_len + (dir[m->root_len] ? 1 : 0), "directory nested too deep");
        return;
    }
    if ((d = opendir(dir)) == NULL) {
        report(m, 0, dir, "cannot open directory: %s", strerror(errno));
        return;
    }
    while ((e = readdir(d)) != NULL && !cancelled(m)) {
        size_t n = strlen(dir) + strlen(e->d_name) + 2;
        char *path;
        struct stat sb;

        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        path = malloc(n);
        if (path == NULL)
            break;
        snprintf(path, n, "%s/%s", dir, e->d_name);
        if (lstat(path, &sb) != 0) {
            report(m, 0, path + m->root_len + 1, "cannot stat: %s", strerror(errno));
            free(path);
        } else if (S_ISDIR(sb.st_mode)) {
            walk(m, path, depth + 1, next_report);
            free(path);
        } else if (S_ISREG(sb.st_mode)) {
            const char *key = path + m->root_len + 1;

            if (m->o->prefix && strncmp(key, m->o->prefix, strlen(m->o->prefix)) != 0) {
                free(path);
                continue;
            }
            pthread_mutex_lock(&m->lock);
            m->st.files_seen++;
            m->st.bytes_seen += (uint64_t)sb.st_size;
            pthread_mutex_unlock(&m->lock);
            push(m, path); /* the worker frees it */
        } else if (m->o->prefix &&
                   strncmp(path + m->root_len + 1, m->o->prefix, strlen(m->o->prefix)) != 0) {
            free(path); /* outside --prefix: not ours to report */
        } else {
            report(m, 0, path + m->root_len + 1, "%s: not followed",
                   S_ISLNK(sb.st_mode) ? "symlink" : "not a regular file");
            free(path);
        }
        if (m->o->progress_ms > 0 && r2b_time_mono_ms() >= *next_report) {
            progress(m, 0);
            *next_report = r2b_time_mono_ms() + m->o->progress_ms;
        }
    }
    closedir(d);
}

enum r2b_status r2b_migrate(const struct r2b_config *cfg, const struct r2b_migrate_options *o,
                            struct r2b_migrate_stats *stats, struct r2b_error *err)
{
    struct migrator *m = calloc(1, sizeof(*m));
    pthread_t *threads = NULL;
    int jobs = o->jobs > 0 ? o->jobs : 8, started = 0;
    char *root = NULL;
    int64_t next_report;
    enum r2b_status st = R2B_OK;
    struct stat sb;

    memset(stats, 0, sizeof(*stats));
    if (m == NULL)
        return r2b_error_set(err, R2B_ERR_NOMEM, "out of memory");
    m->cfg = cfg;
    m->o = o;
    {
        char host[256] = "";

        gethostname(host, sizeof(host) - 1);
        snprintf(m->worker_id, sizeof(m->worker_id), "%s:%ld", host[0] ? host : "host",
                 (long)getpid());
    }
    pthread_mutex_init(&m->lock, NULL);
    pthread_cond_init(&m->not_empty, NULL);
    pthread_cond_init(&m->not_full, NULL);
    if ((o->from_dir == NULL) == (o->from_bucket == NULL || o->from_s3 == NULL)) {
        st = r2b_error_set(err, R2B_ERR_INVALID, "migrate from a directory or from a bucket");
        goto done;
    }
    if (o->from_dir) {
        if (stat(o->from_dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
            st = r2b_error_set(err, R2B_ERR_NOT_FOUND, "'%s' is not a directory", o->from_dir);
            goto done;
        }
        root = realpath(o->from_dir, NULL);
        if (root == NULL) {
            st = r2b_error_set_errno(err, R2B_ERR_IO, errno, "cannot resolve '%s'", o->from_dir);
            goto done;
        }
        m->root_len = strlen(root);
    }
    if (o->visibility_map && (st = load_map(m, o->visibility_map, err)) != R2B_OK)
        goto done;
    if (jobs > 256)
        jobs = 256;
    threads = calloc((size_t)jobs, sizeof(*threads));
    if (threads == NULL) {
        st = r2b_error_set(err, R2B_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (!o->dry_run) {
        /* a restart takes over at once what a killed migrate of this host held */
        struct r2b_pipeline *p = r2b_pipeline_new(cfg, err);
        struct r2b_manifest *man = NULL;
        char host_prefix[300];
        uint64_t released = 0;

        snprintf(host_prefix, sizeof(host_prefix),
                 "%.*s:", (int)(strrchr(m->worker_id, ':') - m->worker_id), m->worker_id);
        if (p == NULL || (st = r2b_pipeline_manifest(p, &man, err)) != R2B_OK ||
            (st = r2b_manifest_release_claims(man, host_prefix, local_owner_dead, NULL, &released,
                                              err)) != R2B_OK) {
            if (st == R2B_OK)
                st = err ? err->code : R2B_ERR_CONFIG;
            r2b_pipeline_free(p);
            goto done;
        }
        if (released)
            r2b_log(R2B_LOG_INFO, "took over the claims of %llu stopped migrate process(es)",
                    (unsigned long long)released);
        r2b_pipeline_free(p);
    }
    m->start_ms = r2b_time_mono_ms();
    next_report = m->start_ms + o->progress_ms;
    for (; started < jobs; started++)
        if (pthread_create(&threads[started], NULL, worker, m) != 0)
            break;
    if (started == 0) {
        st = r2b_error_set(err, R2B_ERR_NOMEM, "cannot start worker threads");
        goto done;
    }
    if (root) {
        walk(m, root, 0, &next_report);
    } else {
        struct r2b_s3_client *lc = r2b_s3_client_new(o->from_s3, err);
        struct lister l = {m, next_report};

        if (lc == NULL) {
            st = err ? err->code : R2B_ERR_CONFIG;
        } else {
            r2b_s3_client_set_cancel(lc, o->cancel);
            st = r2b_s3_list(lc, o->from_bucket, o->prefix, on_source_object, &l, err);
            if (st == R2B_ERR_INTERRUPTED)
                st = R2B_OK; /* reported below as an interruption */
            r2b_s3_client_free(lc);
        }
    }
    pthread_mutex_lock(&m->lock);
    m->closed = 1;
    pthread_cond_broadcast(&m->not_empty);
    pthread_mutex_unlock(&m->lock);
    /* progress while the workers finish what is queued */
    for (;;) {
        size_t left;

        pthread_mutex_lock(&m->lock);
        left = m->count;
        pthread_mutex_unlock(&m->lock);
        if (left == 0)
            break;
        r2b_sleep_ms(100);
        if (o->progress_ms > 0 && r2b_time_mono_ms() >= next_report) {
            progress(m, 0);
            next_report = r2b_time_mono_ms() + o->progress_ms;
        }
    }
    for (int i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    progress(m, 1);
    if (st != R2B_OK) {
        /* the source listing failed: what was queued is done, the error stands */
    } else if (m->fatal.code != R2B_OK) {
        if (err)
            *err = m->fatal;
        st = m->fatal.code;
    } else if (cancelled(m)) {
        st = r2b_error_set(err, R2B_ERR_INTERRUPTED, "migration interrupted");
    }
done:
    if (m) {
        m->st.elapsed_ms = m->start_ms ? r2b_time_mono_ms() - m->start_ms : 0;
        m->st.done = 1;
        *stats = m->st;
        free_map(m);
        pthread_mutex_destroy(&m->lock);
        pthread_cond_destroy(&m->not_empty);
        pthread_cond_destroy(&m->not_full);
    }
    free(threads);
    free(root);
    free(m);
    return st;
}
