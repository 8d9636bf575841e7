/*
 * tracesvc - the tracecode service.
 *
 *   tracesvc --redis URL --grpc ADDR:PORT --http ADDR:PORT --keys DIR
 *            [--insecure] [--tls-cert F --tls-key F --client-ca F]
 *            [--base-url URL] [--threads N] [--max-staleness SECONDS]
 *            [--notice-retention SECONDS] [--heartbeat MS] [--watch-buffer MIB]
 *            [--copy-devices N] [--copy-regions N] [--copy-window SECONDS]
 *            [--node-id NAME]
 *
 * Every flag also reads from TRACESVC_<FLAG> (upper case, '-' as '_');
 * flags win. Threads: N gRPC workers, one control thread (libevent) that
 * tails the Redis change stream into the replica, the delisting hub
 * (delist.h), and the main thread, which waits for SIGINT/SIGTERM and then
 * drains.
 */
#include "api.h"
#include "audit.h"
#include "delist.h"
#include "http.h"
#include "limit.h"
#include "rpc.h"
#include "store.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DRAIN_MS 10000
#define NODE_TTL_S 10 /* a node that has not beaten for this long is not live */

typedef struct config {
    const char *redis, *grpc, *http, *keys, *tls_cert, *tls_key, *client_ca, *client_crl;
    const char *base_url;
    const char *node_id, *limits_file, *trusted_proxy;
    long scan_ttl, http_max_conns;
    const char *limit[64]; /* --limit, in order */
    int nlimit;
    char node_buf[128];
    int insecure, threads, write_threads;
    long max_staleness, retention_s, heartbeat_ms, watch_buffer_mib;
    long copy_devices, copy_regions, copy_window;
    long forgery_percent, forgery_min, forgery_window, forgery_throttle;
    long redis_replicas, redis_replicas_wait, ready_staleness, redis_start_timeout;
} config;

static int usage(void)
{
    fputs(
        "usage: tracesvc --redis URL --grpc ADDR:PORT --http ADDR:PORT --keys DIR\n"
        "                [--insecure] [--tls-cert F --tls-key F --client-ca F [--client-crl F]]\n"
        "                [--base-url URL] [--threads N] [--write-threads N]\n"
        "                [--max-staleness SECONDS]\n"
        "                [--notice-retention SECONDS] [--heartbeat MS] [--watch-buffer MIB]\n"
        "                [--copy-devices N] [--copy-regions N] [--copy-window SECONDS]\n"
        "                [--node-id NAME] [--limits FILE] [--limit SCOPE:NAME=VALUE ...]\n"
        "                [--forgery-percent P] [--forgery-min N] [--forgery-window SECONDS]\n"
        "                [--forgery-throttle CODES_PER_S] [--trusted-proxy CIDR[,CIDR...]]\n"
        "                [--scan-ttl SECONDS] [--http-max-connections N]\n"
        "                [--redis-replicas N] [--redis-replicas-wait MS]\n"
        "                [--redis-start-timeout SECONDS] [--ready-staleness SECONDS]\n"
        "  URL: redis://[user:password@]host:port[/db], unix:/path[?db=N],\n"
        "       rediss://[user:password@]host:port[/db][?ca=FILE&cert=FILE&key=FILE&sni=NAME] or\n"
        "       redis-sentinel://[user:password@]host:port[,host:port...]/primary-name[?db=N]\n"
        "  every flag also reads TRACESVC_<FLAG>\n",
        stderr);
    return 2;
}

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return 0;
    *out = v;
    return 1;
}

