/*
 * registry.c - RegistryService: manufacturers and certificates, for
 * regulators and certification bodies.
 */
#include "api.h"
#include "check.h"
#include "tracecode/v1/registry.pb-c.h"

#include <stdio.h>
#include <string.h>

#define IMPORT_MAX 100000    /* certificates per ImportCertificates stream */
#define REJECTIONS_MAX 10000 /* rejections listed (all are counted) */

typedef Tracecode__V1__Manufacturer Manufacturer;
typedef Tracecode__V1__Certificate Certificate;

svc_code api_upsert_manufacturer(svc_ctx *c, const void *req, void *resp, svc_status *st)
{
    const Manufacturer *m = req;
    Manufacturer *out = resp;
    int status = m->status == TRACECODE__V1__MANUFACTURER_STATUS__MANUFACTURER_STATUS_UNSPECIFIED
                     ? REP_MFR_ACTIVE
                     : (int)m->status;
    char err[STORE_ERR_MAX], actor[SVC_ACTOR_MAX];
    uint64_t rev;
    store_err e;

    if (!check_id(st, "credit_code", m->credit_code, REP_CREDIT_MAX) ||
        !check_text(st, "name", m->name, REP_NAME_MAX, 1))
        return st->code;
    if (status != REP_MFR_ACTIVE && status != REP_MFR_SUSPENDED)
        return svc_fail(st, SVC_INVALID_ARGUMENT, "status %d is not a ManufacturerStatus",
                        (int)m->status);
    svc_actor(c, actor, sizeof(actor));
    e = store_put_mfr(c->svc->store, actor, m->credit_code, m->name, status, &rev, err,
                      sizeof(err));
    if (e)
        return svc_store_fail(st, e, err);
    if (svc_settle(c, rev, st))
        return st->code;
    out->credit_code = svc_strdup(c, m->credit_code);
    out->name = svc_strdup(c, m->name);
    out->status = (Tracecode__V1__ManufacturerStatus)status;
    return SVC_OK;
}

/* The replica's version of a certificate as a message (strings copied into
 * the call's arena). */
static svc_code cert_out(svc_ctx *c, const rep_cert *rc, Certificate *out, svc_status *st)
{
    const rep_cert_v *v;
    size_t i;

    rep_read_begin(c->svc->replica, c->reader);
    v = atomic_load(&rc->v);
    out->number = svc_strdup(c, rc->number);
    out->kind = (Tracecode__V1__CertificateKind)v->kind;
    out->holder_credit_code = svc_strdup(c, v->holder);
    out->status = (Tracecode__V1__CertificateStatus)v->status;
    out->status_reason = svc_strdup(c, v->reason);
    out->valid_until_unix = v->valid_until;
    out->updated_unix = v->updated;
    out->n_category_codes = v->ncat;
    out->category_codes = svc_alloc(c, v->ncat * sizeof(char *) + 1);
    for (i = 0; out->category_codes && i < v->ncat; i++)
        out->category_codes[i] = svc_strdup(c, v->cat[i]);
    rep_read_end(c->svc->replica, c->reader);
    if (!out->number || !out->category_codes)
        return svc_fail(st, SVC_RESOURCE_EXHAUSTED, "response exceeds the call's memory bound");
    return SVC_OK;
}

/* Validate a certificate message; on success fill f (borrowing its strings). */
static int cert_in(svc_ctx *c, const Certificate *m, rep_cert_fields *f, svc_status *st)
{
    size_t i;

    if (!check_id(st, "number", m->number, REP_NUMBER_MAX) ||
        !check_id(st, "holder_credit_code", m->holder_credit_code, REP_CREDIT_MAX) ||
        !check_text(st, "status_reason", m->status_reason, REP_REASON_MAX, 0))
        return 0;
    if (m->kind != TRACECODE__V1__CERTIFICATE_KIND__CCC &&
        m->kind != TRACECODE__V1__CERTIFICATE_KIND__PRODUCTION_LICENCE) {
        svc_fail(st, SVC_INVALID_ARGUMENT, "kind is required: CCC or PRODUCTION_LICENCE");
        return 0;
    }
    if (m->n_category_codes == 0 || m->n_category_codes > REP_CATEGORIES_MAX) {
        svc_fail(st, SVC_INVALID_ARGUMENT, "category_codes must hold 1 to %d codes, not %zu",
                 REP_CATEGORIES_MAX, m->n_category_codes);
        return 0;
    }
    for (i = 0; i < m->n_category_codes; i++) {
        char field[40];
        snprintf(field, sizeof(field), "category_codes[%zu]", i);
        if (!check_id(st, field, m->category_codes[i], REP_CATEGORY_MAX))
            return 0;
    }
    if ((int)m->status < 0 || m->status > TRACECODE__V1__CERTIFICATE_STATUS__EXPIRED) {
        svc_fail(st, SVC_INVALID_ARGUMENT, "status %d is not a CertificateStatus", (int)m->status);
        return 0;
    }
    if (m->valid_until_unix < 0) {
        svc_fail(st, SVC_INVALID_ARGUMENT, "valid_until_unix must not be negative");
        return 0;
    }
    if (!rep_mfr_find(c->svc->replica, m->holder_credit_code)) {
        svc_fail(st, SVC_FAILED_PRECONDITION,
                 "holder_credit_code %s is not a registered manufacturer", m->holder_credit_code);
        return 0;
    }
    f->number = m->number;
    f->kind = (int)m->kind;
    f->holder = m->holder_credit_code;
    f->cat = (const char *const *)m->category_codes;
    f->ncat = m->n_category_codes;
    f->status = m->status ? (int)m->status : REP_CERT_VALID;
    f->reason = m->status_reason;
    f->valid_until = m->valid_until_unix;
    f->updated = svc_now_unix();
    return 1;
}

