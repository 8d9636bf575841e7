/*
 * test_verify.c - every verdict of the verification engine, from codes
 * minted with a real keyring against a replica filled as the applier
 * would fill it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "keys.h"
#include "replica.h"
#include "verify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CERT "2024010701000001"
#define MAKER "91310000MA1FL0001R"
#define NOW 1800000000

typedef struct fx {
    char dir[64], other[64];
    keys_ring *ring, *other_ring;
    rep *r;
    int slot;
} fx;

static void put_cert(rep *r, int status, const char *reason, int64_t valid_until)
{
    static const char *cats[] = {"0704"};
    rep_cert_fields cf = {CERT, REP_KIND_CCC, MAKER, cats, 1, status, reason, valid_until, 1};
    assert_int_equal(rep_put_cert(r, &cf), REP_OK);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    char err[256];
    rep_product_fields p = {"P1", "0704", "Acme", "PB-10000", "", 0};

    memcpy(f->dir, "/tmp/tc-verify-XXXXXX", 22);
    memcpy(f->other, "/tmp/tc-verify-XXXXXX", 22);
    if (!mkdtemp(f->dir) || !mkdtemp(f->other))
        return -1;
    if (keys_init_dir(f->dir, err, sizeof(err)) || keys_open(f->dir, &f->ring, err, sizeof(err)))
        return -1;
    if (keys_init_dir(f->other, err, sizeof(err)) ||
        keys_open(f->other, &f->other_ring, err, sizeof(err)))
        return -1;
    f->r = rep_new();
    rep_put_mfr(f->r, MAKER, "Acme Power Co.", REP_MFR_ACTIVE);
    put_cert(f->r, REP_CERT_VALID, "", 0);
    if (rep_put_product(f->r, &p, CERT, MAKER) != REP_OK)
        return -1;
    /* batch 7: MAC, key 1, 100 codes; batch 8: SIG, key 2, 10 codes;
     * batch 9: MAC registered under key 5 (not the one that minted). */
    if (rep_put_batch(f->r, 7, "P1", 100, 1, REP_PROFILE_MAC, 1) ||
        rep_put_batch(f->r, 8, "P1", 10, 2, REP_PROFILE_SIG, 1) ||
        rep_put_batch(f->r, 9, "P1", 10, 5, REP_PROFILE_MAC, 1))
        return -1;
    f->slot = rep_reader_register(f->r);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    char cmd[200];

    keys_free(f->ring);
    keys_free(f->other_ring);
    rep_reclaim(f->r);
    rep_free(f->r);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", f->dir, f->other);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

/* Mint batch/serial with ring's active key of profile; text into out. */
static void mint(keys_ring *ring, uint64_t batch, uint32_t serial, unsigned profile, char *out)
{
    codec_fields fl = {0, profile, 0, batch, serial};
    uint8_t bin[CODEC_MAX_BYTES];
    size_t len;

    assert_int_equal(keys_mint(ring, &fl, bin, &len), KEYS_OK);
    assert_true(codec_text_encode(bin, len, out, CODEC_MAX_TEXT_LEN + 1) > 0);
}

static void expect(fx *f, const char *code, const tc_listing *l, int want, const char *needle)
{
    tc_vres v;

    rep_read_begin(f->r, f->slot);
    tc_verify(f->r, f->ring, code, strlen(code), l, NOW, &v);
    rep_read_end(f->r, f->slot);
    if (v.verdict != want)
        fail_msg("code %s: verdict %s (%s), want %s", code, tc_verdict_name(v.verdict), v.detail,
                 tc_verdict_name(want));
    if (needle && !strstr(v.detail, needle))
        fail_msg("code %s: detail '%s' lacks '%s'", code, v.detail, needle);
    if (want == TC_GENUINE)
        assert_string_equal(v.detail, "");
}

static void test_genuine(void **state)
{
    fx *f = *state;
    char code[CODEC_MAX_TEXT_LEN + 1], url[256];
    tc_vres v;

    mint(f->ring, 7, 42, CODEC_PROFILE_MAC, code);
    expect(f, code, NULL, TC_GENUINE, NULL);
    rep_read_begin(f->r, f->slot);
    tc_verify(f->r, f->ring, code, strlen(code), NULL, NOW, &v);
    assert_int_equal(v.batch_id, 7);
    assert_int_equal(v.serial, 42);
    assert_int_equal(v.cert_status, REP_CERT_VALID);
    assert_string_equal(v.batch->product->model, "PB-10000");
    assert_string_equal(atomic_load(&v.batch->mfr->v)->name, "Acme Power Co.");
    rep_read_end(f->r, f->slot);

    snprintf(url, sizeof(url), "https://tc.samr.example/c/%s", code);
    expect(f, url, NULL, TC_GENUINE, NULL);
    mint(f->ring, 8, 9, CODEC_PROFILE_SIG, code);
    expect(f, code, NULL, TC_GENUINE, NULL);
}