static int configure(int argc, char **argv, config *c)
{
    static const struct option lo[] = {
        {"redis", required_argument, 0, 'r'},
        {"grpc", required_argument, 0, 'g'},
        {"http", required_argument, 0, 'h'},
        {"keys", required_argument, 0, 'k'},
        {"insecure", no_argument, 0, 'i'},
        {"tls-cert", required_argument, 0, 'c'},
        {"tls-key", required_argument, 0, 'K'},
        {"client-ca", required_argument, 0, 'a'},
        {"client-crl", required_argument, 0, 'L'},
        {"base-url", required_argument, 0, 'b'},
        {"threads", required_argument, 0, 't'},
        {"write-threads", required_argument, 0, 'w'},
        {"max-staleness", required_argument, 0, 's'},
        {"notice-retention", required_argument, 0, 'N'},
        {"heartbeat", required_argument, 0, 'H'},
        {"watch-buffer", required_argument, 0, 'B'},
        {"copy-devices", required_argument, 0, 'D'},
        {"copy-regions", required_argument, 0, 'R'},
        {"copy-window", required_argument, 0, 'W'},
        {"node-id", required_argument, 0, 'n'},
        {"limits", required_argument, 0, 'l'},
        {"trusted-proxy", required_argument, 0, 'X'},
        {"scan-ttl", required_argument, 0, 'S'},
        {"http-max-connections", required_argument, 0, 'C'},
        {"forgery-percent", required_argument, 0, 'P'},
        {"forgery-min", required_argument, 0, 'M'},
        {"forgery-window", required_argument, 0, 'O'},
        {"forgery-throttle", required_argument, 0, 'T'},
        {"limit", required_argument, 0, 'm'},
        {"redis-replicas", required_argument, 0, 'Q'},
        {"redis-replicas-wait", required_argument, 0, 'q'},
        {"ready-staleness", required_argument, 0, 'Y'},
        {"redis-start-timeout", required_argument, 0, 'Z'},
        {"help", no_argument, 0, '?'},
        {0, 0, 0, 0},
    };
    const char *threads = env("TRACESVC_THREADS"), *stale = env("TRACESVC_MAX_STALENESS");
    const char *wthreads = env("TRACESVC_WRITE_THREADS");
    const char *ins = env("TRACESVC_INSECURE");
    const char *keep = env("TRACESVC_NOTICE_RETENTION"), *hb = env("TRACESVC_HEARTBEAT");
    const char *wbuf = env("TRACESVC_WATCH_BUFFER");
    const char *cdev = env("TRACESVC_COPY_DEVICES"), *creg = env("TRACESVC_COPY_REGIONS");
    const char *cwin = env("TRACESVC_COPY_WINDOW");
    const char *fpct = env("TRACESVC_FORGERY_PERCENT"), *fmin = env("TRACESVC_FORGERY_MIN");
    const char *fwin = env("TRACESVC_FORGERY_WINDOW"), *fthr = env("TRACESVC_FORGERY_THROTTLE");
    const char *sttl = env("TRACESVC_SCAN_TTL"), *hmax = env("TRACESVC_HTTP_MAX_CONNECTIONS");
    const char *rrep = env("TRACESVC_REDIS_REPLICAS"), *rwait = env("TRACESVC_REDIS_REPLICAS_WAIT");
    const char *rstale = env("TRACESVC_READY_STALENESS");
    const char *rstart = env("TRACESVC_REDIS_START_TIMEOUT");
    long v;
    int o;

    memset(c, 0, sizeof(*c));
    c->redis = env("TRACESVC_REDIS");
    c->grpc = env("TRACESVC_GRPC");
    c->http = env("TRACESVC_HTTP");
    c->keys = env("TRACESVC_KEYS");
    c->tls_cert = env("TRACESVC_TLS_CERT");
    c->tls_key = env("TRACESVC_TLS_KEY");
    c->client_ca = env("TRACESVC_CLIENT_CA");
    c->client_crl = env("TRACESVC_CLIENT_CRL");
    c->base_url = env("TRACESVC_BASE_URL");
    c->node_id = env("TRACESVC_NODE_ID");
    c->limits_file = env("TRACESVC_LIMITS");
    c->trusted_proxy = env("TRACESVC_TRUSTED_PROXY");
    c->insecure = ins && strcmp(ins, "0") != 0 && strcmp(ins, "false") != 0;
    while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (o) {
        case 'r':
            c->redis = optarg;
            break;
        case 'g':
            c->grpc = optarg;
            break;
        case 'h':
            c->http = optarg;
            break;
        case 'k':
            c->keys = optarg;
            break;
        case 'i':
            c->insecure = 1;
            break;
        case 'c':
            c->tls_cert = optarg;
            break;
        case 'K':
            c->tls_key = optarg;
            break;
        case 'a':
            c->client_ca = optarg;
            break;
        case 'L':
            c->client_crl = optarg;
            break;
        case 'b':
            c->base_url = optarg;
            break;
        case 't':
            threads = optarg;
            break;
        case 'w':
            wthreads = optarg;
            break;
        case 's':
            stale = optarg;
            break;
        case 'N':
            keep = optarg;
            break;
        case 'H':
            hb = optarg;
            break;
        case 'B':
            wbuf = optarg;
            break;
        case 'D':
            cdev = optarg;
            break;
        case 'R':
            creg = optarg;
            break;
        case 'W':
            cwin = optarg;
            break;
        case 'n':
            c->node_id = optarg;
            break;
        case 'l':
            c->limits_file = optarg;
            break;
        case 'X':
            c->trusted_proxy = optarg;
            break;
        case 'S':
            sttl = optarg;
            break;
        case 'C':
            hmax = optarg;
            break;
        case 'P':
            fpct = optarg;
            break;
        case 'M':
            fmin = optarg;
            break;
        case 'O':
            fwin = optarg;
            break;
        case 'T':
            fthr = optarg;
            break;
        case 'Q':
            rrep = optarg;
            break;
        case 'q':
            rwait = optarg;
            break;
        case 'Y':
            rstale = optarg;
            break;
        case 'Z':
            rstart = optarg;
            break;
        case 'm':
            if (c->nlimit == (int)(sizeof(c->limit) / sizeof(c->limit[0]))) {
                fprintf(stderr, "tracesvc: at most 64 --limit flags; use --limits FILE\n");
                return 2;
            }
            c->limit[c->nlimit++] = optarg;
            break;
        default:
            return usage();
        }
    }
    if (optind < argc || !c->redis || !c->grpc || !c->keys) {
        fputs("tracesvc: --redis, --grpc and --keys are required\n", stderr);
        return usage();
    }
    c->threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (c->threads < 1)
        c->threads = 1;
    if (threads) {
        if (!parse_long(threads, 1, 64, &v)) {
            fprintf(stderr, "tracesvc: --threads '%s' must be 1..64\n", threads);
            return 2;
        }
        c->threads = (int)v;
    }
    c->write_threads = 4; /* they mostly wait on Redis */
    if (wthreads) {
        if (!parse_long(wthreads, 1, 64, &v)) {
            fprintf(stderr, "tracesvc: --write-threads '%s' must be 1..64\n", wthreads);
            return 2;
        }
        c->write_threads = (int)v;
    }
    if (c->insecure && !rpc_addr_is_loopback(c->grpc)) {
        fprintf(stderr,
                "tracesvc: --insecure serves plaintext and binds loopback only; '%s' is not "
                "loopback (use 127.0.0.1:PORT, or TLS)\n",
                c->grpc);
        return 2;
    }
    c->max_staleness = 5;
    if (stale && !parse_long(stale, 1, 86400, &c->max_staleness)) {
        fprintf(stderr, "tracesvc: --max-staleness '%s' must be 1..86400 seconds\n", stale);
        return 2;
    }
    c->retention_s = 7 * 86400;
    if (keep && !parse_long(keep, 60, 3650L * 86400, &c->retention_s)) {
        fprintf(stderr, "tracesvc: --notice-retention '%s' must be 60..315360000 seconds\n", keep);
        return 2;
    }
    c->heartbeat_ms = DELIST_HEARTBEAT_MS;
    if (hb && !parse_long(hb, 50, 600000, &c->heartbeat_ms)) {
        fprintf(stderr, "tracesvc: --heartbeat '%s' must be 50..600000 ms\n", hb);
        return 2;
    }
    c->watch_buffer_mib = (long)(DELIST_BUFFER_BYTES >> 20);
    if (wbuf && !parse_long(wbuf, 1, 4096, &c->watch_buffer_mib)) {
        fprintf(stderr, "tracesvc: --watch-buffer '%s' must be 1..4096 MiB\n", wbuf);
        return 2;
    }
    if (!c->node_id) { /* host:port, the same across restarts */
        char host[64] = "node";
        const char *port = c->grpc ? strrchr(c->grpc, ':') : NULL;
        gethostname(host, sizeof(host) - 1);
        host[sizeof(host) - 1] = '\0';
        if (port && strcmp(port, ":0") != 0)
            snprintf(c->node_buf, sizeof(c->node_buf), "%s%s", host, port);
        else /* a port picked at start names nothing: the process does */
            snprintf(c->node_buf, sizeof(c->node_buf), "%s-%ld", host, (long)getpid());
        c->node_id = c->node_buf;
    }
    if (!*c->node_id || strlen(c->node_id) > 64 || strpbrk(c->node_id, " \t\r\n")) {
        fprintf(stderr, "tracesvc: --node-id must be 1..64 characters without spaces\n");
        return 2;
    }
    c->copy_devices = 10;
    c->copy_regions = 3;
    c->copy_window = 7200;
    if ((cdev && !parse_long(cdev, 1, 1000000, &c->copy_devices)) ||
        (creg && !parse_long(creg, 1, 64, &c->copy_regions)) ||
        (cwin && !parse_long(cwin, 0, 30L * 86400, &c->copy_window))) {
        fprintf(stderr, "tracesvc: --copy-devices 1..1000000, --copy-regions 1..64, "
                        "--copy-window 0..2592000 seconds\n");
        return 2;
    }
    c->scan_ttl = 90L * 86400;
    if (sttl && !parse_long(sttl, 60, 3650L * 86400, &c->scan_ttl)) {
        fprintf(stderr, "tracesvc: --scan-ttl '%s' must be 60 .. 315360000 seconds\n", sttl);
        return 2;
    }
    c->http_max_conns = 1024;
    if (hmax && !parse_long(hmax, 1, 1000000, &c->http_max_conns)) {
        fprintf(stderr, "tracesvc: --http-max-connections '%s' must be 1..1000000\n", hmax);
        return 2;
    }
    c->forgery_percent = 50;
    c->forgery_min = 1000;
    c->forgery_window = 60;
    c->forgery_throttle = 0;
    if ((fpct && !parse_long(fpct, 0, 100, &c->forgery_percent)) ||
        (fmin && !parse_long(fmin, 1, 1000000000, &c->forgery_min)) ||
        (fwin && !parse_long(fwin, 1, 600, &c->forgery_window)) ||
        (fthr && !parse_long(fthr, 0, 1000000000, &c->forgery_throttle))) {
        fprintf(stderr, "tracesvc: --forgery-percent 0..100 (0: off), --forgery-min 1.., "
                        "--forgery-window 1..600 seconds, --forgery-throttle codes/s (0: none)\n");
        return 2;
    }
    c->redis_replicas = 0;
    c->redis_replicas_wait = 2000;
    c->ready_staleness = 600;
    c->redis_start_timeout = 0;
    if ((rrep && !parse_long(rrep, 0, 16, &c->redis_replicas)) ||
        (rwait && !parse_long(rwait, 10, 60000, &c->redis_replicas_wait)) ||
        (rstale && !parse_long(rstale, 1, 7L * 86400, &c->ready_staleness)) ||
        (rstart && !parse_long(rstart, 0, 7L * 86400, &c->redis_start_timeout))) {
        fprintf(stderr, "tracesvc: --redis-replicas 0..16, --redis-replicas-wait 10..60000 ms, "
                        "--ready-staleness 1..604800 seconds, --redis-start-timeout 0..604800 "
                        "seconds (0: wait as long as it takes)\n");
        return 2;
    }
    if (c->ready_staleness < c->max_staleness) {
        fprintf(stderr,
                "tracesvc: --ready-staleness (%ld s) must not be below --max-staleness "
                "(%ld s): answers are flagged stale before the node stops being ready\n",
                c->ready_staleness, c->max_staleness);
        return 2;
    }
    if (!c->base_url)
        c->base_url = "https://tc.example.com";
    return 0;
}

