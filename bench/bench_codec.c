/*
 * tc-bench-codec - codec throughput on one thread, one JSON object a line:
 *
 *   {"name":"mac_verify_codes_per_s","value":...,"unit":"codes/s",...}
 *
 * Rows, all measured in this run (so ratios compare like with like on a
 * shared, noisy machine):
 *   mac_verify          decode 34-char text + kid lookup + tag check
 *   mac_issue           pack + tag + encode to text
 *   limit_two_compressions  two SHA-256 block compressions on precomputed
 *                       inner/outer states: the floor for HMAC of one block
 *   hmac_oneshot        what a naive verifier pays: OpenSSL HMAC() per code
 *   evp_mac_reuse       EVP_MAC context re-initialised per code (no re-key)
 *   ed25519_verify      SIG-profile decode + Ed25519 verify
 *   ed25519_evp_key_builds, ed25519_prepared_key_verify
 *                       where that time goes: OpenSSL's key object per call,
 *                       and a verify with a key object built once
 *   qr_svg / qr_png     one label's QR rendered
 *   sheet_svg           A4 sheets of 24 labels, reported per label
 *
 * Each row runs --reps times for about --seconds each; value is the median,
 * best the fastest repetition. Pin it to one core with taskset -c N.
 */
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include "codec.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NCODES 4096
#define MAX_REPS 15

static volatile uint64_t sink;

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef uint64_t (*bench_fn)(void *ctx, uint64_t iters);

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct result {
    double median, best;
} result;

/* Calibrate an iteration count worth `seconds`, then time `reps` runs. */
static result measure(bench_fn fn, void *ctx, double seconds, int reps)
{
    double rates[MAX_REPS], t0, dt;
    uint64_t iters = 16;
    result r;
    int i;

    for (;;) {
        t0 = now();
        sink += fn(ctx, iters);
        dt = now() - t0;
        if (dt > seconds / 8 || iters > (UINT64_C(1) << 40))
            break;
        iters *= 2;
    }
    iters = (uint64_t)((double)iters * seconds / dt) + 1;
    for (i = 0; i < reps; i++) {
        t0 = now();
        sink += fn(ctx, iters);
        rates[i] = (double)iters / (now() - t0);
    }
    qsort(rates, (size_t)reps, sizeof(double), cmp_double);
    r.median = rates[reps / 2];
    r.best = rates[reps - 1];
    return r;
}

static void emit(const char *name, result r, const char *unit, const char *extra)
{
    printf("{\"name\":\"%s\",\"value\":%.0f,\"unit\":\"%s\",\"best\":%.0f%s}\n", name, r.median,
           unit, r.best, extra ? extra : "");
    fflush(stdout);
}

/* --- fixtures ------------------------------------------------------------ */

typedef struct fixture {
    uint8_t secret[CODEC_KEY_BYTES];
    uint8_t seed[CODEC_KEY_BYTES];
    uint8_t pub[CODEC_PUB_BYTES];
    codec_mac_key key;
    const codec_mac_key *ring[CODEC_KID_MAX + 1]; /* kid -> key, as a keyring holds them */
    char mac_text[NCODES][CODEC_MAC_TEXT_LEN];
    uint8_t mac_bin[NCODES][CODEC_MAC_BYTES];
    char sig_text[64][CODEC_SIG_TEXT_LEN];
    char url[NCODES][CODEC_BASE_URL_MAX + 4 + CODEC_MAC_TEXT_LEN];
    size_t url_len[NCODES];
    EVP_MAC_CTX *mac_ctx;
    uint32_t inner_mid[8], outer_mid[8];
    char *out;
    size_t out_cap;
} fixture;

