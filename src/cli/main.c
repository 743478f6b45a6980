/* r2bridge: the command table and top-level help. Only main() and cmd_*() print. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
};

static const struct command commands[] = {
    {"upload", cmd_upload, "validate, transcode, upload an attachment and record it"},
    {"sign", cmd_sign, "a privacy-checked URL for a key (or --stdin: a stream of them)"},
    {"visibility", cmd_visibility, "change a key's visibility (moves it between buckets)"},
    {"grant", cmd_grant, "add accounts to a private/direct key's audience"},
    {"revoke", cmd_revoke, "remove accounts from a key's audience"},
    {"delete", cmd_delete, "delete media: record first, then object (batched)"},
    {"manifest", cmd_manifest, "show a record, or list records"},
    {"migrate", cmd_migrate, "move an existing media tree into the buckets, resumably"},
    {"verify", cmd_verify, "reconcile the buckets with the manifest (alarms, orphans...)"},
    {"inspect", cmd_inspect, "sniff, validate and transcode a media file without uploading"},
    {"put", cmd_put, "upload a file to a key (multipart above S3_MULTIPART_THRESHOLD)"},
    {"get", cmd_get, "download a key to a file (written atomically) or '-'"},
    {"head", cmd_head, "show an object's size, ETag, type and cache headers"},
    {"rm", cmd_rm, "delete keys (absent keys are not an error)"},
    {"ls", cmd_ls, "list keys under a prefix"},
    {"presign", cmd_presign, "print a presigned URL for a key (1 s to 7 days)"},
    {"config", cmd_config, "print the effective configuration, secrets redacted"},
};

static void print_help(FILE *f)
{
    fprintf(f, "usage: r2bridge <command> [options] [args]\n"
               "       r2bridge --version\n\n"
               "Moves a Mastodon instance's media into Cloudflare R2 (or any S3-compatible\n"
               "store) and signs S3 requests itself.\n\ncommands:\n");
    /* the longest name, "visibility", plus two spaces: summaries up to 66 columns */
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-10s  %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nRun 'r2bridge <command> --help' for a command's options and exit codes.\n\n"
               "configuration (Mastodon's names, from the environment or --env-file\n"
               ".env.production; the environment wins):\n"
               "  S3_ENDPOINT S3_BUCKET S3_REGION(auto) S3_OVERRIDE_PATH_STYLE\n"
               "  S3_MULTIPART_THRESHOLD S3_OPEN_TIMEOUT S3_READ_TIMEOUT S3_RETRY_LIMIT\n"
               "  AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN\n"
               "  R2B_PART_SIZE R2B_PARALLEL S3_ALIAS_HOST R2B_PRIVATE_BUCKET R2B_MANIFEST\n"
               "  R2B_PRIVATE_TTL(900) R2B_DIRECT_TTL(300) R2B_TMPDIR R2B_PAYLOAD_SHA256(false)\n"
               "environment only:\n"
               "  R2B_AV_MODULE  path of the video module r2bridge-av.so (default: searched)\n"
               "  R2B_FROM_ENDPOINT R2B_FROM_REGION R2B_FROM_ACCESS_KEY_ID\n"
               "  R2B_FROM_SECRET_ACCESS_KEY R2B_FROM_SESSION_TOKEN R2B_FROM_PATH_STYLE\n"
               "                 the source of 'migrate --from-s3' (default: the\n"
               "                 destination's S3_*/AWS_* values; see 'migrate --help')\n\n"
               "exit codes:\n"
               "  0  done\n"
               "  1  failed (see the message)\n"
               "  2  usage: bad command line\n"
               "  3  configuration: missing setting, credentials refused by the server, or\n"
               "     a manifest that cannot be written (read-only file or directory)\n"
               "  4  media rejected (do not retry)\n"
               "  5  denied by the privacy check\n"
               "  6  not found (object, bucket, manifest record or local file)\n"
               "  75 temporary failure: network, timeout, 5xx, throttling, a full disk,\n"
               "     a record whose upload is still pending (retry later)\n");
}

int main(int argc, char **argv)
{
    const char *name;

    if (argc < 2) {
        print_help(stderr);
        return R2B_EXIT_USAGE;
    }
    /* past RLIMIT_FSIZE a write fails with EFBIG, reported and cleaned up like a
     * full disk, instead of SIGXFSZ killing the process with its temp files left */
    signal(SIGXFSZ, SIG_IGN);
    name = argv[1];
    if (strcmp(name, "-h") == 0 || strcmp(name, "--help") == 0 || strcmp(name, "help") == 0) {
        print_help(stdout);
        return R2B_EXIT_OK;
    }
    if (strcmp(name, "--version") == 0 || strcmp(name, "version") == 0) {
        printf("r2bridge %s\n", R2B_VERSION);
        return R2B_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(name, commands[i].name) == 0)
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "r2bridge: '%s' is not a command (see 'r2bridge --help')\n", name);
    return R2B_EXIT_USAGE;
}
