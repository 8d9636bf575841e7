/*
 * tc-bench-registry - does the verify rate stay flat as the registry
 * grows, and what does the replica cost in memory? In-process, on the real
 * replica and verification engine (no gRPC, no Redis: loading 10 M batches
 * through Redis would take minutes per run).
 *
 *   tc-bench-registry --certs N --batches M [--seconds S]
 *
 * Builds a replica of N certificates (one product each, one manufacturer
 * per 100 certificates) and M batches of 1,000 codes spread over the
 * products, mints 65,536 codes of random batches with a fresh keyring, and
 * verifies them on one thread in read sections of 1,024 codes: one by one
 * (tc_verify, as unary calls do) and in stages (tc_verify_many, as
 * VerifyBatch does). Prints one JSON object: codes/s of each, build time,
 * resident memory (VmRSS) before and after the build.
 */
#include "keys.h"
#include "replica.h"
#include "verify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CODES 65536
#define TEXT (CODEC_MAC_TEXT_LEN + 1)

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;

    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

int main(int argc, char **argv)
{
    unsigned long ncert = 1000, nbatch = 10000, i;
    double seconds = 2, t0, build, single, many;
    char dir[] = "/tmp/tc-bench-reg-XXXXXX", err[256], cmd[128];
    static char codes[CODES][TEXT];
    keys_ring *ring;
    uint64_t seed = 88172645463325252ULL;
    long rss0 = rss_kb(), rss1;
    unsigned long done = 0, genuine = 0;
    int slot, a;
    rep *r;

    for (a = 1; a + 1 < argc; a += 2) {
        if (!strcmp(argv[a], "--certs"))
            ncert = strtoul(argv[a + 1], NULL, 10);
        else if (!strcmp(argv[a], "--batches"))
            nbatch = strtoul(argv[a + 1], NULL, 10);
        else if (!strcmp(argv[a], "--seconds"))
            seconds = strtod(argv[a + 1], NULL);
    }
    if (!ncert || ncert > 10000000 || !nbatch || nbatch > 100000000 || seconds <= 0 ||
        seconds > 60) {
        fprintf(stderr, "usage: tc-bench-registry --certs 1..1e7 --batches 1..1e8 "
                        "[--seconds S]\n");
        return 2;
    }
    if (!mkdtemp(dir) || keys_init_dir(dir, err, sizeof(err)) ||
        keys_open(dir, &ring, err, sizeof(err))) {
        fprintf(stderr, "tc-bench-registry: keyring: %s\n", err);
        return 1;
    }
    r = rep_new();
    t0 = now();
    for (i = 0; i < ncert; i++) {
        static const char *cats[] = {"0704"};
        char num[32], mfr[32];
        rep_cert_fields f;
        char pid[32];
        rep_product_fields p = {pid, "0704", "Bench", "PB-10000", "", 0};

        snprintf(num, sizeof(num), "C%lu", i);
        snprintf(mfr, sizeof(mfr), "M%lu", i / 100);
        if (i % 100 == 0)
            rep_put_mfr(r, mfr, "Bench Manufacturing Co.", REP_MFR_ACTIVE);
        f = (rep_cert_fields){num, REP_KIND_CCC, mfr, cats, 1, REP_CERT_VALID, "", 0, 1};
        rep_put_cert(r, &f);
        snprintf(pid, sizeof(pid), "P%lu", i);
        if (rep_put_product(r, &p, num, mfr) != REP_OK) {
            fprintf(stderr, "tc-bench-registry: cannot add product %lu\n", i);
            return 1;
        }
    }
    for (i = 1; i <= nbatch; i++) {
        char pid[32];
        snprintf(pid, sizeof(pid), "P%lu", (i * 2654435761u) % ncert);
        if (rep_put_batch(r, i, pid, 1000, keys_active(ring, KEYS_KIND_MAC), REP_PROFILE_MAC, 1) !=
            REP_OK) {
            fprintf(stderr, "tc-bench-registry: cannot add batch %lu\n", i);
            return 1;
        }
    }
    build = now() - t0;
    rss1 = rss_kb();
    for (i = 0; i < CODES; i++) {
        codec_fields f = {0, CODEC_PROFILE_MAC, 0, 1 + rnd(&seed) % nbatch,
                          (uint32_t)(rnd(&seed) % 1000)};
        uint8_t bin[CODEC_MAX_BYTES];
        size_t len;
        keys_mint(ring, &f, bin, &len);
        codec_text_encode(bin, len, codes[i], TEXT);
    }
    slot = rep_reader_register(r);
    /* One by one (tc_verify, as a unary call does)... */
    t0 = now();
    while (now() - t0 < seconds) {
        size_t k;
        for (k = 0; k < CODES; k += 1024) {
            size_t j;
            rep_read_begin(r, slot);
            for (j = k; j < k + 1024; j++) {
                tc_vres v;
                tc_verify(r, ring, codes[j], CODEC_MAC_TEXT_LEN, NULL, 1800000000, &v);
                genuine += v.verdict == TC_GENUINE;
            }
            rep_read_end(r, slot);
        }
        done += CODES;
    }
    single = done / (now() - t0);
    /* ...and 1,024 at a time in stages (tc_verify_many, as VerifyBatch does). */
    {
        static tc_item items[1024];
        static tc_vres out[1024];
        static tc_scratch scr[1024];
        unsigned long done2 = 0;
        t0 = now();
        while (now() - t0 < seconds) {
            size_t k, j;
            for (k = 0; k < CODES; k += 1024) {
                for (j = 0; j < 1024; j++) {
                    items[j].code = codes[k + j];
                    items[j].len = CODEC_MAC_TEXT_LEN;
                    items[j].listing = NULL;
                }
                rep_read_begin(r, slot);
                tc_verify_many(r, ring, items, 1024, 1800000000, out, scr);
                rep_read_end(r, slot);
                for (j = 0; j < 1024; j++)
                    genuine += out[j].verdict == TC_GENUINE;
            }
            done2 += CODES;
        }
        many = done2 / (now() - t0);
        done += done2;
    }
    printf("{\"certs\":%lu,\"batches\":%lu,\"codes_per_s_single\":%.0f,"
           "\"codes_per_s_batch1024\":%.0f,\"genuine\":%.4f,\"build_s\":%.1f,"
           "\"rss_mib\":%.0f,\"replica_mib\":%.0f}\n",
           ncert, nbatch, single, many, (double)genuine / done, build, rss1 / 1024.0,
           (rss1 - rss0) / 1024.0);
    keys_free(ring);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        return 1;
    /* The replica is left to the process exit: freeing 10 M records only
     * costs time here. */
    return genuine == done ? 0 : 1;
}
