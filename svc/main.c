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
#include "log.h"
#include "config.h"
#include "commit_gen.h"
#include "audit.h"
#include "delist.h"
#include "http.h"
#include "limit.h"
#include "rpc.h"
#include "store.h"

#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DRAIN_MS 10000
#define NODE_TTL_S 10 /* a node that has not beaten for this long is not live */

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
            tclog(TCLOG_ERROR, "%s", err);
            return -1;
        }
        if (strcmp(err, last) != 0)
            tclog(TCLOG_INFO, "waiting for redis: %s (trying again, up to every 5 s)", err);
        snprintf(last, sizeof(last), "%s", err);
        struct timespec nap = {delay_ms / 1000, (delay_ms % 1000) * 1000000L};
        int sig = sigtimedwait(sigs, NULL, &nap);
        if (sig == SIGTERM || sig == SIGINT) {
            tclog(TCLOG_INFO, "stopped while waiting for redis");
            return -1;
        }
        delay_ms = delay_ms * 2 > 5000 ? 5000 : delay_ms * 2;
    }
    if (last[0]) {
        char at[300];
        store_primary(*st, at, sizeof(at));
        tclog(TCLOG_INFO, "redis answers at %s", at);
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
    /* The public listener (or NULL) and the admin one: set by the main
     * thread while the admin listener may already serve /metrics. */
    _Atomic(http_server *) http[2];
} metrics_src;

