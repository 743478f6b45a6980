/*
 * Configuration from the environment and a Mastodon .env.production file.
 * The env file is parsed into a small private table; the process environment
 * wins over it, as with Mastodon's dotenv.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "r2bridge/config.h"

#define DEFAULT_MULTIPART_THRESHOLD (15ULL * 1024 * 1024) /* Mastodon's default */
#define DEFAULT_PART_SIZE (16ULL * 1024 * 1024)
#define MIN_PART_SIZE (5ULL * 1024 * 1024)        /* R2/S3: 5 MiB minimum part */
#define MAX_PART_SIZE (5ULL * 1024 * 1024 * 1024) /* R2/S3: 5 GiB maximum part */
#define MAX_ENV_ENTRIES 512

struct env_entry {
    char *name;
    char *value;
};

struct env_table {
    struct env_entry e[MAX_ENV_ENTRIES];
    size_t n;
};

static const char *const secret_names[] = {"AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"};

static int is_secret_name(const char *name)
{
    for (size_t i = 0; i < sizeof(secret_names) / sizeof(secret_names[0]); i++)
        if (strcmp(name, secret_names[i]) == 0)
            return 1;
    return 0;
}

static void wipe(char *s)
{
    if (s) {
        volatile char *v = s;
        while (*v)
            *v++ = 0;
    }
}

static void table_free(struct env_table *t)
{
    for (size_t i = 0; i < t->n; i++) {
        wipe(t->e[i].value);
        free(t->e[i].name);
        free(t->e[i].value);
    }
    t->n = 0;
}

void r2b_config_init(struct r2b_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->multipart_threshold_bytes = DEFAULT_MULTIPART_THRESHOLD;
    cfg->part_size_bytes = DEFAULT_PART_SIZE;
    cfg->parallel = 4;
    cfg->connect_timeout_ms = 5000;
    cfg->read_timeout_ms = 5000;
    cfg->retry_limit = 3;
    cfg->private_ttl_s = 900;
    cfg->direct_ttl_s = 300;
}

void r2b_config_release(struct r2b_config *cfg)
{
    if (cfg == NULL)
        return;
    wipe(cfg->secret_key);
    wipe(cfg->session_token);
    free(cfg->endpoint);
    free(cfg->bucket);
    free(cfg->region);
    free(cfg->alias_host);
    free(cfg->private_bucket);
    free(cfg->manifest);
    free(cfg->access_key);
    free(cfg->secret_key);
    free(cfg->session_token);
    free(cfg->tmp_dir);
    r2b_config_init(cfg);
}

int r2b_config_parse_bool(const char *s)
{
    static const char *const yes[] = {"true", "1", "yes", "on"};
    static const char *const no[] = {"false", "0", "no", "off"};

    if (s == NULL)
        return -1;
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0)
            return 1;
        if (strcasecmp(s, no[i]) == 0)
            return 0;
    }
    return -1;
}