/*
 * Open the store; while Redis (or every Sentinel) cannot be reached, try
 * again with backoff (0.1 s doubling to 5 s) until --redis-start-timeout
 * (0: as long as it takes) or a signal to stop. A URL it cannot use or
 * credentials Redis refuses end the start at once: waiting does not mend
 * them. 0 with *st, or -1.
 */
static int open_store(const config *cfg, const sigset_t *sigs, store **st)
{
    char err[512], last[512] = "";
    long delay_ms = 100;
    time_t until = cfg->redis_start_timeout ? time(NULL) + cfg->redis_start_timeout : 0;
    store_err e;

    for (;;) {
        e = store_open(cfg->redis, st, err, sizeof(err));
        if (e == STORE_OK)
            break;
        if (e != STORE_ERR_UNAVAILABLE || (until && time(NULL) >= until)) {
            fprintf(stderr, "tracesvc: %s\n", err);
            return -1;
        }
        if (strcmp(err, last) != 0)
            fprintf(stderr, "tracesvc: waiting for redis: %s (trying again, up to every 5 s)\n",
                    err);
        snprintf(last, sizeof(last), "%s", err);
        struct timespec nap = {delay_ms / 1000, (delay_ms % 1000) * 1000000L};
        int sig = sigtimedwait(sigs, NULL, &nap);
        if (sig == SIGTERM || sig == SIGINT) {
            fprintf(stderr, "tracesvc: stopped while waiting for redis\n");
            return -1;
        }
        delay_ms = delay_ms * 2 > 5000 ? 5000 : delay_ms * 2;
    }
    if (last[0]) {
        char at[300];
        store_primary(*st, at, sizeof(at));
        fprintf(stderr, "tracesvc: redis answers at %s\n", at);
    }
    return 0;
}

