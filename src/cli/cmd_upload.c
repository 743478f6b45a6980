/* r2bridge upload FILE: the Sidekiq job's command. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char usage[] =
    "usage: r2bridge upload FILE --visibility V --account ID [--status ID]\n"
    "                       [--audience ID,ID...] [--key K | --id N [--class C]]\n"
    "                       [--claimed-type T] [--gifv] [--json]\n\n"
    "Uploads a Mastodon attachment safely: sniffs and validates it, transcodes\n"
    "images (upright, resized to 'original' and 'small', metadata stripped,\n"
    "blurhash), video to MP4 with a JPEG poster and audio to MP3 (no metadata),\n"
    "records each style 'pending' in the manifest, PUTs it to the bucket its\n"
    "visibility requires, and records it 'stored' once the server confirmed it.\n\n"
    "  --visibility V   public, unlisted, private or direct (private and direct go to\n"
    "                   R2B_PRIVATE_BUCKET; without one they are refused, exit 3)\n"
    "  --account ID     the owner's account id (always in the audience)\n"
    "  --status ID      the status the media belongs to\n"
    "  --audience IDS   accounts allowed to see private/direct media, comma-separated\n"
    "  --key K          the original's key; a small style goes to K with '/original/'\n"
    "                   replaced by '/small/' and its own extension (so K needs that\n"
    "                   segment for images and video). Keys: A-Z a-z 0-9 - _ . / ~\n"
    "                   + = , only; no leading, trailing or double '/', no '.' or\n"
    "                   '..' segment\n"
    "  --id N           the attachment id: keys follow Mastodon's Paperclip layout\n"
    "                   <class>/<id partition>/<style>/<16 hex>.<ext>\n"
    "  --class C        Paperclip class path (default media_attachments/files)\n"
    "  --claimed-type T the uploader's claimed type, reported if the content differs\n"
    "  --gifv           an animated GIF becomes a silent MP4, as Mastodon's gifv\n\n"
    "Styles are written to $R2B_TMPDIR (else $TMPDIR, /tmp) and removed. Video,\n"
    "audio and --gifv need r2bridge-av.so (FFmpeg) from the same build, next to\n"
    "the binary, in <prefix>/lib/r2bridge, or at $R2B_AV_MODULE.\n\n"
    "Exit 0 uploaded, 1 other failure, 2 bad arguments, 3 configuration (a\n"
    "missing video module too), 4 media rejected (do not retry), 6 no such FILE\n"
    "(or bucket; or the record was deleted while the upload ran), 75 temporary\n"
    "failure (retry later: network, server, a full temp directory).\n";

static struct json_object *style_json(const struct r2b_upload_style *s)
{
    struct json_object *j = json_object_new_object();

    json_object_object_add(j, "key", json_object_new_string(s->key));
    json_object_object_add(j, "bucket", json_object_new_string(s->bucket));
    json_object_object_add(j, "url", s->url[0] ? json_object_new_string(s->url) : NULL);
    json_object_object_add(j, "content_type", json_object_new_string(s->content_type));
    json_object_object_add(j, "size", json_object_new_int64((int64_t)s->size_bytes));
    if (s->width > 0) {
        json_object_object_add(j, "width", json_object_new_int(s->width));
        json_object_object_add(j, "height", json_object_new_int(s->height));
    }
    json_object_object_add(j, "sha256", json_object_new_string(s->sha256));
    json_object_object_add(j, "etag", json_object_new_string(s->etag));
    return j;
}

int cmd_upload(int argc, char **argv)
{
    struct cli_common common = {0};
    struct cli_args args;
    const char *vis_s = NULL, *account_s = NULL, *status_s = NULL, *audience_s = NULL;
    const char *key = NULL, *id_s = NULL, *klass = NULL, *claimed = NULL;
    int gifv = 0;
    const struct cli_opt opts[] = {
        {"visibility", &vis_s, NULL}, {"account", &account_s, NULL},
        {"status", &status_s, NULL},  {"audience", &audience_s, NULL},
        {"key", &key, NULL},          {"id", &id_s, NULL},
        {"class", &klass, NULL},      {"claimed-type", &claimed, NULL},
        {"gifv", NULL, &gifv},        {NULL, NULL, NULL},
    };
    struct r2b_upload_request req;
    struct r2b_upload_result res;
    struct r2b_config cfg;
    struct r2b_pipeline *p = NULL;
    struct r2b_error err;
    int64_t *aud = NULL;
    size_t n_aud = 0;
    enum r2b_status st;
    int rc;

    memset(&req, 0, sizeof(req));
    memset(&res, 0, sizeof(res));
    r2b_config_init(&cfg);
    if ((rc = cli_parse("upload", argc, argv, opts, &common, &args)) != 0)
        return rc;
    if (common.help) {
        cli_usage(usage);
        return R2B_EXIT_OK;
    }
    if (args.n_pos != 1)
        return cli_usage_error("upload", "expected one FILE");
    if (vis_s == NULL || r2b_visibility_parse(vis_s, &req.visibility) != 0)
        return cli_usage_error("upload",
                               "--visibility must be public, unlisted, private or direct");
    if (cli_parse_id("upload", "account", account_s, &req.account_id))
        return R2B_EXIT_USAGE;
    if (status_s && cli_parse_id("upload", "status", status_s, &req.status_id))
        return R2B_EXIT_USAGE;
    if ((key == NULL) == (id_s == NULL))
        return cli_usage_error("upload", "give either --key or --id");
    if (id_s && cli_parse_id("upload", "id", id_s, &req.id))
        return R2B_EXIT_USAGE;
    if (audience_s && cli_parse_ids("upload", "audience", audience_s, &aud, &n_aud))
        return R2B_EXIT_USAGE;
    req.path = args.pos[0];
    req.audience = aud;
    req.n_audience = n_aud;
    req.key = key;
    req.klass = klass;
    req.claimed_type = claimed;
    req.gifv = gifv;
    cli_media_process_setup();
    if ((rc = cli_pipeline(&common, &cfg, &p)) != 0)
        goto cleanup;
    r2b_error_clear(&err);
    st = r2b_pipeline_upload(p, &req, &res, &err);
    if (st == R2B_ERR_REJECTED) {
        if (common.json) {
            struct json_object *j = json_object_new_object();

            json_object_object_add(j, "ok", json_object_new_boolean(0));
            json_object_object_add(j, "reject",
                                   json_object_new_string(r2b_media_reject_name(res.media.reject)));
            json_object_object_add(j, "message", json_object_new_string(res.media.reject_reason));
            json_object_object_add(j, "exit_code", json_object_new_int(R2B_EXIT_REJECTED));
            cli_print_json(j);
        }
        fprintf(stderr, "r2bridge: rejected (%s): %s\n", r2b_media_reject_name(res.media.reject),
                res.media.reject_reason);
        rc = R2B_EXIT_REJECTED;
        goto cleanup;
    }
    if (st != R2B_OK) {
        rc = cli_fail(&common, &err);
        goto cleanup;
    }
    if (common.json) {
        struct json_object *j = json_object_new_object(), *styles = json_object_new_object(),
                           *meta = json_object_new_object();

        json_object_object_add(j, "ok", json_object_new_boolean(1));
        json_object_object_add(j, "type", json_object_new_string(res.media.type));
        if (res.media.gifv)
            json_object_object_add(j, "gifv", json_object_new_boolean(1));
        json_object_object_add(j, "visibility",
                               json_object_new_string(r2b_visibility_name(req.visibility)));
        json_object_object_add(j, "transcoded", json_object_new_boolean(res.media.transcoded));
        json_object_object_add(j, "type_mismatch",
                               json_object_new_boolean(res.media.type_mismatch));
        json_object_object_add(j, "blurhash",
                               res.media.blurhash[0] ? json_object_new_string(res.media.blurhash)
                                                     : NULL);
        for (int i = 0; i < res.n_styles; i++) {
            json_object_object_add(styles, res.styles[i].name, style_json(&res.styles[i]));
            if (res.styles[i].width > 0)
                json_object_object_add(meta, res.styles[i].name,
                                       cli_meta_json(res.styles[i].width, res.styles[i].height));
        }
        cli_av_meta(meta, &res.media);
        json_object_object_add(j, "styles", styles);
        json_object_object_add(j, "meta", meta);
        cli_print_json(j);
    } else {
        for (int i = 0; i < res.n_styles; i++)
            printf("%s: %s/%s (%s, %llu bytes)%s%s\n", res.styles[i].name, res.styles[i].bucket,
                   res.styles[i].key, res.styles[i].content_type,
                   (unsigned long long)res.styles[i].size_bytes, res.styles[i].url[0] ? " " : "",
                   res.styles[i].url);
        if (res.media.blurhash[0])
            printf("blurhash: %s\n", res.media.blurhash);
    }
    rc = R2B_EXIT_OK;
cleanup:
    r2b_upload_result_release(&res);
    r2b_pipeline_free(p);
    r2b_config_release(&cfg);
    free(aud);
    return rc;
}
