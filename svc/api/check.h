/*
 * check.h - input checks shared by the capabilities. Each returns 1 when
 * the value is acceptable, else fills st with INVALID_ARGUMENT naming the
 * field and the limit, and returns 0.
 */
#ifndef TC_CHECK_H
#define TC_CHECK_H

#include "api.h"

#include <stddef.h>

/* An identifier: 1..max bytes of A-Z a-z 0-9 . _ - */
int check_id(svc_status *st, const char *field, const char *s, size_t max);
/* Text: 0..max bytes (min 1 when required), valid UTF-8, no control
 * characters, and none that is invisible or changes the text's direction
 * (bidi overrides and isolates, zero widths, C1 controls, BOM): names and
 * reasons are shown to consumers as stored. */
int check_text(svc_status *st, const char *field, const char *s, size_t max, int required);

/* A unified social credit code (GB 32100-2015): 18 characters of
 * 0-9 A-H J-N P-R T U W-Y, the 18th the check character of the first 17
 * (weights 3^i mod 31). */
int check_credit_code(svc_status *st, const char *field, const char *s);
/* A GS1 GTIN-8, -12, -13 or -14: digits only, the last the GS1 mod-10
 * check digit of the others. Empty is acceptable (optional field). */
int check_gtin(svc_status *st, const char *field, const char *s);
/* A product category code: 2 to REP_CATEGORY_MAX characters, upper-case
 * letters and digits, then also '.' and '-' (e.g. "0704", "XK06-014"). */
int check_category(svc_status *st, const char *field, const char *s);

/* The canonical text of a code in any form codec_parse_any takes (keys
 * and dedup use the decoded code, never the string sent). 0 when it does
 * not decode. */
int check_canonical_code(const char *in, char out[CODEC_MAX_TEXT_LEN + 1]);

#endif
