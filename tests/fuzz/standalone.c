/*
 * standalone.c - a driver for the fuzz targets where libFuzzer is not
 * available (gcc builds): replays every seed file, then feeds a bounded
 * number of deterministic mutations of them (bit flips, byte changes,
 * insertions, deletions, splices, case flips).
 *
 *   fuzz_X_replay -runs=N SEED_DIR...
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_SEEDS 4096
#define INPUT_MAX 4096

static uint8_t *seeds[MAX_SEEDS];
static size_t seed_len[MAX_SEEDS], nseeds;

static uint64_t rng = 0x2545f4914f6cdd1dULL;

static uint64_t next(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * UINT64_C(2685821657736338717);
}

static void load_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;

    if (!d) {
        fprintf(stderr, "standalone: cannot open '%s'\n", dir);
        exit(2);
    }
    while ((e = readdir(d)) != NULL && nseeds < MAX_SEEDS) {
        char path[4096];
        uint8_t buf[INPUT_MAX];
        FILE *f;
        size_t n;

        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        f = fopen(path, "rb");
        if (!f)
            continue;
        n = fread(buf, 1, sizeof(buf), f);
        fclose(f);
        seeds[nseeds] = malloc(n ? n : 1);
        if (!seeds[nseeds])
            exit(2);
        memcpy(seeds[nseeds], buf, n);
        seed_len[nseeds++] = n;
    }
    closedir(d);
}

static size_t mutate(uint8_t *buf, size_t n)
{
    static const char interesting[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZabcILOU-/ \n\0\x80\xff";
    unsigned k = 1 + (unsigned)(next() % 4);

    while (k--) {
        size_t at = n ? (size_t)(next() % n) : 0;
        switch (next() % 7) {
        case 0:
            if (n)
                buf[at] ^= (uint8_t)(1u << (next() % 8));
            break;
        case 1:
            if (n)
                buf[at] = (uint8_t)interesting[next() % (sizeof(interesting) - 1)];
            break;
        case 2:
            if (n < INPUT_MAX) {
                memmove(buf + at + 1, buf + at, n - at);
                buf[at] = (uint8_t)interesting[next() % (sizeof(interesting) - 1)];
                n++;
            }
            break;
        case 3:
            if (n) {
                memmove(buf + at, buf + at + 1, n - at - 1);
                n--;
            }
            break;
        case 4:
            n = at; /* truncate */
            break;
        case 5: {
            size_t s = (size_t)(next() % nseeds), m = seed_len[s], from = m ? next() % m : 0;
            size_t take = m - from;
            if (at + take > INPUT_MAX)
                take = INPUT_MAX - at;
            memcpy(buf + at, seeds[s] + from, take);
            if (at + take > n)
                n = at + take;
            break;
        }
        default:
            if (n && buf[at] >= 'A' && buf[at] <= 'Z')
                buf[at] = (uint8_t)(buf[at] - 'A' + 'a');
            else if (n && buf[at] >= 'a' && buf[at] <= 'z')
                buf[at] = (uint8_t)(buf[at] - 'a' + 'A');
        }
    }
    return n;
}

int main(int argc, char **argv)
{
    unsigned long runs = 100000, i;
    uint8_t buf[INPUT_MAX];
    int a;

    for (a = 1; a < argc; a++) {
        if (strncmp(argv[a], "-runs=", 6) == 0)
            runs = strtoul(argv[a] + 6, NULL, 10);
        else if (argv[a][0] != '-')
            load_dir(argv[a]);
    }
    if (nseeds == 0) {
        seeds[0] = (uint8_t *)"";
        seed_len[0] = 0;
        nseeds = 1;
    }
    for (i = 0; i < nseeds; i++)
        LLVMFuzzerTestOneInput(seeds[i], seed_len[i]);
    for (i = 0; i < runs; i++) {
        size_t s = (size_t)(next() % nseeds), n = seed_len[s];
        memcpy(buf, seeds[s], n);
        n = mutate(buf, n);
        LLVMFuzzerTestOneInput(buf, n);
    }
    printf("standalone: %zu seeds, %lu mutated inputs, no failure\n", nseeds, runs);
    return 0;
}
