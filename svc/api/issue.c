/*
 * issue.c - IssuerService: products, batches of codes, recalls, for
 * licensed manufacturers acting on their own records only.
 */
#include "api.h"
#include "passport_api.h"
#include "check.h"
#include "tracecode/v1/issuer.pb-c.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define QUANTITY_MAX 10000000u
#define CHUNK_DEFAULT 8192u
#define CHUNK_MAX 65536u
/* Bytes of codes in one response message at most, whatever chunk_size
 * says: each code costs its text plus a 2-byte field header, and the
 * first message also carries the batch (under 2 KiB). Client libraries
 * refuse messages over 4 MiB by default; 1 MiB leaves room for any. */
#define CHUNK_BYTES_MAX (1u << 20)

typedef Tracecode__V1__Batch Batch;

svc_code api_register_product(svc_ctx *c, const void *req, void *resp, svc_status *st)
{
    const Tracecode__V1__RegisterProductRequest *q = req;
    Tracecode__V1__RegisterProductResponse *resp_ = resp;
    Tracecode__V1__Product *out;
    char pid[REP_PRODUCT_ID_MAX + 1], err[STORE_ERR_MAX], actor[SVC_ACTOR_MAX];
    store_product_req sq;
    store_idem idem;
    int64_t registered;
    uint64_t rev;
    store_err e;

    passport_fields pf = {q->standards, q->n_standards, q->test_reports, q->n_test_reports,
                          q->images,    q->n_images,    q->description,  q->origin};
    char *passport = svc_alloc(c, REP_PASSPORT_MAX + 1);

    if (!passport)
        return svc_fail(st, SVC_RESOURCE_EXHAUSTED, "out of call memory");
    if (!check_id(st, "certificate_number", q->certificate_number, REP_NUMBER_MAX) ||
        !check_category(st, "category_code", q->category_code) ||
        !check_text(st, "brand", q->brand, REP_BRAND_MAX, 1) ||
        !check_text(st, "model", q->model, REP_MODEL_MAX, 1) || !check_gtin(st, "gtin", q->gtin) ||
        !passport_in(st, &pf, passport, REP_PASSPORT_MAX + 1) ||
        !svc_idem(c, q->request_id, &idem, actor, st))
        return st->code;
    sq.caller = c->subject;
    sq.cert_number = q->certificate_number;
    sq.category = q->category_code;
    sq.brand = q->brand;
    sq.model = q->model;
    sq.gtin = q->gtin;
    sq.passport = passport;
    sq.actor = actor;
    sq.now = svc_now_unix();
    e = store_register_product(c->svc->store, &idem, &sq, pid, &registered, &rev, err, sizeof(err));
    if (e)
        return svc_store_fail(st, e, err);
    svc_settle(c, rev);
    out = resp_->product = svc_alloc(c, sizeof(*out));
    if (!out)
        return svc_fail(st, SVC_RESOURCE_EXHAUSTED, "out of call memory");
    tracecode__v1__product__init(out);
    out->product_id = svc_strdup(c, pid);
    out->certificate_number = svc_strdup(c, q->certificate_number);
    out->category_code = svc_strdup(c, q->category_code);
    out->brand = svc_strdup(c, q->brand);
    out->model = svc_strdup(c, q->model);
    out->gtin = svc_strdup(c, q->gtin);
    out->issuer_credit_code = svc_strdup(c, c->subject);
    out->registered_unix = registered;
    return passport_out(c, passport, out, st);
}

static void batch_out(svc_ctx *c, const store_batch *b, Batch *out)
{
    out->batch_id = b->id;
    out->product_id = svc_strdup(c, b->product_id);
    out->issuer_credit_code = svc_strdup(c, b->issuer);
    out->certificate_number = svc_strdup(c, b->cert_number);
    out->quantity = b->quantity;
    out->key_id = b->key_id;
    out->profile = (Tracecode__V1__CodeProfile)b->profile;
    out->issued_unix = b->issued;
    out->manifest.data = svc_alloc(c, b->manifest_len + 1);
    if (out->manifest.data) {
        memcpy(out->manifest.data, b->manifest, b->manifest_len);
        out->manifest.len = b->manifest_len;
    }
    out->manifest_signature.data = svc_alloc(c, sizeof(b->signature));
    if (out->manifest_signature.data) {
        memcpy(out->manifest_signature.data, b->signature, sizeof(b->signature));
        out->manifest_signature.len = sizeof(b->signature);
    }
    out->manifest_key_id = b->manifest_key_id;
    out->request_id = svc_strdup(c, b->request_id);
    out->production_date = svc_strdup(c, b->production_date);
    out->lot = svc_strdup(c, b->lot);
}

