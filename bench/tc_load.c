/*
 * tc-load - closed-loop load on tracesvc's VerifierService (loopback only).
 *
 *   tc-load --addr 127.0.0.1:PORT --codes FILE [--revoked FILE]
 *           [--mode unary|batch|stream] [--batch B] [--connections N] [--inflight M]
 *           [--threads T] [--warmup S] [--duration S]
 *           [--mix genuine=90,forged=5,malformed=3,revoked=2] [--label TEXT]
 *
 * Codes come from files made by tracectl issue (one per line); forged ones
 * are genuine codes with one symbol changed, malformed ones are cut short.
 * Prints one JSON object: calls/s, codes/s, p50/p99/p99.9 latency (from a
 * log-bucketed histogram), errors. The duration is bounded (<= 600 s) and
 * the target must be a loopback address.
 */
#include "client.h"
#include "loadgen.h"
#include "tracecode/v1/verifier.pb-c.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAYLOADS_MAX 4096
#define CODES_MAX 2000000

typedef struct codes {
    char **v;
    size_t n;
} codes;

static int load_codes(const char *path, codes *c)
{
    FILE *f = fopen(path, "r");
    char line[256];

    if (!f) {
        fprintf(stderr, "tc-load: cannot open '%s': %s\n", path, strerror(errno));
        return -1;
    }
    c->v = calloc(CODES_MAX, sizeof(char *));
    while (c->v && c->n < CODES_MAX && fgets(line, sizeof(line), f)) {
        size_t n = strcspn(line, "\r\n");
        if (!n)
            continue;
        line[n] = '\0';
        c->v[c->n] = malloc(n + 1);
        if (!c->v[c->n])
            break;
        memcpy(c->v[c->n++], line, n + 1);
    }
    fclose(f);
    if (!c->n) {
        fprintf(stderr, "tc-load: no codes in '%s'\n", path);
        return -1;
    }
    return 0;
}

static int loopback(const char *addr)
{
    return !strncmp(addr, "127.", 4) || !strncmp(addr, "localhost:", 10) ||
           !strncmp(addr, "[::1]:", 6);
}

