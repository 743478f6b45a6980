/* cli.h: exists so main.c and the cmd_*.c files share the option parser,
 * the configuration/client set-up and the exit-code mapping. */
#ifndef R2B_CLI_H
#define R2B_CLI_H

#include <json-c/json.h>

#include "r2bridge/config.h"
#include "r2bridge/r2bridge.h"
#include "r2bridge/pipeline.h"
#include "r2bridge/s3.h"

/* Exit codes: stable, documented in docs/cli.md and `r2bridge --help`. */
enum {
    R2B_EXIT_OK = 0,
    R2B_EXIT_FAILURE = 1,
    R2B_EXIT_USAGE = 2,
    R2B_EXIT_CONFIG = 3,
    R2B_EXIT_REJECTED = 4,
    R2B_EXIT_DENIED = 5,
    R2B_EXIT_NOT_FOUND = 6,
    R2B_EXIT_TEMPFAIL = 75,
};

/* Positional arguments a command line may hold (rm, delete: KEYs; grant,
 * revoke: KEY and ids), as the help texts and docs/cli.md say. Costs 8 KiB
 * of pointers in struct cli_args (and 8 KiB of ids in grant/revoke) on the
 * main thread's stack; longer lists go through `delete --stdin`. */
#define CLI_MAX_POSITIONAL 1024

/* One option of a command: either a flag (*flag = 1) or a value (*value = arg). */
struct cli_opt {
    const char *name; /* without the leading "--" */
    const char **value;
    int *flag;
};

/* Options every command takes. */
struct cli_common {
    const char *env_file;
    int json;
    int help;
    int verbose;
    const char *bucket; /* --bucket: only where takes_bucket (the operator's S3 commands) */
    int takes_bucket;   /* set by the command before cli_parse() */
};

struct cli_args {
    const char *pos[CLI_MAX_POSITIONAL];
    int n_pos;
};

/*
 * Parses argv[1..argc-1] (argv[0] is the command name) against `opts` plus
 * the common options. Prints a one-line error and returns R2B_EXIT_USAGE
 * on a bad option, 0 otherwise.
 */
int cli_parse(const char *cmd, int argc, char **argv, const struct cli_opt *opts,
              struct cli_common *common, struct cli_args *args);

/* Tunes the allocator for a process that runs one media job (inspect, upload). */
void cli_media_process_setup(void);

/* Prints `msg` followed by the common options' help. */
void cli_usage(const char *msg);
/* The same for the operator's S3 commands, with --bucket. */
void cli_usage_s3(const char *msg);

/* Loads the configuration (env + --env-file); prints the error and returns an exit code. */
int cli_load_config(const struct cli_common *common, struct r2b_config *cfg);

/* Builds an S3 client from the configuration; prints the error and returns an exit code. */
int cli_s3_client(const struct cli_common *common, const struct r2b_config *cfg,
                  struct r2b_s3_client **out);

/* Picks --bucket or S3_BUCKET; prints an error and returns an exit code if none. */
int cli_bucket(const struct cli_common *common, const struct r2b_config *cfg, const char **out);

/* The exit code for a failure, per the table in docs/cli.md. */
int cli_exit_code(const struct r2b_error *err);

/* Prints "r2bridge: <message>" (or a JSON error object with --json) and returns the exit code. */
int cli_fail(const struct cli_common *common, const struct r2b_error *err);

/* Prints a one-line usage error and returns R2B_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) R2B_PRINTF(2, 3);

/* Prints a JSON object on one line, then frees it. */
void cli_print_json(struct json_object *obj);

/* A JSON object for an S3 object (bucket, key, size, etag, ...). */
struct json_object *cli_object_json(const char *bucket, const struct r2b_s3_object *o);

/* One style's entry of Mastodon's file.meta: width, height, size "WxH", aspect. */
struct json_object *cli_meta_json(int width, int height);

/*
 * Adds a video's or an audio's part of Mastodon's file.meta to `meta` (an
 * object already holding the styles' entries): `original` gets frame_rate,
 * duration, bitrate (video) or duration, bitrate (audio); the top level gets
 * length, duration, fps, audio_encode, audio_bitrate, audio_channels, as
 * Mastodon's API shows them. Does nothing for images.
 */
struct r2b_media_result;
void cli_av_meta(struct json_object *meta, const struct r2b_media_result *r);

/* "2026-11-26T09:43:07Z" for t, or "-" when t < 0. */
void cli_time_iso(int64_t t, char out[21]);

/* Parses a whole non-negative number option; prints a usage error on failure. */
int cli_parse_long(const char *cmd, const char *name, const char *s, long min, long max,
                   long *out);

int cmd_put(int argc, char **argv);
int cmd_get(int argc, char **argv);
int cmd_head(int argc, char **argv);
int cmd_rm(int argc, char **argv);
int cmd_ls(int argc, char **argv);
int cmd_presign(int argc, char **argv);
int cmd_config(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_upload(int argc, char **argv);
int cmd_sign(int argc, char **argv);
int cmd_visibility(int argc, char **argv);
int cmd_grant(int argc, char **argv);
int cmd_revoke(int argc, char **argv);
int cmd_delete(int argc, char **argv);
int cmd_manifest(int argc, char **argv);
int cmd_migrate(int argc, char **argv);
int cmd_verify(int argc, char **argv);

/* Loads the configuration and builds a pipeline; prints the error and returns an exit code. */
int cli_pipeline(const struct cli_common *common, struct r2b_config *cfg,
                 struct r2b_pipeline **out);

/* Parses "1,2,3" into a heap array; prints a usage error and returns R2B_EXIT_USAGE on bad input. */
int cli_parse_ids(const char *cmd, const char *name, const char *s, int64_t **ids, size_t *n);

/* Refuses (usage error, exit 2) a key r2b_key_safe() refuses: before any request. */
int cli_check_key(const char *cmd, const char *key);

/* Parses one positive account id. */
int cli_parse_id(const char *cmd, const char *name, const char *s, int64_t *out);

#endif
