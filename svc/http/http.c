/*
 * http.c - the consumer scan page, its JSON and QR images, and health
 * checks, on libevent's evhttp in a thread of its own (a scan is one Redis
 * round trip; the replica tail's loop never waits for it).
 *
 *   GET /C/{code}               HTML scan page (zh; en by Accept-Language
 *                               or ?lang=en); shows, never records
 *   POST /seen/{code}           the page's beacon: records the scan of the
 *                               device whose signed cookie it carries
 *   GET /beacon.js              the beacon (same origin, so the CSP allows it)
 *   GET /api/v1/scan/{code}     the same as JSON; ?device=ID records the scan
 *   GET /qr/{code}.svg|.png     the code's scan URL as a QR
 *   GET /metrics                Prometheus text
 *   GET /healthz                alive
 *   GET /readyz                 replica fresh and Redis reachable
 *
 * Every input is bounded and every output escaped; unknown paths and bad
 * codes get a page that says what is wrong.
 */
#include "http.h"
#include "log.h"
#include "http_int.h"
#include "check.h"
#include "scan.h"
#include "reports.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <event2/keyvalq_struct.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <unistd.h>

/* --- connections: a cap, a deadline for headers, accept errors ------------- */

#define HEADER_DEADLINE_S 10 /* the whole of a request's headers, not per byte */
#define ACCEPT_LOG_EVERY_MS 10000

static int64_t mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t mono_ms(void)
{
    return mono_us() / 1000;
}

static void pause_accepts(http_server *h, int64_t ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

    if (!h->paused)
        evconnlistener_disable(h->listener);
    h->paused = 1;
    evtimer_add(h->resume, &tv);
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    http_server *h = arg;

    (void)fd;
    (void)what;
    if (h->conns >= h->max_conns) {
        pause_accepts(h, 100); /* still full: look again */
        return;
    }
    h->paused = 0;
    h->failing = 0;
    evconnlistener_enable(h->listener);
}

/* The listener's error callback gets the listener's own argument, which
 * evhttp owns: servers are found by their listener here (a few at most). */
#define SERVERS_MAX 8
static pthread_mutex_t servers_mu = PTHREAD_MUTEX_INITIALIZER;
static http_server *servers[SERVERS_MAX];

static http_server *server_of(const struct evconnlistener *l)
{
    http_server *h = NULL;
    int i;

    pthread_mutex_lock(&servers_mu);
    for (i = 0; i < SERVERS_MAX && !h; i++)
        if (servers[i] && servers[i]->listener == l)
            h = servers[i];
    pthread_mutex_unlock(&servers_mu);
    return h;
}

static int server_note(http_server *h, http_server *was)
{
    int i;

    pthread_mutex_lock(&servers_mu);
    for (i = 0; i < SERVERS_MAX && servers[i] != was; i++)
        ;
    if (i < SERVERS_MAX)
        servers[i] = h;
    pthread_mutex_unlock(&servers_mu);
    return i < SERVERS_MAX ? 0 : -1;
}

/* accept() failed (descriptors or memory ran out): pause with backoff
 * instead of spinning on a readable listener, and say so once per
 * ACCEPT_LOG_EVERY_MS with a count. gRPC keeps its own descriptors. */
static void on_accept_error(struct evconnlistener *l, void *arg)
{
    http_server *h = server_of(l);
    int err = EVUTIL_SOCKET_ERROR();
    int64_t now = mono_ms();

    (void)arg;
    if (!h)
        return;
    h->accept_errors++;
    h->failing = 1;
    atomic_store(&h->healthy_accept, 0);
    if (h->kind == HTTP_PUBLIC)
        atomic_store(&h->svc->http_deaf, 1); /* for the admin listener's /healthz */
    h->backoff_ms = h->backoff_ms ? (h->backoff_ms * 2 > 2000 ? 2000 : h->backoff_ms * 2) : 50;
    if (now - h->errors_logged_at >= ACCEPT_LOG_EVERY_MS) {
        tclog(TCLOG_WARN,
              "http: accept() failed %lld times since the last report (%s); "
              "pausing accepts, next try in %lld ms",
              (long long)h->accept_errors, evutil_socket_error_to_string(err),
              (long long)h->backoff_ms);
        h->accept_errors = 0;
        h->errors_logged_at = now;
    }
    pause_accepts(h, h->backoff_ms);
}

/* The headers of the connection's request did not all arrive in time:
 * end the connection (evhttp sees it close, frees it and tells us). */
static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    hconn *c = arg;
    evutil_socket_t s = bufferevent_getfd(c->bev);

    (void)fd;
    (void)what;
    if (s >= 0)
        shutdown(s, SHUT_RDWR);
}

