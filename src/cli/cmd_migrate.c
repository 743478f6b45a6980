/* r2bridge migrate --from-dir PATH: move an existing media tree, resumably. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static const char usage[] =
    "usage: r2bridge migrate (--from-dir PATH | --from-s3 s3://BUCKET) [--jobs N]\n"
    "                        [--visibility-map FILE] [--prefix P] [--owner ID]\n"
    "                        [--dry-run] [--claim-ttl S] [--verify] [--json]\n\n"
    "Moves an instance's existing public/system tree into the buckets, recording\n"
    "every object in the manifest so the privacy check works from day one. Keys\n"
    "are paths relative to PATH, so existing URLs resolve unchanged under the\n"
    "alias host. Files go up N at a time over reused connections; large ones as\n"
    "multipart uploads; every object is verified (Content-MD5, size, ETag).\n\n"
    "Resumable: killed at any moment, the same command finishes the job; what\n"
    "the manifest already records as stored is skipped without a request.\n"
    "Ctrl-C (or SIGTERM) stops cleanly: in-flight uploads are aborted and the\n"
    "summary printed. A failed file does not stop the batch; every failure is\n"
    "reported, and the exit code says whether everything made it.\n\n"
    "  --from-dir PATH        the tree (Mastodon's public/system)\n"
    "  --from-s3 s3://BUCKET  another S3-compatible bucket (R2 to elsewhere, or\n"
    "                         elsewhere to R2); keys are kept. Its endpoint and\n"
    "                         credentials: R2B_FROM_ENDPOINT, R2B_FROM_REGION,\n"
    "                         R2B_FROM_ACCESS_KEY_ID, R2B_FROM_SECRET_ACCESS_KEY,\n"
    "                         R2B_FROM_SESSION_TOKEN, R2B_FROM_PATH_STYLE, from the\n"
    "                         environment only (each defaults to the S3_*/AWS_*\n"
    "                         value of the destination; with R2B_FROM_ACCESS_KEY_ID\n"
    "                         set, AWS_SESSION_TOKEN is not sent to the source)\n"
    "  --jobs N               files in flight, 1 to 256 (default 8)\n"
    "  --visibility-map FILE  CSV lines key_prefix_or_key,visibility,account_id\n"
    "                         [,audience...] (longest prefix wins; private/direct\n"
    "                         go to R2B_PRIVATE_BUCKET); unmapped files are public\n"
    "  --prefix P             only keys starting with P\n"
    "  --owner ID             owner recorded for unmapped files\n"
    "  --dry-run              count what would move; write nothing\n"
    "  --claim-ttl S          several migrate processes (on several hosts sharing the\n"
    "                         source and a PostgreSQL manifest) split the work: each\n"
    "                         file is claimed in the manifest first; a crashed\n"
    "                         process's claims are free again after S s, 1 to\n"
    "                         604800 (default 3600)\n"
    "  --verify               also HEAD every already-stored object: size and ETag\n"
    "                         must match the manifest (nothing is re-uploaded)\n\n"
    "Exit 0 everything made it, 1 some files failed (listed), 2 usage,\n"
    "3 configuration (also a bad --visibility-map), 6 no such directory or source\n"
    "bucket, 75 interrupted, or every failure was temporary (network, 5xx,\n"
    "throttling, full disk: run it again later).\n";

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

struct ui {
    int json, tty;
    struct json_object *failures;
    uint64_t n_failures;
};

/* A name as it may be printed: valid UTF-8 without control characters stays
 * as it is; anything else becomes \xNN (git's quoting is the model). */
static const char *printable_name(const char *key, char *out, size_t size)
{
    size_t o = 0, n = strlen(key);
    int clean = r2b_utf8_valid(key, n);

    for (size_t i = 0; clean && i < n; i++)
        if ((unsigned char)key[i] < 0x20 || key[i] == 0x7f)
            clean = 0;
    if (clean)
        return key;
    for (size_t i = 0; i < n && o + 5 < size; i++) {
        unsigned char c = (unsigned char)key[i];

        if (c < 0x20 || c >= 0x7f || c == '\\')
            o += (size_t)snprintf(out + o, size - o, "\\x%02x", c);
        else
            out[o++] = (char)c;
    }
    out[o] = '\0';
    return out;
}

static void on_failure(void *ud, const char *raw_key, const char *reason)
{
    struct ui *u = ud;
    char quoted[4 * R2B_S3_MAX_KEY_BYTES + 8];
    const char *key = printable_name(raw_key, quoted, sizeof(quoted));

    u->n_failures++;
    if (u->json && u->n_failures <= 10000) {
        struct json_object *f = json_object_new_object();

        json_object_object_add(f, "key", json_object_new_string(key));
        json_object_object_add(f, "reason", json_object_new_string(reason));
        json_object_array_add(u->failures, f);
    }
    fprintf(stderr, "%sr2bridge: failed: '%s': %s\n", u->tty ? "\r\033[K" : "", key, reason);
}

