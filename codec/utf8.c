/*
 * utf8.c - UTF-8 as RFC 3629 defines it (shortest forms, no surrogates,
 * nothing above U+10FFFF). Pure: no allocation, no state.
 */
#include "codec.h"

size_t codec_utf8_len(const uint8_t *s, size_t n)
{
    size_t len, i;
    unsigned cp;

    if (!n)
        return 0;
    if (s[0] < 0x80)
        return 1;
    if ((s[0] & 0xe0) == 0xc0)
        len = 2, cp = s[0] & 0x1f;
    else if ((s[0] & 0xf0) == 0xe0)
        len = 3, cp = s[0] & 0x0f;
    else if ((s[0] & 0xf8) == 0xf0)
        len = 4, cp = s[0] & 0x07;
    else
        return 0;
    if (len > n)
        return 0;
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

int codec_text_check(const uint8_t *s, size_t n, size_t *bad)
{
    size_t i = 0, l;

    while (i < n) {
        if (s[i] && s[i] < 0x80) { /* the common case: printable ASCII */
            i++;
            continue;
        }
        if (!s[i]) {
            *bad = i;
            return CODEC_TEXT_NUL;
        }
        l = codec_utf8_len(s + i, n - i);
        if (!l) {
            *bad = i;
            return CODEC_TEXT_UTF8;
        }
        i += l;
    }
    return CODEC_TEXT_OK;
}
