/*
 * test_codec_text.c - layout, text and URL forms: known answers, the
 * rejection table, randomized round trips over every field range.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "codec.h"
#include "code_kat.h"
#include "testutil.h"

#include <string.h>

static void test_kat_mint(void **state)
{
    codec_mac_key k;
    size_t i;

    (void)state;
    assert_int_equal(codec_mac_key_init(&k, kat_mac_key, sizeof(kat_mac_key)), CODEC_OK);
    for (i = 0; i < sizeof(kat_codes) / sizeof(kat_codes[0]); i++) {
        const struct kat *t = &kat_codes[i];
        codec_fields f = {CODEC_VERSION, t->profile, t->kid, t->batch, t->serial};
        uint8_t bin[CODEC_MAX_BYTES];
        char text[CODEC_MAX_TEXT_LEN + 1];
        size_t len;

        if (t->profile == CODEC_PROFILE_MAC) {
            assert_int_equal(codec_mac_mint(&k, &f, bin), CODEC_OK);
            len = CODEC_MAC_BYTES;
        } else {
            assert_int_equal(codec_sig_mint(kat_sig_seed, &f, bin), CODEC_OK);
            len = CODEC_SIGCODE_BYTES;
        }
        assert_int_equal(codec_text_encode(bin, len, text, sizeof(text)), strlen(t->text));
        assert_string_equal(text, t->text);
    }
}

static void test_kat_parse(void **state)
{
    codec_mac_key k;
    uint8_t pub[CODEC_PUB_BYTES];
    size_t i;

    (void)state;
    assert_int_equal(codec_mac_key_init(&k, kat_mac_key, sizeof(kat_mac_key)), CODEC_OK);
    assert_int_equal(codec_ed25519_public(kat_sig_seed, pub), CODEC_OK);
    for (i = 0; i < sizeof(kat_codes) / sizeof(kat_codes[0]); i++) {
        const struct kat *t = &kat_codes[i];
        codec_code c;

        assert_int_equal(codec_parse(t->text, strlen(t->text), &c, NULL), CODEC_OK);
        {
            char printed[CODEC_PRINTED_MAX + 1], canon[CODEC_MAX_TEXT_LEN + 1];
            codec_code h;
            assert_int_equal(codec_text_printed(t->text, strlen(t->text), printed, sizeof(printed)),
                             strlen(t->printed));
            assert_string_equal(printed, t->printed);
            assert_int_equal(codec_parse_human(t->printed, strlen(t->printed), &h, canon, NULL),
                             CODEC_OK);
            assert_string_equal(canon, t->text);
        }
        assert_int_equal(c.f.version, CODEC_VERSION);
        assert_int_equal(c.f.profile, t->profile);
        assert_int_equal(c.f.kid, t->kid);
        assert_true(c.f.batch == t->batch);
        assert_int_equal(c.f.serial, t->serial);
        if (t->profile == CODEC_PROFILE_MAC) {
            assert_int_equal(c.len, CODEC_MAC_BYTES);
            assert_int_equal(codec_mac_check(&k, c.bin), CODEC_OK);
        } else {
            assert_int_equal(c.len, CODEC_SIGCODE_BYTES);
            assert_int_equal(codec_sig_check(pub, c.bin), CODEC_OK);
        }
    }
}

/* Each malformed input, its error and its exact message. */
static const struct reject {
    const char *in;
    size_t len; /* 0: strlen */
    codec_err err;
    const char *msg;
} rejects[] = {
    {"", 0, CODEC_ERR_LENGTH, "cannot parse code '': wrong length 0, want 34 or 120"},
    {"200G00000000000001CH0W309Z6NWVZSD", 0, CODEC_ERR_LENGTH,
     "cannot parse code '200G00000000000001CH0W309Z6NWVZSD': wrong length 33, want 34 or 120"},
    {"200G00000000000001CH0W309Z6NWVZSD00", 0, CODEC_ERR_LENGTH,
     "cannot parse code '200G00000000000001CH0W309Z6NWVZSD00': wrong length 35, want 34 or 120"},
    {"200g00000000000001CH0W309Z6NWVZSD0", 0, CODEC_ERR_SYMBOL,
     "cannot parse code '200g00000000000001CH0W309Z6NWVZSD0': bad symbol 'g' at offset 3"},
    {"200G00000000000001CH0W309Z6NWVZSU0", 0, CODEC_ERR_SYMBOL,
     "cannot parse code '200G00000000000001CH0W309Z6NWVZSU0': bad symbol 'U' at offset 32"},
    {"200G0000000000000ICH0W309Z6NWVZSD0", 0, CODEC_ERR_SYMBOL,
     "cannot parse code '200G0000000000000ICH0W309Z6NWVZSD0': bad symbol 'I' at offset 17"},
    {"200G0000O0000000L1CH0W309Z6NWVZSD0", 0, CODEC_ERR_SYMBOL,
     "cannot parse code '200G0000O0000000L1CH0W309Z6NWVZSD0': bad symbol 'O' at offset 8"},
    {"200G-0000000000001CH0W309Z6NWVZSD0", 0, CODEC_ERR_SYMBOL,
     "cannot parse code '200G-0000000000001CH0W309Z6NWVZSD0': bad symbol '-' at offset 4"},
    {"200G00000000000001CH0W309Z6NWV\x80SD0", 0, CODEC_ERR_SYMBOL,
     "cannot parse code '200G00000000000001CH0W309Z6NWV\\x80SD0': bad symbol '\\x80' at offset "
     "30"},
    {"200G0000000000\0"
     "001CH0W309Z6NWVZSD0",
     34, CODEC_ERR_SYMBOL,
     "cannot parse code '200G0000000000\\x00001CH0W309Z6NWVZSD0': bad symbol '\\x00' at offset "
     "14"},
    {"200G00000000000001CH0W309Z6NWVZSD1", 0, CODEC_ERR_PADDING,
     "cannot parse code '200G00000000000001CH0W309Z6NWVZSD1': non-zero pad bits in last symbol "
     "'1' at offset 33"},
    {"200G00000000000001CH0W309Z6NWVZSD3", 0, CODEC_ERR_PADDING,
     "cannot parse code '200G00000000000001CH0W309Z6NWVZSD3': non-zero pad bits in last symbol "
     "'3' at offset 33"},
    {"400G00000000000001CH0W309Z6NWVZSD0", 0, CODEC_ERR_VERSION,
     "cannot parse code '400G00000000000001CH0W309Z6NWVZSD0': unknown version 2, want 1"},
    {"000G00000000000001CH0W309Z6NWVZSD0", 0, CODEC_ERR_VERSION,
     "cannot parse code '000G00000000000001CH0W309Z6NWVZSD0': unknown version 0, want 1"},
    {"280G00000000000001CH0W309Z6NWVZSD0", 0, CODEC_ERR_PROFILE,
     "cannot parse code '280G00000000000001CH0W309Z6NWVZSD0': unknown profile 2, want 0 (mac) "
     "or 1 (sig)"},
    {"240G00000000000001CH0W309Z6NWVZSD0", 0, CODEC_ERR_LENGTH,
     "cannot parse code '240G00000000000001CH0W309Z6NWVZSD0': wrong length 34, want 120"},
    {"2010000000N00000007VNG2RXJT1E0TKGP7NT540ENCS53P6PQGX8C5W36HQ"
     "F0C2R3DNA0SCA8DC4YGVCS3242W2ABTWZ053DK9861597HWSZYPHA47XMGGB",
     0, CODEC_ERR_LENGTH,
     "cannot parse code '2010000000N00000007VNG2RXJT1E0TKGP7NT540ENCS53P6...': wrong length "
     "120, want 34"},
    {"'quote'", 0, CODEC_ERR_LENGTH,
     "cannot parse code '\\x27quote\\x27': wrong length 7, want 34 or 120"},
};

