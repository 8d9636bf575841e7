/*
 * audit_api.h - AuditService handlers, and the logging of a regulator's
 * queries that other handlers share.
 */
#ifndef TC_AUDIT_API_H
#define TC_AUDIT_API_H

#include "api.h"

/* AuditService */
svc_code api_query_audit_open(svc_ctx *c, const void *req, void **state, svc_status *st);
svc_code api_query_audit_next(svc_ctx *c, void *state, void *resp, int *done, svc_status *st);
svc_code api_get_tree_head(svc_ctx *c, const void *req, void *resp, svc_status *st);
svc_code api_get_inclusion_proof(svc_ctx *c, const void *req, void *resp, svc_status *st);
svc_code api_get_consistency_proof(svc_ctx *c, const void *req, void *resp, svc_status *st);

/* A regulator's query, logged before it is answered. */
svc_code audit_log_query(svc_ctx *c, const char *subject, const char *what, svc_status *st);

#endif
