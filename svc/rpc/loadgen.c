/*
 * loadgen.c - see loadgen.h. One completion queue per client thread; each
 * thread owns every threads-th connection and all of its call slots.
 * Channels use a local subchannel pool, so N connections are N TCP
 * connections (gRPC would otherwise share one among equal targets).
 */
#include "loadgen.h"

#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct lg_thread lg_thread;

typedef struct lg_slot {
    lg_thread *t;
    grpc_channel *ch;
    grpc_call *call;
    int busy;   /* an op batch is outstanding */
    int opened; /* stream mode: the stream exists */
    int closing;
    uint64_t started_ns;
    size_t next;
    grpc_byte_buffer *send, *recv;
    grpc_metadata_array initial, trailing;
    grpc_status_code status;
    grpc_slice details;
} lg_slot;

struct lg_thread {
    const lg_config *cfg;
    grpc_completion_queue *cq;
    pthread_t thread;
    lg_slot *slots;
    size_t nslots;
    grpc_channel **channels;
    size_t nchannels;
    grpc_metadata md[2];
    uint64_t t_measure, t_end;
    size_t stride;
    lg_result res;
};

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* 16 linear sub-buckets per power of two: relative error under 1/16. */
static unsigned bucket(uint64_t ns)
{
    unsigned p, sub;

    if (ns < LG_SUB)
        return (unsigned)ns;
    p = 63u - (unsigned)__builtin_clzll(ns); /* 2^p <= ns, p >= 4 */
    sub = (unsigned)((ns >> (p - 4)) & (LG_SUB - 1));
    return (p - 3) * LG_SUB + sub;
}

static double bucket_value(unsigned b)
{
    unsigned p = b / LG_SUB + 3, sub = b % LG_SUB;

    if (b < LG_SUB)
        return b;
    return ldexp(1.0 + (sub + 0.5) / LG_SUB, (int)p);
}

double lg_quantile(const lg_result *res, double q)
{
    uint64_t total = 0, seen = 0, want;
    unsigned b;

    for (b = 0; b < LG_BUCKETS; b++)
        total += res->hist[b];
    if (!total)
        return 0;
    want = (uint64_t)ceil(q * (double)total);
    if (want == 0)
        want = 1;
    for (b = 0; b < LG_BUCKETS; b++) {
        seen += res->hist[b];
        if (seen >= want)
            return bucket_value(b);
    }
    return bucket_value(LG_BUCKETS - 1);
}

/* The next request payload of this slot (static slices: no copy). */
static grpc_byte_buffer *payload(lg_slot *s)
{
    const lg_config *c = s->t->cfg;
    const lg_payload *p = &c->payloads[s->next];
    grpc_slice sl = grpc_slice_from_static_buffer(p->data, p->len);
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&sl, 1);

    grpc_slice_unref(sl);
    s->next = (s->next + s->t->stride) % c->npayloads;
    return bb;
}

static void note_error(lg_thread *t, const char *what, grpc_status_code st, grpc_slice details)
{
    t->res.errors++;
    if (!t->res.first_error[0])
        snprintf(t->res.first_error, sizeof(t->res.first_error), "%s: status %d: %.*s", what,
                 (int)st, (int)GRPC_SLICE_LENGTH(details),
                 (const char *)GRPC_SLICE_START_PTR(details));
}

static void record(lg_thread *t, lg_slot *s, uint64_t now)
{
    if (now >= t->t_measure && now < t->t_end) {
        t->res.calls++;
        t->res.hist[bucket(now - s->started_ns)]++;
    }
}

static grpc_call *new_call(lg_slot *s)
{
    lg_thread *t = s->t;
    grpc_slice method = grpc_slice_from_static_string(t->cfg->method);
    grpc_call *c = grpc_channel_create_call(
        s->ch, NULL, GRPC_PROPAGATE_DEFAULTS, t->cq, method, NULL,
        gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_seconds(60, GPR_TIMESPAN)), NULL);

    grpc_slice_unref(method);
    grpc_metadata_array_init(&s->initial);
    grpc_metadata_array_init(&s->trailing);
    s->details = grpc_empty_slice();
    return c;
}

