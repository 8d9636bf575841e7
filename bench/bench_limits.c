/*
 * tc-bench-limits - what the per-subject limits add to one verify call, in
 * nanoseconds: limits_enter (verify_share), limits_verify (a verify_rate
 * bucket that never refuses) and limits_leave, on 1 and 2 threads of
 * callers from 64 platforms, against the same loop with the limits off.
 * In-process: no gRPC, no Redis (the verify path never touches Redis).
 *
 *   tc-bench-limits [--seconds S]
 *
 * Prints one JSON object per thread count. A server spends about 9 us of
 * CPU per unary call (notes/GRPC_CORE_C.md); the figure here is the part
 * of that the limits take.
 */
#include "api.h"
#include "limit.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SUBJECTS 64

typedef struct job {
    limits *l;
    int id, on;
    double seconds;
    unsigned long calls;
} job;

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *run(void *arg)
{
    job *j = arg;
    svc_ctx c;
    svc_status st;
    limit_hold h;
    double end = now() + j->seconds;
    unsigned long n = 0, k;

    memset(&c, 0, sizeof(c));
    c.role = SVC_ROLE_PLATFORM;
    while (now() < end) {
        for (k = 0; k < 4096; k++) {
            snprintf(c.subject, sizeof(c.subject), "platform-%02lu", (n + k) % SUBJECTS);
            if (j->on) {
                if (limits_enter(j->l, &c, LIMIT_VERIFY_SHARE, &h, &st) != SVC_OK ||
                    limits_verify(j->l, &c, 1, &st) != SVC_OK) {
                    fprintf(stderr, "refused: %s\n", st.msg);
                    exit(1);
                }
                limits_leave(j->l, &h);
            }
        }
        n += k;
    }
    j->calls = n;
    return NULL;
}

/* ns per call with the limits on, less the same loop (naming the subject)
 * with them off. */
static double per_call(limits *l, int threads, int on, double seconds)
{
    pthread_t t[8];
    job j[8];
    unsigned long calls = 0;
    int i;

    for (i = 0; i < threads; i++) {
        j[i] = (job){l, i, on, seconds, 0};
        pthread_create(&t[i], NULL, run, &j[i]);
    }
    for (i = 0; i < threads; i++) {
        pthread_join(t[i], NULL);
        calls += j[i].calls;
    }
    return seconds * 1e9 * threads / (double)calls;
}

int main(int argc, char **argv)
{
    double seconds = argc == 3 && !strcmp(argv[1], "--seconds") ? atof(argv[2]) : 1.0;
    char err[256];
    int threads[] = {1, 2}, i;
    limits *l = limits_new(224);

    if (!l || limits_set(l, "platform verify_rate 1000000000", err, sizeof(err)) ||
        limits_set(l, "platform verify_burst 1000000000", err, sizeof(err))) {
        fprintf(stderr, "tc-bench-limits: %s\n", l ? err : "out of memory");
        return 1;
    }
    for (i = 0; i < 2; i++) {
        double off = per_call(l, threads[i], 0, seconds);
        double on = per_call(l, threads[i], 1, seconds);
        printf("{\"threads\":%d,\"ns_per_call_off\":%.1f,\"ns_per_call_on\":%.1f,"
               "\"limits_ns\":%.1f,\"share_of_9us_call\":%.4f}\n",
               threads[i], off, on, on - off, (on - off) / 9000.0);
    }
    limits_free(l);
    return 0;
}
