/* r2bridge manifest show KEY | ls: read the manifest. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char usage[] =
    "usage: r2bridge manifest show KEY\n"
    "       r2bridge manifest ls [PREFIX] [--visibility V] [--state S]\n\n"
    "Reads the manifest (R2B_MANIFEST): one record per stored object and style,\n"
    "with its visibility, owner, audience, checksum and state (pending, stored,\n"
    "deleted). 'ls' lists in key order, PREFIX matched byte for byte.\n\n"
    "  --visibility V  only records of visibility V\n"
    "  --state S       only records in state S\n\n"
    "Exit 0 done, 1 other failure, 2 usage, 3 configuration (e.g. no\n"
    "R2B_MANIFEST), 6 'show': no record for KEY, 75 temporary failure (retry).\n";

static struct json_object *record_json(const struct r2b_manifest_record *r)
{
    struct json_object *j = json_object_new_object();

    json_object_object_add(j, "key", json_object_new_string(r->key));
    json_object_object_add(j, "bucket", json_object_new_string(r->bucket));
    json_object_object_add(j, "style", json_object_new_string(r->style));
    json_object_object_add(j, "visibility", json_object_new_string(r2b_visibility_name(r->visibility)));
    json_object_object_add(j, "state", json_object_new_string(r2b_state_name(r->state)));
    json_object_object_add(j, "owner_id", json_object_new_int64(r->owner_id));
    json_object_object_add(j, "status_id", r->status_id ? json_object_new_int64(r->status_id) : NULL);
    json_object_object_add(j, "content_type", json_object_new_string(r->content_type));
    json_object_object_add(j, "size", json_object_new_int64((int64_t)r->size_bytes));
    json_object_object_add(j, "sha256", json_object_new_string(r->sha256));
    json_object_object_add(j, "etag", json_object_new_string(r->etag));
    json_object_object_add(j, "created_at", json_object_new_int64(r->created_at));
    json_object_object_add(j, "updated_at", json_object_new_int64(r->updated_at));
    if (r->source_path[0])
        json_object_object_add(j, "source_path", json_object_new_string(r->source_path));
    return j;
}

struct ls_state {
    int json;
    uint64_t n;
};

static int print_record(void *ud, const struct r2b_manifest_record *r)
{
    struct ls_state *s = ud;

    s->n++;
    if (s->json)
        cli_print_json(record_json(r));
    else
        printf("%-8s %-8s %-8s %10llu  %s\n", r2b_state_name(r->state),
               r2b_visibility_name(r->visibility), r->style, (unsigned long long)r->size_bytes,
               r->key);
    return 0;
}

int cmd_manifest(int argc, char **argv)
{
    struct cli_common common = {0};
    struct cli_args args;
    const char *vis_s = NULL, *state_s = NULL;
    const struct cli_opt opts[] = {
        {"visibility", &vis_s, NULL}, {"state", &state_s, NULL}, {NULL, NULL, NULL}};
    struct r2b_config cfg;
    struct r2b_manifest *m = NULL;
    struct r2b_error err;
    enum r2b_visibility vis = R2B_VIS_PUBLIC;
    enum r2b_state state = R2B_STATE_PENDING;
    int rc;

    r2b_config_init(&cfg);
    if ((rc = cli_parse("manifest", argc, argv, opts, &common, &args)) != 0)
        return rc;
    if (common.help) {
        cli_usage(usage);
        return R2B_EXIT_OK;
    }
    if (args.n_pos < 1 || (strcmp(args.pos[0], "show") != 0 && strcmp(args.pos[0], "ls") != 0))
        return cli_usage_error("manifest", "expected 'show KEY' or 'ls [PREFIX]'");
    if (strcmp(args.pos[0], "show") == 0 && args.n_pos != 2)
        return cli_usage_error("manifest", "expected 'show KEY'");
    if (strcmp(args.pos[0], "ls") == 0 && args.n_pos > 2)
        return cli_usage_error("manifest", "expected 'ls [PREFIX]'");
    if (vis_s && r2b_visibility_parse(vis_s, &vis) != 0)
        return cli_usage_error("manifest", "--visibility must be public, unlisted, private or direct");
    if (state_s && r2b_state_parse(state_s, &state) != 0)
        return cli_usage_error("manifest", "--state must be pending, stored or deleted");
    if ((rc = cli_load_config(&common, &cfg)) != 0)
        goto cleanup;
    r2b_error_clear(&err);
    m = r2b_manifest_open(cfg.manifest, &err);
    if (m == NULL) {
        rc = cli_fail(&common, &err);
        goto cleanup;
    }
    if (strcmp(args.pos[0], "show") == 0) {
        struct r2b_manifest_record r;
        int64_t *ids = NULL;
        size_t n = 0;

        if (r2b_manifest_get(m, args.pos[1], &r, &err) != R2B_OK ||
            r2b_manifest_audience(m, args.pos[1], &ids, &n, &err) != R2B_OK) {
            rc = cli_fail(&common, &err);
            goto cleanup;
        }
        if (common.json) {
            struct json_object *j = record_json(&r), *a = json_object_new_array();

            for (size_t i = 0; i < n; i++)
                json_object_array_add(a, json_object_new_int64(ids[i]));
            json_object_object_add(j, "audience", a);
            cli_print_json(j);
        } else {
            printf("key: %s\nbucket: %s\nstyle: %s\nvisibility: %s\nstate: %s\nowner: %lld\n"
                   "content-type: %s\nsize: %llu\nsha256: %s\netag: %s\naudience:",
                   r.key, r.bucket, r.style, r2b_visibility_name(r.visibility),
                   r2b_state_name(r.state), (long long)r.owner_id, r.content_type,
                   (unsigned long long)r.size_bytes, r.sha256, r.etag);
            for (size_t i = 0; i < n; i++)
                printf(" %lld", (long long)ids[i]);
            printf("\n");
        }
        free(ids);
    } else {
        struct ls_state s = {common.json, 0};

        if (r2b_manifest_list(m, vis_s ? (int)vis : -1, state_s ? (int)state : -1,
                              args.n_pos == 2 ? args.pos[1] : NULL, print_record, &s,
                              &err) != R2B_OK) {
            rc = cli_fail(&common, &err);
            goto cleanup;
        }
    }
cleanup:
    r2b_manifest_close(m);
    r2b_config_release(&cfg);
    return rc;
}
