/*
 * Unit tests for the blurhash encoder: exact hashes from an independent build
 * of the reference, hand-worked cases, component counts, pixel layouts, and
 * argument checks.
 *
 * Run with `--dump` the program prints its test images instead of testing
 * them, one per line: name width height bands x_comp y_comp, then the packed
 * pixels in hex. That is how the expected hashes in `goldens` were derived,
 * once, with Debian's python3-blurhash 1.1.4 (blurhash-python, a CFFI build
 * of woltapp's C/encode.c; 166 in the AC maximum, as the current reference),
 * through its public API on a lossless PNG of the same pixels, as
 * `test_blurhash --dump | /usr/bin/python3 gen.py` with gen.py:
 *
 *   import sys, io, blurhash
 *   from PIL import Image
 *   for line in sys.stdin:
 *       name, w, h, bands, xc, yc, hexpix = line.split()
 *       w, h, bands, xc, yc = int(w), int(h), int(bands), int(xc), int(yc)
 *       im = Image.frombytes('RGBA' if bands == 4 else 'RGB', (w, h),
 *                            bytes.fromhex(hexpix))
 *       png = io.BytesIO(); im.save(png, 'PNG'); png.seek(0)
 *       print(name, blurhash.encode(png, xc, yc))
 *
 * blurhash.encode() converts to RGB with Pillow, which drops alpha without
 * compositing, as r2b_blurhash_encode() ignores it; each hash was also
 * checked against the package's C function called on the raw RGB bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "r2bridge/media.h"

/* 2 + 4 + 2 * 80 characters at 9 x 9, and the NUL */
#define HASH_MAX 167

static const char base83[] =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~";

enum pattern {
    PAT_SOLID,    /* param: 0xRRGGBB */
    PAT_GRADIENT, /* red along x, green along y, blue from both */
    PAT_CHECKER,  /* param: cell size in pixels */
    PAT_NOISE,    /* param: xorshift32 seed */
    PAT_PLASMA,   /* triangle waves of x, y and x * y: smooth, not separable */
};

struct image {
    const char *name;
    int width, height, bands;
    enum pattern pattern;
    uint32_t param;
    int x_comp, y_comp;
};

static uint32_t xorshift32(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static unsigned char tri(int t)
{
    return (unsigned char)((t & 256) ? 255 - (t & 255) : t & 255);
}

/*
 * Writes the image's pixels, `stride` bytes per row; padding bytes are left
 * as they are. With `bands` 4 alpha varies across the image unless `opaque`.
 */
static void fill(const struct image *im, int bands, int opaque, unsigned char *buf, size_t stride)
{
    uint32_t seed = im->param;
    int w = im->width, h = im->height;

    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            unsigned char *p = buf + (size_t)y * stride + (size_t)x * (size_t)bands;
            int r = 0, g = 0, b = 0;

            switch (im->pattern) {
            case PAT_SOLID:
                r = (int)(im->param >> 16 & 255);
                g = (int)(im->param >> 8 & 255);
                b = (int)(im->param & 255);
                break;
            case PAT_GRADIENT:
                r = w > 1 ? x * 255 / (w - 1) : 0;
                g = h > 1 ? y * 255 / (h - 1) : 0;
                b = (255 - r + g) / 2;
                break;
            case PAT_CHECKER:
                if ((x / (int)im->param + y / (int)im->param) % 2 != 0) {
                    r = 240, g = 220, b = 100;
                } else {
                    r = 16, g = 24, b = 48;
                }
                break;
            case PAT_NOISE:
                r = (int)(xorshift32(&seed) >> 24);
                g = (int)(xorshift32(&seed) >> 24);
                b = (int)(xorshift32(&seed) >> 24);
                break;
            case PAT_PLASMA:
                r = tri(x * 2);
                g = tri(y * 3 + x);
                b = tri(x * y / 64 + 40);
                break;
            }
            p[0] = (unsigned char)r;
            p[1] = (unsigned char)g;
            p[2] = (unsigned char)b;
            if (bands == 4)
                p[3] = opaque ? 255 : (unsigned char)((x * 37 + y * 11) & 255);
        }
    }
}

/* A packed copy of the image (stride = width * bands); the caller frees it. */
static unsigned char *make_image(const struct image *im, int bands, int opaque)
{
    size_t stride = (size_t)im->width * (size_t)bands;
    unsigned char *buf = malloc(stride * (size_t)im->height);

    assert_non_null(buf);
    fill(im, bands, opaque, buf, stride);
    return buf;
}

struct golden {
    struct image im;
    const char *hash;
};

