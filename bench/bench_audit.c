/*
 * bench_audit.c - audit log appends per second, sustained, while a
 * tracesvc node sequences them into the tree and signs heads.
 *
 *   tc-bench-audit REDIS_URL [THREADS] [SECONDS]
 *
 * First, for the ratio, THREADS threads do plain INCRs (one round trip and
 * one AOF write each, the cheapest durable write) for SECONDS; then the
 * same threads append audit entries (store_audit_append: the Lua step the
 * service's own writes use) for SECONDS, while this process samples the
 * signed tree head. Prints one JSON line.
 */
#include "store.h"

#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *url;
static store *st;
static _Atomic int running;
static _Atomic uint64_t done_incr, done_append, failed;

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *incr_loop(void *arg)
{
    redisContext *c =
        strncmp(url, "unix:", 5) == 0 ? redisConnectUnix(url + 5) : redisConnect("127.0.0.1", 6379);

    (void)arg;
    while (c && !c->err && atomic_load(&running)) {
        redisReply *r = redisCommand(c, "INCR bench:incr");
        if (!r)
            break;
        freeReplyObject(r);
        atomic_fetch_add(&done_incr, 1);
    }
    if (c)
        redisFree(c);
    return NULL;
}

static void *append_loop(void *arg)
{
    char body[256], err[STORE_ERR_MAX];
    uint64_t i = 0;

    while (atomic_load(&running)) {
        int n = snprintf(body, sizeof(body),
                         "bench entry %" PRIuPTR "/%" PRIu64 "\nlisting L%" PRIu64
                         " code 0000000000000000000000000000000000",
                         (uintptr_t)arg, i, i);
        if (store_audit_append(st, "bench", "bench:load", "bench", body, (size_t)n, NULL, err,
                               sizeof(err)) == STORE_OK)
            atomic_fetch_add(&done_append, 1);
        else
            atomic_fetch_add(&failed, 1);
        i++;
    }
    return NULL;
}

static double run(void *(*fn)(void *), int threads, double seconds)
{
    pthread_t th[64];
    double t0 = now();

    atomic_store(&running, 1);
    for (int i = 0; i < threads; i++)
        pthread_create(&th[i], NULL, fn, (void *)(uintptr_t)i);
    while (now() - t0 < seconds) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    atomic_store(&running, 0);
    for (int i = 0; i < threads; i++)
        pthread_join(th[i], NULL);
    return now() - t0;
}

static uint64_t head_size(int64_t *time_unix)
{
    char err[STORE_ERR_MAX];
    store_tree_head h;

    if (store_audit_head(st, &h, err, sizeof(err)) != STORE_OK)
        return 0;
    if (time_unix)
        *time_unix = h.time_unix;
    return h.size;
}

int main(int argc, char **argv)
{
    char err[STORE_ERR_MAX];
    int threads = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 8;
    double seconds = argc > 3 ? strtod(argv[3], NULL) : 10, t_incr, t_app, t_wait;
    uint64_t n0, total, size0, size1, heads = 0, last = 0;
    int64_t ht;

    if (argc < 2 || threads < 1 || threads > 64 || seconds <= 0 || seconds > 600) {
        fprintf(stderr, "usage: tc-bench-audit unix:/path/redis.sock [THREADS 1..64] [SECONDS]\n");
        return 2;
    }
    url = argv[1];
    if (store_open(url, &st, err, sizeof(err)) != STORE_OK) {
        fprintf(stderr, "tc-bench-audit: %s\n", err);
        return 1;
    }
    t_incr = run(incr_loop, threads, seconds);

    store_audit_count(st, &n0, err, sizeof(err));
    size0 = head_size(NULL);
    {
        pthread_t th[64];
        double t0 = now();
        atomic_store(&running, 1);
        for (int i = 0; i < threads; i++)
            pthread_create(&th[i], NULL, append_loop, (void *)(uintptr_t)i);
        while (now() - t0 < seconds) { /* sample the head: how often it moves */
            struct timespec ts = {0, 20 * 1000000L};
            uint64_t s = head_size(&ht);
            if (s != last) {
                heads++;
                last = s;
            }
            nanosleep(&ts, NULL);
        }
        size1 = head_size(NULL);
        atomic_store(&running, 0);
        for (int i = 0; i < threads; i++)
            pthread_join(th[i], NULL);
        t_app = now() - t0;
    }
    store_audit_count(st, &total, err, sizeof(err));
    {
        double t0 = now();
        while (head_size(NULL) < total && now() - t0 < 120) {
            struct timespec ts = {0, 10 * 1000000L};
            nanosleep(&ts, NULL);
        }
        t_wait = now() - t0;
    }
    printf("{\"threads\":%d,\"seconds\":%.1f,\"incr_per_s\":%.0f,\"appends_per_s\":%.0f,"
           "\"ratio_append_to_incr\":%.2f,\"failed\":%" PRIu64 ",\"sequenced_per_s\":%.0f,"
           "\"head_moves_seen\":%" PRIu64 ",\"tree_caught_up_after_s\":%.2f,\"tree_size\":%" PRIu64
           "}\n",
           threads, seconds, (double)done_incr / t_incr, (double)done_append / t_app,
           ((double)done_append / t_app) / ((double)done_incr / t_incr), (uint64_t)failed,
           (double)(size1 - size0) / t_app, heads, t_wait, head_size(NULL));
    (void)n0;
    store_free(st);
    return head_size(NULL) >= total ? 0 : 1;
}
