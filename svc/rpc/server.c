/*
 * server.c - tracesvc's gRPC server on the core C API (Debian gRPC 1.51).
 *
 * Every call lives in a slot: armed (a request is outstanding with gRPC),
 * then a short sequence of batches for its kind, then released and armed
 * again. A slot has two tags: `main` for its batches, in sequence, and
 * `close` for RECV_CLOSE_ON_SERVER of streaming calls, which completes when
 * the call ends or the client cancels. A slot is released when both are
 * idle and the call is finished.
 *
 * A server stream whose handler has nothing to send yet (a delisting
 * watcher) parks its slot in P_WAITING with no batch outstanding; the
 * handler's wake, from any thread, resumes it under the slot's mutex. The
 * slot's generation, bumped at every release, keeps a late wake from
 * touching the next call in the slot.
 */
#include "rpc.h"
#include "arena.h"
#include "fastpb.h"
#include "check.h"
#include "limit.h"
#include "merkle.h"
#include "peer.h"
#include "rpc_int.h"
#include "wire.h"

#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>
#include <limits.h>
#include <unistd.h>
#include <errno.h>
#include <sys/socket.h>
#include <poll.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GENERIC_SLOTS 4
#define METHODS_MAX 64 /* and one row for methods we do not serve */
#define CODES 17       /* gRPC status codes 0..16 */

/* Latency histogram bounds, microseconds (Prometheus buckets, le=...). */
static const int64_t bucket_us[] = {100,     250,     500,     1000,    2500,   5000,
                                    10000,   25000,   50000,   100000,  250000, 500000,
                                    1000000, 2500000, 5000000, 10000000};
#define BUCKETS (sizeof(bucket_us) / sizeof(bucket_us[0]) + 1)

/* Calls by method and status, and latency by method, per worker (summed
 * for /metrics). Relaxed atomics: with a shared queue any thread may
 * finish a slot's call. */
typedef struct rpc_stats {
    _Atomic uint64_t calls[METHODS_MAX + 1][CODES];
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

/* --- protobuf-c allocation in the call's arena --------------------------- */

static void *pb_alloc(void *data, size_t size)
{
    return arena_alloc(data, size);
}

static void pb_free(void *data, void *p)
{
    (void)data;
    (void)p;
}

static void *ctx_alloc(void *a, size_t size)
{
    return arena_alloc(a, size);
}

/* --- arming and releasing ------------------------------------------------ */

static void arm(slot *s)
{
    rpc_server *srv = s->w->srv;
    grpc_call_error e;

    if (atomic_load(&srv->stopping))
        return;
    s->phase = P_ARMED;
    s->call = NULL;
    s->payload = NULL;
    grpc_metadata_array_init(&s->md);
    if (s->m) {
        e = grpc_server_request_registered_call(
            srv->server, s->handle, &s->call, &s->deadline, &s->md,
            (s->m->kind == RPC_UNARY || s->m->kind == RPC_SERVER_STREAM) ? &s->payload : NULL,
            s->w->cq, s->w->cq, &s->main);
    } else {
        grpc_call_details_init(&s->details);
        e = grpc_server_request_call(srv->server, &s->call, &s->details, &s->md, s->w->cq, s->w->cq,
                                     &s->main);
    }
    if (e == GRPC_CALL_OK)
        s->main_busy = 1;
    else
        fprintf(stderr, "tracesvc: cannot arm a request slot (%d)\n", (int)e);
}

static void release(slot *s)
{
    if (s->payload)
        grpc_byte_buffer_destroy(s->payload);
    if (s->recv)
        grpc_byte_buffer_destroy(s->recv);
    if (s->send)
        grpc_byte_buffer_destroy(s->send);
    s->payload = s->recv = s->send = NULL;
    if (s->has_status_msg)
        grpc_slice_unref(s->status_msg);
    s->has_status_msg = 0;
    grpc_metadata_array_destroy(&s->md);
    if (!s->m)
        grpc_call_details_destroy(&s->details);
    if (s->call)
        grpc_call_unref(s->call);
    s->call = NULL;
    if (s->hstate && s->m && s->m->close)
        s->m->close(&s->ctx, s->hstate);
    limits_leave(s->w->srv->svc->limits, &s->hold);
    s->gen++;
    arena_reset(&s->call_mem);
    arena_reset(&s->msg_mem);
    s->hstate = NULL;
    s->finished = s->sent_md = s->cancelled = s->stream_done = 0;
    arm(s);
}

static void maybe_release(slot *s)
{
    if (s->finished && !s->main_busy && !s->close_busy)
        release(s);
}

/* --- batches -------------------------------------------------------------- */

static void start(slot *s, grpc_op *ops, size_t n, tag *t)
{
    grpc_call_error e = grpc_call_start_batch(s->call, ops, n, t, NULL);

    if (e != GRPC_CALL_OK) {
        fprintf(stderr, "tracesvc: grpc_call_start_batch failed (%d)\n", (int)e);
        s->finished = 1;
        return;
    }
    if (t->close)
        s->close_busy = 1;
    else
        s->main_busy = 1;
}

static void add_md(slot *s, grpc_op *ops, size_t *n)
{
    if (!s->sent_md) {
        memset(&ops[*n], 0, sizeof(ops[0]));
        ops[*n].op = GRPC_OP_SEND_INITIAL_METADATA;
        (*n)++;
        s->sent_md = 1;
    }
}

static int64_t now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void count_call(slot *s, svc_code code)
{
    rpc_stats *st = s->w->stats;
    size_t m = s->m ? (size_t)(s->m - rpc_methods) : METHODS_MAX, b = 0;
    int64_t us = now_us() - s->t0_us;

    while (b < BUCKETS - 1 && us > bucket_us[b])
        b++;
    atomic_fetch_add_explicit(&st->calls[m][(unsigned)code < CODES ? code : 2], 1,
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&st->lat[m][b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&st->lat_sum_us[m], (uint64_t)(us > 0 ? us : 0),
                              memory_order_relaxed);
}

/* Send the final status (with a message when msg is not NULL), and for
 * unary calls the response and the close in the same batch. */
static void finish(slot *s, svc_code code, const char *msg, grpc_byte_buffer *resp)
{
    grpc_op ops[4];
    size_t n = 0;

    count_call(s, code);
    memset(ops, 0, sizeof(ops));
    add_md(s, ops, &n);
    if (resp) {
        s->send = resp;
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n++].data.send_message.send_message = resp;
    }
    if (msg && *msg) {
        s->status_msg = grpc_slice_from_copied_string(msg);
        s->has_status_msg = 1;
    }
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = (grpc_status_code)code;
    ops[n++].data.send_status_from_server.status_details =
        s->has_status_msg ? &s->status_msg : NULL;
    if (!s->m || s->m->kind == RPC_UNARY) {
        ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
        ops[n++].data.recv_close_on_server.cancelled = &s->cancelled;
    }
    s->phase = P_FINISHING;
    start(s, ops, n, &s->main);
}

static void send_message(slot *s, grpc_byte_buffer *resp)
{
    grpc_op ops[2];
    size_t n = 0;

    memset(ops, 0, sizeof(ops));
    add_md(s, ops, &n);
    s->send = resp;
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n++].data.send_message.send_message = resp;
    s->phase = P_SENDING;
    start(s, ops, n, &s->main);
}

