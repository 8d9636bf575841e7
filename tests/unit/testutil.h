/*
 * testutil.h - small helpers shared by the unit tests: a seeded PRNG (so
 * every run checks the same inputs) and hex decoding for vector tables.
 */
#ifndef TC_TESTUTIL_H
#define TC_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct tu_rng {
    uint64_t s;
} tu_rng;

/* xorshift64*: fast, deterministic, good enough to pick test inputs. */
static inline uint64_t tu_next(tu_rng *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * UINT64_C(2685821657736338717);
}

static inline void tu_fill(tu_rng *r, uint8_t *buf, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++)
        buf[i] = (uint8_t)(tu_next(r) >> 56);
}

/* Decode lower-case hex; returns the byte count. */
static inline size_t tu_unhex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = strlen(hex) / 2, i;

    for (i = 0; i < n && i < cap; i++) {
        unsigned v = 0;
        int j;
        for (j = 0; j < 2; j++) {
            char c = hex[2 * i + (size_t)j];
            v = v * 16 + (unsigned)(c <= '9' ? c - '0' : c - 'a' + 10);
        }
        out[i] = (uint8_t)v;
    }
    return i;
}

#endif
