/*
 * S3 XML responses read with libxml2: errors, multipart results, listings.
 * Parsed with no network access and no entity substitution (a hostile or
 * broken server must not make us fetch or expand anything), and matched by
 * local name so the S3 namespace (or its absence, as some servers do) does
 * not matter.
 */
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "s3_int.h"

#define XML_OPTS (XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA)

static xmlDocPtr parse(const char *xml, size_t len)
{
    if (xml == NULL || len == 0 || len > R2B_S3_MAX_XML_BYTES)
        return NULL;
    return xmlReadMemory(xml, (int)len, "s3-response.xml", NULL, XML_OPTS);
}

static int is_named(xmlNodePtr n, const char *name)
{
    return n && n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0;
}

static xmlNodePtr child(xmlNodePtr parent, const char *name)
{
    for (xmlNodePtr n = parent ? parent->children : NULL; n; n = n->next)
        if (is_named(n, name))
            return n;
    return NULL;
}

/* Copies the text of `parent`'s child `name` into out; 0 if present, -1 if not. */
static int child_text(xmlNodePtr parent, const char *name, char *out, size_t size)
{
    xmlNodePtr n = child(parent, name);
    xmlChar *t;

    if (size)
        out[0] = '\0';
    if (n == NULL)
        return -1;
    t = xmlNodeGetContent(n);
    if (t == NULL)
        return -1;
    r2b_strlcpy(out, (const char *)t, size);
    xmlFree(t);
    return 0;
}

static char *child_text_dup(xmlNodePtr parent, const char *name)
{
    xmlNodePtr n = child(parent, name);
    xmlChar *t;
    char *r;

    if (n == NULL || (t = xmlNodeGetContent(n)) == NULL)
        return NULL;
    r = r2b_strdup((const char *)t);
    xmlFree(t);
    return r;
}

/* Server text ends up in one-line error messages: no control characters in a
 * message, printable ASCII only in a code. */
static void clean_text(char *code, char *msg)
{
    for (char *p = msg; p && *p; p++)
        if ((unsigned char)*p < 32 || (unsigned char)*p == 127)
            *p = ' ';
    for (char *p = code; p && *p; p++)
        if ((unsigned char)*p < 32 || (unsigned char)*p > 126)
            *p = '?';
}

int r2b_s3__xml_error(const char *xml, size_t len, char *code, size_t code_size, char *msg,
                      size_t msg_size)
{
    xmlDocPtr doc = parse(xml, len);
    xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL;
    int is_error = is_named(root, "Error");

    if (code_size)
        code[0] = '\0';
    if (msg_size)
        msg[0] = '\0';
    if (is_error) {
        child_text(root, "Code", code, code_size);
        child_text(root, "Message", msg, msg_size);
        clean_text(code, msg);
    }
    xmlFreeDoc(doc);
    return is_error;
}

char *r2b_s3__xml_upload_id(const char *xml, size_t len)
{
    xmlDocPtr doc = parse(xml, len);
    xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL;
    char *id = NULL;

    if (is_named(root, "InitiateMultipartUploadResult"))
        id = child_text_dup(root, "UploadId");
    if (id && *id == '\0') {
        free(id);
        id = NULL;
    }
    xmlFreeDoc(doc);
    return id;
}

int r2b_s3__xml_result_etag(const char *xml, size_t len, const char *root_name, char etag[80])
{
    xmlDocPtr doc = parse(xml, len);
    xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL;
    char raw[128];
    int rc = -1;

    etag[0] = '\0';
    if (is_named(root, root_name) && child_text(root, "ETag", raw, sizeof(raw)) == 0) {
        r2b_s3__etag_copy(etag, raw, strlen(raw));
        rc = etag[0] ? 0 : -1;
    }
    xmlFreeDoc(doc);
    return rc;
}

