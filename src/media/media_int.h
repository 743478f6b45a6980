/* media_int.h: exists so media.c can use the GIF block filter and tests can
 * reach it (and the style-box arithmetic) without going through libvips. */
#ifndef R2B_MEDIA_INT_H
#define R2B_MEDIA_INT_H

#include "r2bridge/media.h"

/*
 * Copies the GIF `in` to `out` without comment, plain-text and foreign
 * application extensions or bytes after the trailer; frames are untouched.
 * `dropped` receives how many bytes were left out. Returns 0, or -1 when
 * `in` is not a well-formed GIF (truncated, no trailer) or `out` is full.
 */
int r2b_media__gif_strip(const unsigned char *in, size_t n, struct r2b_buf *out, size_t *dropped);

/*
 * Copies the WebP `in` to `out` without its EXIF and XMP chunks (VP8X flags
 * cleared, RIFF size fixed) or bytes after the container. 0, or -1 when `in`
 * is not a well-formed WebP or `out` is full.
 */
int r2b_media__webp_strip(const unsigned char *in, size_t n, struct r2b_buf *out, size_t *dropped);

/*
 * Canvas size from a WebP's first bytes (VP8X, VP8L or VP8 header), without
 * decoding or allocating. 0, or -1 when the header is not readable.
 */
int r2b_media__webp_dimensions(const unsigned char *in, size_t n, int *w, int *h);

/*
 * The side of the square box that vips_thumbnail() fits a w x h image into
 * so that the result has at most `limit` pixels (never more than the
 * image's long side: styles never enlarge).
 */
int r2b_media__fit_box(int w, int h, uint64_t limit);

/*
 * Frames in the GIF `in`, counted up to `max` (image descriptors walked
 * through the block structure, nothing decoded). -1 when `in` is not a GIF
 * whose blocks can be followed that far.
 */
int r2b_media__gif_frames(const unsigned char *in, size_t n, int max);

/* --- video and audio: the module r2bridge-av.so (video.c) -------------------------------
 *
 * FFmpeg's libraries (and their ~170 dependencies) are mapped only into a
 * process that meets a video, an audio file or an animated GIF: video.c is
 * built as a module that media.c opens with dlopen() on the first one. An
 * image job never maps them (the peak-RSS target of the transcode benchmark
 * and the smaller attack surface). The module carries its own copy of the
 * core helpers it uses (buffers, errors) and calls back into media.c
 * (styles, digests, rejections, the poster) only through this table.
 */
#define R2B_AV_ABI 1
#define R2B_AV_ENTRY "r2b_av_module_open"
#define R2B_AV_MODULE_FILE "r2bridge-av.so"

struct r2b_av_host {
    unsigned abi;      /* R2B_AV_ABI */
    size_t sizes[3];   /* sizeof the options, result and error structs: both sides must agree */
    const char *iface; /* R2B_AV_IFACE_ID, a hash of the interface's headers: must agree */
    /* Appends a style (path dir/name.ext, not yet written) to r. */
    enum r2b_status (*add_style)(struct r2b_media_result *r, const char *dir, const char *name,
                                 const char *ctype, const char *ext, struct r2b_error *err);
    /* Fills s->size_bytes and s->sha256 from the file at s->path. */
    enum r2b_status (*digest)(struct r2b_media_style *s, struct r2b_error *err);
    /* Sets r->reject, its reason and err (R2B_ERR_REJECTED). */
    enum r2b_status (*reject)(struct r2b_media_result *r, enum r2b_media_reject why,
                              struct r2b_error *err, const char *msg);
    /*
     * Turns the PNG `png` (a video's first frame) into the `small` style
     * (JPEG) through the image path, rotated clockwise by rotate_deg
     * (0/90/180/270), and sets r->blurhash. The PNG is left to the caller.
     */
    enum r2b_status (*poster)(const char *png, int rotate_deg, const char *dir,
                              const struct r2b_media_options *o, struct r2b_media_result *r,
                              struct r2b_error *err);
};

struct r2b_av_module {
    /*
     * Video or audio at `path` (already sniffed into r->type / r->kind, size
     * checked): probe, validate, write the styles into `dir`, fill the meta.
     * Same contract as r2b_media_process (rejections through r->reject).
     * Also takes an animated GIF (r->type "image/gif"): it becomes a silent
     * MP4 within the animated-GIF pixel limit, r->gifv set, kind VIDEO.
     */
    enum r2b_status (*process)(const char *path, const char *dir, const struct r2b_media_options *o,
                               struct r2b_media_result *r, struct r2b_error *err);
};

/*
 * The module's one exported symbol (R2B_AV_ENTRY). Keeps `host` for the
 * life of the process; NULL when the host's ABI, interface id or struct
 * sizes are not the module's own (a module of another version).
 */
typedef const struct r2b_av_module *r2b_av_open_fn(const struct r2b_av_host *host);
r2b_av_open_fn r2b_av_module_open;

#endif
