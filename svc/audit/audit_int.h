/*
 * audit_int.h - private to svc/audit/: the node's audit state, shared by
 * the per-minute counts (counts.c) and the sequencer thread (sequencer.c).
 */
#ifndef TC_AUDIT_INT_H
#define TC_AUDIT_INT_H

#include "audit.h"
#include "merkle.h"
#include "verify.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#define FORGERY_WINDOW_MAX 600 /* seconds */
/* Notices not acknowledged: the oldest this many are read, and per
 * platform among them the oldest (docs/OPERATIONS.md, "Watching"). */
#define AUDIT_UNACKED_SCAN 1000
#define AUDIT_UNACKED_PLATFORMS 64

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
    /* delisting notices not acknowledged, read once a second for /metrics */
    pthread_mutex_t umu;
    int unacked_known; /* 0 until read, and after a read that failed */
    uint64_t unacked_total;
    store_unacked_row unacked[AUDIT_UNACKED_PLATFORMS];
    size_t nunacked;
};

/* The forgery signal's second: sample the counts into each platform's
 * window (the audit thread's). */
void audit_forgery_tick(audit_log *a, int64_t now_s);
/* Append one entry per platform counted in minute (unix seconds of its
 * start), and zero the counts. */
void audit_flush_counts(audit_log *a, int64_t minute);

#endif
