/*
 * PostgreSQL manifest backend: workers on several hosts share one manifest.
 *
 * - Statements are prepared once per session, on first use, and run with
 *   text parameters; no value is ever pasted into SQL.
 * - Every write is one explicit transaction that first locks the object's
 *   row, so writers of one key queue up and the last one wins whole (its
 *   audience included). A connection lost before COMMIT was sent changed
 *   nothing (the server rolls back), so the write is retried once on a new
 *   session; one lost during COMMIT is reported, as the change may or may
 *   not be in. Reads are retried once after a reset.
 * - Keys compare byte-wise (COLLATE "C", the order SQLite's BINARY uses), so
 *   both backends list in the same order and a prefix is a range scan.
 * - list() pages through the keys (keyset pagination) and runs the callback
 *   between pages: memory stays bounded, no transaction stays open while the
 *   caller works, and the callback may use the same handle.
 * - Error messages name the server as postgresql://user@host:port/db and
 *   never carry the password.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "manifest_int.h"

#define STR_(x) #x
#define STR(x) STR_(x)

#define LIST_PAGE_ROWS 1000 /* rows per list() query: bounds its memory */
#define DESC_MAX 256        /* the server's name in messages */
#define SECRET_MAX 256      /* longest password we can redact from messages */
/* Defaults a manifest URL may override (libpq keeps the last value given). */
#define CONNECT_TIMEOUT_S "10"
#define KEEPALIVES_IDLE_S "30"
/* Like SQLite's busy timeout: a lock held longer is a temporary failure. */
#define SET_LOCK_TIMEOUT "SET lock_timeout = '30s'"
/* pg_advisory_xact_lock key that serialises schema migrations ("r2bmanif") */
#define MIGRATE_LOCK_KEY "8228747691084900710"

#define COLS                                                                                       \
    "key, bucket, style, visibility, owner_id, status_id, content_type, size, sha256, etag,"       \
    " state, created_at, updated_at, source_path"

/* Version 1 beyond the shared schema: keys in byte order (COLLATE "C"), so
 * the primary key index serves ORDER BY key and prefix ranges. */
#define PG_SCHEMA_V1_EXTRA                                                                         \
    "ALTER TABLE r2b_audience ALTER COLUMN key TYPE TEXT COLLATE \"C\";"                           \
    "ALTER TABLE r2b_objects ALTER COLUMN key TYPE TEXT COLLATE \"C\";"

enum stmt_id {
    S_UPSERT,
    S_AUD_CLEAR,
    S_AUD_ADD,
    S_AUD_DEL,
    S_GET,
    S_TOUCH,
    S_SET_STATE,
    S_SET_STATE_STORED,
    S_SET_VIS,
    S_IN_AUD,
    S_AUD_LIST,
    S_LIST,
    S_LIST_UPPER,
    S_CLAIM,
    S__COUNT
};

static const struct {
    const char *name;
    int n_params;
    const char *sql;
} stmts[S__COUNT] = {
    [S_UPSERT] = {"r2b_upsert", 13,
                  "INSERT INTO r2b_objects (" COLS ")"
                  " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $13)"
                  " ON CONFLICT (key) DO UPDATE SET bucket = excluded.bucket,"
                  " style = excluded.style, visibility = excluded.visibility,"
                  " owner_id = excluded.owner_id, status_id = excluded.status_id,"
                  " content_type = excluded.content_type, size = excluded.size,"
                  " sha256 = excluded.sha256, etag = excluded.etag, state = excluded.state,"
                  " updated_at = excluded.updated_at, source_path = excluded.source_path"},
    [S_AUD_CLEAR] = {"r2b_aud_clear", 1, "DELETE FROM r2b_audience WHERE key = $1"},
    [S_AUD_ADD] = {"r2b_aud_add", 2,
                   "INSERT INTO r2b_audience (key, account_id)"
                   " SELECT DISTINCT $1::text, a FROM unnest($2::bigint[]) AS a"
                   " ON CONFLICT DO NOTHING"},
    [S_AUD_DEL] = {"r2b_aud_del", 2,
                   "DELETE FROM r2b_audience WHERE key = $1 AND account_id = ANY ($2::bigint[])"},
    [S_GET] = {"r2b_get", 1, "SELECT " COLS " FROM r2b_objects WHERE key = $1"},
    /* locks the row: writers of one key take turns */
    [S_TOUCH] = {"r2b_touch", 2, "UPDATE r2b_objects SET updated_at = $2 WHERE key = $1"},
    /* a state change ends any claim; "stored" only from "pending" */
    [S_SET_STATE] = {"r2b_set_state", 3,
                     "UPDATE r2b_objects SET state = $2, updated_at = $3, claim_owner = '',"
                     " claim_expires = 0 WHERE key = $1"},
    [S_SET_STATE_STORED] = {"r2b_set_stored", 5,
                            "UPDATE r2b_objects SET state = $2, updated_at = $3, etag = $4,"
                            " size = $5, claim_owner = '', claim_expires = 0"
                            " WHERE key = $1 AND state = 'pending'"},
    [S_SET_VIS] = {"r2b_set_vis", 4,
                   "UPDATE r2b_objects SET visibility = $2, bucket = $3, updated_at = $4"
                   " WHERE key = $1"},
    [S_IN_AUD] = {"r2b_in_aud", 2, "SELECT 1 FROM r2b_audience WHERE key = $1 AND account_id = $2"},
    /* no row: no record; one NULL row: a record with an empty audience */
    [S_AUD_LIST] = {"r2b_aud_list", 1,
                    "SELECT a.account_id FROM r2b_objects o"
                    " LEFT JOIN r2b_audience a ON a.key = o.key"
                    " WHERE o.key = $1 ORDER BY a.account_id"},
    /* $1: last key seen ("" at first), $2: range start, $5: range end */
    [S_LIST] = {"r2b_list", 4,
                "SELECT " COLS " FROM r2b_objects"
                " WHERE key COLLATE \"C\" > $1 AND key COLLATE \"C\" >= $2"
                " AND ($3::text IS NULL OR visibility = $3) AND ($4::text IS NULL OR state = $4)"
                " ORDER BY key COLLATE \"C\" LIMIT " STR(LIST_PAGE_ROWS)},
    [S_LIST_UPPER] = {"r2b_list_upper", 5,
                      "SELECT " COLS " FROM r2b_objects"
                      " WHERE key COLLATE \"C\" > $1 AND key COLLATE \"C\" >= $2"
                      " AND ($3::text IS NULL OR visibility = $3)"
                      " AND ($4::text IS NULL OR state = $4) AND key COLLATE \"C\" < $5"
                      " ORDER BY key COLLATE \"C\" LIMIT " STR(LIST_PAGE_ROWS)},
    /* a row comes back only when the claim was ours to take (the upsert locks the row) */
    [S_CLAIM] = {"r2b_claim", 15, R2B_MANIFEST_CLAIM_SQL " RETURNING key"},
};

