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
        "VERDICT_UNSPECIFIED", "GENUINE",          "MALFORMED",        "FORGED",
        "UNKNOWN_BATCH",       "RECALLED",         "CERT_SUSPENDED",   "CERT_REVOKED",
        "CERT_EXPIRED",        "LISTING_MISMATCH", "ISSUER_SUSPENDED", "KEY_COMPROMISED",
        "CERT_CANCELLED",      "GTIN_MISMATCH",    "ALREADY_SOLD",
    };
    _Static_assert(sizeof(names) / sizeof(names[0]) == TC_VERDICT_LAST + 1,
                   "a name for every verdict");

    if (verdict < 0 || verdict > TC_VERDICT_LAST)
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

static void reset(tc_vres *out)
{
    out->verdict = 0;
    out->batch_id = 0;
    out->serial = 0;
    out->cert_status = 0;
    out->batch = NULL;
    out->unknown_kid = 0;
    out->parse_err = 0;
    out->detail[0] = '\0';
}

/* Stage 1: decode and check the tag or signature. 1 when the code goes on
 * to the registry checks (fields in *s), 0 when out is decided. */
static int decode_check(const keys_ring *ring, const char *code, size_t len, tc_vres *out,
                        tc_scratch *s)
{
    char gtin[CODEC_GTIN_LEN + 1];
    codec_errinfo ei;
    codec_code c;
    codec_err err;
    int known;

    reset(out);
    err = codec_parse_label(code, len, &c, gtin, &ei);
    s->dl = gtin[0] != '\0';
    if (err) {
        codec_describe(&ei, code, len, out->detail, sizeof(out->detail));
        out->verdict = TC_MALFORMED;
        out->parse_err = (uint8_t)err;
        return 0;
    }
    out->batch_id = c.f.batch;
    out->serial = c.f.serial;
    err = keys_check(ring, &c, &known);
    if (err) {
        if (!known) {
            verdict(out, TC_FORGED, "unknown or retired key id %u", c.f.kid);
            out->unknown_kid = (uint8_t)c.f.kid;
        } else
            verdict(out, TC_FORGED, "%s", codec_strerror(err));
        return 0;
    }
    s->batch = c.f.batch;
    s->serial = c.f.serial;
    s->kid = (uint8_t)c.f.kid;
    s->profile = codec_profile_of(c.f.profile)->number; /* parsed: a known profile */
    return 1;
}