static void test_malformed(void **state)
{
    fx *f = *state;
    char code[CODEC_MAX_TEXT_LEN + 1];
    size_t i;

    expect(f, "ABC", NULL, TC_MALFORMED, "wrong length 3, want 34 or 120");
    expect(f, "", NULL, TC_MALFORMED, "wrong length 0");
    expect(f, "https://x/C/123", NULL, TC_MALFORMED, "wrong length 3");
    mint(f->ring, 7, 1, CODEC_PROFILE_MAC, code);
    /* A symbol outside the alphabet, named with its offset in the input as
     * sent (after the leading blanks). */
    code[5] = 'U';
    {
        char in[CODEC_MAX_TEXT_LEN + 8];
        snprintf(in, sizeof(in), "  %s", code);
        expect(f, in, NULL, TC_MALFORMED, "bad symbol 'U' at offset 7");
    }
    code[5] = '#';
    expect(f, code, NULL, TC_MALFORMED, "bad symbol '#' at offset 5");
    /* One symbol short. */
    mint(f->ring, 7, 1, CODEC_PROFILE_MAC, code);
    code[33] = '\0';
    expect(f, code, NULL, TC_MALFORMED, "wrong length 33, want 34 or 120");
    (void)i;
}

/* Every form a consumer, a printer or a scanner produces reads as the same
 * code (API: the lenient path). */
static void test_accepted_forms(void **state)
{
    fx *f = *state;
    char code[CODEC_MAX_TEXT_LEN + 1], in[256], grouped[64];
    size_t i;

    mint(f->ring, 7, 1, CODEC_PROFILE_MAC, code);
    for (i = 0; code[i]; i++)
        in[i] = (char)(code[i] >= 'A' && code[i] <= 'Z' ? code[i] - 'A' + 'a' : code[i]);
    in[i] = '\0';
    expect(f, in, NULL, TC_GENUINE, NULL); /* lower case */
    assert_true(codec_text_group(code, strlen(code), 4, '-', grouped, sizeof(grouped)) > 0);
    expect(f, grouped, NULL, TC_GENUINE, NULL); /* grouped, without the check symbol */
    assert_true(codec_text_printed(code, strlen(code), grouped, sizeof(grouped)) > 0);
    expect(f, grouped, NULL, TC_GENUINE, NULL); /* as printed on labels */
    grouped[0] = grouped[0] == '2' ? '3' : '2'; /* typed wrong: mistyped, not forged */
    expect(f, grouped, NULL, TC_MALFORMED, "mistyped: the check symbol");
    assert_true(codec_text_group(code, strlen(code), 4, ' ', grouped, sizeof(grouped)) > 0);
    expect(f, grouped, NULL, TC_GENUINE, NULL);
    snprintf(in, sizeof(in), "%s\n", code);
    expect(f, in, NULL, TC_GENUINE, NULL); /* a trailing newline */
    snprintf(in, sizeof(in), " \t%s \r\n", code);
    expect(f, in, NULL, TC_GENUINE, NULL);
    snprintf(in, sizeof(in), "  HTTPS://TC.SAMR.EXAMPLE/C/%s\n", code);
    expect(f, in, NULL, TC_GENUINE, NULL); /* the QR's URL */
    /* Crockford's look-alikes: O for 0, I and L for 1. */
    snprintf(in, sizeof(in), "%s", code);
    for (i = 0; in[i]; i++)
        if (in[i] == '0')
            in[i] = 'O';
        else if (in[i] == '1')
            in[i] = (i % 2) ? 'I' : 'l';
    expect(f, in, NULL, TC_GENUINE, NULL);
}

