/*
 * ctl_registry.c - manufacturer, cert (put, get, status, import from CSV), product.
 */
#include "ctl.h"

/* --- commands --------------------------------------------------------------- */

int cmd_manufacturer(rpc_client *cl, const opts *o, int argc, char **argv)
{
    Tracecode__V1__UpsertManufacturerRequest q = TRACECODE__V1__UPSERT_MANUFACTURER_REQUEST__INIT;
    Tracecode__V1__Manufacturer m = TRACECODE__V1__MANUFACTURER__INIT;
    ProtobufCMessage *resp;
    rpc_result r;

    if (argc != 3 || strcmp(argv[0], "put") != 0)
        return usage();
    q.manufacturer = &m;
    q.request_id = (char *)(o->request_id ? o->request_id : "");
    m.credit_code = argv[1];
    m.name = argv[2];
    m.status = o->suspended ? TRACECODE__V1__MANUFACTURER_STATUS__MANUFACTURER_STATUS_SUSPENDED
                            : TRACECODE__V1__MANUFACTURER_STATUS__MANUFACTURER_STATUS_ACTIVE;
    if (rpc_call_unary(cl, "/tracecode.v1.RegistryService/UpsertManufacturer", &q.base,
                       &tracecode__v1__upsert_manufacturer_response__descriptor, &resp, &r))
        return rpc_failed(&r);
    if (o->json) {
        printf("{\"credit_code\":");
        jstr(m.credit_code);
        printf(",\"name\":");
        jstr(m.name);
        printf(",\"status\":\"%s\"}\n", o->suspended ? "SUSPENDED" : "ACTIVE");
    } else {
        printf("manufacturer %s (%s) %s\n", m.credit_code, m.name,
               o->suspended ? "suspended" : "active");
    }
    rpc_msg_free(resp);
    return 0;
}

static int cert_put(rpc_client *cl, const opts *o, const char *number)
{
    Tracecode__V1__UpsertCertificateRequest q = TRACECODE__V1__UPSERT_CERTIFICATE_REQUEST__INIT;
    Tracecode__V1__Certificate c = TRACECODE__V1__CERTIFICATE__INIT;
    char cats[4096], *list[64];
    ProtobufCMessage *resp;
    rpc_result r;
    int kind = parse_kind(o->kind), status = o->status ? parse_status(o->status) : 1;

    if (!o->holder || !o->categories)
        return fail("cert put needs --holder CREDIT and --categories C1,C2");
    if (kind < 0)
        return fail("--kind '%s' must be ccc or licence", o->kind);
    if (status < 0)
        return fail("--status '%s' must be valid, suspended, revoked or expired", o->status);
    if (strlen(o->categories) >= sizeof(cats))
        return fail("--categories is too long");
    memcpy(cats, o->categories, strlen(o->categories) + 1);
    c.number = (char *)number;
    c.kind = (Tracecode__V1__CertificateKind)kind;
    c.holder_credit_code = (char *)o->holder;
    c.n_category_codes = split(cats, ',', list, 64);
    c.category_codes = list;
    c.status = (Tracecode__V1__CertificateStatus)status;
    c.status_reason = (char *)(o->reason ? o->reason : "");
    c.valid_until_unix = o->have_valid_until ? o->valid_until : 0;
    q.certificate = &c;
    q.request_id = (char *)(o->request_id ? o->request_id : "");
    if (rpc_call_unary(cl, "/tracecode.v1.RegistryService/UpsertCertificate", &q.base,
                       &tracecode__v1__upsert_certificate_response__descriptor, &resp, &r))
        return rpc_failed(&r);
    print_cert(o, ((Tracecode__V1__UpsertCertificateResponse *)resp)->certificate);
    rpc_msg_free(resp);
    return 0;
}

/* --- CSV import ------------------------------------------------------------- */

typedef struct import {
    FILE *in;
    const char *path;
    unsigned line, bad, sent;
    int col[7];        /* number kind holder cats status reason valid_until */
    unsigned *line_of; /* stream index -> line number */
    size_t cap;
    char buf[CSV_LINE_MAX];
    char *cats[64];
    const char *request_id; /* in the first message */
    Tracecode__V1__Certificate cert;
    Tracecode__V1__ImportCertificatesRequest msg;
} import;

static const char *const csv_columns[] = {"number",          "kind",   "holder_credit_code",
                                          "category_codes",  "status", "status_reason",
                                          "valid_until_unix"};