static void arm_deadline(hconn *c)
{
    struct timeval tv = {HEADER_DEADLINE_S, 0};

    evtimer_add(c->deadline, &tv);
}

static void conn_forget(hconn *c)
{
    http_server *h = c->h;
    hconn **p;

    for (p = &h->live; *p; p = &(*p)->next)
        if (*p == c) {
            *p = c->next;
            break;
        }
    event_free(c->attach);
    event_free(c->deadline);
    free(c);
    h->conns--;
    if (h->paused && !h->failing && h->conns < h->max_conns) {
        evtimer_del(h->resume);
        on_resume(-1, 0, h);
    }
}

/* evhttp's close callback: the connection is gone (however it ended). */
static void on_close(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    conn_forget(arg);
}

/* The next loop turn after the accept: evhttp has made the connection and
 * set itself as its bufferevent's callback argument. */
static void on_attach(evutil_socket_t fd, short what, void *arg)
{
    hconn *c = arg;
    void *evcon = NULL;

    (void)fd;
    (void)what;
    bufferevent_getcb(c->bev, NULL, NULL, NULL, &evcon);
    if (!evcon) {
        conn_forget(c); /* not evhttp's after all: untracked */
        return;
    }
    c->evcon = evcon;
    evhttp_connection_set_closecb(c->evcon, on_close, c);
}

/* evhttp's new connection: its bufferevent, counted, with a deadline for
 * the first request's headers. */
static struct bufferevent *new_bev(struct event_base *base, void *arg)
{
    http_server *h = arg;
    struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    struct timeval now = {0, 0};
    hconn *c = bev ? calloc(1, sizeof(*c)) : NULL;

    if (!c)
        return bev;
    c->attach = evtimer_new(base, on_attach, c);
    c->deadline = evtimer_new(base, on_deadline, c);
    if (!c->attach || !c->deadline) {
        if (c->attach)
            event_free(c->attach);
        if (c->deadline)
            event_free(c->deadline);
        free(c);
        return bev; /* untracked; evhttp still serves it */
    }
    c->h = h;
    c->bev = bev;
    c->next = h->live;
    h->live = c;
    evtimer_add(c->attach, &now);
    if (++h->conns >= h->max_conns)
        pause_accepts(h, 100);
    atomic_store(&h->healthy_accept, 1);
    if (h->kind == HTTP_PUBLIC)
        atomic_store(&h->svc->http_deaf, 0);
    h->backoff_ms = 0;
    arm_deadline(c);
    return bev;
}

/* The connection of req (its headers have arrived): no deadline until its
 * next request starts. */
static hconn *conn_of(http_server *h, struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    hconn *c;

    for (c = h->live; evcon && c; c = c->next)
        if (c->evcon == evcon)
            return c;
    return NULL;
}

static void on_scan(http_server *h, struct evhttp_request *req, const struct evhttp_uri *uri,
                    const char *code, int as_json)
{
    struct evbuffer *b = evbuffer_new();
    char device[65], cookie_dev[2 * COOKIE_RND + 1];
    int en = http_want_english(req, uri), record = 0;
    scan_view *v = malloc(sizeof(*v));

    if (!b || !v) {
        evbuffer_free(b);
        free(v);
        evhttp_send_error(req, 500, NULL);
        return;
    }
    /* An app naming its device counts whatever its HTTP client is called;
     * previews and crawlers follow links, which name none. */
    if (as_json && evhttp_request_get_command(req) == EVHTTP_REQ_GET)
        record = http_device_param(uri, device);
    if (record) {
        char region[STORE_REGION_MAX + 1];
        http_region_of(h, req, region);
        scan_code(h->svc, h->reader, code, region, device, 1, v);
    } else {
        scan_code(h->svc, h->reader, code, "", "", 0, v);
    }
    if (!as_json && !http_device_of(h->svc, req, cookie_dev))
        http_new_cookie(h->svc, req);
    if (as_json) {
        http_scan_json(b, v, en);
        http_reply(req, 200, "OK", "application/json", b);
    } else {
        http_scan_page(b, v, code, en, v->recorded && !http_is_robot(req));
        http_reply(req, 200, "OK", "text/html; charset=utf-8", b);
    }
    evbuffer_free(b);
    free(v);
}

/* The page's beacon: counts this device's scan of code, once the device
 * has its signed cookie. Robots and anything without the cookie are
 * answered and not counted. */