static void receive(slot *s)
{
    grpc_op op;

    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &s->recv;
    s->phase = P_RECEIVING;
    start(s, &op, 1, &s->main);
}

static void watch_close(slot *s)
{
    grpc_op op;

    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    op.data.recv_close_on_server.cancelled = &s->cancelled;
    start(s, &op, 1, &s->close);
}

/* --- messages -------------------------------------------------------------- */

/* A write request's fingerprint (svc_ctx.fp): SHA-256 (with the leaf
 * prefix byte of merkle_leaf_hash, which changes nothing here) of the
 * method path, a NUL, and the message re-packed by protobuf-c with its
 * request_id left out, so the same request sent again with the same id
 * hashes the same whatever the client's encoder did. Not on the verify
 * path: only methods whose input has a request_id field. */
static int fingerprint(slot *s, ProtobufCMessage *msg)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(s->m->in, "request_id");
    size_t plen = strlen(s->m->path), n;
    char **rid, *saved;
    uint8_t *buf;

    s->ctx.has_fp = 0;
    if (!f || f->type != PROTOBUF_C_TYPE_STRING)
        return 1;
    rid = (char **)(void *)((char *)msg + f->offset);
    saved = *rid;
    *rid = (char *)"";
    n = protobuf_c_message_get_packed_size(msg);
    buf = malloc(plen + 1 + n);
    if (buf) {
        memcpy(buf, s->m->path, plen + 1);
        protobuf_c_message_pack(msg, buf + plen + 1);
        merkle_leaf_hash(buf, plen + 1 + n, s->ctx.fp);
        free(buf);
        s->ctx.has_fp = 1;
    }
    *rid = saved;
    return buf != NULL;
}

/* Decode bb with the method's input type into the call arena. */
static void *decode(slot *s, grpc_byte_buffer *bb, svc_status *st)
{
    ProtobufCAllocator al = {pb_alloc, pb_free, &s->call_mem};
    char why[SVC_MSG_MAX - 64];
    const uint8_t *p;
    grpc_slice sl;
    void *msg = NULL;
    size_t n;
    int bad = -1; /* the string check: not run yet (-1), passed (0), failed (1) */

    if (!bb) {
        svc_fail(st, SVC_INVALID_ARGUMENT, "the request has no message");
        return NULL;
    }
    if (!wire_read(bb, &sl)) {
        svc_fail(st, SVC_INVALID_ARGUMENT, "cannot read the request (compression?)");
        return NULL;
    }
    p = GRPC_SLICE_START_PTR(sl);
    n = GRPC_SLICE_LENGTH(sl);
    /* The hot path's decoders refuse bad strings themselves; other
     * messages are checked before protobuf-c, which would keep them. */
    if (s->m->decode)
        msg = s->m->decode(p, n, &al);
    else if (!(bad = fastpb_check_strings(s->m->in, p, n, why, sizeof(why)) != 0))
        msg = protobuf_c_message_unpack(s->m->in, &al, n, p);
    if (!msg) {
        if (bad < 0) /* the fast decoder refused: say why, when it was a string */
            bad = fastpb_check_strings(s->m->in, p, n, why, sizeof(why)) != 0;
        if (bad)
            svc_fail(st, SVC_INVALID_ARGUMENT, "%s", why);
        else
            svc_fail(st, SVC_INVALID_ARGUMENT, "cannot decode the request as %s", s->m->in->name);
    } else if (!s->m->decode && !fingerprint(s, msg)) {
        svc_fail(st, SVC_RESOURCE_EXHAUSTED, "out of memory reading the request");
        msg = NULL;
    }
    grpc_slice_unref(sl);
    return msg;
}

