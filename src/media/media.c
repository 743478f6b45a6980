/*
 * Media: sniff (libmagic), validate (Mastodon 4.x rules), transcode
 * (libvips). Every output of this file may become public, so each step
 * refuses rather than guesses.
 *
 * Transcoding decodes the source once: the `original` style is produced by
 * vips_thumbnail() (shrink-on-load where the format allows it, EXIF
 * orientation applied, sRGB) streamed into the encoder; `small` is made
 * from that written original with shrink-on-load, and the blurhash from
 * `small`. Every style is saved from a header-only copy with all metadata
 * removed (bare_copy), never trusting a saver's `strip`.
 */
#define _XOPEN_SOURCE 700 /* realpath, S_ISVTX (the video module's trust check) */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dlfcn.h>
#include <sys/stat.h>
#include <unistd.h>

#include <magic.h>
#include <gmodule.h>
#include <vips/vips.h>

#include "media_int.h"
#include "r2bridge/sigv4.h"

#define BLURHASH_BOX 100 /* blurhash is computed on a <= 100x100 thumbnail, as Mastodon does */
#define SNIFF_BYTES 65536

static pthread_mutex_t magic_lock = PTHREAD_MUTEX_INITIALIZER;
static magic_t magic_cookie;
static int media_ready;

static const char *const reject_names[] = {
    [R2B_REJECT_NONE] = "none",
    [R2B_REJECT_EMPTY] = "empty",
    [R2B_REJECT_TYPE] = "unsupported_type",
    [R2B_REJECT_TOO_LARGE] = "too_large",
    [R2B_REJECT_DIMENSIONS] = "too_many_pixels",
    [R2B_REJECT_CORRUPT] = "corrupt",
    [R2B_REJECT_FRAME_RATE] = "frame_rate_too_high",
    [R2B_REJECT_TOO_LONG] = "too_many_frames",
    [R2B_REJECT_TIMEOUT] = "timeout",
};

const char *r2b_media_reject_name(enum r2b_media_reject r)
{
    if ((int)r < 0 || (size_t)r >= sizeof(reject_names) / sizeof(reject_names[0]))
        return "unknown";
    return reject_names[r];
}

/* libmagic's answers (and their aliases) -> Mastodon's accepted types. */
static const struct {
    const char *sniffed;
    const char *canonical;
    enum r2b_media_kind kind;
} type_table[] = {
    {"image/jpeg", "image/jpeg", R2B_MEDIA_IMAGE},
    {"image/png", "image/png", R2B_MEDIA_IMAGE},
    {"image/gif", "image/gif", R2B_MEDIA_IMAGE},
    {"image/webp", "image/webp", R2B_MEDIA_IMAGE},
    {"image/heic", "image/heic", R2B_MEDIA_IMAGE},
    {"image/heic-sequence", "image/heic", R2B_MEDIA_IMAGE},
    {"image/heif", "image/heif", R2B_MEDIA_IMAGE},
    {"image/heif-sequence", "image/heif", R2B_MEDIA_IMAGE},
    {"image/avif", "image/avif", R2B_MEDIA_IMAGE},
    {"video/mp4", "video/mp4", R2B_MEDIA_VIDEO},
    {"video/webm", "video/webm", R2B_MEDIA_VIDEO},
    {"video/quicktime", "video/quicktime", R2B_MEDIA_VIDEO},
    {"video/ogg", "video/ogg", R2B_MEDIA_VIDEO},
    {"audio/mpeg", "audio/mpeg", R2B_MEDIA_AUDIO},
    {"audio/ogg", "audio/ogg", R2B_MEDIA_AUDIO},
    {"application/ogg", "audio/ogg", R2B_MEDIA_AUDIO},
    {"audio/flac", "audio/flac", R2B_MEDIA_AUDIO},
    {"audio/x-flac", "audio/flac", R2B_MEDIA_AUDIO},
    {"audio/wav", "audio/wav", R2B_MEDIA_AUDIO},
    {"audio/x-wav", "audio/wav", R2B_MEDIA_AUDIO},
    {"audio/vnd.wave", "audio/wav", R2B_MEDIA_AUDIO},
    {"audio/aac", "audio/aac", R2B_MEDIA_AUDIO},
    {"audio/x-aac", "audio/aac", R2B_MEDIA_AUDIO},
    {"audio/x-hx-aac-adts", "audio/aac", R2B_MEDIA_AUDIO},
    {"audio/mp4", "audio/mp4", R2B_MEDIA_AUDIO},
    {"audio/x-m4a", "audio/mp4", R2B_MEDIA_AUDIO},
    {"audio/webm", "audio/webm", R2B_MEDIA_AUDIO},
    {"audio/3gpp", "audio/3gpp", R2B_MEDIA_AUDIO},
};

const char *r2b_media_canonical_type(const char *sniffed, enum r2b_media_kind *kind)
{
    for (size_t i = 0; sniffed && i < sizeof(type_table) / sizeof(type_table[0]); i++) {
        if (strcmp(sniffed, type_table[i].sniffed) == 0) {
            if (kind)
                *kind = type_table[i].kind;
            return type_table[i].canonical;
        }
    }
    if (kind)
        *kind = R2B_MEDIA_NONE;
    return NULL;
}

void r2b_media_options_init(struct r2b_media_options *o)
{
    memset(o, 0, sizeof(*o));
    o->image_max_bytes = R2B_MEDIA_IMAGE_MAX_BYTES;
    o->video_max_bytes = R2B_MEDIA_VIDEO_MAX_BYTES;
    o->image_max_pixels = R2B_MEDIA_IMAGE_MAX_PIXELS;
    o->gif_max_pixels = R2B_MEDIA_GIF_MAX_PIXELS;
    o->original_max_pixels = R2B_MEDIA_ORIGINAL_MAX_PIXELS;
    o->small_max_pixels = R2B_MEDIA_SMALL_MAX_PIXELS;
    o->jpeg_quality = 90;
    o->memory_max_bytes = 1024ULL * 1024 * 1024;
    o->video_max_pixels = R2B_MEDIA_VIDEO_MAX_PIXELS;
    o->video_max_fps = R2B_MEDIA_VIDEO_MAX_FPS;
    o->video_max_frames = R2B_MEDIA_VIDEO_MAX_FRAMES;
    o->video_timeout_ms = R2B_MEDIA_VIDEO_TIMEOUT_MS;
}

/* libvips reports through GLib's log; route it to ours (debug only): its
 * messages about a hostile file are not the operator's business. */
static void glib_log(const gchar *domain, GLogLevelFlags level, const gchar *msg, gpointer ud)
{
    (void)level;
    (void)ud;
    r2b_log(R2B_LOG_DEBUG, "%s: %s", domain ? domain : "glib", msg);
}

