/*
 * test_merkle.c - the audit tree against the RFC 6962 reference vectors
 * (the certificate-transparency project's test data: eight leaves, the
 * root of every prefix, inclusion and consistency proofs), then against a
 * naive recursive MTH for every size, every leaf and every pair of sizes
 * up to a few dozen leaves, and with every proof hash flipped.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "merkle.h"
#include "testutil.h"

#include <openssl/sha.h>
#include <string.h>

static const char *const ct_leaves[] = {
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
};

static const char *const ct_roots[] = {
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};

/* index (0-based), tree size, proof */
static const struct {
    uint64_t index, size;
    const char *proof[3];
} ct_inclusion[] = {
    {0,
     8,
     {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
    {5,
     8,
     {"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
      "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
    {2, 3, {"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"}},
    {1,
     5,
     {"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
};

static const struct {
    uint64_t from, to;
    const char *proof[3];
} ct_consistency[] = {
    {1, 1, {NULL}},
    {1,
     8,
     {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
    {6,
     8,
     {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
      "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
    {2,
     5,
     {"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
};

/* An in-memory store of complete subtrees, filled by frontier appends,
 * as the service keeps them in Redis. */
#define MAXLEAVES 80
typedef struct tree {
    merkle_hash level[8][MAXLEAVES];
    uint64_t count[8];
    merkle_frontier f;
    int gets;
} tree;

static void emit(void *ctx, unsigned level, uint64_t index, const merkle_hash h)
{
    tree *t = ctx;

    assert_true(level < 8);
    assert_int_equal(index, t->count[level]); /* in order, no gaps */
    memcpy(t->level[level][t->count[level]++], h, MERKLE_HASH_BYTES);
}

static int get(void *ctx, unsigned level, uint64_t index, merkle_hash out)
{
    tree *t = ctx;

    t->gets++;
    if (level >= 8 || index >= t->count[level])
        return 7;
    memcpy(out, t->level[level][index], MERKLE_HASH_BYTES);
    return 0;
}

/* MTH as RFC 6962 writes it, over leaf hashes. */
static void naive(const merkle_hash *leaves, uint64_t n, merkle_hash out)
{
    merkle_hash l, r;
    uint64_t k = 1;

    if (n == 1) {
        memcpy(out, leaves[0], MERKLE_HASH_BYTES);
        return;
    }
    while (k * 2 < n)
        k *= 2;
    naive(leaves, k, l);
    naive(leaves + k, n - k, r);
    merkle_node_hash(l, r, out);
}

static void hex32(const char *hex, merkle_hash out)
{
    assert_int_equal(tu_unhex(hex, out, MERKLE_HASH_BYTES), MERKLE_HASH_BYTES);
}

static void ct_tree(tree *t)
{
    memset(t, 0, sizeof(*t));
    for (size_t i = 0; i < 8; i++) {
        uint8_t data[16];
        merkle_hash h;
        size_t n = tu_unhex(ct_leaves[i], data, sizeof(data));
        merkle_leaf_hash(data, n, h);
        merkle_frontier_add(&t->f, h, emit, t);
    }
}

static void test_ct_roots(void **state)
{
    tree t;
    merkle_hash want, got;
    merkle_frontier part = {0};

    (void)state;
    ct_tree(&t);
    for (uint64_t n = 0; n <= 8; n++) {
        hex32(ct_roots[n], want);
        assert_int_equal(merkle_root(get, &t, n, got), 0);
        assert_memory_equal(got, want, MERKLE_HASH_BYTES);
        /* the frontier of every prefix, loaded from storage, agrees */
        assert_int_equal(merkle_frontier_load(&part, n, get, &t), 0);
        merkle_frontier_root(&part, got);
        assert_memory_equal(got, want, MERKLE_HASH_BYTES);
    }
    merkle_frontier_root(&t.f, got);
    assert_memory_equal(got, want, MERKLE_HASH_BYTES);
}

static void test_ct_inclusion(void **state)
{
    tree t;

    (void)state;
    ct_tree(&t);
    for (size_t v = 0; v < sizeof(ct_inclusion) / sizeof(ct_inclusion[0]); v++) {
        merkle_hash proof[MERKLE_MAX_PROOF], want[3], root;
        size_t n = 0, nwant = 0;

        while (nwant < 3 && ct_inclusion[v].proof[nwant]) {
            hex32(ct_inclusion[v].proof[nwant], want[nwant]);
            nwant++;
        }
        assert_int_equal(
            merkle_inclusion_proof(get, &t, ct_inclusion[v].index, ct_inclusion[v].size, proof, &n),
            0);
        assert_int_equal(n, nwant);
        assert_memory_equal(proof, want, n * MERKLE_HASH_BYTES);
        hex32(ct_roots[ct_inclusion[v].size], root);
        assert_true(merkle_verify_inclusion(t.level[0][ct_inclusion[v].index],
                                            ct_inclusion[v].index, ct_inclusion[v].size, want,
                                            nwant, root));
    }
}

static void test_ct_consistency(void **state)
{
    tree t;

    (void)state;
    ct_tree(&t);
    for (size_t v = 0; v < sizeof(ct_consistency) / sizeof(ct_consistency[0]); v++) {
        merkle_hash proof[MERKLE_MAX_PROOF], want[3], r1, r2;
        size_t n = 0, nwant = 0;
        uint64_t from = ct_consistency[v].from, to = ct_consistency[v].to;

        while (nwant < 3 && ct_consistency[v].proof[nwant]) {
            hex32(ct_consistency[v].proof[nwant], want[nwant]);
            nwant++;
        }
        assert_int_equal(merkle_consistency_proof(get, &t, from, to, proof, &n), 0);
        assert_int_equal(n, nwant);
        assert_memory_equal(proof, want, n * MERKLE_HASH_BYTES);
        hex32(ct_roots[from], r1);
        hex32(ct_roots[to], r2);
        assert_true(merkle_verify_consistency(from, to, r1, r2, want, nwant));
        /* the wrong old root never verifies */
        hex32(ct_roots[from == 1 ? 2 : 1], r1);
        assert_false(merkle_verify_consistency(from, to, r1, r2, want, nwant));
    }
}

static void random_tree(tree *t, merkle_hash *leaves, uint64_t n, uint64_t seed)
{
    tu_rng rng = {seed};

    memset(t, 0, sizeof(*t));
    for (uint64_t i = 0; i < n; i++) {
        uint8_t data[24];
        size_t len = 8 + (size_t)(tu_next(&rng) % 16); /* distinct: starts with i */
        memcpy(data, &i, 8);
        tu_fill(&rng, data + 8, len - 8);
        merkle_leaf_hash(data, len, leaves[i]);
        merkle_frontier_add(&t->f, leaves[i], emit, t);
    }
}

/* Every leaf of every tree size up to MAXLEAVES: the proof verifies, and
 * fails with any proof hash flipped, another leaf or a hash short. */
static void test_inclusion_every_leaf(void **state)
{
    static tree t;
    merkle_hash leaves[MAXLEAVES];

    (void)state;
    random_tree(&t, leaves, MAXLEAVES, 6962);
    for (uint64_t size = 1; size <= MAXLEAVES; size++) {
        merkle_hash root, proof[MERKLE_MAX_PROOF];
        naive(leaves, size, root);
        for (uint64_t i = 0; i < size; i++) {
            size_t n;
            assert_int_equal(merkle_inclusion_proof(get, &t, i, size, proof, &n), 0);
            assert_true(merkle_verify_inclusion(leaves[i], i, size, proof, n, root));
            if (size > 1)
                assert_false(
                    merkle_verify_inclusion(leaves[(i + 1) % size], i, size, proof, n, root));
            for (size_t j = 0; j < n; j++) {
                proof[j][j % MERKLE_HASH_BYTES] ^= 0x40;
                assert_false(merkle_verify_inclusion(leaves[i], i, size, proof, n, root));
                proof[j][j % MERKLE_HASH_BYTES] ^= 0x40;
            }
            if (n > 0)
                assert_false(merkle_verify_inclusion(leaves[i], i, size, proof, n - 1, root));
        }
        assert_int_equal(merkle_inclusion_proof(get, &t, size, size, proof, &(size_t){0}), -1);
    }
}

static void test_consistency_every_pair(void **state)
{
    static tree t;
    merkle_hash leaves[MAXLEAVES], roots[MAXLEAVES + 1];
    const uint64_t max = 48;

    (void)state;
    random_tree(&t, leaves, max, 9162);
    for (uint64_t n = 1; n <= max; n++)
        naive(leaves, n, roots[n]);
    for (uint64_t from = 1; from <= max; from++) {
        for (uint64_t to = from; to <= max; to++) {
            merkle_hash proof[MERKLE_MAX_PROOF];
            size_t n;
            assert_int_equal(merkle_consistency_proof(get, &t, from, to, proof, &n), 0);
            assert_true(merkle_verify_consistency(from, to, roots[from], roots[to], proof, n));
            if (from == to)
                continue;
            /* a history rewritten anywhere before from breaks it */
            assert_false(merkle_verify_consistency(from, to, roots[from > 1 ? from - 1 : 2],
                                                   roots[to], proof, n));
            for (size_t j = 0; j < n; j++) {
                proof[j][0] ^= 1;
                assert_false(merkle_verify_consistency(from, to, roots[from], roots[to], proof, n));
                proof[j][0] ^= 1;
            }
        }
    }
    assert_int_equal(merkle_consistency_proof(get, &t, 0, 3, NULL, &(size_t){0}), -1);
    assert_int_equal(merkle_consistency_proof(get, &t, 4, 3, NULL, &(size_t){0}), -1);
}

/* A missing stored hash is reported, not papered over. */
static void test_get_errors_propagate(void **state)
{
    tree t;
    merkle_hash h, proof[MERKLE_MAX_PROOF];
    size_t n;

    (void)state;
    ct_tree(&t);
    assert_int_equal(merkle_root(get, &t, 9, h), 7);
    assert_int_equal(merkle_inclusion_proof(get, &t, 3, 12, proof, &n), 7);
    assert_int_equal(merkle_consistency_proof(get, &t, 3, 12, proof, &n), 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ct_roots),
        cmocka_unit_test(test_ct_inclusion),
        cmocka_unit_test(test_ct_consistency),
        cmocka_unit_test(test_inclusion_every_leaf),
        cmocka_unit_test(test_consistency_every_pair),
        cmocka_unit_test(test_get_errors_propagate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