static grpc_byte_buffer *encode(const slot *s, const void *resp)
{
    return s->m->encode ? wire_pack_with(resp, s->m->encoded_size, s->m->encode) : wire_pack(resp);
}

static void *new_response(slot *s, arena *a)
{
    void *m = arena_alloc(a, s->m->out->sizeof_message);

    if (m)
        protobuf_c_message_init(s->m->out, m);
    return m;
}

/* --- identity --------------------------------------------------------------- */

static int md_value(const grpc_metadata_array *md, const char *key, const char **v, size_t *n)
{
    size_t i;

    for (i = 0; i < md->count; i++)
        if (grpc_slice_str_cmp(md->metadata[i].key, key) == 0) {
            *v = (const char *)GRPC_SLICE_START_PTR(md->metadata[i].value);
            *n = GRPC_SLICE_LENGTH(md->metadata[i].value);
            return 1;
        }
    return 0;
}

#define ROLES "manufacturer, platform, regulator, certifier"

/* Take role and subject as sent (source names where they came from), or
 * say in s->idwhy what is wrong with them: nothing is cut or guessed. */
static void set_identity(slot *s, const char *role, size_t rn, const char *subj, size_t sn,
                         const char *rsrc, const char *ssrc)
{
    svc_status st;
    char tmp[SVC_SUBJECT_MAX + 1];

    if (!role) {
        snprintf(s->idwhy, sizeof(s->idwhy), "no identity: %s is missing (one of " ROLES ")", rsrc);
        return;
    }
    s->ctx.role = svc_role_parse(role, rn);
    if (s->ctx.role == SVC_ROLE_NONE) {
        snprintf(s->idwhy, sizeof(s->idwhy), "unknown role '%.*s' in %s; valid roles: " ROLES,
                 (int)(rn > 32 ? 32 : rn), role, rsrc);
        return;
    }
    if (!subj || sn == 0) {
        snprintf(s->idwhy, sizeof(s->idwhy),
                 "no identity: %s is missing or empty (it names the caller: credit code, "
                 "platform id or body id)",
                 ssrc);
        s->ctx.role = SVC_ROLE_NONE;
        return;
    }
    if (sn > SVC_SUBJECT_MAX || memchr(subj, '\0', sn)) {
        snprintf(s->idwhy, sizeof(s->idwhy), "%s is longer than %d bytes or holds a NUL byte", ssrc,
                 SVC_SUBJECT_MAX);
        s->ctx.role = SVC_ROLE_NONE;
        return;
    }
    memcpy(tmp, subj, sn);
    tmp[sn] = '\0';
    if (!check_id(&st, ssrc, tmp, SVC_SUBJECT_MAX)) {
        snprintf(s->idwhy, sizeof(s->idwhy), "%.*s", (int)sizeof(s->idwhy) - 1, st.msg);
        s->ctx.role = SVC_ROLE_NONE;
        return;
    }
    memcpy(s->ctx.subject, tmp, sn + 1);
}

static uint64_t fnv1a(const char *p, size_t n)
{
    uint64_t h = 14695981039346656037ULL;

    while (n--) {
        h ^= (unsigned char)*p++;
        h *= 1099511628211ULL;
    }
    return h;
}

/* Read pem into e (identity, and revocation under the CRL of gen). */
static void peer_read(rpc_server *r, const char *pem, size_t len, uint64_t gen, peer_entry *e)
{
    e->ok = keys_peer_identity(pem, len, &e->id, e->why, sizeof(e->why)) == 0;
    e->revoked = 0;
    if (e->ok && gen) {
        pthread_rwlock_rdlock(&r->crl_lock);
        e->revoked = r->crl && keys_crl_revoked(r->crl, pem, len) != 0;
        gen = atomic_load(&r->crl_gen);
        pthread_rwlock_unlock(&r->crl_lock);
    }
    e->crl_gen = gen;
}

/* TLS: the client certificate's subject attributes, read with the X509_NAME
 * API (keys/peer.c): exactly one OU, the role, and one CN, the subject;
 * refused when its certificate is on the CRL. */
static void identity_tls(slot *s)
{
    grpc_auth_context *ac = grpc_call_auth_context(s->call);
    rpc_worker *w = s->w;
    rpc_server *r = w->srv;
    const grpc_auth_property *p = NULL;
    grpc_auth_property_iterator it;
    peer_entry *e, one;
    uint64_t h, gen = atomic_load(&r->crl_gen);
    int ok, revoked;
    keys_peer_id id;

    if (ac) {
        it = grpc_auth_context_find_properties_by_name(ac, GRPC_X509_PEM_CERT_PROPERTY_NAME);
        p = grpc_auth_property_iterator_next(&it);
    }
    if (!p || !p->value_length) {
        snprintf(s->idwhy, sizeof(s->idwhy),
                 "no identity: present a client certificate naming role (OU) and subject (CN)");
        goto out;
    }
    h = fnv1a(p->value, p->value_length);
    e = &w->peers[h % PEER_CACHE];
    pthread_mutex_lock(&w->peer_mu);
    if (p->value_length > PEER_PEM_MAX) {
        e = &one;
        peer_read(r, p->value, p->value_length, gen, e);
    } else if (e->hash != h || e->len != p->value_length ||
               memcmp(e->pem, p->value, p->value_length) != 0) {
        e->hash = h;
        e->len = p->value_length;
        memcpy(e->pem, p->value, p->value_length);
        peer_read(r, p->value, p->value_length, gen, e);
    } else if (e->ok && e->crl_gen != gen) {
        peer_read(r, p->value, p->value_length, gen, e); /* a new list is in force */
    }
    ok = e->ok;
    revoked = e->revoked;
    id = e->id;
    if (!ok)
        snprintf(s->idwhy, sizeof(s->idwhy), "%s", e->why);
    pthread_mutex_unlock(&w->peer_mu);
    if (ok && revoked)
        snprintf(s->idwhy, sizeof(s->idwhy),
                 "the client certificate (OU=%.32s, CN=%.64s) is revoked (--client-crl)", id.ou,
                 id.cn);
    else if (ok)
        set_identity(s, id.ou, strlen(id.ou), id.cn, strlen(id.cn), "the client certificate's OU",
                     "the client certificate's CN");
out:
    if (ac)
        grpc_auth_context_release(ac);
}