static void on_seen(http_server *h, struct evhttp_request *req, const char *code)
{
    char device[2 * COOKIE_RND + 1], region[STORE_REGION_MAX + 1];
    scan_view *v;

    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        http_text(req, 405, "Method Not Allowed", "the scan beacon is a POST from the scan page");
        return;
    }
    if (http_is_robot(req) || !http_device_of(h->svc, req, device)) {
        http_text(req, 403, "Forbidden", "not counted: no device cookie from the scan page");
        return;
    }
    v = malloc(sizeof(*v));
    if (!v) {
        evhttp_send_error(req, 500, NULL);
        return;
    }
    http_region_of(h, req, region);
    scan_code(h->svc, h->reader, code, region, device, 1, v);
    http_text(req, v->counted ? 200 : 404, v->counted ? "OK" : "Not Found",
              v->counted ? "counted" : "not counted: not a code this service issued");
    free(v);
}

static const char beacon_js[] =
    "(function(){var s=document.currentScript;"
    "if(s&&navigator.sendBeacon)navigator.sendBeacon('/seen/'+s.getAttribute('data-code'));})();\n";

static void on_beacon_js(struct evhttp_request *req)
{
    struct evbuffer *b = evbuffer_new();

    if (!b) {
        evhttp_send_error(req, 500, NULL);
        return;
    }
    evbuffer_add(b, beacon_js, sizeof(beacon_js) - 1);
    http_reply(req, 200, "OK", "text/javascript; charset=utf-8", b);
    evbuffer_free(b);
}

static void on_qr(http_server *h, struct evhttp_request *req, const char *code, int png)
{
    codec_qr_opts o = {CODEC_ECC_M, png ? 8 : 4, 4};
    char url[CODEC_BASE_URL_MAX + CODEC_MAX_TEXT_LEN + 8], canon[CODEC_MAX_TEXT_LEN + 1];
    struct evbuffer *b;
    size_t need, ulen;

    if (!check_canonical_code(code, canon) ||
        codec_url_format(h->svc->base_url, canon, strlen(canon), url, sizeof(url), &ulen, NULL) !=
            CODEC_OK) {
        http_text(req, 404, "Not Found", "not a trace code: nothing to draw");
        return;
    }
    if ((png ? codec_qr_png(url, ulen, &o, h->qr, sizeof(h->qr), &need, NULL)
             : codec_qr_svg(url, ulen, &o, (char *)h->qr, sizeof(h->qr), &need, NULL)) !=
        CODEC_OK) {
        http_text(req, 500, "Internal Server Error", "cannot draw the QR");
        return;
    }
    b = evbuffer_new();
    if (!b) {
        evhttp_send_error(req, 500, NULL);
        return;
    }
    evbuffer_add(b, h->qr, need);
    http_reply(req, 200, "OK", png ? "image/png" : "image/svg+xml", b);
    evbuffer_free(b);
}