static void test_rejections(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(rejects) / sizeof(rejects[0]); i++) {
        const struct reject *r = &rejects[i];
        size_t len = r->len ? r->len : strlen(r->in);
        codec_errinfo ei;
        codec_code c;
        char msg[256];

        memset(&ei, 0, sizeof(ei));
        assert_int_equal(codec_parse(r->in, len, &c, &ei), r->err);
        assert_int_equal(ei.code, r->err);
        codec_describe(&ei, r->in, len, msg, sizeof(msg));
        assert_string_equal(msg, r->msg);
    }
}

static void test_human(void **state)
{
    const char *canon = kat_codes[2].text; /* 203G01TVSMAG000GJB6A0QR19NB5C9CXP4 */
    static const char *ok[] = {
        "203G01TVSMAG000GJB6A0QR19NB5C9CXP4",         "203g01tvsmag000gjb6a0qr19nb5c9cxp4",
        "203G-01TV-SMAG-000G-JB6A-0QR1-9NB5-C9CX-P4", "2O3G-O1TV-SMAG-OOOG-JB6A-OQRI-9NB5-C9CX-P4",
        "2o3g 01tv smag 000g jb6a 0qrl 9nb5 c9cx p4",
    };
    char out[CODEC_MAX_TEXT_LEN + 1];
    codec_errinfo ei;
    codec_code c;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        assert_int_equal(codec_parse_human(ok[i], strlen(ok[i]), &c, out, &ei), CODEC_OK);
        assert_string_equal(out, canon);
        assert_int_equal(c.f.serial, 4242);
    }
    /* U is never a symbol; pad bits stay strict on the human path too. */
    assert_int_equal(codec_parse_human("203G-U", 6, &c, out, &ei), CODEC_ERR_SYMBOL);
    assert_int_equal(ei.offset, 5);
    assert_int_equal(codec_parse_human("203g01tvsmag000gjb6a0qr19nb5c9cxp5", 34, &c, out, &ei),
                     CODEC_ERR_PADDING);
    {
        char big[CODEC_HUMAN_MAX_LEN + 1];
        memset(big, '-', sizeof(big));
        assert_int_equal(codec_parse_human(big, sizeof(big), &c, out, &ei), CODEC_ERR_LENGTH);
    }
}

