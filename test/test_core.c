/* Unit tests for the core module: buffers, encodings, time, UTF-8, errors. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "r2bridge/r2bridge.h"

static void test_buf_cap(void **state)
{
    struct r2b_buf b;

    (void)state;
    r2b_buf_init(&b, 10);
    assert_string_equal(r2b_buf_str(&b), "");
    assert_int_equal(r2b_buf_adds(&b, "hello"), R2B_OK);
    assert_int_equal(r2b_buf_addf(&b, "%d%d", 12, 34), R2B_OK);
    assert_string_equal(b.ptr, "hello1234");
    /* 10 bytes is the cap: one more fits, two do not, and a failure changes nothing */
    assert_int_equal(r2b_buf_adds(&b, "xy"), R2B_ERR_LIMIT);
    assert_string_equal(b.ptr, "hello1234");
    assert_int_equal(r2b_buf_addc(&b, 'x'), R2B_OK);
    assert_int_equal(b.len, 10);
    assert_int_equal(r2b_buf_addc(&b, 'y'), R2B_ERR_LIMIT);
    assert_int_equal(r2b_buf_addf(&b, "%s", "z"), R2B_ERR_LIMIT);
    r2b_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(r2b_buf_str(&b), "");
    r2b_buf_release(&b);
    assert_null(b.ptr);
    r2b_buf_release(NULL);
}

static void test_buf_grow_detach(void **state)
{
    struct r2b_buf b;
    char *s;

    (void)state;
    r2b_buf_init(&b, 1 << 20);
    for (int i = 0; i < 10000; i++)
        assert_int_equal(r2b_buf_addc(&b, (char)('a' + i % 26)), R2B_OK);
    assert_int_equal(b.len, 10000);
    assert_int_equal(b.ptr[9999], 'a' + 9999 % 26);
    assert_int_equal(b.ptr[10000], '\0');
    s = r2b_buf_detach(&b);
    assert_int_equal(strlen(s), 10000);
    assert_null(b.ptr);
    free(s);
    s = r2b_buf_detach(&b); /* empty buffer detaches as "" */
    assert_string_equal(s, "");
    free(s);
}

static void test_hex_base64(void **state)
{
    static const struct {
        const char *in;
        const char *b64;
    } cases[] = {
        {"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},         {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
    };
    char out[64];
    unsigned char bin[8];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = r2b_base64_encode((const unsigned char *)cases[i].in, strlen(cases[i].in), out);
        assert_string_equal(out, cases[i].b64);
        assert_int_equal(n, strlen(cases[i].b64));
    }
    r2b_hex_lower((const unsigned char *)"\x00\xff\x10\xab", 4, out);
    assert_string_equal(out, "00ff10ab");
    assert_int_equal(r2b_hex_decode("00FF10ab", bin, sizeof(bin)), 4);
    assert_memory_equal(bin, "\x00\xff\x10\xab", 4);
    assert_int_equal(r2b_hex_decode("0", bin, sizeof(bin)), -1);
    assert_int_equal(r2b_hex_decode("zz", bin, sizeof(bin)), -1);
    assert_int_equal(r2b_hex_decode("000000000000000000", bin, sizeof(bin)), -1);
}

static void test_time_amz(void **state)
{
    static const struct {
        int64_t t;
        const char *amz;
    } cases[] = {
        {0, "19700101T000000Z"},
        {1369353600, "20130524T000000Z"},
        {1709164800, "20240229T000000Z"}, /* leap day */
        {4107542399, "21000228T235959Z"}, /* 2100 is not a leap year */
        {4107542400, "21000301T000000Z"},
        {1795685863, "20261126T093743Z"},
        /* outside four-digit years: clamped (INT64_MIN overflowed, found by fuzz_sigv4) */
        {R2B_TIME_MAX, "99991231T235959Z"},
        {R2B_TIME_MAX + 1, "99991231T235959Z"},
        {INT64_MAX, "99991231T235959Z"},
        {-1, "19700101T000000Z"},
        {INT64_MIN, "19700101T000000Z"},
    };
    char out[17];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        r2b_time_amz(cases[i].t, out);
        assert_string_equal(out, cases[i].amz);
    }
}