static void on_metrics(http_server *h, struct evhttp_request *req)
{
    size_t cap = 64 * 1024, n;
    char *buf = NULL;
    struct evbuffer *b;

    for (;;) {
        char *nb = realloc(buf, cap);
        if (!nb)
            break;
        buf = nb;
        n = h->metrics(h->metrics_arg, buf, cap);
        if (n < cap)
            break;
        cap = n + 1;
    }
    b = buf ? evbuffer_new() : NULL;
    if (!b) {
        free(buf);
        evhttp_send_error(req, 500, NULL);
        return;
    }
    evbuffer_add(b, buf, n);
    free(buf);
    http_reply(req, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", b);
    evbuffer_free(b);
}

/*
 * /readyz: 200 while the node can verify (its replica heard from Redis
 * within --ready-staleness), whether or not Redis answers now: a load
 * balancer keeps it while Redis fails over. The body says whether writes
 * are possible; /readyz?writes=1 answers 503 while they are not.
 */
static void on_ready(http_server *h, struct evhttp_request *req, const struct evhttp_uri *uri)
{
    const char *q = evhttp_uri_get_query(uri);
    int want_writes = q && strstr(q, "writes=1") != NULL;
    char why[160], not_ready[300], msg[400];
    int verify = svc_ready(h->svc, not_ready, sizeof(not_ready)), write = svc_can_write(h->svc);

    pthread_mutex_lock(&h->svc->why_mu);
    snprintf(why, sizeof(why), "%s", h->svc->why_not_writable);
    pthread_mutex_unlock(&h->svc->why_mu);
    if (!verify)
        snprintf(msg, sizeof(msg), "not ready: %s", not_ready);
    else
        snprintf(msg, sizeof(msg), "ready: verifying%s; writes %s%s",
                 svc_stale(h->svc) ? " (answers flagged stale)" : "",
                 write ? "possible" : "not possible: ", write ? "" : why);
    if (!verify || (want_writes && !write))
        http_text(req, 503, "Service Unavailable", msg);
    else
        http_text(req, 200, "OK", msg);
}

/* --- routes ------------------------------------------------------------------------ */

#define NOT_FOUND "not found: scan pages are at /C/{code}, their JSON at /api/v1/scan/{code}"
#define NOT_FOUND_ADMIN                                                                            \
    "not found: this is the admin listener (--admin): /metrics, /healthz, /readyz; scan pages "    \
    "are on --http"

static void route_seen(http_server *h, struct evhttp_request *req, struct evhttp_uri *uri,
                       const char *path)
{
    char code[CODE_ARG_MAX + 1];

    (void)uri;
    if (http_code_arg(path, 6, NULL, code))
        on_seen(h, req, code);
    else
        http_text(req, 404, "Not Found", "not a trace code");
}

#define REPORT_BODY_MAX 4096

/* The page's "report a problem" form: a POST from a device that holds the
 * page's cookie (a cross-site form sends no SameSite=Lax cookie), its
 * reason and words filed like ConsumerService.ReportProblem. */
static void route_report(http_server *h, struct evhttp_request *req, struct evhttp_uri *uri,
                         const char *path)
{
    char code[CODE_ARG_MAX + 1], device[2 * COOKIE_RND + 1], region[STORE_REGION_MAX + 1];
    char body[REPORT_BODY_MAX + 1], msg[SVC_MSG_MAX];
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    const char *reason, *text;
    struct evkeyvalq form;
    int en = http_want_english(req, uri);
    svc_status st = {0};
    uint32_t on_code = 0;
    uint64_t id = 0;
    size_t n = evbuffer_get_length(in);

    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        http_text(req, 405, "Method Not Allowed", "a report is a POST from the scan page's form");
        return;
    }
    if (!http_code_arg(path, 8, NULL, code)) {
        http_text(req, 404, "Not Found", "not a trace code");
        return;
    }
    if (http_is_robot(req) || !http_device_of(h->svc, req, device)) {
        http_text(req, 403, "Forbidden", "not filed: no device cookie from the scan page");
        return;
    }
    if (n > REPORT_BODY_MAX) {
        http_text(req, 413, "Payload Too Large", "a report is at most 4096 bytes");
        return;
    }
    evbuffer_remove(in, body, n);
    body[n] = '\0';
    if (memchr(body, '\0', n) || evhttp_parse_query_str(body, &form) != 0) {
        http_text(req, 400, "Bad Request", "the form could not be read");
        return;
    }
    reason = evhttp_find_header(&form, "reason");
    text = evhttp_find_header(&form, "text");
    http_region_of(h, req, region);
    report_file(h->svc, h->reader, code, reason ? (int)strtol(reason, NULL, 10) : 0,
                text ? text : "", device, region, "page", &id, &on_code, &st);
    snprintf(msg, sizeof(msg), "%s", st.msg);
    evhttp_clear_headers(&form);
    http_report_page(req, code, st.code, msg, id, en);
}

static void route_beacon(http_server *h, struct evhttp_request *req, struct evhttp_uri *uri,
                         const char *path)
{
    (void)h, (void)uri, (void)path;
    on_beacon_js(req);
}

static void route_metrics(http_server *h, struct evhttp_request *req, struct evhttp_uri *uri,
                          const char *path)
{
    (void)uri, (void)path;
    on_metrics(h, req);
}

static void route_healthz(http_server *h, struct evhttp_request *req, struct evhttp_uri *uri,
                          const char *path)
{
    int probe = dup(2);

    (void)uri, (void)path;
    if (probe >= 0)
        close(probe);
    if (probe < 0)
        http_text(req, 503, "Service Unavailable", "not healthy: out of file descriptors");
    else if (!atomic_load(&h->healthy_accept) || atomic_load(&h->svc->http_deaf))
        http_text(req, 503, "Service Unavailable",
                  "not healthy: the HTTP listener could not accept connections");
    else if (atomic_load(&h->svc->grpc_deaf))
        http_text(req, 503, "Service Unavailable",
                  "not healthy: the gRPC listener does not accept connections (it stopped when "
                  "descriptors ran out); restart the node");
    else
        http_text(req, 200, "OK", "ok");
}

static void route_readyz(http_server *h, struct evhttp_request *req, struct evhttp_uri *uri,
                         const char *path)
{
    (void)path;
    on_ready(h, req, uri);
}

static void route_page(http_server *h, struct evhttp_request *req, struct evhttp_uri *uri,
                       const char *path)
{
    char code[CODE_ARG_MAX + 1];

    /* not a code: a page that explains */
    on_scan(h, req, uri, http_code_arg(path, 3, NULL, code) ? code : "-", 0);
}

