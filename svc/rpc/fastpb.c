/*
 * fastpb.c - see fastpb.h. Proto3 rules as protobuf-c applies them: fields
 * in ascending number order, zero scalars, empty strings and absent
 * messages are not written; enums and int64 are varints (negative values
 * take ten bytes).
 */
#include "fastpb.h"

#include "codec.h"
#include "tracecode/v1/verifier.pb-c.h"

#include <stdio.h>
#include <string.h>

typedef Tracecode__V1__VerifyCodeRequest VerifyRequest;
typedef Tracecode__V1__VerifyItem VerifyItem;
typedef Tracecode__V1__VerifyResult VerifyResult;
typedef Tracecode__V1__Product Product;
typedef Tracecode__V1__Listing Listing;

/* --- decoding ------------------------------------------------------------ */

typedef fastpb_rd rd;

static int get_varint(rd *r, uint64_t *v)
{
    unsigned shift = 0;

    *v = 0;
    while (r->p < r->end && shift < 64) {
        uint8_t b = *r->p++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return 1;
        shift += 7;
    }
    return 0;
}

/* A field key as protobuf-c reads one: at most 5 bytes into a 32-bit
 * number, and only a first byte whose field bits are all zero refused. */
static int get_key(rd *r, uint32_t *num, unsigned *wt)
{
    size_t left = (size_t)(r->end - r->p), max = left > 5 ? 5 : left, i;
    const uint8_t *d = r->p;
    uint32_t t;
    unsigned shift = 4;

    if (!left || (d[0] & 0xf8) == 0)
        return 0;
    *wt = d[0] & 7;
    t = (uint32_t)(d[0] & 0x7f) >> 3;
    if (!(d[0] & 0x80)) {
        *num = t;
        r->p++;
        return 1;
    }
    for (i = 1; i < max; i++) {
        if (d[i] & 0x80) {
            t |= (uint32_t)(d[i] & 0x7f) << shift;
            shift += 7;
        } else {
            *num = t | (uint32_t)d[i] << shift;
            r->p += i + 1;
            return 1;
        }
    }
    return 0;
}

/* A length prefix as protobuf-c reads one: at most 5 bytes, below 2^31. */
static int get_length(rd *r, uint64_t *n)
{
    size_t left = (size_t)(r->end - r->p), max = left > 5 ? 5 : left, i;
    unsigned shift = 0;

    *n = 0;
    for (i = 0; i < max; i++) {
        *n |= (uint64_t)(r->p[i] & 0x7f) << shift;
        shift += 7;
        if (!(r->p[i] & 0x80)) {
            r->p += i + 1;
            return *n <= 0x7fffffff;
        }
    }
    return 0;
}

int fastpb_next(rd *r, unsigned *num, unsigned *wt, rd *sub, uint64_t *val)
{
    uint64_t n;
    uint32_t key;

    if (!get_key(r, &key, wt))
        return 0;
    *num = key;
    switch (*wt) {
    case 0:
        return get_varint(r, val);
    case 1:
        if (r->end - r->p < 8)
            return 0;
        r->p += 8;
        return 1;
    case 5:
        if (r->end - r->p < 4)
            return 0;
        r->p += 4;
        return 1;
    case 2:
        if (!get_length(r, &n) || n > (uint64_t)(r->end - r->p))
            return 0;
        sub->p = r->p;
        sub->end = r->p + n;
        r->p += n;
        return 1;
    default:
        return 0; /* groups and reserved types */
    }
}

/* A string field: refused (NULL) when it holds a NUL byte or is not UTF-8,
 * as fastpb_check_strings says; the caller's error names which. */
static char *str(const rd *s, ProtobufCAllocator *al)
{
    size_t n = (size_t)(s->end - s->p), bad;
    char *out;

    if (codec_text_check(s->p, n, &bad) != CODEC_TEXT_OK)
        return NULL;
    out = al->alloc(al->allocator_data, n + 1);

    if (out) {
        memcpy(out, s->p, n);
        out[n] = '\0';
    }
    return out;
}

/* Into l (fresh or, for a repeated occurrence, merged into: later fields
 * win, as protobuf merges messages). */
