/*
 * The pipeline: the product's operations, composed from media, s3, manifest
 * and privacy. The order of steps in each operation is the crash-safety
 * argument; see pipeline.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "r2bridge/pipeline.h"
#include "r2bridge/sigv4.h"

struct r2b_pipeline {
    char *endpoint, *bucket, *private_bucket, *alias_host, *manifest_url;
    int path_style;
    struct r2b_s3_client *s3;
    struct r2b_manifest *m;
    struct r2b_media_options mo;
    char *tmp_dir;
    struct r2b_privacy_policy policy;
    struct r2b_sign_counters counters;
    struct r2b_buf url; /* reused by sign: a presign allocates nothing */
};

void r2b_pipeline_free(struct r2b_pipeline *p)
{
    if (p == NULL)
        return;
    r2b_s3_client_free(p->s3);
    r2b_manifest_close(p->m);
    free(p->endpoint);
    free(p->bucket);
    free(p->private_bucket);
    free(p->alias_host);
    free(p->manifest_url);
    free(p->tmp_dir);
    r2b_buf_release(&p->url);
    free(p);
}

struct r2b_pipeline *r2b_pipeline_new(const struct r2b_config *cfg, struct r2b_error *err)
{
    struct r2b_pipeline *p = calloc(1, sizeof(*p));
    struct r2b_s3_options o;

    if (p == NULL) {
        r2b_error_set(err, R2B_ERR_NOMEM, "out of memory");
        return NULL;
    }
    r2b_buf_init(&p->url, 16384);
    if (r2b_config_check_s3(cfg, err) != R2B_OK)
        goto fail;
    p->endpoint = r2b_strdup(cfg->endpoint);
    p->bucket = r2b_strdup(cfg->bucket);
    p->private_bucket = r2b_strdup(cfg->private_bucket);
    p->alias_host = r2b_strdup(cfg->alias_host);
    p->manifest_url = r2b_strdup(cfg->manifest);
    p->tmp_dir = r2b_strdup(cfg->tmp_dir);
    p->path_style = cfg->path_style;
    r2b_s3_options_from_config(&o, cfg);
    p->s3 = r2b_s3_client_new(&o, err);
    if (p->s3 == NULL)
        goto fail;
    r2b_media_options_init(&p->mo);
    p->mo.tmp_dir = p->tmp_dir;
    p->policy.private_ttl_s = cfg->private_ttl_s;
    p->policy.direct_ttl_s = cfg->direct_ttl_s;
    return p;
fail:
    r2b_pipeline_free(p);
    return NULL;
}

struct r2b_s3_client *r2b_pipeline_s3(struct r2b_pipeline *p)
{
    return p->s3;
}

enum r2b_status r2b_pipeline_manifest(struct r2b_pipeline *p, struct r2b_manifest **out,
                                      struct r2b_error *err)
{
    if (p->m == NULL) {
        p->m = r2b_manifest_open(p->manifest_url, err);
        if (p->m == NULL)
            return err ? err->code : R2B_ERR_CONFIG;
    }
    *out = p->m;
    return R2B_OK;
}

/* --- keys ----------------------------------------------------------------------------- */

/* 1 when a '/'-separated segment of `key` is "." or "..". */
static int has_dot_segment(const char *key)
{
    for (const char *seg = key; seg; seg = strchr(seg, '/') ? strchr(seg, '/') + 1 : NULL)
        if ((seg[0] == '.' && (seg[1] == '/' || seg[1] == '\0')) ||
            (seg[0] == '.' && seg[1] == '.' && (seg[2] == '/' || seg[2] == '\0')))
            return 1;
    return 0;
}

int r2b_key_validate(const char *key, struct r2b_error *err)
{
    size_t n = key ? strlen(key) : 0;

    if (n == 0 || n > R2B_S3_MAX_KEY_BYTES) {
        r2b_error_set(err, R2B_ERR_INVALID, "key must be 1 to %d bytes", R2B_S3_MAX_KEY_BYTES);
        return -1;
    }
    /* the character set first: the messages below quote the key */
    for (const char *c = key; *c; c++) {
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              strchr("-_./~+=,", *c) != NULL)) {
            r2b_error_set(err, R2B_ERR_INVALID,
                          "key has a character outside A-Z a-z 0-9 - _ . / ~ + = , (byte 0x%02x)",
                          (unsigned char)*c);
            return -1;
        }
    }
    if (key[0] == '/' || key[n - 1] == '/') {
        r2b_error_set(err, R2B_ERR_INVALID, "key must not start or end with '/': '%.100s'", key);
        return -1;
    }
    if (strstr(key, "//")) {
        r2b_error_set(err, R2B_ERR_INVALID, "key has an empty segment: '%.100s'", key);
        return -1;
    }
    if (has_dot_segment(key)) {
        r2b_error_set(err, R2B_ERR_INVALID, "key has a '.' or '..' segment: '%.100s'", key);
        return -1;
    }
    return 0;
}