static void route_json(http_server *h, struct evhttp_request *req, struct evhttp_uri *uri,
                       const char *path)
{
    char code[CODE_ARG_MAX + 1];

    on_scan(h, req, uri, http_code_arg(path, 13, NULL, code) ? code : "-", 1);
}

/* A GS1 Digital Link's path, /01/GTIN/10/LOT/21/SERIAL: the path is the
 * code's form (codec_dl_parse reads it), so a GS1 scanner that opens the
 * label's URI lands on the scan page. */
static void route_dl(http_server *h, struct evhttp_request *req, struct evhttp_uri *uri,
                     const char *path)
{
    char code[CODE_ARG_MAX + 1];
    size_t n = strlen(path), i;

    for (i = 0; i < n && n <= CODE_ARG_MAX; i++) {
        if (!isalnum((unsigned char)path[i]) && path[i] != '/')
            break;
        code[i] = (char)toupper((unsigned char)path[i]);
    }
    code[i] = '\0';
    on_scan(h, req, uri, n <= CODE_ARG_MAX && i == n ? code : "-", 0);
}

/* A code a consumer typed into the page's field (?code=...): read by the
 * lenient path, the check symbol first. */
static void route_check(http_server *h, struct evhttp_request *req, struct evhttp_uri *uri,
                        const char *path)
{
    const char *q = evhttp_uri_get_query(uri), *v;
    struct evkeyvalq params;
    char code[CODE_ARG_MAX + 1] = "-";

    (void)path;
    if (q && evhttp_parse_query_str(q, &params) == 0) { /* initialises params */
        if ((v = evhttp_find_header(&params, "code")) != NULL && *v && strlen(v) <= CODE_ARG_MAX) {
            size_t n = strlen(v), i;
            for (i = 0; i < n && v[i] >= 0x20 && v[i] < 0x7f; i++) /* printable ASCII only */
                ;
            if (i == n)
                snprintf(code, sizeof(code), "%s", v);
        }
        evhttp_clear_headers(&params);
    }
    on_scan(h, req, uri, code, 0);
}

static void route_qr(http_server *h, struct evhttp_request *req, struct evhttp_uri *uri,
                     const char *path)
{
    char code[CODE_ARG_MAX + 1];

    (void)uri;
    if (http_code_arg(path, 4, ".svg", code) || http_code_arg(path, 4, ".png", code))
        on_qr(h, req, code, strstr(path, ".png") != NULL);
    else
        http_text(req, 404, "Not Found", NOT_FOUND);
}

/* The HTTP routes, as the RPC methods are: data. A path matches a route
 * whole (exact) or by its prefix; /C/ and /seen/ ignore case (a QR code in
 * alphanumeric mode upper-cases the address). Only the beacon takes POST. */
typedef struct route {
    const char *path;
    http_kind kind; /* the listener that serves it */
    int exact, nocase, post;
    void (*fn)(http_server *h, struct evhttp_request *req, struct evhttp_uri *uri,
               const char *path);
} route;

static const route routes[] = {
    {"/seen/", HTTP_PUBLIC, 0, 1, 1, route_seen},        /* the scan page's beacon: a scan */
    {"/beacon.js", HTTP_PUBLIC, 1, 0, 0, route_beacon},  /* its script */
    {"/C/", HTTP_PUBLIC, 0, 1, 0, route_page},           /* the scan page of a code */
    {"/01/", HTTP_PUBLIC, 0, 0, 0, route_dl},            /* the same, from a GS1 Digital Link */
    {"/check", HTTP_PUBLIC, 1, 0, 0, route_check},       /* the same, for a typed code */
    {"/report/", HTTP_PUBLIC, 0, 1, 1, route_report},    /* the page's "report a problem" */
    {"/api/v1/scan/", HTTP_PUBLIC, 0, 0, 0, route_json}, /* the same as JSON */
    {"/qr/", HTTP_PUBLIC, 0, 0, 0, route_qr},            /* a code's QR, .svg or .png */
    {"/metrics", HTTP_ADMIN, 1, 0, 0, route_metrics},    /* Prometheus text */
    {"/healthz", HTTP_ADMIN, 1, 0, 0, route_healthz},    /* alive */
    {"/readyz", HTTP_ADMIN, 1, 0, 0, route_readyz}, /* ready to verify (?writes=1: and write) */
};

_Static_assert(sizeof(routes) / sizeof(routes[0]) <= HTTP_ROUTES_MAX, "HTTP_ROUTES_MAX");

static const int status_codes[HTTP_STATUSES] = {200, 204, 301, 302, 304, 400, 403,
                                                404, 405, 413, 414, 429, 500, 503};
