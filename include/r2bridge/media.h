/*
 * Media: turn whatever a user uploaded into the files that may leave the
 * server, or refuse it with a reason. Runs before a byte goes to R2; what it
 * lets through is public to a third party.
 *
 *  1. sniff: the type comes from the content (libmagic), never from the file
 *     name or the caller's claim; a mismatch with the claim is reported;
 *  2. validate against Mastodon 4.x's rules: accepted types, byte limits,
 *     the pixel matrix read from the header before any decode;
 *  3. transcode images with libvips, hardened for untrusted input: upright
 *     (EXIF orientation applied), shrunk (never enlarged) to the `original`
 *     and `small` styles, converted to sRGB, every piece of metadata but
 *     colour removed (EXIF, GPS, XMP, IPTC, comments), blurhash 4x4;
 *  4. video and audio with FFmpeg's libraries (src/media/video.c): opened
 *     with the demuxer of the sniffed type only, validated against
 *     Mastodon's limits (pixels, frame rate, frames, a deadline), then
 *     `original` = MP4 (H.264 + AAC, remuxed when it already is that,
 *     otherwise transcoded) or, for audio, MP3; no container or stream
 *     metadata survives; video gets a `small` JPEG poster (first frame,
 *     through the image path: sRGB, stripped, blurhash).
 *
 * Thread-safety: call r2b_media_global_init() once before any thread uses
 * this module; r2b_media_process() may then run on several threads at once.
 */
#ifndef R2BRIDGE_MEDIA_H
#define R2BRIDGE_MEDIA_H

#include "r2bridge.h"

/* Mastodon 4.x limits (all overridable through r2b_media_options). */
#define R2B_MEDIA_IMAGE_MAX_BYTES 16777216ULL    /* 16 MiB */
#define R2B_MEDIA_VIDEO_MAX_BYTES 103809024ULL   /* 99 MiB, also audio and gifv */
#define R2B_MEDIA_IMAGE_MAX_PIXELS 33177600ULL   /* 7680 x 4320 */
#define R2B_MEDIA_GIF_MAX_PIXELS 921600ULL       /* 1280 x 720, animated GIF */
#define R2B_MEDIA_ORIGINAL_MAX_PIXELS 8294400ULL /* 3840 x 2160 area */
#define R2B_MEDIA_SMALL_MAX_PIXELS 230400ULL     /* 640 x 360 area */
#define R2B_MEDIA_MAX_STYLES 2
#define R2B_MEDIA_VIDEO_MAX_PIXELS 8294400ULL /* 3840 x 2160 */
#define R2B_MEDIA_VIDEO_MAX_FPS 120           /* floor(frame rate) above this is refused */
#define R2B_MEDIA_VIDEO_MAX_FRAMES 36000LL    /* about 5 minutes at 120 fps */
#define R2B_MEDIA_VIDEO_TIMEOUT_MS 600000ULL  /* one file's processing deadline: 10 min */

enum r2b_media_kind { R2B_MEDIA_NONE = 0, R2B_MEDIA_IMAGE, R2B_MEDIA_VIDEO, R2B_MEDIA_AUDIO };

/* Why media was refused. Append-only; the names are stable (JSON, logs). */
enum r2b_media_reject {
    R2B_REJECT_NONE = 0,
    R2B_REJECT_EMPTY,      /* "empty": zero bytes */
    R2B_REJECT_TYPE,       /* "unsupported_type": not a type Mastodon accepts */
    R2B_REJECT_TOO_LARGE,  /* "too_large": over the byte limit for its kind */
    R2B_REJECT_DIMENSIONS, /* "too_many_pixels": over the pixel matrix limit */
    R2B_REJECT_CORRUPT,    /* "corrupt": truncated or undecodable */
    R2B_REJECT_FRAME_RATE, /* "frame_rate_too_high": video over the frame rate limit */
    R2B_REJECT_TOO_LONG,   /* "too_many_frames": video over the frame count limit */
    R2B_REJECT_TIMEOUT,    /* "timeout": processing passed the deadline (runaway decode) */
};

struct r2b_media_options {
    const char *tmp_dir;      /* where style files are written; NULL: $TMPDIR or /tmp */
    const char *claimed_type; /* the type the uploader claimed, for mismatch reports; may be NULL */
    uint64_t image_max_bytes;
    uint64_t video_max_bytes;
    uint64_t image_max_pixels;
    uint64_t gif_max_pixels;
    uint64_t original_max_pixels;
    uint64_t small_max_pixels;
    int jpeg_quality;          /* 1..100, default 90 */
    uint64_t memory_max_bytes; /* refuse images whose decode would need more; default 1 GiB */
    /* video and audio */
    uint64_t video_max_pixels; /* width x height of the video stream; default 8,294,400 */
    int video_max_fps;         /* floor(frame rate) above it is refused; default 120 */
    int64_t video_max_frames;  /* frames in the file; default 36,000 */
    uint64_t video_timeout_ms; /* wall-clock deadline for one file; default 10 min */
    int gifv;                  /* 1: an animated GIF becomes a silent MP4 (Mastodon's gifv);
                                  default 0: it stays a GIF */
};

