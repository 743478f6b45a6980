/* The privacy decision: every visibility x state x viewer, TTL caps, and
 * exact-key matching through a real SQLite manifest. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "r2bridge/pipeline.h"
#include "r2bridge/privacy.h"

enum viewer_kind { V_ANON, V_OWNER, V_AUDIENCE, V_STRANGER, V__COUNT };

static struct r2b_privacy_viewer viewer_of(enum viewer_kind k)
{
    struct r2b_privacy_viewer v = {0, 0, 0};

    switch (k) {
    case V_ANON:
        v.anonymous = 1;
        break;
    case V_OWNER:
        v.account_id = 100;
        break;
    case V_AUDIENCE:
        v.account_id = 200;
        v.in_audience = 1;
        break;
    case V_STRANGER:
        v.account_id = 300;
        break;
    default:
        break;
    }
    return v;
}

/* The table in DESIGN.md, written out for every combination. */
static void expected(enum r2b_visibility vis, int state, enum viewer_kind vk,
                     enum r2b_privacy_outcome *o, enum r2b_deny_reason *r)
{
    *r = R2B_DENY_NONE;
    if (state < 0) {
        *o = R2B_PRIVACY_DENY;
        *r = R2B_DENY_UNKNOWN;
    } else if (state == R2B_STATE_PENDING) {
        *o = R2B_PRIVACY_DENY;
        *r = R2B_DENY_PENDING;
    } else if (state == R2B_STATE_DELETED) {
        *o = R2B_PRIVACY_DENY;
        *r = R2B_DENY_DELETED;
    } else if (vis == R2B_VIS_PUBLIC || vis == R2B_VIS_UNLISTED) {
        *o = R2B_PRIVACY_PUBLIC_URL;
    } else if (vk == V_OWNER || vk == V_AUDIENCE) {
        *o = R2B_PRIVACY_PRESIGNED;
    } else {
        *o = R2B_PRIVACY_DENY;
        *r = R2B_DENY_NOT_IN_AUDIENCE;
    }
}

/* Keys must match what Paperclip wrote: ("%09d" % id).scan(/\d{3}/).join("/") */
static void test_id_partition_paperclip(void **state)
{
    static const struct {
        int64_t id;
        const char *want;
    } cases[] = {
        {0, "000/000/000"},
        {1, "000/000/001"},
        {123456789, "123/456/789"},
        {1234567890, "123/456/789"},       /* Paperclip drops the trailing "0" */
        {12345678901, "123/456/789"},      /* ... and "01" */
        {123456789012, "123/456/789/012"},
        {109876543210987654, "109/876/543/210/987/654"}, /* a snowflake id */
        {INT64_MAX, "922/337/203/685/477/580"},
        {-5, "000/000/000"},
    };
    char out[32];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        r2b_id_partition(cases[i].id, out);
        assert_string_equal(out, cases[i].want);
    }
}

static void test_full_table(void **state)
{
    struct r2b_privacy_policy pol;
    int checked = 0;

    (void)state;
    r2b_privacy_policy_init(&pol);
    for (int vis = 0; vis <= R2B_VIS_DIRECT; vis++) {
        for (int st = -1; st <= R2B_STATE_DELETED; st++) { /* -1: no record */
            for (int vk = 0; vk < V__COUNT; vk++) {
                struct r2b_manifest_record rec;
                struct r2b_privacy_viewer v = viewer_of((enum viewer_kind)vk);
                struct r2b_privacy_decision d;
                enum r2b_privacy_outcome o;
                enum r2b_deny_reason r;

                memset(&rec, 0, sizeof(rec));
                rec.visibility = (enum r2b_visibility)vis;
                rec.state = st < 0 ? R2B_STATE_PENDING : (enum r2b_state)st;
                rec.owner_id = 100;
                r2b_privacy_decide(st < 0 ? NULL : &rec, &v, 0, &pol, &d);
                expected((enum r2b_visibility)vis, st, (enum viewer_kind)vk, &o, &r);
                assert_int_equal(d.outcome, o);
                assert_int_equal(d.reason, r);
                if (o == R2B_PRIVACY_PRESIGNED)
                    assert_int_equal(d.ttl_s, vis == R2B_VIS_PRIVATE ? 900 : 300);
                else
                    assert_int_equal(d.ttl_s, 0);
                checked++;
            }
        }
    }
    assert_int_equal(checked, 4 * 4 * 4);
}