/*
 * Expected hashes: python3-blurhash 1.1.4, see the top of this file. C11
 * has trigraphs: a new hash containing "??=" or "??-" needs its '?' as "\?".
 */
static const struct golden goldens[] = {
    {{"solid_red_16x16", 16, 16, 3, PAT_SOLID, 0xff0000, 4, 4},
     "UKTI:j|cfQ|c|co1fQo1fQfQfQfQ|co1fQo1"},
    {{"solid_grey_8x8", 8, 8, 3, PAT_SOLID, 0x808080, 4, 4},
     "U8Eyb[~qfQ~q~qt7fQt7fQfQfQfQ~qt7fQt7"},
    {{"solid_dark_5x7", 5, 7, 3, PAT_SOLID, 0x030201, 4, 4},
     "U00So{oefQoeoej@fQj@fQfQfQfQoej@fQj@"},
    {{"gradient_32x32", 32, 32, 3, PAT_GRADIENT, 0, 4, 4}, "U$HetL2xw#X9l?WAjse:gLfjfQfjnjWpjtfQ"},
    {{"gradient_64x48_4x3", 64, 48, 3, PAT_GRADIENT, 0, 4, 3}, "L$HVCs2e$8Sil?awjsf6gefjfQfj"},
    {{"gradient_1x50", 1, 50, 3, PAT_GRADIENT, 0, 4, 4}, "U~05uEhehehedXdXdXdXgLgLgLgLe:e:e:e:"},
    {{"gradient_50x1", 50, 1, 3, PAT_GRADIENT, 0, 4, 4}, "U~HZ0r6lwzWr|h6lwzWr|h6lwzWr|h6lwzWr"},
    {{"checker_32x32", 32, 32, 3, PAT_CHECKER, 4, 4, 4}, "U4KT;9~SfQ~S~SE4fQD-fQfQfQfQ~SD-fQ9d"},
    {{"checker_30x20_5x4", 30, 20, 3, PAT_CHECKER, 5, 5, 4},
     "VEKT;9%JfQ%JfQ--E4fQD-fQfQfQfQfQfQ--4?fQ0PfQ"},
    {{"checker_2x2", 2, 2, 3, PAT_CHECKER, 1, 4, 4}, "U~KT;9^~fQ^~^~j]4sj]fQ4s054s^~j]4sj]"},
    {{"noise_50x50", 50, 50, 3, PAT_NOISE, 1, 4, 4}, "U3HV9w^9R6?K^#Jdv.WILQ,EO,Lc?FOSrDO+"},
    {{"noise_7x3", 7, 3, 3, PAT_NOISE, 7, 4, 4}, "UkF~zEPSTE^U?wS%Vz%5OSi+r4aS%xno#InE"},
    {{"noise_1x1", 1, 1, 3, PAT_NOISE, 3, 4, 4}, "U~00dFfsfsfsfsfsfsfsfsfsfsfsfsfsfsfs"},
    {{"noise_100x100", 100, 100, 3, PAT_NOISE, 42, 4, 4}, "U0HV9v_N44}+~X7+IY3.4X?@8}9J;E#TVW-A"},
    {{"noise_20x20_9x1", 20, 20, 3, PAT_NOISE, 5, 9, 1}, "89HoI3y+oE?c+J?]IK=RIb"},
    {{"noise_20x20_1x9", 20, 20, 3, PAT_NOISE, 5, 1, 9}, "=AHoI3yYF{K6%DyZCIS+Q{"},
    {{"noise_20x20_3x7", 20, 20, 3, PAT_NOISE, 5, 3, 7},
     "uAHoI3y+oEyYMeXKF{t*xUK6NISg%DoesSyZ#CSwCIvhxV"},
    {{"plasma_100x100", 100, 100, 3, PAT_PLASMA, 0, 4, 4}, "UlDezO5%wNSehjZ;f$e=dzgbf*fjk+a}eqfj"},
    {{"plasma_640x360", 640, 360, 3, PAT_PLASMA, 0, 4, 4}, "UGHV9xkRaKi_kkf{greTe-f{emeUk%gFhSd|"},
    {{"plasma_64x64_1x1", 64, 64, 3, PAT_PLASMA, 0, 1, 1}, "008jLT"},
    {{"plasma_64x64_9x9", 64, 64, 3, PAT_PLASMA, 0, 9, 9},
     "|j8jLTIXoLazjafjazj[azhmbufQfQfjf7fjf7fjgKfQfQfQfQfQfQfQfQi}"
     "bGfQfQfQfQfQfQfQfjfQfQfQfQfQfQfQfQjaa|fQfQfQfQfQfQfQf7fjfQfQfQfQfQfQfQj["
     "azfQfQfQfQfQfQfQf7fjfQfQfQfQfQfQfQ"},
    {{"rgba_gradient_40x30", 40, 30, 4, PAT_GRADIENT, 0, 4, 4},
     "U$HetK2x$8X9l?WTjsf6gLfifQfjnjWqjtfQ"},
    /*
     * Images on which summing in double instead of float, as the TypeScript
     * and pure-Python ports do, changes a digit (DC in the first two, AC in
     * the others): they pin the float arithmetic of the reference.
     */
    {{"checker_100x100_cell11", 100, 100, 3, PAT_CHECKER, 11, 4, 4},
     "U1KKPa?X4??X?XfQWCfQ4?WC4?R+?XfQR+fQ"},
    {{"noise_200x150", 200, 150, 3, PAT_NOISE, 21, 4, 4}, "U0HeqP^,S9-=.7XWt*xs-9+=ObW8k?r;rEoZ"},
    {{"checker_200x150_cell7", 200, 150, 3, PAT_CHECKER, 7, 4, 4},
     "U0KT;9?XWC?X~SWCWCWCWCWCR+WC~SWCWCWC"},
    {{"rgba_noise_640x360", 640, 360, 4, PAT_NOISE, 5, 4, 4},
     "U0HV9xxcM#%MyBwIf$WnXfXRnVW-o}X9OkjZ"},
};

