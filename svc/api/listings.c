/*
 * listings.c - VerifierService.RegisterListings: a platform binds its
 * listings to codes. Each code is verified on the way in (same verdicts as
 * VerifyCode); codes whose tag verifies and whose batch exists are bound,
 * indexed listing -> batch -> certificate for delisting, and the answer
 * says how many other listings (and platforms) carry the same code: one
 * genuine code on many listings is the classic copy.
 */
#include "api.h"
#include "check.h"
#include "tracecode/v1/verifier.pb-c.h"
#include "verify.h"

#include <string.h>

#define LISTING_ID_MAX 128
#define PLATFORM_ID_MAX 64

static int bindable(int verdict)
{
    return verdict != TC_MALFORMED && verdict != TC_FORGED && verdict != TC_UNKNOWN_BATCH;
}

svc_code api_register_listings(svc_ctx *c, const void *req, void *resp, svc_status *st)
{
    const Tracecode__V1__RegisterListingsRequest *q = req;
    Tracecode__V1__RegisterListingsResponse *out = resp;
    Tracecode__V1__ListingResult *res;
    store_binding *bind;
    size_t *slot, nb = 0, i;
    char err[STORE_ERR_MAX], field[48], actor[SVC_ACTOR_MAX];
    int64_t now = svc_now_unix();
    store_idem idem;
    store_err e;

    if (!check_id(st, "the caller's platform id", c->subject, PLATFORM_ID_MAX) ||
        !svc_idem(c, q->request_id, &idem, actor, st))
        return st->code;
    if (q->n_bindings == 0 || q->n_bindings > STORE_BINDINGS_MAX)
        return svc_fail(st, SVC_INVALID_ARGUMENT, "bindings holds %zu listings; send 1 to %d",
                        q->n_bindings, STORE_BINDINGS_MAX);
    for (i = 0; i < q->n_bindings; i++) {
        snprintf(field, sizeof(field), "bindings[%zu].listing_id", i);
        if (!check_id(st, field, q->bindings[i]->listing_id, LISTING_ID_MAX))
            return st->code;
    }
    res = svc_alloc(c, q->n_bindings * sizeof(*res));
    out->results = svc_alloc(c, q->n_bindings * sizeof(*out->results));
    bind = svc_alloc(c, q->n_bindings * sizeof(*bind));
    slot = svc_alloc(c, q->n_bindings * sizeof(*slot));
    if (!res || !out->results || !bind || !slot)
        return svc_fail(st, SVC_RESOURCE_EXHAUSTED, "out of call memory");

    rep_read_begin(c->svc->replica, c->reader);
    for (i = 0; i < q->n_bindings; i++) {
        const Tracecode__V1__ListingBinding *in = q->bindings[i];
        tc_vres v;

        tracecode__v1__listing_result__init(&res[i]);
        out->results[i] = &res[i];
        res[i].listing_id = in->listing_id;
        svc_verify(c->svc, in->code, strlen(in->code), NULL, now, &v);
        res[i].verdict = (Tracecode__V1__Verdict)v.verdict;
        res[i].detail = v.detail[0] ? svc_strdup(c, v.detail) : (char *)"";
        if (bindable(v.verdict)) {
            char *text = svc_alloc(c, CODEC_MAX_TEXT_LEN + 1);
            if (!text || !check_canonical_code(in->code, text))
                continue;
            bind[nb].listing_id = in->listing_id;
            bind[nb].code = text;
            bind[nb].batch = v.batch_id;
            /* Certificate records are never freed: the number outlives
             * the read section. */
            bind[nb].cert_number = v.batch->cert->number;
            bind[nb].serial = v.serial;
            slot[nb++] = i;
        }
    }
    rep_read_end(c->svc->replica, c->reader);

    e = store_bind_listings(c->svc->store, &idem, c->subject, bind, nb, err, sizeof(err));
    if (e)
        return svc_store_fail(st, e, err);
    for (i = 0; i < nb; i++) {
        res[slot[i]].other_listings = bind[i].other_listings;
        res[slot[i]].other_platforms = bind[i].other_platforms;
    }
    out->n_results = q->n_bindings;
    return SVC_OK;
}
