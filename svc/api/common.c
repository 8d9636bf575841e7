/*
 * common.c - what the handlers share: the contract's numbers tied to the
 * service's, the caller as the audit log names it, idempotency keys,
 * read-your-writes. The node's own helpers are in svc/node/node.c.
 */
#include "api.h"
#include "check.h"
#include "limit.h"
#include "tracecode/v1/types.pb-c.h"
#include "verify.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/*
 * The numbers the service keeps are the public contract's: verdicts, code
 * profiles, certificate statuses; and the replica's key kinds are the
 * keyring's. A change on either side that breaks one stops the build.
 */
#define SAME(a, b) _Static_assert((int)(a) == (int)(b), #a " is not " #b)
SAME(TC_GENUINE, TRACECODE__V1__VERDICT__VERDICT_GENUINE);
SAME(TC_MALFORMED, TRACECODE__V1__VERDICT__VERDICT_MALFORMED);
SAME(TC_FORGED, TRACECODE__V1__VERDICT__VERDICT_FORGED);
SAME(TC_UNKNOWN_BATCH, TRACECODE__V1__VERDICT__VERDICT_UNKNOWN_BATCH);
SAME(TC_RECALLED, TRACECODE__V1__VERDICT__VERDICT_RECALLED);
SAME(TC_CERT_SUSPENDED, TRACECODE__V1__VERDICT__VERDICT_CERT_SUSPENDED);
SAME(TC_CERT_REVOKED, TRACECODE__V1__VERDICT__VERDICT_CERT_REVOKED);
SAME(TC_CERT_EXPIRED, TRACECODE__V1__VERDICT__VERDICT_CERT_EXPIRED);
SAME(TC_LISTING_MISMATCH, TRACECODE__V1__VERDICT__VERDICT_LISTING_MISMATCH);
SAME(TC_ISSUER_SUSPENDED, TRACECODE__V1__VERDICT__VERDICT_ISSUER_SUSPENDED);
SAME(TC_KEY_COMPROMISED, TRACECODE__V1__VERDICT__VERDICT_KEY_COMPROMISED);
SAME(TC_CERT_CANCELLED, TRACECODE__V1__VERDICT__VERDICT_CERT_CANCELLED);
SAME(TC_GTIN_MISMATCH, TRACECODE__V1__VERDICT__VERDICT_GTIN_MISMATCH);
SAME(TC_ALREADY_SOLD, TRACECODE__V1__VERDICT__VERDICT_ALREADY_SOLD);
SAME(TC_VERDICT_LAST, TRACECODE__V1__VERDICT__VERDICT_ALREADY_SOLD);
_Static_assert(TC_VERDICT_LAST < TC_VERDICT_SLOTS &&
                   (TC_VERDICT_SLOTS & (TC_VERDICT_SLOTS - 1)) == 0,
               "verdict counters: a power of two above the last verdict");
SAME(REP_PROFILE_MAC, TRACECODE__V1__CODE_PROFILE__CODE_PROFILE_MAC);
SAME(REP_PROFILE_SIG, TRACECODE__V1__CODE_PROFILE__CODE_PROFILE_SIG);
SAME(REP_CERT_VALID, TRACECODE__V1__CERTIFICATE_STATUS__CERTIFICATE_STATUS_VALID);
SAME(REP_CERT_SUSPENDED, TRACECODE__V1__CERTIFICATE_STATUS__CERTIFICATE_STATUS_SUSPENDED);
SAME(REP_CERT_REVOKED, TRACECODE__V1__CERTIFICATE_STATUS__CERTIFICATE_STATUS_REVOKED);
SAME(REP_CERT_EXPIRED, TRACECODE__V1__CERTIFICATE_STATUS__CERTIFICATE_STATUS_EXPIRED);
SAME(REP_CERT_CANCELLED, TRACECODE__V1__CERTIFICATE_STATUS__CERTIFICATE_STATUS_CANCELLED);
SAME(REP_CERT_LAST, TRACECODE__V1__CERTIFICATE_STATUS__CERTIFICATE_STATUS_CANCELLED);
SAME(REP_KEY_MAC, KEYS_KIND_MAC);
SAME(REP_KEY_ED25519, KEYS_KIND_ED25519);
#undef SAME

void svc_actor(const svc_ctx *c, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s:%s", svc_role_name(c->role), c->subject);
}

int svc_idem(svc_ctx *c, const char *request_id, store_idem *idem, char *scope, svc_status *st)
{
    memset(idem, 0, sizeof(*idem));
    if (request_id && request_id[0] &&
        !check_id(st, "request_id", request_id, STORE_REQUEST_ID_MAX))
        return 0;
    svc_actor(c, scope, SVC_ACTOR_MAX);
    idem->scope = scope;
    idem->request_id = request_id;
    memcpy(idem->fp, c->fp, sizeof(idem->fp));
    /* Every write passes here: the caller's write_rate, if it has one. */
    return limits_write(c->svc->limits, c, st) == SVC_OK;
}

char *svc_strdup(svc_ctx *c, const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = c->alloc(c->arena, n);

    if (p)
        memcpy(p, s, n);
    return p;
}

int svc_wait_revision(const svc *s, uint64_t rev, int64_t timeout_ms)
{
    int64_t until = svc_now_ms() + timeout_ms;
    struct timespec nap = {0, 200000}; /* 0.2 ms */

    while (rep_revision(s->replica) < rev) {
        if (svc_now_ms() >= until)
            return 0;
        nanosleep(&nap, NULL);
    }
    return 1;
}

/* Read-your-writes: at most this long, and never past the call's deadline. */
#define READ_OWN_WRITE_MS 5000
#define DEADLINE_MARGIN_MS 50

void svc_settle(svc_ctx *c, uint64_t rev)
{
    int64_t left = c->deadline_ms == INT64_MAX ? READ_OWN_WRITE_MS
                                               : c->deadline_ms - svc_now_ms() - DEADLINE_MARGIN_MS;

    /* The write is stored: it succeeds whether or not this node's replica
     * has caught up when the wait ends (the answer carries the revision;
     * a read sent to this node just after may not show it yet). */
    if (left > 0)
        svc_wait_revision(c->svc, rev, left < READ_OWN_WRITE_MS ? left : READ_OWN_WRITE_MS);
}

void svc_product_fill(Tracecode__V1__Product *pm, const rep_product *p)
{
    tracecode__v1__product__init(pm);
    pm->product_id = (char *)p->product_id;
    pm->certificate_number = p->cert->number;
    pm->category_code = (char *)p->category;
    pm->brand = (char *)p->brand;
    pm->model = (char *)p->model;
    pm->gtin = (char *)p->gtin;
    pm->issuer_credit_code = p->mfr->credit_code;
    pm->registered_unix = p->registered;
}