/* Parses one value: quoted ('...' literal, "..." with \n \" \\ escapes) or bare (comment-stripped). */
static char *parse_value(const char *p, const char *end)
{
    struct r2b_buf b;

    r2b_buf_init(&b, R2B_CONFIG_MAX_VALUE_BYTES);
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    if (p < end && (*p == '\'' || *p == '"')) {
        char q = *p++;

        for (; p < end && *p != q; p++) {
            char c = *p;

            if (q == '"' && c == '\\' && p + 1 < end) {
                p++;
                c = *p == 'n' ? '\n' : *p;
            }
            if (r2b_buf_addc(&b, c) != R2B_OK)
                goto fail;
        }
        if (p >= end)
            goto fail; /* unterminated quote */
    } else {
        const char *v = p;
        const char *e = p;

        /* a '#' preceded by whitespace starts a comment */
        for (; e < end; e++)
            if (*e == '#' && (e == v || e[-1] == ' ' || e[-1] == '\t'))
                break;
        while (e > v && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
            e--;
        if (r2b_buf_add(&b, v, (size_t)(e - v)) != R2B_OK)
            goto fail;
    }
    return r2b_buf_detach(&b);
fail:
    wipe(b.ptr);
    r2b_buf_release(&b);
    return NULL;
}

static enum r2b_status parse_env_file(const char *path, struct env_table *t, int *insecure,
                                      struct r2b_error *err)
{
    struct r2b_buf data;
    struct stat st;
    char chunk[4096];
    ssize_t got;
    int fd = -1, lineno = 0, holds_secret = 0;
    enum r2b_status rc = R2B_OK;
    const char *p, *end;

    r2b_buf_init(&data, R2B_CONFIG_MAX_ENV_FILE_BYTES);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = r2b_error_set_errno(err, R2B_ERR_CONFIG, errno, "cannot open env file '%s'", path);
        goto cleanup;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = r2b_error_set(err, R2B_ERR_CONFIG, "env file '%s' is not a regular file", path);
        goto cleanup;
    }
    while ((got = read(fd, chunk, sizeof(chunk))) > 0) {
        if (r2b_buf_add(&data, chunk, (size_t)got) != R2B_OK) {
            rc = r2b_error_set(err, R2B_ERR_CONFIG, "env file '%s' is larger than %d bytes", path,
                               R2B_CONFIG_MAX_ENV_FILE_BYTES);
            goto cleanup;
        }
    }
    if (got < 0) {
        rc = r2b_error_set_errno(err, R2B_ERR_CONFIG, errno, "cannot read env file '%s'", path);
        goto cleanup;
    }
    p = r2b_buf_str(&data);
    end = p + data.len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *line = p, *eq, *ne;

        if (eol == NULL)
            eol = end;
        p = eol + 1;
        lineno++;
        /* A NUL would end a name or value early: "S3_BUCKET\0x=" is not S3_BUCKET
         * (found by fuzz_config: values were silently cut at the NUL). */
        if (memchr(line, '\0', (size_t)(eol - line)) != NULL) {
            rc = r2b_error_set(err, R2B_ERR_CONFIG, "env file '%s' line %d has a NUL byte", path,
                               lineno);
            goto cleanup;
        }
        while (line < eol && (*line == ' ' || *line == '\t'))
            line++;
        if (line == eol || *line == '#' || (eol - line == 1 && *line == '\r'))
            continue;
        if (eol - line > 7 && strncmp(line, "export ", 7) == 0)
            line += 7;
        eq = memchr(line, '=', (size_t)(eol - line));
        if (eq == NULL) {
            rc = r2b_error_set(err, R2B_ERR_CONFIG, "env file '%s' line %d: expected NAME=value",
                               path, lineno);
            goto cleanup;
        }
        ne = eq;
        while (ne > line && (ne[-1] == ' ' || ne[-1] == '\t'))
            ne--;
        if (t->n >= MAX_ENV_ENTRIES) {
            rc = r2b_error_set(err, R2B_ERR_CONFIG, "env file '%s' has more than %d entries", path,
                               MAX_ENV_ENTRIES);
            goto cleanup;
        }
        t->e[t->n].name = strndup(line, (size_t)(ne - line));
        t->e[t->n].value = parse_value(eq + 1, eol);
        if (t->e[t->n].name == NULL || t->e[t->n].value == NULL) {
            free(t->e[t->n].name);
            free(t->e[t->n].value);
            rc = r2b_error_set(err, R2B_ERR_CONFIG,
                               "env file '%s' line %d: unterminated quote or value too long", path,
                               lineno);
            goto cleanup;
        }
        if (is_secret_name(t->e[t->n].name) && t->e[t->n].value[0] != '\0')
            holds_secret = 1;
        t->n++;
    }
    *insecure = holds_secret && (st.st_mode & (S_IRGRP | S_IROTH | S_IWGRP | S_IWOTH)) != 0;
