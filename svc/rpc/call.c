/*
 * call.c - a call's life in its slot: armed (a request is outstanding
 * with gRPC), then a short sequence of batches for its kind, then
 * released and armed again. A slot has two tags: `main` for its batches,
 * in sequence, and `close` for RECV_CLOSE_ON_SERVER of streaming calls,
 * which completes when the call ends or the client cancels. A slot is
 * released when both are idle and the call is finished.
 *
 * A server stream whose handler has nothing to send yet (a delisting
 * watcher) parks its slot in P_WAITING with no batch outstanding; the
 * handler's wake, from any thread, resumes it under the slot's mutex. The
 * slot's generation, bumped at every release, keeps a late wake from
 * touching the next call in the slot.
 */
#include "server_int.h"
#include "log.h"
#include "fastpb.h"
#include "merkle.h"
#include "wire.h"

#include <grpc/byte_buffer.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

void rpc_slot_arm(slot *s)
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
        tclog(TCLOG_WARN, "cannot arm a request slot (%d)", (int)e);
}

static void count_call(slot *s, svc_code code);

static void release(slot *s)
{
    /* Ended with no status sent: the client cancelled, or went away. */
    if (s->begun && !s->counted)
        count_call(s, SVC_CANCELLED);
    s->begun = s->counted = 0;
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
    rpc_slot_arm(s);
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
        tclog(TCLOG_WARN, "grpc_call_start_batch failed (%d)", (int)e);
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

/* The access log's line of a call: what was called, how it ended, by
 * whom, from where; never what it carried. */
static void access_line(slot *s, svc_code code, int64_t us)
{
    char method[160], *peer = s->call ? grpc_call_get_peer(s->call) : NULL;

    if (s->m) {
        snprintf(method, sizeof(method), "%s", s->m->path);
    } else {
        size_t n = GRPC_SLICE_LENGTH(s->details.method);
        n = n < sizeof(method) - 1 ? n : sizeof(method) - 1;
        memcpy(method, GRPC_SLICE_START_PTR(s->details.method), n);
        method[n] = '\0';
        for (size_t i = 0; i < n; i++) /* a caller's bytes: keep the line one value */
            if ((unsigned char)method[i] <= ' ' || method[i] == '"' || method[i] == 0x7f)
                method[i] = '?';
    }
    tclog_access("proto=grpc method=%s code=%s ms=%.3f role=%s subject=%s peer=%s", method,
                 rpc_code_name((int)code), (double)us / 1000.0, svc_role_name(s->ctx.role),
                 s->ctx.subject[0] ? s->ctx.subject : "-", peer ? peer : "-");
    gpr_free(peer);
}

static void count_call(slot *s, svc_code code)
{
    rpc_stats *st = s->w->stats;
    size_t m = s->m ? (size_t)(s->m - rpc_methods) : METHODS_MAX, b = 0;
    int64_t us = now_us() - s->t0_us;

    while (b < BUCKETS - 1 && us > rpc_bucket_us[b])
        b++;
    s->counted = 1;
    atomic_fetch_add_explicit(&st->calls[m][(unsigned)code < CODES ? code : 2], 1,
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&st->lat[m][b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&st->lat_sum_us[m], (uint64_t)(us > 0 ? us : 0),
                              memory_order_relaxed);
    if (tclog_access_on())
        access_line(s, code, us);
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
    s->begun = 1;
    atomic_fetch_add_explicit(
        &s->w->stats->started[s->m ? (size_t)(s->m - rpc_methods) : METHODS_MAX], 1,
        memory_order_relaxed);
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
    rpc_identify(s);
    if (s->m->kind != RPC_UNARY)
        watch_close(s);
    if (rpc_authorize(s, &st))
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

/* --- a worker ------------------------------------------------------------- */

void *rpc_worker_main(void *arg)
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

void rpc_slot_init(slot *s, rpc_worker *w, const rpc_method *m, void *handle, size_t mem)
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
