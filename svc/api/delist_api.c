/*
 * delist_api.c - WatchDelistings (a watcher of svc/delist/ per call, its
 * events turned into messages), AckDelisting and GetDelistingCompliance.
 */
#include "audit_api.h"
#include "check.h"
#include "delist.h"
#include "tracecode/v1/audit.pb-c.h"
#include "tracecode/v1/verifier.pb-c.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UNACKED_MAX 10000 /* unacknowledged ids a compliance report lists */
#define LISTING_ID_MAX 128
#define PLATFORM_ID_MAX 64

/* --- WatchDelistings ---------------------------------------------------------- */

/* A call's watcher, and the event of the message being sent (one at a
 * time per stream). */
typedef struct watch_call {
    delist_watcher *w;
    Tracecode__V1__DelistingNotice notice;
    Tracecode__V1__Heartbeat heartbeat;
} watch_call;

svc_code api_watch_open(svc_ctx *c, const void *req, void **state, svc_status *st)
{
    const Tracecode__V1__WatchDelistingsRequest *q = req;
    delist_hub *h = c->svc->hub;
    char err[STORE_ERR_MAX];
    watch_call *wc;
    store_err e;

    if (!h)
        return svc_fail(st, SVC_UNAVAILABLE, "this node does not serve delisting watchers");
    if (!check_id(st, "the caller's platform id", c->subject, PLATFORM_ID_MAX))
        return st->code;
    if (strlen(q->cursor) > STORE_CURSOR_MAX)
        return svc_fail(st, SVC_INVALID_ARGUMENT, "cursor is longer than a notice id");
    e = store_notices_check(c->svc->store, c->subject, q->cursor, err, sizeof(err));
    if (e)
        return svc_store_fail(st, e, err);
    if (!(wc = calloc(1, sizeof(*wc))))
        return svc_fail(st, SVC_RESOURCE_EXHAUSTED, "out of memory");
    if (!(wc->w = delist_watch(h, c->subject, q->cursor, c, st))) {
        free(wc);
        return st->code;
    }
    *state = wc;
    return SVC_OK;
}

void api_watch_close(svc_ctx *c, void *state)
{
    watch_call *wc = state;

    (void)c;
    delist_unwatch(wc->w);
    free(wc);
}

svc_code api_watch_next(svc_ctx *c, void *state, void *resp, int *done, svc_status *st)
{
    watch_call *wc = state;
    Tracecode__V1__WatchDelistingsResponse *out = resp;
    delist_event ev = {0};
    const store_notice *sn;

    if (delist_next(c, wc->w, &ev, st) != SVC_OK)
        return st->code;
    if (ev.wait) {
        *done = SVC_STREAM_WAIT;
        return SVC_OK;
    }
    if (ev.heartbeat) {
        tracecode__v1__heartbeat__init(&wc->heartbeat);
        wc->heartbeat.sent_unix = svc_now_unix();
        out->event_case = TRACECODE__V1__WATCH_DELISTINGS_RESPONSE__EVENT_HEARTBEAT;
        out->heartbeat = &wc->heartbeat;
        return SVC_OK;
    }
    sn = ev.notice;
    tracecode__v1__delisting_notice__init(&wc->notice);
    out->event_case = TRACECODE__V1__WATCH_DELISTINGS_RESPONSE__EVENT_NOTICE;
    out->notice = &wc->notice;
    wc->notice.notice_id = (char *)sn->id;
    wc->notice.platform_id = (char *)sn->platform;
    wc->notice.certificate_number = (char *)sn->cert;
    wc->notice.batch_id = sn->batch;
    wc->notice.reason = (char *)sn->reason;
    wc->notice.new_status = (Tracecode__V1__CertificateStatus)sn->status;
    wc->notice.n_listing_ids = sn->nlistings;
    wc->notice.listing_ids = sn->listings;
    wc->notice.effective_unix = sn->effective;
    wc->notice.signature.data = (uint8_t *)ev.sig;
    wc->notice.signature.len = CODEC_SIG_BYTES;
    wc->notice.key_id = ev.kid;
    return SVC_OK;
}

