/* Unit tests for configuration: env vars, Mastodon .env files, redaction. */
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

#include "r2bridge/config.h"

static const char *const all_vars[] = {
    "S3_ENDPOINT",     "S3_BUCKET",         "S3_REGION",          "S3_ALIAS_HOST",
    "R2B_PRIVATE_BUCKET", "R2B_MANIFEST",   "AWS_ACCESS_KEY_ID",  "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN", "S3_OVERRIDE_PATH_STYLE", "S3_MULTIPART_THRESHOLD", "R2B_PART_SIZE",
    "R2B_PARALLEL",    "S3_RETRY_LIMIT",    "S3_OPEN_TIMEOUT",    "S3_READ_TIMEOUT",
    "R2B_PAYLOAD_SHA256",
};

struct fixture {
    char path[256];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    int fd;

    for (size_t i = 0; i < sizeof(all_vars) / sizeof(all_vars[0]); i++)
        unsetenv(all_vars[i]);
    snprintf(f->path, sizeof(f->path), "%s/r2b-config-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    fd = mkstemp(f->path);
    assert_true(fd >= 0);
    close(fd);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    unlink(f->path);
    free(f);
    return 0;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *fp = fopen(path, "w");

    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    chmod(path, mode);
}

static void test_defaults(void **state)
{
    struct r2b_config cfg;
    struct r2b_error err;

    (void)state;
    r2b_config_init(&cfg);
    assert_int_equal(r2b_config_load(&cfg, NULL, &err), R2B_OK);
    assert_string_equal(cfg.region, "auto");
    assert_int_equal(cfg.path_style, 0);
    assert_true(cfg.multipart_threshold_bytes == 15ULL * 1024 * 1024);
    assert_int_equal(cfg.retry_limit, 3);
    assert_int_equal(cfg.connect_timeout_ms, 5000);
    assert_null(cfg.endpoint);
    assert_int_equal(r2b_config_check_s3(&cfg, &err), R2B_ERR_CONFIG);
    assert_string_equal(err.message, "S3_ENDPOINT is not set");
    r2b_config_release(&cfg);
}

static void test_env_file_syntax(void **state)
{
    struct fixture *f = *state;
    struct r2b_config cfg;
    struct r2b_error err;

    write_file(f->path,
               "# Mastodon .env.production\n"
               "\n"
               "LOCAL_DOMAIN=example.social\n"
               "export S3_ENDPOINT=https://acct.r2.cloudflarestorage.com\n"
               "S3_BUCKET = 'media-bucket'   \n"
               "S3_ALIAS_HOST=\"files.example.social\" # comment after a quote\n"
               "S3_REGION=auto # trailing comment\n"
               "AWS_ACCESS_KEY_ID=AKID#not-a-comment\r\n"
               "AWS_SECRET_ACCESS_KEY=\"se\\\"cret with spaces\"\n"
               "S3_OVERRIDE_PATH_STYLE=TRUE\n"
               "S3_MULTIPART_THRESHOLD=20971520\n"
               "R2B_PAYLOAD_SHA256=yes\n"
               "UNKNOWN_THING=whatever\n",
               0600);
    r2b_config_init(&cfg);
    assert_int_equal(r2b_config_load(&cfg, f->path, &err), R2B_OK);
    assert_string_equal(cfg.endpoint, "https://acct.r2.cloudflarestorage.com");
    assert_string_equal(cfg.bucket, "media-bucket");
    assert_string_equal(cfg.alias_host, "files.example.social");
    assert_string_equal(cfg.region, "auto");
    assert_string_equal(cfg.access_key, "AKID#not-a-comment");
    assert_string_equal(cfg.secret_key, "se\"cret with spaces");
    assert_int_equal(cfg.path_style, 1);
    assert_int_equal(cfg.payload_sha256, 1);
    assert_true(cfg.multipart_threshold_bytes == 20971520);
    assert_int_equal(cfg.env_file_insecure, 0);
    assert_int_equal(r2b_config_check_s3(&cfg, &err), R2B_OK);
    r2b_config_release(&cfg);
}

static void test_env_wins_over_file(void **state)
{
    struct fixture *f = *state;
    struct r2b_config cfg;
    struct r2b_error err;

    write_file(f->path, "S3_BUCKET=from-file\nS3_RETRY_LIMIT=7\n", 0600);
    setenv("S3_BUCKET", "from-env", 1);
    r2b_config_init(&cfg);
    assert_int_equal(r2b_config_load(&cfg, f->path, &err), R2B_OK);
    assert_string_equal(cfg.bucket, "from-env");
    assert_int_equal(cfg.retry_limit, 7);
    r2b_config_release(&cfg);
    unsetenv("S3_BUCKET");
}

static void test_insecure_file(void **state)
{
    struct fixture *f = *state;
    struct r2b_config cfg;
    struct r2b_error err;

    write_file(f->path, "AWS_SECRET_ACCESS_KEY=topsecret\n", 0644);
    r2b_config_init(&cfg);
    assert_int_equal(r2b_config_load(&cfg, f->path, &err), R2B_OK);
    assert_int_equal(cfg.env_file_insecure, 1);
    r2b_config_release(&cfg);
    /* world-readable but holding no secret: no warning */
    write_file(f->path, "S3_BUCKET=b\n", 0644);
    r2b_config_init(&cfg);
    assert_int_equal(r2b_config_load(&cfg, f->path, &err), R2B_OK);
    assert_int_equal(cfg.env_file_insecure, 0);
    r2b_config_release(&cfg);
}

static void test_bad_values(void **state)
{
    static const struct {
        const char *text;
        const char *needle; /* the error must name the variable */
    } cases[] = {
        {"S3_OVERRIDE_PATH_STYLE=maybe\n", "S3_OVERRIDE_PATH_STYLE"},
        {"R2B_PAYLOAD_SHA256=perhaps\n", "R2B_PAYLOAD_SHA256"},
        {"S3_RETRY_LIMIT=-1\n", "S3_RETRY_LIMIT"},
        {"S3_RETRY_LIMIT=999\n", "S3_RETRY_LIMIT"},
        {"R2B_PART_SIZE=1024\n", "R2B_PART_SIZE"}, /* below R2's 5 MiB */
        {"S3_OPEN_TIMEOUT=abc\n", "S3_OPEN_TIMEOUT"},
        {"R2B_PARALLEL=0\n", "R2B_PARALLEL"},
        {"S3_BUCKET='unterminated\n", "unterminated"},
        {"JUST A LINE\n", "expected NAME=value"},
    };
    struct fixture *f = *state;
    struct r2b_config cfg;
    struct r2b_error err;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        write_file(f->path, cases[i].text, 0600);
        r2b_config_init(&cfg);
        assert_int_equal(r2b_config_load(&cfg, f->path, &err), R2B_ERR_CONFIG);
        assert_non_null(strstr(err.message, cases[i].needle));
        assert_null(strchr(err.message, '\n'));
        r2b_config_release(&cfg);
    }
}

