/*
 * scan.c - a consumer's scan: verdict, details, scan history, copy rules
 * (see scan.h), and ConsumerService.Scan.
 */
#include "scan.h"
#include "check.h"
#include "passport_api.h"
#include "tracecode/v1/consumer.pb-c.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define DEVICE_ID_MAX 128

static void copy(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

/* The verdict and the details, read from the replica. */
static void decide(const svc *s, int reader, const char *code, scan_view *v)
{
    tc_vres r;

    rep_read_begin(s->replica, reader);
    svc_verify((svc *)s, code, strlen(code), NULL, svc_now_unix(), &r);
    v->verdict = r.verdict;
    copy(v->detail, sizeof(v->detail), r.detail);
    v->mistyped = r.verdict == TC_MALFORMED && r.parse_err == CODEC_ERR_CHECK;
    v->hotline = s->hotline;
    v->batch_id = r.batch_id;
    v->serial = r.serial;
    v->cert_status = r.cert_status;
    if (r.batch) {
        const rep_product *p = r.batch->product;
        const rep_recalls *rc = atomic_load_explicit(&r.batch->recalls, memory_order_acquire);
        const rep_range *rg = rc ? rep_recalled(rc, r.serial) : NULL;
        copy(v->cert_number, sizeof(v->cert_number), p->cert->number);
        if (r.verdict == TC_CERT_SUSPENDED || r.verdict == TC_CERT_REVOKED ||
            r.verdict == TC_CERT_CANCELLED)
            copy(v->cert_reason, sizeof(v->cert_reason),
                 atomic_load_explicit(&p->cert->v, memory_order_acquire)->reason);
        copy(v->brand, sizeof(v->brand), p->brand);
        copy(v->model, sizeof(v->model), p->model);
        copy(v->category, sizeof(v->category), p->category);
        copy(v->issuer_credit, sizeof(v->issuer_credit), p->mfr->credit_code);
        {
            const char *pp = atomic_load_explicit(&p->passport, memory_order_acquire);
            const char *made = atomic_load_explicit(&r.batch->made, memory_order_acquire);
            copy(v->passport, sizeof(v->passport), pp ? pp : "");
            if (made) {
                const char *tab = strchr(made, '\t');
                snprintf(v->production_date, sizeof(v->production_date), "%.*s",
                         tab ? (int)(tab - made) : 10, made);
                copy(v->lot, sizeof(v->lot), tab ? tab + 1 : "");
            }
        }
        copy(v->issuer_name, sizeof(v->issuer_name),
             atomic_load_explicit(&p->mfr->v, memory_order_acquire)->name);
        if (rg)
            copy(v->recall_reason, sizeof(v->recall_reason), rg->reason);
    }
    rep_read_end(s->replica, reader);
}

/* One copy rule that fired, in English (the JSON, the English page) and
 * in Chinese (the Chinese page). */
static void why(scan_view *v, const char *rule, const char *zh)
{
    size_t n = strlen(v->copy_why), z = strlen(v->copy_why_zh);
    snprintf(v->copy_why + n, sizeof(v->copy_why) - n, "%s%s", n ? "; " : "", rule);
    snprintf(v->copy_why_zh + z, sizeof(v->copy_why_zh) - z, "%s%s", z ? "；" : "", zh);
}

void scan_code(const svc *s, int reader, const char *code, const char *region, const char *device,
               int record, scan_view *v)
{
    char err[STORE_ERR_MAX], rule[96], zh[96];
    const store_scan *h = &v->history;
    int canon;
    store_scan_rules rules = {s->copy_window_s * 1000, s->scan_ttl_s * 1000, 0};

    memset(v, 0, sizeof(*v));
    decide(s, reader, code, v);
    /* Only codes we issued are counted: forged ones would fill Redis. */
    canon = check_canonical_code(code, v->code); /* shown as printed, forged or not */
    if (v->verdict == TC_MALFORMED || v->verdict == TC_FORGED || v->verdict == TC_UNKNOWN_BATCH ||
        !canon)
        return;
    if (store_scan_record(s->store, v->code, region ? region : "", device ? device : "", record,
                          svc_now_unix() * 1000, &rules, &v->history, err, sizeof(err)) != STORE_OK)
        return;
    v->recorded = 1;
    v->counted = record;
    if (h->devices > s->copy_devices) {
        snprintf(rule, sizeof(rule), "%llu distinct devices scanned it (more than %u)",
                 (unsigned long long)h->devices, s->copy_devices);
        snprintf(zh, sizeof(zh), "已有 %llu 台设备扫码（超过 %u 台）",
                 (unsigned long long)h->devices, s->copy_devices);
        why(v, rule, zh);
    }
    if (h->regions > s->copy_regions) {
        snprintf(rule, sizeof(rule), "scanned in %u regions (more than %u)", h->regions,
                 s->copy_regions);
        snprintf(zh, sizeof(zh), "在 %u 个地区被扫码（超过 %u 个）", h->regions, s->copy_regions);
        why(v, rule, zh);
    }
    if (h->fast_move) {
        snprintf(rule, sizeof(rule), "scanned in two provinces within %lld minutes",
                 (long long)(s->copy_window_s / 60));
        snprintf(zh, sizeof(zh), "%lld 分钟内在两个省份被扫码", (long long)(s->copy_window_s / 60));
        why(v, rule, zh);
    }
    if (h->listings > 1) {
        snprintf(rule, sizeof(rule), "bound to %u listings", h->listings);
        snprintf(zh, sizeof(zh), "绑定在 %u 个商品链接上", h->listings);
        why(v, rule, zh);
    }
    /* Sold more than once: the strongest sign of a copied label. */
    v->sale = h->sale;
    if (v->sale.others > 0) {
        snprintf(rule, sizeof(rule), "sold %u times", v->sale.others + 1);
        snprintf(zh, sizeof(zh), "已售出 %u 次", v->sale.others + 1);
        why(v, rule, zh);
    }
    v->suspected_copy = v->copy_why[0] != '\0';
}

const char *scan_label(const scan_view *v, int en)
{
    static const char *const zh[] = {"",           "正品",         "无法识别",       "疑似伪造",
                                     "疑似伪造",   "已召回",       "证书已暂停",     "证书已撤销",
                                     "证书已过期", "信息不符",     "生产企业已暂停", "密钥已泄露",
                                     "证书已注销", "标签商品不符", "已售出"};
    static const char *const eng[] = {"",
                                      "Genuine",
                                      "Not a valid code",
                                      "Suspected counterfeit",
                                      "Suspected counterfeit",
                                      "Recalled",
                                      "Certificate suspended",
                                      "Certificate revoked",
                                      "Certificate expired",
                                      "Does not match",
                                      "Maker suspended",
                                      "Key leaked",
                                      "Certificate cancelled",
                                      "Wrong product on the label",
                                      "Already sold"};
    _Static_assert(sizeof(zh) / sizeof(zh[0]) == TC_VERDICT_LAST + 1 &&
                       sizeof(eng) / sizeof(eng[0]) == TC_VERDICT_LAST + 1,
                   "a label for every verdict");

    if (v->verdict == TC_GENUINE && v->suspected_copy)
        return en ? "Suspected copy" : "疑似复制码";
    if (v->verdict < 1 || v->verdict > TC_VERDICT_LAST)
        return en ? "Unknown" : "未知";
    return en ? eng[v->verdict] : zh[v->verdict];
}

size_t scan_day(int64_t unix_s, const char *fmt, char *out, size_t cap)
{
    time_t t = (time_t)(unix_s + 8 * 3600); /* China Standard Time, no summer time */
    struct tm tm;

    gmtime_r(&t, &tm);
    return strftime(out, cap, fmt, &tm);
}

void scan_time(int64_t unix_s, int en, char *out, size_t cap)
{
    size_t n = scan_day(unix_s, "%Y-%m-%d %H:%M", out, cap);

    snprintf(out + n, cap - n, "%s", en ? " China time (UTC+8)" : "（北京时间）");
}

static void verdict_message(const scan_view *v, int en, char *out, size_t cap);

void scan_message(const scan_view *v, int en, char *out, size_t cap)
{
    verdict_message(v, en, out, cap);
    if (v->verdict == TC_GENUINE && v->sale.state == STORE_SALE_SOLD) {
        /* "Sold by ..." after what the verdict says. */
        char when[64];
        size_t n = strlen(out);
        scan_time(v->sale.sold_unix, en, when, sizeof(when));
        snprintf(out + n, cap > n ? cap - n : 0,
                 en ? " Sold by platform %s on %s." : "已由平台 %s 于 %s 售出。", v->sale.platform,
                 when);
    }
}

static void verdict_message(const scan_view *v, int en, char *out, size_t cap)
{
    switch (v->verdict) {
    case TC_GENUINE:
        if (v->suspected_copy)
            snprintf(
                out, cap,
                en ? "This code is genuine, but it looks copied (%s). A genuine code belongs "
                     "to one item only: check with the seller before you buy."
                   : "此码为正品码，但疑似被复制（%s）。正品码只对应一件商品，购买前请向卖家核实。",
                en ? v->copy_why : v->copy_why_zh);
        else
            snprintf(out, cap,
                     en ? "Genuine: %s %s made by %s, under valid certificate %s."
                        : "正品：%s %s，生产企业 %s，证书 %s 有效。",
                     v->brand, v->model, v->issuer_name, v->cert_number);
        return;
    case TC_MALFORMED: /* plain words; the parser's detail is in the JSON */
        if (v->mistyped)
            snprintf(out, cap,
                     en ? "The code was mistyped: its last symbol (the check symbol) does not "
                          "match the others. Compare it with the label symbol by symbol and type "
                          "it again."
                        : "追溯码输入有误：最后一位校验符与前面的字符不符。请对照标签逐位核对后重新"
                          "输入。");
        else
            snprintf(out, cap,
                     en ? "This is not a valid trace code. Scan the label's QR code again, or "
                          "type the code exactly as printed under it."
                        : "这不是有效的追溯码。请重新扫描标签上的二维码，或按二维码下方印刷的字符原"
                          "样输入。");
        return;
    case TC_FORGED:
    case TC_UNKNOWN_BATCH:
        snprintf(out, cap,
                 en ? "This code was not issued by the registry: the product may be counterfeit. "
                      "Do not use it, and report the seller."
                    : "此码不是由监管系统签发的，商品可能是假冒产品。请勿使用，并向平台举报卖家。");
        return;
    case TC_RECALLED:
        snprintf(out, cap,
                 en ? "Recalled by %s: %s. Stop using it and contact the maker."
                    : "此商品已被 %s 召回：%s。请停止使用并联系生产企业。",
                 v->issuer_name, v->recall_reason);
        return;
    case TC_CERT_CANCELLED:
        snprintf(out, cap,
                 en ? "The product's certificate %s was cancelled by its holder: it may not be "
                      "sold."
                    : "此商品的认证证书 %s 已被持证企业注销，不得销售。",
                 v->cert_number);
        return;
    case TC_CERT_SUSPENDED:
    case TC_CERT_REVOKED:
    case TC_CERT_EXPIRED:
        if (en)
            snprintf(out, cap,
                     "The product's certificate %s is no longer valid (%s): it may not be sold.",
                     v->cert_number, v->detail);
        else /* the regulator's reason as entered; no English of ours */
            snprintf(out, cap, "此商品的认证证书 %s %s%s%s%s，不得销售。", v->cert_number,
                     v->verdict == TC_CERT_SUSPENDED ? "已暂停"
                     : v->verdict == TC_CERT_REVOKED ? "已撤销"
                                                     : "已过期",
                     v->cert_reason[0] ? "（原因：" : "", v->cert_reason,
                     v->cert_reason[0] ? "）" : "");
        return;
    case TC_GTIN_MISMATCH:
        snprintf(out, cap,
                 en ? "This label names another product than the code was issued for: the code "
                      "may have been copied onto it. Do not trust it; report the seller."
                    : "此标签标示的商品与追溯码所属商品不符，追溯码可能被复制到此商品上。请勿信任，"
                      "并举报卖家。");
        return;
    case TC_KEY_COMPROMISED:
        snprintf(out, cap,
                 en ? "This code was made with a key that leaked: it may be a copy. Do not trust "
                      "it; report the seller."
                    : "此追溯码所用密钥已泄露，可能是仿冒品，请勿信任并举报卖家。");
        return;
    case TC_ISSUER_SUSPENDED:
        snprintf(out, cap,
                 en ? "The maker %s is suspended by the regulator: this product may not be sold."
                    : "生产企业 %s 已被监管部门暂停，此商品不得销售。",
                 v->issuer_name);
        return;
    }
    snprintf(out, cap, "%s", v->detail);
}

/* --- ConsumerService.Scan ------------------------------------------------- */

svc_code api_scan(svc_ctx *c, const void *req, void *resp, svc_status *st)
{
    const Tracecode__V1__ScanRequest *q = req;
    Tracecode__V1__ScanResponse *out = resp;
    Tracecode__V1__Product *p;
    char msg[1024];
    scan_view *v = svc_alloc(c, sizeof(*v));

    if (!v)
        return svc_fail(st, SVC_RESOURCE_EXHAUSTED, "out of call memory");
    if (strlen(q->code) > CODEC_BASE_URL_MAX + CODEC_MAX_TEXT_LEN + 4)
        return svc_fail(st, SVC_INVALID_ARGUMENT, "code is longer than any code or scan URL");
    if (q->region[0] && !check_id(st, "region", q->region, STORE_REGION_MAX))
        return st->code;
    if (q->device_id[0] && !check_id(st, "device_id", q->device_id, DEVICE_ID_MAX))
        return st->code;
    /* A platform's scan counts when it names the device (a stable,
     * pseudonymous id): without one it is a look, not a scan. */
    scan_code(c->svc, c->reader, q->code, q->region, q->device_id, q->device_id[0] != '\0', v);
    scan_message(v, 0, msg, sizeof(msg));
    out->verdict = (Tracecode__V1__Verdict)v->verdict;
    out->message = svc_strdup(c, msg);
    out->issuer_name = v->issuer_name;
    out->certificate_number = v->cert_number;
    out->certificate_status = (Tracecode__V1__CertificateStatus)v->cert_status;
    out->recall_reason = v->recall_reason;
    out->scan_count = v->history.devices;
    out->first_scan_unix = v->history.first_ms / 1000;
    out->first_scan_region = v->history.first_region;
    out->suspected_copy = v->suspected_copy;
    out->production_date = v->production_date;
    out->lot = v->lot;
    if (v->sale.state == STORE_SALE_SOLD) {
        out->sold_platform_id = v->sale.platform;
        out->sold_unix = v->sale.sold_unix;
    }
    out->sales = v->sale.state == STORE_SALE_SOLD ? 1 + v->sale.others : v->sale.others;
    if (v->brand[0] && (p = svc_alloc(c, sizeof(*p))) != NULL) {
        tracecode__v1__product__init(p);
        p->brand = v->brand;
        p->model = v->model;
        p->category_code = v->category;
        p->certificate_number = v->cert_number;
        p->issuer_credit_code = v->issuer_credit;
        out->product = p;
        if (passport_out(c, v->passport, p, st) != SVC_OK)
            return st->code;
    }
    if (!out->message)
        return svc_fail(st, SVC_RESOURCE_EXHAUSTED, "out of call memory");
    return SVC_OK;
}
