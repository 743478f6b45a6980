/* The manifest interface: picks a backend from the URL and keeps the rules
 * that do not depend on the database (argument checks, names, the clock). */
#include <stdlib.h>
#include <string.h>

#include "manifest_int.h"

static const char *const vis_names[] = {"public", "unlisted", "private", "direct"};
static const char *const state_names[] = {"pending", "stored", "deleted"};

const char *r2b_visibility_name(enum r2b_visibility v)
{
    return (unsigned)v < 4 ? vis_names[v] : "unknown";
}

int r2b_visibility_parse(const char *s, enum r2b_visibility *out)
{
    for (int i = 0; s && i < 4; i++)
        if (strcmp(s, vis_names[i]) == 0) {
            *out = (enum r2b_visibility)i;
            return 0;
        }
    return -1;
}

const char *r2b_state_name(enum r2b_state s)
{
    return (unsigned)s < 3 ? state_names[s] : "unknown";
}

int r2b_state_parse(const char *s, enum r2b_state *out)
{
    for (int i = 0; s && i < 3; i++)
        if (strcmp(s, state_names[i]) == 0) {
            *out = (enum r2b_state)i;
            return 0;
        }
    return -1;
}

struct r2b_manifest *r2b_manifest_open(const char *url, struct r2b_error *err)
{
    if (url == NULL || *url == '\0') {
        r2b_error_set(err, R2B_ERR_CONFIG,
                      "no manifest configured (set R2B_MANIFEST, e.g. "
                      "sqlite:///var/lib/r2bridge/manifest.db)");
        return NULL;
    }
    if (strncmp(url, "sqlite://", 9) == 0) {
        const char *path = url + 9;

        if (*path == '\0') {
            r2b_error_set(err, R2B_ERR_CONFIG, "manifest url '%s' has no path", url);
            return NULL;
        }
        return r2b_manifest__open_sqlite(path, err);
    }
    if (strncmp(url, "postgresql://", 13) == 0 || strncmp(url, "postgres://", 11) == 0)
        return r2b_manifest__open_pg(url, err);
    {
        /* name the scheme only: the rest of a URL may hold a password */
        size_t scheme = strcspn(url, ":/@");

        r2b_error_set(err, R2B_ERR_CONFIG,
                      "manifest url must start with sqlite:// or postgresql://, not '%.*s...'",
                      (int)(scheme < 20 ? scheme : 20), url);
    }
    return NULL;
}

void r2b_manifest_close(struct r2b_manifest *m)
{
    if (m)
        m->ops->close(m);
}

const char *r2b_manifest_backend(const struct r2b_manifest *m)
{
    return m->ops->name;
}

static enum r2b_status check_key(const char *key, struct r2b_error *err)
{
    size_t n = key ? strlen(key) : 0;

    if (n == 0 || n > R2B_MANIFEST_MAX_KEY_BYTES || !r2b_utf8_valid(key, n))
        return r2b_error_set(err, R2B_ERR_INVALID, "invalid manifest key");
    return R2B_OK;
}

enum r2b_status r2b_manifest_put(struct r2b_manifest *m, const struct r2b_manifest_record *rec,
                                 const int64_t *audience, size_t n_audience, struct r2b_error *err)
{
    enum r2b_status st = check_key(rec->key, err);

    if (st != R2B_OK)
        return st;
    if ((unsigned)rec->visibility > R2B_VIS_DIRECT || (unsigned)rec->state > R2B_STATE_DELETED)
        return r2b_error_set(err, R2B_ERR_INVALID, "invalid visibility or state");
    if (rec->size_bytes > (uint64_t)INT64_MAX ||
        !r2b_utf8_valid(rec->source_path, strnlen(rec->source_path, sizeof(rec->source_path))) ||
        !r2b_utf8_valid(rec->content_type, strnlen(rec->content_type, sizeof(rec->content_type))))
        return r2b_error_set(
            err, R2B_ERR_INVALID,
            "record for '%.100s' has a size over 2^63 or a field that is not UTF-8", rec->key);
    if (n_audience > R2B_MANIFEST_MAX_AUDIENCE)
        return r2b_error_set(err, R2B_ERR_LIMIT, "audience of %zu accounts is over the limit of %d",
                             n_audience, R2B_MANIFEST_MAX_AUDIENCE);
    return m->ops->put(m, rec, audience, n_audience, r2b_time_now(), err);
}

enum r2b_status r2b_manifest_claim(struct r2b_manifest *m, const struct r2b_manifest_record *rec,
                                   const int64_t *audience, size_t n_audience, const char *worker,
                                   long ttl_s, int *claimed, struct r2b_error *err)
{
    int64_t now = r2b_time_now();
    enum r2b_status st = check_key(rec->key, err);

    *claimed = 0;
    if (st != R2B_OK)
        return st;
    if (worker == NULL || *worker == '\0' || ttl_s < 1)
        return r2b_error_set(err, R2B_ERR_INVALID, "a claim needs a worker name and a ttl");
    if ((unsigned)rec->visibility > R2B_VIS_DIRECT || (unsigned)rec->state > R2B_STATE_DELETED ||
        rec->size_bytes > (uint64_t)INT64_MAX)
        return r2b_error_set(err, R2B_ERR_INVALID, "invalid record to claim");
    if (n_audience > R2B_MANIFEST_MAX_AUDIENCE)
        return r2b_error_set(err, R2B_ERR_LIMIT, "audience over the limit");
    return m->ops->claim(m, rec, audience, n_audience, worker, now, now + ttl_s, claimed, err);
}

