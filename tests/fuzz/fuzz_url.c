/*
 * fuzz_url.c - the code URL parser. Asserts: a parsed URL's code segment
 * is the canonical text in any case, and formatting the same base with
 * that code parses back to the same bytes.
 */
#include "codec.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char up(char ch)
{
    return (ch >= 'a' && ch <= 'z') ? (char)(ch - 'a' + 'A') : ch;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    char text[CODEC_MAX_TEXT_LEN + 1], base[CODEC_BASE_URL_MAX + 1], url[512];
    codec_errinfo ei;
    codec_code c, d;
    size_t off, i, n;

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
