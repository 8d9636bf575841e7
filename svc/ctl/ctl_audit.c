/*
 * ctl_audit.c - audit head | query | verify: the audit log checked against signed tree heads
 * and proofs, as an outside auditor would.
 */
#include "ctl.h"

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

int cmd_audit(rpc_client *cl, const opts *o, int argc, char **argv)
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