static void *control_main(void *arg)
{
    event_base_loop(arg, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

typedef struct metrics_src {
    rpc_server *srv;
    svc *node;
} metrics_src;

/* /metrics: the RPC layer's counters, then the node's. */
static size_t metrics(void *arg, char *buf, size_t cap)
{
    metrics_src *m = arg;
    size_t n = rpc_metrics(m->srv, buf, cap);

    return n + svc_metrics(m->node, n < cap ? buf + n : NULL, n < cap ? cap - n : 0);
}

static int redis_up(void *arg)
{
    return store_tail_connected(arg);
}

static int64_t lag(void *arg)
{
    return store_tail_lag_ms(arg);
}

/* Every connection, file and Redis socket is a descriptor: take all the
 * hard limit allows (as Go's runtime does), so a busy node does not run
 * out at a soft default of 1024. */
static void raise_fd_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rlim_t was = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
            fprintf(stderr, "tracesvc: descriptors: limit raised from %llu to %llu\n",
                    (unsigned long long)was, (unsigned long long)rl.rlim_cur);
    }
}

/* A node whose keyring lacks a key the deployment issues under would call
 * new codes FORGED: it stays out of readiness until it holds the key (its
 * keyring is reloaded on SIGHUP and when the directory changes). */
static void check_keys(svc *node)
{
    const keys_ring *ring = svc_ring(node);
    unsigned lacks = 0, kid;
    int kind;

    for (kind = REP_KEY_MAC; kind <= REP_KEY_ED25519 && !lacks; kind++) {
        kid = rep_key_issuing(node->replica, kind);
        if (kid && !keys_mac(ring, kid) && !keys_ed25519_public(ring, kid))
            lacks = kid;
    }
    if (lacks != atomic_load(&node->lacks_key)) {
        if (lacks)
            fprintf(stderr,
                    "tracesvc: not ready: the deployment issues under key %u, which keyring %s "
                    "lacks: copy key-%03u to it and send SIGHUP\n",
                    lacks, node->keys_dir, lacks);
        else
            fprintf(stderr, "tracesvc: the keyring holds every key the deployment issues under\n");
    }
    atomic_store(&node->lacks_key, lacks);
}

