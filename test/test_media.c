/*
 * Unit tests for the media module's pure parts (type table, style boxes,
 * GIF metadata filter) and the process() contract on small generated images
 * (temp files never left behind, rejections carry reasons). The full corpus
 * with independent metadata readers is test/media.sh.
 */
#define _GNU_SOURCE /* memmem */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "media/media_int.h"

static void test_canonical_types(void **state)
{
    static const struct {
        const char *sniffed, *canonical;
        enum r2b_media_kind kind;
    } cases[] = {
        {"image/jpeg", "image/jpeg", R2B_MEDIA_IMAGE},
        {"image/heic-sequence", "image/heic", R2B_MEDIA_IMAGE},
        {"image/avif", "image/avif", R2B_MEDIA_IMAGE},
        {"audio/x-wav", "audio/wav", R2B_MEDIA_AUDIO},
        {"audio/x-m4a", "audio/mp4", R2B_MEDIA_AUDIO},
        {"audio/x-hx-aac-adts", "audio/aac", R2B_MEDIA_AUDIO},
        {"audio/x-flac", "audio/flac", R2B_MEDIA_AUDIO},
        {"video/quicktime", "video/quicktime", R2B_MEDIA_VIDEO},
        {"video/webm", "video/webm", R2B_MEDIA_VIDEO},
        {"image/svg+xml", NULL, R2B_MEDIA_NONE},
        {"text/html", NULL, R2B_MEDIA_NONE},
        {"text/plain", NULL, R2B_MEDIA_NONE},
        {"application/pdf", NULL, R2B_MEDIA_NONE},
        {"application/zip", NULL, R2B_MEDIA_NONE},
        {"image/bmp", NULL, R2B_MEDIA_NONE},
        {"image/tiff", NULL, R2B_MEDIA_NONE},
        {"text/x-shellscript", NULL, R2B_MEDIA_NONE},
        {"", NULL, R2B_MEDIA_NONE},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        enum r2b_media_kind k = R2B_MEDIA_AUDIO;
        const char *c = r2b_media_canonical_type(cases[i].sniffed, &k);

        if (cases[i].canonical)
            assert_string_equal(c, cases[i].canonical);
        else
            assert_null(c);
        assert_int_equal(k, cases[i].kind);
    }
    assert_null(r2b_media_canonical_type(NULL, NULL));
    assert_string_equal(r2b_media_reject_name(R2B_REJECT_DIMENSIONS), "too_many_pixels");
    assert_string_equal(r2b_media_reject_name(R2B_REJECT_TYPE), "unsupported_type");
    assert_string_equal(r2b_media_reject_name((enum r2b_media_reject)99), "unknown");
}

static void test_fit_box(void **state)
{
    static const struct {
        int w, h;
        uint64_t limit;
    } cases[] = {
        {4000, 3000, R2B_MEDIA_ORIGINAL_MAX_PIXELS}, {3000, 4000, R2B_MEDIA_ORIGINAL_MAX_PIXELS},
        {7680, 4320, R2B_MEDIA_ORIGINAL_MAX_PIXELS}, {3840, 2160, R2B_MEDIA_ORIGINAL_MAX_PIXELS},
        {4000, 3000, R2B_MEDIA_SMALL_MAX_PIXELS},    {640, 360, R2B_MEDIA_SMALL_MAX_PIXELS},
        {10000, 7, R2B_MEDIA_SMALL_MAX_PIXELS},      {7, 10000, R2B_MEDIA_SMALL_MAX_PIXELS},
        {1, 1, R2B_MEDIA_SMALL_MAX_PIXELS},          {641, 361, R2B_MEDIA_SMALL_MAX_PIXELS},
        {5000, 5000, R2B_MEDIA_SMALL_MAX_PIXELS},    {33333, 995, R2B_MEDIA_ORIGINAL_MAX_PIXELS},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int w = cases[i].w, h = cases[i].h, lng = w > h ? w : h, shrt = w > h ? h : w;
        int box = r2b_media__fit_box(w, h, cases[i].limit);
        /* what vips_thumbnail makes of the box: long side = box, short rounded */
        double s = (double)shrt * box / lng;
        uint64_t out_short = (uint64_t)(s + 0.5) < 1 ? 1 : (uint64_t)(s + 0.5);

        assert_true(box >= 1 && box <= lng);              /* never enlarges */
        assert_true((uint64_t)box * out_short <= cases[i].limit || box == 1);
        if ((uint64_t)w * (uint64_t)h <= cases[i].limit)
            assert_int_equal(box, lng); /* small enough: untouched */
        else /* and it uses the budget: one more pixel of box would not fit */
            assert_true((uint64_t)(box + 1) * (uint64_t)((double)shrt * (box + 1) / lng) >
                            cases[i].limit * 99 / 100);
    }
    assert_int_equal(r2b_media__fit_box(4000, 3000, R2B_MEDIA_ORIGINAL_MAX_PIXELS), 3325);
    /* 554 x rint(415.5) = 230,464 would be over: one less */
    assert_int_equal(r2b_media__fit_box(4000, 3000, R2B_MEDIA_SMALL_MAX_PIXELS), 553);
}

