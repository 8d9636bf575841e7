/*
 * tracectl - a client of tracesvc for every role.
 *
 *   tracectl [connection] [--json] COMMAND ...
 *
 *   manufacturer put CREDIT NAME [--suspended]
 *   cert put NUMBER --holder CREDIT --categories C1,C2 [--kind ccc|licence]
 *                   [--valid-until UNIX] [--status S] [--reason TEXT]
 *   cert get NUMBER
 *   cert status NUMBER valid|suspended|revoked|expired [--reason TEXT]
 *   cert import FILE.csv          (- for stdin)
 *   product register --certificate N --category C --brand B --model M [--gtin G]
 *   issue PRODUCT_ID --quantity N [--profile mac|sig] [--request-id ID] [--chunk N]
 *                    [--out FILE] [--sheet PREFIX] [--base-url URL]
 *   batch get BATCH_ID
 *   recall BATCH_ID FIRST LAST --reason TEXT
 *   verify [CODE ...] [--file F] [--full] [--listing-category C] [--listing-brand B]
 *          [--listing-model M]      (stdin when no code and no file)
 *   listings register FILE.csv     (header listing_id,code; - for stdin)
 *   watch [--cursor-file F] [--exec CMD] [--count N]     (platform)
 *   ack NOTICE_ID [LISTING_ID ...] [--delisted UNIX]      (platform)
 *   compliance PLATFORM_ID [--from UNIX] [--to UNIX]      (regulator)
 *   audit head [--out FILE]                               (regulator, certifier)
 *   audit query [SUBJECT] [--kind K] [--from UNIX] [--to UNIX] [--count N]
 *   audit verify --public-keys FILE [--since HEADFILE] [--out HEADFILE]
 *                [--index N]
 *
 * Writes (manufacturer put, cert put/status/import, product register, issue,
 * recall, listings register, ack) take --request-id ID: sent again with the
 * same ID, the request returns its first outcome and writes nothing more
 * (listings register sends ID.0, ID.1, ... one per call of its file).
 *
 * Connection: --addr HOST:PORT (TRACECTL_ADDR, default 127.0.0.1:50051) and
 * either --insecure --role R --subject S (TRACECTL_INSECURE, _ROLE,
 * _SUBJECT) or --ca F --cert F --key F (TRACECTL_CA, _CERT, _KEY).
 *
 * Exit status: 0 success (verify: every code GENUINE); 1 an RPC failed or
 * a code was not genuine; 2 usage.
 */
#include "client.h"
#include "codec.h"
#include "labels.h"
#include "merkle.h"
#include "tracecode/v1/audit.pb-c.h"
#include "tracecode/v1/issuer.pb-c.h"
#include "tracecode/v1/registry.pb-c.h"
#include "tracecode/v1/verifier.pb-c.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define VERIFY_CHUNK 1000
#define CSV_LINE_MAX 8192
#define CSV_FIELDS_MAX 16

typedef struct opts {
    rpc_client_opts conn;
    int json, suspended, full;
    const char *holder, *categories, *kind, *status, *reason, *certificate, *category, *brand;
    const char *model, *gtin, *profile, *request_id, *out, *sheet, *base_url, *file;
    const char *l_category, *l_brand, *l_model, *cursor_file, *exec, *public_keys, *since;
    long long index;
    unsigned long count;
    long long delisted, from, to;
    long long valid_until;
    unsigned long quantity, chunk;
    int have_valid_until;
    const char *given[64]; /* the long options given, for the command to check */
    int ngiven;
} opts;

static void usage_to(FILE *f)
{
    fputs("usage: tracectl [--addr HOST:PORT] [--insecure --role R --subject S | --ca F --cert F "
          "--key F]\n"
          "                [--json] COMMAND ...\n"
          "  manufacturer put CREDIT NAME [--suspended]\n"
          "  cert put NUMBER --holder CREDIT --categories C1,C2 [--kind ccc|licence]\n"
          "           [--valid-until UNIX] [--status S] [--reason TEXT]\n"
          "  cert get NUMBER | cert status NUMBER STATUS [--reason TEXT] | cert import FILE.csv\n"
          "  product register --certificate N --category C --brand B --model M [--gtin G]\n"
          "  issue PRODUCT_ID --quantity N [--profile mac|sig] [--request-id ID] [--out FILE]\n"
          "        [--sheet PREFIX] [--base-url URL] [--chunk N]\n"
          "  batch get BATCH_ID | recall BATCH_ID FIRST LAST --reason TEXT\n"
          "  verify [CODE ...] [--file F] [--full] [--listing-category C] [--listing-brand B]\n"
          "         [--listing-model M]\n"
          "  listings register FILE.csv     (header: listing_id,code)\n"
          "  watch [--cursor-file F] [--exec CMD] [--count N]\n"
          "  ack NOTICE_ID [LISTING_ID ...] [--delisted UNIX]\n"
          "  compliance PLATFORM_ID [--from UNIX] [--to UNIX]\n"
          "  audit head [--out FILE]\n"
          "  audit query [SUBJECT] [--kind K] [--from UNIX] [--to UNIX] [--count N]\n"
          "  audit verify --public-keys FILE [--since HEADFILE] [--out HEADFILE] [--index N]\n"
          "  keys list | keys activate KID | keys compromise KID --since UNIX --reason TEXT\n"
          "  help [COMMAND]                 a command's usage and its options\n"
          "Writes take --request-id ID: the same ID again returns the first outcome and\n"
          "writes nothing more. An option a command does not take is refused.\n",
          f);
}

static int usage(void)
{
    usage_to(stderr);
    return 2;
}

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int fail(const char *fmt, ...)
{
    va_list ap;

    fputs("tracectl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 2;
}

static int rpc_failed(const rpc_result *r)
{
    fprintf(stderr, "tracectl: %s: %s\n", rpc_code_name(r->code), r->msg);
    return 1;
}

/* JSON string with escapes. */
static void jstr(const char *s)
{
    putchar('"');
    for (; s && *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            printf("\\%c", ch);
        else if (ch < 0x20)
            printf("\\u%04x", ch);
        else
            putchar(ch);
    }
    putchar('"');
}

/* An enum value's name without its enum's prefix ("GENUINE", "VALID"):
 * tracectl's own output, text and JSON, keeps the short names. */
static const char *enum_name(const ProtobufCEnumDescriptor *d, int v, const char *prefix)
{
    const ProtobufCEnumValue *e = protobuf_c_enum_descriptor_get_value(d, v);
    size_t n = strlen(prefix);

    if (!e)
        return "UNSPECIFIED";
    return strncmp(e->name, prefix, n) == 0 ? e->name + n : e->name;
}

static const char *verdict_name(int v)
{
    return enum_name(&tracecode__v1__verdict__descriptor, v, "VERDICT_");
}

static const char *cert_status_name(int v)
{
    return enum_name(&tracecode__v1__certificate_status__descriptor, v, "CERTIFICATE_STATUS_");
}

static int parse_status(const char *s)
{
    if (!s)
        return 0;
    if (!strcmp(s, "valid") || !strcmp(s, "VALID"))
        return TRACECODE__V1__CERTIFICATE_STATUS__CERTIFICATE_STATUS_VALID;
    if (!strcmp(s, "suspended") || !strcmp(s, "SUSPENDED"))
        return TRACECODE__V1__CERTIFICATE_STATUS__CERTIFICATE_STATUS_SUSPENDED;
    if (!strcmp(s, "revoked") || !strcmp(s, "REVOKED"))
        return TRACECODE__V1__CERTIFICATE_STATUS__CERTIFICATE_STATUS_REVOKED;
    if (!strcmp(s, "expired") || !strcmp(s, "EXPIRED"))
        return TRACECODE__V1__CERTIFICATE_STATUS__CERTIFICATE_STATUS_EXPIRED;
    return -1;
}

static int parse_kind(const char *s)
{
    if (!s || !strcmp(s, "ccc") || !strcmp(s, "CCC"))
        return TRACECODE__V1__CERTIFICATE_KIND__CERTIFICATE_KIND_CCC;
    if (!strcmp(s, "licence") || !strcmp(s, "PRODUCTION_LICENCE"))
        return TRACECODE__V1__CERTIFICATE_KIND__CERTIFICATE_KIND_PRODUCTION_LICENCE;
    return -1;
}

static int parse_u64(const char *s, unsigned long long max, unsigned long long *out)
{
    char *end;
    unsigned long long v;

    if (!s || !*s || *s == '-' || *s == '+')
        return 0;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || *end || v > max)
        return 0;
    *out = v;
    return 1;
}

/* Split "a,b,c" in place into up to max pieces. */
static size_t split(char *s, char sep, char **out, size_t max)
{
    size_t n = 0;

    while (s && *s && n < max) {
        char *e = strchr(s, sep);
        if (e)
            *e = '\0';
        if (*s)
            out[n++] = s;
        s = e ? e + 1 : NULL;
    }
    return n;
}

static void print_cert(const opts *o, const Tracecode__V1__Certificate *c)
{
    size_t i;

    if (o->json) {
        printf("{\"number\":");
        jstr(c->number);
        printf(",\"holder_credit_code\":");
        jstr(c->holder_credit_code);
        printf(",\"status\":\"%s\",\"status_reason\":", cert_status_name(c->status));
        jstr(c->status_reason);
        printf(",\"category_codes\":[");
        for (i = 0; i < c->n_category_codes; i++) {
            if (i)
                putchar(',');
            jstr(c->category_codes[i]);
        }
        printf("],\"valid_until_unix\":%" PRId64 "}\n", c->valid_until_unix);
        return;
    }
    printf("certificate %s held by %s: %s%s%s, categories", c->number, c->holder_credit_code,
           cert_status_name(c->status), c->status_reason[0] ? " - " : "", c->status_reason);
    for (i = 0; i < c->n_category_codes; i++)
        printf("%s%s", i ? "," : " ", c->category_codes[i]);
    putchar('\n');
}

