/*
 * Fuzz target: a Mastodon `.env.production` file read by r2b_config_load()
 * (the file is written to a private temp directory: the loader takes a
 * path), then the endpoint it names parsed by the S3 client and used for a
 * presigned URL (no network: presigning is local).
 * Invariants: errors are one line and never contain the secret; the
 * description redacts the secret; a loaded value is at most
 * R2B_CONFIG_MAX_VALUE_BYTES; numbers are within their documented ranges;
 * a presigned URL starts with the endpoint's scheme.
 */
#include "fuzz_common.h"

#include <fcntl.h>
#include <unistd.h>

#include "r2bridge/config.h"
#include "r2bridge/s3.h"

static char env_path[4096], env_dir[4000];

static void remove_temp(void)
{
    unlink(env_path);
    rmdir(env_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static const char *const names[] = {"S3_ENDPOINT",
                                        "S3_BUCKET",
                                        "S3_REGION",
                                        "S3_ALIAS_HOST",
                                        "S3_OVERRIDE_PATH_STYLE",
                                        "S3_MULTIPART_THRESHOLD",
                                        "S3_OPEN_TIMEOUT",
                                        "S3_READ_TIMEOUT",
                                        "S3_RETRY_LIMIT",
                                        "AWS_ACCESS_KEY_ID",
                                        "AWS_SECRET_ACCESS_KEY",
                                        "AWS_SESSION_TOKEN",
                                        "R2B_PRIVATE_BUCKET",
                                        "R2B_MANIFEST",
                                        "R2B_PART_SIZE",
                                        "R2B_PARALLEL",
                                        "R2B_PRIVATE_TTL",
                                        "R2B_DIRECT_TTL",
                                        "R2B_TMPDIR"};
    const char *tmp = getenv("TMPDIR");
    (void)argc;
    (void)argv;
    /* only the file decides: nothing from the environment */
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        unsetenv(names[i]);
    snprintf(env_dir, sizeof(env_dir), "%s/r2b-fuzz-config-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(env_dir) == NULL)
        abort();
    snprintf(env_path, sizeof(env_path), "%s/.env.production", env_dir);
    atexit(remove_temp);
    return 0;
}

static void write_file(const uint8_t *data, size_t size)
{
    int fd = open(env_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

    if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size) || close(fd) != 0)
        abort();
}

/* The fixed text of the messages config.c and the S3 client write. */
static const char templates[] =
    "S3_ENDPOINT S3_BUCKET S3_REGION S3_ALIAS_HOST S3_OVERRIDE_PATH_STYLE S3_MULTIPART_THRESHOLD "
    "S3_OPEN_TIMEOUT S3_READ_TIMEOUT S3_RETRY_LIMIT AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY "
    "AWS_SESSION_TOKEN R2B_PRIVATE_BUCKET R2B_MANIFEST R2B_PART_SIZE R2B_PARALLEL R2B_PRIVATE_TTL "
    "R2B_DIRECT_TTL R2B_TMPDIR is not set|must start with http:// or https://, not '|"
    "must be a whole number from|must be true or false, not '|env file '|' line |"
    ": expected NAME=value|: unterminated quote or value too long|has a NUL byte|"
    "endpoint must be scheme://host[:port] without a path, not '|endpoint has no usable host: '|"
    "endpoint has a bad port: '|endpoint host has invalid characters|missing access key id or "
    "secret access key|missing region or service for signing|out of memory";

/*
 * An error message holds the secret: a leak, unless the same bytes are also
 * elsewhere in the file (a non-secret value quoted in the message), in a
 * non-secret setting, in the file's path or in the messages' fixed text.
 * Short secrets are skipped: they match by chance.
 */
static void check_error_secret(const char *msg, const struct r2b_config *cfg, const uint8_t *data,
                               size_t n)
{
    const char *secret = cfg->secret_key;
    const char *plain[] = {cfg->endpoint,       cfg->bucket,   cfg->region,     cfg->alias_host,
                           cfg->private_bucket, cfg->manifest, cfg->access_key, cfg->tmp_dir};

    if (secret == NULL || strlen(secret) < 8 || strstr(msg, secret) == NULL)
        return;
    if (fz_count(data, n, secret) > 1 || strstr(env_path, secret) || strstr(templates, secret))
        return;
    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
        if (plain[i] && strstr(plain[i], secret))
            return;
    FZ_CHECK(0 && "the secret appears in an error message");
}

/* The description does not depend on the secrets at all. */
static void check_describe(struct r2b_config *cfg)
{
    struct r2b_buf a, b;
    char *secret = cfg->secret_key, *token = cfg->session_token;

    r2b_buf_init(&a, 1024 * 1024);
    r2b_buf_init(&b, 1024 * 1024);
    FZ_CHECK(r2b_config_describe(cfg, &a) == R2B_OK);
    cfg->secret_key = secret ? "other-secret" : NULL;
    cfg->session_token = token ? "other-token" : NULL;
    FZ_CHECK(r2b_config_describe(cfg, &b) == R2B_OK);
    cfg->secret_key = secret;
    cfg->session_token = token;
    FZ_CHECK(a.len == b.len && memcmp(a.ptr, b.ptr, a.len) == 0);
    r2b_buf_release(&a);
    r2b_buf_release(&b);
}

static void check_value(const char *v)
{
    FZ_CHECK(v == NULL || (*v != '\0' && strlen(v) <= R2B_CONFIG_MAX_VALUE_BYTES));
}

static void try_client(const struct r2b_config *cfg, const uint8_t *data, size_t n)
{
    struct r2b_s3_options o;
    struct r2b_s3_client *c;
    struct r2b_error err;
    struct r2b_buf url;

    r2b_error_clear(&err);
    r2b_s3_options_from_config(&o, cfg);
    o.retry_limit = 0;
    c = r2b_s3_client_new(&o, &err);
    if (c == NULL) {
        FZ_CHECK(err.code != R2B_OK);
        FZ_CHECK(strchr(err.message, '\n') == NULL);
        check_error_secret(err.message, cfg, data, n);
        return;
    }
    r2b_buf_init(&url, 64 * 1024);
    if (r2b_s3_presign(c, "GET", "bucket", "media_attachments/files/a b.jpg", 300, 1700000000, &url,
                       &err) == R2B_OK) {
        FZ_CHECK(strncmp(url.ptr, cfg->endpoint, strncmp(cfg->endpoint, "https", 5) == 0 ? 8 : 7) ==
                 0);
        check_error_secret(url.ptr, cfg, data, n);
    } else {
        FZ_CHECK(strchr(err.message, '\n') == NULL);
        check_error_secret(err.message, cfg, data, n);
    }
    r2b_buf_release(&url);
    r2b_s3_client_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct r2b_config cfg;
    struct r2b_error err;
    enum r2b_status st;

    write_file(data, size);
    r2b_config_init(&cfg);
    r2b_error_clear(&err);
    st = r2b_config_load(&cfg, env_path, &err);
    if (st != R2B_OK) {
        FZ_CHECK(err.code == st && err.message[0] != '\0');
        FZ_CHECK(strchr(err.message, '\n') == NULL && strchr(err.message, '\r') == NULL);
        check_error_secret(err.message, &cfg, data, size);
        r2b_config_release(&cfg);
        return 0;
    }
    check_value(cfg.endpoint);
    check_value(cfg.bucket);
    check_value(cfg.region);
    check_value(cfg.secret_key);
    check_value(cfg.manifest);
    FZ_CHECK(cfg.region != NULL);
    FZ_CHECK(cfg.parallel >= 1 && cfg.parallel <= 64);
    FZ_CHECK(cfg.retry_limit >= 0 && cfg.retry_limit <= 20);
    FZ_CHECK(cfg.private_ttl_s >= 1 && cfg.private_ttl_s <= 604800);
    FZ_CHECK(cfg.direct_ttl_s >= 1 && cfg.direct_ttl_s <= 604800);
    FZ_CHECK(cfg.connect_timeout_ms >= 1000 && cfg.connect_timeout_ms <= 600000);
    FZ_CHECK(cfg.read_timeout_ms >= 1000 && cfg.read_timeout_ms <= 3600000);
    FZ_CHECK(cfg.part_size_bytes >= 5ULL * 1024 * 1024);
    FZ_CHECK(cfg.env_file_insecure == 0); /* the file is 0600 */
    check_describe(&cfg);
    if (r2b_config_check_s3(&cfg, &err) == R2B_OK)
        try_client(&cfg, data, size);
    else
        check_error_secret(err.message, &cfg, data, size);
    r2b_config_release(&cfg);
    return 0;
}
