/*
 * keyfile.c - the key file's text format: a strict parser and its inverse.
 * Pure: no I/O, no allocation.
 */
#include "keys.h"
#include "keys_int.h"

#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define MAGIC "tracecode-key v1"
#define CREATED_MAX INT64_C(4611686018427387903) /* 2^62 - 1 */

const char *keys_kind_name(keys_kind kind)
{
    switch (kind) {
    case KEYS_KIND_MAC:
        return "mac";
    case KEYS_KIND_ED25519:
        return "ed25519";
    }
    return "?";
}

const char *keys_state_name(keys_state state)
{
    switch (state) {
    case KEYS_ACTIVE:
        return "active";
    case KEYS_VERIFY_ONLY:
        return "verify-only";
    case KEYS_RETIRED:
        return "retired";
    }
    return "?";
}

keys_err keys_fail(keys_err err, char *errbuf, size_t errcap, const char *fmt, ...)
{
    va_list ap;

    if (errbuf && errcap) {
        va_start(ap, fmt);
        vsnprintf(errbuf, errcap, fmt, ap);
        va_end(ap);
    }
    return err;
}

/* A cursor over the file's lines. */
typedef struct lines {
    const char *p, *end;
    unsigned no;
} lines;

/* Next line without its '\n' (which must be there). 0 at a missing line. */
static int next_line(lines *ls, const char **s, size_t *n)
{
    const char *nl;

    if (ls->p >= ls->end)
        return 0;
    nl = memchr(ls->p, '\n', (size_t)(ls->end - ls->p));
    if (!nl)
        return 0;
    *s = ls->p;
    *n = (size_t)(nl - ls->p);
    ls->p = nl + 1;
    ls->no++;
    return 1;
}

/* "name value": returns value, or NULL when the line is not that field. */
static const char *field(const char *s, size_t n, const char *name, size_t *vlen)
{
    size_t k = strlen(name);

    if (n < k + 2 || memcmp(s, name, k) != 0 || s[k] != ' ')
        return NULL;
    *vlen = n - k - 1;
    return s + k + 1;
}