#define MAX_RELEASE 256

struct owners {
    char *names[MAX_RELEASE];
    size_t n;
    int (*dead)(void *ud, const char *owner);
    void *ud;
};

static int collect_dead(void *ud, const char *owner)
{
    struct owners *o = ud;

    if (o->n < MAX_RELEASE && o->dead(o->ud, owner))
        o->names[o->n++] = r2b_strdup(owner);
    return 0;
}

enum r2b_status r2b_manifest_release_claims(struct r2b_manifest *m, const char *owner_prefix,
                                            int (*dead)(void *ud, const char *owner), void *ud,
                                            uint64_t *released, struct r2b_error *err)
{
    struct owners o;
    enum r2b_status st;

    memset(&o, 0, sizeof(o));
    o.dead = dead;
    o.ud = ud;
    if (released)
        *released = 0;
    /* first collect (the listing must end before writing), then release */
    st = m->ops->claim_owners(m, owner_prefix ? owner_prefix : "", collect_dead, &o, err);
    for (size_t i = 0; i < o.n; i++) {
        if (st == R2B_OK && o.names[i] &&
            (st = m->ops->release_owner(m, o.names[i], err)) == R2B_OK && released)
            (*released)++;
        free(o.names[i]);
    }
    return st;
}

enum r2b_status r2b_manifest_get(struct r2b_manifest *m, const char *key,
                                 struct r2b_manifest_record *out, struct r2b_error *err)
{
    enum r2b_status st = check_key(key, err);

    return st != R2B_OK ? st : m->ops->get(m, key, out, err);
}

enum r2b_status r2b_manifest_set_state(struct r2b_manifest *m, const char *key,
                                       enum r2b_state state, const char *etag, uint64_t size_bytes,
                                       struct r2b_error *err)
{
    enum r2b_status st = check_key(key, err);

    if (st != R2B_OK)
        return st;
    if ((unsigned)state > R2B_STATE_DELETED)
        return r2b_error_set(err, R2B_ERR_INVALID, "invalid state");
    return m->ops->set_state(m, key, state, etag, size_bytes, r2b_time_now(), err);
}

enum r2b_status r2b_manifest_set_visibility(struct r2b_manifest *m, const char *key,
                                            enum r2b_visibility vis, const char *bucket,
                                            struct r2b_error *err)
{
    enum r2b_status st = check_key(key, err);

    if (st != R2B_OK)
        return st;
    if ((unsigned)vis > R2B_VIS_DIRECT || bucket == NULL || *bucket == '\0')
        return r2b_error_set(err, R2B_ERR_INVALID, "invalid visibility or bucket");
    return m->ops->set_visibility(m, key, vis, bucket, r2b_time_now(), err);
}

enum r2b_status r2b_manifest_in_audience(struct r2b_manifest *m, const char *key,
                                         int64_t account_id, int *yes, struct r2b_error *err)
{
    enum r2b_status st = check_key(key, err);

    *yes = 0;
    return st != R2B_OK ? st : m->ops->in_audience(m, key, account_id, yes, err);
}

static enum r2b_status audience_change(struct r2b_manifest *m, const char *key, const int64_t *ids,
                                       size_t n, int add, struct r2b_error *err)
{
    enum r2b_status st = check_key(key, err);

    if (st != R2B_OK)
        return st;
    if (n > R2B_MANIFEST_MAX_AUDIENCE)
        return r2b_error_set(err, R2B_ERR_LIMIT, "too many accounts at once");
    return m->ops->audience_change(m, key, ids, n, add, r2b_time_now(), err);
}

enum r2b_status r2b_manifest_audience_add(struct r2b_manifest *m, const char *key,
                                          const int64_t *ids, size_t n, struct r2b_error *err)
{
    return audience_change(m, key, ids, n, 1, err);
}

enum r2b_status r2b_manifest_audience_remove(struct r2b_manifest *m, const char *key,
                                             const int64_t *ids, size_t n, struct r2b_error *err)
{
    return audience_change(m, key, ids, n, 0, err);
}

enum r2b_status r2b_manifest_audience(struct r2b_manifest *m, const char *key, int64_t **ids,
                                      size_t *n, struct r2b_error *err)
{
    enum r2b_status st = check_key(key, err);

    *ids = NULL;
    *n = 0;
    return st != R2B_OK ? st : m->ops->audience(m, key, ids, n, err);
}

enum r2b_status r2b_manifest_list(struct r2b_manifest *m, int visibility, int state,
                                  const char *key_prefix, r2b_manifest_cb cb, void *ud,
                                  struct r2b_error *err)
{
    return m->ops->list(m, visibility, state, key_prefix, cb, ud, err);
}