int r2b_key_safe(const char *key, struct r2b_error *err)
{
    size_t n = key ? strlen(key) : 0;

    if (n == 0 || n > R2B_S3_MAX_KEY_BYTES) {
        r2b_error_set(err, R2B_ERR_INVALID, "key must be 1 to %d bytes, not %zu",
                      R2B_S3_MAX_KEY_BYTES, n);
        return -1;
    }
    if (!r2b_utf8_valid(key, n)) {
        r2b_error_set(err, R2B_ERR_INVALID, "key is not valid UTF-8");
        return -1;
    }
    for (const char *c = key; *c; c++) {
        if ((unsigned char)*c < 0x20 || *c == 0x7f) {
            r2b_error_set(err, R2B_ERR_INVALID, "key has a control character (byte 0x%02x)",
                          (unsigned char)*c);
            return -1;
        }
    }
    if (key[0] == '/') {
        r2b_error_set(err, R2B_ERR_INVALID, "key must not start with '/': '%.100s'", key);
        return -1;
    }
    if (has_dot_segment(key)) {
        r2b_error_set(err, R2B_ERR_INVALID, "key has a '.' or '..' segment: '%.100s'", key);
        return -1;
    }
    return 0;
}

/*
 * Paperclip's :id_partition, as Mastodon uses it: ("%09d" % id).scan(/\d{3}/)
 * joined by '/'. Digits past the last whole group of three are dropped
 * (1234567890 -> 123/456/789), exactly as Paperclip does, so that keys match
 * the files an instance already has.
 */
void r2b_id_partition(int64_t id, char out[32])
{
    char digits[24];
    int n = snprintf(digits, sizeof(digits), "%09lld", (long long)(id < 0 ? 0 : id));
    int groups = n / 3, o = 0;

    for (int g = 0; g < groups; g++) {
        if (g)
            out[o++] = '/';
        memcpy(out + o, digits + 3 * g, 3);
        o += 3;
    }
    out[o] = '\0';
}

static const char *bucket_for(struct r2b_pipeline *p, enum r2b_visibility vis,
                              struct r2b_error *err)
{
    if (vis == R2B_VIS_PRIVATE || vis == R2B_VIS_DIRECT) {
        /* never store private media in the public bucket: R2 exposes a public bucket whole */
        if (p->private_bucket == NULL || *p->private_bucket == '\0') {
            r2b_error_set(err, R2B_ERR_CONFIG,
                          "%s media needs R2B_PRIVATE_BUCKET (a bucket with no public domain)",
                          r2b_visibility_name(vis));
            return NULL;
        }
        return p->private_bucket;
    }
    if (p->bucket == NULL || *p->bucket == '\0') {
        r2b_error_set(err, R2B_ERR_CONFIG, "S3_BUCKET is not set");
        return NULL;
    }
    return p->bucket;
}

/* "https://<alias>/<key>", or the endpoint's own URL for the object. */
static enum r2b_status public_url(struct r2b_pipeline *p, const char *bucket, const char *key,
                                  char *out, size_t size)
{
    struct r2b_buf b;
    enum r2b_status st = R2B_OK;

    r2b_buf_init(&b, size - 1);
    if (p->alias_host && *p->alias_host) {
        st |= r2b_buf_addf(&b, "%s%s/", strstr(p->alias_host, "://") ? "" : "https://",
                           p->alias_host);
    } else if (p->path_style) {
        st |= r2b_buf_addf(&b, "%s/%s/", p->endpoint, bucket);
    } else {
        const char *host = strstr(p->endpoint, "://");

        st |= r2b_buf_add(&b, p->endpoint, (size_t)(host - p->endpoint) + 3);
        st |= r2b_buf_addf(&b, "%s.%s/", bucket, host + 3);
    }
    st |= r2b_sigv4_uri_encode(&b, key, strlen(key), 1);
    if (st == R2B_OK)
        r2b_strlcpy(out, b.ptr, size);
    r2b_buf_release(&b);
    return st == R2B_OK ? R2B_OK : R2B_ERR_LIMIT;
}