/* A minimal GIF: header, 2-colour global table, optional blocks, one 1x1 frame. */
static size_t make_gif(unsigned char *buf, int with_junk, int trailing)
{
    static const unsigned char head[] = {'G', 'I', 'F', '8', '9', 'a', 1, 0, 1, 0, 0x80, 0, 0,
                                         0, 0, 0, 255, 255, 255};
    static const unsigned char netscape[] = {0x21, 0xFF, 11, 'N', 'E', 'T', 'S', 'C', 'A', 'P',
                                             'E', '2', '.', '0', 3, 1, 0, 0, 0};
    static const unsigned char gce[] = {0x21, 0xF9, 4, 0, 10, 0, 0, 0};
    static const unsigned char comment[] = {0x21, 0xFE, 6, 's', 'e', 'c', 'r', 'e', 't', 0};
    static const unsigned char xmp[] = {0x21, 0xFF, 11, 'X', 'M', 'P', ' ', 'D', 'a', 't', 'a',
                                        'X', 'M', 'P', 4, 'g', 'p', 's', '!', 0};
    static const unsigned char frame[] = {0x2C, 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 0x4C, 0x01, 0};
    size_t n = 0;

#define PUT(a) (memcpy(buf + n, a, sizeof(a)), n += sizeof(a))
    PUT(head);
    PUT(netscape);
    if (with_junk)
        PUT(comment);
    PUT(gce);
    if (with_junk)
        PUT(xmp);
    PUT(frame);
    buf[n++] = 0x3B;
    if (trailing) {
        memcpy(buf + n, "PK\x03\x04zipdata", 11);
        n += 11;
    }
#undef PUT
    return n;
}

static void test_gif_strip(void **state)
{
    unsigned char clean[256], dirty[256];
    size_t nc = make_gif(clean, 0, 0), nd = make_gif(dirty, 1, 1), dropped = 0;
    struct r2b_buf out;

    (void)state;
    r2b_buf_init(&out, 1 << 20);
    /* a clean GIF comes out byte-identical */
    assert_int_equal(r2b_media__gif_strip(clean, nc, &out, &dropped), 0);
    assert_int_equal(out.len, nc);
    assert_memory_equal(out.ptr, clean, nc);
    assert_int_equal(dropped, 0);
    /* comment, XMP and the appended archive are gone; the rest is the clean GIF */
    r2b_buf_reset(&out);
    assert_int_equal(r2b_media__gif_strip(dirty, nd, &out, &dropped), 0);
    assert_int_equal(out.len, nc);
    assert_memory_equal(out.ptr, clean, nc);
    assert_int_equal(dropped, nd - nc);
    assert_null(memmem(out.ptr, out.len, "secret", 6));
    /* truncation anywhere is refused, never passed on */
    for (size_t cut = 0; cut < nc - 1; cut++) {
        r2b_buf_reset(&out);
        assert_int_equal(r2b_media__gif_strip(clean, cut, &out, &dropped), -1);
    }
    r2b_buf_reset(&out);
    assert_int_equal(r2b_media__gif_strip((const unsigned char *)"GIF89b", 6, &out, &dropped), -1);
    r2b_buf_release(&out);
}

