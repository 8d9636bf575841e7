/*
 * sequencer.c - the audit thread: it holds or waits for the sequencing
 * lease, hashes new entries into the tree, signs heads (docs/AUDIT.md), and
 * once a minute appends the counts (counts.c); and the key records.
 */
#include "audit_int.h"
#include "log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* --- sequencing ---------------------------------------------------------- */

/* merkle_get over Redis, one hash at a time (frontier loads: <= 64). */
static int get_one(void *ctx, unsigned level, uint64_t index, merkle_hash out)
{
    char err[STORE_ERR_MAX];

    return store_audit_hashes(ctx, &level, &index, 1, out, err, sizeof(err)) == STORE_OK ? 0 : 1;
}

/* The new hashes of one commit, per level. */
typedef struct growth {
    uint8_t *buf[64];
    size_t len[64], cap[64];
    unsigned levels;
    int oom;
} growth;

static void grow_emit(void *ctx, unsigned level, uint64_t index, const merkle_hash h)
{
    growth *g = ctx;

    (void)index;
    if (g->len[level] + MERKLE_HASH_BYTES > g->cap[level]) {
        size_t cap = g->cap[level] ? 2 * g->cap[level] : 64 * MERKLE_HASH_BYTES;
        uint8_t *p = realloc(g->buf[level], cap);
        if (!p) {
            g->oom = 1;
            return;
        }
        g->buf[level] = p;
        g->cap[level] = cap;
    }
    memcpy(g->buf[level] + g->len[level], h, MERKLE_HASH_BYTES);
    g->len[level] += MERKLE_HASH_BYTES;
    if (level + 1 > g->levels)
        g->levels = level + 1;
}

static int sign_head(audit_log *a, store_tree_head *h)
{
    char text[MERKLE_HEAD_TEXT_MAX];
    const keys_ring *ring = svc_ring(a->svc);
    unsigned kid = keys_active(ring, KEYS_KIND_ED25519), got = 0;
    size_t len;

    if (!kid)
        return -1;
    h->kid = kid;
    len = merkle_head_text(h->size, h->root, h->time_unix, kid, text, sizeof(text));
    if (!len || len >= sizeof(text) ||
        keys_sign(ring, (const uint8_t *)text, len, h->sig, &got) != KEYS_OK || got != kid)
        return -1;
    return 0;
}

/* Load the stored tree's right edge and check it against the signed head:
 * a stored hash changed under us stops sequencing, loudly. */
static int load(audit_log *a)
{
    char err[STORE_ERR_MAX];
    store_tree_head h;
    merkle_hash root;

    if (store_audit_head(a->svc->store, &h, err, sizeof(err)) != STORE_OK) {
        tclog(TCLOG_WARN, "audit: cannot read the tree head: %s", err);
        return -1;
    }
    if (merkle_frontier_load(&a->f, h.size, get_one, a->svc->store) != 0) {
        tclog(TCLOG_WARN, "audit: cannot load the tree of size %" PRIu64 "", h.size);
        return -1;
    }
    merkle_frontier_root(&a->f, root);
    if (h.size && memcmp(root, h.root, sizeof(root)) != 0) {
        tclog(TCLOG_WARN,
              "audit: the stored tree does not match its signed head at size %" PRIu64
              "; not sequencing (see docs/AUDIT.md)",
              h.size);
        return -1;
    }
    a->head_time = h.time_unix;
    atomic_store(&a->size, h.size);
    a->loaded = 1;
    return 0;
}

/* One round as the sequencer: integrate up to a page of new entries. */
static void sequence(audit_log *a)
{
    char err[STORE_ERR_MAX];
    store_audit_entry *e = NULL;
    uint64_t count = 0, old = a->f.size;
    size_t n = 0, i;
    growth g;
    store_tree_head h;
    store_err se;
    int64_t now = svc_now_unix();

    if (!a->loaded && load(a) != 0)
        return;
    if (store_audit_count(a->svc->store, &count, err, sizeof(err)) != STORE_OK)
        return;
    if (count <= old && (old == 0 || now - a->head_time < AUDIT_IDLE_HEAD_S))
        return;
    if (count > old && store_audit_read(a->svc->store, old, (size_t)(count - old), &e, &n, err,
                                        sizeof(err)) != STORE_OK) {
        tclog(TCLOG_INFO, "audit: %s", err);
        return;
    }
    memset(&g, 0, sizeof(g));
    for (i = 0; i < n; i++) {
        merkle_hash leaf;
        if (!e[i].text || e[i].len == 0) { /* not written yet, or lost: stop before it */
            tclog(TCLOG_INFO, "audit: entry %" PRIu64 " is missing", old + i);
            break;
        }
        merkle_leaf_hash(e[i].text, e[i].len, leaf);
        merkle_frontier_add(&a->f, leaf, grow_emit, &g);
    }
    store_audit_entries_free(e, n);
    memset(&h, 0, sizeof(h));
    h.size = a->f.size;
    merkle_frontier_root(&a->f, h.root);
    h.time_unix = now;
    if (g.oom || sign_head(a, &h) != 0) {
        tclog(TCLOG_WARN, "audit: cannot %s",
              g.oom ? "grow the tree: out of memory" : "sign the tree head");
        a->loaded = 0;
    } else {
        se = store_audit_commit(a->svc->store, a->token, old, &h, (const uint8_t *const *)g.buf,
                                g.len, g.levels, err, sizeof(err));
        if (se == STORE_OK) {
            a->head_time = now;
            atomic_store(&a->size, h.size);
        } else {
            /* lost the lease, or another node moved the tree: start over */
            if (se != STORE_ERR_UNAVAILABLE)
                tclog(TCLOG_INFO, "audit: %s", err);
            a->loaded = 0;
        }
    }
    for (unsigned l = 0; l < 64; l++)
        free(g.buf[l]);
}

