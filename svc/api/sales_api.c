/*
 * sales_api.c - VerifierService.ReportSales and UndoSale (docs/SALES.md):
 * the units a platform ships, one record per code. A code sold a second
 * time - on any platform, or under another order - is the strongest sign
 * of a copied label: answered ALREADY_SOLD naming the first sale, logged,
 * entered in the audit log.
 */
#include "api.h"
#include "check.h"
#include "log.h"
#include "scan.h"
#include "tracecode/v1/verifier.pb-c.h"
#include "verify.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define SALES_MAX 1000     /* items a request */
#define ORDER_REF_MAX 128  /* bytes of an order reference */
#define SOLD_AHEAD_S 300   /* clocks differ: a sale minutes ahead is now */
#define PLATFORM_ID_MAX 64 /* as listings and delisting */
#define CODE_IN_MAX 512    /* bytes of a code in any form, as VerifyCode */

typedef Tracecode__V1__SaleResult SaleResult;

/* The salted order key, read from Redis once (the first node makes it). */
static int sale_key(svc *s, char *err, size_t cap)
{
    char salt[STORE_SALT_HEX + 1];
    store_err e;

    if (atomic_load_explicit(&s->sale_ready, memory_order_acquire))
        return 1;
    pthread_mutex_lock(&s->sale_mu);
    if (!atomic_load_explicit(&s->sale_ready, memory_order_relaxed)) {
        e = store_sale_salt(s->store, salt, err, cap);
        if (e == STORE_OK &&
            codec_mac_key_init(&s->sale_key, (const uint8_t *)salt, STORE_SALT_HEX) == CODEC_OK)
            atomic_store_explicit(&s->sale_ready, 1, memory_order_release);
        memset(salt, 0, sizeof(salt));
    }
    pthread_mutex_unlock(&s->sale_mu);
    return atomic_load_explicit(&s->sale_ready, memory_order_acquire);
}

/* HMAC-SHA-256(salt, platform "\n" order_ref) in hex: equal for the same
 * order of the same platform, and no order reference stored. */
static void order_hash(const svc *s, const char *platform, const char *ref, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t msg[PLATFORM_ID_MAX + 1 + ORDER_REF_MAX], mac[CODEC_SHA256_BYTES];
    size_t pn = strlen(platform), rn = strlen(ref);

    memcpy(msg, platform, pn);
    msg[pn] = '\n';
    memcpy(msg + pn + 1, ref, rn);
    codec_hmac_sha256(&s->sale_key, msg, pn + 1 + rn, mac);
    for (size_t i = 0; i < sizeof(mac); i++) {
        out[2 * i] = hex[mac[i] >> 4];
        out[2 * i + 1] = hex[mac[i] & 15];
    }
    out[64] = '\0';
}

/* A second sale: logged (rate-limited; the code cut to 6 symbols) and in
 * the audit log under the code, for the regulator. */
static void second_sale(svc_ctx *c, const char *canon, const store_sale *sale, int64_t sold)
{
    static tclog_gate gate;
    char actor[SVC_ACTOR_MAX], body[512], err[STORE_ERR_MAX];
    int n;

    tclog_every(&gate, 10000, TCLOG_WARN,
                "sale: code %.6s... sold again by %s (first sold by %s; %u other sale(s))", canon,
                c->subject, sale->platform, sale->others);
    svc_actor(c, actor, sizeof(actor));
    n = snprintf(body, sizeof(body),
                 "first_platform %s\nfirst_sold %" PRId64 "\nplatform %s\nsold %" PRId64
                 "\nother_sales %u",
                 sale->platform, sale->sold_unix, c->subject, sold, sale->others);
    if (store_audit_append(c->svc->store, "sale-copy", actor, canon, body, (size_t)n, NULL, err,
                           sizeof(err)) != STORE_OK)
        tclog(TCLOG_WARN, "sale: the audit entry of a second sale was not written: %s", err);
}

/* One item: verified, then recorded when the code was issued by us. 0, or
 * a store error said in st (the items before it are written: a retry
 * under the same request id writes nothing twice). */
static svc_code sell(svc_ctx *c, const Tracecode__V1__SaleItem *it, int64_t sold, int64_t now,
                     SaleResult *r, svc_status *st)
{
    char canon[CODEC_MAX_TEXT_LEN + 1], hash[65], err[STORE_ERR_MAX], when[64], msg[256];
    store_sale sale;
    store_err e;
    tc_vres v;

    rep_read_begin(c->svc->replica, c->reader);
    svc_verify(c->svc, it->code, strlen(it->code), NULL, now, &v);
    rep_read_end(c->svc->replica, c->reader);
    r->code = it->code;
    r->verdict = (Tracecode__V1__Verdict)v.verdict;
    if (v.detail[0])
        r->detail = svc_strdup(c, v.detail);
    /* Codes never issued are not recorded: forged ones would fill Redis. */
    if (v.verdict == TC_MALFORMED || v.verdict == TC_FORGED || v.verdict == TC_UNKNOWN_BATCH ||
        !check_canonical_code(it->code, canon))
        return SVC_OK;
    order_hash(c->svc, c->subject, it->order_ref, hash);
    e = store_sale_report(c->svc->store, canon, c->subject, hash, sold, &sale, err, sizeof(err));
    if (e)
        return svc_store_fail(st, e, err);
    r->first_platform_id = svc_strdup(c, sale.platform);
    r->first_sold_unix = sale.sold_unix;
    r->suspected_copy = sale.state == STORE_SALE_AGAIN || sale.others > 0;
    if (sale.state == STORE_SALE_AGAIN) {
        scan_time(sale.sold_unix, 1, when, sizeof(when)); /* the zone named */
        snprintf(msg, sizeof(msg), "already sold by platform %s on %s (%u other sale(s) reported)",
                 sale.platform, when, sale.others);
        r->verdict = TRACECODE__V1__VERDICT__VERDICT_ALREADY_SOLD;
        r->detail = svc_strdup(c, msg);
        if (sale.written)
            second_sale(c, canon, &sale, sold);
    }
    return SVC_OK;
}