/* Decimal without sign or leading zeros, at most max. */
static int parse_uint(const char *s, size_t n, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    size_t i;

    if (n == 0 || n > 20 || (n > 1 && s[0] == '0'))
        return 0;
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        if (v > (max - (uint64_t)(s[i] - '0')) / 10)
            return 0;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return 1;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

#define EXPECT(name)                                                                               \
    do {                                                                                           \
        if (!next_line(&ls, &s, &n))                                                               \
            return keys_fail(KEYS_ERR_FORMAT, errbuf, errcap,                                      \
                             "line %u: missing field '%s' (file truncated?)", ls.no + 1, name);    \
        v = field(s, n, name, &vn);                                                                \
        if (!v)                                                                                    \
            return keys_fail(KEYS_ERR_FORMAT, errbuf, errcap, "line %u: want field '%s'", ls.no,   \
                             name);                                                                \
    } while (0)

keys_err keys_record_parse(const char *buf, size_t len, keys_record *r, char *errbuf, size_t errcap)
{
    lines ls = {buf, buf + len, 0};
    const char *s, *v;
    size_t n, vn, i;
    uint64_t u;

    memset(r, 0, sizeof(*r));
    if (len > KEYS_FILE_MAX)
        return keys_fail(KEYS_ERR_SIZE, errbuf, errcap, "file has %zu bytes, limit %d", len,
                         KEYS_FILE_MAX);
    if (!next_line(&ls, &s, &n) || n != strlen(MAGIC) || memcmp(s, MAGIC, n) != 0)
        return keys_fail(KEYS_ERR_FORMAT, errbuf, errcap, "line 1: want '%s'", MAGIC);

    EXPECT("kid");
    if (!parse_uint(v, vn, CODEC_KID_MAX, &u) || u == 0)
        return keys_fail(KEYS_ERR_FORMAT, errbuf, errcap, "line %u: kid must be 1..%d", ls.no,
                         CODEC_KID_MAX);
    r->kid = (unsigned)u;

    EXPECT("kind");
    if (vn == 3 && memcmp(v, "mac", 3) == 0)
        r->kind = KEYS_KIND_MAC;
    else if (vn == 7 && memcmp(v, "ed25519", 7) == 0)
        r->kind = KEYS_KIND_ED25519;
    else
        return keys_fail(KEYS_ERR_FORMAT, errbuf, errcap, "line %u: kind must be mac or ed25519",
                         ls.no);

    EXPECT("state");
    if (vn == 6 && memcmp(v, "active", 6) == 0)
        r->state = KEYS_ACTIVE;
    else if (vn == 11 && memcmp(v, "verify-only", 11) == 0)
        r->state = KEYS_VERIFY_ONLY;
    else if (vn == 7 && memcmp(v, "retired", 7) == 0)
        r->state = KEYS_RETIRED;
    else
        return keys_fail(KEYS_ERR_FORMAT, errbuf, errcap,
                         "line %u: state must be active, verify-only or retired", ls.no);

    EXPECT("created");
    if (!parse_uint(v, vn, (uint64_t)CREATED_MAX, &u))
        return keys_fail(KEYS_ERR_FORMAT, errbuf, errcap,
                         "line %u: created must be unix seconds without leading zeros", ls.no);
    r->created = (int64_t)u;

    if (r->state != KEYS_RETIRED) {
        EXPECT("secret");
        if (vn % 2)
            return keys_fail(KEYS_ERR_FORMAT, errbuf, errcap,
                             "line %u: secret has odd hex length %zu", ls.no, vn);
        if (vn != 2 * CODEC_KEY_BYTES)
            return keys_fail(KEYS_ERR_SIZE, errbuf, errcap,
                             "line %u: secret has %zu bytes, want %d", ls.no, vn / 2,
                             CODEC_KEY_BYTES);
        for (i = 0; i < CODEC_KEY_BYTES; i++) {
            int hi = hexval(v[2 * i]), lo = hexval(v[2 * i + 1]);
            if (hi < 0 || lo < 0) {
                OPENSSL_cleanse(r->secret, sizeof(r->secret));
                return keys_fail(KEYS_ERR_FORMAT, errbuf, errcap,
                                 "line %u: secret is not lower-case hex at byte %zu", ls.no, i);
            }
            r->secret[i] = (uint8_t)(hi << 4 | lo);
        }
    }
    if (ls.p != ls.end) {
        OPENSSL_cleanse(r->secret, sizeof(r->secret));
        if (r->state == KEYS_RETIRED)
            return keys_fail(KEYS_ERR_FORMAT, errbuf, errcap,
                             "line %u: a retired key keeps no secret and nothing else", ls.no + 1);
        return keys_fail(KEYS_ERR_FORMAT, errbuf, errcap,
                         "line %u: unexpected text after the secret", ls.no + 1);
    }
    return KEYS_OK;
}

size_t keys_record_format(const keys_record *r, char *buf, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    char sec[2 * CODEC_KEY_BYTES + 1];
    int n;
    size_t i;

    if (r->kid == 0 || r->kid > CODEC_KID_MAX || r->created < 0 ||
        (r->kind != KEYS_KIND_MAC && r->kind != KEYS_KIND_ED25519) ||
        (r->state != KEYS_ACTIVE && r->state != KEYS_VERIFY_ONLY && r->state != KEYS_RETIRED))
        return 0;
    for (i = 0; i < CODEC_KEY_BYTES; i++) {
        sec[2 * i] = hex[r->secret[i] >> 4];
        sec[2 * i + 1] = hex[r->secret[i] & 15];
    }
    sec[2 * CODEC_KEY_BYTES] = '\0';
    if (r->state == KEYS_RETIRED)
        n = snprintf(buf, cap, MAGIC "\nkid %u\nkind %s\nstate %s\ncreated %lld\n", r->kid,
                     keys_kind_name(r->kind), keys_state_name(r->state), (long long)r->created);
    else
        n = snprintf(buf, cap, MAGIC "\nkid %u\nkind %s\nstate %s\ncreated %lld\nsecret %s\n",
                     r->kid, keys_kind_name(r->kind), keys_state_name(r->state),
                     (long long)r->created, sec);
    OPENSSL_cleanse(sec, sizeof(sec));
    if (n < 0 || (size_t)n >= cap) {
        if (cap)
            OPENSSL_cleanse(buf, cap);
        return 0;
    }
    return (size_t)n;
}
