/*
 * Fuzz target: media sniff + validate + transcode on a byte buffer, through
 * r2b_media_process() (the input is written to a file in a private temp
 * directory: the pipeline takes a path), plus the GIF and WebP metadata
 * strippers and the WebP header reader on the same bytes.
 * Limits are lowered (pixels, memory) so one input stays fast; the rules
 * exercised are the same. Invariants: a result is accepted (styles written,
 * non-empty, within the pixel limits) or rejected with a named reason and
 * a one-line message, or a local error; after release (and after any
 * failure) nothing is left in the temp directory; the strippers' output
 * is never larger than their input.
 */
#include "fuzz_common.h"

#include <dirent.h>
#include <fcntl.h>
#include <glib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "media/media_int.h"

static char in_path[4096], out_dir[4096], top_dir[3900];

static void remove_temp(void)
{
    unlink(in_path);
    rmdir(out_dir);
    rmdir(top_dir);
}
static struct r2b_media_options opts;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *tmp = getenv("TMPDIR");
    struct r2b_error err;

    (void)argc;
    (void)argv;
    /* one core, no operation cache: what a fuzzer run can afford */
    setenv("VIPS_CONCURRENCY", "1", 1);
    /*
     * libvips' workers come from a GLib thread pool whose idle threads exit;
     * a thread exiting while libFuzzer's per-input leak check runs made its
     * GSlice cache (g_private_set_alloc0, freed at thread exit) look leaked
     * once in ~60,000 inputs. Idle workers are kept instead: nothing exits.
     */
    g_thread_pool_set_max_unused_threads(-1);
    g_thread_pool_set_max_idle_time(0);
    snprintf(top_dir, sizeof(top_dir), "%s/r2b-fuzz-media-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(top_dir) == NULL)
        abort();
    snprintf(in_path, sizeof(in_path), "%s/upload", top_dir);
    snprintf(out_dir, sizeof(out_dir), "%s/out", top_dir);
    if (mkdir(out_dir, 0700) != 0)
        abort();
    atexit(remove_temp);
    if (r2b_media_global_init(&err) != R2B_OK) {
        fprintf(stderr, "media init: %s\n", err.message);
        abort();
    }
    r2b_media_options_init(&opts);
    opts.tmp_dir = out_dir;
    opts.image_max_pixels = 4000000;
    opts.gif_max_pixels = 1000000;
    opts.original_max_pixels = 1000000;
    opts.small_max_pixels = 40000;
    opts.memory_max_bytes = 64ULL * 1024 * 1024;
    return 0;
}

static void write_input(const uint8_t *data, size_t size)
{
    int fd = open(in_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

    if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size) || close(fd) != 0)
        abort();
}

static int dir_is_empty(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    int empty = 1;

    if (d == NULL)
        abort();
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            empty = 0;
    closedir(d);
    return empty;
}

static void check_strippers(const uint8_t *data, size_t size)
{
    struct r2b_buf out;
    size_t dropped = 0;
    int w = 0, h = 0;

    r2b_buf_init(&out, size + 64);
    if (r2b_media__gif_strip(data, size, &out, &dropped) == 0)
        FZ_CHECK(out.len + dropped == size && out.len <= size);
    r2b_buf_release(&out);
    r2b_buf_init(&out, size + 64);
    if (r2b_media__webp_strip(data, size, &out, &dropped) == 0) {
        FZ_CHECK(out.len <= size);
        /* stripping twice changes nothing more */
        struct r2b_buf again;
        size_t d2 = 0;

        r2b_buf_init(&again, out.len + 64);
        FZ_CHECK(r2b_media__webp_strip((const unsigned char *)out.ptr, out.len, &again, &d2) == 0);
        FZ_CHECK(again.len == out.len && d2 == 0 && memcmp(again.ptr, out.ptr, out.len) == 0);
        r2b_buf_release(&again);
    }
    r2b_buf_release(&out);
    if (r2b_media__webp_dimensions(data, size, &w, &h) == 0)
        FZ_CHECK(w >= 1 && h >= 1 && w <= 16777216 && h <= 16777216);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct r2b_media_result r;
    struct r2b_error err;
    enum r2b_status st;

    check_strippers(data, size);
    write_input(data, size);
    r2b_error_clear(&err);
    st = r2b_media_process(in_path, &opts, &r, &err);
    if (st == R2B_OK) {
        FZ_CHECK(r.reject == R2B_REJECT_NONE && r.n_styles >= 1 && r.n_styles <= 2);
        for (int i = 0; i < r.n_styles; i++) {
            struct stat sb;

            FZ_CHECK(r.styles[i].path && stat(r.styles[i].path, &sb) == 0);
            FZ_CHECK((uint64_t)sb.st_size == r.styles[i].size_bytes && sb.st_size > 0);
            FZ_CHECK(strlen(r.styles[i].sha256) == 64);
            if (r.transcoded && strncmp(r.styles[i].content_type, "audio/", 6) != 0) {
                uint64_t limit = i == 1                      ? opts.small_max_pixels
                                 : r.animated                ? opts.gif_max_pixels
                                 : r.kind == R2B_MEDIA_VIDEO ? opts.video_max_pixels
                                                             : opts.original_max_pixels;

                FZ_CHECK(r.styles[i].width >= 1 && r.styles[i].height >= 1);
                FZ_CHECK((uint64_t)r.styles[i].width * (uint64_t)r.styles[i].height <= limit);
            }
        }
        FZ_CHECK(r.kind != R2B_MEDIA_NONE);
    } else if (st == R2B_ERR_REJECTED) {
        FZ_CHECK(r.reject != R2B_REJECT_NONE && r.reject_reason[0] != '\0');
        FZ_CHECK(r.n_styles == 0);
        FZ_CHECK(strchr(err.message, '\n') == NULL);
    } else {
        FZ_CHECK(err.code == st && err.message[0] != '\0');
        FZ_CHECK(r.n_styles == 0);
    }
    r2b_media_result_release(&r);
    FZ_CHECK(dir_is_empty(out_dir)); /* nothing left behind, on any path */
    return 0;
}