/* The key of a style: explicit (original -> small by segment) or Paperclip's layout. */
static enum r2b_status style_key(const struct r2b_upload_request *req,
                                 const struct r2b_media_result *m, int i, char *out, size_t size,
                                 struct r2b_error *err)
{
    const struct r2b_media_style *s = &m->styles[i];

    if (req->key) {
        const char *seg = strstr(req->key, "/original/");
        const char *dot, *slash;

        if (i == 0) {
            r2b_strlcpy(out, req->key, size);
            return R2B_OK;
        }
        if (seg == NULL)
            return r2b_error_set(err, R2B_ERR_INVALID,
                                 "--key must contain an '/original/' segment so the small style "
                                 "can be stored beside it");
        dot = strrchr(req->key, '.');
        slash = strrchr(req->key, '/');
        if (dot == NULL || dot < slash)
            dot = req->key + strlen(req->key);
        if ((size_t)snprintf(out, size, "%.*s/%s/%.*s.%s", (int)(seg - req->key), req->key,
                             s->name, (int)(dot - (seg + 10)), seg + 10, s->ext) >= size)
            return r2b_error_set(err, R2B_ERR_INVALID, "the %s style's key would be too long",
                                 s->name);
        return R2B_OK;
    }
    {
        /* 16 hex from (class, id, content): a retried job writes the same keys */
        char part[32], seed[256], h[65];
        const char *klass = req->klass ? req->klass : R2B_DEFAULT_CLASS;

        if (req->id <= 0)
            return r2b_error_set(err, R2B_ERR_INVALID, "give --key, or --id with a positive id");
        r2b_id_partition(req->id, part);
        snprintf(seed, sizeof(seed), "r2bridge|%s|%lld|%s", klass, (long long)req->id,
                 m->styles[0].sha256);
        r2b_sha256_hex(seed, strlen(seed), h);
        snprintf(out, size, "%s/%s/%s/%.16s.%s", klass, part, s->name, h, s->ext);
    }
    return R2B_OK;
}

void r2b_upload_result_release(struct r2b_upload_result *r)
{
    if (r)
        r2b_media_result_release(&r->media);
}

enum r2b_status r2b_pipeline_upload(struct r2b_pipeline *p, const struct r2b_upload_request *req,
                                    struct r2b_upload_result *res, struct r2b_error *err)
{
    struct r2b_media_options mo = p->mo;
    struct r2b_manifest *m = NULL;
    const char *bucket;
    int64_t *aud = NULL;
    enum r2b_status st;
    int restricted = req->visibility == R2B_VIS_PRIVATE || req->visibility == R2B_VIS_DIRECT;

    memset(res, 0, sizeof(*res));
    /* configuration and arguments first: nothing is processed for a call that cannot finish */
    if ((bucket = bucket_for(p, req->visibility, err)) == NULL)
        return R2B_ERR_CONFIG;
    if (req->account_id <= 0)
        return r2b_error_set(err, R2B_ERR_INVALID, "an owner account id is required");
    if (req->key && r2b_key_validate(req->key, err) != 0)
        return R2B_ERR_INVALID;
    if ((st = r2b_pipeline_manifest(p, &m, err)) != R2B_OK)
        return st;
    aud = malloc((req->n_audience + 1) * sizeof(*aud));
    if (aud == NULL)
        return r2b_error_set(err, R2B_ERR_NOMEM, "out of memory");
    aud[0] = req->account_id; /* the owner is always in the audience */
    for (size_t i = 0; i < req->n_audience; i++)
        aud[i + 1] = req->audience[i];