/* Once a second: can the node verify, can it write? Log changes and tell
 * the health watchers. */
static void check_ready(svc *node, int *could_verify, int *could_write)
{
    char why[160];
    int v, w;

    why[0] = '\0';
    check_keys(node);
    w = store_writable(node->store, why, sizeof(why));
    pthread_mutex_lock(&node->why_mu);
    snprintf(node->why_not_writable, sizeof(node->why_not_writable), "%s", w ? "" : why);
    pthread_mutex_unlock(&node->why_mu);
    atomic_store(&node->writable, w);
    v = svc_can_verify(node);
    if (w != *could_write)
        fprintf(stderr, "tracesvc: writes %s%s%s\n",
                w ? "possible again" : "not possible: ", w ? "" : why, "");
    if (v != *could_verify)
        fprintf(stderr, "tracesvc: %s\n",
                v ? "verifying again: the replica is fresh"
                  : "not ready: the replica has not heard from redis within --ready-staleness");
    if (w != *could_write || v != *could_verify)
        rpc_health_changed();
    *could_write = w;
    *could_verify = v;
}

/* The keyring again on SIGHUP or when its directory changes (a key file
 * added, demoted or retired); and every 3 s tell Redis this node is live
 * and which keys it holds (ActivateKey asks). */
static void keys_tick(svc *node, int hup, struct timespec *seen, unsigned ticks)
{
    struct stat sb;
    char err[512], ids[1024];
    int changed = stat(node->keys_dir, &sb) == 0 &&
                  (sb.st_mtim.tv_sec != seen->tv_sec || sb.st_mtim.tv_nsec != seen->tv_nsec);

    if (changed)
        *seen = sb.st_mtim;
    if (hup || changed) {
        if (svc_keys_reload(node, hup ? "SIGHUP" : "its directory changed", err, sizeof(err)))
            fprintf(stderr, "tracesvc: keyring %s not reloaded, the keys in force stay: %s\n",
                    node->keys_dir, err);
        else if (audit_note_keys(node, node->node_id, err, sizeof(err)) != STORE_OK)
            fprintf(stderr, "tracesvc: audit: cannot record the node's keys: %s\n", err);
    }
    svc_keys_reap(node, 0);
    if (hup || changed || !node->beating || ticks % 3 == 0) {
        svc_key_ids(svc_ring(node), ids, sizeof(ids));
        int ok = store_node_beat(node->store, node->node_id, ids, NODE_TTL_S, err, sizeof(err)) ==
                 STORE_OK;
        if (ok != node->beating) /* log changes, not every tick */
            fprintf(stderr, "tracesvc: %s\n",
                    ok ? "live in redis again (keys and node id, for ActivateKey)" : err);
        node->beating = ok;
    }
}