/* YYYY-MM-DD, a day that exists, not after tomorrow (clocks differ). */
static int check_day(svc_status *st, const char *field, const char *s)
{
    int y, m, d;
    struct tm tm;
    time_t t;

    if (!*s)
        return 1;
    memset(&tm, 0, sizeof(tm));
    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-' || strspn(s, "0123456789-") != 10 ||
        sscanf(s, "%4d-%2d-%2d", &y, &m, &d) != 3 || y < 1970 || m < 1 || m > 12 || d < 1 ||
        d > 31) {
        svc_fail(st, SVC_INVALID_ARGUMENT, "%s must be a day as YYYY-MM-DD", field);
        return 0;
    }
    tm.tm_year = y - 1900;
    tm.tm_mon = m - 1;
    tm.tm_mday = d;
    t = timegm(&tm);
    gmtime_r(&t, &tm);
    if (tm.tm_mday != d) { /* 2026-02-30 rolls over */
        svc_fail(st, SVC_INVALID_ARGUMENT, "%s '%s' is not a day of the calendar", field, s);
        return 0;
    }
    if ((int64_t)t > svc_now_unix() + 86400) {
        svc_fail(st, SVC_INVALID_ARGUMENT, "%s '%s' is in the future", field, s);
        return 0;
    }
    return 1;
}

/* The canonical manifest text that the service signs: who was given which
 * codes, under which key, when. */