svc_code api_report_sales(svc_ctx *c, const void *req, void *resp, svc_status *st)
{
    const Tracecode__V1__ReportSalesRequest *q = req;
    Tracecode__V1__ReportSalesResponse *out = resp;
    char actor[SVC_ACTOR_MAX], err[STORE_ERR_MAX], field[64];
    int64_t now = svc_now_unix(), sold = q->sold_unix ? q->sold_unix : now;
    store_idem idem;
    store_err e;
    size_t i;

    if (q->n_items == 0 || q->n_items > SALES_MAX)
        return svc_fail(st, SVC_INVALID_ARGUMENT, "items: 1 to %d a request, not %zu", SALES_MAX,
                        q->n_items);
    if (sold < 0 || sold > now + SOLD_AHEAD_S)
        return svc_fail(st, SVC_INVALID_ARGUMENT,
                        "sold_unix %" PRId64 " is in the future (now %" PRId64 ")", q->sold_unix,
                        now);
    if (!check_id(st, "the caller's platform id", c->subject, PLATFORM_ID_MAX))
        return st->code;
    /* Every item checked before anything is written. */
    for (i = 0; i < q->n_items; i++) {
        const Tracecode__V1__SaleItem *it = q->items[i];
        snprintf(field, sizeof(field), "items[%zu].code", i);
        if (!check_text(st, field, it->code, CODE_IN_MAX, 1))
            return st->code;
        snprintf(field, sizeof(field), "items[%zu].order_ref", i);
        if (!check_text(st, field, it->order_ref, ORDER_REF_MAX, 1))
            return st->code;
    }
    if (!svc_idem(c, q->request_id, &idem, actor, st))
        return st->code;
    if ((e = store_idem_claim(c->svc->store, &idem, err, sizeof(err))) != STORE_OK)
        return svc_store_fail(st, e, err);
    if (!sale_key(c->svc, err, sizeof(err)))
        return svc_fail(st, SVC_UNAVAILABLE, "cannot read the order salt: %s", err);
    out->results = svc_alloc(c, q->n_items * sizeof(*out->results));
    if (!out->results)
        return svc_fail(st, SVC_RESOURCE_EXHAUSTED, "out of call memory");
    for (i = 0; i < q->n_items; i++) {
        SaleResult *r = svc_alloc(c, sizeof(*r));
        if (!r)
            return svc_fail(st, SVC_RESOURCE_EXHAUSTED, "out of call memory");
        tracecode__v1__sale_result__init(r);
        out->results[i] = r;
        out->n_results = i + 1;
        if (sell(c, q->items[i], sold, now, r, st))
            return st->code;
    }
    return SVC_OK;
}

svc_code api_undo_sale(svc_ctx *c, const void *req, void *resp, svc_status *st)
{
    const Tracecode__V1__UndoSaleRequest *q = req;
    char canon[CODEC_MAX_TEXT_LEN + 1], actor[SVC_ACTOR_MAX], err[STORE_ERR_MAX], body[128];
    store_idem idem;
    store_err e;
    int replayed = 0, n;

    (void)resp;
    if (!check_text(st, "code", q->code, CODE_IN_MAX, 1) ||
        !check_id(st, "the caller's platform id", c->subject, PLATFORM_ID_MAX) ||
        !svc_idem(c, q->request_id, &idem, actor, st))
        return st->code;
    if (!check_canonical_code(q->code, canon))
        return svc_fail(st, SVC_INVALID_ARGUMENT, "code is not a trace code in any form");
    e = store_sale_undo(c->svc->store, canon, c->subject, q->request_id, c->svc->sale_undo_window_s,
                        &replayed, err, sizeof(err));
    if (e)
        return svc_store_fail(st, e, err);
    if (!replayed) {
        n = snprintf(body, sizeof(body), "platform %s\nundone %" PRId64, c->subject,
                     svc_now_unix());
        if (store_audit_append(c->svc->store, "sale-undo", actor, canon, body, (size_t)n, NULL, err,
                               sizeof(err)) != STORE_OK)
            tclog(TCLOG_WARN, "sale: the audit entry of an undone sale was not written: %s", err);
    }
    return SVC_OK;
}