/* The printed check symbol: any single symbol mistyped, any two
 * neighbours swapped, is CODEC_ERR_CHECK naming the check symbol - never a
 * code that would verify FORGED; the check symbol in another case or
 * folded (I L O) still reads; a check-only symbol inside the text is a bad
 * symbol; the printed form needs room and a code's text. */
static void test_check_symbol(void **state)
{
    static const char sym[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    char out[CODEC_MAX_TEXT_LEN + 1], p[CODEC_PRINTED_MAX + 1];
    codec_errinfo ei;
    codec_code c;

    (void)state;
    for (size_t k = 0; k < sizeof(kat_codes) / sizeof(kat_codes[0]); k++) {
        size_t n = strlen(kat_codes[k].printed);
        for (size_t i = 0; i < n; i++) {
            if (kat_codes[k].printed[i] == '-')
                continue;
            for (size_t v = 0; v < 32; v++) {
                memcpy(p, kat_codes[k].printed, n + 1);
                if (p[i] == sym[v] || i == n - 1) /* the check symbol itself: below */
                    continue;
                p[i] = sym[v];
                assert_int_equal(codec_parse_human(p, n, &c, out, &ei), CODEC_ERR_CHECK);
                assert_int_equal(ei.offset, n - 1);
            }
            memcpy(p, kat_codes[k].printed, n + 1);
            if (i + 2 < n && p[i + 1] != '-' && p[i] != p[i + 1]) { /* two data symbols */
                char t = p[i];
                p[i] = p[i + 1];
                p[i + 1] = t;
                assert_int_equal(codec_parse_human(p, n, &c, out, &ei), CODEC_ERR_CHECK);
            }
        }
        memcpy(p, kat_codes[k].printed, n + 1);
        p[n - 1] = p[n - 1] == '0' ? '1' : '0'; /* the check symbol mistyped */
        assert_int_equal(codec_parse_human(p, n, &c, out, &ei), CODEC_ERR_CHECK);
    }
    /* "...-P4P" (kat 2): the check symbol in lower case, 'o' read as 0 */
    static const char lower[] = "203g-01tv-smag-ooog-jb6a-oqr1-9nb5-c9cx-p4p";
    static const char inside[] = "200G-$000-0000-0000-01CH-0W30-9Z6N-WVZS-D0$";
    static const char typo[] = "203G-01TV-SMAG-000G-JB6A-0QR1-9NB5-C9CX-P4Q";
    assert_int_equal(codec_parse_human(lower, strlen(lower), &c, out, &ei), CODEC_OK);
    assert_string_equal(out, kat_codes[2].text);
    /* kat 0 ends in '$': a check-only symbol reads only as the check */
    assert_int_equal(codec_parse_human(inside, strlen(inside), &c, out, &ei), CODEC_ERR_SYMBOL);
    assert_int_equal(ei.offset, 5);
    assert_int_equal(codec_describe(&ei, "x", 1, p, sizeof(p)) > 0, 1);
    /* The message a consumer's page is built from names the mistake. */
    assert_int_equal(codec_parse_human(typo, strlen(typo), &c, out, &ei), CODEC_ERR_CHECK);
    {
        char msg[512];
        codec_describe(&ei, typo, strlen(typo), msg, sizeof(msg));
        assert_non_null(strstr(msg, "mistyped: the check symbol 'Q' at offset 42 does not match"));
    }
    assert_int_equal(codec_text_printed(kat_codes[2].text, 34, p, 43), 0); /* 43 and a NUL */
    assert_int_equal(codec_text_printed(kat_codes[2].text, 33, p, sizeof(p)), 0);
    assert_int_equal(codec_text_printed("203G01TVSMAG000GJB6A0QR19NB5C9CXPU", 34, p, sizeof(p)), 0);
    assert_int_equal(codec_check_symbol("", 0), '0');
    assert_int_equal(codec_check_symbol("Z", 1), 'Z');  /* 31 */
    assert_int_equal(codec_check_symbol("10", 2), '*'); /* 32 */
    assert_int_equal(codec_check_symbol("14", 2), 'U'); /* 36 */
    assert_int_equal(codec_check_symbol("15", 2), '0'); /* 37 */
}

static void test_group(void **state)
{
    char out[64];

    (void)state;
    assert_int_equal(codec_text_group("ABCDEFGHJK", 10, 4, '-', out, sizeof(out)), 12);
    assert_string_equal(out, "ABCD-EFGH-JK");
    assert_int_equal(codec_text_group("ABCDEFGH", 8, 4, '-', out, sizeof(out)), 9);
    assert_string_equal(out, "ABCD-EFGH");
    assert_int_equal(codec_text_group("ABCDEFGH", 8, 4, '-', out, 9), 0);
}

static void test_url(void **state)
{
    const char *t = kat_codes[0].text;
    char url[300];
    size_t need, off;
    codec_errinfo ei;
    codec_code c;

    (void)state;
    assert_int_equal(
        codec_url_format("https://tc.example.com/", t, strlen(t), url, sizeof(url), &need, &ei),
        CODEC_OK);
    assert_string_equal(url, "HTTPS://TC.EXAMPLE.COM/C/200G00000000000001CH0W309Z6NWVZSD0");
    assert_int_equal(need, strlen(url));
    assert_int_equal(
        codec_url_format("https://tc.example.com", t, strlen(t), url, need, &need, &ei),
        CODEC_ERR_SPACE);
    assert_int_equal(
        codec_url_format("https://tc.example.com/?x", t, strlen(t), url, sizeof(url), &need, &ei),
        CODEC_ERR_URL);
    assert_int_equal(ei.offset, 23);
    assert_int_equal(ei.sym, '?');
    assert_int_equal(codec_url_format("", t, strlen(t), url, sizeof(url), &need, &ei),
                     CODEC_ERR_LENGTH);

    /* Any case in the path; the last /C/ wins; nothing may follow. */
    {
        static const char *ok[] = {
            "HTTPS://TC.EXAMPLE.COM/C/200G00000000000001CH0W309Z6NWVZSD0",
            "https://tc.example.com/c/200g00000000000001ch0w309z6nwvzsd0",
            "/C/200G00000000000001CH0W309Z6NWVZSD0",
            "https://a/C/b/C/200G00000000000001CH0W309Z6NWVZSD0",
        };
        size_t i;
        for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
            assert_int_equal(codec_url_parse(ok[i], strlen(ok[i]), &c, &off, &ei), CODEC_OK);
            assert_int_equal(off, strlen(ok[i]) - 34);
            assert_int_equal(c.f.kid, 1);
        }
    }
    assert_int_equal(
        codec_url_parse("https://x/D/200G00000000000001CH0W309Z6NWVZSD0", 46, &c, &off, &ei),
        CODEC_ERR_URL);
    assert_int_equal(
        codec_url_parse("https://x/C/200G00000000000001CH0W309Z6NWVZSD0/", 47, &c, &off, &ei),
        CODEC_ERR_LENGTH);
    assert_int_equal(
        codec_url_parse("https://x/C/200G00000000000001CH0W309Z6NWVZSU0", 46, &c, &off, &ei),
        CODEC_ERR_SYMBOL);
    assert_int_equal(ei.offset, 12 + 32);
    assert_int_equal(ei.sym, 'U');
}