/*
 * Starts libvips with one loadable module, HEIF, instead of all of them.
 * vips_init() loads every module in $VIPSHOME/lib/vips-modules-X.Y
 * (ImageMagick, Poppler, OpenSlide, JPEG XL on Debian): loaders r2bridge
 * blocks anyway, that cost ~8 MiB of resident memory per process and put
 * large parsers in an address space that handles hostile files. VIPSHOME is
 * pointed at a directory that does not exist for the duration of
 * vips_init() (and restored after), then the HEIF module is opened as
 * vips_init() would have opened it. Called before any thread exists.
 */
static enum r2b_status start_vips(struct r2b_error *err)
{
    const char *old = getenv("VIPSHOME");
    char *saved = old ? strdup(old) : NULL;
    char module[512];
    GModule *heif;
    int rc;

    if (old && saved == NULL)
        return r2b_error_set(err, R2B_ERR_NOMEM, "out of memory");
    setenv("VIPSHOME", "/nonexistent/r2bridge-no-vips-modules", 1);
    rc = VIPS_INIT("r2bridge");
    if (saved) {
        setenv("VIPSHOME", saved, 1);
        free(saved);
    } else {
        unsetenv("VIPSHOME");
    }
    if (rc != 0) {
        r2b_error_set(err, R2B_ERR_UNSUPPORTED, "cannot start libvips: %s", vips_error_buffer());
        vips_error_clear();
        return R2B_ERR_UNSUPPORTED;
    }
    snprintf(module, sizeof(module), "%s/vips-modules-%d.%d/vips-heif.%s", R2B_VIPS_LIBDIR,
             VIPS_MAJOR_VERSION, VIPS_MINOR_VERSION, G_MODULE_SUFFIX);
    heif = g_module_open(module, G_MODULE_BIND_LAZY);
    if (heif)
        g_module_make_resident(heif); /* it registers GTypes: never unloaded */
    else /* a libvips built without it: HEIC/HEIF/AVIF uploads will be refused */
        r2b_log(R2B_LOG_DEBUG, "media: no libvips HEIF module: %s", g_module_error());
    return R2B_OK;
}

enum r2b_status r2b_media_global_init(struct r2b_error *err)
{
    static const char *const allowed_loaders[] = {
        "VipsForeignLoadJpeg", "VipsForeignLoadPng", "VipsForeignLoadNsgif",
        "VipsForeignLoadWebp", "VipsForeignLoadHeif",
    };
    enum r2b_status st = R2B_OK;

    pthread_mutex_lock(&magic_lock);
    if (media_ready)
        goto done;
    if (start_vips(err) != R2B_OK) {
        st = err ? err->code : R2B_ERR_UNSUPPORTED;
        goto done;
    }
    /* Untrusted input: no "unfuzzed" loaders (libvips' own list), and of the
     * rest only the five formats Mastodon accepts. */
    g_log_set_handler("VIPS", (GLogLevelFlags)(G_LOG_LEVEL_WARNING | G_LOG_LEVEL_MESSAGE |
                                               G_LOG_LEVEL_INFO | G_LOG_LEVEL_DEBUG),
                      glib_log, NULL);
    vips_block_untrusted_set(TRUE);
    vips_operation_block_set("VipsForeignLoad", TRUE);
    for (size_t i = 0; i < sizeof(allowed_loaders) / sizeof(allowed_loaders[0]); i++)
        vips_operation_block_set(allowed_loaders[i], FALSE);
    /* No operation cache: each upload is seen once, and a cache only holds memory. */
    vips_cache_set_max(0);
    vips_cache_set_max_mem(0);
    vips_cache_set_max_files(0);
    magic_cookie = magic_open(MAGIC_MIME_TYPE | MAGIC_ERROR | MAGIC_NO_CHECK_COMPRESS);
    if (magic_cookie == NULL || magic_load(magic_cookie, NULL) != 0) {
        st = r2b_error_set(err, R2B_ERR_UNSUPPORTED, "cannot load libmagic's database: %s",
                           magic_cookie ? magic_error(magic_cookie) : "magic_open failed");
        goto done;
    }
    media_ready = 1;
done:
    pthread_mutex_unlock(&magic_lock);
    return st;
}

/* libmagic on the first bytes (a cookie is not thread-safe: one lock). */
static enum r2b_status sniff(int fd, char *type, size_t type_size, struct r2b_error *err)
{
    unsigned char *buf = malloc(SNIFF_BYTES);
    ssize_t n;
    const char *t;

    if (buf == NULL)
        return r2b_error_set(err, R2B_ERR_NOMEM, "out of memory");
    n = pread(fd, buf, SNIFF_BYTES, 0);
    if (n < 0) {
        free(buf);
        return r2b_error_set_errno(err, R2B_ERR_IO, errno, "cannot read");
    }
    pthread_mutex_lock(&magic_lock);
    t = magic_buffer(magic_cookie, buf, (size_t)n);
    r2b_strlcpy(type, t ? t : "application/octet-stream", type_size);
    pthread_mutex_unlock(&magic_lock);
    free(buf);
    return R2B_OK;
}

static enum r2b_status reject(struct r2b_media_result *r, enum r2b_media_reject why,
                              struct r2b_error *err, const char *fmt, ...) R2B_PRINTF(4, 5);

static enum r2b_status reject(struct r2b_media_result *r, enum r2b_media_reject why,
                              struct r2b_error *err, const char *fmt, ...)
{
    va_list ap;

    r->reject = why;
    va_start(ap, fmt);
    vsnprintf(r->reject_reason, sizeof(r->reject_reason), fmt, ap);
    va_end(ap);
    return r2b_error_set(err, R2B_ERR_REJECTED, "%s", r->reject_reason);
}

/*
 * The square box vips_thumbnail() fits the image into so that the output has
 * at most `limit` pixels: s = sqrt(W*H/limit), long side floor(long/s), and
 * one pixel less while vips' rounding of the short side would exceed it.
 * A square box keeps the aspect ratio whatever the orientation.
 */
int r2b_media__fit_box(int w, int h, uint64_t limit)
{
    int lng = w > h ? w : h, shrt = w > h ? h : w, box;
    double s;

    if ((uint64_t)w * (uint64_t)h <= limit)
        return lng;
    s = sqrt((double)w * (double)h / (double)limit);
    box = (int)floor((double)lng / s);
    while (box > 1) {
        double sh = rint((double)shrt * (double)box / (double)lng);

        if (sh < 1)
            sh = 1;
        if ((uint64_t)box * (uint64_t)sh <= limit)
            break;
        box--;
    }
    return box < 1 ? 1 : box;
}