static void test_ttl_caps(void **state)
{
    static const struct {
        enum r2b_visibility vis;
        long private_cap, direct_cap, requested, ttl;
        int capped;
    } cases[] = {
        {R2B_VIS_PRIVATE, 900, 300, 0, 900, 0},      /* 0: the cap */
        {R2B_VIS_PRIVATE, 900, 300, 60, 60, 0},      /* below the cap: as asked */
        {R2B_VIS_PRIVATE, 900, 300, 900, 900, 0},    /* exactly the cap */
        {R2B_VIS_PRIVATE, 900, 300, 901, 900, 1},    /* above: lowered, and said so */
        {R2B_VIS_DIRECT, 900, 300, 3600, 300, 1},
        {R2B_VIS_DIRECT, 900, 300, -5, 300, 0},
        {R2B_VIS_DIRECT, 900, 3600, 1000, 1000, 0},  /* configured caps */
        {R2B_VIS_PRIVATE, 999999, 300, 999999, 900, 1}, /* a cap above R2's 7 days is ignored */
        {R2B_VIS_PRIVATE, 0, 300, 100, 100, 0},      /* a zero cap falls back to the default */
        {R2B_VIS_DIRECT, 900, 604800, 604800, 604800, 0},
    };
    struct r2b_manifest_record rec;
    struct r2b_privacy_viewer owner = viewer_of(V_OWNER);

    (void)state;
    memset(&rec, 0, sizeof(rec));
    rec.state = R2B_STATE_STORED;
    rec.owner_id = 100;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct r2b_privacy_policy pol = {cases[i].private_cap, cases[i].direct_cap};
        struct r2b_privacy_decision d;

        rec.visibility = cases[i].vis;
        r2b_privacy_decide(&rec, &owner, cases[i].requested, &pol, &d);
        assert_int_equal(d.outcome, R2B_PRIVACY_PRESIGNED);
        assert_int_equal(d.ttl_s, cases[i].ttl);
        assert_int_equal(d.ttl_capped, cases[i].capped);
        assert_true(d.ttl_s >= 1 && d.ttl_s <= R2B_PRIVACY_MAX_TTL_S);
    }
}

static void test_unknown_visibility_is_restricted(void **state)
{
    struct r2b_manifest_record rec;
    struct r2b_privacy_viewer anon = viewer_of(V_ANON);
    struct r2b_privacy_policy pol;
    struct r2b_privacy_decision d;

    (void)state;
    r2b_privacy_policy_init(&pol);
    memset(&rec, 0, sizeof(rec));
    rec.state = R2B_STATE_STORED;
    rec.visibility = (enum r2b_visibility)42;
    r2b_privacy_decide(&rec, &anon, 0, &pol, &d);
    assert_int_equal(d.outcome, R2B_PRIVACY_DENY);
    r2b_privacy_decide(&rec, NULL, 0, &pol, &d); /* no viewer at all: deny */
    assert_int_equal(d.outcome, R2B_PRIVACY_DENY);
    assert_string_equal(r2b_deny_reason_name(R2B_DENY_NOT_IN_AUDIENCE), "not_in_audience");
    assert_string_equal(r2b_deny_reason_name(R2B_DENY_PENDING), "pending");
}