cleanup:
    if (fd >= 0)
        close(fd);
    if (data.ptr)
        memset(data.ptr, 0, data.len);
    r2b_buf_release(&data);
    return rc;
}

static const char *lookup(const struct env_table *t, const char *name)
{
    const char *v = getenv(name);

    if (v != NULL && *v != '\0')
        return v;
    /* last assignment in the file wins, as with a shell */
    for (size_t i = t->n; i > 0; i--)
        if (strcmp(t->e[i - 1].name, name) == 0)
            return t->e[i - 1].value;
    return NULL;
}

static enum r2b_status set_str(char **dst, const struct env_table *t, const char *name)
{
    const char *v = lookup(t, name);

    if (v == NULL || *v == '\0')
        return R2B_OK;
    free(*dst);
    *dst = r2b_strdup(v);
    return *dst ? R2B_OK : R2B_ERR_NOMEM;
}

/* A true/false setting; left as it is when unset or empty. */
static enum r2b_status set_bool(int *dst, const struct env_table *t, const char *name,
                                struct r2b_error *err)
{
    const char *v = lookup(t, name);
    int b;

    if (v == NULL || *v == '\0')
        return R2B_OK;
    if ((b = r2b_config_parse_bool(v)) < 0)
        return r2b_error_set(err, R2B_ERR_CONFIG, "%s must be true or false, not '%s'", name, v);
    *dst = b;
    return R2B_OK;
}

static enum r2b_status set_u64(uint64_t *dst, const struct env_table *t, const char *name,
                               uint64_t min, uint64_t max, struct r2b_error *err)
{
    const char *v = lookup(t, name);
    uint64_t x;

    if (v == NULL || *v == '\0')
        return R2B_OK;
    if (r2b_parse_u64(v, max, &x) != 0 || x < min)
        return r2b_error_set(err, R2B_ERR_CONFIG,
                             "%s must be a whole number from %llu to %llu, not '%s'", name,
                             (unsigned long long)min, (unsigned long long)max, v);
    *dst = x;
    return R2B_OK;
}

