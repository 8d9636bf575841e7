/*
 * sig.c - Ed25519 through OpenSSL's EVP interface (RFC 8032, pure
 * Ed25519). OpenSSL allocates a key object per call; Ed25519 itself costs
 * tens of microseconds, so that is not where the time goes.
 */
#include "codec.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <string.h>

codec_err codec_ed25519_public(const uint8_t seed[CODEC_KEY_BYTES], uint8_t pub[CODEC_PUB_BYTES])
{
    EVP_PKEY *pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, CODEC_KEY_BYTES);
    size_t n = CODEC_PUB_BYTES;
    codec_err err = CODEC_ERR_CRYPTO;

    if (pk && EVP_PKEY_get_raw_public_key(pk, pub, &n) == 1 && n == CODEC_PUB_BYTES)
        err = CODEC_OK;
    EVP_PKEY_free(pk);
    return err;
}

codec_err codec_ed25519_sign(const uint8_t seed[CODEC_KEY_BYTES], const uint8_t *msg, size_t len,
                             uint8_t sig[CODEC_SIG_BYTES])
{
    EVP_PKEY *pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, CODEC_KEY_BYTES);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    size_t n = CODEC_SIG_BYTES;
    codec_err err = CODEC_ERR_CRYPTO;

    if (!pk || !md)
        goto out;
    if (EVP_DigestSignInit(md, NULL, NULL, NULL, pk) != 1 ||
        EVP_DigestSign(md, sig, &n, msg, len) != 1 || n != CODEC_SIG_BYTES)
        goto out;
    err = CODEC_OK;
out:
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(pk);
    return err;
}

codec_err codec_ed25519_verify(const uint8_t pub[CODEC_PUB_BYTES], const uint8_t *msg, size_t len,
                               const uint8_t sig[CODEC_SIG_BYTES])
{
    EVP_PKEY *pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, CODEC_PUB_BYTES);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    codec_err err = CODEC_ERR_CRYPTO;
    int r;

    if (!pk || !md)
        goto out;
    if (EVP_DigestVerifyInit(md, NULL, NULL, NULL, pk) != 1)
        goto out;
    r = EVP_DigestVerify(md, sig, CODEC_SIG_BYTES, msg, len);
    err = r == 1 ? CODEC_OK : CODEC_ERR_SIGNATURE;
out:
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(pk);
    return err;
}

/* "TC1" || body, the message a SIG-profile code signs. */
static void sig_message(const uint8_t body[CODEC_BODY_BYTES],
                        uint8_t msg[CODEC_DOMAIN_LEN + CODEC_BODY_BYTES])
{
    memcpy(msg, CODEC_DOMAIN, CODEC_DOMAIN_LEN);
    memcpy(msg + CODEC_DOMAIN_LEN, body, CODEC_BODY_BYTES);
}

codec_err codec_sig_mint(const uint8_t seed[CODEC_KEY_BYTES], const codec_fields *f,
                         uint8_t code[CODEC_SIGCODE_BYTES])
{
    uint8_t msg[CODEC_DOMAIN_LEN + CODEC_BODY_BYTES];
    codec_err err;

    if (f->profile != CODEC_PROFILE_SIG)
        return CODEC_ERR_PROFILE;
    err = codec_body_pack(f, code);
    if (err)
        return err;
    sig_message(code, msg);
    return codec_ed25519_sign(seed, msg, sizeof(msg), code + CODEC_BODY_BYTES);
}

codec_err codec_sig_check(const uint8_t pub[CODEC_PUB_BYTES],
                          const uint8_t code[CODEC_SIGCODE_BYTES])
{
    uint8_t msg[CODEC_DOMAIN_LEN + CODEC_BODY_BYTES];

    sig_message(code, msg);
    return codec_ed25519_verify(pub, msg, sizeof(msg), code + CODEC_BODY_BYTES);
}
