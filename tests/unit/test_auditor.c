/*
 * test_auditor.c - the outside auditor's library (auditor/) with nothing of
 * the service: a log of entries built here, heads signed here with an
 * Ed25519 key made at test time, proofs from codec's tree; then what a
 * dishonest or broken log does to each check - a wrong key, a flipped
 * signature, a rewritten or shrunk history, a missing, repeated or
 * changed entry, head files that are cut, padded or overflow.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "auditor.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#define LEAVES 23

typedef struct fx {
    char body[LEAVES][32];
    merkle_hash leaf[LEAVES];
    uint8_t seed[CODEC_KEY_BYTES], pub[CODEC_PUB_BYTES];
    char keys[512];
} fx;

static fx F;

/* The hash of the complete subtree at (level, index) over F.leaf. */
static int get(void *ctx, unsigned level, uint64_t index, merkle_hash out)
{
    merkle_hash l, r;

    (void)ctx;
    if (level == 0) {
        memcpy(out, F.leaf[index], sizeof(merkle_hash));
        return 0;
    }
    get(ctx, level - 1, 2 * index, l);
    get(ctx, level - 1, 2 * index + 1, r);
    merkle_node_hash(l, r, out);
    return 0;
}

/* A head of the first size entries, signed by key kid with F's seed. */
static void head_of(uint64_t size, unsigned kid, auditor_head *h)
{
    char text[MERKLE_HEAD_TEXT_MAX];
    size_t len;

    memset(h, 0, sizeof(*h));
    h->size = size;
    h->time = 1764720000 + (int64_t)size;
    h->kid = kid;
    assert_int_equal(merkle_root(get, NULL, size, h->root), 0);
    len = merkle_head_text(h->size, h->root, h->time, h->kid, text, sizeof(text));
    assert_int_equal(codec_ed25519_sign(F.seed, (const uint8_t *)text, len, h->sig), CODEC_OK);
}

static int setup(void **state)
{
    char hexpub[2 * CODEC_PUB_BYTES + 1];

    (void)state;
    for (int i = 0; i < LEAVES; i++) {
        snprintf(F.body[i], sizeof(F.body[i]), "entry %d", i);
        merkle_leaf_hash(F.body[i], strlen(F.body[i]), F.leaf[i]);
    }
    if (getrandom(F.seed, sizeof(F.seed), 0) != (ssize_t)sizeof(F.seed))
        return -1;
    if (codec_ed25519_public(F.seed, F.pub) != CODEC_OK)
        return -1;
    for (int i = 0; i < CODEC_PUB_BYTES; i++)
        snprintf(hexpub + 2 * i, 3, "%02x", F.pub[i]);
    /* As `tracekeys export-public` writes it: a MAC key has no public half. */
    snprintf(F.keys, sizeof(F.keys),
             "{\"format\":\"tracecode-public-keys/v1\",\"keys\":[{\"kid\":1,\"kind\":\"mac\","
             "\"state\":\"active\",\"created\":1},{\"kid\":12,\"kind\":\"ed25519\",\"state\":"
             "\"active\",\"created\":2,\"alg\":\"Ed25519\",\"public\":\"%s\"}]}\n",
             hexpub);
    return 0;
}

static void test_public_key(void **state)
{
    uint8_t pub[CODEC_PUB_BYTES];

    (void)state;
    assert_int_equal(auditor_public_key(F.keys, 12, pub), 0);
    assert_memory_equal(pub, F.pub, sizeof(pub));
    assert_int_equal(auditor_public_key(F.keys, 1, pub), -1); /* MAC */
    assert_int_equal(auditor_public_key(F.keys, 2, pub), -1); /* 12 is not 1 or 2 */
    assert_int_equal(auditor_public_key("{\"keys\":[{\"kid\":x,\"public\":\"00\"}]}", 0, pub), -1);
    assert_int_equal(auditor_public_key("{\"keys\":[{\"kid\":99999999999,\"public\":\"00\"}]}",
                                        (unsigned)(99999999999ULL & 0xffffffffu), pub),
                     -1); /* no wrap-around to a smaller id */
    assert_int_equal(auditor_public_key("{\"keys\":[{\"kid\":3,\"public\":\"abcd\"}]}", 3, pub),
                     -1); /* too short */
    assert_int_equal(auditor_public_key("", 3, pub), -1);
}

