/*
 * Blurhash encoder. Mastodon's blurhash gem compiles woltapp's C/encode.c, and
 * clients compare hashes as strings, so this file reproduces that reference
 * bit for bit rather than approximating the algorithm: the same float
 * (single-precision) arithmetic, the same double-precision constants where
 * the reference mixes them in, the same libm calls, and the same order of
 * additions. Only the work is rearranged: cosines and sRGB decoding come from
 * tables, and the image is read once instead of once per component.
 */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "r2bridge/media.h"

/*
 * A fused multiply-add rounds once where the reference rounds twice, which is
 * enough to move a component across a quantisation step. x86-64 without
 * -march never fuses; this keeps other targets and flags honest too.
 */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#define R2B_BLURHASH_MAX_COMP 9
/*
 * x components are processed in blocks of 4: a fixed trip count is what lets
 * the compiler vectorise the inner loop at -O2. Padding lanes have cosine 0
 * and their sums are never read.
 */
#define R2B_BLURHASH_BLOCK 4
#define R2B_BLURHASH_LANES 12
_Static_assert(R2B_BLURHASH_LANES % R2B_BLURHASH_BLOCK == 0 &&
                   R2B_BLURHASH_LANES >= R2B_BLURHASH_MAX_COMP,
               "x components must fit whole blocks");
/* M_PI's value: strict C11 does not declare M_PI */
#define R2B_BLURHASH_PI 3.14159265358979323846

static const char base83[] =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~";

/* The reference's sRGBToLinear(): float v, double thresholds and constants. */
static float srgb_to_linear(int value)
{
    float v = (float)value / 255;

    if (v <= 0.04045)
        return (float)(v / 12.92);
    return powf((float)((v + 0.055) / 1.055), 2.4f);
}

/* The reference's linearTosRGB(): the double expression is truncated, not rounded. */
static int linear_to_srgb(float value)
{
    float v = fmaxf(0, fminf(1, value));

    if (v <= 0.0031308)
        return (int)(v * 12.92 * 255 + 0.5);
    return (int)((1.055 * powf(v, (float)(1 / 2.4)) - 0.055) * 255 + 0.5);
}

static float sign_pow(float value, float exp)
{
    return copysignf(powf(fabsf(value), exp), value);
}

/* `* 9` is float, `+ 9.5` is double, floorf() takes the float back: as the reference. */
static int quantise_ac(float value, float maximum)
{
    return (int)fmaxf(0, fminf(18, floorf((float)(sign_pow(value / maximum, 0.5f) * 9 + 9.5))));
}

static char *encode83(int value, int length, char *dst)
{
    int divisor = 1;

    for (int i = 0; i < length - 1; i++)
        divisor *= 83;
    for (int i = 0; i < length; i++) {
        *dst++ = base83[(value / divisor) % 83];
        divisor /= 83;
    }
    return dst;
}