/* One output file. */
struct r2b_media_style {
    char name[16];         /* "original" or "small" */
    char *path;            /* temp file owned by the result, removed by _release */
    char content_type[32]; /* e.g. "image/jpeg" */
    char ext[8];           /* without the dot: "jpg", "png", "webp", "gif", "mp4" ... */
    uint64_t size_bytes;
    int width, height;     /* 0 for audio */
    char sha256[65];
};

struct r2b_media_result {
    char type[64];                  /* canonical sniffed type, e.g. "image/jpeg" */
    enum r2b_media_kind kind;
    int transcoded;                 /* 1 when the styles were re-encoded */
    int animated;                   /* animated GIF */
    int type_mismatch;              /* claimed_type given and different from the sniffed type */
    char claimed_type[64];
    struct r2b_media_style styles[R2B_MEDIA_MAX_STYLES];
    int n_styles;
    int source_width, source_height; /* as stored (before orientation); 0 if unknown */
    int orientation;                 /* EXIF orientation 1..8 applied (1 if none) */
    char blurhash[64];               /* "" when not computed */
    enum r2b_media_reject reject;    /* R2B_REJECT_NONE when accepted */
    char reject_reason[256];         /* one line, when rejected */
    /*
     * Video and audio: what Mastodon's file.meta holds, measured on the
     * `original` output (0 or "" when not applicable).
     */
    double duration_s;
    char frame_rate[24];    /* "30/1", "30000/1001": video only */
    double fps;             /* the same as a number */
    int64_t bitrate;        /* bits per second of the original output, whole file */
    int64_t frames;         /* video frames in the output */
    int audio_channels;     /* 0: no audio */
    int audio_sample_rate;  /* Hz */
    char video_codec[16];   /* of the output: "h264" */
    char audio_codec[16];   /* of the output: "aac", "mp3" */
    char source_codecs[64]; /* of the source, e.g. "vp9+opus" (logs, JSON) */
    int rotation;           /* display rotation kept from the source: 0, 90, 180, 270 */
    int gifv;               /* an animated GIF turned into a silent MP4 (kind VIDEO) */
};

/* Starts libvips and libmagic, locks libvips down for untrusted input. Once per process. */
enum r2b_status r2b_media_global_init(struct r2b_error *err);

/* Fills the Mastodon defaults. */
void r2b_media_options_init(struct r2b_media_options *o);

/*
 * Processes the file at `path`. Returns:
 *  - R2B_OK with result->reject == R2B_REJECT_NONE: accepted, styles written;
 *  - R2B_ERR_REJECTED with result->reject and reject_reason set (and the
 *    same reason in `err`): the media is refused, retrying will not help;
 *  - another status for local failures (cannot read the file, disk full in
 *    tmp_dir, out of memory), with `err` set.
 * On every failure path no temp file is left behind. On success the caller
 * owns the style files through `result`: r2b_media_result_release() removes
 * them (after uploading, or when giving up).
 */
enum r2b_status r2b_media_process(const char *path, const struct r2b_media_options *opts,
                                  struct r2b_media_result *result, struct r2b_error *err);

/* Removes the style files and frees what the result owns. Accepts NULL. */
void r2b_media_result_release(struct r2b_media_result *result);

/* Stable name of a rejection ("unsupported_type", ...). */
const char *r2b_media_reject_name(enum r2b_media_reject r);

/*
 * Maps a libmagic MIME type to Mastodon's canonical type and kind, or NULL
 * when Mastodon does not accept it (pure; exposed for tests).
 */
const char *r2b_media_canonical_type(const char *sniffed, enum r2b_media_kind *kind);

/*
 * Blurhash of an 8-bit RGB(A) image, the reference algorithm (woltapp), with
 * x_comp x y_comp components (Mastodon: 4 x 4). `out` receives at most
 * 2 + 4 + 2 * 81 characters + NUL. Returns 0, or -1 on bad arguments (then
 * `out` is "" when out_size > 0, and nothing past out_size is written).
 */
int r2b_blurhash_encode(const unsigned char *pixels, int width, int height, int bands,
                        size_t row_stride, int x_comp, int y_comp, char *out, size_t out_size);

#endif