/*
 * Whether `im` has more than `limit` pixels. r2b_media__fit_box() predicts
 * vips_thumbnail()'s rounding, but at an extreme aspect ratio libvips'
 * floating point can land one pixel over on either side (24 x 46864 to a
 * 1 MP limit gave 23 x 43935, box 43934): the callers then ask again with a
 * one pixel smaller box. Only headers are read for that.
 */
static int over_limit(VipsImage *im, uint64_t limit)
{
    return (uint64_t)vips_image_get_width(im) * (uint64_t)vips_image_get_height(im) > limit;
}

static void vips_fail(struct r2b_error *err, enum r2b_status code, const char *what)
{
    char msg[300];
    const char *vb = vips_error_buffer();
    size_t n;

    r2b_strlcpy(msg, vb ? vb : "", sizeof(msg));
    n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        msg[--n] = '\0';
    for (char *p = msg; *p; p++)
        if (*p == '\n')
            *p = ';';
    r2b_error_set(err, code, "%s: %s", what, msg[0] ? msg : "libvips failed");
    vips_error_clear();
}

static enum r2b_status digest_file(const char *path, struct r2b_media_style *s,
                                   struct r2b_error *err)
{
    unsigned char buf[65536];
    struct r2b_digest d;
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return r2b_error_set_errno(err, R2B_ERR_IO, errno, "cannot read '%s'", path);
    r2b_digest_init_sha256(&d);
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        r2b_digest_update(&d, buf, (size_t)n);
    close(fd);
    if (n < 0)
        return r2b_error_set_errno(err, R2B_ERR_IO, errno, "cannot read '%s'", path);
    s->size_bytes = d.bytes;
    r2b_digest_final(&d, s->sha256, NULL, NULL);
    return R2B_OK;
}

/* The GIF bytes (bounded by the image byte limit) through the block filter. */
static enum r2b_status write_stripped_gif(int in_fd, const char *dst, struct r2b_error *err)
{
    struct stat sb;
    struct r2b_buf out;
    unsigned char *in = NULL;
    size_t dropped = 0, got = 0;
    enum r2b_status st = R2B_OK;
    int fd = -1;

    r2b_buf_init(&out, R2B_MEDIA_VIDEO_MAX_BYTES);
    if (fstat(in_fd, &sb) != 0 || (in = malloc((size_t)sb.st_size + 1)) == NULL) {
        st = r2b_error_set(err, R2B_ERR_NOMEM, "out of memory reading the gif");
        goto cleanup;
    }
    while (got < (size_t)sb.st_size) {
        ssize_t n = pread(in_fd, in + got, (size_t)sb.st_size - got, (off_t)got);

        if (n <= 0) {
            st = n < 0 ? r2b_error_set_errno(err, R2B_ERR_IO, errno, "cannot read the upload")
                       : r2b_error_set(err, R2B_ERR_IO, "cannot read the upload: file shrank");
            goto cleanup;
        }
        got += (size_t)n;
    }
    if (r2b_media__gif_strip(in, got, &out, &dropped) != 0) {
        st = R2B_ERR_REJECTED;
        goto cleanup;
    }
    if (dropped)
        r2b_log(R2B_LOG_INFO, "gif: dropped %zu bytes of metadata", dropped);
    fd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || r2b_write_all(fd, out.ptr, out.len) != 0) {
        st = r2b_error_set_errno(err, R2B_ERR_IO, errno, "cannot write '%s'", dst);
        if (fd >= 0)
            close(fd);
    } else if (close(fd) != 0) { /* closed either way: never twice */
        st = r2b_error_set_errno(err, R2B_ERR_IO, errno, "cannot write '%s'", dst);
    }
cleanup:
    free(in);
    r2b_buf_release(&out);
    return st;
}

static enum r2b_status add_style(struct r2b_media_result *r, const char *dir, const char *name,
                                 const char *ctype, const char *ext, struct r2b_error *err)
{
    struct r2b_media_style *s = &r->styles[r->n_styles];
    size_t n = strlen(dir) + strlen(name) + strlen(ext) + 3;

    memset(s, 0, sizeof(*s));
    s->path = malloc(n);
    if (s->path == NULL)
        return r2b_error_set(err, R2B_ERR_NOMEM, "out of memory");
    snprintf(s->path, n, "%s/%s.%s", dir, name, ext);
    r2b_strlcpy(s->name, name, sizeof(s->name));
    r2b_strlcpy(s->content_type, ctype, sizeof(s->content_type));
    r2b_strlcpy(s->ext, ext, sizeof(s->ext));
    r->n_styles++;
    return R2B_OK;
}

/*
 * A target that writes to a file descriptor and remembers why a write
 * failed: when a save fails, this tells a full or unwritable temp directory
 * (an I/O error) from a source that cannot be decoded (the save pulls the
 * pixels through the whole pipeline, so a truncated upload fails here).
 */
struct file_sink {
    int fd;
    int write_errno; /* 0 until a write fails */
};

static gint64 sink_write(VipsTargetCustom *t, const void *data, gint64 len, void *ud)
{
    struct file_sink *s = ud;
    ssize_t n;

    (void)t;
    do {
        n = write(s->fd, data, (size_t)len);
    } while (n < 0 && errno == EINTR);
    if (n < 0 || (n == 0 && len > 0)) {
        s->write_errno = n < 0 ? errno : EIO;
        return -1;
    }
    return (gint64)n;
}

static int sink_end(VipsTargetCustom *t, void *ud)
{
    (void)t;
    (void)ud;
    return 0;
}

enum save_fail { SAVE_OK = 0, SAVE_DECODE, SAVE_WRITE };

/*
 * Encodes `img` into `path` (created, must not exist) as `ext`, streaming:
 * the pixels flow from the decoder through the resize into the encoder a
 * few lines at a time. Returns SAVE_OK, SAVE_WRITE (err: the errno) or
 * SAVE_DECODE (err: libvips' message).
 */
static enum save_fail save_file(VipsImage *img, const char *path, const char *ext, int quality,
                                struct r2b_error *err)
{
    struct file_sink sink = {.fd = -1, .write_errno = 0};
    VipsTargetCustom *target = NULL;
    void *buf = NULL;
    size_t len = 0;
    enum save_fail rc = SAVE_OK;
    int vrc;

