/*
 * node.h - the node: its state shared by every thread (struct svc), one
 * call's context (svc_ctx) and outcome (svc_status), the parts main.c
 * starts (svc_module), and the helpers every layer above uses: statuses,
 * roles, time, readiness, the keyring in force, metrics text. Nothing
 * here knows a protobuf message or a handler; svc/api, svc/audit,
 * svc/delist, svc/rpc and svc/http stand on it.
 */
#ifndef TC_NODE_H
#define TC_NODE_H

#include "keys.h"
#include "replica.h"
#include "store.h"
#include "verify.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Status codes: the numbers are gRPC's (grpc/status.h), so the RPC layer
 * passes them through unchanged. */
typedef enum svc_code {
    SVC_OK = 0,
    SVC_CANCELLED = 1,
    SVC_INVALID_ARGUMENT = 3,
    SVC_DEADLINE_EXCEEDED = 4,
    SVC_NOT_FOUND = 5,
    SVC_ALREADY_EXISTS = 6,
    SVC_PERMISSION_DENIED = 7,
    SVC_RESOURCE_EXHAUSTED = 8,
    SVC_FAILED_PRECONDITION = 9,
    SVC_ABORTED = 10,
    SVC_OUT_OF_RANGE = 11,
    SVC_UNIMPLEMENTED = 12,
    SVC_INTERNAL = 13,
    SVC_UNAVAILABLE = 14,
    SVC_UNAUTHENTICATED = 16,
} svc_code;

typedef enum svc_role {
    SVC_ROLE_NONE = 0,
    SVC_ROLE_MANUFACTURER = 1 << 0,
    SVC_ROLE_PLATFORM = 1 << 1,
    SVC_ROLE_REGULATOR = 1 << 2,
    SVC_ROLE_CERTIFIER = 1 << 3,
    SVC_ROLE_ANY = 0xff, /* health, reflection */
} svc_role;

const char *svc_role_name(svc_role role);
/* "manufacturer" -> SVC_ROLE_MANUFACTURER; SVC_ROLE_NONE if unknown. */
svc_role svc_role_parse(const char *name, size_t len);

#define SVC_SUBJECT_MAX 64
#define SVC_MSG_MAX 512
#define SVC_ACTOR_MAX (16 + SVC_SUBJECT_MAX) /* "role:subject" */

/* The node: everything a handler may use. Shared by all threads. */
/*
 * A background part of the node, as data (nginx's module table in
 * spirit): main.c starts the table in order and stops it in reverse, and
 * /metrics asks each part for its own lines, so nothing here names the
 * parts. cfg is main.c's configuration, opaque to the rest.
 */
typedef struct svc svc;
typedef struct svc_module {
    const char *name;
    int (*start)(svc *s, const void *cfg, char *err, size_t errcap);
    void (*drain)(svc *s); /* before the RPC server drains (may be NULL) */
    void (*stop)(svc *s);  /* after the server has stopped */
    /* Prometheus text appended at buf + n; the new length (svc_appendf). */
    size_t (*metrics)(const svc *s, char *buf, size_t cap, size_t n);
    /* 1 while this part lets the node verify; 0 and why (a sentence, cap
     * may be 0) when it keeps the node out of readiness. NULL: always. */
    int (*ready)(const svc *s, char *why, size_t cap);
} svc_module;

struct svc {
    rep *replica;
    /* The keyring, replaced whole when it is reloaded (SIGHUP, the
     * directory changed, an unknown key id): read it with svc_ring(), once
     * per call. A replaced ring is freed a grace period later (no call
     * holds one that long). */
    _Atomic(keys_ring *) ring;
    const char *keys_dir;
    unsigned keys_flags; /* keys_open_ex: KEYS_OPEN_SECRET_VOLUME */
    const char *node_id;
    pthread_mutex_t keys_mu;
    _Atomic int64_t keys_looked_ms[256]; /* per key id: the last look for its file */
    _Atomic int keys_reloading;          /* a reload holds keys_mu */
    int beating;                         /* main thread: the last heartbeat reached Redis */
    _Atomic unsigned lacks_key;          /* the deployment issues under it, this keyring lacks
                                          * it: not ready (codes under it would be FORGED) */
    struct svc_old_ring {
        keys_ring *ring;
        int64_t at;
    } old_rings[8]; /* under keys_mu */
    store *store;
    const char *base_url;
    int64_t max_staleness_ms;
    /* Milliseconds since the replica last heard from Redis. */
    int64_t (*replica_lag_ms)(void *arg);
    void *replica_lag_arg;
    struct delist_hub *hub; /* delist.h: the node's watchers */
    /* Copy detection (scan.h): the thresholds. */
    uint32_t copy_devices, copy_regions;
    int64_t copy_window_s;
    int64_t scan_ttl_s; /* a code's scan history lives this long past its last scan */
    /* Sold codes (sales_api.c): how long the seller may undo a sale, and
     * the deployment's salt for order references (read once, lazily). */
    int64_t sale_undo_window_s;
    const char
        *hotline; /* the scan page's "call ..." for a suspect product (--complaint-hotline) */
    const char *image_origins; /* where product images may come from (--image-origins), or NULL */
    pthread_mutex_t sale_mu;
    _Atomic int sale_ready;
    codec_mac_key sale_key; /* set once under sale_mu, then only read */
    /* Forgery signal (audit.h): a platform whose FORGED and MALFORMED
     * answers pass forgery_percent of at least forgery_min codes over the
     * last forgery_window_s seconds is flagged; forgery_throttle codes/s
     * (0: none) then bound its verifications on this node. */
    uint32_t forgery_percent, forgery_min, forgery_window_s;
    double forgery_throttle;
    /* Verdicts given (index: tracecode.v1.Verdict), for /metrics. */
    _Atomic uint64_t verdicts[TC_VERDICT_SLOTS];
    int (*redis_up)(void *arg); /* the change-stream tail is connected */
    struct audit_log *audit;    /* audit.h: sequencing, verification counts */
    struct limits *limits;      /* limit.h: fair shares and rates (NULL: none) */
    _Atomic int grpc_deaf;      /* the gRPC listener no longer accepts (rpc_probe) */
    _Atomic int http_deaf;      /* the public HTTP listener's accept() fails */
    /* Readiness: the node verifies while its replica heard from Redis
     * within ready_staleness_ms (a stale answer beats none), and takes
     * writes while the primary does (writable, checked once a second by the
     * main thread; why_not_writable says why not). draining: SIGTERM came,
     * readiness is off. */
    int64_t ready_staleness_ms;
    _Atomic int writable, draining;
    pthread_mutex_t why_mu;
    char why_not_writable[160]; /* under why_mu */
    /* The parts main.c started (svc_module), for /metrics. */
    const svc_module *modules;
    size_t nmodules;
};

