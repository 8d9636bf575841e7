/*
 * log.c - see log.h.
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 4096

static const char *const level_name[] = {"debug", "info", "warn", "error"};

size_t tclog_quote(const char *s, char *out, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;

    if (cap < 3)
        return 0;
    out[n++] = '"';
    for (; *s && n + 5 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[n++] = '\\';
            out[n++] = (char)c;
        } else if (c == '\n') {
            out[n++] = '\\';
            out[n++] = 'n';
        } else if (c == '\t') {
            out[n++] = '\\';
            out[n++] = 't';
        } else if (c < 0x20 || c == 0x7f) {
            out[n++] = '\\';
            out[n++] = 'x';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 15];
        } else {
            out[n++] = (char)c;
        }
    }
    out[n++] = '"';
    out[n] = '\0';
    return n;
}

void tclogv(tclog_level level, const char *fmt, va_list ap)
{
    char msg[LINE_MAX_BYTES / 2], line[LINE_MAX_BYTES];
    struct timespec ts;
    struct tm tm;
    size_t n;
    int k;

    vsnprintf(msg, sizeof(msg), fmt, ap);
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    k = snprintf(line, sizeof(line),
                 "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s msg=", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
                 level_name[(unsigned)level < 4 ? level : 1]);
    n = k > 0 ? (size_t)k : 0;
    n += tclog_quote(msg, line + n, sizeof(line) - n - 1);
    line[n++] = '\n';
    /* One write: lines from threads never interleave (stderr is unbuffered,
     * and a pipe takes up to PIPE_BUF bytes whole). */
    while (write(2, line, n) < 0 && errno == EINTR)
        ;
}

void tclog(tclog_level level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    tclogv(level, fmt, ap);
    va_end(ap);
}

void tclog_every(tclog_gate *gate, int64_t every_ms, tclog_level level, const char *fmt, ...)
{
    char msg[LINE_MAX_BYTES / 2];
    struct timespec ts;
    int64_t now, last;
    uint64_t held;
    va_list ap;

    /* No lock: a refused call on the verify path pays two atomics. */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + 1;
    last = atomic_load_explicit(&gate->last_ms, memory_order_relaxed);
    if ((last && now - last < every_ms) ||
        !atomic_compare_exchange_strong_explicit(&gate->last_ms, &last, now, memory_order_relaxed,
                                                 memory_order_relaxed)) {
        atomic_fetch_add_explicit(&gate->held, 1, memory_order_relaxed);
        return;
    }
    held = atomic_exchange_explicit(&gate->held, 0, memory_order_relaxed);
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (held)
        tclog(level, "%s (%llu more since the last)", msg, (unsigned long long)held);
    else
        tclog(level, "%s", msg);
}

static _Atomic int access_fd = -1;

int tclog_access_open(const char *path, char *err, size_t errcap)
{
    int fd =
        strcmp(path, "-") == 0 ? 2 : open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);

    if (fd < 0) {
        snprintf(err, errcap, "--access-log: cannot open '%s': %s", path, strerror(errno));
        return -1;
    }
    atomic_store(&access_fd, fd);
    return 0;
}

int tclog_access_on(void)
{
    return atomic_load_explicit(&access_fd, memory_order_relaxed) >= 0;
}

void tclog_access(const char *fmt, ...)
{
    char line[LINE_MAX_BYTES];
    struct timespec ts;
    struct tm tm;
    va_list ap;
    int fd = atomic_load_explicit(&access_fd, memory_order_relaxed), k;
    size_t n;

    if (fd < 0)
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    k = snprintf(line, sizeof(line),
                 "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=info msg=\"access\" ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 ts.tv_nsec / 1000000);
    n = k > 0 ? (size_t)k : 0;
    va_start(ap, fmt);
    k = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
    va_end(ap);
    n += k > 0 ? ((size_t)k < sizeof(line) - n - 1 ? (size_t)k : sizeof(line) - n - 2) : 0;
    line[n++] = '\n';
    while (write(fd, line, n) < 0 && errno == EINTR)
        ;
}