static void test_time_parse(void **state)
{
    (void)state;
    assert_int_equal(r2b_time_parse("Fri, 24 May 2013 00:00:00 GMT"), 1369353600);
    assert_int_equal(r2b_time_parse("2013-05-24T00:00:00.000Z"), 1369353600);
    assert_int_equal(r2b_time_parse("2024-02-29T00:00:00Z"), 1709164800);
    assert_int_equal(r2b_time_parse("Thu, 26 Nov 2026 09:37:43 GMT"), 1795685863);
    assert_int_equal(r2b_time_parse(""), -1);
    assert_int_equal(r2b_time_parse("yesterday"), -1);
    assert_int_equal(r2b_time_parse("2013-13-24T00:00:00Z"), -1);
    assert_int_equal(r2b_time_parse("Fri, 24 Foo 2013 00:00:00 GMT"), -1);
    assert_int_equal(r2b_time_parse(NULL), -1);
}

static void test_utf8(void **state)
{
    static const struct {
        const char *s;
        int valid;
    } cases[] = {
        {"plain ascii", 1},
        {"caf\xc3\xa9", 1},
        {"\xe2\x82\xac", 1},          /* euro sign */
        {"\xf0\x9f\x98\x80", 1},      /* emoji */
        {"\xc3", 0},                  /* truncated */
        {"\xc0\xaf", 0},              /* overlong '/' */
        {"\xe0\x80\xaf", 0},          /* overlong */
        {"\xed\xa0\x80", 0},          /* surrogate */
        {"\xf4\x90\x80\x80", 0},      /* above U+10FFFF */
        {"\xff", 0},
        {"a\x80", 0},                 /* stray continuation */
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_int_equal(r2b_utf8_valid(cases[i].s, strlen(cases[i].s)), cases[i].valid);
}

static void test_parse_u64(void **state)
{
    uint64_t v = 7;

    (void)state;
    assert_int_equal(r2b_parse_u64("0", 10, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(r2b_parse_u64("604800", 604800, &v), 0);
    assert_int_equal(v, 604800);
    assert_int_equal(r2b_parse_u64("604801", 604800, &v), -1);
    assert_int_equal(r2b_parse_u64("18446744073709551615", UINT64_MAX, &v), 0);
    assert_true(v == UINT64_MAX);
    assert_int_equal(r2b_parse_u64("18446744073709551616", UINT64_MAX, &v), -1);
    assert_int_equal(r2b_parse_u64("", 10, &v), -1);
    assert_int_equal(r2b_parse_u64("-1", 10, &v), -1);
    assert_int_equal(r2b_parse_u64("1e3", 10000, &v), -1);
    assert_int_equal(r2b_parse_u64(" 1", 10, &v), -1);
    assert_int_equal(r2b_parse_u64(NULL, 10, &v), -1);
}

static void test_error(void **state)
{
    struct r2b_error err;
    char longstr[2000];

    (void)state;
    assert_int_equal(r2b_error_set(&err, R2B_ERR_IO, "cannot open '%s': %s", "x.jpg", "denied"),
                     R2B_ERR_IO);
    assert_string_equal(err.message, "cannot open 'x.jpg': denied");
    assert_int_equal(err.code, R2B_ERR_IO);
    /* one line, whatever the outside world put in it */
    r2b_error_set(&err, R2B_ERR_HTTP, "server said: %s", "line1\nline2\r\n");
    assert_null(strchr(err.message, '\n'));
    assert_null(strchr(err.message, '\r'));
    /* and printable: a key or server text with ESC sequences does not reach
     * the terminal (found by fuzz_key: regressions/key/key-error-escape) */
    r2b_error_set(&err, R2B_ERR_INVALID, "bad key '%s'", "\x1b[31mred/\x7f\tx");
    assert_string_equal(err.message, "bad key '?[31mred/? x'");
    memset(longstr, 'a', sizeof(longstr) - 1);
    longstr[sizeof(longstr) - 1] = '\0';
    r2b_error_set(&err, R2B_ERR_HTTP, "%s", longstr);
    assert_int_equal(strlen(err.message), sizeof(err.message) - 1);
    assert_int_equal(r2b_error_set(NULL, R2B_ERR_LIMIT, "ignored"), R2B_ERR_LIMIT);
    r2b_error_clear(&err);
    assert_int_equal(err.code, R2B_OK);
    assert_string_equal(err.message, "");
    for (int c = 0; c < R2B__STATUS_COUNT; c++)
        assert_string_not_equal(r2b_strerror((enum r2b_status)c), "unknown error");
    assert_string_equal(r2b_strerror((enum r2b_status)999), "unknown error");
}

/* A failed system call: strerror appended, errno kept, a full disk retryable. */
static void test_error_errno(void **state)
{
    struct r2b_error err;
    char want[600];

    (void)state;
    assert_int_equal(r2b_error_set_errno(&err, R2B_ERR_IO, ENOSPC, "cannot write '%s'", "a\nb"),
                     R2B_ERR_IO);
    snprintf(want, sizeof(want), "cannot write 'a b': %s", strerror(ENOSPC));
    assert_string_equal(err.message, want);
    assert_int_equal(err.sys_errno, ENOSPC);
    assert_int_equal(err.retryable, 1);
    r2b_error_set_errno(&err, R2B_ERR_IO, EDQUOT, "x");
    assert_int_equal(err.retryable, 1);
    r2b_error_set_errno(&err, R2B_ERR_IO, EFBIG, "x");
    assert_int_equal(err.retryable, 1);
    /* not a lack of room: retrying will not help */
    r2b_error_set_errno(&err, R2B_ERR_IO, EACCES, "cannot open '%s'", "f");
    assert_int_equal(err.retryable, 0);
    assert_int_equal(err.sys_errno, EACCES);
    /* the plain setter resets both */
    r2b_error_set(&err, R2B_ERR_IO, "plain");
    assert_int_equal(err.sys_errno, 0);
    assert_int_equal(err.retryable, 0);
    assert_int_equal(r2b_error_set_errno(NULL, R2B_ERR_IO, ENOSPC, "ignored"), R2B_ERR_IO);
    assert_int_equal(r2b_errno_is_disk_full(ENOSPC), 1);
    assert_int_equal(r2b_errno_is_disk_full(EIO), 0);
}

/* write_all: whole buffers; a short write past a file size limit reports EFBIG. */
static void test_write_all(void **state)
{
    char path[] = "/tmp/r2b-test-core-XXXXXX", big[3000];
    struct rlimit old, lim;
    struct stat sb;
    int fd = mkstemp(path);

    (void)state;
    assert_true(fd >= 0);
    memset(big, 'x', sizeof(big));
    assert_int_equal(r2b_write_all(fd, big, sizeof(big)), 0);
    assert_int_equal(fstat(fd, &sb), 0);
    assert_int_equal(sb.st_size, sizeof(big));
    assert_int_equal(ftruncate(fd, 0), 0);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    /* 1000 bytes fit, then the limit: a short write, then EFBIG */
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = 1000;
    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    errno = 0;
    assert_int_equal(r2b_write_all(fd, big, sizeof(big)), -1);
    assert_int_equal(errno, EFBIG);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_DFL);
    assert_int_equal(fstat(fd, &sb), 0);
    assert_int_equal(sb.st_size, 1000);
    assert_int_equal(r2b_write_all(fd, big, 0), 0);
    close(fd);
    assert_int_equal(r2b_write_all(fd, big, 1), -1); /* a closed descriptor */
    assert_int_equal(errno, EBADF);
    unlink(path);
}

static void test_strlcpy(void **state)
{
    char small[4];

    (void)state;
    assert_int_equal(r2b_strlcpy(small, "abcdef", sizeof(small)), 6);
    assert_string_equal(small, "abc");
    assert_int_equal(r2b_strlcpy(small, "ab", sizeof(small)), 2);
    assert_string_equal(small, "ab");
    assert_null(r2b_strdup(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_cap),    cmocka_unit_test(test_buf_grow_detach),
        cmocka_unit_test(test_hex_base64), cmocka_unit_test(test_time_amz),
        cmocka_unit_test(test_time_parse), cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_parse_u64),  cmocka_unit_test(test_error),
        cmocka_unit_test(test_strlcpy),    cmocka_unit_test(test_error_errno),
        cmocka_unit_test(test_write_all),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