/* The keyring in force. */
static inline keys_ring *svc_ring(const svc *s)
{
    return atomic_load_explicit(&((svc *)s)->ring, memory_order_acquire);
}

/* Load the keyring from s->keys_dir again and put it in force; the one in
 * force stays when the directory does not load (err says why). why is
 * logged. 0 on success. */
int svc_keys_reload(svc *s, const char *why, char *err, size_t errcap);
/* A code named key id kid that seen (the ring the caller used) cannot
 * verify: when the directory has that key's file (looked for at most once
 * a second per id, so a forger's ids cost one stat a second each), load
 * the keyring again. 1 when the caller should verify again with
 * svc_ring(). */
int svc_keys_refresh(svc *s, const keys_ring *seen, unsigned kid);
/* Free replaced rings past their grace period (all of them: at exit). */
void svc_keys_reap(svc *s, int all);
/* "1,2,4": the key ids this node can verify. */
size_t svc_key_ids(const keys_ring *ring, char *buf, size_t cap);

/* 1 when the node can answer verifications; 0 and why ("draining
 * (SIGTERM)", a part's reason, the replica's staleness) when it cannot.
 * why may be NULL. */
int svc_ready(const svc *s, char *why, size_t cap);
/* The node can answer verifications (readiness, health of VerifierService
 * and ConsumerService). */
int svc_can_verify(const svc *s);
/* The node can make writes now (RegistryService, IssuerService). */
int svc_can_write(const svc *s);

/* One call's context. */
typedef struct svc_ctx {
    svc *svc;
    svc_role role;
    char subject[SVC_SUBJECT_MAX + 1]; /* credit code, platform id, body id */
    int reader;                        /* this thread's replica reader slot */
    int64_t deadline_ms;               /* CLOCK_MONOTONIC; INT64_MAX: none */
    /* Writes: what the request (the current message of a client stream)
     * asks, as SHA-256 over the method and the request with its
     * request_id left out; has_fp when the request has a request_id field. */
    uint8_t fp[32];
    int has_fp;
    void *lim_entry; /* limit.c: the caller's entry, once looked up this call */
    /* Call-lifetime memory (a bump arena, freed when the call ends). */
    void *(*alloc)(void *arena, size_t size);
    void *arena;
    /* Server streams: have next() called again (code SVC_OK), or end the
     * call with code and msg. Any thread, any time: a call that has ended
     * (gen no longer matches) is left alone. */
    void (*wake)(void *call, uint64_t gen, svc_code code, const char *msg);
    void *wake_call;
    uint64_t wake_gen;
} svc_ctx;

/* The outcome of a handler. */
typedef struct svc_status {
    svc_code code;
    char msg[SVC_MSG_MAX];
} svc_status;

/* Set st and return code (for `return svc_fail(...)`). */
svc_code svc_fail(svc_status *st, svc_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Map a store error (message in err) to a status. */
svc_code svc_store_fail(svc_status *st, store_err e, const char *err);

/* size bytes of the call's memory, zeroed; NULL at the call's memory bound. */
void *svc_alloc(svc_ctx *c, size_t size);

int64_t svc_now_unix(void);
int64_t svc_now_ms(void);  /* CLOCK_MONOTONIC */
int64_t svc_wall_ms(void); /* CLOCK_REALTIME, as Redis stream ids count */
/* Is the replica lagging beyond the configured bound? */
int svc_stale(const svc *s);
/* printf at buf + n (within cap); returns n plus the length formatted,
 * so a caller can size a buffer from a first pass with cap 0. */
size_t svc_appendf(char *buf, size_t cap, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The process collector (process.c): process_cpu_seconds_total,
 * process_resident_memory_bytes, process_open_fds, ... as the Prometheus
 * client libraries name them; a part's metrics function. */
size_t svc_process_metrics(const svc *s, char *buf, size_t cap, size_t n);

/* The node's own metrics in Prometheus text (verdicts, replica, Redis,
 * watchers); the bytes written, or the size needed when cap is short. */
size_t svc_metrics(svc *s, char *buf, size_t cap);

#endif
