/*
 * test_replica.c - the registry replica: records and versions, the batch
 * index, recall merging, and copy-on-write under a concurrent reader (run
 * under ASan, a version freed too early is a use-after-free report).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "replica.h"

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static rep *fill(void)
{
    static const char *cats[] = {"0704", "1201"};
    rep_cert_fields cf = {
        "2024010701000001", REP_KIND_CCC, "91310000MA1FL0001R", cats, 2, REP_CERT_VALID, "", 0, 1};
    rep_product_fields p = {"P1", "0704", "Acme", "PB-10000", "", 0};
    rep *r = rep_new();

    assert_non_null(r);
    assert_int_equal(rep_put_mfr(r, "91310000MA1FL0001R", "Acme Power", REP_MFR_ACTIVE), REP_OK);
    assert_int_equal(rep_put_cert(r, &cf), REP_OK);
    assert_int_equal(rep_put_product(r, &p, "2024010701000001", "91310000MA1FL0001R"), REP_OK);
    assert_int_equal(rep_put_batch(r, 1, "P1", 1000, 1, REP_PROFILE_MAC, 5), REP_OK);
    return r;
}

static void test_records(void **state)
{
    rep *r = fill();
    const rep_batch *b;
    rep_cert *c;
    rep_product_fields p = {"P1", "0704", "Acme", "PB-10000", "", 0};
    int slot = rep_reader_register(r);

    (void)state;
    assert_int_equal(slot, 0);
    rep_read_begin(r, slot);
    b = rep_batch_get(r, 1);
    assert_non_null(b);
    assert_int_equal(b->quantity, 1000);
    assert_string_equal(b->product->brand, "Acme");
    assert_string_equal(b->product->cert->number, "2024010701000001");
    assert_int_equal(atomic_load(&b->product->cert->v)->ncat, 2);
    assert_string_equal(atomic_load(&b->product->cert->v)->cat[1], "1201");
    assert_null(rep_batch_get(r, 2));
    assert_null(rep_batch_get(r, UINT64_C(1) << 33));
    rep_read_end(r, slot);

    /* Replays of the same product or batch are accepted; changes are not. */
    assert_int_equal(rep_put_product(r, &p, "2024010701000001", "91310000MA1FL0001R"), REP_OK);
    p.model = "PB-20000";
    assert_int_equal(rep_put_product(r, &p, "2024010701000001", "91310000MA1FL0001R"),
                     REP_ERR_EXISTS);
    assert_int_equal(rep_put_product(r, &p, "NOPE", "91310000MA1FL0001R"), REP_ERR_NOTFOUND);
    assert_int_equal(rep_put_batch(r, 1, "P1", 1000, 1, REP_PROFILE_MAC, 5), REP_OK);
    assert_int_equal(rep_put_batch(r, 1, "P1", 999, 1, REP_PROFILE_MAC, 5), REP_ERR_EXISTS);
    assert_int_equal(rep_put_batch(r, 2, "P9", 10, 1, REP_PROFILE_MAC, 5), REP_ERR_NOTFOUND);
    assert_int_equal(rep_put_batch(r, 0, "P1", 10, 1, REP_PROFILE_MAC, 5), REP_ERR_ARG);
    assert_int_equal(rep_put_batch(r, 3, "P1", 0, 1, REP_PROFILE_MAC, 5), REP_ERR_ARG);
    assert_int_equal(rep_put_batch(r, 70000, "P1", 10, 1, REP_PROFILE_SIG, 5), REP_OK);
    assert_int_equal(rep_count_batches(r), 2);

    /* A status change is a new version; the record stays. */
    c = rep_cert_find(r, "2024010701000001");
    assert_non_null(c);
    {
        rep_cert_fields cf = {"2024010701000001",
                              REP_KIND_CCC,
                              "91310000MA1FL0001R",
                              NULL,
                              0,
                              REP_CERT_REVOKED,
                              "fire risk",
                              0,
                              2};
        assert_int_equal(rep_put_cert(r, &cf), REP_OK);
    }
    assert_ptr_equal(rep_cert_find(r, "2024010701000001"), c);
    assert_int_equal(atomic_load(&c->v)->status, REP_CERT_REVOKED);
    assert_string_equal(atomic_load(&c->v)->reason, "fire risk");

    /* Bounds. */
    {
        char longname[REP_NAME_MAX + 2];
        memset(longname, 'x', sizeof(longname) - 1);
        longname[sizeof(longname) - 1] = '\0';
        assert_int_equal(rep_put_mfr(r, "X", longname, REP_MFR_ACTIVE), REP_ERR_ARG);
        assert_int_equal(rep_put_mfr(r, "", "n", REP_MFR_ACTIVE), REP_ERR_ARG);
        assert_int_equal(rep_put_mfr(r, "X", "n", 7), REP_ERR_ARG);
    }
    rep_reclaim(r);
    rep_free(r);
}

static void expect_ranges(const rep_batch *b, const uint32_t (*want)[2], size_t n)
{
    const rep_recalls *rc = atomic_load(&b->recalls);
    size_t i;

    assert_non_null(rc);
    assert_int_equal(rc->n, n);
    for (i = 0; i < n; i++) {
        assert_int_equal(rc->r[i].first, want[i][0]);
        assert_int_equal(rc->r[i].last, want[i][1]);
    }
}

