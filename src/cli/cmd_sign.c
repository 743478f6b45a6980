/* r2bridge sign KEY: a privacy-checked URL; --stdin answers a stream. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char usage[] =
    "usage: r2bridge sign KEY (--viewer ID | --anonymous) [--ttl S] [--json]\n"
    "       r2bridge sign --stdin [--ttl S]\n\n"
    "Answers what the web tier may link to, after the privacy check: a public\n"
    "URL for public/unlisted media, a short-lived presigned GET for private/direct\n"
    "media when the viewer is the owner or in the audience, and a denial\n"
    "(exit 5, the reason on stderr) otherwise: unknown, pending, deleted or\n"
    "not_in_audience.\n\n"
    "  --viewer ID   the account asking\n"
    "  --anonymous   nobody logged in: public and unlisted media only\n"
    "  --ttl S       lifetime of a presigned URL, 1 to 604800 s; the default and\n"
    "                the maximum are the cap, R2B_PRIVATE_TTL (900) for private,\n"
    "                R2B_DIRECT_TTL (300) for direct media; a longer --ttl is\n"
    "                lowered and the answer says so\n"
    "  --stdin       read one request per line, 'KEY VIEWER' (VIEWER an account id\n"
    "                or '-' for anonymous), and write one JSON line per request,\n"
    "                flushed, until end of input: a web process keeps one r2bridge\n"
    "                open instead of forking per URL. A malformed or failed line\n"
    "                gets an error line; the stream goes on.\n\n"
    "Exit 0 a URL (with --stdin: end of input), 1 other failure, 2 usage or an\n"
    "unsafe key, 3 configuration (e.g. no R2B_MANIFEST), 5 denied, 75 temporary\n"
    "failure (manifest busy or unreachable: retry).\n";

static struct json_object *answer_json(const char *key, const struct r2b_sign_result *r)
{
    struct json_object *j = json_object_new_object();
    const struct r2b_privacy_decision *d = &r->decision;

    json_object_object_add(j, "key", json_object_new_string(key));
    json_object_object_add(j, "ok", json_object_new_boolean(d->outcome != R2B_PRIVACY_DENY));
    if (d->outcome == R2B_PRIVACY_DENY) {
        json_object_object_add(j, "reason", json_object_new_string(r2b_deny_reason_name(d->reason)));
        return j;
    }
    json_object_object_add(j, "url", json_object_new_string(r->url));
    json_object_object_add(j, "kind", json_object_new_string(d->outcome == R2B_PRIVACY_PRESIGNED
                                                                 ? "presigned"
                                                                 : "public"));
    if (d->outcome == R2B_PRIVACY_PRESIGNED) {
        json_object_object_add(j, "expires_in", json_object_new_int64(d->ttl_s));
        json_object_object_add(j, "ttl_capped", json_object_new_boolean(d->ttl_capped));
    }
    return j;
}

static int sign_stream(struct r2b_pipeline *p, long ttl)
{
    char line[R2B_MANIFEST_MAX_KEY_BYTES + 64];

    while (fgets(line, sizeof(line), stdin) != NULL) {
        size_t len = strlen(line);
        struct r2b_privacy_viewer v = {0, 0, 0};
        struct r2b_sign_result r;
        struct r2b_error err;
        char *sp;

        if (len && line[len - 1] != '\n' && !feof(stdin)) { /* too long: skip the rest */
            int c;

            while ((c = getchar()) != EOF && c != '\n')
                ;
            cli_print_json(json_tokener_parse("{\"ok\":false,\"error\":\"line too long\"}"));
            continue;
        }
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0)
            continue;
        sp = strrchr(line, ' '); /* keys may hold spaces: the viewer is the last word */
        if (sp == NULL || sp == line) {
            cli_print_json(json_tokener_parse("{\"ok\":false,\"error\":\"expected 'KEY VIEWER'\"}"));
            continue;
        }
        *sp = '\0';
        if (strcmp(sp + 1, "-") == 0) {
            v.anonymous = 1;
        } else {
            uint64_t id;

            if (r2b_parse_u64(sp + 1, INT64_MAX, &id) != 0 || id == 0) {
                cli_print_json(json_tokener_parse(
                    "{\"ok\":false,\"error\":\"viewer must be an account id or '-'\"}"));
                continue;
            }
            v.account_id = (int64_t)id;
        }
        r2b_error_clear(&err);
        if (r2b_pipeline_sign(p, line, &v, ttl, &r, &err) != R2B_OK) {
            struct json_object *j = json_object_new_object();

            json_object_object_add(j, "key", json_object_new_string(line));
            json_object_object_add(j, "ok", json_object_new_boolean(0));
            json_object_object_add(j, "error", json_object_new_string(err.message));
            cli_print_json(j);
            continue;
        }
        cli_print_json(answer_json(line, &r));
    }
    return R2B_EXIT_OK;
}