static svc_code put_cert(svc_ctx *c, const Certificate *m, uint64_t *rev, svc_status *st)
{
    char err[STORE_ERR_MAX], actor[SVC_ACTOR_MAX];
    rep_cert_fields f;
    store_err e;

    if (!cert_in(c, m, &f, st))
        return st->code;
    svc_actor(c, actor, sizeof(actor));
    e = store_put_cert(c->svc->store, actor, &f, rev, NULL, err, sizeof(err));
    return e ? svc_store_fail(st, e, err) : SVC_OK;
}

svc_code api_upsert_certificate(svc_ctx *c, const void *req, void *resp, svc_status *st)
{
    const Certificate *m = req;
    uint64_t rev;

    if (put_cert(c, m, &rev, st) || svc_settle(c, rev, st))
        return st->code;
    return cert_out(c, rep_cert_find(c->svc->replica, m->number), resp, st);
}

svc_code api_set_certificate_status(svc_ctx *c, const void *req, void *resp, svc_status *st)
{
    const Tracecode__V1__SetCertificateStatusRequest *q = req;
    Tracecode__V1__SetCertificateStatusResponse *out = resp;
    char err[STORE_ERR_MAX], actor[SVC_ACTOR_MAX];
    uint32_t notices = 0;
    uint64_t rev;
    store_err e;

    if (!check_id(st, "number", q->number, REP_NUMBER_MAX) ||
        !check_text(st, "reason", q->reason, REP_REASON_MAX, 0))
        return st->code;
    if (q->status < TRACECODE__V1__CERTIFICATE_STATUS__VALID ||
        q->status > TRACECODE__V1__CERTIFICATE_STATUS__EXPIRED)
        return svc_fail(st, SVC_INVALID_ARGUMENT,
                        "status must be VALID, SUSPENDED, REVOKED or EXPIRED, not %d",
                        (int)q->status);
    svc_actor(c, actor, sizeof(actor));
    e = store_set_cert_status(c->svc->store, actor, q->number, (int)q->status, q->reason,
                              svc_now_unix(), &rev, &notices, err, sizeof(err));
    if (e)
        return svc_store_fail(st, e, err);
    if (svc_settle(c, rev, st))
        return st->code;
    out->certificate = svc_alloc(c, sizeof(*out->certificate));
    if (!out->certificate)
        return svc_fail(st, SVC_RESOURCE_EXHAUSTED, "response exceeds the call's memory bound");
    tracecode__v1__certificate__init(out->certificate);
    out->notices = notices;
    return cert_out(c, rep_cert_find(c->svc->replica, q->number), out->certificate, st);
}

svc_code api_get_certificate(svc_ctx *c, const void *req, void *resp, svc_status *st)
{
    const Tracecode__V1__GetCertificateRequest *q = req;
    rep_cert *rc;

    if (!check_id(st, "number", q->number, REP_NUMBER_MAX))
        return st->code;
    rc = rep_cert_find(c->svc->replica, q->number);
    if (!rc)
        return svc_fail(st, SVC_NOT_FOUND, "certificate %s is not registered", q->number);
    return cert_out(c, rc, resp, st);
}

typedef struct import_state {
    uint32_t index, imported;
    uint64_t last_rev;
    size_t nrej;
    Tracecode__V1__ImportRejection **rej;
} import_state;

svc_code api_import_push(svc_ctx *c, void **state, const void *msg, svc_status *st)
{
    import_state *s = *state;
    svc_status one;
    uint64_t rev;

    if (!s) {
        s = svc_alloc(c, sizeof(*s));
        if (!s || !(s->rej = svc_alloc(c, REJECTIONS_MAX * sizeof(*s->rej))))
            return svc_fail(st, SVC_RESOURCE_EXHAUSTED, "out of call memory");
        *state = s;
    }
    if (s->index >= IMPORT_MAX)
        return svc_fail(st, SVC_INVALID_ARGUMENT,
                        "an import holds at most %d certificates; split it", IMPORT_MAX);
    one.code = SVC_OK;
    one.msg[0] = '\0';
    if (put_cert(c, msg, &rev, &one) == SVC_OK) {
        s->imported++;
        s->last_rev = rev;
    } else if (one.code == SVC_UNAVAILABLE) {
        /* Stop: what was imported so far stays; the caller retries the rest. */
        return svc_fail(st, SVC_UNAVAILABLE, "%s (after %u imported)", one.msg, s->imported);
    } else if (s->nrej < REJECTIONS_MAX) {
        Tracecode__V1__ImportRejection *r = svc_alloc(c, sizeof(*r));
        const Certificate *m = msg;
        if (r) {
            tracecode__v1__import_rejection__init(r);
            r->index = s->index;
            r->number = svc_strdup(c, m->number ? m->number : "");
            r->reason = svc_strdup(c, one.msg);
            s->rej[s->nrej++] = r;
        }
    }
    s->index++;
    return SVC_OK;
}

svc_code api_import_finish(svc_ctx *c, void *state, void *resp, svc_status *st)
{
    import_state *s = state;
    Tracecode__V1__ImportCertificatesResponse *out = resp;

    if (!s)
        return SVC_OK; /* an empty stream imports nothing */
    if (s->last_rev && svc_settle(c, s->last_rev, st))
        return st->code;
    out->imported = s->imported;
    out->n_rejected = s->nrej;
    out->rejected = s->rej;
    return SVC_OK;
}
