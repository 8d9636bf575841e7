/*
 * ctl_reports.c - consumers' problem reports, for the regulator (all) and
 * a manufacturer (its own products'): reports [code C | batch B | product P].
 */
#include "ctl.h"

static int on_report(void *arg, const ProtobufCMessage *m)
{
    const opts *o = arg;
    const Tracecode__V1__ProblemReport *r =
        ((const Tracecode__V1__QueryReportsResponse *)m)->report;

    if (!r)
        return 0;
    if (o->json) {
        printf("{\"report_id\":");
        jstr(r->report_id);
        printf(",\"code\":");
        jstr(r->code);
        printf(",\"batch_id\":%" PRIu64 ",\"product_id\":", r->batch_id);
        jstr(r->product_id);
        printf(",\"reason\":\"%s\",\"text\":", problem_reason_name(r->reason));
        jstr(r->text);
        printf(",\"created_unix\":%" PRId64 ",\"region\":", r->created_unix);
        jstr(r->region);
        printf(",\"via\":");
        jstr(r->via);
        printf("}\n");
    } else {
        printf("report %s  %s  code %s  product %s  batch %" PRIu64 "  via %s%s%s\n", r->report_id,
               problem_reason_name(r->reason), r->code, r->product_id, r->batch_id, r->via,
               r->text[0] ? "  text: " : "", r->text);
    }
    return 0;
}

int cmd_reports(rpc_client *cl, const opts *o, int argc, char **argv)
{
    Tracecode__V1__QueryReportsRequest q = TRACECODE__V1__QUERY_REPORTS_REQUEST__INIT;
    unsigned long long v;
    rpc_result r;

    if (argc == 2 && strcmp(argv[0], "code") == 0)
        q.code = argv[1];
    else if (argc == 2 && strcmp(argv[0], "product") == 0)
        q.product_id = argv[1];
    else if (argc == 2 && strcmp(argv[0], "batch") == 0) {
        if (!parse_u64(argv[1], UINT64_MAX, &v) || !v)
            return fail("batch id '%s' is not a number", argv[1]);
        q.batch_id = v;
    } else if (argc != 0)
        return usage();
    q.from_unix = o->from;
    q.to_unix = o->to;
    q.limit = (uint32_t)(o->count ? o->count : 100);
    if (rpc_call_server_stream(cl, "/tracecode.v1.AuditService/QueryReports", &q.base,
                               &tracecode__v1__query_reports_response__descriptor, on_report,
                               (void *)o, &r))
        return rpc_failed(&r);
    return CTL_OK;
}