static void end_call(lg_slot *s)
{
    grpc_metadata_array_destroy(&s->initial);
    grpc_metadata_array_destroy(&s->trailing);
    grpc_slice_unref(s->details);
    grpc_call_unref(s->call);
    s->call = NULL;
}

static void start_unary(lg_slot *s)
{
    grpc_op ops[6];

    memset(ops, 0, sizeof(ops));
    s->call = new_call(s);
    s->send = payload(s);
    s->recv = NULL;
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = 2;
    ops[0].data.send_initial_metadata.metadata = s->t->md;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = s->send;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &s->initial;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &s->recv;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &s->trailing;
    ops[5].data.recv_status_on_client.status = &s->status;
    ops[5].data.recv_status_on_client.status_details = &s->details;
    s->started_ns = now_ns();
    s->busy = grpc_call_start_batch(s->call, ops, 6, s, NULL) == GRPC_CALL_OK;
}

static void on_unary(lg_slot *s, int ok, uint64_t now)
{
    lg_thread *t = s->t;

    grpc_byte_buffer_destroy(s->send);
    if (ok && s->status == GRPC_STATUS_OK && s->recv)
        record(t, s, now);
    else if (now < t->t_end)
        note_error(t, "unary", s->status, s->details);
    if (s->recv)
        grpc_byte_buffer_destroy(s->recv);
    end_call(s);
    if (now < t->t_end)
        start_unary(s);
}

/* Stream mode: one message out, its answer in, then the next. */
static void stream_send(lg_slot *s)
{
    grpc_op ops[4];
    size_t n = 0;

    memset(ops, 0, sizeof(ops));
    if (!s->opened) {
        s->call = new_call(s);
        ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
        ops[n].data.send_initial_metadata.count = 2;
        ops[n++].data.send_initial_metadata.metadata = s->t->md;
        ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
        ops[n++].data.recv_initial_metadata.recv_initial_metadata = &s->initial;
        s->opened = 1;
    }
    s->send = payload(s);
    s->recv = NULL;
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n++].data.send_message.send_message = s->send;
    ops[n].op = GRPC_OP_RECV_MESSAGE;
    ops[n++].data.recv_message.recv_message = &s->recv;
    s->started_ns = now_ns();
    s->busy = grpc_call_start_batch(s->call, ops, n, s, NULL) == GRPC_CALL_OK;
}

static void stream_close(lg_slot *s)
{
    grpc_op ops[2];

    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[1].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[1].data.recv_status_on_client.trailing_metadata = &s->trailing;
    ops[1].data.recv_status_on_client.status = &s->status;
    ops[1].data.recv_status_on_client.status_details = &s->details;
    s->closing = 1;
    s->busy = grpc_call_start_batch(s->call, ops, 2, s, NULL) == GRPC_CALL_OK;
}

static void on_stream(lg_slot *s, int ok, uint64_t now)
{
    lg_thread *t = s->t;

    if (s->closing) {
        if (s->status != GRPC_STATUS_OK && s->status != GRPC_STATUS_CANCELLED)
            note_error(t, "stream close", s->status, s->details);
        end_call(s);
        s->opened = s->closing = 0;
        return;
    }
    grpc_byte_buffer_destroy(s->send);
    if (ok && s->recv) {
        record(t, s, now);
        grpc_byte_buffer_destroy(s->recv);
        if (now < t->t_end)
            stream_send(s);
        else
            stream_close(s);
        return;
    }
    /* The stream broke: collect its status, count the error. */
    if (s->recv)
        grpc_byte_buffer_destroy(s->recv);
    stream_close(s);
    note_error(t, "stream", GRPC_STATUS_UNAVAILABLE, grpc_empty_slice());
}

static void *thread_main(void *arg)
{
    lg_thread *t = arg;
    size_t i;

    for (i = 0; i < t->nslots; i++) {
        if (t->cfg->mode == LG_UNARY)
            start_unary(&t->slots[i]);
        else
            stream_send(&t->slots[i]);
    }
    for (;;) {
        size_t busy = 0;
        grpc_event ev = grpc_completion_queue_next(
            t->cq,
            gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_millis(100, GPR_TIMESPAN)),
            NULL);
        if (ev.type == GRPC_OP_COMPLETE) {
            lg_slot *s = ev.tag;
            s->busy = 0;
            if (t->cfg->mode == LG_UNARY)
                on_unary(s, ev.success, now_ns());
            else
                on_stream(s, ev.success, now_ns());
        }
        if (now_ns() < t->t_end)
            continue;
        for (i = 0; i < t->nslots; i++)
            busy += t->slots[i].busy;
        if (!busy)
            break;
    }
    return NULL;
}

