/*
 * hub.c - the node's delisting watchers and the hub thread that feeds the
 * live ones (see delist.h for the shape). No protobuf: the handlers
 * (svc/api/delist_api.c) turn events into messages.
 *
 * Locks: a call's handlers run under its slot's mutex (the RPC layer) and
 * take the hub's mutex inside it. The hub never holds its mutex while it
 * wakes a call (that takes the slot's mutex): it collects the watchers to
 * wake, each with a reference, and wakes them after unlocking.
 */
#include "delist.h"
#include "log.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PAGE 64          /* notices a catching-up watcher reads at once */
#define CATCHUP_TRIES 16 /* reads before going live gives up for this call */
#define WAIT_MAX_MS 1000 /* longest XREAD BLOCK (the store's timeout is 2 s) */

/* A notice as sent: shared by the watchers it is queued for. */
typedef struct notice {
    atomic_int refs;
    store_notice *sn;
    unsigned kid;
    uint8_t sig[CODEC_SIG_BYTES];
} notice;

typedef struct delist_watcher watcher;

/* A platform with live watchers on this node. */
typedef struct plat {
    struct plat *next;
    char name[STORE_PLATFORM_MAX + 1];
    char last[STORE_CURSOR_MAX + 1]; /* where the hub reads from */
    uint64_t last_ms, last_seq;
    watcher *live;
} plat;

struct delist_watcher {
    delist_hub *h;
    watcher *next_all, *prev_all; /* every watcher of the node */
    watcher *next_live;           /* its platform's live list */
    plat *p;                      /* set while live */
    int refs;                     /* the call, and wakes in progress */
    char platform[STORE_PLATFORM_MAX + 1];
    char last[STORE_CURSOR_MAX + 1]; /* the newest notice queued or sent */
    uint64_t last_ms, last_seq;
    char sent[STORE_CURSOR_MAX + 1]; /* the newest notice sent: the resume point */
    notice **q;
    size_t qhead, qn, qcap, qbytes;
    notice *current; /* being sent; kept until the next message */
    int waiting, hb_due;
    svc_code end_code; /* set: end the stream with this */
    char end_msg[200];
    int64_t last_sent_ms;
    void (*wake)(void *call, uint64_t gen, svc_code code, const char *msg);
    void *wake_call;
    uint64_t wake_gen;
};

struct delist_hub {
    svc *svc;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    plat *plats;
    watcher *all;
    int dirty; /* the set of platforms changed since the hub last read it */
    int stopping;
    long nwatchers; /* in h->all */
    store_reader *rd;
    pthread_t thread;
    int started;
    delist_config cfg;
};

typedef struct wake_item {
    watcher *w;
    svc_code code;
} wake_item;

/* Watchers to wake once the hub's mutex is released. */
typedef struct wake_list {
    wake_item *v;
    size_t n, cap;
} wake_list;

/* --- small things ----------------------------------------------------------- */

static int cursor_cmp(uint64_t ams, uint64_t aseq, uint64_t bms, uint64_t bseq)
{
    if (ams != bms)
        return ams < bms ? -1 : 1;
    return aseq < bseq ? -1 : aseq > bseq;
}

static void set_cursor(char *dst, uint64_t *ms, uint64_t *seq, const store_notice *sn)
{
    memcpy(dst, sn->id, sizeof(sn->id));
    *ms = sn->id_ms;
    *seq = sn->id_seq;
}

static void notice_unref(notice *n)
{
    if (n && atomic_fetch_sub(&n->refs, 1) == 1) {
        free(n->sn);
        free(n);
    }
}

size_t delist_notice_text(const store_notice *n, unsigned kid, char *buf, size_t cap)
{
    size_t len, i;
    int k;

    k = snprintf(buf, buf ? cap : 0,
                 "tracecode-delisting-notice v1\nkey %u\nnotice %s\nplatform %s\ncertificate "
                 "%s\nbatch %" PRIu64 "\nstatus %d\neffective %" PRId64 "\nreason %zu:%s\n"
                 "listings %zu\n",
                 kid, n->id, n->platform, n->cert, n->batch, n->status, n->effective,
                 strlen(n->reason), n->reason, n->nlistings);
    if (k < 0)
        return 0;
    len = (size_t)k;
    for (i = 0; i < n->nlistings; i++) {
        size_t l = strlen(n->listings[i]);
        if (buf && len + l + 1 < cap) {
            memcpy(buf + len, n->listings[i], l);
            buf[len + l] = '\n';
        }
        len += l + 1;
    }
    if (buf && len >= cap)
        return 0;
    return len;
}