    sink.fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (sink.fd < 0) {
        r2b_error_set_errno(err, R2B_ERR_IO, errno, "cannot create '%s'", path);
        return SAVE_WRITE;
    }
    if (strcmp(ext, "webp") == 0) {
        /* WebP through the chunk filter (see webp.c): libvips 8.14's
         * webpsave may write metadata chunks whatever it is asked. */
        struct r2b_buf out;
        size_t dropped = 0;

        r2b_buf_init(&out, R2B_MEDIA_VIDEO_MAX_BYTES);
        if (vips_webpsave_buffer(img, &buf, &len, "Q", quality, "strip", TRUE, NULL) != 0) {
            vips_fail(err, R2B_ERR_REJECTED, "cannot encode webp");
            rc = SAVE_DECODE;
        } else if (r2b_media__webp_strip(buf, len, &out, &dropped) != 0) {
            r2b_error_set(err, R2B_ERR_IO, "libvips wrote a webp that cannot be filtered");
            rc = SAVE_WRITE;
        } else if (r2b_write_all(sink.fd, out.ptr, out.len) != 0) {
            /* all of it: a short write is followed by the one that says why (ENOSPC) */
            r2b_error_set_errno(err, R2B_ERR_IO, errno, "cannot write '%s'", path);
            rc = SAVE_WRITE;
        }
        g_free(buf);
        r2b_buf_release(&out);
    } else {
        target = vips_target_custom_new();
        g_signal_connect(target, "write", G_CALLBACK(sink_write), &sink);
        g_signal_connect(target, "end", G_CALLBACK(sink_end), &sink);
        if (strcmp(ext, "jpg") == 0)
            vrc = vips_jpegsave_target(img, VIPS_TARGET(target), "Q", quality, "strip", TRUE,
                                       NULL);
        else if (strcmp(ext, "png") == 0)
            vrc = vips_pngsave_target(img, VIPS_TARGET(target), "strip", TRUE, NULL);
        else
            vrc = vips_gifsave_target(img, VIPS_TARGET(target), NULL);
        g_object_unref(target);
        if (vrc != 0 && sink.write_errno) {
            /* a full temp dir is retryable (exit 75), never the uploader's fault */
            r2b_error_set_errno(err, R2B_ERR_IO, sink.write_errno, "cannot write '%s'", path);
            vips_error_clear();
            rc = SAVE_WRITE;
        } else if (vrc != 0) {
            vips_fail(err, R2B_ERR_REJECTED, "cannot decode");
            rc = SAVE_DECODE;
        }
    }
    if (close(sink.fd) != 0 && rc == SAVE_OK) {
        r2b_error_set_errno(err, R2B_ERR_IO, errno, "cannot write '%s'", path);
        rc = SAVE_WRITE;
    }
    return rc;
}

/*
 * A copy of `in` that carries no metadata at all: every field a loader
 * attached (EXIF, GPS, XMP, IPTC, ICC, comments, PNG text, orientation...)
 * is removed from the copy's header, so no saver can write it whatever its
 * `strip` does. The pixels still stream: nothing is copied but the header.
 */
static VipsImage *bare_copy(VipsImage *in, struct r2b_error *err)
{
    VipsImage *out = NULL;
    gchar **fields;

    if (vips_copy(in, &out, NULL) != 0) {
        vips_fail(err, R2B_ERR_NOMEM, "cannot copy image header");
        return NULL;
    }
    fields = vips_image_get_fields(out);
    for (int i = 0; fields && fields[i]; i++)
        if (strcmp(fields[i], VIPS_META_SEQUENTIAL) != 0)
            (void)vips_image_remove(out, fields[i]); /* header fields (width...) stay */
    g_strfreev(fields);
    return out;
}

/*
 * Saves `img` (already sRGB) as the style's format from a metadata-free
 * copy. R2B_ERR_REJECTED means the pixels could not be decoded.
 */
static enum r2b_status save_style(VipsImage *img, struct r2b_media_style *s, int quality,
                                  struct r2b_error *err)
{
    VipsImage *flat = NULL, *bare;
    enum save_fail rc;

    if (strcmp(s->ext, "jpg") == 0 && vips_image_hasalpha(img)) {
        double white[3] = {255, 255, 255}; /* JPEG has no alpha: flatten onto white */
        VipsArrayDouble *bg = vips_array_double_new(white, 3);
        int frc = vips_flatten(img, &flat, "background", bg, NULL);

        vips_area_unref(VIPS_AREA(bg));
        if (frc != 0) {
            vips_fail(err, R2B_ERR_REJECTED, "cannot flatten alpha");
            return R2B_ERR_REJECTED;
        }
        img = flat;
    }
    bare = bare_copy(img, err);
    if (flat)
        g_object_unref(flat);
    if (bare == NULL)
        return R2B_ERR_NOMEM;
    s->width = vips_image_get_width(bare);
    s->height = vips_image_get_height(bare);
    rc = save_file(bare, s->path, s->ext, quality, err);
    g_object_unref(bare);
    if (rc == SAVE_DECODE)
        return R2B_ERR_REJECTED;
    if (rc == SAVE_WRITE)
        return err ? err->code : R2B_ERR_IO;
    if (s->width <= 0)
        return r2b_error_set(err, R2B_ERR_IO, "empty style image");
    return digest_file(s->path, s, err);
}

/* 8-bit sRGB pixels of a <= 100x100 thumbnail of `small`, then the 4x4 blurhash. */
static void compute_blurhash(VipsImage *small, char *out, size_t out_size)
{
    VipsImage *t = NULL, *flat = NULL, *u8 = NULL;
    void *pixels = NULL;
    size_t len = 0;

    out[0] = '\0';
    if (vips_thumbnail_image(small, &t, BLURHASH_BOX, "height", BLURHASH_BOX, "size",
                             VIPS_SIZE_DOWN, NULL) != 0)
        goto done;
    if (vips_image_hasalpha(t)) {
        if (vips_flatten(t, &flat, NULL) != 0)
            goto done;
    } else {
        flat = t;
        g_object_ref(flat);
    }
    if (vips_cast_uchar(flat, &u8, NULL) != 0)
        goto done;
    pixels = vips_image_write_to_memory(u8, &len);
    if (pixels && (vips_image_get_bands(u8) == 3 || vips_image_get_bands(u8) == 1)) {
        int w = vips_image_get_width(u8), h = vips_image_get_height(u8);

        if (vips_image_get_bands(u8) == 3) {
            r2b_blurhash_encode(pixels, w, h, 3, (size_t)w * 3, 4, 4, out, out_size);
        } else { /* greyscale: expand to RGB for the reference algorithm */
            unsigned char *rgb = malloc((size_t)w * (size_t)h * 3);

            if (rgb) {
                for (size_t i = 0; i < (size_t)w * (size_t)h; i++)
                    rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = ((unsigned char *)pixels)[i];
                r2b_blurhash_encode(rgb, w, h, 3, (size_t)w * 3, 4, 4, out, out_size);
                free(rgb);
            }
        }
    }
done:
    g_free(pixels);
    if (u8)
        g_object_unref(u8);
    if (flat)
        g_object_unref(flat);
    if (t)
        g_object_unref(t);
    vips_error_clear();
}

