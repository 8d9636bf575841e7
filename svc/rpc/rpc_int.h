/*
 * rpc_int.h - private to svc/rpc/: the method table.
 */
#ifndef TC_RPC_INT_H
#define TC_RPC_INT_H

#include "api.h"

#include <protobuf-c/protobuf-c.h>

typedef enum rpc_kind {
    RPC_UNARY,
    RPC_SERVER_STREAM,
    RPC_CLIENT_STREAM,
    RPC_BIDI, /* one response per request message, in order (unary handler) */
} rpc_kind;

/* One served method: data, registered with gRPC at start. */
typedef struct rpc_method {
    const char *path; /* "/tracecode.v1.VerifierService/VerifyCode" */
    rpc_kind kind;
    unsigned roles; /* svc_role bits allowed; SVC_ROLE_ANY for everyone */
    const ProtobufCMessageDescriptor *in, *out;
    svc_unary_fn unary; /* RPC_UNARY, RPC_BIDI */
    svc_open_fn open;   /* RPC_SERVER_STREAM */
    svc_next_fn next;
    svc_close_fn close; /* optional, after open() succeeded */
    svc_push_fn push;   /* RPC_CLIENT_STREAM */
    svc_finish_fn finish;
    unsigned slots; /* armed per worker queue (of its kind) */
    /* The handler waits on Redis (writes, reads of what the replica does
     * not hold, read-your-writes): served only by the write workers, so
     * that a slow or hung Redis never holds a thread that verifies. */
    int blocking;
    /* The fair share a call takes while it runs: 1 + a limit_name
     * (limit.h: LIMIT_WATCH_STREAMS, _ISSUE_STREAMS, _VERIFY_SHARE); 0
     * none. Refused calls end RESOURCE_EXHAUSTED before their handler. */
    int limit;
    /* Optional hand-written codecs (fastpb.c) for the hot messages. */
    ProtobufCMessage *(*decode)(const uint8_t *buf, size_t len, ProtobufCAllocator *al);
    size_t (*encoded_size)(const ProtobufCMessage *m);
    void (*encode)(const ProtobufCMessage *m, uint8_t *out);
} rpc_method;

extern const rpc_method rpc_methods[];
extern const size_t rpc_nmethods;

/* services.c: the gRPC protocol services (health, reflection). */
svc_code rpc_health_check(svc_ctx *c, const void *req, void *resp, svc_status *st);
svc_code rpc_health_watch_open(svc_ctx *c, const void *req, void **state, svc_status *st);
svc_code rpc_health_watch_next(svc_ctx *c, void *state, void *resp, int *done, svc_status *st);
void rpc_health_watch_close(svc_ctx *c, void *state);
svc_code rpc_reflect_v1alpha(svc_ctx *c, const void *req, void *resp, svc_status *st);
svc_code rpc_reflect_v1(svc_ctx *c, const void *req, void *resp, svc_status *st);

#endif
