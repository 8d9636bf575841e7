/*
 * tc-bare-server - the baseline of bench/compare.sh: a bare gRPC core
 * server that answers VerifyBatch and VerifyCode with one HMAC per code and
 * nothing else (no decoding of the code, no keyring, no registry, no
 * verdict logic; the HMAC is codec's, on precomputed midstates, the
 * cheapest there is). It walks the request's wire bytes in place and writes a
 * VerifyResponse per item holding only a verdict (GENUINE when the tag's
 * first byte is even, FORGED otherwise: the work cannot be skipped).
 * Standalone on purpose, so that it does not inherit tracesvc's RPC layer.
 *
 *   tc-bare-server --grpc 127.0.0.1:0 [--threads N] [--lookup /path/redis.sock]
 *
 * With --lookup it is instead the *lookup design* a user might pick: every
 * issued code stored in Redis, each verified with one GET (pipelined per
 * request, the best case for that design), GENUINE when the key exists.
 *
 * Loopback only; stops on SIGINT/SIGTERM.
 */
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>
#include <hiredis/hiredis.h>
#include "codec.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SLOTS 64
#define MAX_ITEMS 10000

static const uint8_t key[32] = "bare-server-benchmark-key-000000";
static codec_mac_key mac; /* one HMAC per code, on precomputed midstates: the
                           * cheapest HMAC there is, so the baseline is fair */

typedef struct slot {
    grpc_completion_queue *cq;
    grpc_server *server;
    void *method;
    int batch; /* VerifyBatch (1) or VerifyCode (0) */
    int phase; /* 0 armed, 1 answering */
    grpc_call *call;
    gpr_timespec deadline;
    grpc_metadata_array md;
    grpc_byte_buffer *payload, *send;
    int cancelled;
} slot;

static _Atomic int stopping, shut_down;
static const char *lookup; /* Redis socket: the lookup design */
static _Thread_local redisContext *redis;
static int shutdown_tag;

static void arm(slot *s)
{
    if (atomic_load(&stopping))
        return;
    s->phase = 0;
    s->payload = NULL;
    grpc_metadata_array_init(&s->md);
    grpc_server_request_registered_call(s->server, s->method, &s->call, &s->deadline, &s->md,
                                        &s->payload, s->cq, s->cq, s);
}

