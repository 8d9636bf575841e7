/*
 * test_qr.c - QR images: every PNG label is read back by zbarimg (an
 * independent decoder) to the exact URL; SVG and sheet structure; limits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "codec.h"
#include "code_kat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/tc-qr-XXXXXX";

static int setup(void **state)
{
    (void)state;
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[128];

    (void)state;
    if (getenv("TC_KEEP_TMP"))
        return 0;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Run zbarimg on a PNG and return what it read (without newline). */
static void zbar_read(const char *path, char *out, size_t cap)
{
    char cmd[512];
    FILE *p;
    size_t n;

    snprintf(cmd, sizeof(cmd), "zbarimg --quiet --raw '%s' 2>/dev/null", path);
    p = popen(cmd, "r");
    assert_non_null(p);
    n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    while (n && (out[n - 1] == '\n' || out[n - 1] == '\r'))
        out[--n] = '\0';
    assert_int_equal(pclose(p), 0);
}

static void png_roundtrip(const char *url, int ecc, unsigned module, unsigned want_width)
{
    static uint8_t png[1 << 16];
    codec_qr_opts o = {ecc, module, 4};
    char path[256], got[512];
    size_t need = 0;
    unsigned width = 0;
    FILE *f;

    assert_int_equal(codec_qr_png(url, strlen(url), &o, png, sizeof(png), &need, &width), CODEC_OK);
    if (want_width)
        assert_int_equal(width, want_width);
    assert_true(need > 8 && memcmp(png, "\x89PNG\r\n\x1a\n", 8) == 0);
    snprintf(path, sizeof(path), "%s/label.png", tmpdir);
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(png, 1, need, f), need);
    assert_int_equal(fclose(f), 0);
    zbar_read(path, got, sizeof(got));
    assert_string_equal(got, url);
}

static void test_png_zbar(void **state)
{
    static const char *bases[] = {"https://tc.example.com", "HTTPS://TRACE.SAMR.EXAMPLE",
                                  "http://127.0.0.1:8080"};
    size_t i, b;

    (void)state;
    for (i = 0; i < sizeof(kat_codes) / sizeof(kat_codes[0]); i++) {
        for (b = 0; b < sizeof(bases) / sizeof(bases[0]); b++) {
            char url[400];
            size_t n;
            assert_int_equal(codec_url_format(bases[b], kat_codes[i].text,
                                              strlen(kat_codes[i].text), url, sizeof(url), &n,
                                              NULL),
                             CODEC_OK);
            png_roundtrip(url, (int)((i + b) % 4), 3 + (unsigned)b, 0);
        }
    }
}

/* DESIGN: a 23-character base URL + "/C/" + 34 symbols is a version-3
 * symbol (29 x 29) at ECC level M, all in alphanumeric mode. */
static void test_version3(void **state)
{
    char url[128];
    size_t n;

    (void)state;
    assert_int_equal(codec_url_format("https://tc.samr.example", kat_codes[0].text, 34, url,
                                      sizeof(url), &n, NULL),
                     CODEC_OK);
    assert_int_equal(n, 23 + 3 + 34);
    png_roundtrip(url, CODEC_ECC_M, 4, 29);
}

/* GS1 Digital Links (docs/CODES.md): the scheme in byte mode, the rest in
 * alphanumeric mode. At ECC M a 23-character base URL (DESIGN's measure,
 * scheme included) makes version 4 (33 x 33), a 23-character host version
 * 5 (37 x 37); zbarimg reads back exactly the link for every KAT code. A
 * SIG code has no Digital Link form; a bad GTIN is refused. */
