/*
 * passport_api.h - a product's passport between the contract's messages
 * and its stored form (passport_api.c).
 */
#ifndef TC_PASSPORT_API_H
#define TC_PASSPORT_API_H

#include "node.h"
#include "tracecode/v1/types.pb-c.h"

/* The passport fields of a request (RegisterProduct's or a Product's). */
typedef struct passport_fields {
    char **standards;
    size_t nstandards;
    Tracecode__V1__TestReport **reports;
    size_t nreports;
    Tracecode__V1__ProductImage **images;
    size_t nimages;
    const char *description, *origin;
} passport_fields;

/* Check f (counts, lengths, text, https links, SHA-256s) and write its
 * stored form into out (REP_PASSPORT_MAX + 1 bytes): 1, or 0 with st
 * saying which field and why. */
int passport_in(svc_status *st, const passport_fields *f, char *out, size_t cap);
/* The stored form text into pm's passport fields (strings in c's arena). */
svc_code passport_out(svc_ctx *c, const char *text, Tracecode__V1__Product *pm, svc_status *st);

#endif
