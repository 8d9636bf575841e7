/*
 * check.c - bounded, precise input checks.
 */
#include "check.h"

#include <string.h>

int check_id(svc_status *st, const char *field, const char *s, size_t max)
{
    size_t n = s ? strnlen(s, max + 1) : 0, i;

    if (n == 0) {
        svc_fail(st, SVC_INVALID_ARGUMENT, "%s is required", field);
        return 0;
    }
    if (n > max) {
        svc_fail(st, SVC_INVALID_ARGUMENT, "%s is longer than %zu bytes", field, max);
        return 0;
    }
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-')) {
            svc_fail(st, SVC_INVALID_ARGUMENT,
                     "%s has '%c' at offset %zu; allowed are letters, digits, '.', '_', '-'", field,
                     ch >= 0x20 && ch < 0x7f ? ch : '?', i);
            return 0;
        }
    }
    return 1;
}

/* Length of the UTF-8 sequence at s (of n bytes left), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t len, i;
    unsigned cp;

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

int check_text(svc_status *st, const char *field, const char *s, size_t max, int required)
{
    size_t n = s ? strnlen(s, max + 1) : 0, i = 0;

    if (required && n == 0) {
        svc_fail(st, SVC_INVALID_ARGUMENT, "%s is required", field);
        return 0;
    }
    if (n > max) {
        svc_fail(st, SVC_INVALID_ARGUMENT, "%s is longer than %zu bytes", field, max);
        return 0;
    }
    while (i < n) {
        size_t l = utf8_len((const unsigned char *)s + i, n - i);
        if (l == 0 || (l == 1 && ((unsigned char)s[i] < 0x20 || s[i] == 0x7f))) {
            svc_fail(st, SVC_INVALID_ARGUMENT, "%s has an invalid or control byte at offset %zu",
                     field, i);
            return 0;
        }
        i += l;
    }
    return 1;
}

int check_canonical_code(const char *in, char out[CODEC_MAX_TEXT_LEN + 1])
{
    size_t len = strlen(in);
    codec_code c;
    codec_err e = len != CODEC_MAC_TEXT_LEN && codec_url_has_path(in, len)
                      ? codec_url_parse(in, len, &c, NULL, NULL)
                      : codec_parse(in, len, &c, NULL);

    return e == CODEC_OK && codec_text_encode(c.bin, c.len, out, CODEC_MAX_TEXT_LEN + 1) > 0;
}
