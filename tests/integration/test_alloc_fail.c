/*
 * test_alloc_fail.c - fail the Nth allocation, for every N (hiredis's
 * test.c and curl's torture mode are the models), over the keyring
 * (opening it, minting, checking and signing codes) and the store's reply
 * parsers against a real redis-server (notices, audit entries, a batch, a
 * snapshot). Every run must end in success or a clean error: no crash, no
 * leak (the ASan build checks), nothing half-made. Our own allocations are
 * counted through the linker (--wrap=malloc,calloc,realloc), OpenSSL's
 * through CRYPTO_set_mem_functions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "keys.h"
#include "redis_fixture.h"
#include "replica.h"
#include "store.h"

#include <openssl/crypto.h>
#include <string.h>

/* --- counting allocations ------------------------------------------------------ */

static long calls, fail_at; /* fail_at 0: never */
static int injected;

static int fail_now(void)
{
    if (!fail_at)
        return 0;
    if (++calls == fail_at) {
        injected = 1;
        return 1;
    }
    return 0;
}

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);

void *__wrap_malloc(size_t n)
{
    return fail_now() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t m)
{
    return fail_now() ? NULL : __real_calloc(n, m);
}

void *__wrap_realloc(void *p, size_t n)
{
    return fail_now() ? NULL : __real_realloc(p, n);
}

static void *ossl_malloc(size_t n, const char *file, int line)
{
    (void)file, (void)line;
    return fail_now() ? NULL : __real_malloc(n);
}

static void *ossl_realloc(void *p, size_t n, const char *file, int line)
{
    (void)file, (void)line;
    return fail_now() ? NULL : __real_realloc(p, n);
}

static void ossl_free(void *p, const char *file, int line)
{
    (void)file, (void)line;
    free(p);
}

/* Run fn with the Nth allocation failing, for N = 1, 2, ... until a run
 * meets no failure; fn returns 0 on success, 1 on a clean error, and
 * asserts everything else. Returns how many runs failed cleanly. */
static long torture(int (*fn)(void *), void *arg)
{
    long n, clean = 0;

    for (n = 1;; n++) {
        int rc;
        calls = 0;
        injected = 0;
        fail_at = n;
        rc = fn(arg);
        fail_at = 0;
        if (!injected) {
            assert_int_equal(rc, 0); /* nothing failed: it must succeed */
            print_message("%ld allocations, each failed in turn: %ld clean errors\n", n - 1, clean);
            return clean;
        }
        clean += rc == 1;
        assert_true(n < 100000);
    }
}

/* --- the keyring ------------------------------------------------------------------ */

static char keydir[64];

static int open_and_use(void *arg)
{
    char err[256];
    keys_ring *ring = NULL;
    codec_fields f = {0, CODEC_PROFILE_MAC, 0, 7, 3};
    uint8_t code[CODEC_MAX_BYTES], sig[CODEC_SIG_BYTES];
    char text[CODEC_MAX_TEXT_LEN + 1];
    size_t len;
    unsigned kid;
    keys_err e;
    codec_code c;
    int known;

    (void)arg;
    e = keys_open(keydir, &ring, err, sizeof(err));
    if (e != KEYS_OK) {
        assert_null(ring);
        assert_true(err[0] != '\0'); /* it says why */
        return 1;
    }
    e = keys_mint(ring, &f, code, &len);
    if (e == KEYS_OK) {
        assert_true(codec_text_encode(code, len, text, sizeof(text)) > 0);
        assert_int_equal(codec_parse(text, strlen(text), &c, NULL), CODEC_OK);
        codec_err ce = keys_check(ring, &c, &known);
        assert_true(ce == CODEC_OK || ce == CODEC_ERR_CRYPTO);
    }
    if (keys_sign(ring, (const uint8_t *)"text", 4, sig, &kid) != KEYS_OK)
        e = KEYS_ERR_CRYPTO;
    keys_free(ring);
    return e == KEYS_OK ? 0 : 1;
}

static void test_keyring(void **state)
{
    char err[256];
    (void)state;
    char base[48] = "/tmp/tc-alloc-XXXXXX";

    assert_non_null(mkdtemp(base));
    snprintf(keydir, sizeof(keydir), "%s/k", base);
    assert_int_equal(keys_init_dir(keydir, err, sizeof(err)), KEYS_OK);
    assert_true(torture(open_and_use, NULL) > 0);
}

/* --- the store's reply parsers ------------------------------------------------------- */

typedef struct fx {
    rf redis;
    store *s;
} fx;

