/*
 * visitor.c - who a request comes from: its language, its device (a signed
 * cookie, or a platform's device id), whether it is a robot, its region
 * (from a trusted proxy only), and the code in its path.
 */
#include "http_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>

/* --- request details ----------------------------------------------------------- */

int http_want_english(struct evhttp_request *req, const struct evhttp_uri *uri)
{
    const char *q = evhttp_uri_get_query(uri), *al;

    if (q && (strstr(q, "lang=en") != NULL))
        return 1;
    if (q && strstr(q, "lang=zh"))
        return 0;
    al = evhttp_find_header(evhttp_request_get_input_headers(req), "Accept-Language");
    return al && strncasecmp(al, "en", 2) == 0;
}

static int http_id_char(int c)
{
    return isalnum(c) || c == '-' || c == '_' || c == '.';
}

/* --- device cookies ---------------------------------------------------------- */

/* The cookie's tag: the first COOKIE_TAG bytes of HMAC-SHA-256 under MAC
 * key kid over "TCDEV1" || rnd (a message no code tag is made of). */
static int http_cookie_tag(const svc *s, unsigned kid, const uint8_t rnd[COOKIE_RND],
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
static int http_same_tag(const uint8_t *a, const uint8_t *b, size_t n)
{
    uint8_t d = 0;
    size_t i;

    for (i = 0; i < n; i++)
        d |= (uint8_t)(a[i] ^ b[i]);
    return d == 0;
}

static int http_hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/*
 * The device named by the request's cookie, when it is one this service
 * signed (any node: the keyring is shared): device receives its random part
 * in hex. 0 when there is none or it does not verify: a made-up cookie
 * names no device, so it cannot add one to a code's count.
 */
int http_device_of(const svc *s, struct evhttp_request *req, char device[2 * COOKIE_RND + 1])
{
    const char *c = evhttp_find_header(evhttp_request_get_input_headers(req), "Cookie");
    const char *p = c ? strstr(c, COOKIE "=") : NULL;
    uint8_t b[1 + COOKIE_RND + COOKIE_TAG], tag[COOKIE_TAG];
    size_t i;

    if (!p)
        return 0;
    p += strlen(COOKIE "=");
    for (i = 0; i < sizeof(b); i++) {
        int hi = http_hexval((unsigned char)p[2 * i]),
            lo = hi < 0 ? -1 : http_hexval((unsigned char)p[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return 0;
        b[i] = (uint8_t)(hi << 4 | lo);
    }
    if (isxdigit((unsigned char)p[COOKIE_HEX]) || http_cookie_tag(s, b[0], b + 1, tag) != 0 ||
        !http_same_tag(tag, b + 1 + COOKIE_RND, COOKIE_TAG))
        return 0;
    memcpy(device, p + 2, 2 * COOKIE_RND);
    device[2 * COOKIE_RND] = '\0';
    return 1;
}

/* Set a fresh signed device cookie on the response. */
void http_new_cookie(const svc *s, struct evhttp_request *req)
{
    uint8_t b[1 + COOKIE_RND + COOKIE_TAG];
    char hex[COOKIE_HEX + 1], cookie[COOKIE_HEX + 80];
    unsigned kid = keys_active(svc_ring(s), KEYS_KIND_MAC);
    size_t i;

    if (!kid || getrandom(b + 1, COOKIE_RND, 0) != COOKIE_RND)
        return;
    b[0] = (uint8_t)kid;
    if (http_cookie_tag(s, kid, b + 1, b + 1 + COOKIE_RND) != 0)
        return;
    for (i = 0; i < sizeof(b); i++)
        snprintf(hex + 2 * i, 3, "%02x", b[i]);
    snprintf(cookie, sizeof(cookie), COOKIE "=%s; Max-Age=31536000; Path=/; HttpOnly; SameSite=Lax",
             hex);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Set-Cookie", cookie);
}

/* Link previews, crawlers and uptime probes: they never count as a scan. */
int http_is_robot(struct evhttp_request *req)
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
int http_cidr_parse(const char *s, cidr *c)
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

static int http_cidr_has(const cidr *c, int family, const uint8_t *addr)
{
    unsigned full = c->bits / 8, rest = c->bits % 8;

    if (c->family != family || memcmp(c->addr, addr, full) != 0)
        return 0;
    return !rest || ((c->addr[full] ^ addr[full]) & (0xff << (8 - rest)) & 0xff) == 0;
}

/* Whether the request's peer is one of the trusted proxies. */
static int http_from_trusted(const http_server *h, struct evhttp_request *req)
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
        if (inet_pton(fam, peer, a) == 1 && http_cidr_has(&h->trusted[i], fam, a))
            return 1;
    }
    return 0;
}

/* Region from the edge (X-Region), believed only from a trusted proxy (a
 * header anyone else sends is anyone's claim), and only when it is a
 * plausible region code. */
void http_region_of(const http_server *h, struct evhttp_request *req,
                    char out[STORE_REGION_MAX + 1])
{
    const char *r = evhttp_find_header(evhttp_request_get_input_headers(req), "X-Region");
    size_t i;

    out[0] = '\0';
    if (!r || !http_from_trusted(h, req))
        return;
    for (i = 0; r[i] && i < STORE_REGION_MAX && http_id_char((unsigned char)r[i]); i++)
        out[i] = r[i];
    out[r[i] ? 0 : i] = '\0';
}

/* The code from the path after prefix, upper-cased; 0 when too long or
 * holding anything but letters, digits and '-'. */
int http_code_arg(const char *path, size_t skip, const char *suffix, char out[CODE_ARG_MAX + 1])
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

/* The device id a JSON caller names (?device=ID: a platform app's stable,
 * pseudonymous id), or 0 when it names none or a malformed one. */
int http_device_param(const struct evhttp_uri *uri, char out[65])
{
    const char *q = evhttp_uri_get_query(uri), *p = q ? strstr(q, "device=") : NULL;
    size_t i;

    if (!p || (p != q && p[-1] != '&'))
        return 0;
    p += 7;
    for (i = 0; p[i] && p[i] != '&' && i < 64; i++) {
        if (!http_id_char((unsigned char)p[i]))
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
