/*
 * code.c - the code's layout, its base32 text, its URL, and error texts.
 */
#include "codec.h"
#include "codec_int.h"

#include <stdio.h>
#include <string.h>

static const char b32_alphabet[32] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/* Strict table: upper-case Crockford symbols only; 0xff elsewhere. */
/* clang-format off */
static const uint8_t b32_strict[256] = {
#define X 0xff
    /* 00 */ X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    /* 10 */ X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    /* 20 */ X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    /* 30 */ 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, X, X, X, X, X, X,
    /* 40 */ X, 10, 11, 12, 13, 14, 15, 16, 17, X, 18, 19, X, 20, 21, X,
    /* 50 */ 22, 23, 24, 25, 26, X, 27, 28, 29, 30, 31, X, X, X, X, X,
    /* 60 */ X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    /* 70 */ X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    /* 80 */ X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    /* 90 */ X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    /* a0 */ X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    /* b0 */ X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    /* c0 */ X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    /* d0 */ X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    /* e0 */ X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    /* f0 */ X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
#undef X
};
/* clang-format on */

const char *codec_strerror(codec_err err)
{
    switch (err) {
    case CODEC_OK:
        return "ok";
    case CODEC_ERR_LENGTH:
        return "wrong length";
    case CODEC_ERR_SYMBOL:
        return "bad symbol";
    case CODEC_ERR_PADDING:
        return "non-zero pad bits";
    case CODEC_ERR_VERSION:
        return "unknown version";
    case CODEC_ERR_PROFILE:
        return "unknown profile";
    case CODEC_ERR_RANGE:
        return "field out of range";
    case CODEC_ERR_SPACE:
        return "output buffer too small";
    case CODEC_ERR_URL:
        return "not a code url";
    case CODEC_ERR_TAG:
        return "tag does not match";
    case CODEC_ERR_SIGNATURE:
        return "signature does not verify";
    case CODEC_ERR_QR:
        return "cannot encode qr";
    case CODEC_ERR_PNG:
        return "cannot write png";
    case CODEC_ERR_CRYPTO:
        return "crypto library failure";
    case CODEC_ERR_ARG:
        return "argument out of range";
    case CODEC_ERR_CHECK:
        return "check symbol does not match";
    case CODEC_ERR_GTIN:
        return "bad gtin";
    }
    return "unknown error";
}

void codec_seterr(codec_errinfo *ei, codec_err code, size_t offset, size_t got, size_t want,
                  int sym)
{
    if (ei) {
        ei->code = code;
        ei->offset = offset;
        ei->got = got;
        ei->want = want;
        ei->sym = sym;
    }
}

