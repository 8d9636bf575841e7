/*
 * page.c - what the HTTP server writes: escaping, replies with their
 * security headers, and the scan page and its JSON in both languages.
 * No sockets here.
 */
#include "http_int.h"
#include "codec.h"
#include "scan.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* --- output helpers ----------------------------------------------------------- */

void http_esc_html(struct evbuffer *b, const char *s)
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

void http_esc_json(struct evbuffer *b, const char *s)
{
    char out[CODEC_JSON_ESCAPED_MAX(64) + 1];
    size_t n = strlen(s), i, k;

    evbuffer_add(b, "\"", 1);
    for (i = 0; i < n; i += k) { /* 64 bytes at a time: always fits */
        k = n - i < 64 ? n - i : 64;
        evbuffer_add(b, out, codec_json_escape(s + i, k, out, sizeof(out)));
    }
    evbuffer_add(b, "\"", 1);
}

_Thread_local int http_status;

/* The pages' Content-Security-Policy: set once, before the listeners start
 * (http_set_image_origins), then only read. */
static char csp[1024] = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; "
                        "script-src 'self'; connect-src 'self'; form-action 'self'; "
                        "base-uri 'none'; frame-ancestors 'none'";
static char image_origins[520];

void http_set_image_origins(const char *list)
{
    size_t i;

    if (!list || !*list)
        return;
    snprintf(image_origins, sizeof(image_origins), "%s", list);
    snprintf(csp, sizeof(csp),
             "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' %s; "
             "script-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; "
             "frame-ancestors 'none'",
             list);
    for (i = 0; csp[i]; i++) /* the list's commas are the policy's spaces */
        if (csp[i] == ',')
            csp[i] = ' ';
}

/* Is url on one of the image origins (the origin, then '/')? */
static int image_allowed(const char *url)
{
    const char *o = image_origins;

    while (*o) {
        size_t k = strcspn(o, ",");
        if (strncmp(url, o, k) == 0 && url[k] == '/')
            return 1;
        o += k + (o[k] == ',');
    }
    return 0;
}

void http_reply(struct evhttp_request *req, int code, const char *reason, const char *type,
                struct evbuffer *body)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);

    evhttp_add_header(h, "Content-Type", type);
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    evhttp_add_header(h, "Cache-Control", "no-store");
    evhttp_add_header(h, "Content-Security-Policy", csp);
    http_status = code;
    evhttp_send_reply(req, code, reason, body);
}

void http_text(struct evhttp_request *req, int code, const char *reason, const char *msg)
{
    struct evbuffer *b = evbuffer_new();

    if (!b) {
        evhttp_send_error(req, 500, NULL);
        return;
    }
    evbuffer_add_printf(b, "%s\n", msg);
    http_reply(req, code, reason, "text/plain; charset=utf-8", b);
    evbuffer_free(b);
}

/* --- the scan page ------------------------------------------------------------- */

static const char *status_word(int status, int en)
{
    static const char *const zh[] = {"未知", "有效", "已暂停", "已撤销", "已过期", "已注销"};
    static const char *const eng[] = {"unknown", "valid",   "suspended",
                                      "revoked", "expired", "cancelled"};

    if (status < 0 || status > 5)
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
    http_esc_html(b, value);
    evbuffer_add(b, "</dd>", 5);
}

/* The product's passport, read from the view's copy: the text it points
 * into (free it), or NULL for none (or one that does not read). */
static char *passport_of(const scan_view *v, passport *p)
{
    char *copy = v->passport[0] ? strdup(v->passport) : NULL;

    if (copy && passport_parse(copy, p) != 0) {
        free(copy);
        copy = NULL;
    }
    return copy;
}

/* The product's passport as rows of the page's list: what it is made to,
 * its test reports (number and laboratory as text: a link that moved or a
 * file that changed is never the consumer's problem), where it is made,
 * what it is, and its pictures from the allowed origins (others: links). */