/* Wrap a stored notice, signed with the node's active Ed25519 key. */
static notice *notice_new(const svc *s, store_notice *sn)
{
    notice *n = calloc(1, sizeof(*n));
    size_t len = delist_notice_text(sn, 0, NULL, 0);
    const keys_ring *ring = svc_ring(s);
    unsigned kid = keys_active(ring, KEYS_KIND_ED25519);
    char *text = malloc(len + 64);

    if (!n || !text || !kid)
        goto fail;
    len = delist_notice_text(sn, kid, text, len + 64);
    if (!len || keys_sign(ring, (const uint8_t *)text, len, n->sig, &n->kid) != KEYS_OK ||
        n->kid != kid)
        goto fail;
    free(text);
    atomic_init(&n->refs, 1);
    n->sn = sn;
    return n;
fail:
    free(text);
    free(n);
    free(sn);
    return NULL;
}

static int push(watcher *w, notice *n)
{
    if (w->qhead + w->qn == w->qcap) {
        if (w->qhead) {
            memmove(w->q, w->q + w->qhead, w->qn * sizeof(*w->q));
            w->qhead = 0;
        } else {
            size_t cap = w->qcap ? w->qcap * 2 : 16;
            notice **q = realloc(w->q, cap * sizeof(*q));
            if (!q)
                return 0;
            w->q = q;
            w->qcap = cap;
        }
    }
    atomic_fetch_add(&n->refs, 1);
    w->q[w->qhead + w->qn++] = n;
    w->qbytes += n->sn->bytes;
    set_cursor(w->last, &w->last_ms, &w->last_seq, n->sn);
    return 1;
}

static notice *pop(watcher *w)
{
    notice *n;

    if (!w->qn)
        return NULL;
    n = w->q[w->qhead++];
    w->qn--;
    w->qbytes -= n->sn->bytes;
    if (!w->qn)
        w->qhead = 0;
    return n;
}

static void end_watcher(watcher *w, svc_code code, const char *why)
{
    w->end_code = code;
    snprintf(w->end_msg, sizeof(w->end_msg), "%s; resume from cursor \"%s\"", why, w->sent);
}

/* --- the platform table (hub mutex held) ------------------------------------ */

static plat *plat_find(delist_hub *h, const char *name)
{
    plat *p;

    for (p = h->plats; p; p = p->next)
        if (strcmp(p->name, name) == 0)
            return p;
    return NULL;
}

static void unlive(watcher *w)
{
    plat *p = w->p, **pp;
    watcher **ww;

    if (!p)
        return;
    for (ww = &p->live; *ww; ww = &(*ww)->next_live)
        if (*ww == w) {
            *ww = w->next_live;
            break;
        }
    w->p = NULL;
    if (!p->live) {
        for (pp = &w->h->plats; *pp; pp = &(*pp)->next)
            if (*pp == p) {
                *pp = p->next;
                break;
            }
        free(p);
        w->h->dirty = 1;
    }
}

/*
 * A watcher that has read its stream to the end joins its platform's live
 * list - unless the hub has already read past that end (then the watcher
 * reads again). *created: the platform is new to the hub.
 */
static int go_live(watcher *w, int *created)
{
    delist_hub *h = w->h;
    plat *p = plat_find(h, w->platform);

    *created = 0;
    if (p && cursor_cmp(p->last_ms, p->last_seq, w->last_ms, w->last_seq) > 0)
        return 0;
    if (!p) {
        p = calloc(1, sizeof(*p));
        if (!p)
            return 0;
        memcpy(p->name, w->platform, sizeof(p->name));
        memcpy(p->last, w->last, sizeof(p->last));
        p->last_ms = w->last_ms;
        p->last_seq = w->last_seq;
        p->next = h->plats;
        h->plats = p;
        h->dirty = 1;
        *created = 1;
    }
    w->p = p;
    w->next_live = p->live;
    p->live = w;
    return 1;
}