static void identity(slot *s)
{
    const char *role = NULL, *subj = NULL;
    size_t rn = 0, sn = 0;

    s->ctx.role = SVC_ROLE_NONE;
    s->ctx.subject[0] = '\0';
    s->idwhy[0] = '\0';
    if (!s->w->srv->cfg.insecure) {
        identity_tls(s);
        return;
    }
    if (!md_value(&s->md, "tc-role", &role, &rn))
        role = NULL;
    if (!md_value(&s->md, "tc-subject", &subj, &sn))
        subj = NULL;
    set_identity(s, role, rn, subj, sn, "metadata tc-role", "metadata tc-subject");
}

/* The service part of "/pkg.Service/Method", for messages. */
static void service_of(const char *path, char *out, size_t cap)
{
    const char *p = path + 1, *slash = strchr(p, '/');
    size_t n = slash ? (size_t)(slash - p) : strlen(p);

    if (n >= cap)
        n = cap - 1;
    memcpy(out, p, n);
    out[n] = '\0';
}

static svc_code authorize(slot *s, svc_status *st)
{
    char service[96];

    if (s->m->roles == SVC_ROLE_ANY)
        return SVC_OK;
    service_of(s->m->path, service, sizeof(service));
    if (s->ctx.role == SVC_ROLE_NONE)
        return svc_fail(st, SVC_UNAUTHENTICATED, "%s", s->idwhy);
    if (!(s->m->roles & s->ctx.role))
        return svc_fail(st, SVC_PERMISSION_DENIED, "role %s may not call %s",
                        svc_role_name(s->ctx.role), service);
    return SVC_OK;
}

static int64_t deadline_ms(gpr_timespec d)
{
    gpr_timespec now = gpr_now(GPR_CLOCK_MONOTONIC), dm;

    if (gpr_time_cmp(d, gpr_inf_future(d.clock_type)) == 0)
        return INT64_MAX;
    dm = gpr_convert_clock_type(d, GPR_CLOCK_MONOTONIC);
    return svc_now_ms() + gpr_time_to_millis(gpr_time_sub(dm, now));
}

/* --- the call state machine --------------------------------------------- */

static void stream_continue(slot *s);
static void stream_wake(void *call, uint64_t gen, svc_code code, const char *msg);

static void begin_call(slot *s)
{
    svc_status st = {SVC_OK, ""};
    void *req = NULL, *resp;

    s->t0_us = now_us();
    if (!s->m) {
        char method[256];
        size_t n = GRPC_SLICE_LENGTH(s->details.method);
        if (n >= sizeof(method))
            n = sizeof(method) - 1;
        memcpy(method, GRPC_SLICE_START_PTR(s->details.method), n);
        method[n] = '\0';
        svc_fail(&st, SVC_UNIMPLEMENTED, "method %s is not served by tracesvc", method);
        s->finished = 1;
        finish(s, st.code, st.msg, NULL);
        return;
    }
    s->ctx.svc = s->w->srv->svc;
    s->ctx.reader = s->w->reader;
    s->ctx.deadline_ms = deadline_ms(s->deadline);
    s->ctx.alloc = ctx_alloc;
    s->ctx.arena = &s->call_mem;
    s->ctx.wake = stream_wake;
    s->ctx.wake_call = s;
    s->ctx.lim_entry = NULL;
    s->ctx.wake_gen = s->gen;
    identity(s);
    if (s->m->kind != RPC_UNARY)
        watch_close(s);
    if (authorize(s, &st))
        goto fail;
    if (s->m->limit && limits_enter(s->w->srv->svc->limits, &s->ctx, (limit_name)(s->m->limit - 1),
                                    &s->hold, &st) != SVC_OK)
        goto fail;
    if (s->ctx.deadline_ms <= svc_now_ms()) {
        svc_fail(&st, SVC_DEADLINE_EXCEEDED, "the deadline passed before the call was handled");
        goto fail;
    }
    switch (s->m->kind) {
    case RPC_UNARY:
        req = decode(s, s->payload, &st);
        resp = req ? new_response(s, &s->call_mem) : NULL;
        if (!req)
            goto fail;
        if (!resp) {
            svc_fail(&st, SVC_RESOURCE_EXHAUSTED, "out of call memory");
            goto fail;
        }
        if (s->m->unary(&s->ctx, req, resp, &st) != SVC_OK)
            goto fail;
        s->finished = 1;
        finish(s, SVC_OK, NULL, encode(s, resp));
        return;
    case RPC_SERVER_STREAM:
        req = decode(s, s->payload, &st);
        if (!req || s->m->open(&s->ctx, req, &s->hstate, &st) != SVC_OK) {
            s->hstate = NULL;
            goto fail;
        }
        s->ctx.arena = &s->msg_mem; /* what next() allocates lives until it is sent */
        stream_continue(s);
        return;
    case RPC_CLIENT_STREAM:
    case RPC_BIDI:
        receive(s);
        return;
    }
fail:
    s->finished = 1;
    finish(s, st.code, st.msg, NULL);
}

