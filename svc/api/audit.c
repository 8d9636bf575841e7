/*
 * audit.c - the sequencer thread, per-minute verification counts, key
 * rotation entries and AuditService (see audit.h, docs/AUDIT.md).
 */
#include "audit.h"
#include "limit.h"
#include "check.h"
#include "merkle.h"
#include "verify.h"

#include "tracecode/v1/audit.pb-c.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KIND_MAX 32
#define QUERY_LIMIT_MAX 1000
#define QUERY_LIMIT_DEFAULT 100
#define QUERY_ROUNDS 64 /* store queries per page before a short page ends it */

#define FORGERY_WINDOW_MAX 600 /* seconds */

/* One platform's verdict counts of the current minute, and (the audit
 * thread's own) its last seconds for the forgery signal. */
typedef struct vslot {
    _Atomic int state; /* 0 free, 1 being named, 2 named */
    char name[SVC_SUBJECT_MAX + 1];
    _Atomic uint32_t n[TC_VERDICT_SLOTS];
    uint64_t seen_all, seen_bad; /* n[] as last sampled */
    uint32_t ring_all[FORGERY_WINDOW_MAX], ring_bad[FORGERY_WINDOW_MAX];
    int64_t ring_at;                 /* the second ring[ring_at % window] holds */
    _Atomic uint32_t share_permille; /* over the window, for /metrics */
    _Atomic int flagged;
} vslot;

struct audit_log {
    svc *svc;
    char node[SVC_SUBJECT_MAX + 1];
    char token[SVC_SUBJECT_MAX + 40]; /* the lease holder's name: node + random */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    _Atomic uint64_t size;
    _Atomic int leader;
    /* sequencer state (the thread's own) */
    int loaded;
    merkle_frontier f;
    int64_t head_time;
    /* counting */
    int64_t minute;
    vslot slot[AUDIT_PLATFORMS];
    vslot other; /* platforms beyond the table */
};

/* --- per-minute verification counts -------------------------------------- */

static uint64_t fnv(const char *s)
{
    uint64_t h = 1469598103934665603ULL;

    while (*s)
        h = (h ^ (uint8_t)*s++) * 1099511628211ULL;
    return h;
}

static vslot *slot_of(audit_log *a, const char *platform)
{
    size_t i = (size_t)(fnv(platform) % AUDIT_PLATFORMS);

    for (size_t probe = 0; probe < 16; probe++, i = (i + 1) % AUDIT_PLATFORMS) {
        vslot *v = &a->slot[i];
        int s = atomic_load_explicit(&v->state, memory_order_acquire);
        if (s == 0) {
            int want = 0;
            if (atomic_compare_exchange_strong(&v->state, &want, 1)) {
                snprintf(v->name, sizeof(v->name), "%s", platform);
                atomic_store_explicit(&v->state, 2, memory_order_release);
                return v;
            }
            s = want;
        }
        while (s == 1) /* another thread is naming it: a few stores away */
            s = atomic_load_explicit(&v->state, memory_order_acquire);
        if (strcmp(v->name, platform) == 0)
            return v;
    }
    return &a->other;
}

void audit_count_one(audit_log *a, const char *platform, int verdict)
{
    if (a)
        atomic_fetch_add_explicit(&slot_of(a, platform)->n[verdict & (TC_VERDICT_SLOTS - 1)], 1,
                                  memory_order_relaxed);
}

void audit_count(audit_log *a, const char *platform, const uint32_t k[TC_VERDICT_SLOTS])
{
    vslot *v;

    if (!a)
        return;
    v = slot_of(a, platform);
    for (int i = 0; i < TC_VERDICT_SLOTS; i++)
        if (k[i])
            atomic_fetch_add_explicit(&v->n[i], k[i], memory_order_relaxed);
}

/* --- the forgery signal ------------------------------------------------------ */

