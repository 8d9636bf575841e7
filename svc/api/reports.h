/*
 * reports.h - consumers' problem reports (reports_api.c): one report filed,
 * for the scan page's form as for ConsumerService.ReportProblem.
 */
#ifndef TC_REPORTS_H
#define TC_REPORTS_H

#include "api.h"

/*
 * File a report of code (any form; a code we issued) for reason
 * (tracecode.v1.ProblemReason 1..5) with text (may be ""), from device (its
 * rate: 5 an hour) in region (may be ""), sent via a platform id or
 * "page". *id the report's id, *on_code the code's reports so far. SVC_OK,
 * or st says why (INVALID_ARGUMENT, FAILED_PRECONDITION for a code never
 * issued, RESOURCE_EXHAUSTED for a spent rate, UNAVAILABLE).
 */
svc_code report_file(const svc *s, int reader, const char *code, int reason, const char *text,
                     const char *device, const char *region, const char *via, uint64_t *id,
                     uint32_t *on_code, svc_status *st);

#endif
