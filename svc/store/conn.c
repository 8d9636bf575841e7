/*
 * conn.c - the Redis endpoint: the primary's address (fixed, or as the
 * Sentinels name it), the pool of blocking connections, and running one
 * command with the store's rules (failover replies, timeouts, WAIT).
 */
#include "store.h"
#include "log.h"
#include "store_int.h"
#include "tls.h"

#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

store_err st_fail(store_err e, char *err, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

store_err st_fail(store_err e, char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;

    if (err && cap) {
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return e;
}

/* --- dialling ------------------------------------------------------------ */

static redisContext *st_dial_why(const st_addr *a, store_err *why, char *err, size_t cap)
{
    struct timeval tv = {TIMEOUT_MS / 1000, (TIMEOUT_MS % 1000) * 1000};
    redisContext *c;
    redisReply *r;

    *why = STORE_ERR_UNAVAILABLE;
    if (!a->path[0] && !a->host[0]) {
        st_fail(STORE_ERR_UNAVAILABLE, err, cap, "no Sentinel has named a primary for '%s' yet",
                a->master);
        return NULL;
    }
    c = a->path[0] ? redisConnectUnixWithTimeout(a->path, tv)
                   : redisConnectWithTimeout(a->host, a->port, tv);
    if (!c || c->err) {
        char where[300];
        if (a->path[0] && !a->tls)
            snprintf(where, sizeof(where), "%s", a->path);
        else
            snprintf(where, sizeof(where), "%s:%d", a->host, a->port);
        st_fail(STORE_ERR_UNAVAILABLE, err, cap, "cannot connect to redis at %s: %s", where,
                c ? c->errstr : "out of memory");
        if (c)
            redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    if (a->tls) {
        /* The bridge took the connection; whether TLS to Redis works shows
         * on the first reply, which waits for the bridge's own dial and
         * handshake (each bounded by TIMEOUT_MS) to end first. */
        redisSetTimeout(c, (struct timeval){3 * TIMEOUT_MS / 1000, 0});
        r = redisCommand(c, "PING");
        redisSetTimeout(c, tv);
        if (!r) {
            char msg[1024];
            if (st_tls_last_error(a->tls, msg, sizeof(msg)))
                *why = STORE_ERR_DENIED; /* waiting will not mend it */
            st_fail(STORE_ERR_UNAVAILABLE, err, cap, "cannot talk to redis at rediss://%s:%d: %s",
                    a->host, a->port, *msg ? msg : "the connection was closed");
            redisFree(c);
            return NULL;
        }
        freeReplyObject(r); /* PONG, or NOAUTH: AUTH follows */
    }
    if (st_auth(c, a->user, a->pass, "redis", err, cap) != 0) {
        *why = c->err ? STORE_ERR_UNAVAILABLE : STORE_ERR_DENIED;
        redisFree(c);
        return NULL;
    }
    if (a->db) {
        r = redisCommand(c, "SELECT %d", a->db);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            st_fail(STORE_ERR_UNAVAILABLE, err, cap, "cannot select redis db %d", a->db);
            if (r)
                freeReplyObject(r);
            redisFree(c);
            return NULL;
        }
        freeReplyObject(r);
    }
    return c;
}

redisContext *st_dial(const st_addr *a, char *err, size_t cap)
{
    store_err why;

    return st_dial_why(a, &why, err, cap);
}

/* A connection to Sentinel i, authenticated, or NULL with why. */
static redisContext *dial_sentinel(const st_addr *a, int i, char *err, size_t cap)
{
    struct timeval tv = {0, 500000};
    const st_hostport *h = &a->sentinel[i];
    redisContext *c = redisConnectWithTimeout(h->host, h->port, tv);

    if (!c || c->err) {
        st_fail(STORE_ERR_UNAVAILABLE, err, cap, "cannot reach Sentinel %s:%d: %s", h->host,
                h->port, c ? c->errstr : "out of memory");
        if (c)
            redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    if (st_auth(c, "", a->sentinel_pass, "Sentinel", err, cap) != 0) {
        redisFree(c);
        return NULL;
    }
    return c;
}

/*
 * Ask the Sentinels where the primary named s->a.master is: 0 with host
 * and port, or -1 with why. The one that answered last is asked first, on
 * the connection kept from then; one that is down, slow (500 ms) or does
 * not know the name is passed over for the next.
 */
static int ask_sentinels(store *s, char *host, size_t hostcap, int *port, char *err, size_t cap)
{
    const st_addr *a = &s->a;
    int k;

    st_fail(STORE_ERR_UNAVAILABLE, err, cap, "no Sentinel given");
    for (k = 0; k < a->nsentinel; k++) {
        int i = (s->sentinel_i + k) % a->nsentinel;
        const st_hostport *h = &a->sentinel[i];
        redisContext *c = k == 0 && s->sentinel_c ? s->sentinel_c : dial_sentinel(a, i, err, cap);
        redisReply *r = NULL;
        s->sentinel_c = NULL;
        if (!c)
            continue;
        r = redisCommandArgv(
            c, 3, (const char *[]){"SENTINEL", "get-master-addr-by-name", a->master}, NULL);
        if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
            r->element[0]->type == REDIS_REPLY_STRING &&
            r->element[1]->type == REDIS_REPLY_STRING && r->element[0]->len < hostcap &&
            strtol(r->element[1]->str, NULL, 10) > 0 &&
            strtol(r->element[1]->str, NULL, 10) < 65536) {
            memcpy(host, r->element[0]->str, r->element[0]->len + 1);
            *port = (int)strtol(r->element[1]->str, NULL, 10);
            freeReplyObject(r);
            s->sentinel_c = c; /* kept for the next poll */
            s->sentinel_i = i;
            return 0;
        }
        st_fail(STORE_ERR_UNAVAILABLE, err, cap, "Sentinel %s:%d %s", h->host, h->port,
                !r                             ? "did not answer"
                : r->type == REDIS_REPLY_ERROR ? r->str
                                               : "does not know a primary by that name");
        if (r)
            freeReplyObject(r);
        redisFree(c);
    }
    return -1;
}

/* Close every idle connection (the primary moved). Called with mu held;
 * the connections are freed by the caller after unlocking. */
static int take_idle(store *s, redisContext **out)
{
    int n = 0;

    while (s->nidle)
        out[n++] = s->idle[--s->nidle].c;
    return n;
}

/* Ask the Sentinels; when they name another primary, take it and retire
 * every connection to the old one. 0 when a primary is known. */
static int resolve(store *s, char *err, size_t cap)
{
    redisContext *old[POOL_MAX];
    char host[256], was[300];
    int port, moved = 0, n = 0, i;

    if (!s->a.nsentinel)
        return 0;
    if (ask_sentinels(s, host, sizeof(host), &port, err, cap) != 0)
        return -1;
    pthread_mutex_lock(&s->mu);
    if (strcmp(host, s->a.host) != 0 || port != s->a.port) {
        snprintf(was, sizeof(was), "%s:%d", s->a.host[0] ? s->a.host : "(none)", s->a.port);
        memcpy(s->a.host, host, strlen(host) + 1);
        s->a.port = port;
        atomic_fetch_add(&s->gen, 1);
        n = take_idle(s, old);
        moved = 1;
    }
    pthread_mutex_unlock(&s->mu);
    for (i = 0; i < n; i++)
        redisFree(old[i]);
    if (moved)
        tclog(TCLOG_INFO, "redis: the Sentinels name %s:%d as primary of '%s' (was %s)", host, port,
              s->a.master, was);
    return 0;
}

void st_suspect(store *s, const char *why)
{
    (void)why;
    if (!s->a.nsentinel)
        return;
    atomic_store(&s->suspect, 1);
    pthread_mutex_lock(&s->mu);
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->mu);
}

int st_failover_reply(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_ERROR &&
           (strncmp(r->str, "READONLY", 8) == 0 || strncmp(r->str, "MASTERDOWN", 10) == 0 ||
            strncmp(r->str, "LOADING", 7) == 0 || strncmp(r->str, "NOREPLICAS", 10) == 0);
}

/*
 * The Sentinel monitor: asks where the primary is every MONITOR_MS, and at
 * once when a connection saw it fail. This is how a node follows a
 * +switch-master: within MONITOR_MS of the Sentinels' switch, or on the
 * first error that the switch causes, whichever comes first.
 */
#define MONITOR_MS 500

static void *monitor_main(void *arg)
{
    store *s = arg;
    char err[STORE_ERR_MAX], last[STORE_ERR_MAX] = "";

    pthread_mutex_lock(&s->mu);
    while (!atomic_load(&s->stopping)) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += MONITOR_MS * 1000000L;
        until.tv_sec += until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        if (!atomic_exchange(&s->suspect, 0))
            pthread_cond_timedwait(&s->wake, &s->mu, &until);
        if (atomic_load(&s->stopping))
            break;
        pthread_mutex_unlock(&s->mu);
        err[0] = '\0';
        if (resolve(s, err, sizeof(err)) != 0 && strcmp(err, last) != 0)
            tclog(TCLOG_WARN, "redis: cannot ask the Sentinels: %s", err);
        memcpy(last, err, sizeof(last)); /* log a failure once, not twice a second */
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

void st_current(store *s, st_addr *a, unsigned *gen)
{
    pthread_mutex_lock(&s->mu);
    *a = s->a;
    *gen = atomic_load(&s->gen);
    pthread_mutex_unlock(&s->mu);
}

redisContext *st_dial_primary(store *s, unsigned *gen, char *err, size_t cap)
{
    st_addr a;
    redisContext *c;

    st_current(s, &a, gen);
    c = st_dial(&a, err, cap);
    if (!c)
        st_suspect(s, err);
    return c;
}

/* --- the pool of blocking connections ------------------------------------ */

/* A pooled connection if there is one (*reused = 1), else a new one. */
redisContext *st_pool_get(store *s, int *reused, unsigned *gen, char *err, size_t cap)
{
    redisContext *c = NULL;

    pthread_mutex_lock(&s->mu);
    if (s->nidle) {
        s->nidle--;
        c = s->idle[s->nidle].c;
        *gen = s->idle[s->nidle].gen;
    }
    pthread_mutex_unlock(&s->mu);
    *reused = c != NULL;
    return c ? c : st_dial_primary(s, gen, err, cap);
}

/* Back into the pool, unless broken or dialled to a primary since left. */
void st_pool_put(store *s, redisContext *c, unsigned gen)
{
    if (c->err) { /* broken: do not hand it out again */
        redisFree(c);
        return;
    }
    pthread_mutex_lock(&s->mu);
    if (s->nidle < POOL_MAX && gen == atomic_load(&s->gen)) {
        s->idle[s->nidle].c = c;
        s->idle[s->nidle++].gen = gen;
        c = NULL;
    }
    pthread_mutex_unlock(&s->mu);
    if (c)
        redisFree(c);
}

store_err store_open(const char *url, store **out, char *err, size_t errcap)
{
    store *s;
    redisContext *c;
    store_err why;

    *out = NULL;
    s = calloc(1, sizeof(*s));
    if (!s)
        return st_fail(STORE_ERR_NOMEM, err, errcap, "out of memory");
    if (st_parse_url(url, &s->a) != 0) {
        char shown[512];
        st_redact(url, shown, sizeof(shown));
        free(s);
        return st_fail(
            STORE_ERR_ARG, err, errcap,
            "cannot parse redis url '%s': want redis://[user:password@]host:port[/db], "
            "rediss://[user:password@]host:port[/db][?ca=FILE&cert=FILE&key=FILE&sni=NAME], "
            "redis-sentinel://[user:password@]host:port[,host:port...]/primary-name"
            "[?db=N&sentinel_password=...] or unix:/path[?db=N] (a password file "
            "given by TRACESVC_REDIS_PASSWORD_FILE or TRACESVC_SENTINEL_PASSWORD_FILE must "
            "exist and not be empty)",
            shown);
    }
    if (s->a.use_tls) {
        st_tls_opts o = {
            s->a.tls_ca[0] ? s->a.tls_ca : NULL, s->a.tls_cert[0] ? s->a.tls_cert : NULL,
            s->a.tls_key[0] ? s->a.tls_key : NULL, s->a.tls_sni[0] ? s->a.tls_sni : NULL};
        if (st_tls_start(s->a.host, s->a.port, &o, &s->a.tls, s->a.path, sizeof(s->a.path), err,
                         errcap) != 0) {
            free(s);
            return STORE_ERR_ARG;
        }
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->wake, NULL);
    atomic_init(&s->gen, 1);
    atomic_init(&s->suspect, 0);
    atomic_init(&s->stopping, 0);
    s->notice_retention_ms = STORE_NOTICE_RETENTION_MS;
    s->replicas_wait = TIMEOUT_MS;
    if (resolve(s, err, errcap) != 0) {
        why = STORE_ERR_UNAVAILABLE;
        c = NULL;
    } else {
        c = st_dial_why(&s->a, &why, err, errcap);
    }
    if (c && s->a.nsentinel && pthread_create(&s->monitor, NULL, monitor_main, s) == 0)
        s->monitoring = 1;
    if (!c || (s->a.nsentinel && !s->monitoring)) {
        if (c)
            redisFree(c);
        if (s->sentinel_c)
            redisFree(s->sentinel_c);
        pthread_cond_destroy(&s->wake);
        pthread_mutex_destroy(&s->mu);
        st_tls_free(s->a.tls);
        free(s);
        return c ? STORE_ERR_NOMEM : why;
    }
    st_pool_put(s, c, atomic_load(&s->gen));
    *out = s;
    return STORE_OK;
}

void store_set_notice_retention(store *s, int64_t ms)
{
    s->notice_retention_ms = ms > 0 ? ms : STORE_NOTICE_RETENTION_MS;
}

void store_set_replicas(store *s, int replicas, int wait_ms)
{
    s->replicas = replicas > 0 ? replicas : 0;
    s->replicas_wait = wait_ms > 0 ? wait_ms : TIMEOUT_MS;
}

void store_primary(store *s, char *out, size_t cap)
{
    pthread_mutex_lock(&s->mu);
    if (s->a.tls)
        snprintf(out, cap, "%s:%d (TLS)", s->a.host, s->a.port);
    else if (s->a.path[0])
        snprintf(out, cap, "%s", s->a.path);
    else
        snprintf(out, cap, "%s:%d", s->a.host, s->a.port);
    pthread_mutex_unlock(&s->mu);
}

unsigned store_generation(store *s)
{
    return atomic_load(&s->gen);
}

void store_free(store *s)
{
    if (!s)
        return;
    if (s->monitoring) {
        pthread_mutex_lock(&s->mu);
        atomic_store(&s->stopping, 1);
        pthread_cond_signal(&s->wake);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->monitor, NULL);
    }
    while (s->nidle)
        redisFree(s->idle[--s->nidle].c);
    if (s->sentinel_c)
        redisFree(s->sentinel_c);
    pthread_cond_destroy(&s->wake);
    pthread_mutex_destroy(&s->mu);
    st_tls_free(s->a.tls);
    free(s);
}

/*
 * One command on a pooled connection. Error replies from our scripts start
 * with a word naming the store_err (NOTFOUND, PRECONDITION, DENIED, ARG);
 * the rest is the message. Caller frees the reply with freeReplyObject.
 */
/* hiredis 0.14 reports a read timeout as an I/O error with EAGAIN. */
static int timed_out(const redisContext *c)
{
    return c->err == REDIS_ERR_IO && strstr(c->errstr, "temporarily unavailable") != NULL;
}

store_err st_run(store *s, int argc, const char **argv, const size_t *lens, redisReply **out,
                 char *err, size_t cap)
{
    return st_run_timeout(s, argc, argv, lens, out, TIMEOUT_MS, err, cap);
}

static void set_timeout(redisContext *c, int ms)
{
    redisSetTimeout(c, (struct timeval){ms / 1000, (ms % 1000) * 1000});
}

/* WAIT on c for the store's replicas after a write: STORE_OK once they
 * hold it, else UNAVAILABLE saying the write may stand. */
static store_err wait_replicas(store *s, redisContext *c, char *err, size_t cap)
{
    char n[16], ms[16];
    redisReply *r;
    long long got;

    snprintf(n, sizeof(n), "%d", s->replicas);
    snprintf(ms, sizeof(ms), "%d", s->replicas_wait);
    set_timeout(c, s->replicas_wait + 1000);
    r = redisCommandArgv(c, 3, (const char *[]){"WAIT", n, ms}, NULL);
    got = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    if (r)
        freeReplyObject(r);
    if (got >= s->replicas)
        return STORE_OK;
    if (got < 0)
        st_suspect(s, "WAIT failed");
    return st_fail(STORE_ERR_UNAVAILABLE, err, cap,
                   "the write reached the Redis primary but %s%lld of the %d replicas it must "
                   "reach confirmed it within %d ms, so a failover could still lose it: retry "
                   "with the same request_id (a retry never applies a request twice)",
                   got < 0 ? "the primary stopped answering and " : "only ", got < 0 ? 0 : got,
                   s->replicas, s->replicas_wait);
}

/* A script this server does not hold (NOSCRIPT: restarted, promoted, or
 * SCRIPT FLUSHed) sent again whole with EVAL, which also loads it: argv is
 * EVALSHA's with the text for the SHA-1. NULL with c->err set when the
 * server is gone; the NOSCRIPT reply itself when the SHA-1 is none of ours. */
static redisReply *eval_whole(redisContext *c, redisReply *noscript, int argc, const char **argv,
                              const size_t *lens)
{
    const st_lua *lua = st_lua_find(argv[1], lens ? lens[1] : strlen(argv[1]));
    const char **v;
    size_t *l;
    redisReply *r;
    int i;

    if (!lua || !(v = malloc((size_t)argc * sizeof(*v))))
        return noscript;
    if (!(l = malloc((size_t)argc * sizeof(*l)))) {
        free(v);
        return noscript;
    }
    for (i = 0; i < argc; i++) {
        v[i] = argv[i];
        l[i] = lens ? lens[i] : strlen(argv[i]);
    }
    v[0] = "EVAL";
    l[0] = 4;
    v[1] = lua->text;
    l[1] = lua->len;
    freeReplyObject(noscript);
    r = redisCommandArgv(c, argc, v, l);
    free(v);
    free(l);
    return r;
}

/* 1 when r is the NOSCRIPT reply to an EVALSHA. */
static int noscript(const redisReply *r, int argc, const char **argv)
{
    return r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0 && argc >= 3 &&
           strcmp(argv[0], "EVALSHA") == 0;
}

store_err st_exec(store *s, int argc, const char **argv, const size_t *lens, redisReply **out,
                  int timeout_ms, int durable, char *err, size_t cap)
{
    static const struct {
        const char *word;
        store_err e;
    } words[] = {{"NOTFOUND ", STORE_ERR_NOTFOUND}, {"PRECONDITION ", STORE_ERR_PRECONDITION},
                 {"DENIED ", STORE_ERR_DENIED},     {"ARG ", STORE_ERR_ARG},
                 {"EXISTS ", STORE_ERR_EXISTS},     {"RETRY ", ST_ERR_RETRY},
                 {"LIMIT ", STORE_ERR_LIMIT}};
    redisContext *c;
    redisReply *r;
    unsigned gen;
    size_t i;
    int reused;

    *out = NULL;
    c = st_pool_get(s, &reused, &gen, err, cap);
    if (!c)
        return STORE_ERR_UNAVAILABLE;
    if (timeout_ms != TIMEOUT_MS)
        set_timeout(c, timeout_ms);
    r = redisCommandArgv(c, argc, argv, lens);
    if (!r && reused && !timed_out(c) && (c->err == REDIS_ERR_IO || c->err == REDIS_ERR_EOF)) {
        /* An idle connection that died with its server (Redis restarted,
         * the primary failed): once more on a new one. The command never
         * reached that server. */
        redisFree(c);
        st_suspect(s, "connection lost");
        c = st_dial_primary(s, &gen, err, cap);
        if (!c)
            return STORE_ERR_UNAVAILABLE;
        if (timeout_ms != TIMEOUT_MS)
            set_timeout(c, timeout_ms);
        r = redisCommandArgv(c, argc, argv, lens);
    }
    if (r && noscript(r, argc, argv))
        r = eval_whole(c, r, argc, argv, lens);
    if (!r) {
        /* A timeout is not "nothing happened": the command may have run. */
        store_err e = timed_out(c)
                          ? st_fail(STORE_ERR_TIMEOUT, err, cap,
                                    "redis did not answer within %d ms; the change may "
                                    "or may not have been made: read it back",
                                    timeout_ms)
                          : st_fail(STORE_ERR_UNAVAILABLE, err, cap, "redis: %s", c->errstr);
        if (!timed_out(c))
            st_suspect(s, "connection lost");
        st_pool_put(s, c, gen); /* broken: freed, not pooled */
        return e;
    }
    if (st_failover_reply(r)) {
        /* This server is not (or no longer) a writable primary: drop the
         * connection, have the Sentinels asked, and let the caller retry.
         * A script refused this way changed nothing. */
        store_err e = st_fail(STORE_ERR_UNAVAILABLE, err, cap,
                              "redis cannot take this now (%.120s): the primary is changing or "
                              "starting; retry shortly (with the same request_id)",
                              r->str);
        redisFree(c);
        freeReplyObject(r);
        st_suspect(s, "failover reply");
        return e;
    }
    if (durable && s->replicas > 0 && r->type != REDIS_REPLY_ERROR) {
        store_err e = wait_replicas(s, c, err, cap);
        set_timeout(c, TIMEOUT_MS); /* WAIT changed it */
        timeout_ms = TIMEOUT_MS;
        if (e) {
            st_pool_put(s, c, gen);
            freeReplyObject(r);
            return e;
        }
    }
    if (timeout_ms != TIMEOUT_MS)
        set_timeout(c, TIMEOUT_MS);
    st_pool_put(s, c, gen);
    if (r->type == REDIS_REPLY_ERROR) {
        for (i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
            size_t n = strlen(words[i].word);
            if (r->len > n && strncmp(r->str, words[i].word, n) == 0) {
                store_err e = st_fail(words[i].e, err, cap, "%s", r->str + n);
                freeReplyObject(r);
                return e;
            }
        }
        /* Transient states of a server that is busy or resharding. */
        if (strncmp(r->str, "BUSY", 4) == 0 || strncmp(r->str, "TRYAGAIN", 8) == 0) {
            store_err e =
                st_fail(STORE_ERR_UNAVAILABLE, err, cap, "redis is not ready: %s", r->str);
            freeReplyObject(r);
            return e;
        }
        st_fail(STORE_ERR_PROTOCOL, err, cap, "redis: %s", r->str);
        freeReplyObject(r);
        return STORE_ERR_PROTOCOL;
    }
    *out = r;
    return STORE_OK;
}

store_err st_run_timeout(store *s, int argc, const char **argv, const size_t *lens,
                         redisReply **out, int timeout_ms, char *err, size_t cap)
{
    return st_exec(s, argc, argv, lens, out, timeout_ms, 0, err, cap);
}

store_err store_ping(store *s, char *err, size_t errcap)
{
    const char *argv[] = {"PING"};
    redisReply *r;
    store_err e = st_run(s, 1, argv, NULL, &r, err, errcap);

    if (r)
        freeReplyObject(r);
    return e;
}

int store_writable(store *s, char *err, size_t errcap)
{
    const char *argv[] = {"ROLE"};
    redisReply *r;
    long long replicas;

    if (st_run(s, 1, argv, NULL, &r, err, errcap) != STORE_OK)
        return 0;
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 ||
        r->element[0]->type != REDIS_REPLY_STRING || strcmp(r->element[0]->str, "master") != 0) {
        st_fail(STORE_ERR_UNAVAILABLE, err, errcap, "redis at the primary's address is a replica");
        freeReplyObject(r);
        st_suspect(s, "a replica where the primary should be");
        return 0;
    }
    /* [master, offset, [[ip, port, offset], ...]]: replicas connected now */
    replicas = r->element[2]->type == REDIS_REPLY_ARRAY ? (long long)r->element[2]->elements : 0;
    freeReplyObject(r);
    if (replicas < s->replicas) {
        st_fail(STORE_ERR_UNAVAILABLE, err, errcap,
                "the primary has %lld replicas connected and writes wait for %d", replicas,
                s->replicas);
        return 0;
    }
    return 1;
}

#define ST_STR2(x) #x
#define ST_STR(x) ST_STR2(x)
const char *store_client_version(void)
{
    return "hiredis " ST_STR(HIREDIS_MAJOR) "." ST_STR(HIREDIS_MINOR) "." ST_STR(HIREDIS_PATCH);
}
