/*
 * verify_api.c - VerifierService.VerifyCode / VerifyBatch / VerifyStream
 * (each message): the hot path. One replica read section and one
 * revision per request; no lock and no malloc per code (the response lives
 * in the call's arena; product strings point into the replica, whose
 * records are never freed).
 */
#include "api.h"
#include "audit.h"
#include "limit.h"
#include "tracecode/v1/verifier.pb-c.h"
#include "verify.h"

#include <stddef.h>
#include <string.h>

#define BATCH_MAX 10000
#define GROUP 128 /* codes staged together (see tc_verify_many) */

typedef Tracecode__V1__VerifyResult VerifyResult;

/* VerifyCode and VerifyStream carry the same fields under two names: one
 * handler reads both. */
_Static_assert(sizeof(Tracecode__V1__VerifyCodeRequest) ==
                       sizeof(Tracecode__V1__VerifyStreamRequest) &&
                   offsetof(Tracecode__V1__VerifyCodeRequest, code) ==
                       offsetof(Tracecode__V1__VerifyStreamRequest, code) &&
                   offsetof(Tracecode__V1__VerifyCodeRequest, listing) ==
                       offsetof(Tracecode__V1__VerifyStreamRequest, listing) &&
                   offsetof(Tracecode__V1__VerifyCodeRequest, view) ==
                       offsetof(Tracecode__V1__VerifyStreamRequest, view),
               "VerifyCodeRequest and VerifyStreamRequest must share their layout");
_Static_assert(sizeof(Tracecode__V1__VerifyCodeResponse) ==
                       sizeof(Tracecode__V1__VerifyStreamResponse) &&
                   offsetof(Tracecode__V1__VerifyCodeResponse, result) ==
                       offsetof(Tracecode__V1__VerifyStreamResponse, result),
               "VerifyCodeResponse and VerifyStreamResponse must share their layout");

static void fill(svc_ctx *c, const tc_vres *v, int full, uint64_t rev, int stale, VerifyResult *out)
{
    out->verdict = (Tracecode__V1__Verdict)v->verdict;
    out->batch_id = v->batch_id;
    out->serial = v->serial;
    out->certificate_status = (Tracecode__V1__CertificateStatus)v->cert_status;
    out->as_of_revision = rev;
    out->stale = stale;
    if (v->detail[0])
        out->detail = svc_strdup(c, v->detail);
    if (full && v->batch) {
        const rep_product *p = v->batch->product;
        Tracecode__V1__Product *pm = svc_alloc(c, sizeof(*pm));
        if (pm) {
            svc_product_fill(pm, p);
            out->product = pm;
        }
        out->certificate_number = p->cert->number;
        out->issuer_credit_code = p->mfr->credit_code;
        /* The name lives in a version that may be replaced after this
         * request's read section: copy it. */
        out->issuer_name =
            svc_strdup(c, atomic_load_explicit(&p->mfr->v, memory_order_acquire)->name);
    }
    if (!out->detail)
        out->detail = (char *)"";
    if (!out->issuer_name)
        out->issuer_name = (char *)"";
}

/* Counted per group: one atomic add per verdict seen, not per code. */
void svc_verify(svc *s, const char *code, size_t len, const tc_listing *listing, int64_t now,
                tc_vres *out)
{
    const keys_ring *ring = svc_ring(s);

    tc_verify(s->replica, ring, code, len, listing, now, out);
    if (out->unknown_kid && svc_keys_refresh(s, ring, out->unknown_kid))
        tc_verify(s->replica, svc_ring(s), code, len, listing, now, out);
}

static void count_verdicts(svc_ctx *c, const tc_vres *v, size_t n)
{
    uint32_t k[TC_VERDICT_SLOTS] = {0};
    size_t i;

    for (i = 0; i < n; i++)
        k[v[i].verdict & (TC_VERDICT_SLOTS - 1)]++;
    for (i = 0; i < TC_VERDICT_SLOTS; i++)
        if (k[i])
            atomic_fetch_add_explicit(&c->svc->verdicts[i], k[i], memory_order_relaxed);
    audit_count(c->svc->audit, c->subject, k);
}

static void one(svc_ctx *c, const Tracecode__V1__VerifyCodeRequest *q, int full, int64_t now,
                uint64_t rev, int stale, VerifyResult *out)
{
    tc_listing l, *lp = NULL;
    tc_vres v;

    if (q->listing) {
        l.category = q->listing->category_code;
        l.brand = q->listing->brand;
        l.model = q->listing->model;
        lp = &l;
    }
    svc_verify(c->svc, q->code, strlen(q->code), lp, now, &v);
    atomic_fetch_add_explicit(&c->svc->verdicts[v.verdict & (TC_VERDICT_SLOTS - 1)], 1,
                              memory_order_relaxed);
    audit_count_one(c->svc->audit, c->subject, v.verdict);
    fill(c, &v, full, rev, stale, out);
}