static void put_quoted_byte(codec_sb *sb, int c)
{
    if (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\')
        codec_sb_printf(sb, "%c", c);
    else
        codec_sb_printf(sb, "\\x%02x", (unsigned)c & 0xff);
}

size_t codec_describe(const codec_errinfo *ei, const char *in, size_t len, char *buf, size_t cap)
{
    codec_sb sb;
    size_t i, shown = len < 48 ? len : 48;

    codec_sb_init(&sb, buf, cap);
    codec_sb_puts(&sb, "cannot parse code '");
    for (i = 0; i < shown; i++)
        put_quoted_byte(&sb, (unsigned char)in[i]);
    if (shown < len)
        codec_sb_puts(&sb, "...");
    codec_sb_puts(&sb, "': ");
    switch (ei->code) {
    case CODEC_ERR_LENGTH:
        if (ei->want)
            codec_sb_printf(&sb, "wrong length %zu, want %zu", ei->got, ei->want);
        else
            codec_sb_printf(&sb, "wrong length %zu, want %d or %d", ei->got, CODEC_MAC_TEXT_LEN,
                            CODEC_SIG_TEXT_LEN);
        break;
    case CODEC_ERR_SYMBOL:
        codec_sb_puts(&sb, "bad symbol '");
        put_quoted_byte(&sb, ei->sym);
        codec_sb_printf(&sb, "' at offset %zu", ei->offset);
        break;
    case CODEC_ERR_PADDING:
        codec_sb_puts(&sb, "non-zero pad bits in last symbol '");
        put_quoted_byte(&sb, ei->sym);
        codec_sb_printf(&sb, "' at offset %zu", ei->offset);
        break;
    case CODEC_ERR_VERSION:
        codec_sb_printf(&sb, "unknown version %zu, want %d", ei->got, CODEC_VERSION);
        break;
    case CODEC_ERR_PROFILE:
        codec_sb_printf(&sb, "unknown profile %zu, want %d (mac) or %d (sig)", ei->got,
                        CODEC_PROFILE_MAC, CODEC_PROFILE_SIG);
        break;
    case CODEC_ERR_GTIN:
        codec_sb_printf(&sb,
                        "the GTIN at offset %zu is not 8 to 14 digits with a valid GS1 check digit",
                        ei->offset);
        break;
    case CODEC_ERR_CHECK:
        codec_sb_puts(&sb, "mistyped: the check symbol '");
        put_quoted_byte(&sb, ei->sym);
        codec_sb_printf(&sb, "' at offset %zu does not match the code; check every symbol",
                        ei->offset);
        break;
    case CODEC_ERR_URL:
        if (ei->sym)
            codec_sb_printf(&sb, "not a code url: unexpected '%c' at offset %zu", ei->sym,
                            ei->offset);
        else
            codec_sb_puts(&sb, "not a code url: no '/C/' segment");
        break;
    case CODEC_OK:
    case CODEC_ERR_RANGE:
    case CODEC_ERR_SPACE:
    case CODEC_ERR_TAG:
    case CODEC_ERR_SIGNATURE:
    case CODEC_ERR_QR:
    case CODEC_ERR_PNG:
    case CODEC_ERR_CRYPTO:
    case CODEC_ERR_ARG:
        codec_sb_puts(&sb, codec_strerror(ei->code));
        break;
    }
    return sb.len;
}

codec_err codec_body_pack(const codec_fields *f, uint8_t body[CODEC_BODY_BYTES])
{
    if (f->version > 15 || f->profile > 15 || f->kid > CODEC_KID_MAX || f->batch > CODEC_BATCH_MAX)
        return CODEC_ERR_RANGE;
    body[0] = (uint8_t)(f->version << 4 | f->profile);
    body[1] = (uint8_t)f->kid;
    codec_store40(body + 2, f->batch);
    codec_store32(body + 7, f->serial);
    return CODEC_OK;
}

void codec_body_unpack(const uint8_t body[CODEC_BODY_BYTES], codec_fields *f)
{
    f->version = body[0] >> 4;
    f->profile = body[0] & 0x0f;
    f->kid = body[1];
    f->batch = codec_load40(body + 2);
    f->serial = codec_load32(body + 7);
}

size_t codec_text_encode(const uint8_t *bin, size_t len, char *out, size_t cap)
{
    size_t n = (len * 8 + 4) / 5, i, o = 0;
    uint32_t acc = 0;
    unsigned bits = 0;

    if (cap < n + 1)
        return 0;
    for (i = 0; i < len; i++) {
        acc = acc << 8 | bin[i];
        bits += 8;
        while (bits >= 5) {
            bits -= 5;
            out[o++] = b32_alphabet[(acc >> bits) & 31];
        }
    }
    if (bits)
        out[o++] = b32_alphabet[(acc << (5 - bits)) & 31];
    out[o] = '\0';
    return o;
}

/*
 * Decode n symbols into (n * 5) / 8 bytes: whole groups of 8 symbols make 5
 * bytes without a branch per symbol; the tail goes bit by bit. Table values
 * are ORed and checked once, so only a bad input pays for finding the
 * offending offset.
 */
static codec_err b32_decode(const char *s, size_t n, uint8_t *out, codec_errinfo *ei)
{
    const unsigned char *u = (const unsigned char *)s;
    const uint8_t *t = b32_strict;
    size_t g, i, o = 0;
    unsigned bad = 0, bits = 0;
    uint32_t acc = 0;

    for (g = 0; g + 8 <= n; g += 8, o += 5) {
        const unsigned char *p = u + g;
        unsigned a0 = t[p[0]], a1 = t[p[1]], a2 = t[p[2]], a3 = t[p[3]];
        unsigned a4 = t[p[4]], a5 = t[p[5]], a6 = t[p[6]], a7 = t[p[7]];
        uint64_t v = (uint64_t)a0 << 35 | (uint64_t)a1 << 30 | (uint64_t)a2 << 25 |
                     (uint64_t)a3 << 20 | (uint64_t)a4 << 15 | (uint64_t)a5 << 10 |
                     (uint64_t)a6 << 5 | a7;
        bad |= a0 | a1 | a2 | a3 | a4 | a5 | a6 | a7;
        codec_store40(out + o, v);
    }
    for (i = g; i < n; i++) {
        unsigned v = t[u[i]];
        bad |= v;
        acc = acc << 5 | (v & 31);
        bits += 5;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    if (bad & 0xe0) {
        for (i = 0; t[u[i]] != 0xff; i++)
            ;
        codec_seterr(ei, CODEC_ERR_SYMBOL, i, 0, 0, u[i]);
        return CODEC_ERR_SYMBOL;
    }
    if (acc & ((1u << bits) - 1)) {
        codec_seterr(ei, CODEC_ERR_PADDING, n - 1, 0, 0, u[n - 1]);
        return CODEC_ERR_PADDING;
    }
    return CODEC_OK;
}

codec_err codec_parse(const char *s, size_t len, codec_code *c, codec_errinfo *ei)
{
    codec_err err;
    size_t want;

    if (len != CODEC_MAC_TEXT_LEN && len != CODEC_SIG_TEXT_LEN) {
        codec_seterr(ei, CODEC_ERR_LENGTH, 0, len, 0, 0);
        return CODEC_ERR_LENGTH;
    }
    err = b32_decode(s, len, c->bin, ei);
    if (err)
        return err;
    c->len = len * 5 / 8;
    codec_body_unpack(c->bin, &c->f);
    if (c->f.version != CODEC_VERSION) {
        codec_seterr(ei, CODEC_ERR_VERSION, 0, c->f.version, 0, 0);
        return CODEC_ERR_VERSION;
    }
    if (c->f.profile == CODEC_PROFILE_MAC)
        want = CODEC_MAC_TEXT_LEN;
    else if (c->f.profile == CODEC_PROFILE_SIG)
        want = CODEC_SIG_TEXT_LEN;
    else {
        codec_seterr(ei, CODEC_ERR_PROFILE, 0, c->f.profile, 0, 0);
        return CODEC_ERR_PROFILE;
    }
    if (len != want) {
        codec_seterr(ei, CODEC_ERR_LENGTH, 0, len, want, 0);
        return CODEC_ERR_LENGTH;
    }
    return CODEC_OK;
}

/* Check symbols beyond the 32 of the alphabet: values 32 to 36. */
static const char check_extra[] = "*~$=U";

char codec_check_symbol(const char *text, size_t len)
{
    unsigned r = 0;

    for (size_t i = 0; i < len; i++) {
        uint8_t v = b32_strict[(unsigned char)text[i]];
        if (v == 0xff)
            return 0;
        r = (r * 32 + v) % 37;
    }
    return r < 32 ? b32_alphabet[r] : check_extra[r - 32];
}

size_t codec_text_printed(const char *text, size_t len, char *out, size_t cap)
{
    char t[CODEC_MAX_TEXT_LEN + 1];

    if (len != CODEC_MAC_TEXT_LEN && len != CODEC_SIG_TEXT_LEN)
        return 0;
    memcpy(t, text, len);
    if (!(t[len] = codec_check_symbol(text, len)))
        return 0;
    return codec_text_group(t, len + 1, 4, '-', out, cap);
}

codec_err codec_parse_human(const char *s, size_t len, codec_code *c, char *canon,
                            codec_errinfo *ei)
{
    char folded[CODEC_HUMAN_MAX_LEN], again[CODEC_MAX_TEXT_LEN + 1];
    size_t at[CODEC_HUMAN_MAX_LEN]; /* where each folded symbol is in s */
    size_t i, n = 0, last;
    codec_err err;

    if (len > CODEC_HUMAN_MAX_LEN) {
        codec_seterr(ei, CODEC_ERR_LENGTH, 0, len, 0, 0);
        return CODEC_ERR_LENGTH;
    }
    for (i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '-' || ch == ' ')
            continue;
        if (ch >= 'a' && ch <= 'z')
            ch = (unsigned char)(ch - 'a' + 'A');
        if (ch == 'I' || ch == 'L')
            ch = '1';
        else if (ch == 'O')
            ch = '0';
        if (b32_strict[ch] == 0xff && !(ch && strchr(check_extra, ch))) {
            codec_seterr(ei, CODEC_ERR_SYMBOL, i, 0, 0, (unsigned char)s[i]);
            return CODEC_ERR_SYMBOL;
        }
        at[n] = i;
        folded[n++] = (char)ch;
    }
    /* One symbol more than a code: the printed check symbol, first. */
    if (n == CODEC_MAC_TEXT_LEN + 1 || n == CODEC_SIG_TEXT_LEN + 1) {
        char want;
        n--;
        want = codec_check_symbol(folded, n);
        if (want && want != folded[n]) {
            codec_seterr(ei, CODEC_ERR_CHECK, at[n], 0, 0, (unsigned char)s[at[n]]);
            return CODEC_ERR_CHECK;
        }
    }
    for (i = 0; i < n; i++) /* a check-only symbol anywhere else */
        if (b32_strict[(unsigned char)folded[i]] == 0xff) {
            codec_seterr(ei, CODEC_ERR_SYMBOL, at[i], 0, 0, (unsigned char)s[at[i]]);
            return CODEC_ERR_SYMBOL;
        }
    last = n ? at[n - 1] : 0;
    err = codec_parse(folded, n, c, ei);
    if (err == CODEC_ERR_PADDING && ei) {
        ei->offset = last; /* in s, not in the folded text */
        ei->sym = (unsigned char)s[last];
    }
    if (err)
        return err;
    if (codec_text_encode(c->bin, c->len, again, sizeof(again)) != n ||
        memcmp(again, folded, n) != 0) {
        codec_seterr(ei, CODEC_ERR_PADDING, last, 0, 0, (unsigned char)s[last]);
        return CODEC_ERR_PADDING;
    }
    if (canon)
        memcpy(canon, again, n + 1);
    return CODEC_OK;
}

static int is_space(unsigned char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

codec_err codec_parse_any(const char *s, size_t len, codec_code *c, codec_errinfo *ei)
{
    return codec_parse_label(s, len, c, NULL, ei);
}

codec_err codec_parse_label(const char *s, size_t len, codec_code *c, char gtin[CODEC_GTIN_LEN + 1],
                            codec_errinfo *ei)
{
    char g[CODEC_GTIN_LEN + 1];
    size_t lead = 0;
    codec_err err;

    if (gtin)
        gtin[0] = '\0';
    if ((len == CODEC_MAC_TEXT_LEN || len == CODEC_SIG_TEXT_LEN) &&
        codec_parse(s, len, c, NULL) == CODEC_OK)
        return CODEC_OK;
    while (len && is_space((unsigned char)s[0])) {
        s++;
        len--;
        lead++;
    }
    while (len && is_space((unsigned char)s[len - 1]))
        len--;
    if (codec_dl_has_path(s, len)) {
        err = codec_dl_parse(s, len, c, g, ei);
        if (!err && gtin)
            memcpy(gtin, g, sizeof(g));
    } else if (codec_url_has_path(s, len)) {
        err = codec_url_parse(s, len, c, NULL, ei);
    } else {
        err = codec_parse_human(s, len, c, NULL, ei);
    }
    if (err && ei)
        ei->offset += lead;
    return err;
}

size_t codec_text_group(const char *text, size_t len, size_t group, char sep, char *out, size_t cap)
{
    size_t i, o = 0, need;

    if (group == 0)
        return 0;
    need = len + (len ? (len - 1) / group : 0);
    if (cap < need + 1)
        return 0;
    for (i = 0; i < len; i++) {
        if (i && i % group == 0)
            out[o++] = sep;
        out[o++] = text[i];
    }
    out[o] = '\0';
    return o;
}

/* QR alphanumeric mode: 0-9 A-Z space $ % * + - . / : */
static int qr_alnum(unsigned char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'A' && ch <= 'Z') || ch == ' ' || ch == '$' ||
           ch == '%' || ch == '*' || ch == '+' || ch == '-' || ch == '.' || ch == '/' || ch == ':';
}

static unsigned char upper(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') ? (unsigned char)(ch - 'a' + 'A') : ch;
}

codec_err codec_url_format(const char *base, const char *text, size_t textlen, char *out,
                           size_t cap, size_t *need, codec_errinfo *ei)
{
    size_t blen = strlen(base), i, n;

    while (blen && base[blen - 1] == '/')
        blen--;
    if (blen == 0 || blen > CODEC_BASE_URL_MAX) {
        codec_seterr(ei, CODEC_ERR_LENGTH, 0, blen, CODEC_BASE_URL_MAX, 0);
        return CODEC_ERR_LENGTH;
    }
    for (i = 0; i < blen; i++) {
        unsigned char ch = upper((unsigned char)base[i]);
        if (!qr_alnum(ch) || ch == ' ') {
            codec_seterr(ei, CODEC_ERR_URL, i, 0, 0, base[i]);
            return CODEC_ERR_URL;
        }
    }
    n = blen + 3 + textlen;
    if (need)
        *need = n;
    if (cap < n + 1)
        return CODEC_ERR_SPACE;
    for (i = 0; i < blen; i++)
        out[i] = (char)upper((unsigned char)base[i]);
    memcpy(out + blen, "/C/", 3);
    for (i = 0; i < textlen; i++)
        out[blen + 3 + i] = (char)upper((unsigned char)text[i]);
    out[n] = '\0';
    return CODEC_OK;
}

int codec_url_has_path(const char *s, size_t len)
{
    size_t i;

    for (i = 0; i + 3 <= len; i++)
        if (s[i] == '/' && upper((unsigned char)s[i + 1]) == 'C' && s[i + 2] == '/')
            return 1;
    return 0;
}

codec_err codec_url_parse(const char *url, size_t len, codec_code *c, size_t *code_off,
                          codec_errinfo *ei)
{
    char text[CODEC_MAX_TEXT_LEN];
    size_t i, start = 0, n;
    int found = 0;
    codec_err err;

    for (i = len; i >= 3; i--) {
        if (url[i - 3] == '/' && upper((unsigned char)url[i - 2]) == 'C' && url[i - 1] == '/') {
            start = i;
            found = 1;
            break;
        }
    }
    if (!found) {
        codec_seterr(ei, CODEC_ERR_URL, 0, 0, 0, 0);
        return CODEC_ERR_URL;
    }
    n = len - start;
    if (n != CODEC_MAC_TEXT_LEN && n != CODEC_SIG_TEXT_LEN) {
        codec_seterr(ei, CODEC_ERR_LENGTH, start, n, 0, 0);
        return CODEC_ERR_LENGTH;
    }
    for (i = 0; i < n; i++)
        text[i] = (char)upper((unsigned char)url[start + i]);
    err = codec_parse(text, n, c, ei);
    if (err) {
        if (ei && (err == CODEC_ERR_SYMBOL || err == CODEC_ERR_PADDING)) {
            ei->offset += start;
            ei->sym = (unsigned char)url[ei->offset];
        }
        return err;
    }
    if (code_off)
        *code_off = start;
    return CODEC_OK;
}

void codec_sb_init(codec_sb *sb, char *buf, size_t cap)
{
    sb->buf = buf;
    sb->cap = cap;
    sb->len = 0;
    if (cap)
        buf[0] = '\0';
}

void codec_sb_put(codec_sb *sb, const char *s, size_t n)
{
    if (sb->len + n < sb->cap) {
        memcpy(sb->buf + sb->len, s, n);
        sb->buf[sb->len + n] = '\0';
    } else if (sb->len < sb->cap) {
        sb->buf[sb->len] = '\0'; /* stop at the last whole piece */
    }
    sb->len += n;
}

void codec_sb_puts(codec_sb *sb, const char *s)
{
    codec_sb_put(sb, s, strlen(s));
}

void codec_sb_printf(codec_sb *sb, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(tmp))
        n = (int)sizeof(tmp) - 1; /* callers format short pieces only */
    codec_sb_put(sb, tmp, (size_t)n);
}

/* In the order of CODEC_PROFILE_* (codec_profile_of indexes it). */
const codec_profile_info codec_profiles[CODEC_PROFILES] = {
    {CODEC_PROFILE_MAC, 1, "mac", 1, "mac", CODEC_MAC_BYTES, CODEC_MAC_TEXT_LEN},
    {CODEC_PROFILE_SIG, 2, "sig", 2, "ed25519", CODEC_SIGCODE_BYTES, CODEC_SIG_TEXT_LEN},
};

const codec_profile_info *codec_profile_numbered(int number)
{
    for (size_t i = 0; i < CODEC_PROFILES; i++)
        if (codec_profiles[i].number == number)
            return &codec_profiles[i];
    return NULL;
}
