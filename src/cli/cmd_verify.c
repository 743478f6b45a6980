/* r2bridge verify: reconcile the buckets with the manifest, both ways. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char usage[] =
    "usage: r2bridge verify [--fix] [--grace S] [--json]\n\n"
    "Lists both buckets and compares them with the manifest, both ways:\n"
    "  privacy_alarm  a private/direct object in the public bucket (reported first)\n"
    "  missing        a record 'stored' whose object is absent\n"
    "  differs        a record whose object has another size or ETag\n"
    "  orphan         an object with no live record\n"
    "The listing streams to an index on disk: millions of objects, little memory.\n\n"
    "  --fix      move alarmed objects to the private bucket, mark records of missing\n"
    "             or differing objects 'pending' (the next migrate uploads them),\n"
    "             delete orphans older than the grace period; never anything newer\n"
    "  --grace S  seconds, 1 to 31536000 (default 86400)\n\n"
    "Exit 0 nothing found (or everything found was fixed), 1 something left\n"
    "unfixed (or another failure), 2 usage, 3 configuration, 6 a bucket does not\n"
    "exist, 75 temporary failure (run it again).\n";

struct vui {
    int json;
    struct json_object *items; /* the first 100,000 findings (--json) */
    int truncated;             /* more were found than items holds */
    uint64_t unfixed;
};

static void on_finding(void *ud, enum r2b_verify_finding f, const char *bucket, const char *key,
                       const char *detail, int fixed)
{
    struct vui *u = ud;

    u->unfixed += !fixed;
    if (u->json) {
        struct json_object *j;

        if (json_object_array_length(u->items) >= 100000) { /* the counts stay exact */
            u->truncated = 1;
            return;
        }
        j = json_object_new_object();
        json_object_object_add(j, "finding", json_object_new_string(r2b_verify_finding_name(f)));
        json_object_object_add(j, "bucket", json_object_new_string(bucket));
        json_object_object_add(j, "key", json_object_new_string(key));
        json_object_object_add(j, "detail", json_object_new_string(detail));
        json_object_object_add(j, "fixed", json_object_new_boolean(fixed));
        json_object_array_add(u->items, j);
        return;
    }
    printf("%s%s\t%s/%s\t%s\n", f == R2B_FINDING_PRIVACY_ALARM ? "PRIVACY ALARM: " : "",
           r2b_verify_finding_name(f), bucket, key, detail);
}

int cmd_verify(int argc, char **argv)
{
    struct cli_common common = {0};
    struct cli_args args;
    const char *grace_s = NULL;
    int fix = 0, rc;
    const struct cli_opt opts[] = {
        {"fix", NULL, &fix}, {"grace", &grace_s, NULL}, {NULL, NULL, NULL}};
    struct r2b_verify_options vo;
    struct r2b_verify_stats st;
    struct r2b_config cfg;
    struct r2b_error err;
    struct vui u = {0, NULL, 0, 0};
    long grace = 86400;

    r2b_config_init(&cfg);
    if ((rc = cli_parse("verify", argc, argv, opts, &common, &args)) != 0)
        return rc;
    if (common.help) {
        cli_usage(usage);
        return R2B_EXIT_OK;
    }
    if (args.n_pos != 0)
        return cli_usage_error("verify", "takes no arguments");
    if (grace_s && cli_parse_long("verify", "grace", grace_s, 1, 365L * 86400, &grace))
        return R2B_EXIT_USAGE;
    if ((rc = cli_load_config(&common, &cfg)) != 0)
        goto cleanup;
    memset(&vo, 0, sizeof(vo));
    vo.fix = fix;
    vo.grace_s = grace;
    vo.tmp_dir = cfg.tmp_dir;
    vo.finding = on_finding;
    vo.ud = &u;
    u.json = common.json;
    u.items = json_object_new_array();
    r2b_error_clear(&err);
    if (r2b_verify(&cfg, &vo, &st, &err) != R2B_OK) {
        rc = cli_fail(&common, &err);
        goto cleanup;
    }
    if (common.json) {
        struct json_object *j = json_object_new_object();

        json_object_object_add(j, "ok", json_object_new_boolean(u.unfixed == 0));
        json_object_object_add(j, "objects_listed",
                               json_object_new_int64((int64_t)st.objects_listed));
        json_object_object_add(j, "records_checked",
                               json_object_new_int64((int64_t)st.records_checked));
        for (int f = 0; f < 4; f++)
            json_object_object_add(j, r2b_verify_finding_name((enum r2b_verify_finding)f),
                                   json_object_new_int64((int64_t)st.found[f]));
        json_object_object_add(j, "fixed", json_object_new_int64((int64_t)st.fixed));
        json_object_object_add(j, "findings", json_object_get(u.items));
        json_object_object_add(j, "findings_truncated", json_object_new_boolean(u.truncated));
        cli_print_json(j);
    } else {
        printf("verified: %llu objects, %llu stored records; %llu privacy alarms, %llu missing, "
               "%llu differ, %llu orphans; %llu fixed\n",
               (unsigned long long)st.objects_listed, (unsigned long long)st.records_checked,
               (unsigned long long)st.found[0], (unsigned long long)st.found[1],
               (unsigned long long)st.found[2], (unsigned long long)st.found[3],
               (unsigned long long)st.fixed);
    }
    rc = u.unfixed ? R2B_EXIT_FAILURE : R2B_EXIT_OK;
cleanup:
    json_object_put(u.items);
    r2b_config_release(&cfg);
    return rc;
}
