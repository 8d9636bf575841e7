/*
 * url.c - the --redis URL: redis://, redis-sentinel:// and unix:, with
 * credentials from the URL, the environment or a file; redaction for
 * messages; AUTH.
 */
#include "store.h"
#include "store_int.h"

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- the address --------------------------------------------------------- */

/* Percent-decode n bytes of s into out (cap bytes, terminated). 0 when it
 * fits and every escape is two hex digits. */
static int pct_decode(const char *s, size_t n, char *out, size_t cap)
{
    size_t i, o = 0;

    for (i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            char hex[3] = {0, 0, 0}, *end;
            if (i + 2 >= n)
                return -1;
            hex[0] = s[i + 1];
            hex[1] = s[i + 2];
            c = (int)strtol(hex, &end, 16);
            if (end != hex + 2 || c == 0)
                return -1;
            i += 2;
        }
        if (o + 1 >= cap)
            return -1;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return 0;
}

/* A secret from the environment: the variable itself, or the first line
 * of the file named by the same variable with _FILE appended (a secret
 * mounted as a file). 0 when found or absent, -1 when it does not fit or
 * the file is missing or empty. */
static int env_secret(const char *var, char *out, size_t cap)
{
    const char *v = getenv(var), *file;
    char name[64];
    FILE *f;

    if (v && *v) {
        if (strlen(v) >= cap)
            return -1;
        memcpy(out, v, strlen(v) + 1);
        return 0;
    }
    snprintf(name, sizeof(name), "%s_FILE", var);
    file = getenv(name);
    if (!file || !*file)
        return 0;
    f = fopen(file, "r");
    if (!f)
        return -1;
    if (!fgets(out, (int)cap, f))
        out[0] = '\0';
    fclose(f);
    out[strcspn(out, "\r\n")] = '\0';
    return out[0] ? 0 : -1;
}

/* The credentials from the environment when the URL names none:
 * TRACESVC_REDIS_USER, TRACESVC_REDIS_PASSWORD or _PASSWORD_FILE. */
static int env_password(st_addr *a)
{
    const char *user = getenv("TRACESVC_REDIS_USER");

    if (user && *user && !a->user[0]) {
        if (strlen(user) >= sizeof(a->user))
            return -1;
        memcpy(a->user, user, strlen(user) + 1);
    }
    if (a->pass[0])
        return 0;
    return env_secret("TRACESVC_REDIS_PASSWORD", a->pass, sizeof(a->pass));
}

/* host[:port] in [p, end): 0, or -1 when it does not parse. */
static int parse_hostport(const char *p, const char *end, char *host, size_t hostcap, int *port)
{
    const char *colon = memchr(p, ':', (size_t)(end - p));
    const char *hend = colon ? colon : end;
    char num[8], *e;
    long v;

    if (hend == p || (size_t)(hend - p) >= hostcap)
        return -1;
    memcpy(host, p, (size_t)(hend - p));
    host[hend - p] = '\0';
    if (!colon)
        return 0;
    if (end - colon - 1 <= 0 || end - colon - 1 >= (long)sizeof(num))
        return -1;
    memcpy(num, colon + 1, (size_t)(end - colon - 1));
    num[end - colon - 1] = '\0';
    v = strtol(num, &e, 10);
    if (*e || v <= 0 || v > 65535)
        return -1;
    *port = (int)v;
    return 0;
}

/* ?db=N&sentinel_password=... (both optional) */
static int parse_query(const char *q, st_addr *a)
{
    while (q && *q) {
        const char *amp = q + strcspn(q, "&");
        char *end;
        if (strncmp(q, "db=", 3) == 0) {
            long v = strtol(q + 3, &end, 10);
            if (end != amp || end == q + 3 || v < 0 || v > 15)
                return -1;
            a->db = (int)v;
        } else if (strncmp(q, "sentinel_password=", 18) == 0) {
            if (pct_decode(q + 18, (size_t)(amp - q - 18), a->sentinel_pass,
                           sizeof(a->sentinel_pass)) != 0)
                return -1;
        } else {
            return -1;
        }
        q = *amp ? amp + 1 : amp;
    }
    return 0;
}