struct pg_impl {
    PGconn *conn;
    uint32_t prepared; /* bit i: stmts[i] exists in the current session */
    int need_setup;    /* the session is new: session_setup() has not run */
    char desc[DESC_MAX];
};

/* --- messages -------------------------------------------------------------------------- */

static void wipe(void *p, size_t n)
{
    volatile unsigned char *v = p;

    while (n--)
        *v++ = 0;
}

/* The first line of a libpq message, without its severity prefix. */
static void first_line(const char *msg, char *out, size_t size)
{
    size_t n;
    char *f;

    if (msg == NULL || *msg == '\0')
        msg = "unknown error";
    n = strcspn(msg, "\r\n");
    if (n >= size)
        n = size - 1;
    memcpy(out, msg, n);
    out[n] = '\0';
    while (n > 0 && out[n - 1] == ' ')
        out[--n] = '\0';
    /* 'connection to server at "h", port 5432 failed: FATAL:  password ...' */
    while ((f = strstr(out, "FATAL:  ")) != NULL || (f = strstr(out, "ERROR:  ")) != NULL)
        memmove(f, f + 8, strlen(f + 8) + 1);
    /* "failed: Connection refused" (strerror) reads "failed: connection refused" */
    if ((f = strstr(out, "failed: ")) != NULL && f[8] >= 'A' && f[8] <= 'Z' && f[9] >= 'a' &&
        f[9] <= 'z')
        f[8] = (char)(f[8] - 'A' + 'a');
    else if (out[0] >= 'A' && out[0] <= 'Z' && out[1] >= 'a' && out[1] <= 'z')
        out[0] = (char)(out[0] - 'A' + 'a');
}

/* Replaces each occurrence of `secret` in `msg` with "***" (or as many '*' as it is long). */
static void redact(char *msg, const char *secret)
{
    size_t n = strlen(secret), stars = n < 3 ? n : 3;
    char *f = msg;

    if (n == 0)
        return;
    while ((f = strstr(f, secret)) != NULL) {
        memset(f, '*', stars);
        memmove(f + stars, f + n, strlen(f + n) + 1);
        f += stars;
    }
}

/*
 * The passwords a conninfo carries, as written (a libpq parse error may
 * quote them) and as decoded, for redact(): the URL's user:password@ part,
 * a password= parameter, and libpq's parsed value.
 */
static void find_secrets(const char *conninfo, char raw[2][SECRET_MAX], char parsed[SECRET_MAX])
{
    const char *s = strstr(conninfo, "://"), *end, *at = NULL, *colon, *p;
    PQconninfoOption *opts;

    raw[0][0] = raw[1][0] = parsed[0] = '\0';
    if (s != NULL) {
        s += 3;
        end = s + strcspn(s, "/?");
        for (p = s; p < end; p++) /* the last '@' of the authority ends the userinfo */
            if (*p == '@')
                at = p;
        colon = at ? memchr(s, ':', (size_t)(at - s)) : NULL;
        if (colon && (size_t)(at - colon - 1) < SECRET_MAX) {
            memcpy(raw[0], colon + 1, (size_t)(at - colon - 1));
            raw[0][at - colon - 1] = '\0';
        }
    }
    if ((p = strstr(conninfo, "password=")) != NULL) {
        size_t n;

        p += 9;
        n = strcspn(p, "& \t");
        if (n < SECRET_MAX) {
            memcpy(raw[1], p, n);
            raw[1][n] = '\0';
        }
    }
    opts = PQconninfoParse(conninfo, NULL);
    for (PQconninfoOption *o = opts; o && o->keyword; o++)
        if (strcmp(o->keyword, "password") == 0 && o->val)
            r2b_strlcpy(parsed, o->val, SECRET_MAX);
    PQconninfoFree(opts);
}

/*
 * "postgresql://user@host:port/dbname" from what the conninfo says, no
 * password. -1 when libpq cannot parse the conninfo.
 */
static int describe(const char *conninfo, char *out, size_t size)
{
    PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
    const char *user = "", *host = "", *port = "", *db = "";

    if (opts == NULL) {
        r2b_strlcpy(out, "postgresql", size);
        return -1;
    }

    for (PQconninfoOption *o = opts; o && o->keyword; o++) {
        if (o->val == NULL)
            continue;
        if (strcmp(o->keyword, "user") == 0)
            user = o->val;
        else if (strcmp(o->keyword, "host") == 0)
            host = o->val;
        else if (strcmp(o->keyword, "port") == 0)
            port = o->val;
        else if (strcmp(o->keyword, "dbname") == 0)
            db = o->val;
    }
    snprintf(out, size, "postgresql://%s%s%s%s%s%s%s", user, *user ? "@" : "", host,
             *port ? ":" : "", port, *db ? "/" : "", db);
    PQconninfoFree(opts);
    return 0;
}