static void passport_rows(struct evbuffer *b, const scan_view *v, int en)
{
    char *copy, when[16];
    passport p;
    size_t i;

    if (!(copy = passport_of(v, &p)))
        return;
    if (p.nstandards) {
        evbuffer_add_printf(b, "<dt>%s</dt><dd>", en ? "Made to" : "执行标准");
        for (i = 0; i < p.nstandards; i++) {
            if (i)
                evbuffer_add_printf(b, "%s", en ? ", " : "、");
            http_esc_html(b, p.standards[i]);
        }
        evbuffer_add_printf(b, "</dd>");
    }
    if (p.nreports) {
        evbuffer_add_printf(b, "<dt>%s</dt><dd><ul class=\"r\">", en ? "Test reports" : "检测报告");
        for (i = 0; i < p.nreports; i++) {
            const passport_report *r = &p.reports[i];
            scan_day(r->issued_unix, "%Y-%m-%d", when, sizeof(when));
            evbuffer_add_printf(b, "<li>");
            http_esc_html(b, r->number);
            evbuffer_add_printf(b, "%s", en ? ", " : "，");
            http_esc_html(b, r->laboratory);
            evbuffer_add_printf(b, "%s%s", en ? ", " : "，", when);
            if (r->url[0]) {
                evbuffer_add_printf(b, " <a class=\"t\" href=\"");
                http_esc_html(b, r->url);
                evbuffer_add_printf(b, "\" rel=\"noopener noreferrer\">%s</a>",
                                    en ? "the report" : "查看报告");
            }
            evbuffer_add_printf(b, "</li>");
        }
        evbuffer_add_printf(b, "</ul></dd>");
    }
    if (p.origin[0])
        row(b, en ? "Made in" : "产地", p.origin);
    if (p.description[0])
        row(b, en ? "About it" : "商品说明", p.description);
    if (p.nimages) {
        evbuffer_add_printf(b, "<dt>%s</dt><dd class=\"imgs\">", en ? "Pictures" : "商品图片");
        for (i = 0; i < p.nimages; i++) {
            const passport_image *im = &p.images[i];
            if (image_allowed(im->url)) {
                evbuffer_add_printf(b, "<img src=\"");
                http_esc_html(b, im->url);
                evbuffer_add_printf(b, "\" alt=\"");
                http_esc_html(b, im->alt);
                evbuffer_add_printf(b, "\" loading=\"lazy\">");
            } else {
                evbuffer_add_printf(b, "<a class=\"t\" href=\"");
                http_esc_html(b, im->url);
                evbuffer_add_printf(b, "\" rel=\"noopener noreferrer\">");
                http_esc_html(b, im->alt);
                evbuffer_add_printf(b, "</a>");
            }
        }
        evbuffer_add_printf(b, "</dd>");
    }
    free(copy);
}

