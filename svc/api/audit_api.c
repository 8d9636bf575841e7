/*
 * audit_api.c - AuditService: queries (each logged before it runs), tree
 * heads and proofs (docs/AUDIT.md).
 */
#include "audit_api.h"
#include "check.h"
#include "limit.h"
#include "merkle.h"

#include "tracecode/v1/audit.pb-c.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KIND_MAX 32
#define QUERY_LIMIT_MAX 1000
#define QUERY_LIMIT_DEFAULT 100
#define QUERY_ROUNDS 64 /* store queries per page before a short page ends it */

/* --- AuditService -------------------------------------------------------- */

svc_code audit_log_query(svc_ctx *c, const char *subject, const char *what, svc_status *st)
{
    char err[STORE_ERR_MAX], actor[SVC_ACTOR_MAX];
    store_err e;

    svc_actor(c, actor, sizeof(actor));
    e = store_audit_append(c->svc->store, "query", actor, subject, what, strlen(what), NULL, err,
                           sizeof(err));
    if (e == STORE_OK)
        return SVC_OK;
    return svc_fail(st, e == STORE_ERR_TIMEOUT ? SVC_DEADLINE_EXCEEDED : SVC_UNAVAILABLE,
                    "the query could not be recorded in the audit log, so it was not run: %s", err);
}

typedef struct query_state {
    store_audit_entry *e;
    size_t n, next;
} query_state;

/* Single-line printable text of at most max bytes ("" allowed). */
static int check_field(svc_status *st, const char *field, const char *s, size_t max)
{
    return *s == '\0' || check_text(st, field, s, max, 0);
}

svc_code api_query_audit_open(svc_ctx *c, const void *req, void **state, svc_status *st)
{
    const Tracecode__V1__QueryAuditRequest *q = req;
    store_audit_query sq = {.subject = q->subject, .kind = q->kind};
    query_state *qs = svc_alloc(c, sizeof(*qs));
    uint32_t limit = q->limit ? q->limit : QUERY_LIMIT_DEFAULT;
    char err[STORE_ERR_MAX], what[512];

    if (!qs)
        return svc_fail(st, SVC_RESOURCE_EXHAUSTED, "out of call memory");
    memset(qs, 0, sizeof(*qs));
    if (!check_field(st, "subject", q->subject, STORE_AUDIT_FIELD_MAX) ||
        !check_field(st, "kind", q->kind, KIND_MAX))
        return st->code;
    if (q->from_unix < 0 || q->to_unix < 0 || (q->to_unix && q->to_unix < q->from_unix))
        return svc_fail(st, SVC_INVALID_ARGUMENT,
                        "from_unix and to_unix must not be negative, and to_unix (0: now) not "
                        "before from_unix");
    if (q->from_unix > INT64_MAX / 1000 - 1 || q->to_unix > INT64_MAX / 1000 - 1)
        return svc_fail(st, SVC_INVALID_ARGUMENT, "from_unix and to_unix are too large");
    if (limit > QUERY_LIMIT_MAX)
        return svc_fail(st, SVC_INVALID_ARGUMENT, "limit %u is over %d", limit, QUERY_LIMIT_MAX);
    if (*q->page_token) {
        char *end;
        if (strlen(q->page_token) > 20 || q->page_token[0] < '0' || q->page_token[0] > '9')
            return svc_fail(st, SVC_INVALID_ARGUMENT,
                            "page_token must be the index after the last entry received");
        sq.start = strtoull(q->page_token, &end, 10);
        if (*end)
            return svc_fail(st, SVC_INVALID_ARGUMENT,
                            "page_token must be the index after the last entry received");
    }
    sq.from_ms = q->from_unix * 1000;
    sq.to_ms = q->to_unix ? q->to_unix * 1000 + 999 : 0;
    snprintf(what, sizeof(what),
             "QueryAudit subject=%s kind=%s from_unix=%" PRId64 " to_unix=%" PRId64
             " limit=%u page_token=%s",
             q->subject, q->kind, q->from_unix, q->to_unix, limit, q->page_token);
    if (audit_log_query(c, q->subject, what, st) != SVC_OK)
        return st->code;
    if (!(qs->e = svc_alloc(c, limit * sizeof(*qs->e))))
        return svc_fail(st, SVC_RESOURCE_EXHAUSTED, "out of call memory");

    /* Fill one page: a short page means there is no more. */
    for (int round = 0; round < QUERY_ROUNDS && qs->n < limit; round++) {
        store_audit_entry *e;
        size_t n;
        uint64_t next;
        store_err se;
        sq.limit = limit - (uint32_t)qs->n;
        se = store_audit_query_run(c->svc->store, &sq, &e, &n, &next, err, sizeof(err));
        if (se)
            return svc_store_fail(st, se, err);
        for (size_t i = 0; i < n && qs->n < limit; i++) { /* into the call's arena */
            store_audit_entry *x = &qs->e[qs->n++];
            *x = e[i];
            x->text = svc_alloc(c, e[i].len + 1);
            if (!x->text) {
                store_audit_entries_free(e, n);
                return svc_fail(st, SVC_RESOURCE_EXHAUSTED, "out of call memory");
            }
            memcpy(x->text, e[i].text, e[i].len + 1);
            x->body = e[i].body ? x->text + (e[i].body - e[i].text) : NULL;
        }
        store_audit_entries_free(e, n);
        if (next == UINT64_MAX)
            break;
        sq.start = next;
    }
    *state = qs;
    return SVC_OK;
}

