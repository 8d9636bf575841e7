/*
 * loadgen.h - the engine of tc-load: a closed-loop gRPC load generator on
 * the core C API. Requests are pre-encoded payloads sent round-robin; the
 * engine keeps `inflight` calls outstanding on each of `connections`
 * channels, for a warm-up then a measured window, and records each call's
 * latency in a log-bucketed histogram.
 */
#ifndef TC_LOADGEN_H
#define TC_LOADGEN_H

#include <stddef.h>
#include <stdint.h>

typedef enum lg_mode { LG_UNARY, LG_STREAM } lg_mode;

typedef struct lg_payload {
    const uint8_t *data;
    size_t len;
} lg_payload;

typedef struct lg_config {
    const char *addr;
    const char *method;         /* "/tracecode.v1.VerifierService/VerifyBatch" */
    lg_mode mode;               /* STREAM: bidi, one message in flight per stream */
    const char *role, *subject; /* insecure identity metadata */
    int connections, inflight, threads;
    double warmup_s, duration_s;
    const lg_payload *payloads;
    size_t npayloads;
} lg_config;

/* Histogram: 64 powers of two x 16 linear sub-buckets, in nanoseconds. */
#define LG_SUB 16
#define LG_BUCKETS (64 * LG_SUB)

typedef struct lg_result {
    uint64_t calls, errors;
    double seconds;
    uint64_t hist[LG_BUCKETS];
    char first_error[256];
} lg_result;

/* Run the load; 0 on success (errors are counted, not fatal). */
int lg_run(const lg_config *cfg, lg_result *res, char *err, size_t errcap);

/* Latency in nanoseconds at quantile q (0..1) of the histogram. */
double lg_quantile(const lg_result *res, double q);

#endif