void http_scan_page(struct evbuffer *b, const scan_view *v, const char *code, int en, int beacon)
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
        "dd{margin:0;overflow-wrap:anywhere}p.m{font-size:1.1em}"
        "ul.r{margin:0;padding-left:1.2em}.imgs img{max-width:100%%;height:auto;margin:.2em 0;"
        "border-radius:.3em}"
        /* tap targets: 44 CSS pixels at least (WCAG 2.5.5) */
        "a,button,input,select,textarea,summary{min-height:44px;font:inherit}"
        "summary{line-height:44px;cursor:pointer}textarea{width:100%%}"
        "a.t{display:inline-block;line-height:44px;"
        "padding:0 .5em}form{display:flex;flex-wrap:wrap;gap:.5em;margin:1em 0}"
        "label{width:100%%}input{flex:1;min-width:12em;padding:0 .5em;border:1px solid #555;"
        "border-radius:.3em}button{min-width:44px;padding:0 1em;border:0;border-radius:.3em;"
        "background:#0b57d0;color:#fff}"
        "</style></head><body><main>",
        en ? "en" : "zh-CN", en ? "Product trace code" : "产品追溯码");
    evbuffer_add_printf(b, "<h1 class=\"v %s\">", tone(v));
    http_esc_html(b, scan_label(v, en));
    evbuffer_add_printf(b, "</h1><p class=\"m\" role=\"status\">");
    http_esc_html(b, msg);
    evbuffer_add_printf(b, "</p>");
    if (strcmp(tone(v), "ok") != 0 && !v->mistyped && v->hotline && *v->hotline) {
        /* What to do next: the regulator's complaint line. */
        evbuffer_add_printf(b, "<p>%s<a class=\"t\" href=\"tel:",
                            en ? "To report it, call the "
                                 "market regulator on "
                               : "如需投诉举报，请拨打市场监管热线 ");
        http_esc_html(b, v->hotline);
        evbuffer_add(b, "\">", 2);
        http_esc_html(b, v->hotline);
        evbuffer_add_printf(b, "</a>%s</p>", en ? " (China)." : "。");
    }
    if (v->verdict == TC_MALFORMED) { /* type it instead: the lenient path */
        evbuffer_add_printf(
            b,
            "<form method=\"get\" action=\"/check\"><label for=\"code\">%s</label>"
            "<input id=\"code\" name=\"code\" autocomplete=\"off\" autocapitalize=\"characters\" "
            "spellcheck=\"false\" maxlength=\"160\" value=\"",
            en ? "Type the code printed under the QR (groups of four, any case)"
               : "输入二维码下方印刷的追溯码（四位一组，大小写均可）");
        if (v->mistyped) /* what was typed, to correct */
            http_esc_html(b, code);
        evbuffer_add_printf(b,
                            "\"><input type=\"hidden\" name=\"lang\" value=\"%s\"><button "
                            "type=\"submit\">%s</button></form>",
                            en ? "en" : "zh", en ? "Check" : "查询");
    }
    evbuffer_add_printf(b, "<dl>");
    row(b, en ? "Brand" : "品牌", v->brand);
    row(b, en ? "Model" : "型号", v->model);
    row(b, en ? "Category" : "类别", v->category);
    row(b, en ? "Maker" : "生产企业", v->issuer_name);
    row(b, en ? "Certificate" : "证书编号", v->cert_number);
    if (v->cert_number[0])
        row(b, en ? "Certificate status" : "证书状态", status_word(v->cert_status, en));
    row(b, en ? "Recall" : "召回", v->recall_reason);
    row(b, en ? "Made on" : "生产日期", v->production_date);
    row(b, en ? "Lot" : "批号", v->lot);
    passport_rows(b, v, en);
    if (v->recorded) {
        snprintf(num, sizeof(num), "%llu", (unsigned long long)v->history.devices);
        row(b, en ? "Scanned by (devices)" : "扫码设备数", num);
        if (v->history.first_ms) {
            scan_time(v->history.first_ms / 1000, en, num, sizeof(num));
            row(b, en ? "First scanned" : "首次扫码", num);
        }
        row(b, en ? "First scan region" : "首次扫码地区", v->history.first_region);
    }
    if (v->sale.state == STORE_SALE_SOLD) {
        char when[64], sold[160];
        scan_time(v->sale.sold_unix, en, when, sizeof(when));
        snprintf(sold, sizeof(sold), en ? "on %s by platform %s" : "%s，平台 %s", when,
                 v->sale.platform);
        row(b, en ? "Sold" : "售出", sold);
    }
    if (v->sale.others) {
        snprintf(num, sizeof(num), "%u", v->sale.others + (v->sale.state == STORE_SALE_SOLD));
        row(b, en ? "Sales reported" : "售出记录", num);
    }
    {
        /* A code as it is printed under its label: groups of four and the
         * check symbol; anything else as it came. */
        char printed[CODEC_PRINTED_MAX + 1];
        row(b, en ? "Code" : "追溯码",
            v->code[0] && codec_text_printed(v->code, strlen(v->code), printed, sizeof(printed))
                ? printed
                : code);
    }
    evbuffer_add_printf(b, "</dl>");
    if (v->code[0] && v->verdict != TC_MALFORMED && v->verdict != TC_FORGED &&
        v->verdict != TC_UNKNOWN_BATCH) { /* a code we issued: "report a problem" */
        static const char *const zh_r[] = {"货不对板（与描述不符）", "疑似假货",
                                           "标签损坏或无法识别", "安全隐患", "其他"};
        static const char *const en_r[] = {"Not as described", "Suspected fake", "Label damaged",
                                           "Safety hazard", "Other"};
        evbuffer_add_printf(b,
                            "<details><summary>%s</summary><form method=\"post\" "
                            "action=\"/report/%s?lang=%s\"><label for=\"reason\">%s</label>"
                            "<select id=\"reason\" name=\"reason\" required>",
                            en ? "Report a problem" : "报告问题", v->code, en ? "en" : "zh",
                            en ? "What is wrong" : "问题");
        for (int i = 0; i < 5; i++)
            evbuffer_add_printf(b, "<option value=\"%d\">%s</option>", i + 1,
                                en ? en_r[i] : zh_r[i]);
        evbuffer_add_printf(b,
                            "</select><label for=\"text\">%s</label><textarea id=\"text\" "
                            "name=\"text\" maxlength=\"160\" rows=\"3\"></textarea>"
                            "<button type=\"submit\">%s</button></form></details>",
                            en ? "In your words (optional, up to 160 characters)"
                               : "说明（可选，至多 160 字）",
                            en ? "Send" : "提交");
    }
    /* The other language, of the same code (its canonical page when it
     * decoded: a /check or Digital Link address keeps its code that way). */
    evbuffer_add_printf(b, "<p><a class=\"t\" href=\"");
    if (v->code[0]) {
        evbuffer_add_printf(b, "/C/%s?", v->code);
    } else { /* a typed text that did not read: kept for the /check page */
        char *enc = evhttp_uriencode(code, -1, 1);
        evbuffer_add_printf(b, "?code=");
        if (enc)
            http_esc_html(b, enc);
        free(enc);
        evbuffer_add_printf(b, "&amp;");
    }
    evbuffer_add_printf(b, "lang=%s\" lang=\"%s\">%s</a></p></main>", en ? "zh" : "en",
                        en ? "zh-CN" : "en", en ? "中文" : "English");
    if (beacon) /* the canonical code: letters and digits only */
        evbuffer_add_printf(b, "<script src=\"/beacon.js\" data-code=\"%s\" async></script>",
                            v->code);
    evbuffer_add(b, "</body></html>\n", 15);
}