static void test_digital_link_qr(void **state)
{
    char dl[CODEC_DL_MAX + 1];
    size_t n;
    codec_errinfo ei;

    (void)state;
    assert_int_equal(codec_dl_format("https://tc.samr.example", "6901234567892", kat_codes[0].text,
                                     34, dl, sizeof(dl), &n, NULL),
                     CODEC_OK);
    assert_string_equal(dl, "https://TC.SAMR.EXAMPLE/01/06901234567892/10/200G0000000000"
                            "/21/0001CH0W309Z6NWVZSD0");
    assert_int_equal(n, 23 + 60);
    png_roundtrip(dl, CODEC_ECC_M, 4, 33);
    assert_int_equal(codec_dl_format("https://tc.example-regulator.cn", "06901234567892",
                                     kat_codes[2].text, 34, dl, sizeof(dl), &n, NULL),
                     CODEC_OK);
    assert_int_equal(n, 8 + 23 + 60);
    png_roundtrip(dl, CODEC_ECC_M, 4, 37);
    for (size_t i = 0; i < sizeof(kat_codes) / sizeof(kat_codes[0]); i++) {
        size_t len = strlen(kat_codes[i].text);
        codec_err e = codec_dl_format("http://127.0.0.1:8080", "96385074", kat_codes[i].text, len,
                                      dl, sizeof(dl), &n, &ei);
        if (len != CODEC_MAC_TEXT_LEN) {
            assert_int_equal(e, CODEC_ERR_LENGTH);
            continue;
        }
        assert_int_equal(e, CODEC_OK);
        png_roundtrip(dl, (int)(i % 4), 3, 0);
    }
    assert_int_equal(codec_dl_format("https://x.example", "6901234567891", kat_codes[0].text, 34,
                                     dl, sizeof(dl), &n, &ei),
                     CODEC_ERR_GTIN);
    assert_int_equal(codec_dl_format("tc.example.com", "6901234567892", kat_codes[0].text, 34, dl,
                                     sizeof(dl), &n, &ei),
                     CODEC_ERR_URL);
    assert_int_equal(codec_dl_format("https://a b", "6901234567892", kat_codes[0].text, 34, dl,
                                     sizeof(dl), &n, &ei),
                     CODEC_ERR_URL);
    assert_int_equal(codec_dl_format("https://x.example", "6901234567892", kat_codes[0].text, 34,
                                     dl, 20, &n, &ei),
                     CODEC_ERR_SPACE);
    assert_int_equal(n, 17 + 60);
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;

    while ((hay = strstr(hay, needle)) != NULL) {
        n++;
        hay++;
    }
    return n;
}

static void test_svg(void **state)
{
    const char *url = "HTTPS://TC.EXAMPLE.COM/C/200G00000000000001CH0W309Z6NWVZSD0";
    codec_qr_opts o = {CODEC_ECC_M, 4, 4};
    char small[64], *svg;
    size_t need = 0;
    unsigned width;

    (void)state;
    assert_int_equal(codec_qr_svg(url, strlen(url), &o, small, sizeof(small), &need, &width),
                     CODEC_ERR_SPACE);
    assert_true(need > sizeof(small));
    svg = malloc(need);
    assert_non_null(svg);
    assert_int_equal(codec_qr_svg(url, strlen(url), &o, svg, need, &need, &width), CODEC_OK);
    assert_int_equal(strlen(svg) + 1, need);
    assert_int_equal(width, 29);
    assert_true(strncmp(svg, "<svg ", 5) == 0);
    assert_non_null(strstr(svg, "viewBox=\"0 0 37 37\""));
    assert_non_null(strstr(svg, "width=\"148\""));
    /* The finder pattern's top row is a run of 7 dark modules at (4,4). */
    assert_non_null(strstr(svg, "M4 4h7v1h-7z"));
    free(svg);

    /* Lower case goes in byte mode (a Digital Link's scheme); a NUL too. */
    assert_int_equal(codec_qr_svg("https://x", 9, &o, small, sizeof(small), &need, NULL),
                     CODEC_ERR_SPACE);
    o.module = 0;
    assert_int_equal(codec_qr_svg(url, strlen(url), &o, small, sizeof(small), &need, NULL),
                     CODEC_ERR_ARG);
}

static void test_sheet(void **state)
{
    codec_label l[CODEC_SHEET_LABELS + 1];
    char urls[CODEC_SHEET_LABELS + 1][200];
    static char svg[1 << 20];
    size_t need, i;

    (void)state;
    for (i = 0; i <= CODEC_SHEET_LABELS; i++) {
        const char *t = kat_codes[i % 6].text;
        assert_int_equal(codec_url_format("https://tc.example.com", t, 34, urls[i], sizeof(urls[i]),
                                          &need, NULL),
                         CODEC_OK);
        l[i].url = urls[i];
        l[i].text = t;
    }
    assert_int_equal(codec_sheet_svg(l, CODEC_SHEET_LABELS, CODEC_ECC_M, svg, sizeof(svg), &need),
                     CODEC_OK);
    assert_non_null(strstr(svg, "width=\"210mm\" height=\"297mm\""));
    assert_int_equal(count(svg, "<path "), CODEC_SHEET_LABELS);
    assert_int_equal(count(svg, "<text "), CODEC_SHEET_LABELS);
    /* The printed form: 34 symbols and the check symbol in groups of
     * four, three groups a line. */
    assert_non_null(strstr(svg, ">200G-0000-0000<"));
    assert_non_null(strstr(svg, ">0000-01CH-0W30<"));
    assert_non_null(strstr(svg, ">9Z6N-WVZS-D0$<"));
    assert_int_equal(
        codec_sheet_svg(l, CODEC_SHEET_LABELS + 1, CODEC_ECC_M, svg, sizeof(svg), &need),
        CODEC_ERR_ARG);
    assert_int_equal(codec_sheet_svg(l, 2, CODEC_ECC_M, svg, 100, &need), CODEC_ERR_SPACE);
    assert_true(need > 100);
}