/* Wait for SIGTERM or SIGINT; meanwhile put --client-crl in force again on
 * SIGHUP or when the file changes (looked at once a second), and every 3 s
 * see whether the gRPC listener still accepts (for /healthz). */
static int wait_for_stop(const sigset_t *sigs, rpc_server *srv, svc *node, const char *crl)
{
    struct timespec tick = {1, 0}, seen = {0, 0}, keys_seen = {0, 0};
    struct stat sb;
    char err[512];
    unsigned ticks = 0;
    size_t n;
    int sig;

    if (crl && stat(crl, &sb) == 0)
        seen = sb.st_mtim;
    if (stat(node->keys_dir, &sb) == 0)
        keys_seen = sb.st_mtim;
    keys_tick(node, 0, &keys_seen, 0); /* live from the start */
    int could_verify = svc_can_verify(node), could_write = atomic_load(&node->writable);

    for (;;) {
        sig = sigtimedwait(sigs, NULL, &tick);
        if (sig == SIGTERM || sig == SIGINT) {
            atomic_store(&node->draining, 1); /* readiness off first */
            rpc_health_changed();
            return sig;
        }
        check_ready(node, &could_verify, &could_write);
        keys_tick(node, sig == SIGHUP, &keys_seen, ticks + 1);
        if (++ticks % 3 == 0) {
            int deaf = !rpc_probe(srv, 1000);
            if (deaf != atomic_load(&node->grpc_deaf))
                fprintf(stderr, "tracesvc: the gRPC listener %s\n",
                        deaf ? "does not accept connections (out of descriptors?); /healthz "
                               "says so"
                             : "accepts connections again");
            atomic_store(&node->grpc_deaf, deaf);
        }
        if (!crl)
            continue;
        if (sig != SIGHUP && (stat(crl, &sb) != 0 || (sb.st_mtim.tv_sec == seen.tv_sec &&
                                                      sb.st_mtim.tv_nsec == seen.tv_nsec)))
            continue;
        if (stat(crl, &sb) == 0)
            seen = sb.st_mtim;
        if (rpc_reload_crl(srv, &n, err, sizeof(err)) == 0)
            fprintf(stderr, "tracesvc: client CRL %s in force: %zu certificates revoked\n", crl, n);
        else
            fprintf(stderr, "tracesvc: client CRL %s not reloaded, the previous list stays: %s\n",
                    crl, err);
    }
}

/* --- the node's parts, as data ------------------------------------------------- */

static int hub_start(svc *s, const void *cfgv, char *err, size_t cap)
{
    const config *cfg = cfgv;
    delist_config dc = {cfg->heartbeat_ms, (size_t)cfg->watch_buffer_mib << 20};

    s->hub = delist_hub_start(s, &dc, err, cap);
    return s->hub ? 0 : -1;
}