/* --- statements ------------------------------------------------------------------------ */

static int is_lost(const struct pg_impl *p, const char *sqlstate)
{
    return PQstatus(p->conn) == CONNECTION_BAD ||
           (sqlstate && (strncmp(sqlstate, "08", 2) == 0 || strcmp(sqlstate, "57P01") == 0 ||
                         strcmp(sqlstate, "57P02") == 0 || strcmp(sqlstate, "57P03") == 0));
}

/*
 * Sets err for a failed statement (res may be NULL) and *lost when the
 * session is gone (nothing of an uncommitted transaction survived).
 */
static enum r2b_status pg_fail(struct pg_impl *p, const PGresult *res, const char *what, int *lost,
                               struct r2b_error *err)
{
    const char *sqlstate = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    enum r2b_status st = R2B_ERR_IO;
    int retryable = 0;
    char line[300];

    *lost = is_lost(p, sqlstate);
    if (*lost) {
        retryable = 1; /* the server went away: it may come back */
    } else if (sqlstate) {
        if (strcmp(sqlstate, "40001") == 0 || strcmp(sqlstate, "40P01") == 0 ||
            strcmp(sqlstate, "55P03") == 0 || strcmp(sqlstate, "57014") == 0) {
            st = R2B_ERR_NETWORK; /* serialization, deadlock, lock or statement timeout */
            retryable = 1;
        } else if (strncmp(sqlstate, "53", 2) == 0) {
            retryable = 1; /* insufficient resources: disk full, too many connections */
        } else if (strcmp(sqlstate, "42501") == 0 || strncmp(sqlstate, "28", 2) == 0) {
            st = R2B_ERR_AUTH; /* the role lacks a privilege */
        } else if (strncmp(sqlstate, "22", 2) == 0) {
            st = R2B_ERR_INVALID; /* data exception: bad encoding, number out of range */
        }
    }
    first_line(primary ? primary : PQerrorMessage(p->conn), line, sizeof(line));
    r2b_error_set(err, st, "manifest '%s': %s: %s%s", p->desc, what,
                  *lost ? "connection lost: " : "", line);
    if (err)
        err->retryable = retryable;
    return st;
}

/* Runs a statement that needs no parameters and returns no rows. */
static enum r2b_status exec_simple(struct pg_impl *p, const char *sql, const char *what, int *lost,
                                   struct r2b_error *err)
{
    PGresult *res = PQexec(p->conn, sql);
    enum r2b_status st = R2B_OK;

    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
        st = pg_fail(p, res, what, lost, err);
    else
        *lost = 0;
    PQclear(res);
    return st;
}

/*
 * Prepares stmts[id] in this session if needed and runs it. On success *out
 * is the result (the caller PQclear()s it; NULL for out == NULL).
 */
static enum r2b_status run(struct pg_impl *p, enum stmt_id id, const char *const *vals,
                           const char *what, int *lost, PGresult **out, struct r2b_error *err)
{
    PGresult *res;
    ExecStatusType rs;
    enum r2b_status st;

    *lost = 0;
    if (out)
        *out = NULL;
    if (!(p->prepared & (1u << id))) {
        res = PQprepare(p->conn, stmts[id].name, stmts[id].sql, 0, NULL);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            st = pg_fail(p, res, what, lost, err);
            PQclear(res);
            return st;
        }
        PQclear(res);
        p->prepared |= 1u << id;
    }
    res = PQexecPrepared(p->conn, stmts[id].name, stmts[id].n_params, vals, NULL, NULL, 0);
    rs = PQresultStatus(res);
    if (rs == PGRES_COMMAND_OK || rs == PGRES_TUPLES_OK) {
        if (out)
            *out = res;
        else
            PQclear(res);
        return R2B_OK;
    }
    st = pg_fail(p, res, what, lost, err);
    PQclear(res);
    return st;
}

/* Per-session settings; run after every (re)connect. */
static enum r2b_status session_setup(struct pg_impl *p, struct r2b_error *err)
{
    int lost;

    p->prepared = 0;
    p->need_setup = 0;
    return exec_simple(p, SET_LOCK_TIMEOUT, "session setup", &lost, err);
}

/*
 * Makes the session usable: reconnects if it is gone, leaves a transaction
 * a failure left open (defensive: every path closes its own).
 */
static enum r2b_status ensure_session(struct pg_impl *p, struct r2b_error *err)
{
    int lost;

    if (PQstatus(p->conn) != CONNECTION_OK) {
        char line[300];

        PQreset(p->conn);
        if (PQstatus(p->conn) != CONNECTION_OK) {
            first_line(PQerrorMessage(p->conn), line, sizeof(line));
            r2b_error_set(err, R2B_ERR_IO, "cannot reconnect to manifest '%s': %s", p->desc, line);
            if (err)
                err->retryable = 1;
            return R2B_ERR_IO;
        }
        return session_setup(p, err);
    }
    if (p->need_setup)
        return session_setup(p, err);
    if (PQtransactionStatus(p->conn) != PQTRANS_IDLE)
        return exec_simple(p, "ROLLBACK", "rollback", &lost, err);
    return R2B_OK;
}

