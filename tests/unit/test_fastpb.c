/*
 * test_fastpb.c - the hand-written codecs of the hot messages give exactly
 * protobuf-c's bytes (encode) and structs (decode), on random messages with
 * the edge values: zeros, empty strings, absent product, negative int64,
 * large varints.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "arena.h"
#include "fastpb.h"
#include "testutil.h"
#include "tracecode/v1/verifier.pb-c.h"

#include <stdlib.h>
#include <string.h>

#define N 3000

static char *rand_str(tu_rng *r, char *buf, size_t cap)
{
    size_t n = (size_t)(tu_next(r) % 4 == 0 ? 0 : tu_next(r) % (cap - 1)), i;

    for (i = 0; i < n; i++)
        buf[i] = (char)('!' + tu_next(r) % 90);
    buf[n] = '\0';
    return buf;
}

static uint64_t rand_u64(tu_rng *r)
{
    switch (tu_next(r) % 4) {
    case 0:
        return 0;
    case 1:
        return tu_next(r) % 128;
    case 2:
        return UINT64_MAX - tu_next(r) % 3;
    default:
        return tu_next(r) >> (tu_next(r) % 64);
    }
}

typedef struct strs {
    char s[12][64];
} strs;

static void rand_result(tu_rng *r, Tracecode__V1__VerifyResult *v, Tracecode__V1__Product *p,
                        strs *b)
{
    tracecode__v1__verify_result__init(v);
    v->verdict = (Tracecode__V1__Verdict)(tu_next(r) % 11);
    v->detail = rand_str(r, b->s[0], 64);
    v->batch_id = rand_u64(r);
    v->serial = (uint32_t)rand_u64(r);
    v->certificate_number = rand_str(r, b->s[1], 64);
    v->certificate_status = (Tracecode__V1__CertificateStatus)(tu_next(r) % 5);
    v->issuer_credit_code = rand_str(r, b->s[2], 64);
    v->issuer_name = rand_str(r, b->s[3], 64);
    v->as_of_revision = rand_u64(r);
    v->stale = (protobuf_c_boolean)(tu_next(r) % 2);
    if (tu_next(r) % 2) {
        tracecode__v1__product__init(p);
        p->product_id = rand_str(r, b->s[4], 64);
        p->certificate_number = rand_str(r, b->s[5], 64);
        p->category_code = rand_str(r, b->s[6], 64);
        p->brand = rand_str(r, b->s[7], 64);
        p->model = rand_str(r, b->s[8], 64);
        p->gtin = rand_str(r, b->s[9], 64);
        p->issuer_credit_code = rand_str(r, b->s[10], 64);
        p->registered_unix = (int64_t)rand_u64(r); /* negative too */
        v->product = p;
    }
}

static void test_encode_matches(void **state)
{
    tu_rng r = {11};
    int i;

    (void)state;
    for (i = 0; i < N; i++) {
        size_t n = (size_t)(tu_next(&r) % 20), k;
        Tracecode__V1__VerifyResult *v = calloc(n + 1, sizeof(*v));
        Tracecode__V1__VerifyResult **pv = calloc(n + 1, sizeof(*pv));
        Tracecode__V1__VerifyCodeResponse one = TRACECODE__V1__VERIFY_CODE_RESPONSE__INIT;
        Tracecode__V1__Product *p = calloc(n + 1, sizeof(*p));
        strs *b = calloc(n + 1, sizeof(*b));
        Tracecode__V1__VerifyBatchResponse batch = TRACECODE__V1__VERIFY_BATCH_RESPONSE__INIT;
        uint8_t *want, *got;
        size_t wn, gn;

        for (k = 0; k <= n; k++) {
            rand_result(&r, &v[k], &p[k], &b[k]);
            pv[k] = &v[k];
        }
        /* One response alone (sometimes without its result). */
        one.result = i % 7 == 0 ? NULL : &v[n];
        wn = protobuf_c_message_get_packed_size(&one.base);
        gn = fastpb_size_verify_code_response(&one.base);
        assert_int_equal(gn, wn);
        want = malloc(wn + 1);
        got = malloc(gn + 1);
        protobuf_c_message_pack(&one.base, want);
        fastpb_encode_verify_code_response(&one.base, got);
        assert_memory_equal(got, want, wn);
        free(want);
        free(got);
        /* A batch of them. */
        batch.n_results = n;
        batch.results = pv;
        wn = protobuf_c_message_get_packed_size(&batch.base);
        gn = fastpb_size_verify_batch_response(&batch.base);
        assert_int_equal(gn, wn);
        want = malloc(wn + 1);
        got = malloc(gn + 1);
        protobuf_c_message_pack(&batch.base, want);
        fastpb_encode_verify_batch_response(&batch.base, got);
        assert_memory_equal(got, want, wn);
        free(want);
        free(got);
        free(v);
        free(pv);
        free(p);
        free(b);
    }
}

