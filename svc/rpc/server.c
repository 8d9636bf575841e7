/*
 * server.c - tracesvc's gRPC server on the core C API (Debian gRPC 1.51):
 * start (methods registered, completion queues, slots armed, worker
 * threads), the listener's probe, CRL reloads, stop with a grace period,
 * and the call metrics. A call's life is in call.c, who calls in
 * caller.c.
 */
#include "server_int.h"
#include "log.h"
#include "wire.h"

#include <grpc/grpc_security.h>
#include <grpc/support/log.h>
#include <grpc/support/time.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

const int64_t rpc_bucket_us[BOUNDS] = {100,     250,     500,     1000,    2500,   5000,
                                       10000,   25000,   50000,   100000,  250000, 500000,
                                       1000000, 2500000, 5000000, 10000000};

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

/* gRPC core's own lines (a failed accept4, a bad peer) into our log, as
 * logfmt like every other line: "grpc: <message> (<file>:<line>)". */
static void grpc_log_line(gpr_log_func_args *a)
{
    const char *file = a->file ? strrchr(a->file, '/') : NULL;

    tclog(a->severity == GPR_LOG_SEVERITY_ERROR  ? TCLOG_ERROR
          : a->severity == GPR_LOG_SEVERITY_INFO ? TCLOG_INFO
                                                 : TCLOG_DEBUG,
          "grpc: %s (%s:%d)", a->message ? a->message : "", file ? file + 1 : "?", a->line);
}

