/*
 * counts.c - per-platform verdict counts of each minute (the hot path adds,
 * the audit thread appends them to the log), and the forgery signal drawn
 * from them (docs/OPERATIONS.md, "The forgery signal").
 */
#include "audit_int.h"
#include "log.h"
#include "limit.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

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
        tclog(TCLOG_WARN, "audit: %s entry for platform %s lost: %s", kind, v->name, err);
}

/* Once a second: each platform's new answers into its ring; past the
 * threshold, flag it (an audit entry, a log line, the throttle); back
 * under half of it, lift the flag. */
void audit_forgery_tick(audit_log *a, int64_t now_s)
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
            tclog(TCLOG_WARN,
                  "forgery signal: platform %s: %" PRIu64 " of %" PRIu64
                  " codes forged or malformed in %u s%s",
                  v->name, bad, all, w, a->svc->forgery_throttle > 0 ? "; throttled" : "");
            forgery_entry(a, v, "forgery", all, bad, n);
        } else if (atomic_load(&v->flagged) &&
                   (all < a->svc->forgery_min / 2 || share < a->svc->forgery_percent * 5)) {
            atomic_store(&v->flagged, 0);
            limits_flag(a->svc->limits, v->name, 0);
            tclog(TCLOG_INFO, "forgery signal: platform %s is back under the threshold", v->name);
            forgery_entry(a, v, "forgery-cleared", all, bad, n);
        }
    }
}

/* The delisting notices no platform has acknowledged yet, as the audit
 * thread last read them (nothing while it could not). */
static size_t unacked_metrics(audit_log *a, char *buf, size_t cap, size_t n)
{
    int64_t now_ms;

    if (!a)
        return n;
    pthread_mutex_lock(&a->umu);
    if (a->unacked_known) {
        now_ms = svc_wall_ms();
        n = svc_appendf(buf, cap, n,
                        "# HELP tracesvc_delist_unacked_notices Delisting notices not yet "
                        "acknowledged in full, every platform's (read from Redis once a "
                        "second).\n# TYPE tracesvc_delist_unacked_notices gauge\n"
                        "tracesvc_delist_unacked_notices %llu\n",
                        (unsigned long long)a->unacked_total);
        n = svc_appendf(buf, cap, n,
                        "# HELP tracesvc_delist_oldest_unacked_seconds Age of a platform's "
                        "oldest delisting notice not yet acknowledged in full (platforms with "
                        "one among the %d oldest).\n"
                        "# TYPE tracesvc_delist_oldest_unacked_seconds gauge\n",
                        AUDIT_UNACKED_SCAN);
        for (size_t i = 0; i < a->nunacked; i++)
            n = svc_appendf(buf, cap, n,
                            "tracesvc_delist_oldest_unacked_seconds{platform=\"%s\"} %.3f\n",
                            a->unacked[i].platform,
                            now_ms > a->unacked[i].oldest_ms
                                ? (double)(now_ms - a->unacked[i].oldest_ms) / 1000.0
                                : 0.0);
    }
    pthread_mutex_unlock(&a->umu);
    return n;
}

size_t audit_metrics(const svc *s, char *buf, size_t cap, size_t n)
{
    const audit_log *a = s->audit;
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
    n = svc_appendf(buf, cap, n,
                    "# HELP tracesvc_audit_tree_size Entries in the audit log's latest signed "
                    "tree head.\n# TYPE tracesvc_audit_tree_size gauge\n"
                    "tracesvc_audit_tree_size %llu\n",
                    (unsigned long long)audit_tree_size(a));
    n = svc_appendf(buf, cap, n,
                    "# HELP tracesvc_audit_sequencing 1 while this node holds the audit "
                    "sequencing lease.\n# TYPE tracesvc_audit_sequencing gauge\n"
                    "tracesvc_audit_sequencing %d\n",
                    audit_sequencing(a));
    return unacked_metrics(s->audit, buf, cap, n);
}

void audit_flush_counts(audit_log *a, int64_t minute)
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
            tclog(TCLOG_WARN, "audit: verification counts of minute %" PRId64 " lost: %s", minute,
                  err);
    }
}
