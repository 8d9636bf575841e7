/*
 * wire.h - private to svc/rpc/: protobuf-c messages to and from gRPC byte
 * buffers, shared by the server and the client.
 */
#ifndef TC_WIRE_H
#define TC_WIRE_H

#include <grpc/byte_buffer.h>
#include <grpc/slice.h>
#include <protobuf-c/protobuf-c.h>

/* Pack m into a slice gRPC owns (the transport may keep the bytes after a
 * send completes). Caller destroys the buffer. */
grpc_byte_buffer *wire_pack(const ProtobufCMessage *m);

/* Decode bb as d; al may be NULL (malloc). NULL on a missing, unreadable
 * or malformed buffer. */
ProtobufCMessage *wire_unpack(grpc_byte_buffer *bb, const ProtobufCMessageDescriptor *d,
                              ProtobufCAllocator *al);

/* The whole payload as one slice (caller unrefs); 0 when unreadable. */
int wire_read(grpc_byte_buffer *bb, grpc_slice *out);

/* Pack with a hand-written encoder: size(m) bytes written by enc(m, out). */
grpc_byte_buffer *wire_pack_with(const ProtobufCMessage *m,
                                 size_t (*size)(const ProtobufCMessage *),
                                 void (*enc)(const ProtobufCMessage *, uint8_t *));

/* gRPC's name for a status code ("NOT_FOUND"); also declared in client.h. */
const char *rpc_code_name(int code);

#endif
