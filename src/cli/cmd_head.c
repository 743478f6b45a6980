/* r2bridge head KEY: an object's metadata. */
#include <stdio.h>

#include "cli.h"

static const char usage[] =
    "usage: r2bridge head KEY\n\n"
    "Shows the object's size, ETag, Content-Type, Cache-Control and Last-Modified.\n\n"
    "Exit 0 found, 1 other failure, 2 usage, 3 configuration, 6 no such key or\n"
    "bucket, 75 temporary failure (retry).\n";

int cmd_head(int argc, char **argv)
{
    struct cli_common common = {.takes_bucket = 1};
    struct cli_args args;
    struct r2b_config cfg;
    struct r2b_s3_client *c = NULL;
    struct r2b_s3_object obj;
    struct r2b_error err;
    const char *bucket;
    int rc;

    r2b_config_init(&cfg);
    if ((rc = cli_parse("head", argc, argv, NULL, &common, &args)) != 0)
        return rc;
    if (common.help) {
        cli_usage_s3(usage);
        return R2B_EXIT_OK;
    }
    if (args.n_pos != 1)
        return cli_usage_error("head", "expected one KEY");
    if (cli_check_key("head", args.pos[0]) != 0)
        return R2B_EXIT_USAGE;
    if ((rc = cli_load_config(&common, &cfg)) != 0 || (rc = cli_bucket(&common, &cfg, &bucket)) ||
        (rc = cli_s3_client(&common, &cfg, &c)) != 0)
        goto cleanup;
    r2b_error_clear(&err);
    if (r2b_s3_head(c, bucket, args.pos[0], &obj, &err) != R2B_OK) {
        rc = cli_fail(&common, &err);
        goto cleanup;
    }
    if (common.json) {
        cli_print_json(cli_object_json(bucket, &obj));
    } else {
        char when[21];

        cli_time_iso(obj.last_modified, when);
        printf("key: %s\nsize: %llu\netag: %s\ncontent-type: %s\ncache-control: %s\n"
               "last-modified: %s\n",
               obj.key, (unsigned long long)obj.size_bytes, obj.etag, obj.content_type,
               obj.cache_control, when);
    }
cleanup:
    r2b_s3_client_free(c);
    r2b_config_release(&cfg);
    return rc;
}