int lg_run(const lg_config *cfg, lg_result *res, char *err, size_t errcap)
{
    grpc_arg arg;
    grpc_channel_args args;
    grpc_channel_credentials *creds;
    lg_thread *ts;
    uint64_t start;
    int i, nt = cfg->threads > 0 ? cfg->threads : 1;
    size_t j, b;

    memset(res, 0, sizeof(*res));
    if (cfg->connections < 1 || cfg->inflight < 1 || !cfg->npayloads || cfg->duration_s <= 0) {
        snprintf(err, errcap, "need connections >= 1, inflight >= 1, payloads, a duration");
        return -1;
    }
    if (nt > cfg->connections)
        nt = cfg->connections;
    grpc_init();
    arg.type = GRPC_ARG_INTEGER;
    arg.key = (char *)GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL;
    arg.value.integer = 1;
    args.num_args = 1;
    args.args = &arg;
    creds = grpc_insecure_credentials_create();
    ts = calloc((size_t)nt, sizeof(*ts));
    start = now_ns();
    for (i = 0; i < nt; i++) {
        lg_thread *t = &ts[i];
        t->cfg = cfg;
        t->cq = grpc_completion_queue_create_for_next(NULL);
        t->md[0].key = grpc_slice_from_static_string("tc-role");
        t->md[0].value = grpc_slice_from_copied_string(cfg->role);
        t->md[1].key = grpc_slice_from_static_string("tc-subject");
        t->md[1].value = grpc_slice_from_copied_string(cfg->subject);
        t->nchannels = (size_t)((cfg->connections - i + nt - 1) / nt);
        t->channels = calloc(t->nchannels, sizeof(*t->channels));
        t->nslots = t->nchannels * (size_t)cfg->inflight;
        t->slots = calloc(t->nslots, sizeof(*t->slots));
        t->stride = 7919 % cfg->npayloads ? 7919 % cfg->npayloads : 1;
        for (j = 0; j < t->nchannels; j++)
            t->channels[j] = grpc_channel_create(cfg->addr, creds, &args);
        for (j = 0; j < t->nslots; j++) {
            t->slots[j].t = t;
            t->slots[j].ch = t->channels[j % t->nchannels];
            t->slots[j].next = (j * 104729 + (size_t)i * 1299709) % cfg->npayloads;
        }
        t->t_measure = start + (uint64_t)(cfg->warmup_s * 1e9);
        t->t_end = t->t_measure + (uint64_t)(cfg->duration_s * 1e9);
    }
    grpc_channel_credentials_release(creds);
    for (i = 0; i < nt; i++)
        pthread_create(&ts[i].thread, NULL, thread_main, &ts[i]);
    for (i = 0; i < nt; i++) {
        lg_thread *t = &ts[i];
        pthread_join(t->thread, NULL);
        res->calls += t->res.calls;
        res->errors += t->res.errors;
        for (b = 0; b < LG_BUCKETS; b++)
            res->hist[b] += t->res.hist[b];
        if (!res->first_error[0] && t->res.first_error[0])
            memcpy(res->first_error, t->res.first_error, sizeof(res->first_error));
        for (j = 0; j < t->nchannels; j++)
            grpc_channel_destroy(t->channels[j]);
        grpc_completion_queue_shutdown(t->cq);
        while (grpc_completion_queue_next(t->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
               GRPC_QUEUE_SHUTDOWN)
            ;
        grpc_completion_queue_destroy(t->cq);
        grpc_slice_unref(t->md[0].value);
        grpc_slice_unref(t->md[1].value);
        free(t->channels);
        free(t->slots);
    }
    res->seconds = cfg->duration_s;
    free(ts);
    grpc_shutdown();
    return 0;
}