/* A server-stream message went out: the next one, or the status. */
static void stream_continue(slot *s)
{
    svc_status st = {SVC_OK, ""};
    void *resp;

    if (s->stream_done || s->cancelled) {
        s->finished = 1;
        finish(s, SVC_OK, NULL, NULL);
        return;
    }
    if (svc_now_ms() > s->ctx.deadline_ms) {
        s->finished = 1;
        finish(s, SVC_DEADLINE_EXCEEDED, "the deadline passed while streaming", NULL);
        return;
    }
    arena_reset(&s->msg_mem);
    resp = new_response(s, &s->msg_mem);
    if (!resp) {
        s->finished = 1;
        finish(s, SVC_RESOURCE_EXHAUSTED, "out of call memory", NULL);
        return;
    }
    if (s->m->next(&s->ctx, s->hstate, resp, &s->stream_done, &st) != SVC_OK) {
        s->finished = 1;
        finish(s, st.code, st.msg, NULL);
        return;
    }
    if (s->stream_done == SVC_STREAM_WAIT) {
        s->stream_done = 0;
        s->phase = P_WAITING;
        return;
    }
    if (s->stream_done == SVC_STREAM_END) {
        s->finished = 1;
        finish(s, SVC_OK, NULL, NULL);
        return;
    }
    send_message(s, encode(s, resp));
}

/* From the handler, any thread: continue a waiting stream, or end it. */
static void stream_wake(void *call, uint64_t gen, svc_code code, const char *msg)
{
    slot *s = call;

    pthread_mutex_lock(&s->mu);
    if (s->gen == gen && s->call && !s->finished) {
        if (code == SVC_OK) {
            if (s->phase == P_WAITING)
                stream_continue(s);
        } else if (s->phase == P_WAITING) {
            s->finished = 1;
            finish(s, code, msg, NULL);
        } else if (s->phase == P_SENDING) {
            /* a message is stuck with a peer that does not read */
            grpc_call_cancel_with_status(s->call, (grpc_status_code)code, msg, NULL);
        }
    }
    pthread_mutex_unlock(&s->mu);
}

/* A client message arrived (or the client closed its side). */
static void on_receive(slot *s)
{
    svc_status st = {SVC_OK, ""};
    grpc_byte_buffer *bb = s->recv;
    void *msg, *resp;

    s->recv = NULL;
    if (!bb) { /* end of the client's stream */
        if (s->m->kind == RPC_CLIENT_STREAM) {
            resp = new_response(s, &s->call_mem);
            if (!resp)
                svc_fail(&st, SVC_RESOURCE_EXHAUSTED, "out of call memory");
            else if (s->m->finish(&s->ctx, s->hstate, resp, &st) == SVC_OK) {
                s->finished = 1;
                finish(s, SVC_OK, NULL, encode(s, resp));
                return;
            }
        }
        s->finished = 1;
        finish(s, st.code, st.msg, NULL);
        return;
    }
    if (s->m->kind == RPC_BIDI)
        arena_reset(&s->msg_mem);
    msg = decode(s, bb, &st);
    grpc_byte_buffer_destroy(bb);
    if (!msg)
        goto fail;
    if (s->m->kind == RPC_CLIENT_STREAM) {
        if (s->m->push(&s->ctx, &s->hstate, msg, &st) != SVC_OK)
            goto fail;
        receive(s);
        return;
    }
    /* bidi: answer this one, then read the next (in order, one in flight) */
    s->ctx.arena = &s->msg_mem;
    resp = new_response(s, &s->msg_mem);
    if (!resp) {
        svc_fail(&st, SVC_RESOURCE_EXHAUSTED, "out of call memory");
        goto fail;
    }
    if (s->m->unary(&s->ctx, msg, resp, &st) != SVC_OK)
        goto fail;
    send_message(s, encode(s, resp));
    return;
fail:
    s->finished = 1;
    finish(s, st.code, st.msg, NULL);
}

static void on_event_locked(tag *t, int ok);

static void on_event(tag *t, int ok)
{
    pthread_mutex_lock(&t->s->mu);
    on_event_locked(t, ok);
    pthread_mutex_unlock(&t->s->mu);
}

static void on_event_locked(tag *t, int ok)
{
    slot *s = t->s;

    if (t->close) {
        s->close_busy = 0;
        if (s->phase == P_WAITING) /* cancelled, or past its deadline, while idle */
            s->finished = 1;
        maybe_release(s);
        return;
    }
    s->main_busy = 0;
    switch (s->phase) {
    case P_ARMED:
        if (!ok) { /* the server is shutting down: this slot is done */
            grpc_metadata_array_destroy(&s->md);
            if (!s->m)
                grpc_call_details_destroy(&s->details);
            return;
        }
        begin_call(s);
        break;
    case P_SENDING:
        if (s->send) {
            grpc_byte_buffer_destroy(s->send);
            s->send = NULL;
        }
        if (!ok) { /* the call is gone */
            s->finished = 1;
            break;
        }
        if (s->m->kind == RPC_BIDI)
            receive(s);
        else
            stream_continue(s);
        break;
    case P_RECEIVING:
        if (!ok) {
            s->finished = 1;
            break;
        }
        on_receive(s);
        break;
    case P_FINISHING:
        s->finished = 1;
        break;
    case P_WAITING: /* no batch is outstanding while waiting */
        break;
    }
    maybe_release(s);
}

