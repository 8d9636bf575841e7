/*
 * test_passport_text.c - the passport's stored form: what is formatted reads
 * back the same, field for field; a line that is none of the forms, and
 * more of a field than its bound, do not read; the replica puts a
 * passport in force, replaces it, and keeps it only for a known product.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "passport.h"
#include "replica.h"

#include <stdio.h>
#include <string.h>

static void test_round_trip(void **state)
{
    passport p, q;
    char text[4096], copy[4096];

    (void)state;
    memset(&p, 0, sizeof(p));
    p.standards[p.nstandards++] = "GB 4943.1-2022";
    p.standards[p.nstandards++] = "GB 31241-2022";
    p.reports[p.nreports++] =
        (passport_report){"CQC-1", "中国质量认证中心", "https://l.cn/1.pdf", "ab", 1767225600};
    p.reports[p.nreports++] = (passport_report){"CQC-2", "CQC", "", "", 0};
    p.images[p.nimages++] = (passport_image){"https://i.cn/a.jpg", "cd", "正面 <front>"};
    p.description = "20000 mAh: 双 USB-C";
    p.origin = "广东省深圳市";
    size_t n = passport_format(&p, text, sizeof(text));
    assert_int_equal(n, strlen(text));
    assert_int_equal(passport_format(&p, NULL, 0), n); /* the length needed */
    memcpy(copy, text, n + 1);
    assert_int_equal(passport_parse(copy, &q), 0);
    assert_int_equal(q.nstandards, 2);
    assert_string_equal(q.standards[1], "GB 31241-2022");
    assert_int_equal(q.nreports, 2);
    assert_string_equal(q.reports[0].laboratory, "中国质量认证中心");
    assert_true(q.reports[0].issued_unix == 1767225600);
    assert_string_equal(q.reports[1].url, "");
    assert_int_equal(q.nimages, 1);
    assert_string_equal(q.images[0].alt, "正面 <front>");
    assert_string_equal(q.description, "20000 mAh: 双 USB-C");
    assert_string_equal(q.origin, "广东省深圳市");
    /* Nothing: an empty passport, read as one. */
    memset(&p, 0, sizeof(p));
    assert_int_equal(passport_format(&p, text, sizeof(text)), 0);
    assert_int_equal(passport_parse(text, &q), 0);
    assert_string_equal(q.origin, "");
}

static void test_refusals(void **state)
{
    char text[8192];
    passport q;
    size_t n = 0;
    int i;

    (void)state;
    snprintf(text, sizeof(text), "colour red\n");
    assert_int_equal(passport_parse(text, &q), -1);
    snprintf(text, sizeof(text), "standard\n"); /* no space: not the form */
    assert_int_equal(passport_parse(text, &q), -1);
    for (i = 0; i <= PASSPORT_STANDARDS_MAX; i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n, "standard S%d\n", i);
    assert_int_equal(passport_parse(text, &q), -1); /* 17 standards */
    n = 0;
    for (i = 0; i <= PASSPORT_IMAGES_MAX; i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n, "image https://x.cn/%d\tab\talt\n", i);
    assert_int_equal(passport_parse(text, &q), -1);
}

static void test_replica_versions(void **state)
{
    rep *r = rep_new();
    rep_product_fields pf = {"P1", "0704", "Acme", "PB", "", 1};
    const char *cats[] = {"0704"};
    rep_product *p;

    (void)state;
    assert_non_null(r);
    assert_int_equal(rep_put_mfr(r, "91310000MA1FL0001R", "Acme", REP_MFR_ACTIVE), REP_OK);
    rep_cert_fields c = {"C-1", REP_KIND_CCC, "91310000MA1FL0001R", cats, 1, REP_CERT_VALID, "", 0,
                         1};
    assert_int_equal(rep_put_cert(r, &c), REP_OK);
    assert_int_equal(rep_put_product(r, &pf, "C-1", "91310000MA1FL0001R"), REP_OK);
    p = rep_product_find(r, "P1");
    assert_null(atomic_load(&p->passport));
    assert_int_equal(rep_put_passport(r, "P1", "origin A\n"), REP_OK);
    assert_string_equal(atomic_load(&p->passport), "origin A\n");
    assert_int_equal(rep_put_passport(r, "P1", "origin B\n"), REP_OK); /* the old one retired */
    assert_string_equal(atomic_load(&p->passport), "origin B\n");
    assert_int_equal(rep_put_passport(r, "P1", ""), REP_OK);
    assert_null(atomic_load(&p->passport));
    assert_int_equal(rep_put_passport(r, "P9", "origin C\n"), REP_ERR_NOTFOUND);
    assert_int_equal(rep_put_passport(r, "P1", "origin D\n"), REP_OK); /* freed by rep_free */
    rep_reclaim(r);
    rep_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_replica_versions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
