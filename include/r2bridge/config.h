/*
 * Configuration: Mastodon's own variable names, read from the environment
 * and optionally from a Mastodon `.env.production` file, plus the r2bridge
 * settings with the R2B_ prefix.
 *
 *   S3_ENDPOINT             https://<account>.r2.cloudflarestorage.com (required)
 *   S3_BUCKET               public bucket (required for most commands)
 *   S3_REGION               "auto" for R2 (default "auto")
 *   S3_ALIAS_HOST           public host serving S3_BUCKET (optional)
 *   S3_OVERRIDE_PATH_STYLE  "true" for path-style addressing (default false)
 *   S3_MULTIPART_THRESHOLD  bytes; larger uploads go multipart (default 15 MiB)
 *   S3_OPEN_TIMEOUT         connect timeout, seconds (default 5)
 *   S3_READ_TIMEOUT         read timeout, seconds (default 5): no byte for that long fails
 *   S3_RETRY_LIMIT          retries after the first attempt (default 3)
 *   AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN (optional)
 *   R2B_PRIVATE_BUCKET      bucket for private/direct media, no public domain
 *   R2B_MANIFEST            sqlite:///path or postgresql://... (later modules)
 *   R2B_PART_SIZE           multipart part size in bytes (default 16 MiB)
 *   R2B_PARALLEL            parts of one multipart upload in flight (default 4)
 *   R2B_PRIVATE_TTL         cap on presigned URLs for private media, s (default 900)
 *   R2B_DIRECT_TTL          cap on presigned URLs for direct media, s (default 300)
 *   R2B_TMPDIR              where transcoded styles are written (default $TMPDIR or /tmp)
 *   R2B_PAYLOAD_SHA256      "true": sign object bodies' SHA-256 too (default false:
 *                           UNSIGNED-PAYLOAD, bound to the signature by Content-MD5)
 *
 * Precedence: an explicitly loaded env file overrides nothing that is already
 * set in the process environment (Mastodon's own dotenv behaves the same).
 *
 * Secrets: the secret key and session token are wiped on release and never
 * printed; r2b_config_describe() redacts them.
 */
#ifndef R2BRIDGE_CONFIG_H
#define R2BRIDGE_CONFIG_H

#include "r2bridge.h"

/* Named limits. */
#define R2B_CONFIG_MAX_ENV_FILE_BYTES (1024 * 1024)
#define R2B_CONFIG_MAX_VALUE_BYTES 4096

struct r2b_config {
    char *endpoint;
    char *bucket;
    char *region;
    char *alias_host;
    char *private_bucket;
    char *manifest;
    char *access_key;
    char *secret_key;    /* secret */
    char *session_token; /* secret */
    int path_style;
    int payload_sha256; /* R2B_PAYLOAD_SHA256: also SHA-256 object bodies (see s3.h) */
    uint64_t multipart_threshold_bytes;
    uint64_t part_size_bytes;
    int parallel;
    long connect_timeout_ms;
    long read_timeout_ms;
    int retry_limit;
    long private_ttl_s;
    long direct_ttl_s;
    char *tmp_dir;
    /* Set when an env file holding a secret is readable by other users. */
    int env_file_insecure;
};

/* Sets every field to its default (strings NULL). */
void r2b_config_init(struct r2b_config *cfg);
/* Wipes secrets, frees strings, re-initializes. Accepts NULL. */
void r2b_config_release(struct r2b_config *cfg);

/*
 * Reads the settings from the process environment. When env_file is not
 * NULL it is parsed first (KEY=VALUE lines; blank lines, '#' comments,
 * `export ` prefixes, single and double quotes handled; unknown keys ignored)
 * and its values apply where the environment does not set the name.
 * Invalid numbers or booleans are R2B_ERR_CONFIG naming the variable (never
 * its value when it is a secret).
 */
enum r2b_status r2b_config_load(struct r2b_config *cfg, const char *env_file,
                                struct r2b_error *err);

/*
 * Checks what talking to S3 needs: endpoint (http:// or https://), region,
 * credentials. R2B_ERR_CONFIG naming the first missing variable.
 */
enum r2b_status r2b_config_check_s3(const struct r2b_config *cfg, struct r2b_error *err);

/*
 * Appends "NAME=value" lines describing the effective configuration to
 * `out`, with the secret key and token shown as "<redacted>" (or
 * "<unset>").
 */
enum r2b_status r2b_config_describe(const struct r2b_config *cfg, struct r2b_buf *out);

/* Parses "true"/"false"/"1"/"0"/"yes"/"no" (any case); -1 if none of those. */
int r2b_config_parse_bool(const char *s);

#endif