/* Output format of each style, per Mastodon: HEIC/HEIF/AVIF become JPEG. */
static void style_formats(const char *type, int animated, const char **orig_ct,
                          const char **orig_ext, const char **small_ct, const char **small_ext)
{
    if (strcmp(type, "image/png") == 0) {
        *orig_ct = *small_ct = "image/png";
        *orig_ext = *small_ext = "png";
    } else if (strcmp(type, "image/webp") == 0) {
        *orig_ct = *small_ct = "image/webp";
        *orig_ext = *small_ext = "webp";
    } else if (strcmp(type, "image/gif") == 0) {
        (void)animated; /* original kept as GIF, small is a PNG (first frame) */
        *orig_ct = "image/gif";
        *orig_ext = "gif";
        *small_ct = "image/png";
        *small_ext = "png";
    } else { /* jpeg, heic, heif, avif */
        *orig_ct = *small_ct = "image/jpeg";
        *orig_ext = *small_ext = "jpg";
    }
}

static enum r2b_status process_image(const char *path, int fd, const char *dir,
                                     const struct r2b_media_options *o,
                                     struct r2b_media_result *r, struct r2b_error *err)
{
    VipsImage *hdr = NULL, *orig = NULL, *small = NULL, *small_mem = NULL;
    const char *orig_ct, *orig_ext, *small_ct, *small_ext;
    enum r2b_status st = R2B_OK;
    int w, h, pages = 1, ow, oh, is_gif = strcmp(r->type, "image/gif") == 0;
    int orientation = 1, has_icc;
    uint64_t pixels, limit;

    /* libvips 8.14's webpload allocates the whole canvas while reading the
     * header: a 90-byte file claiming 16383x16383 costs 1 GiB. Read WebP
     * dimensions ourselves first. */
    if (strcmp(r->type, "image/webp") == 0) {
        unsigned char head[64];
        ssize_t got = pread(fd, head, sizeof(head), 0);
        int ww = 0, wh = 0;

        if (got <= 0 || r2b_media__webp_dimensions(head, (size_t)got, &ww, &wh) != 0) {
            st = reject(r, R2B_REJECT_CORRUPT, err, "image/webp has no readable header");
            goto cleanup;
        }
        if ((uint64_t)ww * (uint64_t)wh > o->image_max_pixels) {
            st = reject(r, R2B_REJECT_DIMENSIONS, err,
                        "image/webp of %dx%d is %llu pixels, more than the %llu allowed", ww, wh,
                        (unsigned long long)((uint64_t)ww * (uint64_t)wh),
                        (unsigned long long)o->image_max_pixels);
            goto cleanup;
        }
    }
    /* Header only: libvips reads dimensions without decoding pixels. */
    hdr = vips_image_new_from_file(path, "fail_on", VIPS_FAIL_ON_ERROR, NULL);
    if (hdr == NULL) {
        vips_fail(err, R2B_ERR_REJECTED, "cannot read image header");
        st = reject(r, R2B_REJECT_CORRUPT, err, "%s is corrupt or truncated: %s", r->type,
                    err ? err->message : "");
        goto cleanup;
    }
    w = vips_image_get_width(hdr);
    h = vips_image_get_page_height(hdr);
    if (vips_image_get_typeof(hdr, VIPS_META_N_PAGES))
        pages = vips_image_get_n_pages(hdr);
    if (vips_image_get_typeof(hdr, VIPS_META_ORIENTATION) &&
        vips_image_get_int(hdr, VIPS_META_ORIENTATION, &orientation) != 0)
        orientation = 1;
    if (orientation < 1 || orientation > 8)
        orientation = 1;
    has_icc = vips_image_get_typeof(hdr, VIPS_META_ICC_NAME) != 0;
    r->source_width = w;
    r->source_height = h;
    r->orientation = orientation;
    r->animated = is_gif && pages > 1;
    pixels = (uint64_t)w * (uint64_t)h;
    limit = r->animated ? o->gif_max_pixels : o->image_max_pixels;
    if (w <= 0 || h <= 0) {
        st = reject(r, R2B_REJECT_CORRUPT, err, "image has no pixels");
        goto cleanup;
    }
    if (pixels > limit) {
        st = reject(r, R2B_REJECT_DIMENSIONS, err,
                    "%s%s of %dx%d is %llu pixels, more than the %llu allowed",
                    r->animated ? "animated " : "", r->type, w, h, (unsigned long long)pixels,
                    (unsigned long long)limit);
        goto cleanup;
    }
    /*
     * Memory ceiling: 4 bytes a pixel for the decoded image plus, for a
     * progressive JPEG (no shrink-on-load, whole coefficient buffer), 6 more.
     */
    {
        int interlaced = 0;
        uint64_t need;

        if (vips_image_get_typeof(hdr, "interlaced"))
            vips_image_get_int(hdr, "interlaced", &interlaced);
        need = pixels * (interlaced ? 10u : 4u);
        if (need > o->memory_max_bytes) {
            st = reject(r, R2B_REJECT_DIMENSIONS, err,
                        "%dx%d image needs %llu MiB to decode, more than the %llu MiB allowed", w,
                        h, (unsigned long long)(need >> 20),
                        (unsigned long long)(o->memory_max_bytes >> 20));
            goto cleanup;
        }
    }
    ow = orientation >= 5 ? h : w; /* orientations 5..8 swap the axes */
    oh = orientation >= 5 ? w : h;
    /*
     * `original`: vips_thumbnail (shrink-on-load where the format has it,
     * upright, sRGB with an embedded profile applied) streamed into the
     * encoder, so the decoded image is never held whole in memory. The
     * option list ends early, at the NULL, when there is no profile.
     */
    {
        int box = r2b_media__fit_box(ow, oh, o->original_max_pixels);

        for (;;) { /* header work only: nothing is decoded until the save */
            if (vips_thumbnail(path, &orig, box, "height", box, "size", VIPS_SIZE_DOWN, "fail_on",
                               VIPS_FAIL_ON_ERROR, has_icc ? "export_profile" : NULL, "srgb",
                               NULL) != 0) {
                vips_fail(err, R2B_ERR_REJECTED, "cannot decode");
                st = reject(r, R2B_REJECT_CORRUPT, err, "%s is corrupt or truncated: %s", r->type,
                            err ? err->message : "");
                goto cleanup;
            }
            if (!over_limit(orig, o->original_max_pixels) || box <= 1)
                break;
            g_object_unref(orig); /* libvips rounded over the limit: one pixel less */
            orig = NULL;
            box--;
        }
    }
    style_formats(r->type, r->animated, &orig_ct, &orig_ext, &small_ct, &small_ext);
    if ((st = add_style(r, dir, "original", orig_ct, orig_ext, err)) != R2B_OK)
        goto cleanup;
    if (is_gif && (r->animated || pixels <= o->original_max_pixels)) {
        /* Mastodon keeps a GIF original (animated within the GIF limit):
         * frames untouched, metadata blocks dropped (see gif.c). */
        if ((st = write_stripped_gif(fd, r->styles[0].path, err)) != R2B_OK) {
            if (st == R2B_ERR_REJECTED)
                st = reject(r, R2B_REJECT_CORRUPT, err, "image/gif is malformed or truncated");
            goto cleanup;
        }
        if ((st = digest_file(r->styles[0].path, &r->styles[0], err)) != R2B_OK)
            goto cleanup;
        r->styles[0].width = w;
        r->styles[0].height = h;
    } else {
        /* a static GIF larger than the original style is shrunk like any
         * image and stays a GIF (style_formats); the rest are re-encoded */
        st = save_style(orig, &r->styles[0], o->jpeg_quality, err);
        if (st == R2B_ERR_REJECTED)
            st = reject(r, R2B_REJECT_CORRUPT, err, "%s is corrupt or truncated: %s", r->type,
                        err ? err->message : "");
        if (st != R2B_OK)
            goto cleanup;
    }
    /*
     * `small`: from the original just written, which is upright, sRGB,
     * metadata-free and at most 8.3 MP; shrink-on-load makes it cheap (a
     * JPEG is decoded at 1/2..1/8 scale). Held in memory (<= 230,400 px) so
     * the blurhash reuses its pixels. A failure here is ours, not the
     * uploader's, except for a kept GIF, which is the uploader's bytes.
     */
    {
        int box = r2b_media__fit_box(r->styles[0].width, r->styles[0].height,
                                     o->small_max_pixels);
        int ok;

        while ((ok = vips_thumbnail(r->styles[0].path, &small, box, "height", box, "size",
                                    VIPS_SIZE_DOWN, "fail_on", VIPS_FAIL_ON_ERROR, NULL) == 0) &&
               over_limit(small, o->small_max_pixels) && box > 1) {
            g_object_unref(small); /* libvips rounded over the limit: one pixel less */
            small = NULL;
            box--;
        }
        if (!ok || (small_mem = vips_image_copy_memory(small)) == NULL) {
            if (is_gif) {
                vips_fail(err, R2B_ERR_REJECTED, "cannot decode");
                st = reject(r, R2B_REJECT_CORRUPT, err, "%s is corrupt or truncated: %s",
                            r->type, err ? err->message : "");
            } else {
                vips_fail(err, R2B_ERR_IO, "cannot read back the original style");
                st = R2B_ERR_IO;
            }
            goto cleanup;
        }
    }
    if ((st = add_style(r, dir, "small", small_ct, small_ext, err)) != R2B_OK)
        goto cleanup;
    if ((st = save_style(small_mem, &r->styles[1], o->jpeg_quality, err)) != R2B_OK) {
        if (st == R2B_ERR_REJECTED) /* pixels in memory cannot fail to decode */
            st = r2b_error_set(err, R2B_ERR_IO, "cannot encode the small style");
        goto cleanup;
    }
    compute_blurhash(small_mem, r->blurhash, sizeof(r->blurhash));
    r->transcoded = 1;
cleanup:
    if (small_mem)
        g_object_unref(small_mem);
    if (small)
        g_object_unref(small);
    if (orig)
        g_object_unref(orig);
    if (hdr)
        g_object_unref(hdr);
    vips_error_clear();
    return st;
}