/* The last stage: the registry's say on a code whose tag verified. */
static void decide(const rep *r, const rep_batch *b, const tc_scratch *s, const char *code,
                   size_t len, const tc_listing *listing, int64_t now, tc_vres *out)
{
    const rep_recalls *rc;
    const rep_range *rr;
    int64_t since;
    uint64_t hot;

    if (!b) {
        verdict(out, TC_UNKNOWN_BATCH, "batch %llu was never issued", (unsigned long long)s->batch);
        return;
    }
    out->batch = b;
    hot = atomic_load_explicit(&b->cert->hot, memory_order_acquire);
    out->cert_status = REP_HOT_STATUS(hot);
    if (s->serial >= b->quantity) {
        verdict(out, TC_UNKNOWN_BATCH, "serial %u is beyond batch %llu's quantity %u", s->serial,
                (unsigned long long)b->id, b->quantity);
        return;
    }
    if (s->kid != b->key_id || s->profile != b->profile) {
        verdict(out, TC_UNKNOWN_BATCH, "batch %llu was issued under key %u (%s), not key %u",
                (unsigned long long)b->id, b->key_id, codec_profile_numbered(b->profile)->name,
                s->kid);
        return;
    }
    since = rep_key_compromised(r, s->kid);
    if (since && b->issued >= since) {
        char day[32];
        format_day(since, day, sizeof(day));
        verdict(out, TC_KEY_COMPROMISED,
                "key %u was declared compromised from %s, before batch %llu was issued", s->kid,
                day, (unsigned long long)b->id);
        return;
    }
    rc = atomic_load_explicit(&b->recalls, memory_order_acquire);
    rr = rep_recalled(rc, s->serial);
    if (rr) {
        verdict(out, TC_RECALLED, "serials %u-%u of batch %llu are recalled: %s", rr->first,
                rr->last, (unsigned long long)b->id, rr->reason);
        return;
    }
    switch (out->cert_status) {
    case REP_CERT_REVOKED:
        verdict(out, TC_CERT_REVOKED, "certificate %s is revoked: %s", b->cert->number,
                atomic_load_explicit(&b->cert->v, memory_order_acquire)->reason);
        return;
    case REP_CERT_CANCELLED:
        verdict(out, TC_CERT_CANCELLED, "certificate %s was cancelled by its holder: %s",
                b->cert->number, atomic_load_explicit(&b->cert->v, memory_order_acquire)->reason);
        return;
    case REP_CERT_SUSPENDED:
        verdict(out, TC_CERT_SUSPENDED, "certificate %s is suspended: %s", b->cert->number,
                atomic_load_explicit(&b->cert->v, memory_order_acquire)->reason);
        return;
    case REP_CERT_EXPIRED:
        verdict(out, TC_CERT_EXPIRED, "certificate %s has expired", b->cert->number);
        return;
    default:
        break;
    }
    if (REP_HOT_VALID_UNTIL(hot) && now > REP_HOT_VALID_UNTIL(hot)) {
        char day[32];
        format_day(REP_HOT_VALID_UNTIL(hot), day, sizeof(day));
        out->cert_status = REP_CERT_EXPIRED;
        verdict(out, TC_CERT_EXPIRED, "certificate %s expired on %s", b->cert->number, day);
        return;
    }
    if (atomic_load_explicit(&b->mfr->status, memory_order_acquire) == REP_MFR_SUSPENDED) {
        verdict(out, TC_ISSUER_SUSPENDED, "manufacturer %s is suspended", b->mfr->credit_code);
        return;
    }
    if (s->dl) { /* a Digital Link (rare): its GTIN, read again, must be the product's */
        const char *pg = b->product->gtin;
        char g[CODEC_GTIN_LEN + 1], named[CODEC_GTIN_LEN + 1];
        codec_code c;
        if (codec_parse_label(code, len, &c, named, NULL) != CODEC_OK || !pg || !*pg ||
            !codec_gtin14(pg, strlen(pg), g) || strcmp(g, named) != 0) {
            verdict(out, TC_GTIN_MISMATCH,
                    "the Digital Link names GTIN %s; this code belongs to product %s (%s)", named,
                    b->product->product_id, pg && *pg ? pg : "no GTIN registered");
            return;
        }
    }
    if (listing && ((listing->category && *listing->category) ||
                    (listing->brand && *listing->brand) || (listing->model && *listing->model))) {
        const rep_product *p = b->product;
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

void tc_verify(const rep *r, const keys_ring *ring, const char *code, size_t len,
               const tc_listing *listing, int64_t now, tc_vres *out)
{
    tc_scratch s;

    if (decode_check(ring, code, len, out, &s))
        decide(r, rep_batch_get(r, s.batch), &s, code, len, listing, now, out);
}

_Static_assert(sizeof(tc_scratch) == 16, "a code's scratch stays 16 bytes (cache)");

/* Stages run over groups this large: enough misses in flight to overlap,
 * few enough results that they stay in the L2 cache between stages. */
#define STAGE_GROUP 128

void tc_verify_many(const rep *r, const keys_ring *ring, const tc_item *items, size_t n,
                    int64_t now, tc_vres *out, tc_scratch *s)
{
    size_t g, i, end;

    for (g = 0; g < n; g = end) {
        end = n - g > STAGE_GROUP ? g + STAGE_GROUP : n;
        for (i = g; i < end; i++) { /* decode and MAC: compute, while slots arrive */
            s[i].done = !decode_check(ring, items[i].code, items[i].len, &out[i], &s[i]);
            if (!s[i].done)
                rep_batch_prefetch(r, s[i].batch);
        }
        for (i = g; i < end; i++) { /* slots are cached: fetch the records */
            if (!s[i].done) {
                const rep_batch *b = rep_batch_get(r, s[i].batch);
                out[i].batch = b;
                if (b)
                    __builtin_prefetch(b);
            }
        }
        for (i = g; i < end; i++) { /* records are cached: fetch the status words */
            const rep_batch *b = out[i].batch;
            if (!s[i].done && b) {
                __builtin_prefetch(&b->cert->hot);
                __builtin_prefetch(&b->mfr->status);
            }
        }
        for (i = g; i < end; i++)
            if (!s[i].done)
                decide(r, out[i].batch, &s[i], items[i].code, items[i].len, items[i].listing, now,
                       &out[i]);
    }
}
