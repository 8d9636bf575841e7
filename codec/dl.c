/*
 * dl.c - the GS1 Digital Link form of a code (docs/CODES.md):
 *
 *   https://HOST/01/GTIN14/10/LOT/21/SERIAL
 *
 * The product's GTIN-14 is the primary key (AI 01); the code's 34
 * symbols are split over the two key qualifiers GS1 defines for a GTIN
 * that can hold them: the lot (AI 10, at most 20 characters) takes the
 * first 14 - version, profile, key id, batch and the top of the serial -
 * and the serial (AI 21, at most 20) the last 20 - the rest of the serial
 * and the tag. Both are upper-case Crockford symbols, inside the GS1
 * character set 82 and QR's alphanumeric set; only the scheme is lower
 * case (GS1 Digital Link tools require it so).
 */
#include "codec.h"
#include "codec_int.h"

#include <string.h>
#include <strings.h>

static unsigned char upper(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') ? (unsigned char)(ch - 'a' + 'A') : ch;
}

static int digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

int codec_gtin14(const char *s, size_t n, char out[CODEC_GTIN_LEN + 1])
{
    unsigned sum = 0;

    if ((n != 8 && n != 12 && n != 13 && n != 14) || !digits(s, n))
        return 0;
    /* Weights 3, 1, 3, ... from the digit left of the check digit. */
    for (size_t i = 0; i + 1 < n; i++)
        sum += (unsigned)(s[i] - '0') * ((n - 1 - i) % 2 ? 3u : 1u);
    if ((unsigned)(s[n - 1] - '0') != (10 - sum % 10) % 10)
        return 0;
    if (out) {
        memset(out, '0', CODEC_GTIN_LEN - n);
        memcpy(out + CODEC_GTIN_LEN - n, s, n);
        out[CODEC_GTIN_LEN] = '\0';
    }
    return 1;
}

/* QR alphanumeric mode's set without space: what a host and path keep. */
static int url_char(unsigned char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'A' && ch <= 'Z') || ch == '$' || ch == '%' ||
           ch == '*' || ch == '+' || ch == '-' || ch == '.' || ch == '/' || ch == ':';
}

codec_err codec_dl_format(const char *base, const char *gtin, const char *text, size_t textlen,
                          char *out, size_t cap, size_t *need, codec_errinfo *ei)
{
    char g[CODEC_GTIN_LEN + 1];
    size_t blen = strlen(base), skip, i, n, o;

    if (textlen != CODEC_MAC_TEXT_LEN) { /* 120 SIG symbols do not fit AI 10 + AI 21 */
        codec_seterr(ei, CODEC_ERR_LENGTH, 0, textlen, CODEC_MAC_TEXT_LEN, 0);
        return CODEC_ERR_LENGTH;
    }
    if (!gtin || !codec_gtin14(gtin, strlen(gtin), g)) {
        codec_seterr(ei, CODEC_ERR_GTIN, 0, gtin ? strlen(gtin) : 0, CODEC_GTIN_LEN, 0);
        return CODEC_ERR_GTIN;
    }
    while (blen && base[blen - 1] == '/')
        blen--;
    if (blen >= 8 && strncasecmp(base, "https://", 8) == 0)
        skip = 8;
    else if (blen >= 7 && strncasecmp(base, "http://", 7) == 0)
        skip = 7;
    else {
        codec_seterr(ei, CODEC_ERR_URL, 0, 0, 0, blen ? base[0] : 0);
        return CODEC_ERR_URL;
    }
    if (blen == skip || blen > CODEC_BASE_URL_MAX) {
        codec_seterr(ei, CODEC_ERR_LENGTH, 0, blen, CODEC_BASE_URL_MAX, 0);
        return CODEC_ERR_LENGTH;
    }
    for (i = skip; i < blen; i++)
        if (!url_char(upper((unsigned char)base[i]))) {
            codec_seterr(ei, CODEC_ERR_URL, i, 0, 0, base[i]);
            return CODEC_ERR_URL;
        }
    n = blen + 4 + CODEC_GTIN_LEN + 4 + CODEC_DL_LOT_LEN + 4 +
        (CODEC_MAC_TEXT_LEN - CODEC_DL_LOT_LEN);
    if (need)
        *need = n;
    if (cap < n + 1)
        return CODEC_ERR_SPACE;
    for (i = 0; i < skip; i++) /* the scheme in lower case, the rest upper */
        out[i] = (char)(base[i] | 0x20);
    for (o = skip; o < blen; o++)
        out[o] = (char)upper((unsigned char)base[o]);
    memcpy(out + o, "/01/", 4);
    memcpy(out + o + 4, g, CODEC_GTIN_LEN);
    o += 4 + CODEC_GTIN_LEN;
    memcpy(out + o, "/10/", 4);
    for (i = 0; i < CODEC_DL_LOT_LEN; i++)
        out[o + 4 + i] = (char)upper((unsigned char)text[i]);
    o += 4 + CODEC_DL_LOT_LEN;
    memcpy(out + o, "/21/", 4);
    for (i = CODEC_DL_LOT_LEN; i < CODEC_MAC_TEXT_LEN; i++)
        out[o + 4 + i - CODEC_DL_LOT_LEN] = (char)upper((unsigned char)text[i]);
    out[n] = '\0';
    return CODEC_OK;
}

