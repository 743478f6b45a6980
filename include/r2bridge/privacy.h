/*
 * The privacy check: a pure decision from a manifest record, a viewer and a
 * requested TTL. Default deny.
 *
 *   record                         viewer                     result
 *   none, or state not stored      anyone                     deny: unknown / pending / deleted
 *   public, unlisted               anyone                     public URL (no signature)
 *   private, direct                owner or in the audience   presigned GET, TTL capped
 *   private, direct                anonymous / not in it      deny: not_in_audience
 *
 * TTL caps default to 900 s (private) and 300 s (direct), never above R2's
 * 604,800 s. A requested TTL above the cap is lowered to the cap and the
 * decision says so; a requested TTL of 0 means "the cap".
 *
 * Nothing here logs: a decision names a viewer and an object, and the check
 * must never record who viewed what. Callers count outcomes, nothing more.
 */
#ifndef R2BRIDGE_PRIVACY_H
#define R2BRIDGE_PRIVACY_H

#include "manifest.h"

#define R2B_PRIVACY_DEFAULT_PRIVATE_TTL_S 900L
#define R2B_PRIVACY_DEFAULT_DIRECT_TTL_S 300L
#define R2B_PRIVACY_MAX_TTL_S 604800L

enum r2b_privacy_outcome {
    R2B_PRIVACY_DENY = 0,
    R2B_PRIVACY_PUBLIC_URL, /* unsigned URL under the alias host */
    R2B_PRIVACY_PRESIGNED,  /* presigned GET, ttl_s seconds */
};

/* Append-only; names are stable ("unknown", ...). */
enum r2b_deny_reason {
    R2B_DENY_NONE = 0,
    R2B_DENY_UNKNOWN,         /* no record */
    R2B_DENY_PENDING,         /* not yet confirmed stored */
    R2B_DENY_DELETED,         /* deleted (or being deleted) */
    R2B_DENY_NOT_IN_AUDIENCE, /* anonymous, or not the owner nor in the audience */
};

struct r2b_privacy_policy {
    long private_ttl_s; /* cap for private (followers-only) media */
    long direct_ttl_s;  /* cap for direct-message media */
};

struct r2b_privacy_viewer {
    int anonymous;      /* 1: no account */
    int64_t account_id; /* when not anonymous */
    int in_audience;    /* 1 when the manifest lists account_id in the record's audience */
};

struct r2b_privacy_decision {
    enum r2b_privacy_outcome outcome;
    enum r2b_deny_reason reason; /* R2B_DENY_NONE unless outcome == DENY */
    long ttl_s;                  /* for PRESIGNED */
    int ttl_capped;              /* 1 when the requested TTL was lowered to the cap */
};

/* Defaults: 900 s private, 300 s direct. */
void r2b_privacy_policy_init(struct r2b_privacy_policy *p);

/*
 * Decides. `rec` NULL means there is no record. `requested_ttl_s` <= 0 means
 * the cap. Pure: no I/O, no clock, no logging.
 */
void r2b_privacy_decide(const struct r2b_manifest_record *rec,
                        const struct r2b_privacy_viewer *viewer, long requested_ttl_s,
                        const struct r2b_privacy_policy *policy,
                        struct r2b_privacy_decision *out);

/* Whether the viewer's audience membership matters for `rec` (private/direct, stored,
 * viewer neither anonymous nor the owner): callers look it up only then. */
int r2b_privacy_needs_audience(const struct r2b_manifest_record *rec,
                               const struct r2b_privacy_viewer *viewer);

const char *r2b_deny_reason_name(enum r2b_deny_reason r);

#endif