static void fixture_init(fixture *fx)
{
    codec_fields f = {CODEC_VERSION, CODEC_PROFILE_MAC, 1, 0, 0};
    EVP_MAC *mac;
    OSSL_PARAM params[2];
    int i;

    for (i = 0; i < CODEC_KEY_BYTES; i++) {
        fx->secret[i] = (uint8_t)(i * 7 + 1);
        fx->seed[i] = (uint8_t)(i * 13 + 5);
    }
    codec_mac_key_init(&fx->key, fx->secret, sizeof(fx->secret));
    memset(fx->ring, 0, sizeof(fx->ring));
    fx->ring[1] = &fx->key;
    codec_ed25519_public(fx->seed, fx->pub);
    memcpy(fx->inner_mid, fx->key.inner, sizeof(fx->inner_mid));
    memcpy(fx->outer_mid, fx->key.outer, sizeof(fx->outer_mid));
    for (i = 0; i < NCODES; i++) {
        char t[CODEC_MAX_TEXT_LEN + 1];
        f.batch = (uint64_t)i * 1000003u;
        f.serial = (uint32_t)i * 2654435761u;
        codec_mac_mint(&fx->key, &f, fx->mac_bin[i]);
        codec_text_encode(fx->mac_bin[i], CODEC_MAC_BYTES, t, sizeof(t));
        memcpy(fx->mac_text[i], t, CODEC_MAC_TEXT_LEN);
        codec_url_format("https://tc.samr.example", t, CODEC_MAC_TEXT_LEN, fx->url[i],
                         sizeof(fx->url[i]), &fx->url_len[i], NULL);
    }
    f.profile = CODEC_PROFILE_SIG;
    f.kid = 2;
    for (i = 0; i < 64; i++) {
        uint8_t bin[CODEC_SIGCODE_BYTES];
        char t[CODEC_MAX_TEXT_LEN + 1];
        f.serial = (uint32_t)i;
        codec_sig_mint(fx->seed, &f, bin);
        codec_text_encode(bin, sizeof(bin), t, sizeof(t));
        memcpy(fx->sig_text[i], t, CODEC_SIG_TEXT_LEN);
    }
    mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    fx->mac_ctx = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac);
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    EVP_MAC_init(fx->mac_ctx, fx->secret, sizeof(fx->secret), params);
    fx->out_cap = 1 << 20;
    fx->out = malloc(fx->out_cap);
}

/* --- rows ---------------------------------------------------------------- */

static uint64_t run_mac_verify(void *p, uint64_t iters)
{
    fixture *fx = p;
    uint64_t ok = 0, i;

    for (i = 0; i < iters; i++) {
        codec_code c;
        const codec_mac_key *k;
        if (codec_parse(fx->mac_text[i % NCODES], CODEC_MAC_TEXT_LEN, &c, NULL) != CODEC_OK)
            continue;
        k = fx->ring[c.f.kid];
        ok += k && codec_mac_check(k, c.bin) == CODEC_OK;
    }
    if (ok != iters)
        abort(); /* every code is genuine: anything else is a codec bug */
    return ok;
}

static uint64_t run_mac_issue(void *p, uint64_t iters)
{
    fixture *fx = p;
    codec_fields f = {CODEC_VERSION, CODEC_PROFILE_MAC, 1, 123456, 0};
    uint64_t acc = 0, i;

    for (i = 0; i < iters; i++) {
        uint8_t code[CODEC_MAC_BYTES];
        char text[CODEC_MAC_TEXT_LEN + 1];
        f.serial = (uint32_t)i;
        codec_mac_mint(&fx->key, &f, code);
        acc += codec_text_encode(code, sizeof(code), text, sizeof(text)) + (uint8_t)text[33];
    }
    return acc;
}

/* The floor: two block compressions with data dependency between them,
 * on blocks prepared outside the loop except for the 32-byte hand-off. */
static uint64_t run_limit(void *p, uint64_t iters)
{
    fixture *fx = p;
    uint8_t inner[64], outer[64];
    SHA256_CTX c;
    uint64_t acc = 0, i;
    int j;

    memset(inner, 0, sizeof(inner));
    memset(outer, 0, sizeof(outer));
    inner[14] = 0x80;
    inner[62] = 0x02;
    inner[63] = 0x70;
    outer[32] = 0x80;
    outer[62] = 0x03;
    for (i = 0; i < iters; i++) {
        memcpy(inner, fx->mac_bin[i % NCODES], CODEC_BODY_BYTES);
        memcpy(c.h, fx->inner_mid, sizeof(c.h));
        SHA256_Transform(&c, inner);
        for (j = 0; j < 8; j++) {
            outer[4 * j] = (uint8_t)(c.h[j] >> 24);
            outer[4 * j + 1] = (uint8_t)(c.h[j] >> 16);
            outer[4 * j + 2] = (uint8_t)(c.h[j] >> 8);
            outer[4 * j + 3] = (uint8_t)c.h[j];
        }
        memcpy(c.h, fx->outer_mid, sizeof(c.h));
        SHA256_Transform(&c, outer);
        acc += c.h[0];
    }
    return acc;
}

static uint64_t run_hmac_oneshot(void *p, uint64_t iters)
{
    fixture *fx = p;
    uint8_t msg[CODEC_DOMAIN_LEN + CODEC_BODY_BYTES], out[32];
    uint64_t ok = 0, i;
    unsigned int ol;

    memcpy(msg, CODEC_DOMAIN, CODEC_DOMAIN_LEN);
    for (i = 0; i < iters; i++) {
        const uint8_t *code = fx->mac_bin[i % NCODES];
        memcpy(msg + CODEC_DOMAIN_LEN, code, CODEC_BODY_BYTES);
        HMAC(EVP_sha256(), fx->secret, sizeof(fx->secret), msg, sizeof(msg), out, &ol);
        ok += CRYPTO_memcmp(out, code + CODEC_BODY_BYTES, CODEC_TAG_BYTES) == 0;
    }
    if (ok != iters)
        abort();
    return ok;
}

