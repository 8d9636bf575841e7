/*
 * limit.c - see limit.h.
 */
#include "limit.h"
#include "node.h"
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ROLES 4 /* manufacturer, platform, regulator, certifier */
#define LIMIT_SHARDS 16
#define OVERRIDES_MAX 1024

typedef struct entry {
    _Atomic uint64_t hash; /* 0: free; the subject is written before ready */
    _Atomic int ready;
    int role; /* index 0..ROLES-1 */
    char subject[SVC_SUBJECT_MAX + 1];
    double lim[LIMIT_NAMES];  /* resolved when the entry is made */
    _Atomic int32_t open[2];  /* watch, issue streams */
    _Atomic int32_t inflight; /* verifications */
    _Atomic int64_t tat_ns;   /* verify_rate: GCRA's theoretical arrival time */
    _Atomic int32_t throttle; /* codes/s while the forgery signal flags it; 0 none */
} entry;

typedef struct override {
    int role;
    char subject[SVC_SUBJECT_MAX + 1];
    limit_name name;
    double value;
} override;

struct limits {
    unsigned verify_slots;
    double role_lim[ROLES][LIMIT_NAMES];
    override *ov;
    size_t nov;
    /* Verifications in flight, summed over shards (one cache line each, a
     * shard per calling thread): read only by a subject past its floor. */
    struct {
        _Atomic int32_t n;
        char pad[60];
    } inflight[LIMIT_SHARDS];
    _Atomic uint64_t refused[LIMIT_NAMES];
    entry others[ROLES]; /* when the table is full */
    entry *table;        /* LIMITS_SUBJECTS */
};

static const char *const names[LIMIT_NAMES] = {
    "watch_streams", "issue_streams", "verify_share", "verify_rate",
    "verify_burst",  "write_rate",    "write_burst",
};

const char *limit_name_str(limit_name n)
{
    return n < LIMIT_NAMES ? names[n] : "?";
}

static int role_index(svc_role r)
{
    switch (r) {
    case SVC_ROLE_MANUFACTURER:
        return 0;
    case SVC_ROLE_PLATFORM:
        return 1;
    case SVC_ROLE_REGULATOR:
        return 2;
    case SVC_ROLE_CERTIFIER:
        return 3;
    case SVC_ROLE_NONE:
    case SVC_ROLE_ANY:
        break;
    }
    return -1;
}

static const svc_role role_of[ROLES] = {SVC_ROLE_MANUFACTURER, SVC_ROLE_PLATFORM,
                                        SVC_ROLE_REGULATOR, SVC_ROLE_CERTIFIER};

limits *limits_new(unsigned verify_slots)
{
    limits *l = calloc(1, sizeof(*l));
    int r;

    if (!l)
        return NULL;
    l->table = calloc(LIMITS_SUBJECTS, sizeof(*l->table));
    l->ov = calloc(OVERRIDES_MAX, sizeof(*l->ov));
    if (!l->table || !l->ov) {
        limits_free(l);
        return NULL;
    }
    l->verify_slots = verify_slots ? verify_slots : 1;
    for (r = 0; r < ROLES; r++) {
        l->role_lim[r][LIMIT_VERIFY_SHARE] = 1;
        l->others[r].role = r;
        snprintf(l->others[r].subject, sizeof(l->others[r].subject), "(others)");
    }
    l->role_lim[1][LIMIT_WATCH_STREAMS] = 16;
    l->role_lim[0][LIMIT_ISSUE_STREAMS] = 2;
    for (r = 0; r < ROLES; r++)
        memcpy(l->others[r].lim, l->role_lim[r], sizeof(l->others[r].lim));
    return l;
}

void limits_free(limits *l)
{
    if (!l)
        return;
    free(l->table);
    free(l->ov);
    free(l);
}

/* --- configuration ------------------------------------------------------- */

