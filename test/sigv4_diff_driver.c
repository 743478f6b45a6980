/*
 * The C half of the SigV4 differential test (test/sigv4_diff.py): reads one
 * JSON request per line on stdin, signs it with r2bridge, writes one JSON
 * result per line on stdout. One process serves all cases, so the signer's
 * signing-key cache is exercised too: consecutive cases with the same
 * credentials, region and service reuse the same signer.
 *
 * Input line:
 *   {"id": 1, "mode": "sign" | "presign",
 *    "access_key": "...", "secret_key": "...", "token": null | "...",
 *    "region": "...", "service": "s3",
 *    "method": "GET", "host": "h[:port]", "path": "/raw path",
 *    "params": [["name", "value" | null], ...],
 *    "headers": [["Name", "value"], ...],
 *    "payload_hash": null | "...", "now": 1369353600,
 *    "expires": 3600, "scheme": "https"}
 * Output line:
 *   {"id": 1, "status": 0, "error": "",
 *    "canonical_request": "...", "string_to_sign": "...",
 *    "authorization": "...", "amz_date": "...", "url": "..."}
 *
 * Exit status: 0 when every line was read and answered (whatever the signer
 * said), 2 on a malformed input line or an I/O error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "r2bridge/sigv4.h"

#define MAX_LINE_BYTES (1024 * 1024)

struct cached_signer {
    struct r2b_sigv4_signer *s;
    char *ident; /* access key, secret, token, region, service joined by NULs */
    size_t ident_len;
};

static const char *get_str(struct json_object *o, const char *key)
{
    struct json_object *v = NULL;

    if (!json_object_object_get_ex(o, key, &v) || v == NULL ||
        json_object_get_type(v) != json_type_string)
        return NULL;
    return json_object_get_string(v);
}

static int64_t get_int(struct json_object *o, const char *key)
{
    struct json_object *v = NULL;

    if (!json_object_object_get_ex(o, key, &v) || v == NULL)
        return 0;
    return json_object_get_int64(v);
}

/* Returns the signer for these credentials, reusing the previous one if equal. */
static struct r2b_sigv4_signer *signer_for(struct cached_signer *c, struct json_object *in,
                                           struct r2b_error *err)
{
    const char *f[5];
    size_t n = 0;
    char *ident;

    f[0] = get_str(in, "access_key");
    f[1] = get_str(in, "secret_key");
    f[2] = get_str(in, "token");
    f[3] = get_str(in, "region");
    f[4] = get_str(in, "service");
    for (size_t i = 0; i < 5; i++)
        n += (f[i] ? strlen(f[i]) : 0) + 2;
    ident = malloc(n);
    if (ident == NULL) {
        r2b_error_set(err, R2B_ERR_NOMEM, "out of memory");
        return NULL;
    }
    n = 0;
    for (size_t i = 0; i < 5; i++) {
        size_t l = f[i] ? strlen(f[i]) : 0;

        ident[n++] = f[i] ? 's' : 'n'; /* tells NULL from "" */
        memcpy(ident + n, f[i] ? f[i] : "", l);
        n += l;
        ident[n++] = '\0';
    }
    if (c->s && c->ident_len == n && memcmp(c->ident, ident, n) == 0) {
        free(ident);
        return c->s;
    }
    r2b_sigv4_signer_free(c->s);
    free(c->ident);
    c->ident = ident;
    c->ident_len = n;
    c->s = r2b_sigv4_signer_new(f[0], f[1], f[2], f[3], f[4], err);
    return c->s;
}

/* Fills `out` (capacity `cap`) from a JSON array of [name, value|null] pairs. */
static int get_pairs(struct json_object *in, const char *key, const char **names,
                     const char **values, size_t cap, size_t *n)
{
    struct json_object *arr = NULL;
    size_t len;

    *n = 0;
    if (!json_object_object_get_ex(in, key, &arr) || arr == NULL)
        return 0;
    if (json_object_get_type(arr) != json_type_array)
        return -1;
    len = json_object_array_length(arr);
    if (len > cap)
        return -1;
    for (size_t i = 0; i < len; i++) {
        struct json_object *p = json_object_array_get_idx(arr, i), *nm, *v;

        if (p == NULL || json_object_get_type(p) != json_type_array ||
            json_object_array_length(p) != 2)
            return -1;
        nm = json_object_array_get_idx(p, 0);
        v = json_object_array_get_idx(p, 1);
        names[i] = nm ? json_object_get_string(nm) : NULL;
        values[i] = v ? json_object_get_string(v) : NULL;
    }
    *n = len;
    return 0;
}