/* Latency bounds, microseconds. */
static const int64_t http_bucket_us[HTTP_BUCKETS] = {100,   250,   500,   1000,   2500,   5000,
                                                     10000, 25000, 50000, 100000, 250000, 1000000};

/* What the access log says of a request, taken before its handler runs
 * (a reply may free the request). A consumer's code is cut to its first
 * six symbols: enough to find a line, never a copy of the label. */
typedef struct access_info {
    char peer[80], path[112];
    const char *method;
} access_info;

static void access_begin(struct evhttp_request *req, const char *raw, access_info *ai)
{
    static const char *const coded[] = {"/c/", "/api/v1/scan/", "/qr/", "/seen/"};
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    enum evhttp_cmd_type m = evhttp_request_get_command(req);
    char *addr = NULL;
    ev_uint16_t port = 0;
    size_t n, keep, i;

    raw = raw ? raw : "";
    n = keep = strcspn(raw, "?");
    snprintf(ai->peer, sizeof(ai->peer), "-");
    if (evcon) {
        evhttp_connection_get_peer(evcon, &addr, &port);
        if (addr)
            snprintf(ai->peer, sizeof(ai->peer), "%s:%u", addr, (unsigned)port);
    }
    ai->method = m == EVHTTP_REQ_GET    ? "GET"
                 : m == EVHTTP_REQ_HEAD ? "HEAD"
                 : m == EVHTTP_REQ_POST ? "POST"
                                        : "OTHER";
    for (i = 0; i < sizeof(coded) / sizeof(coded[0]); i++) {
        size_t p = strlen(coded[i]);
        if (n > p + 6 && strncasecmp(raw, coded[i], p) == 0) {
            keep = p + 6;
            break;
        }
    }
    if (keep > sizeof(ai->path) - 4)
        keep = sizeof(ai->path) - 4;
    for (i = 0; i < keep; i++) /* the caller's bytes: keep the line one value each */
        ai->path[i] =
            (unsigned char)raw[i] <= ' ' || raw[i] == '"' || raw[i] == 0x7f ? '?' : raw[i];
    memcpy(ai->path + keep, keep < n ? "..." : "", keep < n ? 4 : 1);
}

static void count_request(http_server *h, const route *r, int status, int64_t us,
                          const access_info *ai)
{
    size_t ri = r ? (size_t)(r - routes) : HTTP_ROUTES_MAX, si = 0, b = 0;

    while (si < HTTP_STATUSES && status_codes[si] != status)
        si++;
    while (b < HTTP_BUCKETS && us > http_bucket_us[b])
        b++;
    atomic_fetch_add_explicit(&h->stats.reqs[ri][si], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->stats.lat[ri][b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->stats.lat_sum_us[ri], (uint64_t)(us > 0 ? us : 0),
                              memory_order_relaxed);
    if (ai)
        tclog_access("proto=http listener=%s method=%s route=%s status=%d ms=%.3f peer=%s path=%s",
                     h->kind == HTTP_ADMIN ? "admin" : "public", ai->method, r ? r->path : "none",
                     status, (double)us / 1000.0, ai->peer, ai->path);
}

#define NROUTES (sizeof(routes) / sizeof(routes[0]))

/* Row ri of the stats: a route of h's listener, or the last (no route). */
static const char *row_name(const http_server *h, size_t ri)
{
    if (ri == HTTP_ROUTES_MAX)
        return "none";
    return ri < NROUTES && routes[ri].kind == h->kind ? routes[ri].path : NULL;
}

size_t http_metrics(http_server *const *hs, size_t nh, char *buf, size_t cap, size_t n)
{
#define OUT(...) (n = svc_appendf(buf, cap, n, __VA_ARGS__))
    OUT("# HELP tracesvc_http_requests_total HTTP requests answered, by listener, route and "
        "status.\n# TYPE tracesvc_http_requests_total counter\n");
    for (size_t k = 0; k < nh; k++) {
        const http_server *h = hs[k];
        const char *who = h && h->kind == HTTP_ADMIN ? "admin" : "public";
        for (size_t ri = 0; h && ri <= HTTP_ROUTES_MAX; ri++) {
            const char *path = row_name(h, ri);
            for (size_t si = 0; path && si <= HTTP_STATUSES; si++) {
                uint64_t v = atomic_load_explicit(&h->stats.reqs[ri][si], memory_order_relaxed);
                char code[8];
                if (!v)
                    continue;
                snprintf(code, sizeof(code), "%d", si < HTTP_STATUSES ? status_codes[si] : 0);
                OUT("tracesvc_http_requests_total{listener=\"%s\",route=\"%s\",code=\"%s\"} "
                    "%llu\n",
                    who, path, si < HTTP_STATUSES ? code : "other", (unsigned long long)v);
            }
        }
    }
    OUT("# HELP tracesvc_http_request_duration_seconds Time to answer an HTTP request, by "
        "listener and route.\n# TYPE tracesvc_http_request_duration_seconds histogram\n");
    for (size_t k = 0; k < nh; k++) {
        const http_server *h = hs[k];
        const char *who = h && h->kind == HTTP_ADMIN ? "admin" : "public";
        for (size_t ri = 0; h && ri <= HTTP_ROUTES_MAX; ri++) {
            const char *path = row_name(h, ri);
            uint64_t cum = 0, total = 0;
            for (size_t b = 0; path && b <= HTTP_BUCKETS; b++)
                total += atomic_load_explicit(&h->stats.lat[ri][b], memory_order_relaxed);
            if (!path || (!total && ri == HTTP_ROUTES_MAX))
                continue;
            for (size_t b = 0; b <= HTTP_BUCKETS; b++) {
                char le[24];
                cum += atomic_load_explicit(&h->stats.lat[ri][b], memory_order_relaxed);
                if (b < HTTP_BUCKETS)
                    snprintf(le, sizeof(le), "%g", (double)http_bucket_us[b] / 1e6);
                else
                    snprintf(le, sizeof(le), "+Inf");
                OUT("tracesvc_http_request_duration_seconds_bucket{listener=\"%s\",route=\"%s\","
                    "le=\"%s\"} %llu\n",
                    who, path, le, (unsigned long long)cum);
            }
            OUT("tracesvc_http_request_duration_seconds_sum{listener=\"%s\",route=\"%s\"} "
                "%.6f\n",
                who, path,
                (double)atomic_load_explicit(&h->stats.lat_sum_us[ri], memory_order_relaxed) / 1e6);
            OUT("tracesvc_http_request_duration_seconds_count{listener=\"%s\",route=\"%s\"} "
                "%llu\n",
                who, path, (unsigned long long)cum);
        }
    }
#undef OUT
    return n;
}

static const route *route_of(http_kind kind, const char *path)
{
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        const route *r = &routes[i];
        size_t n = strlen(r->path);
        if (r->kind != kind)
            continue;
        int same = r->nocase ? strncasecmp(path, r->path, n) == 0 : strncmp(path, r->path, n) == 0;
        if (same && (!r->exact || path[n] == '\0'))
            return r;
    }
    return NULL;
}