enum r2b_status r2b_config_load(struct r2b_config *cfg, const char *env_file, struct r2b_error *err)
{
    struct env_table *t = calloc(1, sizeof(*t));
    enum r2b_status rc = R2B_OK;
    uint64_t n;
    static const char *const str_names[] = {"S3_ENDPOINT", "S3_BUCKET", "S3_REGION",
                                            "S3_ALIAS_HOST", "R2B_PRIVATE_BUCKET", "R2B_MANIFEST",
                                            "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                            "AWS_SESSION_TOKEN", "R2B_TMPDIR"};
    char **str_dst[] = {&cfg->endpoint, &cfg->bucket, &cfg->region,
                        &cfg->alias_host, &cfg->private_bucket, &cfg->manifest,
                        &cfg->access_key, &cfg->secret_key, &cfg->session_token,
                        &cfg->tmp_dir};

    if (t == NULL)
        return r2b_error_set(err, R2B_ERR_NOMEM, "out of memory loading configuration");
    if (env_file) {
        rc = parse_env_file(env_file, t, &cfg->env_file_insecure, err);
        if (rc != R2B_OK)
            goto cleanup;
    }
    for (size_t i = 0; i < sizeof(str_names) / sizeof(str_names[0]); i++) {
        rc = set_str(str_dst[i], t, str_names[i]);
        if (rc != R2B_OK) {
            r2b_error_set(err, rc, "out of memory loading configuration");
            goto cleanup;
        }
    }
    if (cfg->region == NULL && (cfg->region = r2b_strdup("auto")) == NULL) {
        rc = r2b_error_set(err, R2B_ERR_NOMEM, "out of memory loading configuration");
        goto cleanup;
    }
    if ((rc = set_bool(&cfg->path_style, t, "S3_OVERRIDE_PATH_STYLE", err)) != R2B_OK ||
        (rc = set_bool(&cfg->payload_sha256, t, "R2B_PAYLOAD_SHA256", err)) != R2B_OK)
        goto cleanup;
    if ((rc = set_u64(&cfg->multipart_threshold_bytes, t, "S3_MULTIPART_THRESHOLD", 0,
                      MAX_PART_SIZE * 10000, err)) != R2B_OK ||
        (rc = set_u64(&cfg->part_size_bytes, t, "R2B_PART_SIZE", MIN_PART_SIZE, MAX_PART_SIZE,
                      err)) != R2B_OK)
        goto cleanup;
    n = (uint64_t)cfg->parallel;
    if ((rc = set_u64(&n, t, "R2B_PARALLEL", 1, 64, err)) != R2B_OK)
        goto cleanup;
    cfg->parallel = (int)n;
    n = (uint64_t)cfg->retry_limit;
    if ((rc = set_u64(&n, t, "S3_RETRY_LIMIT", 0, 20, err)) != R2B_OK)
        goto cleanup;
    cfg->retry_limit = (int)n;
    n = (uint64_t)cfg->private_ttl_s;
    if ((rc = set_u64(&n, t, "R2B_PRIVATE_TTL", 1, 604800, err)) != R2B_OK)
        goto cleanup;
    cfg->private_ttl_s = (long)n;
    n = (uint64_t)cfg->direct_ttl_s;
    if ((rc = set_u64(&n, t, "R2B_DIRECT_TTL", 1, 604800, err)) != R2B_OK)
        goto cleanup;
    cfg->direct_ttl_s = (long)n;
    n = (uint64_t)cfg->connect_timeout_ms / 1000;
    if ((rc = set_u64(&n, t, "S3_OPEN_TIMEOUT", 1, 600, err)) != R2B_OK)
        goto cleanup;
    cfg->connect_timeout_ms = (long)n * 1000;
    n = (uint64_t)cfg->read_timeout_ms / 1000;
    if ((rc = set_u64(&n, t, "S3_READ_TIMEOUT", 1, 3600, err)) != R2B_OK)
        goto cleanup;
    cfg->read_timeout_ms = (long)n * 1000;
cleanup:
    table_free(t);
    free(t);
    return rc;
}

enum r2b_status r2b_config_check_s3(const struct r2b_config *cfg, struct r2b_error *err)
{
    if (cfg->endpoint == NULL)
        return r2b_error_set(err, R2B_ERR_CONFIG, "S3_ENDPOINT is not set");
    if (strncmp(cfg->endpoint, "http://", 7) != 0 && strncmp(cfg->endpoint, "https://", 8) != 0)
        return r2b_error_set(err, R2B_ERR_CONFIG,
                             "S3_ENDPOINT must start with http:// or https://, not '%s'",
                             cfg->endpoint);
    if (cfg->access_key == NULL)
        return r2b_error_set(err, R2B_ERR_CONFIG, "AWS_ACCESS_KEY_ID is not set");
    if (cfg->secret_key == NULL)
        return r2b_error_set(err, R2B_ERR_CONFIG, "AWS_SECRET_ACCESS_KEY is not set");
    return R2B_OK;
}

static enum r2b_status describe_line(struct r2b_buf *out, const char *name, const char *value)
{
    return r2b_buf_addf(out, "%s=%s\n", name, value ? value : "<unset>");
}

/*
 * A URL as it may be shown: the password of "scheme://user:password@host"
 * and the value of every "password=" query parameter become <redacted>
 * (a PostgreSQL manifest URL may carry either).
 */
static enum r2b_status describe_url(struct r2b_buf *out, const char *name, const char *url)
{
    const char *p, *auth, *at, *colon, *end;
    enum r2b_status st;