/* --- commands --------------------------------------------------------------- */

static int cmd_manufacturer(rpc_client *cl, const opts *o, int argc, char **argv)
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

/* Split one CSV line (RFC 4180 quoting) in place. Returns the field count
 * or -1 for an unterminated quote. */
static int csv_fields(char *line, char **f, int max)
{
    int n = 0;
    char *p = line, *w;

    for (;;) {
        if (n == max)
            return n;
        if (*p == '"') {
            f[n++] = w = ++p;
            for (;;) {
                if (!*p)
                    return -1;
                if (*p == '"' && p[1] == '"') {
                    *w++ = '"';
                    p += 2;
                } else if (*p == '"') {
                    p++;
                    break;
                } else {
                    *w++ = *p++;
                }
            }
            *w = '\0';
            if (*p != ',' && *p)
                return -1;
        } else {
            f[n++] = p;
            p += strcspn(p, ",");
        }
        if (!*p)
            return n;
        *p++ = '\0';
    }
}

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
        return fail("out of memory");
    im->path = path;
    im->request_id = o->request_id;
    im->in = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (!im->in) {
        free(im);
        return fail("cannot open '%s': %s", path, strerror(errno));
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

static int cmd_cert(rpc_client *cl, const opts *o, int argc, char **argv)
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

static const char *key_state_name(int v)
{
    return enum_name(&tracecode__v1__key_state__descriptor, v, "KEY_STATE_");
}

static void print_key(const opts *o, const Tracecode__V1__Key *k)
{
    size_t i;

    if (o->json) {
        printf("{\"key_id\":%u,\"kind\":", k->key_id);
        jstr(k->kind);
        printf(",\"algorithm\":");
        jstr(k->algorithm);
        printf(",\"state\":\"%s\",\"activated_unix\":%lld,\"compromised_since_unix\":%lld,"
               "\"compromise_reason\":",
               key_state_name(k->state), (long long)k->activated_unix,
               (long long)k->compromised_since_unix);
        jstr(k->compromise_reason);
        printf(",\"nodes_holding\":[");
        for (i = 0; i < k->n_nodes_holding; i++) {
            printf(i ? "," : "");
            jstr(k->nodes_holding[i]);
        }
        printf("]}\n");
        return;
    }
    printf("%-4u %-8s %-12s", k->key_id, k->kind, key_state_name(k->state));
    if (k->compromised_since_unix)
        printf(" since=%lld reason=%s", (long long)k->compromised_since_unix, k->compromise_reason);
    if (k->n_nodes_holding) {
        printf(" nodes=");
        for (i = 0; i < k->n_nodes_holding; i++)
            printf("%s%s", i ? "," : "", k->nodes_holding[i]);
    }
    putchar('\n');
}

/* keys list | keys activate KID | keys compromise KID --since UNIX --reason TEXT */
static int cmd_keys(rpc_client *cl, const opts *o, int argc, char **argv)
{
    ProtobufCMessage *resp;
    unsigned long long v;
    rpc_result r;
    size_t i;

    if (argc == 1 && strcmp(argv[0], "list") == 0) {
        Tracecode__V1__ListKeysRequest q = TRACECODE__V1__LIST_KEYS_REQUEST__INIT;
        Tracecode__V1__ListKeysResponse *out;
        if (rpc_call_unary(cl, "/tracecode.v1.RegistryService/ListKeys", &q.base,
                           &tracecode__v1__list_keys_response__descriptor, &resp, &r))
            return rpc_failed(&r);
        out = (Tracecode__V1__ListKeysResponse *)resp;
        if (!o->json) {
            printf("live nodes:");
            for (i = 0; i < out->n_nodes; i++)
                printf(" %s", out->nodes[i]);
            printf("\n");
        }
        for (i = 0; i < out->n_keys; i++)
            print_key(o, out->keys[i]);
        rpc_msg_free(resp);
        return 0;
    }
    if (argc == 2 && (strcmp(argv[0], "activate") == 0 || strcmp(argv[0], "compromise") == 0)) {
        if (!parse_u64(argv[1], 255, &v) || !v)
            return fail("key id '%s' must be 1..255", argv[1]);
    } else {
        return fail("usage: keys list | keys activate KID | keys compromise KID --since UNIX "
                    "--reason TEXT");
    }
    if (strcmp(argv[0], "activate") == 0) {
        Tracecode__V1__ActivateKeyRequest q = TRACECODE__V1__ACTIVATE_KEY_REQUEST__INIT;
        q.key_id = (uint32_t)v;
        q.request_id = (char *)(o->request_id ? o->request_id : "");
        if (rpc_call_unary(cl, "/tracecode.v1.RegistryService/ActivateKey", &q.base,
                           &tracecode__v1__activate_key_response__descriptor, &resp, &r))
            return rpc_failed(&r);
        print_key(o, ((Tracecode__V1__ActivateKeyResponse *)resp)->key);
        rpc_msg_free(resp);
        return 0;
    }
    {
        Tracecode__V1__CompromiseKeyRequest q = TRACECODE__V1__COMPROMISE_KEY_REQUEST__INIT;
        Tracecode__V1__CompromiseKeyResponse *out;
        unsigned long long since;
        if (!o->since || !parse_u64(o->since, INT64_MAX, &since) || !since)
            return fail("keys compromise needs --since UNIX_TIME (seconds > 0): batches issued "
                        "from then on verify KEY_COMPROMISED");
        if (!o->reason || !*o->reason)
            return fail("keys compromise needs --reason TEXT (it is logged)");
        q.key_id = (uint32_t)v;
        q.since_unix = (int64_t)since;
        q.reason = (char *)o->reason;
        q.request_id = (char *)(o->request_id ? o->request_id : "");
        if (rpc_call_unary(cl, "/tracecode.v1.RegistryService/CompromiseKey", &q.base,
                           &tracecode__v1__compromise_key_response__descriptor, &resp, &r))
            return rpc_failed(&r);
        out = (Tracecode__V1__CompromiseKeyResponse *)resp;
        print_key(o, out->key);
        if (!o->json)
            printf("batches affected: %u\n", out->batches_affected);
        rpc_msg_free(resp);
        return 0;
    }
}

static int cmd_product(rpc_client *cl, const opts *o, int argc, char **argv)
{
    Tracecode__V1__RegisterProductRequest q = TRACECODE__V1__REGISTER_PRODUCT_REQUEST__INIT;
    Tracecode__V1__Product *p;
    ProtobufCMessage *resp;
    rpc_result r;

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

typedef struct issue_sink {
    const opts *o;
    FILE *out;
    labels *sheet;
    uint64_t batch;
    unsigned long n;
    int failed;
    char err[512];
} issue_sink;

static int on_codes(void *arg, const ProtobufCMessage *m)
{
    const Tracecode__V1__IssueCodesResponse *msg = (const void *)m;
    issue_sink *s = arg;
    size_t i;

    if (msg->batch) {
        s->batch = msg->batch->batch_id;
        fprintf(stderr,
                "tracectl: batch %" PRIu64 " of %u codes, key %u, manifest signed by key "
                "%u\n",
                msg->batch->batch_id, msg->batch->quantity, msg->batch->key_id,
                msg->batch->manifest_key_id);
    }
    for (i = 0; i < msg->n_codes; i++) {
        if (fputs(msg->codes[i], s->out) < 0 || fputc('\n', s->out) < 0) {
            snprintf(s->err, sizeof(s->err), "cannot write codes: %s", strerror(errno));
            s->failed = 1;
            return 1;
        }
        if (s->sheet &&
            labels_add(s->sheet, msg->codes[i], strlen(msg->codes[i]), s->err, sizeof(s->err))) {
            s->failed = 1;
            return 1;
        }
    }
    s->n += msg->n_codes;
    return 0;
}

static int cmd_issue(rpc_client *cl, const opts *o, int argc, char **argv)
{
    Tracecode__V1__IssueCodesRequest q = TRACECODE__V1__ISSUE_CODES_REQUEST__INIT;
    issue_sink s;
    rpc_result r;
    unsigned pages = 0;
    int rc = 0;

    if (argc != 1)
        return usage();
    if (!o->quantity)
        return fail("issue needs --quantity N");
    memset(&s, 0, sizeof(s));
    s.o = o;
    q.product_id = argv[0];
    q.quantity = (uint32_t)o->quantity;
    q.chunk_size = (uint32_t)o->chunk;
    q.request_id = (char *)(o->request_id ? o->request_id : "");
    q.profile = o->profile && !strcmp(o->profile, "sig")
                    ? TRACECODE__V1__CODE_PROFILE__CODE_PROFILE_SIG
                    : TRACECODE__V1__CODE_PROFILE__CODE_PROFILE_MAC;
    if (o->profile && strcmp(o->profile, "sig") && strcmp(o->profile, "mac"))
        return fail("--profile '%s' must be mac or sig", o->profile);
    if (o->sheet &&
        !(s.sheet = labels_new(o->sheet, o->base_url ? o->base_url : "https://tc.example.com",
                               s.err, sizeof(s.err))))
        return fail("%s", s.err);
    s.out = o->out ? fopen(o->out, "w") : stdout;
    if (!s.out) {
        labels_free(s.sheet);
        return fail("cannot open '%s': %s", o->out, strerror(errno));
    }
    if (rpc_call_server_stream(cl, "/tracecode.v1.IssuerService/IssueCodes", &q.base,
                               &tracecode__v1__issue_codes_response__descriptor, on_codes, &s, &r))
        rc = s.failed ? fail("%s", s.err) : rpc_failed(&r);
    if (!rc && s.sheet && labels_finish(s.sheet, &pages, s.err, sizeof(s.err)))
        rc = fail("%s", s.err);
    if (s.out != stdout && fclose(s.out) != 0 && !rc)
        rc = fail("cannot write '%s': %s", o->out, strerror(errno));
    labels_free(s.sheet);
    if (!rc) {
        if (o->json)
            printf("{\"batch_id\":%" PRIu64 ",\"codes\":%lu,\"sheets\":%u}\n", s.batch, s.n, pages);
        else if (o->out)
            printf("batch %" PRIu64 ": %lu codes written to %s%s%s%s\n", s.batch, s.n, o->out,
                   pages ? ", label sheets " : "", pages ? o->sheet : "", pages ? "-NNN.svg" : "");
    }
    return rc;
}

static int cmd_batch(rpc_client *cl, const opts *o, int argc, char **argv)
{
    Tracecode__V1__GetBatchRequest q = TRACECODE__V1__GET_BATCH_REQUEST__INIT;
    Tracecode__V1__Batch *b;
    ProtobufCMessage *resp;
    unsigned long long id;
    rpc_result r;

    if (argc != 2 || strcmp(argv[0], "get") != 0)
        return usage();
    if (!parse_u64(argv[1], UINT64_MAX, &id))
        return fail("batch id '%s' is not a number", argv[1]);
    q.batch_id = id;
    if (rpc_call_unary(cl, "/tracecode.v1.IssuerService/GetBatch", &q.base,
                       &tracecode__v1__get_batch_response__descriptor, &resp, &r))
        return rpc_failed(&r);
    b = ((Tracecode__V1__GetBatchResponse *)resp)->batch;
    if (o->json) {
        printf("{\"batch_id\":%" PRIu64 ",\"product_id\":", b->batch_id);
        jstr(b->product_id);
        printf(",\"quantity\":%u,\"key_id\":%u,\"manifest\":", b->quantity, b->key_id);
        jstr((const char *)b->manifest.data);
        printf("}\n");
    } else {
        printf("batch %" PRIu64 ": product %s, %u codes, certificate %s, key %u\n%.*s", b->batch_id,
               b->product_id, b->quantity, b->certificate_number, b->key_id, (int)b->manifest.len,
               (const char *)b->manifest.data);
    }
    rpc_msg_free(resp);
    return 0;
}

static int cmd_recall(rpc_client *cl, const opts *o, int argc, char **argv)
{
    Tracecode__V1__RecallBatchRequest q = TRACECODE__V1__RECALL_BATCH_REQUEST__INIT;
    unsigned long long id, first, last;
    ProtobufCMessage *resp;
    rpc_result r;

    if (argc != 3)
        return usage();
    if (!parse_u64(argv[0], UINT64_MAX, &id) || !parse_u64(argv[1], UINT32_MAX, &first) ||
        !parse_u64(argv[2], UINT32_MAX, &last))
        return fail("recall BATCH_ID FIRST LAST takes numbers");
    if (!o->reason)
        return fail("recall needs --reason TEXT (consumers see it)");
    q.batch_id = id;
    q.first_serial = (uint32_t)first;
    q.last_serial = (uint32_t)last;
    q.reason = (char *)o->reason;
    q.request_id = (char *)(o->request_id ? o->request_id : "");
    if (rpc_call_unary(cl, "/tracecode.v1.IssuerService/RecallBatch", &q.base,
                       &tracecode__v1__recall_batch_response__descriptor, &resp, &r))
        return rpc_failed(&r);
    if (o->json)
        printf("{\"affected\":%" PRIu64 "}\n",
               ((Tracecode__V1__RecallBatchResponse *)resp)->affected);
    else
        printf("recalled %" PRIu64 " serials of batch %llu\n",
               ((Tracecode__V1__RecallBatchResponse *)resp)->affected, id);
    rpc_msg_free(resp);
    return 0;
}

/* --- verify ------------------------------------------------------------------ */

typedef struct verifier {
    rpc_client *cl;
    const opts *o;
    char *codes[VERIFY_CHUNK];
    size_t n;
    int all_genuine, failed;
} verifier;

static int verify_flush(verifier *v)
{
    Tracecode__V1__VerifyBatchRequest q = TRACECODE__V1__VERIFY_BATCH_REQUEST__INIT;
    Tracecode__V1__VerifyItem items[VERIFY_CHUNK], *ptrs[VERIFY_CHUNK];
    Tracecode__V1__Listing listing = TRACECODE__V1__LISTING__INIT;
    Tracecode__V1__VerifyBatchResponse *b;
    ProtobufCMessage *resp;
    rpc_result r;
    size_t i;

    if (!v->n)
        return 0;
    listing.category_code = (char *)(v->o->l_category ? v->o->l_category : "");
    listing.brand = (char *)(v->o->l_brand ? v->o->l_brand : "");
    listing.model = (char *)(v->o->l_model ? v->o->l_model : "");
    for (i = 0; i < v->n; i++) {
        tracecode__v1__verify_item__init(&items[i]);
        items[i].code = v->codes[i];
        if (v->o->l_category || v->o->l_brand || v->o->l_model)
            items[i].listing = &listing;
        ptrs[i] = &items[i];
    }
    q.n_items = v->n;
    q.items = ptrs;
    q.view = v->o->full ? TRACECODE__V1__VERIFY_VIEW__VERIFY_VIEW_FULL
                        : TRACECODE__V1__VERIFY_VIEW__VERIFY_VIEW_BASIC;
    if (rpc_call_unary(v->cl, "/tracecode.v1.VerifierService/VerifyBatch", &q.base,
                       &tracecode__v1__verify_batch_response__descriptor, &resp, &r)) {
        v->failed = 1;
        return rpc_failed(&r);
    }
    b = (Tracecode__V1__VerifyBatchResponse *)resp;
    for (i = 0; i < b->n_results && i < v->n; i++) {
        const Tracecode__V1__VerifyResult *x = b->results[i];
        if (x->verdict != TRACECODE__V1__VERDICT__VERDICT_GENUINE)
            v->all_genuine = 0;
        if (v->o->json) {
            printf("{\"code\":");
            jstr(v->codes[i]);
            printf(",\"verdict\":\"%s\",\"detail\":", verdict_name(x->verdict));
            jstr(x->detail);
            printf(",\"batch_id\":%" PRIu64 ",\"serial\":%u,\"certificate_status\":\"%s\","
                   "\"as_of_revision\":%" PRIu64 ",\"stale\":%s",
                   x->batch_id, x->serial, cert_status_name(x->certificate_status),
                   x->as_of_revision, x->stale ? "true" : "false");
            if (x->product) {
                printf(",\"brand\":");
                jstr(x->product->brand);
                printf(",\"model\":");
                jstr(x->product->model);
                printf(",\"issuer_name\":");
                jstr(x->issuer_name);
            }
            printf("}\n");
        } else {
            printf("%s\t%s", v->codes[i], verdict_name(x->verdict));
            if (x->verdict == TRACECODE__V1__VERDICT__VERDICT_GENUINE)
                printf("\tbatch %" PRIu64 " serial %u", x->batch_id, x->serial);
            if (x->product)
                printf(" - %s %s by %s, certificate %s", x->product->brand, x->product->model,
                       x->issuer_name, x->certificate_number);
            if (x->detail[0])
                printf("\t%s", x->detail);
            if (x->stale)
                printf("\t(stale)");
            putchar('\n');
        }
    }
    rpc_msg_free(resp);
    for (i = 0; i < v->n; i++)
        free(v->codes[i]);
    v->n = 0;
    return 0;
}

static int verify_add(verifier *v, const char *code, size_t len)
{
    char *c = malloc(len + 1);

    if (!c)
        return fail("out of memory");
    memcpy(c, code, len);
    c[len] = '\0';
    v->codes[v->n++] = c;
    return v->n == VERIFY_CHUNK ? verify_flush(v) : 0;
}

static int verify_lines(verifier *v, FILE *in)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = 0;

    while (!rc && (n = getline(&line, &cap, in)) > 0) {
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' '))
            n--;
        if (n)
            rc = verify_add(v, line, (size_t)(n > 512 ? 512 : n));
    }
    free(line);
    return rc;
}

