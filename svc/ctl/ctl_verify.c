/*
 * ctl_verify.c - verify codes (arguments, a file or stdin, in batches) and register listings.
 */
#include "ctl.h"

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
        return fail_local("out of memory");
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

int cmd_verify(rpc_client *cl, const opts *o, int argc, char **argv)
{
    verifier *v = calloc(1, sizeof(*v));
    int rc = 0, i;

    if (!v)
        return fail_local("out of memory");
    v->cl = cl;
    v->o = o;
    v->all_genuine = 1;
    for (i = 0; i < argc && !rc; i++)
        rc = verify_add(v, argv[i], strlen(argv[i]));
    if (!rc && o->file) {
        FILE *f = strcmp(o->file, "-") == 0 ? stdin : fopen(o->file, "r");
        if (!f)
            rc = fail_local("cannot open '%s': %s", o->file, strerror(errno));
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
        rc = CTL_NO;
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

int cmd_listings(rpc_client *cl, const opts *o, int argc, char **argv)
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
        return fail_local("cannot open '%s': %s", argv[1], strerror(errno));
    w = calloc(1, sizeof(*w));
    if (!w)
        return fail_local("out of memory");
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
        rc = CTL_NO;
    free(w);
    return rc;
}