static void hub_drain(svc *s)
{
    delist_hub_stop(s->hub); /* watchers never end by themselves */
}

static void hub_stop(svc *s)
{
    delist_hub_free(s->hub);
    s->hub = NULL;
}

static int limits_start(svc *s, const void *cfgv, char *err, size_t cap)
{
    const config *cfg = cfgv;
    char why[400];

    s->limits = limits_new(rpc_share_slots(cfg->threads));
    if (!s->limits) {
        snprintf(err, cap, "out of memory");
        return -1;
    }
    if (cfg->limits_file && limits_load(s->limits, cfg->limits_file, err, cap) != 0)
        goto fail;
    for (int i = 0; i < cfg->nlimit; i++)
        if (limits_set(s->limits, cfg->limit[i], why, sizeof(why)) != 0) {
            snprintf(err, cap, "--limit: %s", why);
            goto fail;
        }
    return 0;
fail: /* a part that does not start leaves nothing behind */
    limits_free(s->limits);
    s->limits = NULL;
    return -1;
}

static void limits_stop(svc *s)
{
    limits_free(s->limits);
    s->limits = NULL;
}

static int audit_begin(svc *s, const void *cfgv, char *err, size_t cap)
{
    const config *cfg = cfgv;

    if (audit_note_keys(s, cfg->node_id, err, cap) != STORE_OK)
        fprintf(stderr, "tracesvc: audit: cannot record the node's keys: %s\n", err);
    s->audit = audit_start(s, cfg->node_id, err, cap);
    return s->audit ? 0 : -1;
}

static void audit_end(svc *s)
{
    audit_stop(s->audit); /* after the server: the last minute's counts */
    s->audit = NULL;
}

/* Started in this order, stopped in the reverse; drained (in the reverse)
 * before the RPC server drains. */
static const svc_module modules[] = {
    {"the delisting hub", hub_start, hub_drain, hub_stop, NULL},
    {"the limits", limits_start, NULL, limits_stop, limits_metrics},
    {"the audit log", audit_begin, NULL, audit_end, audit_metrics},
};
#define NMODULES (sizeof(modules) / sizeof(modules[0]))

