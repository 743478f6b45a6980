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

#endif