static void on_request(struct evhttp_request *req, void *arg)
{
    http_server *h = arg;
    const char *raw = evhttp_request_get_uri(req), *path;
    struct evhttp_uri *uri;
    enum evhttp_cmd_type m = evhttp_request_get_command(req);
    hconn *c = conn_of(h, req);
    const route *r;
    int64_t t0 = mono_us();
    access_info access, *ai = NULL;

    /* Its headers are in: the next request's deadline starts now. */
    if (c)
        arm_deadline(c);
    if (tclog_access_on()) {
        access_begin(req, raw, &access);
        ai = &access;
    }

    if (m != EVHTTP_REQ_GET && m != EVHTTP_REQ_HEAD && m != EVHTTP_REQ_POST) {
        http_text(req, 405, "Method Not Allowed", "only GET, HEAD and the scan beacon's POST");
        count_request(h, NULL, 405, mono_us() - t0, ai);
        return;
    }
    if (strlen(raw) > PATH_MAX_LEN || !(uri = evhttp_uri_parse(raw))) {
        http_text(req, 414, "URI Too Long", "the address is too long or not an address");
        count_request(h, NULL, 414, mono_us() - t0, ai);
        return;
    }
    path = evhttp_uri_get_path(uri);
    if (!path)
        path = "/";
    r = route_of(h->kind, path);
    http_status = 500; /* what a handler that answers evhttp_send_error(500) sent */
    if (m == EVHTTP_REQ_POST && (!r || !r->post))
        http_text(req, 405, "Method Not Allowed",
                  "only the scan beacon (/seen/{code}) takes a POST");
    else if (r)
        r->fn(h, req, uri, path);
    else
        http_text(req, 404, "Not Found", h->kind == HTTP_ADMIN ? NOT_FOUND_ADMIN : NOT_FOUND);
    count_request(h, r, http_status, mono_us() - t0, ai);
    evhttp_uri_free(uri);
}

/* --- lifecycle ------------------------------------------------------------------ */