static void test_forged(void **state)
{
    fx *f = *state;
    char code[CODEC_MAX_TEXT_LEN + 1];
    unsigned kid;
    char err[256];

    mint(f->ring, 7, 1, CODEC_PROFILE_MAC, code);
    code[20] = code[20] == 'A' ? 'B' : 'A';
    expect(f, code, NULL, TC_FORGED, "tag does not match");
    /* Same key id, another keyring's secret. */
    mint(f->other_ring, 7, 1, CODEC_PROFILE_MAC, code);
    expect(f, code, NULL, TC_FORGED, "tag does not match");
    /* A key id we never had. */
    assert_int_equal(keys_rotate(f->other_ring, KEYS_KIND_MAC, &kid, err, sizeof(err)), KEYS_OK);
    mint(f->other_ring, 7, 1, CODEC_PROFILE_MAC, code);
    expect(f, code, NULL, TC_FORGED, "unknown or retired key id 3");
    {
        tc_vres v;
        rep_read_begin(f->r, f->slot);
        tc_verify(f->r, f->ring, code, strlen(code), NULL, NOW, &v);
        rep_read_end(f->r, f->slot);
        assert_int_equal(v.unknown_kid, 3); /* the caller may reload its keyring */
    }
    /* A SIG code signed by someone else. */
    mint(f->other_ring, 8, 1, CODEC_PROFILE_SIG, code);
    expect(f, code, NULL, TC_FORGED, "signature does not verify");
}

static void test_unknown_batch(void **state)
{
    fx *f = *state;
    char code[CODEC_MAX_TEXT_LEN + 1];

    mint(f->ring, 99, 0, CODEC_PROFILE_MAC, code);
    expect(f, code, NULL, TC_UNKNOWN_BATCH, "batch 99 was never issued");
    mint(f->ring, 7, 100, CODEC_PROFILE_MAC, code);
    expect(f, code, NULL, TC_UNKNOWN_BATCH, "serial 100 is beyond batch 7's quantity 100");
    mint(f->ring, 9, 0, CODEC_PROFILE_MAC, code);
    expect(f, code, NULL, TC_UNKNOWN_BATCH, "issued under key 5 (mac), not key 1");
    mint(f->ring, 7, 0, CODEC_PROFILE_SIG, code); /* batch 7 is MAC */
    expect(f, code, NULL, TC_UNKNOWN_BATCH, "issued under key 1 (mac), not key 2");
}

static void test_recalled(void **state)
{
    fx *f = *state;
    char code[CODEC_MAX_TEXT_LEN + 1];

    assert_int_equal(rep_put_recall(f->r, 7, 10, 19, "battery swelling"), REP_OK);
    mint(f->ring, 7, 15, CODEC_PROFILE_MAC, code);
    expect(f, code, NULL, TC_RECALLED, "serials 10-19 of batch 7 are recalled: battery swelling");
    mint(f->ring, 7, 20, CODEC_PROFILE_MAC, code);
    expect(f, code, NULL, TC_GENUINE, NULL);
}

static void test_certificate(void **state)
{
    fx *f = *state;
    char code[CODEC_MAX_TEXT_LEN + 1];

    mint(f->ring, 7, 3, CODEC_PROFILE_MAC, code);
    put_cert(f->r, REP_CERT_SUSPENDED, "failed factory inspection", 0);
    expect(f, code, NULL, TC_CERT_SUSPENDED, "is suspended: failed factory inspection");
    put_cert(f->r, REP_CERT_REVOKED, "fire risk", 0);
    expect(f, code, NULL, TC_CERT_REVOKED, "is revoked: fire risk");
    put_cert(f->r, REP_CERT_EXPIRED, "", 0);
    expect(f, code, NULL, TC_CERT_EXPIRED, "has expired");
    put_cert(f->r, REP_CERT_CANCELLED, "holder stopped making it", 0);
    expect(f, code, NULL, TC_CERT_CANCELLED,
           "was cancelled by its holder: holder stopped making it");
    put_cert(f->r, REP_CERT_VALID, "", NOW - 86400);
    expect(f, code, NULL, TC_CERT_EXPIRED, "expired on 2027-01-14");
    put_cert(f->r, REP_CERT_VALID, "", NOW + 86400);
    expect(f, code, NULL, TC_GENUINE, NULL);
    rep_reclaim(f->r);
}

static void test_issuer(void **state)
{
    fx *f = *state;
    char code[CODEC_MAX_TEXT_LEN + 1];

    mint(f->ring, 7, 3, CODEC_PROFILE_MAC, code);
    rep_put_mfr(f->r, MAKER, "Acme Power Co.", REP_MFR_SUSPENDED);
    expect(f, code, NULL, TC_ISSUER_SUSPENDED, "manufacturer " MAKER " is suspended");
    rep_put_mfr(f->r, MAKER, "Acme Power Co.", REP_MFR_ACTIVE);
    expect(f, code, NULL, TC_GENUINE, NULL);
}