/* --- workers and lifecycle ------------------------------------------------ */

static void *worker_main(void *arg)
{
    rpc_worker *w = arg;

    for (;;) {
        grpc_event ev = grpc_completion_queue_next(w->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type != GRPC_OP_COMPLETE)
            continue;
        if (ev.tag == &w->srv->shutdown_tag) {
            atomic_store(&w->srv->shutdown_done, 1);
            continue;
        }
        on_event(ev.tag, ev.success);
    }
    return NULL;
}

int rpc_addr_is_loopback(const char *addr)
{
    return strncmp(addr, "127.", 4) == 0 || strncmp(addr, "localhost:", 10) == 0 ||
           strncmp(addr, "[::1]:", 6) == 0;
}

static char *read_file(const char *path, char *err, size_t cap)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    if (!f) {
        snprintf(err, cap, "cannot open '%s'", path);
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || n > (1 << 20) ||
        fseek(f, 0, SEEK_SET) != 0 || !(buf = malloc((size_t)n + 1))) {
        fclose(f);
        snprintf(err, cap, "cannot read '%s' (at most 1 MiB)", path);
        return NULL;
    }
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        free(buf);
        snprintf(err, cap, "cannot read '%s'", path);
        return NULL;
    }
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static grpc_server_credentials *credentials(const rpc_config *cfg, char *err, size_t cap)
{
    grpc_ssl_pem_key_cert_pair pair;
    grpc_server_credentials *creds;
    char *ca, *cert, *key;

    if (cfg->insecure)
        return grpc_insecure_server_credentials_create();
    if (!cfg->tls_cert || !cfg->tls_key || !cfg->client_ca) {
        snprintf(err, cap,
                 "TLS needs --tls-cert, --tls-key and --client-ca (or --insecure on "
                 "a loopback address)");
        return NULL;
    }
    ca = read_file(cfg->client_ca, err, cap);
    cert = ca ? read_file(cfg->tls_cert, err, cap) : NULL;
    key = cert ? read_file(cfg->tls_key, err, cap) : NULL;
    if (!key) {
        free(ca);
        free(cert);
        return NULL;
    }
    pair.private_key = key;
    pair.cert_chain = cert;
    creds = grpc_ssl_server_credentials_create_ex(
        ca, &pair, 1, GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY, NULL);
    free(ca);
    free(cert);
    free(key); /* gRPC copied what it needs */
    if (!creds)
        snprintf(err, cap, "cannot build TLS credentials from the given files");
    return creds;
}

static void init_slot(slot *s, rpc_worker *w, const rpc_method *m, void *handle, size_t mem)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
    s->w = w;
    s->m = m;
    s->handle = handle;
    s->main.s = s;
    s->close.s = s;
    s->close.close = 1;
    arena_init(&s->call_mem, mem);
    arena_init(&s->msg_mem, mem);
}