int r2b_blurhash_encode(const unsigned char *pixels, int width, int height, int bands,
                        size_t row_stride, int x_comp, int y_comp, char *out, size_t out_size)
{
    /* sums for component (i, j) at j * R2B_BLURHASH_LANES + i */
    float acc_r[R2B_BLURHASH_MAX_COMP * R2B_BLURHASH_LANES] = {0};
    float acc_g[R2B_BLURHASH_MAX_COMP * R2B_BLURHASH_LANES] = {0};
    float acc_b[R2B_BLURHASH_MAX_COMP * R2B_BLURHASH_LANES] = {0};
    /* factors in the reference's order, k = j * x_comp + i */
    float fac[R2B_BLURHASH_MAX_COMP * R2B_BLURHASH_MAX_COMP][3];
    float lin[256];
    float *cos_x, *cos_y;
    float scale, maximum;
    int n_comp, x_lanes, max_ac_q;
    char *p;

    if (out != NULL && out_size > 0)
        out[0] = '\0';
    if (pixels == NULL || out == NULL || width <= 0 || height <= 0 || (bands != 3 && bands != 4))
        return -1;
    if (x_comp < 1 || x_comp > R2B_BLURHASH_MAX_COMP || y_comp < 1 ||
        y_comp > R2B_BLURHASH_MAX_COMP)
        return -1;
    /* the reference divides by width * height computed as an int */
    if (width > INT_MAX / height)
        return -1;
    /* width * bands, then the last row's offset, fit in a size_t */
    if ((size_t)width > SIZE_MAX / 4 || row_stride < (size_t)width * (size_t)bands ||
        row_stride > SIZE_MAX / (size_t)height)
        return -1;
    /* the cosine tables below, in floats, without overflowing size_t */
    if ((size_t)width + (size_t)height > SIZE_MAX / sizeof(float) / R2B_BLURHASH_LANES)
        return -1;
    n_comp = x_comp * y_comp;
    /* size flag, maximum, 4 DC digits, 2 per AC component, NUL */
    if (out_size < (size_t)(4 + 2 * n_comp + 1))
        return -1;

    x_lanes = (x_comp + R2B_BLURHASH_BLOCK - 1) / R2B_BLURHASH_BLOCK * R2B_BLURHASH_BLOCK;
    cos_x =
        malloc(((size_t)width * (size_t)x_lanes + (size_t)height * (size_t)y_comp) * sizeof(float));
    if (cos_x == NULL)
        return -1;
    cos_y = cos_x + (size_t)width * (size_t)x_lanes;

    /*
     * cosf(M_PI * i * x / width): the argument is computed in double and
     * rounded to float by the call, exactly as in the reference. Laid out
     * [x][i] so that one pixel's factors are adjacent.
     */
    for (int x = 0; x < width; x++)
        for (int i = 0; i < x_lanes; i++)
            cos_x[(size_t)x * (size_t)x_lanes + (size_t)i] =
                i < x_comp ? cosf((float)(R2B_BLURHASH_PI * i * x / width)) : 0;
    for (int y = 0; y < height; y++)
        for (int j = 0; j < y_comp; j++)
            cos_y[(size_t)y * (size_t)y_comp + (size_t)j] =
                cosf((float)(R2B_BLURHASH_PI * j * y / height));
    /*
     * Rebuilt on each call (256 powf, a few microseconds) rather than cached
     * in a static: the media module runs on several threads at once.
     */
    for (int v = 0; v < 256; v++)
        lin[v] = srgb_to_linear(v);

    /*
     * The reference sums each component over y then x; visiting the pixels
     * in that order and updating every component per pixel keeps each sum's
     * sequence of float additions identical. The products stay separate
     * statements: basis = cos_x * cos_y, then basis * channel.
     */
    for (int y = 0; y < height; y++) {
        const unsigned char *px = pixels + (size_t)y * row_stride;
        const float *cy = cos_y + (size_t)y * (size_t)y_comp;

        for (int x = 0; x < width; x++, px += bands) {
            const float *cx = cos_x + (size_t)x * (size_t)x_lanes;
            float r = lin[px[0]], g = lin[px[1]], b = lin[px[2]];

            for (int j = 0; j < y_comp; j++) {
                float *ar = acc_r + j * R2B_BLURHASH_LANES, *ag = acc_g + j * R2B_BLURHASH_LANES;
                float *ab = acc_b + j * R2B_BLURHASH_LANES;
                float cyj = cy[j];

                for (int i0 = 0; i0 < x_lanes; i0 += R2B_BLURHASH_BLOCK) {
                    for (int i = i0; i < i0 + R2B_BLURHASH_BLOCK; i++) {
                        float basis = cx[i] * cyj;
                        float tr = basis * r, tg = basis * g, tb = basis * b;

                        ar[i] += tr;
                        ag[i] += tg;
                        ab[i] += tb;
                    }
                }
            }
        }
    }
    free(cos_x);

    /* normalisation 1 for the DC term, 2 for the others, over width * height */
    for (int j = 0; j < y_comp; j++) {
        for (int i = 0; i < x_comp; i++) {
            int k = j * x_comp + i, a = j * R2B_BLURHASH_LANES + i;

            scale = (k == 0 ? 1.0f : 2.0f) / (float)(width * height);
            fac[k][0] = acc_r[a] * scale;
            fac[k][1] = acc_g[a] * scale;
            fac[k][2] = acc_b[a] * scale;
        }
    }

    p = encode83((x_comp - 1) + (y_comp - 1) * 9, 1, out);
    if (n_comp > 1) {
        float actual = 0;

        for (int k = 1; k < n_comp; k++)
            for (int c = 0; c < 3; c++)
                actual = fmaxf(fabsf(fac[k][c]), actual);
        /* `* 166` in float, `- 0.5` in double, back to float for floorf() */
        max_ac_q = (int)fmaxf(0, fminf(82, floorf((float)(actual * 166 - 0.5))));
        maximum = ((float)max_ac_q + 1) / 166;
    } else {
        max_ac_q = 0;
        maximum = 1;
    }
    p = encode83(max_ac_q, 1, p);
    p = encode83((linear_to_srgb(fac[0][0]) << 16) + (linear_to_srgb(fac[0][1]) << 8) +
                     linear_to_srgb(fac[0][2]),
                 4, p);
    for (int k = 1; k < n_comp; k++)
        p = encode83(quantise_ac(fac[k][0], maximum) * 19 * 19 +
                         quantise_ac(fac[k][1], maximum) * 19 + quantise_ac(fac[k][2], maximum),
                     2, p);
    *p = '\0';
    return 0;
}