static int cmd_verify(rpc_client *cl, const opts *o, int argc, char **argv)
{
    verifier *v = calloc(1, sizeof(*v));
    int rc = 0, i;

    if (!v)
        return fail("out of memory");
    v->cl = cl;
    v->o = o;
    v->all_genuine = 1;
    for (i = 0; i < argc && !rc; i++)
        rc = verify_add(v, argv[i], strlen(argv[i]));
    if (!rc && o->file) {
        FILE *f = strcmp(o->file, "-") == 0 ? stdin : fopen(o->file, "r");
        if (!f)
            rc = fail("cannot open '%s': %s", o->file, strerror(errno));
        else {
            rc = verify_lines(v, f);
            if (f != stdin)
                fclose(f);
        }
    } else if (!rc && argc == 0) {
        rc = verify_lines(v, stdin);
    }
    if (!rc)
        rc = verify_flush(v);
    if (!rc && !v->all_genuine)
        rc = 1;
    for (i = 0; i < (int)v->n; i++)
        free(v->codes[i]);
    free(v);
    return rc;
}

/* --- listings ------------------------------------------------------------------ */

#define BIND_CHUNK 1000

typedef struct binder {
    rpc_client *cl;
    const opts *o;
    const char *path;
    Tracecode__V1__ListingBinding b[BIND_CHUNK], *pb[BIND_CHUNK];
    unsigned line[BIND_CHUNK];
    size_t n;
    unsigned bound, refused, copies, calls;
    char request_id[96];
} binder;

