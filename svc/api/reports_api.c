/*
 * reports_api.c - consumers' problem reports: ConsumerService.ReportProblem
 * (a platform's app), the scan page's form (report_file, from svc/http),
 * and AuditService.QueryReports for the regulator and the product's maker.
 */
#include "api.h"
#include "audit_api.h"
#include "check.h"
#include "reports.h"
#include "tracecode/v1/audit.pb-c.h"
#include "tracecode/v1/consumer.pb-c.h"
#include "verify.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEVICE_ID_MAX 64
#define CODE_IN_MAX 512
#define QUERY_DEFAULT 100
#define QUERY_MAX 1000

/* A device files at most 5 reports an hour, a code takes at most 20 a
 * day: enough for every honest buyer, too few to flood a maker's list. */
static const store_report_rates rates = {5, 20, 3600, 86400};

svc_code report_file(const svc *s, int reader, const char *code, int reason, const char *text,
                     const char *device, const char *region, const char *via, uint64_t *id,
                     uint32_t *on_code, svc_status *st)
{
    char canon[CODEC_MAX_TEXT_LEN + 1], err[STORE_ERR_MAX];
    char product[REP_PRODUCT_ID_MAX + 1] = "", issuer[REP_CREDIT_MAX + 1] = "";
    store_report r;
    store_err e;
    tc_vres v;

    if (!check_text(st, "code", code, CODE_IN_MAX, 1) ||
        !check_text(st, "text", text, STORE_REPORT_TEXT_MAX, 0))
        return st->code;
    if (reason < 1 || reason > 5)
        return svc_fail(st, SVC_INVALID_ARGUMENT,
                        "reason %d is not a ProblemReason (NOT_AS_DESCRIBED, SUSPECTED_FAKE, "
                        "LABEL_DAMAGED, SAFETY_HAZARD, OTHER)",
                        reason);
    if (!check_canonical_code(code, canon))
        return svc_fail(st, SVC_INVALID_ARGUMENT, "code is not a trace code in any form");
    /* Reports are about codes we issued: the maker is known and reads them. */
    rep_read_begin(s->replica, reader);
    svc_verify((svc *)s, canon, strlen(canon), NULL, svc_now_unix(), &v);
    if (v.batch) {
        snprintf(product, sizeof(product), "%s", v.batch->product->product_id);
        snprintf(issuer, sizeof(issuer), "%s", v.batch->product->mfr->credit_code);
    }
    rep_read_end(s->replica, reader);
    if (!product[0])
        return svc_fail(st, SVC_FAILED_PRECONDITION,
                        "code was never issued (%s): report the seller to the market regulator",
                        tc_verdict_name(v.verdict));
    r.code = canon;
    r.product_id = product;
    r.issuer = issuer;
    r.batch_id = v.batch_id;
    r.reason = reason;
    r.text = text ? text : "";
    r.region = region ? region : "";
    r.via = via;
    r.device = device;
    e = store_report_add(s->store, &r, &rates, id, on_code, err, sizeof(err));
    return e ? svc_store_fail(st, e, err) : SVC_OK;
}

svc_code api_report_problem(svc_ctx *c, const void *req, void *resp, svc_status *st)
{
    const Tracecode__V1__ReportProblemRequest *q = req;
    Tracecode__V1__ReportProblemResponse *out = resp;
    char device[DEVICE_ID_MAX + 80], id[24];
    uint64_t n;

    if (!check_id(st, "device_id", q->device_id, DEVICE_ID_MAX) ||
        (q->region[0] && !check_id(st, "region", q->region, STORE_REGION_MAX)) ||
        !check_id(st, "the caller's platform id", c->subject, DEVICE_ID_MAX))
        return st->code;
    /* A platform's device ids are its own: rated per platform and device. */
    snprintf(device, sizeof(device), "%s/%s", c->subject, q->device_id);
    if (report_file(c->svc, c->reader, q->code, (int)q->reason, q->text, device, q->region,
                    c->subject, &n, &out->reports_on_code, st))
        return st->code;
    snprintf(id, sizeof(id), "%" PRIu64, n);
    out->report_id = svc_strdup(c, id);
    return out->report_id ? SVC_OK : svc_fail(st, SVC_RESOURCE_EXHAUSTED, "out of call memory");
}

/* --- QueryReports ------------------------------------------------------------- */

/* The maker of what a query names ("" when unknown). */
static void owner_of(svc_ctx *c, const char *canon, uint64_t batch, const char *product,
                     char out[REP_CREDIT_MAX + 1])
{
    const rep_batch *b;
    const rep_product *p = NULL;
    tc_vres v;

    out[0] = '\0';
    rep_read_begin(c->svc->replica, c->reader);
    if (canon) {
        svc_verify(c->svc, canon, strlen(canon), NULL, svc_now_unix(), &v);
        p = v.batch ? v.batch->product : NULL;
    } else if (batch) {
        b = rep_batch_get(c->svc->replica, batch);
        p = b ? b->product : NULL;
    } else if (product) {
        p = rep_product_find(c->svc->replica, product);
    }
    if (p)
        snprintf(out, REP_CREDIT_MAX + 1, "%s", p->mfr->credit_code);
    rep_read_end(c->svc->replica, c->reader);
}

typedef struct reports_state {
    store_report_row *rows;
    size_t n, next;
} reports_state;

