/* r2bridge delete KEY... | --stdin: the record first, then the object. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char usage[] =
    "usage: r2bridge delete KEY...\n"
    "       r2bridge delete --stdin\n\n"
    "Deletes media: each manifest record is marked 'deleted' first (so the privacy\n"
    "check denies at once), then the objects are removed with batched\n"
    "DeleteObjects requests (up to 1,000 keys each). Keys without a record are\n"
    "removed from both buckets. Idempotent: deleting again succeeds.\n\n"
    "At most 1024 KEYs on the command line; with --stdin, keys are read one per\n"
    "line, any number, 1,000 at a time. Every key of a batch is checked before\n"
    "any is touched.\n\n"
    "Exit 0 done, 1 other failure, 2 usage or an unsafe key, 3 configuration,\n"
    "6 no such bucket, 75 temporary failure (run it again).\n";

#define BATCH 1000

int cmd_delete(int argc, char **argv)
{
    struct cli_common common = {0};
    struct cli_args args;
    int use_stdin = 0, rc;
    const struct cli_opt opts[] = {{"stdin", NULL, &use_stdin}, {NULL, NULL, NULL}};
    struct r2b_config cfg;
    struct r2b_pipeline *p = NULL;
    struct r2b_error err;
    char **keys = NULL;
    size_t n = 0, total = 0, done = 0;

    r2b_config_init(&cfg);
    if ((rc = cli_parse("delete", argc, argv, opts, &common, &args)) != 0)
        return rc;
    if (common.help) {
        cli_usage(usage);
        return R2B_EXIT_OK;
    }
    if (use_stdin ? args.n_pos != 0 : args.n_pos == 0)
        return cli_usage_error("delete", "give KEYs or --stdin");
    if ((rc = cli_pipeline(&common, &cfg, &p)) != 0)
        goto cleanup;
    r2b_error_clear(&err);
    if (!use_stdin) {
        if (r2b_pipeline_delete(p, args.pos, (size_t)args.n_pos, &total, &err) != R2B_OK) {
            rc = cli_fail(&common, &err);
            goto cleanup;
        }
    } else {
        char line[R2B_MANIFEST_MAX_KEY_BYTES + 4];

        keys = calloc(BATCH, sizeof(*keys));
        if (keys == NULL) {
            rc = R2B_EXIT_FAILURE;
            goto cleanup;
        }
        for (;;) {
            int eof = fgets(line, sizeof(line), stdin) == NULL;

            if (!eof) {
                size_t len = strlen(line);

                while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
                    line[--len] = '\0';
                if (len == 0)
                    continue;
                keys[n] = r2b_strdup(line);
                if (keys[n] == NULL) {
                    rc = R2B_EXIT_FAILURE;
                    goto cleanup;
                }
                n++;
            }
            if (n == BATCH || (eof && n)) {
                if (r2b_pipeline_delete(p, (const char *const *)keys, n, &done, &err) != R2B_OK) {
                    rc = cli_fail(&common, &err);
                    goto cleanup;
                }
                total += done;
                for (size_t i = 0; i < n; i++) {
                    free(keys[i]);
                    keys[i] = NULL;
                }
                n = 0;
            }
            if (eof)
                break;
        }
    }
    if (common.json) {
        struct json_object *j = json_object_new_object();

        json_object_object_add(j, "ok", json_object_new_boolean(1));
        json_object_object_add(j, "deleted", json_object_new_int64((int64_t)total));
        cli_print_json(j);
    } else {
        printf("deleted %zu key(s)\n", total);
    }
cleanup:
    if (keys)
        for (size_t i = 0; i < BATCH; i++)
            free(keys[i]);
    free(keys);
    r2b_pipeline_free(p);
    r2b_config_release(&cfg);
    return rc;
}
