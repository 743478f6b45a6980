/* r2bridge put FILE KEY: upload one file. */
#include <stdio.h>

#include "cli.h"

static const char usage[] =
    "usage: r2bridge put FILE KEY [--content-type T] [--cache-control C]\n"
    "                    [--multipart]\n\n"
    "Uploads FILE to KEY in the bucket, streaming from disk. Files larger than\n"
    "S3_MULTIPART_THRESHOLD (default 15 MiB) go as a multipart upload with equal\n"
    "parts (R2B_PART_SIZE, default 16 MiB) sent R2B_PARALLEL (default 4) at a time.\n"
    "Every PUT carries Content-MD5, so the server verifies the bytes.\n\n"
    "  --content-type T   Content-Type to store (default application/octet-stream)\n"
    "  --cache-control C  Cache-Control to store (e.g. Mastodon's\n"
    "                     'public, max-age=315576000, immutable')\n"
    "  --multipart        use a multipart upload whatever the size\n\n"
    "Exit 0 uploaded, 1 other failure, 2 usage, 3 configuration, 6 no such FILE\n"
    "or bucket, 75 temporary failure (retry).\n";

int cmd_put(int argc, char **argv)
{
    struct cli_common common = {.takes_bucket = 1};
    struct cli_args args;
    struct r2b_s3_put_options po = {0};
    int multipart = 0, rc;
    const struct cli_opt opts[] = {
        {"content-type", &po.content_type, NULL},
        {"cache-control", &po.cache_control, NULL},
        {"multipart", NULL, &multipart},
        {NULL, NULL, NULL},
    };
    struct r2b_config cfg;
    struct r2b_s3_client *c = NULL;
    struct r2b_s3_object obj;
    struct r2b_error err;
    const char *bucket;

    r2b_config_init(&cfg);
    if ((rc = cli_parse("put", argc, argv, opts, &common, &args)) != 0)
        return rc;
    if (common.help) {
        cli_usage_s3(usage);
        return R2B_EXIT_OK;
    }
    if (args.n_pos != 2)
        return cli_usage_error("put", "expected FILE and KEY");
    if (cli_check_key("put", args.pos[1]) != 0)
        return R2B_EXIT_USAGE;
    po.force_multipart = multipart;
    if ((rc = cli_load_config(&common, &cfg)) != 0 || (rc = cli_bucket(&common, &cfg, &bucket)) ||
        (rc = cli_s3_client(&common, &cfg, &c)) != 0)
        goto cleanup;
    r2b_error_clear(&err);
    if (r2b_s3_put_file(c, bucket, args.pos[1], args.pos[0], &po, &obj, &err) != R2B_OK) {
        rc = cli_fail(&common, &err);
        goto cleanup;
    }
    if (common.json) {
        struct json_object *j;

        r2b_strlcpy(obj.key, args.pos[1], sizeof(obj.key));
        j = cli_object_json(bucket, &obj);
        json_object_object_add(j, "ok", json_object_new_boolean(1));
        cli_print_json(j);
    } else {
        printf("uploaded '%s' to '%s/%s' (%llu bytes, etag %s)\n", args.pos[0], bucket,
               args.pos[1], (unsigned long long)obj.size_bytes, obj.etag);
    }
cleanup:
    r2b_s3_client_free(c);
    r2b_config_release(&cfg);
    return rc;
}
