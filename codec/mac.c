/*
 * mac.c - HMAC-SHA-256 on precomputed midstates.
 *
 * HMAC(K, m) = H((K ^ opad) || H((K ^ ipad) || m)). The first block of
 * each hash depends only on the key, so its compressed state is kept: a
 * tag over a message that fits one block ("TC1" || 11-byte body = 14
 * bytes) then costs one compression for the inner hash and one for the
 * outer. The message is copied into a constant padding template rather
 * than padded byte by byte. SHA256_Transform is OpenSSL's block function
 * (SHA-NI or AVX2 where the CPU has them); it is deprecated in 3.0 only as
 * a public API shape, and is the one call here that needs that.
 */
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include "codec.h"
#include "codec_int.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <string.h>

#define BLOCK 64

/* h_out = compress(h_in, block). Leaves only midstates on the stack, which
 * codec_mac_key holds anyway; the raw key and pads are wiped by the caller. */
static void compress(const uint32_t h_in[8], const uint8_t block[BLOCK], uint32_t h_out[8])
{
    SHA256_CTX c;

    memcpy(c.h, h_in, sizeof(c.h));
    SHA256_Transform(&c, block);
    memcpy(h_out, c.h, sizeof(c.h));
}

static void state_to_bytes(const uint32_t h[8], uint8_t out[CODEC_SHA256_BYTES])
{
    int i;

    for (i = 0; i < 8; i++)
        codec_store32(out + 4 * i, h[i]);
}

static const uint32_t sha256_iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                      0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

codec_err codec_mac_key_init(codec_mac_key *k, const uint8_t *key, size_t len)
{
    uint8_t kb[BLOCK], pad[BLOCK];
    int i;

    memset(kb, 0, sizeof(kb));
    if (len > BLOCK) {
        if (!SHA256(key, len, kb))
            return CODEC_ERR_CRYPTO;
    } else if (len) {
        memcpy(kb, key, len);
    }
    for (i = 0; i < BLOCK; i++)
        pad[i] = kb[i] ^ 0x36;
    compress(sha256_iv, pad, k->inner);
    for (i = 0; i < BLOCK; i++)
        pad[i] = kb[i] ^ 0x5c;
    compress(sha256_iv, pad, k->outer);
    OPENSSL_cleanse(kb, sizeof(kb));
    OPENSSL_cleanse(pad, sizeof(pad));
    return CODEC_OK;
}

void codec_mac_key_wipe(codec_mac_key *k)
{
    OPENSSL_cleanse(k, sizeof(*k));
}

/* Continue a hash from a midstate that has absorbed one block. */
static int resume(SHA256_CTX *c, const uint32_t mid[8])
{
    if (!SHA256_Init(c))
        return 0;
    memcpy(c->h, mid, sizeof(c->h));
    c->Nl = BLOCK * 8;
    c->Nh = 0;
    return 1;
}

codec_err codec_hmac_sha256(const codec_mac_key *k, const uint8_t *msg, size_t len,
                            uint8_t out[CODEC_SHA256_BYTES])
{
    SHA256_CTX c;
    uint8_t ih[CODEC_SHA256_BYTES];
    codec_err err = CODEC_ERR_CRYPTO;

    if (!resume(&c, k->inner) || !SHA256_Update(&c, msg, len) || !SHA256_Final(ih, &c))
        goto out;
    if (!resume(&c, k->outer) || !SHA256_Update(&c, ih, sizeof(ih)) || !SHA256_Final(out, &c))
        goto out;
    err = CODEC_OK;
out:
    OPENSSL_cleanse(&c, sizeof(c));
    OPENSSL_cleanse(ih, sizeof(ih));
    return err;
}

/* Padding templates: message bytes are copied over the leading zeros.
 * Lengths count the key block too: (64 + 14) * 8 = 624, (64 + 32) * 8 = 768. */
#define TAG_MSG_LEN (CODEC_DOMAIN_LEN + CODEC_BODY_BYTES)
static const uint8_t inner_tmpl[BLOCK] = {
    'T', 'C', '1', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, [62] = 0x02, [63] = 0x70,
};
static const uint8_t outer_tmpl[BLOCK] = {
    [32] = 0x80,
    [62] = 0x03,
    [63] = 0x00,
};

void codec_mac_tag(const codec_mac_key *k, const uint8_t body[CODEC_BODY_BYTES],
                   uint8_t tag[CODEC_TAG_BYTES])
{
    uint8_t inner[BLOCK], outer[BLOCK];
    SHA256_CTX c;

    memcpy(inner, inner_tmpl, BLOCK);
    memcpy(inner + CODEC_DOMAIN_LEN, body, CODEC_BODY_BYTES);
    memcpy(c.h, k->inner, sizeof(c.h));
    SHA256_Transform(&c, inner);
    memcpy(outer, outer_tmpl, BLOCK);
    state_to_bytes(c.h, outer);
    memcpy(c.h, k->outer, sizeof(c.h));
    SHA256_Transform(&c, outer);
    /* Only the first 10 bytes (words 0-2) are the tag. */
    codec_store32(outer, c.h[0]);
    codec_store32(outer + 4, c.h[1]);
    codec_store32(outer + 8, c.h[2]);
    memcpy(tag, outer, CODEC_TAG_BYTES);
}

codec_err codec_mac_mint(const codec_mac_key *k, const codec_fields *f,
                         uint8_t code[CODEC_MAC_BYTES])
{
    codec_err err;

    if (f->profile != CODEC_PROFILE_MAC)
        return CODEC_ERR_PROFILE;
    err = codec_body_pack(f, code);
    if (err)
        return err;
    codec_mac_tag(k, code, code + CODEC_BODY_BYTES);
    return CODEC_OK;
}

codec_err codec_mac_check(const codec_mac_key *k, const uint8_t code[CODEC_MAC_BYTES])
{
    uint8_t tag[CODEC_TAG_BYTES];

    codec_mac_tag(k, code, tag);
    return CRYPTO_memcmp(tag, code + CODEC_BODY_BYTES, CODEC_TAG_BYTES) == 0 ? CODEC_OK
                                                                             : CODEC_ERR_TAG;
}
