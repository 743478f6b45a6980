/* r2bridge inspect FILE: sniff + validate + transcode, no upload. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "r2bridge/media.h"

static const char usage[] =
    "usage: r2bridge inspect FILE [--out DIR] [--claimed-type T] [--gifv]\n"
    "                        [--timeout-ms N] [--json]\n\n"
    "Runs what an upload runs before anything leaves the server: sniffs the real\n"
    "type (from the content, never the name), validates it against Mastodon's\n"
    "rules and, for images, writes the 'original' and 'small' styles upright,\n"
    "resized, converted to sRGB and stripped of all metadata (EXIF, GPS, XMP,\n"
    "IPTC, comments), with a 4x4 blurhash. Video becomes an MP4 (H.264 + AAC:\n"
    "copied when it already is that, re-encoded otherwise) with no metadata and a\n"
    "JPEG poster as 'small'; audio becomes an MP3. Mastodon's limits apply: 99 MiB,\n"
    "3840x2160 pixels, 120 fps, 36,000 frames.\n\n"
    "  --out DIR          keep the styles as DIR/original.<ext> and DIR/small.<ext>\n"
    "                     (otherwise they are deleted after the report)\n"
    "  --claimed-type T   the type the uploader claimed; a mismatch is reported\n"
    "  --gifv             an animated GIF becomes a silent MP4, as Mastodon's gifv\n"
    "  --timeout-ms N     give up on a video or audio file after N ms, 1 to 86400000\n"
    "                     (default 600000)\n\n"
    "Work files go to $R2B_TMPDIR (environment or --env-file), else $TMPDIR,\n"
    "else /tmp, and are removed.\n"
    "Video, audio and --gifv need the module r2bridge-av.so (FFmpeg) from the same\n"
    "build: next to the binary, in <prefix>/lib/r2bridge, or $R2B_AV_MODULE.\n\n"
    "Exit 0 accepted, 1 other failure, 2 usage, 3 configuration (the video module\n"
    "cannot be loaded, the temp directory is missing or not writable, a bad\n"
    "setting or --env-file), 4 rejected (the reason on stderr), 6 no such FILE,\n"
    "75 the temp directory is full (retry).\n";

static const char *kind_name(enum r2b_media_kind k)
{
    switch (k) {
    case R2B_MEDIA_IMAGE:
        return "image";
    case R2B_MEDIA_VIDEO:
        return "video";
    case R2B_MEDIA_AUDIO:
        return "audio";
    default:
        return "none";
    }
}

/* Moves the style files into DIR; on success the paths point there. */
static int keep_styles(struct r2b_media_result *r, const char *dir, struct r2b_error *err)
{
    char tmpdir[4096] = "";

    if (r->n_styles > 0) {
        char *slash;

        r2b_strlcpy(tmpdir, r->styles[0].path, sizeof(tmpdir));
        slash = strrchr(tmpdir, '/');
        if (slash)
            *slash = '\0';
    }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        r2b_error_set_errno(err, R2B_ERR_IO, errno, "cannot create '%s'", dir);
        return -1;
    }
    for (int i = 0; i < r->n_styles; i++) {
        struct r2b_media_style *s = &r->styles[i];
        size_t n = strlen(dir) + strlen(s->name) + strlen(s->ext) + 3;
        char *dst = malloc(n);

        if (dst == NULL) {
            r2b_error_set(err, R2B_ERR_NOMEM, "out of memory");
            return -1;
        }
        snprintf(dst, n, "%s/%s.%s", dir, s->name, s->ext);
        if (rename(s->path, dst) != 0) {
            r2b_error_set_errno(err, R2B_ERR_IO, errno, "cannot move a style to '%s'", dst);
            free(dst);
            return -1;
        }
        free(s->path);
        s->path = dst;
    }
    if (tmpdir[0])
        rmdir(tmpdir); /* now empty */
    return 0;
}

