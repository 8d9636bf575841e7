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

static unsigned code_point(const uint8_t *s, size_t l)
{
    static const uint8_t lead_mask[5] = {0, 0x7f, 0x1f, 0x0f, 0x07};
    unsigned cp = s[0] & lead_mask[l];
    size_t i;

    for (i = 1; i < l; i++)
        cp = cp << 6 | (s[i] & 0x3f);
    return cp;
}

/* Characters that change how the text around them is shown without being
 * seen themselves: C1 controls, bidirectional embeddings, overrides and
 * isolates (a maker's name that reads backwards on the scan page), zero
 * widths and the byte-order mark. */
static int invisible(unsigned cp)
{
    return (cp >= 0x80 && cp <= 0x9f) || cp == 0x061c || (cp >= 0x200b && cp <= 0x200f) ||
           (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2060 && cp <= 0x2064) ||
           (cp >= 0x2066 && cp <= 0x2069) || cp == 0xfeff;
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
        size_t l = codec_utf8_len((const uint8_t *)s + i, n - i);
        unsigned cp;
        if (l == 0 || (l == 1 && ((unsigned char)s[i] < 0x20 || s[i] == 0x7f))) {
            svc_fail(st, SVC_INVALID_ARGUMENT, "%s has an invalid or control byte at offset %zu",
                     field, i);
            return 0;
        }
        cp = code_point((const uint8_t *)s + i, l);
        if (invisible(cp)) {
            svc_fail(st, SVC_INVALID_ARGUMENT,
                     "%s has the invisible or direction-changing character U+%04X at offset %zu; "
                     "text shown to consumers must read as it is stored",
                     field, cp, i);
            return 0;
        }
        i += l;
    }
    return 1;
}

int check_credit_code(svc_status *st, const char *field, const char *s)
{
    static const char alphabet[] = "0123456789ABCDEFGHJKLMNPQRTUWXY";
    static const unsigned weight[17] = {1,  3,  9,  27, 19, 26, 16, 17, 20,
                                        29, 25, 13, 8,  24, 10, 30, 28};
    unsigned sum = 0, want;
    size_t n = s ? strnlen(s, 19) : 0, i;

    if (n != 18) {
        svc_fail(st, SVC_INVALID_ARGUMENT,
                 "%s must be an 18-character unified social credit code (GB 32100), not %zu%s "
                 "characters",
                 field, n, n > 18 ? " or more" : "");
        return 0;
    }
    for (i = 0; i < 18; i++) {
        const char *p = s[i] ? strchr(alphabet, s[i]) : NULL;
        if (!p) {
            svc_fail(st, SVC_INVALID_ARGUMENT,
                     "%s has '%c' at offset %zu; a credit code uses 0-9 and the upper-case "
                     "letters other than I O S V Z",
                     field, (unsigned char)s[i] >= 0x20 && (unsigned char)s[i] < 0x7f ? s[i] : '?',
                     i);
            return 0;
        }
        if (i < 17)
            sum += weight[i] * (unsigned)(p - alphabet);
    }
    want = (31 - sum % 31) % 31;
    if (s[17] != alphabet[want]) {
        svc_fail(st, SVC_INVALID_ARGUMENT,
                 "%s '%s' fails its check character: '%c' computed, '%c' given (mistyped?)", field,
                 s, alphabet[want], s[17]);
        return 0;
    }
    return 1;
}

int check_gtin(svc_status *st, const char *field, const char *s)
{
    size_t n = s ? strnlen(s, 15) : 0, i;
    unsigned sum = 0, want;

    if (n == 0)
        return 1;
    if (n != 8 && n != 12 && n != 13 && n != 14) {
        svc_fail(st, SVC_INVALID_ARGUMENT, "%s must have 8, 12, 13 or 14 digits, not %zu%s", field,
                 n, n > 14 ? " or more" : "");
        return 0;
    }
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            svc_fail(st, SVC_INVALID_ARGUMENT, "%s must be digits only (offset %zu)", field, i);
            return 0;
        }
        /* Weights 3, 1, 3, ... from the digit left of the check digit. */
        if (i < n - 1)
            sum += (unsigned)(s[i] - '0') * ((n - 1 - i) % 2 ? 3u : 1u);
    }
    want = (10 - sum % 10) % 10;
    if ((unsigned)(s[n - 1] - '0') != want) {
        svc_fail(st, SVC_INVALID_ARGUMENT,
                 "%s '%s' fails its GS1 check digit: %u computed, %c given", field, s, want,
                 s[n - 1]);
        return 0;
    }
    return 1;
}

int check_category(svc_status *st, const char *field, const char *s)
{
    size_t n = s ? strnlen(s, REP_CATEGORY_MAX + 1) : 0, i;

    if (n < 2 || n > REP_CATEGORY_MAX) {
        svc_fail(st, SVC_INVALID_ARGUMENT, "%s must have 2 to %d characters, not %zu%s", field,
                 REP_CATEGORY_MAX, n, n > REP_CATEGORY_MAX ? " or more" : "");
        return 0;
    }
    for (i = 0; i < n; i++) {
        char ch = s[i];
        int alnum = (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
        if (!alnum && (i == 0 || (ch != '.' && ch != '-'))) {
            svc_fail(st, SVC_INVALID_ARGUMENT,
                     "%s has '%c' at offset %zu; a category code is upper-case letters and "
                     "digits, then also '.' and '-'",
                     field, (unsigned char)ch >= 0x20 && (unsigned char)ch < 0x7f ? ch : '?', i);
            return 0;
        }
    }
    return 1;
}

int check_canonical_code(const char *in, char out[CODEC_MAX_TEXT_LEN + 1])
{
    codec_code c;
    codec_err e = codec_parse_any(in, strlen(in), &c, NULL);

    return e == CODEC_OK && codec_text_encode(c.bin, c.len, out, CODEC_MAX_TEXT_LEN + 1) > 0;
}
