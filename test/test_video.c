/*
 * Unit tests for the video/audio contract of r2b_media_process() through
 * the library, on WAV files written here (no tool needed): the meta fields,
 * the MP3 style, rejections with their names, temp files never left behind,
 * the defaults of the new options. Real recordings (ffmpeg-made) are in
 * test/video.sh.
 */
#include <dirent.h>
#include <math.h>
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

#define TWO_PI 6.283185307179586

static char dir[4096];

static int setup_dir(void **state)
{
    const char *base = getenv("R2B_TEST_TMP");

    (void)state;
    snprintf(dir, sizeof(dir), "%s/r2b-test-video-XXXXXX", base && *base ? base : "/tmp");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown_dir(void **state)
{
    char cmd[4200];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* entries in `d` other than . and .. */
static int entries(const char *d)
{
    DIR *h = opendir(d);
    struct dirent *e;
    int n = 0;

    if (h == NULL)
        return -1;
    while ((e = readdir(h)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(h);
    return n;
}

static void put_le(FILE *f, uint32_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        fputc((int)((v >> (8 * i)) & 0xff), f);
}

/* A PCM WAV whose header declares `declared_s` seconds and which holds `held_s`. */
static void write_wav(const char *path, int rate, int channels, double declared_s, double held_s)
{
    FILE *f = fopen(path, "wb");
    uint32_t declared = (uint32_t)(declared_s * rate) * 2u * (uint32_t)channels;
    int n = (int)(held_s * rate);

    assert_non_null(f);
    fputs("RIFF", f);
    put_le(f, 36 + declared, 4);
    fputs("WAVEfmt ", f);
    put_le(f, 16, 4);
    put_le(f, 1, 2);
    put_le(f, (uint32_t)channels, 2);
    put_le(f, (uint32_t)rate, 4);
    put_le(f, (uint32_t)(rate * 2 * channels), 4);
    put_le(f, (uint32_t)(2 * channels), 2);
    put_le(f, 16, 2);
    fputs("data", f);
    put_le(f, declared, 4);
    for (int i = 0; i < n; i++)
        for (int c = 0; c < channels; c++)
            put_le(f, (uint32_t)(uint16_t)(int16_t)(8000 * sin(TWO_PI * 440 * i / rate)), 2);
    assert_int_equal(fclose(f), 0);
}

static void test_defaults_and_names(void **state)
{
    struct r2b_media_options o;

    (void)state;
    r2b_media_options_init(&o);
    assert_int_equal(o.video_max_pixels, 8294400);
    assert_int_equal(o.video_max_fps, 120);
    assert_int_equal(o.video_max_frames, 36000);
    assert_int_equal(o.video_timeout_ms, 600000);
    assert_int_equal(o.gifv, 0);
    assert_string_equal(r2b_media_reject_name(R2B_REJECT_FRAME_RATE), "frame_rate_too_high");
    assert_string_equal(r2b_media_reject_name(R2B_REJECT_TOO_LONG), "too_many_frames");
    assert_string_equal(r2b_media_reject_name(R2B_REJECT_TIMEOUT), "timeout");
    assert_string_equal(r2b_media_reject_name((enum r2b_media_reject)99), "unknown");
}

static void test_wav_to_mp3(void **state)
{
    static const struct {
        int rate, channels;
        double seconds;
    } cases[] = {{8000, 1, 1.0}, {44100, 2, 0.5}, {96000, 1, 0.25}};
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char in[4300], tmp[4300];
        struct r2b_media_options o;
        struct r2b_media_result r;
        struct r2b_error err;
        struct stat sb;

        snprintf(in, sizeof(in), "%s/in-%zu.wav", dir, i);
        snprintf(tmp, sizeof(tmp), "%s/tmp-%zu", dir, i);
        assert_int_equal(mkdir(tmp, 0700), 0);
        write_wav(in, cases[i].rate, cases[i].channels, cases[i].seconds, cases[i].seconds);
        r2b_media_options_init(&o);
        o.tmp_dir = tmp;
        r2b_error_clear(&err);
        assert_int_equal(r2b_media_process(in, &o, &r, &err), R2B_OK);
        assert_string_equal(r.type, "audio/wav");
        assert_int_equal(r.kind, R2B_MEDIA_AUDIO);
        assert_int_equal(r.transcoded, 1);
        assert_int_equal(r.n_styles, 1);
        assert_string_equal(r.styles[0].name, "original");
        assert_string_equal(r.styles[0].content_type, "audio/mpeg");
        assert_string_equal(r.styles[0].ext, "mp3");
        assert_int_equal(stat(r.styles[0].path, &sb), 0);
        assert_int_equal((uint64_t)sb.st_size, r.styles[0].size_bytes);
        assert_int_equal(strlen(r.styles[0].sha256), 64);
        assert_string_equal(r.audio_codec, "mp3");
        assert_string_equal(r.source_codecs, "pcm_s16le");
        assert_int_equal(r.audio_channels, cases[i].channels);
        assert_true(r.audio_sample_rate > 0);
        assert_true(fabs(r.duration_s - cases[i].seconds) < 0.1);
        assert_true(r.bitrate > 0);
        assert_string_equal(r.frame_rate, "");
        assert_string_equal(r.blurhash, "");
        r2b_media_result_release(&r);
        assert_int_equal(entries(tmp), 0); /* the style and its directory are gone */
    }
}

/* whether a file whose path contains `name` is mapped into this process */
static int mapped(const char *name)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[4600];
    int found = 0;

    assert_non_null(f);
    while (!found && fgets(line, sizeof(line), f))
        found = strstr(line, name) != NULL;
    fclose(f);
    return found;
}

/*
 * FFmpeg lives in the module r2bridge-av.so, opened on the first video or
 * audio file: before it nothing of it is mapped; a module that cannot be
 * used is a configuration error with a way out, and leaves nothing behind.
 * Runs first: the module stays loaded for the rest of the process.
 */
static void test_module_on_demand(void **state)
{
    char in[4300], tmp[4300], bogus[4300];
    struct r2b_media_options o;
    struct r2b_media_result r;
    struct r2b_error err;
    FILE *f;

    (void)state;
    assert_int_equal(r2b_media_global_init(&err), R2B_OK);
    assert_false(mapped("libavcodec"));
    assert_false(mapped("r2bridge-av"));
    snprintf(tmp, sizeof(tmp), "%s/tmp-mod", dir);
    assert_int_equal(mkdir(tmp, 0700), 0);
    snprintf(in, sizeof(in), "%s/a.wav", dir);
    write_wav(in, 8000, 1, 0.25, 0.25);
    r2b_media_options_init(&o);
    o.tmp_dir = tmp;

    /* not a module, then no file at all: R2B_ERR_CONFIG naming the way out */
    snprintf(bogus, sizeof(bogus), "%s/r2bridge-av.so", dir);
    assert_non_null(f = fopen(bogus, "w"));
    fputs("not an ELF file\n", f);
    fclose(f);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(setenv("R2B_AV_MODULE", bogus, 1), 0);
        r2b_error_clear(&err);
        assert_int_equal(r2b_media_process(in, &o, &r, &err), R2B_ERR_CONFIG);
        assert_int_equal(err.code, R2B_ERR_CONFIG);
        assert_non_null(strstr(err.message, "R2B_AV_MODULE"));
        assert_non_null(strstr(err.message, bogus));
        assert_int_equal(r.n_styles, 0);
        assert_int_equal(entries(tmp), 0);
        assert_false(mapped("libavcodec"));
        unlink(bogus);
    }
    /* found where the build put it: loaded, and FFmpeg with it */
    assert_int_equal(unsetenv("R2B_AV_MODULE"), 0);
    r2b_error_clear(&err);
    assert_int_equal(r2b_media_process(in, &o, &r, &err), R2B_OK);
    assert_string_equal(r.styles[0].content_type, "audio/mpeg");
    assert_true(mapped("r2bridge-av.so"));
    assert_true(mapped("libavcodec"));
    r2b_media_result_release(&r);
    assert_int_equal(entries(tmp), 0);
}

static void test_rejections_leave_nothing(void **state)
{
    char in[4300], tmp[4300];
    struct r2b_media_options o;
    struct r2b_media_result r;
    struct r2b_error err;

    (void)state;
    snprintf(tmp, sizeof(tmp), "%s/tmp-rej", dir);
    assert_int_equal(mkdir(tmp, 0700), 0);
    r2b_media_options_init(&o);
    o.tmp_dir = tmp;

    /* a WAV whose data chunk ends at half what its header declares */
    snprintf(in, sizeof(in), "%s/truncated.wav", dir);
    write_wav(in, 8000, 1, 2.0, 1.0);
    r2b_error_clear(&err);
    assert_int_equal(r2b_media_process(in, &o, &r, &err), R2B_ERR_REJECTED);
    assert_int_equal(r.reject, R2B_REJECT_CORRUPT);
    assert_int_equal(err.code, R2B_ERR_REJECTED);
    assert_non_null(strstr(r.reject_reason, "audio/wav"));
    assert_null(strchr(r.reject_reason, '\n'));
    assert_int_equal(r.n_styles, 0);
    r2b_media_result_release(&r);
    assert_int_equal(entries(tmp), 0);

    /* a WAV header with no sample at all */
    snprintf(in, sizeof(in), "%s/empty-data.wav", dir);
    write_wav(in, 8000, 1, 0.0, 0.0);
    r2b_error_clear(&err);
    assert_int_equal(r2b_media_process(in, &o, &r, &err), R2B_ERR_REJECTED);
    assert_int_equal(r.reject, R2B_REJECT_CORRUPT);
    r2b_media_result_release(&r);
    assert_int_equal(entries(tmp), 0);
}

int main(void)
{
    struct r2b_error err;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_module_on_demand, setup_dir, teardown_dir),
        cmocka_unit_test(test_defaults_and_names),
        cmocka_unit_test_setup_teardown(test_wav_to_mp3, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_rejections_leave_nothing, setup_dir, teardown_dir),
    };

    if (r2b_media_global_init(&err) != R2B_OK) {
        fprintf(stderr, "media init: %s\n", err.message);
        return 1;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