static void test_golden(void **state)
{
    (void)state;
    for (size_t c = 0; c < sizeof(goldens) / sizeof(goldens[0]); c++) {
        const struct image *im = &goldens[c].im;
        unsigned char *px = make_image(im, im->bands, 0);
        char out[HASH_MAX];

        assert_int_equal(r2b_blurhash_encode(px, im->width, im->height, im->bands,
                                             (size_t)im->width * (size_t)im->bands, im->x_comp,
                                             im->y_comp, out, sizeof(out)),
                         0);
        if (strcmp(out, goldens[c].hash) != 0)
            print_error("%s: got %s, want %s\n", im->name, out, goldens[c].hash);
        assert_string_equal(out, goldens[c].hash);
        free(px);
    }
}

static int decode83(const char *s, int n)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        const char *d = strchr(base83, s[i]);

        assert_non_null(d);
        v = v * 83 + (int)(d - base83);
    }
    return v;
}

/*
 * Worked by hand from the reference. Solid (255, 0, 0): red is linear 1.0,
 * green and blue 0, so the DC digits are 0xff0000 = 16711680 = 29, 18, 70, 45
 * in base 83: "TI:j". The basis is sampled at x / w, not at pixel centres, so
 * sum over x of cos(pi i x / w) is w for i = 0, 0 for even i and 1 for odd i:
 * a solid image is not AC-free. With 4 x 4 on 16 x 16, red's AC terms are
 * 2/16 for (1|3, 0) and (0, 1|3), 2/256 for (1|3, 1|3), 0 elsewhere. Maximum
 * 0.125: floor(0.125 * 166 - 0.5) = 20 'K', scale 21/166. Per component
 * floor(sqrt(v / scale) * 9 + 9.5): 18 for 0.125, 11 for 2/256, 9 for 0;
 * green and blue always 9. R * 361 + 9 * 19 + 9 in two base-83 digits:
 * 18 -> 6678 "|c", 11 -> 4151 "o1", 9 -> 3429 "fQ". Size flag 3 + 3 * 9 = 30
 * 'U'. On a 1 x 1 image every basis is 1: all AC terms 2.0, maximum clamps
 * at 82 '~', every AC "|c". With 1 x 1 components: flag '0', maximum '0'.
 * Only without AC components does a solid colour give an AC-free hash.
 */
static void test_solid_by_hand(void **state)
{
    static const struct {
        int width, height, x_comp, y_comp;
        const char *hash;
    } cases[] = {
        {16, 16, 4, 4, "UKTI:j|cfQ|c|co1fQo1fQfQfQfQ|co1fQo1"},
        {1, 1, 4, 4, "U~TI:j|c|c|c|c|c|c|c|c|c|c|c|c|c|c|c"},
        {16, 16, 1, 1, "00TI:j"},
        {3, 5, 1, 1, "00TI:j"},
    };

    (void)state;
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        struct image im = {"red",     cases[c].width, cases[c].height, 3,
                           PAT_SOLID, 0xff0000,       cases[c].x_comp, cases[c].y_comp};
        unsigned char *px = make_image(&im, 3, 0);
        char out[HASH_MAX];

        assert_int_equal(r2b_blurhash_encode(px, im.width, im.height, 3, (size_t)im.width * 3,
                                             im.x_comp, im.y_comp, out, sizeof(out)),
                         0);
        assert_string_equal(out, cases[c].hash);
        assert_int_equal(decode83(out + 2, 4), 0xff0000);
        free(px);
    }
}

