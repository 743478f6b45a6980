/*
 * Fuzz target: the S3 XML response readers (src/s3/s3_xml.c) on whatever a
 * hostile or broken server could answer. Every reader sees every input (each
 * checks the root element itself). Invariants: outputs are NUL-terminated
 * within their buffers, error codes and messages are one printable line,
 * numbers are within their limits, ETags carry no quotes.
 */
#include "fuzz_common.h"

#include "s3/s3_int.h"

static int list_cb(void *ud, const struct r2b_s3_object *obj)
{
    unsigned *n = ud;

    FZ_CHECK(memchr(obj->key, '\0', sizeof(obj->key)) != NULL);
    FZ_CHECK(strlen(obj->key) <= R2B_S3_MAX_KEY_BYTES);
    FZ_CHECK(memchr(obj->etag, '\0', sizeof(obj->etag)) != NULL);
    FZ_CHECK(obj->etag[0] != '"');
    return ++*n >= 5000; /* stop early sometimes: the "cb stopped" path */
}

static void parts_cb(void *ud, unsigned n, const char *etag, uint64_t size)
{
    unsigned *count = ud;

    (void)size;
    FZ_CHECK(n <= R2B_S3_MAX_PARTS);
    FZ_CHECK(strlen(etag) < 80);
    ++*count;
}

static void check_line(const char *s, size_t size)
{
    FZ_CHECK(memchr(s, '\0', size) != NULL);
    for (const char *p = s; *p; p++)
        FZ_CHECK(*p != '\n' && *p != '\r');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* small output buffers on purpose: truncation is a path too */
    char code[24], msg[40], key[32], etag[80];
    const char *xml = (const char *)data;
    struct s3_list_page page;
    unsigned n = 0, parts = 0, marker = 0;
    int truncated = 0, rc;
    char *id;

    if (r2b_s3__xml_error(xml, size, code, sizeof(code), msg, sizeof(msg))) {
        check_line(code, sizeof(code));
        check_line(msg, sizeof(msg));
        for (const char *p = code; *p; p++)
            FZ_CHECK(*p >= 32 && *p <= 126);
        for (const char *p = msg; *p; p++)
            FZ_CHECK((unsigned char)*p >= 32 && *p != 127);
    }
    id = r2b_s3__xml_upload_id(xml, size);
    FZ_CHECK(id == NULL || *id != '\0');
    free(id);
    if (r2b_s3__xml_result_etag(xml, size, "CompleteMultipartUploadResult", etag) == 0)
        FZ_CHECK(etag[0] != '\0' && strlen(etag) < 80);
    r2b_s3__xml_result_etag(xml, size, "CopyObjectResult", etag);
    FZ_CHECK(memchr(etag, '\0', sizeof(etag)) != NULL);
    rc = r2b_s3__xml_delete_errors(xml, size, code, sizeof(code), msg, sizeof(msg), key,
                                   sizeof(key));
    FZ_CHECK(rc >= -1);
    check_line(code, sizeof(code));
    check_line(msg, sizeof(msg));
    check_line(key, sizeof(key));
    for (const char *p = code; *p; p++)
        FZ_CHECK(*p >= 32 && *p <= 126);
    for (const char *p = msg; *p; p++)
        FZ_CHECK((unsigned char)*p >= 32 && *p != 127);
    rc = r2b_s3__xml_parts(xml, size, parts_cb, &parts, &truncated, &marker);
    FZ_CHECK(rc == 0 || rc == -1);
    FZ_CHECK(marker <= R2B_S3_MAX_PARTS);
    rc = r2b_s3__xml_list(xml, size, &page, list_cb, &n);
    FZ_CHECK(rc >= -1 && rc <= 1);
    FZ_CHECK(page.n_objects >= n || rc != 0);
    free(page.next_token);
    /* the ETag header reader, on the raw bytes */
    r2b_s3__etag_copy(etag, xml, size < 200 ? size : 200);
    FZ_CHECK(memchr(etag, '\0', sizeof(etag)) != NULL);
    return 0;
}
