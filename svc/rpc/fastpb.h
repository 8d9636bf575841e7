/*
 * fastpb.h - hand-written protobuf wire codecs for the hot messages of
 * VerifierService: VerifyCodeRequest, VerifyStreamRequest,
 * VerifyBatchRequest (decode) and VerifyCodeResponse,
 * VerifyStreamResponse, VerifyBatchResponse (encode). protobuf-c interprets its
 * descriptors field by field; on a 1,024-code batch that cost more than
 * the MACs. These produce and accept the same bytes (tested against
 * protobuf-c, and fuzzed differentially), filling the same generated
 * structs, so handlers do not change.
 */
#ifndef TC_FASTPB_H
#define TC_FASTPB_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

/* A reader of protobuf wire bytes, for whatever else needs one (the
 * reflection service walks the embedded descriptor set with it). */
typedef struct fastpb_rd {
    const uint8_t *p, *end;
} fastpb_rd;

/* The next field: its number and wire type; for wire type 2 its bytes in
 * *sub, for wire type 0 its value in *val. 0 at the end or on bad input. */
int fastpb_next(fastpb_rd *r, unsigned *num, unsigned *wt, fastpb_rd *sub, uint64_t *val);

/* Decode into structs allocated from al (strings copied and terminated).
 * NULL on malformed input or when al fails. Unknown fields are skipped. */
ProtobufCMessage *fastpb_decode_verify_code_request(const uint8_t *buf, size_t len,
                                                    ProtobufCAllocator *al);
ProtobufCMessage *fastpb_decode_verify_stream_request(const uint8_t *buf, size_t len,
                                                      ProtobufCAllocator *al);
ProtobufCMessage *fastpb_decode_verify_batch_request(const uint8_t *buf, size_t len,
                                                     ProtobufCAllocator *al);

/*
 * Every string field of a message of type d in buf, nested messages too:
 * no NUL byte (C strings would cut there, silently) and valid UTF-8, as
 * proto3 requires. 0 when all are; -1 with "FIELD.PATH has a NUL byte at
 * byte N; ..." in err otherwise. Framing errors are left to the decoder.
 * The decoders above refuse the same strings.
 */
int fastpb_check_strings(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len,
                         char *err, size_t cap);

/* Size, then bytes, of a VerifyCodeResponse (or the same-shaped
 * VerifyStreamResponse) or VerifyBatchResponse. */
size_t fastpb_size_verify_code_response(const ProtobufCMessage *m);
void fastpb_encode_verify_code_response(const ProtobufCMessage *m, uint8_t *out);
size_t fastpb_size_verify_batch_response(const ProtobufCMessage *m);
void fastpb_encode_verify_batch_response(const ProtobufCMessage *m, uint8_t *out);

#endif
