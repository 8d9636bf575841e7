/*
 * node.c - the node's small helpers: statuses, roles, time, call memory,
 * staleness and readiness, Prometheus text and the node's own metrics.
 */
#include "node.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

svc_code svc_fail(svc_status *st, svc_code code, const char *fmt, ...)
{
    va_list ap;

    st->code = code;
    va_start(ap, fmt);
    vsnprintf(st->msg, sizeof(st->msg), fmt, ap);
    va_end(ap);
    return code;
}

svc_code svc_store_fail(svc_status *st, store_err e, const char *err)
{
    switch (e) {
    case STORE_OK:
        st->code = SVC_OK;
        st->msg[0] = '\0';
        return SVC_OK;
    case STORE_ERR_UNAVAILABLE:
        return svc_fail(st, SVC_UNAVAILABLE, "registry unavailable, nothing was changed: %s", err);
    case STORE_ERR_PRECONDITION:
        return svc_fail(st, SVC_FAILED_PRECONDITION, "%s", err);
    case STORE_ERR_NOTFOUND:
        return svc_fail(st, SVC_NOT_FOUND, "%s", err);
    case STORE_ERR_DENIED:
        return svc_fail(st, SVC_PERMISSION_DENIED, "%s", err);
    case STORE_ERR_ARG:
        return svc_fail(st, SVC_INVALID_ARGUMENT, "%s", err);
    case STORE_ERR_RANGE:
        return svc_fail(st, SVC_OUT_OF_RANGE, "%s", err);
    case STORE_ERR_TIMEOUT:
        return svc_fail(st, SVC_DEADLINE_EXCEEDED, "%s", err);
    case STORE_ERR_EXISTS:
        return svc_fail(st, SVC_ALREADY_EXISTS, "%s", err);
    case STORE_ERR_LIMIT:
        return svc_fail(st, SVC_RESOURCE_EXHAUSTED, "%s", err);
    case STORE_ERR_PROTOCOL:
    case STORE_ERR_NOMEM:
        break;
    }
    return svc_fail(st, SVC_INTERNAL, "registry error: %s", err);
}

const char *svc_role_name(svc_role role)
{
    switch (role) {
    case SVC_ROLE_MANUFACTURER:
        return "manufacturer";
    case SVC_ROLE_PLATFORM:
        return "platform";
    case SVC_ROLE_REGULATOR:
        return "regulator";
    case SVC_ROLE_CERTIFIER:
        return "certifier";
    case SVC_ROLE_NONE:
    case SVC_ROLE_ANY:
        break;
    }
    return "none";
}

svc_role svc_role_parse(const char *name, size_t len)
{
    static const svc_role all[] = {SVC_ROLE_MANUFACTURER, SVC_ROLE_PLATFORM, SVC_ROLE_REGULATOR,
                                   SVC_ROLE_CERTIFIER};
    size_t i;

    for (i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        const char *n = svc_role_name(all[i]);
        if (strlen(n) == len && memcmp(n, name, len) == 0)
            return all[i];
    }
    return SVC_ROLE_NONE;
}

void *svc_alloc(svc_ctx *c, size_t size)
{
    void *p = c->alloc(c->arena, size);

    if (p)
        memset(p, 0, size);
    return p;
}

int64_t svc_now_unix(void)
{
    return (int64_t)time(NULL);
}

int64_t svc_wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t svc_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int svc_stale(const svc *s)
{
    return s->replica_lag_ms && s->replica_lag_ms(s->replica_lag_arg) > s->max_staleness_ms;
}

int svc_ready(const svc *s, char *why, size_t cap)
{
    if (!why)
        cap = 0;
    if (atomic_load(&((svc *)s)->draining)) {
        if (cap)
            snprintf(why, cap, "draining (SIGTERM)");
        return 0;
    }
    for (size_t m = 0; m < s->nmodules; m++)
        if (s->modules[m].ready && !s->modules[m].ready(s, why, cap))
            return 0;
    if (s->replica_lag_ms && s->replica_lag_ms(s->replica_lag_arg) > s->ready_staleness_ms) {
        if (cap)
            snprintf(why, cap,
                     "the replica has not heard from redis for %.0f s (more than "
                     "--ready-staleness)",
                     (double)s->replica_lag_ms(s->replica_lag_arg) / 1000.0);
        return 0;
    }
    return 1;
}

int svc_can_verify(const svc *s)
{
    return svc_ready(s, NULL, 0);
}

int svc_can_write(const svc *s)
{
    return !atomic_load(&((svc *)s)->draining) && atomic_load(&((svc *)s)->writable);
}

size_t svc_appendf(char *buf, size_t cap, size_t n, const char *fmt, ...)
{
    va_list ap;
    int k;

    va_start(ap, fmt);
    k = vsnprintf(n < cap ? buf + n : NULL, n < cap ? cap - n : 0, fmt, ap);
    va_end(ap);
    return n + (k > 0 ? (size_t)k : 0);
}

#define OUT(...) (n = svc_appendf(buf, cap, n, __VA_ARGS__))

size_t svc_metrics(svc *s, char *buf, size_t cap)
{
    size_t n = 0;
    int v;

    OUT("# HELP tracesvc_verdicts_total Verdicts given by VerifyCode, VerifyBatch, "
        "VerifyStream.\n# TYPE tracesvc_verdicts_total counter\n");
    for (v = 1; v <= TC_VERDICT_LAST; v++)
        OUT("tracesvc_verdicts_total{verdict=\"%s\"} %llu\n", tc_verdict_name(v),
            (unsigned long long)atomic_load_explicit(&s->verdicts[v], memory_order_relaxed));
    OUT("# HELP tracesvc_replica_revision Registry revision the replica has applied.\n"
        "# TYPE tracesvc_replica_revision gauge\ntracesvc_replica_revision %llu\n",
        (unsigned long long)rep_revision(s->replica));
    OUT("# HELP tracesvc_replica_lag_seconds Time since the replica last heard from Redis.\n"
        "# TYPE tracesvc_replica_lag_seconds gauge\ntracesvc_replica_lag_seconds %.3f\n",
        s->replica_lag_ms ? (double)s->replica_lag_ms(s->replica_lag_arg) / 1000.0 : 0.0);
    OUT("# HELP tracesvc_replica_stale 1 when the lag is beyond --max-staleness.\n"
        "# TYPE tracesvc_replica_stale gauge\ntracesvc_replica_stale %d\n",
        svc_stale(s));
    OUT("# HELP tracesvc_redis_up 1 while the change-stream tail is connected to Redis.\n"
        "# TYPE tracesvc_redis_up gauge\ntracesvc_redis_up %d\n",
        s->redis_up ? s->redis_up(s->replica_lag_arg) : 0);
    OUT("# HELP tracesvc_ready 1 while the node can verify (/readyz 200).\n"
        "# TYPE tracesvc_ready gauge\ntracesvc_ready %d\n"
        "# HELP tracesvc_writable 0 while writes cannot be made (the primary unreachable or "
        "changing, too few replicas).\n# TYPE tracesvc_writable gauge\ntracesvc_writable %d\n",
        svc_ready(s, NULL, 0), svc_can_write(s));
    for (size_t m = 0; m < s->nmodules; m++)
        if (s->modules[m].metrics)
            n = s->modules[m].metrics(s, buf, cap, n);
    return n;
}
#undef OUT