static void *arena_fn(void *a, size_t n)
{
    return arena_alloc(a, n);
}

static void no_free(void *a, void *p)
{
    (void)a;
    (void)p;
}

static void same_str(const char *a, const char *b)
{
    assert_string_equal(a ? a : "", b ? b : "");
}

static void same_listing(const Tracecode__V1__Listing *a, const Tracecode__V1__Listing *b)
{
    assert_int_equal(a == NULL, b == NULL);
    if (a) {
        same_str(a->listing_id, b->listing_id);
        same_str(a->category_code, b->category_code);
        same_str(a->brand, b->brand);
        same_str(a->model, b->model);
    }
}

static void rand_listing(tu_rng *r, Tracecode__V1__Listing *l, strs *b)
{
    tracecode__v1__listing__init(l);
    l->listing_id = rand_str(r, b->s[1], 64);
    l->category_code = rand_str(r, b->s[2], 64);
    l->brand = rand_str(r, b->s[3], 64);
    l->model = rand_str(r, b->s[4], 64);
}

/* Every known field equal (protobuf-c also keeps unknown fields, which
 * fastpb skips: the server has no use for them). */
static void same_request(const Tracecode__V1__VerifyBatchRequest *x,
                         const Tracecode__V1__VerifyBatchRequest *y)
{
    size_t i;

    assert_int_equal(x->view, y->view);
    assert_int_equal(x->n_items, y->n_items);
    for (i = 0; i < x->n_items; i++) {
        const Tracecode__V1__VerifyItem *a = x->items[i], *b = y->items[i];
        same_str(a->code, b->code);
        same_listing(a->listing, b->listing);
    }
}

/* Random requests packed by protobuf-c, sometimes damaged: fastpb and
 * protobuf-c fail together or decode the same fields. */
static void test_decode_matches(void **state)
{
    tu_rng r = {12};
    arena a;
    ProtobufCAllocator al = {arena_fn, no_free, &a};
    int i;

    (void)state;
    arena_init(&a, 64 << 20);
    for (i = 0; i < N; i++) {
        Tracecode__V1__VerifyBatchRequest q = TRACECODE__V1__VERIFY_BATCH_REQUEST__INIT;
        Tracecode__V1__VerifyItem items[8], *pi[8];
        Tracecode__V1__Listing l[8];
        strs b[8];
        size_t n = (size_t)(tu_next(&r) % 8), k, len;
        uint8_t *buf;
        ProtobufCMessage *ours, *theirs;
        char why[256];
        int ok;

        for (k = 0; k < n; k++) {
            tracecode__v1__verify_item__init(&items[k]);
            items[k].code = rand_str(&r, b[k].s[0], 64);
            if (tu_next(&r) % 2) {
                rand_listing(&r, &l[k], &b[k]);
                items[k].listing = &l[k];
            }
            pi[k] = &items[k];
        }
        q.n_items = n;
        q.items = pi;
        q.view = (Tracecode__V1__VerifyView)(tu_next(&r) % 3);
        len = protobuf_c_message_get_packed_size(&q.base);
        buf = malloc(len + 1);
        protobuf_c_message_pack(&q.base, buf);
        if (i % 3 == 0 && len)
            buf[tu_next(&r) % len] ^= (uint8_t)(1u << (tu_next(&r) % 8));
        ours = fastpb_decode_verify_batch_request(buf, len, &al);
        theirs = protobuf_c_message_unpack(&tracecode__v1__verify_batch_request__descriptor, NULL,
                                           len, buf);
        /* fastpb refuses what protobuf-c takes only for strings with NUL
         * or bad UTF-8, which the checker names. */
        ok = fastpb_check_strings(&tracecode__v1__verify_batch_request__descriptor, buf, len, why,
                                  sizeof(why)) == 0;
        assert_true((ours != NULL) == (theirs != NULL && ok));
        if (theirs && !ours)
            protobuf_c_message_free_unpacked(theirs, NULL);
        if (ours) {
            same_request((void *)ours, (void *)theirs);
            protobuf_c_message_free_unpacked(theirs, NULL);
        }
        free(buf);
        arena_reset(&a);
    }
    arena_release(&a);
}