/* After a lost connection: the next ensure_session() starts a new session. */
static void reset(struct pg_impl *p)
{
    /* the server ended the session (57P01 and the like) but the socket looks open */
    if (PQstatus(p->conn) == CONNECTION_OK)
        PQreset(p->conn);
    p->prepared = 0;
    p->need_setup = 1;
}

/* A read: one statement, retried once on a new session if the old one was lost. */
static enum r2b_status read_query(struct pg_impl *p, enum stmt_id id, const char *const *vals,
                                  const char *what, PGresult **out, struct r2b_error *err)
{
    struct r2b_error tmp;
    enum r2b_status st = R2B_ERR_IO;
    int lost = 0;

    r2b_error_clear(&tmp);
    for (int attempt = 0; attempt < 2; attempt++) {
        if ((st = ensure_session(p, &tmp)) != R2B_OK)
            break;
        st = run(p, id, vals, what, &lost, out, &tmp);
        if (st == R2B_OK || !lost)
            break;
        reset(p);
    }
    if (st != R2B_OK && err)
        *err = tmp;
    return st;
}

/* The body of a write transaction: statements only, no BEGIN/COMMIT. */
typedef enum r2b_status (*txn_body)(struct pg_impl *p, void *arg, int *lost, struct r2b_error *err);

/*
 * Runs body in one transaction. Retried once on a new session when the
 * connection was lost before COMMIT was sent: the server rolled the
 * transaction back, so nothing of it was applied.
 */
static enum r2b_status write_txn(struct pg_impl *p, const char *what, txn_body body, void *arg,
                                 struct r2b_error *err)
{
    struct r2b_error tmp;
    enum r2b_status st = R2B_ERR_IO;
    int lost = 0;

    r2b_error_clear(&tmp);
    for (int attempt = 0; attempt < 2; attempt++) {
        if ((st = ensure_session(p, &tmp)) != R2B_OK)
            break;
        st = exec_simple(p, "BEGIN", what, &lost, &tmp);
        if (st == R2B_OK)
            st = body(p, arg, &lost, &tmp);
        if (st != R2B_OK) {
            if (lost && attempt == 0) {
                reset(p);
                continue;
            }
            if (!lost) {
                int ignored;

                exec_simple(p, "ROLLBACK", "rollback", &ignored, NULL);
            }
            break;
        }
        st = exec_simple(p, "COMMIT", what, &lost, &tmp);
        if (st != R2B_OK && lost)
            r2b_error_set(&tmp, R2B_ERR_IO,
                          "manifest '%s': %s: connection lost during commit; the change may "
                          "or may not have been applied",
                          p->desc, what);
        if (st != R2B_OK)
            tmp.retryable = 1; /* every manifest write may be repeated */
        break;
    }
    if (st != R2B_OK && err)
        *err = tmp;
    return st;
}

/* Runs an UPDATE of one key inside a transaction; NOT_FOUND when no row matched. */
static enum r2b_status update_one(struct pg_impl *p, enum stmt_id id, const char *const *vals,
                                  const char *what, int *lost, struct r2b_error *err)
{
    PGresult *res;
    enum r2b_status st = run(p, id, vals, what, lost, &res, err);

    if (st != R2B_OK)
        return st;
    if (strcmp(PQcmdTuples(res), "0") == 0)
        st = r2b_error_set(err, R2B_ERR_NOT_FOUND, "no manifest record for '%s'", vals[0]);
    PQclear(res);
    return st;
}

/* --- values ------------------------------------------------------------------------------ */

struct num {
    char s[24];
};

static const char *i64(struct num *n, int64_t v)
{
    snprintf(n->s, sizeof(n->s), "%" PRId64, v);
    return n->s;
}

static const char *u64(struct num *n, uint64_t v)
{
    snprintf(n->s, sizeof(n->s), "%" PRIu64, v);
    return n->s;
}

/* The ids as a PostgreSQL array literal, "{1,2,3}", for unnest()/ANY(). */
static enum r2b_status id_array(const int64_t *ids, size_t n, struct r2b_buf *b,
                                struct r2b_error *err)
{
    enum r2b_status st = r2b_buf_addc(b, '{');

    for (size_t i = 0; i < n && st == R2B_OK; i++)
        st = r2b_buf_addf(b, i ? ",%" PRId64 : "%" PRId64, ids[i]);
    if (st == R2B_OK)
        st = r2b_buf_addc(b, '}');
    if (st != R2B_OK)
        return r2b_error_set(err, st, "out of memory");
    return R2B_OK;
}

