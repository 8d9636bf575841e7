/*
 * ctl_audit.c - audit head | query | verify: the audit log checked against signed tree heads
 * and proofs, as an outside auditor would.
 */
#include "ctl.h"

/* --- audit ------------------------------------------------------------------- */

typedef auditor_head head;

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

/* 0 when h is signed by its key in keys; else why not. */
static int head_check(const char *keys, const head *h, const char *what)
{
    char why[256];

    if (auditor_head_check(keys, h, what, why, sizeof(why)) == 0)
        return 0;
    fprintf(stderr, "tracectl: audit: %s\n", why);
    return CTL_NO;
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
        return CTL_NO;
    }
    h->size = t->size;
    memcpy(h->root, t->root_hash.data, sizeof(h->root));
    h->time = t->time_unix;
    h->kid = t->key_id;
    memcpy(h->sig, t->signature.data, sizeof(h->sig));
    rpc_msg_free(resp);
    return 0;
}

/* A head file (auditor_head_format), written whole or not at all. */
static int save_head(const char *path, const head *h)
{
    char text[AUDITOR_HEAD_FILE_MAX + 1], tmp[4096];
    FILE *f;

    auditor_head_format(h, text, sizeof(text));
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if (!(f = fopen(tmp, "w")))
        return -1;
    fputs(text, f);
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
        fclose(f);
        return -1;
    }
    fclose(f);
    return rename(tmp, path);
}

static int read_head(const char *path, head *h)
{
    char *t = slurp(path, 4096);
    int rc = t ? auditor_head_parse(t, h) : -1;

    free(t);
    return rc;
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
    auditor_log log;
    merkle_hash *leaf; /* verify: recomputed leaf hashes (one: the one entry's) */
    int verify, one, broken;
} entries;

static int on_entry(void *arg, const ProtobufCMessage *msg)
{
    entries *x = arg;
    const Tracecode__V1__AuditEntry *e = ((const Tracecode__V1__QueryAuditResponse *)msg)->entry;
    char why[256] = "";

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
    if (x->next >= x->stop)
        return 1;
    if (x->one && e->index != x->next)
        snprintf(why, sizeof(why), "entry %" PRIu64 " is missing (the log skips to %" PRIu64 ")",
                 x->next, e->index);
    else if (x->one)
        merkle_leaf_hash(e->body.data, e->body.len, x->leaf[0]);
    else if (auditor_log_add(&x->log, e->index, e->body.data, e->body.len, x->leaf[x->next], why,
                             sizeof(why)) == 0)
        why[0] = '\0';
    if (why[0]) {
        fprintf(stderr, "tracectl: audit: %s\n", why);
        x->broken = 1;
        return 1;
    }
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
            return CTL_NO;
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
        return CTL_NO;
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
    ok = n >= 0 && auditor_included(h, index, leaf, proof, (size_t)n);
    rpc_msg_free(resp);
    return ok;
}

static int consistent(rpc_client *cl, const head *old, const head *h)
{
    Tracecode__V1__GetConsistencyProofRequest q =
        TRACECODE__V1__GET_CONSISTENCY_PROOF_REQUEST__INIT;
    merkle_hash proof[MERKLE_MAX_PROOF];
    ProtobufCMessage *resp = NULL;
    rpc_result r;
    char why[256];
    long n = 0;
    int bad;

    /* A proof exists only from a non-empty tree to a larger one. */
    if (old->size > 0 && old->size < h->size) {
        q.from_size = old->size;
        q.to_size = h->size;
        if (rpc_call_unary(cl, "/tracecode.v1.AuditService/GetConsistencyProof", &q.base,
                           &tracecode__v1__get_consistency_proof_response__descriptor, &resp, &r))
            return rpc_failed(&r);
        {
            const Tracecode__V1__GetConsistencyProofResponse *p = (const void *)resp;
            n = proof_of(p->n_hashes, p->hashes, proof);
        }
    }
    bad = n < 0 ? (snprintf(why, sizeof(why),
                            "the consistency proof is not a list of SHA-256 "
                            "hashes"),
                   1)
                : auditor_consistent(old, h, proof, (size_t)n, why, sizeof(why)) != 0;
    rpc_msg_free(resp);
    if (bad) {
        fprintf(stderr, "tracectl: audit: %s\n", why);
        return CTL_NO;
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
            return rpc;
        fprintf(stderr,
                "tracectl: audit: entry %" PRIu64 " does not match the signed tree head: it was "
                "changed after it was logged\n",
                i);
        bad++;
    }
    if (!bad)
        fprintf(stderr, "tracectl: audit: the entries do not hash to the signed root, yet each "
                        "one's inclusion proof verifies: the stored tree is inconsistent\n");
    return CTL_NO;
}