/* [user[:password]@] at the front of p (percent-encoded, as URLs carry
 * them); *p moves past it. */
static int parse_userinfo(const char **p, st_addr *a)
{
    const char *at = strchr(*p, '@');

    if (!at || at >= *p + strcspn(*p, "/"))
        return 0;
    const char *colon = memchr(*p, ':', (size_t)(at - *p));
    size_t un = colon ? (size_t)(colon - *p) : (size_t)(at - *p);
    if (pct_decode(*p, un, a->user, sizeof(a->user)) != 0)
        return -1;
    if (colon && pct_decode(colon + 1, (size_t)(at - colon - 1), a->pass, sizeof(a->pass)) != 0)
        return -1;
    if (!colon) { /* redis://password@host, as some tools write it */
        memcpy(a->pass, a->user,
               sizeof(a->pass) < sizeof(a->user) ? sizeof(a->pass) : sizeof(a->user));
        a->user[0] = '\0';
    }
    *p = at + 1;
    return 0;
}

/* redis-sentinel://[user:password@]HOST:PORT[,HOST:PORT...]/MASTER[?db=N]
 * [&sentinel_password=...]: the credentials are Redis's, the Sentinels have
 * their own password (or TRACESVC_SENTINEL_PASSWORD or _PASSWORD_FILE). */