static void test_listing(void **state)
{
    fx *f = *state;
    char code[CODEC_MAX_TEXT_LEN + 1];
    tc_listing ok = {"0704", "ACME", "pb-10000"}, none = {NULL, "", NULL};
    tc_listing cat = {"1201", NULL, NULL}, brand = {NULL, "Acne", NULL},
               model = {"0704", "Acme", "PB-20000"};

    mint(f->ring, 7, 3, CODEC_PROFILE_MAC, code);
    expect(f, code, &ok, TC_GENUINE, NULL);
    expect(f, code, &none, TC_GENUINE, NULL);
    expect(f, code, &cat, TC_LISTING_MISMATCH, "claims category '1201', product is '0704'");
    expect(f, code, &brand, TC_LISTING_MISMATCH, "claims brand 'Acne', product is 'Acme'");
    expect(f, code, &model, TC_LISTING_MISMATCH, "claims model 'PB-20000', product is 'PB-10000'");
}

/* A key declared compromised from a time on: batches under it issued from
 * then verify KEY_COMPROMISED, earlier ones stay GENUINE, other keys are
 * untouched; the deployment's issuing key follows the records. */
static void test_key_compromised(void **state)
{
    fx *f = *state;
    char early[CODEC_MAX_TEXT_LEN + 1], late[CODEC_MAX_TEXT_LEN + 1], sig[CODEC_MAX_TEXT_LEN + 1];
    tc_item items[2];
    tc_scratch sc[2];
    tc_vres many[2];

    assert_int_equal(rep_put_batch(f->r, 10, "P1", 10, 1, REP_PROFILE_MAC, 5000), REP_OK);
    mint(f->ring, 7, 1, CODEC_PROFILE_MAC, early); /* batch 7: issued at 1 */
    mint(f->ring, 10, 1, CODEC_PROFILE_MAC, late); /* batch 10: issued at 5000 */
    mint(f->ring, 8, 1, CODEC_PROFILE_SIG, sig);   /* key 2 */
    assert_int_equal(rep_key_issuing(f->r, REP_KEY_MAC), 0);
    assert_int_equal(rep_put_key(f->r, 1, REP_KEY_MAC, REP_KEY_ACTIVE, 100, 0), REP_OK);
    assert_int_equal(rep_key_issuing(f->r, REP_KEY_MAC), 1);
    expect(f, late, NULL, TC_GENUINE, NULL);

    assert_int_equal(rep_put_key(f->r, 1, REP_KEY_MAC, REP_KEY_COMPROMISED, 100, 5000), REP_OK);
    assert_int_equal(rep_key_issuing(f->r, REP_KEY_MAC), 0); /* it stops issuing */
    assert_true(rep_key_managed(f->r, REP_KEY_MAC)); /* and the keyring files do not choose */
    assert_false(rep_key_managed(f->r, REP_KEY_ED25519));
    assert_int_equal(rep_key_compromised(f->r, 1), 5000);
    expect(f, late, NULL, TC_KEY_COMPROMISED, "key 1 was declared compromised");
    expect(f, early, NULL, TC_GENUINE, NULL);
    expect(f, sig, NULL, TC_GENUINE, NULL);
    assert_int_equal(rep_count_batches_key(f->r, 1, 5000), 1);
    assert_int_equal(rep_count_batches_key(f->r, 1, 0), 2);

    items[0] = (tc_item){late, strlen(late), NULL};
    items[1] = (tc_item){early, strlen(early), NULL};
    rep_read_begin(f->r, f->slot);
    tc_verify_many(f->r, f->ring, items, 2, NOW, many, sc);
    rep_read_end(f->r, f->slot);
    assert_int_equal(many[0].verdict, TC_KEY_COMPROMISED);
    assert_int_equal(many[1].verdict, TC_GENUINE);

    /* a later 'since' frees the batch again (the regulator corrects it) */
    assert_int_equal(rep_put_key(f->r, 1, REP_KEY_MAC, REP_KEY_COMPROMISED, 100, 5001), REP_OK);
    expect(f, late, NULL, TC_GENUINE, NULL);
    assert_string_equal(tc_verdict_name(TC_KEY_COMPROMISED), "KEY_COMPROMISED");
    /* bad records change nothing */
    assert_int_equal(rep_put_key(f->r, 0, REP_KEY_MAC, REP_KEY_ACTIVE, 0, 0), REP_ERR_ARG);
    assert_int_equal(rep_put_key(f->r, 3, 9, REP_KEY_ACTIVE, 0, 0), REP_ERR_ARG);
    assert_int_equal(rep_put_key(f->r, 3, REP_KEY_MAC, REP_KEY_COMPROMISED, 0, 0), REP_ERR_ARG);
    assert_int_equal(rep_key_compromised(f->r, 1), 5001);
}