/* Frames counted through the block structure (the gifv decision, no FFmpeg). */
static void test_gif_frames(void **state)
{
    static const unsigned char frame[] = {0x2C, 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 0x4C, 0x01, 0};
    unsigned char one[256], two[256];
    size_t n1 = make_gif(one, 1, 1), n2;

    (void)state;
    /* a second frame (graphic control + image) inserted before the trailer */
    memcpy(two, one, n1);
    n2 = make_gif(two, 1, 0) - 1;
    memcpy(two + n2, frame, sizeof(frame));
    n2 += sizeof(frame);
    two[n2++] = 0x3B;
    assert_int_equal(r2b_media__gif_frames(one, n1, 2), 1);
    assert_int_equal(r2b_media__gif_frames(two, n2, 2), 2);
    assert_int_equal(r2b_media__gif_frames(two, n2, 1), 1); /* stops at max */
    assert_int_equal(r2b_media__gif_frames(two, n2, 10), 2);
    /* the second frame complete, the trailer missing: enough to say animated */
    assert_int_equal(r2b_media__gif_frames(two, n2 - 1, 2), 2);
    /* truncated before a second frame: not a GIF we can count */
    for (size_t cut = 0; cut < n2 - 1; cut++)
        assert_int_equal(r2b_media__gif_frames(two, cut, 2), -1);
    assert_int_equal(r2b_media__gif_frames((const unsigned char *)"GIF89b", 6, 2), -1);
}

static size_t chunk(unsigned char *p, const char *fourcc, const char *data, size_t len)
{
    memcpy(p, fourcc, 4);
    p[4] = (unsigned char)len;
    p[5] = p[6] = p[7] = 0;
    memcpy(p + 8, data, len);
    if (len & 1)
        p[8 + len++] = 0; /* RIFF padding */
    return 8 + len;
}

static size_t make_webp(unsigned char *buf, int with_meta, int trailing)
{
    static const char vp8x[10] = {0x0C, 0, 0, 0, 0, 0, 0, 0, 0, 0}; /* EXIF|XMP flags */
    size_t n = 12;

    memcpy(buf, "RIFF\0\0\0\0WEBP", 12);
    n += chunk(buf + n, "VP8X", vp8x, sizeof(vp8x));
    n += chunk(buf + n, "VP8L", "\x2f\x00\x00\x00\x00pixels", 11);
    if (with_meta) {
        n += chunk(buf + n, "EXIF", "II*\0GPS-secret", 14);
        n += chunk(buf + n, "XMP ", "<x:xmpmeta>creator</x:xmpmeta>", 30);
    }
    buf[4] = (unsigned char)(n - 8);
    if (trailing) {
        memcpy(buf + n, "PK\x03\x04", 4);
        n += 4;
    }
    return n;
}

static void test_webp_strip(void **state)
{
    unsigned char clean[256], dirty[256];
    size_t nc = make_webp(clean, 0, 0), nd = make_webp(dirty, 1, 1), dropped;
    struct r2b_buf out;

    (void)state;
    r2b_buf_init(&out, 1 << 20);
    assert_int_equal(r2b_media__webp_strip(dirty, nd, &out, &dropped), 0);
    assert_int_equal(out.len, nc);
    assert_null(memmem(out.ptr, out.len, "secret", 6));
    assert_null(memmem(out.ptr, out.len, "creator", 7));
    assert_int_equal((unsigned char)out.ptr[20] & 0x0C, 0); /* EXIF and XMP flags cleared */
    assert_int_equal((unsigned char)out.ptr[4], nc - 8);    /* RIFF size fixed */
    assert_memory_equal(out.ptr + 21, clean + 21, nc - 21); /* image chunks byte for byte */
    assert_int_equal(dropped, nd - nc);
    /* truncated or lying sizes are refused */
    for (size_t cut = 0; cut < nd - 4; cut += 3) {
        r2b_buf_reset(&out);
        if (cut < nc - 1 || cut > nc)
            assert_int_equal(r2b_media__webp_strip(dirty, cut, &out, &dropped), -1);
    }
    r2b_buf_release(&out);
}