int cmd_sign(int argc, char **argv)
{
    struct cli_common common = {0};
    struct cli_args args;
    const char *viewer_s = NULL, *ttl_s = NULL;
    int anonymous = 0, use_stdin = 0, rc;
    const struct cli_opt opts[] = {
        {"viewer", &viewer_s, NULL}, {"anonymous", NULL, &anonymous}, {"ttl", &ttl_s, NULL},
        {"stdin", NULL, &use_stdin}, {NULL, NULL, NULL},
    };
    struct r2b_privacy_viewer v = {0, 0, 0};
    struct r2b_config cfg;
    struct r2b_pipeline *p = NULL;
    struct r2b_sign_result r;
    struct r2b_error err;
    long ttl = 0;

    r2b_config_init(&cfg);
    if ((rc = cli_parse("sign", argc, argv, opts, &common, &args)) != 0)
        return rc;
    if (common.help) {
        cli_usage(usage);
        return R2B_EXIT_OK;
    }
    if (ttl_s && cli_parse_long("sign", "ttl", ttl_s, 1, 604800, &ttl))
        return R2B_EXIT_USAGE;
    if (use_stdin) {
        if (args.n_pos || viewer_s || anonymous)
            return cli_usage_error("sign", "--stdin takes its requests from standard input");
    } else {
        if (args.n_pos != 1)
            return cli_usage_error("sign", "expected one KEY");
        if ((viewer_s == NULL) == !anonymous)
            return cli_usage_error("sign", "give either --viewer ID or --anonymous");
        if (viewer_s && cli_parse_id("sign", "viewer", viewer_s, &v.account_id))
            return R2B_EXIT_USAGE;
        v.anonymous = anonymous;
    }
    if ((rc = cli_pipeline(&common, &cfg, &p)) != 0)
        goto cleanup;
    if (use_stdin) {
        rc = sign_stream(p, ttl);
        goto cleanup;
    }
    r2b_error_clear(&err);
    if (r2b_pipeline_sign(p, args.pos[0], &v, ttl, &r, &err) != R2B_OK) {
        rc = cli_fail(&common, &err);
        goto cleanup;
    }
    if (common.json)
        cli_print_json(answer_json(args.pos[0], &r));
    if (r.decision.outcome == R2B_PRIVACY_DENY) {
        fprintf(stderr, "r2bridge: denied (%s): '%s'\n", r2b_deny_reason_name(r.decision.reason),
                args.pos[0]);
        rc = R2B_EXIT_DENIED;
        goto cleanup;
    }
    if (!common.json) {
        puts(r.url);
        if (r.decision.ttl_capped)
            fprintf(stderr, "r2bridge: note: ttl lowered to %ld s (the cap for this visibility)\n",
                    r.decision.ttl_s);
    }
    rc = R2B_EXIT_OK;
cleanup:
    r2b_pipeline_free(p);
    r2b_config_release(&cfg);
    return rc;
}
