/* Shared CLI plumbing: option parsing, configuration, exit codes, output. */
#include <stdarg.h>
#include <stdio.h>
#ifdef __GLIBC__
#include <malloc.h> /* mallopt */
#endif
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "r2bridge/media.h"

static const char common_help[] =
    "common options:\n"
    "  --env-file PATH  read settings from a Mastodon .env.production file\n"
    "                   (the process environment wins over the file)\n"
    "  --json           machine-readable output (one JSON object per line)\n"
    "  -v, --verbose    log retries to stderr\n"
    "  -h, --help       show this help\n";

void cli_usage(const char *msg)
{
    fputs(msg, stdout);
    fputs("\n", stdout);
    fputs(common_help, stdout);
}

void cli_usage_s3(const char *msg)
{
    fputs(msg, stdout);
    fputs("\nbucket:\n"
          "  --bucket B       the bucket to use instead of S3_BUCKET (the product\n"
          "                   commands pick theirs from the visibility)\n\n",
          stdout);
    fputs(common_help, stdout);
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    char line[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, "r2bridge %s: %s (see 'r2bridge %s --help')\n", cmd, line, cmd);
    return R2B_EXIT_USAGE;
}

static int match_opt(const struct cli_opt *o, const char *name, size_t len)
{
    return strlen(o->name) == len && strncmp(o->name, name, len) == 0;
}

int cli_parse(const char *cmd, int argc, char **argv, const struct cli_opt *opts,
              struct cli_common *common, struct cli_args *args)
{
    const struct cli_opt common_opts[] = {
        {"env-file", &common->env_file, NULL},
        {"json", NULL, &common->json},
        {"help", NULL, &common->help},
        {"verbose", NULL, &common->verbose},
        {"bucket", &common->bucket, NULL}, /* last: only for commands that take it */
        {NULL, NULL, NULL},
    };
    int only_pos = 0;

    memset(args, 0, sizeof(*args));
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *name, *eq;
        const struct cli_opt *o = NULL;
        size_t len;

        if (only_pos || a[0] != '-' || strcmp(a, "-") == 0) {
            if (args->n_pos >= CLI_MAX_POSITIONAL)
                return cli_usage_error(cmd, "too many arguments (at most %d)", CLI_MAX_POSITIONAL);
            args->pos[args->n_pos++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_pos = 1;
            continue;
        }
        if (strcmp(a, "-h") == 0) {
            common->help = 1;
            continue;
        }
        if (strcmp(a, "-v") == 0) {
            common->verbose = 1;
            continue;
        }
        if (a[1] != '-')
            return cli_usage_error(cmd, "unknown option '%s'", a);
        name = a + 2;
        eq = strchr(name, '=');
        len = eq ? (size_t)(eq - name) : strlen(name);
        for (const struct cli_opt *t = opts; t && t->name && !o; t++)
            if (match_opt(t, name, len))
                o = t;
        for (const struct cli_opt *t = common_opts; t->name && !o; t++)
            if (match_opt(t, name, len) && (t->value != &common->bucket || common->takes_bucket))
                o = t;
        if (o == NULL)
            return cli_usage_error(cmd, "unknown option '--%.*s'", (int)len, name);
        if (o->flag) {
            if (eq)
                return cli_usage_error(cmd, "option '--%s' takes no value", o->name);
            *o->flag = 1;
        } else if (eq) {
            *o->value = eq + 1;
        } else if (i + 1 < argc) {
            *o->value = argv[++i];
        } else {
            return cli_usage_error(cmd, "option '--%s' needs a value", o->name);
        }
    }
    if (common->verbose)
        r2b_log_set_level(R2B_LOG_INFO);
    return 0;
}

int cli_exit_code(const struct r2b_error *err)
{
    switch (err->code) {
    case R2B_OK:
        return R2B_EXIT_OK;
    case R2B_ERR_INVALID:
        return R2B_EXIT_USAGE;
    case R2B_ERR_CONFIG:
    case R2B_ERR_AUTH: /* the server refused our credentials: fix the configuration */
        return R2B_EXIT_CONFIG;
    case R2B_ERR_NOT_FOUND:
        return R2B_EXIT_NOT_FOUND;
    case R2B_ERR_REJECTED:
        return R2B_EXIT_REJECTED;
    case R2B_ERR_NETWORK:
    case R2B_ERR_INTERRUPTED:
    case R2B_ERR_BUSY:
        return R2B_EXIT_TEMPFAIL;
    default: /* anything that may pass (a 5xx, a lock, a lost database connection) */
        return err->retryable ? R2B_EXIT_TEMPFAIL : R2B_EXIT_FAILURE;
    }
}