static double rate(uint64_t n, int64_t ms)
{
    return ms > 0 ? (double)n * 1000.0 / (double)ms : 0.0;
}

static void on_progress(void *ud, const struct r2b_migrate_stats *s)
{
    struct ui *u = ud;
    uint64_t done = s->files_moved + s->files_skipped + s->files_failed;
    double fps = rate(s->files_moved, s->elapsed_ms);
    double mbs = rate(s->bytes_moved, s->elapsed_ms) / 1048576.0;
    double eta = fps > 0 && s->files_seen > done ? (double)(s->files_seen - done) / fps : 0;

    if (s->done && u->tty) {
        fputs("\r\033[K", stderr);
        return;
    }
    if (s->done)
        return;
    fprintf(stderr,
            "%s%llu/%llu files, %.1f MiB moved, %.1f files/s, %.1f MiB/s, %llu skipped, "
            "%llu failed, eta %.0f s%s",
            u->tty ? "\r\033[K" : "r2bridge: progress: ", (unsigned long long)done,
            (unsigned long long)s->files_seen, (double)s->bytes_moved / 1048576.0, fps, mbs,
            (unsigned long long)s->files_skipped, (unsigned long long)s->files_failed, eta,
            u->tty ? "" : "\n");
}

int cmd_migrate(int argc, char **argv)
{
    struct cli_common common = {0};
    struct cli_args args;
    const char *claim_s = NULL;
    const char *from = NULL, *from_s3 = NULL, *jobs_s = NULL, *map = NULL, *prefix = NULL,
               *owner_s = NULL;
    int dry_run = 0, verify = 0, rc;
    const struct cli_opt opts[] = {
        {"from-dir", &from, NULL},   {"from-s3", &from_s3, NULL},
        {"jobs", &jobs_s, NULL},     {"visibility-map", &map, NULL},
        {"prefix", &prefix, NULL},   {"owner", &owner_s, NULL},
        {"dry-run", NULL, &dry_run}, {"claim-ttl", &claim_s, NULL},
        {"verify", NULL, &verify},   {NULL, NULL, NULL},
    };
    struct r2b_migrate_options mo;
    struct r2b_s3_options src;
    struct r2b_migrate_stats st;
    struct r2b_config cfg;
    struct r2b_error err;
    struct sigaction sa;
    struct ui u = {0, 0, NULL, 0};
    enum r2b_status status;
    long jobs = 8;

    r2b_config_init(&cfg);
    if ((rc = cli_parse("migrate", argc, argv, opts, &common, &args)) != 0)
        return rc;
    if (common.help) {
        cli_usage(usage);
        return R2B_EXIT_OK;
    }
    if ((from == NULL) == (from_s3 == NULL) || args.n_pos != 0)
        return cli_usage_error("migrate", "expected --from-dir PATH or --from-s3 s3://BUCKET");
    if (from_s3 && (strncmp(from_s3, "s3://", 5) != 0 || from_s3[5] == '\0' ||
                    strchr(from_s3 + 5, '/') != NULL))
        return cli_usage_error("migrate", "--from-s3 takes s3://BUCKET (use --prefix to narrow)");
    if (jobs_s && cli_parse_long("migrate", "jobs", jobs_s, 1, 256, &jobs))
        return R2B_EXIT_USAGE;
    memset(&mo, 0, sizeof(mo));
    if (claim_s && cli_parse_long("migrate", "claim-ttl", claim_s, 1, 7L * 86400, &mo.claim_ttl_s))
        return R2B_EXIT_USAGE;
    if (owner_s && cli_parse_id("migrate", "owner", owner_s, &mo.default_owner_id))
        return R2B_EXIT_USAGE;
    if ((rc = cli_load_config(&common, &cfg)) != 0)
        goto cleanup;
    r2b_error_clear(&err);
    if (r2b_config_check_s3(&cfg, &err) != R2B_OK) {
        rc = cli_fail(&common, &err);
        goto cleanup;
    }
    u.json = common.json;
    u.tty = isatty(STDERR_FILENO);
    u.failures = json_object_new_array();
    mo.from_dir = from;
    if (from_s3) {
        const char *v;

        r2b_s3_options_from_config(&src, &cfg);
        if ((v = getenv("R2B_FROM_ENDPOINT")) && *v)
            src.endpoint = v;
        if ((v = getenv("R2B_FROM_REGION")) && *v)
            src.region = v;
        if ((v = getenv("R2B_FROM_ACCESS_KEY_ID")) && *v) {
            src.access_key = v;
            src.session_token = NULL; /* AWS_SESSION_TOKEN goes with the destination's keys */
        }
        if ((v = getenv("R2B_FROM_SESSION_TOKEN")) && *v)
            src.session_token = v;
        if ((v = getenv("R2B_FROM_SECRET_ACCESS_KEY")) && *v)
            src.secret_key = v;
        if ((v = getenv("R2B_FROM_PATH_STYLE")) && *v) {
            int b = r2b_config_parse_bool(v);

            if (b < 0) {
                r2b_error_set(&err, R2B_ERR_CONFIG,
                              "R2B_FROM_PATH_STYLE must be true or false, not '%s'", v);
                rc = cli_fail(&common, &err);
                goto cleanup;
            }
            src.path_style = b;
        }
        mo.from_bucket = from_s3 + 5;
        mo.from_s3 = &src;
    }
    mo.prefix = prefix;
    mo.jobs = (int)jobs;
    mo.dry_run = dry_run;
    mo.verify = verify;
    mo.visibility_map = map;
    mo.cancel = &stop_flag;
    mo.progress = on_progress;
    mo.failure = on_failure;
    mo.ud = &u;
    mo.progress_ms = u.tty ? 500 : 10000;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    status = r2b_migrate(&cfg, &mo, &st, &err);
    if (status != R2B_OK && status != R2B_ERR_INTERRUPTED) {
        rc = cli_fail(&common, &err);
        goto cleanup;
    }
    if (common.json) {
        struct json_object *j = json_object_new_object();

        json_object_object_add(j, "ok",
                               json_object_new_boolean(status == R2B_OK && st.files_failed == 0));
        json_object_object_add(j, "dry_run", json_object_new_boolean(dry_run));
        json_object_object_add(j, "interrupted", json_object_new_boolean(status != R2B_OK));
        json_object_object_add(j, "files_seen", json_object_new_int64((int64_t)st.files_seen));
        json_object_object_add(j, "files_moved", json_object_new_int64((int64_t)st.files_moved));
        json_object_object_add(j, "files_skipped",
                               json_object_new_int64((int64_t)st.files_skipped));
        json_object_object_add(j, "files_failed", json_object_new_int64((int64_t)st.files_failed));
        json_object_object_add(j, "files_failed_temporary",
                               json_object_new_int64((int64_t)st.files_failed_temporary));
        json_object_object_add(j, "files_claimed_elsewhere",
                               json_object_new_int64((int64_t)st.files_claimed_elsewhere));
        json_object_object_add(j, "files_verified",
                               json_object_new_int64((int64_t)st.files_verified));
        json_object_object_add(j, "bytes_moved", json_object_new_int64((int64_t)st.bytes_moved));
        json_object_object_add(j, "bytes_skipped",
                               json_object_new_int64((int64_t)st.bytes_skipped));
        json_object_object_add(j, "seconds", json_object_new_double((double)st.elapsed_ms / 1000));
        json_object_object_add(j, "files_per_second",
                               json_object_new_double(rate(st.files_moved, st.elapsed_ms)));
        json_object_object_add(j, "failures", json_object_get(u.failures));
        cli_print_json(j);
    } else {
        printf("%s%s: %llu files seen, %llu %s (%.1f MiB), %llu already stored, %llu taken by "
               "other workers, %llu failed, %.1f s, %.1f files/s, %.1f MiB/s\n",
               status != R2B_OK ? "interrupted" : "done", dry_run ? " (dry run)" : "",
               (unsigned long long)st.files_seen, (unsigned long long)st.files_moved,
               dry_run ? "would move" : "moved", (double)st.bytes_moved / 1048576.0,
               (unsigned long long)st.files_skipped, (unsigned long long)st.files_claimed_elsewhere,
               (unsigned long long)st.files_failed, (double)st.elapsed_ms / 1000,
               rate(st.files_moved, st.elapsed_ms),
               rate(st.bytes_moved, st.elapsed_ms) / 1048576.0);
    }
    if (status != R2B_OK || (st.files_failed && st.files_failed == st.files_failed_temporary))
        rc = R2B_EXIT_TEMPFAIL; /* run it again later: the manifest resumes it */
    else
        rc = st.files_failed ? R2B_EXIT_FAILURE : R2B_EXIT_OK;
cleanup:
    json_object_put(u.failures);
    r2b_config_release(&cfg);
    return rc;
}
