/*
 * verify.h - the verification of one code against the keyring and the
 * replica: the hot path. No lock, no allocation, no Redis; the caller
 * holds a replica read section around the call (and around its use of the
 * pointers in the result).
 *
 * Order of checks (the first failing one decides):
 *   decode (strict text, or a scan URL in any case)  MALFORMED
 *   key id known, tag / signature                     FORGED
 *   batch issued, serial < quantity, key and profile  UNKNOWN_BATCH
 *   key compromised before the batch was issued       KEY_COMPROMISED
 *   serial in a recalled range                        RECALLED
 *   certificate revoked / cancelled / suspended /     CERT_REVOKED, CERT_CANCELLED,
 *   expired                                           CERT_SUSPENDED, CERT_EXPIRED
 *   manufacturer suspended                            ISSUER_SUSPENDED
 *   a Digital Link's GTIN not the product's           GTIN_MISMATCH
 *   listing's claimed category / brand / model        LISTING_MISMATCH
 *   otherwise                                         GENUINE
 */
#ifndef TC_VERIFY_H
#define TC_VERIFY_H

#include "keys.h"
#include "replica.h"

#include <stddef.h>
#include <stdint.h>

/* Numbers are those of tracecode.v1.Verdict. */
enum {
    TC_GENUINE = 1,
    TC_MALFORMED = 2,
    TC_FORGED = 3,
    TC_UNKNOWN_BATCH = 4,
    TC_RECALLED = 5,
    TC_CERT_SUSPENDED = 6,
    TC_CERT_REVOKED = 7,
    TC_CERT_EXPIRED = 8,
    TC_LISTING_MISMATCH = 9,
    TC_ISSUER_SUSPENDED = 10,
    TC_KEY_COMPROMISED = 11,
    TC_CERT_CANCELLED = 12,
    TC_GTIN_MISMATCH = 13,
    TC_ALREADY_SOLD = 14, /* ReportSales only: never an answer of tc_verify */
    TC_VERDICT_LAST = TC_ALREADY_SOLD,
    /* Counters per verdict are arrays of this many, indexed by v & (n-1):
     * a power of two above TC_VERDICT_LAST (checked in common.c). */
    TC_VERDICT_SLOTS = 16
};

const char *tc_verdict_name(int verdict);

/* A listing's claims; NULL or "" fields are not claimed. Borrowed. */
typedef struct tc_listing {
    const char *category;
    const char *brand;
    const char *model;
} tc_listing;

#define TC_DETAIL_MAX 256

typedef struct tc_vres {
    int verdict;
    uint64_t batch_id; /* 0 when not decoded */
    uint32_t serial;
    int cert_status;            /* 0 when the batch is unknown */
    uint8_t parse_err;          /* MALFORMED: the codec_err that said so */
    uint8_t unknown_kid;        /* FORGED because no key of this id may verify
                                 * here: the caller may reload the keyring
                                 * once and ask again (0 otherwise) */
    const rep_batch *batch;     /* NULL when unknown; its cert, mfr and
                                 * product give the details */
    char detail[TC_DETAIL_MAX]; /* empty when GENUINE */
} tc_vres;

/* Decide one code. now is unix seconds (for valid_until). */
void tc_verify(const rep *r, const keys_ring *ring, const char *code, size_t len,
               const tc_listing *listing, int64_t now, tc_vres *out);

/* One code of a batch. Borrowed. */
typedef struct tc_item {
    const char *code;
    size_t len;
    const tc_listing *listing; /* may be NULL */
} tc_item;

/* Per-code working state of tc_verify_many, provided by the caller. */
typedef struct tc_scratch {
    uint64_t batch;
    uint32_t serial;
    uint8_t kid, profile, done;
    uint8_t dl; /* read as a Digital Link: its GTIN is checked when deciding (the
                 * scratch stays 16 bytes: 1,024 of them fit the L1 cache) */
} tc_scratch;

/*
 * Decide n codes, with the same verdicts as tc_verify one by one, in
 * stages over the whole batch (decode and MAC every code, then fetch the
 * index slots, the batch records, the status words, then decide), with
 * prefetches between stages so that the cache misses of many codes
 * overlap instead of following one another: on a registry far larger than
 * the caches this keeps the rate close to a small registry's.
 */
void tc_verify_many(const rep *r, const keys_ring *ring, const tc_item *items, size_t n,
                    int64_t now, tc_vres *out, tc_scratch *s);

#endif