/* Release a reference; the last one frees (hub mutex held). */
static void watcher_unref_locked(watcher *w)
{
    if (--w->refs)
        return;
    while (w->qn)
        notice_unref(pop(w));
    notice_unref(w->current);
    free(w->q);
    free(w);
}

/* Take a reference on w to wake it (hub mutex held). 0 when out of memory:
 * then w stays as it was (waiting, queued), for the next round. */
static int add_wake(wake_list *k, watcher *w, svc_code code)
{
    if (k->n == k->cap) {
        size_t nc = k->cap ? k->cap * 2 : 16;
        wake_item *x = realloc(k->v, nc * sizeof(*x));
        if (!x)
            return 0;
        k->v = x;
        k->cap = nc;
    }
    w->refs++;
    w->waiting = 0;
    k->v[k->n].w = w;
    k->v[k->n++].code = code;
    return 1;
}

/* Wake the collected watchers (hub mutex not held), then drop the refs. */
static void do_wakes(delist_hub *h, wake_list *k)
{
    size_t i;

    for (i = 0; i < k->n; i++) {
        watcher *w = k->v[i].w;
        w->wake(w->wake_call, w->wake_gen, k->v[i].code, w->end_msg);
    }
    pthread_mutex_lock(&h->mu);
    for (i = 0; i < k->n; i++)
        watcher_unref_locked(k->v[i].w);
    pthread_mutex_unlock(&h->mu);
    k->n = 0;
}

/* Make sure the hub reads a platform that just became live here: interrupt
 * its wait until it has taken the new set (a wait that starts after the
 * interrupt but before the hub read the set would miss it, hence the loop). */
static void hub_poke(delist_hub *h)
{
    struct timespec nap = {0, 1000000};
    int i, dirty = 1;

    for (i = 0; i < 200 && dirty; i++) {
        pthread_cond_signal(&h->cv);
        if (store_reader_interrupt(h->svc->store, h->rd))
            break;
        nanosleep(&nap, NULL);
        pthread_mutex_lock(&h->mu);
        dirty = h->dirty;
        pthread_mutex_unlock(&h->mu);
    }
}

/* --- watchers ------------------------------------------------------------------ */

delist_watcher *delist_watch(delist_hub *h, const char *platform, const char *cursor,
                             const svc_ctx *c, svc_status *st)
{
    watcher *w = calloc(1, sizeof(*w));

    if (!w) {
        svc_fail(st, SVC_RESOURCE_EXHAUSTED, "out of memory");
        return NULL;
    }
    w->h = h;
    w->refs = 1;
    memcpy(w->platform, platform, strlen(platform) + 1);
    memcpy(w->last, cursor, strlen(cursor) + 1);
    memcpy(w->sent, cursor, strlen(cursor) + 1);
    if (*cursor)
        store_cursor_parse(cursor, &w->last_ms, &w->last_seq);
    w->wake = c->wake;
    w->wake_call = c->wake_call;
    w->wake_gen = c->wake_gen;
    w->last_sent_ms = svc_now_ms();
    pthread_mutex_lock(&h->mu);
    if (h->stopping) {
        pthread_mutex_unlock(&h->mu);
        free(w);
        svc_fail(st, SVC_UNAVAILABLE, "this node is draining; watch on another");
        return NULL;
    }
    w->next_all = h->all;
    if (h->all)
        h->all->prev_all = w;
    h->all = w;
    h->nwatchers++;
    pthread_mutex_unlock(&h->mu);
    return w;
}

void delist_unwatch(delist_watcher *w)
{
    delist_hub *h = w->h;

    pthread_mutex_lock(&h->mu);
    unlive(w);
    if (w->prev_all)
        w->prev_all->next_all = w->next_all;
    else
        h->all = w->next_all;
    if (w->next_all)
        w->next_all->prev_all = w->prev_all;
    h->nwatchers--;
    watcher_unref_locked(w);
    pthread_mutex_unlock(&h->mu);
}