void r2b_media_result_release(struct r2b_media_result *r)
{
    char *dir = NULL;

    if (r == NULL)
        return;
    for (int i = 0; i < r->n_styles; i++) {
        if (r->styles[i].path) {
            unlink(r->styles[i].path);
            if (dir == NULL) {
                char *slash;

                dir = r2b_strdup(r->styles[i].path);
                slash = dir ? strrchr(dir, '/') : NULL;
                if (slash)
                    *slash = '\0';
            }
        }
        free(r->styles[i].path);
        r->styles[i].path = NULL;
    }
    if (dir)
        rmdir(dir);
    free(dir);
    r->n_styles = 0;
}

static enum r2b_status av_module(struct r2b_error *err, const struct r2b_av_module **out);

/* Whether the GIF has a second frame (its blocks walked; nothing decoded, no FFmpeg). */
static int gif_is_animated(int fd, size_t size)
{
    unsigned char *p = malloc(size ? size : 1); /* <= the image byte limit, checked before */
    size_t got = 0;
    int frames = -1;

    while (p && got < size) { /* read, not mmap: a file cut short meanwhile is no SIGBUS */
        ssize_t n = pread(fd, p + got, size - got, (off_t)got);

        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (p && got == size)
        frames = r2b_media__gif_frames(p, size, 2);
    free(p);
    return frames >= 2; /* else the image path reads it again and says what is wrong */
}

enum r2b_status r2b_media_process(const char *path, const struct r2b_media_options *opts,
                                  struct r2b_media_result *r, struct r2b_error *err)
{
    struct r2b_media_options defaults;
    const struct r2b_media_options *o = opts;
    const char *canon, *tmp;
    const struct r2b_av_module *av = NULL;
    const char *tmp_from;
    char sniffed[128], dir[4096];
    struct stat sb;
    enum r2b_status st = R2B_OK;
    int fd = -1, have_dir = 0;

    memset(r, 0, sizeof(*r));
    if (o == NULL) {
        r2b_media_options_init(&defaults);
        o = &defaults;
    }
    if (!media_ready && (st = r2b_media_global_init(err)) != R2B_OK)
        return st;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return r2b_error_set_errno(err, errno == ENOENT ? R2B_ERR_NOT_FOUND : R2B_ERR_IO, errno,
                                   "cannot open '%s'", path);
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st = r2b_error_set(err, R2B_ERR_INVALID, "'%s' is not a regular file", path);
        goto cleanup;
    }
    if (sb.st_size == 0) {
        st = reject(r, R2B_REJECT_EMPTY, err, "'%s' is empty", path);
        goto cleanup;
    }
    if ((st = sniff(fd, sniffed, sizeof(sniffed), err)) != R2B_OK)
        goto cleanup;
    canon = r2b_media_canonical_type(sniffed, &r->kind);
    r2b_strlcpy(r->type, canon ? canon : sniffed, sizeof(r->type));
    if (o->claimed_type && *o->claimed_type) {
        const char *claimed = r2b_media_canonical_type(o->claimed_type, NULL);

        r2b_strlcpy(r->claimed_type, o->claimed_type, sizeof(r->claimed_type));
        r->type_mismatch = strcmp(claimed ? claimed : o->claimed_type, r->type) != 0;
    }
    if (canon == NULL) {
        st = reject(r, R2B_REJECT_TYPE, err, "'%s' is %s, which Mastodon does not accept", path,
                    sniffed);
        goto cleanup;
    }
    {
        uint64_t max = r->kind == R2B_MEDIA_IMAGE ? o->image_max_bytes : o->video_max_bytes;

        if ((uint64_t)sb.st_size > max) {
            st = reject(r, R2B_REJECT_TOO_LARGE, err, "%s of %llu bytes is over the %llu-byte limit",
                        r->type, (unsigned long long)sb.st_size, (unsigned long long)max);
            goto cleanup;
        }
    }
    tmp_from = "R2B_TMPDIR";
    tmp = o->tmp_dir;
    if (tmp == NULL || *tmp == '\0') {
        tmp_from = "TMPDIR";
        tmp = getenv("TMPDIR");
    }
    if (tmp == NULL || *tmp == '\0') {
        tmp_from = "the default";
        tmp = "/tmp";
    }
    if ((size_t)snprintf(dir, sizeof(dir), "%s/r2b-media-XXXXXX", tmp) >= sizeof(dir)) {
        st = r2b_error_set(err, R2B_ERR_INVALID, "temp directory path too long");
        goto cleanup;
    }
    if (mkdtemp(dir) == NULL) {
        int e = errno;

        /* missing, not a directory, not ours to write: fix the setting (exit 3);
         * full: later (exit 75); anything else: a local I/O error */
        st = r2b_error_set_errno(
            err,
            e == ENOENT || e == ENOTDIR || e == EACCES || e == EROFS ? R2B_ERR_CONFIG : R2B_ERR_IO,
            e, "cannot create a temp directory in '%s' (%s)", tmp, tmp_from);
        goto cleanup;
    }
    have_dir = 1;
    if (r->kind == R2B_MEDIA_IMAGE && !(o->gifv && strcmp(r->type, "image/gif") == 0 &&
                                        gif_is_animated(fd, (size_t)sb.st_size))) {
        st = process_image(path, fd, dir, o, r, err);
    } else if ((st = av_module(err, &av)) == R2B_OK) {
        st = av->process(path, dir, o, r, err); /* video.c: video, audio, gifv */
    }
cleanup:
    if (st != R2B_OK) {
        r2b_media_result_release(r); /* nothing left behind on failure */
        if (have_dir)
            rmdir(dir);
    }
    if (fd >= 0)
        close(fd);
    return st;
}

