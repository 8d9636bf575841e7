/*
 * tail.c - following the change stream (libevent + hiredis async): every
 * change applied to the replica as Redis logs it.
 */
#include "store.h"
#include "store_int.h"
#include "log.h"

#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <event2/event.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define K_STREAM "{tc}:changes"
#define BLOCK_MS "1000" /* XREAD BLOCK: an answer at least this often */
#define SILENT_MS 5000  /* no answer for this long: Redis is not answering */
#define WATCH_EVERY_MS 1000

/* --- tailing the change stream (libevent + hiredis async) ---------------- */

struct store_tail {
    store *s;     /* the endpoint */
    unsigned gen; /* the endpoint generation of ac */
    rep *r;
    struct event_base *base;
    redisAsyncContext *ac;
    struct event *retry;
    struct event *watch; /* the silence watchdog: hiredis async has no timeouts */
    int backoff_ms;
    char last_id[64];
    uint64_t rev;
    _Atomic int64_t heard_ms; /* the last answer from Redis: the replica's lag */
    int64_t tried_ms;         /* the last answer, or the last (re)connect: the watchdog's */
    _Atomic int connected;
    int closing;
    char where[300]; /* the endpoint of ac, for the log */
    int said_lost;   /* "lost" logged since the stream was last followed */
    int following;   /* a reply came on this connection */
};

/* The tail's state changes, one line each (never one per retry). */
#define tail_log(t, ...) ((void)(t), tclog(TCLOG_WARN, "change stream: " __VA_ARGS__))

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void tail_connect(store_tail *t);
static void tail_read(store_tail *t);
static void tail_schedule(store_tail *t);

/*
 * A primary that stops answering without closing (SIGSTOP, a hung host, a
 * dropped route) would hold the tail forever: the replica would stop
 * following while the pool has long moved to the new primary. Every
 * second: a connection that has answered nothing for SILENT_MS (an XREAD
 * BLOCK answers every second) is dropped, the store asked where the
 * primary is, and the tail reconnects.
 */
static void tail_watch_cb(evutil_socket_t fd, short what, void *arg)
{
    store_tail *t = arg;
    int64_t quiet = now_ms() - t->tried_ms;

    (void)fd;
    (void)what;
    if (t->ac && quiet > SILENT_MS) {
        redisAsyncContext *ac = t->ac;
        tail_log(t, "no answer from %s for %lld ms; reconnecting", t->where, (long long)quiet);
        t->said_lost = 1;
        st_suspect(t->s, "change stream silent");
        t->tried_ms = now_ms(); /* the next try gets its own SILENT_MS; the lag keeps growing */
        t->ac = NULL;
        atomic_store(&t->connected, 0);
        t->following = 0;
        redisAsyncFree(ac); /* pending callbacks get NULL (a connection that never
                             * completed gets no disconnect callback: hence here) */
        tail_schedule(t);
    }
}

static void tail_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    tail_connect(arg);
}

static void tail_schedule(store_tail *t)
{
    struct timeval tv = {t->backoff_ms / 1000, (t->backoff_ms % 1000) * 1000};

    if (t->closing)
        return;
    evtimer_add(t->retry, &tv);
    t->backoff_ms = t->backoff_ms * 2 > 5000 ? 5000 : t->backoff_ms * 2;
}

static void tail_disconnected(const redisAsyncContext *ac, int status)
{
    store_tail *t = ac->data;

    t->ac = NULL; /* hiredis frees it after this returns */
    atomic_store(&t->connected, 0);
    if (!t->closing && t->gen == store_generation(t->s)) {
        st_suspect(t->s, "change stream lost"); /* not our own move to a new primary */
        if (!t->said_lost)
            tail_log(t, "lost %s (%s); reconnecting, the replica answers from what it holds",
                     t->where, status == REDIS_OK ? "closed" : ac->errstr);
        t->said_lost = 1;
    }
    t->following = 0;
    tail_schedule(t);
}

/* A gap: the stream was trimmed past what we applied. Load again. */
static void tail_resnapshot(store_tail *t)
{
    char err[STORE_ERR_MAX];

    tail_log(t, "a gap after revision %llu (trimmed, or another history): loading a snapshot",
             (unsigned long long)t->rev);
    if (store_snapshot(t->s, t->r, t->last_id, sizeof(t->last_id), &t->rev, err, sizeof(err)) ==
        STORE_OK)
        rep_reclaim(t->r);
    else
        tail_log(t, "the snapshot failed, trying again on the next change: %s", err);
}

