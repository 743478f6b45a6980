/* r2bridge visibility / grant / revoke: change who may see an object. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char vis_usage[] =
    "usage: r2bridge visibility KEY V\n\n"
    "Changes KEY's visibility to V (public, unlisted, private, direct). When the\n"
    "bucket changes, the object is copied to the new bucket, verified, the\n"
    "manifest updated, and the old copy deleted; if interrupted, running the\n"
    "same command again finishes the move.\n\n"
    "Exit 0 done, 1 other failure, 2 usage, 3 configuration (private or direct\n"
    "without R2B_PRIVATE_BUCKET), 6 no record for KEY (or it is deleted),\n"
    "75 temporary failure or KEY's upload still pending (run it again: the move\n"
    "must still happen).\n";

static const char grant_usage[] =
    "usage: r2bridge grant KEY ID...\n\n"
    "Adds accounts to KEY's audience (who may get a presigned URL for private or\n"
    "direct media). Idempotent; takes effect on the next sign. At most 1023 IDs\n"
    "per call.\n\n"
    "Exit 0 done, 1 other failure, 2 usage, 3 configuration, 6 no record for KEY,\n"
    "75 temporary failure (retry).\n";

static const char revoke_usage[] =
    "usage: r2bridge revoke KEY ID...\n\n"
    "Removes accounts from KEY's audience. Idempotent; URLs already handed out\n"
    "stay valid until they expire (at most the TTL cap). At most 1023 IDs per\n"
    "call.\n\n"
    "Exit 0 done, 1 other failure, 2 usage, 3 configuration, 6 no record for KEY,\n"
    "75 temporary failure (retry).\n";

int cmd_visibility(int argc, char **argv)
{
    struct cli_common common = {0};
    struct cli_args args;
    struct r2b_config cfg;
    struct r2b_pipeline *p = NULL;
    struct r2b_error err;
    enum r2b_visibility vis;
    int rc;

    r2b_config_init(&cfg);
    if ((rc = cli_parse("visibility", argc, argv, NULL, &common, &args)) != 0)
        return rc;
    if (common.help) {
        cli_usage(vis_usage);
        return R2B_EXIT_OK;
    }
    if (args.n_pos != 2)
        return cli_usage_error("visibility", "expected KEY and a visibility");
    if (r2b_visibility_parse(args.pos[1], &vis) != 0)
        return cli_usage_error("visibility", "visibility must be public, unlisted, private or direct");
    if ((rc = cli_pipeline(&common, &cfg, &p)) != 0)
        goto cleanup;
    r2b_error_clear(&err);
    if (r2b_pipeline_set_visibility(p, args.pos[0], vis, &err) != R2B_OK) {
        rc = cli_fail(&common, &err);
        goto cleanup;
    }
    if (common.json) {
        struct json_object *j = json_object_new_object();

        json_object_object_add(j, "ok", json_object_new_boolean(1));
        json_object_object_add(j, "key", json_object_new_string(args.pos[0]));
        json_object_object_add(j, "visibility", json_object_new_string(r2b_visibility_name(vis)));
        cli_print_json(j);
    } else {
        printf("'%s' is now %s\n", args.pos[0], r2b_visibility_name(vis));
    }
cleanup:
    r2b_pipeline_free(p);
    r2b_config_release(&cfg);
    return rc;
}

static int audience_cmd(const char *cmd, const char *usage, int add, int argc, char **argv)
{
    struct cli_common common = {0};
    struct cli_args args;
    struct r2b_config cfg;
    struct r2b_pipeline *p = NULL;
    struct r2b_manifest *m;
    struct r2b_error err;
    int64_t ids[CLI_MAX_POSITIONAL];
    size_t n = 0;
    int rc;

    r2b_config_init(&cfg);
    if ((rc = cli_parse(cmd, argc, argv, NULL, &common, &args)) != 0)
        return rc;
    if (common.help) {
        cli_usage(usage);
        return R2B_EXIT_OK;
    }
    if (args.n_pos < 2)
        return cli_usage_error(cmd, "expected KEY and at least one account id");
    for (int i = 1; i < args.n_pos; i++)
        if (cli_parse_id(cmd, "account", args.pos[i], &ids[n++]))
            return R2B_EXIT_USAGE;
    if ((rc = cli_pipeline(&common, &cfg, &p)) != 0)
        goto cleanup;
    r2b_error_clear(&err);
    if (r2b_pipeline_manifest(p, &m, &err) != R2B_OK ||
        (add ? r2b_manifest_audience_add(m, args.pos[0], ids, n, &err)
             : r2b_manifest_audience_remove(m, args.pos[0], ids, n, &err)) != R2B_OK) {
        rc = cli_fail(&common, &err);
        goto cleanup;
    }
    if (common.json) {
        struct json_object *j = json_object_new_object();

        json_object_object_add(j, "ok", json_object_new_boolean(1));
        json_object_object_add(j, "key", json_object_new_string(args.pos[0]));
        json_object_object_add(j, add ? "granted" : "revoked", json_object_new_int((int)n));
        cli_print_json(j);
    } else {
        printf("%s %zu account(s) %s '%s'\n", add ? "granted" : "revoked", n,
               add ? "to" : "from", args.pos[0]);
    }
cleanup:
    r2b_pipeline_free(p);
    r2b_config_release(&cfg);
    return rc;
}

int cmd_grant(int argc, char **argv)
{
    return audience_cmd("grant", grant_usage, 1, argc, argv);
}

int cmd_revoke(int argc, char **argv)
{
    return audience_cmd("revoke", revoke_usage, 0, argc, argv);
}