static void forgery_entry(audit_log *a, vslot *v, const char *kind, uint64_t all, uint64_t bad,
                          const uint32_t *n)
{
    char err[STORE_ERR_MAX], actor[SVC_SUBJECT_MAX + 8], body[512];
    size_t len;

    snprintf(actor, sizeof(actor), "node:%s", a->node);
    len = svc_appendf(body, sizeof(body), 0,
                      "platform %s\nnode %s\nwindow %u\nverified %" PRIu64 "\nforged %" PRIu32
                      "\nmalformed %" PRIu32 "\nforged_or_malformed %" PRIu64
                      "\nthreshold_percent %u\nthrottle %.0f",
                      v->name, a->node, a->svc->forgery_window_s, all, n[TC_FORGED],
                      n[TC_MALFORMED], bad, a->svc->forgery_percent, a->svc->forgery_throttle);
    if (store_audit_append(a->svc->store, kind, actor, v->name, body,
                           len < sizeof(body) ? len : sizeof(body) - 1, NULL, err,
                           sizeof(err)) != STORE_OK)
        fprintf(stderr, "tracesvc: audit: %s entry for platform %s lost: %s\n", kind, v->name, err);
}

/* Once a second: each platform's new answers into its ring; past the
 * threshold, flag it (an audit entry, a log line, the throttle); back
 * under half of it, lift the flag. */
static void forgery_tick(audit_log *a, int64_t now_s)
{
    uint32_t w = a->svc->forgery_window_s;
    size_t i;

    if (!w || !a->svc->forgery_percent)
        return;
    if (w > FORGERY_WINDOW_MAX)
        w = FORGERY_WINDOW_MAX;
    for (i = 0; i < AUDIT_PLATFORMS; i++) {
        vslot *v = &a->slot[i];
        uint64_t all = 0, bad = 0, cur_all = 0, cur_bad;
        uint32_t n[TC_VERDICT_SLOTS], k, share;
        int64_t s;
        if (atomic_load_explicit(&v->state, memory_order_acquire) != 2)
            continue;
        for (k = 0; k < TC_VERDICT_SLOTS; k++)
            cur_all += n[k] = atomic_load_explicit(&v->n[k], memory_order_relaxed);
        cur_bad = (uint64_t)n[TC_FORGED] + n[TC_MALFORMED];
        /* Seconds with no tick (a slow Redis) count as empty. */
        for (s = v->ring_at + 1; s <= now_s && s <= v->ring_at + (int64_t)w; s++) {
            v->ring_all[s % w] = 0;
            v->ring_bad[s % w] = 0;
        }
        v->ring_at = now_s;
        v->ring_all[now_s % w] += (uint32_t)(cur_all - v->seen_all);
        v->ring_bad[now_s % w] += (uint32_t)(cur_bad - v->seen_bad);
        v->seen_all = cur_all;
        v->seen_bad = cur_bad;
        for (k = 0; k < w; k++) {
            all += v->ring_all[k];
            bad += v->ring_bad[k];
        }
        share = all ? (uint32_t)(bad * 1000 / all) : 0;
        atomic_store_explicit(&v->share_permille, share, memory_order_relaxed);
        if (!atomic_load(&v->flagged) && all >= a->svc->forgery_min &&
            share >= a->svc->forgery_percent * 10) {
            atomic_store(&v->flagged, 1);
            limits_flag(a->svc->limits, v->name, a->svc->forgery_throttle);
            fprintf(stderr,
                    "tracesvc: forgery signal: platform %s: %" PRIu64 " of %" PRIu64
                    " codes forged or malformed in %u s%s\n",
                    v->name, bad, all, w, a->svc->forgery_throttle > 0 ? "; throttled" : "");
            forgery_entry(a, v, "forgery", all, bad, n);
        } else if (atomic_load(&v->flagged) &&
                   (all < a->svc->forgery_min / 2 || share < a->svc->forgery_percent * 5)) {
            atomic_store(&v->flagged, 0);
            limits_flag(a->svc->limits, v->name, 0);
            fprintf(stderr, "tracesvc: forgery signal: platform %s is back under the threshold\n",
                    v->name);
            forgery_entry(a, v, "forgery-cleared", all, bad, n);
        }
    }
}

