/*
 * http.c - the consumer scan page, its JSON and QR images, and health
 * checks, on libevent's evhttp in a thread of its own (a scan is one Redis
 * round trip; the replica tail's loop never waits for it).
 *
 *   GET /C/{code}               HTML scan page (zh; en by Accept-Language
 *                               or ?lang=en)
 *   GET /api/v1/scan/{code}     the same as JSON
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

#include <ctype.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define PATH_MAX_LEN 256
#define CODE_ARG_MAX 160
#define COOKIE "tcd"
#define QR_MAX (64 * 1024)

struct http_server {
    svc *svc;
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
                      "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'");
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

/* The device cookie, or a new random one (then *fresh = 1). */
static void device_of(struct evhttp_request *req, char out[33], int *fresh)
{
    const char *c = evhttp_find_header(evhttp_request_get_input_headers(req), "Cookie");
    const char *p = c ? strstr(c, COOKIE "=") : NULL;
    unsigned char rnd[16];
    size_t i;

    *fresh = 0;
    if (p) {
        p += strlen(COOKIE "=");
        for (i = 0; i < 32 && isxdigit((unsigned char)p[i]); i++)
            out[i] = p[i];
        if (i == 32 && !isxdigit((unsigned char)p[32])) {
            out[32] = '\0';
            return;
        }
    }
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        memset(rnd, 0, sizeof(rnd));
    for (i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", rnd[i]);
    *fresh = 1;
}

/* Region from the edge (X-Region), when it is a plausible region code. */
static void region_of(struct evhttp_request *req, char out[STORE_REGION_MAX + 1])
{
    const char *r = evhttp_find_header(evhttp_request_get_input_headers(req), "X-Region");
    size_t i;

    out[0] = '\0';
    if (!r)
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

static void page(struct evbuffer *b, const scan_view *v, const char *code, int en)
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
    evbuffer_add_printf(b, "</dl><p><a href=\"?lang=%s\">%s</a></p></main></body></html>\n",
                        en ? "zh" : "en", en ? "中文" : "English");
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

static void on_scan(http_server *h, struct evhttp_request *req, const struct evhttp_uri *uri,
                    const char *code, int as_json)
{
    struct evbuffer *b = evbuffer_new();
    char device[33], region[STORE_REGION_MAX + 1], cookie[96];
    int en = want_english(req, uri), fresh;
    scan_view *v = malloc(sizeof(*v));

    if (!b || !v) {
        evbuffer_free(b);
        free(v);
        evhttp_send_error(req, 500, NULL);
        return;
    }
    device_of(req, device, &fresh);
    region_of(req, region);
    scan_code(h->svc, h->reader, code, region, device, v);
    if (fresh) {
        snprintf(cookie, sizeof(cookie),
                 COOKIE "=%s; Max-Age=31536000; Path=/; HttpOnly; SameSite=Lax", device);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Set-Cookie", cookie);
    }
    if (as_json) {
        json(b, v, en);
        reply(req, 200, "OK", "application/json", b);
    } else {
        page(b, v, code, en);
        reply(req, 200, "OK", "text/html; charset=utf-8", b);
    }
    evbuffer_free(b);
    free(v);
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

static void on_request(struct evhttp_request *req, void *arg)
{
    http_server *h = arg;
    const char *raw = evhttp_request_get_uri(req), *path;
    struct evhttp_uri *uri;
    char code[CODE_ARG_MAX + 1], err[STORE_ERR_MAX];
    enum evhttp_cmd_type m = evhttp_request_get_command(req);

    if (m != EVHTTP_REQ_GET && m != EVHTTP_REQ_HEAD) {
        text(req, 405, "Method Not Allowed", "only GET and HEAD are served");
        return;
    }
    if (strlen(raw) > PATH_MAX_LEN || !(uri = evhttp_uri_parse(raw))) {
        text(req, 414, "URI Too Long", "the address is too long or not an address");
        return;
    }
    path = evhttp_uri_get_path(uri);
    if (!path)
        path = "/";
    if (strcmp(path, "/metrics") == 0) {
        on_metrics(h, req);
    } else if (strcmp(path, "/healthz") == 0) {
        text(req, 200, "OK", "ok");
    } else if (strcmp(path, "/readyz") == 0) {
        if (svc_stale(h->svc))
            text(req, 503, "Service Unavailable", "not ready: the replica lags behind Redis");
        else if (store_ping(h->svc->store, err, sizeof(err)) != STORE_OK)
            text(req, 503, "Service Unavailable", "not ready: redis is not reachable");
        else
            text(req, 200, "OK", "ready");
    } else if (strncasecmp(path, "/C/", 3) == 0) {
        if (code_arg(path, 3, NULL, code))
            on_scan(h, req, uri, code, 0);
        else
            on_scan(h, req, uri, "-", 0); /* a page that explains */
    } else if (strncmp(path, "/api/v1/scan/", 13) == 0) {
        on_scan(h, req, uri, code_arg(path, 13, NULL, code) ? code : "-", 1);
    } else if (strncmp(path, "/qr/", 4) == 0 &&
               (code_arg(path, 4, ".svg", code) || code_arg(path, 4, ".png", code))) {
        on_qr(h, req, code, strstr(path, ".png") != NULL);
    } else {
        text(req, 404, "Not Found",
             "not found: scan pages are at /C/{code}, their JSON at /api/v1/scan/{code}");
    }
    evhttp_uri_free(uri);
}

/* --- lifecycle ------------------------------------------------------------------ */

static void *http_main(void *arg)
{
    http_server *h = arg;

    event_base_loop(h->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

http_server *http_start(const char *addr, svc *s, http_metrics_fn metrics, void *metrics_arg,
                        char *err, size_t errcap)
{
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
    h->metrics = metrics;
    h->metrics_arg = metrics_arg;
    h->reader = rep_reader_register(s->replica);
    evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST);
    evhttp_set_max_headers_size(h->http, 16 * 1024);
    evhttp_set_max_body_size(h->http, 0);
    evhttp_set_timeout(h->http, 10);
    evhttp_set_gencb(h->http, on_request, h);
    sock = evhttp_bind_socket_with_handle(h->http, host, (ev_uint16_t)port);
    if (!sock) {
        snprintf(err, errcap, "cannot listen on '%s' for HTTP (in use, or not an address)", addr);
        goto fail;
    }
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
    evhttp_free(h->http);
    event_base_free(h->base);
    free(h);
}
