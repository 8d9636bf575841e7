/*
 * codec.h - the tracecode v1 code: layout, text and URL forms, MAC tag,
 * Ed25519 signatures, QR images.
 *
 * Pure: no sockets, no globals, no logging, and no allocation of its own.
 * Functions that produce bytes take (buffer, capacity) and report the size
 * they need, so a caller can size a buffer once. OpenSSL, libqrencode and
 * libpng allocate internally where noted; the MAC verify path does not.
 *
 * Binary layout v1 (big-endian):
 *
 *   byte 0      version (high nibble, = 1) | profile (low nibble)
 *   byte 1      key id
 *   bytes 2-6   batch id (40 bits)
 *   bytes 7-10  serial within the batch (32 bits)
 *   MAC profile: bytes 11-20 = first 10 bytes of
 *                HMAC-SHA-256(mac_key[kid], "TC1" || bytes 0-10)   (21 bytes)
 *   SIG profile: bytes 11-74 = Ed25519(sign_key[kid], "TC1" || bytes 0-10)
 *                                                                   (75 bytes)
 *
 * Text form: Crockford base32, upper case, 34 characters (MAC) or 120 (SIG);
 * the two pad bits of a MAC text are zero, so each code has one text.
 */
#ifndef TC_CODEC_H
#define TC_CODEC_H

#include <stddef.h>
#include <stdint.h>

#define CODEC_VERSION 1
#define CODEC_PROFILE_MAC 0
#define CODEC_PROFILE_SIG 1

#define CODEC_BODY_BYTES 11    /* version/profile, kid, batch, serial */
#define CODEC_TAG_BYTES 10     /* truncated HMAC-SHA-256 */
#define CODEC_MAC_BYTES 21     /* body + tag */
#define CODEC_SIG_BYTES 64     /* Ed25519 signature */
#define CODEC_SIGCODE_BYTES 75 /* body + signature */
#define CODEC_MAX_BYTES CODEC_SIGCODE_BYTES
#define CODEC_MAC_TEXT_LEN 34
#define CODEC_SIG_TEXT_LEN 120
#define CODEC_MAX_TEXT_LEN CODEC_SIG_TEXT_LEN
#define CODEC_HUMAN_MAX_LEN 256 /* longest input the lenient parser looks at */
#define CODEC_GTIN_LEN 14       /* GTIN-14: the Digital Link's primary key */
#define CODEC_DL_LOT_LEN 14     /* symbols of a MAC code in the lot (AI 10) */
#define CODEC_KEY_BYTES 32      /* MAC secret and Ed25519 seed */
#define CODEC_PUB_BYTES 32      /* Ed25519 public key */
#define CODEC_SHA256_BYTES 32
#define CODEC_BATCH_MAX ((UINT64_C(1) << 40) - 1)
#define CODEC_KID_MAX 255
#define CODEC_DOMAIN "TC1" /* prefixed to the body before MAC/signature */
#define CODEC_DOMAIN_LEN 3

/*
 * A code profile: everything that differs between the kinds of code, in
 * one row of codec_profiles (code.c), so that a third profile is a row
 * and a value, not a hunt for ternaries. Three numberings meet here: the
 * profile in a code's first byte (CODEC_PROFILE_*), its number outside the
 * code (the contract's CodeProfile, batches stored in Redis), and the kind
 * of key it needs (keys_kind; the replica's REP_KEY_*).
 */
typedef struct codec_profile_info {
    int profile;      /* CODEC_PROFILE_* */
    int number;       /* tracecode.v1.CodeProfile; the replica's REP_PROFILE_* */
    const char *name; /* "mac", "sig" */
    int key_kind;     /* keys_kind: 1 mac, 2 ed25519 */
    const char *key;  /* that kind's name */
    size_t bytes;     /* the binary code */
    size_t text_len;  /* its canonical text */
} codec_profile_info;

#define CODEC_PROFILES 2
extern const codec_profile_info codec_profiles[CODEC_PROFILES];
/* The row of a profile in a code's first byte (rows are in that order: on
 * the verify path this is an index), or of a number outside the code;
 * NULL when there is none. */
static inline const codec_profile_info *codec_profile_of(int profile)
{
    return profile >= 0 && profile < CODEC_PROFILES ? &codec_profiles[profile] : NULL;
}
const codec_profile_info *codec_profile_numbered(int number);
#define CODEC_BASE_URL_MAX 200