svc_code api_query_audit_next(svc_ctx *c, void *state, void *resp, int *done, svc_status *st)
{
    query_state *qs = state;
    Tracecode__V1__QueryAuditResponse *resp_ = resp;
    Tracecode__V1__AuditEntry *out;
    store_audit_entry *e;
    uint8_t *leaf;

    if (qs->next >= qs->n) {
        *done = SVC_STREAM_END;
        return SVC_OK;
    }
    e = &qs->e[qs->next++];
    /* At most a page (QUERY_LIMIT_MAX) of these per call. */
    leaf = svc_alloc(c, MERKLE_HASH_BYTES);
    out = resp_->entry = svc_alloc(c, sizeof(*out));
    if (!leaf || !out)
        return svc_fail(st, SVC_RESOURCE_EXHAUSTED, "out of call memory");
    tracecode__v1__audit_entry__init(out);
    merkle_leaf_hash(e->text, e->len, leaf);
    out->index = e->index;
    out->time_unix = e->time_ms / 1000;
    out->kind = e->kind;
    out->actor = e->actor;
    out->subject = e->subject;
    out->body.data = (uint8_t *)e->text;
    out->body.len = e->len;
    out->leaf_hash.data = leaf;
    out->leaf_hash.len = MERKLE_HASH_BYTES;
    *done = qs->next >= qs->n;
    return SVC_OK;
}

static svc_code head_of(svc_ctx *c, store_tree_head *h, svc_status *st)
{
    char err[STORE_ERR_MAX];
    store_err e = store_audit_head(c->svc->store, h, err, sizeof(err));

    if (e)
        return svc_store_fail(st, e, err);
    if (h->size == 0)
        return svc_fail(st, SVC_NOT_FOUND,
                        "no tree head has been signed yet (the log is empty, or no node has "
                        "sequenced it)");
    return SVC_OK;
}

svc_code api_get_tree_head(svc_ctx *c, const void *req, void *resp, svc_status *st)
{
    Tracecode__V1__GetTreeHeadResponse *resp_ = resp;
    Tracecode__V1__TreeHead *out = resp_->tree_head = svc_alloc(c, sizeof(*out));
    store_tree_head *h = svc_alloc(c, sizeof(*h));

    (void)req;
    if (!h || !out)
        return svc_fail(st, SVC_RESOURCE_EXHAUSTED, "out of call memory");
    tracecode__v1__tree_head__init(out);
    if (head_of(c, h, st))
        return st->code;
    out->size = h->size;
    out->root_hash.data = h->root;
    out->root_hash.len = sizeof(h->root);
    out->time_unix = h->time_unix;
    out->key_id = h->kid;
    out->signature.data = h->sig;
    out->signature.len = sizeof(h->sig);
    return SVC_OK;
}

/*
 * Proofs in two passes: the first runs the proof with a recording
 * merkle_get to learn which stored hashes it needs, one Redis round trip
 * fetches them all, the second runs it again on those.
 */
#define WANT_MAX 512
typedef struct want {
    unsigned level[WANT_MAX];
    uint64_t index[WANT_MAX];
    uint8_t hash[WANT_MAX][MERKLE_HASH_BYTES];
    size_t n;
    int fetched;
} want;

static int want_get(void *ctx, unsigned level, uint64_t index, merkle_hash out)
{
    want *w = ctx;

    for (size_t i = 0; i < w->n; i++)
        if (w->level[i] == level && w->index[i] == index) {
            memcpy(out, w->hash[i], MERKLE_HASH_BYTES);
            return 0;
        }
    if (w->fetched || w->n == WANT_MAX)
        return 2;
    w->level[w->n] = level;
    w->index[w->n++] = index;
    memset(out, 0, MERKLE_HASH_BYTES);
    return 0;
}