static int bind_flush(binder *w)
{
    Tracecode__V1__RegisterListingsRequest q = TRACECODE__V1__REGISTER_LISTINGS_REQUEST__INIT;
    Tracecode__V1__RegisterListingsResponse *r;
    ProtobufCMessage *resp;
    rpc_result res;
    size_t i;

    if (!w->n)
        return 0;
    q.n_bindings = w->n;
    q.bindings = w->pb;
    /* One id per call: --request-id ID names the file's calls ID.0, ID.1, ... */
    w->request_id[0] = '\0';
    if (w->o->request_id)
        snprintf(w->request_id, sizeof(w->request_id), "%s.%u", w->o->request_id, w->calls);
    w->calls++;
    q.request_id = w->request_id;
    if (rpc_call_unary(w->cl, "/tracecode.v1.VerifierService/RegisterListings", &q.base,
                       &tracecode__v1__register_listings_response__descriptor, &resp, &res))
        return rpc_failed(&res);
    r = (Tracecode__V1__RegisterListingsResponse *)resp;
    for (i = 0; i < r->n_results && i < w->n; i++) {
        const Tracecode__V1__ListingResult *x = r->results[i];
        int ok = x->verdict != TRACECODE__V1__VERDICT__VERDICT_MALFORMED &&
                 x->verdict != TRACECODE__V1__VERDICT__VERDICT_FORGED &&
                 x->verdict != TRACECODE__V1__VERDICT__VERDICT_UNKNOWN_BATCH;
        w->bound += ok;
        w->refused += !ok;
        w->copies += x->other_listings > 0;
        if (w->o->json) {
            printf("{\"line\":%u,\"listing_id\":", w->line[i]);
            jstr(x->listing_id);
            printf(",\"verdict\":\"%s\",\"bound\":%s,\"other_listings\":%u,"
                   "\"other_platforms\":%u,\"detail\":",
                   verdict_name(x->verdict), ok ? "true" : "false", x->other_listings,
                   x->other_platforms);
            jstr(x->detail);
            printf("}\n");
        } else if (!ok || x->verdict != TRACECODE__V1__VERDICT__VERDICT_GENUINE ||
                   x->other_listings) {
            printf("%s line %u: listing %s: %s%s%s", w->path, w->line[i], x->listing_id,
                   verdict_name(x->verdict), x->detail[0] ? " - " : "", x->detail);
            if (x->other_listings)
                printf(" (code also on %u other listing(s), %u other platform(s))",
                       x->other_listings, x->other_platforms);
            printf("%s\n", ok ? "" : "; not bound");
        }
    }
    rpc_msg_free(resp);
    for (i = 0; i < w->n; i++) {
        free(w->b[i].listing_id);
        free(w->b[i].code);
    }
    w->n = 0;
    return 0;
}

static int cmd_listings(rpc_client *cl, const opts *o, int argc, char **argv)
{
    binder *w;
    FILE *in;
    char buf[CSV_LINE_MAX], *f[CSV_FIELDS_MAX];
    unsigned line = 0;
    int rc = 0, n;

    if (argc != 2 || strcmp(argv[0], "register") != 0)
        return usage();
    in = strcmp(argv[1], "-") == 0 ? stdin : fopen(argv[1], "r");
    if (!in)
        return fail("cannot open '%s': %s", argv[1], strerror(errno));
    w = calloc(1, sizeof(*w));
    if (!w)
        return fail("out of memory");
    w->cl = cl;
    w->o = o;
    w->path = argv[1];
    while (!rc && fgets(buf, sizeof(buf), in)) {
        line++;
        buf[strcspn(buf, "\r\n")] = '\0';
        if (line == 1) {
            n = csv_fields(buf, f, CSV_FIELDS_MAX);
            if (n < 2 || strcmp(f[0], "listing_id") != 0 || strcmp(f[1], "code") != 0)
                rc = fail("%s line 1: want the header 'listing_id,code'", argv[1]);
            continue;
        }
        if (!buf[0])
            continue;
        n = csv_fields(buf, f, CSV_FIELDS_MAX);
        if (n < 2 || !f[0][0] || !f[1][0]) {
            fprintf(stderr, "tracectl: %s line %u: want listing_id,code; row skipped\n", argv[1],
                    line);
            w->refused++;
            continue;
        }
        tracecode__v1__listing_binding__init(&w->b[w->n]);
        w->b[w->n].listing_id = strdup(f[0]);
        w->b[w->n].code = strdup(f[1]);
        w->pb[w->n] = &w->b[w->n];
        w->line[w->n++] = line;
        if (w->n == BIND_CHUNK)
            rc = bind_flush(w);
    }
    if (!rc)
        rc = bind_flush(w);
    if (in != stdin)
        fclose(in);
    if (!rc && !o->json)
        printf("bound %u listings; %u not bound; %u share their code with other listings\n",
               w->bound, w->refused, w->copies);
    if (!rc && w->refused)
        rc = 1;
    free(w);
    return rc;
}

/* --- delisting: watch, ack, compliance ------------------------------------------- */

typedef struct watching {
    const opts *o;
    char cursor[64];
    unsigned long seen;
    int failed; /* the --exec hook failed: stop, cursor not advanced */
} watching;

static int read_cursor(const char *path, char *out, size_t cap)
{
    FILE *f = fopen(path, "r");
    size_t n;

    out[0] = '\0';
    if (!f)
        return errno == ENOENT ? 0 : -1;
    n = fread(out, 1, cap - 1, f);
    fclose(f);
    out[n] = '\0';
    out[strcspn(out, " \r\n")] = '\0';
    return 0;
}

/* Write the cursor durably: a temp file, fsync, rename over the old one. */
static int save_cursor(const char *path, const char *cursor)
{
    char tmp[4096];
    FILE *f;
    int ok;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return -1;
    f = fopen(tmp, "w");
    if (!f)
        return -1;
    ok = fprintf(f, "%s\n", cursor) > 0 && fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = fclose(f) == 0 && ok;
    return ok && rename(tmp, path) == 0 ? 0 : -1;
}

static void print_notice(const opts *o, const Tracecode__V1__DelistingNotice *m)
{
    size_t i;

    if (o->json) {
        printf("{\"notice_id\":\"%s\",\"platform_id\":", m->notice_id);
        jstr(m->platform_id);
        printf(",\"certificate_number\":");
        jstr(m->certificate_number);
        printf(",\"batch_id\":%" PRIu64 ",\"new_status\":\"%s\",\"reason\":", m->batch_id,
               cert_status_name(m->new_status));
        jstr(m->reason);
        printf(",\"effective_unix\":%" PRId64 ",\"key_id\":%u,\"signature\":\"", m->effective_unix,
               m->key_id);
        for (i = 0; i < m->signature.len; i++)
            printf("%02x", m->signature.data[i]);
        printf("\",\"listing_ids\":[");
        for (i = 0; i < m->n_listing_ids; i++) {
            printf(i ? "," : "");
            jstr(m->listing_ids[i]);
        }
        printf("]}\n");
    } else {
        printf("notice %s  %s  certificate %s", m->notice_id, cert_status_name(m->new_status),
               m->certificate_number);
        if (m->batch_id)
            printf("  batch %" PRIu64, m->batch_id);
        printf("  %zu listing%s  reason: %s\n ", m->n_listing_ids, m->n_listing_ids == 1 ? "" : "s",
               m->reason);
        for (i = 0; i < m->n_listing_ids; i++)
            printf(" %s", m->listing_ids[i]);
        putchar('\n');
    }
    fflush(stdout);
}

/* --exec: sh -c CMD with the notice in TC_* variables and its listing ids
 * on standard input, one a line. 0 when it exits 0. The environment is
 * built before fork: a child of a threaded process may only exec. */
static int run_hook(const char *cmd, const Tracecode__V1__DelistingNotice *m)
{
    extern char **environ;
    char vars[8][640], *sh[] = {"sh", "-c", (char *)cmd, NULL}, **envp;
    size_t i, n = 0, nenv = 0;
    pid_t pid;
    int fd[2], st, rc = -1;
    FILE *in;

    snprintf(vars[0], sizeof(vars[0]), "TC_NOTICE_ID=%s", m->notice_id);
    snprintf(vars[1], sizeof(vars[1]), "TC_PLATFORM=%s", m->platform_id);
    snprintf(vars[2], sizeof(vars[2]), "TC_CERTIFICATE=%s", m->certificate_number);
    snprintf(vars[3], sizeof(vars[3]), "TC_BATCH=%" PRIu64, m->batch_id);
    snprintf(vars[4], sizeof(vars[4]), "TC_STATUS=%s", cert_status_name(m->new_status));
    snprintf(vars[5], sizeof(vars[5]), "TC_REASON=%s", m->reason);
    snprintf(vars[6], sizeof(vars[6]), "TC_EFFECTIVE=%" PRId64, m->effective_unix);
    snprintf(vars[7], sizeof(vars[7]), "TC_LISTINGS=%zu", m->n_listing_ids);
    while (environ[nenv])
        nenv++;
    envp = malloc((nenv + 9) * sizeof(*envp));
    if (!envp || pipe(fd) != 0) {
        free(envp);
        return -1;
    }
    for (i = 0; i < nenv; i++)
        if (strncmp(environ[i], "TC_", 3) != 0)
            envp[n++] = environ[i];
    for (i = 0; i < 8; i++)
        envp[n++] = vars[i];
    envp[n] = NULL;
    pid = fork();
    if (pid == 0) {
        dup2(fd[0], 0);
        close(fd[0]);
        close(fd[1]);
        execve("/bin/sh", sh, envp);
        _exit(127);
    }
    close(fd[0]);
    free(envp);
    if (pid < 0) {
        close(fd[1]);
        return -1;
    }
    in = fdopen(fd[1], "w");
    for (i = 0; in && i < m->n_listing_ids; i++)
        if (fprintf(in, "%s\n", m->listing_ids[i]) < 0)
            break; /* the hook need not read them all */
    if (in)
        fclose(in);
    else
        close(fd[1]);
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        rc = 0;
    return rc;
}