static void test_head_signature(void **state)
{
    auditor_head h, bad;
    char why[256];

    (void)state;
    head_of(LEAVES, 12, &h);
    assert_int_equal(auditor_head_check(F.keys, &h, "the tree head", why, sizeof(why)), 0);

    bad = h;
    bad.sig[5] ^= 1;
    assert_int_equal(auditor_head_check(F.keys, &bad, "the tree head", why, sizeof(why)), -1);
    assert_string_equal(why,
                        "the signature of the tree head (size 23) does not verify with key 12");
    bad = h;
    bad.size--; /* a head claiming another size under the same signature */
    assert_int_equal(auditor_head_check(F.keys, &bad, "the tree head", why, sizeof(why)), -1);
    bad = h;
    bad.root[0] ^= 0x80;
    assert_int_equal(auditor_head_check(F.keys, &bad, "the tree head", why, sizeof(why)), -1);
    bad = h;
    bad.time++;
    assert_int_equal(auditor_head_check(F.keys, &bad, "the tree head", why, sizeof(why)), -1);
    bad = h;
    bad.kid = 1; /* a MAC key signs nothing */
    assert_int_equal(auditor_head_check(F.keys, &bad, "the saved head", why, sizeof(why)), -1);
    assert_string_equal(why, "the saved head is signed by key 1, which is not in the public keys");
}