#if defined(__GNUC__)
#define CODEC_WUR __attribute__((warn_unused_result))
#else
#define CODEC_WUR
#endif

/* Error codes. 0 is success; values are never renumbered. */
typedef enum codec_err {
    CODEC_OK = 0,
    CODEC_ERR_LENGTH = 1,     /* wrong number of characters or bytes */
    CODEC_ERR_SYMBOL = 2,     /* a character outside the alphabet */
    CODEC_ERR_PADDING = 3,    /* non-zero pad bits: not the canonical text */
    CODEC_ERR_VERSION = 4,    /* format version other than 1 */
    CODEC_ERR_PROFILE = 5,    /* profile other than MAC or SIG */
    CODEC_ERR_RANGE = 6,      /* a field out of its range when packing */
    CODEC_ERR_SPACE = 7,      /* output buffer too small */
    CODEC_ERR_URL = 8,        /* not a code URL, or a base URL QR cannot carry */
    CODEC_ERR_TAG = 9,        /* MAC tag does not match */
    CODEC_ERR_SIGNATURE = 10, /* Ed25519 signature does not verify */
    CODEC_ERR_QR = 11,        /* libqrencode refused the input */
    CODEC_ERR_PNG = 12,       /* libpng failed */
    CODEC_ERR_CRYPTO = 13,    /* OpenSSL failed (allocation, bad key) */
    CODEC_ERR_ARG = 14,       /* an option out of range */
    CODEC_ERR_CHECK = 15,     /* the printed check symbol does not match: mistyped */
    CODEC_ERR_GTIN = 16,      /* a GTIN of the wrong length or check digit */
} codec_err;

/* Short fixed text for an error code, for logs and messages. */
const char *codec_strerror(codec_err err);

/*
 * Detail for a failed parse: what was wrong and where. Filled by the
 * parsers when the caller passes one; any may be NULL.
 */
typedef struct codec_errinfo {
    codec_err code;
    size_t offset; /* byte offset in the input of the bad symbol */
    size_t got;    /* length seen, version or profile seen */
    size_t want;   /* length wanted */
    int sym;       /* the offending byte for CODEC_ERR_SYMBOL / PADDING */
} codec_errinfo;

/*
 * Write "cannot parse code 'INPUT': DETAIL" into buf (always terminated
 * when cap > 0). The input is quoted with unprintable bytes escaped and cut
 * after 48 bytes. Returns the length it needed, like snprintf.
 */
size_t codec_describe(const codec_errinfo *ei, const char *in, size_t len, char *buf, size_t cap);

/* The fields of a code, unpacked. */
typedef struct codec_fields {
    unsigned version; /* 4 bits; CODEC_VERSION */
    unsigned profile; /* 4 bits; CODEC_PROFILE_MAC or _SIG */
    unsigned kid;     /* 8 bits */
    uint64_t batch;   /* 40 bits */
    uint32_t serial;  /* 32 bits */
} codec_fields;

/* A decoded code: its fields and its binary form (21 or 75 bytes). */
typedef struct codec_code {
    codec_fields f;
    size_t len;
    uint8_t bin[CODEC_MAX_BYTES];
} codec_code;

/* Pack fields into the 11-byte body. CODEC_ERR_RANGE names no field
 * itself: a version, profile, kid or batch too wide for its bits. */
codec_err codec_body_pack(const codec_fields *f, uint8_t body[CODEC_BODY_BYTES]);
void codec_body_unpack(const uint8_t body[CODEC_BODY_BYTES], codec_fields *f);

/*
 * Crockford base32 of len bytes into out (upper case, no separators, pad
 * bits zero, terminated). Returns the text length, or 0 when cap is less
 * than that length + 1.
 */
size_t codec_text_encode(const uint8_t *bin, size_t len, char *out, size_t cap);

/*
 * Strict, canonical decode of a code's text: exactly 34 or 120 upper-case
 * symbols of the Crockford alphabet, zero pad bits, version 1, a known
 * profile whose length matches. One text per code. Cost: a table lookup
 * per symbol, no allocation. On failure *c is unspecified.
 */
codec_err codec_parse(const char *s, size_t len, codec_code *c, codec_errinfo *ei);