static struct json_object *style_json(const struct r2b_media_style *s, int with_file)
{
    struct json_object *j = json_object_new_object();

    if (with_file)
        json_object_object_add(j, "file", json_object_new_string(s->path));
    json_object_object_add(j, "content_type", json_object_new_string(s->content_type));
    json_object_object_add(j, "size", json_object_new_int64((int64_t)s->size_bytes));
    if (s->width > 0) {
        json_object_object_add(j, "width", json_object_new_int(s->width));
        json_object_object_add(j, "height", json_object_new_int(s->height));
    }
    json_object_object_add(j, "sha256", json_object_new_string(s->sha256));
    return j;
}

int cmd_inspect(int argc, char **argv)
{
    struct cli_common common = {0};
    struct cli_args args;
    const char *out_dir = NULL, *claimed = NULL, *timeout_s = NULL;
    int gifv = 0;
    uint64_t timeout_ms = 0;
    const struct cli_opt opts[] = {
        {"out", &out_dir, NULL}, {"claimed-type", &claimed, NULL},
        {"gifv", NULL, &gifv},   {"timeout-ms", &timeout_s, NULL},
        {NULL, NULL, NULL},
    };
    struct r2b_config cfg;
    struct r2b_media_options mo;
    struct r2b_media_result r;
    struct r2b_error err;
    enum r2b_status st;
    int rc;

    r2b_config_init(&cfg);
    memset(&r, 0, sizeof(r));
    if ((rc = cli_parse("inspect", argc, argv, opts, &common, &args)) != 0)
        return rc;
    if (common.help) {
        cli_usage(usage);
        return R2B_EXIT_OK;
    }
    if (args.n_pos != 1)
        return cli_usage_error("inspect", "expected one FILE");
    if (timeout_s && (r2b_parse_u64(timeout_s, 86400000, &timeout_ms) != 0 || timeout_ms == 0))
        return cli_usage_error("inspect", "--timeout-ms needs 1..86400000");
    r2b_error_clear(&err);
    cli_media_process_setup();
    if (r2b_media_global_init(&err) != R2B_OK)
        return cli_fail(&common, &err);
    /* R2B_TMPDIR from the environment or --env-file, as upload and migrate read it;
     * nothing else of the configuration is needed (no S3 request is made) */
    if ((rc = cli_load_config(&common, &cfg)) != 0)
        goto cleanup;
    r2b_media_options_init(&mo);
    if (cfg.tmp_dir && *cfg.tmp_dir)
        mo.tmp_dir = cfg.tmp_dir;
    mo.claimed_type = claimed;
    mo.gifv = gifv;
    if (timeout_ms)
        mo.video_timeout_ms = timeout_ms;
    st = r2b_media_process(args.pos[0], &mo, &r, &err);
    if (st == R2B_ERR_REJECTED) {
        if (common.json) {
            struct json_object *j = json_object_new_object();

            json_object_object_add(j, "ok", json_object_new_boolean(0));
            json_object_object_add(j, "reject",
                                   json_object_new_string(r2b_media_reject_name(r.reject)));
            json_object_object_add(j, "message", json_object_new_string(r.reject_reason));
            if (r.type[0])
                json_object_object_add(j, "type", json_object_new_string(r.type));
            cli_print_json(j);
        }
        fprintf(stderr, "r2bridge: rejected (%s): %s\n", r2b_media_reject_name(r.reject),
                r.reject_reason);
        rc = R2B_EXIT_REJECTED;
        goto cleanup;
    }
    if (st != R2B_OK) {
        rc = cli_fail(&common, &err);
        goto cleanup;
    }
    if (out_dir && keep_styles(&r, out_dir, &err) != 0) {
        rc = cli_fail(&common, &err);
        goto cleanup;
    }
    if (r.type_mismatch)
        fprintf(stderr, "r2bridge: warning: claimed type '%s' but the content is %s\n",
                r.claimed_type, r.type);
    if (common.json) {
        struct json_object *j = json_object_new_object(), *styles = json_object_new_object(),
                           *meta = json_object_new_object();

        json_object_object_add(j, "ok", json_object_new_boolean(1));
        json_object_object_add(j, "type", json_object_new_string(r.type));
        json_object_object_add(j, "kind",
                               json_object_new_string(r.gifv ? "gifv" : kind_name(r.kind)));
        json_object_object_add(j, "transcoded", json_object_new_boolean(r.transcoded));
        json_object_object_add(j, "animated", json_object_new_boolean(r.animated));
        json_object_object_add(j, "type_mismatch", json_object_new_boolean(r.type_mismatch));
        if (r.kind == R2B_MEDIA_IMAGE)
            json_object_object_add(j, "orientation", json_object_new_int(r.orientation));
        json_object_object_add(j, "blurhash",
                               r.blurhash[0] ? json_object_new_string(r.blurhash) : NULL);
        for (int i = 0; i < r.n_styles; i++) {
            json_object_object_add(styles, r.styles[i].name,
                                   style_json(&r.styles[i], out_dir != NULL));
            if (r.styles[i].width > 0)
                json_object_object_add(meta, r.styles[i].name,
                                       cli_meta_json(r.styles[i].width, r.styles[i].height));
        }
        cli_av_meta(meta, &r);
        if (r.kind == R2B_MEDIA_VIDEO || r.kind == R2B_MEDIA_AUDIO)
            json_object_object_add(j, "remuxed", json_object_new_boolean(!r.transcoded));
        if (r.kind == R2B_MEDIA_VIDEO)
            json_object_object_add(j, "rotation", json_object_new_int(r.rotation));
        if (r.source_codecs[0])
            json_object_object_add(j, "source_codecs", json_object_new_string(r.source_codecs));
        json_object_object_add(j, "styles", styles);
        json_object_object_add(j, "meta", meta);
        cli_print_json(j);
    } else {
        printf("type: %s (%s)%s\n", r.type, kind_name(r.kind),
               r.transcoded                ? ""
               : r.kind == R2B_MEDIA_IMAGE ? ", passed through unchanged"
                                           : ", remuxed (streams copied, metadata dropped)");
        for (int i = 0; i < r.n_styles; i++)
            printf("%s: %s %dx%d %llu bytes sha256 %s%s%s\n", r.styles[i].name,
                   r.styles[i].content_type, r.styles[i].width, r.styles[i].height,
                   (unsigned long long)r.styles[i].size_bytes, r.styles[i].sha256,
                   out_dir ? " -> " : "", out_dir ? r.styles[i].path : "");
        if (r.blurhash[0])
            printf("blurhash: %s\n", r.blurhash);
        if (r.kind == R2B_MEDIA_VIDEO || r.kind == R2B_MEDIA_AUDIO)
            printf("%s%s%s%s%.2f s, %lld bit/s%s%s, audio: %s %d ch %d Hz (source: %s)\n",
                   r.video_codec, r.video_codec[0] ? " " : "", r.frame_rate,
                   r.video_codec[0] ? " " : "", r.duration_s, (long long)r.bitrate,
                   r.rotation ? ", rotated " : "",
                   r.rotation ? (r.rotation == 90    ? "90"
                                 : r.rotation == 180 ? "180"
                                                     : "270")
                              : "",
                   r.audio_codec[0] ? r.audio_codec : "none", r.audio_channels, r.audio_sample_rate,
                   r.source_codecs);
    }
    rc = R2B_EXIT_OK;
cleanup:
    if (out_dir && rc == R2B_EXIT_OK) { /* kept: forget the paths so release() leaves them */
        for (int i = 0; i < r.n_styles; i++) {
            free(r.styles[i].path);
            r.styles[i].path = NULL;
        }
    }
    r2b_media_result_release(&r);
    r2b_config_release(&cfg);
    return rc;
}