svc_code api_verify_code(svc_ctx *c, const void *req, void *resp, svc_status *st)
{
    const Tracecode__V1__VerifyCodeRequest *q = req;
    Tracecode__V1__VerifyCodeResponse *out = resp;
    uint64_t rev;
    int stale = svc_stale(c->svc);

    if (limits_verify(c->svc->limits, c, 1, st) != SVC_OK)
        return st->code;
    out->result = c->alloc(c->arena, sizeof(*out->result));
    if (!out->result)
        return svc_fail(st, SVC_RESOURCE_EXHAUSTED, "out of call memory");
    tracecode__v1__verify_result__init(out->result);
    rep_read_begin(c->svc->replica, c->reader);
    rev = rep_revision(c->svc->replica);
    one(c, q, q->view == TRACECODE__V1__VERIFY_VIEW__VERIFY_VIEW_FULL, svc_now_unix(), rev, stale,
        out->result);
    rep_read_end(c->svc->replica, c->reader);
    return SVC_OK;
}

svc_code api_verify_batch(svc_ctx *c, const void *req, void *resp, svc_status *st)
{
    const Tracecode__V1__VerifyBatchRequest *q = req;
    Tracecode__V1__VerifyBatchResponse *out = resp;
    int full = q->view == TRACECODE__V1__VERIFY_VIEW__VERIFY_VIEW_FULL, stale;
    tc_listing listings[GROUP];
    tc_scratch scratch[GROUP];
    tc_item items[GROUP];
    tc_vres vres[GROUP];
    const keys_ring *ring;
    VerifyResult *res;
    int64_t now;
    uint64_t rev;
    size_t i, g, k;

    if (q->n_items == 0)
        return svc_fail(st, SVC_INVALID_ARGUMENT, "items is empty; send 1 to %d codes", BATCH_MAX);
    if (q->n_items > BATCH_MAX)
        return svc_fail(st, SVC_INVALID_ARGUMENT, "items holds %zu codes, limit %d", q->n_items,
                        BATCH_MAX);
    if (limits_verify(c->svc->limits, c, (uint32_t)q->n_items, st) != SVC_OK)
        return st->code;
    res = c->alloc(c->arena, q->n_items * sizeof(*res));
    out->results = c->alloc(c->arena, q->n_items * sizeof(*out->results));
    if (!res || !out->results)
        return svc_fail(st, SVC_RESOURCE_EXHAUSTED, "out of call memory");
    stale = svc_stale(c->svc);
    now = svc_now_unix();
    rep_read_begin(c->svc->replica, c->reader);
    rev = rep_revision(c->svc->replica);
    /* Groups of GROUP codes end to end: staged verification, then their
     * answers, so the working set stays small (a tc_vres holds a detail
     * buffer). */
    for (g = 0; g < q->n_items; g += k) {
        k = q->n_items - g < GROUP ? q->n_items - g : GROUP;
        for (i = 0; i < k; i++) {
            const Tracecode__V1__VerifyItem *r = q->items[g + i];
            items[i].code = r->code;
            items[i].len = strlen(r->code);
            items[i].listing = NULL;
            if (r->listing) {
                listings[i].category = r->listing->category_code;
                listings[i].brand = r->listing->brand;
                listings[i].model = r->listing->model;
                items[i].listing = &listings[i];
            }
        }
        ring = svc_ring(c->svc);
        tc_verify_many(c->svc->replica, ring, items, k, now, vres, scratch);
        for (i = 0; i < k; i++) /* a key id this node may have yet to load */
            if (vres[i].unknown_kid && svc_keys_refresh(c->svc, ring, vres[i].unknown_kid))
                tc_verify(c->svc->replica, svc_ring(c->svc), items[i].code, items[i].len,
                          items[i].listing, now, &vres[i]);
        count_verdicts(c, vres, k);
        for (i = 0; i < k; i++) {
            tracecode__v1__verify_result__init(&res[g + i]);
            fill(c, &vres[i], full, rev, stale, &res[g + i]);
            out->results[g + i] = &res[g + i];
        }
    }
    rep_read_end(c->svc->replica, c->reader);
    out->n_results = q->n_items;
    return SVC_OK;
}