/* A NUL byte used to end a name or value silently ("S3_BUCKET\0junk=x" set
 * S3_BUCKET, a secret was cut short): the file is refused, naming the line
 * (found by fuzz_config: fuzz/regressions/config/nul-in-value). */
static void test_nul_byte(void **state)
{
    static const char text[] = "S3_BUCKET=ok\nAWS_SECRET_ACCESS_KEY=abc\0def\n";
    struct fixture *f = *state;
    struct r2b_config cfg;
    struct r2b_error err;
    FILE *fp = fopen(f->path, "w");

    assert_non_null(fp);
    assert_int_equal(fwrite(text, 1, sizeof(text) - 1, fp), sizeof(text) - 1);
    fclose(fp);
    chmod(f->path, 0600);
    r2b_config_init(&cfg);
    assert_int_equal(r2b_config_load(&cfg, f->path, &err), R2B_ERR_CONFIG);
    assert_non_null(strstr(err.message, "line 2 has a NUL byte"));
    assert_null(strstr(err.message, "abc"));
    r2b_config_release(&cfg);
}

static void test_missing_file(void **state)
{
    struct r2b_config cfg;
    struct r2b_error err;

    (void)state;
    r2b_config_init(&cfg);
    assert_int_equal(r2b_config_load(&cfg, "/nonexistent/.env.production", &err), R2B_ERR_CONFIG);
    assert_string_equal(err.message,
                        "cannot open env file '/nonexistent/.env.production': No such file or "
                        "directory");
    r2b_config_release(&cfg);
}