/* A scanner reads one label at a time: each 70 x 37.125 mm cell of the
 * sheet is rasterised by librsvg (not our code) at 300 dpi, then read by
 * zbarimg, and must give back exactly its URL. (zbar scanning the whole
 * page at once misses some of 24 symbols: a limit of its multi-symbol
 * search, not of the labels, which all read one by one.) */
static void test_sheet_zbar(void **state)
{
    static const char page[] = "width=\"210mm\" height=\"297mm\" viewBox=\"0 0 210 297\"";
    codec_label l[CODEC_SHEET_LABELS];
    char urls[CODEC_SHEET_LABELS][200], texts[CODEC_SHEET_LABELS][CODEC_MAX_TEXT_LEN + 1];
    char svgpath[256], pngpath[256], cmd[1024], got[512], view[128];
    static char svg[1 << 20];
    codec_mac_key k;
    size_t need, i;
    char *at;

    (void)state;
    assert_int_equal(codec_mac_key_init(&k, kat_mac_key, sizeof(kat_mac_key)), CODEC_OK);
    for (i = 0; i < CODEC_SHEET_LABELS; i++) {
        codec_fields fl = {CODEC_VERSION, CODEC_PROFILE_MAC, 3, 77, (uint32_t)(1000 + i)};
        uint8_t bin[CODEC_MAC_BYTES];
        assert_int_equal(codec_mac_mint(&k, &fl, bin), CODEC_OK);
        codec_text_encode(bin, sizeof(bin), texts[i], sizeof(texts[i]));
        assert_int_equal(codec_url_format("https://tc.samr.example", texts[i], 34, urls[i],
                                          sizeof(urls[i]), &need, NULL),
                         CODEC_OK);
        l[i].url = urls[i];
        l[i].text = texts[i];
    }
    assert_int_equal(codec_sheet_svg(l, CODEC_SHEET_LABELS, CODEC_ECC_M, svg, sizeof(svg), &need),
                     CODEC_OK);
    at = strstr(svg, page);
    assert_non_null(at);
    snprintf(svgpath, sizeof(svgpath), "%s/cell.svg", tmpdir);
    snprintf(pngpath, sizeof(pngpath), "%s/cell.png", tmpdir);
    for (i = 0; i < CODEC_SHEET_LABELS; i++) {
        FILE *f;
        int n = snprintf(view, sizeof(view),
                         "width=\"70mm\" height=\"37.125mm\" viewBox=\"%.3f %.3f 70 37.125\"",
                         (double)(i % CODEC_SHEET_COLS) * 70.0,
                         (double)(i / CODEC_SHEET_COLS) * 37.125);
        f = fopen(svgpath, "w");
        assert_non_null(f);
        fwrite(svg, 1, (size_t)(at - svg), f);
        fwrite(view, 1, (size_t)n, f);
        fputs(at + sizeof(page) - 1, f);
        assert_int_equal(fclose(f), 0);
        snprintf(cmd, sizeof(cmd), "rsvg-convert -d 300 -p 300 -b white '%s' -o '%s'", svgpath,
                 pngpath);
        assert_int_equal(system(cmd), 0);
        zbar_read(pngpath, got, sizeof(got));
        assert_string_equal(got, urls[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_png_zbar),   cmocka_unit_test(test_version3),
        cmocka_unit_test(test_svg),        cmocka_unit_test(test_sheet),
        cmocka_unit_test(test_sheet_zbar), cmocka_unit_test(test_digital_link_qr),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
