/* r2bridge ls [PREFIX]: list keys, streaming page by page. */
#include <stdio.h>
#include <time.h>

#include "cli.h"

static const char usage[] =
    "usage: r2bridge ls [PREFIX]\n\n"
    "Lists keys under PREFIX in key order: size, last-modified (UTC) and key, one\n"
    "per line; with --json one JSON object per line. Streams the listing 1,000\n"
    "keys at a time, so a bucket of millions of keys needs little memory.\n\n"
    "Exit 0 done (also when nothing matches), 1 other failure, 2 usage,\n"
    "3 configuration, 6 no such bucket, 75 temporary failure (retry).\n";

struct ls_state {
    const char *bucket;
    int json;
    uint64_t count;
};

static int print_one(void *ud, const struct r2b_s3_object *o)
{
    struct ls_state *s = ud;
    char when[21];

    s->count++;
    if (s->json) {
        cli_print_json(cli_object_json(s->bucket, o));
        return 0;
    }
    cli_time_iso(o->last_modified, when);
    printf("%12llu  %s  %s\n", (unsigned long long)o->size_bytes, when, o->key);
    return 0;
}

int cmd_ls(int argc, char **argv)
{
    struct cli_common common = {.takes_bucket = 1};
    struct cli_args args;
    struct r2b_config cfg;
    struct r2b_s3_client *c = NULL;
    struct r2b_error err;
    struct ls_state st = {0};
    const char *bucket;
    int rc;

    r2b_config_init(&cfg);
    if ((rc = cli_parse("ls", argc, argv, NULL, &common, &args)) != 0)
        return rc;
    if (common.help) {
        cli_usage_s3(usage);
        return R2B_EXIT_OK;
    }
    if (args.n_pos > 1)
        return cli_usage_error("ls", "expected at most one PREFIX");
    if ((rc = cli_load_config(&common, &cfg)) != 0 || (rc = cli_bucket(&common, &cfg, &bucket)) ||
        (rc = cli_s3_client(&common, &cfg, &c)) != 0)
        goto cleanup;
    st.bucket = bucket;
    st.json = common.json;
    r2b_error_clear(&err);
    if (r2b_s3_list(c, bucket, args.n_pos ? args.pos[0] : NULL, print_one, &st, &err) != R2B_OK)
        rc = cli_fail(&common, &err);
cleanup:
    r2b_s3_client_free(c);
    r2b_config_release(&cfg);
    return rc;
}
