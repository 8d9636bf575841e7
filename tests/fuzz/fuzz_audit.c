/*
 * fuzz_audit.c - the audit log's parsers and proofs. Asserts: an entry
 * that parses has a body inside the text whose declared length matches;
 * over a tree built from the input's bytes, every leaf's inclusion proof
 * and a consistency proof verify, and the input's own bytes read as a
 * proof of anything never crash the checks; read as a head file, one that
 * parses is written back as the same text, hex in lower case (auditor/).
 */
#include "auditor.h"
#include "merkle.h"
#include "store.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct mem {
    merkle_hash h[8][64];
    uint64_t n[8];
} mem;

static void emit(void *ctx, unsigned level, uint64_t index, const merkle_hash h)
{
    mem *m = ctx;

    if (level < 8 && index < 64)
        memcpy(m->h[level][index], h, MERKLE_HASH_BYTES);
    if (level < 8)
        m->n[level] = index + 1;
}

static int get(void *ctx, unsigned level, uint64_t index, merkle_hash out)
{
    mem *m = ctx;

    if (level >= 8 || index >= m->n[level])
        return 1;
    memcpy(out, m->h[level][index], MERKLE_HASH_BYTES);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static mem m;
    store_audit_entry e;
    merkle_frontier f;
    merkle_hash root, leaf, proof[MERKLE_MAX_PROOF], r1;
    uint64_t n = 1 + (size ? data[0] % 17 : 0), k = 1 + (size > 1 ? data[1] % n : 0);
    size_t np;

    if (store_audit_parse((const char *)data, size, &e) == 0) {
        if (!e.body || e.body < (const char *)data ||
            e.body + e.body_len != (const char *)data + size)
            abort();
    }

    /* a tree of n leaves cut from the input */
    memset(&m, 0, sizeof(m));
    memset(&f, 0, sizeof(f));
    for (uint64_t i = 0; i < n; i++) {
        size_t off = size ? (size_t)(i * 7) % size : 0, len = size - off < 9 ? size - off : 9;
        merkle_leaf_hash(data + off, len, leaf);
        merkle_frontier_add(&f, leaf, emit, &m);
    }
    merkle_frontier_root(&f, root);
    if (merkle_root(get, &m, n, r1) != 0 || memcmp(r1, root, sizeof(root)) != 0)
        abort();
    for (uint64_t i = 0; i < n; i++) {
        if (merkle_inclusion_proof(get, &m, i, n, proof, &np) != 0 ||
            !merkle_verify_inclusion(m.h[0][i], i, n, proof, np, root))
            abort();
    }
    if (merkle_root(get, &m, k, r1) != 0 ||
        merkle_consistency_proof(get, &m, k, n, proof, &np) != 0 ||
        !merkle_verify_consistency(k, n, r1, root, proof, np))
        abort();

    /* the input as a proof: any answer, no crash */
    np = size / MERKLE_HASH_BYTES < MERKLE_MAX_PROOF ? size / MERKLE_HASH_BYTES : MERKLE_MAX_PROOF;
    memcpy(proof, data, np * MERKLE_HASH_BYTES);
    (void)merkle_verify_inclusion(leaf, k - 1, n, proof, np, root);
    (void)merkle_verify_consistency(k, n, r1, root, proof, np);

    /* the input as a head file, and as public keys (auditor/): a head
     * that parses is written back as the text it was read from (hex
     * digits in lower case; the last newline may be missing) */
    {
        static char text[2048], again[AUDITOR_HEAD_FILE_MAX + 1];
        uint8_t pub[CODEC_PUB_BYTES];
        auditor_head h, h2;
        size_t tn = size < sizeof(text) - 1 ? size : sizeof(text) - 1, an;
        memcpy(text, data, tn);
        text[tn] = '\0';
        if (auditor_head_parse(text, &h) == 0) {
            an = auditor_head_format(&h, again, sizeof(again));
            if (an >= sizeof(again) || strncasecmp(again, text, an - 1) != 0 ||
                auditor_head_parse(again, &h2) != 0 || memcmp(&h, &h2, sizeof(h)) != 0)
                abort();
        }
        (void)auditor_public_key(text, k, pub);
    }
    return 0;
}
