/*
 * passport_api.c - a product's passport between the contract and its
 * stored form (svc/core/passport.h): checked and written for
 * RegisterProduct and UpdateProduct, read back for GetProduct and the scan.
 */
#include "api.h"
#include "check.h"
#include "passport.h"
#include "passport_api.h"

#include <stdio.h>
#include <string.h>

#define STANDARD_MAX 64
#define REPORT_NUMBER_MAX 64
#define LABORATORY_MAX 128
#define URL_MAX 512
#define ALT_MAX 200
#define DESCRIPTION_MAX 2000
#define ORIGIN_MAX 128

/* An https URL a page may link to: printable ASCII without the characters
 * that could leave an attribute or a URL (" < > \ ^ ` { | } and space). */
static int check_https(svc_status *st, const char *field, const char *s)
{
    size_t n = strnlen(s, URL_MAX + 1), i;

    if (n > URL_MAX) {
        svc_fail(st, SVC_INVALID_ARGUMENT, "%s is longer than %d bytes", field, URL_MAX);
        return 0;
    }
    if (strncmp(s, "https://", 8) != 0 || n == 8 || s[8] == '/') {
        svc_fail(st, SVC_INVALID_ARGUMENT, "%s must be an https:// address with a host", field);
        return 0;
    }
    for (i = 0; i < n; i++)
        if (s[i] <= 0x20 || s[i] >= 0x7f || strchr("\"<>\\^`{|}", s[i])) {
            svc_fail(st, SVC_INVALID_ARGUMENT,
                     "%s has a character a link may not hold at offset %zu (percent-encode it)",
                     field, i);
            return 0;
        }
    return 1;
}

static int check_sha256(svc_status *st, const char *field, const char *s)
{
    size_t n = strnlen(s, 65);

    if (n != 64 || strspn(s, "0123456789abcdef") != 64) {
        svc_fail(st, SVC_INVALID_ARGUMENT, "%s must be 64 lower-case hex digits (SHA-256)", field);
        return 0;
    }
    return 1;
}

int passport_in(svc_status *st, const passport_fields *f, char *out, size_t cap)
{
    char field[64];
    passport p;
    size_t i;

    memset(&p, 0, sizeof(p));
    if (f->nstandards > PASSPORT_STANDARDS_MAX || f->nreports > PASSPORT_REPORTS_MAX ||
        f->nimages > PASSPORT_IMAGES_MAX) {
        svc_fail(st, SVC_INVALID_ARGUMENT,
                 "at most %d standards, %d test reports and %d images, not %zu, %zu and %zu",
                 PASSPORT_STANDARDS_MAX, PASSPORT_REPORTS_MAX, PASSPORT_IMAGES_MAX, f->nstandards,
                 f->nreports, f->nimages);
        return 0;
    }
    for (i = 0; i < f->nstandards; i++) {
        snprintf(field, sizeof(field), "standards[%zu]", i);
        if (!check_text(st, field, f->standards[i], STANDARD_MAX, 1))
            return 0;
        p.standards[p.nstandards++] = f->standards[i];
    }
    for (i = 0; i < f->nreports; i++) {
        const Tracecode__V1__TestReport *r = f->reports[i];
        passport_report *o = &p.reports[p.nreports++];
        snprintf(field, sizeof(field), "test_reports[%zu].number", i);
        if (!check_text(st, field, r->number, REPORT_NUMBER_MAX, 1))
            return 0;
        snprintf(field, sizeof(field), "test_reports[%zu].laboratory", i);
        if (!check_text(st, field, r->laboratory, LABORATORY_MAX, 1))
            return 0;
        if (r->issued_unix < 0 || r->issued_unix > svc_now_unix() + 86400) {
            svc_fail(st, SVC_INVALID_ARGUMENT, "test_reports[%zu].issued_unix is in the future", i);
            return 0;
        }
        if (r->url[0] || r->sha256[0]) { /* a link comes with its file's hash */
            snprintf(field, sizeof(field), "test_reports[%zu].url", i);
            if (!check_https(st, field, r->url))
                return 0;
            snprintf(field, sizeof(field), "test_reports[%zu].sha256", i);
            if (!check_sha256(st, field, r->sha256))
                return 0;
        }
        o->number = r->number;
        o->laboratory = r->laboratory;
        o->issued_unix = r->issued_unix;
        o->url = r->url;
        o->sha256 = r->sha256;
    }
    for (i = 0; i < f->nimages; i++) {
        const Tracecode__V1__ProductImage *im = f->images[i];
        passport_image *o = &p.images[p.nimages++];
        snprintf(field, sizeof(field), "images[%zu].url", i);
        if (!check_https(st, field, im->url))
            return 0;
        snprintf(field, sizeof(field), "images[%zu].sha256", i);
        if (!check_sha256(st, field, im->sha256))
            return 0;
        snprintf(field, sizeof(field), "images[%zu].alt", i);
        if (!check_text(st, field, im->alt, ALT_MAX, 1))
            return 0;
        o->url = im->url;
        o->sha256 = im->sha256;
        o->alt = im->alt;
    }
    if (!check_text(st, "description", f->description, DESCRIPTION_MAX, 0) ||
        !check_text(st, "origin", f->origin, ORIGIN_MAX, 0))
        return 0;
    p.description = f->description;
    p.origin = f->origin;
    if (passport_format(&p, out, cap) >= cap) { /* not reached: the bounds keep it short */
        svc_fail(st, SVC_INVALID_ARGUMENT, "the passport is longer than %zu bytes", cap - 1);
        return 0;
    }
    return 1;
}

