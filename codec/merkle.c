/*
 * merkle.c - RFC 6962 / 9162 Merkle tree hashing, proofs and their checks.
 *
 * Every range the RFC's recursion asks for is [a, b) with a aligned to the
 * smallest power of two not below b - a, so it is either one stored
 * complete subtree or splits into one on the left and a smaller such range
 * on the right: at most 64 lookups a range.
 */
#include "merkle.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

void merkle_leaf_hash(const void *entry, size_t len, merkle_hash out)
{
    static const uint8_t zero = 0x00;
    EVP_MD_CTX *c = EVP_MD_CTX_new();

    /* Only allocation can fail here; a zero hash then fails every check. */
    if (!c || !EVP_DigestInit_ex(c, EVP_sha256(), NULL) || !EVP_DigestUpdate(c, &zero, 1) ||
        !EVP_DigestUpdate(c, entry, len) || !EVP_DigestFinal_ex(c, out, NULL))
        memset(out, 0, MERKLE_HASH_BYTES);
    EVP_MD_CTX_free(c);
}

void merkle_node_hash(const merkle_hash left, const merkle_hash right, merkle_hash out)
{
    uint8_t buf[1 + 2 * MERKLE_HASH_BYTES];

    buf[0] = 0x01;
    memcpy(buf + 1, left, MERKLE_HASH_BYTES);
    memcpy(buf + 1 + MERKLE_HASH_BYTES, right, MERKLE_HASH_BYTES);
    SHA256(buf, sizeof(buf), out);
}

static int is_pow2(uint64_t n)
{
    return n && !(n & (n - 1));
}

/* The largest power of two strictly below n, for n >= 2. */
static uint64_t split(uint64_t n)
{
    return (uint64_t)1 << (63 - __builtin_clzll(n - 1));
}

/* MTH(D[a:b]) for b > a, a aligned as above. */
static int range_hash(merkle_get get, void *ctx, uint64_t a, uint64_t b, merkle_hash out)
{
    merkle_hash l;
    uint64_t k;
    int rc;

    if (is_pow2(b - a)) {
        unsigned level = (unsigned)__builtin_ctzll(b - a);
        return get(ctx, level, a >> level, out);
    }
    k = split(b - a);
    if ((rc = get(ctx, (unsigned)__builtin_ctzll(k), a / k, l)) != 0)
        return rc;
    if ((rc = range_hash(get, ctx, a + k, b, out)) != 0)
        return rc;
    merkle_node_hash(l, out, out);
    return 0;
}

int merkle_root(merkle_get get, void *ctx, uint64_t size, merkle_hash out)
{
    if (size == 0) {
        SHA256((const uint8_t *)"", 0, out);
        return 0;
    }
    return range_hash(get, ctx, 0, size, out);
}

/* Proof hashes are found top down; the RFC lists them bottom up. */
static void reverse(merkle_hash *h, size_t n)
{
    merkle_hash t;

    for (size_t i = 0; i < n / 2; i++) {
        memcpy(t, h[i], MERKLE_HASH_BYTES);
        memcpy(h[i], h[n - 1 - i], MERKLE_HASH_BYTES);
        memcpy(h[n - 1 - i], t, MERKLE_HASH_BYTES);
    }
}

int merkle_inclusion_proof(merkle_get get, void *ctx, uint64_t index, uint64_t size,
                           merkle_hash out[MERKLE_MAX_PROOF], size_t *n)
{
    uint64_t a = 0, b = size;
    int rc;

    *n = 0;
    if (index >= size || size > (uint64_t)1 << 62)
        return -1;
    while (b - a > 1) {
        uint64_t k = split(b - a);
        if (index < a + k) {
            rc = range_hash(get, ctx, a + k, b, out[(*n)++]);
            b = a + k;
        } else {
            rc = range_hash(get, ctx, a, a + k, out[(*n)++]);
            a += k;
        }
        if (rc)
            return rc;
    }
    reverse(out, *n);
    return 0;
}

int merkle_consistency_proof(merkle_get get, void *ctx, uint64_t from, uint64_t to,
                             merkle_hash out[MERKLE_MAX_PROOF], size_t *n)
{
    uint64_t a = 0, b = to, m = from;
    int whole = 1, rc = 0;

    *n = 0;
    if (from == 0 || from > to || to > (uint64_t)1 << 62)
        return -1;
    for (;;) {
        uint64_t k;
        if (m == b - a) {
            if (!whole)
                rc = range_hash(get, ctx, a, b, out[(*n)++]);
            break;
        }
        k = split(b - a);
        if (m <= k) {
            rc = range_hash(get, ctx, a + k, b, out[(*n)++]);
            b = a + k;
        } else {
            rc = range_hash(get, ctx, a, a + k, out[(*n)++]);
            m -= k;
            a += k;
            whole = 0;
        }
        if (rc)
            return rc;
    }
    if (rc)
        return rc;
    reverse(out, *n);
    return 0;
}