/* sRGB -> linear -> mean -> sRGB must give every solid colour back in the DC digits. */
static void test_solid_dc_round_trip(void **state)
{
    static const uint32_t colours[] = {0x000000, 0xffffff, 0xff0000, 0x00ff00, 0x0000ff,
                                       0x010203, 0x0a0b0c, 0x7f8081, 0x123456, 0xfedcba};
    char out[HASH_MAX];

    (void)state;
    for (int i = 0; i < 256 + (int)(sizeof(colours) / sizeof(colours[0])); i++) {
        uint32_t rgb = i < 256 ? (uint32_t)i * 0x010101u : colours[i - 256];
        struct image im = {"solid", 12, 9, 3, PAT_SOLID, rgb, 4, 3};
        unsigned char *px = make_image(&im, 3, 0);

        assert_int_equal(r2b_blurhash_encode(px, 12, 9, 3, 36, 4, 3, out, sizeof(out)), 0);
        assert_int_equal(decode83(out + 2, 4), (int)rgb);
        free(px);
    }
}

static void test_component_counts(void **state)
{
    struct image im = {"noise", 20, 15, 3, PAT_NOISE, 11, 0, 0};
    unsigned char *px = make_image(&im, 3, 0);

    (void)state;
    for (int yc = 1; yc <= 9; yc++) {
        for (int xc = 1; xc <= 9; xc++) {
            size_t len = (size_t)(4 + 2 * xc * yc);
            char out[HASH_MAX + 8];

            memset(out, 'Z', sizeof(out));
            /* exactly enough room */
            assert_int_equal(r2b_blurhash_encode(px, 20, 15, 3, 60, xc, yc, out, len + 1), 0);
            assert_int_equal(strlen(out), len);
            assert_int_equal(out[0], base83[(xc - 1) + (yc - 1) * 9]);
            for (size_t i = len + 1; i < sizeof(out); i++)
                assert_int_equal(out[i], 'Z');
            /* one byte short */
            assert_int_equal(r2b_blurhash_encode(px, 20, 15, 3, 60, xc, yc, out, len), -1);
            assert_int_equal(out[0], '\0');
        }
    }
    free(px);
}

/*
 * The same pixels as RGB, RGBA opaque, RGBA with varying alpha, and each of
 * those with padding between rows filled with garbage: one hash.
 */
static void test_layouts(void **state)
{
    static const size_t pads[] = {0, 1, 13};

    (void)state;
    for (size_t c = 0; c < sizeof(goldens) / sizeof(goldens[0]); c++) {
        const struct image *im = &goldens[c].im;
        char want[HASH_MAX];
        unsigned char *px = make_image(im, 3, 0);

        assert_int_equal(r2b_blurhash_encode(px, im->width, im->height, 3, (size_t)im->width * 3,
                                             im->x_comp, im->y_comp, want, sizeof(want)),
                         0);
        assert_string_equal(want, goldens[c].hash);
        free(px);
        for (int bands = 3; bands <= 4; bands++) {
            for (int opaque = 0; opaque <= (bands == 4); opaque++) {
                for (size_t p = 0; p < sizeof(pads) / sizeof(pads[0]); p++) {
                    size_t stride = (size_t)im->width * (size_t)bands + pads[p];
                    size_t n = stride * (size_t)im->height;
                    uint32_t seed = 0x9e3779b9u;
                    char out[HASH_MAX];

                    px = malloc(n);
                    assert_non_null(px);
                    for (size_t i = 0; i < n; i++)
                        px[i] = (unsigned char)(xorshift32(&seed) >> 24);
                    fill(im, bands, opaque, px, stride);
                    assert_int_equal(r2b_blurhash_encode(px, im->width, im->height, bands, stride,
                                                         im->x_comp, im->y_comp, out, sizeof(out)),
                                     0);
                    if (strcmp(out, want) != 0)
                        print_error("%s bands %d opaque %d stride %zu\n", im->name, bands, opaque,
                                    stride);
                    assert_string_equal(out, want);
                    free(px);
                }
            }
        }
    }
}