static int64_t col_i64(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? 0 : (int64_t)strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static void read_row(const PGresult *res, int row, struct r2b_manifest_record *out)
{
    memset(out, 0, sizeof(*out));
    r2b_strlcpy(out->key, PQgetvalue(res, row, 0), sizeof(out->key));
    r2b_strlcpy(out->bucket, PQgetvalue(res, row, 1), sizeof(out->bucket));
    r2b_strlcpy(out->style, PQgetvalue(res, row, 2), sizeof(out->style));
    if (r2b_visibility_parse(PQgetvalue(res, row, 3), &out->visibility) != 0)
        out->visibility = R2B_VIS_DIRECT; /* unreadable: the most restrictive */
    out->owner_id = col_i64(res, row, 4);
    out->status_id = col_i64(res, row, 5);
    r2b_strlcpy(out->content_type, PQgetvalue(res, row, 6), sizeof(out->content_type));
    out->size_bytes = (uint64_t)col_i64(res, row, 7);
    r2b_strlcpy(out->sha256, PQgetvalue(res, row, 8), sizeof(out->sha256));
    r2b_strlcpy(out->etag, PQgetvalue(res, row, 9), sizeof(out->etag));
    if (r2b_state_parse(PQgetvalue(res, row, 10), &out->state) != 0)
        out->state = R2B_STATE_PENDING; /* unreadable: never "stored" */
    out->created_at = col_i64(res, row, 11);
    out->updated_at = col_i64(res, row, 12);
    r2b_strlcpy(out->source_path, PQgetvalue(res, row, 13), sizeof(out->source_path));
}

/* --- operations ---------------------------------------------------------------------------- */

static void pg_close(struct r2b_manifest *m)
{
    struct pg_impl *p = m->impl;

    if (p) {
        PQfinish(p->conn);
        free(p);
    }
    free(m);
}

struct put_arg {
    const struct r2b_manifest_record *rec;
    const char *aud; /* array literal, NULL when empty */
    int64_t now;
    const char *worker; /* claim: the worker and the expiry; NULL for a plain put */
    int64_t expires;
    int claimed;
};

static enum r2b_status put_body(struct pg_impl *p, void *arg, int *lost, struct r2b_error *err)
{
    const struct put_arg *a = arg;
    const struct r2b_manifest_record *r = a->rec;
    struct num owner, status, size, now;
    struct num expires;
    const char *vals[15] = {
        r->key,
        r->bucket,
        r->style,
        r2b_visibility_name(r->visibility),
        i64(&owner, r->owner_id),
        r->status_id ? i64(&status, r->status_id) : NULL,
        r->content_type,
        u64(&size, r->size_bytes),
        r->sha256,
        r->etag,
        r2b_state_name(r->state),
        i64(&now, a->now),
        r->source_path,
        a->worker,
        a->worker ? i64(&expires, a->expires) : NULL,
    };
    const char *aud_vals[2] = {r->key, a->aud};
    enum r2b_status st;

    if (a->worker) {
        struct put_arg *w = arg;
        PGresult *res = NULL;

        if ((st = run(p, S_CLAIM, vals, "claim", lost, &res, err)) != R2B_OK)
            return st;
        w->claimed = PQntuples(res) > 0;
        PQclear(res);
        if (!w->claimed)
            return R2B_OK; /* another worker's, or stored: nothing written */
    } else if ((st = run(p, S_UPSERT, vals, "put", lost, NULL, err)) != R2B_OK) {
        return st;
    }
    /* the upsert locked the row first, so the audience below is ours alone */
    if ((st = run(p, S_AUD_CLEAR, aud_vals, "put", lost, NULL, err)) != R2B_OK || !a->aud)
        return st;
    return run(p, S_AUD_ADD, aud_vals, "put", lost, NULL, err);
}

static enum r2b_status pg_put(struct r2b_manifest *m, const struct r2b_manifest_record *rec,
                              const int64_t *aud, size_t n_aud, int64_t now, struct r2b_error *err)
{
    struct r2b_buf b;
    struct put_arg a = {rec, NULL, now, NULL, 0, 0};
    enum r2b_status st = R2B_OK;

    r2b_buf_init(&b, 22 * n_aud + 3); /* "-9223372036854775808," per id, braces */
    if (n_aud > 0 && (st = id_array(aud, n_aud, &b, err)) == R2B_OK)
        a.aud = r2b_buf_str(&b);
    if (st == R2B_OK)
        st = write_txn(m->impl, "put", put_body, &a, err);
    r2b_buf_release(&b);
    return st;
}

static enum r2b_status pg_claim(struct r2b_manifest *m, const struct r2b_manifest_record *rec,
                                const int64_t *aud, size_t n_aud, const char *worker, int64_t now,
                                int64_t expires, int *claimed, struct r2b_error *err)
{
    struct r2b_buf b;
    struct put_arg a = {rec, NULL, now, worker, expires, 0};
    enum r2b_status st = R2B_OK;

    r2b_buf_init(&b, 22 * n_aud + 3);
    if (n_aud > 0 && (st = id_array(aud, n_aud, &b, err)) == R2B_OK)
        a.aud = r2b_buf_str(&b);
    if (st == R2B_OK)
        st = write_txn(m->impl, "claim", put_body, &a, err);
    *claimed = st == R2B_OK && a.claimed;
    r2b_buf_release(&b);
    return st;
}

static enum r2b_status pg_get(struct r2b_manifest *m, const char *key,
                              struct r2b_manifest_record *out, struct r2b_error *err)
{
    const char *vals[1] = {key};
    PGresult *res;
    enum r2b_status st = read_query(m->impl, S_GET, vals, "get", &res, err);

    if (st != R2B_OK)
        return st;
    if (PQntuples(res) == 0)
        st = r2b_error_set(err, R2B_ERR_NOT_FOUND, "no manifest record for '%s'", key);
    else
        read_row(res, 0, out);
    PQclear(res);
    return st;
}

struct update_arg {
    enum stmt_id id;
    const char *const *vals;
    const char *what;
};

static enum r2b_status update_body(struct pg_impl *p, void *arg, int *lost, struct r2b_error *err)
{
    const struct update_arg *a = arg;

    return update_one(p, a->id, a->vals, a->what, lost, err);
}

static enum r2b_status pg_set_state(struct r2b_manifest *m, const char *key, enum r2b_state state,
                                    const char *etag, uint64_t size_bytes, int64_t now,
                                    struct r2b_error *err)
{
    int stored = state == R2B_STATE_STORED && etag != NULL;
    struct num t, size;
    const char *vals[5] = {key, r2b_state_name(state), i64(&t, now), etag, u64(&size, size_bytes)};
    struct update_arg a = {stored ? S_SET_STATE_STORED : S_SET_STATE, vals, "set state"};

    return write_txn(m->impl, a.what, update_body, &a, err);
}

static enum r2b_status pg_set_visibility(struct r2b_manifest *m, const char *key,
                                         enum r2b_visibility vis, const char *bucket, int64_t now,
                                         struct r2b_error *err)
{
    struct num t;
    const char *vals[4] = {key, r2b_visibility_name(vis), bucket, i64(&t, now)};
    struct update_arg a = {S_SET_VIS, vals, "set visibility"};

    return write_txn(m->impl, a.what, update_body, &a, err);
}

static enum r2b_status pg_in_audience(struct r2b_manifest *m, const char *key, int64_t account_id,
                                      int *yes, struct r2b_error *err)
{
    struct num id;
    const char *vals[2] = {key, i64(&id, account_id)};
    PGresult *res;
    enum r2b_status st = read_query(m->impl, S_IN_AUD, vals, "audience lookup", &res, err);

    if (st != R2B_OK)
        return st;
    *yes = PQntuples(res) > 0;
    PQclear(res);
    return R2B_OK;
}

struct aud_arg {
    const char *key;
    const char *ids; /* array literal, NULL when empty */
    int add;
    int64_t now;
};

static enum r2b_status aud_body(struct pg_impl *p, void *arg, int *lost, struct r2b_error *err)
{
    const struct aud_arg *a = arg;
    struct num t;
    const char *touch[2] = {a->key, i64(&t, a->now)};
    const char *vals[2] = {a->key, a->ids};
    enum r2b_status st;

    /* proves the record exists and locks it: changes to one audience take turns */
    if ((st = update_one(p, S_TOUCH, touch, "audience", lost, err)) != R2B_OK || !a->ids)
        return st;
    return run(p, a->add ? S_AUD_ADD : S_AUD_DEL, vals, "audience", lost, NULL, err);
}

static enum r2b_status pg_audience_change(struct r2b_manifest *m, const char *key,
                                          const int64_t *ids, size_t n, int add, int64_t now,
                                          struct r2b_error *err)
{
    struct r2b_buf b;
    struct aud_arg a = {key, NULL, add, now};
    enum r2b_status st = R2B_OK;

    r2b_buf_init(&b, 22 * n + 3);
    if (n > 0 && (st = id_array(ids, n, &b, err)) == R2B_OK)
        a.ids = r2b_buf_str(&b);
    if (st == R2B_OK)
        st = write_txn(m->impl, "audience", aud_body, &a, err);
    r2b_buf_release(&b);
    return st;
}

static enum r2b_status pg_audience(struct r2b_manifest *m, const char *key, int64_t **ids,
                                   size_t *n, struct r2b_error *err)
{
    const char *vals[1] = {key};
    PGresult *res;
    enum r2b_status st = read_query(m->impl, S_AUD_LIST, vals, "audience", &res, err);
    int rows;

    if (st != R2B_OK)
        return st;
    rows = PQntuples(res);
    if (rows == 0) {
        st = r2b_error_set(err, R2B_ERR_NOT_FOUND, "no manifest record for '%s'", key);
    } else if (!PQgetisnull(res, 0, 0)) { /* NULL: the record has no audience */
        *ids = malloc((size_t)rows * sizeof(**ids));
        if (*ids == NULL) {
            st = r2b_error_set(err, R2B_ERR_NOMEM, "out of memory");
        } else {
            for (int i = 0; i < rows; i++)
                (*ids)[i] = col_i64(res, i, 0);
            *n = (size_t)rows;
        }
    }
    PQclear(res);
    return st;
}

/* Length of the valid UTF-8 that starts `s` (r2b_utf8_valid's rules). */
static size_t utf8_valid_prefix(const unsigned char *s, size_t n)
{
    size_t i = 0, len;

    while (i < n) {
        len = s[i] < 0x80   ? 1
              : s[i] < 0xC2 ? 0
              : s[i] < 0xE0 ? 2
              : s[i] < 0xF0 ? 3
              : s[i] < 0xF5 ? 4
                            : 0;
        if (len == 0 || i + len > n || !r2b_utf8_valid((const char *)s + i, len))
            break;
        i += len;
    }
    return i;
}

static size_t utf8_encode(uint32_t cp, unsigned char *out)
{
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xC0 | cp >> 6);
        out[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | cp >> 12);
        out[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | cp >> 18);
    out[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/*
 * The smallest string above every string that starts with the valid UTF-8
 * `lo` (n bytes): lo with its last code point incremented, dropping
 * trailing U+10FFFF. `out` holds n + 4 bytes. 0 when there is no such bound.
 * Keys are valid UTF-8 and UTF-8 byte order is code point order, so the
 * keys with prefix lo are exactly those in [lo, out).
 */
static int prefix_upper(const unsigned char *lo, size_t n, unsigned char *out)
{
    while (n > 0) {
        size_t start = n - 1;
        uint32_t cp;

        while (start > 0 && (lo[start] & 0xC0) == 0x80)
            start--;
        cp = lo[start] < 0x80   ? lo[start]
             : lo[start] < 0xE0 ? lo[start] & 0x1Fu
             : lo[start] < 0xF0 ? lo[start] & 0x0Fu
                                : lo[start] & 0x07u;
        for (size_t k = start + 1; k < n; k++)
            cp = cp << 6 | (lo[k] & 0x3Fu);
        if (cp < 0x10FFFF) {
            cp = cp + 1 == 0xD800 ? 0xE000 : cp + 1; /* no surrogates in UTF-8 */
            memcpy(out, lo, start);
            out[start + utf8_encode(cp, out + start)] = '\0';
            return 1;
        }
        n = start;
    }
    return 0;
}

static enum r2b_status pg_list(struct r2b_manifest *m, int visibility, int state,
                               const char *prefix, r2b_manifest_cb cb, void *ud,
                               struct r2b_error *err)
{
    struct pg_impl *p = m->impl;
    struct r2b_manifest_record rec;
    size_t plen = prefix ? strlen(prefix) : 0, vlen;
    unsigned char lo[R2B_MANIFEST_MAX_KEY_BYTES + 1], hi[R2B_MANIFEST_MAX_KEY_BYTES + 5];
    char *last = NULL;
    const char *vals[5];
    enum r2b_status st = R2B_OK;
    int has_hi, stop = 0;

    if (plen > R2B_MANIFEST_MAX_KEY_BYTES)
        return R2B_OK; /* no key is that long */
    /* The range covers the prefix's valid UTF-8 part; a partial character at
     * its end (a byte prefix of some keys) is checked byte-wise below. */
    vlen = utf8_valid_prefix((const unsigned char *)(prefix ? prefix : ""), plen);
    memcpy(lo, prefix ? prefix : "", vlen);
    lo[vlen] = '\0';
    has_hi = prefix_upper(lo, vlen, hi);
    vals[0] = "";
    vals[1] = (const char *)lo;
    vals[2] = visibility >= 0 ? r2b_visibility_name((enum r2b_visibility)visibility) : NULL;
    vals[3] = state >= 0 ? r2b_state_name((enum r2b_state)state) : NULL;
    vals[4] = has_hi ? (const char *)hi : NULL;
    while (!stop) {
        PGresult *res;
        int rows;

        if ((st = read_query(p, has_hi ? S_LIST_UPPER : S_LIST, vals, "list", &res, err)) != R2B_OK)
            break;
        rows = PQntuples(res);
        for (int i = 0; i < rows && !stop; i++) {
            if (plen > vlen && strncmp(PQgetvalue(res, i, 0), prefix, plen) != 0)
                continue;
            read_row(res, i, &rec);
            stop = cb(ud, &rec) != 0;
        }
        if (rows > 0 && !stop) { /* the next page starts after this one's last key */
            free(last);
            last = r2b_strdup(PQgetvalue(res, rows - 1, 0));
            vals[0] = last;
            if (last == NULL)
                st = r2b_error_set(err, R2B_ERR_NOMEM, "out of memory");
        }
        stop |= rows < LIST_PAGE_ROWS || st != R2B_OK;
        PQclear(res);
    }
    free(last);
    return st;
}

static enum r2b_status pg_claim_owners(struct r2b_manifest *m, const char *prefix,
                                       int (*cb)(void *ud, const char *owner), void *ud,
                                       struct r2b_error *err)
{
    struct pg_impl *p = m->impl;
    const char *vals[1] = {prefix};
    enum r2b_status st;
    PGresult *res;
    int lost = 0;

    if ((st = ensure_session(p, err)) != R2B_OK)
        return st;
    res = PQexecParams(p->conn,
                       "SELECT DISTINCT claim_owner FROM r2b_objects WHERE claim_owner <> ''"
                       " AND state <> 'stored' AND left(claim_owner, length($1)) = $1",
                       1, NULL, vals, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        st = pg_fail(p, res, "claims", &lost, err);
        PQclear(res);
        return st;
    }
    for (int i = 0; i < PQntuples(res); i++)
        if (cb(ud, PQgetvalue(res, i, 0)) != 0)
            break;
    PQclear(res);
    return R2B_OK;
}

static enum r2b_status pg_release_owner(struct r2b_manifest *m, const char *owner,
                                        struct r2b_error *err)
{
    struct pg_impl *p = m->impl;
    const char *vals[1] = {owner};
    enum r2b_status st;
    PGresult *res;
    int lost = 0;

    if ((st = ensure_session(p, err)) != R2B_OK)
        return st;
    res = PQexecParams(p->conn,
                       "UPDATE r2b_objects SET claim_owner = '', claim_expires = 0"
                       " WHERE claim_owner = $1",
                       1, NULL, vals, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        st = pg_fail(p, res, "release claims", &lost, err);
    PQclear(res);
    return st;
}

static const struct r2b_manifest_ops pg_ops = {
    .name = "postgresql",
    .close = pg_close,
    .put = pg_put,
    .claim = pg_claim,
    .claim_owners = pg_claim_owners,
    .release_owner = pg_release_owner,
    .get = pg_get,
    .set_state = pg_set_state,
    .set_visibility = pg_set_visibility,
    .in_audience = pg_in_audience,
    .audience_change = pg_audience_change,
    .audience = pg_audience,
    .list = pg_list,
};

/* --- opening ------------------------------------------------------------------------------ */

/* The schema version, 0 when there is no r2b_schema table yet. */
static enum r2b_status read_version(struct pg_impl *p, int *version, struct r2b_error *err)
{
    PGresult *res = PQexec(p->conn, "SELECT to_regclass('r2b_schema') IS NOT NULL");
    enum r2b_status st = R2B_OK;
    int lost;

    *version = 0;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        st = pg_fail(p, res, "read schema version", &lost, err);
    } else if (strcmp(PQgetvalue(res, 0, 0), "t") == 0) {
        PQclear(res);
        res = PQexec(p->conn, "SELECT coalesce(max(version), 0) FROM r2b_schema");
        if (PQresultStatus(res) != PGRES_TUPLES_OK)
            st = pg_fail(p, res, "read schema version", &lost, err);
        else
            *version = (int)col_i64(res, 0, 0);
    }
    PQclear(res);
    return st;
}

/*
 * Under the migration lock. Not to_regclass(): it looks names up without a
 * lock, so it may answer from a cache entry older than the lock wait and
 * miss a table another process just created. CREATE TABLE and a SELECT
 * from the table look the name up afresh.
 */
static enum r2b_status read_version_locked(struct pg_impl *p, int *version, struct r2b_error *err)
{
    PGresult *res;
    enum r2b_status st;
    int lost;

    *version = 0;
    st = exec_simple(p, "CREATE TABLE IF NOT EXISTS r2b_schema (version INTEGER NOT NULL)",
                     "create schema", &lost, err);
    if (st != R2B_OK)
        return st;
    res = PQexec(p->conn, "SELECT coalesce(max(version), 0) FROM r2b_schema");
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        st = pg_fail(p, res, "read schema version", &lost, err);
    else
        *version = (int)col_i64(res, 0, 0);
    PQclear(res);
    return st;
}

static enum r2b_status migrate(struct pg_impl *p, struct r2b_error *err)
{
    enum r2b_status st;
    int version, lost;

    /* the common case, a current schema, needs no lock and no CREATE privilege */
    if ((st = read_version(p, &version, err)) != R2B_OK)
        return st;
    if (version < R2B_MANIFEST_SCHEMA_VERSION) {
        /* one migrator at a time; the others wait, then find the work done */
        if ((st = exec_simple(p, "BEGIN", "migrate", &lost, err)) != R2B_OK)
            return st;
        st = exec_simple(p, "SELECT pg_advisory_xact_lock(" MIGRATE_LOCK_KEY ")", "migrate", &lost,
                         err);
        if (st == R2B_OK)
            st = read_version_locked(p, &version, err);
        if (st == R2B_OK && version < 1) {
            st = exec_simple(p, R2B_MANIFEST_SCHEMA_V1 PG_SCHEMA_V1_EXTRA, "create schema", &lost,
                             err);
            if (st == R2B_OK) {
                const char *v[1] = {"1"};
                PGresult *res =
                    PQexecParams(p->conn, "INSERT INTO r2b_schema (version) VALUES ($1)", 1, NULL,
                                 v, NULL, NULL, 0);

                if (PQresultStatus(res) != PGRES_COMMAND_OK)
                    st = pg_fail(p, res, "create schema", &lost, err);
                PQclear(res);
                version = 1;
            }
        }
        if (st == R2B_OK && version < 2) {
            st = exec_simple(p, R2B_MANIFEST_SCHEMA_V2, "migrate schema", &lost, err);
            if (st == R2B_OK)
                st = exec_simple(p, "INSERT INTO r2b_schema (version) VALUES (2)", "migrate schema",
                                 &lost, err);
            version = 2;
        }
        /* later versions: if (st == R2B_OK && version < 3) { ...; version = 3; } */
        if (st == R2B_OK)
            st = exec_simple(p, "COMMIT", "migrate", &lost, err);
        if (st != R2B_OK) {
            exec_simple(p, "ROLLBACK", "rollback", &lost, NULL);
            return st;
        }
    }
    if (version > R2B_MANIFEST_SCHEMA_VERSION)
        return r2b_error_set(err, R2B_ERR_CONFIG,
                             "manifest '%s' has schema version %d, newer than this r2bridge (%d)",
                             p->desc, version, R2B_MANIFEST_SCHEMA_VERSION);
    return R2B_OK;
}

static void no_notices(void *arg, const char *message)
{
    (void)arg; /* "relation already exists, skipping" and the like: a library does not print */
    (void)message;
}

struct r2b_manifest *r2b_manifest__open_pg(const char *conninfo, struct r2b_error *err)
{
    /* later keywords override earlier ones: the URL may change the defaults
     * before it, never the client encoding after it (keys are UTF-8) */
    const char *const keys[] = {
        "connect_timeout", "keepalives_idle", "fallback_application_name",
        "dbname",          "client_encoding", NULL,
    };
    const char *const vals[] = {
        CONNECT_TIMEOUT_S, KEEPALIVES_IDLE_S, "r2bridge", conninfo, "UTF8", NULL,
    };
    struct r2b_manifest *m = calloc(1, sizeof(*m));
    struct pg_impl *p = calloc(1, sizeof(*p));
    char raw[2][SECRET_MAX], parsed[SECRET_MAX], line[300];
    int bad_url;

    if (m == NULL || p == NULL) {
        free(m);
        free(p);
        r2b_error_set(err, R2B_ERR_NOMEM, "out of memory");
        return NULL;
    }
    m->ops = &pg_ops;
    m->impl = p;
    bad_url = describe(conninfo, p->desc, sizeof(p->desc)) != 0;
    p->conn = PQconnectdbParams(keys, vals, 1);
    if (p->conn == NULL) {
        r2b_error_set(err, R2B_ERR_NOMEM, "out of memory");
        goto fail;
    }
    PQsetNoticeProcessor(p->conn, no_notices, NULL);
    if (PQstatus(p->conn) != CONNECTION_OK) {
        first_line(PQerrorMessage(p->conn), line, sizeof(line));
        /* libpq quotes what it cannot parse, which may be the password */
        find_secrets(conninfo, raw, parsed);
        redact(line, raw[0]);
        redact(line, raw[1]);
        redact(line, parsed);
        wipe(raw, sizeof(raw));
        wipe(parsed, sizeof(parsed));
        if (bad_url) {
            r2b_error_set(err, R2B_ERR_CONFIG, "invalid postgresql manifest url: %s", line);
        } else {
            r2b_error_set(err, R2B_ERR_IO, "cannot connect to manifest '%s': %s", p->desc, line);
            if (err)
                err->retryable = 1;
        }
        goto fail;
    }
    if (session_setup(p, err) != R2B_OK || migrate(p, err) != R2B_OK)
        goto fail;
    return m;
fail:
    pg_close(m);
    return NULL;
}
