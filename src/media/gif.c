/*
 * A GIF original is kept as Mastodon keeps it (frames untouched, no
 * re-encoding), but not the metadata around the frames: this filter copies
 * the block structure and drops comment extensions, plain-text extensions,
 * application extensions other than the loop count (NETSCAPE2.0 /
 * ANIMEXTS1.0) and the ICC profile, and anything after the trailer (an
 * appended archive, say). A GIF with none of those comes out byte-identical.
 */
#include <string.h>

#include "media_int.h"

#define EXT_INTRODUCER 0x21
#define IMAGE_SEPARATOR 0x2C
#define TRAILER 0x3B
#define EXT_PLAIN_TEXT 0x01
#define EXT_GRAPHIC_CONTROL 0xF9
#define EXT_COMMENT 0xFE
#define EXT_APPLICATION 0xFF

/* Length of a run of data sub-blocks starting at in[i] (up to and with the 0 terminator). */
static int sub_blocks(const unsigned char *in, size_t n, size_t i, size_t *len)
{
    size_t j = i;

    for (;;) {
        if (j >= n)
            return -1;
        if (in[j] == 0) {
            *len = j + 1 - i;
            return 0;
        }
        j += (size_t)in[j] + 1;
    }
}

static int keep_application(const unsigned char *in, size_t n, size_t i)
{
    /* in[i] is the block size (11), then the 8-byte identifier + 3-byte code */
    if (i + 12 > n || in[i] != 11)
        return 0;
    return memcmp(in + i + 1, "NETSCAPE2.0", 11) == 0 ||
           memcmp(in + i + 1, "ANIMEXTS1.0", 11) == 0 ||
           memcmp(in + i + 1, "ICCRGBG1012", 11) == 0; /* colour information may stay */
}

int r2b_media__gif_strip(const unsigned char *in, size_t n, struct r2b_buf *out, size_t *dropped)
{
    size_t i = 13, len;

    *dropped = 0;
    if (n < 13 || (memcmp(in, "GIF87a", 6) != 0 && memcmp(in, "GIF89a", 6) != 0))
        return -1;
    if (in[10] & 0x80) /* global colour table */
        i += 3u * (1u << ((in[10] & 7) + 1));
    if (i > n || r2b_buf_add(out, in, i) != R2B_OK)
        return -1;
    while (i < n) {
        if (in[i] == TRAILER) {
            if (r2b_buf_addc(out, (char)TRAILER) != R2B_OK)
                return -1;
            *dropped += n - i - 1; /* bytes after the trailer */
            return 0;
        }
        if (in[i] == IMAGE_SEPARATOR) {
            size_t start = i;

            if (i + 10 > n)
                return -1;
            i += 10;
            if (in[start + 9] & 0x80) /* local colour table */
                i += 3u * (1u << ((in[start + 9] & 7) + 1));
            i += 1; /* LZW minimum code size */
            if (i > n || sub_blocks(in, n, i, &len) != 0)
                return -1;
            i += len;
            if (r2b_buf_add(out, in + start, i - start) != R2B_OK)
                return -1;
        } else if (in[i] == EXT_INTRODUCER) {
            size_t start = i;
            unsigned char label;
            int keep;

            if (i + 2 > n)
                return -1;
            label = in[i + 1];
            keep = label == EXT_GRAPHIC_CONTROL ||
                   (label == EXT_APPLICATION && keep_application(in, n, i + 2));
            if (label != EXT_GRAPHIC_CONTROL && label != EXT_APPLICATION &&
                label != EXT_COMMENT && label != EXT_PLAIN_TEXT)
                keep = 0; /* unknown extensions: not ours to pass on */
            if (sub_blocks(in, n, i + 2, &len) != 0)
                return -1;
            i += 2 + len;
            if (keep) {
                if (r2b_buf_add(out, in + start, i - start) != R2B_OK)
                    return -1;
            } else {
                *dropped += i - start;
            }
        } else {
            return -1; /* not a GIF block */
        }
    }
    return -1; /* no trailer: truncated */
}

int r2b_media__gif_frames(const unsigned char *in, size_t n, int max)
{
    size_t i = 13, len;
    int frames = 0;

    if (n < 13 || (memcmp(in, "GIF87a", 6) != 0 && memcmp(in, "GIF89a", 6) != 0))
        return -1;
    if (in[10] & 0x80)
        i += 3u * (1u << ((in[10] & 7) + 1));
    while (i < n && frames < max) {
        if (in[i] == TRAILER)
            return frames;
        if (in[i] == IMAGE_SEPARATOR) {
            size_t start = i;

            if (i + 10 > n)
                return -1;
            i += 10;
            if (in[start + 9] & 0x80)
                i += 3u * (1u << ((in[start + 9] & 7) + 1));
            i += 1;
            if (i > n || sub_blocks(in, n, i, &len) != 0)
                return -1;
            i += len;
            frames++;
        } else if (in[i] == EXT_INTRODUCER) {
            if (i + 2 > n || sub_blocks(in, n, i + 2, &len) != 0)
                return -1;
            i += 2 + len;
        } else {
            return -1;
        }
    }
    return frames >= max ? frames : -1;
}
