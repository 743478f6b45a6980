/* r2bridge config: the effective configuration, secrets redacted. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char usage[] =
    "usage: r2bridge config\n\n"
    "Prints the effective configuration as NAME=value lines (with --json, one\n"
    "object); the secret key, the session token and a password in R2B_MANIFEST\n"
    "are shown as <redacted>. A variable set (non-empty) in the environment wins\n"
    "over --env-file. The environment-only R2B_AV_MODULE and R2B_FROM_* are not\n"
    "shown.\n\n"
    "Exit 0 done, 1 other failure, 2 usage, 3 an invalid setting or an\n"
    "unreadable --env-file.\n";

int cmd_config(int argc, char **argv)
{
    struct cli_common common = {0};
    struct cli_args args;
    struct r2b_config cfg;
    struct r2b_buf out;
    int rc;

    r2b_config_init(&cfg);
    r2b_buf_init(&out, 64 * 1024);
    if ((rc = cli_parse("config", argc, argv, NULL, &common, &args)) != 0)
        return rc;
    if (common.help) {
        cli_usage(usage);
        return R2B_EXIT_OK;
    }
    if (args.n_pos != 0)
        return cli_usage_error("config", "takes no arguments");
    if ((rc = cli_load_config(&common, &cfg)) != 0)
        goto cleanup;
    r2b_config_describe(&cfg, &out);
    if (common.json) {
        struct json_object *j = json_object_new_object();
        char *line = out.ptr;

        while (line && *line) {
            char *nl = strchr(line, '\n'), *eq = strchr(line, '=');

            if (nl)
                *nl = '\0';
            if (eq) {
                *eq = '\0';
                json_object_object_add(j, line, json_object_new_string(eq + 1));
            }
            line = nl ? nl + 1 : NULL;
        }
        cli_print_json(j);
    } else {
        fputs(r2b_buf_str(&out), stdout);
    }
cleanup:
    r2b_buf_release(&out);
    r2b_config_release(&cfg);
    return rc;
}