static int decode_listing(rd *r, Listing *l, ProtobufCAllocator *al)
{
    unsigned num, wt;
    uint64_t v;
    rd s = {NULL, NULL};

    while (r->p < r->end) {
        char **field = NULL;
        if (!fastpb_next(r, &num, &wt, &s, &v))
            return 0;
        if (num == 1)
            field = &l->listing_id;
        else if (num == 2)
            field = &l->category_code;
        else if (num == 3)
            field = &l->brand;
        else if (num == 4)
            field = &l->model;
        if (field && (wt != 2 || !(*field = str(&s, al))))
            return 0;
    }
    return 1;
}

/* Fields 1 (code) and 2 (listing) of a VerifyCodeRequest or a VerifyItem
 * into *code and *listing; field 3 (view) into *view when view is not
 * NULL (a VerifyItem has none: field 3 is then unknown and skipped). */
static int decode_code_fields(rd *r, char **code, Listing **listing,
                              Tracecode__V1__VerifyView *view, ProtobufCAllocator *al)
{
    unsigned num, wt;
    uint64_t v;
    rd s = {NULL, NULL};

    while (r->p < r->end) {
        if (!fastpb_next(r, &num, &wt, &s, &v))
            return 0;
        if (num == 1) {
            if (wt != 2 || !(*code = str(&s, al)))
                return 0;
        } else if (num == 2) {
            if (wt != 2)
                return 0;
            if (!*listing) {
                *listing = al->alloc(al->allocator_data, sizeof(**listing));
                if (!*listing)
                    return 0;
                tracecode__v1__listing__init(*listing);
            }
            if (!decode_listing(&s, *listing, al))
                return 0;
        } else if (num == 3 && view) {
            if (wt != 0)
                return 0;
            *view = (Tracecode__V1__VerifyView)(int32_t)v;
        }
    }
    return 1;
}

static VerifyRequest *decode_request(const uint8_t *buf, size_t len, ProtobufCAllocator *al)
{
    VerifyRequest *q = al->alloc(al->allocator_data, sizeof(*q));
    rd r = {buf, buf + len};

    if (!q)
        return NULL;
    tracecode__v1__verify_code_request__init(q);
    return decode_code_fields(&r, &q->code, &q->listing, &q->view, al) ? q : NULL;
}

ProtobufCMessage *fastpb_decode_verify_code_request(const uint8_t *buf, size_t len,
                                                    ProtobufCAllocator *al)
{
    VerifyRequest *q = decode_request(buf, len, al);

    return q ? &q->base : NULL;
}

/* A VerifyStreamRequest has a VerifyCodeRequest's fields and layout
 * (asserted in verify_api.c): decoded the same, named as itself. */
ProtobufCMessage *fastpb_decode_verify_stream_request(const uint8_t *buf, size_t len,
                                                      ProtobufCAllocator *al)
{
    VerifyRequest *q = decode_request(buf, len, al);

    if (!q)
        return NULL;
    q->base.descriptor = &tracecode__v1__verify_stream_request__descriptor;
    return &q->base;
}

ProtobufCMessage *fastpb_decode_verify_batch_request(const uint8_t *buf, size_t len,
                                                     ProtobufCAllocator *al)
{
    Tracecode__V1__VerifyBatchRequest *q = al->alloc(al->allocator_data, sizeof(*q));
    rd r = {buf, buf + len}, s = {NULL, NULL};
    size_t n = 0, i = 0;
    VerifyItem *items;
    unsigned num, wt;
    uint64_t v;

    if (!q)
        return NULL;
    tracecode__v1__verify_batch_request__init(q);
    /* First pass: count the items, check the framing. */
    while (r.p < r.end) {
        if (!fastpb_next(&r, &num, &wt, &s, &v))
            return NULL;
        if (num == 1) {
            if (wt != 2)
                return NULL;
            n++;
        } else if (num == 2) {
            if (wt != 0)
                return NULL;
            q->view = (Tracecode__V1__VerifyView)(int32_t)v;
        }
    }
    if (!n)
        return &q->base;
    items = al->alloc(al->allocator_data, n * sizeof(*items));
    q->items = al->alloc(al->allocator_data, n * sizeof(*q->items));
    if (!items || !q->items)
        return NULL;
    r.p = buf;
    while (r.p < r.end) {
        if (!fastpb_next(&r, &num, &wt, &s, &v))
            return NULL;
        if (num != 1)
            continue;
        tracecode__v1__verify_item__init(&items[i]);
        if (!decode_code_fields(&s, &items[i].code, &items[i].listing, NULL, al))
            return NULL;
        q->items[i] = &items[i];
        i++;
    }
    q->n_items = n;
    return &q->base;
}