/* --- for video.c (the module r2bridge-av.so): the image path's pieces ------------------ */

static enum r2b_status av_digest(struct r2b_media_style *s, struct r2b_error *err)
{
    return digest_file(s->path, s, err);
}

static enum r2b_status av_reject(struct r2b_media_result *r, enum r2b_media_reject why,
                                 struct r2b_error *err, const char *msg)
{
    return reject(r, why, err, "%s", msg);
}

/*
 * A video's poster: the decoded frame video.c wrote as a PNG goes through
 * the same steps as an uploaded image (libvips: turned upright by the
 * stream's display rotation, fitted into the small style, sRGB, written
 * from bare pixels so no metadata can follow, blurhash).
 */
static enum r2b_status av_poster(const char *png, int rotate_deg, const char *dir,
                                 const struct r2b_media_options *o, struct r2b_media_result *r,
                                 struct r2b_error *err)
{
    VipsImage *in = NULL, *rot = NULL, *small = NULL, *mem = NULL;
    enum r2b_status st = R2B_OK;
    VipsAngle angle = rotate_deg == 90    ? VIPS_ANGLE_D90
                      : rotate_deg == 180 ? VIPS_ANGLE_D180
                      : rotate_deg == 270 ? VIPS_ANGLE_D270
                                          : VIPS_ANGLE_D0;
    int box;

    in = vips_image_new_from_file(png, "access", VIPS_ACCESS_SEQUENTIAL, "fail_on",
                                  VIPS_FAIL_ON_ERROR, NULL);
    if (in == NULL || vips_rot(in, &rot, angle, NULL) != 0) {
        vips_fail(err, R2B_ERR_IO, "cannot read the poster frame");
        st = R2B_ERR_IO;
        goto cleanup;
    }
    box = r2b_media__fit_box(vips_image_get_width(rot), vips_image_get_height(rot),
                             o->small_max_pixels);
    if (vips_thumbnail_image(rot, &small, box, "height", box, "size", VIPS_SIZE_DOWN, "no_rotate",
                             TRUE, NULL) != 0 ||
        (mem = vips_image_copy_memory(small)) == NULL) {
        vips_fail(err, R2B_ERR_IO, "cannot resize the poster frame");
        st = R2B_ERR_IO;
        goto cleanup;
    }
    if ((st = add_style(r, dir, "small", "image/jpeg", "jpg", err)) != R2B_OK ||
        (st = save_style(mem, &r->styles[r->n_styles - 1], o->jpeg_quality, err)) != R2B_OK)
        goto cleanup;
    compute_blurhash(mem, r->blurhash, sizeof(r->blurhash));
cleanup:
    if (mem)
        g_object_unref(mem);
    if (small)
        g_object_unref(small);
    if (rot)
        g_object_unref(rot);
    if (in)
        g_object_unref(in);
    vips_error_clear();
    return st;
}

/*
 * The video module (media_int.h), opened once, on the first video, audio
 * file or animated GIF. Where it is looked for:
 *   - $R2B_AV_MODULE, when set (only there; a path with a '/');
 *   - an executable inside the build tree that compiled this library (the
 *     tool, test programs, fuzzers, benchmarks): that tree's own module,
 *     R2B_AV_BUILD_PATH, and nothing else, so a test never runs an
 *     installed module;
 *   - any other executable: next to it, then <its dir>/../R2B_AV_REL_DIR
 *     (an install under any prefix), then the configured install directory
 *     R2B_AV_INSTALL_DIR. Each of these must be a regular file owned by root
 *     or by us, and neither it nor its directory writable by group or
 *     others: dlopen() runs a library's constructors before anything can be
 *     checked, so the interface id below is no defence against a planted file.
 * A module of another version (its R2B_AV_IFACE_ID, ABI or struct sizes
 * differ) is refused and the search goes on. None usable: R2B_ERR_CONFIG (exit 3),
 * an installation problem that retrying will not fix.
 */