    mo.claimed_type = req->claimed_type;
    mo.gifv = req->gifv;
    st = r2b_media_process(req->path, &mo, &res->media, err);
    if (st != R2B_OK) /* a full temp dir comes back retryable (exit 75) */
        goto done;
    /* every key first: nothing is stored for a call that cannot finish */
    for (int i = 0; i < res->media.n_styles; i++) {
        if ((st = style_key(req, &res->media, i, res->styles[i].key, sizeof(res->styles[i].key),
                            err)) != R2B_OK)
            goto done;
        if (r2b_key_validate(res->styles[i].key, err) != 0) {
            st = R2B_ERR_INVALID;
            goto done;
        }
    }
    for (int i = 0; i < res->media.n_styles; i++) {
        const struct r2b_media_style *s = &res->media.styles[i];
        struct r2b_upload_style *u = &res->styles[i];
        struct r2b_manifest_record rec;
        struct r2b_s3_put_options po = {s->content_type, restricted ? R2B_CACHE_CONTROL_PRIVATE
                                                                     : R2B_CACHE_CONTROL_PUBLIC,
                                        0, NULL, NULL, NULL};
        struct r2b_s3_object obj;
        char old_bucket[64] = "";

        r2b_strlcpy(u->name, s->name, sizeof(u->name));
        r2b_strlcpy(u->bucket, bucket, sizeof(u->bucket));
        r2b_strlcpy(u->content_type, s->content_type, sizeof(u->content_type));
        r2b_strlcpy(u->sha256, s->sha256, sizeof(u->sha256));
        u->size_bytes = s->size_bytes;
        u->width = s->width;
        u->height = s->height;
        /* the same key stored before in the other bucket (its visibility changed):
         * that copy goes once this one is stored */
        if (r2b_manifest_get(m, u->key, &rec, NULL) == R2B_OK &&
            rec.state != R2B_STATE_DELETED && strcmp(rec.bucket, bucket) != 0)
            r2b_strlcpy(old_bucket, rec.bucket, sizeof(old_bucket));
        /* 1. pending before the first byte goes out */
        memset(&rec, 0, sizeof(rec));
        r2b_strlcpy(rec.key, u->key, sizeof(rec.key));
        r2b_strlcpy(rec.bucket, bucket, sizeof(rec.bucket));
        r2b_strlcpy(rec.style, s->name, sizeof(rec.style));
        rec.visibility = req->visibility;
        rec.owner_id = req->account_id;
        rec.status_id = req->status_id;
        r2b_strlcpy(rec.content_type, s->content_type, sizeof(rec.content_type));
        rec.size_bytes = s->size_bytes;
        r2b_strlcpy(rec.sha256, s->sha256, sizeof(rec.sha256));
        rec.state = R2B_STATE_PENDING;
        if ((st = r2b_manifest_put(m, &rec, aud, req->n_audience + 1, err)) != R2B_OK)
            goto done;
        /* 2. the object, verified by Content-MD5 and the returned ETag */
        if ((st = r2b_s3_put_file(p->s3, bucket, u->key, s->path, &po, &obj, err)) != R2B_OK)
            goto done;
        if (obj.size_bytes != s->size_bytes) {
            st = r2b_error_set(err, R2B_ERR_INTEGRITY, "'%s': stored %llu bytes of %llu", u->key,
                               (unsigned long long)obj.size_bytes,
                               (unsigned long long)s->size_bytes);
            goto done;
        }
        r2b_strlcpy(u->etag, obj.etag, sizeof(u->etag));
        /* 3. stored, only now, and only if nobody deleted it meanwhile */
        st = r2b_manifest_set_state(m, u->key, R2B_STATE_STORED, obj.etag, obj.size_bytes, err);
        if (st == R2B_ERR_NOT_FOUND) {
            r2b_s3_delete(p->s3, bucket, u->key, NULL);
            st =
                r2b_error_set(err, R2B_ERR_NOT_FOUND, "'%s' was deleted during the upload", u->key);
            goto done;
        }
        if (st != R2B_OK)
            goto done;
        if (old_bucket[0] && (st = r2b_s3_delete(p->s3, old_bucket, u->key, err)) != R2B_OK)
            goto done;
        if (!restricted && (st = public_url(p, bucket, u->key, u->url, sizeof(u->url))) != R2B_OK) {
            r2b_error_set(err, st, "public url too long");
            goto done;
        }
        res->n_styles++;
    }
done:
    free(aud);
    return st;
}

/* --- sign ---------------------------------------------------------------------------------- */

