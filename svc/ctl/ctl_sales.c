/*
 * ctl_sales.c - a platform's sold codes: sales report, sales undo.
 */
#include "ctl.h"

#define SALES_PER_CALL 1000

/* sales report CODE ORDER_REF [CODE ORDER_REF ...]: one result a line;
 * CTL_NO when a code was sold before or is not genuine. */
static int report(rpc_client *cl, const opts *o, int argc, char **argv)
{
    Tracecode__V1__ReportSalesRequest q = TRACECODE__V1__REPORT_SALES_REQUEST__INIT;
    Tracecode__V1__SaleItem items[SALES_PER_CALL], *pi[SALES_PER_CALL];
    Tracecode__V1__ReportSalesResponse *r;
    ProtobufCMessage *resp;
    rpc_result res;
    int rc = CTL_OK;
    size_t i, n = (size_t)argc / 2;

    if (argc < 2 || argc % 2 || n > SALES_PER_CALL)
        return fail("usage: sales report CODE ORDER_REF [CODE ORDER_REF ...] (at most %d "
                    "pairs)",
                    SALES_PER_CALL);
    for (i = 0; i < n; i++) {
        tracecode__v1__sale_item__init(&items[i]);
        items[i].code = argv[2 * i];
        items[i].order_ref = argv[2 * i + 1];
        pi[i] = &items[i];
    }
    q.items = pi;
    q.n_items = n;
    q.request_id = (char *)(o->request_id ? o->request_id : "");
    if (rpc_call_unary(cl, "/tracecode.v1.VerifierService/ReportSales", &q.base,
                       &tracecode__v1__report_sales_response__descriptor, &resp, &res))
        return rpc_failed(&res);
    r = (Tracecode__V1__ReportSalesResponse *)resp;
    for (i = 0; i < r->n_results; i++) {
        const Tracecode__V1__SaleResult *x = r->results[i];
        if (x->verdict != TRACECODE__V1__VERDICT__VERDICT_GENUINE)
            rc = CTL_NO;
        if (o->json) {
            printf("{\"code\":");
            jstr(x->code);
            printf(",\"verdict\":\"%s\",\"first_platform_id\":", verdict_name(x->verdict));
            jstr(x->first_platform_id);
            printf(",\"first_sold_unix\":%" PRId64 ",\"suspected_copy\":%s,\"detail\":",
                   x->first_sold_unix, x->suspected_copy ? "true" : "false");
            jstr(x->detail);
            printf("}\n");
        } else {
            printf("%s  %s%s%s\n", x->code, verdict_name(x->verdict), x->detail[0] ? " - " : "",
                   x->detail);
        }
    }
    rpc_msg_free(resp);
    return rc;
}

static int undo(rpc_client *cl, const opts *o, const char *code)
{
    Tracecode__V1__UndoSaleRequest q = TRACECODE__V1__UNDO_SALE_REQUEST__INIT;
    ProtobufCMessage *resp;
    rpc_result res;

    q.code = (char *)code;
    q.request_id = (char *)(o->request_id ? o->request_id : "");
    if (rpc_call_unary(cl, "/tracecode.v1.VerifierService/UndoSale", &q.base,
                       &tracecode__v1__undo_sale_response__descriptor, &resp, &res))
        return rpc_failed(&res);
    rpc_msg_free(resp);
    if (!o->json)
        printf("sale of %s undone\n", code);
    return CTL_OK;
}

int cmd_sales(rpc_client *cl, const opts *o, int argc, char **argv)
{
    if (argc >= 1 && strcmp(argv[0], "report") == 0)
        return report(cl, o, argc - 1, argv + 1);
    if (argc == 2 && strcmp(argv[0], "undo") == 0)
        return undo(cl, o, argv[1]);
    return usage();
}
