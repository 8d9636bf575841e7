/*
 * utf8.c - UTF-8 as RFC 3629 defines it (shortest forms, no surrogates,
 * nothing above U+10FFFF), and text into JSON strings. Pure: no
 * allocation, no state.
 */
#include "codec.h"

#include <string.h>

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

size_t codec_json_escape(const char *s, size_t n, char *out, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    size_t len = 0, i;

    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        char e[6];
        size_t k;
        if (ch == '"' || ch == '\\') {
            e[0] = '\\';
            e[1] = (char)ch;
            k = 2;
        } else if (ch < 0x20 || ch == 0x7f) {
            memcpy(e, "\\u00", 4);
            e[4] = hex[ch >> 4];
            e[5] = hex[ch & 15];
            k = 6;
        } else {
            e[0] = (char)ch;
            k = 1;
        }
        if (len + k < cap)
            memcpy(out + len, e, k);
        else if (len < cap)
            cap = len + 1; /* out of room: stop writing, keep counting */
        len += k;
    }
    if (cap)
        out[len < cap ? len : cap - 1] = '\0';
    return len;
}

size_t codec_roff_escape(const char *s, size_t n, char *out, size_t cap)
{
    size_t len = 0, i;

    for (i = 0; i < n; i++) {
        char e[3] = {'\\', s[i], 0};
        size_t k = 2;
        if (s[i] == '\\')
            e[1] = 'e';
        else if ((s[i] == '.' || s[i] == '\'') && (i == 0 || s[i - 1] == '\n')) {
            e[1] = '&';
            e[2] = s[i];
            k = 3;
        } else if (s[i] != '-') {
            e[0] = s[i];
            k = 1;
        }
        if (len + k < cap)
            memcpy(out + len, e, k);
        else if (len < cap)
            cap = len + 1; /* out of room: stop writing, keep counting */
        len += k;
    }
    if (cap)
        out[len < cap ? len : cap - 1] = '\0';
    return len;
}