/* --- strings of any message ------------------------------------------------ */

#define PATH_MAX_ 160

static int check_level(const ProtobufCMessageDescriptor *d, rd *r, char *path, size_t plen,
                       char *err, size_t cap)
{
    unsigned num, wt, seen[64] = {0};
    uint64_t v;
    rd sub = {NULL, NULL};

    while (r->p < r->end) {
        const ProtobufCFieldDescriptor *f;
        unsigned idx;
        size_t n;
        if (!fastpb_next(r, &num, &wt, &sub, &v))
            return 0; /* framing: the decoder's to refuse */
        f = protobuf_c_message_descriptor_get_field(d, num);
        if (!f || wt != 2)
            continue;
        idx = (unsigned)(f - d->fields);
        n = plen;
        if (n < PATH_MAX_) {
            int k = f->label == PROTOBUF_C_LABEL_REPEATED && idx < 64
                        ? snprintf(path + n, PATH_MAX_ - n, "%s%s[%u]", n ? "." : "", f->name,
                                   seen[idx]++)
                        : snprintf(path + n, PATH_MAX_ - n, "%s%s", n ? "." : "", f->name);
            n = k > 0 && n + (size_t)k < PATH_MAX_ ? n + (size_t)k : PATH_MAX_ - 1;
        }
        if (f->type == PROTOBUF_C_TYPE_STRING) {
            size_t bad;
            int e = codec_text_check(sub.p, (size_t)(sub.end - sub.p), &bad);
            if (e != CODEC_TEXT_OK) {
                snprintf(err, cap, "%s has %s at byte %zu; strings must be UTF-8 without NUL", path,
                         e == CODEC_TEXT_NUL ? "a NUL byte" : "a byte that is not UTF-8", bad);
                return -1;
            }
        } else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
            if (check_level(f->descriptor, &sub, path, n, err, cap) != 0)
                return -1;
        }
        path[plen] = '\0';
    }
    return 0;
}

int fastpb_check_strings(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len,
                         char *err, size_t cap)
{
    char path[PATH_MAX_] = "";
    rd r = {buf, buf + len};

    return check_level(d, &r, path, 0, err, cap);
}

/* --- encoding ------------------------------------------------------------- */

