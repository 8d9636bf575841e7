/*
 * fuzz_fastpb.c - differential: the hand-written decoders of VerifyRequest
 * and VerifyBatchRequest against protobuf-c on any bytes. Both fail, or
 * both succeed with the same known fields.
 */
#include "arena.h"
#include "fastpb.h"
#include "tracecode/v1/verifier.pb-c.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void *arena_fn(void *a, size_t n)
{
    return arena_alloc(a, n);
}

static void no_free(void *a, void *p)
{
    (void)a;
    (void)p;
}

static int same_str(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

static int same_listing(const Tracecode__V1__Listing *a, const Tracecode__V1__Listing *b)
{
    if ((a == NULL) != (b == NULL))
        return 0;
    return !a || (same_str(a->listing_id, b->listing_id) &&
                  same_str(a->category_code, b->category_code) && same_str(a->brand, b->brand) &&
                  same_str(a->model, b->model));
}

static int same_item(const Tracecode__V1__VerifyItem *a, const Tracecode__V1__VerifyItem *b)
{
    return same_str(a->code, b->code) && same_listing(a->listing, b->listing);
}

static int same_request(const Tracecode__V1__VerifyCodeRequest *a,
                        const Tracecode__V1__VerifyCodeRequest *b)
{
    return same_str(a->code, b->code) && a->view == b->view && same_listing(a->listing, b->listing);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static arena a;
    static int ready;
    ProtobufCAllocator al = {arena_fn, no_free, &a};
    ProtobufCMessage *ours, *theirs;
    char why[256];
    int strings_ok;
    size_t i;

    if (!ready) {
        arena_init(&a, 64 << 20);
        ready = 1;
    }
    ours = fastpb_decode_verify_batch_request(data, size, &al);
    theirs = protobuf_c_message_unpack(&tracecode__v1__verify_batch_request__descriptor, NULL, size,
                                       data);
    /* fastpb takes what protobuf-c takes, less strings with NUL or bad
     * UTF-8, which fastpb_check_strings names. */
    strings_ok = fastpb_check_strings(&tracecode__v1__verify_batch_request__descriptor, data, size,
                                      why, sizeof(why)) == 0;
    if ((ours != NULL) != (theirs != NULL && strings_ok))
        abort();
    if (!strings_ok && !strstr(why, "; strings must be UTF-8 without NUL"))
        abort();
    if (theirs && !ours) {
        protobuf_c_message_free_unpacked(theirs, NULL);
        theirs = NULL;
    }
    if (ours) {
        const Tracecode__V1__VerifyBatchRequest *x = (void *)ours, *y = (void *)theirs;
        if (x->view != y->view || x->n_items != y->n_items)
            abort();
        for (i = 0; i < x->n_items; i++)
            if (!same_item(x->items[i], y->items[i]))
                abort();
        protobuf_c_message_free_unpacked(theirs, NULL);
    }
    arena_reset(&a);

    ours = fastpb_decode_verify_code_request(data, size, &al);
    theirs = protobuf_c_message_unpack(&tracecode__v1__verify_code_request__descriptor, NULL, size,
                                       data);
    strings_ok = fastpb_check_strings(&tracecode__v1__verify_code_request__descriptor, data, size,
                                      why, sizeof(why)) == 0;
    if ((ours != NULL) != (theirs != NULL && strings_ok))
        abort();
    if (theirs && !ours) {
        protobuf_c_message_free_unpacked(theirs, NULL);
        theirs = NULL;
    }
    /* Any other message type: the checker never reads past the input. */
    (void)fastpb_check_strings(&tracecode__v1__register_listings_request__descriptor, data, size,
                               why, sizeof(why));
    if (ours) {
        if (!same_request((void *)ours, (void *)theirs))
            abort();
        protobuf_c_message_free_unpacked(theirs, NULL);
    }
    arena_reset(&a);
    return 0;
}