int limits_set(limits *l, const char *line, char *err, size_t cap)
{
    char scope[96], name[32], value[32], *slash, *end;
    int role = -1, n = 0, r;
    double v;
    size_t i, k;

    /* "SCOPE NAME VALUE" or "SCOPE:NAME=VALUE" */
    if (sscanf(line, " %95[^ :\t]:%31[^= \t]=%31s %n", scope, name, value, &n) != 3 &&
        sscanf(line, " %95[^ :\t] %31[^ =:\t] %31s %n", scope, name, value, &n) != 3) {
        snprintf(err, cap, "limit '%.80s': want SCOPE NAME VALUE or SCOPE:NAME=VALUE", line);
        return -1;
    }
    if (line[n]) {
        snprintf(err, cap, "limit '%.80s': unexpected text after the value", line);
        return -1;
    }
    slash = strchr(scope, '/');
    if (slash)
        *slash = '\0';
    for (r = 0; r < ROLES; r++)
        if (strcmp(scope, svc_role_name(role_of[r])) == 0)
            role = r;
    if (role < 0) {
        snprintf(err, cap,
                 "limit '%.80s': scope '%s' is not manufacturer, platform, regulator or "
                 "certifier (optionally ROLE/SUBJECT)",
                 line, scope);
        return -1;
    }
    for (k = 0; k < LIMIT_NAMES && strcmp(name, names[k]) != 0; k++)
        ;
    if (k == LIMIT_NAMES) {
        snprintf(err, cap,
                 "limit '%.80s': unknown limit '%s' (watch_streams, issue_streams, verify_share, "
                 "verify_rate, verify_burst, write_rate, write_burst)",
                 line, name);
        return -1;
    }
    errno = 0;
    v = strtod(value, &end);
    if (errno || *end || !(v >= 0) || v > 1e9) {
        snprintf(err, cap, "limit '%.80s': value '%s' must be a number from 0 to 1e9", line, value);
        return -1;
    }
    if (!slash) {
        l->role_lim[role][k] = v;
        memcpy(l->others[role].lim, l->role_lim[role], sizeof(l->others[role].lim));
        return 0;
    }
    if (!slash[1] || strlen(slash + 1) > SVC_SUBJECT_MAX) {
        snprintf(err, cap, "limit '%.80s': the subject after '/' must be 1 to %d bytes", line,
                 SVC_SUBJECT_MAX);
        return -1;
    }
    for (i = 0; i < l->nov; i++)
        if (l->ov[i].role == role && l->ov[i].name == (limit_name)k &&
            strcmp(l->ov[i].subject, slash + 1) == 0)
            break;
    if (i == l->nov) {
        if (l->nov == OVERRIDES_MAX) {
            snprintf(err, cap, "at most %d per-subject limits", OVERRIDES_MAX);
            return -1;
        }
        l->nov++;
    }
    l->ov[i].role = role;
    snprintf(l->ov[i].subject, sizeof(l->ov[i].subject), "%s", slash + 1);
    l->ov[i].name = (limit_name)k;
    l->ov[i].value = v;
    return 0;
}

int limits_load(limits *l, const char *path, char *err, size_t cap)
{
    char line[256], why[200];
    unsigned no = 0;
    FILE *f = fopen(path, "r");

    if (!f) {
        snprintf(err, cap, "cannot open the limits file %s", path);
        return -1;
    }
    while (fgets(line, sizeof(line), f)) {
        char *hash = strchr(line, '#'), *p = line;
        no++;
        if (!strchr(line, '\n') && !feof(f)) {
            snprintf(err, cap, "%s line %u: longer than %zu bytes", path, no, sizeof(line) - 2);
            fclose(f);
            return -1;
        }
        if (hash)
            *hash = '\0';
        line[strcspn(line, "\r\n")] = '\0';
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p)
            continue;
        if (limits_set(l, p, why, sizeof(why)) != 0) {
            snprintf(err, cap, "%s line %u: %s", path, no, why);
            fclose(f);
            return -1;
        }
    }
    fclose(f);
    return 0;
}

/* --- the table ------------------------------------------------------------- */

static uint64_t hash_of(int role, const char *s)
{
    uint64_t h = 14695981039346656037ULL ^ (uint64_t)(role + 1);

    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h ? h : 1;
}

static void resolve(const limits *l, entry *e)
{
    size_t i;

    memcpy(e->lim, l->role_lim[e->role], sizeof(e->lim));
    for (i = 0; i < l->nov; i++)
        if (l->ov[i].role == e->role && strcmp(l->ov[i].subject, e->subject) == 0)
            e->lim[l->ov[i].name] = l->ov[i].value;
}

/* The entry of (role, subject): found, or made (lock-free: a free slot is
 * claimed by compare-and-swap of its hash; readers wait for ready). */
static entry *entry_for(limits *l, int role, const char *subject)
{
    uint64_t h, want = 0;
    size_t i, probe;

    if (role < 0)
        return NULL;
    h = hash_of(role, subject);
    for (probe = 0, i = h % LIMITS_SUBJECTS; probe < 64; probe++, i = (i + 1) % LIMITS_SUBJECTS) {
        entry *e = &l->table[i];
        uint64_t cur = atomic_load_explicit(&e->hash, memory_order_acquire);
        if (cur == 0) {
            want = 0;
            if (!atomic_compare_exchange_strong(&e->hash, &want, h))
                cur = want; /* someone else took it: look at theirs */
            else {
                e->role = role;
                snprintf(e->subject, sizeof(e->subject), "%s", subject);
                resolve(l, e);
                atomic_store_explicit(&e->ready, 1, memory_order_release);
                return e;
            }
        }
        if (cur == h) {
            while (!atomic_load_explicit(&e->ready, memory_order_acquire))
                ; /* its maker is between two stores */
            if (e->role == role && strcmp(e->subject, subject) == 0)
                return e;
        }
    }
    return &l->others[role];
}