/* Refused before anything is written but the empty string, and never past out_size. */
static void test_bad_arguments(void **state)
{
    static const unsigned char px[4 * 4 * 4];
    static const struct {
        const char *name;
        int null_pixels, null_out;
        int width, height, bands;
        size_t stride;
        int x_comp, y_comp;
        size_t out_size;
    } cases[] = {
        {"null pixels", 1, 0, 4, 4, 3, 12, 4, 4, HASH_MAX},
        {"null out", 0, 1, 4, 4, 3, 12, 4, 4, HASH_MAX},
        {"zero width", 0, 0, 0, 4, 3, 12, 4, 4, HASH_MAX},
        {"negative width", 0, 0, -1, 4, 3, 12, 4, 4, HASH_MAX},
        {"zero height", 0, 0, 4, 0, 3, 12, 4, 4, HASH_MAX},
        {"negative height", 0, 0, 4, -4, 3, 12, 4, 4, HASH_MAX},
        {"width * height overflows", 0, 0, 65536, 65536, 3, 196608, 4, 4, HASH_MAX},
        {"one band", 0, 0, 4, 4, 1, 12, 4, 4, HASH_MAX},
        {"two bands", 0, 0, 4, 4, 2, 12, 4, 4, HASH_MAX},
        {"five bands", 0, 0, 4, 4, 5, 20, 4, 4, HASH_MAX},
        {"rgb stride short", 0, 0, 4, 4, 3, 11, 4, 4, HASH_MAX},
        {"rgba stride short", 0, 0, 4, 4, 4, 12, 4, 4, HASH_MAX},
        {"zero stride", 0, 0, 4, 4, 3, 0, 4, 4, HASH_MAX},
        {"x_comp 0", 0, 0, 4, 4, 3, 12, 0, 4, HASH_MAX},
        {"x_comp 10", 0, 0, 4, 4, 3, 12, 10, 4, HASH_MAX},
        {"y_comp 0", 0, 0, 4, 4, 3, 12, 4, 0, HASH_MAX},
        {"y_comp 10", 0, 0, 4, 4, 3, 12, 4, 10, HASH_MAX},
        {"negative comp", 0, 0, 4, 4, 3, 12, -4, 4, HASH_MAX},
        {"out_size 0", 0, 0, 4, 4, 3, 12, 4, 4, 0},
        {"out_size 1", 0, 0, 4, 4, 3, 12, 4, 4, 1},
        {"out_size no NUL 4x4", 0, 0, 4, 4, 3, 12, 4, 4, 36},
        {"out_size no NUL 1x1", 0, 0, 4, 4, 3, 12, 1, 1, 6},
        {"out_size for 4x4, 9x9 asked", 0, 0, 4, 4, 3, 12, 9, 9, 37},
    };

    (void)state;
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        char out[HASH_MAX + 16];

        memset(out, 0x5a, sizeof(out));
        if (r2b_blurhash_encode(cases[c].null_pixels ? NULL : px, cases[c].width, cases[c].height,
                                cases[c].bands, cases[c].stride, cases[c].x_comp, cases[c].y_comp,
                                cases[c].null_out ? NULL : out, cases[c].out_size) != -1)
            fail_msg("%s: accepted", cases[c].name);
        for (size_t i = 0; i < sizeof(out); i++) {
            int want = i == 0 && cases[c].out_size > 0 && !cases[c].null_out ? '\0' : 0x5a;

            if (out[i] != want)
                fail_msg("%s: byte %zu is %d", cases[c].name, i, out[i]);
        }
    }
}

/* Prints the test images for the generator at the top of this file. */
static int dump_images(void)
{
    for (size_t c = 0; c < sizeof(goldens) / sizeof(goldens[0]); c++) {
        const struct image *im = &goldens[c].im;
        unsigned char *px = make_image(im, im->bands, 0);
        size_t n = (size_t)im->width * (size_t)im->height * (size_t)im->bands;

        printf("%s %d %d %d %d %d ", im->name, im->width, im->height, im->bands, im->x_comp,
               im->y_comp);
        for (size_t i = 0; i < n; i++)
            printf("%02x", px[i]);
        printf("\n");
        free(px);
    }
    return 0;
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden),
        cmocka_unit_test(test_solid_by_hand),
        cmocka_unit_test(test_solid_dc_round_trip),
        cmocka_unit_test(test_component_counts),
        cmocka_unit_test(test_layouts),
        cmocka_unit_test(test_bad_arguments),
    };

    if (argc == 2 && strcmp(argv[1], "--dump") == 0)
        return dump_images();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