svc_code passport_out(svc_ctx *c, const char *text, Tracecode__V1__Product *pm, svc_status *st)
{
    char *copy;
    passport p;
    size_t i;

    if (!text || !*text)
        return SVC_OK;
    if (!(copy = svc_strdup(c, text)))
        return svc_fail(st, SVC_RESOURCE_EXHAUSTED, "out of call memory");
    if (passport_parse(copy, &p) != 0)
        return svc_fail(st, SVC_INTERNAL, "the stored passport does not read");
    pm->standards = svc_alloc(c, (p.nstandards + 1) * sizeof(char *));
    pm->test_reports = svc_alloc(c, (p.nreports + 1) * sizeof(*pm->test_reports));
    pm->images = svc_alloc(c, (p.nimages + 1) * sizeof(*pm->images));
    if (!pm->standards || !pm->test_reports || !pm->images)
        return svc_fail(st, SVC_RESOURCE_EXHAUSTED, "out of call memory");
    for (i = 0; i < p.nstandards; i++)
        pm->standards[i] = (char *)p.standards[i];
    pm->n_standards = p.nstandards;
    for (i = 0; i < p.nreports; i++) {
        Tracecode__V1__TestReport *r = svc_alloc(c, sizeof(*r));
        if (!r)
            return svc_fail(st, SVC_RESOURCE_EXHAUSTED, "out of call memory");
        tracecode__v1__test_report__init(r);
        r->number = (char *)p.reports[i].number;
        r->laboratory = (char *)p.reports[i].laboratory;
        r->issued_unix = p.reports[i].issued_unix;
        r->url = (char *)p.reports[i].url;
        r->sha256 = (char *)p.reports[i].sha256;
        pm->test_reports[i] = r;
    }
    pm->n_test_reports = p.nreports;
    for (i = 0; i < p.nimages; i++) {
        Tracecode__V1__ProductImage *im = svc_alloc(c, sizeof(*im));
        if (!im)
            return svc_fail(st, SVC_RESOURCE_EXHAUSTED, "out of call memory");
        tracecode__v1__product_image__init(im);
        im->url = (char *)p.images[i].url;
        im->sha256 = (char *)p.images[i].sha256;
        im->alt = (char *)p.images[i].alt;
        pm->images[i] = im;
    }
    pm->n_images = p.nimages;
    pm->description = (char *)p.description;
    pm->origin = (char *)p.origin;
    return SVC_OK;
}
