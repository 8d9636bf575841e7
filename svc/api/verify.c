/*
 * verify.c - one code against the keyring and the replica.
 */
#include "verify.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

const char *tc_verdict_name(int verdict)
{
    static const char *const names[] = {
        "VERDICT_UNSPECIFIED", "GENUINE",        "MALFORMED",       "FORGED",
        "UNKNOWN_BATCH",       "RECALLED",       "CERT_SUSPENDED",  "CERT_REVOKED",
        "CERT_EXPIRED",        "LISTING_MISMATCH", "ISSUER_SUSPENDED",
    };

    if (verdict < 0 || verdict > TC_ISSUER_SUSPENDED)
        return "VERDICT_UNSPECIFIED";
    return names[verdict];
}

static int verdict(tc_vres *out, int v, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int verdict(tc_vres *out, int v, const char *fmt, ...)
{
    va_list ap;

    out->verdict = v;
    va_start(ap, fmt);
    vsnprintf(out->detail, sizeof(out->detail), fmt, ap);
    va_end(ap);
    return v;
}

/* A claimed field matches when unclaimed, or equal ignoring ASCII case. */
static int claim_ok(const char *claimed, const char *actual)
{
    return !claimed || !*claimed || strcasecmp(claimed, actual) == 0;
}

static void format_day(int64_t t, char *buf, size_t cap)
{
    time_t tt = (time_t)t;
    struct tm tm;

    if (!gmtime_r(&tt, &tm) || !strftime(buf, cap, "%Y-%m-%d", &tm))
        snprintf(buf, cap, "%lld", (long long)t);
}

void tc_verify(const rep *r, const keys_ring *ring, const char *code, size_t len,
               const tc_listing *listing, int64_t now, tc_vres *out)
{
    codec_errinfo ei;
    codec_code c;
    codec_err err;
    const rep_batch *b;
    const rep_recalls *rc;
    const rep_range *rr;
    const rep_product *p;
    int known, profile;

    out->verdict = 0;
    out->batch_id = 0;
    out->serial = 0;
    out->cert_status = 0;
    out->batch = NULL;
    out->cert = NULL;
    out->mfr = NULL;
    out->detail[0] = '\0';

    /* A 34-character text cannot hold "/C/" and a code: skip the scan in
     * the common case. */
    err = len != CODEC_MAC_TEXT_LEN && codec_url_has_path(code, len)
              ? codec_url_parse(code, len, &c, NULL, &ei)
              : codec_parse(code, len, &c, &ei);
    if (err) {
        codec_describe(&ei, code, len, out->detail, sizeof(out->detail));
        out->verdict = TC_MALFORMED;
        return;
    }
    out->batch_id = c.f.batch;
    out->serial = c.f.serial;

    err = keys_check(ring, &c, &known);
    if (err) {
        if (!known)
            verdict(out, TC_FORGED, "unknown or retired key id %u", c.f.kid);
        else
            verdict(out, TC_FORGED, "%s", codec_strerror(err));
        return;
    }

    b = rep_batch_get(r, c.f.batch);
    if (!b) {
        verdict(out, TC_UNKNOWN_BATCH, "batch %llu was never issued",
                (unsigned long long)c.f.batch);
        return;
    }
    out->batch = b;
    p = b->product;
    out->cert = atomic_load_explicit(&p->cert->v, memory_order_acquire);
    out->mfr = atomic_load_explicit(&p->mfr->v, memory_order_acquire);
    out->cert_status = out->cert->status;
    profile = c.f.profile == CODEC_PROFILE_MAC ? REP_PROFILE_MAC : REP_PROFILE_SIG;
    if (c.f.serial >= b->quantity) {
        verdict(out, TC_UNKNOWN_BATCH, "serial %u is beyond batch %llu's quantity %u",
                c.f.serial, (unsigned long long)b->id, b->quantity);
        return;
    }
    if (c.f.kid != b->key_id || profile != b->profile) {
        verdict(out, TC_UNKNOWN_BATCH, "batch %llu was issued under key %u (%s), not key %u",
                (unsigned long long)b->id, b->key_id, b->profile == REP_PROFILE_MAC ? "mac" : "sig",
                c.f.kid);
        return;
    }

    rc = atomic_load_explicit(&b->recalls, memory_order_acquire);
    rr = rep_recalled(rc, c.f.serial);
    if (rr) {
        verdict(out, TC_RECALLED, "serials %u-%u of batch %llu are recalled: %s", rr->first,
                rr->last, (unsigned long long)b->id, rr->reason);
        return;
    }

    switch (out->cert->status) {
    case REP_CERT_REVOKED:
        verdict(out, TC_CERT_REVOKED, "certificate %s is revoked: %s", p->cert->number,
                out->cert->reason);
        return;
    case REP_CERT_SUSPENDED:
        verdict(out, TC_CERT_SUSPENDED, "certificate %s is suspended: %s", p->cert->number,
                out->cert->reason);
        return;
    case REP_CERT_EXPIRED:
        verdict(out, TC_CERT_EXPIRED, "certificate %s has expired", p->cert->number);
        return;
    default:
        break;
    }
    if (out->cert->valid_until && now > out->cert->valid_until) {
        char day[32];
        format_day(out->cert->valid_until, day, sizeof(day));
        out->cert_status = REP_CERT_EXPIRED;
        verdict(out, TC_CERT_EXPIRED, "certificate %s expired on %s", p->cert->number, day);
        return;
    }
    if (out->mfr->status == REP_MFR_SUSPENDED) {
        verdict(out, TC_ISSUER_SUSPENDED, "manufacturer %s is suspended", p->mfr->credit_code);
        return;
    }
    if (listing) {
        if (!claim_ok(listing->category, p->category)) {
            verdict(out, TC_LISTING_MISMATCH, "listing claims category '%.32s', product is '%s'",
                    listing->category, p->category);
            return;
        }
        if (!claim_ok(listing->brand, p->brand)) {
            verdict(out, TC_LISTING_MISMATCH, "listing claims brand '%.64s', product is '%s'",
                    listing->brand, p->brand);
            return;
        }
        if (!claim_ok(listing->model, p->model)) {
            verdict(out, TC_LISTING_MISMATCH, "listing claims model '%.64s', product is '%s'",
                    listing->model, p->model);
            return;
        }
    }
    out->verdict = TC_GENUINE;
}
