/*
 * wire.c - see wire.h.
 */
#include "wire.h"

int wire_read(grpc_byte_buffer *bb, grpc_slice *out);

#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>

grpc_byte_buffer *wire_pack(const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    grpc_slice sl = grpc_slice_malloc(n);
    grpc_byte_buffer *bb;

    protobuf_c_message_pack(m, GRPC_SLICE_START_PTR(sl));
    bb = grpc_raw_byte_buffer_create(&sl, 1);
    grpc_slice_unref(sl);
    return bb;
}

ProtobufCMessage *wire_unpack(grpc_byte_buffer *bb, const ProtobufCMessageDescriptor *d,
                              ProtobufCAllocator *al)
{
    ProtobufCMessage *m;
    grpc_slice sl;

    if (!wire_read(bb, &sl))
        return NULL;
    m = protobuf_c_message_unpack(d, al, GRPC_SLICE_LENGTH(sl), GRPC_SLICE_START_PTR(sl));
    grpc_slice_unref(sl);
    return m;
}

int wire_read(grpc_byte_buffer *bb, grpc_slice *out)
{
    grpc_byte_buffer_reader r;

    if (!bb || !grpc_byte_buffer_reader_init(&r, bb))
        return 0;
    *out = grpc_byte_buffer_reader_readall(&r);
    grpc_byte_buffer_reader_destroy(&r);
    return 1;
}

grpc_byte_buffer *wire_pack_with(const ProtobufCMessage *m,
                                 size_t (*size)(const ProtobufCMessage *),
                                 void (*enc)(const ProtobufCMessage *, uint8_t *))
{
    grpc_slice sl = grpc_slice_malloc(size(m));
    grpc_byte_buffer *bb;

    enc(m, GRPC_SLICE_START_PTR(sl));
    bb = grpc_raw_byte_buffer_create(&sl, 1);
    grpc_slice_unref(sl);
    return bb;
}

const char *rpc_code_name(int code)
{
    static const char *const names[] = {
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    };

    return code >= 0 && code <= 16 ? names[code] : "UNKNOWN";
}
