/*
 * http.h - the HTTP side of tracesvc (libevent evhttp): the consumer scan
 * page, its JSON, QR images, /healthz and /readyz. See http.c for routes.
 */
#ifndef TC_HTTP_H
#define TC_HTTP_H

#include "api.h"

#include <stddef.h>

typedef struct http_server http_server;

/* Prometheus text for /metrics: bytes written, or the size needed. */
typedef size_t (*http_metrics_fn)(void *arg, char *buf, size_t cap);

/* What a listener serves: the consumers' pages (--http: /C/{code}, its
 * JSON, QR images, the beacon), or the operators' (--admin: /metrics,
 * /healthz, /readyz). Neither answers the other's paths. */
typedef enum http_kind { HTTP_PUBLIC, HTTP_ADMIN } http_kind;

/* Listen on addr (HOST:PORT; port 0 picks one) and serve kind from a
 * thread of its own, at most max_conns connections at once (0: 1024; never
 * more than a quarter of the descriptor limit), each request's headers
 * within 10 s in all. trusted_proxies (NULL: none): comma-separated
 * ADDRESS[/BITS] whose X-Region header is believed. NULL with a message in
 * err on failure. */
http_server *http_start(http_kind kind, const char *addr, svc *s, const char *trusted_proxies,
                        int max_conns, http_metrics_fn metrics, void *metrics_arg, char *err,
                        size_t errcap);
int http_port(const http_server *h);
/* The listeners' requests by route and status, and their latency, as
 * Prometheus text at buf + n (NULL entries skipped); the new length. */
size_t http_metrics(http_server *const *hs, size_t nh, char *buf, size_t cap, size_t n);
void http_stop(http_server *h);

#endif
