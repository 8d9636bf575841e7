/*
 * scan.h - what a consumer sees when scanning a code: the verdict, the
 * product and its maker, the certificate, a recall, the code's scan
 * history and whether it looks copied. Shared by ConsumerService.Scan and
 * the HTTP scan page.
 *
 * Copy rules (thresholds in svc.scan, flags --copy-*; docs/SCANS.md):
 *   devices   more distinct devices than copy_devices scanned the code
 *   regions   scans from more than copy_regions distinct regions
 *   travel    scans from two provinces within copy_window_s of each other
 *   listings  the code is bound to more than one listing (any platform)
 */
#ifndef TC_SCAN_H
#define TC_SCAN_H

#include "api.h"
#include "passport.h"
#include "verify.h"

#define SCAN_TEXT_MAX 256

typedef struct scan_view {
    int verdict; /* tracecode.v1.Verdict */
    char detail[TC_DETAIL_MAX];
    char code[CODEC_MAX_TEXT_LEN + 1]; /* canonical text, when it decodes */
    uint64_t batch_id;
    uint32_t serial;
    int cert_status;
    char cert_number[REP_NUMBER_MAX + 1];
    char brand[SCAN_TEXT_MAX], model[SCAN_TEXT_MAX], category[REP_CATEGORY_MAX + 1];
    char issuer_name[SCAN_TEXT_MAX], issuer_credit[REP_CREDIT_MAX + 1];
    char recall_reason[SCAN_TEXT_MAX];
    char cert_reason[SCAN_TEXT_MAX];     /* the status's reason, as the regulator entered it */
    char passport[REP_PASSPORT_MAX + 1]; /* the product's, stored form ("" for none) */
    char production_date[11], lot[33];   /* the batch's, as its maker gave them */
    int recorded;                        /* the history was read (the code is one we issued) */
    int counted;                         /* and this scan was counted in it */
    store_scan history;
    int suspected_copy;
    char copy_why[160];    /* which rules, in English words */
    char copy_why_zh[240]; /* the same in Chinese */
    store_sale sale;       /* state STORE_SALE_SOLD when a platform reported its sale */
    int mistyped;          /* MALFORMED because the printed check symbol does not match */
    const char *hotline;   /* whom a consumer calls about a suspect product (--complaint-hotline) */
} scan_view;

/*
 * Decide code (any form codec_parse_any takes), read the code's scan
 * history when it is one we issued (its tag verifies and its batch exists)
 * and apply the copy rules. With record set, count this scan first: the
 * callers set it only for a device that proved itself (the page's own
 * cookie, a platform's device id), never for a HEAD, a link preview or an
 * anonymous fetch. reader: the calling thread's replica reader slot. A
 * failure to reach Redis still answers the verdict, with recorded = 0.
 */
void scan_code(const svc *s, int reader, const char *code, const char *region, const char *device,
               int record, scan_view *v);

/* A short label ("正品", "Genuine") and a sentence in plain words for a
 * consumer, in Chinese or (en) English. */
const char *scan_label(const scan_view *v, int en);
/* unix_s in China time, the zone named ("2026-12-03 23:10（北京时间）",
 * "... China time (UTC+8)"). */
void scan_time(int64_t unix_s, int en, char *out, size_t cap);
/* unix_s in China time as strftime's fmt (no zone named); the length. */
size_t scan_day(int64_t unix_s, const char *fmt, char *out, size_t cap);
void scan_message(const scan_view *v, int en, char *out, size_t cap);

#endif