rpc_server *rpc_start(const rpc_config *cfg, svc *sv, char *err, size_t errcap)
{
    grpc_arg args[1];
    grpc_channel_args chargs;
    grpc_server_credentials *creds;
    rpc_server *r;
    size_t i;
    int t;

    if (cfg->insecure && !rpc_addr_is_loopback(cfg->addr)) {
        snprintf(err, errcap,
                 "--insecure serves plaintext and binds loopback only; '%s' is not loopback",
                 cfg->addr);
        return NULL;
    }
    if (rpc_nmethods > sizeof(((rpc_server *)0)->handles) / sizeof(void *)) {
        snprintf(err, errcap, "too many methods");
        return NULL;
    }
    if (cfg->client_crl && cfg->insecure) {
        snprintf(err, errcap,
                 "--client-crl revokes client certificates: it needs TLS, not "
                 "--insecure");
        return NULL;
    }
    r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->cfg = *cfg;
    r->svc = sv;
    pthread_rwlock_init(&r->crl_lock, NULL);
    if (cfg->client_crl) {
        r->crl = keys_crl_load(cfg->client_crl, cfg->client_ca, err, errcap);
        if (!r->crl) {
            pthread_rwlock_destroy(&r->crl_lock);
            free(r);
            return NULL;
        }
        atomic_store(&r->crl_gen, 1);
    }
    grpc_init();
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[0].value.integer = (int)cfg->max_message;
    chargs.num_args = 1;
    chargs.args = args;
    r->server = grpc_server_create(&chargs, NULL);
    for (i = 0; i < rpc_nmethods; i++) {
        const rpc_method *m = &rpc_methods[i];
        int payload = m->kind == RPC_UNARY || m->kind == RPC_SERVER_STREAM;
        r->handles[i] = grpc_server_register_method(
            r->server, m->path, NULL,
            payload ? GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER : GRPC_SRM_PAYLOAD_NONE, 0);
    }
    /* Verify workers first, then the write workers: a method whose handler
     * waits on Redis is armed only on the write workers' queues, so a slow
     * or hung Redis delays writes and never a verification. */
    r->nworkers = cfg->threads + cfg->write_threads;
    r->workers = calloc((size_t)r->nworkers, sizeof(*r->workers));
    for (t = 0; t < r->nworkers; t++) {
        r->workers[t].srv = r;
        r->workers[t].blocking = t >= cfg->threads;
        if (cfg->shared_cq && t > 0 && t < cfg->threads) {
            r->workers[t].cq = r->workers[0].cq;
            continue;
        }
        r->workers[t].own_cq = 1;
        r->workers[t].cq = grpc_completion_queue_create_for_next(NULL);
        grpc_server_register_completion_queue(r->server, r->workers[t].cq, NULL);
    }
    creds = credentials(cfg, err, errcap);
    if (!creds)
        goto fail;
    r->port = grpc_server_add_http2_port(r->server, cfg->addr, creds);
    grpc_server_credentials_release(creds);
    if (r->port == 0) {
        snprintf(err, errcap, "cannot listen on '%s' (in use, or not an address)", cfg->addr);
        goto fail;
    }
    grpc_server_start(r->server);
    r->shutdown_tag.s = NULL;
    for (t = 0; t < r->nworkers; t++) {
        rpc_worker *w = &r->workers[t];
        size_t k = 0, j, generic = w->blocking ? 0 : GENERIC_SLOTS;
        w->reader = rep_reader_register(sv->replica);
        w->stats = calloc(1, sizeof(*w->stats));
        pthread_mutex_init(&w->peer_mu, NULL);
        w->peers = cfg->insecure ? NULL : calloc(PEER_CACHE, sizeof(*w->peers));
        w->nslots = generic;
        for (i = 0; i < rpc_nmethods; i++)
            if (!rpc_methods[i].blocking == !w->blocking)
                w->nslots += rpc_methods[i].slots;
        w->slots = calloc(w->nslots, sizeof(slot));
        for (i = 0; i < rpc_nmethods; i++)
            for (j = 0; !rpc_methods[i].blocking == !w->blocking && j < rpc_methods[i].slots; j++)
                init_slot(&w->slots[k++], w, &rpc_methods[i], r->handles[i], cfg->call_memory);
        for (j = 0; j < generic; j++)
            init_slot(&w->slots[k++], w, NULL, NULL, cfg->call_memory);
        for (k = 0; k < w->nslots; k++)
            arm(&w->slots[k]);
        pthread_create(&w->thread, NULL, worker_main, w);
    }
    return r;
fail:
    grpc_server_destroy(r->server);
    for (t = 0; t < r->nworkers; t++) {
        if (!r->workers[t].own_cq)
            continue;
        grpc_completion_queue_shutdown(r->workers[t].cq);
        while (
            grpc_completion_queue_next(r->workers[t].cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
                .type != GRPC_QUEUE_SHUTDOWN)
            ;
        grpc_completion_queue_destroy(r->workers[t].cq);
    }
    free(r->workers);
    keys_crl_free(r->crl);
    pthread_rwlock_destroy(&r->crl_lock);
    free(r);
    grpc_shutdown();
    return NULL;
}

/* The accept queue of the listening socket on port (in /proc/net/tcp and
 * tcp6, "tx_queue:rx_queue": for a listener, rx is the queue); -1 when
 * no such listener is found. */
static long accept_queue(int port)
{
    static const char *const files[] = {"/proc/net/tcp", "/proc/net/tcp6"};
    char line[512], local[64];
    unsigned lport, st;
    unsigned long tx, rx;
    long best = -1;
    size_t i;

    for (i = 0; i < 2; i++) {
        FILE *f = fopen(files[i], "r");
        if (!f)
            continue;
        while (fgets(line, sizeof(line), f)) {
            char *colon;
            if (sscanf(line, " %*u: %63s %*s %x %lx:%lx", local, &st, &tx, &rx) != 4)
                continue;
            colon = strrchr(local, ':');
            if (st != 0x0A || !colon || sscanf(colon + 1, "%x", &lport) != 1 || (int)lport != port)
                continue;
            if ((long)rx > best)
                best = (long)rx;
        }
        fclose(f);
    }
    (void)tx;
    return best;
}

int rpc_probe(const rpc_server *r, int timeout_ms)
{
    struct sockaddr_in sa;
    struct timespec nap = {0, 50 * 1000000};
    int64_t until;
    long q;
    int fd, ok = 1;

    /* A connection that sends nothing (so neither protocol logs an error):
     * a listener that accepts takes it off the kernel's queue at once. */
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)r->port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0; /* out of descriptors: nothing would be accepted either */
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
        until = svc_now_ms() + timeout_ms;
        while ((q = accept_queue(r->port)) > 0 && svc_now_ms() < until)
            nanosleep(&nap, NULL);
        ok = q <= 0; /* -1: bound elsewhere than IPv4/IPv6 TCP here: not judged */
    }
    close(fd);
    return ok;
}

unsigned rpc_share_slots(int threads)
{
    unsigned n = 0;
    size_t i;

    for (i = 0; i < rpc_nmethods; i++)
        if (rpc_methods[i].limit == 1 + LIMIT_VERIFY_SHARE)
            n += rpc_methods[i].slots;
    return n * (unsigned)(threads > 0 ? threads : 1);
}

