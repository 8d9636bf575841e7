/*
 * client.h - a small blocking gRPC client on the core C API, for tracectl
 * and the load generator. Messages are the generated protobuf-c structs;
 * gRPC stays inside client.c.
 */
#ifndef TC_CLIENT_H
#define TC_CLIENT_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

typedef struct rpc_client_opts {
    const char *addr;    /* host:port */
    int insecure;        /* plaintext; identity sent as tc-role / tc-subject */
    const char *role;    /* insecure mode */
    const char *subject; /* insecure mode */
    const char *ca;      /* TLS: PEM file of the server's CA */
    const char *cert;    /* TLS: client certificate (names role and subject) */
    const char *key;
    int timeout_s; /* per call, streams included; default 30 */
} rpc_client_opts;

typedef struct rpc_result {
    int code; /* gRPC status code; 0 = OK */
    char msg[512];
} rpc_result;

typedef struct rpc_client rpc_client;

rpc_client *rpc_client_new(const rpc_client_opts *o, char *err, size_t errcap);
/* gRPC core's version, for --version. */
const char *rpc_client_grpc_version(void);
void rpc_client_free(rpc_client *c);
/* Calls started from now on get timeout_s (<= 0: no deadline, for watches). */
void rpc_client_set_timeout(rpc_client *c, int timeout_s);

/* Unary call. *resp (caller frees with rpc_msg_free) is set only when the
 * status is OK. Returns r->code. */
int rpc_call_unary(rpc_client *c, const char *path, const ProtobufCMessage *req,
                   const ProtobufCMessageDescriptor *out, ProtobufCMessage **resp, rpc_result *r);

/* Server streaming: on_msg for each message (borrowed, valid until it
 * returns); a non-zero return cancels the call. */
int rpc_call_server_stream(rpc_client *c, const char *path, const ProtobufCMessage *req,
                           const ProtobufCMessageDescriptor *out,
                           int (*on_msg)(void *arg, const ProtobufCMessage *msg), void *arg,
                           rpc_result *r);

/* Client streaming: next() gives each message (borrowed until the next
 * call) and NULL at the end. */
int rpc_call_client_stream(rpc_client *c, const char *path,
                           const ProtobufCMessage *(*next)(void *arg), void *arg,
                           const ProtobufCMessageDescriptor *out, ProtobufCMessage **resp,
                           rpc_result *r);

void rpc_msg_free(ProtobufCMessage *m);

/* m in wire form, malloc'd (caller frees); NULL when out of memory. */
uint8_t *rpc_msg_encode(const ProtobufCMessage *m, size_t *len);

/* gRPC's name for a status code ("NOT_FOUND"). */
const char *rpc_code_name(int code);

#endif