static int same(const merkle_hash x, const merkle_hash y)
{
    return CRYPTO_memcmp(x, y, MERKLE_HASH_BYTES) == 0;
}

int merkle_verify_inclusion(const merkle_hash leaf, uint64_t index, uint64_t size,
                            const merkle_hash *proof, size_t n, const merkle_hash root)
{
    uint64_t fn = index, sn;
    merkle_hash r;

    if (index >= size)
        return 0;
    sn = size - 1;
    memcpy(r, leaf, MERKLE_HASH_BYTES);
    for (size_t i = 0; i < n; i++) {
        if (sn == 0)
            return 0;
        if ((fn & 1) || fn == sn) {
            merkle_node_hash(proof[i], r, r);
            while (!(fn & 1) && fn != 0) {
                fn >>= 1;
                sn >>= 1;
            }
        } else {
            merkle_node_hash(r, proof[i], r);
        }
        fn >>= 1;
        sn >>= 1;
    }
    return sn == 0 && same(r, root);
}

int merkle_verify_consistency(uint64_t from, uint64_t to, const merkle_hash root1,
                              const merkle_hash root2, const merkle_hash *proof, size_t n)
{
    merkle_hash fr, sr;
    uint64_t fn, sn;
    size_t i = 0;

    if (from == 0 || from > to)
        return 0;
    if (from == to)
        return n == 0 && same(root1, root2);
    if (n == 0)
        return 0;
    /* A first tree of 2^k leaves is a subtree of the second: its root
     * starts the path. */
    if (is_pow2(from)) {
        memcpy(fr, root1, MERKLE_HASH_BYTES);
    } else {
        memcpy(fr, proof[0], MERKLE_HASH_BYTES);
        i = 1;
    }
    memcpy(sr, fr, MERKLE_HASH_BYTES);
    fn = from - 1;
    sn = to - 1;
    while (fn & 1) {
        fn >>= 1;
        sn >>= 1;
    }
    for (; i < n; i++) {
        if (sn == 0)
            return 0;
        if ((fn & 1) || fn == sn) {
            merkle_node_hash(proof[i], fr, fr);
            merkle_node_hash(proof[i], sr, sr);
            while (!(fn & 1) && fn != 0) {
                fn >>= 1;
                sn >>= 1;
            }
        } else {
            merkle_node_hash(sr, proof[i], sr);
        }
        fn >>= 1;
        sn >>= 1;
    }
    return sn == 0 && same(fr, root1) && same(sr, root2);
}

int merkle_frontier_load(merkle_frontier *f, uint64_t size, merkle_get get, void *ctx)
{
    int rc;

    memset(f, 0, sizeof(*f));
    for (unsigned level = 0; level < 64; level++)
        if (((size >> level) & 1) && (rc = get(ctx, level, (size >> level) - 1, f->edge[level])))
            return rc;
    f->size = size;
    return 0;
}

void merkle_frontier_add(merkle_frontier *f, const merkle_hash leaf, merkle_emit emit, void *ctx)
{
    merkle_hash carry;
    unsigned level = 0;

    memcpy(carry, leaf, MERKLE_HASH_BYTES);
    if (emit)
        emit(ctx, 0, f->size, carry);
    while ((f->size >> level) & 1) {
        merkle_node_hash(f->edge[level], carry, carry);
        level++;
        if (emit)
            emit(ctx, level, ((f->size + 1) >> level) - 1, carry);
    }
    memcpy(f->edge[level], carry, MERKLE_HASH_BYTES);
    f->size++;
}

void merkle_frontier_root(const merkle_frontier *f, merkle_hash out)
{
    int have = 0;

    if (f->size == 0) {
        SHA256((const uint8_t *)"", 0, out);
        return;
    }
    for (unsigned level = 0; level < 64; level++) {
        if (!((f->size >> level) & 1))
            continue;
        if (have) {
            merkle_node_hash(f->edge[level], out, out);
        } else {
            memcpy(out, f->edge[level], MERKLE_HASH_BYTES);
            have = 1;
        }
    }
}

size_t merkle_head_text(uint64_t size, const merkle_hash root, int64_t time_unix, unsigned kid,
                        char *buf, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    char r[2 * MERKLE_HASH_BYTES + 1];
    int n;

    for (size_t i = 0; i < MERKLE_HASH_BYTES; i++) {
        r[2 * i] = hex[root[i] >> 4];
        r[2 * i + 1] = hex[root[i] & 15];
    }
    r[sizeof(r) - 1] = '\0';
    n = snprintf(buf, buf ? cap : 0,
                 "tracecode-tree-head v1\nkey %u\nsize %" PRIu64 "\nroot %s\ntime %" PRId64 "\n",
                 kid, size, r, time_unix);
    return n < 0 ? 0 : (size_t)n;
}