/* --- AckDelisting ---------------------------------------------------------------- */

svc_code api_ack_delisting(svc_ctx *c, const void *req, void *resp, svc_status *st)
{
    const Tracecode__V1__AckDelistingRequest *q = req;
    char err[STORE_ERR_MAX], field[48], actor[SVC_ACTOR_MAX];
    store_idem idem;
    int64_t now = svc_now_unix(), delisted = q->delisted_unix;
    uint64_t ms, seq;
    store_ack res;
    store_err e;
    size_t i;

    (void)resp;
    if (!check_id(st, "the caller's platform id", c->subject, PLATFORM_ID_MAX) ||
        !svc_idem(c, q->request_id, &idem, actor, st))
        return st->code;
    if (strlen(q->notice_id) > STORE_CURSOR_MAX || store_cursor_parse(q->notice_id, &ms, &seq) != 0)
        return svc_fail(st, SVC_INVALID_ARGUMENT,
                        "notice_id '%.48s' is not a notice id (MS-SEQ, as sent)", q->notice_id);
    if (q->n_listing_ids > STORE_NOTICE_LISTINGS)
        return svc_fail(st, SVC_INVALID_ARGUMENT,
                        "listing_ids holds %zu ids; a notice has at most %d", q->n_listing_ids,
                        STORE_NOTICE_LISTINGS);
    for (i = 0; i < q->n_listing_ids; i++) {
        snprintf(field, sizeof(field), "listing_ids[%zu]", i);
        if (!check_id(st, field, q->listing_ids[i], LISTING_ID_MAX))
            return st->code;
    }
    if (delisted == 0)
        delisted = now;
    if (delisted < 0 || delisted > now + 300)
        return svc_fail(st, SVC_INVALID_ARGUMENT,
                        "delisted_unix %" PRId64 " is in the future (now %" PRId64 ")", delisted,
                        now);
    e = store_ack_notice(c->svc->store, &idem, c->subject, q->notice_id,
                         (const char *const *)q->listing_ids, q->n_listing_ids, delisted, &res, err,
                         sizeof(err));
    return svc_store_fail(st, e, err);
}

/* --- AuditService.GetDelistingCompliance ------------------------------------------ */

svc_code api_delisting_compliance(svc_ctx *c, const void *req, void *resp, svc_status *st)
{
    const Tracecode__V1__GetDelistingComplianceRequest *q = req;
    Tracecode__V1__GetDelistingComplianceResponse *out = resp;
    char err[STORE_ERR_MAX], what[256];
    store_compliance r;
    store_err e;
    size_t i;

    if (!check_id(st, "platform_id", q->platform_id, PLATFORM_ID_MAX))
        return st->code;
    if (q->from_unix < 0 || q->to_unix < 0)
        return svc_fail(st, SVC_INVALID_ARGUMENT, "from_unix and to_unix must not be negative");
    snprintf(what, sizeof(what),
             "GetDelistingCompliance platform_id=%s from_unix=%" PRId64 " to_unix=%" PRId64,
             q->platform_id, q->from_unix, q->to_unix);
    if (audit_log_query(c, q->platform_id, what, st) != SVC_OK)
        return st->code;
    e = store_compliance_get(c->svc->store, q->platform_id, q->from_unix, q->to_unix, UNACKED_MAX,
                             &r, err, sizeof(err));
    if (e)
        return svc_store_fail(st, e, err);
    out->notices = r.notices;
    out->acked = r.acked;
    out->listings = r.listings;
    out->p50_seconds = r.p50_s;
    out->p99_seconds = r.p99_s;
    out->unacked = svc_alloc(c, (r.nunacked ? r.nunacked : 1) * sizeof(char *));
    if (!out->unacked) {
        store_compliance_free(&r);
        return svc_fail(st, SVC_RESOURCE_EXHAUSTED, "out of call memory");
    }
    for (i = 0; i < r.nunacked; i++)
        if ((out->unacked[out->n_unacked] = svc_strdup(c, r.unacked[i])) != NULL)
            out->n_unacked++;
    store_compliance_free(&r);
    return SVC_OK;
}