static int reads(void *arg)
{
    fx *f = arg;
    char err[STORE_ERR_MAX], sid[64];
    store_notice **v = NULL;
    store_audit_entry *e = NULL;
    store_audit_query q = {.subject = "", .kind = "", .limit = 100};
    store_batch b;
    uint64_t next, rev;
    size_t n = 0, k = 0, i;
    rep *r;
    int failed = 0;

    (void)rf_cli; /* the fixture's, unused here */

    if (store_notices_after(f->s, "shop", "", 64, &v, &n, err, sizeof(err)) == STORE_OK) {
        assert_int_equal(n, 1);
        assert_int_equal(v[0]->nlistings, 2);
        for (i = 0; i < n; i++)
            free(v[i]);
        free(v);
    } else {
        failed = 1;
    }
    if (store_audit_query_run(f->s, &q, &e, &k, &next, err, sizeof(err)) == STORE_OK) {
        assert_true(k >= 4);
        store_audit_entries_free(e, k);
    } else {
        failed = 1;
    }
    if (store_get_batch(f->s, 1, &b, err, sizeof(err)) == STORE_OK)
        assert_int_equal(b.quantity, 10);
    else
        failed = 1;
    if ((r = rep_new()) != NULL) {
        if (store_snapshot(f->s, r, sid, sizeof(sid), &rev, err, sizeof(err)) == STORE_OK)
            assert_int_equal(rep_count_batches(r), 1);
        else
            failed = 1;
        rep_reclaim(r);
        rep_free(r);
    } else {
        failed = 1;
    }
    return failed;
}

/* The writes whose commands are built in pieces (KEYS read first, then
 * the script): a bind of a new listing, then a suspension that fans out
 * to it, then the reinstatement. An allocation that fails leaves the
 * write undone or done, never half. */
static int writes(void *arg)
{
    static int round;
    fx *f = arg;
    char err[STORE_ERR_MAX], lid[32];
    store_binding b = {lid, "CODE-1", 1, "C-1", 0, 0, 0};
    uint64_t rev;
    uint32_t notices = 0;

    snprintf(lid, sizeof(lid), "W%d", round++);
    if (store_bind_listings(f->s, NULL, "shop2", &b, 1, err, sizeof(err)) != STORE_OK)
        return 1;
    if (store_set_cert_status(f->s, NULL, "t", "C-1", REP_CERT_REVOKED, "x", 3, &rev, &notices, err,
                              sizeof(err)) != STORE_OK)
        return 1;
    /* A notice per platform when the status changed (not when an earlier
     * round stopped between these two writes). */
    assert_true(notices == 0 || notices >= 2);
    if (store_set_cert_status(f->s, NULL, "t", "C-1", REP_CERT_SUSPENDED, "x", 4, &rev, NULL, err,
                              sizeof(err)) != STORE_OK)
        return 1;
    return 0;
}

static void test_store_replies(void **state)
{
    static const char *cats[] = {"0704"};
    rep_cert_fields c = {"C-1", REP_KIND_CCC, "91310000MA1FL0001R", cats, 1, REP_CERT_VALID, "", 0,
                         1};
    store_product_req pq = {
        "91310000MA1FL0001R", "C-1", "0704", "Acme", "PB", "", "", "t", 1800000000};
    store_binding bind[2] = {{"L1", "CODE-1", 1, "C-1", 0, 0, 0},
                             {"L2", "CODE-2", 1, "C-1", 1, 0, 0}};
    char err[STORE_ERR_MAX], pid[REP_PRODUCT_ID_MAX + 1];
    store_batch b;
    uint64_t rev, id;
    int64_t reg;
    fx f;

    memset(&f, 0, sizeof(f));
    (void)state;
    assert_int_equal(rf_start(&f.redis), 0);
    assert_int_equal(store_open(f.redis.url, &f.s, err, sizeof(err)), STORE_OK);
    assert_int_equal(store_put_mfr(f.s, NULL, "t", "91310000MA1FL0001R", "Acme", REP_MFR_ACTIVE,
                                   &rev, err, sizeof(err)),
                     STORE_OK);
    assert_int_equal(store_put_cert(f.s, NULL, "t", &c, &rev, NULL, err, sizeof(err)), STORE_OK);
    assert_int_equal(store_register_product(f.s, NULL, &pq, pid, &reg, &rev, err, sizeof(err)),
                     STORE_OK);
    assert_int_equal(store_next_batch_id(f.s, &id, err, sizeof(err)), STORE_OK);
    memset(&b, 0, sizeof(b));
    b.id = id;
    snprintf(b.product_id, sizeof(b.product_id), "%s", pid);
    snprintf(b.issuer, sizeof(b.issuer), "91310000MA1FL0001R");
    snprintf(b.cert_number, sizeof(b.cert_number), "C-1");
    b.quantity = 10;
    b.key_id = 1;
    b.profile = REP_PROFILE_MAC;
    assert_int_equal(store_create_batch(f.s, NULL, &b, &rev, err, sizeof(err)), STORE_OK);
    assert_int_equal(store_bind_listings(f.s, NULL, "shop", bind, 2, err, sizeof(err)), STORE_OK);
    assert_int_equal(store_set_cert_status(f.s, NULL, "t", "C-1", REP_CERT_SUSPENDED, "x", 2, &rev,
                                           NULL, err, sizeof(err)),
                     STORE_OK);
    assert_true(torture(reads, &f) > 0);
    assert_true(torture(writes, &f) > 0);
    store_free(f.s);
    rf_destroy(&f.redis);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keyring),
        cmocka_unit_test(test_store_replies),
    };

    /* Before OpenSSL allocates anything. */
    if (!CRYPTO_set_mem_functions(ossl_malloc, ossl_realloc, ossl_free))
        return 1;
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
