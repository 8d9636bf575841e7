/*
 * log.h - tracesvc's log: one line per event on standard error, logfmt
 * (https://brandur.org/logfmt) with the same keys everywhere:
 *
 *   ts=2026-12-03T13:28:03.123Z level=info msg="keyring keys reloaded (SIGHUP)"
 *
 * ts is RFC 3339 in UTC with milliseconds; level is debug, info, warn or
 * error; msg is the sentence, quoted, with '"' and '\' escaped and control
 * bytes as \n, \t or \xNN, so a line never breaks and a log pipeline can
 * split it. Extra keys are appended by tclog_kv. Lines are written whole
 * (one write(2) each) from any thread. No secrets go in: callers redact.
 *
 * The bottom of svc/: every layer may log; log.c depends on nothing of ours.
 */
#ifndef TC_LOG_H
#define TC_LOG_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef enum tclog_level { TCLOG_DEBUG, TCLOG_INFO, TCLOG_WARN, TCLOG_ERROR } tclog_level;

/* One event: msg formatted with printf's rules. */
void tclog(tclog_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tclogv(tclog_level level, const char *fmt, va_list ap);

/* The same, at most once per every_ms for this *gate (a static per call
 * site, zero-initialised): the events held back meanwhile are counted and
 * the next line says how many ("(12 more since the last)"). */
typedef struct tclog_gate {
    _Atomic int64_t last_ms;
    _Atomic uint64_t held;
} tclog_gate;
void tclog_every(tclog_gate *gate, int64_t every_ms, tclog_level level, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * The access log (--access-log FILE, "-" for standard error): one logfmt
 * line per gRPC call and HTTP request, `msg="access"` then the caller's
 * keys (proto, method or route, code, ms, peer, role, subject). Callers
 * never put secrets or a consumer's whole code in it. Off until opened;
 * tclog_access_on() is one load for the hot path.
 */
int tclog_access_open(const char *path, char *err, size_t errcap);
int tclog_access_on(void);
void tclog_access(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* logfmt's value escaping of s into out (quoted); the length written. */
size_t tclog_quote(const char *s, char *out, size_t cap);

#endif
