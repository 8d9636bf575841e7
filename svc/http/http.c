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
#include "check.h"
#include "scan.h"

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

struct http_server {
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

/* --- output helpers ----------------------------------------------------------- */

static void esc_html(struct evbuffer *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<':
            evbuffer_add(b, "&lt;", 4);
            break;
        case '>':
            evbuffer_add(b, "&gt;", 4);
            break;
        case '&':
            evbuffer_add(b, "&amp;", 5);
            break;
        case '"':
            evbuffer_add(b, "&quot;", 6);
            break;
        case '\'':
            evbuffer_add(b, "&#39;", 5);
            break;
        default:
            evbuffer_add(b, s, 1);
        }
    }
}

static void esc_json(struct evbuffer *b, const char *s)
{
    evbuffer_add(b, "\"", 1);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            evbuffer_add_printf(b, "\\%c", ch);
        else if (ch < 0x20)
            evbuffer_add_printf(b, "\\u%04x", ch);
        else
            evbuffer_add(b, s, 1);
    }
    evbuffer_add(b, "\"", 1);
}

static void reply(struct evhttp_request *req, int code, const char *reason, const char *type,
                  struct evbuffer *body)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);

    evhttp_add_header(h, "Content-Type", type);
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    evhttp_add_header(h, "Cache-Control", "no-store");
    evhttp_add_header(h, "Content-Security-Policy",
                      "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; "
                      "script-src 'self'; connect-src 'self'");
    evhttp_send_reply(req, code, reason, body);
}

static void text(struct evhttp_request *req, int code, const char *reason, const char *msg)
{
    struct evbuffer *b = evbuffer_new();

    if (!b) {
        evhttp_send_error(req, 500, NULL);
        return;
    }
    evbuffer_add_printf(b, "%s\n", msg);
    reply(req, code, reason, "text/plain; charset=utf-8", b);
    evbuffer_free(b);
}

/* --- connections: a cap, a deadline for headers, accept errors ------------- */