/* The notices not yet acknowledged, for /metrics (every node reads them:
 * two small Redis calls a second, and any node's /metrics tells). */
static void read_unacked(audit_log *a)
{
    store_unacked_row rows[AUDIT_UNACKED_PLATFORMS];
    size_t n = AUDIT_UNACKED_PLATFORMS;
    uint64_t total;
    char err[STORE_ERR_MAX];
    int ok = store_unacked(a->svc->store, AUDIT_UNACKED_SCAN, rows, &n, &total, err, sizeof(err)) ==
             STORE_OK;

    pthread_mutex_lock(&a->umu);
    a->unacked_known = ok;
    if (ok) {
        memcpy(a->unacked, rows, n * sizeof(rows[0]));
        a->nunacked = n;
        a->unacked_total = total;
    }
    pthread_mutex_unlock(&a->umu);
}

static void *run(void *arg)
{
    audit_log *a = arg;
    char err[STORE_ERR_MAX];
    unsigned ticks = 0;
    int second;

    pthread_mutex_lock(&a->mu);
    while (!a->stop) {
        struct timespec ts;
        int64_t minute = svc_now_unix() / 60 * 60;
        int held = 0;
        pthread_mutex_unlock(&a->mu);

        audit_forgery_tick(a, svc_now_unix());
        if (minute != a->minute) {
            audit_flush_counts(a, a->minute);
            a->minute = minute;
        }
        if (store_audit_lease(a->svc->store, a->token, AUDIT_LEASE_MS, &held, err, sizeof(err)) !=
            STORE_OK)
            held = 0;
        if (held != atomic_load(&a->leader)) {
            atomic_store(&a->leader, held);
            a->loaded = 0;
            tclog(TCLOG_INFO, "audit: %s sequencing the log", held ? "now" : "no longer");
        }
        second = ++ticks % (1000 / AUDIT_TICK_MS) == 0; /* for /metrics: once a second */
        if (held) {
            sequence(a);
        } else if (second) {
            store_tree_head h;
            if (store_audit_head(a->svc->store, &h, err, sizeof(err)) == STORE_OK)
                atomic_store(&a->size, h.size);
        }
        if (second)
            read_unacked(a);

        pthread_mutex_lock(&a->mu);
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += AUDIT_TICK_MS * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        if (!a->stop)
            pthread_cond_timedwait(&a->cv, &a->mu, &ts);
    }
    pthread_mutex_unlock(&a->mu);
    audit_flush_counts(a, a->minute);
    if (atomic_load(&a->leader)) {
        sequence(a); /* the last counts and anything pending */
        store_audit_release(a->svc->store, a->token, err, sizeof(err));
    }
    return NULL;
}

audit_log *audit_start(svc *s, const char *node_id, char *err, size_t errcap)
{
    audit_log *a = calloc(1, sizeof(*a));
    uint8_t rnd[8];
    FILE *f;

    if (!a) {
        snprintf(err, errcap, "out of memory");
        return NULL;
    }
    a->svc = s;
    snprintf(a->node, sizeof(a->node), "%s", node_id);
    f = fopen("/dev/urandom", "rb");
    if (!f || fread(rnd, 1, sizeof(rnd), f) != sizeof(rnd)) {
        if (f)
            fclose(f);
        free(a);
        snprintf(err, errcap, "cannot read /dev/urandom");
        return NULL;
    }
    fclose(f);
    snprintf(a->token, sizeof(a->token), "%s/%02x%02x%02x%02x%02x%02x%02x%02x", node_id, rnd[0],
             rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
    a->minute = svc_now_unix() / 60 * 60;
    pthread_mutex_init(&a->mu, NULL);
    pthread_mutex_init(&a->umu, NULL);
    pthread_cond_init(&a->cv, NULL);
    if (pthread_create(&a->thread, NULL, run, a) != 0) {
        snprintf(err, errcap, "cannot start the audit thread");
        free(a);
        return NULL;
    }
    return a;
}

void audit_stop(audit_log *a)
{
    if (!a)
        return;
    pthread_mutex_lock(&a->mu);
    a->stop = 1;
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&a->mu);
    pthread_join(a->thread, NULL);
    pthread_cond_destroy(&a->cv);
    pthread_mutex_destroy(&a->mu);
    pthread_mutex_destroy(&a->umu);
    free(a);
}

uint64_t audit_tree_size(const audit_log *a)
{
    return a ? atomic_load(&a->size) : 0;
}

int audit_sequencing(const audit_log *a)
{
    return a ? atomic_load(&a->leader) : 0;
}

store_err audit_note_keys(svc *s, const char *node_id, char *err, size_t errcap)
{
    char actor[SVC_SUBJECT_MAX + 8];
    const keys_ring *ring = svc_ring(s);
    size_t len = keys_export_public(ring, NULL, 0);
    char *json = malloc(len + 1);
    store_err e;

    if (!json)
        return STORE_ERR_NOMEM;
    keys_export_public(ring, json, len + 1);
    snprintf(actor, sizeof(actor), "node:%s", node_id);
    e = store_audit_keys(s->store, actor, json, strlen(json), err, errcap);
    free(json);
    return e;
}
