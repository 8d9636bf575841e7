/*
 * merkle.h - the audit log's Merkle tree, RFC 6962 / RFC 9162 section 2:
 *
 *   leaf hash  SHA-256(0x00 || entry)
 *   node hash  SHA-256(0x01 || left || right)
 *   MTH(D[n])  splits at k, the largest power of two below n.
 *
 * Pure like the rest of codec/: the tree's hashes live wherever the caller
 * keeps them. A caller stores the hash of every complete, aligned subtree
 * (level L, index i covers leaves [i*2^L, (i+1)*2^L)); proofs and roots of
 * any size are built from those through a merkle_get callback. Appending
 * goes through a merkle_frontier: the at most 64 hashes of the tree's
 * right edge, enough to add a leaf and to compute the root.
 */
#ifndef TC_MERKLE_H
#define TC_MERKLE_H

#include <stddef.h>
#include <stdint.h>

#define MERKLE_HASH_BYTES 32
#define MERKLE_MAX_PROOF 64 /* hashes in any proof of a tree below 2^63 leaves */

typedef uint8_t merkle_hash[MERKLE_HASH_BYTES];

void merkle_leaf_hash(const void *entry, size_t len, merkle_hash out);
void merkle_node_hash(const merkle_hash left, const merkle_hash right, merkle_hash out);

/* The hash of the complete subtree at (level, index); 0 on success. */
typedef int (*merkle_get)(void *ctx, unsigned level, uint64_t index, merkle_hash out);

/* MTH(D[0:size]); the empty tree's root is SHA-256(""). 0 on success,
 * else what get returned. */
int merkle_root(merkle_get get, void *ctx, uint64_t size, merkle_hash out);

/* RFC 9162 2.1.3.1 PATH(index, D[0:size]), deepest hash first. Needs
 * index < size; *n gets the count. 0 on success, -1 on bad arguments,
 * else what get returned. */
int merkle_inclusion_proof(merkle_get get, void *ctx, uint64_t index, uint64_t size,
                           merkle_hash out[MERKLE_MAX_PROOF], size_t *n);

/* RFC 9162 2.1.4.1 PROOF(from, D[0:to]). Needs 0 < from <= to. */
int merkle_consistency_proof(merkle_get get, void *ctx, uint64_t from, uint64_t to,
                             merkle_hash out[MERKLE_MAX_PROOF], size_t *n);

/* RFC 9162 2.1.3.2: 1 when proof shows leaf at index in the tree of size
 * with root, else 0. */
int merkle_verify_inclusion(const merkle_hash leaf, uint64_t index, uint64_t size,
                            const merkle_hash *proof, size_t n, const merkle_hash root);

/* RFC 9162 2.1.4.2: 1 when proof shows the tree of size from (root1) is a
 * prefix of the tree of size to (root2), else 0. */
int merkle_verify_consistency(uint64_t from, uint64_t to, const merkle_hash root1,
                              const merkle_hash root2, const merkle_hash *proof, size_t n);

/* The right edge of a tree: edge[L] is valid when bit L of size is set. */
typedef struct merkle_frontier {
    uint64_t size;
    merkle_hash edge[64];
} merkle_frontier;

/* Called for each complete subtree an append finishes, leaf first. */
typedef void (*merkle_emit)(void *ctx, unsigned level, uint64_t index, const merkle_hash h);

/* A frontier for a stored tree of size: reads its edge through get. */
int merkle_frontier_load(merkle_frontier *f, uint64_t size, merkle_get get, void *ctx);
void merkle_frontier_add(merkle_frontier *f, const merkle_hash leaf, merkle_emit emit, void *ctx);
void merkle_frontier_root(const merkle_frontier *f, merkle_hash out);

/*
 * The text a signed tree head's Ed25519 signature covers:
 *
 *   tracecode-tree-head v1\nkey <kid>\nsize <n>\nroot <64 hex>\ntime <unix s>\n
 *
 * Returns its length (buf NULL or cap short: the length needed).
 */
#define MERKLE_HEAD_TEXT_MAX 160
size_t merkle_head_text(uint64_t size, const merkle_hash root, int64_t time_unix, unsigned kid,
                        char *buf, size_t cap);

#endif