/* Through a real manifest: exact keys, and audience changes apply to the next decision. */
static void decide_key(struct r2b_manifest *m, const char *key, struct r2b_privacy_viewer v,
                       struct r2b_privacy_decision *d)
{
    struct r2b_manifest_record rec;
    struct r2b_privacy_policy pol;
    struct r2b_error err;
    int found = r2b_manifest_get(m, key, &rec, &err) == R2B_OK;

    r2b_privacy_policy_init(&pol);
    if (found && r2b_privacy_needs_audience(&rec, &v))
        assert_int_equal(r2b_manifest_in_audience(m, key, v.account_id, &v.in_audience, &err),
                         R2B_OK);
    r2b_privacy_decide(found ? &rec : NULL, &v, 0, &pol, d);
}

static void test_with_manifest(void **state)
{
    char dir[512], url[600];
    struct r2b_manifest *m;
    struct r2b_manifest_record rec;
    struct r2b_privacy_decision d;
    struct r2b_error err;
    struct r2b_privacy_viewer stranger = viewer_of(V_STRANGER);
    int64_t grant[] = {300};
    const char *key = "media_attachments/files/110/000/001/original/abc.jpg";

    (void)state;
    snprintf(dir, sizeof(dir), "%s/r2b-privacy-XXXXXX",
             getenv("R2B_TEST_TMP") ? getenv("R2B_TEST_TMP") : "/tmp");
    assert_non_null(mkdtemp(dir));
    snprintf(url, sizeof(url), "sqlite://%s/m.db", dir);
    m = r2b_manifest_open(url, &err);
    assert_non_null(m);
    memset(&rec, 0, sizeof(rec));
    r2b_strlcpy(rec.key, key, sizeof(rec.key));
    r2b_strlcpy(rec.bucket, "private", sizeof(rec.bucket));
    rec.visibility = R2B_VIS_DIRECT;
    rec.owner_id = 100;
    rec.state = R2B_STATE_STORED;
    assert_int_equal(r2b_manifest_put(m, &rec, NULL, 0, &err), R2B_OK);

    decide_key(m, key, viewer_of(V_OWNER), &d);
    assert_int_equal(d.outcome, R2B_PRIVACY_PRESIGNED);
    /* a key differing in case or by a trailing slash is another (unknown) key */
    decide_key(m, "media_attachments/files/110/000/001/original/ABC.jpg", viewer_of(V_OWNER), &d);
    assert_int_equal(d.reason, R2B_DENY_UNKNOWN);
    decide_key(m, "media_attachments/files/110/000/001/original/abc.jpg/", viewer_of(V_OWNER),
               &d);
    assert_int_equal(d.reason, R2B_DENY_UNKNOWN);
    /* audience changes take effect on the next decision */
    decide_key(m, key, stranger, &d);
    assert_int_equal(d.reason, R2B_DENY_NOT_IN_AUDIENCE);
    assert_int_equal(r2b_manifest_audience_add(m, key, grant, 1, &err), R2B_OK);
    decide_key(m, key, stranger, &d);
    assert_int_equal(d.outcome, R2B_PRIVACY_PRESIGNED);
    assert_int_equal(r2b_manifest_audience_remove(m, key, grant, 1, &err), R2B_OK);
    decide_key(m, key, stranger, &d);
    assert_int_equal(d.reason, R2B_DENY_NOT_IN_AUDIENCE);
    /* deleting: the record denies at once */
    assert_int_equal(r2b_manifest_set_state(m, key, R2B_STATE_DELETED, NULL, 0, &err), R2B_OK);
    decide_key(m, key, viewer_of(V_OWNER), &d);
    assert_int_equal(d.reason, R2B_DENY_DELETED);
    r2b_manifest_close(m);
    snprintf(url, sizeof(url), "rm -rf '%s'", dir);
    assert_int_equal(system(url), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_id_partition_paperclip),
        cmocka_unit_test(test_full_table),
        cmocka_unit_test(test_ttl_caps),
        cmocka_unit_test(test_unknown_visibility_is_restricted),
        cmocka_unit_test(test_with_manifest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