rpc_server *rpc_start(const rpc_config *cfg, svc *sv, char *err, size_t errcap)
{
    grpc_arg args[2];
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
    gpr_set_log_function(grpc_log_line);
    grpc_init();
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[0].value.integer = (int)cfg->max_message;
    /* A second tracesvc on the same port must fail to start, not share the
     * port's connections with this one (gRPC sets SO_REUSEPORT otherwise). */
    args[1].type = GRPC_ARG_INTEGER;
    args[1].key = (char *)GRPC_ARG_ALLOW_REUSEPORT;
    args[1].value.integer = 0;
    chargs.num_args = 2;
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
                rpc_slot_init(&w->slots[k++], w, &rpc_methods[i], r->handles[i], cfg->call_memory);
        for (j = 0; j < generic; j++)
            rpc_slot_init(&w->slots[k++], w, NULL, NULL, cfg->call_memory);
        for (k = 0; k < w->nslots; k++)
            rpc_slot_arm(&w->slots[k]);
        pthread_create(&w->thread, NULL, rpc_worker_main, w);
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

void rpc_drain(rpc_server *r, int grace_ms)
{
    int64_t until = svc_now_ms() + grace_ms;
    struct timespec nap = {0, 10 * 1000000};

    if (!r || atomic_exchange(&r->stopping, 1))
        return; /* drained already */
    grpc_server_shutdown_and_notify(r->server, r->workers[0].cq, &r->shutdown_tag);
    while (!atomic_load(&r->shutdown_done) && svc_now_ms() < until)
        nanosleep(&nap, NULL);
    if (!atomic_load(&r->shutdown_done)) {
        grpc_server_cancel_all_calls(r->server);
        while (!atomic_load(&r->shutdown_done))
            nanosleep(&nap, NULL);
    }
}

void rpc_stop(rpc_server *r, int grace_ms)
{
    int t;
    size_t k;

    if (!r)
        return;
    rpc_drain(r, grace_ms);
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

/* Method m's latency histogram as name_bucket{labels,le=...}, _sum, _count. */
static size_t histogram(const rpc_server *r, size_t m, const char *name, const char *labels_,
                        char *buf, size_t cap, size_t n)
{
    uint64_t cum = 0;
    char le[24];

    for (size_t b = 0; b < BUCKETS; b++) {
        cum += sum(r, &r->workers[0].stats->lat[m][b]);
        if (b < BUCKETS - 1)
            snprintf(le, sizeof(le), "%g", (double)rpc_bucket_us[b] / 1e6);
        else
            snprintf(le, sizeof(le), "+Inf");
        n = svc_appendf(buf, cap, n, "%s_bucket{%s,le=\"%s\"} %llu\n", name, labels_, le,
                        (unsigned long long)cum);
    }
    n = svc_appendf(buf, cap, n, "%s_sum{%s} %.6f\n", name, labels_,
                    (double)sum(r, &r->workers[0].stats->lat_sum_us[m]) / 1e6);
    return svc_appendf(buf, cap, n, "%s_count{%s} %llu\n", name, labels_, (unsigned long long)cum);
}

/* gRPC's status names as grpc-go spells them (codes.Code.String()), which
 * the go-grpc-prometheus dashboards and alerts expect. */
static const char *const go_code[CODES] = {
    "OK",       "Canceled",       "Unknown",          "InvalidArgument",   "DeadlineExceeded",
    "NotFound", "AlreadyExists",  "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
    "Aborted",  "OutOfRange",     "Unimplemented",    "Internal",          "Unavailable",
    "DataLoss", "Unauthenticated"};

static const char *grpc_type(rpc_kind k)
{
    switch (k) {
    case RPC_UNARY:
        return "unary";
    case RPC_SERVER_STREAM:
        return "server_stream";
    case RPC_CLIENT_STREAM:
        return "client_stream";
    case RPC_BIDI:
        break;
    }
    return "bidi_stream";
}

/* The labels of method m: grpc_type, grpc_service and grpc_method. */
static size_t labels(const rpc_method *m, char *out, size_t cap)
{
    const char *path = m->path + 1, *slash = strchr(path, '/');
    int svc_len = slash ? (int)(slash - path) : (int)strlen(path);
    int k = snprintf(out, cap, "grpc_type=\"%s\",grpc_service=\"%.*s\",grpc_method=\"%s\"",
                     grpc_type(m->kind), svc_len, path, slash ? slash + 1 : "");

    return k < 0 ? 0 : (size_t)k;
}

/* The same calls under the names the gRPC ecosystem's dashboards use
 * (grpc_server_started_total, _handled_total, _handling_seconds), and the
 * streams open now (started less ended) by method. */
static size_t ecosystem_metrics(const rpc_server *r, char *buf, size_t cap, size_t n)
{
    char l[256];
    size_t m, c;

#define OUT(...) (n = svc_appendf(buf, cap, n, __VA_ARGS__))
    OUT("# HELP grpc_server_started_total Total number of RPCs started on the server.\n"
        "# TYPE grpc_server_started_total counter\n");
    for (m = 0; m < rpc_nmethods && m < METHODS_MAX; m++) {
        labels(&rpc_methods[m], l, sizeof(l));
        OUT("grpc_server_started_total{%s} %llu\n", l,
            (unsigned long long)sum(r, &r->workers[0].stats->started[m]));
    }
    OUT("# HELP grpc_server_handled_total Total number of RPCs completed on the server, "
        "regardless of success or failure.\n# TYPE grpc_server_handled_total counter\n");
    for (m = 0; m < rpc_nmethods && m < METHODS_MAX; m++) {
        labels(&rpc_methods[m], l, sizeof(l));
        for (c = 0; c < CODES; c++) {
            uint64_t v = sum(r, &r->workers[0].stats->calls[m][c]);
            if (v || c == 0)
                OUT("grpc_server_handled_total{%s,grpc_code=\"%s\"} %llu\n", l, go_code[c],
                    (unsigned long long)v);
        }
    }
    OUT("# HELP grpc_server_handling_seconds Histogram of response latency (seconds) of gRPC "
        "that had been application-level handled by the server.\n"
        "# TYPE grpc_server_handling_seconds histogram\n");
    for (m = 0; m < rpc_nmethods && m < METHODS_MAX; m++) {
        labels(&rpc_methods[m], l, sizeof(l));
        n = histogram(r, m, "grpc_server_handling_seconds", l, buf, cap, n);
    }
    OUT("# HELP tracesvc_rpc_open_streams Streaming calls open now (delisting watches, "
        "issuance, imports, verify streams), by method.\n"
        "# TYPE tracesvc_rpc_open_streams gauge\n");
    for (m = 0; m < rpc_nmethods && m < METHODS_MAX; m++) {
        uint64_t started = sum(r, &r->workers[0].stats->started[m]), ended = 0;
        if (rpc_methods[m].kind == RPC_UNARY)
            continue;
        for (c = 0; c < CODES; c++)
            ended += sum(r, &r->workers[0].stats->calls[m][c]);
        OUT("tracesvc_rpc_open_streams{method=\"%s\"} %llu\n", rpc_methods[m].path + 1,
            (unsigned long long)(started > ended ? started - ended : 0));
    }
#undef OUT
    return n;
}

size_t rpc_metrics(const rpc_server *r, char *buf, size_t cap)
{
    size_t n = 0, m, c;

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
        char l[192];
        if (!sum(r, &r->workers[0].stats->lat_sum_us[m]) &&
            !sum(r, &r->workers[0].stats->lat[m][0]) &&
            !sum(r, &r->workers[0].stats->lat[m][BUCKETS - 1]))
            continue;
        snprintf(l, sizeof(l), "method=\"%s\"", rpc_methods[m].path + 1);
        n = histogram(r, m, "tracesvc_rpc_latency_seconds", l, buf, cap, n);
    }
    n = ecosystem_metrics(r, buf, cap, n);
#undef OUT
    return n;
}
