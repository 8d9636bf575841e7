/*
 * server_int.h - private to the gRPC server (server.c, call.c, caller.c):
 * slots, workers and the server, and what the three files call of each
 * other.
 */
#ifndef TC_SERVER_INT_H
#define TC_SERVER_INT_H

#include "rpc.h"
#include "arena.h"
#include "limit.h"
#include "peer.h"
#include "rpc_int.h"

#include <grpc/grpc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#define GENERIC_SLOTS 4
#define METHODS_MAX 64 /* and one row for methods we do not serve */
#define CODES 17       /* gRPC status codes 0..16 */

/* Latency histogram: bounds in microseconds (server.c), and one bucket
 * more for +Inf. */
#define BOUNDS 16
#define BUCKETS (BOUNDS + 1)
extern const int64_t rpc_bucket_us[BOUNDS];

/* Calls by method and status, and latency by method, per worker (summed
 * for /metrics). Relaxed atomics: with a shared queue any thread may
 * finish a slot's call. */
typedef struct rpc_stats {
    _Atomic uint64_t started[METHODS_MAX + 1];
    _Atomic uint64_t calls[METHODS_MAX + 1][CODES]; /* ended, by status */
    _Atomic uint64_t lat[METHODS_MAX + 1][BUCKETS];
    _Atomic uint64_t lat_sum_us[METHODS_MAX + 1];
} rpc_stats;

typedef struct rpc_worker rpc_worker;
typedef struct slot slot;

typedef struct tag {
    slot *s;
    int close;
} tag;

typedef enum phase {
    P_ARMED,
    P_SENDING,   /* a server-stream message or a bidi response in flight */
    P_RECEIVING, /* waiting for a client message */
    P_FINISHING, /* the status batch in flight */
    P_WAITING,   /* a server stream with nothing to send yet */
} phase;

struct slot {
    pthread_mutex_t mu; /* with a shared queue, two tags may complete at once */
    rpc_worker *w;
    const rpc_method *m; /* NULL: generic (unknown method) */
    void *handle;        /* registered method handle */
    tag main, close;
    phase phase;
    int main_busy, close_busy, finished, sent_md, cancelled;
    grpc_call *call;
    gpr_timespec deadline;
    grpc_call_details details;
    grpc_metadata_array md;
    grpc_byte_buffer *payload, *recv, *send;
    grpc_slice status_msg;
    int has_status_msg;
    arena call_mem, msg_mem;
    svc_ctx ctx;
    limit_hold hold; /* the caller's fair share this call takes (limit.h) */
    char idwhy[160]; /* why the caller has no identity, when it has none */
    void *hstate;
    int stream_done;
    uint64_t gen; /* call generation, for wakes */
    int64_t t0_us;
    int begun, counted; /* a call began in the slot; it was counted as ended */
};

/* A client certificate already read: reading one (a PEM decode and an
 * X.509 parse) costs more than many calls, and a connection presents the
 * same certificate on each of its calls. */
#define PEER_CACHE 16
#define PEER_PEM_MAX 4096 /* larger certificates are read on every call */

typedef struct peer_entry {
    uint64_t hash, crl_gen;
    size_t len;
    int ok, revoked;
    keys_peer_id id;
    char why[KEYS_PEER_WHY_MAX];
    char pem[PEER_PEM_MAX];
} peer_entry;

struct rpc_worker {
    rpc_server *srv;
    grpc_completion_queue *cq;
    pthread_t thread;
    int reader;
    size_t nslots;
    slot *slots;
    rpc_stats *stats;
    pthread_mutex_t peer_mu; /* a shared queue lets any worker thread use it */
    peer_entry *peers;       /* PEER_CACHE, direct-mapped by hash */
    int blocking;            /* serves the methods that wait on Redis */
    int own_cq;              /* created its queue (shared_cq: only the first does) */
};

struct rpc_server {
    rpc_config cfg;
    svc *svc;
    /* --client-crl: the list in force; crl_gen counts loads (0: none). */
    pthread_rwlock_t crl_lock;
    keys_crl *crl;
    _Atomic uint64_t crl_gen;
    grpc_server *server;
    void *handles[64];
    int port;
    _Atomic int stopping;
    _Atomic int shutdown_done;
    tag shutdown_tag;
    int nworkers;
    rpc_worker *workers;
};

/* call.c: arm a slot (a request outstanding with gRPC); a worker's loop. */
void rpc_slot_init(slot *s, rpc_worker *w, const rpc_method *m, void *handle, size_t mem);
void rpc_slot_arm(slot *s);
void *rpc_worker_main(void *arg);

/* caller.c: who calls (s->ctx.role and subject, or s->idwhy), and may they. */
void rpc_identify(slot *s);
svc_code rpc_authorize(slot *s, svc_status *st);

#endif
