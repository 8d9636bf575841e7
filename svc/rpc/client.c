/*
 * client.c - blocking calls on one completion queue (pluck), one call at a
 * time. See client.h.
 */
#include "client.h"
#include "wire.h"

#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rpc_client {
    grpc_channel *ch;
    grpc_completion_queue *cq;
    grpc_metadata md[2];
    size_t nmd;
    int timeout_s;
};

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;

    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && n < (1 << 20) &&
        fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1)) != NULL) {
        if (fread(buf, 1, (size_t)n, f) == (size_t)n)
            buf[n] = '\0';
        else {
            free(buf);
            buf = NULL;
        }
    }
    fclose(f);
    return buf;
}

rpc_client *rpc_client_new(const rpc_client_opts *o, char *err, size_t errcap)
{
    grpc_channel_credentials *creds;
    rpc_client *c = calloc(1, sizeof(*c));

    if (!c)
        return NULL;
    grpc_init();
    if (o->insecure) {
        creds = grpc_insecure_credentials_create();
        if (o->role && o->subject) {
            c->md[0].key = grpc_slice_from_static_string("tc-role");
            c->md[0].value = grpc_slice_from_copied_string(o->role);
            c->md[1].key = grpc_slice_from_static_string("tc-subject");
            c->md[1].value = grpc_slice_from_copied_string(o->subject);
            c->nmd = 2;
        }
    } else {
        char *ca = o->ca ? slurp(o->ca) : NULL, *cert = o->cert ? slurp(o->cert) : NULL;
        char *key = o->key ? slurp(o->key) : NULL;
        grpc_ssl_pem_key_cert_pair pair = {key, cert};
        if (!ca || !cert || !key) {
            snprintf(err, errcap,
                     "TLS needs readable --ca, --cert and --key files (or "
                     "--insecure against a loopback server)");
            free(ca);
            free(cert);
            free(key);
            grpc_shutdown();
            free(c);
            return NULL;
        }
        creds = grpc_ssl_credentials_create(ca, &pair, NULL, NULL);
        free(ca);
        free(cert);
        free(key);
    }
    c->ch = grpc_channel_create(o->addr, creds, NULL);
    grpc_channel_credentials_release(creds);
    c->cq = grpc_completion_queue_create_for_pluck(NULL);
    c->timeout_s = o->timeout_s > 0 ? o->timeout_s : 30;
    return c;
}

void rpc_client_set_timeout(rpc_client *c, int timeout_s)
{
    c->timeout_s = timeout_s;
}

