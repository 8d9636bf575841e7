/*
 * test_codec_crypto.c - RFC 4231 HMAC-SHA-256 and RFC 8032 Ed25519
 * known answers, and the code tag checked against OpenSSL's one-shot
 * HMAC() over random keys and bodies.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "codec.h"
#include "testutil.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

/* RFC 4231 section 4, test cases 1-7 (case 5 is truncated to 128 bits). */
static const struct hmac_kat {
    const char *key;  /* hex */
    const char *data; /* hex */
    const char *mac;  /* hex, possibly truncated */
} rfc4231[] = {
    {"0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "4869205468657265",
     "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
    {"4a656665", "7768617420646f2079612077616e7420666f72206e6f7468696e673f",
     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
     "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
     "dddddddddddddd",
     "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
    {"0102030405060708090a0b0c0d0e0f10111213141516171819",
     "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd"
     "cdcdcdcdcdcdcd",
     "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
    {"0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c", "546573742057697468205472756e636174696f6e",
     "a3b6167473100ee06e0c796c2955552b"},
    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
     "54657374205573696e67204c6172676572205468616e20426c6f636b2d53697a65204b6579202d2048617368"
     "204b6579204669727374",
     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
     "5468697320697320612074657374207573696e672061206c6172676572207468616e20626c6f636b2d73697a"
     "65206b657920616e642061206c6172676572207468616e20626c6f636b2d73697a6520646174612e20546865"
     "206b6579206e6565647320746f20626520686173686564206265666f7265206265696e672075736564206279"
     "2074686520484d414320616c676f726974686d2e",
     "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
};

static void test_rfc4231(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(rfc4231) / sizeof(rfc4231[0]); i++) {
        uint8_t key[200], data[200], want[32], got[32];
        size_t kl = tu_unhex(rfc4231[i].key, key, sizeof(key));
        size_t dl = tu_unhex(rfc4231[i].data, data, sizeof(data));
        size_t ml = tu_unhex(rfc4231[i].mac, want, sizeof(want));
        codec_mac_key k;

        assert_int_equal(codec_mac_key_init(&k, key, kl), CODEC_OK);
        assert_int_equal(codec_hmac_sha256(&k, data, dl, got), CODEC_OK);
        assert_memory_equal(got, want, ml);
        codec_mac_key_wipe(&k);
    }
}

/* RFC 8032 section 7.1: TEST 1, 2, 3 and SHA(abc). */
static const struct ed_kat {
    const char *seed, *pub, *msg, *sig;
} rfc8032[] = {
    {"9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701c"
     "f9b46bd25bf5f0595bbe24655141438e7a100b"},
    {"4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0"
     "f11d8c387b2eaeb4302aeeb00d291612bb0c00"},
    {"c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f76098"
     "4dc6594a7c15e9716ed28dc027beceea1ec40a"},
    {"833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
     "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
     "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3"
     "feebbd454d4423643ce80e2a9ac94fa54ca49f",
     "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b58909351fc9ac90b3ecfdfbc7c664"
     "31e0303dca179c138ac17ad9bef1177331a704"},
};

static void test_rfc8032(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(rfc8032) / sizeof(rfc8032[0]); i++) {
        uint8_t seed[32], pub[32], want_pub[32], msg[128], sig[64], want_sig[64];
        size_t ml;

        tu_unhex(rfc8032[i].seed, seed, sizeof(seed));
        tu_unhex(rfc8032[i].pub, want_pub, sizeof(want_pub));
        ml = tu_unhex(rfc8032[i].msg, msg, sizeof(msg));
        tu_unhex(rfc8032[i].sig, want_sig, sizeof(want_sig));
        assert_int_equal(codec_ed25519_public(seed, pub), CODEC_OK);
        assert_memory_equal(pub, want_pub, 32);
        assert_int_equal(codec_ed25519_sign(seed, msg, ml, sig), CODEC_OK);
        assert_memory_equal(sig, want_sig, 64);
        assert_int_equal(codec_ed25519_verify(pub, msg, ml, sig), CODEC_OK);
        sig[63] ^= 1;
        assert_int_equal(codec_ed25519_verify(pub, msg, ml, sig), CODEC_ERR_SIGNATURE);
    }
}

/* The two-compression tag equals OpenSSL's one-shot HMAC() truncated. */
static void test_tag_vs_oneshot(void **state)
{
    tu_rng r = {7};
    int i;

    (void)state;
    for (i = 0; i < 20000; i++) {
        uint8_t key[80], body[CODEC_BODY_BYTES], msg[CODEC_DOMAIN_LEN + CODEC_BODY_BYTES];
        uint8_t tag[CODEC_TAG_BYTES], full[EVP_MAX_MD_SIZE], code[CODEC_MAC_BYTES];
        unsigned int fl = 0;
        size_t kl = 1 + (size_t)(tu_next(&r) % sizeof(key));
        codec_mac_key k;

        tu_fill(&r, key, kl);
        tu_fill(&r, body, sizeof(body));
        assert_int_equal(codec_mac_key_init(&k, key, kl), CODEC_OK);
        codec_mac_tag(&k, body, tag);
        memcpy(msg, CODEC_DOMAIN, CODEC_DOMAIN_LEN);
        memcpy(msg + CODEC_DOMAIN_LEN, body, sizeof(body));
        assert_non_null(HMAC(EVP_sha256(), key, (int)kl, msg, sizeof(msg), full, &fl));
        assert_int_equal(fl, 32);
        assert_memory_equal(tag, full, CODEC_TAG_BYTES);

        memcpy(code, body, sizeof(body));
        memcpy(code + CODEC_BODY_BYTES, tag, CODEC_TAG_BYTES);
        assert_int_equal(codec_mac_check(&k, code), CODEC_OK);
        code[CODEC_MAC_BYTES - 1] ^= 0x80;
        assert_int_equal(codec_mac_check(&k, code), CODEC_ERR_TAG);
    }
}

static void test_wrong_key(void **state)
{
    const uint8_t a[32] = {1}, b[32] = {2};
    codec_fields f = {CODEC_VERSION, CODEC_PROFILE_MAC, 1, 5, 6};
    uint8_t code[CODEC_MAC_BYTES];
    codec_mac_key ka, kb;

    (void)state;
    assert_int_equal(codec_mac_key_init(&ka, a, 32), CODEC_OK);
    assert_int_equal(codec_mac_key_init(&kb, b, 32), CODEC_OK);
    assert_int_equal(codec_mac_mint(&ka, &f, code), CODEC_OK);
    assert_int_equal(codec_mac_check(&ka, code), CODEC_OK);
    assert_int_equal(codec_mac_check(&kb, code), CODEC_ERR_TAG);
    f.profile = CODEC_PROFILE_SIG;
    assert_int_equal(codec_mac_mint(&ka, &f, code), CODEC_ERR_PROFILE);
    codec_mac_key_wipe(&ka);
    assert_int_equal(ka.inner[0] | ka.outer[7], 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc4231),
        cmocka_unit_test(test_rfc8032),
        cmocka_unit_test(test_tag_vs_oneshot),
        cmocka_unit_test(test_wrong_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