/* n becomes the notice being sent. */
static void sending(watcher *w, notice *n, delist_event *ev)
{
    w->current = n;
    ev->notice = n->sn;
    ev->kid = n->kid;
    ev->sig = n->sig;
    memcpy(w->sent, n->sn->id, sizeof(n->sn->id));
    w->last_sent_ms = svc_now_ms();
}

/* Read the next page of the stream into the queue (no lock held: one
 * Redis round trip on this worker). Returns how many, or -1. */
static int catch_up(svc_ctx *c, watcher *w, svc_status *st)
{
    char err[STORE_ERR_MAX], from[STORE_CURSOR_MAX + 1];
    store_notice **v;
    size_t n, i, got = 0;
    store_err e;

    pthread_mutex_lock(&w->h->mu);
    memcpy(from, w->last, sizeof(from));
    pthread_mutex_unlock(&w->h->mu);
    e = store_notices_after(c->svc->store, w->platform, from, PAGE, &v, &n, err, sizeof(err));
    if (e) {
        svc_store_fail(st, e, err);
        snprintf(st->msg, sizeof(st->msg), "cannot read notices: %s; resume from cursor \"%s\"",
                 err, w->sent);
        return -1;
    }
    for (i = 0; i < n; i++) {
        notice *nt = notice_new(c->svc, v[i]);
        if (!nt) {
            while (++i < n)
                free(v[i]);
            free(v);
            svc_fail(st, SVC_INTERNAL, "cannot sign a notice; resume from cursor \"%s\"", w->sent);
            return -1;
        }
        pthread_mutex_lock(&w->h->mu);
        if (cursor_cmp(nt->sn->id_ms, nt->sn->id_seq, w->last_ms, w->last_seq) > 0 && push(w, nt))
            got++;
        pthread_mutex_unlock(&w->h->mu);
        notice_unref(nt);
    }
    free(v);
    return (int)got;
}

svc_code delist_next(svc_ctx *c, delist_watcher *w, delist_event *ev, svc_status *st)
{
    delist_hub *h = w->h;
    notice *n;
    int tries, created;

    for (tries = 0;; tries++) {
        pthread_mutex_lock(&h->mu);
        notice_unref(w->current);
        w->current = NULL;
        w->waiting = 0;
        if (w->end_code) {
            svc_fail(st, w->end_code, "%s", w->end_msg);
            pthread_mutex_unlock(&h->mu);
            return st->code;
        }
        if ((n = pop(w)) != NULL) {
            sending(w, n, ev);
            pthread_mutex_unlock(&h->mu);
            return SVC_OK;
        }
        if (w->p || tries >= CATCHUP_TRIES)
            break;
        pthread_mutex_unlock(&h->mu);
        switch (catch_up(c, w, st)) {
        case -1:
            return st->code;
        case 0:
            pthread_mutex_lock(&h->mu);
            if (go_live(w, &created)) {
                pthread_mutex_unlock(&h->mu);
                if (created)
                    hub_poke(h);
                tries = 0;
            } else {
                pthread_mutex_unlock(&h->mu);
            }
            break;
        default:
            break;
        }
    }
    /* hub mutex held: nothing queued */
    if (!w->p) {
        pthread_mutex_unlock(&h->mu);
        return svc_fail(st, SVC_UNAVAILABLE,
                        "notices keep arriving faster than this watcher catches up; resume from "
                        "cursor \"%s\"",
                        w->sent);
    }
    if (w->hb_due) {
        w->hb_due = 0;
        ev->heartbeat = 1;
        w->last_sent_ms = svc_now_ms();
        pthread_mutex_unlock(&h->mu);
        return SVC_OK;
    }
    w->waiting = 1;
    ev->wait = 1;
    pthread_mutex_unlock(&h->mu);
    return SVC_OK;
}

/* --- the hub thread ------------------------------------------------------------ */

/* Queue new notices for the live watchers of their platforms; collect the
 * watchers to wake. Takes ownership of v's notices. A notice that cannot
 * be signed ends its platform's live watchers (they resume from their
 * cursors and read it again), so none skips it. */
