/*
 * WebP metadata filter. libvips 8.14's webpsave writes an EXIF chunk even
 * with strip set (and, without the clean-pixel wrapping in media.c, would
 * carry the source's EXIF and XMP over). This copies the RIFF container
 * without its "EXIF" and "XMP " chunks and clears their VP8X flags; the image
 * chunks are copied byte for byte.
 */
#include <string.h>

#include "media_int.h"

#define VP8X_FLAG_XMP 0x04
#define VP8X_FLAG_EXIF 0x08

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_le32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

int r2b_media__webp_strip(const unsigned char *in, size_t n, struct r2b_buf *out, size_t *dropped)
{
    size_t i = 12, riff_end, vp8x_at = 0;
    int have_vp8x = 0;

    *dropped = 0;
    if (n < 12 || memcmp(in, "RIFF", 4) != 0 || memcmp(in + 8, "WEBP", 4) != 0)
        return -1;
    riff_end = 8 + (size_t)le32(in + 4);
    if (riff_end > n || riff_end < 12)
        return -1;
    if (r2b_buf_add(out, in, 12) != R2B_OK)
        return -1;
    while (i < riff_end) {
        size_t len, padded;

        if (i + 8 > riff_end)
            return -1;
        len = le32(in + i + 4);
        padded = len + (len & 1); /* RIFF chunks are padded to even sizes */
        if (padded > riff_end - i - 8)
            return -1;
        if (memcmp(in + i, "EXIF", 4) == 0 || memcmp(in + i, "XMP ", 4) == 0) {
            *dropped += 8 + padded;
        } else {
            if (memcmp(in + i, "VP8X", 4) == 0 && len >= 10) {
                have_vp8x = 1;
                vp8x_at = out->len;
            }
            if (r2b_buf_add(out, in + i, 8 + padded) != R2B_OK)
                return -1;
        }
        i += 8 + padded;
    }
    if (have_vp8x) /* the flags byte follows the 8-byte chunk header */
        out->ptr[vp8x_at + 8] = (char)((unsigned char)out->ptr[vp8x_at + 8] &
                                       ~(VP8X_FLAG_EXIF | VP8X_FLAG_XMP));
    put_le32((unsigned char *)out->ptr + 4, (uint32_t)(out->len - 8));
    *dropped += n - riff_end; /* bytes after the RIFF container */
    return 0;
}

int r2b_media__webp_dimensions(const unsigned char *in, size_t n, int *w, int *h)
{
    const unsigned char *d = in + 20; /* first chunk's data */

    if (n < 30 || memcmp(in, "RIFF", 4) != 0 || memcmp(in + 8, "WEBP", 4) != 0)
        return -1;
    if (memcmp(in + 12, "VP8X", 4) == 0) { /* canvas: 24-bit width-1, height-1 */
        *w = 1 + (int)((uint32_t)d[4] | (uint32_t)d[5] << 8 | (uint32_t)d[6] << 16);
        *h = 1 + (int)((uint32_t)d[7] | (uint32_t)d[8] << 8 | (uint32_t)d[9] << 16);
        return 0;
    }
    if (memcmp(in + 12, "VP8L", 4) == 0) { /* 0x2f, then 14-bit width-1, height-1 */
        uint32_t bits;

        if (d[0] != 0x2f)
            return -1;
        bits = (uint32_t)d[1] | (uint32_t)d[2] << 8 | (uint32_t)d[3] << 16 | (uint32_t)d[4] << 24;
        *w = 1 + (int)(bits & 0x3fff);
        *h = 1 + (int)((bits >> 14) & 0x3fff);
        return 0;
    }
    if (memcmp(in + 12, "VP8 ", 4) == 0) { /* key frame: 3-byte tag, 9d 01 2a, 14-bit sizes */
        if (d[3] != 0x9d || d[4] != 0x01 || d[5] != 0x2a)
            return -1;
        *w = (int)(((uint32_t)d[6] | (uint32_t)d[7] << 8) & 0x3fff);
        *h = (int)(((uint32_t)d[8] | (uint32_t)d[9] << 8) & 0x3fff);
        return *w > 0 && *h > 0 ? 0 : -1;
    }
    return -1;
}
