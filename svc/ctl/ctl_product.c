/*
 * ctl_product.c - a product's passport: product show, product update
 * --file F. The file, one field a line ('#' comments, blank lines skipped):
 *
 *   standard: GB 4943.1-2022
 *   report: NUMBER | LABORATORY | YYYY-MM-DD | https://... | SHA-256
 *   image: https://... | SHA-256 | what it shows
 *   description: ...
 *   origin: ...
 */
#include "ctl.h"

#include <time.h>

#define LINES_MAX 64

typedef struct passport_file {
    char *standards[16];
    Tracecode__V1__TestReport reports[16], *preports[16];
    Tracecode__V1__ProductImage images[8], *pimages[8];
    size_t ns, nr, ni;
    char *description, *origin;
    char *lines[LINES_MAX];
    size_t nlines;
} passport_file;

static char *trim(char *s)
{
    char *e;

    while (*s == ' ' || *s == '\t')
        s++;
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
        *--e = '\0';
    return s;
}

/* The next " | "-separated part of *s. */
static char *part(char **s)
{
    char *p = *s, *bar;

    if (!p)
        return (char *)"";
    bar = strchr(p, '|');
    if (bar) {
        *bar = '\0';
        *s = bar + 1;
    } else {
        *s = NULL;
    }
    return trim(p);
}

static int64_t day_unix(const char *d)
{
    struct tm tm;

    memset(&tm, 0, sizeof(tm));
    if (!*d || sscanf(d, "%4d-%2d-%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday) != 3)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm) - 8 * 3600; /* the day in China time */
}

static int read_passport(const char *path, passport_file *f)
{
    FILE *in;
    char buf[4096];
    unsigned line = 0;

    memset(f, 0, sizeof(*f));
    if (!(in = fopen(path, "r")))
        return fail_local("cannot open '%s': %s", path, strerror(errno));
    while (fgets(buf, sizeof(buf), in)) {
        char *s = trim(buf), *v = strchr(s, ':'), *copy;
        line++;
        if (!*s || *s == '#')
            continue;
        if (!v || f->nlines == LINES_MAX || !(copy = strdup(trim(v + 1)))) {
            fclose(in);
            return fail("%s line %u: want 'field: value' (standard, report, image, "
                        "description, origin)",
                        path, line);
        }
        f->lines[f->nlines++] = copy;
        *v = '\0';
        if (!strcmp(s, "standard") && f->ns < 16) {
            f->standards[f->ns++] = copy;
        } else if (!strcmp(s, "report") && f->nr < 16) {
            Tracecode__V1__TestReport *r = &f->reports[f->nr];
            char *rest = copy;
            tracecode__v1__test_report__init(r);
            r->number = part(&rest);
            r->laboratory = part(&rest);
            r->issued_unix = day_unix(part(&rest));
            r->url = part(&rest);
            r->sha256 = part(&rest);
            if (r->issued_unix < 0) {
                fclose(in);
                return fail("%s line %u: a report's third part is its date, YYYY-MM-DD", path,
                            line);
            }
            f->preports[f->nr++] = r;
        } else if (!strcmp(s, "image") && f->ni < 8) {
            Tracecode__V1__ProductImage *im = &f->images[f->ni];
            char *rest = copy;
            tracecode__v1__product_image__init(im);
            im->url = part(&rest);
            im->sha256 = part(&rest);
            im->alt = part(&rest);
            f->pimages[f->ni++] = im;
        } else if (!strcmp(s, "description")) {
            f->description = copy;
        } else if (!strcmp(s, "origin")) {
            f->origin = copy;
        } else {
            fclose(in);
            return fail("%s line %u: '%s' is not a field (or one too many of it)", path, line, s);
        }
    }
    fclose(in);
    return 0;
}

static void free_passport(passport_file *f)
{
    for (size_t i = 0; i < f->nlines; i++)
        free(f->lines[i]);
}

static void print_product(const opts *o, const Tracecode__V1__Product *p)
{
    size_t i;

    if (o->json) {
        printf("{\"product_id\":");
        jstr(p->product_id);
        printf(",\"certificate_number\":");
        jstr(p->certificate_number);
        printf(",\"brand\":");
        jstr(p->brand);
        printf(",\"model\":");
        jstr(p->model);
        printf(",\"gtin\":");
        jstr(p->gtin);
        printf(",\"standards\":[");
        for (i = 0; i < p->n_standards; i++) {
            printf("%s", i ? "," : "");
            jstr(p->standards[i]);
        }
        printf("],\"test_reports\":%zu,\"images\":%zu,\"origin\":", p->n_test_reports, p->n_images);
        jstr(p->origin);
        printf("}\n");
        return;
    }
    printf("product %s: %s %s (category %s) under certificate %s%s%s\n", p->product_id, p->brand,
           p->model, p->category_code, p->certificate_number, p->gtin[0] ? ", GTIN " : "", p->gtin);
    for (i = 0; i < p->n_standards; i++)
        printf("  standard: %s\n", p->standards[i]);
    for (i = 0; i < p->n_test_reports; i++)
        printf("  report: %s | %s | %" PRId64 " | %s\n", p->test_reports[i]->number,
               p->test_reports[i]->laboratory, p->test_reports[i]->issued_unix,
               p->test_reports[i]->url);
    for (i = 0; i < p->n_images; i++)
        printf("  image: %s | %s\n", p->images[i]->url, p->images[i]->alt);
    if (p->description[0])
        printf("  description: %s\n", p->description);
    if (p->origin[0])
        printf("  origin: %s\n", p->origin);
}

int product_show(rpc_client *cl, const opts *o, const char *id)
{
    Tracecode__V1__GetProductRequest q = TRACECODE__V1__GET_PRODUCT_REQUEST__INIT;
    ProtobufCMessage *resp;
    rpc_result r;

    q.product_id = (char *)id;
    if (rpc_call_unary(cl, "/tracecode.v1.IssuerService/GetProduct", &q.base,
                       &tracecode__v1__get_product_response__descriptor, &resp, &r))
        return rpc_failed(&r);
    print_product(o, ((Tracecode__V1__GetProductResponse *)resp)->product);
    rpc_msg_free(resp);
    return 0;
}

int product_update(rpc_client *cl, const opts *o, const char *id)
{
    Tracecode__V1__UpdateProductRequest q = TRACECODE__V1__UPDATE_PRODUCT_REQUEST__INIT;
    Tracecode__V1__Product p = TRACECODE__V1__PRODUCT__INIT;
    ProtobufCMessage *resp;
    passport_file f;
    rpc_result r;
    int rc;

    if (!o->file)
        return fail("product update needs --file F (the passport, one field a line)");
    if ((rc = read_passport(o->file, &f)) != 0) {
        free_passport(&f); /* the lines read before the one that stopped it */
        return rc;
    }
    p.product_id = (char *)id;
    p.standards = f.standards;
    p.n_standards = f.ns;
    p.test_reports = f.preports;
    p.n_test_reports = f.nr;
    p.images = f.pimages;
    p.n_images = f.ni;
    p.description = f.description ? f.description : (char *)"";
    p.origin = f.origin ? f.origin : (char *)"";
    q.product = &p;
    q.request_id = (char *)(o->request_id ? o->request_id : "");
    rc = rpc_call_unary(cl, "/tracecode.v1.IssuerService/UpdateProduct", &q.base,
                        &tracecode__v1__update_product_response__descriptor, &resp, &r);
    free_passport(&f);
    if (rc)
        return rpc_failed(&r);
    print_product(o, ((Tracecode__V1__UpdateProductResponse *)resp)->product);
    rpc_msg_free(resp);
    return 0;
}