static size_t varint_size(uint64_t v)
{
    size_t n = 1;

    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* One-byte keys: every field number here is below 16. */
#define KEY(num, wt) ((uint8_t)((num) << 3 | (wt)))

static size_t str_size(const char *s)
{
    size_t n;

    if (!s || !*s) /* most strings of a BASIC answer are empty */
        return 0;
    n = strlen(s);
    return 1 + varint_size(n) + n;
}

static uint8_t *put_str(uint8_t *p, unsigned num, const char *s)
{
    size_t n;

    if (!s || !*s)
        return p;
    n = strlen(s);
    *p++ = KEY(num, 2);
    p = put_varint(p, n);
    memcpy(p, s, n);
    return p + n;
}

/* int32 enums and int64 go out sign-extended to 64 bits. */
static size_t num_size(uint64_t v)
{
    return v ? 1 + varint_size(v) : 0;
}

static uint8_t *put_num(uint8_t *p, unsigned num, uint64_t v)
{
    if (!v)
        return p;
    *p++ = KEY(num, 0);
    return put_varint(p, v);
}

static size_t product_size(const Product *m)
{
    return str_size(m->product_id) + str_size(m->certificate_number) + str_size(m->category_code) +
           str_size(m->brand) + str_size(m->model) + str_size(m->gtin) +
           str_size(m->issuer_credit_code) + num_size((uint64_t)m->registered_unix);
}

static uint8_t *put_product(uint8_t *p, const Product *m)
{
    p = put_str(p, 1, m->product_id);
    p = put_str(p, 2, m->certificate_number);
    p = put_str(p, 3, m->category_code);
    p = put_str(p, 4, m->brand);
    p = put_str(p, 5, m->model);
    p = put_str(p, 6, m->gtin);
    p = put_str(p, 7, m->issuer_credit_code);
    return put_num(p, 8, (uint64_t)m->registered_unix);
}

static size_t result_size(const VerifyResult *m)
{
    size_t n = num_size((uint64_t)(int64_t)m->verdict) + str_size(m->detail) +
               num_size(m->batch_id) + num_size(m->serial) + str_size(m->certificate_number) +
               num_size((uint64_t)(int64_t)m->certificate_status) +
               str_size(m->issuer_credit_code) + str_size(m->issuer_name) +
               num_size(m->as_of_revision) + (m->stale ? 2 : 0);

    if (m->product) {
        size_t ps = product_size(m->product);
        n += 1 + varint_size(ps) + ps;
    }
    return n;
}

static uint8_t *put_result(uint8_t *p, const VerifyResult *m, size_t product_len)
{
    p = put_num(p, 1, (uint64_t)(int64_t)m->verdict);
    p = put_str(p, 2, m->detail);
    p = put_num(p, 3, m->batch_id);
    p = put_num(p, 4, m->serial);
    if (m->product) {
        *p++ = KEY(5, 2);
        p = put_varint(p, product_len);
        p = put_product(p, m->product);
    }
    p = put_str(p, 6, m->certificate_number);
    p = put_num(p, 7, (uint64_t)(int64_t)m->certificate_status);
    p = put_str(p, 8, m->issuer_credit_code);
    p = put_str(p, 9, m->issuer_name);
    p = put_num(p, 10, m->as_of_revision);
    if (m->stale) {
        *p++ = KEY(11, 0);
        *p++ = 1;
    }
    return p;
}

/* VerifyCodeResponse and VerifyStreamResponse: field 1, the result
 * (written when set, even empty, as protobuf-c does). */
size_t fastpb_size_verify_code_response(const ProtobufCMessage *m)
{
    const VerifyResult *v = ((const Tracecode__V1__VerifyCodeResponse *)m)->result;
    size_t n;

    if (!v)
        return 0;
    n = result_size(v);
    return 1 + varint_size(n) + n;
}

void fastpb_encode_verify_code_response(const ProtobufCMessage *m, uint8_t *out)
{
    const VerifyResult *v = ((const Tracecode__V1__VerifyCodeResponse *)m)->result;

    if (!v)
        return;
    *out++ = KEY(1, 2);
    out = put_varint(out, result_size(v));
    put_result(out, v, v->product ? product_size(v->product) : 0);
}

/* The size pass leaves each item's size here for the encode pass that
 * follows it on the same thread (wire_pack_with calls them back to back),
 * so no item is sized twice. */
#define SIZED_MAX 10000
static _Thread_local const void *sized;
static _Thread_local uint32_t item_size[SIZED_MAX];

size_t fastpb_size_verify_batch_response(const ProtobufCMessage *m)
{
    const Tracecode__V1__VerifyBatchResponse *b = (const void *)m;
    size_t n = 0, i;

    for (i = 0; i < b->n_results; i++) {
        size_t s = result_size(b->results[i]);
        if (i < SIZED_MAX)
            item_size[i] = (uint32_t)s;
        n += 1 + varint_size(s) + s;
    }
    sized = m;
    return n;
}

void fastpb_encode_verify_batch_response(const ProtobufCMessage *m, uint8_t *out)
{
    const Tracecode__V1__VerifyBatchResponse *b = (const void *)m;
    size_t i;

    for (i = 0; i < b->n_results; i++) {
        const VerifyResult *v = b->results[i];
        *out++ = KEY(1, 2);
        out = put_varint(out, sized == m && i < SIZED_MAX ? item_size[i] : result_size(v));
        out = put_result(out, v, v->product ? product_size(v->product) : 0);
    }
    sized = NULL;
}