#define HEADER_DEADLINE_S 10 /* the whole of a request's headers, not per byte */
#define ACCEPT_LOG_EVERY_MS 10000

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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
    h->backoff_ms = h->backoff_ms ? (h->backoff_ms * 2 > 2000 ? 2000 : h->backoff_ms * 2) : 50;
    if (now - h->errors_logged_at >= ACCEPT_LOG_EVERY_MS) {
        fprintf(stderr,
                "tracesvc: http: accept() failed %lld times since the last report (%s); "
                "pausing accepts, next try in %lld ms\n",
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

/* --- request details ----------------------------------------------------------- */

static int want_english(struct evhttp_request *req, const struct evhttp_uri *uri)
{
    const char *q = evhttp_uri_get_query(uri), *al;

    if (q && (strstr(q, "lang=en") != NULL))
        return 1;
    if (q && strstr(q, "lang=zh"))
        return 0;
    al = evhttp_find_header(evhttp_request_get_input_headers(req), "Accept-Language");
    return al && strncasecmp(al, "en", 2) == 0;
}

static int id_char(int c)
{
    return isalnum(c) || c == '-' || c == '_' || c == '.';
}

/* --- device cookies ---------------------------------------------------------- */

/* The cookie's tag: the first COOKIE_TAG bytes of HMAC-SHA-256 under MAC
 * key kid over "TCDEV1" || rnd (a message no code tag is made of). */
static int cookie_tag(const svc *s, unsigned kid, const uint8_t rnd[COOKIE_RND],
                      uint8_t tag[COOKIE_TAG])
{
    const codec_mac_key *k = keys_mac(svc_ring(s), kid);
    uint8_t msg[6 + COOKIE_RND], full[CODEC_SHA256_BYTES];

    if (!k)
        return -1;
    memcpy(msg, "TCDEV1", 6);
    memcpy(msg + 6, rnd, COOKIE_RND);
    if (codec_hmac_sha256(k, msg, sizeof(msg), full) != CODEC_OK)
        return -1;
    memcpy(tag, full, COOKIE_TAG);
    return 0;
}

/* Equal, in time that does not depend on where they differ. */
static int same_tag(const uint8_t *a, const uint8_t *b, size_t n)
{
    uint8_t d = 0;
    size_t i;

    for (i = 0; i < n; i++)
        d |= (uint8_t)(a[i] ^ b[i]);
    return d == 0;
}

static int hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/*
 * The device named by the request's cookie, when it is one this service
 * signed (any node: the keyring is shared): device receives its random part
 * in hex. 0 when there is none or it does not verify: a made-up cookie
 * names no device, so it cannot add one to a code's count.
 */
static int device_of(const svc *s, struct evhttp_request *req, char device[2 * COOKIE_RND + 1])
{
    const char *c = evhttp_find_header(evhttp_request_get_input_headers(req), "Cookie");
    const char *p = c ? strstr(c, COOKIE "=") : NULL;
    uint8_t b[1 + COOKIE_RND + COOKIE_TAG], tag[COOKIE_TAG];
    size_t i;

    if (!p)
        return 0;
    p += strlen(COOKIE "=");
    for (i = 0; i < sizeof(b); i++) {
        int hi = hexval((unsigned char)p[2 * i]),
            lo = hi < 0 ? -1 : hexval((unsigned char)p[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return 0;
        b[i] = (uint8_t)(hi << 4 | lo);
    }
    if (isxdigit((unsigned char)p[COOKIE_HEX]) || cookie_tag(s, b[0], b + 1, tag) != 0 ||
        !same_tag(tag, b + 1 + COOKIE_RND, COOKIE_TAG))
        return 0;
    memcpy(device, p + 2, 2 * COOKIE_RND);
    device[2 * COOKIE_RND] = '\0';
    return 1;
}

/* Set a fresh signed device cookie on the response. */
static void new_cookie(const svc *s, struct evhttp_request *req)
{
    uint8_t b[1 + COOKIE_RND + COOKIE_TAG];
    char hex[COOKIE_HEX + 1], cookie[COOKIE_HEX + 80];
    unsigned kid = keys_active(svc_ring(s), KEYS_KIND_MAC);
    size_t i;

    if (!kid || getrandom(b + 1, COOKIE_RND, 0) != COOKIE_RND)
        return;
    b[0] = (uint8_t)kid;
    if (cookie_tag(s, kid, b + 1, b + 1 + COOKIE_RND) != 0)
        return;
    for (i = 0; i < sizeof(b); i++)
        snprintf(hex + 2 * i, 3, "%02x", b[i]);
    snprintf(cookie, sizeof(cookie), COOKIE "=%s; Max-Age=31536000; Path=/; HttpOnly; SameSite=Lax",
             hex);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Set-Cookie", cookie);
}

/* Link previews, crawlers and uptime probes: they never count as a scan. */
static int is_robot(struct evhttp_request *req)
{
    static const char *const words[] = {
        "bot",      "spider",         "crawl",    "preview", "facebookexternalhit",
        "whatsapp", "slack",          "telegram", "discord", "pingdom",
        "uptime",   "statuscake",     "monitor",  "curl/",   "wget/",
        "python-",  "go-http-client", "okhttp",   "java/",   "libwww",
    };
    const char *ua = evhttp_find_header(evhttp_request_get_input_headers(req), "User-Agent");
    size_t i, n;

    if (!ua || !*ua)
        return 1; /* browsers always say who they are */
    for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        for (n = 0; ua[n]; n++)
            if (strncasecmp(ua + n, words[i], strlen(words[i])) == 0)
                return 1;
    return 0;
}

/* --- where a request comes from ----------------------------------------------- */

/* Parse "ADDR/BITS" (IPv4 or IPv6; BITS optional). 0 on success. */
static int cidr_parse(const char *s, cidr *c)
{
    char a[64], *slash;
    long bits = -1;

    if (strlen(s) >= sizeof(a))
        return -1;
    snprintf(a, sizeof(a), "%s", s);
    slash = strchr(a, '/');
    if (slash) {
        char *end;
        *slash = '\0';
        bits = strtol(slash + 1, &end, 10);
        if (end == slash + 1 || *end)
            return -1;
    }
    memset(c, 0, sizeof(*c));
    if (inet_pton(AF_INET, a, c->addr) == 1)
        c->family = AF_INET;
    else if (inet_pton(AF_INET6, a, c->addr) == 1)
        c->family = AF_INET6;
    else
        return -1;
    if (bits < 0)
        bits = c->family == AF_INET ? 32 : 128;
    if (bits > (c->family == AF_INET ? 32 : 128))
        return -1;
    c->bits = (unsigned)bits;
    return 0;
}

static int cidr_has(const cidr *c, int family, const uint8_t *addr)
{
    unsigned full = c->bits / 8, rest = c->bits % 8;

    if (c->family != family || memcmp(c->addr, addr, full) != 0)
        return 0;
    return !rest || ((c->addr[full] ^ addr[full]) & (0xff << (8 - rest)) & 0xff) == 0;
}

/* Whether the request's peer is one of the trusted proxies. */
static int from_trusted(const http_server *h, struct evhttp_request *req)
{
    struct evhttp_connection *conn = evhttp_request_get_connection(req);
    char *peer = NULL;
    ev_uint16_t port;
    uint8_t a[16];
    int i;

    if (!h->ntrusted || !conn)
        return 0;
    evhttp_connection_get_peer(conn, &peer, &port);
    if (!peer)
        return 0;
    for (i = 0; i < h->ntrusted; i++) {
        int fam = h->trusted[i].family;
        if (inet_pton(fam, peer, a) == 1 && cidr_has(&h->trusted[i], fam, a))
            return 1;
    }
    return 0;
}

/* Region from the edge (X-Region), believed only from a trusted proxy (a
 * header anyone else sends is anyone's claim), and only when it is a
 * plausible region code. */
static void region_of(const http_server *h, struct evhttp_request *req,
                      char out[STORE_REGION_MAX + 1])
{
    const char *r = evhttp_find_header(evhttp_request_get_input_headers(req), "X-Region");
    size_t i;

    out[0] = '\0';
    if (!r || !from_trusted(h, req))
        return;
    for (i = 0; r[i] && i < STORE_REGION_MAX && id_char((unsigned char)r[i]); i++)
        out[i] = r[i];
    out[r[i] ? 0 : i] = '\0';
}

/* The code from the path after prefix, upper-cased; 0 when too long or
 * holding anything but letters, digits and '-'. */
static int code_arg(const char *path, size_t skip, const char *suffix, char out[CODE_ARG_MAX + 1])
{
    const char *s = path + skip;
    size_t n = strlen(s), k = suffix ? strlen(suffix) : 0, i;

    if (suffix) {
        if (n < k || strcmp(s + n - k, suffix) != 0)
            return 0;
        n -= k;
    }
    if (n == 0 || n > CODE_ARG_MAX)
        return 0;
    for (i = 0; i < n; i++) {
        if (!isalnum((unsigned char)s[i]) && s[i] != '-')
            return 0;
        out[i] = (char)toupper((unsigned char)s[i]);
    }
    out[n] = '\0';
    return 1;
}

/* --- the scan page ------------------------------------------------------------- */

static const char *status_word(int status, int en)
{
    static const char *const zh[] = {"未知", "有效", "已暂停", "已撤销", "已过期"};
    static const char *const eng[] = {"unknown", "valid", "suspended", "revoked", "expired"};

    if (status < 0 || status > 4)
        status = 0;
    return en ? eng[status] : zh[status];
}

static const char *tone(const scan_view *v)
{
    if (v->verdict == 1 && !v->suspected_copy)
        return "ok";
    if (v->verdict == 1 || v->verdict == 9)
        return "warn";
    return "bad";
}

static void row(struct evbuffer *b, const char *name, const char *value)
{
    if (!value || !*value)
        return;
    evbuffer_add_printf(b, "<dt>%s</dt><dd>", name);
    esc_html(b, value);
    evbuffer_add(b, "</dd>", 5);
}

static void page(struct evbuffer *b, const scan_view *v, const char *code, int en, int beacon)
{
    char msg[1200], num[64];

    scan_message(v, en, msg, sizeof(msg));
    evbuffer_add_printf(
        b,
        "<!doctype html><html lang=\"%s\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
        "<title>%s</title><style>"
        "body{font:16px/1.5 system-ui,sans-serif;margin:0;color:#111;background:#fafafa}"
        "main{max-width:34em;margin:0 auto;padding:1em}"
        ".v{padding:1em;border-radius:.5em;color:#fff;font-size:1.4em;font-weight:700}"
        ".ok{background:#1b7f3b}.warn{background:#9a5b00}.bad{background:#b3261e}"
        "dl{display:grid;grid-template-columns:auto 1fr;gap:.3em 1em}dt{color:#555}"
        "dd{margin:0;word-break:break-all}p.m{font-size:1.1em}"
        "</style></head><body><main>",
        en ? "en" : "zh-CN", en ? "Product trace code" : "产品追溯码");
    evbuffer_add_printf(b, "<div class=\"v %s\" role=\"status\">", tone(v));
    esc_html(b, scan_label(v, en));
    evbuffer_add(b, "</div><p class=\"m\">", 19);
    esc_html(b, msg);
    evbuffer_add(b, "</p><dl>", 8);
    row(b, en ? "Brand" : "品牌", v->brand);
    row(b, en ? "Model" : "型号", v->model);
    row(b, en ? "Category" : "类别", v->category);
    row(b, en ? "Maker" : "生产企业", v->issuer_name);
    row(b, en ? "Certificate" : "证书编号", v->cert_number);
    if (v->cert_number[0])
        row(b, en ? "Certificate status" : "证书状态", status_word(v->cert_status, en));
    row(b, en ? "Recall" : "召回", v->recall_reason);
    if (v->recorded) {
        snprintf(num, sizeof(num), "%llu", (unsigned long long)v->history.devices);
        row(b, en ? "Scanned by (devices)" : "扫码设备数", num);
        if (v->history.first_ms) {
            time_t t = (time_t)(v->history.first_ms / 1000);
            struct tm tm;
            gmtime_r(&t, &tm);
            strftime(num, sizeof(num), "%Y-%m-%d %H:%M UTC", &tm);
            row(b, en ? "First scanned" : "首次扫码", num);
        }
        row(b, en ? "First scan region" : "首次扫码地区", v->history.first_region);
    }
    row(b, en ? "Code" : "追溯码", code);
    evbuffer_add_printf(b, "</dl><p><a href=\"?lang=%s\">%s</a></p></main>", en ? "zh" : "en",
                        en ? "中文" : "English");
    if (beacon) /* the canonical code: letters and digits only */
        evbuffer_add_printf(b, "<script src=\"/beacon.js\" data-code=\"%s\" async></script>",
                            v->code);
    evbuffer_add(b, "</body></html>\n", 15);
}

static void json(struct evbuffer *b, const scan_view *v, int en)
{
    char msg[1200];

    scan_message(v, en, msg, sizeof(msg));
    evbuffer_add_printf(b, "{\"verdict\":\"%s\",\"label\":", tc_verdict_name(v->verdict));
    esc_json(b, scan_label(v, en));
    evbuffer_add_printf(b, ",\"message\":");
    esc_json(b, msg);
    evbuffer_add_printf(b, ",\"brand\":");
    esc_json(b, v->brand);
    evbuffer_add_printf(b, ",\"model\":");
    esc_json(b, v->model);
    evbuffer_add_printf(b, ",\"category_code\":");
    esc_json(b, v->category);
    evbuffer_add_printf(b, ",\"issuer_name\":");
    esc_json(b, v->issuer_name);
    evbuffer_add_printf(b, ",\"certificate_number\":");
    esc_json(b, v->cert_number);
    evbuffer_add_printf(
        b, ",\"certificate_status\":\"%s\",\"recall_reason\":", status_word(v->cert_status, 1));
    esc_json(b, v->recall_reason);
    evbuffer_add_printf(b, ",\"scan_count\":%llu,\"first_scan_unix\":%lld,\"first_scan_region\":",
                        (unsigned long long)v->history.devices,
                        (long long)(v->history.first_ms / 1000));
    esc_json(b, v->history.first_region);
    evbuffer_add_printf(
        b, ",\"suspected_copy\":%s,\"copy_reasons\":", v->suspected_copy ? "true" : "false");
    esc_json(b, v->copy_why);
    evbuffer_add(b, "}\n", 2);
}

/* The device id a JSON caller names (?device=ID: a platform app's stable,
 * pseudonymous id), or 0 when it names none or a malformed one. */
static int device_param(const struct evhttp_uri *uri, char out[65])
{
    const char *q = evhttp_uri_get_query(uri), *p = q ? strstr(q, "device=") : NULL;
    size_t i;

    if (!p || (p != q && p[-1] != '&'))
        return 0;
    p += 7;
    for (i = 0; p[i] && p[i] != '&' && i < 64; i++) {
        if (!id_char((unsigned char)p[i]))
            return 0;
        out[i] = p[i];
    }
    out[i] = '\0';
    return i > 0 && (!p[i] || p[i] == '&');
}

/*
 * The page (or its JSON). Reading it records nothing: a HEAD, a link
 * preview, a crawler or an uptime probe must not make a genuine code look
 * copied. A browser gets a signed device cookie and the page's beacon,
 * which records the scan (POST /seen/{code}) with that cookie. A JSON
 * caller records by naming its device (?device=ID).
 */
static void on_scan(http_server *h, struct evhttp_request *req, const struct evhttp_uri *uri,
                    const char *code, int as_json)
{
    struct evbuffer *b = evbuffer_new();
    char device[65], cookie_dev[2 * COOKIE_RND + 1];
    int en = want_english(req, uri), record = 0;
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
        record = device_param(uri, device);
    if (record) {
        char region[STORE_REGION_MAX + 1];
        region_of(h, req, region);
        scan_code(h->svc, h->reader, code, region, device, 1, v);
    } else {
        scan_code(h->svc, h->reader, code, "", "", 0, v);
    }
    if (!as_json && !device_of(h->svc, req, cookie_dev))
        new_cookie(h->svc, req);
    if (as_json) {
        json(b, v, en);
        reply(req, 200, "OK", "application/json", b);
    } else {
        page(b, v, code, en, v->recorded && !is_robot(req));
        reply(req, 200, "OK", "text/html; charset=utf-8", b);
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
        text(req, 405, "Method Not Allowed", "the scan beacon is a POST from the scan page");
        return;
    }
    if (is_robot(req) || !device_of(h->svc, req, device)) {
        text(req, 403, "Forbidden", "not counted: no device cookie from the scan page");
        return;
    }
    v = malloc(sizeof(*v));
    if (!v) {
        evhttp_send_error(req, 500, NULL);
        return;
    }
    region_of(h, req, region);
    scan_code(h->svc, h->reader, code, region, device, 1, v);
    text(req, v->counted ? 200 : 404, v->counted ? "OK" : "Not Found",
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
    reply(req, 200, "OK", "text/javascript; charset=utf-8", b);
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
        text(req, 404, "Not Found", "not a trace code: nothing to draw");
        return;
    }
    if ((png ? codec_qr_png(url, ulen, &o, h->qr, sizeof(h->qr), &need, NULL)
             : codec_qr_svg(url, ulen, &o, (char *)h->qr, sizeof(h->qr), &need, NULL)) !=
        CODEC_OK) {
        text(req, 500, "Internal Server Error", "cannot draw the QR");
        return;
    }
    b = evbuffer_new();
    if (!b) {
        evhttp_send_error(req, 500, NULL);
        return;
    }
    evbuffer_add(b, h->qr, need);
    reply(req, 200, "OK", png ? "image/png" : "image/svg+xml", b);
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
    reply(req, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", b);
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
    int verify = svc_can_verify(h->svc), write = svc_can_write(h->svc);
    char why[160], msg[400];

    pthread_mutex_lock(&h->svc->why_mu);
    snprintf(why, sizeof(why), "%s", h->svc->why_not_writable);
    pthread_mutex_unlock(&h->svc->why_mu);
    if (atomic_load(&h->svc->draining))
        snprintf(msg, sizeof(msg), "not ready: draining (SIGTERM)");
    else if (atomic_load(&h->svc->lacks_key))
        snprintf(msg, sizeof(msg),
                 "not ready: the deployment issues under key %u, which this node's keyring "
                 "lacks (copy key-%03u to it and send SIGHUP)",
                 atomic_load(&h->svc->lacks_key), atomic_load(&h->svc->lacks_key));
    else if (!verify)
        snprintf(msg, sizeof(msg),
                 "not ready: the replica has not heard from redis for %.0f s (more than "
                 "--ready-staleness)",
                 (double)h->svc->replica_lag_ms(h->svc->replica_lag_arg) / 1000.0);
    else
        snprintf(msg, sizeof(msg), "ready: verifying%s; writes %s%s",
                 svc_stale(h->svc) ? " (answers flagged stale)" : "",
                 write ? "possible" : "not possible: ", write ? "" : why);
    if (!verify || (want_writes && !write))
        text(req, 503, "Service Unavailable", msg);
    else
        text(req, 200, "OK", msg);
}

/* --- routes ------------------------------------------------------------------------ */

#define NOT_FOUND "not found: scan pages are at /C/{code}, their JSON at /api/v1/scan/{code}"

static void route_seen(http_server *h, struct evhttp_request *req, struct evhttp_uri *uri,
                       const char *path)
{
    char code[CODE_ARG_MAX + 1];

    (void)uri;
    if (code_arg(path, 6, NULL, code))
        on_seen(h, req, code);
    else
        text(req, 404, "Not Found", "not a trace code");
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
        text(req, 503, "Service Unavailable", "not healthy: out of file descriptors");
    else if (!atomic_load(&h->healthy_accept))
        text(req, 503, "Service Unavailable",
             "not healthy: the HTTP listener could not accept connections");
    else if (atomic_load(&h->svc->grpc_deaf))
        text(req, 503, "Service Unavailable",
             "not healthy: the gRPC listener does not accept connections (it stopped when "
             "descriptors ran out); restart the node");
    else
        text(req, 200, "OK", "ok");
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
    on_scan(h, req, uri, code_arg(path, 3, NULL, code) ? code : "-", 0);
}

static void route_json(http_server *h, struct evhttp_request *req, struct evhttp_uri *uri,
                       const char *path)
{
    char code[CODE_ARG_MAX + 1];

    on_scan(h, req, uri, code_arg(path, 13, NULL, code) ? code : "-", 1);
}

static void route_qr(http_server *h, struct evhttp_request *req, struct evhttp_uri *uri,
                     const char *path)
{
    char code[CODE_ARG_MAX + 1];

    (void)uri;
    if (code_arg(path, 4, ".svg", code) || code_arg(path, 4, ".png", code))
        on_qr(h, req, code, strstr(path, ".png") != NULL);
    else
        text(req, 404, "Not Found", NOT_FOUND);
}

/* The HTTP routes, as the RPC methods are: data. A path matches a route
 * whole (exact) or by its prefix; /C/ and /seen/ ignore case (a QR code in
 * alphanumeric mode upper-cases the address). Only the beacon takes POST. */
typedef struct route {
    const char *path;
    int exact, nocase, post;
    void (*fn)(http_server *h, struct evhttp_request *req, struct evhttp_uri *uri,
               const char *path);
} route;

static const route routes[] = {
    {"/seen/", 0, 1, 1, route_seen},        /* the scan page's beacon: a scan */
    {"/beacon.js", 1, 0, 0, route_beacon},  /* its script */
    {"/metrics", 1, 0, 0, route_metrics},   /* Prometheus text */
    {"/healthz", 1, 0, 0, route_healthz},   /* alive */
    {"/readyz", 1, 0, 0, route_readyz},     /* ready to verify (?writes=1: and write) */
    {"/C/", 0, 1, 0, route_page},           /* the scan page of a code */
    {"/api/v1/scan/", 0, 0, 0, route_json}, /* the same as JSON */
    {"/qr/", 0, 0, 0, route_qr},            /* a code's QR, .svg or .png */
};

static const route *route_of(const char *path)
{
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        const route *r = &routes[i];
        size_t n = strlen(r->path);
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

    /* Its headers are in: the next request's deadline starts now. */
    if (c)
        arm_deadline(c);

    if (m != EVHTTP_REQ_GET && m != EVHTTP_REQ_HEAD && m != EVHTTP_REQ_POST) {
        text(req, 405, "Method Not Allowed", "only GET, HEAD and the scan beacon's POST");
        return;
    }
    if (strlen(raw) > PATH_MAX_LEN || !(uri = evhttp_uri_parse(raw))) {
        text(req, 414, "URI Too Long", "the address is too long or not an address");
        return;
    }
    path = evhttp_uri_get_path(uri);
    if (!path)
        path = "/";
    r = route_of(path);
    if (m == EVHTTP_REQ_POST && (!r || !r->post))
        text(req, 405, "Method Not Allowed", "only the scan beacon (/seen/{code}) takes a POST");
    else if (r)
        r->fn(h, req, uri, path);
    else
        text(req, 404, "Not Found", NOT_FOUND);
    evhttp_uri_free(uri);
}

/* --- lifecycle ------------------------------------------------------------------ */

static void *http_main(void *arg)
{
    http_server *h = arg;

    event_base_loop(h->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

http_server *http_start(const char *addr, svc *s, const char *trusted, int max_conns,
                        http_metrics_fn metrics, void *metrics_arg, char *err, size_t errcap)
{
    struct rlimit rl;
    const char *colon = strrchr(addr, ':');
    char host[128];
    struct evhttp_bound_socket *sock;
    http_server *h;
    char *end;
    long port;
    size_t n;

    if (!colon || (n = (size_t)(colon - addr)) == 0 || n >= sizeof(host)) {
        snprintf(err, errcap, "--http '%s' is not HOST:PORT", addr);
        return NULL;
    }
    memcpy(host, addr, n);
    host[n] = '\0';
    port = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end || port < 0 || port > 65535) {
        snprintf(err, errcap, "--http '%s': the port is not 0..65535", addr);
        return NULL;
    }
    h = calloc(1, sizeof(*h));
    if (!h || !(h->base = event_base_new()) || !(h->http = evhttp_new(h->base))) {
        snprintf(err, errcap, "out of memory");
        goto fail;
    }
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
        if (cidr_parse(one, &h->trusted[h->ntrusted]) != 0) {
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
    evhttp_set_max_body_size(h->http, 0);
    evhttp_set_timeout(h->http, 10);
    evhttp_set_gencb(h->http, on_request, h);
    evhttp_set_bevcb(h->http, new_bev, h);
    sock = evhttp_bind_socket_with_handle(h->http, host, (ev_uint16_t)port);
    if (!sock) {
        snprintf(err, errcap, "cannot listen on '%s' for HTTP (in use, or not an address)", addr);
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