static int import_header(import *im)
{
    char *f[CSV_FIELDS_MAX];
    int n, i, j;

    if (!fgets(im->buf, sizeof(im->buf), im->in))
        return fail("%s: empty file, want a header row", im->path);
    im->line = 1;
    im->buf[strcspn(im->buf, "\r\n")] = '\0';
    n = csv_fields(im->buf, f, CSV_FIELDS_MAX);
    for (j = 0; j < 7; j++)
        im->col[j] = -1;
    for (i = 0; i < n; i++) {
        for (j = 0; j < 7 && strcmp(f[i], csv_columns[j]) != 0; j++)
            ;
        if (j == 7)
            return fail("%s line 1: unknown column '%s' (known: number, kind, "
                        "holder_credit_code, category_codes, status, status_reason, "
                        "valid_until_unix)",
                        im->path, f[i]);
        im->col[j] = i;
    }
    if (im->col[0] < 0 || im->col[2] < 0 || im->col[3] < 0)
        return fail("%s line 1: the header needs number, holder_credit_code and "
                    "category_codes",
                    im->path);
    return 0;
}

/* The next good row as a message; bad rows are reported and skipped. */
static const ProtobufCMessage *import_next(void *arg)
{
    import *im = arg;
    char *f[CSV_FIELDS_MAX];
    int n, kind, status;
    unsigned long long vu;

    while (fgets(im->buf, sizeof(im->buf), im->in)) {
        Tracecode__V1__Certificate init = TRACECODE__V1__CERTIFICATE__INIT;
        const char *why = NULL;
        im->line++;
        if (!strchr(im->buf, '\n') && !feof(im->in)) {
            int ch;
            while ((ch = fgetc(im->in)) != EOF && ch != '\n')
                ;
            why = "line longer than 8192 bytes";
        }
        im->buf[strcspn(im->buf, "\r\n")] = '\0';
        if (!why && !im->buf[0])
            continue;
        n = why ? 0 : csv_fields(im->buf, f, CSV_FIELDS_MAX);
        if (!why && n < 0)
            why = "unterminated quote";
        else if (!why && (n <= im->col[0] || n <= im->col[2] || n <= im->col[3]))
            why = "too few fields";
        kind = !why && im->col[1] >= 0 && im->col[1] < n ? parse_kind(f[im->col[1]]) : 1;
        status = !why && im->col[4] >= 0 && im->col[4] < n ? parse_status(f[im->col[4]]) : 1;
        if (!why && kind < 0)
            why = "kind must be ccc or licence";
        if (!why && status < 0)
            why = "status must be valid, suspended, revoked or expired";
        vu = 0;
        if (!why && im->col[6] >= 0 && im->col[6] < n && f[im->col[6]][0] &&
            !parse_u64(f[im->col[6]], INT64_MAX, &vu))
            why = "valid_until_unix must be unix seconds";
        if (why) {
            fprintf(stderr, "tracectl: %s line %u: %s; row skipped\n", im->path, im->line, why);
            im->bad++;
            continue;
        }
        im->cert = init;
        im->cert.number = f[im->col[0]];
        im->cert.kind = (Tracecode__V1__CertificateKind)kind;
        im->cert.holder_credit_code = f[im->col[2]];
        im->cert.n_category_codes = split(f[im->col[3]], ';', im->cats, 64);
        im->cert.category_codes = im->cats;
        im->cert.status = (Tracecode__V1__CertificateStatus)status;
        im->cert.status_reason = im->col[5] >= 0 && im->col[5] < n ? f[im->col[5]] : (char *)"";
        im->cert.valid_until_unix = (int64_t)vu;
        tracecode__v1__import_certificates_request__init(&im->msg);
        im->msg.certificate = &im->cert;
        im->msg.request_id = (char *)(im->sent == 0 && im->request_id ? im->request_id : "");
        if (im->sent == im->cap) {
            size_t cap = im->cap ? im->cap * 2 : 1024;
            unsigned *p = realloc(im->line_of, cap * sizeof(*p));
            if (!p)
                return NULL;
            im->line_of = p;
            im->cap = cap;
        }
        im->line_of[im->sent++] = im->line;
        return &im->msg.base;
    }
    return NULL;
}