static pthread_mutex_t av_lock = PTHREAD_MUTEX_INITIALIZER;
static const struct r2b_av_module *av_loaded;
static const struct r2b_av_host av_host = {
    .abi = R2B_AV_ABI,
    .sizes = {sizeof(struct r2b_media_options), sizeof(struct r2b_media_result),
              sizeof(struct r2b_error)},
    .iface = R2B_AV_IFACE_ID,
    .add_style = add_style,
    .digest = av_digest,
    .reject = av_reject,
    .poster = av_poster,
};

/* dlopen()s `path`; 0 and *out set, or -1 with why in `why`. */
static int av_try(const char *path, const struct r2b_av_module **out, char *why, size_t why_size)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    r2b_av_open_fn *open_fn;
    const char *e;

    if (h == NULL) {
        e = dlerror();
        snprintf(why, why_size, "%s", e ? e : path);
        return -1;
    }
    *(void **)&open_fn = dlsym(h, R2B_AV_ENTRY);
    if (open_fn == NULL || (*out = open_fn(&av_host)) == NULL) {
        snprintf(why, why_size, "%s: %s", path,
                 open_fn == NULL ? "not an r2bridge video module"
                                 : "built from another r2bridge version (interface id differs)");
        dlclose(h);
        return -1;
    }
    r2b_log(R2B_LOG_DEBUG, "media: video module %s", path);
    return 0; /* never closed: FFmpeg keeps global state */
}

/* Owned by root or us, and writable by nobody else (a root-owned sticky directory such as
 * /tmp is fine: nobody can rename or replace what is ours in it). */
static int safe_entry(const struct stat *sb)
{
    if (sb->st_uid != 0 && sb->st_uid != geteuid())
        return 0;
    return !(sb->st_mode & (S_IWGRP | S_IWOTH)) ||
           (S_ISDIR(sb->st_mode) && (sb->st_mode & S_ISVTX) && sb->st_uid == 0);
}

/*
 * The real path of `path` (malloc'd) when it may be loaded: the file and
 * every directory above it (symlinks resolved) pass safe_entry(), so nobody
 * but root or us could have put it there or swap anything on its way. The
 * caller loads that real path, never `path` again (a symlink in a directory
 * others may write could be re-pointed in between). NULL and why otherwise.
 */
static char *av_trusted(const char *path, char *why, size_t why_size)
{
    char *real = realpath(path, NULL), *dir, *slash;
    struct stat sb;

    if (real == NULL) {
        snprintf(why, why_size, "%s: %s", path, strerror(errno));
        return NULL;
    }
    if (stat(real, &sb) != 0 || !S_ISREG(sb.st_mode) || !safe_entry(&sb)) {
        snprintf(why, why_size,
                 "%s: not loaded: the file is not owned by root or us, or others may write it",
                 path);
        free(real);
        return NULL;
    }
    if ((dir = strdup(real)) == NULL) {
        snprintf(why, why_size, "out of memory");
        free(real);
        return NULL;
    }
    while ((slash = strrchr(dir, '/')) != NULL) {
        if (slash == dir && dir[1] == '\0')
            break;                  /* "/" was checked */
        slash[slash == dir] = '\0'; /* the parent directory ("/" for "/x") */
        if (stat(dir, &sb) != 0 || !safe_entry(&sb)) {
            snprintf(why, why_size,
                     "%s: not loaded: directory '%s' is not owned by root or us, or others "
                     "may write it",
                     path, dir);
            free(dir);
            free(real);
            return NULL;
        }
    }
    free(dir);
    return real;
}

/* Tries `path` when it exists (a missing candidate is not a reason worth reporting). */
static int av_try_file(const char *path, int check_owner, char *why, size_t why_size)
{
    char *real = NULL;
    int ok;

    if (access(path, F_OK) != 0 ||
        (check_owner && (real = av_trusted(path, why, why_size)) == NULL))
        return 0;
    ok = av_try(real ? real : path, &av_loaded, why, why_size) == 0; /* what was checked */
    free(real);
    return ok;
}

/* 1 when the directory `dir` (a real path) is R2B_AV_BUILD_DIR or below it. */
static int in_build_tree(const char *dir)
{
    char *build = realpath(R2B_AV_BUILD_DIR, NULL); /* /proc/self/exe has no symlinks */
    size_t n;
    int in;

    if (build == NULL)
        return 0; /* the build tree is gone: an installed copy */
    n = strlen(build);
    in = strncmp(dir, build, n) == 0 && (dir[n] == '/' || dir[n] == '\0');
    free(build);
    return in;
}

static enum r2b_status av_module(struct r2b_error *err, const struct r2b_av_module **out)
{
    const char *env = getenv("R2B_AV_MODULE");
    char why[600] = "", exe[4096] = "", path[4200];
    ssize_t n;
    int ok = 0;

    pthread_mutex_lock(&av_lock);
    if (av_loaded != NULL) {
        ok = 1;
    } else if (env != NULL && *env != '\0') {
        if (strchr(env, '/') == NULL) /* dlopen() would search the library path */
            snprintf(why, sizeof(why), "R2B_AV_MODULE='%s' is not a path (no '/')", env);
        else
            ok = av_try(env, &av_loaded, why, sizeof(why)) == 0;
    } else {
        n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        if (n > 0 && memchr(exe, '/', (size_t)n) != NULL) {
            exe[n] = '\0';
            *strrchr(exe, '/') = '\0'; /* the executable's directory */
        } else {
            exe[0] = '\0';
        }
        if (*exe && in_build_tree(exe)) {
            ok = av_try_file(R2B_AV_BUILD_PATH, 0, why, sizeof(why));
        } else {
            if (*exe) {
                snprintf(path, sizeof(path), "%s/%s", exe, R2B_AV_MODULE_FILE);
                ok = av_try_file(path, 1, why, sizeof(why));
                if (!ok && R2B_AV_REL_DIR[0] != '/') {
                    snprintf(path, sizeof(path), "%s/../%s/%s", exe, R2B_AV_REL_DIR,
                             R2B_AV_MODULE_FILE);
                    ok = av_try_file(path, 1, why, sizeof(why));
                }
            }
            if (!ok)
                ok = av_try_file(R2B_AV_INSTALL_DIR "/" R2B_AV_MODULE_FILE, 1, why, sizeof(why));
        }
    }
    *out = av_loaded;
    pthread_mutex_unlock(&av_lock);
    if (ok)
        return R2B_OK;
    return r2b_error_set(err, R2B_ERR_CONFIG,
                         "cannot load r2bridge's video module %s (%s): video, audio and animated "
                         "gif need it; reinstall r2bridge or set R2B_AV_MODULE to its path",
                         R2B_AV_MODULE_FILE, *why ? why : "not installed");
}