/*
 * Lenient decode for text typed or read by a person: folds lower case,
 * drops '-' and ' ' separators, reads I and L as 1 and O as 0. When one
 * symbol more than a code's text is left, the last is the printed check
 * symbol (codec_text_printed), compared first: a mismatch is
 * CODEC_ERR_CHECK (a mistyped symbol; offset names the check symbol), so
 * a typo is not taken for a forgery. Then decodes strictly and re-encodes
 * to check the result is canonical. canon (may be NULL) receives the
 * canonical text, terminated; it needs CODEC_MAX_TEXT_LEN + 1 bytes.
 * Inputs longer than CODEC_HUMAN_MAX_LEN are refused with
 * CODEC_ERR_LENGTH.
 */
codec_err codec_parse_human(const char *s, size_t len, codec_code *c, char *canon,
                            codec_errinfo *ei);

/*
 * Text from outside: the length of the UTF-8 sequence at s (n bytes
 * left), 0 when it is not one (overlong, surrogate, beyond U+10FFFF,
 * truncated). codec_text_check looks at all of s: CODEC_TEXT_OK, or
 * CODEC_TEXT_NUL / CODEC_TEXT_UTF8 with the byte offset in *bad. A NUL
 * inside a string would cut it silently in C: callers refuse it.
 */
enum { CODEC_TEXT_OK = 0, CODEC_TEXT_NUL = 1, CODEC_TEXT_UTF8 = 2 };
size_t codec_utf8_len(const uint8_t *s, size_t n);
int codec_text_check(const uint8_t *s, size_t n, size_t *bad);

/*
 * Text into a JSON string's body (RFC 8259, without the quotes), the one
 * escaping tracectl's and the scan page's JSON share: `"` and `\` with a
 * backslash, control bytes (below 0x20, and DEL) as \u00XX, every other
 * byte as it is (callers send checked UTF-8). Writes at most cap bytes
 * including a NUL; returns the length needed, at most
 * CODEC_JSON_ESCAPED_MAX(n): slice a long text to escape it into a small
 * buffer (every byte escapes alone).
 */
#define CODEC_JSON_ESCAPED_MAX(n) (6 * (n))
size_t codec_json_escape(const char *s, size_t n, char *out, size_t cap);

/*
 * Text into a manual page's body (roff, man(7)): `\` as \e, `-` as \- (so
 * options copy and search as typed), a `.` or `'` that starts a line behind
 * \& (not read as a request); newlines kept. The manual pages are written
 * from the programs' option tables with it (--man). Writes at most cap
 * bytes including a NUL; returns the length needed, at most
 * CODEC_ROFF_ESCAPED_MAX(n).
 */
#define CODEC_ROFF_ESCAPED_MAX(n) (3 * (n))
size_t codec_roff_escape(const char *s, size_t n, char *out, size_t cap);

/*
 * The one lenient path for a code from outside (a request field, a typed
 * or scanned string): the canonical text is decoded strictly at once;
 * anything else is trimmed of surrounding white space (space, tab, CR,
 * LF), then read as a scan URL when it holds "/C/" (codec_url_parse) and
 * otherwise as printed text (codec_parse_human: any case, '-' and ' '
 * separators, I L O folded). ei offsets refer to s as given. Counts,
 * caches and dedup must key on the decoded code, never on s.
 */
codec_err codec_parse_any(const char *s, size_t len, codec_code *c, codec_errinfo *ei);

/*
 * The one lenient path with a GS1 Digital Link as well: as
 * codec_parse_any, and a Digital Link (codec_dl_parse) when s holds
 * "/01/"; gtin (may be NULL) receives the Digital Link's GTIN-14, or ""
 * when s was another form. codec_parse_any is this with gtin NULL.
 */
codec_err codec_parse_label(const char *s, size_t len, codec_code *c, char gtin[CODEC_GTIN_LEN + 1],
                            codec_errinfo *ei);

/*
 * Group a code's text for printing: groups of `group` symbols joined by
 * sep. Returns the length written (terminated), or 0 when it does not fit.
 */
size_t codec_text_group(const char *text, size_t len, size_t group, char sep, char *out,
                        size_t cap);

/*
 * Crockford's check symbol of a code's canonical text: the text's value
 * (base 32, most significant symbol first) modulo 37, written as one of
 * the 32 symbols or * ~ $ = U. It catches every single mistyped symbol
 * and every swap of two neighbours. 0 when text holds a non-symbol.
 */
char codec_check_symbol(const char *text, size_t len);

/*
 * The printed form of a code, under its label and for people to type:
 * the canonical text and its check symbol, in groups of four joined by
 * '-' (MAC: 35 symbols, 8 groups of 4 and one of 3; SIG: 121 symbols).
 * The QR and the canonical text do not carry the check symbol. Returns
 * the length written (terminated), or 0 when it does not fit or text is
 * not a code's text.
 */
