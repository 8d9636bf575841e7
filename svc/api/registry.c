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
    const Tracecode__V1__UpsertManufacturerRequest *q = req;
    Tracecode__V1__UpsertManufacturerResponse *out = resp;
    const Manufacturer *m = q->manufacturer;
    char err[STORE_ERR_MAX], actor[SVC_ACTOR_MAX];
    store_idem idem;
    uint64_t rev;
    store_err e;
    int status;

    if (!m)
        return svc_fail(st, SVC_INVALID_ARGUMENT, "manufacturer is required");
    status = m->status == TRACECODE__V1__MANUFACTURER_STATUS__MANUFACTURER_STATUS_UNSPECIFIED
                 ? REP_MFR_ACTIVE
                 : (int)m->status;
    if (!check_credit_code(st, "manufacturer.credit_code", m->credit_code) ||
        !check_text(st, "manufacturer.name", m->name, REP_NAME_MAX, 1) ||
        !svc_idem(c, q->request_id, &idem, actor, st))
        return st->code;
    if (status != REP_MFR_ACTIVE && status != REP_MFR_SUSPENDED)
        return svc_fail(st, SVC_INVALID_ARGUMENT,
                        "manufacturer.status %d is not a ManufacturerStatus (ACTIVE or SUSPENDED)",
                        (int)m->status);
    e = store_put_mfr(c->svc->store, &idem, actor, m->credit_code, m->name, status, &rev, err,
                      sizeof(err));
    if (e)
        return svc_store_fail(st, e, err);
    svc_settle(c, rev);
    out->manufacturer = svc_alloc(c, sizeof(*out->manufacturer));
    if (!out->manufacturer)
        return svc_fail(st, SVC_RESOURCE_EXHAUSTED, "response exceeds the call's memory bound");
    tracecode__v1__manufacturer__init(out->manufacturer);
    out->manufacturer->credit_code = svc_strdup(c, m->credit_code);
    out->manufacturer->name = svc_strdup(c, m->name);
    out->manufacturer->status = (Tracecode__V1__ManufacturerStatus)status;
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

    if (!m) {
        svc_fail(st, SVC_INVALID_ARGUMENT, "certificate is required");
        return 0;
    }
    if (!check_id(st, "certificate.number", m->number, REP_NUMBER_MAX) ||
        !check_credit_code(st, "certificate.holder_credit_code", m->holder_credit_code) ||
        !check_text(st, "certificate.status_reason", m->status_reason, REP_REASON_MAX, 0))
        return 0;
    if (m->kind != TRACECODE__V1__CERTIFICATE_KIND__CERTIFICATE_KIND_CCC &&
        m->kind != TRACECODE__V1__CERTIFICATE_KIND__CERTIFICATE_KIND_PRODUCTION_LICENCE) {
        svc_fail(st, SVC_INVALID_ARGUMENT,
                 "certificate.kind %d is not a CertificateKind: send CERTIFICATE_KIND_CCC or "
                 "CERTIFICATE_KIND_PRODUCTION_LICENCE",
                 (int)m->kind);
        return 0;
    }
    if (m->n_category_codes == 0 || m->n_category_codes > REP_CATEGORIES_MAX) {
        svc_fail(st, SVC_INVALID_ARGUMENT,
                 "certificate.category_codes must hold 1 to %d codes, not %zu", REP_CATEGORIES_MAX,
                 m->n_category_codes);
        return 0;
    }
    for (i = 0; i < m->n_category_codes; i++) {
        char field[64];
        snprintf(field, sizeof(field), "certificate.category_codes[%zu]", i);
        if (!check_category(st, field, m->category_codes[i]))
            return 0;
    }
    if ((int)m->status < 0 || (int)m->status > REP_CERT_LAST) {
        svc_fail(st, SVC_INVALID_ARGUMENT,
                 "certificate.status %d is not a CertificateStatus (VALID, SUSPENDED, REVOKED, "
                 "EXPIRED, CANCELLED)",
                 (int)m->status);
        return 0;
    }
    if (m->valid_until_unix < 0) {
        svc_fail(st, SVC_INVALID_ARGUMENT, "certificate.valid_until_unix must not be negative");
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

/* Store a certificate under request_id (NULL or "": none; checked by the
 * caller). */
static svc_code put_cert(svc_ctx *c, const Certificate *m, const char *request_id, uint64_t *rev,
                         uint32_t *notices, svc_status *st)
{
    char err[STORE_ERR_MAX], actor[SVC_ACTOR_MAX];
    rep_cert_fields f;
    store_idem idem;
    store_err e;

    if (!cert_in(c, m, &f, st) || !svc_idem(c, NULL, &idem, actor, st))
        return st->code;
    idem.request_id = request_id;
    e = store_put_cert(c->svc->store, &idem, actor, &f, rev, notices, err, sizeof(err));
    return e ? svc_store_fail(st, e, err) : SVC_OK;
}

/* A fresh Certificate in the arena, filled from the replica. */
static svc_code cert_new(svc_ctx *c, const char *number, Certificate **out, svc_status *st)
{
    const rep_cert *rc = rep_cert_find(c->svc->replica, number);

    *out = svc_alloc(c, sizeof(**out));
    if (!*out)
        return svc_fail(st, SVC_RESOURCE_EXHAUSTED, "response exceeds the call's memory bound");
    tracecode__v1__certificate__init(*out);
    if (!rc)
        return svc_fail(st, SVC_NOT_FOUND, "certificate %s is not registered", number);
    return cert_out(c, rc, *out, st);
}

svc_code api_upsert_certificate(svc_ctx *c, const void *req, void *resp, svc_status *st)
{
    const Tracecode__V1__UpsertCertificateRequest *q = req;
    Tracecode__V1__UpsertCertificateResponse *out = resp;
    uint64_t rev;

    if (q->request_id[0] && !check_id(st, "request_id", q->request_id, STORE_REQUEST_ID_MAX))
        return st->code;
    if (put_cert(c, q->certificate, q->request_id, &rev, &out->notices, st))
        return st->code;
    svc_settle(c, rev);
    return cert_new(c, q->certificate->number, &out->certificate, st);
}

svc_code api_set_certificate_status(svc_ctx *c, const void *req, void *resp, svc_status *st)
{
    const Tracecode__V1__SetCertificateStatusRequest *q = req;
    Tracecode__V1__SetCertificateStatusResponse *out = resp;
    char err[STORE_ERR_MAX], actor[SVC_ACTOR_MAX];
    uint32_t notices = 0;
    store_idem idem;
    uint64_t rev;
    store_err e;

    if (!check_id(st, "number", q->number, REP_NUMBER_MAX) ||
        !check_text(st, "reason", q->reason, REP_REASON_MAX, 0) ||
        !svc_idem(c, q->request_id, &idem, actor, st))
        return st->code;
    if ((int)q->status < REP_CERT_VALID || (int)q->status > REP_CERT_LAST)
        return svc_fail(st, SVC_INVALID_ARGUMENT,
                        "status must be CERTIFICATE_STATUS_VALID, _SUSPENDED, _REVOKED, _EXPIRED "
                        "or _CANCELLED, not %d",
                        (int)q->status);
    e = store_set_cert_status(c->svc->store, &idem, actor, q->number, (int)q->status, q->reason,
                              svc_now_unix(), &rev, &notices, err, sizeof(err));
    if (e)
        return svc_store_fail(st, e, err);
    svc_settle(c, rev);
    out->notices = notices;
    return cert_new(c, q->number, &out->certificate, st);
}

svc_code api_get_certificate(svc_ctx *c, const void *req, void *resp, svc_status *st)
{
    const Tracecode__V1__GetCertificateRequest *q = req;
    Tracecode__V1__GetCertificateResponse *out = resp;

    if (!check_id(st, "number", q->number, REP_NUMBER_MAX))
        return st->code;
    return cert_new(c, q->number, &out->certificate, st);
}

typedef struct import_state {
    uint32_t index, imported;
    uint64_t last_rev;
    size_t nrej;
    Tracecode__V1__ImportRejection **rej;
    char request_id[STORE_REQUEST_ID_MAX + 1];
} import_state;

/*
 * With a request_id (first message), each certificate is its own
 * idempotent write under "request_id#index", fingerprinted by its own
 * message: a retried import (after a timeout, a failover, a node lost
 * mid-stream) writes only what the first did not, and answers the same.
 */
svc_code api_import_push(svc_ctx *c, void **state, const void *msg, svc_status *st)
{
    const Tracecode__V1__ImportCertificatesRequest *q = msg;
    import_state *s = *state;
    char rid[STORE_REQUEST_ID_MAX + 16];
    svc_status one;
    uint64_t rev;

    if (!s) {
        s = svc_alloc(c, sizeof(*s));
        if (!s || !(s->rej = svc_alloc(c, REJECTIONS_MAX * sizeof(*s->rej))))
            return svc_fail(st, SVC_RESOURCE_EXHAUSTED, "out of call memory");
        if (q->request_id[0]) {
            if (!check_id(st, "request_id", q->request_id, STORE_REQUEST_ID_MAX))
                return st->code;
            memcpy(s->request_id, q->request_id, strlen(q->request_id) + 1);
        }
        *state = s;
    } else if (q->request_id[0] && strcmp(q->request_id, s->request_id) != 0) {
        return svc_fail(st, SVC_INVALID_ARGUMENT,
                        "request_id of message %u differs from the first message's; send it in "
                        "the first message only",
                        s->index);
    }
    if (s->index >= IMPORT_MAX)
        return svc_fail(st, SVC_INVALID_ARGUMENT,
                        "an import holds at most %d certificates; split it", IMPORT_MAX);
    one.code = SVC_OK;
    one.msg[0] = '\0';
    rid[0] = '\0';
    if (s->request_id[0])
        snprintf(rid, sizeof(rid), "%s#%u", s->request_id, s->index);
    if (put_cert(c, q->certificate, rid, &rev, NULL, &one) == SVC_OK) {
        s->imported++;
        s->last_rev = rev;
    } else if (one.code == SVC_UNAVAILABLE) {
        /* Stop: what was imported so far stays; the caller retries the rest. */
        return svc_fail(st, SVC_UNAVAILABLE, "%s (after %u imported)", one.msg, s->imported);
    } else if (one.code == SVC_ALREADY_EXISTS) {
        return svc_fail(st, SVC_ALREADY_EXISTS,
                        "request_id %s was used for another import (certificate %u differs)",
                        s->request_id, s->index);
    } else if (s->nrej < REJECTIONS_MAX) {
        Tracecode__V1__ImportRejection *r = svc_alloc(c, sizeof(*r));
        const Certificate *m = q->certificate;
        if (r) {
            tracecode__v1__import_rejection__init(r);
            r->index = s->index;
            r->number = svc_strdup(c, m && m->number ? m->number : "");
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

    (void)st; /* the imports are stored: nothing here can fail */
    if (!s)
        return SVC_OK; /* an empty stream imports nothing */
    if (s->last_rev)
        svc_settle(c, s->last_rev);
    out->imported = s->imported;
    out->n_rejected = s->nrej;
    out->rejected = s->rej;
    return SVC_OK;
}