static int audit_verify(rpc_client *cl, const opts *o)
{
    char *keys;
    head h, old;
    entries x;
    int rc;

    if (!o->public_keys)
        return fail("audit verify needs --public-keys FILE (tracekeys export-public)");
    if (!(keys = slurp(o->public_keys, 1 << 20)))
        return fail_local("cannot read public keys %s", o->public_keys);
    memset(&x, 0, sizeof(x));
    if ((rc = get_head(cl, &h)) || (rc = head_check(keys, &h, "the tree head")))
        goto out;
    printf("tree head: size %" PRIu64 ", signed at %" PRId64 " by key %u: signature ok\n", h.size,
           h.time, h.kid);
    if (o->since) {
        if (read_head(o->since, &old) != 0) {
            rc = fail_local("cannot read a tree head from %s", o->since);
            goto out;
        }
        if ((rc = head_check(keys, &old, "the saved head")) || (rc = consistent(cl, &old, &h)))
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
        x.leaf = malloc(sizeof(*x.leaf));
        x.one = 1;
        x.next = (uint64_t)o->index;
        x.stop = x.next + 1;
        if (!x.leaf) {
            rc = fail_local("out of memory");
            goto out;
        }
        if ((rc = fetch(cl, &x, "", 1)))
            goto out;
        if (!included(cl, &h, x.stop - 1, x.leaf[0], &rpc)) {
            rc = rpc ? rpc : CTL_NO;
            if (!rpc)
                fprintf(stderr,
                        "tracectl: audit: entry %lld does not match the signed tree head: it was "
                        "changed after it was logged\n",
                        o->index);
            goto out;
        }
        printf("entry %lld is in the tree: inclusion proof ok\n", o->index);
    } else {
        /* Every leaf hash is kept to name the entries that do not match. */
        x.leaf =
            h.size < SIZE_MAX / sizeof(*x.leaf) ? malloc(sizeof(*x.leaf) * (h.size + 1)) : NULL;
        if (!x.leaf) {
            rc = fail_local("cannot hold the %" PRIu64 " entries' hashes in memory", h.size);
            goto out;
        }
        auditor_log_init(&x.log);
        x.stop = h.size;
        if ((rc = fetch(cl, &x, "", 1000)))
            goto out;
        if (!auditor_log_matches(&x.log, &h)) {
            rc = locate(cl, &h, &x);
            goto out;
        }
        printf("all %" PRIu64 " entries hash to the signed root\n", h.size);
    }
    if (o->out && save_head(o->out, &h) != 0) {
        rc = fail_local("cannot save the tree head to %s: %s", o->out, strerror(errno));
        goto out;
    }
    printf("audit log verified\n");
    rc = 0;
out:
    free(x.leaf);
    free(keys);
    return rc;
}

int cmd_audit(rpc_client *cl, const opts *o, int argc, char **argv)
{
    head h;
    int rc;

    if (argc >= 1 && strcmp(argv[0], "head") == 0 && argc == 1) {
        if ((rc = get_head(cl, &h)))
            return rc;
        print_head(o, &h);
        if (o->out && save_head(o->out, &h) != 0)
            return fail_local("cannot save the tree head to %s: %s", o->out, strerror(errno));
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