static void test_webp_dimensions(void **state)
{
    /* VP8X canvas 16383 x 16383 (stored minus one, 24-bit little endian) */
    static const unsigned char vp8x[30] = {'R', 'I', 'F', 'F', 22, 0, 0, 0, 'W', 'E', 'B', 'P',
                                           'V', 'P', '8', 'X', 10, 0, 0, 0, 0, 0, 0, 0,
                                           0xfe, 0x3f, 0, 0xfe, 0x3f, 0};
    /* VP8L: 0x2f then 14-bit width-1 = 99, height-1 = 49 */
    unsigned char vp8l[30] = {'R', 'I', 'F', 'F', 22, 0, 0, 0, 'W', 'E', 'B', 'P',
                              'V', 'P', '8', 'L', 10, 0, 0, 0, 0x2f};
    /* VP8 key frame: tag, 9d 01 2a, 640 x 480 */
    static const unsigned char vp8[30] = {'R', 'I', 'F', 'F', 22, 0, 0, 0, 'W', 'E', 'B', 'P',
                                          'V', 'P', '8', ' ', 10, 0, 0, 0, 0, 0, 0, 0x9d,
                                          0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01};
    uint32_t bits = 99u | 49u << 14;
    int w = 0, h = 0;

    (void)state;
    vp8l[21] = (unsigned char)bits;
    vp8l[22] = (unsigned char)(bits >> 8);
    vp8l[23] = (unsigned char)(bits >> 16);
    vp8l[24] = (unsigned char)(bits >> 24);
    assert_int_equal(r2b_media__webp_dimensions(vp8x, sizeof(vp8x), &w, &h), 0);
    assert_true(w == 16383 && h == 16383);
    assert_int_equal(r2b_media__webp_dimensions(vp8l, sizeof(vp8l), &w, &h), 0);
    assert_true(w == 100 && h == 50);
    assert_int_equal(r2b_media__webp_dimensions(vp8, sizeof(vp8), &w, &h), 0);
    assert_true(w == 640 && h == 480);
    assert_int_equal(r2b_media__webp_dimensions(vp8, 20, &w, &h), -1);
    assert_int_equal(r2b_media__webp_dimensions((const unsigned char *)"RIFF....WEBPJUNK"
                                                "xxxxxxxxxxxxxxxxxxxxxx", 38, &w, &h),
                     -1);
}

/* --- process() on real files ------------------------------------------------------------ */

static char tmpdir[512];

static int setup_dir(void **state)
{
    const char *base = getenv("R2B_TEST_TMP") ? getenv("R2B_TEST_TMP") : "/tmp";
    struct r2b_error err;

    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "%s/r2b-media-test-XXXXXX", base);
    assert_non_null(mkdtemp(tmpdir));
    assert_int_equal(r2b_media_global_init(&err), R2B_OK);
    return 0;
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");

    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
}

