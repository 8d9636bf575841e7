/*
 * ctl_issue.c - issue (codes to a file and label sheets), batch get, recall.
 */
#include "ctl.h"

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

/* The GTIN of one of the caller's products ("" for none): 0, or an exit
 * status after saying why. */
static int product_gtin(rpc_client *cl, const char *product_id, char *out, size_t cap)
{
    Tracecode__V1__GetProductRequest q = TRACECODE__V1__GET_PRODUCT_REQUEST__INIT;
    ProtobufCMessage *resp;
    rpc_result r;

    q.product_id = (char *)product_id;
    if (rpc_call_unary(cl, "/tracecode.v1.IssuerService/GetProduct", &q.base,
                       &tracecode__v1__get_product_response__descriptor, &resp, &r))
        return rpc_failed(&r);
    snprintf(out, cap, "%s", ((Tracecode__V1__GetProductResponse *)resp)->product->gtin);
    rpc_msg_free(resp);
    return 0;
}

int cmd_issue(rpc_client *cl, const opts *o, int argc, char **argv)
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
    q.production_date = (char *)(o->production_date ? o->production_date : "");
    q.lot = (char *)(o->lot ? o->lot : "");
    q.profile = o->profile && !strcmp(o->profile, "sig")
                    ? TRACECODE__V1__CODE_PROFILE__CODE_PROFILE_SIG
                    : TRACECODE__V1__CODE_PROFILE__CODE_PROFILE_MAC;
    if (o->profile && strcmp(o->profile, "sig") && strcmp(o->profile, "mac"))
        return fail("--profile '%s' must be mac or sig", o->profile);
    if (o->sheet) {
        /* A product with a GTIN gets GS1 Digital Link labels. */
        char gtin[32] = "";
        if ((rc = product_gtin(cl, argv[0], gtin, sizeof(gtin))) != 0)
            return rc;
        s.sheet = labels_new(o->sheet, o->base_url ? o->base_url : "https://tc.example.com", gtin,
                             s.err, sizeof(s.err));
        if (!s.sheet)
            return fail_local("%s", s.err);
    }
    s.out = o->out ? fopen(o->out, "w") : stdout;
    if (!s.out) {
        labels_free(s.sheet);
        return fail_local("cannot open '%s': %s", o->out, strerror(errno));
    }
    if (rpc_call_server_stream(cl, "/tracecode.v1.IssuerService/IssueCodes", &q.base,
                               &tracecode__v1__issue_codes_response__descriptor, on_codes, &s, &r))
        rc = s.failed ? fail_local("%s", s.err) : rpc_failed(&r);
    if (!rc && s.sheet && labels_finish(s.sheet, &pages, s.err, sizeof(s.err)))
        rc = fail_local("%s", s.err);
    if (s.out != stdout && fclose(s.out) != 0 && !rc)
        rc = fail_local("cannot write '%s': %s", o->out, strerror(errno));
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

int cmd_batch(rpc_client *cl, const opts *o, int argc, char **argv)
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

int cmd_recall(rpc_client *cl, const opts *o, int argc, char **argv)
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
