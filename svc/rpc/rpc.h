/*
 * rpc.h - the gRPC server (gRPC core C API). The only module that includes
 * gRPC headers or calls the protobuf-c library.
 *
 * Shape: one completion queue per worker thread; per queue a bounded
 * number of armed request slots per method (the server's back-pressure:
 * calls beyond them wait inside gRPC) plus a few generic slots that answer
 * UNIMPLEMENTED for methods we do not serve. Each slot is a small state
 * machine for its call: unary, server-streaming, client-streaming or
 * bidirectional. Requests are decoded into a per-call arena; handlers in
 * svc/api/ see generated messages and a context, never a call.
 */
#ifndef TC_RPC_H
#define TC_RPC_H

#include "api.h"

#include <stddef.h>

typedef struct rpc_config {
    const char *addr;     /* host:port */
    int insecure;         /* plaintext; identity from tc-role / tc-subject metadata */
    const char *tls_cert; /* PEM files, TLS mode */
    const char *tls_key;
    const char *client_ca;
    const char *client_crl; /* optional: revoked client certificates (PEM or DER) */
    int threads;            /* verify worker threads, >= 1 */
    int write_threads;      /* worker threads for methods that wait on Redis, >= 1 */
    size_t max_message;     /* largest request accepted, bytes */
    size_t call_memory;     /* per-call arena bound, bytes */
    int shared_cq;          /* one completion queue for all workers (experiment) */
} rpc_config;

typedef struct rpc_server rpc_server;

/* Start serving. On failure returns NULL with a message in err. */
rpc_server *rpc_start(const rpc_config *cfg, svc *s, char *err, size_t errcap);
/* 127.x.x.x:port, localhost:port or [::1]:port: where --insecure may bind. */
int rpc_addr_is_loopback(const char *addr);
/* Whether the gRPC listener accepts: a fresh loopback connection to its
 * port leaves the kernel's accept queue within timeout_ms. gRPC 1.51 stops
 * accepting for good when accept4 fails (out of descriptors); /healthz
 * reports it. Listeners bound to a non-loopback address only are not
 * judged (1). */
int rpc_probe(const rpc_server *r, int timeout_ms);
/* Readiness changed (svc_can_verify, svc_can_write): grpc.health.v1
 * Watch calls send the new status. Any thread. */
void rpc_health_changed(void);
/* How many verifications threads verify workers serve at once: the whole
 * that verify_share divides (limit.h). */
unsigned rpc_share_slots(int threads);
/* Read --client-crl again (SIGHUP, or the file changed) and put it in
 * force for the calls that follow. 0 when it was (*entries: how many
 * certificates it revokes) or there is none; -1 with a message in err when
 * it cannot be read or verified: the list in force stays. */
int rpc_reload_crl(rpc_server *r, size_t *entries, char *err, size_t errcap);
/* The port actually bound (useful with port 0). */
int rpc_port(const rpc_server *r);
/* The gRPC core library's version. */
const char *rpc_grpc_version(void);
/* Calls by method and status and latency histograms, Prometheus text;
 * returns the bytes written, or the size needed when cap is short. */
size_t rpc_metrics(const rpc_server *r, char *buf, size_t cap);
/* Stop accepting, let in-flight calls finish for up to grace_ms, cancel
 * what remains; the server's counters stay readable (/metrics). Once. */
void rpc_drain(rpc_server *r, int grace_ms);
/* rpc_drain if not done yet, then join the workers and free everything. */
void rpc_stop(rpc_server *r, int grace_ms);

#endif