enum r2b_status r2b_pipeline_sign(struct r2b_pipeline *p, const char *key,
                                  const struct r2b_privacy_viewer *viewer, long ttl_s,
                                  struct r2b_sign_result *out, struct r2b_error *err)
{
    struct r2b_manifest_record rec;
    struct r2b_privacy_viewer v = *viewer;
    struct r2b_manifest *m = NULL;
    enum r2b_status st;
    int found;

    out->url[0] = '\0';
    if (r2b_key_safe(key, err) != 0)
        return R2B_ERR_INVALID;
    if ((st = r2b_pipeline_manifest(p, &m, err)) != R2B_OK)
        return st;
    st = r2b_manifest_get(m, key, &rec, err);
    if (st != R2B_OK && st != R2B_ERR_NOT_FOUND && st != R2B_ERR_INVALID)
        return st;
    found = st == R2B_OK;
    r2b_error_clear(err);
    v.in_audience = 0; /* only the manifest says who is in the audience */
    if (found && r2b_privacy_needs_audience(&rec, &v) &&
        (st = r2b_manifest_in_audience(m, key, v.account_id, &v.in_audience, err)) != R2B_OK)
        return st;
    r2b_privacy_decide(found ? &rec : NULL, &v, ttl_s, &p->policy, &out->decision);
    switch (out->decision.outcome) {
    case R2B_PRIVACY_PUBLIC_URL:
        if ((st = public_url(p, rec.bucket, key, out->url, sizeof(out->url))) != R2B_OK)
            return r2b_error_set(err, st, "public url too long");
        p->counters.public_urls++;
        break;
    case R2B_PRIVACY_PRESIGNED:
        st = r2b_s3_presign(p->s3, "GET", rec.bucket, key, out->decision.ttl_s, 0, &p->url, err);
        if (st != R2B_OK)
            return st;
        if (p->url.len >= sizeof(out->url))
            return r2b_error_set(err, R2B_ERR_LIMIT, "presigned url too long");
        memcpy(out->url, p->url.ptr, p->url.len + 1);
        p->counters.presigned++;
        break;
    default:
        p->counters.denied++;
        break;
    }
    return R2B_OK;
}

void r2b_pipeline_sign_counters(const struct r2b_pipeline *p, struct r2b_sign_counters *out)
{
    *out = p->counters;
}

/* --- visibility --------------------------------------------------------------------------- */

enum r2b_status r2b_pipeline_set_visibility(struct r2b_pipeline *p, const char *key,
                                            enum r2b_visibility vis, struct r2b_error *err)
{
    struct r2b_manifest_record rec;
    struct r2b_manifest *m = NULL;
    struct r2b_s3_object head;
    const char *target, *other;
    enum r2b_status st;
    int restricted = vis == R2B_VIS_PRIVATE || vis == R2B_VIS_DIRECT;
    struct r2b_s3_put_options meta = {NULL, restricted ? R2B_CACHE_CONTROL_PRIVATE
                                                       : R2B_CACHE_CONTROL_PUBLIC,
                                      0, NULL, NULL, NULL};

    if (r2b_key_safe(key, err) != 0)
        return R2B_ERR_INVALID;
    if ((target = bucket_for(p, vis, err)) == NULL)
        return R2B_ERR_CONFIG;
    if ((st = r2b_pipeline_manifest(p, &m, err)) != R2B_OK ||
        (st = r2b_manifest_get(m, key, &rec, err)) != R2B_OK)
        return st;
    if (rec.state == R2B_STATE_PENDING) {
        /* its upload has not finished: moving later must still happen (the new
         * visibility may be a more private one), so the caller retries (exit 75) */
        r2b_error_set(err, R2B_ERR_BUSY,
                      "'%s' is still pending (its upload has not finished): "
                      "try again once it is stored",
                      key);
        if (err)
            err->retryable = 1;
        return R2B_ERR_BUSY;
    }
    if (rec.state != R2B_STATE_STORED)
        return r2b_error_set(err, R2B_ERR_NOT_FOUND, "'%s' is %s: nothing to move", key,
                             r2b_state_name(rec.state));
    meta.content_type = rec.content_type;
    if (strcmp(rec.bucket, target) != 0) {
        /* 1. the object in the target bucket (a rerun finds it there already) */
        st = r2b_s3_head(p->s3, target, key, &head, err);
        if (st == R2B_ERR_NOT_FOUND || (st == R2B_OK && head.size_bytes != rec.size_bytes)) {
            if ((st = r2b_s3_copy(p->s3, rec.bucket, key, target, key, &meta, NULL, err)) !=
                    R2B_OK ||
                (st = r2b_s3_head(p->s3, target, key, &head, err)) != R2B_OK)
                return st;
        } else if (st != R2B_OK) {
            return st;
        }
        /* 2. verified */
        if (head.size_bytes != rec.size_bytes)
            return r2b_error_set(err, R2B_ERR_INTEGRITY,
                                 "copy of '%s' has %llu bytes, the record says %llu", key,
                                 (unsigned long long)head.size_bytes,
                                 (unsigned long long)rec.size_bytes);
    }
    /* 3. the record points at the new place: from now on the check uses it */
    if ((st = r2b_manifest_set_visibility(m, key, vis, target, err)) != R2B_OK)
        return st;
    /* 4. no copy left in the other bucket (also finishes an interrupted earlier move) */
    other = restricted ? p->bucket : p->private_bucket;
    if (other && *other && strcmp(other, target) != 0)
        st = r2b_s3_delete(p->s3, other, key, err);
    return st;
}