static size_t manifest(const store_batch *b, char *buf, size_t cap)
{
    int n = snprintf(buf, cap,
                     "tracecode-manifest v1\nbatch %" PRIu64 "\nissuer %s\nproduct %s\n"
                     "certificate %s\nserials 0-%u\nprofile %s\nkey %u\nissued %" PRId64 "\n",
                     b->id, b->issuer, b->product_id, b->cert_number, b->quantity - 1,
                     codec_profile_numbered(b->profile)->name, b->key_id, b->issued);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

typedef struct issue_state {
    store_batch b;
    uint32_t next, chunk;
    int sent_batch;
} issue_state;

/* Codes per message: what the caller asked, within CHUNK_BYTES_MAX. */
static uint32_t chunk_of(uint32_t asked, int profile)
{
    size_t tlen = codec_profile_numbered(profile)->text_len;
    uint32_t fit = (uint32_t)(CHUNK_BYTES_MAX / (tlen + 2));

    asked = asked ? asked : CHUNK_DEFAULT;
    return asked < fit ? asked : fit;
}

svc_code api_issue_open(svc_ctx *c, const void *req, void **state, svc_status *st)
{
    const Tracecode__V1__IssueCodesRequest *q = req;
    char err[STORE_ERR_MAX], actor[SVC_ACTOR_MAX];
    issue_state *s;
    rep_product *p;
    store_batch *b;
    store_idem idem;
    int profile;
    unsigned kid;
    uint64_t rev;
    store_err e;

    if (!check_id(st, "product_id", q->product_id, REP_PRODUCT_ID_MAX) ||
        !check_id(st, "the caller's credit code", c->subject, REP_CREDIT_MAX))
        return st->code;
    if (q->quantity == 0 || q->quantity > QUANTITY_MAX)
        return svc_fail(st, SVC_INVALID_ARGUMENT, "quantity must be 1 to %u, not %u", QUANTITY_MAX,
                        q->quantity);
    if (q->chunk_size > CHUNK_MAX)
        return svc_fail(st, SVC_INVALID_ARGUMENT, "chunk_size must be at most %u, not %u",
                        CHUNK_MAX, q->chunk_size);
    if (!check_day(st, "production_date", q->production_date) ||
        !check_text(st, "lot", q->lot, 32, 0))
        return st->code;
    if (!svc_idem(c, q->request_id, &idem, actor, st))
        return st->code;
    if (q->profile == TRACECODE__V1__CODE_PROFILE__CODE_PROFILE_UNSPECIFIED)
        profile = REP_PROFILE_MAC;
    else if (codec_profile_numbered((int)q->profile))
        profile = (int)q->profile; /* the contract's numbers are the replica's */
    else
        return svc_fail(st, SVC_INVALID_ARGUMENT,
                        "profile %d is not a CodeProfile (CODE_PROFILE_MAC or CODE_PROFILE_SIG)",
                        (int)q->profile);
    p = rep_product_find(c->svc->replica, q->product_id);
    if (!p)
        return svc_fail(st, SVC_NOT_FOUND, "product %s is not registered", q->product_id);
    if (strcmp(p->mfr->credit_code, c->subject) != 0)
        return svc_fail(st, SVC_PERMISSION_DENIED, "product %s belongs to another manufacturer",
                        q->product_id);
    kid = svc_issuing_key(c, profile, st);
    if (!kid)
        return st->code;

    s = svc_alloc(c, sizeof(*s));
    if (!s)
        return svc_fail(st, SVC_RESOURCE_EXHAUSTED, "out of call memory");
    b = &s->b;
    e = store_next_batch_id(c->svc->store, &b->id, err, sizeof(err));
    if (e)
        return svc_store_fail(st, e, err);
    snprintf(b->product_id, sizeof(b->product_id), "%s", p->product_id);
    snprintf(b->issuer, sizeof(b->issuer), "%.*s", REP_CREDIT_MAX, c->subject);
    snprintf(b->cert_number, sizeof(b->cert_number), "%s", p->cert->number);
    snprintf(b->request_id, sizeof(b->request_id), "%s", q->request_id);
    snprintf(b->production_date, sizeof(b->production_date), "%s", q->production_date);
    snprintf(b->lot, sizeof(b->lot), "%s", q->lot);
    b->quantity = q->quantity;
    b->key_id = kid;
    b->profile = profile;
    b->issued = svc_now_unix();
    b->manifest_len = manifest(b, b->manifest, sizeof(b->manifest));
    if (!b->manifest_len ||
        keys_sign(svc_ring(c->svc), (const uint8_t *)b->manifest, b->manifest_len, b->signature,
                  &b->manifest_key_id) != KEYS_OK)
        return svc_fail(st, SVC_INTERNAL, "cannot sign the batch manifest");
    /* Stored (with its signed manifest) before the first code is sent. */
    e = store_create_batch(c->svc->store, &idem, b, &rev, err, sizeof(err));
    if (e)
        return svc_store_fail(st, e, err);
    svc_settle(c, rev);
    s->chunk = chunk_of(q->chunk_size, b->profile);
    *state = s;
    return SVC_OK;
}

svc_code api_issue_next(svc_ctx *c, void *state, void *resp, int *done, svc_status *st)
{
    issue_state *s = state;
    Tracecode__V1__IssueCodesResponse *out = resp;
    uint32_t n = s->b.quantity - s->next < s->chunk ? s->b.quantity - s->next : s->chunk, i;
    size_t tlen = codec_profile_numbered(s->b.profile)->text_len;
    const keys_ring *ring;
    codec_fields f;
    char *text;

    if (!s->sent_batch) {
        out->batch = svc_alloc(c, sizeof(*out->batch));
        if (!out->batch)
            return svc_fail(st, SVC_RESOURCE_EXHAUSTED, "out of call memory");
        tracecode__v1__batch__init(out->batch);
        batch_out(c, &s->b, out->batch);
        s->sent_batch = 1;
    }
    out->first_serial = s->next;
    out->codes = c->alloc(c->arena, (size_t)n * sizeof(char *) + 1);
    text = c->alloc(c->arena, (size_t)n * (tlen + 1) + 1);
    if (!out->codes || !text)
        return svc_fail(st, SVC_RESOURCE_EXHAUSTED, "chunk_size %u is too large for one message",
                        s->chunk);
    memset(&f, 0, sizeof(f));
    f.profile = codec_profile_numbered(s->b.profile)->profile;
    f.batch = s->b.id;
    ring = svc_ring(c->svc);
    if (!keys_mac(ring, s->b.key_id) && !keys_ed25519_public(ring, s->b.key_id) &&
        svc_keys_refresh(c->svc, ring, s->b.key_id)) /* a batch begun on another node */
        ring = svc_ring(c->svc);
    for (i = 0; i < n; i++) {
        uint8_t bin[CODEC_MAX_BYTES];
        size_t len;
        f.kid = s->b.key_id;
        f.serial = s->next + i;
        if (keys_mint(ring, &f, bin, &len) != KEYS_OK)
            return svc_fail(st, SVC_FAILED_PRECONDITION,
                            "key %u of batch %" PRIu64 " is no longer available", s->b.key_id,
                            s->b.id);
        codec_text_encode(bin, len, text, tlen + 1);
        out->codes[i] = text;
        text += tlen + 1;
    }
    out->n_codes = n;
    s->next += n;
    *done = s->next >= s->b.quantity;
    return SVC_OK;
}

svc_code api_get_batch(svc_ctx *c, const void *req, void *resp, svc_status *st)
{
    const Tracecode__V1__GetBatchRequest *q = req;
    Tracecode__V1__GetBatchResponse *out = resp;
    char err[STORE_ERR_MAX];
    store_batch *b = svc_alloc(c, sizeof(*b));
    store_err e;

    if (!b)
        return svc_fail(st, SVC_RESOURCE_EXHAUSTED, "out of call memory");
    if (q->batch_id == 0)
        return svc_fail(st, SVC_INVALID_ARGUMENT, "batch_id is required");
    e = store_get_batch(c->svc->store, q->batch_id, b, err, sizeof(err));
    if (e)
        return svc_store_fail(st, e, err);
    if (strcmp(b->issuer, c->subject) != 0)
        return svc_fail(st, SVC_PERMISSION_DENIED,
                        "batch %" PRIu64 " belongs to another "
                        "manufacturer",
                        q->batch_id);
    out->batch = svc_alloc(c, sizeof(*out->batch));
    if (!out->batch)
        return svc_fail(st, SVC_RESOURCE_EXHAUSTED, "out of call memory");
    tracecode__v1__batch__init(out->batch);
    batch_out(c, b, out->batch);
    return SVC_OK;
}

/* One of the caller's products from the replica, its passport copied
 * inside the read section (a newer one may replace it after). */
static svc_code own_product(svc_ctx *c, const char *product_id, Tracecode__V1__Product **out,
                            svc_status *st)
{
    Tracecode__V1__Product *pm;
    const rep_product *p;
    const char *text;
    char *passport = NULL;

    if (!check_id(st, "product_id", product_id, REP_PRODUCT_ID_MAX))
        return st->code;
    /* What a product was registered as never changes: those strings
     * outlive the read section. */
    rep_read_begin(c->svc->replica, c->reader);
    p = rep_product_find(c->svc->replica, product_id);
    text = p ? atomic_load_explicit(&p->passport, memory_order_acquire) : NULL;
    if (text && !(passport = svc_strdup(c, text))) {
        rep_read_end(c->svc->replica, c->reader);
        return svc_fail(st, SVC_RESOURCE_EXHAUSTED, "out of call memory");
    }
    rep_read_end(c->svc->replica, c->reader);
    if (!p)
        return svc_fail(st, SVC_NOT_FOUND, "product %s is not registered", product_id);
    if (strcmp(p->mfr->credit_code, c->subject) != 0) /* as IssueCodes and GetBatch say */
        return svc_fail(st, SVC_PERMISSION_DENIED, "product %s belongs to another manufacturer",
                        product_id);
    pm = *out = svc_alloc(c, sizeof(*pm));
    if (!pm)
        return svc_fail(st, SVC_RESOURCE_EXHAUSTED, "out of call memory");
    svc_product_fill(pm, p);
    return passport_out(c, passport, pm, st);
}

svc_code api_get_product(svc_ctx *c, const void *req, void *resp, svc_status *st)
{
    const Tracecode__V1__GetProductRequest *q = req;
    Tracecode__V1__GetProductResponse *out = resp;

    return own_product(c, q->product_id, &out->product, st);
}

/* A given field of what a product was registered as must be what it is. */
static int unchanged(svc_status *st, const char *field, const char *given, const char *is)
{
    if (given[0] && strcmp(given, is ? is : "") != 0) {
        svc_fail(st, SVC_FAILED_PRECONDITION,
                 "%s cannot change: codes were issued for '%s' (register another product)", field,
                 is ? is : "");
        return 0;
    }
    return 1;
}

svc_code api_update_product(svc_ctx *c, const void *req, void *resp, svc_status *st)
{
    const Tracecode__V1__UpdateProductRequest *q = req;
    Tracecode__V1__UpdateProductResponse *out = resp;
    const Tracecode__V1__Product *m = q->product;
    char *passport = svc_alloc(c, REP_PASSPORT_MAX + 1);
    char err[STORE_ERR_MAX], actor[SVC_ACTOR_MAX];
    const rep_product *p;
    store_idem idem;
    uint64_t rev;
    store_err e;

    if (!passport)
        return svc_fail(st, SVC_RESOURCE_EXHAUSTED, "out of call memory");
    if (!m || !m->product_id[0])
        return svc_fail(st, SVC_INVALID_ARGUMENT, "product.product_id is required");
    if (!check_id(st, "product.product_id", m->product_id, REP_PRODUCT_ID_MAX))
        return st->code;
    p = rep_product_find(c->svc->replica, m->product_id); /* never freed */
    if (p && strcmp(p->mfr->credit_code, c->subject) == 0 &&
        (!unchanged(st, "product.certificate_number", m->certificate_number, p->cert->number) ||
         !unchanged(st, "product.category_code", m->category_code, p->category) ||
         !unchanged(st, "product.brand", m->brand, p->brand) ||
         !unchanged(st, "product.model", m->model, p->model) ||
         !unchanged(st, "product.gtin", m->gtin, p->gtin)))
        return st->code;
    {
        passport_fields pf = {m->standards, m->n_standards, m->test_reports, m->n_test_reports,
                              m->images,    m->n_images,    m->description,  m->origin};
        if (!passport_in(st, &pf, passport, REP_PASSPORT_MAX + 1) ||
            !svc_idem(c, q->request_id, &idem, actor, st))
            return st->code;
    }
    e = store_update_passport(c->svc->store, &idem, actor, c->subject, m->product_id, passport,
                              &rev, err, sizeof(err));
    if (e)
        return svc_store_fail(st, e, err);
    svc_settle(c, rev);
    return own_product(c, m->product_id, &out->product, st);
}

/* Serials of first..last not yet recalled (read from the replica). */
static uint64_t not_yet_recalled(svc_ctx *c, uint64_t batch, uint32_t first, uint32_t last)
{
    const rep_batch *b;
    const rep_recalls *rc;
    uint64_t n = (uint64_t)last - first + 1;
    size_t i;

    rep_read_begin(c->svc->replica, c->reader);
    b = rep_batch_get(c->svc->replica, batch);
    rc = b ? atomic_load(&b->recalls) : NULL;
    for (i = 0; rc && i < rc->n; i++) {
        uint32_t lo = rc->r[i].first > first ? rc->r[i].first : first;
        uint32_t hi = rc->r[i].last < last ? rc->r[i].last : last;
        if (lo <= hi)
            n -= (uint64_t)hi - lo + 1;
    }
    rep_read_end(c->svc->replica, c->reader);
    return n;
}

svc_code api_recall_batch(svc_ctx *c, const void *req, void *resp, svc_status *st)
{
    const Tracecode__V1__RecallBatchRequest *q = req;
    Tracecode__V1__RecallBatchResponse *out = resp;
    char err[STORE_ERR_MAX], actor[SVC_ACTOR_MAX];
    uint64_t rev, fresh;
    uint32_t notices = 0;
    store_idem idem;
    store_err e;

    if (q->batch_id == 0)
        return svc_fail(st, SVC_INVALID_ARGUMENT, "batch_id is required");
    if (q->first_serial > q->last_serial)
        return svc_fail(st, SVC_INVALID_ARGUMENT, "first_serial %u is after last_serial %u",
                        q->first_serial, q->last_serial);
    if (!check_text(st, "reason", q->reason, REP_REASON_MAX, 1) ||
        !svc_idem(c, q->request_id, &idem, actor, st))
        return st->code;
    fresh = not_yet_recalled(c, q->batch_id, q->first_serial, q->last_serial);
    e = store_recall(c->svc->store, &idem, c->subject, q->batch_id, q->first_serial, q->last_serial,
                     q->reason, svc_now_unix(), &fresh, &rev, &notices, err, sizeof(err));
    if (e)
        return svc_store_fail(st, e, err);
    svc_settle(c, rev);
    out->affected = fresh;
    out->notices = notices;
    return SVC_OK;
}