/* ,"passport":{...} (nothing for a product without one). */
static void passport_json(struct evbuffer *b, const scan_view *v)
{
    char *copy;
    passport p;
    size_t i;

    if (!(copy = passport_of(v, &p)))
        return;
    evbuffer_add_printf(b, ",\"passport\":{\"standards\":[");
    for (i = 0; i < p.nstandards; i++) {
        evbuffer_add_printf(b, "%s", i ? "," : "");
        http_esc_json(b, p.standards[i]);
    }
    evbuffer_add_printf(b, "],\"test_reports\":[");
    for (i = 0; i < p.nreports; i++) {
        evbuffer_add_printf(b, "%s{\"number\":", i ? "," : "");
        http_esc_json(b, p.reports[i].number);
        evbuffer_add_printf(b, ",\"laboratory\":");
        http_esc_json(b, p.reports[i].laboratory);
        evbuffer_add_printf(b,
                            ",\"issued_unix\":%lld,\"url\":", (long long)p.reports[i].issued_unix);
        http_esc_json(b, p.reports[i].url);
        evbuffer_add_printf(b, ",\"sha256\":");
        http_esc_json(b, p.reports[i].sha256);
        evbuffer_add_printf(b, "}");
    }
    evbuffer_add_printf(b, "],\"images\":[");
    for (i = 0; i < p.nimages; i++) {
        evbuffer_add_printf(b, "%s{\"url\":", i ? "," : "");
        http_esc_json(b, p.images[i].url);
        evbuffer_add_printf(b, ",\"sha256\":");
        http_esc_json(b, p.images[i].sha256);
        evbuffer_add_printf(b, ",\"alt\":");
        http_esc_json(b, p.images[i].alt);
        evbuffer_add_printf(b, "}");
    }
    evbuffer_add_printf(b, "],\"description\":");
    http_esc_json(b, p.description);
    evbuffer_add_printf(b, ",\"origin\":");
    http_esc_json(b, p.origin);
    evbuffer_add_printf(b, "}");
    free(copy);
}

void http_scan_json(struct evbuffer *b, const scan_view *v, int en)
{
    char msg[1200];

    scan_message(v, en, msg, sizeof(msg));
    evbuffer_add_printf(b, "{\"verdict\":\"%s\",\"label\":", tc_verdict_name(v->verdict));
    http_esc_json(b, scan_label(v, en));
    evbuffer_add_printf(b, ",\"message\":");
    http_esc_json(b, msg);
    evbuffer_add_printf(b, ",\"brand\":");
    http_esc_json(b, v->brand);
    evbuffer_add_printf(b, ",\"model\":");
    http_esc_json(b, v->model);
    evbuffer_add_printf(b, ",\"category_code\":");
    http_esc_json(b, v->category);
    evbuffer_add_printf(b, ",\"issuer_name\":");
    http_esc_json(b, v->issuer_name);
    evbuffer_add_printf(b, ",\"certificate_number\":");
    http_esc_json(b, v->cert_number);
    evbuffer_add_printf(
        b, ",\"certificate_status\":\"%s\",\"recall_reason\":", status_word(v->cert_status, 1));
    http_esc_json(b, v->recall_reason);
    evbuffer_add_printf(b, ",\"scan_count\":%llu,\"first_scan_unix\":%lld,\"first_scan_region\":",
                        (unsigned long long)v->history.devices,
                        (long long)(v->history.first_ms / 1000));
    http_esc_json(b, v->history.first_region);
    evbuffer_add_printf(
        b, ",\"suspected_copy\":%s,\"copy_reasons\":", v->suspected_copy ? "true" : "false");
    http_esc_json(b, v->copy_why);
    evbuffer_add_printf(b, ",\"production_date\":");
    http_esc_json(b, v->production_date);
    evbuffer_add_printf(b, ",\"lot\":");
    http_esc_json(b, v->lot);
    passport_json(b, v);
    evbuffer_add_printf(b, ",\"detail\":"); /* the technical detail (English), for developers */
    http_esc_json(b, v->detail);
    evbuffer_add_printf(b, ",\"sold_platform_id\":");
    http_esc_json(b, v->sale.state == STORE_SALE_SOLD ? v->sale.platform : "");
    evbuffer_add_printf(b, ",\"sold_unix\":%lld,\"sales\":%u",
                        v->sale.state == STORE_SALE_SOLD ? (long long)v->sale.sold_unix : 0LL,
                        v->sale.others + (v->sale.state == STORE_SALE_SOLD));
    evbuffer_add(b, "}\n", 2);
}