/* The offset just past the last "/01/" in s, or 0. */
static size_t primary_key(const char *s, size_t len)
{
    for (size_t i = len; i >= 4; i--)
        if (s[i - 4] == '/' && s[i - 3] == '0' && s[i - 2] == '1' && s[i - 1] == '/')
            return i;
    return 0;
}

int codec_dl_has_path(const char *s, size_t len)
{
    return primary_key(s, len) != 0;
}

codec_err codec_dl_parse(const char *s, size_t len, codec_code *c, char gtin[CODEC_GTIN_LEN + 1],
                         codec_errinfo *ei)
{
    static const size_t serial_len = CODEC_MAC_TEXT_LEN - CODEC_DL_LOT_LEN;
    char text[CODEC_MAC_TEXT_LEN];
    size_t at = primary_key(s, len), end = at, i;
    codec_err err;

    if (!at) {
        codec_seterr(ei, CODEC_ERR_URL, 0, 0, 0, 0);
        return CODEC_ERR_URL;
    }
    while (end < len && s[end] != '?' && s[end] != '#') /* a query or fragment: not ours */
        end++;
    /* GTIN14 "/10/" LOT "/21/" SERIAL, nothing else */
    if (end - at != CODEC_GTIN_LEN + 4 + CODEC_DL_LOT_LEN + 4 + serial_len) {
        codec_seterr(ei, CODEC_ERR_LENGTH, at, end - at,
                     CODEC_GTIN_LEN + 4 + CODEC_DL_LOT_LEN + 4 + serial_len, 0);
        return CODEC_ERR_LENGTH;
    }
    if (memcmp(s + at + CODEC_GTIN_LEN, "/10/", 4) != 0 ||
        memcmp(s + at + CODEC_GTIN_LEN + 4 + CODEC_DL_LOT_LEN, "/21/", 4) != 0) {
        size_t off = memcmp(s + at + CODEC_GTIN_LEN, "/10/", 4) != 0
                         ? at + CODEC_GTIN_LEN
                         : at + CODEC_GTIN_LEN + 4 + CODEC_DL_LOT_LEN;
        codec_seterr(ei, CODEC_ERR_URL, off, 0, 0, s[off]);
        return CODEC_ERR_URL;
    }
    if (!codec_gtin14(s + at, CODEC_GTIN_LEN, gtin)) {
        codec_seterr(ei, CODEC_ERR_GTIN, at, CODEC_GTIN_LEN, CODEC_GTIN_LEN, s[at]);
        return CODEC_ERR_GTIN;
    }
    for (i = 0; i < CODEC_DL_LOT_LEN; i++)
        text[i] = (char)upper((unsigned char)s[at + CODEC_GTIN_LEN + 4 + i]);
    for (i = 0; i < serial_len; i++)
        text[CODEC_DL_LOT_LEN + i] =
            (char)upper((unsigned char)s[at + CODEC_GTIN_LEN + 4 + CODEC_DL_LOT_LEN + 4 + i]);
    err = codec_parse(text, CODEC_MAC_TEXT_LEN, c, ei);
    if (err && ei && (err == CODEC_ERR_SYMBOL || err == CODEC_ERR_PADDING)) {
        size_t k = ei->offset; /* in text: back to s */
        ei->offset = at + CODEC_GTIN_LEN + 4 + k + (k >= CODEC_DL_LOT_LEN ? 4 : 0);
        ei->sym = (unsigned char)s[ei->offset];
    }
    return err;
}
