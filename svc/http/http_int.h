/*
 * http_int.h - private to svc/http/: what the server (http.c) and the
 * writer of pages and replies (page.c) share.
 */
#ifndef TC_HTTP_INT_H
#define TC_HTTP_INT_H

#include "http.h"
#include "scan.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

struct evbuffer;
struct evhttp_request;
struct evhttp_uri;

#define PATH_MAX_LEN 256
#define CODE_ARG_MAX 160
#define COOKIE "tcd"
#define QR_MAX (64 * 1024)
#define TRUSTED_MAX 32
#define COOKIE_RND 16 /* random bytes of a device cookie */
#define COOKIE_TAG 8  /* bytes of its MAC tag */
#define COOKIE_HEX (2 * (1 + COOKIE_RND + COOKIE_TAG))

typedef struct cidr {
    int family; /* AF_INET or AF_INET6 */
    uint8_t addr[16];
    unsigned bits;
} cidr;

/* One HTTP connection, as this file tracks it: from the bufferevent evhttp
 * asks us for (evhttp_set_bevcb) to evhttp's close callback. */
typedef struct hconn {
    struct http_server *h;
    struct bufferevent *bev;         /* the socket bufferevent evhttp reads through */
    struct evhttp_connection *evcon; /* once evhttp has made it (next loop turn) */
    struct event *attach, *deadline; /* find evcon; the request's headers are due */
    struct hconn *next;
} hconn;

/* Requests by route and status, and their latency, for /metrics. The
 * counters are written by the listener's thread and read by the admin
 * listener's (relaxed atomics). */
#define HTTP_ROUTES_MAX 16 /* routes[] has fewer; one more row for no route */
#define HTTP_STATUSES 14   /* the codes we answer (http.c), and one for others */
#define HTTP_BUCKETS 12
typedef struct http_stats {
    _Atomic uint64_t reqs[HTTP_ROUTES_MAX + 1][HTTP_STATUSES + 1];
    _Atomic uint64_t lat[HTTP_ROUTES_MAX + 1][HTTP_BUCKETS + 1];
    _Atomic uint64_t lat_sum_us[HTTP_ROUTES_MAX + 1];
} http_stats;

/* The status of the reply being sent on this thread (http_reply sets it). */
extern _Thread_local int http_status;

struct http_server {
    http_kind kind;
    http_stats stats;
    svc *svc;
    struct evconnlistener *listener;
    struct event *resume; /* accepts paused (cap reached, or accept failing) */
    int paused, failing;
    int conns, max_conns;
    hconn *live;
    int64_t accept_errors, errors_logged_at, backoff_ms;
    _Atomic int healthy_accept; /* 0 while accept() fails: /healthz says so */
    cidr trusted[TRUSTED_MAX];  /* proxies whose X-Region is believed */
    int ntrusted;
    struct event_base *base;
    struct evhttp *http;
    pthread_t thread;
    int reader;
    int port;
    http_metrics_fn metrics;
    void *metrics_arg;
    uint8_t qr[QR_MAX]; /* one request at a time on this thread */
};

/* s escaped for HTML text and attributes / as a JSON string (quoted). */
void http_esc_html(struct evbuffer *b, const char *s);
void http_esc_json(struct evbuffer *b, const char *s);
/* A reply with its headers (type, nosniff, no-store, the CSP). */
void http_reply(struct evhttp_request *req, int code, const char *reason, const char *type,
                struct evbuffer *body);
/* A plain-text reply of one line. */
void http_text(struct evhttp_request *req, int code, const char *reason, const char *msg);
/* The scan page of code (beacon: with the script that records the scan),
 * and its JSON; en: English, else Chinese. */
void http_scan_page(struct evbuffer *b, const scan_view *v, const char *code, int en, int beacon);
void http_scan_json(struct evbuffer *b, const scan_view *v, int en);
/* Product images may come from these https origins (comma separated):
 * the pages' img-src. Once, before any listener serves. */
void http_set_image_origins(const char *list);
/* The answer to the page's "report a problem" form: thanks and the
 * report's number, or what stopped it, in plain words. */
void http_report_page(struct evhttp_request *req, const char *code, svc_code result,
                      const char *why, uint64_t id, int en);

/* visitor.c: who a request comes from. */
/* English asked for: ?lang=en, or an Accept-Language that starts with en. */
int http_want_english(struct evhttp_request *req, const struct evhttp_uri *uri);
/* The device of the request's signed cookie into device; 0 if none. */
int http_device_of(const svc *s, struct evhttp_request *req, char device[2 * COOKIE_RND + 1]);
/* Set a new signed device cookie on the reply. */
void http_new_cookie(const svc *s, struct evhttp_request *req);
/* A crawler or link previewer by its User-Agent: it never records a scan. */
int http_is_robot(struct evhttp_request *req);
/* "ADDR/BITS" (v4 or v6) into c; 0 on success. */
int http_cidr_parse(const char *s, cidr *c);
/* The region a trusted proxy names (X-Region), else "". */
void http_region_of(const http_server *h, struct evhttp_request *req,
                    char out[STORE_REGION_MAX + 1]);
/* The code in path after skip bytes (and before suffix); 0 if none. */
int http_code_arg(const char *path, size_t skip, const char *suffix, char out[CODE_ARG_MAX + 1]);
/* The device a JSON caller names (?device=ID); 0 if none or malformed. */
int http_device_param(const struct evhttp_uri *uri, char out[65]);

#endif