    if (url == NULL)
        return describe_line(out, name, NULL);
    st = r2b_buf_addf(out, "%s=", name);
    auth = strstr(url, "://");
    auth = auth ? auth + 3 : url;
    end = auth + strcspn(auth, "/?#");
    at = memchr(auth, '@', (size_t)(end - auth));
    colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    if (colon) { /* scheme://user:<redacted>@ */
        st |= r2b_buf_add(out, url, (size_t)(colon + 1 - url));
        st |= r2b_buf_addf(out, "<redacted>");
        p = at;
    } else {
        p = url;
    }
    while (*p) {
        const char *q = strstr(p, "password=");

        if (q == NULL || q < end) {
            if (q == NULL) {
                st |= r2b_buf_addf(out, "%s", p);
                break;
            }
            q += 9; /* before the query: not a parameter, copy through */
            st |= r2b_buf_add(out, p, (size_t)(q - p));
            p = q;
            continue;
        }
        if (q > p && q[-1] != '?' && q[-1] != '&') { /* "xpassword=": not ours */
            st |= r2b_buf_add(out, p, (size_t)(q + 9 - p));
            p = q + 9;
            continue;
        }
        st |= r2b_buf_add(out, p, (size_t)(q + 9 - p));
        st |= r2b_buf_addf(out, "<redacted>");
        p = q + 9 + strcspn(q + 9, "&#");
    }
    st |= r2b_buf_addf(out, "\n");
    return st;
}

enum r2b_status r2b_config_describe(const struct r2b_config *cfg, struct r2b_buf *out)
{
    enum r2b_status st = R2B_OK;

    st |= describe_line(out, "S3_ENDPOINT", cfg->endpoint);
    st |= describe_line(out, "S3_BUCKET", cfg->bucket);
    st |= describe_line(out, "S3_REGION", cfg->region);
    st |= describe_line(out, "S3_ALIAS_HOST", cfg->alias_host);
    st |= describe_line(out, "S3_OVERRIDE_PATH_STYLE", cfg->path_style ? "true" : "false");
    st |= describe_line(out, "R2B_PAYLOAD_SHA256", cfg->payload_sha256 ? "true" : "false");
    st |= r2b_buf_addf(out, "S3_MULTIPART_THRESHOLD=%llu\n",
                       (unsigned long long)cfg->multipart_threshold_bytes);
    st |= r2b_buf_addf(out, "S3_OPEN_TIMEOUT=%ld\n", cfg->connect_timeout_ms / 1000);
    st |= r2b_buf_addf(out, "S3_READ_TIMEOUT=%ld\n", cfg->read_timeout_ms / 1000);
    st |= r2b_buf_addf(out, "S3_RETRY_LIMIT=%d\n", cfg->retry_limit);
    st |= describe_line(out, "AWS_ACCESS_KEY_ID", cfg->access_key);
    st |= describe_line(out, "AWS_SECRET_ACCESS_KEY", cfg->secret_key ? "<redacted>" : NULL);
    st |= describe_line(out, "AWS_SESSION_TOKEN", cfg->session_token ? "<redacted>" : NULL);
    st |= describe_line(out, "R2B_PRIVATE_BUCKET", cfg->private_bucket);
    st |= describe_url(out, "R2B_MANIFEST", cfg->manifest);
    st |= r2b_buf_addf(out, "R2B_PART_SIZE=%llu\n", (unsigned long long)cfg->part_size_bytes);
    st |= r2b_buf_addf(out, "R2B_PARALLEL=%d\n", cfg->parallel);
    st |= r2b_buf_addf(out, "R2B_PRIVATE_TTL=%ld\n", cfg->private_ttl_s);
    st |= r2b_buf_addf(out, "R2B_DIRECT_TTL=%ld\n", cfg->direct_ttl_s);
    st |= describe_line(out, "R2B_TMPDIR", cfg->tmp_dir);
    return st == R2B_OK ? R2B_OK : R2B_ERR_NOMEM;
}