static int on_notice(void *arg, const ProtobufCMessage *msg)
{
    const Tracecode__V1__WatchDelistingsResponse *ev = (const void *)msg;
    const Tracecode__V1__DelistingNotice *m = ev->notice;
    watching *w = arg;

    if (ev->event_case != TRACECODE__V1__WATCH_DELISTINGS_RESPONSE__EVENT_NOTICE || !m)
        return 0; /* a heartbeat */
    print_notice(w->o, m);
    if (w->o->exec && run_hook(w->o->exec, m) != 0) {
        fprintf(stderr, "tracectl: --exec failed for notice %s; cursor stays at \"%s\"\n",
                m->notice_id, w->cursor);
        w->failed = 1;
        return 1;
    }
    snprintf(w->cursor, sizeof(w->cursor), "%s", m->notice_id);
    if (w->o->cursor_file && save_cursor(w->o->cursor_file, w->cursor) != 0) {
        fprintf(stderr, "tracectl: cannot save the cursor to %s: %s\n", w->o->cursor_file,
                strerror(errno));
        w->failed = 1;
        return 1;
    }
    return w->o->count && ++w->seen >= w->o->count;
}

static int cmd_watch(rpc_client *cl, const opts *o, int argc, char **argv)
{
    Tracecode__V1__WatchDelistingsRequest q = TRACECODE__V1__WATCH_DELISTINGS_REQUEST__INIT;
    unsigned backoff = 1;
    watching w;
    rpc_result r;

    (void)argv;
    if (argc != 0)
        return fail("usage: watch [--cursor-file F] [--exec CMD] [--count N]");
    memset(&w, 0, sizeof(w));
    w.o = o;
    if (o->cursor_file && read_cursor(o->cursor_file, w.cursor, sizeof(w.cursor)) != 0)
        return fail("cannot read cursor file %s: %s", o->cursor_file, strerror(errno));
    rpc_client_set_timeout(cl, 0);
    for (;;) {
        q.cursor = w.cursor;
        rpc_call_server_stream(cl, "/tracecode.v1.VerifierService/WatchDelistings", &q.base,
                               &tracecode__v1__watch_delistings_response__descriptor, on_notice, &w,
                               &r);
        if (w.failed)
            return 1;
        if (o->count && w.seen >= o->count)
            return 0;
        /* Ended by the node (draining, the watcher fell behind, Redis away):
         * resume from the cursor. Anything else is the caller's to fix. */
        if (r.code != 10 && r.code != 14 && r.code != 0)
            return rpc_failed(&r);
        fprintf(stderr, "tracectl: watch ended (%s: %s); resuming from \"%s\" in %u s\n",
                rpc_code_name(r.code), r.msg, w.cursor, backoff);
        sleep(backoff);
        backoff = backoff * 2 > 30 ? 30 : backoff * 2;
    }
}

static int cmd_ack(rpc_client *cl, const opts *o, int argc, char **argv)
{
    Tracecode__V1__AckDelistingRequest q = TRACECODE__V1__ACK_DELISTING_REQUEST__INIT;
    ProtobufCMessage *resp;
    rpc_result r;

    if (argc < 1)
        return fail("usage: ack NOTICE_ID [LISTING_ID ...] [--delisted UNIX]");
    q.notice_id = argv[0];
    q.listing_ids = argv + 1;
    q.n_listing_ids = (size_t)(argc - 1);
    q.delisted_unix = o->delisted;
    q.request_id = (char *)(o->request_id ? o->request_id : "");
    if (rpc_call_unary(cl, "/tracecode.v1.VerifierService/AckDelisting", &q.base,
                       &tracecode__v1__ack_delisting_response__descriptor, &resp, &r))
        return rpc_failed(&r);
    rpc_msg_free(resp);
    if (o->json)
        printf("{\"acknowledged\":\"%s\",\"listings\":%d}\n", q.notice_id, argc - 1);
    else if (argc > 1)
        printf("acknowledged %d listing%s of notice %s\n", argc - 1, argc == 2 ? "" : "s",
               q.notice_id);
    else
        printf("acknowledged notice %s\n", q.notice_id);
    return 0;
}

static int cmd_compliance(rpc_client *cl, const opts *o, int argc, char **argv)
{
    Tracecode__V1__GetDelistingComplianceRequest q =
        TRACECODE__V1__GET_DELISTING_COMPLIANCE_REQUEST__INIT;
    Tracecode__V1__GetDelistingComplianceResponse *c;
    ProtobufCMessage *resp;
    rpc_result r;
    size_t i;

    if (argc != 1)
        return fail("usage: compliance PLATFORM_ID [--from UNIX] [--to UNIX]");
    q.platform_id = argv[0];
    q.from_unix = o->from;
    q.to_unix = o->to;
    if (rpc_call_unary(cl, "/tracecode.v1.AuditService/GetDelistingCompliance", &q.base,
                       &tracecode__v1__get_delisting_compliance_response__descriptor, &resp, &r))
        return rpc_failed(&r);
    c = (void *)resp;
    if (o->json) {
        printf("{\"platform_id\":");
        jstr(q.platform_id);
        printf(",\"notices\":%" PRIu64 ",\"acked\":%" PRIu64 ",\"listings\":%" PRIu64
               ",\"p50_seconds\":%.3f,\"p99_seconds\":%.3f,\"unacked\":[",
               c->notices, c->acked, c->listings, c->p50_seconds, c->p99_seconds);
        for (i = 0; i < c->n_unacked; i++)
            printf("%s\"%s\"", i ? "," : "", c->unacked[i]);
        printf("]}\n");
    } else {
        printf("platform %s: %" PRIu64 " notices (%" PRIu64 " listings), %" PRIu64
               " acknowledged; effective -> acknowledged p50 %.3f s, p99 %.3f s\n",
               q.platform_id, c->notices, c->listings, c->acked, c->p50_seconds, c->p99_seconds);
        for (i = 0; i < c->n_unacked; i++)
            printf("  unacknowledged: %s\n", c->unacked[i]);
    }
    rpc_msg_free(resp);
    return 0;
}

/* --- audit ------------------------------------------------------------------- */

typedef struct head {
    uint64_t size;
    merkle_hash root;
    int64_t time;
    unsigned kid;
    uint8_t sig[CODEC_SIG_BYTES];
} head;

static int unhex(const char *s, size_t slen, uint8_t *out, size_t n)
{
    if (slen != 2 * n)
        return -1;
    for (size_t i = 0; i < 2 * n; i++) {
        int c = s[i], v = c >= '0' && c <= '9'   ? c - '0'
                          : c >= 'a' && c <= 'f' ? c - 'a' + 10
                          : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                 : -1;
        if (v < 0)
            return -1;
        if (i % 2)
            out[i / 2] |= (uint8_t)v;
        else
            out[i / 2] = (uint8_t)(v << 4);
    }
    return 0;
}

static void hex(const uint8_t *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", p[i]);
}

/* A whole file, NUL-terminated (malloc'd), at most max bytes. */
static char *slurp(const char *path, size_t max)
{
    FILE *f = fopen(path, "rb");
    char *buf = f ? malloc(max + 1) : NULL;
    size_t n = 0;

    if (buf) {
        n = fread(buf, 1, max + 1, f);
        if (n > max || ferror(f)) {
            free(buf);
            buf = NULL;
        } else {
            buf[n] = '\0';
        }
    }
    if (f)
        fclose(f);
    return buf;
}

/* The Ed25519 public key kid in `tracekeys export-public` JSON. */
static int public_key(const char *json, unsigned kid, uint8_t pub[CODEC_PUB_BYTES])
{
    const char *p = json;

    while ((p = strstr(p, "\"kid\":")) != NULL) {
        const char *end = strchr(p, '}'), *k;
        unsigned long id = strtoul(p + 6, NULL, 10);
        p += 6;
        if (!end)
            return -1;
        if (id != kid)
            continue;
        k = strstr(p, "\"public\":\"");
        if (!k || k > end)
            return -1;
        k += 10;
        return unhex(k, strcspn(k, "\""), pub, CODEC_PUB_BYTES);
    }
    return -1;
}

/* 0 when h is signed by its key in keys; else why not. */
static int head_check(const char *keys, const head *h, const char *what)
{
    uint8_t pub[CODEC_PUB_BYTES];
    char text[MERKLE_HEAD_TEXT_MAX];
    size_t len = merkle_head_text(h->size, h->root, h->time, h->kid, text, sizeof(text));

    if (public_key(keys, h->kid, pub) != 0) {
        fprintf(stderr,
                "tracectl: audit: %s is signed by key %u, which is not in the public keys\n", what,
                h->kid);
        return 1;
    }
    if (codec_ed25519_verify(pub, (const uint8_t *)text, len, h->sig) != CODEC_OK) {
        fprintf(stderr,
                "tracectl: audit: the signature of %s (size %" PRIu64 ") does not verify with "
                "key %u\n",
                what, h->size, h->kid);
        return 1;
    }
    return 0;
}