int main(int argc, char **argv)
{
    char err[512], stream_id[64];
    sigset_t sigs;
    config cfg;
    keys_ring *ring = NULL;
    store *st = NULL;
    rep *replica = NULL;
    struct event_base *base = NULL;
    store_tail *tail = NULL;
    rpc_server *srv = NULL;
    http_server *web = NULL;
    metrics_src mx;
    size_t started = 0;
    pthread_t control;
    rpc_config rc;
    uint64_t rev;
    svc node;
    int rc_exit = 1, sig;

    memset(&node, 0, sizeof(node));
    /* Before any thread exists (gRPC starts its own): signals come to
     * sigwait below; a Redis that goes away must not kill us (SIGPIPE). */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    if ((rc_exit = configure(argc, argv, &cfg)) != 0)
        return rc_exit;
    raise_fd_limit();
    rc_exit = 1;
    if (keys_open(cfg.keys, &ring, err, sizeof(err)) != KEYS_OK) {
        fprintf(stderr, "tracesvc: %s\n", err);
        return 1;
    }
    if (open_store(&cfg, &sigs, &st) != 0)
        goto out;
    store_set_notice_retention(st, cfg.retention_s * 1000);
    store_set_replicas(st, (int)cfg.redis_replicas, (int)cfg.redis_replicas_wait);
    replica = rep_new();
    if (!replica)
        goto out;
    if (store_snapshot(st, replica, stream_id, sizeof(stream_id), &rev, err, sizeof(err))) {
        fprintf(stderr, "tracesvc: cannot load the registry: %s\n", err);
        goto out;
    }
    evthread_use_pthreads();
    base = event_base_new();
    tail = base ? store_tail_new(st, replica, base, stream_id, rev) : NULL;
    if (!tail) {
        fprintf(stderr, "tracesvc: cannot start following the change stream\n");
        goto out;
    }
    pthread_create(&control, NULL, control_main, base);

    node.replica = replica;
    atomic_init(&node.ring, ring);
    ring = NULL; /* the node's now: freed with svc_keys_reap and at exit */
    node.keys_dir = cfg.keys;
    node.node_id = cfg.node_id;
    pthread_mutex_init(&node.keys_mu, NULL);
    node.store = st;
    node.beating = 1;
    node.base_url = cfg.base_url;
    node.max_staleness_ms = cfg.max_staleness * 1000;
    node.ready_staleness_ms = cfg.ready_staleness * 1000;
    pthread_mutex_init(&node.why_mu, NULL);
    node.replica_lag_ms = lag;
    node.replica_lag_arg = tail;
    node.redis_up = redis_up;
    node.copy_devices = (uint32_t)cfg.copy_devices;
    node.copy_regions = (uint32_t)cfg.copy_regions;
    node.copy_window_s = cfg.copy_window;
    node.scan_ttl_s = cfg.scan_ttl;
    node.forgery_percent = (uint32_t)cfg.forgery_percent;
    node.forgery_min = (uint32_t)cfg.forgery_min;
    node.forgery_window_s = (uint32_t)cfg.forgery_window;
    node.forgery_throttle = (double)cfg.forgery_throttle;
    node.modules = modules;
    for (started = 0; started < NMODULES; started++)
        if (modules[started].start(&node, &cfg, err, sizeof(err)) != 0) {
            fprintf(stderr, "tracesvc: cannot start %s: %s\n", modules[started].name, err);
            goto stop_modules;
        }
    node.nmodules = started;

    {
        int v = -1, w = -1;
        check_ready(&node, &v, &w); /* readiness is right from the first call */
    }
    memset(&rc, 0, sizeof(rc));
    rc.addr = cfg.grpc;
    rc.insecure = cfg.insecure;
    rc.tls_cert = cfg.tls_cert;
    rc.tls_key = cfg.tls_key;
    rc.client_ca = cfg.client_ca;
    rc.client_crl = cfg.client_crl;
    rc.threads = cfg.threads;
    rc.write_threads = cfg.write_threads;
    rc.max_message = 4 << 20;
    rc.call_memory = 256 << 20;
    /* An experiment switch for bench/: one completion queue for all workers. */
    rc.shared_cq = env("TRACESVC_SHARED_CQ") != NULL;
    srv = rpc_start(&rc, &node, err, sizeof(err));
    if (!srv) {
        fprintf(stderr, "tracesvc: %s\n", err);
    } else {
        fprintf(stderr,
                "tracesvc: serving gRPC on %s port %d (%s), %d worker threads (+%d for "
                "writes), registry at revision %llu with %zu batches\n",
                cfg.grpc, rpc_port(srv), cfg.insecure ? "insecure, loopback only" : "mTLS",
                cfg.threads, cfg.write_threads, (unsigned long long)rev,
                rep_count_batches(replica));
        if (cfg.http) {
            mx.srv = srv;
            mx.node = &node;
            web = http_start(cfg.http, &node, cfg.trusted_proxy, (int)cfg.http_max_conns, metrics,
                             &mx, err, sizeof(err));
            if (!web)
                fprintf(stderr, "tracesvc: %s\n", err);
            else
                fprintf(stderr, "tracesvc: serving HTTP on %s http-port %d (scan pages, health)\n",
                        cfg.http, http_port(web));
        }
        if (!cfg.http || web) {
            sig = wait_for_stop(&sigs, srv, &node, cfg.client_crl);
            fprintf(stderr, "tracesvc: %s: draining (up to %d ms)\n",
                    sig == SIGTERM ? "SIGTERM" : "SIGINT", DRAIN_MS);
        }
        http_stop(web);
        for (size_t m = NMODULES; m-- > 0;)
            if (modules[m].drain)
                modules[m].drain(&node);
        rpc_stop(srv, DRAIN_MS);
        rc_exit = (cfg.http && !web) ? 1 : 0;
    }
stop_modules:
    node.nmodules = 0;
    while (started-- > 0)
        modules[started].stop(&node);
    event_base_loopexit(base, NULL);
    pthread_join(control, NULL);
out:
    store_tail_free(tail);
    if (base)
        event_base_free(base);
    store_free(st);
    if (replica) {
        rep_reclaim(replica);
        rep_free(replica);
    }
    keys_free(ring);
    if (node.keys_dir) {
        svc_keys_reap(&node, 1);
        keys_free(atomic_load(&node.ring));
    }
    if (rc_exit == 0)
        fprintf(stderr, "tracesvc: stopped\n");
    return rc_exit;
}