static uint64_t run_evp_mac_reuse(void *p, uint64_t iters)
{
    fixture *fx = p;
    uint8_t msg[CODEC_DOMAIN_LEN + CODEC_BODY_BYTES], out[32];
    uint64_t ok = 0, i;
    size_t ol;

    memcpy(msg, CODEC_DOMAIN, CODEC_DOMAIN_LEN);
    for (i = 0; i < iters; i++) {
        const uint8_t *code = fx->mac_bin[i % NCODES];
        memcpy(msg + CODEC_DOMAIN_LEN, code, CODEC_BODY_BYTES);
        EVP_MAC_init(fx->mac_ctx, NULL, 0, NULL);
        EVP_MAC_update(fx->mac_ctx, msg, sizeof(msg));
        EVP_MAC_final(fx->mac_ctx, out, &ol, sizeof(out));
        ok += CRYPTO_memcmp(out, code + CODEC_BODY_BYTES, CODEC_TAG_BYTES) == 0;
    }
    if (ok != iters)
        abort();
    return ok;
}

static uint64_t run_ed25519(void *p, uint64_t iters)
{
    fixture *fx = p;
    uint64_t ok = 0, i;

    for (i = 0; i < iters; i++) {
        codec_code c;
        if (codec_parse(fx->sig_text[i % 64], CODEC_SIG_TEXT_LEN, &c, NULL) == CODEC_OK)
            ok += codec_sig_check(fx->pub, c.bin) == CODEC_OK;
    }
    if (ok != iters)
        abort();
    return ok;
}

/* Where Ed25519's time goes: building OpenSSL's key object from raw bytes
 * (what codec_ed25519_verify does per call), and a verify with a key
 * object built once. */
static uint64_t run_ed25519_key(void *p, uint64_t iters)
{
    fixture *fx = p;
    uint64_t ok = 0, i;

    for (i = 0; i < iters; i++) {
        EVP_PKEY *k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, fx->pub, 32);
        ok += k != NULL;
        EVP_PKEY_free(k);
    }
    return ok;
}

static uint64_t run_ed25519_prepared(void *p, uint64_t iters)
{
    fixture *fx = p;
    EVP_PKEY *k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, fx->pub, 32);
    uint64_t ok = 0, i;

    for (i = 0; i < iters; i++) {
        codec_code c;
        uint8_t msg[CODEC_DOMAIN_LEN + CODEC_BODY_BYTES];
        EVP_MD_CTX *m = EVP_MD_CTX_new();
        if (codec_parse(fx->sig_text[i % 64], CODEC_SIG_TEXT_LEN, &c, NULL) == CODEC_OK) {
            memcpy(msg, CODEC_DOMAIN, CODEC_DOMAIN_LEN);
            memcpy(msg + CODEC_DOMAIN_LEN, c.bin, CODEC_BODY_BYTES);
            ok += EVP_DigestVerifyInit(m, NULL, NULL, NULL, k) == 1 &&
                  EVP_DigestVerify(m, c.bin + CODEC_BODY_BYTES, CODEC_SIG_BYTES, msg,
                                   sizeof(msg)) == 1;
        }
        EVP_MD_CTX_free(m);
    }
    EVP_PKEY_free(k);
    if (ok != iters)
        abort();
    return ok;
}

static uint64_t run_qr_svg(void *p, uint64_t iters)
{
    fixture *fx = p;
    codec_qr_opts o = {CODEC_ECC_M, 4, 4};
    uint64_t acc = 0, i;
    size_t need;

    for (i = 0; i < iters; i++) {
        size_t k = i % NCODES;
        if (codec_qr_svg(fx->url[k], fx->url_len[k], &o, fx->out, fx->out_cap, &need, NULL))
            abort();
        acc += need;
    }
    return acc;
}

static uint64_t run_qr_png(void *p, uint64_t iters)
{
    fixture *fx = p;
    codec_qr_opts o = {CODEC_ECC_M, 4, 4};
    uint64_t acc = 0, i;
    size_t need;

    for (i = 0; i < iters; i++) {
        size_t k = i % NCODES;
        if (codec_qr_png(fx->url[k], fx->url_len[k], &o, (uint8_t *)fx->out, fx->out_cap, &need,
                         NULL))
            abort();
        acc += need;
    }
    return acc;
}