#define CODEC_PRINTED_MAX (CODEC_MAX_TEXT_LEN + 1 + (CODEC_MAX_TEXT_LEN + 1) / 4)
size_t codec_text_printed(const char *text, size_t len, char *out, size_t cap);

/*
 * GTINs: 8, 12, 13 or 14 digits whose last is the GS1 check digit (mod 10,
 * weights 3 and 1 from the right). 1 when s is one; out (may be NULL)
 * receives it as a GTIN-14, zeros in front.
 */
int codec_gtin14(const char *s, size_t n, char out[CODEC_GTIN_LEN + 1]);

/*
 * GS1 Digital Link form of a MAC code (docs/CODES.md):
 * https://HOST/01/GTIN14/10/LOT/21/SERIAL, the code's first 14 symbols the
 * lot (AI 10), its last 20 the serial (AI 21) - GS1 caps both at 20
 * characters, so a SIG code's 120 symbols have no Digital Link form
 * (CODEC_ERR_LENGTH). base is http(s)://host[:port][/path] in QR's
 * alphanumeric set; the scheme is written in lower case (what GS1 tools
 * accept), the rest in upper case. gtin: 8 to 14 digits with a valid check
 * digit, written as GTIN-14 (else CODEC_ERR_GTIN). *need as
 * codec_url_format.
 */
#define CODEC_DL_MAX (CODEC_BASE_URL_MAX + 4 + CODEC_GTIN_LEN + 4 + CODEC_MAC_TEXT_LEN + 4)
codec_err codec_dl_format(const char *base, const char *gtin, const char *text, size_t textlen,
                          char *out, size_t cap, size_t *need, codec_errinfo *ei);

/* 1 when s holds "/01/": read it with codec_dl_parse. */
int codec_dl_has_path(const char *s, size_t len);

/*
 * A Digital Link of a code: after its last "/01/", a GTIN-14 with a valid
 * check digit (CODEC_ERR_GTIN), "/10/" and 14 symbols, "/21/" and 20
 * symbols (any case), then the end, a query or a fragment - anything else
 * is CODEC_ERR_URL or CODEC_ERR_LENGTH; the host is not looked at (as
 * codec_url_parse). The 34 symbols decode strictly. gtin receives the
 * GTIN-14.
 */
codec_err codec_dl_parse(const char *s, size_t len, codec_code *c, char gtin[CODEC_GTIN_LEN + 1],
                         codec_errinfo *ei);

/*
 * URL form: BASE/C/CODE, all upper case so that the whole URL is encodable
 * in QR alphanumeric mode (0-9 A-Z space $ % * + - . / :). A trailing '/'
 * on base is dropped; base longer than CODEC_BASE_URL_MAX or holding a
 * character outside that set is refused with CODEC_ERR_URL (offset and sym
 * say which). Returns the URL length in *need (without the terminator);
 * CODEC_ERR_SPACE when cap is too small.
 */
codec_err codec_url_format(const char *base, const char *text, size_t textlen, char *out,
                           size_t cap, size_t *need, codec_errinfo *ei);

/* Whether s holds a "/C/" segment (any case): a URL to parse with
 * codec_url_parse rather than a bare code text. */
int codec_url_has_path(const char *s, size_t len);

/*
 * Parse a code URL: the text after the last "/C/" (any case) is the code,
 * decoded strictly after folding to upper case. Nothing may follow it.
 * *code_off (may be NULL) receives the code's offset in url.
 */
codec_err codec_url_parse(const char *url, size_t len, codec_code *c, size_t *code_off,
                          codec_errinfo *ei);

/* --- MAC profile: HMAC-SHA-256 on precomputed states ------------------ */

/*
 * A MAC key as its two SHA-256 midstates (key ^ ipad, key ^ opad), so a
 * tag over one block costs two compressions. Holds secret material: wipe
 * with codec_mac_key_wipe. Plain data; copy it freely, one per thread.
 */
typedef struct codec_mac_key {
    uint32_t inner[8];
    uint32_t outer[8];
} codec_mac_key;

/* Derive the midstates from a secret of any length (longer than 64 bytes
 * is hashed first, as HMAC says). */
codec_err codec_mac_key_init(codec_mac_key *k, const uint8_t *key, size_t len);
void codec_mac_key_wipe(codec_mac_key *k);