int r2b_s3__xml_list(const char *xml, size_t len, struct s3_list_page *page, r2b_s3_list_cb cb,
                     void *ud)
{
    xmlDocPtr doc = parse(xml, len);
    xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL;
    struct r2b_s3_object obj;
    char buf[64];
    int rc = 0;

    memset(page, 0, sizeof(*page));
    if (!is_named(root, "ListBucketResult")) {
        xmlFreeDoc(doc);
        return -1;
    }
    if (child_text(root, "IsTruncated", buf, sizeof(buf)) == 0)
        page->truncated = strcmp(buf, "true") == 0;
    page->next_token = child_text_dup(root, "NextContinuationToken");
    for (xmlNodePtr n = root->children; n && rc == 0; n = n->next) {
        uint64_t size = 0;
        xmlChar *key;

        if (!is_named(n, "Contents"))
            continue;
        memset(&obj, 0, sizeof(obj));
        key = xmlNodeGetContent(child(n, "Key"));
        if (key == NULL || strlen((const char *)key) > R2B_S3_MAX_KEY_BYTES) {
            xmlFree(key);
            rc = -1;
            break;
        }
        r2b_strlcpy(obj.key, (const char *)key, sizeof(obj.key));
        xmlFree(key);
        if (child_text(n, "Size", buf, sizeof(buf)) != 0 ||
            r2b_parse_u64(buf, UINT64_MAX, &size) != 0) {
            rc = -1;
            break;
        }
        obj.size_bytes = size;
        if (child_text(n, "ETag", buf, sizeof(buf)) == 0)
            r2b_s3__etag_copy(obj.etag, buf, strlen(buf));
        obj.last_modified =
            child_text(n, "LastModified", buf, sizeof(buf)) == 0 ? r2b_time_parse(buf) : -1;
        page->n_objects++;
        if (cb && cb(ud, &obj) != 0)
            rc = 1;
    }
    xmlFreeDoc(doc);
    return rc;
}

int r2b_s3__xml_delete_errors(const char *xml, size_t len, char *code, size_t code_size, char *msg,
                              size_t msg_size, char *key, size_t key_size)
{
    xmlDocPtr doc = parse(xml, len);
    xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL;
    int n = 0;

    if (code_size)
        code[0] = '\0';
    if (msg_size)
        msg[0] = '\0';
    if (key_size)
        key[0] = '\0';
    if (!is_named(root, "DeleteResult")) {
        xmlFreeDoc(doc);
        return -1;
    }
    for (xmlNodePtr e = root->children; e; e = e->next) {
        if (!is_named(e, "Error"))
            continue;
        if (n++ == 0) {
            child_text(e, "Code", code, code_size);
            child_text(e, "Message", msg, msg_size);
            child_text(e, "Key", key, key_size);
            clean_text(code, msg);
            clean_text(NULL, key);
        }
    }
    xmlFreeDoc(doc);
    return n;
}

int r2b_s3__xml_parts(const char *xml, size_t len,
                      void (*cb)(void *ud, unsigned n, const char *etag, uint64_t size), void *ud,
                      int *truncated, unsigned *next_marker)
{
    xmlDocPtr doc = parse(xml, len);
    xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL;
    char buf[128], etag[80];
    uint64_t v;

    *truncated = 0;
    *next_marker = 0;
    if (!is_named(root, "ListPartsResult")) {
        xmlFreeDoc(doc);
        return -1;
    }
    if (child_text(root, "IsTruncated", buf, sizeof(buf)) == 0)
        *truncated = strcmp(buf, "true") == 0;
    if (child_text(root, "NextPartNumberMarker", buf, sizeof(buf)) == 0 &&
        r2b_parse_u64(buf, R2B_S3_MAX_PARTS, &v) == 0)
        *next_marker = (unsigned)v;
    for (xmlNodePtr n = root->children; n; n = n->next) {
        uint64_t num, size;

        if (!is_named(n, "Part"))
            continue;
        if (child_text(n, "PartNumber", buf, sizeof(buf)) != 0 ||
            r2b_parse_u64(buf, R2B_S3_MAX_PARTS, &num) != 0 ||
            child_text(n, "Size", buf, sizeof(buf)) != 0 ||
            r2b_parse_u64(buf, UINT64_MAX, &size) != 0 ||
            child_text(n, "ETag", buf, sizeof(buf)) != 0) {
            xmlFreeDoc(doc);
            return -1;
        }
        r2b_s3__etag_copy(etag, buf, strlen(buf));
        cb(ud, (unsigned)num, etag, size);
    }
    xmlFreeDoc(doc);
    return 0;
}