static int get_head(rpc_client *cl, head *h)
{
    Tracecode__V1__GetTreeHeadRequest q = TRACECODE__V1__GET_TREE_HEAD_REQUEST__INIT;
    Tracecode__V1__TreeHead *t;
    ProtobufCMessage *resp;
    rpc_result r;

    if (rpc_call_unary(cl, "/tracecode.v1.AuditService/GetTreeHead", &q.base,
                       &tracecode__v1__get_tree_head_response__descriptor, &resp, &r))
        return rpc_failed(&r);
    t = ((Tracecode__V1__GetTreeHeadResponse *)resp)->tree_head;
    memset(h, 0, sizeof(*h));
    if (!t || t->root_hash.len != sizeof(h->root) || t->signature.len != sizeof(h->sig)) {
        rpc_msg_free(resp);
        fprintf(stderr, "tracectl: audit: the tree head's root or signature has the wrong size\n");
        return 1;
    }
    h->size = t->size;
    memcpy(h->root, t->root_hash.data, sizeof(h->root));
    h->time = t->time_unix;
    h->kid = t->key_id;
    memcpy(h->sig, t->signature.data, sizeof(h->sig));
    rpc_msg_free(resp);
    return 0;
}

/* A head file: the signed text, then "signature HEX". */
static int save_head(const char *path, const head *h)
{
    char text[MERKLE_HEAD_TEXT_MAX], sig[2 * CODEC_SIG_BYTES + 1], tmp[4096];
    FILE *f;

    merkle_head_text(h->size, h->root, h->time, h->kid, text, sizeof(text));
    hex(h->sig, sizeof(h->sig), sig);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if (!(f = fopen(tmp, "w")))
        return -1;
    fprintf(f, "%ssignature %s\n", text, sig);
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
        fclose(f);
        return -1;
    }
    fclose(f);
    return rename(tmp, path);
}

static int read_head(const char *path, head *h)
{
    char *t = slurp(path, 4096), root[65], sig[129];
    unsigned long long size;
    long long time;
    int ok;

    if (!t)
        return -1;
    memset(h, 0, sizeof(*h));
    ok = sscanf(t,
                "tracecode-tree-head v1\nkey %u\nsize %llu\nroot %64s\ntime %lld\nsignature "
                "%128s",
                &h->kid, &size, root, &time, sig) == 5 &&
         unhex(root, strlen(root), h->root, sizeof(h->root)) == 0 &&
         unhex(sig, strlen(sig), h->sig, sizeof(h->sig)) == 0;
    free(t);
    h->size = size;
    h->time = time;
    return ok ? 0 : -1;
}

static void print_head(const opts *o, const head *h)
{
    char root[65], sig[129];

    hex(h->root, sizeof(h->root), root);
    hex(h->sig, sizeof(h->sig), sig);
    if (o->json)
        printf("{\"size\":%" PRIu64 ",\"root_hash\":\"%s\",\"time_unix\":%" PRId64
               ",\"key_id\":%u,\"signature\":\"%s\"}\n",
               h->size, root, h->time, h->kid, sig);
    else
        printf("tree head: size %" PRIu64 ", root %s, signed at %" PRId64 " by key %u\n", h->size,
               root, h->time, h->kid);
}

typedef struct entries {
    const opts *o;
    uint64_t next, stop, count; /* next index expected; stop before; printed */
    merkle_frontier f;
    merkle_hash *leaf; /* verify: recomputed leaf hashes */
    int verify, broken;
} entries;

static int on_entry(void *arg, const ProtobufCMessage *msg)
{
    entries *x = arg;
    const Tracecode__V1__AuditEntry *e = ((const Tracecode__V1__QueryAuditResponse *)msg)->entry;

    if (!e)
        return 0;
    if (!x->verify) {
        if (x->o->json) {
            printf("{\"index\":%" PRIu64 ",\"time_unix\":%" PRId64 ",\"kind\":", e->index,
                   e->time_unix);
            jstr(e->kind);
            printf(",\"actor\":");
            jstr(e->actor);
            printf(",\"subject\":");
            jstr(e->subject);
            printf("}\n");
        } else {
            printf("#%" PRIu64 " %" PRId64 " %s by %s, subject %s\n", e->index, e->time_unix,
                   e->kind, e->actor, e->subject);
        }
        x->next = e->index + 1;
        return ++x->count >= x->stop;
    }
    if (e->index != x->next) {
        fprintf(stderr,
                "tracectl: audit: entry %" PRIu64 " is missing (the log skips to %" PRIu64 ")\n",
                x->next, e->index);
        x->broken = 1;
        return 1;
    }
    merkle_leaf_hash(e->body.data, e->body.len, x->leaf[x->next]);
    merkle_frontier_add(&x->f, x->leaf[x->next], NULL, NULL);
    x->next++;
    return x->next >= x->stop;
}

/* Entries from x->next on, a page at a time, until x->stop (or the end). */
static int fetch(rpc_client *cl, entries *x, const char *subject, uint64_t page)
{
    Tracecode__V1__QueryAuditRequest q = TRACECODE__V1__QUERY_AUDIT_REQUEST__INIT;
    char token[24];
    rpc_result r;

    q.subject = (char *)subject;
    q.kind = (char *)(x->verify || !x->o->kind ? "" : x->o->kind);
    q.from_unix = x->verify ? 0 : x->o->from;
    q.to_unix = x->verify ? 0 : x->o->to;
    while (x->verify ? x->next < x->stop : x->count < x->stop) {
        uint64_t before = x->next;
        q.limit = (uint32_t)page;
        snprintf(token, sizeof(token), "%" PRIu64, x->next);
        q.page_token = x->next ? token : "";
        rpc_call_server_stream(cl, "/tracecode.v1.AuditService/QueryAudit", &q.base,
                               &tracecode__v1__query_audit_response__descriptor, on_entry, x, &r);
        if (x->broken)
            return 1;
        if (r.code != 0 && r.code != 1) /* 1: we cancelled, having enough */
            return rpc_failed(&r);
        if (x->next == before || (!x->verify && x->next - before < page))
            break; /* no more */
    }
    if (x->verify && x->next < x->stop) {
        fprintf(stderr,
                "tracectl: audit: entries %" PRIu64 " .. %" PRIu64
                " of the signed tree are missing\n",
                x->next, x->stop - 1);
        return 1;
    }
    return 0;
}

/* The hashes of a proof; -1 when they are not a list of SHA-256 hashes. */
static long proof_of(size_t n, const ProtobufCBinaryData *hashes, merkle_hash out[MERKLE_MAX_PROOF])
{
    if (n > MERKLE_MAX_PROOF)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (hashes[i].len != MERKLE_HASH_BYTES)
            return -1;
        memcpy(out[i], hashes[i].data, MERKLE_HASH_BYTES);
    }
    return (long)n;
}

/* Inclusion of entry index (leaf) in the tree of h; 1 when it verifies. */
static int included(rpc_client *cl, const head *h, uint64_t index, const merkle_hash leaf, int *rpc)
{
    Tracecode__V1__GetInclusionProofRequest q = TRACECODE__V1__GET_INCLUSION_PROOF_REQUEST__INIT;
    merkle_hash proof[MERKLE_MAX_PROOF];
    ProtobufCMessage *resp;
    rpc_result r;
    long n;
    int ok;

    q.index = index;
    q.tree_size = h->size;
    *rpc = 0;
    if (rpc_call_unary(cl, "/tracecode.v1.AuditService/GetInclusionProof", &q.base,
                       &tracecode__v1__get_inclusion_proof_response__descriptor, &resp, &r)) {
        *rpc = rpc_failed(&r);
        return 0;
    }
    {
        const Tracecode__V1__GetInclusionProofResponse *p = (const void *)resp;
        n = proof_of(p->n_hashes, p->hashes, proof);
    }
    ok = n >= 0 && merkle_verify_inclusion(leaf, index, h->size, proof, (size_t)n, h->root);
    rpc_msg_free(resp);
    return ok;
}

static int consistent(rpc_client *cl, const head *old, const head *h)
{
    Tracecode__V1__GetConsistencyProofRequest q =
        TRACECODE__V1__GET_CONSISTENCY_PROOF_REQUEST__INIT;
    merkle_hash proof[MERKLE_MAX_PROOF];
    ProtobufCMessage *resp;
    rpc_result r;
    long n;
    int ok;

    if (old->size > h->size) {
        fprintf(stderr, "tracectl: audit: the log shrank from %" PRIu64 " to %" PRIu64 " entries\n",
                old->size, h->size);
        return 1;
    }
    q.from_size = old->size;
    q.to_size = h->size;
    if (rpc_call_unary(cl, "/tracecode.v1.AuditService/GetConsistencyProof", &q.base,
                       &tracecode__v1__get_consistency_proof_response__descriptor, &resp, &r))
        return rpc_failed(&r);
    {
        const Tracecode__V1__GetConsistencyProofResponse *p = (const void *)resp;
        n = proof_of(p->n_hashes, p->hashes, proof);
    }
    ok = n >= 0 &&
         merkle_verify_consistency(old->size, h->size, old->root, h->root, proof, (size_t)n);
    rpc_msg_free(resp);
    if (!ok) {
        fprintf(stderr,
                "tracectl: audit: the log of %" PRIu64 " entries is not an extension of the saved "
                "head of %" PRIu64 " entries: its history was rewritten\n",
                h->size, old->size);
        return 1;
    }
    printf("consistent with the saved head of size %" PRIu64 "\n", old->size);
    return 0;
}

