/*
 * codec_int.h - private helpers of codec/: big-endian load/store and a
 * bounded text builder. Not installed, not for other modules.
 */
#ifndef TC_CODEC_INT_H
#define TC_CODEC_INT_H

#include "codec.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

static inline uint32_t codec_load32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static inline void codec_store32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline uint64_t codec_load40(const uint8_t *p)
{
    return (uint64_t)p[0] << 32 | (uint64_t)codec_load32(p + 1);
}

static inline void codec_store40(uint8_t *p, uint64_t v)
{
    p[0] = (uint8_t)(v >> 32);
    codec_store32(p + 1, (uint32_t)v);
}

/*
 * A bounded writer: appends while the text fits, keeps counting past the
 * end, so one pass reports the size needed. buf is always terminated when
 * cap > 0.
 */
typedef struct codec_sb {
    char *buf;
    size_t cap;
    size_t len;
} codec_sb;

/* Fill ei (may be NULL) for a failed parse. */
void codec_seterr(codec_errinfo *ei, codec_err code, size_t offset, size_t got, size_t want,
                  int sym);

void codec_sb_init(codec_sb *sb, char *buf, size_t cap);
void codec_sb_put(codec_sb *sb, const char *s, size_t n);
void codec_sb_puts(codec_sb *sb, const char *s);
void codec_sb_printf(codec_sb *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A QR matrix from libqrencode, kept opaque to the rest of codec/. */
typedef struct codec_qrm {
    unsigned width;
    const unsigned char *data; /* width * width bytes, bit 0 = dark */
    void *owner;
} codec_qrm;

codec_err codec_qrm_encode(const char *text, size_t len, int ecc, codec_qrm *m);
void codec_qrm_release(codec_qrm *m);

#endif