static void deliver(delist_hub *h, store_notice **v, size_t n, wake_list *k)
{
    char platform[STORE_PLATFORM_MAX + 1], why[96];
    size_t i;

    for (i = 0; i < n; i++) {
        notice *nt;
        plat *p;
        watcher *w;
        memcpy(platform, v[i]->platform, sizeof(platform));
        nt = notice_new(h->svc, v[i]);
        pthread_mutex_lock(&h->mu);
        p = plat_find(h, platform);
        if (!nt) {
            for (w = p ? p->live : NULL; w; w = w->next_live)
                if (!w->end_code) {
                    end_watcher(w, SVC_INTERNAL, "cannot sign a notice");
                    add_wake(k, w, w->end_code);
                }
            pthread_mutex_unlock(&h->mu);
            continue;
        }
        if (p && cursor_cmp(nt->sn->id_ms, nt->sn->id_seq, p->last_ms, p->last_seq) > 0) {
            set_cursor(p->last, &p->last_ms, &p->last_seq, nt->sn);
            for (w = p->live; w; w = w->next_live) {
                if (w->end_code ||
                    cursor_cmp(nt->sn->id_ms, nt->sn->id_seq, w->last_ms, w->last_seq) <= 0)
                    continue;
                if (w->qbytes + nt->sn->bytes > h->cfg.buffer_bytes || !push(w, nt)) {
                    snprintf(why, sizeof(why),
                             "the watcher fell behind (%zu notices, %zu bytes buffered)", w->qn,
                             w->qbytes);
                    end_watcher(w, SVC_ABORTED, why);
                    add_wake(k, w, w->end_code);
                } else if (w->waiting) {
                    add_wake(k, w, SVC_OK);
                }
            }
        }
        pthread_mutex_unlock(&h->mu);
        notice_unref(nt);
    }
    free(v);
}

/* Heartbeats for watchers idle for heartbeat_ms. */
static void heartbeats(delist_hub *h, wake_list *k)
{
    int64_t now = svc_now_ms();
    watcher *w;

    pthread_mutex_lock(&h->mu);
    for (w = h->all; w; w = w->next_all)
        if (w->waiting && now - w->last_sent_ms >= h->cfg.heartbeat_ms && add_wake(k, w, SVC_OK))
            w->hb_due = 1;
    pthread_mutex_unlock(&h->mu);
}

/* Where the hub reads a platform's stream from (a copy, for the wait). */
typedef struct readpos {
    char name[STORE_PLATFORM_MAX + 1];
    char last[STORE_CURSOR_MAX + 1];
} readpos;

static void *hub_main(void *arg)
{
    delist_hub *h = arg;
    char err[STORE_ERR_MAX];
    readpos *pos = NULL;
    const char **ptr = NULL;
    size_t cap = 0;
    wake_list wakes = {NULL, 0, 0};
    int backoff = 100, warned = 0;
    int block =
        h->cfg.heartbeat_ms / 2 < WAIT_MAX_MS ? (int)(h->cfg.heartbeat_ms / 2) : WAIT_MAX_MS;

    if (block < 10)
        block = 10;
    for (;;) {
        store_notice **v = NULL;
        size_t n = 0, np = 0, i;
        store_err e = STORE_OK;
        plat *p;

        pthread_mutex_lock(&h->mu);
        if (h->stopping) {
            pthread_mutex_unlock(&h->mu);
            break;
        }
        for (p = h->plats; p; p = p->next)
            np++;
        if (np > cap) {
            readpos *a = realloc(pos, np * 2 * sizeof(*pos));
            const char **b = a ? realloc(ptr, np * 4 * sizeof(*ptr)) : NULL;
            if (a)
                pos = a;
            if (b) {
                ptr = b;
                cap = np * 2;
            }
        }
        np = 0;
        for (p = h->plats; p && np < cap; p = p->next, np++) {
            memcpy(pos[np].name, p->name, sizeof(pos[0].name));
            memcpy(pos[np].last, p->last, sizeof(pos[0].last));
        }
        for (i = 0; i < np; i++) {
            ptr[i] = pos[i].name;
            ptr[np + i] = pos[i].last;
        }
        h->dirty = 0;
        if (!np) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_nsec += (long)block * 1000000L;
            until.tv_sec += until.tv_nsec / 1000000000L;
            until.tv_nsec %= 1000000000L;
            pthread_cond_timedwait(&h->cv, &h->mu, &until);
            pthread_mutex_unlock(&h->mu);
        } else {
            pthread_mutex_unlock(&h->mu);
            e = store_reader_wait(h->rd, ptr, ptr + np, np, block, &v, &n, err, sizeof(err));
        }
        if (e) {
            struct timespec nap = {backoff / 1000, (backoff % 1000) * 1000000L};
            if (!warned++)
                tclog(TCLOG_WARN, "delisting watchers: %s (retrying)", err);
            nanosleep(&nap, NULL);
            backoff = backoff * 2 > 2000 ? 2000 : backoff * 2;
        } else {
            if (warned)
                tclog(TCLOG_INFO, "delisting watchers: redis is back");
            warned = 0;
            backoff = 100;
        }
        if (n)
            deliver(h, v, n, &wakes);
        heartbeats(h, &wakes);
        do_wakes(h, &wakes);
    }
    free(pos);
    free(ptr);
    free(wakes.v);
    return NULL;
}