/* Say which entries no longer match the signed tree, and why. */
static int locate(rpc_client *cl, const head *h, entries *x)
{
    unsigned bad = 0;
    int rpc;

    for (uint64_t i = 0; i < h->size && bad < 10; i++) {
        if (included(cl, h, i, x->leaf[i], &rpc))
            continue;
        if (rpc)
            return 1;
        fprintf(stderr,
                "tracectl: audit: entry %" PRIu64 " does not match the signed tree head: it was "
                "changed after it was logged\n",
                i);
        bad++;
    }
    if (!bad)
        fprintf(stderr, "tracectl: audit: the entries do not hash to the signed root, yet each "
                        "one's inclusion proof verifies: the stored tree is inconsistent\n");
    return 1;
}

static int audit_verify(rpc_client *cl, const opts *o)
{
    char *keys;
    head h, old;
    entries x;
    merkle_hash root;
    int rc = 1;

    if (!o->public_keys)
        return fail("audit verify needs --public-keys FILE (tracekeys export-public)");
    if (!(keys = slurp(o->public_keys, 1 << 20)))
        return fail("cannot read public keys %s", o->public_keys);
    memset(&x, 0, sizeof(x));
    if (get_head(cl, &h) || head_check(keys, &h, "the tree head"))
        goto out;
    printf("tree head: size %" PRIu64 ", signed at %" PRId64 " by key %u: signature ok\n", h.size,
           h.time, h.kid);
    if (o->since) {
        if (read_head(o->since, &old) != 0) {
            rc = fail("cannot read a tree head from %s", o->since);
            goto out;
        }
        if (head_check(keys, &old, "the saved head") || consistent(cl, &old, &h))
            goto out;
    }
    x.o = o;
    x.verify = 1;
    if (o->index >= 0) { /* one entry */
        int rpc;
        if ((uint64_t)o->index >= h.size) {
            rc = fail("entry %lld is not in the signed tree of %" PRIu64 " entries", o->index,
                      h.size);
            goto out;
        }
        x.leaf = malloc(sizeof(*x.leaf) * ((size_t)o->index + 1));
        x.next = (uint64_t)o->index;
        x.stop = x.next + 1;
        if (!x.leaf || fetch(cl, &x, "", 1))
            goto out;
        if (!included(cl, &h, x.stop - 1, x.leaf[x.stop - 1], &rpc)) {
            if (!rpc)
                fprintf(stderr,
                        "tracectl: audit: entry %lld does not match the signed tree head: it was "
                        "changed after it was logged\n",
                        o->index);
            goto out;
        }
        printf("entry %lld is in the tree: inclusion proof ok\n", o->index);
    } else {
        x.leaf = malloc(sizeof(*x.leaf) * (h.size ? h.size : 1));
        x.stop = h.size;
        if (!x.leaf || fetch(cl, &x, "", 1000))
            goto out;
        merkle_frontier_root(&x.f, root);
        if (memcmp(root, h.root, sizeof(root)) != 0) {
            locate(cl, &h, &x);
            goto out;
        }
        printf("all %" PRIu64 " entries hash to the signed root\n", h.size);
    }
    if (o->out && save_head(o->out, &h) != 0) {
        rc = fail("cannot save the tree head to %s: %s", o->out, strerror(errno));
        goto out;
    }
    printf("audit log verified\n");
    rc = 0;
out:
    free(x.leaf);
    free(keys);
    return rc;
}

static int cmd_audit(rpc_client *cl, const opts *o, int argc, char **argv)
{
    head h;

    if (argc >= 1 && strcmp(argv[0], "head") == 0 && argc == 1) {
        if (get_head(cl, &h))
            return 1;
        print_head(o, &h);
        if (o->out && save_head(o->out, &h) != 0)
            return fail("cannot save the tree head to %s: %s", o->out, strerror(errno));
        return 0;
    }
    if (argc >= 1 && strcmp(argv[0], "query") == 0 && argc <= 2) {
        entries x;
        memset(&x, 0, sizeof(x));
        x.o = o;
        x.stop = o->count ? o->count : 100;
        return fetch(cl, &x, argc == 2 ? argv[1] : "", x.stop < 1000 ? x.stop : 1000);
    }
    if (argc == 1 && strcmp(argv[0], "verify") == 0)
        return audit_verify(cl, o);
    return fail("usage: audit head [--out FILE] | audit query [SUBJECT] [--kind K] [--from UNIX] "
                "[--to UNIX] [--count N] | audit verify --public-keys FILE [--since HEADFILE] "
                "[--out HEADFILE] [--index N]");
}

/* --- main ---------------------------------------------------------------------- */

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static int parse_opts(int argc, char **argv, opts *o)
{
    enum {
        O_ADDR = 256,
        O_INSECURE,
        O_ROLE,
        O_SUBJECT,
        O_CA,
        O_CERT,
        O_KEY,
        O_JSON,
        O_TIMEOUT,
        O_HOLDER,
        O_CATEGORIES,
        O_KIND,
        O_VALID,
        O_STATUS,
        O_REASON,
        O_CERTIFICATE,
        O_CATEGORY,
        O_BRAND,
        O_MODEL,
        O_GTIN,
        O_QUANTITY,
        O_PROFILE,
        O_REQUEST,
        O_OUT,
        O_SHEET,
        O_BASE,
        O_CHUNK,
        O_FILE,
        O_FULL,
        O_LCAT,
        O_LBRAND,
        O_LMODEL,
        O_SUSPENDED,
        O_CURSOR_FILE,
        O_EXEC,
        O_COUNT,
        O_DELISTED,
        O_FROM,
        O_TO,
        O_PUBKEYS,
        O_SINCE,
        O_INDEX,
    };
    static const struct option lo[] = {
        {"addr", 1, 0, O_ADDR},
        {"insecure", 0, 0, O_INSECURE},
        {"role", 1, 0, O_ROLE},
        {"subject", 1, 0, O_SUBJECT},
        {"ca", 1, 0, O_CA},
        {"cert", 1, 0, O_CERT},
        {"key", 1, 0, O_KEY},
        {"json", 0, 0, O_JSON},
        {"timeout", 1, 0, O_TIMEOUT},
        {"holder", 1, 0, O_HOLDER},
        {"categories", 1, 0, O_CATEGORIES},
        {"kind", 1, 0, O_KIND},
        {"valid-until", 1, 0, O_VALID},
        {"status", 1, 0, O_STATUS},
        {"reason", 1, 0, O_REASON},
        {"certificate", 1, 0, O_CERTIFICATE},
        {"category", 1, 0, O_CATEGORY},
        {"brand", 1, 0, O_BRAND},
        {"model", 1, 0, O_MODEL},
        {"gtin", 1, 0, O_GTIN},
        {"quantity", 1, 0, O_QUANTITY},
        {"profile", 1, 0, O_PROFILE},
        {"request-id", 1, 0, O_REQUEST},
        {"out", 1, 0, O_OUT},
        {"sheet", 1, 0, O_SHEET},
        {"base-url", 1, 0, O_BASE},
        {"chunk", 1, 0, O_CHUNK},
        {"file", 1, 0, O_FILE},
        {"full", 0, 0, O_FULL},
        {"listing-category", 1, 0, O_LCAT},
        {"listing-brand", 1, 0, O_LBRAND},
        {"listing-model", 1, 0, O_LMODEL},
        {"suspended", 0, 0, O_SUSPENDED},
        {"cursor-file", 1, 0, O_CURSOR_FILE},
        {"exec", 1, 0, O_EXEC},
        {"count", 1, 0, O_COUNT},
        {"delisted", 1, 0, O_DELISTED},
        {"from", 1, 0, O_FROM},
        {"to", 1, 0, O_TO},
        {"public-keys", 1, 0, O_PUBKEYS},
        {"since", 1, 0, O_SINCE},
        {"index", 1, 0, O_INDEX},
        {"help", 0, 0, 'h'},
        {0, 0, 0, 0},
    };
    unsigned long long v;
    const char *ins = env("TRACECTL_INSECURE");
    int c, li = 0;

    memset(o, 0, sizeof(*o));
    o->index = -1;
    o->conn.addr = env("TRACECTL_ADDR") ? env("TRACECTL_ADDR") : "127.0.0.1:50051";
    o->conn.insecure = ins && strcmp(ins, "0") != 0;
    o->conn.role = env("TRACECTL_ROLE");
    o->conn.subject = env("TRACECTL_SUBJECT");
    o->conn.ca = env("TRACECTL_CA");
    o->conn.cert = env("TRACECTL_CERT");
    o->conn.key = env("TRACECTL_KEY");
    o->conn.timeout_s = 120;
    while ((c = getopt_long(argc, argv, "", lo, &li)) != -1) {
        if (c >= O_ADDR && o->ngiven < (int)(sizeof(o->given) / sizeof(o->given[0])))
            o->given[o->ngiven++] = lo[li].name;
        switch (c) {
        case O_ADDR:
            o->conn.addr = optarg;
            break;
        case O_INSECURE:
            o->conn.insecure = 1;
            break;
        case O_ROLE:
            o->conn.role = optarg;
            break;
        case O_SUBJECT:
            o->conn.subject = optarg;
            break;
        case O_CA:
            o->conn.ca = optarg;
            break;
        case O_CERT:
            o->conn.cert = optarg;
            break;
        case O_KEY:
            o->conn.key = optarg;
            break;
        case O_JSON:
            o->json = 1;
            break;
        case O_HOLDER:
            o->holder = optarg;
            break;
        case O_CATEGORIES:
            o->categories = optarg;
            break;
        case O_KIND:
            o->kind = optarg;
            break;
        case O_STATUS:
            o->status = optarg;
            break;
        case O_REASON:
            o->reason = optarg;
            break;
        case O_CERTIFICATE:
            o->certificate = optarg;
            break;
        case O_CATEGORY:
            o->category = optarg;
            break;
        case O_BRAND:
            o->brand = optarg;
            break;
        case O_MODEL:
            o->model = optarg;
            break;
        case O_GTIN:
            o->gtin = optarg;
            break;
        case O_PROFILE:
            o->profile = optarg;
            break;
        case O_REQUEST:
            o->request_id = optarg;
            break;
        case O_OUT:
            o->out = optarg;
            break;
        case O_SHEET:
            o->sheet = optarg;
            break;
        case O_BASE:
            o->base_url = optarg;
            break;
        case O_FILE:
            o->file = optarg;
            break;
        case O_FULL:
            o->full = 1;
            break;
        case O_LCAT:
            o->l_category = optarg;
            break;
        case O_LBRAND:
            o->l_brand = optarg;
            break;
        case O_LMODEL:
            o->l_model = optarg;
            break;
        case O_SUSPENDED:
            o->suspended = 1;
            break;
        case O_CURSOR_FILE:
            o->cursor_file = optarg;
            break;
        case O_EXEC:
            o->exec = optarg;
            break;
        case O_COUNT:
            if (!parse_u64(optarg, 1000000000, &v) || !v)
                return fail("--count '%s' must be 1..1000000000", optarg);
            o->count = (unsigned long)v;
            break;
        case O_DELISTED:
        case O_FROM:
        case O_TO:
            if (!parse_u64(optarg, INT64_MAX, &v))
                return fail("--%s '%s' must be unix seconds",
                            c == O_DELISTED ? "delisted"
                            : c == O_FROM   ? "from"
                                            : "to",
                            optarg);
            *(c == O_DELISTED ? &o->delisted : c == O_FROM ? &o->from : &o->to) = (long long)v;
            break;
        case O_PUBKEYS:
            o->public_keys = optarg;
            break;
        case O_SINCE:
            o->since = optarg;
            break;
        case O_INDEX:
            if (!parse_u64(optarg, INT64_MAX, &v))
                return fail("--index '%s' must be an entry index", optarg);
            o->index = (long long)v;
            break;
        case O_TIMEOUT:
            if (!parse_u64(optarg, 86400, &v) || !v)
                return fail("--timeout '%s' must be 1..86400 seconds", optarg);
            o->conn.timeout_s = (int)v;
            break;
        case O_VALID:
            if (!parse_u64(optarg, INT64_MAX, &v))
                return fail("--valid-until '%s' must be unix seconds", optarg);
            o->valid_until = (long long)v;
            o->have_valid_until = 1;
            break;
        case O_QUANTITY:
            if (!parse_u64(optarg, 10000000, &v) || !v)
                return fail("--quantity '%s' must be 1..10000000", optarg);
            o->quantity = (unsigned long)v;
            break;
        case O_CHUNK:
            if (!parse_u64(optarg, 65536, &v))
                return fail("--chunk '%s' must be 0..65536", optarg);
            o->chunk = (unsigned long)v;
            break;
        default:
            return usage();
        }
    }
    return 0;
}

