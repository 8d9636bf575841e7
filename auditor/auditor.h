/*
 * auditor.h - check tracecode's audit log as an outside auditor would,
 * with nothing of tracecode's but this library and codec/ (SHA-256, the
 * RFC 9162 tree, Ed25519 through OpenSSL's libcrypto). No network, no
 * gRPC: the caller fetches the tree head, the entries and the proofs
 * (tracectl's `audit verify` over gRPC; an auditor's own client over
 * the same public AuditService), and this library says whether they hold.
 *
 *   1. The tree head is signed by a key of the deployment:
 *      auditor_head_check() against `tracekeys export-public` JSON.
 *   2. The log is an extension of a head saved before (nothing rewritten,
 *      nothing dropped): auditor_consistent() with a consistency proof.
 *      Heads are saved and read as text: auditor_head_format(), _parse().
 *   3. The entries, read in order from index 0, hash to the signed root:
 *      auditor_log_add() each body, then auditor_log_matches().
 *   4. One entry is in the tree: auditor_included() with its inclusion
 *      proof; used to name the entries that no longer match.
 *
 * Every check that fails says why in a sentence (why, whycap), for a
 * person who has to act on it. Nothing here allocates.
 */
#ifndef TC_AUDITOR_H
#define TC_AUDITOR_H

#include "codec.h"
#include "merkle.h"

#include <stddef.h>
#include <stdint.h>

/* A signed tree head: the tree of `size` entries with root `root`, signed
 * at `time` (Unix seconds) by the deployment's Ed25519 key `kid` over
 * merkle_head_text(). */
typedef struct auditor_head {
    uint64_t size;
    merkle_hash root;
    int64_t time;
    unsigned kid;
    uint8_t sig[CODEC_SIG_BYTES];
} auditor_head;

/* A head file: the signed text, then "signature <128 hex>\n". */
#define AUDITOR_HEAD_FILE_MAX (MERKLE_HEAD_TEXT_MAX + 16 + 2 * CODEC_SIG_BYTES)

/* The Ed25519 public key `kid` in `tracekeys export-public` JSON
 * ({"keys":[{"kid":2,"kind":"ed25519",...,"public":"<64 hex>"}, ...]}):
 * 0, or -1 when it is not there or not 32 bytes of hex. */
int auditor_public_key(const char *keys_json, unsigned kid, uint8_t pub[CODEC_PUB_BYTES]);

/* 0 when h is signed by its key in keys_json; -1 and why otherwise. what
 * names the head in the sentence ("the tree head", "the saved head"). */
int auditor_head_check(const char *keys_json, const auditor_head *h, const char *what, char *why,
                       size_t whycap);

/* h as a head file; the length it needs (without the NUL), like snprintf. */
size_t auditor_head_format(const auditor_head *h, char *buf, size_t cap);
/* A head file's text into h: 0, or -1 when it is not one. Nothing beyond
 * the signature line is read. */
int auditor_head_parse(const char *text, auditor_head *h);

/* 0 when `now` extends `old` (proof: the consistency proof from old->size
 * to now->size, as the log served it; none needed, n = 0, when old is
 * empty or the same size); -1 and why when the log shrank or its history
 * was rewritten. Both heads' signatures are the caller's to check first. */
int auditor_consistent(const auditor_head *old, const auditor_head *now, const merkle_hash *proof,
                       size_t n, char *why, size_t whycap);

/* 1 when entry `index`, whose leaf hash is `leaf` (auditor_log_add, or
 * merkle_leaf_hash of its body), is in the tree of h by proof. */
int auditor_included(const auditor_head *h, uint64_t index, const merkle_hash leaf,
                     const merkle_hash *proof, size_t n);

/* The log read in order from entry 0. */
typedef struct auditor_log {
    merkle_frontier f;
    uint64_t next; /* the index expected next */
} auditor_log;

void auditor_log_init(auditor_log *l);
/* Entry `index` with its canonical body (AuditEntry.body): 0 and its leaf
 * hash in leaf (may be NULL), or -1 and why when it is not the next one
 * (an entry is missing, or one came twice). */
int auditor_log_add(auditor_log *l, uint64_t index, const void *body, size_t len, merkle_hash leaf,
                    char *why, size_t whycap);
/* 1 when the entries added are exactly the tree of h (its size, its root). */
int auditor_log_matches(const auditor_log *l, const auditor_head *h);

#endif