static void *http_main(void *arg)
{
    http_server *h = arg;

    event_base_loop(h->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

http_server *http_start(http_kind kind, const char *addr, svc *s, const char *trusted,
                        int max_conns, http_metrics_fn metrics, void *metrics_arg, char *err,
                        size_t errcap)
{
    const char *flag = kind == HTTP_ADMIN ? "--admin" : "--http";
    struct rlimit rl;

    if (kind == HTTP_PUBLIC) /* before its thread serves anything */
        http_set_image_origins(s->image_origins);
    const char *colon = strrchr(addr, ':');
    char host[128];
    struct evhttp_bound_socket *sock;
    http_server *h;
    char *end;
    long port;
    size_t n;

    if (!colon || (n = (size_t)(colon - addr)) == 0 || n >= sizeof(host)) {
        snprintf(err, errcap, "%s '%s' is not HOST:PORT", flag, addr);
        return NULL;
    }
    memcpy(host, addr, n);
    host[n] = '\0';
    port = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end || port < 0 || port > 65535) {
        snprintf(err, errcap, "%s '%s': the port is not 0..65535", flag, addr);
        return NULL;
    }
    h = calloc(1, sizeof(*h));
    if (!h || !(h->base = event_base_new()) || !(h->http = evhttp_new(h->base))) {
        snprintf(err, errcap, "out of memory");
        goto fail;
    }
    h->kind = kind;
    h->svc = s;
    atomic_store(&h->healthy_accept, 1);
    /* Never more than a quarter of the descriptors: gRPC, Redis and the
     * files need the rest. */
    h->max_conns = max_conns > 0 ? max_conns : 1024;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        (rlim_t)h->max_conns > rl.rlim_cur / 4)
        h->max_conns = (int)(rl.rlim_cur / 4) > 1 ? (int)(rl.rlim_cur / 4) : 1;
    while (trusted && *trusted) {
        char one[64];
        size_t k = strcspn(trusted, ",");
        if (k >= sizeof(one) || h->ntrusted == TRUSTED_MAX) {
            snprintf(err, errcap, "--trusted-proxy: at most %d entries of up to 63 bytes",
                     TRUSTED_MAX);
            goto fail;
        }
        memcpy(one, trusted, k);
        one[k] = '\0';
        if (http_cidr_parse(one, &h->trusted[h->ntrusted]) != 0) {
            snprintf(err, errcap, "--trusted-proxy '%s' is not ADDRESS[/BITS] (IPv4 or IPv6)", one);
            goto fail;
        }
        h->ntrusted++;
        trusted += k + (trusted[k] == ',');
    }
    h->metrics = metrics;
    h->metrics_arg = metrics_arg;
    h->reader = rep_reader_register(s->replica);
    evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST);
    evhttp_set_max_headers_size(h->http, 16 * 1024);
    /* Bodies: only the public report form's, bounded. */
    evhttp_set_max_body_size(h->http, kind == HTTP_PUBLIC ? REPORT_BODY_MAX : 0);
    evhttp_set_timeout(h->http, 10);
    evhttp_set_gencb(h->http, on_request, h);
    evhttp_set_bevcb(h->http, new_bev, h);
    sock = evhttp_bind_socket_with_handle(h->http, host, (ev_uint16_t)port);
    if (!sock) {
        snprintf(err, errcap, "%s: cannot listen on '%s' (in use, or not an address)", flag, addr);
        goto fail;
    }
    h->listener = evhttp_bound_socket_get_listener(sock);
    h->resume = evtimer_new(h->base, on_resume, h);
    if (!h->resume) {
        snprintf(err, errcap, "out of memory");
        goto fail;
    }
    if (server_note(h, NULL) != 0) {
        snprintf(err, errcap, "too many HTTP servers in one process");
        goto fail;
    }
    evconnlistener_set_error_cb(h->listener, on_accept_error);
    {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        if (getsockname(evhttp_bound_socket_get_fd(sock), (struct sockaddr *)&ss, &sl) == 0)
            h->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                     : ((struct sockaddr_in *)&ss)->sin_port);
    }
    if (pthread_create(&h->thread, NULL, http_main, h) != 0) {
        snprintf(err, errcap, "cannot start the HTTP thread");
        goto fail;
    }
    return h;
fail:
    if (h && h->http)
        evhttp_free(h->http);
    if (h && h->resume)
        event_free(h->resume);
    if (h && h->base)
        event_base_free(h->base);
    free(h);
    return NULL;
}

int http_port(const http_server *h)
{
    return h->port;
}

void http_stop(http_server *h)
{
    if (!h)
        return;
    event_base_loopexit(h->base, NULL);
    pthread_join(h->thread, NULL);
    server_note(NULL, h);
    evhttp_free(h->http); /* frees the connections: conn_free needs h */
    if (h->resume)
        event_free(h->resume);
    event_base_free(h->base);
    free(h);
}