/* Options every command takes: how to reach the service and print. */
static const char global_opts[] = "addr insecure role subject ca cert key json timeout help";

/* A command: its usage lines and the options it takes (git's
 * parse-options in spirit: an option not its own is refused by name). */
typedef struct command {
    const char *name;
    int (*fn)(rpc_client *, const opts *, int, char **);
    const char *usage;
    const char *opts;
} command;

static const command cmds[] = {
    {"manufacturer", cmd_manufacturer, "manufacturer put CREDIT NAME [--suspended]",
     "suspended request-id"},
    {"cert", cmd_cert,
     "cert put NUMBER --holder CREDIT --categories C1,C2 [--kind ccc|licence]\n"
     "         [--valid-until UNIX] [--status S] [--reason TEXT]\n"
     "cert get NUMBER | cert status NUMBER STATUS [--reason TEXT] | cert import FILE.csv",
     "holder categories kind valid-until status reason request-id"},
    {"product", cmd_product,
     "product register --certificate N --category C --brand B --model M [--gtin G]",
     "certificate category brand model gtin request-id"},
    {"issue", cmd_issue,
     "issue PRODUCT_ID --quantity N [--profile mac|sig] [--request-id ID] [--out FILE]\n"
     "      [--sheet PREFIX] [--base-url URL] [--chunk N]",
     "quantity profile request-id out sheet base-url chunk"},
    {"batch", cmd_batch, "batch get BATCH_ID", ""},
    {"recall", cmd_recall, "recall BATCH_ID FIRST LAST --reason TEXT", "reason request-id"},
    {"verify", cmd_verify,
     "verify [CODE ...] [--file F] [--full] [--listing-category C] [--listing-brand B]\n"
     "       [--listing-model M]",
     "file full listing-category listing-brand listing-model"},
    {"listings", cmd_listings, "listings register FILE.csv     (header: listing_id,code)",
     "request-id"},
    {"watch", cmd_watch, "watch [--cursor-file F] [--exec CMD] [--count N]",
     "cursor-file exec count"},
    {"ack", cmd_ack, "ack NOTICE_ID [LISTING_ID ...] [--delisted UNIX]", "delisted request-id"},
    {"compliance", cmd_compliance, "compliance PLATFORM_ID [--from UNIX] [--to UNIX]", "from to"},
    {"audit", cmd_audit,
     "audit head [--out FILE]\n"
     "audit query [SUBJECT] [--kind K] [--from UNIX] [--to UNIX] [--count N]\n"
     "audit verify --public-keys FILE [--since HEADFILE] [--out HEADFILE] [--index N]",
     "out kind from to count public-keys since index"},
    {"keys", cmd_keys,
     "keys list | keys activate KID | keys compromise KID --since UNIX --reason TEXT",
     "since reason request-id"},
};
#define NCMDS (sizeof(cmds) / sizeof(cmds[0]))

/* 1 when word is one of the space-separated words of list. */
static int listed(const char *list, const char *word)
{
    size_t n = strlen(word);

    for (const char *p = list; (p = strstr(p, word)) != NULL; p += n)
        if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
            return 1;
    return 0;
}

/* The command's options as "--a, --b" into buf. */
static const char *options_of(const command *cmd, char *buf, size_t cap)
{
    const char *p = cmd->opts;
    size_t o = 0;

    buf[0] = '\0';
    while (*p && o + 1 < cap) {
        size_t n = strcspn(p, " ");
        int k = snprintf(buf + o, cap - o, "%s--%.*s", o ? ", " : "", (int)n, p);
        if (k < 0 || (size_t)k >= cap - o)
            break;
        o += (size_t)k;
        p += n;
        p += *p == ' ';
    }
    return o ? buf : "none of its own";
}

static int help(const char *name)
{
    char buf[512];

    for (size_t i = 0; i < NCMDS; i++)
        if (strcmp(cmds[i].name, name) == 0) {
            printf("usage: tracectl [connection options] %s\n", cmds[i].usage);
            printf("options of %s: %s\n", name, options_of(&cmds[i], buf, sizeof(buf)));
            printf("connection options: --addr HOST:PORT, --insecure --role R --subject S, "
                   "--ca F --cert F --key F, --timeout S, --json\n");
            return 0;
        }
    return fail("help: no command '%s' (tracectl help lists them)", name);
}

int main(int argc, char **argv)
{
    char err[512];
    const command *cmd = NULL;
    rpc_client *cl;
    opts o;
    size_t i;
    int rc;

    signal(SIGPIPE, SIG_IGN); /* an --exec hook may stop reading early */
    if ((rc = parse_opts(argc, argv, &o)) != 0)
        return rc;
    if (optind >= argc)
        return usage();
    if (strcmp(argv[optind], "help") == 0) {
        if (optind + 1 >= argc) {
            usage_to(stdout);
            return 0;
        }
        return help(argv[optind + 1]);
    }
    for (i = 0; i < NCMDS; i++)
        if (strcmp(argv[optind], cmds[i].name) == 0)
            cmd = &cmds[i];
    if (!cmd)
        return usage();
    for (int g = 0; g < o.ngiven; g++)
        if (!listed(global_opts, o.given[g]) && !listed(cmd->opts, o.given[g]))
            return fail("--%s is not an option of '%s'; its options: %s (tracectl help %s)",
                        o.given[g], cmd->name, options_of(cmd, err, sizeof(err)), cmd->name);
    if (o.conn.insecure && (!o.conn.role || !o.conn.subject))
        return fail("--insecure needs --role (manufacturer, platform, regulator, certifier) and "
                    "--subject (or TRACECTL_ROLE, TRACECTL_SUBJECT)");
    cl = rpc_client_new(&o.conn, err, sizeof(err));
    if (!cl)
        return fail("%s", err);
    rc = cmd->fn(cl, &o, argc - optind - 1, argv + optind + 1);
    if (fflush(stdout) != 0 && rc == 0)
        rc = fail("cannot write output: %s", strerror(errno));
    rpc_client_free(cl);
    return rc;
}