static int cert_import(rpc_client *cl, const opts *o, const char *path)
{
    import *im = calloc(1, sizeof(*im));
    Tracecode__V1__ImportCertificatesResponse *resp;
    ProtobufCMessage *m;
    rpc_result r;
    size_t i;
    int rc = 0;

    if (!im)
        return fail_local("out of memory");
    im->path = path;
    im->request_id = o->request_id;
    im->in = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (!im->in) {
        free(im);
        return fail_local("cannot open '%s': %s", path, strerror(errno));
    }
    if (import_header(im))
        rc = 2;
    else if (rpc_call_client_stream(
                 cl, "/tracecode.v1.RegistryService/ImportCertificates", import_next, im,
                 &tracecode__v1__import_certificates_response__descriptor, &m, &r))
        rc = rpc_failed(&r);
    else {
        resp = (Tracecode__V1__ImportCertificatesResponse *)m;
        for (i = 0; i < resp->n_rejected; i++) {
            unsigned line =
                resp->rejected[i]->index < im->sent ? im->line_of[resp->rejected[i]->index] : 0;
            fprintf(stderr, "tracectl: %s line %u: certificate %s rejected: %s\n", path, line,
                    resp->rejected[i]->number, resp->rejected[i]->reason);
        }
        if (o->json)
            printf("{\"imported\":%u,\"rejected\":%zu,\"skipped\":%u}\n", resp->imported,
                   resp->n_rejected, im->bad);
        else
            printf("imported %u certificates; %zu rejected by the service, %u rows skipped\n",
                   resp->imported, resp->n_rejected, im->bad);
        if (resp->n_rejected || im->bad)
            rc = 1;
        rpc_msg_free(m);
    }
    if (im->in != stdin)
        fclose(im->in);
    free(im->line_of);
    free(im);
    return rc;
}

int cmd_cert(rpc_client *cl, const opts *o, int argc, char **argv)
{
    ProtobufCMessage *resp;
    rpc_result r;

    if (argc == 2 && strcmp(argv[0], "put") == 0)
        return cert_put(cl, o, argv[1]);
    if (argc == 2 && strcmp(argv[0], "import") == 0)
        return cert_import(cl, o, argv[1]);
    if (argc == 2 && strcmp(argv[0], "get") == 0) {
        Tracecode__V1__GetCertificateRequest q = TRACECODE__V1__GET_CERTIFICATE_REQUEST__INIT;
        q.number = argv[1];
        if (rpc_call_unary(cl, "/tracecode.v1.RegistryService/GetCertificate", &q.base,
                           &tracecode__v1__get_certificate_response__descriptor, &resp, &r))
            return rpc_failed(&r);
        print_cert(o, ((Tracecode__V1__GetCertificateResponse *)resp)->certificate);
        rpc_msg_free(resp);
        return 0;
    }
    if (argc == 3 && strcmp(argv[0], "status") == 0) {
        Tracecode__V1__SetCertificateStatusRequest q =
            TRACECODE__V1__SET_CERTIFICATE_STATUS_REQUEST__INIT;
        int status = parse_status(argv[2]);
        if (status <= 0)
            return fail("status '%s' must be valid, suspended, revoked or expired", argv[2]);
        q.number = argv[1];
        q.status = (Tracecode__V1__CertificateStatus)status;
        q.reason = (char *)(o->reason ? o->reason : "");
        q.request_id = (char *)(o->request_id ? o->request_id : "");
        if (rpc_call_unary(cl, "/tracecode.v1.RegistryService/SetCertificateStatus", &q.base,
                           &tracecode__v1__set_certificate_status_response__descriptor, &resp, &r))
            return rpc_failed(&r);
        print_cert(o, ((Tracecode__V1__SetCertificateStatusResponse *)resp)->certificate);
        rpc_msg_free(resp);
        return 0;
    }
    return usage();
}

int cmd_product(rpc_client *cl, const opts *o, int argc, char **argv)
{
    Tracecode__V1__RegisterProductRequest q = TRACECODE__V1__REGISTER_PRODUCT_REQUEST__INIT;
    Tracecode__V1__Product *p;
    ProtobufCMessage *resp;
    rpc_result r;

    if (argc == 2 && strcmp(argv[0], "show") == 0)
        return product_show(cl, o, argv[1]);
    if (argc == 2 && strcmp(argv[0], "update") == 0)
        return product_update(cl, o, argv[1]);
    if (argc != 1 || strcmp(argv[0], "register") != 0)
        return usage();
    if (!o->certificate || !o->category || !o->brand || !o->model)
        return fail("product register needs --certificate, --category, --brand and --model");
    q.certificate_number = (char *)o->certificate;
    q.category_code = (char *)o->category;
    q.brand = (char *)o->brand;
    q.model = (char *)o->model;
    q.gtin = (char *)(o->gtin ? o->gtin : "");
    q.request_id = (char *)(o->request_id ? o->request_id : "");
    if (rpc_call_unary(cl, "/tracecode.v1.IssuerService/RegisterProduct", &q.base,
                       &tracecode__v1__register_product_response__descriptor, &resp, &r))
        return rpc_failed(&r);
    p = ((Tracecode__V1__RegisterProductResponse *)resp)->product;
    if (o->json) {
        printf("{\"product_id\":");
        jstr(p->product_id);
        printf(",\"certificate_number\":");
        jstr(p->certificate_number);
        printf("}\n");
    } else {
        printf("product %s: %s %s (category %s) under certificate %s\n", p->product_id, p->brand,
               p->model, p->category_code, p->certificate_number);
    }
    rpc_msg_free(resp);
    return 0;
}