/* The head of a page of ours: language, title, the shared style. */
static void page_head(struct evbuffer *b, int en, const char *title)
{
    evbuffer_add_printf(
        b,
        "<!doctype html><html lang=\"%s\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
        "<title>%s</title><style>body{font:16px/1.5 system-ui,sans-serif;margin:0;color:#111;"
        "background:#fafafa}main{max-width:34em;margin:0 auto;padding:1em}"
        "a{display:inline-block;min-height:44px;line-height:44px;padding:0 .5em}</style>"
        "</head><body><main>",
        en ? "en" : "zh-CN", title);
}

void http_report_page(struct evhttp_request *req, const char *code, svc_code result,
                      const char *why, uint64_t id, int en)
{
    struct evbuffer *b = evbuffer_new();
    int ok = result == SVC_OK;

    if (!b) {
        evhttp_send_error(req, 500, NULL);
        return;
    }
    page_head(b, en, en ? "Report a problem" : "报告问题");
    evbuffer_add_printf(b, "<h1>%s</h1><p role=\"status\">",
                        ok ? (en ? "Thank you" : "感谢您的报告")
                           : (en ? "The report was not sent" : "报告未能提交"));
    if (ok)
        evbuffer_add_printf(b,
                            en ? "Your report number %llu reached the market regulator and the "
                                 "maker."
                               : "您的报告（编号 %llu）已送达市场监管部门和生产企业。",
                            (unsigned long long)id);
    else if (result == SVC_RESOURCE_EXHAUSTED)
        evbuffer_add_printf(b, "%s",
                            en ? "Too many reports from this phone or about this code for now: "
                                 "please try again later."
                               : "此手机或此追溯码的报告过多，请稍后再试。");
    else if (result == SVC_INVALID_ARGUMENT || result == SVC_FAILED_PRECONDITION)
        evbuffer_add_printf(b, "%s",
                            en ? "Choose a reason, keep the text under 500 bytes, and report "
                                 "only codes the registry issued."
                               : "请选择原因，文字不超过 500 字节；只能报告监管系统签发的追溯码。");
    else
        evbuffer_add_printf(b, "%s",
                            en ? "The service could not take it now: please try again later."
                               : "服务暂时无法受理，请稍后再试。");
    evbuffer_add_printf(b, "</p><p><a href=\"/C/");
    http_esc_html(b, code);
    evbuffer_add_printf(b, "?lang=%s\">%s</a></p></main></body></html>\n", en ? "en" : "zh",
                        en ? "Back to the product" : "返回商品信息");
    (void)why; /* the technical reason: in the service's log, not the page */
    if (ok)
        http_reply(req, 200, "OK", "text/html; charset=utf-8", b);
    else if (result == SVC_RESOURCE_EXHAUSTED)
        http_reply(req, 429, "Too Many Requests", "text/html; charset=utf-8", b);
    else if (result == SVC_INVALID_ARGUMENT || result == SVC_FAILED_PRECONDITION)
        http_reply(req, 400, "Bad Request", "text/html; charset=utf-8", b);
    else
        http_reply(req, 503, "Service Unavailable", "text/html; charset=utf-8", b);
    evbuffer_free(b);
}