/* The caller's entry, looked up once per call (kept in its context). */
static entry *entry_of(limits *l, svc_ctx *c)
{
    if (!c->lim_entry)
        c->lim_entry = entry_for(l, role_index(c->role), c->subject);
    return c->lim_entry;
}

static _Atomic int next_shard;
static _Thread_local int my_shard = -1;

static _Atomic int32_t *shard(limits *l)
{
    if (my_shard < 0)
        my_shard = atomic_fetch_add(&next_shard, 1) % LIMIT_SHARDS;
    return &l->inflight[my_shard].n;
}

static int32_t total_inflight(limits *l)
{
    int32_t t = 0;
    int i;

    for (i = 0; i < LIMIT_SHARDS; i++)
        t += atomic_load_explicit(&l->inflight[i].n, memory_order_relaxed);
    return t;
}

void limits_flag(limits *l, const char *platform, double throttle)
{
    entry *e;

    if (l && (e = entry_for(l, role_index(SVC_ROLE_PLATFORM), platform)) != NULL)
        atomic_store(&e->throttle, (int32_t)(throttle > 0 ? throttle : 0));
}

static int64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int refuse(limits *l, limit_name n, svc_status *st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int refuse(limits *l, limit_name n, svc_status *st, const char *fmt, ...)
{
    va_list ap;

    static tclog_gate gates[LIMIT_NAMES]; /* a line per limit every 10 s at most */

    atomic_fetch_add_explicit(&l->refused[n], 1, memory_order_relaxed);
    st->code = SVC_RESOURCE_EXHAUSTED;
    va_start(ap, fmt);
    vsnprintf(st->msg, sizeof(st->msg), fmt, ap);
    va_end(ap);
    tclog_every(&gates[n], 10000, TCLOG_WARN, "limit hit: %s", st->msg);
    return SVC_RESOURCE_EXHAUSTED;
}

/* --- streams and shares ---------------------------------------------------- */

int limits_enter(limits *l, svc_ctx *c, limit_name kind, limit_hold *h, svc_status *st)
{
    entry *e;
    int32_t n;

    h->entry = NULL;
    h->kind = -1;
    if (!l || !(e = entry_of(l, c)))
        return SVC_OK;
    if (kind == LIMIT_VERIFY_SHARE) {
        /* Up to a floor of slots/8 a subject never looks further (no
         * shared counter on the common path). Past it, it may take what
         * the others leave, less a floor kept free for them: all of the
         * node when it is alone. */
        int32_t floor_ = (int32_t)(l->verify_slots / 8) > 1 ? (int32_t)(l->verify_slots / 8) : 1;
        if (!e->lim[LIMIT_VERIFY_SHARE])
            return SVC_OK;
        n = atomic_fetch_add_explicit(&e->inflight, 1, memory_order_relaxed) + 1;
        atomic_fetch_add_explicit(shard(l), 1, memory_order_relaxed);
        if (n > floor_) {
            int32_t others = total_inflight(l) - n, share;
            share =
                others > 0 ? (int32_t)l->verify_slots - floor_ - others : (int32_t)l->verify_slots;
            if (share < floor_)
                share = floor_;
            if (n > share) {
                atomic_fetch_sub_explicit(&e->inflight, 1, memory_order_relaxed);
                atomic_fetch_sub_explicit(shard(l), 1, memory_order_relaxed);
                return refuse(l, kind, st,
                              "verify_share: %s %s has %d verifications in flight on this node, "
                              "its share of %d while others have %d; retry in 0.05 s or send "
                              "larger VerifyBatch calls",
                              svc_role_name(c->role), e->subject, n - 1, share, others);
            }
        }
    } else {
        double cap = e->lim[kind];
        int i = kind == LIMIT_WATCH_STREAMS ? 0 : 1;
        if (!cap)
            return SVC_OK;
        n = atomic_fetch_add(&e->open[i], 1) + 1;
        if (n > cap) {
            atomic_fetch_sub(&e->open[i], 1);
            return refuse(l, kind, st,
                          "%s: %s %s has %d open on this node, the limit is %.0f; close one "
                          "(or end a stalled one) and retry",
                          names[kind], svc_role_name(c->role), e->subject, n - 1, cap);
        }
    }
    h->entry = e;
    h->kind = kind;
    return SVC_OK;
}

void limits_leave(limits *l, limit_hold *h)
{
    entry *e = h->entry;

    if (!l || !e || h->kind < 0)
        return;
    if (h->kind == LIMIT_VERIFY_SHARE) {
        atomic_fetch_sub_explicit(&e->inflight, 1, memory_order_relaxed);
        atomic_fetch_sub_explicit(shard(l), 1, memory_order_relaxed);
    } else {
        atomic_fetch_sub(&e->open[h->kind == LIMIT_WATCH_STREAMS ? 0 : 1], 1);
    }
    h->entry = NULL;
    h->kind = -1;
}

/* --- rates ------------------------------------------------------------------ */

int limits_verify(limits *l, svc_ctx *c, uint32_t n, svc_status *st)
{
    entry *e;
    double rate, burst;
    int64_t now, tat, next, interval, tolerance;
    int32_t throttle;

    if (!l || !(e = entry_of(l, c)))
        return SVC_OK;
    rate = e->lim[LIMIT_VERIFY_RATE];
    burst = e->lim[LIMIT_VERIFY_BURST] ? e->lim[LIMIT_VERIFY_BURST] : rate;
    throttle = atomic_load_explicit(&e->throttle, memory_order_relaxed);
    if (throttle > 0 && (!rate || throttle < rate)) {
        rate = throttle;
        burst = throttle;
    }
    if (!rate)
        return SVC_OK;
    interval = (int64_t)(1e9 / rate);
    tolerance = (int64_t)(burst * 1e9 / rate);
    now = now_ns();
    tat = atomic_load_explicit(&e->tat_ns, memory_order_relaxed);
    for (;;) {
        int64_t base = tat > now ? tat : now;
        next = base + interval * (int64_t)n;
        if (next - now > tolerance) {
            double wait = (double)(next - now - tolerance) / 1e9;
            if ((double)n > burst)
                return refuse(l, LIMIT_VERIFY_RATE, st,
                              "verify_rate: %u codes in one call exceed the burst of %.0f codes "
                              "of %s %s; send smaller calls",
                              n, burst, svc_role_name(c->role), e->subject);
            if (throttle > 0 && rate == throttle)
                return refuse(l, LIMIT_VERIFY_RATE, st,
                              "forgery throttle: platform %s sent mostly forged or malformed codes "
                              "(the forgery signal); it may verify %.0f codes/s on this node until "
                              "that stops; retry in %.3f s",
                              e->subject, rate, wait);
            return refuse(l, LIMIT_VERIFY_RATE, st,
                          "verify_rate: %s %s may verify %.0f codes/s on this node (burst %.0f); "
                          "retry in %.3f s",
                          svc_role_name(c->role), e->subject, rate, burst, wait);
        }
        if (atomic_compare_exchange_weak_explicit(&e->tat_ns, &tat, next, memory_order_relaxed,
                                                  memory_order_relaxed))
            return SVC_OK;
    }
}

int limits_write(limits *l, svc_ctx *c, svc_status *st)
{
    char err[STORE_ERR_MAX], key[32 + SVC_ACTOR_MAX];
    entry *e;
    double rate, burst;
    int64_t retry_us = 0;
    store_err se;

    if (!l || !(e = entry_of(l, c)) || !(rate = e->lim[LIMIT_WRITE_RATE]))
        return SVC_OK;
    burst = e->lim[LIMIT_WRITE_BURST] ? e->lim[LIMIT_WRITE_BURST] : 1;
    snprintf(key, sizeof(key), "{tc}:gcra:%s:%s", svc_role_name(c->role), c->subject);
    se = store_gcra(c->svc->store, key, (int64_t)(1e6 / rate), (int64_t)(burst * 1e6 / rate),
                    &retry_us, err, sizeof(err));
    if (se)
        return svc_store_fail(st, se, err);
    if (retry_us > 0)
        return refuse(l, LIMIT_WRITE_RATE, st,
                      "write_rate: %s %s may write %.3g times/s across the deployment (burst "
                      "%.0f); retry in %.3f s",
                      svc_role_name(c->role), c->subject, rate, burst, (double)retry_us / 1e6);
    return SVC_OK;
}

uint64_t limits_refused(const limits *l, limit_name n)
{
    return l && n < LIMIT_NAMES
               ? atomic_load_explicit(&((limits *)l)->refused[n], memory_order_relaxed)
               : 0;
}

size_t limits_metrics(const svc *s, char *buf, size_t cap, size_t n)
{
    n = svc_appendf(buf, cap, n,
                    "# HELP tracesvc_limit_refusals_total Calls refused by a fair-share or rate "
                    "limit.\n# TYPE tracesvc_limit_refusals_total counter\n");
    for (int v = 0; v < LIMIT_NAMES; v++)
        if (v != LIMIT_VERIFY_BURST && v != LIMIT_WRITE_BURST)
            n = svc_appendf(buf, cap, n, "tracesvc_limit_refusals_total{limit=\"%s\"} %llu\n",
                            limit_name_str((limit_name)v),
                            (unsigned long long)limits_refused(s->limits, (limit_name)v));
    return n;
}