size_t audit_metrics(const audit_log *a, char *buf, size_t cap, size_t n)
{
    size_t i;

    n = svc_appendf(buf, cap, n,
                    "# HELP tracesvc_forged_share Share of FORGED and MALFORMED answers per "
                    "platform over the forgery window.\n# TYPE tracesvc_forged_share gauge\n");
    for (i = 0; a && i < AUDIT_PLATFORMS; i++)
        if (atomic_load_explicit(&a->slot[i].state, memory_order_acquire) == 2)
            n = svc_appendf(
                buf, cap, n, "tracesvc_forged_share{platform=\"%s\"} %.3f\n", a->slot[i].name,
                atomic_load_explicit(&a->slot[i].share_permille, memory_order_relaxed) / 1000.0);
    n = svc_appendf(buf, cap, n,
                    "# HELP tracesvc_forgery_suspected 1 while a platform is past the forgery "
                    "threshold.\n# TYPE tracesvc_forgery_suspected gauge\n");
    for (i = 0; a && i < AUDIT_PLATFORMS; i++)
        if (atomic_load_explicit(&a->slot[i].state, memory_order_acquire) == 2)
            n = svc_appendf(buf, cap, n, "tracesvc_forgery_suspected{platform=\"%s\"} %d\n",
                            a->slot[i].name, atomic_load(&a->slot[i].flagged));
    return n;
}

/* Append one entry per platform counted in minute (unix seconds of its
 * start), and zero the counts. */
