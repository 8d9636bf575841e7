/*
 * fuzz_url.c - the code URL parser and the GS1 Digital Link parser.
 * Asserts: a parsed URL's code segment is the canonical text in any case,
 * and formatting the same base with that code parses back to the same
 * bytes; a parsed Digital Link's GTIN is a valid GTIN-14 and its lot and
 * serial are the code's text split at 14, and formatting it again parses
 * back to the same code and GTIN; the lenient path agrees with both.
 */
#include "codec.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char up(char ch)
{
    return (ch >= 'a' && ch <= 'z') ? (char)(ch - 'a' + 'A') : ch;
}

static void digital_link(const char *s, size_t size)
{
    char gtin[CODEC_GTIN_LEN + 1], g2[CODEC_GTIN_LEN + 1], text[CODEC_MAX_TEXT_LEN + 1];
    char dl[CODEC_DL_MAX + 1];
    codec_errinfo ei;
    codec_code c, d;
    size_t n;

    memset(&ei, 0, sizeof(ei));
    if (codec_dl_parse(s, size, &c, gtin, &ei) != CODEC_OK) {
        if (ei.code == CODEC_OK || ei.offset > size)
            abort();
        return;
    }
    if (strlen(gtin) != CODEC_GTIN_LEN || !codec_gtin14(gtin, CODEC_GTIN_LEN, g2) ||
        strcmp(g2, gtin) != 0 || c.len != CODEC_MAC_BYTES)
        abort();
    n = codec_text_encode(c.bin, c.len, text, sizeof(text));
    if (codec_dl_format("https://tc.example.com", gtin, text, n, dl, sizeof(dl), &n, NULL) !=
            CODEC_OK ||
        codec_dl_parse(dl, n, &d, g2, NULL) != CODEC_OK || strcmp(g2, gtin) != 0 ||
        d.len != c.len || memcmp(d.bin, c.bin, c.len))
        abort();
    if (codec_parse_label(s, size, &d, g2, NULL) == CODEC_OK &&
        (strcmp(g2, gtin) != 0 || memcmp(d.bin, c.bin, c.len)))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    char text[CODEC_MAX_TEXT_LEN + 1], base[CODEC_BASE_URL_MAX + 1], url[512];
    codec_errinfo ei;
    codec_code c, d;
    size_t off, i, n;

    digital_link(s, size);
    memset(&ei, 0, sizeof(ei));
    if (codec_url_parse(s, size, &c, &off, &ei) != CODEC_OK) {
        if (ei.code == CODEC_OK)
            abort();
        return 0;
    }
    n = codec_text_encode(c.bin, c.len, text, sizeof(text));
    if (off < 3 || off + n != size)
        abort();
    for (i = 0; i < n; i++)
        if (up(s[off + i]) != text[i])
            abort();
    /* Re-format with the URL's own base when it is a valid one. */
    if (off - 3 > 0 && off - 3 <= CODEC_BASE_URL_MAX) {
        memcpy(base, s, off - 3);
        base[off - 3] = '\0';
        if (strlen(base) == off - 3 &&
            codec_url_format(base, text, n, url, sizeof(url), &i, NULL) == CODEC_OK) {
            if (codec_url_parse(url, i, &d, NULL, NULL) != CODEC_OK)
                abort();
            if (d.len != c.len || memcmp(d.bin, c.bin, c.len))
                abort();
        }
    }
    return 0;
}