static int parse_sentinel_url(const char *p, st_addr *a)
{
    const char *slash, *q;

    if (parse_userinfo(&p, a) != 0)
        return -1;
    slash = strchr(p, '/');
    if (!slash)
        return -1;
    while (p < slash) {
        const char *comma = memchr(p, ',', (size_t)(slash - p));
        const char *end = comma ? comma : slash;
        if (a->nsentinel == SENTINELS_MAX)
            return -1;
        a->sentinel[a->nsentinel].port = 26379;
        if (parse_hostport(p, end, a->sentinel[a->nsentinel].host, sizeof(a->sentinel[0].host),
                           &a->sentinel[a->nsentinel].port) != 0)
            return -1;
        a->nsentinel++;
        if (comma && comma + 1 == slash)
            return -1; /* "host," names no last Sentinel */
        p = comma ? comma + 1 : slash;
    }
    q = strchr(slash + 1, '?');
    size_t n = q ? (size_t)(q - slash - 1) : strlen(slash + 1);
    if (a->nsentinel == 0 || n == 0 || n >= sizeof(a->master) ||
        strspn(slash + 1, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") < n)
        return -1;
    memcpy(a->master, slash + 1, n);
    if (q && parse_query(q + 1, a) != 0)
        return -1;
    if (!a->sentinel_pass[0])
        return env_secret("TRACESVC_SENTINEL_PASSWORD", a->sentinel_pass, sizeof(a->sentinel_pass));
    return 0;
}

/* rediss:// options: ca, cert, key, sni (each percent-encoded), and the
 * same from TRACESVC_REDIS_TLS_CA, _CERT, _KEY, _SNI where not given. */
static int parse_tls_query(const char *q, st_addr *a)
{
    static const struct {
        const char *name, *env;
        size_t off;
    } opts[] = {{"ca=", "TRACESVC_REDIS_TLS_CA", offsetof(st_addr, tls_ca)},
                {"cert=", "TRACESVC_REDIS_TLS_CERT", offsetof(st_addr, tls_cert)},
                {"key=", "TRACESVC_REDIS_TLS_KEY", offsetof(st_addr, tls_key)},
                {"sni=", "TRACESVC_REDIS_TLS_SNI", offsetof(st_addr, tls_sni)}};
    size_t i;

    while (q && *q) {
        const char *amp = q + strcspn(q, "&");
        for (i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
            size_t n = strlen(opts[i].name);
            if (strncmp(q, opts[i].name, n) == 0) {
                if (pct_decode(q + n, (size_t)(amp - q) - n, (char *)a + opts[i].off, 256) != 0)
                    return -1;
                break;
            }
        }
        if (i == sizeof(opts) / sizeof(opts[0]))
            return -1;
        q = *amp ? amp + 1 : amp;
    }
    for (i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
        const char *v = getenv(opts[i].env);
        char *f = (char *)a + opts[i].off;
        if (!f[0] && v && *v && snprintf(f, 256, "%s", v) >= 256)
            return -1;
    }
    return 0;
}

int st_parse_url(const char *url, st_addr *a)
{
    char hostpart[512];
    const char *p, *q;
    char *end;
    long v;

    memset(a, 0, sizeof(*a));
    a->port = 6379;
    if (strncmp(url, "unix:", 5) == 0) {
        p = url + 5;
        q = strstr(p, "?db=");
        size_t n = q ? (size_t)(q - p) : strlen(p);
        if (n == 0 || n >= sizeof(a->path))
            return -1;
        memcpy(a->path, p, n);
        if (q) {
            v = strtol(q + 4, &end, 10);
            if (*end || v < 0 || v > 15)
                return -1;
            a->db = (int)v;
        }
        return env_password(a);
    }
    if (strncmp(url, "redis-sentinel://", 17) == 0)
        return parse_sentinel_url(url + 17, a) == 0 ? env_password(a) : -1;
    if (strncmp(url, "rediss://", 9) == 0) {
        const char *query = strchr(url, '?');
        size_t n = query ? (size_t)(query - url) : strlen(url);

        if (n >= sizeof(hostpart) || parse_tls_query(query ? query + 1 : NULL, a) != 0)
            return -1;
        memcpy(hostpart, url + 9, n - 9);
        hostpart[n - 9] = '\0';
        a->use_tls = 1;
        p = hostpart;
    } else if (strncmp(url, "redis://", 8) == 0) {
        p = url + 8;
    } else {
        return -1;
    }
    if (parse_userinfo(&p, a) != 0)
        return -1;
    q = p + strcspn(p, "/");
    if (parse_hostport(p, q, a->host, sizeof(a->host), &a->port) != 0)
        return -1;
    if (*q == '/' && q[1]) {
        v = strtol(q + 1, &end, 10);
        if (*end || v < 0 || v > 15)
            return -1;
        a->db = (int)v;
    } else if (*q && strcmp(q, "/") != 0) {
        return -1;
    }
    return env_password(a);
}

static size_t put_str(char *out, size_t cap, size_t o, const char *s)
{
    while (*s && o + 1 < cap)
        out[o++] = *s++;
    return o;
}

void st_redact(const char *url, char *out, size_t cap)
{
    const char *host = strstr(url, "://"), *at, *p = url;
    size_t o = 0;

    if (!cap)
        return;
    host = host ? host + 3 : NULL;
    at = host ? strchr(host, '@') : NULL;
    if (at && at >= host + strcspn(host, "/"))
        at = NULL;
    while (*p && o + 1 < cap) {
        if (p == host && at) {
            o = put_str(out, cap, o, "***@");
            p = at + 1;
        } else if (strncmp(p, "sentinel_password=", 18) == 0) {
            o = put_str(out, cap, o, "sentinel_password=***");
            p += 18 + strcspn(p + 18, "&");
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
}

/* AUTH on a fresh connection: 0, or -1 with why in err (the password is
 * never part of a message). */
int st_auth(redisContext *c, const char *user, const char *pass, const char *what, char *err,
            size_t cap)
{
    redisReply *r;
    int ok;

    if (!pass[0])
        return 0;
    r = user[0] ? redisCommandArgv(c, 3, (const char *[]){"AUTH", user, pass}, NULL)
                : redisCommandArgv(c, 2, (const char *[]){"AUTH", pass}, NULL);
    ok = r && r->type != REDIS_REPLY_ERROR;
    if (!r)
        st_fail(STORE_ERR_UNAVAILABLE, err, cap, "%s did not answer AUTH: %s", what, c->errstr);
    else if (!ok)
        st_fail(STORE_ERR_DENIED, err, cap, "%s refused the credentials of user '%s': %s", what,
                user[0] ? user : "default", r->str);
    if (r)
        freeReplyObject(r);
    return ok ? 0 : -1;
}