/* The hashes of both proof responses (their messages differ only in name). */
typedef struct proof_hashes {
    size_t *n;
    ProtobufCBinaryData **v;
} proof_hashes;

static svc_code proof_out(svc_ctx *c, want *w, int (*prove)(want *, merkle_hash *, size_t *),
                          proof_hashes out, svc_status *st)
{
    char err[STORE_ERR_MAX];
    merkle_hash *p = svc_alloc(c, MERKLE_MAX_PROOF * sizeof(merkle_hash));
    size_t n = 0;
    store_err e;

    if (!p)
        return svc_fail(st, SVC_RESOURCE_EXHAUSTED, "out of call memory");
    if (prove(w, p, &n) != 0)
        return svc_fail(st, SVC_INTERNAL, "the proof needs more stored hashes than expected");
    e = store_audit_hashes(c->svc->store, w->level, w->index, w->n, &w->hash[0][0], err,
                           sizeof(err));
    if (e)
        return svc_store_fail(st, e, err);
    w->fetched = 1;
    if (prove(w, p, &n) != 0)
        return svc_fail(st, SVC_INTERNAL, "a stored subtree hash is missing");
    *out.v = svc_alloc(c, (n ? n : 1) * sizeof(**out.v));
    if (!*out.v)
        return svc_fail(st, SVC_RESOURCE_EXHAUSTED, "out of call memory");
    for (size_t i = 0; i < n; i++) {
        (*out.v)[i].data = p[i];
        (*out.v)[i].len = MERKLE_HASH_BYTES;
    }
    *out.n = n;
    return SVC_OK;
}

typedef struct proof_want {
    want w; /* first: the prove functions get &x->w */
    uint64_t index, size, from;
} proof_want;

static int prove_inclusion(want *w, merkle_hash *p, size_t *n)
{
    proof_want *x = (proof_want *)w;
    return merkle_inclusion_proof(want_get, w, x->index, x->size, p, n);
}

static int prove_consistency(want *w, merkle_hash *p, size_t *n)
{
    proof_want *x = (proof_want *)w;
    return merkle_consistency_proof(want_get, w, x->from, x->size, p, n);
}

/* A proof's state for a tree of size (0: the signed head's), which must
 * be within the signed head; NULL with st set otherwise. */
static proof_want *proof_start(svc_ctx *c, uint64_t size, const char *field, svc_status *st)
{
    proof_want *x = svc_alloc(c, sizeof(*x));
    store_tree_head h;

    if (!x) {
        svc_fail(st, SVC_RESOURCE_EXHAUSTED, "out of call memory");
        return NULL;
    }
    if (head_of(c, &h, st))
        return NULL;
    memset(x, 0, sizeof(*x));
    x->size = size ? size : h.size;
    if (x->size > h.size) {
        svc_fail(st, SVC_OUT_OF_RANGE,
                 "%s %" PRIu64 " is beyond the signed tree (size %" PRIu64 ")", field, x->size,
                 h.size);
        return NULL;
    }
    return x;
}

svc_code api_get_inclusion_proof(svc_ctx *c, const void *req, void *resp, svc_status *st)
{
    const Tracecode__V1__GetInclusionProofRequest *q = req;
    proof_want *x = proof_start(c, q->tree_size, "tree_size", st);

    if (!x)
        return st->code;
    x->index = q->index;
    if (x->index >= x->size)
        return svc_fail(st, SVC_OUT_OF_RANGE, "index %" PRIu64 " is not in a tree of size %" PRIu64,
                        x->index, x->size);
    Tracecode__V1__GetInclusionProofResponse *out = resp;
    return proof_out(c, &x->w, prove_inclusion, (proof_hashes){&out->n_hashes, &out->hashes}, st);
}

svc_code api_get_consistency_proof(svc_ctx *c, const void *req, void *resp, svc_status *st)
{
    const Tracecode__V1__GetConsistencyProofRequest *q = req;
    proof_want *x = proof_start(c, q->to_size, "to_size", st);

    if (!x)
        return st->code;
    x->from = q->from_size;
    if (x->from == 0 || x->from > x->size)
        return svc_fail(st, SVC_INVALID_ARGUMENT,
                        "from_size must be 1 .. to_size (%" PRIu64 "), not %" PRIu64, x->size,
                        x->from);
    Tracecode__V1__GetConsistencyProofResponse *out = resp;
    return proof_out(c, &x->w, prove_consistency, (proof_hashes){&out->n_hashes, &out->hashes}, st);
}