/* Full HMAC-SHA-256 of any message with a prepared key (for manifests and
 * known-answer tests). */
codec_err codec_hmac_sha256(const codec_mac_key *k, const uint8_t *msg, size_t len,
                            uint8_t out[CODEC_SHA256_BYTES]);

/* The code tag over "TC1" || body: two compressions, no allocation. */
void codec_mac_tag(const codec_mac_key *k, const uint8_t body[CODEC_BODY_BYTES],
                   uint8_t tag[CODEC_TAG_BYTES]);

/* Build a MAC-profile code: pack f (profile must be MAC), append the tag. */
codec_err codec_mac_mint(const codec_mac_key *k, const codec_fields *f,
                         uint8_t code[CODEC_MAC_BYTES]);

/* CODEC_OK when the tag matches (constant-time compare), else
 * CODEC_ERR_TAG. The caller picks k by the code's kid. */
CODEC_WUR codec_err codec_mac_check(const codec_mac_key *k, const uint8_t code[CODEC_MAC_BYTES]);

/* --- Ed25519 (OpenSSL EVP; allocates inside OpenSSL) ------------------- */

codec_err codec_ed25519_public(const uint8_t seed[CODEC_KEY_BYTES], uint8_t pub[CODEC_PUB_BYTES]);
codec_err codec_ed25519_sign(const uint8_t seed[CODEC_KEY_BYTES], const uint8_t *msg, size_t len,
                             uint8_t sig[CODEC_SIG_BYTES]);
/* CODEC_OK or CODEC_ERR_SIGNATURE (CODEC_ERR_CRYPTO if OpenSSL fails). */
CODEC_WUR codec_err codec_ed25519_verify(const uint8_t pub[CODEC_PUB_BYTES], const uint8_t *msg,
                                         size_t len, const uint8_t sig[CODEC_SIG_BYTES]);

/* Build a SIG-profile code: pack f (profile must be SIG), sign
 * "TC1" || body with seed. */
codec_err codec_sig_mint(const uint8_t seed[CODEC_KEY_BYTES], const codec_fields *f,
                         uint8_t code[CODEC_SIGCODE_BYTES]);
CODEC_WUR codec_err codec_sig_check(const uint8_t pub[CODEC_PUB_BYTES],
                                    const uint8_t code[CODEC_SIGCODE_BYTES]);

/* --- QR images (libqrencode, libpng) ----------------------------------- */

enum { CODEC_ECC_L = 0, CODEC_ECC_M = 1, CODEC_ECC_Q = 2, CODEC_ECC_H = 3 };

typedef struct codec_qr_opts {
    int ecc;         /* CODEC_ECC_*; M is a good default for labels */
    unsigned module; /* SVG user units or PNG pixels per module, 1..32 */
    unsigned margin; /* quiet zone in modules, 0..16; 4 is standard */
} codec_qr_opts;

/*
 * Render text as an SVG document or a 1-bit PNG: runs of QR's
 * alphanumeric set (an upper-case URL from codec_url_format) in that mode,
 * anything else (a Digital Link's lower-case scheme) in byte mode. On CODEC_ERR_SPACE
 * *need holds the size to retry with. *width (may be NULL) receives the
 * symbol's width in modules (29 for version 3).
 */
codec_err codec_qr_svg(const char *text, size_t len, const codec_qr_opts *o, char *out, size_t cap,
                       size_t *need, unsigned *width);
codec_err codec_qr_png(const char *text, size_t len, const codec_qr_opts *o, uint8_t *out,
                       size_t cap, size_t *need, unsigned *width);

/* One label of a print sheet: the URL in the QR and the code text printed
 * beside it. Both borrowed. */
typedef struct codec_label {
    const char *url;
    const char *text;
} codec_label;

#define CODEC_SHEET_COLS 3
#define CODEC_SHEET_ROWS 8
#define CODEC_SHEET_LABELS (CODEC_SHEET_COLS * CODEC_SHEET_ROWS)

/*
 * An A4 SVG page (210 x 297 mm) of up to CODEC_SHEET_LABELS labels, 3 x 8
 * cells of 70 x 37.125 mm: the QR at ECC level ecc and the code text in
 * groups of four. More labels than fit is CODEC_ERR_ARG; paginate.
 */
codec_err codec_sheet_svg(const codec_label *labels, size_t n, int ecc, char *out, size_t cap,
                          size_t *need);

#endif