static void tail_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    store_tail *t = priv;
    redisReply *r = reply;
    size_t i;
    int gap = 0;

    (void)ac;
    if (!r || t->closing)
        return;
    if (r->type == REDIS_REPLY_ERROR) {
        if (st_failover_reply(r))
            st_suspect(t->s, r->str);
        tail_log(t, "%s answered %.200s; reconnecting", t->where, r->str);
        t->said_lost = 1;
        redisAsyncDisconnect(t->ac);
        return;
    }
    atomic_store(&t->heard_ms, now_ms());
    t->tried_ms = now_ms();
    t->backoff_ms = 100;
    if (!t->following) {
        tclog(TCLOG_INFO, "change stream: following %s after %s (revision %llu)", t->where,
              t->last_id, (unsigned long long)t->rev);
        t->following = 1;
        t->said_lost = 0;
    }
    /* [[stream, [[id, [f, v, ...]], ...]]] or nil on timeout */
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 && r->element[0]->elements == 2) {
        redisReply *entries = r->element[0]->element[1];
        for (i = 0; i < entries->elements && !gap; i++) {
            redisReply *e = entries->element[i], *kv = e->element[1];
            st_rec x = {kv->element, kv->elements};
            uint64_t rev = (uint64_t)st_rec_num(&x, "rev");
            if (rev > t->rev + 1 && t->rev != 0) {
                gap = 1;
                break;
            }
            (void)st_apply(t->r, st_rec_str(&x, "type"), st_rec_str(&x, "id"), &x);
            if (rev > t->rev)
                t->rev = rev;
            snprintf(t->last_id, sizeof(t->last_id), "%s", e->element[0]->str);
        }
        if (gap)
            tail_resnapshot(t);
        rep_set_revision(t->r, t->rev);
        rep_reclaim(t->r);
    }
    if (t->gen != store_generation(t->s)) { /* the primary moved: follow it */
        redisAsyncDisconnect(t->ac);
        return;
    }
    tail_read(t);
}

static void tail_read(store_tail *t)
{
    const char *argv[] = {"XREAD",  "COUNT",   "1000",   "BLOCK",
                          BLOCK_MS, "STREAMS", K_STREAM, t->last_id};

    if (t->ac)
        redisAsyncCommandArgv(t->ac, tail_reply, t, 8, argv, NULL);
}

static void tail_connected(const redisAsyncContext *ac, int status)
{
    store_tail *t = ac->data;

    if (status != REDIS_OK) {
        t->ac = NULL;
        atomic_store(&t->connected, 0);
        tail_schedule(t);
        return;
    }
    atomic_store(&t->connected, 1); /* a connection is not an answer: the lag runs on */
}

static void tail_connect(store_tail *t)
{
    char db[8];
    const char *argv[] = {"SELECT", db};
    st_addr a;

    t->tried_ms = now_ms();
    st_current(t->s, &a, &t->gen);
    if (a.path[0])
        snprintf(t->where, sizeof(t->where), "%s", a.path);
    else
        snprintf(t->where, sizeof(t->where), "%s:%d", a.host, a.port);
    t->ac = a.path[0]   ? redisAsyncConnectUnix(a.path)
            : a.host[0] ? redisAsyncConnect(a.host, a.port)
                        : NULL;
    if (!t->ac || t->ac->err) {
        if (t->ac)
            redisAsyncFree(t->ac);
        t->ac = NULL;
        tail_schedule(t);
        return;
    }
    t->ac->data = t;
    redisLibeventAttach(t->ac, t->base);
    redisAsyncSetConnectCallback(t->ac, tail_connected);
    redisAsyncSetDisconnectCallback(t->ac, tail_disconnected);
    if (a.pass[0]) { /* first on the wire: a refused AUTH fails what follows */
        const char *auth[3] = {"AUTH", a.user[0] ? a.user : a.pass, a.pass};
        redisAsyncCommandArgv(t->ac, NULL, NULL, a.user[0] ? 3 : 2, auth, NULL);
    }
    if (a.db) {
        snprintf(db, sizeof(db), "%d", a.db);
        redisAsyncCommandArgv(t->ac, NULL, NULL, 2, argv, NULL);
    }
    tail_read(t);
}

store_tail *store_tail_new(store *s, rep *r, struct event_base *base, const char *stream_id,
                           uint64_t rev)
{
    store_tail *t = calloc(1, sizeof(*t));

    if (!t)
        return NULL;
    t->s = s;
    t->r = r;
    t->base = base;
    t->backoff_ms = 100;
    t->rev = rev;
    snprintf(t->last_id, sizeof(t->last_id), "%s", stream_id);
    atomic_init(&t->heard_ms, now_ms());
    t->tried_ms = now_ms();
    atomic_init(&t->connected, 0);
    t->retry = evtimer_new(base, tail_retry_cb, t);
    t->watch = event_new(base, -1, EV_PERSIST, tail_watch_cb, t);
    if (!t->retry || !t->watch) {
        if (t->retry)
            event_free(t->retry);
        if (t->watch)
            event_free(t->watch);
        free(t);
        return NULL;
    }
    {
        struct timeval every = {WATCH_EVERY_MS / 1000, (WATCH_EVERY_MS % 1000) * 1000};
        evtimer_add(t->watch, &every);
    }
    tail_connect(t);
    return t;
}

void store_tail_free(store_tail *t)
{
    if (!t)
        return;
    t->closing = 1;
    if (t->ac) {
        redisAsyncContext *ac = t->ac;
        t->ac = NULL;
        ac->data = t;
        redisAsyncFree(ac);
    }
    event_free(t->retry);
    event_free(t->watch);
    free(t);
}

int64_t store_tail_lag_ms(const store_tail *t)
{
    return now_ms() - atomic_load(&((store_tail *)t)->heard_ms);
}

int store_tail_connected(const store_tail *t)
{
    return atomic_load(&((store_tail *)t)->connected);
}