static void flush_counts(audit_log *a, int64_t minute)
{
    char err[STORE_ERR_MAX], actor[SVC_SUBJECT_MAX + 8];

    snprintf(actor, sizeof(actor), "node:%s", a->node);
    for (size_t i = 0; i <= AUDIT_PLATFORMS; i++) {
        vslot *v = i < AUDIT_PLATFORMS ? &a->slot[i] : &a->other;
        char body[1024];
        uint32_t n[TC_VERDICT_SLOTS];
        uint64_t total = 0;
        size_t len;
        if (v != &a->other && atomic_load_explicit(&v->state, memory_order_acquire) != 2)
            continue;
        for (int k = 0; k < TC_VERDICT_SLOTS; k++)
            total += n[k] = atomic_exchange_explicit(&v->n[k], 0, memory_order_relaxed);
        /* The forgery ring sampled n[] as it grew: from zero again. */
        v->seen_all = v->seen_bad = 0;
        if (!total)
            continue;
        len = svc_appendf(body, sizeof(body), 0, "minute %" PRId64 "\nnode %s\ntotal %" PRIu64,
                          minute, a->node, total);
        for (int k = 0; k < TC_VERDICT_SLOTS; k++)
            if (n[k])
                len =
                    svc_appendf(body, sizeof(body), len, "\n%s %" PRIu32, tc_verdict_name(k), n[k]);
        if (store_audit_append(a->svc->store, "verify", actor,
                               v == &a->other ? "(other platforms)" : v->name, body,
                               len < sizeof(body) ? len : sizeof(body) - 1, NULL, err,
                               sizeof(err)) != STORE_OK)
            fprintf(stderr, "tracesvc: audit: verification counts of minute %" PRId64 " lost: %s\n",
                    minute, err);
    }
}

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
        fprintf(stderr, "tracesvc: audit: cannot read the tree head: %s\n", err);
        return -1;
    }
    if (merkle_frontier_load(&a->f, h.size, get_one, a->svc->store) != 0) {
        fprintf(stderr, "tracesvc: audit: cannot load the tree of size %" PRIu64 "\n", h.size);
        return -1;
    }
    merkle_frontier_root(&a->f, root);
    if (h.size && memcmp(root, h.root, sizeof(root)) != 0) {
        fprintf(stderr,
                "tracesvc: audit: the stored tree does not match its signed head at size %" PRIu64
                "; not sequencing (see docs/AUDIT.md)\n",
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
        fprintf(stderr, "tracesvc: audit: %s\n", err);
        return;
    }
    memset(&g, 0, sizeof(g));
    for (i = 0; i < n; i++) {
        merkle_hash leaf;
        if (!e[i].text || e[i].len == 0) { /* not written yet, or lost: stop before it */
            fprintf(stderr, "tracesvc: audit: entry %" PRIu64 " is missing\n", old + i);
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
        fprintf(stderr, "tracesvc: audit: cannot %s\n",
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
                fprintf(stderr, "tracesvc: audit: %s\n", err);
            a->loaded = 0;
        }
    }
    for (unsigned l = 0; l < 64; l++)
        free(g.buf[l]);
}

static void *run(void *arg)
{
    audit_log *a = arg;
    char err[STORE_ERR_MAX];
    unsigned ticks = 0;

    pthread_mutex_lock(&a->mu);
    while (!a->stop) {
        struct timespec ts;
        int64_t minute = svc_now_unix() / 60 * 60;
        int held = 0;
        pthread_mutex_unlock(&a->mu);

        forgery_tick(a, svc_now_unix());
        if (minute != a->minute) {
            flush_counts(a, a->minute);
            a->minute = minute;
        }
        if (store_audit_lease(a->svc->store, a->token, AUDIT_LEASE_MS, &held, err, sizeof(err)) !=
            STORE_OK)
            held = 0;
        if (held != atomic_load(&a->leader)) {
            atomic_store(&a->leader, held);
            a->loaded = 0;
            fprintf(stderr, "tracesvc: audit: %s sequencing the log\n", held ? "now" : "no longer");
        }
        if (held) {
            sequence(a);
        } else if (++ticks % (1000 / AUDIT_TICK_MS) == 0) { /* for /metrics: once a second */
            store_tree_head h;
            if (store_audit_head(a->svc->store, &h, err, sizeof(err)) == STORE_OK)
                atomic_store(&a->size, h.size);
        }

        pthread_mutex_lock(&a->mu);
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += AUDIT_TICK_MS * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        if (!a->stop)
            pthread_cond_timedwait(&a->cv, &a->mu, &ts);
    }
    pthread_mutex_unlock(&a->mu);
    flush_counts(a, a->minute);
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

/* --- AuditService -------------------------------------------------------- */

svc_code audit_log_query(svc_ctx *c, const char *subject, const char *what, svc_status *st)
{
    char err[STORE_ERR_MAX], actor[SVC_ACTOR_MAX];
    store_err e;

    svc_actor(c, actor, sizeof(actor));
    e = store_audit_append(c->svc->store, "query", actor, subject, what, strlen(what), NULL, err,
                           sizeof(err));
    if (e == STORE_OK)
        return SVC_OK;
    return svc_fail(st, e == STORE_ERR_TIMEOUT ? SVC_DEADLINE_EXCEEDED : SVC_UNAVAILABLE,
                    "the query could not be recorded in the audit log, so it was not run: %s", err);
}

typedef struct query_state {
    store_audit_entry *e;
    size_t n, next;
} query_state;

/* Single-line printable text of at most max bytes ("" allowed). */
static int check_field(svc_status *st, const char *field, const char *s, size_t max)
{
    return *s == '\0' || check_text(st, field, s, max, 0);
}

svc_code api_query_audit_open(svc_ctx *c, const void *req, void **state, svc_status *st)
{
    const Tracecode__V1__QueryAuditRequest *q = req;
    store_audit_query sq = {.subject = q->subject, .kind = q->kind};
    query_state *qs = svc_alloc(c, sizeof(*qs));
    uint32_t limit = q->limit ? q->limit : QUERY_LIMIT_DEFAULT;
    char err[STORE_ERR_MAX], what[512];

    if (!qs)
        return svc_fail(st, SVC_RESOURCE_EXHAUSTED, "out of call memory");
    memset(qs, 0, sizeof(*qs));
    if (!check_field(st, "subject", q->subject, STORE_AUDIT_FIELD_MAX) ||
        !check_field(st, "kind", q->kind, KIND_MAX))
        return st->code;
    if (q->from_unix < 0 || q->to_unix < 0 || (q->to_unix && q->to_unix < q->from_unix))
        return svc_fail(st, SVC_INVALID_ARGUMENT,
                        "from_unix and to_unix must not be negative, and to_unix (0: now) not "
                        "before from_unix");
    if (q->from_unix > INT64_MAX / 1000 - 1 || q->to_unix > INT64_MAX / 1000 - 1)
        return svc_fail(st, SVC_INVALID_ARGUMENT, "from_unix and to_unix are too large");
    if (limit > QUERY_LIMIT_MAX)
        return svc_fail(st, SVC_INVALID_ARGUMENT, "limit %u is over %d", limit, QUERY_LIMIT_MAX);
    if (*q->page_token) {
        char *end;
        if (strlen(q->page_token) > 20 || q->page_token[0] < '0' || q->page_token[0] > '9')
            return svc_fail(st, SVC_INVALID_ARGUMENT,
                            "page_token must be the index after the last entry received");
        sq.start = strtoull(q->page_token, &end, 10);
        if (*end)
            return svc_fail(st, SVC_INVALID_ARGUMENT,
                            "page_token must be the index after the last entry received");
    }
    sq.from_ms = q->from_unix * 1000;
    sq.to_ms = q->to_unix ? q->to_unix * 1000 + 999 : 0;
    snprintf(what, sizeof(what),
             "QueryAudit subject=%s kind=%s from_unix=%" PRId64 " to_unix=%" PRId64
             " limit=%u page_token=%s",
             q->subject, q->kind, q->from_unix, q->to_unix, limit, q->page_token);
    if (audit_log_query(c, q->subject, what, st) != SVC_OK)
        return st->code;
    if (!(qs->e = svc_alloc(c, limit * sizeof(*qs->e))))
        return svc_fail(st, SVC_RESOURCE_EXHAUSTED, "out of call memory");

    /* Fill one page: a short page means there is no more. */
    for (int round = 0; round < QUERY_ROUNDS && qs->n < limit; round++) {
        store_audit_entry *e;
        size_t n;
        uint64_t next;
        store_err se;
        sq.limit = limit - (uint32_t)qs->n;
        se = store_audit_query_run(c->svc->store, &sq, &e, &n, &next, err, sizeof(err));
        if (se)
            return svc_store_fail(st, se, err);
        for (size_t i = 0; i < n && qs->n < limit; i++) { /* into the call's arena */
            store_audit_entry *x = &qs->e[qs->n++];
            *x = e[i];
            x->text = svc_alloc(c, e[i].len + 1);
            if (!x->text) {
                store_audit_entries_free(e, n);
                return svc_fail(st, SVC_RESOURCE_EXHAUSTED, "out of call memory");
            }
            memcpy(x->text, e[i].text, e[i].len + 1);
            x->body = e[i].body ? x->text + (e[i].body - e[i].text) : NULL;
        }
        store_audit_entries_free(e, n);
        if (next == UINT64_MAX)
            break;
        sq.start = next;
    }
    *state = qs;
    return SVC_OK;
}

svc_code api_query_audit_next(svc_ctx *c, void *state, void *resp, int *done, svc_status *st)
{
    query_state *qs = state;
    Tracecode__V1__QueryAuditResponse *resp_ = resp;
    Tracecode__V1__AuditEntry *out;
    store_audit_entry *e;
    uint8_t *leaf;

    if (qs->next >= qs->n) {
        *done = SVC_STREAM_END;
        return SVC_OK;
    }
    e = &qs->e[qs->next++];
    /* At most a page (QUERY_LIMIT_MAX) of these per call. */
    leaf = svc_alloc(c, MERKLE_HASH_BYTES);
    out = resp_->entry = svc_alloc(c, sizeof(*out));
    if (!leaf || !out)
        return svc_fail(st, SVC_RESOURCE_EXHAUSTED, "out of call memory");
    tracecode__v1__audit_entry__init(out);
    merkle_leaf_hash(e->text, e->len, leaf);
    out->index = e->index;
    out->time_unix = e->time_ms / 1000;
    out->kind = e->kind;
    out->actor = e->actor;
    out->subject = e->subject;
    out->body.data = (uint8_t *)e->text;
    out->body.len = e->len;
    out->leaf_hash.data = leaf;
    out->leaf_hash.len = MERKLE_HASH_BYTES;
    *done = qs->next >= qs->n;
    return SVC_OK;
}

static svc_code head_of(svc_ctx *c, store_tree_head *h, svc_status *st)
{
    char err[STORE_ERR_MAX];
    store_err e = store_audit_head(c->svc->store, h, err, sizeof(err));

    if (e)
        return svc_store_fail(st, e, err);
    if (h->size == 0)
        return svc_fail(st, SVC_NOT_FOUND,
                        "no tree head has been signed yet (the log is empty, or no node has "
                        "sequenced it)");
    return SVC_OK;
}

svc_code api_get_tree_head(svc_ctx *c, const void *req, void *resp, svc_status *st)
{
    Tracecode__V1__GetTreeHeadResponse *resp_ = resp;
    Tracecode__V1__TreeHead *out = resp_->tree_head = svc_alloc(c, sizeof(*out));
    store_tree_head *h = svc_alloc(c, sizeof(*h));

    (void)req;
    if (!h || !out)
        return svc_fail(st, SVC_RESOURCE_EXHAUSTED, "out of call memory");
    tracecode__v1__tree_head__init(out);
    if (head_of(c, h, st))
        return st->code;
    out->size = h->size;
    out->root_hash.data = h->root;
    out->root_hash.len = sizeof(h->root);
    out->time_unix = h->time_unix;
    out->key_id = h->kid;
    out->signature.data = h->sig;
    out->signature.len = sizeof(h->sig);
    return SVC_OK;
}

/*
 * Proofs in two passes: the first runs the proof with a recording
 * merkle_get to learn which stored hashes it needs, one Redis round trip
 * fetches them all, the second runs it again on those.
 */
#define WANT_MAX 512
typedef struct want {
    unsigned level[WANT_MAX];
    uint64_t index[WANT_MAX];
    uint8_t hash[WANT_MAX][MERKLE_HASH_BYTES];
    size_t n;
    int fetched;
} want;

static int want_get(void *ctx, unsigned level, uint64_t index, merkle_hash out)
{
    want *w = ctx;

    for (size_t i = 0; i < w->n; i++)
        if (w->level[i] == level && w->index[i] == index) {
            memcpy(out, w->hash[i], MERKLE_HASH_BYTES);
            return 0;
        }
    if (w->fetched || w->n == WANT_MAX)
        return 2;
    w->level[w->n] = level;
    w->index[w->n++] = index;
    memset(out, 0, MERKLE_HASH_BYTES);
    return 0;
}

/* The hashes of both proof responses (their messages differ only in name). */
typedef struct proof_hashes {
    size_t *n;
    ProtobufCBinaryData **v;
} proof_hashes;

static svc_code proof_out(svc_ctx *c, want *w, int (*prove)(want *, merkle_hash *, size_t *),
                          proof_hashes out, svc_status *st)
{
    char err[STORE_ERR_MAX];
    merkle_hash *p = svc_alloc(c, MERKLE_MAX_PROOF * sizeof(merkle_hash));
    size_t n = 0;
    store_err e;

    if (!p)
        return svc_fail(st, SVC_RESOURCE_EXHAUSTED, "out of call memory");
    if (prove(w, p, &n) != 0)
        return svc_fail(st, SVC_INTERNAL, "the proof needs more stored hashes than expected");
    e = store_audit_hashes(c->svc->store, w->level, w->index, w->n, &w->hash[0][0], err,
                           sizeof(err));
    if (e)
        return svc_store_fail(st, e, err);
    w->fetched = 1;
    if (prove(w, p, &n) != 0)
        return svc_fail(st, SVC_INTERNAL, "a stored subtree hash is missing");
    *out.v = svc_alloc(c, (n ? n : 1) * sizeof(**out.v));
    if (!*out.v)
        return svc_fail(st, SVC_RESOURCE_EXHAUSTED, "out of call memory");
    for (size_t i = 0; i < n; i++) {
        (*out.v)[i].data = p[i];
        (*out.v)[i].len = MERKLE_HASH_BYTES;
    }
    *out.n = n;
    return SVC_OK;
}

typedef struct proof_want {
    want w; /* first: the prove functions get &x->w */
    uint64_t index, size, from;
} proof_want;

static int prove_inclusion(want *w, merkle_hash *p, size_t *n)
{
    proof_want *x = (proof_want *)w;
    return merkle_inclusion_proof(want_get, w, x->index, x->size, p, n);
}

static int prove_consistency(want *w, merkle_hash *p, size_t *n)
{
    proof_want *x = (proof_want *)w;
    return merkle_consistency_proof(want_get, w, x->from, x->size, p, n);
}

/* A proof's state for a tree of size (0: the signed head's), which must
 * be within the signed head; NULL with st set otherwise. */
static proof_want *proof_start(svc_ctx *c, uint64_t size, const char *field, svc_status *st)
{
    proof_want *x = svc_alloc(c, sizeof(*x));
    store_tree_head h;

    if (!x) {
        svc_fail(st, SVC_RESOURCE_EXHAUSTED, "out of call memory");
        return NULL;
    }
    if (head_of(c, &h, st))
        return NULL;
    memset(x, 0, sizeof(*x));
    x->size = size ? size : h.size;
    if (x->size > h.size) {
        svc_fail(st, SVC_OUT_OF_RANGE,
                 "%s %" PRIu64 " is beyond the signed tree (size %" PRIu64 ")", field, x->size,
                 h.size);
        return NULL;
    }
    return x;
}

svc_code api_get_inclusion_proof(svc_ctx *c, const void *req, void *resp, svc_status *st)
{
    const Tracecode__V1__GetInclusionProofRequest *q = req;
    proof_want *x = proof_start(c, q->tree_size, "tree_size", st);

    if (!x)
        return st->code;
    x->index = q->index;
    if (x->index >= x->size)
        return svc_fail(st, SVC_OUT_OF_RANGE, "index %" PRIu64 " is not in a tree of size %" PRIu64,
                        x->index, x->size);
    Tracecode__V1__GetInclusionProofResponse *out = resp;
    return proof_out(c, &x->w, prove_inclusion, (proof_hashes){&out->n_hashes, &out->hashes}, st);
}

svc_code api_get_consistency_proof(svc_ctx *c, const void *req, void *resp, svc_status *st)
{
    const Tracecode__V1__GetConsistencyProofRequest *q = req;
    proof_want *x = proof_start(c, q->to_size, "to_size", st);

    if (!x)
        return st->code;
    x->from = q->from_size;
    if (x->from == 0 || x->from > x->size)
        return svc_fail(st, SVC_INVALID_ARGUMENT,
                        "from_size must be 1 .. to_size (%" PRIu64 "), not %" PRIu64, x->size,
                        x->from);
    Tracecode__V1__GetConsistencyProofResponse *out = resp;
    return proof_out(c, &x->w, prove_consistency, (proof_hashes){&out->n_hashes, &out->hashes}, st);
}