delist_hub *delist_hub_start(svc *s, const delist_config *cfg, char *err, size_t errcap)
{
    delist_hub *h = calloc(1, sizeof(*h));

    if (!h) {
        snprintf(err, errcap, "out of memory");
        return NULL;
    }
    h->svc = s;
    h->cfg = *cfg;
    if (h->cfg.heartbeat_ms <= 0)
        h->cfg.heartbeat_ms = DELIST_HEARTBEAT_MS;
    if (!h->cfg.buffer_bytes)
        h->cfg.buffer_bytes = DELIST_BUFFER_BYTES;
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    if (store_reader_open(s->store, &h->rd, err, errcap) != STORE_OK) {
        delist_hub_free(h);
        return NULL;
    }
    if (pthread_create(&h->thread, NULL, hub_main, h) != 0) {
        snprintf(err, errcap, "cannot start the delisting hub thread");
        delist_hub_free(h);
        return NULL;
    }
    h->started = 1;
    return h;
}

void delist_hub_stop(delist_hub *h)
{
    wake_list wakes = {NULL, 0, 0};
    watcher *w;

    if (!h)
        return;
    pthread_mutex_lock(&h->mu);
    h->stopping = 1;
    for (w = h->all; w; w = w->next_all) {
        end_watcher(w, SVC_UNAVAILABLE, "this node is draining; watch on another node");
        add_wake(&wakes, w, SVC_UNAVAILABLE); /* if not, its next message ends it */
    }
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
    do_wakes(h, &wakes);
    free(wakes.v);
    if (h->started) {
        store_reader_interrupt(h->svc->store, h->rd);
        pthread_join(h->thread, NULL);
        h->started = 0;
    }
}

void delist_hub_free(delist_hub *h)
{
    plat *p;

    if (!h)
        return;
    delist_hub_stop(h);
    while ((p = h->plats) != NULL) {
        h->plats = p->next;
        free(p);
    }
    store_reader_free(h->rd);
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

size_t delist_metrics(const svc *s, char *buf, size_t cap, size_t n)
{
    delist_hub *h = s->hub;
    long watchers = 0, platforms = 0;

    if (h) {
        pthread_mutex_lock(&h->mu);
        watchers = h->nwatchers;
        for (const plat *p = h->plats; p; p = p->next)
            platforms += p->live != NULL;
        pthread_mutex_unlock(&h->mu);
    }
    return svc_appendf(buf, cap, n,
                       "# HELP tracesvc_delist_watchers Delisting watchers (WatchDelistings "
                       "streams) open on this node.\n# TYPE tracesvc_delist_watchers gauge\n"
                       "tracesvc_delist_watchers %ld\n"
                       "# HELP tracesvc_delist_platforms_live Platforms with a watcher caught up "
                       "on this node.\n# TYPE tracesvc_delist_platforms_live gauge\n"
                       "tracesvc_delist_platforms_live %ld\n",
                       watchers, platforms);
}