int cli_fail(const struct cli_common *common, const struct r2b_error *err)
{
    int code = cli_exit_code(err);

    if (common && common->json) {
        struct json_object *o = json_object_new_object();

        json_object_object_add(o, "ok", json_object_new_boolean(0));
        json_object_object_add(o, "error", json_object_new_string(r2b_strerror(err->code)));
        json_object_object_add(o, "message", json_object_new_string(err->message));
        if (err->http_status)
            json_object_object_add(o, "http_status", json_object_new_int((int)err->http_status));
        if (err->s3_code[0])
            json_object_object_add(o, "s3_code", json_object_new_string(err->s3_code));
        json_object_object_add(o, "retryable", json_object_new_boolean(code == R2B_EXIT_TEMPFAIL));
        json_object_object_add(o, "exit_code", json_object_new_int(code));
        cli_print_json(o);
    }
    fprintf(stderr, "r2bridge: %s\n", err->message[0] ? err->message : r2b_strerror(err->code));
    return code;
}

int cli_load_config(const struct cli_common *common, struct r2b_config *cfg)
{
    struct r2b_error err;

    r2b_error_clear(&err);
    r2b_config_init(cfg);
    if (r2b_config_load(cfg, common->env_file, &err) != R2B_OK)
        return cli_fail(common, &err);
    if (cfg->env_file_insecure)
        fprintf(stderr,
                "r2bridge: warning: '%s' holds a secret and is readable by other users "
                "(chmod 600 it)\n",
                common->env_file);
    return 0;
}

int cli_s3_client(const struct cli_common *common, const struct r2b_config *cfg,
                  struct r2b_s3_client **out)
{
    struct r2b_s3_options o;
    struct r2b_error err;

    r2b_error_clear(&err);
    if (r2b_config_check_s3(cfg, &err) != R2B_OK)
        return cli_fail(common, &err);
    r2b_s3_options_from_config(&o, cfg);
    *out = r2b_s3_client_new(&o, &err);
    if (*out == NULL)
        return cli_fail(common, &err);
    return 0;
}

int cli_bucket(const struct cli_common *common, const struct r2b_config *cfg, const char **out)
{
    struct r2b_error err;

    *out = common->bucket ? common->bucket : cfg->bucket;
    if (*out == NULL || **out == '\0') {
        r2b_error_set(&err, R2B_ERR_CONFIG, "no bucket: set S3_BUCKET or pass --bucket");
        return cli_fail(common, &err);
    }
    return 0;
}

void cli_print_json(struct json_object *obj)
{
    puts(json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN |
                                                 JSON_C_TO_STRING_NOSLASHESCAPE));
    fflush(stdout);
    json_object_put(obj);
}

struct json_object *cli_object_json(const char *bucket, const struct r2b_s3_object *o)
{
    struct json_object *j = json_object_new_object();

    if (bucket)
        json_object_object_add(j, "bucket", json_object_new_string(bucket));
    if (o->key[0])
        json_object_object_add(j, "key", json_object_new_string(o->key));
    json_object_object_add(j, "size", json_object_new_int64((int64_t)o->size_bytes));
    json_object_object_add(j, "etag", json_object_new_string(o->etag));
    if (o->content_type[0])
        json_object_object_add(j, "content_type", json_object_new_string(o->content_type));
    if (o->cache_control[0])
        json_object_object_add(j, "cache_control", json_object_new_string(o->cache_control));
    if (o->last_modified >= 0)
        json_object_object_add(j, "last_modified", json_object_new_int64(o->last_modified));
    return j;
}

int cli_parse_long(const char *cmd, const char *name, const char *s, long min, long max,
                   long *out)
{
    uint64_t v;

    if (r2b_parse_u64(s, (uint64_t)max, &v) != 0 || (long)v < min)
        return cli_usage_error(cmd, "--%s must be a whole number from %ld to %ld, not '%s'", name,
                               min, max, s);
    *out = (long)v;
    return 0;
}

void cli_time_iso(int64_t t, char out[21])
{
    char amz[17];

    if (t < 0) {
        r2b_strlcpy(out, "-", 21);
        return;
    }
    r2b_time_amz(t, amz); /* YYYYMMDDTHHMMSSZ */
    snprintf(out, 21, "%.4s-%.2s-%.2sT%.2s:%.2s:%.2sZ", amz, amz + 4, amz + 6, amz + 9, amz + 11,
             amz + 13);
}

void cli_media_process_setup(void)
{
#ifdef __GLIBC__
    /*
     * One media job per process (inspect, upload from a Sidekiq job): its
     * peak memory is what counts. glibc otherwise gives each libvips worker
     * thread an arena of its own and raises its mmap threshold after the
     * first large free, so decode buffers freed by one stage stay resident
     * while the next stage allocates. Two arenas and a fixed 128 KiB
     * threshold (large buffers are mapped and returned at once) keep the
     * peak of the benchmark's worst image (progressive, rotated) steady at
     * its lower end (docs/benchmarks.md). Not for migrate or sign, whose
     * many threads only move bytes. Called before any thread starts.
     */
    mallopt(M_ARENA_MAX, 2);
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
#endif
}

