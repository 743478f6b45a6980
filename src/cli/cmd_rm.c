/* r2bridge rm KEY...: delete objects. */
#include <stdio.h>

#include "cli.h"

static const char usage[] =
    "usage: r2bridge rm KEY...\n\n"
    "Deletes each KEY. Deleting a key that does not exist succeeds (S3 semantics),\n"
    "so rm is safe to repeat. Stops at the first failure. At most 1024 KEYs per\n"
    "call (more: xargs -n 1024); 'r2bridge delete --stdin' also updates the\n"
    "manifest.\n\n"
    "Exit 0 done, 1 other failure, 2 usage or an unsafe key (nothing deleted),\n"
    "3 configuration, 6 no such bucket, 75 temporary failure (retry).\n";

int cmd_rm(int argc, char **argv)
{
    struct cli_common common = {.takes_bucket = 1};
    struct cli_args args;
    struct r2b_config cfg;
    struct r2b_s3_client *c = NULL;
    struct r2b_error err;
    const char *bucket;
    int rc;

    r2b_config_init(&cfg);
    if ((rc = cli_parse("rm", argc, argv, NULL, &common, &args)) != 0)
        return rc;
    if (common.help) {
        cli_usage_s3(usage);
        return R2B_EXIT_OK;
    }
    if (args.n_pos < 1)
        return cli_usage_error("rm", "expected at least one KEY");
    for (int i = 0; i < args.n_pos; i++) /* every key first: nothing deleted for a bad one */
        if (cli_check_key("rm", args.pos[i]) != 0)
            return R2B_EXIT_USAGE;
    if ((rc = cli_load_config(&common, &cfg)) != 0 || (rc = cli_bucket(&common, &cfg, &bucket)) ||
        (rc = cli_s3_client(&common, &cfg, &c)) != 0)
        goto cleanup;
    for (int i = 0; i < args.n_pos; i++) {
        r2b_error_clear(&err);
        if (r2b_s3_delete(c, bucket, args.pos[i], &err) != R2B_OK) {
            rc = cli_fail(&common, &err);
            goto cleanup;
        }
        if (common.json) {
            struct json_object *j = json_object_new_object();

            json_object_object_add(j, "bucket", json_object_new_string(bucket));
            json_object_object_add(j, "key", json_object_new_string(args.pos[i]));
            json_object_object_add(j, "deleted", json_object_new_boolean(1));
            cli_print_json(j);
        } else {
            printf("deleted '%s/%s'\n", bucket, args.pos[i]);
        }
    }
cleanup:
    r2b_s3_client_free(c);
    r2b_config_release(&cfg);
    return rc;
}