/* VerifyCodeRequest and VerifyStreamRequest (one decoder): random ones,
 * sometimes damaged, decode as protobuf-c decodes them. */
static void test_decode_single_matches(void **state)
{
    tu_rng r = {13};
    arena a;
    ProtobufCAllocator al = {arena_fn, no_free, &a};
    int i;

    (void)state;
    arena_init(&a, 16 << 20);
    for (i = 0; i < N; i++) {
        Tracecode__V1__VerifyCodeRequest q = TRACECODE__V1__VERIFY_CODE_REQUEST__INIT;
        Tracecode__V1__Listing l;
        strs b;
        size_t len;
        uint8_t *buf;
        const Tracecode__V1__VerifyCodeRequest *x, *y;
        ProtobufCMessage *ours, *stream, *theirs;
        char why[256];
        int ok;

        q.code = rand_str(&r, b.s[0], 64);
        q.view = (Tracecode__V1__VerifyView)(tu_next(&r) % 3);
        if (tu_next(&r) % 2) {
            rand_listing(&r, &l, &b);
            q.listing = &l;
        }
        len = protobuf_c_message_get_packed_size(&q.base);
        buf = malloc(len + 1);
        protobuf_c_message_pack(&q.base, buf);
        if (i % 3 == 0 && len)
            buf[tu_next(&r) % len] ^= (uint8_t)(1u << (tu_next(&r) % 8));
        ours = fastpb_decode_verify_code_request(buf, len, &al);
        stream = fastpb_decode_verify_stream_request(buf, len, &al);
        theirs = protobuf_c_message_unpack(&tracecode__v1__verify_code_request__descriptor, NULL,
                                           len, buf);
        ok = fastpb_check_strings(&tracecode__v1__verify_code_request__descriptor, buf, len, why,
                                  sizeof(why)) == 0;
        assert_true((ours != NULL) == (theirs != NULL && ok));
        assert_true((stream != NULL) == (theirs != NULL && ok));
        if (theirs && !ours)
            protobuf_c_message_free_unpacked(theirs, NULL);
        if (ours) {
            assert_ptr_equal(ours->descriptor, &tracecode__v1__verify_code_request__descriptor);
            assert_ptr_equal(stream->descriptor, &tracecode__v1__verify_stream_request__descriptor);
            x = (const void *)ours;
            y = (const void *)theirs;
            same_str(x->code, y->code);
            assert_int_equal(x->view, y->view);
            same_listing(x->listing, y->listing);
            x = (const void *)stream;
            same_str(x->code, y->code);
            same_listing(x->listing, y->listing);
            protobuf_c_message_free_unpacked(theirs, NULL);
        }
        free(buf);
        arena_reset(&a);
    }
    arena_release(&a);
}

/* Known answers: where a bad string is and what is wrong with it. */
static void test_check_strings(void **state)
{
    static const struct {
        const char *bytes;
        size_t len;
        const char *want; /* NULL: acceptable */
    } t[] = {
        {"\x0a\x02\x0a\x00", 4, NULL}, /* items[0] { code "" } is fine */
        {"\x0a\x05\x0a\x03"
         "AB\0",
         7, "items[0].code has a NUL byte at byte 2; strings must be UTF-8 without NUL"},
        {"\x0a\x03\x0a\x01"
         "A"
         "\x0a\x04\x0a\x02\xc3\x28",
         11,
         "items[1].code has a byte that is not UTF-8 at byte 0; strings must be UTF-8 "
         "without NUL"},
        {"\x0a\x06\x12\x04\x0a\x02"
         "\xed\xa0",
         8, /* a surrogate, in a listing */
         "items[0].listing.listing_id has a byte that is not UTF-8 at byte 0; strings must be "
         "UTF-8 without NUL"},
        {"\x0a\x06\x0a\x04\xe4\xb8\xad"
         "A",
         8, NULL}, /* UTF-8 Chinese is text */
    };
    char why[256];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        int rc = fastpb_check_strings(&tracecode__v1__verify_batch_request__descriptor,
                                      (const uint8_t *)t[i].bytes, t[i].len, why, sizeof(why));
        if (!t[i].want) {
            assert_int_equal(rc, 0);
        } else {
            assert_int_equal(rc, -1);
            assert_string_equal(why, t[i].want);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_matches),
        cmocka_unit_test(test_decode_matches),
        cmocka_unit_test(test_decode_single_matches),
        cmocka_unit_test(test_check_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