void rpc_client_free(rpc_client *c)
{
    size_t i;

    if (!c)
        return;
    grpc_channel_destroy(c->ch);
    grpc_completion_queue_shutdown(c->cq);
    while (
        grpc_completion_queue_pluck(c->cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
        GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(c->cq);
    for (i = 0; i < c->nmd; i++)
        grpc_slice_unref(c->md[i].value);
    free(c);
    grpc_shutdown();
}

void rpc_msg_free(ProtobufCMessage *m)
{
    if (m)
        protobuf_c_message_free_unpacked(m, NULL);
}

uint8_t *rpc_msg_encode(const ProtobufCMessage *m, size_t *len)
{
    uint8_t *buf;

    *len = protobuf_c_message_get_packed_size(m);
    buf = malloc(*len ? *len : 1);
    if (buf)
        protobuf_c_message_pack(m, buf);
    return buf;
}

/* The response of an OK call, or the reason there is none. */
static ProtobufCMessage *response(grpc_byte_buffer *recv, const ProtobufCMessageDescriptor *out,
                                  rpc_result *r)
{
    ProtobufCMessage *m = NULL;

    if (r->code == 0) {
        m = wire_unpack(recv, out, NULL);
        if (!m) {
            r->code = 13;
            snprintf(r->msg, sizeof(r->msg), "cannot decode the response as %s", out->name);
        }
    }
    if (recv)
        grpc_byte_buffer_destroy(recv);
    return m;
}

/* One call's state across its batches. */
typedef struct call {
    grpc_call *call;
    grpc_metadata_array initial, trailing;
    grpc_status_code status;
    grpc_slice details;
    int started_status;
} call;

static int start_call(rpc_client *c, call *k, const char *path)
{
    gpr_timespec deadline = c->timeout_s > 0
                                ? gpr_time_add(gpr_now(GPR_CLOCK_REALTIME),
                                               gpr_time_from_seconds(c->timeout_s, GPR_TIMESPAN))
                                : gpr_inf_future(GPR_CLOCK_REALTIME);
    grpc_slice method = grpc_slice_from_copied_string(path);

    memset(k, 0, sizeof(*k));
    grpc_metadata_array_init(&k->initial);
    grpc_metadata_array_init(&k->trailing);
    k->call = grpc_channel_create_call(c->ch, NULL, GRPC_PROPAGATE_DEFAULTS, c->cq, method, NULL,
                                       deadline, NULL);
    grpc_slice_unref(method);
    return k->call != NULL;
}

static int not_started(rpc_result *r, const char *path)
{
    r->code = 14; /* UNAVAILABLE */
    snprintf(r->msg, sizeof(r->msg), "cannot start a call to %s", path);
    return r->code;
}

static int run(rpc_client *c, call *k, grpc_op *ops, size_t n)
{
    grpc_event ev;

    if (grpc_call_start_batch(k->call, ops, n, k, NULL) != GRPC_CALL_OK)
        return 0;
    ev = grpc_completion_queue_pluck(c->cq, k, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    return ev.type == GRPC_OP_COMPLETE && ev.success;
}

static void op_send_md(rpc_client *c, grpc_op *op)
{
    memset(op, 0, sizeof(*op));
    op->op = GRPC_OP_SEND_INITIAL_METADATA;
    op->data.send_initial_metadata.count = c->nmd;
    op->data.send_initial_metadata.metadata = c->md;
}

/* The four ops that open a call with one request message: metadata, the
 * message, half-close, and the server's initial metadata. */
static void op_request(rpc_client *c, call *k, grpc_byte_buffer *send, grpc_op ops[4])
{
    op_send_md(c, &ops[0]);
    memset(&ops[1], 0, sizeof(ops[1]) * 3);
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = send;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &k->initial;
}

static void op_status(call *k, grpc_op *op)
{
    memset(op, 0, sizeof(*op));
    op->op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    op->data.recv_status_on_client.trailing_metadata = &k->trailing;
    op->data.recv_status_on_client.status = &k->status;
    op->data.recv_status_on_client.status_details = &k->details;
    k->started_status = 1;
}

/* Finish: collect the status if not yet, fill r, free the call. */
static int end_call(rpc_client *c, call *k, rpc_result *r)
{
    size_t n;

    if (!k->started_status) {
        grpc_op op;
        op_status(k, &op);
        run(c, k, &op, 1);
    }
    r->code = (int)k->status;
    n = GRPC_SLICE_LENGTH(k->details);
    if (n >= sizeof(r->msg))
        n = sizeof(r->msg) - 1;
    memcpy(r->msg, GRPC_SLICE_START_PTR(k->details), n);
    r->msg[n] = '\0';
    grpc_slice_unref(k->details);
    grpc_metadata_array_destroy(&k->initial);
    grpc_metadata_array_destroy(&k->trailing);
    grpc_call_unref(k->call);
    return r->code;
}

int rpc_call_unary(rpc_client *c, const char *path, const ProtobufCMessage *req,
                   const ProtobufCMessageDescriptor *out, ProtobufCMessage **resp, rpc_result *r)
{
    grpc_byte_buffer *send = wire_pack(req), *recv = NULL;
    grpc_op ops[6];
    call k;

    *resp = NULL;
    if (!start_call(c, &k, path)) {
        grpc_byte_buffer_destroy(send);
        return not_started(r, path);
    }
    op_request(c, &k, send, ops);
    memset(&ops[4], 0, sizeof(ops[4]));
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &recv;
    op_status(&k, &ops[5]);
    run(c, &k, ops, 6);
    grpc_byte_buffer_destroy(send);
    end_call(c, &k, r);
    *resp = response(recv, out, r);
    return r->code;
}

int rpc_call_server_stream(rpc_client *c, const char *path, const ProtobufCMessage *req,
                           const ProtobufCMessageDescriptor *out,
                           int (*on_msg)(void *arg, const ProtobufCMessage *msg), void *arg,
                           rpc_result *r)
{
    grpc_byte_buffer *send = wire_pack(req);
    grpc_op ops[4];
    int stop = 0;
    call k;

    if (!start_call(c, &k, path)) {
        grpc_byte_buffer_destroy(send);
        return not_started(r, path);
    }
    op_request(c, &k, send, ops);
    run(c, &k, ops, 4);
    grpc_byte_buffer_destroy(send);
    while (!stop) {
        grpc_byte_buffer *recv = NULL;
        ProtobufCMessage *m;
        memset(&ops[0], 0, sizeof(ops[0]));
        ops[0].op = GRPC_OP_RECV_MESSAGE;
        ops[0].data.recv_message.recv_message = &recv;
        if (!run(c, &k, ops, 1) || !recv)
            break;
        m = wire_unpack(recv, out, NULL);
        grpc_byte_buffer_destroy(recv);
        if (!m || on_msg(arg, m)) {
            stop = 1;
            grpc_call_cancel(k.call, NULL);
        }
        rpc_msg_free(m);
    }
    return end_call(c, &k, r);
}

int rpc_call_client_stream(rpc_client *c, const char *path,
                           const ProtobufCMessage *(*next)(void *arg), void *arg,
                           const ProtobufCMessageDescriptor *out, ProtobufCMessage **resp,
                           rpc_result *r)
{
    grpc_byte_buffer *recv = NULL;
    const ProtobufCMessage *m;
    grpc_op ops[4];
    call k;

    *resp = NULL;
    if (!start_call(c, &k, path))
        return not_started(r, path);
    op_send_md(c, &ops[0]);
    run(c, &k, ops, 1);
    while ((m = next(arg)) != NULL) {
        grpc_byte_buffer *send = wire_pack(m);
        int ok;
        memset(&ops[0], 0, sizeof(ops[0]));
        ops[0].op = GRPC_OP_SEND_MESSAGE;
        ops[0].data.send_message.send_message = send;
        ok = run(c, &k, ops, 1);
        grpc_byte_buffer_destroy(send);
        if (!ok)
            break;
    }
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[1].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[1].data.recv_initial_metadata.recv_initial_metadata = &k.initial;
    ops[2].op = GRPC_OP_RECV_MESSAGE;
    ops[2].data.recv_message.recv_message = &recv;
    op_status(&k, &ops[3]);
    run(c, &k, ops, 4);
    end_call(c, &k, r);
    *resp = response(recv, out, r);
    return r->code;
}

const char *rpc_client_grpc_version(void)
{
    return grpc_version_string();
}