static void test_process_contract(void **state)
{
    unsigned char gif[256];
    size_t n = make_gif(gif, 1, 1);
    char src[600], work[600];
    struct r2b_media_options o;
    struct r2b_media_result r;
    struct r2b_error err;

    (void)state;
    snprintf(work, sizeof(work), "%s/work", tmpdir);
    assert_int_equal(mkdir(work, 0700), 0);
    r2b_media_options_init(&o);
    o.tmp_dir = work;

    /* accepted GIF: two styles in a private temp dir, released without a trace */
    snprintf(src, sizeof(src), "%s/pic.jpg", tmpdir); /* the name lies: content decides */
    write_bytes(src, gif, n);
    o.claimed_type = "image/jpeg";
    assert_int_equal(r2b_media_process(src, &o, &r, &err), R2B_OK);
    assert_string_equal(r.type, "image/gif");
    assert_int_equal(r.type_mismatch, 1);
    assert_int_equal(r.n_styles, 2);
    assert_string_equal(r.styles[0].content_type, "image/gif");
    assert_string_equal(r.styles[1].content_type, "image/png");
    assert_true(r.styles[0].size_bytes < n); /* the comment, XMP and ZIP are gone */
    assert_int_equal(r.styles[1].width, 1);
    assert_int_equal(strlen(r.styles[0].sha256), 64);
    assert_int_equal(count_entries(work), 1);
    r2b_media_result_release(&r);
    assert_int_equal(count_entries(work), 0);

    /* rejected: reason set, nothing left behind */
    o.claimed_type = NULL;
    write_bytes(src, "<svg xmlns='http://www.w3.org/2000/svg'/>", 41);
    assert_int_equal(r2b_media_process(src, &o, &r, &err), R2B_ERR_REJECTED);
    assert_int_equal(r.reject, R2B_REJECT_TYPE);
    assert_non_null(strstr(r.reject_reason, "svg"));
    assert_int_equal(err.code, R2B_ERR_REJECTED);
    assert_int_equal(count_entries(work), 0);
    /* truncated GIF: corrupt, nothing left behind */
    write_bytes(src, gif, 30);
    assert_int_equal(r2b_media_process(src, &o, &r, &err), R2B_ERR_REJECTED);
    assert_int_equal(r.reject, R2B_REJECT_CORRUPT);
    assert_int_equal(count_entries(work), 0);
    /* over the byte limit, checked before any decode */
    o.image_max_bytes = 10;
    write_bytes(src, gif, n);
    assert_int_equal(r2b_media_process(src, &o, &r, &err), R2B_ERR_REJECTED);
    assert_int_equal(r.reject, R2B_REJECT_TOO_LARGE);
    o.image_max_bytes = R2B_MEDIA_IMAGE_MAX_BYTES;
    /* a one-frame GIF under gifv stays an image, and FFmpeg (the video
     * module) is never mapped into a process that only met images */
    o.gifv = 1;
    assert_int_equal(r2b_media_process(src, &o, &r, &err), R2B_OK);
    assert_int_equal(r.kind, R2B_MEDIA_IMAGE);
    assert_int_equal(r.gifv, 0);
    r2b_media_result_release(&r);
    o.gifv = 0;
    {
        FILE *maps = fopen("/proc/self/maps", "r");
        char line[4600];

        assert_non_null(maps);
        while (fgets(line, sizeof(line), maps)) {
            assert_null(strstr(line, "libavcodec"));
            assert_null(strstr(line, "r2bridge-av"));
        }
        fclose(maps);
    }
    /* a missing file is not a rejection */
    snprintf(src, sizeof(src), "%s/nope.gif", tmpdir);
    assert_int_equal(r2b_media_process(src, &o, &r, &err), R2B_ERR_NOT_FOUND);
    /* a temp dir that does not exist is the configuration's fault, not a rejection */
    snprintf(src, sizeof(src), "%s/pic.jpg", tmpdir);
    o.tmp_dir = "/nonexistent/dir";
    assert_int_equal(r2b_media_process(src, &o, &r, &err), R2B_ERR_CONFIG);
    assert_non_null(strstr(err.message, "R2B_TMPDIR"));
    rmdir(work);
    unlink(src);
    rmdir(tmpdir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canonical_types),
        cmocka_unit_test(test_fit_box),
        cmocka_unit_test(test_gif_strip),
        cmocka_unit_test(test_gif_frames),
        cmocka_unit_test(test_webp_strip),
        cmocka_unit_test(test_webp_dimensions),
        cmocka_unit_test_setup(test_process_contract, setup_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