static int run_case(struct cached_signer *cache, struct json_object *in, struct json_object *out,
                    struct r2b_buf *result)
{
    /* room beyond the signer's limits, so the signer's own checks are reached */
    enum { CAP = 2 * R2B_SIGV4_MAX_PARAMS + 2 * R2B_SIGV4_MAX_HEADERS };
    const char *pn[CAP], *pv[CAP], *hn[CAP], *hv[CAP];
    struct r2b_sigv4_param params[CAP];
    struct r2b_sigv4_header headers[CAP];
    struct r2b_sigv4_request req;
    struct r2b_sigv4_signer *s;
    struct r2b_error err;
    enum r2b_status st;
    const char *mode = get_str(in, "mode");
    char amz_date[17] = "";
    size_t np, nh;

    r2b_error_clear(&err);
    if (mode == NULL || get_pairs(in, "params", pn, pv, CAP, &np) != 0 ||
        get_pairs(in, "headers", hn, hv, CAP, &nh) != 0)
        return -1;
    for (size_t i = 0; i < np; i++)
        params[i] = (struct r2b_sigv4_param){pn[i], pv[i]};
    for (size_t i = 0; i < nh; i++)
        headers[i] = (struct r2b_sigv4_header){hn[i], hv[i]};
    memset(&req, 0, sizeof(req));
    req.method = get_str(in, "method");
    req.host = get_str(in, "host");
    req.path = get_str(in, "path");
    req.params = params;
    req.n_params = np;
    req.headers = headers;
    req.n_headers = nh;
    req.payload_hash = get_str(in, "payload_hash");

    s = signer_for(cache, in, &err);
    if (s == NULL) {
        st = err.code;
    } else if (strcmp(mode, "presign") == 0) {
        st = r2b_sigv4_presign(s, &req, get_int(in, "now"), (long)get_int(in, "expires"),
                               get_str(in, "scheme"), result, &err);
    } else {
        st = r2b_sigv4_sign_headers(s, &req, get_int(in, "now"), result, amz_date, &err);
    }
    json_object_object_add(out, "status", json_object_new_int((int)st));
    json_object_object_add(out, "error", json_object_new_string(err.message));
    if (st == R2B_OK) {
        json_object_object_add(out, "canonical_request",
                               json_object_new_string(r2b_sigv4_last_canonical_request(s)));
        json_object_object_add(out, "string_to_sign",
                               json_object_new_string(r2b_sigv4_last_string_to_sign(s)));
        if (strcmp(mode, "presign") == 0) {
            json_object_object_add(out, "url", json_object_new_string(r2b_buf_str(result)));
        } else {
            json_object_object_add(out, "authorization",
                                   json_object_new_string(r2b_buf_str(result)));
            json_object_object_add(out, "amz_date", json_object_new_string(amz_date));
        }
    }
    return 0;
}

int main(void)
{
    struct cached_signer cache = {NULL, NULL, 0};
    struct r2b_buf result;
    char *line = NULL;
    size_t line_cap = 0;
    ssize_t got;
    long lineno = 0;
    int rc = 0;

    r2b_buf_init(&result, 64 * 1024);
    while ((got = getline(&line, &line_cap, stdin)) > 0) {
        struct json_tokener *tok = NULL;
        struct json_object *in = NULL, *out = NULL;

        lineno++;
        if (strspn(line, " \t\r\n") == (size_t)got)
            continue; /* blank line */
        if (got > MAX_LINE_BYTES) {
            fprintf(stderr, "sigv4_diff_driver: line %ld: longer than %d bytes\n", lineno,
                    MAX_LINE_BYTES);
            rc = 2;
            break;
        }
        tok = json_tokener_new();
        if (tok != NULL)
            in = json_tokener_parse_ex(tok, line, (int)got);
        if (in == NULL || json_object_get_type(in) != json_type_object) {
            fprintf(stderr, "sigv4_diff_driver: line %ld: not a JSON object\n", lineno);
            json_object_put(in);
            json_tokener_free(tok);
            rc = 2;
            break;
        }
        out = json_object_new_object();
        json_object_object_add(out, "id", json_object_new_int64(get_int(in, "id")));
        if (run_case(&cache, in, out, &result) != 0) {
            fprintf(stderr, "sigv4_diff_driver: line %ld: malformed request\n", lineno);
            rc = 2;
        } else if (puts(json_object_to_json_string_ext(
                       out, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)) == EOF) {
            rc = 2;
        }
        json_object_put(out);
        json_object_put(in);
        json_tokener_free(tok);
        if (rc != 0)
            break;
    }
    if (fflush(stdout) != 0)
        rc = 2;
    free(line);
    r2b_buf_release(&result);
    r2b_sigv4_signer_free(cache.s);
    free(cache.ident);
    return rc;
}
