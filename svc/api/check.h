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
/* Text: 0..max bytes (min 1 when required), valid UTF-8, no control bytes. */
int check_text(svc_status *st, const char *field, const char *s, size_t max, int required);

/* The canonical text of a code given as text or URL, any case (keys and
 * dedup use the decoded code, never the string sent). 0 when it does not
 * decode. */
int check_canonical_code(const char *in, char out[CODEC_MAX_TEXT_LEN + 1]);

#endif