int rpc_reload_crl(rpc_server *r, size_t *entries, char *err, size_t errcap)
{
    keys_crl *crl, *old;

    if (!r->cfg.client_crl)
        return 0;
    crl = keys_crl_load(r->cfg.client_crl, r->cfg.client_ca, err, errcap);
    if (!crl)
        return -1; /* the list in force stays */
    *entries = keys_crl_count(crl);
    pthread_rwlock_wrlock(&r->crl_lock);
    old = r->crl;
    r->crl = crl;
    atomic_fetch_add(&r->crl_gen, 1);
    pthread_rwlock_unlock(&r->crl_lock);
    keys_crl_free(old);
    return 0;
}

const char *rpc_grpc_version(void)
{
    return grpc_version_string();
}

int rpc_port(const rpc_server *r)
{
    return r->port;
}

void rpc_stop(rpc_server *r, int grace_ms)
{
    int64_t until = svc_now_ms() + grace_ms;
    struct timespec nap = {0, 10 * 1000000};
    int t;
    size_t k;

    if (!r)
        return;
    atomic_store(&r->stopping, 1);
    grpc_server_shutdown_and_notify(r->server, r->workers[0].cq, &r->shutdown_tag);
    while (!atomic_load(&r->shutdown_done) && svc_now_ms() < until)
        nanosleep(&nap, NULL);
    if (!atomic_load(&r->shutdown_done)) {
        grpc_server_cancel_all_calls(r->server);
        while (!atomic_load(&r->shutdown_done))
            nanosleep(&nap, NULL);
    }
    grpc_server_destroy(r->server);
    for (t = 0; t < r->nworkers; t++)
        if (r->workers[t].own_cq)
            grpc_completion_queue_shutdown(r->workers[t].cq);
    for (t = 0; t < r->nworkers; t++) {
        rpc_worker *w = &r->workers[t];
        pthread_join(w->thread, NULL);
        if (w->own_cq)
            grpc_completion_queue_destroy(w->cq);
        for (k = 0; k < w->nslots; k++) {
            arena_release(&w->slots[k].call_mem);
            arena_release(&w->slots[k].msg_mem);
            pthread_mutex_destroy(&w->slots[k].mu);
        }
        free(w->slots);
        free(w->stats);
        free(w->peers);
        pthread_mutex_destroy(&w->peer_mu);
    }
    free(r->workers);
    keys_crl_free(r->crl);
    pthread_rwlock_destroy(&r->crl_lock);
    free(r);
    grpc_shutdown();
}

/* One counter summed over the workers; field is worker 0's. */
static uint64_t sum(const rpc_server *r, const _Atomic uint64_t *field)
{
    size_t off = (size_t)((const char *)field - (const char *)r->workers[0].stats);
    uint64_t x = 0;
    int t;

    for (t = 0; t < r->nworkers; t++)
        x += atomic_load_explicit(
            (const _Atomic uint64_t *)((const char *)r->workers[t].stats + off),
            memory_order_relaxed);
    return x;
}

size_t rpc_metrics(const rpc_server *r, char *buf, size_t cap)
{
    size_t n = 0, m, c, b;

#define OUT(...) (n = svc_appendf(buf, cap, n, __VA_ARGS__))
    OUT("# HELP tracesvc_rpc_calls_total gRPC calls finished, by method and status.\n"
        "# TYPE tracesvc_rpc_calls_total counter\n");
    for (m = 0; m <= rpc_nmethods && m <= METHODS_MAX; m++) {
        const char *name = m < rpc_nmethods ? rpc_methods[m].path + 1 : "unimplemented";
        for (c = 0; c < CODES; c++) {
            uint64_t v =
                sum(r, &r->workers[0].stats->calls[m == rpc_nmethods ? METHODS_MAX : m][c]);
            if (v)
                OUT("tracesvc_rpc_calls_total{method=\"%s\",code=\"%s\"} %llu\n", name,
                    rpc_code_name((int)c), (unsigned long long)v);
        }
    }
    OUT("# HELP tracesvc_rpc_latency_seconds gRPC call duration (streams: the whole call).\n"
        "# TYPE tracesvc_rpc_latency_seconds histogram\n");
    for (m = 0; m < rpc_nmethods && m < METHODS_MAX; m++) {
        const char *name = rpc_methods[m].path + 1;
        uint64_t cum = 0;
        if (!sum(r, &r->workers[0].stats->lat_sum_us[m]) &&
            !sum(r, &r->workers[0].stats->lat[m][0]) &&
            !sum(r, &r->workers[0].stats->lat[m][BUCKETS - 1]))
            continue;
        for (b = 0; b < BUCKETS; b++) {
            cum += sum(r, &r->workers[0].stats->lat[m][b]);
            if (b < BUCKETS - 1)
                OUT("tracesvc_rpc_latency_seconds_bucket{method=\"%s\",le=\"%g\"} %llu\n", name,
                    (double)bucket_us[b] / 1e6, (unsigned long long)cum);
            else
                OUT("tracesvc_rpc_latency_seconds_bucket{method=\"%s\",le=\"+Inf\"} %llu\n", name,
                    (unsigned long long)cum);
        }
        OUT("tracesvc_rpc_latency_seconds_sum{method=\"%s\"} %.6f\n", name,
            (double)sum(r, &r->workers[0].stats->lat_sum_us[m]) / 1e6);
        OUT("tracesvc_rpc_latency_seconds_count{method=\"%s\"} %llu\n", name,
            (unsigned long long)cum);
    }
#undef OUT
    return n;
}