static void test_pack_range(void **state)
{
    uint8_t body[CODEC_BODY_BYTES];
    codec_fields f = {1, 0, 1, CODEC_BATCH_MAX, UINT32_MAX};

    (void)state;
    assert_int_equal(codec_body_pack(&f, body), CODEC_OK);
    f.batch = CODEC_BATCH_MAX + 1;
    assert_int_equal(codec_body_pack(&f, body), CODEC_ERR_RANGE);
    f.batch = 0;
    f.kid = 256;
    assert_int_equal(codec_body_pack(&f, body), CODEC_ERR_RANGE);
    f.kid = 0;
    f.profile = 16;
    assert_int_equal(codec_body_pack(&f, body), CODEC_ERR_RANGE);
}

static void assert_fields(const codec_fields *a, const codec_fields *b)
{
    assert_int_equal(a->version, b->version);
    assert_int_equal(a->profile, b->profile);
    assert_int_equal(a->kid, b->kid);
    assert_true(a->batch == b->batch);
    assert_int_equal(a->serial, b->serial);
}

/* Random fields over the full ranges, edges weighted in. */
static void random_fields(tu_rng *r, codec_fields *f, unsigned profile)
{
    static const uint64_t batch_edges[] = {
        0, 1, CODEC_BATCH_MAX, CODEC_BATCH_MAX - 1, UINT64_C(1) << 32, UINT64_C(1) << 39};
    static const uint32_t serial_edges[] = {0, 1, UINT32_MAX, UINT32_MAX - 1, 1u << 31};
    unsigned pick = (unsigned)(tu_next(r) % 8);

    f->version = CODEC_VERSION;
    f->profile = profile;
    f->kid = (unsigned)(tu_next(r) % 256);
    f->batch = pick == 0 ? batch_edges[tu_next(r) % 6] : tu_next(r) & CODEC_BATCH_MAX;
    f->serial = pick == 1 ? serial_edges[tu_next(r) % 5] : (uint32_t)tu_next(r);
}

