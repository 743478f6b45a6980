/* The privacy decision (see privacy.h): default deny, TTLs capped. */
#include "r2bridge/privacy.h"

static const char *const reason_names[] = {"none", "unknown", "pending", "deleted",
                                           "not_in_audience"};

const char *r2b_deny_reason_name(enum r2b_deny_reason r)
{
    return (unsigned)r < sizeof(reason_names) / sizeof(reason_names[0]) ? reason_names[r]
                                                                        : "unknown";
}

void r2b_privacy_policy_init(struct r2b_privacy_policy *p)
{
    p->private_ttl_s = R2B_PRIVACY_DEFAULT_PRIVATE_TTL_S;
    p->direct_ttl_s = R2B_PRIVACY_DEFAULT_DIRECT_TTL_S;
}

static int is_restricted(enum r2b_visibility v)
{
    return v != R2B_VIS_PUBLIC && v != R2B_VIS_UNLISTED; /* anything unknown is restricted */
}

int r2b_privacy_needs_audience(const struct r2b_manifest_record *rec,
                               const struct r2b_privacy_viewer *viewer)
{
    return rec && rec->state == R2B_STATE_STORED && is_restricted(rec->visibility) &&
           !viewer->anonymous && viewer->account_id != rec->owner_id;
}

static void deny(struct r2b_privacy_decision *out, enum r2b_deny_reason why)
{
    out->outcome = R2B_PRIVACY_DENY;
    out->reason = why;
    out->ttl_s = 0;
    out->ttl_capped = 0;
}

void r2b_privacy_decide(const struct r2b_manifest_record *rec,
                        const struct r2b_privacy_viewer *viewer, long requested_ttl_s,
                        const struct r2b_privacy_policy *policy, struct r2b_privacy_decision *out)
{
    long cap;

    if (rec == NULL) {
        deny(out, R2B_DENY_UNKNOWN);
        return;
    }
    if (rec->state == R2B_STATE_PENDING) {
        deny(out, R2B_DENY_PENDING);
        return;
    }
    if (rec->state != R2B_STATE_STORED) {
        deny(out, R2B_DENY_DELETED);
        return;
    }
    if (!is_restricted(rec->visibility)) {
        out->outcome = R2B_PRIVACY_PUBLIC_URL;
        out->reason = R2B_DENY_NONE;
        out->ttl_s = 0;
        out->ttl_capped = 0;
        return;
    }
    if (viewer == NULL || viewer->anonymous ||
        (viewer->account_id != rec->owner_id && !viewer->in_audience)) {
        deny(out, R2B_DENY_NOT_IN_AUDIENCE);
        return;
    }
    cap = rec->visibility == R2B_VIS_PRIVATE ? policy->private_ttl_s : policy->direct_ttl_s;
    if (cap < 1 || cap > R2B_PRIVACY_MAX_TTL_S) /* a bad policy never widens access */
        cap = rec->visibility == R2B_VIS_PRIVATE ? R2B_PRIVACY_DEFAULT_PRIVATE_TTL_S
                                                 : R2B_PRIVACY_DEFAULT_DIRECT_TTL_S;
    out->outcome = R2B_PRIVACY_PRESIGNED;
    out->reason = R2B_DENY_NONE;
    out->ttl_capped = requested_ttl_s > cap;
    out->ttl_s = (requested_ttl_s <= 0 || requested_ttl_s > cap) ? cap : requested_ttl_s;
}
