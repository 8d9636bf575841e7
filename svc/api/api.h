/*
 * api.h - what the RPC layer hands to a capability, and what it expects
 * back. Handlers take decoded messages (the generated protobuf-c structs,
 * passed as void * here) and a context (node.h); they never see a gRPC
 * call, a byte buffer or the protobuf-c library.
 */
#ifndef TC_API_H
#define TC_API_H

#include "node.h"

/* --- helpers of the handlers (common.c) ---------------------------------- */

/* A copy of s in the call's memory; NULL at the call's memory bound. */
char *svc_strdup(svc_ctx *c, const char *s);

/* The caller as the audit log names it: "role:subject" (SVC_ACTOR_MAX). */
void svc_actor(const svc_ctx *c, char *buf, size_t cap);

/* A write's idempotency key from its request_id ("" or NULL: none): idem
 * borrows request_id and scope (SVC_ACTOR_MAX bytes, filled here). 0 with
 * INVALID_ARGUMENT in st when request_id is not up to 64 bytes of
 * A-Z a-z 0-9 . _ - */
int svc_idem(svc_ctx *c, const char *request_id, store_idem *idem, char *scope, svc_status *st);

/* Wait (up to timeout_ms) until the local replica has applied rev, so a
 * caller reads its own writes on this node. 1 when it has. */
int svc_wait_revision(const svc *s, uint64_t rev, int64_t timeout_ms);
/* After a stored write: wait for this node to apply rev, up to 5 s and
 * never past the call's deadline. It cannot fail: the write succeeded, and
 * its answer carries the revision even when this replica is behind. */
void svc_settle(svc_ctx *c, uint64_t rev);

/* tc_verify against the keyring in force, and once more after a reload
 * when the code named a key id this node did not hold (verify_api.c). The
 * caller holds a replica read section. */
/* pm (initialised here) as what p was registered as; strings point into
 * the replica (a product's never change or go). Its passport is apart. */
struct Tracecode__V1__Product;
void svc_product_fill(struct Tracecode__V1__Product *pm, const rep_product *p);

void svc_verify(svc *s, const char *code, size_t len, const tc_listing *listing, int64_t now,
                tc_vres *out);

/* --- handler shapes ------------------------------------------------------ */

/* Unary (and each message of a bidirectional stream): fill resp, which the
 * RPC layer has initialised. Return st->code. */
typedef svc_code (*svc_unary_fn)(svc_ctx *c, const void *req, void *resp, svc_status *st);

/* Server streaming: open once, then next until *done; each next fills one
 * initialised resp. state is the handler's, in the call's arena. */
typedef svc_code (*svc_open_fn)(svc_ctx *c, const void *req, void **state, svc_status *st);
typedef svc_code (*svc_next_fn)(svc_ctx *c, void *state, void *resp, int *done, svc_status *st);
/* next() sets *done to SVC_STREAM_WAIT when it has nothing to send now; it
 * then calls c->wake when it has. */
#define SVC_STREAM_WAIT (-1)
/* ... or to SVC_STREAM_END when it has nothing more (resp is not sent). */
#define SVC_STREAM_END (-2)
/* Called once when a call whose open() succeeded ends, however it ends. */
typedef void (*svc_close_fn)(svc_ctx *c, void *state);

/* Client streaming: each message, then finish fills the one resp. */
typedef svc_code (*svc_push_fn)(svc_ctx *c, void **state, const void *msg, svc_status *st);
typedef svc_code (*svc_finish_fn)(svc_ctx *c, void *state, void *resp, svc_status *st);

/* --- the capabilities ---------------------------------------------------- */

/* registry.c */
svc_code api_upsert_manufacturer(svc_ctx *c, const void *req, void *resp, svc_status *st);
svc_code api_upsert_certificate(svc_ctx *c, const void *req, void *resp, svc_status *st);
svc_code api_set_certificate_status(svc_ctx *c, const void *req, void *resp, svc_status *st);
svc_code api_get_certificate(svc_ctx *c, const void *req, void *resp, svc_status *st);
svc_code api_import_push(svc_ctx *c, void **state, const void *msg, svc_status *st);
svc_code api_import_finish(svc_ctx *c, void *state, void *resp, svc_status *st);

/* issue.c */
svc_code api_register_product(svc_ctx *c, const void *req, void *resp, svc_status *st);
svc_code api_issue_open(svc_ctx *c, const void *req, void **state, svc_status *st);
svc_code api_issue_next(svc_ctx *c, void *state, void *resp, int *done, svc_status *st);
svc_code api_get_batch(svc_ctx *c, const void *req, void *resp, svc_status *st);
svc_code api_get_product(svc_ctx *c, const void *req, void *resp, svc_status *st);
svc_code api_update_product(svc_ctx *c, const void *req, void *resp, svc_status *st);
svc_code api_recall_batch(svc_ctx *c, const void *req, void *resp, svc_status *st);

/* verify_api.c */
svc_code api_verify_code(svc_ctx *c, const void *req, void *resp, svc_status *st);
svc_code api_verify_batch(svc_ctx *c, const void *req, void *resp, svc_status *st);

/* scan.c */
svc_code api_scan(svc_ctx *c, const void *req, void *resp, svc_status *st);

/* listings.c */
svc_code api_register_listings(svc_ctx *c, const void *req, void *resp, svc_status *st);

/* delist.c: watching, acknowledging and auditing delisting notices */
svc_code api_watch_open(svc_ctx *c, const void *req, void **state, svc_status *st);
svc_code api_watch_next(svc_ctx *c, void *state, void *resp, int *done, svc_status *st);
void api_watch_close(svc_ctx *c, void *state);
svc_code api_ack_delisting(svc_ctx *c, const void *req, void *resp, svc_status *st);
svc_code api_report_sales(svc_ctx *c, const void *req, void *resp, svc_status *st);
svc_code api_undo_sale(svc_ctx *c, const void *req, void *resp, svc_status *st);
svc_code api_report_problem(svc_ctx *c, const void *req, void *resp, svc_status *st);
svc_code api_query_reports_open(svc_ctx *c, const void *req, void **state, svc_status *st);
svc_code api_query_reports_next(svc_ctx *c, void *state, void *resp, int *done, svc_status *st);
svc_code api_delisting_compliance(svc_ctx *c, const void *req, void *resp, svc_status *st);

/* The issuing key of profile (REP_PROFILE_MAC / _SIG) on this node: the
 * deployment's (ActivateKey) when there is one, else the keyring's active
 * key. 0 with st set when it cannot issue: compromised, or not on this
 * node's keyring (even after a reload). */
unsigned svc_issuing_key(svc_ctx *c, int profile, svc_status *st);

/* RegistryService key management (keys_api.c). */
svc_code api_list_keys(svc_ctx *c, const void *req, void *resp, svc_status *st);
svc_code api_activate_key(svc_ctx *c, const void *req, void *resp, svc_status *st);
svc_code api_compromise_key(svc_ctx *c, const void *req, void *resp, svc_status *st);

#endif