static void test_roundtrip_mac(void **state)
{
    tu_rng r = {0x9e3779b97f4a7c15ULL};
    codec_mac_key k;
    int i;

    (void)state;
    assert_int_equal(codec_mac_key_init(&k, kat_mac_key, sizeof(kat_mac_key)), CODEC_OK);
    for (i = 0; i < 200000; i++) {
        codec_fields f;
        uint8_t bin[CODEC_MAC_BYTES];
        char text[CODEC_MAX_TEXT_LEN + 1], url[300];
        size_t ulen;
        codec_code c;
        unsigned bit;

        random_fields(&r, &f, CODEC_PROFILE_MAC);
        assert_int_equal(codec_mac_mint(&k, &f, bin), CODEC_OK);
        assert_int_equal(codec_text_encode(bin, sizeof(bin), text, sizeof(text)), 34);
        assert_int_equal(codec_parse(text, 34, &c, NULL), CODEC_OK);
        assert_fields(&c.f, &f);
        assert_memory_equal(c.bin, bin, sizeof(bin));
        assert_int_equal(codec_mac_check(&k, c.bin), CODEC_OK);

        /* One flipped bit anywhere: the tag no longer matches. */
        bit = (unsigned)(tu_next(&r) % (CODEC_MAC_BYTES * 8));
        c.bin[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_int_equal(codec_mac_check(&k, c.bin), CODEC_ERR_TAG);

        if (i % 16 == 0) {
            size_t off;
            assert_int_equal(
                codec_url_format("https://t.example/", text, 34, url, sizeof(url), &ulen, NULL),
                CODEC_OK);
            assert_int_equal(codec_url_parse(url, ulen, &c, &off, NULL), CODEC_OK);
            assert_memory_equal(c.bin, bin, sizeof(bin));
        }
    }
}

static void test_roundtrip_sig(void **state)
{
    tu_rng r = {42};
    uint8_t pub[CODEC_PUB_BYTES];
    int i;

    (void)state;
    assert_int_equal(codec_ed25519_public(kat_sig_seed, pub), CODEC_OK);
    for (i = 0; i < 300; i++) {
        codec_fields f;
        uint8_t bin[CODEC_SIGCODE_BYTES];
        char text[CODEC_MAX_TEXT_LEN + 1];
        codec_code c;

        random_fields(&r, &f, CODEC_PROFILE_SIG);
        assert_int_equal(codec_sig_mint(kat_sig_seed, &f, bin), CODEC_OK);
        assert_int_equal(codec_text_encode(bin, sizeof(bin), text, sizeof(text)), 120);
        assert_int_equal(codec_parse(text, 120, &c, NULL), CODEC_OK);
        assert_fields(&c.f, &f);
        assert_int_equal(codec_sig_check(pub, c.bin), CODEC_OK);
        c.bin[tu_next(&r) % CODEC_SIGCODE_BYTES] ^= 0x10;
        assert_int_equal(codec_sig_check(pub, c.bin), CODEC_ERR_SIGNATURE);
    }
}

/* Every 34-symbol text whose last symbol varies: exactly the 8 with zero
 * pad bits decode, and each of those re-encodes to itself. */
static void test_canonical(void **state)
{
    char text[CODEC_MAC_TEXT_LEN + 1], again[CODEC_MAX_TEXT_LEN + 1];
    const char *alpha = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    int i, decoded = 0;
    codec_code c;

    (void)state;
    memcpy(text, kat_codes[0].text, sizeof(text));
    for (i = 0; i < 32; i++) {
        text[33] = alpha[i];
        if (codec_parse(text, 34, &c, NULL) == CODEC_OK) {
            decoded++;
            codec_text_encode(c.bin, c.len, again, sizeof(again));
            assert_string_equal(again, text);
        }
    }
    assert_int_equal(decoded, 8);
}

/* JSON escaping: the named escapes, control bytes and DEL as \u00XX, UTF-8
 * as it is; a short buffer holds a prefix that never ends inside an escape,
 * and the length needed is always told. */
static void test_json_escape(void **state)
{
    static const struct {
        const char *in;
        size_t n;
        const char *out;
    } kat[] = {
        {"", 0, ""},
        {"plain", 5, "plain"},
        {"a\"b\\c", 5, "a\\\"b\\\\c"},
        {"\n\t\x01\x1f\x7f", 5, "\\u000a\\u0009\\u0001\\u001f\\u007f"},
        {"\0x", 2, "\\u0000x"}, /* a NUL inside the n bytes is escaped, never cut */
        {"\xe5\x8d\x8e\xe4\xb8\xba </script>", 16, "\xe5\x8d\x8e\xe4\xb8\xba </script>"},
    };
    char out[64];
    size_t i, cap;

    (void)state;
    for (i = 0; i < sizeof(kat) / sizeof(kat[0]); i++) {
        assert_int_equal(codec_json_escape(kat[i].in, kat[i].n, out, sizeof(out)),
                         strlen(kat[i].out));
        assert_string_equal(out, kat[i].out);
        assert_int_equal(codec_json_escape(kat[i].in, kat[i].n, NULL, 0), strlen(kat[i].out));
        assert_true(strlen(kat[i].out) <= CODEC_JSON_ESCAPED_MAX(kat[i].n));
    }
    /* "a\"\x01" (9 bytes escaped): every cap gives a whole-escape prefix,
     * NUL-terminated; cap 10 the whole. */
    static const char *const prefix[] = {"",      "",      "a",     "a",     "a\\\"",       "a\\\"",
                                         "a\\\"", "a\\\"", "a\\\"", "a\\\"", "a\\\"\\u0001"};
    for (cap = 1; cap < sizeof(prefix) / sizeof(prefix[0]); cap++) {
        memset(out, 'X', sizeof(out));
        assert_int_equal(codec_json_escape("a\"\x01", 3, out, cap), 9);
        assert_string_equal(out, prefix[cap]);
    }
}

/* roff escaping for the manual pages: backslash and minus escaped, a line
 * that starts with a control character guarded, anything else kept; a
 * short buffer never ends inside an escape. */
static void test_roff_escape(void **state)
{
    static const struct {
        const char *in, *out;
    } kat[] = {
        {"", ""},
        {"--redis URL", "\\-\\-redis URL"},
        {"a\\b", "a\\eb"},
        {".TH x", "\\&.TH x"},
        {"one\n'two\nthr.ee", "one\n\\&'two\nthr.ee"},
        {"x.y 'z'", "x.y 'z'"},
    };
    char out[64];

    (void)state;
    for (size_t i = 0; i < sizeof(kat) / sizeof(kat[0]); i++) {
        size_t n = strlen(kat[i].in);
        assert_int_equal(codec_roff_escape(kat[i].in, n, out, sizeof(out)), strlen(kat[i].out));
        assert_string_equal(out, kat[i].out);
        assert_int_equal(codec_roff_escape(kat[i].in, n, NULL, 0), strlen(kat[i].out));
        assert_true(strlen(kat[i].out) <= CODEC_ROFF_ESCAPED_MAX(n));
    }
    assert_int_equal(codec_roff_escape("a-", 2, out, 3), 3); /* "a\-" needs 3 */
    assert_string_equal(out, "a");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kat_mint),      cmocka_unit_test(test_kat_parse),
        cmocka_unit_test(test_rejections),    cmocka_unit_test(test_human),
        cmocka_unit_test(test_group),         cmocka_unit_test(test_url),
        cmocka_unit_test(test_pack_range),    cmocka_unit_test(test_roundtrip_mac),
        cmocka_unit_test(test_roundtrip_sig), cmocka_unit_test(test_canonical),
        cmocka_unit_test(test_json_escape),   cmocka_unit_test(test_roff_escape),
        cmocka_unit_test(test_check_symbol),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
