/*
 * wire.c - see wire.h.
 */
#include "wire.h"

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
    grpc_byte_buffer_reader r;
    ProtobufCMessage *m;
    grpc_slice sl;

    if (!bb || !grpc_byte_buffer_reader_init(&r, bb))
        return NULL;
    sl = grpc_byte_buffer_reader_readall(&r);
    grpc_byte_buffer_reader_destroy(&r);
    m = protobuf_c_message_unpack(d, al, GRPC_SLICE_LENGTH(sl), GRPC_SLICE_START_PTR(sl));
    grpc_slice_unref(sl);
    return m;
}