/* --- delete --------------------------------------------------------------------------------- */

static enum r2b_status flush_batch(struct r2b_pipeline *p, const char *bucket, const char **batch,
                                   size_t *n, struct r2b_error *err)
{
    enum r2b_status st = R2B_OK;

    if (*n && bucket && *bucket)
        st = r2b_s3_delete_many(p->s3, bucket, batch, *n, err);
    *n = 0;
    return st;
}

enum r2b_status r2b_pipeline_delete(struct r2b_pipeline *p, const char *const *keys, size_t n,
                                    size_t *n_deleted, struct r2b_error *err)
{
    const char **pub = NULL, **priv = NULL;
    size_t npub = 0, npriv = 0;
    struct r2b_manifest *m = NULL;
    enum r2b_status st;

    *n_deleted = 0;
    for (size_t i = 0; i < n; i++) /* every key first: nothing deleted for a bad batch */
        if (r2b_key_safe(keys[i], err) != 0)
            return R2B_ERR_INVALID;
    if ((st = r2b_pipeline_manifest(p, &m, err)) != R2B_OK)
        return st;
    pub = malloc(R2B_S3_MAX_DELETE_KEYS * sizeof(*pub));
    priv = malloc(R2B_S3_MAX_DELETE_KEYS * sizeof(*priv));
    if (pub == NULL || priv == NULL) {
        st = r2b_error_set(err, R2B_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        struct r2b_manifest_record rec;
        int known;

        /* 1. the record first: from this moment the check denies */
        st = r2b_manifest_get(m, keys[i], &rec, err);
        if (st != R2B_OK && st != R2B_ERR_NOT_FOUND)
            goto done;
        known = st == R2B_OK;
        if (known && (st = r2b_manifest_set_state(m, keys[i], R2B_STATE_DELETED, NULL, 0, err)) !=
                         R2B_OK)
            goto done;
        /* 2. then the object, from both buckets (a stray copy from an earlier
         * visibility goes too), and from the record's bucket if it is neither */
        if (p->bucket && *p->bucket)
            pub[npub++] = keys[i];
        if (p->private_bucket && *p->private_bucket)
            priv[npriv++] = keys[i];
        if (known && (!p->bucket || strcmp(rec.bucket, p->bucket) != 0) &&
            (!p->private_bucket || strcmp(rec.bucket, p->private_bucket) != 0) &&
            (st = r2b_s3_delete(p->s3, rec.bucket, keys[i], err)) != R2B_OK)
            goto done; /* a bucket no longer configured */
        if ((npub == R2B_S3_MAX_DELETE_KEYS &&
             (st = flush_batch(p, p->bucket, pub, &npub, err)) != R2B_OK) ||
            (npriv == R2B_S3_MAX_DELETE_KEYS &&
             (st = flush_batch(p, p->private_bucket, priv, &npriv, err)) != R2B_OK))
            goto done;
        (*n_deleted)++;
    }
    if ((st = flush_batch(p, p->bucket, pub, &npub, err)) == R2B_OK)
        st = flush_batch(p, p->private_bucket, priv, &npriv, err);
done:
    free(pub);
    free(priv);
    return st;
}