static size_t varint(const uint8_t **p, const uint8_t *end)
{
    size_t v = 0;
    unsigned shift = 0;

    while (*p < end && shift < 35) {
        uint8_t b = *(*p)++;
        v |= (size_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return v;
        shift += 7;
    }
    return (size_t)-1;
}

/* One HMAC (two SHA-256 compressions) over the first 11 bytes of the
 * code's text; 1 for GENUINE, 2 for FORGED. */
static uint8_t verdict(const uint8_t *code, size_t len)
{
    uint8_t body[CODEC_BODY_BYTES] = {0}, tag[CODEC_TAG_BYTES];

    memcpy(body, code, len < sizeof(body) ? len : sizeof(body));
    codec_mac_tag(&mac, body, tag);
    return (tag[0] & 1) ? 2 : 1;
}

/* The code field (1) of a VerifyCodeRequest or VerifyItem, in place. */
static int code_of(const uint8_t *p, const uint8_t *end, const uint8_t **code, size_t *len)
{
    while (p < end) {
        uint8_t k = *p++;
        size_t n = varint(&p, end);
        if ((k & 7) != 2 || n > (size_t)(end - p))
            return 0;
        if (k >> 3 == 1) {
            *code = p;
            *len = n;
            return 1;
        }
        p += n;
    }
    return 0;
}

/* Lookup design: one pipelined GET per code; GENUINE when it exists. */
static size_t lookup_answer(const uint8_t *req, size_t len, uint8_t *out, size_t cap, int batch)
{
    const uint8_t *codes[MAX_ITEMS], *p = req, *end = req + len;
    size_t lens[MAX_ITEMS], n = 0, i, o = 0;

    if (!redis && !(redis = redisConnectUnix(lookup)))
        return 0;
    if (!batch) {
        if (code_of(p, end, &codes[0], &lens[0]))
            n = 1;
    } else {
        while (p < end && n < MAX_ITEMS) {
            uint8_t k = *p++;
            size_t m = varint(&p, end);
            if ((k & 7) != 2 || m > (size_t)(end - p))
                break;
            if (k >> 3 == 1 && code_of(p, p + m, &codes[n], &lens[n]))
                n++;
            p += m;
        }
    }
    for (i = 0; i < n; i++)
        redisAppendCommand(redis, "GET %b", codes[i], lens[i]);
    for (i = 0; i < n && o + 4 <= cap; i++) {
        redisReply *r = NULL;
        uint8_t v = 3; /* UNKNOWN_BATCH: not issued */
        if (redisGetReply(redis, (void **)&r) == REDIS_OK && r && r->type == REDIS_REPLY_STRING)
            v = 1;
        if (r)
            freeReplyObject(r);
        out[o++] = 0x0a; /* VerifyCodeResponse.result or VerifyBatchResponse.results */
        out[o++] = 2;
        out[o++] = 0x08;
        out[o++] = v;
    }
    return o;
}

static grpc_byte_buffer *answer(slot *s, const uint8_t *req, size_t len)
{
    static _Thread_local uint8_t out[MAX_ITEMS * 4 + 16];
    const uint8_t *p = req, *end = req + len, *code;
    size_t o = 0, n, clen;
    grpc_slice sl;

    if (lookup) {
        o = lookup_answer(req, len, out, sizeof(out), s->batch);
    } else if (!s->batch) {
        if (code_of(p, end, &code, &clen)) {
            out[o++] = 0x0a; /* VerifyCodeResponse.result */
            out[o++] = 2;
            out[o++] = 0x08; /* VerifyResult.verdict */
            out[o++] = verdict(code, clen);
        }
    } else {
        while (p < end && o < sizeof(out) - 4) {
            uint8_t k = *p++;
            n = varint(&p, end);
            if ((k & 7) != 2 || n > (size_t)(end - p))
                break;
            if (k >> 3 == 1 && code_of(p, p + n, &code, &clen)) {
                out[o++] = 0x0a; /* VerifyBatchResponse.results */
                out[o++] = 2;
                out[o++] = 0x08;
                out[o++] = verdict(code, clen);
            }
            p += n;
        }
    }
    sl = grpc_slice_from_copied_buffer((const char *)out, o);
    s->send = grpc_raw_byte_buffer_create(&sl, 1);
    grpc_slice_unref(sl);
    return s->send;
}

static void handle(slot *s, int ok)
{
    grpc_op ops[4];
    grpc_byte_buffer_reader r;
    grpc_slice req;

    if (s->phase == 1 || !ok) {
        if (s->phase == 1) {
            grpc_byte_buffer_destroy(s->send);
            grpc_call_unref(s->call);
        }
        if (s->payload)
            grpc_byte_buffer_destroy(s->payload);
        grpc_metadata_array_destroy(&s->md);
        if (ok || s->phase == 1)
            arm(s);
        return;
    }
    if (!s->payload || !grpc_byte_buffer_reader_init(&r, s->payload)) {
        req = grpc_empty_slice();
    } else {
        req = grpc_byte_buffer_reader_readall(&r);
        grpc_byte_buffer_reader_destroy(&r);
    }
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message =
        answer(s, GRPC_SLICE_START_PTR(req), GRPC_SLICE_LENGTH(req));
    ops[2].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[2].data.send_status_from_server.status = GRPC_STATUS_OK;
    ops[3].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[3].data.recv_close_on_server.cancelled = &s->cancelled;
    grpc_slice_unref(req);
    s->phase = 1;
    grpc_call_start_batch(s->call, ops, 4, s, NULL);
}

static void *worker(void *arg)
{
    grpc_completion_queue *cq = arg;

    for (;;) {
        grpc_event ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type != GRPC_OP_COMPLETE)
            continue;
        if (ev.tag == &shutdown_tag)
            atomic_store(&shut_down, 1);
        else
            handle(ev.tag, ev.success);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    const char *addr = "127.0.0.1:0";
    int threads = 2, i, j, port, sig;
    grpc_completion_queue *cqs[64];
    pthread_t tids[64];
    void *m_batch, *m_code;
    grpc_server_credentials *creds;
    grpc_server *server;
    slot *slots;
    sigset_t sigs;

    for (i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--grpc"))
            addr = argv[i + 1];
        else if (!strcmp(argv[i], "--threads"))
            threads = (int)strtol(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--lookup"))
            lookup = argv[i + 1];
    }
    if (threads < 1 || threads > 64 || strncmp(addr, "127.", 4) != 0) {
        fprintf(stderr, "usage: tc-bare-server --grpc 127.0.0.1:PORT [--threads 1..64]\n");
        return 2;
    }
    codec_mac_key_init(&mac, key, sizeof(key));
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    grpc_init();
    server = grpc_server_create(NULL, NULL);
    m_batch = grpc_server_register_method(server, "/tracecode.v1.VerifierService/VerifyBatch", NULL,
                                          GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
    m_code = grpc_server_register_method(server, "/tracecode.v1.VerifierService/VerifyCode", NULL,
                                         GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
    for (i = 0; i < threads; i++) {
        cqs[i] = grpc_completion_queue_create_for_next(NULL);
        grpc_server_register_completion_queue(server, cqs[i], NULL);
    }
    creds = grpc_insecure_server_credentials_create();
    port = grpc_server_add_http2_port(server, addr, creds);
    grpc_server_credentials_release(creds);
    if (!port) {
        fprintf(stderr, "tc-bare-server: cannot listen on %s\n", addr);
        return 1;
    }
    grpc_server_start(server);
    slots = calloc((size_t)threads * SLOTS * 2, sizeof(*slots));
    for (i = 0; i < threads; i++) {
        for (j = 0; j < SLOTS * 2; j++) {
            slot *s = &slots[(size_t)i * SLOTS * 2 + (size_t)j];
            s->cq = cqs[i];
            s->server = server;
            s->batch = j < SLOTS;
            s->method = s->batch ? m_batch : m_code;
            arm(s);
        }
        pthread_create(&tids[i], NULL, worker, cqs[i]);
    }
    fprintf(stderr, "tc-bare-server: port %d, %d threads, %s\n", port, threads,
            lookup ? "lookup design (Redis GET per code)" : "one HMAC per code");
    sigwait(&sigs, &sig);
    atomic_store(&stopping, 1);
    grpc_server_shutdown_and_notify(server, cqs[0], &shutdown_tag);
    grpc_server_cancel_all_calls(server);
    while (!atomic_load(&shut_down)) {
        struct timespec nap = {0, 10000000};
        nanosleep(&nap, NULL);
    }
    grpc_server_destroy(server);
    for (i = 0; i < threads; i++)
        grpc_completion_queue_shutdown(cqs[i]);
    for (i = 0; i < threads; i++) {
        pthread_join(tids[i], NULL);
        grpc_completion_queue_destroy(cqs[i]);
    }
    free(slots);
    grpc_shutdown();
    return 0;
}