/* iters counts labels; whole sheets of 24 are rendered. */
static uint64_t run_sheet(void *p, uint64_t iters)
{
    fixture *fx = p;
    codec_label l[CODEC_SHEET_LABELS];
    char text[CODEC_SHEET_LABELS][CODEC_MAC_TEXT_LEN + 1];
    uint64_t acc = 0, i, sheets = (iters + CODEC_SHEET_LABELS - 1) / CODEC_SHEET_LABELS;
    size_t need;
    int j;

    for (j = 0; j < CODEC_SHEET_LABELS; j++) {
        memcpy(text[j], fx->mac_text[j], CODEC_MAC_TEXT_LEN);
        text[j][CODEC_MAC_TEXT_LEN] = '\0';
        l[j].url = fx->url[j];
        l[j].text = text[j];
    }
    for (i = 0; i < sheets; i++) {
        if (codec_sheet_svg(l, CODEC_SHEET_LABELS, CODEC_ECC_M, fx->out, fx->out_cap, &need))
            abort();
        acc += need;
    }
    return acc;
}

int main(int argc, char **argv)
{
    double seconds = 0.3;
    int reps = 5, i;
    const char *only = NULL;
    fixture *fx;
    result verify, limit, oneshot, r;
    char extra[256];

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            seconds = strtod(argv[++i], NULL);
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
            reps = (int)strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc)
            only = argv[++i];
        else {
            fprintf(stderr, "usage: tc-bench-codec [--seconds S] [--reps N] [--only NAME]\n");
            return 2;
        }
    }
    if (seconds <= 0 || seconds > 60 || reps < 1 || reps > MAX_REPS) {
        fprintf(stderr, "tc-bench-codec: --seconds must be in (0, 60], --reps in 1..%d\n",
                MAX_REPS);
        return 2;
    }
    fx = malloc(sizeof(*fx));
    if (!fx)
        return 1;
    fixture_init(fx);

#define WANT(name) (!only || strstr(name, only))
    verify = measure(run_mac_verify, fx, seconds, reps);
    limit = measure(run_limit, fx, seconds, reps);
    oneshot = measure(run_hmac_oneshot, fx, seconds, reps);
    snprintf(extra, sizeof(extra),
             ",\"of_limit\":%.3f,\"x_hmac_oneshot\":%.2f,\"ns_per_code\":%.1f",
             verify.median / limit.median, verify.median / oneshot.median, 1e9 / verify.median);
    emit("mac_verify_codes_per_s", verify, "codes/s", extra);
    snprintf(extra, sizeof(extra), ",\"ns_per_code\":%.1f", 1e9 / limit.median);
    emit("limit_two_compressions_per_s", limit, "codes/s", extra);
    snprintf(extra, sizeof(extra), ",\"ns_per_code\":%.1f", 1e9 / oneshot.median);
    emit("hmac_oneshot_codes_per_s", oneshot, "codes/s", extra);
    if (WANT("mac_issue")) {
        r = measure(run_mac_issue, fx, seconds, reps);
        snprintf(extra, sizeof(extra), ",\"ns_per_code\":%.1f", 1e9 / r.median);
        emit("mac_issue_codes_per_s", r, "codes/s", extra);
    }
    if (WANT("evp_mac_reuse")) {
        r = measure(run_evp_mac_reuse, fx, seconds, reps);
        snprintf(extra, sizeof(extra), ",\"ns_per_code\":%.1f", 1e9 / r.median);
        emit("evp_mac_reuse_codes_per_s", r, "codes/s", extra);
    }
    if (WANT("ed25519")) {
        emit("ed25519_verify_per_s", measure(run_ed25519, fx, seconds, reps), "codes/s", NULL);
        emit("ed25519_evp_key_builds_per_s", measure(run_ed25519_key, fx, seconds, reps), "keys/s",
             NULL);
        emit("ed25519_prepared_key_verify_per_s", measure(run_ed25519_prepared, fx, seconds, reps),
             "codes/s", NULL);
    }
    if (WANT("qr_svg"))
        emit("qr_svg_renders_per_s", measure(run_qr_svg, fx, seconds, reps), "renders/s", NULL);
    if (WANT("qr_png"))
        emit("qr_png_renders_per_s", measure(run_qr_png, fx, seconds, reps), "renders/s", NULL);
    if (WANT("sheet"))
        emit("sheet_svg_labels_per_s", measure(run_sheet, fx, seconds, reps), "labels/s", NULL);
#undef WANT

    EVP_MAC_CTX_free(fx->mac_ctx);
    free(fx->out);
    codec_mac_key_wipe(&fx->key);
    free(fx);
    return 0;
}