static void test_describe_redacts(void **state)
{
    struct r2b_config cfg;
    struct r2b_error err;
    struct r2b_buf out;

    (void)state;
    setenv("AWS_SECRET_ACCESS_KEY", "very-secret-value", 1);
    setenv("AWS_ACCESS_KEY_ID", "AKIDPUBLIC", 1);
    setenv("S3_ENDPOINT", "ftp://nope", 1);
    r2b_config_init(&cfg);
    r2b_buf_init(&out, 65536);
    assert_int_equal(r2b_config_load(&cfg, NULL, &err), R2B_OK);
    assert_int_equal(r2b_config_describe(&cfg, &out), R2B_OK);
    assert_null(strstr(out.ptr, "very-secret-value"));
    assert_non_null(strstr(out.ptr, "AWS_SECRET_ACCESS_KEY=<redacted>\n"));
    assert_non_null(strstr(out.ptr, "AWS_ACCESS_KEY_ID=AKIDPUBLIC\n"));
    assert_non_null(strstr(out.ptr, "AWS_SESSION_TOKEN=<unset>\n"));
    assert_int_equal(r2b_config_check_s3(&cfg, &err), R2B_ERR_CONFIG);
    assert_non_null(strstr(err.message, "http:// or https://"));
    r2b_buf_release(&out);
    r2b_config_release(&cfg);
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("S3_ENDPOINT");
}

/* A PostgreSQL manifest URL may carry a password, in the authority or the query. */
static void test_describe_redacts_manifest_url(void **state)
{
    static const struct {
        const char *url, *shown;
    } cases[] = {
        {"postgresql://r2b:pg-s3cret@db.internal:5432/media?sslmode=require",
         "R2B_MANIFEST=postgresql://r2b:<redacted>@db.internal:5432/media?sslmode=require\n"},
        {"postgresql://r2b@db/media?password=pg-s3cret&sslmode=require",
         "R2B_MANIFEST=postgresql://r2b@db/media?password=<redacted>&sslmode=require\n"},
        {"postgres://u:pg-s3cret@h/d?sslmode=disable&password=pg-s3cret",
         "R2B_MANIFEST=postgres://u:<redacted>@h/d?sslmode=disable&password=<redacted>\n"},
        {"postgresql://h/d?xpassword=visible", "R2B_MANIFEST=postgresql://h/d?xpassword=visible\n"},
        {"sqlite:///var/lib/r2bridge/manifest.db",
         "R2B_MANIFEST=sqlite:///var/lib/r2bridge/manifest.db\n"},
    };
    struct r2b_config cfg;
    struct r2b_error err;
    struct r2b_buf out;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        setenv("R2B_MANIFEST", cases[i].url, 1);
        r2b_config_init(&cfg);
        r2b_buf_init(&out, 65536);
        assert_int_equal(r2b_config_load(&cfg, NULL, &err), R2B_OK);
        assert_int_equal(r2b_config_describe(&cfg, &out), R2B_OK);
        assert_null(strstr(out.ptr, "pg-s3cret"));
        assert_non_null(strstr(out.ptr, cases[i].shown));
        r2b_buf_release(&out);
        r2b_config_release(&cfg);
    }
    unsetenv("R2B_MANIFEST");
}

static void test_parse_bool(void **state)
{
    (void)state;
    assert_int_equal(r2b_config_parse_bool("true"), 1);
    assert_int_equal(r2b_config_parse_bool("Yes"), 1);
    assert_int_equal(r2b_config_parse_bool("1"), 1);
    assert_int_equal(r2b_config_parse_bool("false"), 0);
    assert_int_equal(r2b_config_parse_bool("OFF"), 0);
    assert_int_equal(r2b_config_parse_bool(""), -1);
    assert_int_equal(r2b_config_parse_bool("2"), -1);
    assert_int_equal(r2b_config_parse_bool(NULL), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_file_syntax, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_wins_over_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_insecure_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nul_byte, setup, teardown),
        cmocka_unit_test_setup_teardown(test_describe_redacts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_describe_redacts_manifest_url, setup, teardown),
        cmocka_unit_test(test_parse_bool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