int cli_pipeline(const struct cli_common *common, struct r2b_config *cfg,
                 struct r2b_pipeline **out)
{
    struct r2b_error err;
    int rc;

    *out = NULL;
    if ((rc = cli_load_config(common, cfg)) != 0)
        return rc;
    r2b_error_clear(&err);
    if (r2b_media_global_init(&err) != R2B_OK)
        return cli_fail(common, &err);
    *out = r2b_pipeline_new(cfg, &err);
    if (*out == NULL)
        return cli_fail(common, &err);
    return 0;
}

int cli_check_key(const char *cmd, const char *key)
{
    struct r2b_error err;

    r2b_error_clear(&err);
    if (r2b_key_safe(key, &err) != 0)
        return cli_usage_error(cmd, "%s", err.message);
    return 0;
}

int cli_parse_id(const char *cmd, const char *name, const char *s, int64_t *out)
{
    uint64_t v;

    if (s == NULL || r2b_parse_u64(s, INT64_MAX, &v) != 0 || v == 0)
        return cli_usage_error(cmd, "--%s must be a positive account id, not '%s'", name,
                               s ? s : "");
    *out = (int64_t)v;
    return 0;
}

int cli_parse_ids(const char *cmd, const char *name, const char *s, int64_t **ids, size_t *n)
{
    size_t cap = 1;
    const char *p;

    *ids = NULL;
    *n = 0;
    for (p = s; *p; p++)
        cap += *p == ',';
    *ids = malloc(cap * sizeof(**ids));
    if (*ids == NULL)
        return cli_usage_error(cmd, "out of memory");
    for (p = s; *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char one[24];
        uint64_t v;

        if (len == 0 || len >= sizeof(one)) {
            free(*ids);
            *ids = NULL;
            return cli_usage_error(cmd, "--%s must be account ids separated by commas", name);
        }
        memcpy(one, p, len);
        one[len] = '\0';
        if (r2b_parse_u64(one, INT64_MAX, &v) != 0 || v == 0) {
            free(*ids);
            *ids = NULL;
            return cli_usage_error(cmd, "--%s: '%s' is not an account id", name, one);
        }
        (*ids)[(*n)++] = (int64_t)v;
        p += len + (comma ? 1 : 0);
    }
    return 0;
}

struct json_object *cli_meta_json(int width, int height)
{
    struct json_object *j = json_object_new_object();
    char size[32];

    snprintf(size, sizeof(size), "%dx%d", width, height);
    json_object_object_add(j, "width", json_object_new_int(width));
    json_object_object_add(j, "height", json_object_new_int(height));
    json_object_object_add(j, "size", json_object_new_string(size));
    json_object_object_add(j, "aspect",
                           json_object_new_double(height ? (double)width / height : 0));
    return j;
}

void cli_av_meta(struct json_object *meta, const struct r2b_media_result *r)
{
    struct json_object *orig = NULL;
    char length[32];
    int64_t cs;

    if (r->kind != R2B_MEDIA_VIDEO && r->kind != R2B_MEDIA_AUDIO)
        return;
    if (!json_object_object_get_ex(meta, "original", &orig)) {
        orig = json_object_new_object();
        json_object_object_add(meta, "original", orig);
    }
    if (r->kind == R2B_MEDIA_VIDEO)
        json_object_object_add(orig, "frame_rate", json_object_new_string(r->frame_rate));
    json_object_object_add(orig, "duration", json_object_new_double(r->duration_s));
    json_object_object_add(orig, "bitrate", json_object_new_int64(r->bitrate));
    cs = (int64_t)(r->duration_s * 100 + 0.5); /* "0:01:02.50", as Mastodon shows it */
    snprintf(length, sizeof(length), "%lld:%02lld:%02lld.%02lld", (long long)(cs / 360000),
             (long long)(cs / 6000 % 60), (long long)(cs / 100 % 60), (long long)(cs % 100));
    json_object_object_add(meta, "length", json_object_new_string(length));
    json_object_object_add(meta, "duration", json_object_new_double(r->duration_s));
    if (r->kind == R2B_MEDIA_VIDEO) {
        json_object_object_add(meta, "fps", json_object_new_int((int)r->fps));
        json_object_object_add(meta, "video_encode", json_object_new_string(r->video_codec));
    }
    if (r->audio_channels > 0) {
        char rate[32];

        snprintf(rate, sizeof(rate), "%d Hz", r->audio_sample_rate);
        json_object_object_add(meta, "audio_encode", json_object_new_string(r->audio_codec));
        json_object_object_add(meta, "audio_bitrate", json_object_new_string(rate));
        json_object_object_add(meta, "audio_channels",
                               json_object_new_string(r->audio_channels == 1   ? "mono"
                                                      : r->audio_channels == 2 ? "stereo"
                                                                               : "multichannel"));
    }
}