static void test_recalls(void **state)
{
    rep *r = fill();
    const rep_batch *b = rep_batch_get(r, 1);

    (void)state;
    assert_null(rep_recalled(atomic_load(&b->recalls), 5));
    assert_int_equal(rep_put_recall(r, 1, 10, 19, "battery swelling"), REP_OK);
    assert_int_equal(rep_put_recall(r, 1, 30, 39, "battery swelling"), REP_OK);
    {
        static const uint32_t w[][2] = {{10, 19}, {30, 39}};
        expect_ranges(b, w, 2);
    }
    /* Overlapping both, other reason: only the gaps take the new reason. */
    assert_int_equal(rep_put_recall(r, 1, 15, 45, "label error"), REP_OK);
    {
        static const uint32_t w[][2] = {{10, 19}, {20, 29}, {30, 39}, {40, 45}};
        expect_ranges(b, w, 4);
    }
    assert_string_equal(rep_recalled(atomic_load(&b->recalls), 25)->reason, "label error");
    assert_string_equal(rep_recalled(atomic_load(&b->recalls), 12)->reason, "battery swelling");
    assert_null(rep_recalled(atomic_load(&b->recalls), 9));
    assert_null(rep_recalled(atomic_load(&b->recalls), 46));
    /* Touching with the same reason merges. */
    assert_int_equal(rep_put_recall(r, 1, 46, 50, "label error"), REP_OK);
    {
        static const uint32_t w[][2] = {{10, 19}, {20, 29}, {30, 39}, {40, 50}};
        expect_ranges(b, w, 4);
    }
    /* Everything: the gaps before, between and after. */
    assert_int_equal(rep_put_recall(r, 1, 0, 999, "all"), REP_OK);
    assert_string_equal(rep_recalled(atomic_load(&b->recalls), 0)->reason, "all");
    assert_string_equal(rep_recalled(atomic_load(&b->recalls), 999)->reason, "all");
    assert_string_equal(rep_recalled(atomic_load(&b->recalls), 35)->reason, "battery swelling");
    /* Bounds: past the quantity, reversed, unknown batch. */
    assert_int_equal(rep_put_recall(r, 1, 0, 1000, "x"), REP_ERR_ARG);
    assert_int_equal(rep_put_recall(r, 1, 5, 4, "x"), REP_ERR_ARG);
    assert_int_equal(rep_put_recall(r, 9, 0, 1, "x"), REP_ERR_NOTFOUND);
    rep_reclaim(r);
    rep_free(r);
}

typedef struct race {
    rep *r;
    _Atomic int stop;
    _Atomic long reads;
} race;

static void *reader_main(void *arg)
{
    race *x = arg;
    int slot = rep_reader_register(x->r);
    rep_cert *c = rep_cert_find(x->r, "2024010701000001");

    while (!atomic_load(&x->stop)) {
        const rep_cert_v *v;
        const rep_recalls *rc;
        rep_read_begin(x->r, slot);
        v = atomic_load(&c->v);
        rc = atomic_load(&rep_batch_get(x->r, 1)->recalls);
        /* Touch every byte a reader would: freed memory trips ASan. */
        if (strlen(v->reason) > REP_REASON_MAX || v->ncat > REP_CATEGORIES_MAX)
            abort();
        if (rc && rc->n && strlen(rc->r[rc->n - 1].reason) > REP_REASON_MAX)
            abort();
        rep_read_end(x->r, slot);
        atomic_fetch_add(&x->reads, 1);
    }
    return NULL;
}

static void test_concurrent_versions(void **state)
{
    race x = {fill(), 0, 0};
    pthread_t t;
    int i;

    (void)state;
    assert_int_equal(pthread_create(&t, NULL, reader_main, &x), 0);
    /* Make sure the two really overlap: start writing once the reader
     * reads, and go on until it has read many times. */
    while (atomic_load(&x.reads) == 0)
        sched_yield();
    for (i = 0; i < 20000 || (atomic_load(&x.reads) < 2000 && i < 2000000); i++) {
        char reason[64];
        rep_cert_fields cf = {"2024010701000001",
                              REP_KIND_CCC,
                              "91310000MA1FL0001R",
                              NULL,
                              0,
                              1 + i % 3,
                              reason,
                              0,
                              i};
        snprintf(reason, sizeof(reason), "change %d with a longer reason text", i);
        assert_int_equal(rep_put_cert(x.r, &cf), REP_OK);
        if (i % 50 == 0)
            assert_int_equal(
                rep_put_recall(x.r, 1, (uint32_t)(i % 900), (uint32_t)(i % 900 + 5), reason),
                REP_OK);
        rep_set_revision(x.r, (uint64_t)i);
        rep_reclaim(x.r);
    }
    atomic_store(&x.stop, 1);
    pthread_join(t, NULL);
    assert_true(atomic_load(&x.reads) >= 2000);
    assert_int_equal(rep_revision(x.r), (uint64_t)i - 1);
    rep_reclaim(x.r);
    rep_free(x.r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_records),
        cmocka_unit_test(test_recalls),
        cmocka_unit_test(test_concurrent_versions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