/* /metrics: the RPC layer's counters, the HTTP listeners', the node's. */
static size_t metrics(void *arg, char *buf, size_t cap)
{
    metrics_src *m = arg;
    size_t n = rpc_metrics(m->srv, buf, cap);

    http_server *hs[2] = {atomic_load(&m->http[0]), atomic_load(&m->http[1])};

    n = http_metrics(hs, 2, buf, cap, n);
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
            tclog(TCLOG_INFO, "descriptors: limit raised from %llu to %llu",
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
            tclog(TCLOG_WARN,
                  "not ready: the deployment issues under key %u, which keyring %s "
                  "lacks: copy key-%03u to it and send SIGHUP",
                  lacks, node->keys_dir, lacks);
        else
            tclog(TCLOG_INFO, "the keyring holds every key the deployment issues under");
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
        tclog(TCLOG_INFO, "writes %s%s%s", w ? "possible again" : "not possible: ", w ? "" : why,
              "");
    if (v != *could_verify)
        tclog(v ? TCLOG_INFO : TCLOG_WARN, "%s",
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
            tclog(TCLOG_WARN, "keyring %s not reloaded, the keys in force stay: %s", node->keys_dir,
                  err);
        else if (audit_note_keys(node, node->node_id, err, sizeof(err)) != STORE_OK)
            tclog(TCLOG_WARN, "audit: cannot record the node's keys: %s", err);
    }
    svc_keys_reap(node, 0);
    if (hup || changed || !node->beating || ticks % 3 == 0) {
        svc_key_ids(svc_ring(node), ids, sizeof(ids));
        int ok = store_node_beat(node->store, node->node_id, ids, NODE_TTL_S, err, sizeof(err)) ==
                 STORE_OK;
        if (ok != node->beating) /* log changes, not every tick */
            tclog(ok ? TCLOG_INFO : TCLOG_WARN, "%s",
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
                tclog(TCLOG_INFO, "the gRPC listener %s",
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
            tclog(TCLOG_INFO, "client CRL %s in force: %zu certificates revoked", crl, n);
        else
            tclog(TCLOG_WARN, "client CRL %s not reloaded, the previous list stays: %s", crl, err);
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

    s->limits = limits_new(rpc_share_slots((int)cfg->threads));
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
        tclog(TCLOG_WARN, "audit: cannot record the node's keys: %s", err);
    s->audit = audit_start(s, cfg->node_id, err, cap);
    return s->audit ? 0 : -1;
}

static void audit_end(svc *s)
{
    audit_stop(s->audit); /* after the server: the last minute's counts */
    s->audit = NULL;
}

/* The keyring is loaded before the parts start and checked once a second
 * (check_keys); as a part it keeps the node out of readiness while it
 * lacks an issuing key, and says so in /metrics. */
static int keyring_ready(const svc *s, char *why, size_t cap)
{
    unsigned kid = atomic_load(&((svc *)s)->lacks_key);

    if (kid && cap)
        snprintf(why, cap,
                 "the deployment issues under key %u, which this node's keyring lacks (copy "
                 "key-%03u to it and send SIGHUP)",
                 kid, kid);
    return kid == 0;
}

static size_t keyring_metrics(const svc *s, char *buf, size_t cap, size_t n)
{
    return svc_appendf(buf, cap, n,
                       "# HELP tracesvc_keyring_missing_key An issuing key of the deployment "
                       "this node's keyring lacks (0: none); the node is not ready meanwhile.\n"
                       "# TYPE tracesvc_keyring_missing_key gauge\n"
                       "tracesvc_keyring_missing_key %u\n",
                       atomic_load(&((svc *)s)->lacks_key));
}

/* What runs: tracesvc_build_info, as Prometheus client libraries name it
 * (a gauge of 1 whose labels are the facts). */
static size_t build_metrics(const svc *s, char *buf, size_t cap, size_t n)
{
    (void)s;
    return svc_appendf(buf, cap, n,
                       "# HELP tracesvc_build_info The version and commit of this tracesvc and "
                       "the libraries it runs on.\n"
                       "# TYPE tracesvc_build_info gauge\n"
                       "tracesvc_build_info{version=\"%s\",commit=\"%s\",grpc=\"%s\","
                       "openssl=\"%s\",redis_client=\"%s\"} 1\n",
                       TC_VERSION, TC_COMMIT, rpc_grpc_version(), keys_crypto_version(),
                       store_client_version());
}

/* Started in this order, stopped in the reverse; drained (in the reverse)
 * before the RPC server drains. Every part may keep the node out of
 * readiness (svc_ready) and adds its lines to /metrics. */
static const svc_module modules[] = {
    /* name, start, drain, stop, metrics, ready */
    {"the build", NULL, NULL, NULL, build_metrics, NULL},
    {"the process", NULL, NULL, NULL, svc_process_metrics, NULL},
    {"the keyring", NULL, NULL, NULL, keyring_metrics, keyring_ready},
    {"the delisting hub", hub_start, hub_drain, hub_stop, delist_metrics, NULL},
    {"the limits", limits_start, NULL, limits_stop, limits_metrics, NULL},
    {"the audit log", audit_begin, NULL, audit_end, audit_metrics, NULL},
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
    http_server *web = NULL, *admin = NULL;
    metrics_src mx;
    size_t started = 0;
    pthread_t control;
    rpc_config rc;
    uint64_t rev;
    svc node;
    int rc_exit = 1, sig;
    keys_err ke;

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
        return rc_exit < 0 ? 0 : rc_exit; /* -1: --help or --version, done */
    raise_fd_limit();
    rc_exit = 1;
    if (cfg.access_log && tclog_access_open(cfg.access_log, err, sizeof(err)) != 0) {
        tclog(TCLOG_ERROR, "%s", err);
        return 1;
    }
    node.keys_flags = cfg.keys_group_read ? KEYS_OPEN_SECRET_VOLUME : 0;
    if ((ke = keys_open_ex(cfg.keys, node.keys_flags, &ring, err, sizeof(err))) != KEYS_OK) {
        tclog(TCLOG_ERROR, "%s%s", err,
              ke == KEYS_ERR_PERM && !cfg.keys_group_read
                  ? " (for a keyring mounted as a Kubernetes Secret - links to ..data, files "
                    "readable by an fsGroup - start with --keys-allow-group-read)"
                  : "");
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
        tclog(TCLOG_WARN, "cannot load the registry: %s", err);
        goto out;
    }
    evthread_use_pthreads();
    base = event_base_new();
    tail = base ? store_tail_new(st, replica, base, stream_id, rev) : NULL;
    if (!tail) {
        tclog(TCLOG_WARN, "cannot start following the change stream");
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
    node.sale_undo_window_s = cfg.sale_undo_window;
    node.hotline = cfg.hotline;
    node.image_origins = cfg.image_origins;
    pthread_mutex_init(&node.sale_mu, NULL);
    node.forgery_percent = (uint32_t)cfg.forgery_percent;
    node.forgery_min = (uint32_t)cfg.forgery_min;
    node.forgery_window_s = (uint32_t)cfg.forgery_window;
    node.forgery_throttle = (double)cfg.forgery_throttle;
    node.modules = modules;
    for (started = 0; started < NMODULES; started++)
        if (modules[started].start && modules[started].start(&node, &cfg, err, sizeof(err)) != 0) {
            tclog(TCLOG_WARN, "cannot start %s: %s", modules[started].name, err);
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
    rc.threads = (int)cfg.threads;
    rc.write_threads = (int)cfg.write_threads;
    rc.max_message = 4 << 20;
    rc.call_memory = 256 << 20;
    /* An experiment switch for bench/: one completion queue for all workers. */
    rc.shared_cq = cfg.shared_cq;
    srv = rpc_start(&rc, &node, err, sizeof(err));
    if (!srv) {
        tclog(TCLOG_ERROR, "%s", err);
    } else {
        tclog(TCLOG_INFO,
              "serving gRPC on %s port %d (%s), %ld worker threads (+%ld for "
              "writes), registry at revision %llu with %zu batches",
              cfg.grpc, rpc_port(srv), cfg.insecure ? "insecure, loopback only" : "mTLS",
              cfg.threads, cfg.write_threads, (unsigned long long)rev, rep_count_batches(replica));
        mx.srv = srv;
        mx.node = &node;
        atomic_init(&mx.http[0], NULL);
        atomic_init(&mx.http[1], NULL);
        admin = http_start(HTTP_ADMIN, cfg.admin, &node, NULL, 64, metrics, &mx, err, sizeof(err));
        atomic_store(&mx.http[1], admin);
        if (!admin)
            tclog(TCLOG_ERROR, "%s", err);
        else
            tclog(TCLOG_INFO,
                  "serving the admin listener on %s admin-port %d (/metrics, "
                  "/healthz, /readyz)",
                  cfg.admin, http_port(admin));
        if (admin && cfg.http) {
            web = http_start(HTTP_PUBLIC, cfg.http, &node, cfg.trusted_proxy,
                             (int)cfg.http_max_conns, metrics, &mx, err, sizeof(err));
            atomic_store(&mx.http[0], web);
            if (!web)
                tclog(TCLOG_ERROR, "%s", err);
            else
                tclog(TCLOG_INFO, "serving HTTP on %s http-port %d (scan pages)", cfg.http,
                      http_port(web));
        }
        if (admin && (!cfg.http || web)) {
            sig = wait_for_stop(&sigs, srv, &node, cfg.client_crl);
            tclog(TCLOG_INFO, "%s: draining (up to %d ms)", sig == SIGTERM ? "SIGTERM" : "SIGINT",
                  DRAIN_MS);
        }
        for (size_t m = NMODULES; m-- > 0;)
            if (modules[m].drain)
                modules[m].drain(&node);
        /* The listeners stay up while calls finish: /readyz says "draining"
         * to the load balancer instead of refusing it, scan pages answer. */
        rpc_drain(srv, DRAIN_MS);
        tclog(TCLOG_INFO, "drained: every gRPC call has ended");
        http_stop(admin); /* first: its /metrics reads the public listener's counters */
        http_stop(web);
        rpc_stop(srv, DRAIN_MS);
        rc_exit = (!admin || (cfg.http && !web)) ? 1 : 0;
    }
stop_modules:
    node.nmodules = 0;
    while (started-- > 0)
        if (modules[started].stop)
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
        tclog(TCLOG_INFO, "stopped");
    return rc_exit;
}