/* The staged batch path decides every code exactly as tc_verify does. */
static void test_many_matches_single(void **state)
{
    fx *f = *state;
    static char codes[64][CODEC_MAX_TEXT_LEN + 1];
    tc_listing claim = {NULL, "Acne", NULL};
    tc_item items[64];
    tc_vres many[64], one;
    tc_scratch s[64];
    size_t i;

    assert_int_equal(rep_put_recall(f->r, 7, 10, 19, "battery swelling"), REP_OK);
    for (i = 0; i < 64; i++) {
        switch (i % 8) {
        case 0:
            mint(f->ring, 7, (uint32_t)i, CODEC_PROFILE_MAC, codes[i]);
            break;
        case 1:
            mint(f->ring, 7, 12, CODEC_PROFILE_MAC, codes[i]);
            break; /* recalled */
        case 2:
            mint(f->ring, 99, 1, CODEC_PROFILE_MAC, codes[i]);
            break; /* unknown */
        case 3:
            mint(f->ring, 7, 500, CODEC_PROFILE_MAC, codes[i]);
            break; /* serial */
        case 4:
            mint(f->ring, 8, 3, CODEC_PROFILE_SIG, codes[i]);
            break; /* sig */
        case 5:
            mint(f->other_ring, 7, 1, CODEC_PROFILE_MAC, codes[i]);
            break; /* forged */
        case 6:
            memcpy(codes[i], "SHORT", 6);
            break; /* malformed */
        default:
            mint(f->ring, 9, 0, CODEC_PROFILE_MAC, codes[i]);
            break; /* key */
        }
        items[i].code = codes[i];
        items[i].len = strlen(codes[i]);
        items[i].listing = i % 16 == 0 ? &claim : NULL;
    }
    rep_read_begin(f->r, f->slot);
    tc_verify_many(f->r, f->ring, items, 64, NOW, many, s);
    for (i = 0; i < 64; i++) {
        tc_verify(f->r, f->ring, items[i].code, items[i].len, items[i].listing, NOW, &one);
        assert_int_equal(many[i].verdict, one.verdict);
        assert_string_equal(many[i].detail, one.detail);
        assert_true(many[i].batch_id == one.batch_id);
        assert_int_equal(many[i].serial, one.serial);
        assert_int_equal(many[i].cert_status, one.cert_status);
        assert_ptr_equal(many[i].batch, one.batch);
    }
    rep_read_end(f->r, f->slot);
    assert_int_equal(many[0].verdict, TC_LISTING_MISMATCH);
    assert_int_equal(many[1].verdict, TC_RECALLED);
    assert_int_equal(many[5].verdict, TC_FORGED);
    assert_int_equal(many[8].verdict, TC_GENUINE);
}

/* One row per code profile ties its numberings together: the bits in the
 * code, the contract's and the replica's number, the key kind the keyring
 * and the replica use, and the lengths a minted code really has. */
static void test_profile_table(void **state)
{
    fx *f = *state;

    assert_int_equal(codec_profile_of(CODEC_PROFILE_MAC)->number, REP_PROFILE_MAC);
    assert_int_equal(codec_profile_of(CODEC_PROFILE_SIG)->number, REP_PROFILE_SIG);
    assert_null(codec_profile_of(7));
    assert_null(codec_profile_numbered(0));
    for (size_t i = 0; i < CODEC_PROFILES; i++) {
        const codec_profile_info *p = &codec_profiles[i];
        char text[CODEC_MAX_TEXT_LEN + 1];
        uint8_t bin[CODEC_MAX_BYTES];
        codec_fields fl = {0, (unsigned)p->profile, 0, 7, 1};
        size_t len;

        assert_ptr_equal(codec_profile_of(p->profile), p);
        assert_ptr_equal(codec_profile_numbered(p->number), p);
        assert_string_equal(keys_kind_name((keys_kind)p->key_kind), p->key);
        assert_int_equal(p->key_kind,
                         p->profile == CODEC_PROFILE_MAC ? REP_KEY_MAC : REP_KEY_ED25519);
        assert_int_equal(keys_mint(f->ring, &fl, bin, &len), KEYS_OK);
        assert_int_equal(len, p->bytes);
        assert_int_equal(codec_text_encode(bin, len, text, sizeof(text)), p->text_len);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_genuine, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_accepted_forms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recalled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_certificate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_issuer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_listing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_matches_single, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_compromised, setup, teardown),
        cmocka_unit_test_setup_teardown(test_profile_table, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
