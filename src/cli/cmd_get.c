/* r2bridge get KEY FILE: download one object, atomically. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

static const char usage[] =
    "usage: r2bridge get KEY FILE\n\n"
    "Downloads KEY into FILE. The bytes go to a temporary file next to FILE that\n"
    "is renamed into place only when the download is complete and its size\n"
    "matches, so FILE is never left half-written. FILE '-' writes to stdout.\n\n"
    "Exit 0 downloaded, 1 other failure, 2 usage, 3 configuration, 6 no such key\n"
    "or bucket (or FILE's directory), 75 temporary failure (retry).\n";

int cmd_get(int argc, char **argv)
{
    struct cli_common common = {.takes_bucket = 1};
    struct cli_args args;
    struct r2b_config cfg;
    struct r2b_s3_client *c = NULL;
    struct r2b_s3_object obj;
    struct r2b_error err;
    struct r2b_buf tmp;
    const char *bucket, *file;
    int rc, fd = -1, to_stdout;

    r2b_config_init(&cfg);
    r2b_buf_init(&tmp, 8192);
    if ((rc = cli_parse("get", argc, argv, NULL, &common, &args)) != 0)
        return rc;
    if (common.help) {
        cli_usage_s3(usage);
        return R2B_EXIT_OK;
    }
    if (args.n_pos != 2)
        return cli_usage_error("get", "expected KEY and FILE");
    if (cli_check_key("get", args.pos[0]) != 0)
        return R2B_EXIT_USAGE;
    file = args.pos[1];
    to_stdout = strcmp(file, "-") == 0;
    if (to_stdout && common.json) /* the object's bytes and JSON would share stdout */
        return cli_usage_error("get", "--json cannot be used with FILE '-'");
    if ((rc = cli_load_config(&common, &cfg)) != 0 || (rc = cli_bucket(&common, &cfg, &bucket)) ||
        (rc = cli_s3_client(&common, &cfg, &c)) != 0)
        goto cleanup;
    r2b_error_clear(&err);
    if (to_stdout) {
        fd = STDOUT_FILENO;
    } else {
        if (r2b_buf_addf(&tmp, "%s.r2b-partial-XXXXXX", file) != R2B_OK) {
            rc = cli_usage_error("get", "file name too long");
            goto cleanup;
        }
        fd = mkstemp(tmp.ptr);
        if (fd < 0) {
            r2b_error_set_errno(&err, errno == ENOENT ? R2B_ERR_NOT_FOUND : R2B_ERR_IO, errno,
                                "cannot create '%s'", tmp.ptr);
            rc = cli_fail(&common, &err);
            goto cleanup;
        }
    }
    if (r2b_s3_get_fd(c, bucket, args.pos[0], fd, &obj, &err) != R2B_OK) {
        rc = cli_fail(&common, &err);
        goto cleanup;
    }
    if (!to_stdout) {
        mode_t mask = umask(0);

        umask(mask);
        /* mkstemp made it 0600; give the file the mode a plain create would */
        if (fchmod(fd, 0666 & ~mask) != 0 || fsync(fd) != 0 || close(fd) != 0 ||
            (fd = -1, rename(tmp.ptr, file) != 0)) {
            r2b_error_set_errno(&err, R2B_ERR_IO, errno, "cannot write '%s'", file);
            rc = cli_fail(&common, &err);
            goto cleanup;
        }
        r2b_buf_reset(&tmp); /* renamed: nothing to remove */
        if (common.json) {
            struct json_object *j = cli_object_json(bucket, &obj);

            json_object_object_add(j, "file", json_object_new_string(file));
            json_object_object_add(j, "ok", json_object_new_boolean(1));
            cli_print_json(j);
        } else {
            fprintf(stderr, "downloaded '%s/%s' to '%s' (%llu bytes)\n", bucket, args.pos[0],
                    file, (unsigned long long)obj.size_bytes);
        }
    }
cleanup:
    if (fd >= 0 && !to_stdout)
        close(fd);
    if (tmp.len)
        unlink(tmp.ptr); /* a failed download leaves nothing behind */
    r2b_buf_release(&tmp);
    r2b_s3_client_free(c);
    r2b_config_release(&cfg);
    return rc;
}