/* The i-th code of the mix: genuine, forged, malformed or revoked. */
static char *pick(const codes *g, const codes *rv, const unsigned mix[4], size_t i, char *buf)
{
    unsigned r = (unsigned)((i * 2654435761u) % 100), acc = 0, k;
    const char *src;

    for (k = 0; k < 4; k++) {
        acc += mix[k];
        if (r < acc)
            break;
    }
    src = k == 3 && rv->n ? rv->v[i % rv->n] : g->v[i % g->n];
    memcpy(buf, src, strlen(src) + 1);
    if (k == 1) /* forged: one symbol changed, still well formed */
        buf[20] = buf[20] == 'A' ? 'B' : 'A';
    else if (k == 2) /* malformed: cut short */
        buf[10] = '\0';
    return buf;
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"addr", 1, 0, 'a'},
        {"codes", 1, 0, 'c'},
        {"revoked", 1, 0, 'r'},
        {"mode", 1, 0, 'm'},
        {"batch", 1, 0, 'b'},
        {"connections", 1, 0, 'n'},
        {"inflight", 1, 0, 'i'},
        {"threads", 1, 0, 't'},
        {"warmup", 1, 0, 'w'},
        {"duration", 1, 0, 'd'},
        {"mix", 1, 0, 'x'},
        {"label", 1, 0, 'l'},
        {0, 0, 0, 0},
    };
    const char *addr = "127.0.0.1:50051", *codes_path = NULL, *revoked_path = NULL;
    const char *mode = "unary", *label = "";
    unsigned mix[4] = {100, 0, 0, 0};
    long batch = 128;
    lg_config cfg;
    lg_payload *pl;
    lg_result *res;
    codes g = {0}, rv = {0};
    char err[256], buf[256];
    size_t np, i, k, next = 0;
    int o;

    memset(&cfg, 0, sizeof(cfg));
    cfg.connections = 4;
    cfg.inflight = 16;
    cfg.threads = 1;
    cfg.warmup_s = 1;
    cfg.duration_s = 5;
    cfg.role = "platform";
    cfg.subject = "tc-load";
    while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (o) {
        case 'a':
            addr = optarg;
            break;
        case 'c':
            codes_path = optarg;
            break;
        case 'r':
            revoked_path = optarg;
            break;
        case 'm':
            mode = optarg;
            break;
        case 'b':
            batch = strtol(optarg, NULL, 10);
            break;
        case 'n':
            cfg.connections = (int)strtol(optarg, NULL, 10);
            break;
        case 'i':
            cfg.inflight = (int)strtol(optarg, NULL, 10);
            break;
        case 't':
            cfg.threads = (int)strtol(optarg, NULL, 10);
            break;
        case 'w':
            cfg.warmup_s = strtod(optarg, NULL);
            break;
        case 'd':
            cfg.duration_s = strtod(optarg, NULL);
            break;
        case 'l':
            label = optarg;
            break;
        case 'x':
            if (sscanf(optarg, "genuine=%u,forged=%u,malformed=%u,revoked=%u", &mix[0], &mix[1],
                       &mix[2], &mix[3]) != 4 ||
                mix[0] + mix[1] + mix[2] + mix[3] != 100) {
                fprintf(stderr, "tc-load: --mix wants genuine=G,forged=F,malformed=M,revoked=R "
                                "adding up to 100\n");
                return 2;
            }
            break;
        default:
            fprintf(stderr, "usage: see the comment at the top of bench/tc_load.c\n");
            return 2;
        }
    }
    if (!loopback(addr)) {
        fprintf(stderr, "tc-load: '%s' is not a loopback address; load goes to loopback only\n",
                addr);
        return 2;
    }
    if (!codes_path || cfg.duration_s <= 0 || cfg.duration_s > 600 || cfg.warmup_s < 0 ||
        cfg.warmup_s > 60 || batch < 1 || batch > 10000 || cfg.connections < 1 ||
        cfg.connections > 256 || cfg.inflight < 1 || cfg.inflight > 1024 || cfg.threads < 1 ||
        cfg.threads > 64) {
        fprintf(stderr, "tc-load: need --codes FILE; --duration 0..600, --warmup 0..60, --batch "
                        "1..10000, --connections 1..256, --inflight 1..1024, --threads 1..64\n");
        return 2;
    }
    if (load_codes(codes_path, &g) || (revoked_path && load_codes(revoked_path, &rv)))
        return 1;
    if (mix[3] && !rv.n) {
        fprintf(stderr, "tc-load: a revoked share needs --revoked FILE\n");
        return 2;
    }
    cfg.addr = addr;
    if (!strcmp(mode, "unary") || !strcmp(mode, "stream")) {
        cfg.mode = !strcmp(mode, "unary") ? LG_UNARY : LG_STREAM;
        cfg.method = cfg.mode == LG_UNARY ? "/tracecode.v1.VerifierService/VerifyCode"
                                          : "/tracecode.v1.VerifierService/VerifyStream";
        batch = 1;
    } else if (!strcmp(mode, "batch")) {
        cfg.mode = LG_UNARY;
        cfg.method = "/tracecode.v1.VerifierService/VerifyBatch";
    } else {
        fprintf(stderr, "tc-load: --mode must be unary, batch or stream\n");
        return 2;
    }
    np = PAYLOADS_MAX;
    pl = calloc(np, sizeof(*pl));
    for (i = 0; i < np; i++) {
        Tracecode__V1__VerifyItem *items = calloc((size_t)batch, sizeof(*items));
        Tracecode__V1__VerifyItem **ptrs = calloc((size_t)batch, sizeof(*ptrs));
        char **texts = calloc((size_t)batch, sizeof(char *));
        for (k = 0; k < (size_t)batch; k++) {
            tracecode__v1__verify_item__init(&items[k]);
            texts[k] = strdup(pick(&g, &rv, mix, next++, buf));
            items[k].code = texts[k];
            ptrs[k] = &items[k];
        }
        if (!strcmp(mode, "batch")) {
            Tracecode__V1__VerifyBatchRequest q = TRACECODE__V1__VERIFY_BATCH_REQUEST__INIT;
            q.n_items = (size_t)batch;
            q.items = ptrs;
            pl[i].data = rpc_msg_encode(&q.base, &pl[i].len);
        } else {
            Tracecode__V1__VerifyCodeRequest q = TRACECODE__V1__VERIFY_CODE_REQUEST__INIT;
            q.code = items[0].code; /* VerifyStreamRequest: the same bytes */
            pl[i].data = rpc_msg_encode(&q.base, &pl[i].len);
        }
        for (k = 0; k < (size_t)batch; k++)
            free(texts[k]);
        free(texts);
        free(ptrs);
        free(items);
    }
    cfg.payloads = pl;
    cfg.npayloads = np;
    res = calloc(1, sizeof(*res));
    if (lg_run(&cfg, res, err, sizeof(err)) != 0) {
        fprintf(stderr, "tc-load: %s\n", err);
        return 1;
    }
    printf("{\"label\":\"%s\",\"mode\":\"%s\",\"batch\":%ld,\"connections\":%d,\"inflight\":%d,"
           "\"threads\":%d,\"seconds\":%.1f,\"calls\":%llu,\"calls_per_s\":%.0f,"
           "\"codes_per_s\":%.0f,\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,"
           "\"errors\":%llu,\"first_error\":\"%s\"}\n",
           label, mode, batch, cfg.connections, cfg.inflight, cfg.threads, res->seconds,
           (unsigned long long)res->calls, res->calls / res->seconds,
           res->calls * (double)batch / res->seconds, lg_quantile(res, 0.5) / 1e3,
           lg_quantile(res, 0.99) / 1e3, lg_quantile(res, 0.999) / 1e3,
           (unsigned long long)res->errors, res->first_error);
    for (i = 0; i < np; i++)
        free((void *)pl[i].data);
    free(pl);
    free(res);
    for (i = 0; i < g.n; i++)
        free(g.v[i]);
    for (i = 0; i < rv.n; i++)
        free(rv.v[i]);
    free(g.v);
    free(rv.v);
    return 0;
}
