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
#define EXT_GRAPHIC_CONTROL 0xF9
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

/* Whether the extension block at in[i] (already parsed) may stay: graphic
 * control, and the application blocks keep_application() names. */
static int keep_extension(const unsigned char *in, size_t n, size_t i)
{
    unsigned char label = in[i + 1];

    return label == EXT_GRAPHIC_CONTROL ||
           (label == EXT_APPLICATION && keep_application(in, n, i + 2));
}

/* Where the blocks start: after the header and the global colour table; 0 if not a GIF. */
static size_t first_block(const unsigned char *in, size_t n)
{
    size_t i = 13;

    if (n < 13 || (memcmp(in, "GIF87a", 6) != 0 && memcmp(in, "GIF89a", 6) != 0))
        return 0;
    if (in[10] & 0x80) /* global colour table */
        i += 3u * (1u << ((in[10] & 7) + 1));
    return i > n ? 0 : i;
}

/*
 * The block at in[i] (an image, an extension or the trailer, its first
 * byte): *end is where the next one starts. 0, or -1 when it is truncated
 * or not a GIF block.
 */
static int block_end(const unsigned char *in, size_t n, size_t i, size_t *end)
{
    size_t len;

    if (in[i] == TRAILER) {
        *end = i + 1;
        return 0;
    }
    if (in[i] == IMAGE_SEPARATOR) {
        size_t j = i + 10;

        if (j > n)
            return -1;
        if (in[i + 9] & 0x80) /* local colour table */
            j += 3u * (1u << ((in[i + 9] & 7) + 1));
        j += 1; /* LZW minimum code size */
        if (j > n || sub_blocks(in, n, j, &len) != 0)
            return -1;
        *end = j + len;
        return 0;
    }
    if (in[i] == EXT_INTRODUCER) {
        if (i + 2 > n || sub_blocks(in, n, i + 2, &len) != 0)
            return -1;
        *end = i + 2 + len;
        return 0;
    }
    return -1; /* not a GIF block */
}

int r2b_media__gif_strip(const unsigned char *in, size_t n, struct r2b_buf *out, size_t *dropped)
{
    size_t i = first_block(in, n), end;

    *dropped = 0;
    if (i == 0 || r2b_buf_add(out, in, i) != R2B_OK)
        return -1;
    while (i < n) {
        if (block_end(in, n, i, &end) != 0)
            return -1;
        if (in[i] == TRAILER) {
            if (r2b_buf_addc(out, (char)TRAILER) != R2B_OK)
                return -1;
            *dropped += n - end; /* bytes after the trailer */
            return 0;
        }
        if (in[i] == IMAGE_SEPARATOR || keep_extension(in, n, i)) {
            if (r2b_buf_add(out, in + i, end - i) != R2B_OK)
                return -1;
        } else {
            *dropped += end - i;
        }
        i = end;
    }
    return -1; /* no trailer: truncated */
}

int r2b_media__gif_frames(const unsigned char *in, size_t n, int max)
{
    size_t i = first_block(in, n), end;
    int frames = 0;

    if (i == 0)
        return -1;
    while (i < n && frames < max) {
        if (block_end(in, n, i, &end) != 0)
            return -1;
        if (in[i] == TRAILER)
            return frames;
        frames += in[i] == IMAGE_SEPARATOR;
        i = end;
    }
    return frames >= max ? frames : -1;
}
