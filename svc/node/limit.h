/*
 * limit.h - fair shares between callers (subjects) on one node, and rate
 * limits: what keeps one platform or manufacturer from taking what the
 * others need.
 *
 *   watch_streams   open WatchDelistings streams per subject (default:
 *                   platform 16)
 *   issue_streams   open IssueCodes streams per subject (default:
 *                   manufacturer 2)
 *   verify_share    verifications in flight per subject, work-conserving:
 *                   up to slots/8 (the floor) always; past it, what the
 *                   others leave less a floor kept free for them, so a
 *                   subject alone may fill every verify slot and others
 *                   always find room (on by default)
 *   verify_rate     codes verified per second per subject on this node, a
 *                   token bucket (GCRA) with verify_burst codes of burst;
 *                   0 = off (the default)
 *   write_rate      writes per second per subject across the deployment,
 *                   GCRA kept in Redis (one script); write_burst; 0 = off
 *
 * Limits are set per role, and per subject over that ("platform
 * verify_rate 20000", "platform/shop-a verify_rate 100000"). The verify
 * path takes no lock and touches no Redis: subjects live in a fixed table
 * of atomics (LIMITS_SUBJECTS; subjects past that share one entry, named
 * "(others)" in messages).
 */
#ifndef TC_LIMIT_H
#define TC_LIMIT_H

#include <stddef.h>
#include <stdint.h>

struct svc;
struct svc_ctx;
struct svc_status;
struct store;

#define LIMITS_SUBJECTS 4096

typedef enum limit_name {
    LIMIT_WATCH_STREAMS = 0,
    LIMIT_ISSUE_STREAMS,
    LIMIT_VERIFY_SHARE, /* 1 = on, 0 = off */
    LIMIT_VERIFY_RATE,
    LIMIT_VERIFY_BURST,
    LIMIT_WRITE_RATE,
    LIMIT_WRITE_BURST,
    LIMIT_NAMES
} limit_name;

const char *limit_name_str(limit_name n);

typedef struct limits limits;

/* An empty table with the defaults above; verify_slots is how many
 * verifications the node serves at once (the share's whole). NULL when
 * out of memory. Caller frees with limits_free. */
limits *limits_new(unsigned verify_slots);
void limits_free(limits *l);

/* Set a limit from one line of the limits file or one --limit flag:
 * "SCOPE NAME VALUE" or "SCOPE:NAME=VALUE", SCOPE a role or ROLE/SUBJECT.
 * 0, or -1 with a message naming what is wrong in err. Before serving. */
int limits_set(limits *l, const char *line, char *err, size_t cap);
/* Every line of path ('#' comments, blank lines). 0, or -1 with the line
 * number in err. */
int limits_load(limits *l, const char *path, char *err, size_t cap);

/* What a call holds, released by limits_leave (any thread). */
typedef struct limit_hold {
    void *entry;
    int kind; /* -1: nothing held */
} limit_hold;

/*
 * Enter a call of kind LIMIT_WATCH_STREAMS, LIMIT_ISSUE_STREAMS or
 * LIMIT_VERIFY_SHARE for the caller of c. SVC_OK, or RESOURCE_EXHAUSTED
 * in st naming the limit, how many are open and when to retry.
 */
int limits_enter(limits *l, struct svc_ctx *c, limit_name kind, limit_hold *h,
                 struct svc_status *st);
void limits_leave(limits *l, limit_hold *h);

/* Take n codes from the caller's verify_rate bucket: SVC_OK, or
 * RESOURCE_EXHAUSTED saying when n codes will fit. One atomic
 * compare-and-swap; nothing when the caller has no verify_rate. */
int limits_verify(limits *l, struct svc_ctx *c, uint32_t n, struct svc_status *st);

/* One write of the caller against its write_rate across the deployment
 * (GCRA in Redis). SVC_OK when allowed or when the caller has none;
 * RESOURCE_EXHAUSTED with the wait; UNAVAILABLE when Redis cannot say. */
int limits_write(limits *l, struct svc_ctx *c, struct svc_status *st);

/* Flag platform (the forgery signal, audit.c): while throttle > 0 its
 * verifications on this node are bounded to throttle codes/s on top of
 * its own verify_rate; 0 lifts it. Any thread. */
void limits_flag(limits *l, const char *platform, double throttle);

/* Refusals by limit since start, for /metrics. */
uint64_t limits_refused(const limits *l, limit_name n);
/* The limits' metrics (svc_module.metrics): refusals by limit. */
size_t limits_metrics(const struct svc *s, char *buf, size_t cap, size_t n);

#endif
