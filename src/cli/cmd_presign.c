/* r2bridge presign KEY: a presigned URL. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char usage[] =
    "usage: r2bridge presign KEY [--expires S] [--method M]\n\n"
    "Prints a presigned URL for KEY, valid S seconds (default 900; R2 allows\n"
    "1 to 604800, and a value outside that range is refused, not clamped).\n"
    "This is the low-level operator command: it does not consult the privacy\n"
    "manifest.\n\n"
    "  --expires S  lifetime in seconds (1..604800, default 900)\n"
    "  --method M   GET (default), HEAD, PUT or DELETE\n\n"
    "Signs locally, without a request: exit 0 done, 1 other failure, 2 usage,\n"
    "3 configuration.\n";

int cmd_presign(int argc, char **argv)
{
    struct cli_common common = {.takes_bucket = 1};
    struct cli_args args;
    const char *expires_s = NULL, *method = "GET";
    const struct cli_opt opts[] = {
        {"expires", &expires_s, NULL},
        {"method", &method, NULL},
        {NULL, NULL, NULL},
    };
    struct r2b_config cfg;
    struct r2b_s3_client *c = NULL;
    struct r2b_error err;
    struct r2b_buf url;
    const char *bucket;
    long expires = 900;
    int rc;

    r2b_config_init(&cfg);
    r2b_buf_init(&url, 16384);
    if ((rc = cli_parse("presign", argc, argv, opts, &common, &args)) != 0)
        return rc;
    if (common.help) {
        cli_usage_s3(usage);
        return R2B_EXIT_OK;
    }
    if (args.n_pos != 1)
        return cli_usage_error("presign", "expected one KEY");
    if (cli_check_key("presign", args.pos[0]) != 0)
        return R2B_EXIT_USAGE;
    /* parse the number loosely, let the signer enforce R2's range with its message */
    if (expires_s && cli_parse_long("presign", "expires", expires_s, 0, 1L << 40, &expires))
        return R2B_EXIT_USAGE;
    if (expires < 1 || expires > 604800)
        return cli_usage_error("presign", "--expires must be from 1 to 604800 seconds, not %ld",
                               expires);
    if ((rc = cli_load_config(&common, &cfg)) != 0 || (rc = cli_bucket(&common, &cfg, &bucket)) ||
        (rc = cli_s3_client(&common, &cfg, &c)) != 0)
        goto cleanup;
    r2b_error_clear(&err);
    if (r2b_s3_presign(c, method, bucket, args.pos[0], expires, 0, &url, &err) != R2B_OK) {
        rc = cli_fail(&common, &err);
        goto cleanup;
    }
    if (common.json) {
        struct json_object *j = json_object_new_object();

        json_object_object_add(j, "url", json_object_new_string(url.ptr));
        json_object_object_add(j, "method", json_object_new_string(method));
        json_object_object_add(j, "expires_in", json_object_new_int64(expires));
        cli_print_json(j);
    } else {
        puts(url.ptr);
    }
cleanup:
    r2b_buf_release(&url);
    r2b_s3_client_free(c);
    r2b_config_release(&cfg);
    return rc;
}