static void test_head_file(void **state)
{
    char text[AUDITOR_HEAD_FILE_MAX + 1], cut[AUDITOR_HEAD_FILE_MAX + 1];
    auditor_head h, back;
    size_t n;

    (void)state;
    head_of(7, 12, &h);
    n = auditor_head_format(&h, text, sizeof(text));
    assert_int_equal(n, strlen(text));
    assert_true(n <= AUDITOR_HEAD_FILE_MAX);
    assert_int_equal(auditor_head_format(&h, NULL, 0), n); /* sizing pass */
    assert_int_equal(auditor_head_parse(text, &back), 0);
    assert_memory_equal(&back, &h, sizeof(h));
    assert_non_null(strstr(text, "tracecode-tree-head v1\nkey 12\nsize 7\nroot "));

    /* Every cut of the file is refused, never read as a smaller head, and
     * nothing past the cut is read (the rest of the buffer is the head). */
    for (size_t i = 0; i + 1 < n; i++) {
        memcpy(cut, text, n + 1);
        cut[i] = '\0';
        assert_int_equal(auditor_head_parse(cut, &back), -1);
    }
    static const char *const bad[] = {
        "tracecode-tree-head v2\n",
        "tracecode-tree-head v1\nkey  12\n",
        "tracecode-tree-head v1\nkey -1\n",
        "tracecode-tree-head v1\nkey 4294967296\n",
        "tracecode-tree-head v1\nkey 1\nsize 18446744073709551616\n",
        "tracecode-tree-head v1\nkey 02\n", /* one text per head: no leading zero */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(auditor_head_parse(bad[i], &back), -1);
    /* A hex digit changed to a non-hex byte, in the root and the signature. */
    memcpy(cut, text, n + 1);
    cut[strstr(cut, "root ") - cut + 5] = 'g';
    assert_int_equal(auditor_head_parse(cut, &back), -1);
    memcpy(cut, text, n + 1);
    cut[n - 2] = 'z';
    assert_int_equal(auditor_head_parse(cut, &back), -1);
    /* The time is signed: an overflowing one is refused too. */
    memcpy(cut, text, n + 1);
    {
        char *t = strstr(cut, "time ") + 5, *e = strchr(t, '\n');
        char tail[256];
        snprintf(tail, sizeof(tail), "%s", e);
        snprintf(t, sizeof(cut) - (size_t)(t - cut), "9223372036854775808%s", tail);
    }
    assert_int_equal(auditor_head_parse(cut, &back), -1);
}

static void test_log_in_order(void **state)
{
    auditor_log l;
    auditor_head h;
    merkle_hash leaf;
    char why[256];

    (void)state;
    head_of(LEAVES, 12, &h);
    auditor_log_init(&l);
    assert_false(auditor_log_matches(&l, &h));
    for (int i = 0; i < LEAVES; i++) {
        assert_int_equal(
            auditor_log_add(&l, (uint64_t)i, F.body[i], strlen(F.body[i]), leaf, why, sizeof(why)),
            0);
        assert_memory_equal(leaf, F.leaf[i], sizeof(leaf));
        assert_int_equal(auditor_log_matches(&l, &h), i == LEAVES - 1);
    }

    /* A missing entry, a repeated one: named, and nothing added. */
    auditor_log_init(&l);
    assert_int_equal(auditor_log_add(&l, 0, F.body[0], strlen(F.body[0]), NULL, why, sizeof(why)),
                     0);
    assert_int_equal(auditor_log_add(&l, 2, F.body[2], strlen(F.body[2]), NULL, why, sizeof(why)),
                     -1);
    assert_string_equal(why, "entry 1 is missing (the log skips to 2)");
    assert_int_equal(auditor_log_add(&l, 0, F.body[0], strlen(F.body[0]), NULL, why, sizeof(why)),
                     -1);
    assert_string_equal(why, "entry 0 came again after entry 0 (the log is not in order)");
    assert_int_equal(l.next, 1);

    /* One byte of one entry changed: the root no longer matches. */
    auditor_log_init(&l);
    for (int i = 0; i < LEAVES; i++) {
        char body[32];
        memcpy(body, F.body[i], sizeof(body));
        if (i == 9)
            body[0] = 'E';
        assert_int_equal(
            auditor_log_add(&l, (uint64_t)i, body, strlen(body), NULL, why, sizeof(why)), 0);
    }
    assert_false(auditor_log_matches(&l, &h));
}

static void test_inclusion(void **state)
{
    merkle_hash proof[MERKLE_MAX_PROOF], other;
    auditor_head h;
    size_t n;

    (void)state;
    head_of(LEAVES, 12, &h);
    for (uint64_t i = 0; i < LEAVES; i++) {
        assert_int_equal(merkle_inclusion_proof(get, NULL, i, LEAVES, proof, &n), 0);
        assert_true(auditor_included(&h, i, F.leaf[i], proof, n));
        memcpy(other, F.leaf[i], sizeof(other));
        other[31] ^= 1;
        assert_false(auditor_included(&h, i, other, proof, n));
        if (i + 1 < LEAVES)
            assert_false(auditor_included(&h, i + 1, F.leaf[i], proof, n));
    }
}

static void test_consistency(void **state)
{
    merkle_hash proof[MERKLE_MAX_PROOF];
    auditor_head old, now, forged;
    char why[256];
    size_t n;

    (void)state;
    head_of(LEAVES, 12, &now);
    for (uint64_t m = 1; m < LEAVES; m++) {
        head_of(m, 12, &old);
        assert_int_equal(merkle_consistency_proof(get, NULL, m, LEAVES, proof, &n), 0);
        assert_int_equal(auditor_consistent(&old, &now, proof, n, why, sizeof(why)), 0);
        /* The same proof against a history rewritten before m. */
        forged = old;
        forged.root[3] ^= 4;
        assert_int_equal(auditor_consistent(&forged, &now, proof, n, why, sizeof(why)), -1);
        if (n) {
            proof[n - 1][0] ^= 1;
            assert_int_equal(auditor_consistent(&old, &now, proof, n, why, sizeof(why)), -1);
        }
    }
    snprintf(why, sizeof(why), "-");
    head_of(9, 12, &old);
    forged = old;
    forged.root[0] ^= 1;
    assert_int_equal(auditor_consistent(&forged, &now, proof, 0, why, sizeof(why)), -1);
    assert_string_equal(why, "the log of 23 entries is not an extension of the saved head of 9 "
                             "entries: its history was rewritten");
    /* The log shrank. */
    assert_int_equal(auditor_consistent(&now, &old, NULL, 0, why, sizeof(why)), -1);
    assert_string_equal(why, "the log shrank from 23 to 9 entries");
    /* The same size: the same root, no proof. */
    assert_int_equal(auditor_consistent(&now, &now, NULL, 0, why, sizeof(why)), 0);
    forged = now;
    forged.root[1] ^= 1;
    assert_int_equal(auditor_consistent(&forged, &now, NULL, 0, why, sizeof(why)), -1);
    /* From the empty log: its root is SHA-256(""), and no other. */
    head_of(0, 12, &old);
    assert_int_equal(auditor_consistent(&old, &now, NULL, 0, why, sizeof(why)), 0);
    old.root[0] ^= 1;
    assert_int_equal(auditor_consistent(&old, &now, NULL, 0, why, sizeof(why)), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_public_key), cmocka_unit_test(test_head_signature),
        cmocka_unit_test(test_head_file),  cmocka_unit_test(test_log_in_order),
        cmocka_unit_test(test_inclusion),  cmocka_unit_test(test_consistency),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