svc_code api_query_reports_open(svc_ctx *c, const void *req, void **state, svc_status *st)
{
    const Tracecode__V1__QueryReportsRequest *q = req;
    char index[200], err[STORE_ERR_MAX], canon[CODEC_MAX_TEXT_LEN + 1], what[400];
    uint32_t limit = q->limit ? q->limit : QUERY_DEFAULT;
    int mfr = c->role == SVC_ROLE_MANUFACTURER, given;
    uint64_t after = 0;
    reports_state *rs;
    size_t i, kept;
    store_err e;

    given = (q->code[0] != 0) + (q->batch_id != 0) + (q->product_id[0] != 0);
    if (given > 1)
        return svc_fail(st, SVC_INVALID_ARGUMENT, "give at most one of code, batch_id, product_id");
    if (limit > QUERY_MAX)
        return svc_fail(st, SVC_INVALID_ARGUMENT, "limit %u is over %d", limit, QUERY_MAX);
    if (q->from_unix < 0 || q->to_unix < 0 || (q->to_unix && q->to_unix < q->from_unix))
        return svc_fail(st, SVC_INVALID_ARGUMENT,
                        "from_unix and to_unix must not be negative, and to_unix (0: now) not "
                        "before from_unix");
    if (q->page_token[0]) {
        char *end;
        after = strtoull(q->page_token, &end, 10);
        if (*end || q->page_token[0] < '0' || q->page_token[0] > '9' || strlen(q->page_token) > 20)
            return svc_fail(st, SVC_INVALID_ARGUMENT,
                            "page_token must be the report_id of the last report received");
    }
    if (q->code[0]) {
        if (!check_text(st, "code", q->code, CODE_IN_MAX, 1))
            return st->code;
        if (!check_canonical_code(q->code, canon))
            return svc_fail(st, SVC_INVALID_ARGUMENT, "code is not a trace code in any form");
        snprintf(index, sizeof(index), "{tc}:reports:code:%s", canon);
    } else if (q->batch_id) {
        snprintf(index, sizeof(index), "{tc}:reports:batch:%" PRIu64, q->batch_id);
    } else if (q->product_id[0]) {
        if (!check_id(st, "product_id", q->product_id, REP_PRODUCT_ID_MAX))
            return st->code;
        snprintf(index, sizeof(index), "{tc}:reports:product:%s", q->product_id);
    } else if (mfr) {
        snprintf(index, sizeof(index), "{tc}:reports:mfr:%.64s", c->subject);
    } else {
        snprintf(index, sizeof(index), "{tc}:reports");
    }
    if (mfr && given) {
        char owner[REP_CREDIT_MAX + 1];
        owner_of(c, q->code[0] ? canon : NULL, q->batch_id, q->product_id[0] ? q->product_id : NULL,
                 owner);
        if (strcmp(owner, c->subject) != 0)
            return svc_fail(st, SVC_PERMISSION_DENIED,
                            "a manufacturer reads the reports of its own products only");
    }
    if (!mfr) { /* the regulator's reads are themselves logged */
        snprintf(what, sizeof(what),
                 "QueryReports code=%s batch_id=%" PRIu64 " product_id=%s limit=%u page_token=%s",
                 q->code, q->batch_id, q->product_id, limit, q->page_token);
        if (audit_log_query(c, "reports", what, st) != SVC_OK)
            return st->code;
    }
    if (!(rs = svc_alloc(c, sizeof(*rs))) || !(rs->rows = svc_alloc(c, limit * sizeof(*rs->rows))))
        return svc_fail(st, SVC_RESOURCE_EXHAUSTED, "out of call memory");
    e = store_reports_query(c->svc->store, index, after, limit, rs->rows, &rs->n, err, sizeof(err));
    if (e)
        return svc_store_fail(st, e, err);
    /* A maker reads its own products' reports only; the window filters. */
    for (i = kept = 0; i < rs->n; i++) {
        const store_report_row *r = &rs->rows[i];
        if (mfr && strcmp(r->issuer, c->subject) != 0)
            continue; /* not reached: its index is the maker's own */
        if (r->created_unix < q->from_unix || (q->to_unix && r->created_unix > q->to_unix))
            continue;
        rs->rows[kept++] = *r;
    }
    rs->n = kept;
    *state = rs;
    return SVC_OK;
}

svc_code api_query_reports_next(svc_ctx *c, void *state, void *resp, int *done, svc_status *st)
{
    reports_state *rs = state;
    Tracecode__V1__QueryReportsResponse *out = resp;
    Tracecode__V1__ProblemReport *p;
    const store_report_row *r;
    char id[24];

    if (rs->next >= rs->n) {
        *done = SVC_STREAM_END;
        return SVC_OK;
    }
    r = &rs->rows[rs->next++];
    p = out->report = svc_alloc(c, sizeof(*p));
    snprintf(id, sizeof(id), "%" PRIu64, r->id);
    if (!p)
        return svc_fail(st, SVC_RESOURCE_EXHAUSTED, "out of call memory");
    tracecode__v1__problem_report__init(p);
    p->report_id = svc_strdup(c, id);
    p->code = (char *)r->code;
    p->batch_id = r->batch_id;
    p->product_id = (char *)r->product_id;
    p->issuer_credit_code = (char *)r->issuer;
    p->reason = (Tracecode__V1__ProblemReason)r->reason;
    p->text = (char *)r->text;
    p->created_unix = r->created_unix;
    p->region = (char *)r->region;
    p->via = (char *)r->via;
    if (!p->report_id)
        return svc_fail(st, SVC_RESOURCE_EXHAUSTED, "out of call memory");
    *done = rs->next >= rs->n;
    return SVC_OK;
}
