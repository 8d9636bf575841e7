/*
 * store.c - Redis (hiredis) as the registry's source of truth: atomic
 * writes through Lua, snapshot loading, change-stream tailing.
 */
#include "store.h"
#include "store_int.h"

#include <errno.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <event2/event.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#define K_REV "{tc}:rev"
#define K_STREAM "{tc}:changes"
#define K_SEQ_PRODUCT "{tc}:seq:product"
#define K_SEQ_BATCH "{tc}:seq:batch"

const char *store_strerror(store_err err)
{
    switch (err) {
    case STORE_OK:
        return "ok";
    case STORE_ERR_UNAVAILABLE:
        return "redis unavailable";
    case STORE_ERR_PRECONDITION:
        return "precondition failed";
    case STORE_ERR_NOTFOUND:
        return "not found";
    case STORE_ERR_DENIED:
        return "belongs to another caller";
    case STORE_ERR_ARG:
        return "invalid argument";
    case STORE_ERR_PROTOCOL:
        return "unexpected reply from redis";
    case STORE_ERR_NOMEM:
        return "out of memory";
    case STORE_ERR_RANGE:
        return "out of range";
    case STORE_ERR_TIMEOUT:
        return "timed out";
    case STORE_ERR_EXISTS:
        return "request id already used";
    }
    return "unknown error";
}

store_err st_fail(store_err e, char *err, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

store_err st_fail(store_err e, char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;

    if (err && cap) {
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return e;
}

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

int st_parse_url(const char *url, st_addr *a)
{
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
    if (strncmp(url, "redis://", 8) != 0)
        return -1;
    p = url + 8;
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
static int st_auth(redisContext *c, const char *user, const char *pass, const char *what, char *err,
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

/* --- dialling ------------------------------------------------------------ */

static redisContext *st_dial_why(const st_addr *a, store_err *why, char *err, size_t cap)
{
    struct timeval tv = {TIMEOUT_MS / 1000, (TIMEOUT_MS % 1000) * 1000};
    redisContext *c;
    redisReply *r;

    *why = STORE_ERR_UNAVAILABLE;
    if (!a->path[0] && !a->host[0]) {
        st_fail(STORE_ERR_UNAVAILABLE, err, cap, "no Sentinel has named a primary for '%s' yet",
                a->master);
        return NULL;
    }
    c = a->path[0] ? redisConnectUnixWithTimeout(a->path, tv)
                   : redisConnectWithTimeout(a->host, a->port, tv);
    if (!c || c->err) {
        char where[300];
        if (a->path[0])
            snprintf(where, sizeof(where), "%s", a->path);
        else
            snprintf(where, sizeof(where), "%s:%d", a->host, a->port);
        st_fail(STORE_ERR_UNAVAILABLE, err, cap, "cannot connect to redis at %s: %s", where,
                c ? c->errstr : "out of memory");
        if (c)
            redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    if (st_auth(c, a->user, a->pass, "redis", err, cap) != 0) {
        *why = c->err ? STORE_ERR_UNAVAILABLE : STORE_ERR_DENIED;
        redisFree(c);
        return NULL;
    }
    if (a->db) {
        r = redisCommand(c, "SELECT %d", a->db);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            st_fail(STORE_ERR_UNAVAILABLE, err, cap, "cannot select redis db %d", a->db);
            if (r)
                freeReplyObject(r);
            redisFree(c);
            return NULL;
        }
        freeReplyObject(r);
    }
    return c;
}

redisContext *st_dial(const st_addr *a, char *err, size_t cap)
{
    store_err why;

    return st_dial_why(a, &why, err, cap);
}

/* A connection to Sentinel i, authenticated, or NULL with why. */
static redisContext *dial_sentinel(const st_addr *a, int i, char *err, size_t cap)
{
    struct timeval tv = {0, 500000};
    const st_hostport *h = &a->sentinel[i];
    redisContext *c = redisConnectWithTimeout(h->host, h->port, tv);

    if (!c || c->err) {
        st_fail(STORE_ERR_UNAVAILABLE, err, cap, "cannot reach Sentinel %s:%d: %s", h->host,
                h->port, c ? c->errstr : "out of memory");
        if (c)
            redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    if (st_auth(c, "", a->sentinel_pass, "Sentinel", err, cap) != 0) {
        redisFree(c);
        return NULL;
    }
    return c;
}

/*
 * Ask the Sentinels where the primary named s->a.master is: 0 with host
 * and port, or -1 with why. The one that answered last is asked first, on
 * the connection kept from then; one that is down, slow (500 ms) or does
 * not know the name is passed over for the next.
 */
static int ask_sentinels(store *s, char *host, size_t hostcap, int *port, char *err, size_t cap)
{
    const st_addr *a = &s->a;
    int k;

    st_fail(STORE_ERR_UNAVAILABLE, err, cap, "no Sentinel given");
    for (k = 0; k < a->nsentinel; k++) {
        int i = (s->sentinel_i + k) % a->nsentinel;
        const st_hostport *h = &a->sentinel[i];
        redisContext *c = k == 0 && s->sentinel_c ? s->sentinel_c : dial_sentinel(a, i, err, cap);
        redisReply *r = NULL;
        s->sentinel_c = NULL;
        if (!c)
            continue;
        r = redisCommandArgv(
            c, 3, (const char *[]){"SENTINEL", "get-master-addr-by-name", a->master}, NULL);
        if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
            r->element[0]->type == REDIS_REPLY_STRING &&
            r->element[1]->type == REDIS_REPLY_STRING && r->element[0]->len < hostcap &&
            strtol(r->element[1]->str, NULL, 10) > 0 &&
            strtol(r->element[1]->str, NULL, 10) < 65536) {
            memcpy(host, r->element[0]->str, r->element[0]->len + 1);
            *port = (int)strtol(r->element[1]->str, NULL, 10);
            freeReplyObject(r);
            s->sentinel_c = c; /* kept for the next poll */
            s->sentinel_i = i;
            return 0;
        }
        st_fail(STORE_ERR_UNAVAILABLE, err, cap, "Sentinel %s:%d %s", h->host, h->port,
                !r                             ? "did not answer"
                : r->type == REDIS_REPLY_ERROR ? r->str
                                               : "does not know a primary by that name");
        if (r)
            freeReplyObject(r);
        redisFree(c);
    }
    return -1;
}

/* Close every idle connection (the primary moved). Called with mu held;
 * the connections are freed by the caller after unlocking. */
static int take_idle(store *s, redisContext **out)
{
    int n = 0;

    while (s->nidle)
        out[n++] = s->idle[--s->nidle].c;
    return n;
}

/* Ask the Sentinels; when they name another primary, take it and retire
 * every connection to the old one. 0 when a primary is known. */
static int resolve(store *s, char *err, size_t cap)
{
    redisContext *old[POOL_MAX];
    char host[256], was[300];
    int port, moved = 0, n = 0, i;

    if (!s->a.nsentinel)
        return 0;
    if (ask_sentinels(s, host, sizeof(host), &port, err, cap) != 0)
        return -1;
    pthread_mutex_lock(&s->mu);
    if (strcmp(host, s->a.host) != 0 || port != s->a.port) {
        snprintf(was, sizeof(was), "%s:%d", s->a.host[0] ? s->a.host : "(none)", s->a.port);
        memcpy(s->a.host, host, strlen(host) + 1);
        s->a.port = port;
        atomic_fetch_add(&s->gen, 1);
        n = take_idle(s, old);
        moved = 1;
    }
    pthread_mutex_unlock(&s->mu);
    for (i = 0; i < n; i++)
        redisFree(old[i]);
    if (moved)
        fprintf(stderr, "tracesvc: redis: the Sentinels name %s:%d as primary of '%s' (was %s)\n",
                host, port, s->a.master, was);
    return 0;
}

void st_suspect(store *s, const char *why)
{
    (void)why;
    if (!s->a.nsentinel)
        return;
    atomic_store(&s->suspect, 1);
    pthread_mutex_lock(&s->mu);
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->mu);
}

int st_failover_reply(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_ERROR &&
           (strncmp(r->str, "READONLY", 8) == 0 || strncmp(r->str, "MASTERDOWN", 10) == 0 ||
            strncmp(r->str, "LOADING", 7) == 0 || strncmp(r->str, "NOREPLICAS", 10) == 0);
}

/*
 * The Sentinel monitor: asks where the primary is every MONITOR_MS, and at
 * once when a connection saw it fail. This is how a node follows a
 * +switch-master: within MONITOR_MS of the Sentinels' switch, or on the
 * first error that the switch causes, whichever comes first.
 */
#define MONITOR_MS 500

static void *monitor_main(void *arg)
{
    store *s = arg;
    char err[STORE_ERR_MAX], last[STORE_ERR_MAX] = "";

    pthread_mutex_lock(&s->mu);
    while (!atomic_load(&s->stopping)) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += MONITOR_MS * 1000000L;
        until.tv_sec += until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        if (!atomic_exchange(&s->suspect, 0))
            pthread_cond_timedwait(&s->wake, &s->mu, &until);
        if (atomic_load(&s->stopping))
            break;
        pthread_mutex_unlock(&s->mu);
        err[0] = '\0';
        if (resolve(s, err, sizeof(err)) != 0 && strcmp(err, last) != 0)
            fprintf(stderr, "tracesvc: redis: cannot ask the Sentinels: %s\n", err);
        memcpy(last, err, sizeof(last)); /* log a failure once, not twice a second */
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

void st_current(store *s, st_addr *a, unsigned *gen)
{
    pthread_mutex_lock(&s->mu);
    *a = s->a;
    *gen = atomic_load(&s->gen);
    pthread_mutex_unlock(&s->mu);
}

redisContext *st_dial_primary(store *s, unsigned *gen, char *err, size_t cap)
{
    st_addr a;
    redisContext *c;

    st_current(s, &a, gen);
    c = st_dial(&a, err, cap);
    if (!c)
        st_suspect(s, err);
    return c;
}

/* --- the pool of blocking connections ------------------------------------ */

/* A pooled connection if there is one (*reused = 1), else a new one. */
static redisContext *pool_get(store *s, int *reused, unsigned *gen, char *err, size_t cap)
{
    redisContext *c = NULL;

    pthread_mutex_lock(&s->mu);
    if (s->nidle) {
        s->nidle--;
        c = s->idle[s->nidle].c;
        *gen = s->idle[s->nidle].gen;
    }
    pthread_mutex_unlock(&s->mu);
    *reused = c != NULL;
    return c ? c : st_dial_primary(s, gen, err, cap);
}

/* Back into the pool, unless broken or dialled to a primary since left. */
static void pool_put(store *s, redisContext *c, unsigned gen)
{
    if (c->err) { /* broken: do not hand it out again */
        redisFree(c);
        return;
    }
    pthread_mutex_lock(&s->mu);
    if (s->nidle < POOL_MAX && gen == atomic_load(&s->gen)) {
        s->idle[s->nidle].c = c;
        s->idle[s->nidle++].gen = gen;
        c = NULL;
    }
    pthread_mutex_unlock(&s->mu);
    if (c)
        redisFree(c);
}

store_err store_open(const char *url, store **out, char *err, size_t errcap)
{
    store *s;
    redisContext *c;
    store_err why;

    *out = NULL;
    if (strncmp(url, "rediss://", 9) == 0)
        return st_fail(STORE_ERR_ARG, err, errcap,
                       "rediss:// (TLS to Redis) is not supported by this build: it links "
                       "Debian 12's hiredis 0.14, which has no TLS; keep Redis on a private "
                       "network or loopback, or put a TLS tunnel (stunnel) beside each node");
    s = calloc(1, sizeof(*s));
    if (!s)
        return st_fail(STORE_ERR_NOMEM, err, errcap, "out of memory");
    if (st_parse_url(url, &s->a) != 0) {
        char shown[512];
        st_redact(url, shown, sizeof(shown));
        free(s);
        return st_fail(
            STORE_ERR_ARG, err, errcap,
            "cannot parse redis url '%s': want redis://[user:password@]host:port[/db], "
            "redis-sentinel://[user:password@]host:port[,host:port...]/primary-name"
            "[?db=N&sentinel_password=...] or unix:/path[?db=N] (a password file "
            "given by TRACESVC_REDIS_PASSWORD_FILE or TRACESVC_SENTINEL_PASSWORD_FILE must "
            "exist and not be empty)",
            shown);
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->wake, NULL);
    atomic_init(&s->gen, 1);
    atomic_init(&s->suspect, 0);
    atomic_init(&s->stopping, 0);
    s->notice_retention_ms = STORE_NOTICE_RETENTION_MS;
    s->replicas_wait = TIMEOUT_MS;
    if (resolve(s, err, errcap) != 0) {
        why = STORE_ERR_UNAVAILABLE;
        c = NULL;
    } else {
        c = st_dial_why(&s->a, &why, err, errcap);
    }
    if (c && s->a.nsentinel && pthread_create(&s->monitor, NULL, monitor_main, s) == 0)
        s->monitoring = 1;
    if (!c || (s->a.nsentinel && !s->monitoring)) {
        if (c)
            redisFree(c);
        if (s->sentinel_c)
            redisFree(s->sentinel_c);
        pthread_cond_destroy(&s->wake);
        pthread_mutex_destroy(&s->mu);
        free(s);
        return c ? STORE_ERR_NOMEM : why;
    }
    pool_put(s, c, atomic_load(&s->gen));
    *out = s;
    return STORE_OK;
}

void store_set_notice_retention(store *s, int64_t ms)
{
    s->notice_retention_ms = ms > 0 ? ms : STORE_NOTICE_RETENTION_MS;
}

void store_set_replicas(store *s, int replicas, int wait_ms)
{
    s->replicas = replicas > 0 ? replicas : 0;
    s->replicas_wait = wait_ms > 0 ? wait_ms : TIMEOUT_MS;
}

void store_primary(store *s, char *out, size_t cap)
{
    pthread_mutex_lock(&s->mu);
    if (s->a.path[0])
        snprintf(out, cap, "%s", s->a.path);
    else
        snprintf(out, cap, "%s:%d", s->a.host, s->a.port);
    pthread_mutex_unlock(&s->mu);
}

unsigned store_generation(store *s)
{
    return atomic_load(&s->gen);
}

void store_free(store *s)
{
    if (!s)
        return;
    if (s->monitoring) {
        pthread_mutex_lock(&s->mu);
        atomic_store(&s->stopping, 1);
        pthread_cond_signal(&s->wake);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->monitor, NULL);
    }
    while (s->nidle)
        redisFree(s->idle[--s->nidle].c);
    if (s->sentinel_c)
        redisFree(s->sentinel_c);
    pthread_cond_destroy(&s->wake);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/*
 * One command on a pooled connection. Error replies from our scripts start
 * with a word naming the store_err (NOTFOUND, PRECONDITION, DENIED, ARG);
 * the rest is the message. Caller frees the reply with freeReplyObject.
 */
/* hiredis 0.14 reports a read timeout as an I/O error with EAGAIN. */
static int timed_out(const redisContext *c)
{
    return c->err == REDIS_ERR_IO && strstr(c->errstr, "temporarily unavailable") != NULL;
}

store_err st_run(store *s, int argc, const char **argv, const size_t *lens, redisReply **out,
                 char *err, size_t cap)
{
    return st_run_timeout(s, argc, argv, lens, out, TIMEOUT_MS, err, cap);
}

static void set_timeout(redisContext *c, int ms)
{
    redisSetTimeout(c, (struct timeval){ms / 1000, (ms % 1000) * 1000});
}

/* WAIT on c for the store's replicas after a write: STORE_OK once they
 * hold it, else UNAVAILABLE saying the write may stand. */
static store_err wait_replicas(store *s, redisContext *c, char *err, size_t cap)
{
    char n[16], ms[16];
    redisReply *r;
    long long got;

    snprintf(n, sizeof(n), "%d", s->replicas);
    snprintf(ms, sizeof(ms), "%d", s->replicas_wait);
    set_timeout(c, s->replicas_wait + 1000);
    r = redisCommandArgv(c, 3, (const char *[]){"WAIT", n, ms}, NULL);
    got = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    if (r)
        freeReplyObject(r);
    if (got >= s->replicas)
        return STORE_OK;
    if (got < 0)
        st_suspect(s, "WAIT failed");
    return st_fail(STORE_ERR_UNAVAILABLE, err, cap,
                   "the write reached the Redis primary but %s%lld of the %d replicas it must "
                   "reach confirmed it within %d ms, so a failover could still lose it: retry "
                   "with the same request_id (a retry never applies a request twice)",
                   got < 0 ? "the primary stopped answering and " : "only ", got < 0 ? 0 : got,
                   s->replicas, s->replicas_wait);
}

static store_err st_exec(store *s, int argc, const char **argv, const size_t *lens,
                         redisReply **out, int timeout_ms, int durable, char *err, size_t cap)
{
    static const struct {
        const char *word;
        store_err e;
    } words[] = {{"NOTFOUND ", STORE_ERR_NOTFOUND},
                 {"PRECONDITION ", STORE_ERR_PRECONDITION},
                 {"DENIED ", STORE_ERR_DENIED},
                 {"ARG ", STORE_ERR_ARG},
                 {"EXISTS ", STORE_ERR_EXISTS}};
    redisContext *c;
    redisReply *r;
    unsigned gen;
    size_t i;
    int reused;

    *out = NULL;
    c = pool_get(s, &reused, &gen, err, cap);
    if (!c)
        return STORE_ERR_UNAVAILABLE;
    if (timeout_ms != TIMEOUT_MS)
        set_timeout(c, timeout_ms);
    r = redisCommandArgv(c, argc, argv, lens);
    if (!r && reused && !timed_out(c) && (c->err == REDIS_ERR_IO || c->err == REDIS_ERR_EOF)) {
        /* An idle connection that died with its server (Redis restarted,
         * the primary failed): once more on a new one. The command never
         * reached that server. */
        redisFree(c);
        st_suspect(s, "connection lost");
        c = st_dial_primary(s, &gen, err, cap);
        if (!c)
            return STORE_ERR_UNAVAILABLE;
        if (timeout_ms != TIMEOUT_MS)
            set_timeout(c, timeout_ms);
        r = redisCommandArgv(c, argc, argv, lens);
    }
    if (!r) {
        /* A timeout is not "nothing happened": the command may have run. */
        store_err e = timed_out(c)
                          ? st_fail(STORE_ERR_TIMEOUT, err, cap,
                                    "redis did not answer within %d ms; the change may "
                                    "or may not have been made: read it back",
                                    timeout_ms)
                          : st_fail(STORE_ERR_UNAVAILABLE, err, cap, "redis: %s", c->errstr);
        if (!timed_out(c))
            st_suspect(s, "connection lost");
        pool_put(s, c, gen); /* broken: freed, not pooled */
        return e;
    }
    if (st_failover_reply(r)) {
        /* This server is not (or no longer) a writable primary: drop the
         * connection, have the Sentinels asked, and let the caller retry.
         * A script refused this way changed nothing. */
        store_err e = st_fail(STORE_ERR_UNAVAILABLE, err, cap,
                              "redis cannot take this now (%.120s): the primary is changing or "
                              "starting; retry shortly (with the same request_id)",
                              r->str);
        redisFree(c);
        freeReplyObject(r);
        st_suspect(s, "failover reply");
        return e;
    }
    if (durable && s->replicas > 0 && r->type != REDIS_REPLY_ERROR) {
        store_err e = wait_replicas(s, c, err, cap);
        set_timeout(c, TIMEOUT_MS); /* WAIT changed it */
        timeout_ms = TIMEOUT_MS;
        if (e) {
            pool_put(s, c, gen);
            freeReplyObject(r);
            return e;
        }
    }
    if (timeout_ms != TIMEOUT_MS)
        set_timeout(c, TIMEOUT_MS);
    pool_put(s, c, gen);
    if (r->type == REDIS_REPLY_ERROR) {
        for (i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
            size_t n = strlen(words[i].word);
            if (r->len > n && strncmp(r->str, words[i].word, n) == 0) {
                store_err e = st_fail(words[i].e, err, cap, "%s", r->str + n);
                freeReplyObject(r);
                return e;
            }
        }
        /* Transient states of a server that is busy or resharding. */
        if (strncmp(r->str, "BUSY", 4) == 0 || strncmp(r->str, "TRYAGAIN", 8) == 0) {
            store_err e =
                st_fail(STORE_ERR_UNAVAILABLE, err, cap, "redis is not ready: %s", r->str);
            freeReplyObject(r);
            return e;
        }
        st_fail(STORE_ERR_PROTOCOL, err, cap, "redis: %s", r->str);
        freeReplyObject(r);
        return STORE_ERR_PROTOCOL;
    }
    *out = r;
    return STORE_OK;
}

store_err st_run_timeout(store *s, int argc, const char **argv, const size_t *lens,
                         redisReply **out, int timeout_ms, char *err, size_t cap)
{
    return st_exec(s, argc, argv, lens, out, timeout_ms, 0, err, cap);
}

store_err st_run_durable(store *s, int argc, const char **argv, const size_t *lens,
                         redisReply **out, char *err, size_t cap)
{
    return st_exec(s, argc, argv, lens, out, TIMEOUT_MS, 1, err, cap);
}

store_err store_ping(store *s, char *err, size_t errcap)
{
    const char *argv[] = {"PING"};
    redisReply *r;
    store_err e = st_run(s, 1, argv, NULL, &r, err, errcap);

    if (r)
        freeReplyObject(r);
    return e;
}

int store_writable(store *s, char *err, size_t errcap)
{
    const char *argv[] = {"ROLE"};
    redisReply *r;
    long long replicas;

    if (st_run(s, 1, argv, NULL, &r, err, errcap) != STORE_OK)
        return 0;
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 ||
        r->element[0]->type != REDIS_REPLY_STRING || strcmp(r->element[0]->str, "master") != 0) {
        st_fail(STORE_ERR_UNAVAILABLE, err, errcap, "redis at the primary's address is a replica");
        freeReplyObject(r);
        st_suspect(s, "a replica where the primary should be");
        return 0;
    }
    /* [master, offset, [[ip, port, offset], ...]]: replicas connected now */
    replicas = r->element[2]->type == REDIS_REPLY_ARRAY ? (long long)r->element[2]->elements : 0;
    freeReplyObject(r);
    if (replicas < s->replicas) {
        st_fail(STORE_ERR_UNAVAILABLE, err, errcap,
                "the primary has %lld replicas connected and writes wait for %d", replicas,
                s->replicas);
        return 0;
    }
    return 1;
}

void st_arg(st_args *a, const char *s)
{
    a->v[a->n] = s;
    a->len[a->n++] = strlen(s);
}

void st_arg_bin(st_args *a, const void *p, size_t n)
{
    a->v[a->n] = p;
    a->len[a->n++] = n;
}

void st_arg_i64(st_args *a, int64_t x)
{
    snprintf(a->num[a->n], sizeof(a->num[0]), "%" PRId64, x);
    st_arg(a, a->num[a->n]);
}

void st_arg_u64(st_args *a, uint64_t x)
{
    snprintf(a->num[a->n], sizeof(a->num[0]), "%" PRIu64, x);
    st_arg(a, a->num[a->n]);
}

store_err st_run_args(store *s, st_args *a, redisReply **r, char *err, size_t cap)
{
    return st_exec(s, a->n, a->v, a->len, r, a->timeout_ms ? a->timeout_ms : TIMEOUT_MS, a->durable,
                   err, cap);
}

static store_err int_reply(redisReply *r, uint64_t *v, char *err, size_t cap)
{
    store_err e = STORE_OK;

    if (r->type == REDIS_REPLY_INTEGER && r->integer >= 0)
        *v = (uint64_t)r->integer;
    else
        e = st_fail(STORE_ERR_PROTOCOL, err, cap, "redis: want an integer reply");
    freeReplyObject(r);
    return e;
}

/* --- scripts ------------------------------------------------------------- */

/*
 * Lua shared by the scripts that write delisting notices: one notice on
 * the platform's stream (trimmed to the retention window by stream id
 * time), its entry in the platform's notice log (never trimmed: the
 * compliance record) and its acknowledgement state "listings acked
 * complete_ms delisted_unix".
 */
#define LUA_NOTICE                                                                                 \
    "local function notice(plat, cert, batch, status, reason, when, rev, ids, i, last, keep,\n"    \
    "                      actor)\n"                                                               \
    "  local t = redis.call('TIME')\n"                                                             \
    "  local minid = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(keep)\n" \
    "  if minid < 0 then minid = 0 end\n"                                                          \
    "  local listed = table.concat(ids, '\\n', i, last)\n"                                         \
    "  local id = redis.call('XADD', '{tc}:notices:' .. plat, 'MINID', '~', minid, '*',\n"         \
    "    'platform', plat, 'cert', cert, 'batch', batch, 'status', status, 'reason', reason,\n"    \
    "    'effective', when, 'rev', rev, 'listings', listed)\n"                                     \
    "  redis.call('ZADD', '{tc}:notice-log:' .. plat, tonumber(string.match(id, '^%d+')), id)\n"   \
    "  redis.call('HSET', '{tc}:notice-state:' .. plat, id, (last - i + 1) .. ' 0 0 0')\n"         \
    "  audit('delist', actor, cert, 'platform ' .. plat .. '\\nnotice ' .. id .. '\\nbatch ' ..\n" \
    "    batch .. '\\nstatus ' .. status .. '\\neffective ' .. when .. '\\nreason ' .. reason "    \
    "..\n"                                                                                         \
    "    '\\nlistings ' .. (last - i + 1) .. '\\n' .. listed)\n"                                   \
    "end\n"

/*
 * Write a record's fields and log its full new contents on the stream.
 * For a certificate whose status goes to SUSPENDED or REVOKED, or back to
 * VALID from one of them, also write one delisting notice per platform
 * with listings under it (at most STORE_NOTICE_LISTINGS ids a notice) on
 * that platform's notice stream - in the same atomic step as the change.
 * The audit log gets the record's new contents, then its notices.
 * KEYS: record, rev, stream. ARGV: type, id, maxlen, must_exist,
 * notice_retention_ms, actor, f1, v1, ... Returns {revision, notices}.
 */
static const char lua_put[] = LUA_AUDIT LUA_NOTICE LUA_IDEM_BEGIN
    "if ARGV[4] == '1' and redis.call('EXISTS', KEYS[1]) == 0 then\n"
    "  return redis.error_reply('NOTFOUND ' .. ARGV[1] .. ' ' .. ARGV[2] .. ' does not exist')\n"
    "end\n"
    "local before = redis.call('HGET', KEYS[1], 'status')\n"
    "local rev = redis.call('INCR', KEYS[2])\n"
    "local kv = {}\n"
    "for i = 7, #ARGV do kv[#kv + 1] = ARGV[i] end\n"
    "redis.call('HSET', KEYS[1], 'rev', rev, unpack(kv))\n"
    "local all = redis.call('HGETALL', KEYS[1])\n"
    "redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*', 'type', ARGV[1], 'id', ARGV[2],\n"
    "           unpack(all))\n"
    "local lines = {}\n"
    "for i = 1, #all, 2 do lines[#lines + 1] = all[i] .. ' ' .. all[i + 1] end\n"
    "audit(ARGV[1] == 'mfr' and 'manufacturer' or ARGV[1], ARGV[6], ARGV[2],\n"
    "  table.concat(lines, '\\n'))\n"
    "local notices = 0\n"
    "if ARGV[1] == 'cert' then\n"
    "  local after = redis.call('HGET', KEYS[1], 'status')\n"
    "  local down = after == '2' or after == '3'\n"
    "  local back = after == '1' and (before == '2' or before == '3')\n"
    "  if after ~= before and (down or back) then\n"
    "    local cert = ARGV[2]\n"
    "    local reason = redis.call('HGET', KEYS[1], 'reason') or ''\n"
    "    local when = redis.call('HGET', KEYS[1], 'updated') or '0'\n"
    "    for _, plat in ipairs(redis.call('SMEMBERS', '{tc}:cert-platforms:' .. cert)) do\n"
    "      local ids = redis.call('SMEMBERS', '{tc}:cert-listings:' .. cert .. ':' .. plat)\n"
    "      for i = 1, #ids, " STORE_NOTICE_LISTINGS_STR " do\n"
    "        local last = math.min(i + " STORE_NOTICE_LISTINGS_STR " - 1, #ids)\n"
    "        notice(plat, cert, '0', after, reason, when, rev, ids, i, last, ARGV[5], ARGV[6])\n"
    "        notices = notices + 1\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return {rev, notices}\n" LUA_IDEM_END;

/* {revision, notices} from lua_put. */
static store_err put_reply(redisReply *r, uint64_t *rev, uint32_t *notices, char *err, size_t cap)
{
    store_err e = STORE_OK;

    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[0]->type == REDIS_REPLY_INTEGER && r->element[1]->type == REDIS_REPLY_INTEGER) {
        *rev = (uint64_t)r->element[0]->integer;
        if (notices)
            *notices = (uint32_t)r->element[1]->integer;
    } else {
        e = st_fail(STORE_ERR_PROTOCOL, err, cap, "redis: want {revision, notices}");
    }
    freeReplyObject(r);
    return e;
}

/* KEYS: product, cert, mfr, rev, stream.
 * ARGV: maxlen, product_id, caller, cert, category, brand, model, gtin, now
 * Returns {revision, product_id, registered}. */
static const char lua_product[] = LUA_IDEM_BEGIN
    "local c = redis.call('HMGET', KEYS[2], 'status', 'holder', 'cats', 'valid_until')\n"
    "if not c[1] then return redis.error_reply('PRECONDITION certificate ' .. ARGV[4] ..\n"
    "  ' is not registered') end\n"
    "local names = {['2'] = 'suspended', ['3'] = 'revoked', ['4'] = 'expired'}\n"
    "if c[1] ~= '1' then return redis.error_reply('PRECONDITION certificate ' .. ARGV[4] ..\n"
    "  ' is ' .. (names[c[1]] or 'not valid')) end\n"
    "local vu = tonumber(c[4] or '0')\n"
    "if vu > 0 and vu < tonumber(ARGV[9]) then return redis.error_reply('PRECONDITION ' ..\n"
    "  'certificate ' .. ARGV[4] .. ' has expired') end\n"
    "if c[2] ~= ARGV[3] then return redis.error_reply('PRECONDITION certificate ' .. ARGV[4] ..\n"
    "  ' is not held by ' .. ARGV[3]) end\n"
    "local covered = false\n"
    "for cat in string.gmatch(c[3] or '', '[^,]+') do if cat == ARGV[5] then covered = true end "
    "end\n"
    "if not covered then return redis.error_reply('PRECONDITION certificate ' .. ARGV[4] ..\n"
    "  ' does not cover category ' .. ARGV[5]) end\n"
    "local m = redis.call('HGET', KEYS[3], 'status')\n"
    "if not m then return redis.error_reply('PRECONDITION manufacturer ' .. ARGV[3] ..\n"
    "  ' is not registered') end\n"
    "if m ~= '1' then return redis.error_reply('PRECONDITION manufacturer ' .. ARGV[3] ..\n"
    "  ' is suspended') end\n"
    "local rev = redis.call('INCR', KEYS[4])\n"
    "redis.call('HSET', KEYS[1], 'rev', rev, 'cert', ARGV[4], 'mfr', ARGV[3], 'category', "
    "ARGV[5],\n"
    "  'brand', ARGV[6], 'model', ARGV[7], 'gtin', ARGV[8], 'registered', ARGV[9])\n"
    "redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[1], '*', 'type', 'product', 'id', ARGV[2],\n"
    "  unpack(redis.call('HGETALL', KEYS[1])))\n"
    "return {rev, ARGV[2], tonumber(ARGV[9])}\n" LUA_IDEM_END;

/* KEYS: batch, product, rev, stream, cert, mfr.
 * ARGV: maxlen, batch_id, caller, product_id, quantity, key_id, profile, issued,
 *       manifest, signature, manifest_kid, request_id
 * Returns {batch_id, revision}. */
static const char lua_batch[] = LUA_AUDIT LUA_IDEM_BEGIN
    "local p = redis.call('HMGET', KEYS[2], 'mfr', 'cert')\n"
    "if not p[1] then return redis.error_reply('NOTFOUND product ' .. ARGV[4] ..\n"
    "  ' does not exist') end\n"
    "if p[1] ~= ARGV[3] then return redis.error_reply('DENIED product ' .. ARGV[4] ..\n"
    "  ' belongs to another manufacturer') end\n"
    "local cs = redis.call('HGET', KEYS[5], 'status')\n"
    "if cs ~= '1' then return redis.error_reply('PRECONDITION certificate ' .. p[2] ..\n"
    "  ' is not valid') end\n"
    "if redis.call('HGET', KEYS[6], 'status') ~= '1' then\n"
    "  return redis.error_reply('PRECONDITION manufacturer ' .. ARGV[3] .. ' is suspended') end\n"
    "local rev = redis.call('INCR', KEYS[3])\n"
    "redis.call('HSET', KEYS[1], 'rev', rev, 'product', ARGV[4], 'issuer', ARGV[3],\n"
    "  'cert', p[2], 'quantity', ARGV[5], 'key_id', ARGV[6], 'profile', ARGV[7],\n"
    "  'issued', ARGV[8], 'manifest', ARGV[9], 'signature', ARGV[10],\n"
    "  'manifest_kid', ARGV[11], 'request_id', ARGV[12])\n"
    "redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[1], '*', 'type', 'batch', 'id', ARGV[2],\n"
    "  'rev', rev, 'product', ARGV[4], 'quantity', ARGV[5], 'key_id', ARGV[6],\n"
    "  'profile', ARGV[7], 'issued', ARGV[8])\n"
    "audit('issue', 'manufacturer:' .. ARGV[3], ARGV[2], ARGV[9] .. '\\nsignature ' ..\n"
    "  string.gsub(ARGV[10], '.', function(ch) return string.format('%02x', string.byte(ch)) end)\n"
    "  .. '\\nsignature_key ' .. ARGV[11])\n"
    "return {tonumber(ARGV[2]), rev}\n" LUA_IDEM_END;

/* KEYS: batch, recalls, rev, stream.
 * ARGV: maxlen, batch_id, caller, first, last, reason, now, notice_retention_ms,
 *       affected (kept with the outcome)
 * Also writes, in the same step, one notice per platform whose listings
 * carry recalled serials of the batch. Returns {revision, notices, affected}. */
static const char lua_recall[] = LUA_AUDIT LUA_NOTICE LUA_IDEM_BEGIN
    "local b = redis.call('HMGET', KEYS[1], 'issuer', 'quantity', 'cert')\n"
    "if not b[1] then return redis.error_reply('NOTFOUND batch ' .. ARGV[2] ..\n"
    "  ' does not exist') end\n"
    "if b[1] ~= ARGV[3] then return redis.error_reply('DENIED batch ' .. ARGV[2] ..\n"
    "  ' belongs to another manufacturer') end\n"
    "if tonumber(ARGV[5]) >= tonumber(b[2]) then return redis.error_reply('ARG last_serial ' ..\n"
    "  ARGV[5] .. ' is beyond the batch quantity ' .. b[2]) end\n"
    "local rev = redis.call('INCR', KEYS[3])\n"
    "redis.call('RPUSH', KEYS[2], ARGV[4] .. ' ' .. ARGV[5] .. ' ' .. ARGV[6])\n"
    "redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[1], '*', 'type', 'recall', 'id', ARGV[2],\n"
    "  'rev', rev, 'first', ARGV[4], 'last', ARGV[5], 'reason', ARGV[6])\n"
    "local first, last, notices = tonumber(ARGV[4]), tonumber(ARGV[5]), 0\n"
    "local actor = 'manufacturer:' .. ARGV[3]\n"
    "audit('recall', actor, ARGV[2], 'batch ' .. ARGV[2] .. '\\ncertificate ' .. b[3] ..\n"
    "  '\\nfirst_serial ' .. ARGV[4] .. '\\nlast_serial ' .. ARGV[5] .. '\\nreason ' .. ARGV[6])\n"
    "local status = redis.call('HGET', '{tc}:cert:' .. b[3], 'status') or '0'\n"
    "for _, plat in ipairs(redis.call('SMEMBERS', '{tc}:cert-platforms:' .. b[3])) do\n"
    "  local hit = {}\n"
    "  for _, lid in ipairs(redis.call('SMEMBERS', '{tc}:batch-listings:' .. ARGV[2] .. ':' ..\n"
    "      plat)) do\n"
    "    local sn = tonumber(redis.call('HGET', '{tc}:listing:' .. plat .. ':' .. lid, 'serial'))\n"
    "    if sn and sn >= first and sn <= last then hit[#hit + 1] = lid end\n"
    "  end\n"
    "  for i = 1, #hit, " STORE_NOTICE_LISTINGS_STR " do\n"
    "    local e = math.min(i + " STORE_NOTICE_LISTINGS_STR " - 1, #hit)\n"
    "    notice(plat, b[3], ARGV[2], status, ARGV[6], ARGV[7], rev, hit, i, e, ARGV[8], actor)\n"
    "    notices = notices + 1\n"
    "  end\n"
    "end\n"
    "return {rev, notices, tonumber(ARGV[9])}\n" LUA_IDEM_END;

/* KEYS: {tc}:rev (only for routing; every key is under {tc}).
 * ARGV: platform, then per binding: listing_id, code, batch, cert, serial.
 * Listings that change are one audit entry (subject: the platform).
 * Returns per binding {other_listings, other_platforms}. */
static const char lua_bind[] = LUA_AUDIT LUA_IDEM_BEGIN
    "local plat = ARGV[1]\n"
    "local out, changed = {}, {}\n"
    "for i = 2, #ARGV, 5 do\n"
    "  local lid, code, batch, cert, serial = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3],\n"
    "    ARGV[i + 4]\n"
    "  local lk = '{tc}:listing:' .. plat .. ':' .. lid\n"
    "  local member = plat .. '\\t' .. lid\n"
    "  local old = redis.call('HMGET', lk, 'code', 'batch', 'cert')\n"
    "  if old[1] and old[1] ~= code then\n"
    "    redis.call('SREM', '{tc}:code:' .. old[1], member)\n"
    "    redis.call('SREM', '{tc}:cert-listings:' .. old[3] .. ':' .. plat, lid)\n"
    "    redis.call('SREM', '{tc}:batch-listings:' .. old[2] .. ':' .. plat, lid)\n"
    "  end\n"
    "  if old[1] ~= code then\n"
    "    redis.call('HSET', lk, 'code', code, 'batch', batch, 'cert', cert, 'serial', serial)\n"
    "    redis.call('SADD', '{tc}:code:' .. code, member)\n"
    "    redis.call('SADD', '{tc}:cert-listings:' .. cert .. ':' .. plat, lid)\n"
    "    redis.call('SADD', '{tc}:batch-listings:' .. batch .. ':' .. plat, lid)\n"
    "    redis.call('SADD', '{tc}:cert-platforms:' .. cert, plat)\n"
    "    changed[#changed + 1] = 'listing ' .. lid .. ' code ' .. code .. ' batch ' .. batch ..\n"
    "      ' certificate ' .. cert .. ' serial ' .. serial\n"
    "  end\n"
    "  local others, plats = 0, {}\n"
    "  for _, m in ipairs(redis.call('SRANDMEMBER', '{tc}:code:' .. code, 1000)) do\n"
    "    if m ~= member then\n"
    "      others = others + 1\n"
    "      local p = string.match(m, '^(.-)\\t')\n"
    "      if p ~= plat then plats[p] = true end\n"
    "    end\n"
    "  end\n"
    "  local np = 0\n"
    "  for _ in pairs(plats) do np = np + 1 end\n"
    "  out[#out + 1] = others\n"
    "  out[#out + 1] = np\n"
    "end\n"
    "if #changed > 0 then audit('listing', 'platform:' .. plat, plat, table.concat(changed, "
    "'\\n'))\n"
    "end\n"
    "return out\n" LUA_IDEM_END;

/* --- rate limits ------------------------------------------------------------ */

/* KEYS: the bucket. ARGV: interval_us, tolerance_us. Returns the wait in
 * microseconds, 0 when the event was allowed (and counted). */
static const char lua_gcra[] = "local t = redis.call('TIME')\n"
                               "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
                               "local tat = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
                               "if tat < now then tat = now end\n"
                               "local new = tat + tonumber(ARGV[1])\n"
                               "local wait = new - tonumber(ARGV[2]) - now\n"
                               "if wait > 0 then return wait end\n"
                               "redis.call('SET', KEYS[1], string.format('%d', new), 'PX',\n"
                               "  math.floor((new - now) / 1000) + 1000)\n"
                               "return 0\n";

store_err store_gcra(store *s, const char *key, int64_t interval_us, int64_t tolerance_us,
                     int64_t *retry_us, char *err, size_t errcap)
{
    st_args a;
    redisReply *r;
    store_err e;

    uint64_t wait = 0;

    st_script(&a, lua_gcra, 1);
    st_arg(&a, key);
    st_arg_i64(&a, interval_us);
    st_arg_i64(&a, tolerance_us);
    e = st_run_args(s, &a, &r, err, errcap);
    if (!e)
        e = int_reply(r, &wait, err, errcap);
    *retry_us = (int64_t)wait;
    return e;
}

/* --- idempotency ---------------------------------------------------------- */

void st_idem_parts(const store_idem *idem, char *key, char fp[65], char ttl[24])
{
    static const char hex[] = "0123456789abcdef";
    size_t i;

    snprintf(ttl, 24, "%d", STORE_IDEM_TTL_S);
    if (!idem || !idem->request_id || !idem->request_id[0]) {
        snprintf(key, STORE_IDEM_KEY_MAX, "{tc}:idem:-");
        fp[0] = '\0';
        return;
    }
    snprintf(key, STORE_IDEM_KEY_MAX, "{tc}:idem:%s:%s", idem->scope, idem->request_id);
    for (i = 0; i < 32; i++) {
        fp[2 * i] = hex[idem->fp[i] >> 4];
        fp[2 * i + 1] = hex[idem->fp[i] & 15];
    }
    fp[64] = '\0';
}

void st_script_idem(st_args *a, const char *lua, int nkeys, const store_idem *idem)
{
    st_idem_parts(idem, a->idem_key, a->idem_fp, a->idem_ttl);
    st_script(a, lua, nkeys + 1);
    a->durable = 1; /* acknowledged only once on the replicas (WAIT) */
    st_arg(a, a->idem_key);
}

void st_idem_argv(st_args *a)
{
    st_arg(a, a->idem_fp);
    st_arg(a, a->idem_ttl);
}

store_err st_idem_reply(redisReply **r, store_idem *idem, char *err, size_t cap)
{
    redisReply *w = *r, *out;

    if (w->type != REDIS_REPLY_ARRAY || w->elements != 2 ||
        w->element[0]->type != REDIS_REPLY_INTEGER) {
        freeReplyObject(w);
        *r = NULL;
        return st_fail(STORE_ERR_PROTOCOL, err, cap, "redis: want {ran, outcome} from a write");
    }
    if (idem)
        idem->replayed = w->element[0]->integer == 0;
    out = w->element[1];
    w->element[1] = NULL; /* detached: freed by the caller */
    freeReplyObject(w);
    *r = out;
    return STORE_OK;
}

/* Run a wrapped write script and unwrap its outcome. */
store_err st_run_write(store *s, st_args *a, store_idem *idem, redisReply **r, char *err,
                       size_t cap)
{
    store_err e = st_run_args(s, a, r, err, cap);

    return e ? e : st_idem_reply(r, idem, err, cap);
}

static void key_of(char *out, size_t cap, const char *type, const char *id)
{
    snprintf(out, cap, "{tc}:%s:%s", type, id);
}

void st_script(st_args *a, const char *lua, int nkeys)
{
    a->n = 0;
    a->timeout_ms = 0;
    a->durable = 0;
    st_arg(a, "EVAL");
    st_arg(a, lua);
    st_arg_i64(a, nkeys);
}

/* --- writes -------------------------------------------------------------- */

store_err store_put_mfr(store *s, store_idem *idem, const char *actor, const char *credit_code,
                        const char *name, int status, uint64_t *rev, char *err, size_t errcap)
{
    char key[128];
    st_args a;
    redisReply *r;
    store_err e;

    key_of(key, sizeof(key), "mfr", credit_code);
    st_script_idem(&a, lua_put, 3, idem);
    st_arg(&a, key);
    st_arg(&a, K_REV);
    st_arg(&a, K_STREAM);
    st_idem_argv(&a);
    st_arg(&a, "mfr");
    st_arg(&a, credit_code);
    st_arg_i64(&a, STORE_STREAM_MAXLEN);
    st_arg(&a, "0");
    st_arg_i64(&a, s->notice_retention_ms);
    st_arg(&a, actor);
    st_arg(&a, "name");
    st_arg(&a, name);
    st_arg(&a, "status");
    st_arg_i64(&a, status);
    e = st_run_write(s, &a, idem, &r, err, errcap);
    return e ? e : put_reply(r, rev, NULL, err, errcap);
}

static void join_cats(const rep_cert_fields *f, char *out, size_t cap)
{
    size_t i, o = 0;

    out[0] = '\0';
    for (i = 0; i < f->ncat; i++) {
        int n = snprintf(out + o, cap - o, "%s%s", i ? "," : "", f->cat[i]);
        if (n < 0 || (size_t)n >= cap - o)
            return;
        o += (size_t)n;
    }
}

store_err store_put_cert(store *s, store_idem *idem, const char *actor, const rep_cert_fields *f,
                         uint64_t *rev, uint32_t *notices, char *err, size_t errcap)
{
    char key[128], cats[REP_CATEGORIES_MAX * (REP_CATEGORY_MAX + 1) + 1];
    st_args a;
    redisReply *r;
    store_err e;

    key_of(key, sizeof(key), "cert", f->number);
    join_cats(f, cats, sizeof(cats));
    st_script_idem(&a, lua_put, 3, idem);
    st_arg(&a, key);
    st_arg(&a, K_REV);
    st_arg(&a, K_STREAM);
    st_idem_argv(&a);
    st_arg(&a, "cert");
    st_arg(&a, f->number);
    st_arg_i64(&a, STORE_STREAM_MAXLEN);
    st_arg(&a, "0");
    st_arg_i64(&a, s->notice_retention_ms);
    st_arg(&a, actor);
    a.timeout_ms = FANOUT_TIMEOUT_MS;
    st_arg(&a, "kind");
    st_arg_i64(&a, f->kind);
    st_arg(&a, "holder");
    st_arg(&a, f->holder);
    st_arg(&a, "cats");
    st_arg(&a, cats);
    st_arg(&a, "status");
    st_arg_i64(&a, f->status);
    st_arg(&a, "reason");
    st_arg(&a, f->reason);
    st_arg(&a, "valid_until");
    st_arg_i64(&a, f->valid_until);
    st_arg(&a, "updated");
    st_arg_i64(&a, f->updated);
    e = st_run_write(s, &a, idem, &r, err, errcap);
    return e ? e : put_reply(r, rev, notices, err, errcap);
}

store_err store_set_cert_status(store *s, store_idem *idem, const char *actor, const char *number,
                                int status, const char *reason, int64_t now, uint64_t *rev,
                                uint32_t *notices, char *err, size_t errcap)
{
    char key[128];
    st_args a;
    redisReply *r;
    store_err e;

    key_of(key, sizeof(key), "cert", number);
    st_script_idem(&a, lua_put, 3, idem);
    st_arg(&a, key);
    st_arg(&a, K_REV);
    st_arg(&a, K_STREAM);
    st_idem_argv(&a);
    st_arg(&a, "cert");
    st_arg(&a, number);
    st_arg_i64(&a, STORE_STREAM_MAXLEN);
    st_arg(&a, "1");
    st_arg_i64(&a, s->notice_retention_ms);
    st_arg(&a, actor);
    a.timeout_ms = FANOUT_TIMEOUT_MS;
    st_arg(&a, "status");
    st_arg_i64(&a, status);
    st_arg(&a, "reason");
    st_arg(&a, reason);
    st_arg(&a, "updated");
    st_arg_i64(&a, now);
    e = st_run_write(s, &a, idem, &r, err, errcap);
    return e ? e : put_reply(r, rev, notices, err, errcap);
}

static store_err incr(store *s, const char *key, uint64_t *v, char *err, size_t errcap)
{
    const char *argv[] = {"INCR", key};
    redisReply *r;
    store_err e = st_run(s, 2, argv, NULL, &r, err, errcap);

    return e ? e : int_reply(r, v, err, errcap);
}

store_err store_register_product(store *s, store_idem *idem, const store_product_req *q,
                                 char product_id[REP_PRODUCT_ID_MAX + 1], int64_t *registered,
                                 uint64_t *rev, char *err, size_t errcap)
{
    char kp[128], kc[128], km[128];
    uint64_t n = 0;
    st_args a;
    redisReply *r;
    store_err e = incr(s, K_SEQ_PRODUCT, &n, err, errcap);

    if (e)
        return e;
    snprintf(product_id, REP_PRODUCT_ID_MAX + 1, "P%" PRIu64, n);
    key_of(kp, sizeof(kp), "product", product_id);
    key_of(kc, sizeof(kc), "cert", q->cert_number);
    key_of(km, sizeof(km), "mfr", q->caller);
    st_script_idem(&a, lua_product, 5, idem);
    st_arg(&a, kp);
    st_arg(&a, kc);
    st_arg(&a, km);
    st_arg(&a, K_REV);
    st_arg(&a, K_STREAM);
    st_idem_argv(&a);
    st_arg_i64(&a, STORE_STREAM_MAXLEN);
    st_arg(&a, product_id);
    st_arg(&a, q->caller);
    st_arg(&a, q->cert_number);
    st_arg(&a, q->category);
    st_arg(&a, q->brand);
    st_arg(&a, q->model);
    st_arg(&a, q->gtin ? q->gtin : "");
    st_arg_i64(&a, q->now);
    e = st_run_write(s, &a, idem, &r, err, errcap);
    if (e)
        return e;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        r->element[0]->type != REDIS_REPLY_INTEGER || r->element[1]->type != REDIS_REPLY_STRING ||
        r->element[1]->len > REP_PRODUCT_ID_MAX || r->element[2]->type != REDIS_REPLY_INTEGER) {
        freeReplyObject(r);
        return st_fail(STORE_ERR_PROTOCOL, err, errcap,
                       "redis: unexpected reply to product script");
    }
    *rev = (uint64_t)r->element[0]->integer;
    memcpy(product_id, r->element[1]->str, r->element[1]->len);
    product_id[r->element[1]->len] = '\0';
    *registered = r->element[2]->integer;
    freeReplyObject(r);
    return STORE_OK;
}

store_err store_next_batch_id(store *s, uint64_t *id, char *err, size_t errcap)
{
    store_err e = incr(s, K_SEQ_BATCH, id, err, errcap);

    if (!e && *id > REP_BATCH_ID_MAX)
        e = st_fail(STORE_ERR_PRECONDITION, err, errcap, "batch ids exhausted (%" PRIu64 ")", *id);
    return e;
}

store_err store_create_batch(store *s, store_idem *idem, store_batch *b, uint64_t *rev, char *err,
                             size_t errcap)
{
    char kb[128], kp[128], kc[128], km[128], id[24];
    st_args a;
    redisReply *r;
    store_err e;
    uint64_t first;

    snprintf(id, sizeof(id), "%" PRIu64, b->id);
    key_of(kb, sizeof(kb), "batch", id);
    key_of(kp, sizeof(kp), "product", b->product_id);
    key_of(kc, sizeof(kc), "cert", b->cert_number);
    key_of(km, sizeof(km), "mfr", b->issuer);
    st_script_idem(&a, lua_batch, 6, idem);
    st_arg(&a, kb);
    st_arg(&a, kp);
    st_arg(&a, K_REV);
    st_arg(&a, K_STREAM);
    st_arg(&a, kc);
    st_arg(&a, km);
    st_idem_argv(&a);
    st_arg_i64(&a, STORE_STREAM_MAXLEN);
    st_arg(&a, id);
    st_arg(&a, b->issuer);
    st_arg(&a, b->product_id);
    st_arg_i64(&a, b->quantity);
    st_arg_i64(&a, b->key_id);
    st_arg_i64(&a, b->profile);
    st_arg_i64(&a, b->issued);
    st_arg_bin(&a, b->manifest, b->manifest_len);
    st_arg_bin(&a, b->signature, sizeof(b->signature));
    st_arg_i64(&a, b->manifest_key_id);
    st_arg(&a, b->request_id);
    e = st_run_write(s, &a, idem, &r, err, errcap);
    if (e)
        return e;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_INTEGER || r->element[1]->type != REDIS_REPLY_INTEGER) {
        freeReplyObject(r);
        return st_fail(STORE_ERR_PROTOCOL, err, errcap, "redis: unexpected reply to batch script");
    }
    first = (uint64_t)r->element[0]->integer;
    *rev = (uint64_t)r->element[1]->integer;
    freeReplyObject(r);
    return first == b->id ? STORE_OK : store_get_batch(s, first, b, err, errcap);
}

/* Field lookup in a flat name/value array of replies. */
static const redisReply *field(redisReply **el, size_t n, const char *name)
{
    size_t i;

    for (i = 0; i + 1 < n; i += 2)
        if (el[i]->type == REDIS_REPLY_STRING && strcmp(el[i]->str, name) == 0)
            return el[i + 1];
    return NULL;
}

static void copy_field(char *dst, size_t cap, redisReply **el, size_t n, const char *name)
{
    const redisReply *v = field(el, n, name);
    size_t len = v && v->type == REDIS_REPLY_STRING ? v->len : 0;

    if (len >= cap)
        len = cap - 1;
    if (len)
        memcpy(dst, v->str, len);
    dst[len] = '\0';
}

static int64_t num_field(redisReply **el, size_t n, const char *name)
{
    const redisReply *v = field(el, n, name);

    return v && v->type == REDIS_REPLY_STRING ? strtoll(v->str, NULL, 10) : 0;
}

store_err store_get_batch(store *s, uint64_t id, store_batch *b, char *err, size_t errcap)
{
    char key[64], sid[24];
    const char *argv[2] = {"HGETALL", key};
    const redisReply *v;
    redisReply *r;
    store_err e;

    snprintf(sid, sizeof(sid), "%" PRIu64, id);
    key_of(key, sizeof(key), "batch", sid);
    e = st_run(s, 2, argv, NULL, &r, err, errcap);
    if (e)
        return e;
    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
        freeReplyObject(r);
        return st_fail(STORE_ERR_NOTFOUND, err, errcap, "batch %" PRIu64 " does not exist", id);
    }
    memset(b, 0, sizeof(*b));
    b->id = id;
    copy_field(b->product_id, sizeof(b->product_id), r->element, r->elements, "product");
    copy_field(b->issuer, sizeof(b->issuer), r->element, r->elements, "issuer");
    copy_field(b->cert_number, sizeof(b->cert_number), r->element, r->elements, "cert");
    copy_field(b->request_id, sizeof(b->request_id), r->element, r->elements, "request_id");
    b->quantity = (uint32_t)num_field(r->element, r->elements, "quantity");
    b->key_id = (unsigned)num_field(r->element, r->elements, "key_id");
    b->profile = (int)num_field(r->element, r->elements, "profile");
    b->issued = num_field(r->element, r->elements, "issued");
    b->manifest_key_id = (unsigned)num_field(r->element, r->elements, "manifest_kid");
    v = field(r->element, r->elements, "manifest");
    if (v && v->type == REDIS_REPLY_STRING && v->len <= sizeof(b->manifest)) {
        memcpy(b->manifest, v->str, v->len);
        b->manifest_len = v->len;
    }
    v = field(r->element, r->elements, "signature");
    if (v && v->type == REDIS_REPLY_STRING && v->len == sizeof(b->signature))
        memcpy(b->signature, v->str, v->len);
    freeReplyObject(r);
    return STORE_OK;
}

store_err store_recall(store *s, store_idem *idem, const char *caller, uint64_t batch_id,
                       uint32_t first, uint32_t last, const char *reason, int64_t now,
                       uint64_t *affected, uint64_t *rev, uint32_t *notices, char *err,
                       size_t errcap)
{
    char kb[64], kr[64], id[24];
    st_args a;
    redisReply *r;
    store_err e;

    if (first > last)
        return st_fail(STORE_ERR_ARG, err, errcap, "first_serial %u is after last_serial %u", first,
                       last);
    snprintf(id, sizeof(id), "%" PRIu64, batch_id);
    key_of(kb, sizeof(kb), "batch", id);
    key_of(kr, sizeof(kr), "recalls", id);
    st_script_idem(&a, lua_recall, 4, idem);
    st_arg(&a, kb);
    st_arg(&a, kr);
    st_arg(&a, K_REV);
    st_arg(&a, K_STREAM);
    st_idem_argv(&a);
    st_arg_i64(&a, STORE_STREAM_MAXLEN);
    st_arg(&a, id);
    st_arg(&a, caller);
    st_arg_u64(&a, first);
    st_arg_u64(&a, last);
    st_arg(&a, reason);
    st_arg_i64(&a, now);
    st_arg_i64(&a, s->notice_retention_ms);
    st_arg_u64(&a, *affected);
    a.timeout_ms = FANOUT_TIMEOUT_MS;
    e = st_run_write(s, &a, idem, &r, err, errcap);
    if (e)
        return e;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        r->element[0]->type != REDIS_REPLY_INTEGER || r->element[1]->type != REDIS_REPLY_INTEGER ||
        r->element[2]->type != REDIS_REPLY_INTEGER) {
        freeReplyObject(r);
        return st_fail(STORE_ERR_PROTOCOL, err, errcap, "redis: unexpected reply to recall script");
    }
    *rev = (uint64_t)r->element[0]->integer;
    if (notices)
        *notices = (uint32_t)r->element[1]->integer;
    *affected = (uint64_t)r->element[2]->integer;
    freeReplyObject(r);
    return STORE_OK;
}

store_err store_bind_listings(store *s, store_idem *idem, const char *platform, store_binding *b,
                              size_t n, char *err, size_t errcap)
{
    char ik[STORE_IDEM_KEY_MAX], fp[65], ttl[24];
    const char **argv;
    size_t *lens, argc = 8 + 5 * n, i, k;
    char(*nums)[2][24];
    redisReply *r;
    store_err e;

    if (n == 0)
        return STORE_OK;
    if (n > STORE_BINDINGS_MAX)
        return st_fail(STORE_ERR_ARG, err, errcap, "at most %d bindings per call",
                       STORE_BINDINGS_MAX);
    argv = malloc(argc * sizeof(*argv));
    lens = malloc(argc * sizeof(*lens));
    nums = malloc(n * sizeof(*nums));
    if (!argv || !lens || !nums) {
        free(argv);
        free(lens);
        free(nums);
        return st_fail(STORE_ERR_NOMEM, err, errcap, "out of memory");
    }
    st_idem_parts(idem, ik, fp, ttl);
    argv[0] = "EVAL";
    argv[1] = lua_bind;
    argv[2] = "2"; /* keys under {tc}, so a cluster routes the script to that slot */
    argv[3] = ik;
    argv[4] = K_REV;
    argv[5] = fp;
    argv[6] = ttl;
    argv[7] = platform;
    for (i = 0, k = 8; i < n; i++) {
        snprintf(nums[i][0], sizeof(nums[i][0]), "%" PRIu64, b[i].batch);
        snprintf(nums[i][1], sizeof(nums[i][1]), "%" PRIu32, b[i].serial);
        argv[k++] = b[i].listing_id;
        argv[k++] = b[i].code;
        argv[k++] = nums[i][0];
        argv[k++] = b[i].cert_number;
        argv[k++] = nums[i][1];
    }
    for (i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    e = st_run_durable(s, (int)argc, argv, lens, &r, err, errcap);
    free(argv);
    free(lens);
    free(nums);
    if (!e)
        e = st_idem_reply(&r, idem, err, errcap);
    if (e)
        return e;
    /* A replay answers with the first call's bindings, which are these
     * unless a code became bindable in between: only what both hold. */
    if (r->type != REDIS_REPLY_ARRAY ||
        (r->elements != 2 * n && !(idem && idem->replayed && r->elements % 2 == 0))) {
        freeReplyObject(r);
        return st_fail(STORE_ERR_PROTOCOL, err, errcap, "redis: unexpected reply to bind script");
    }
    for (i = 0; i < n && 2 * i + 1 < r->elements; i++) {
        b[i].other_listings = (uint32_t)r->element[2 * i]->integer;
        b[i].other_platforms = (uint32_t)r->element[2 * i + 1]->integer;
    }
    freeReplyObject(r);
    return STORE_OK;
}

/* --- applying records to the replica ------------------------------------- */

/* A record as name/value pairs (from HGETALL or a stream entry). */
typedef struct rec {
    redisReply **el;
    size_t n;
} rec;

static const char *str(const rec *x, const char *name)
{
    const redisReply *v = field(x->el, x->n, name);
    return v && v->type == REDIS_REPLY_STRING ? v->str : "";
}

static int64_t num(const rec *x, const char *name)
{
    return num_field(x->el, x->n, name);
}

static rep_err apply(rep *r, const char *type, const char *id, const rec *x)
{
    if (strcmp(type, "mfr") == 0)
        return rep_put_mfr(r, id, str(x, "name"), (int)num(x, "status"));
    if (strcmp(type, "cert") == 0) {
        char cats[REP_CATEGORIES_MAX * (REP_CATEGORY_MAX + 1) + 1], *p = cats, *save = NULL;
        const char *list[REP_CATEGORIES_MAX];
        const char *c = str(x, "cats");
        rep_cert_fields f;
        size_t n = 0;

        if (strlen(c) >= sizeof(cats))
            return REP_ERR_ARG;
        memcpy(cats, c, strlen(c) + 1);
        for (p = strtok_r(cats, ",", &save); p && n < REP_CATEGORIES_MAX;
             p = strtok_r(NULL, ",", &save))
            list[n++] = p;
        f.number = id;
        f.kind = (int)num(x, "kind");
        f.holder = str(x, "holder");
        f.cat = list;
        f.ncat = n;
        f.status = (int)num(x, "status");
        f.reason = str(x, "reason");
        f.valid_until = num(x, "valid_until");
        f.updated = num(x, "updated");
        return rep_put_cert(r, &f);
    }
    if (strcmp(type, "product") == 0) {
        rep_product_fields p = {id,
                                str(x, "category"),
                                str(x, "brand"),
                                str(x, "model"),
                                str(x, "gtin"),
                                num(x, "registered")};
        return rep_put_product(r, &p, str(x, "cert"), str(x, "mfr"));
    }
    if (strcmp(type, "batch") == 0)
        return rep_put_batch(r, strtoull(id, NULL, 10), str(x, "product"),
                             (uint32_t)num(x, "quantity"), (unsigned)num(x, "key_id"),
                             (int)num(x, "profile"), num(x, "issued"));
    if (strcmp(type, "recall") == 0)
        return rep_put_recall(r, strtoull(id, NULL, 10), (uint32_t)num(x, "first"),
                              (uint32_t)num(x, "last"), str(x, "reason"));
    if (strcmp(type, "key") == 0) {
        const char *st = str(x, "state");
        int state = strcmp(st, "active") == 0        ? REP_KEY_ACTIVE
                    : strcmp(st, "compromised") == 0 ? REP_KEY_COMPROMISED
                                                     : REP_KEY_VERIFY_ONLY;
        return rep_put_key(r, (unsigned)strtoul(id, NULL, 10), (int)num(x, "kind"), state,
                           num(x, "activated"), num(x, "since"));
    }
    return REP_ERR_ARG;
}

/* --- snapshot ------------------------------------------------------------ */

/* Every key matching pattern, HGETALL'd (or LRANGE'd) and applied. */
static store_err load_type(store *s, rep *r, const char *type, char *err, size_t errcap)
{
    char pattern[64], cursor[32] = "0";
    int reused;
    unsigned gen;
    redisContext *c = pool_get(s, &reused, &gen, err, errcap);
    size_t prefix;

    if (!c)
        return STORE_ERR_UNAVAILABLE;
    snprintf(pattern, sizeof(pattern), "{tc}:%s:*", type);
    prefix = strlen(pattern) - 1;
    do {
        redisReply *sc = redisCommand(c, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
        size_t i;

        if (!sc || sc->type != REDIS_REPLY_ARRAY || sc->elements != 2) {
            if (sc)
                freeReplyObject(sc);
            st_fail(STORE_ERR_UNAVAILABLE, err, errcap, "redis scan failed: %s",
                    c->err ? c->errstr : "bad reply");
            pool_put(s, c, gen);
            return STORE_ERR_UNAVAILABLE;
        }
        snprintf(cursor, sizeof(cursor), "%s", sc->element[0]->str);
        for (i = 0; i < sc->element[1]->elements; i++)
            if (strcmp(type, "recalls") == 0)
                redisAppendCommand(c, "LRANGE %s 0 -1", sc->element[1]->element[i]->str);
            else
                redisAppendCommand(c, "HGETALL %s", sc->element[1]->element[i]->str);
        for (i = 0; i < sc->element[1]->elements; i++) {
            const char *key = sc->element[1]->element[i]->str, *id = key + prefix;
            redisReply *h = NULL;
            rep_err re = REP_OK;

            if (redisGetReply(c, (void **)&h) != REDIS_OK || !h) {
                freeReplyObject(sc);
                st_fail(STORE_ERR_UNAVAILABLE, err, errcap, "redis: %s", c->errstr);
                pool_put(s, c, gen);
                return STORE_ERR_UNAVAILABLE;
            }
            if (strcmp(type, "recalls") == 0) {
                size_t j;
                for (j = 0; j < h->elements && !re; j++) {
                    unsigned first, last;
                    int off = 0;
                    if (sscanf(h->element[j]->str, "%u %u %n", &first, &last, &off) == 2)
                        re = rep_put_recall(r, strtoull(id, NULL, 10), first, last,
                                            h->element[j]->str + off);
                }
            } else if (h->type == REDIS_REPLY_ARRAY && h->elements) {
                rec x = {h->element, h->elements};
                re = apply(r, type, id, &x);
            }
            freeReplyObject(h);
            if (re) {
                freeReplyObject(sc);
                pool_put(s, c, gen);
                return st_fail(STORE_ERR_PROTOCOL, err, errcap, "cannot load %s: %s", key,
                               rep_strerror(re));
            }
        }
        freeReplyObject(sc);
    } while (strcmp(cursor, "0") != 0);
    pool_put(s, c, gen);
    return STORE_OK;
}

store_err store_snapshot(store *s, rep *r, char *stream_id, size_t idcap, uint64_t *rev, char *err,
                         size_t errcap)
{
    static const char *types[] = {"mfr", "cert", "product", "batch", "recalls", "key"};
    const char *last[] = {"XREVRANGE", K_STREAM, "+", "-", "COUNT", "1"};
    const char *getrev[] = {"GET", K_REV};
    redisReply *x;
    store_err e;
    size_t i;

    /* Where the stream stands, then the revision, then the records. */
    e = st_run(s, 6, last, NULL, &x, err, errcap);
    if (e)
        return e;
    if (x->type == REDIS_REPLY_ARRAY && x->elements == 1)
        snprintf(stream_id, idcap, "%s", x->element[0]->element[0]->str);
    else
        snprintf(stream_id, idcap, "0-0");
    freeReplyObject(x);
    e = st_run(s, 2, getrev, NULL, &x, err, errcap);
    if (e)
        return e;
    *rev = x->type == REDIS_REPLY_STRING ? strtoull(x->str, NULL, 10) : 0;
    freeReplyObject(x);
    for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        e = load_type(s, r, types[i], err, errcap);
        if (e)
            return e;
    }
    rep_set_revision(r, *rev);
    return STORE_OK;
}

/* --- tailing the change stream (libevent + hiredis async) ---------------- */

struct store_tail {
    store *s;     /* the endpoint */
    unsigned gen; /* the endpoint generation of ac */
    rep *r;
    struct event_base *base;
    redisAsyncContext *ac;
    struct event *retry;
    int backoff_ms;
    char last_id[64];
    uint64_t rev;
    _Atomic int64_t heard_ms;
    _Atomic int connected;
    int closing;
};

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void tail_connect(store_tail *t);
static void tail_read(store_tail *t);

static void tail_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    tail_connect(arg);
}

static void tail_schedule(store_tail *t)
{
    struct timeval tv = {t->backoff_ms / 1000, (t->backoff_ms % 1000) * 1000};

    if (t->closing)
        return;
    evtimer_add(t->retry, &tv);
    t->backoff_ms = t->backoff_ms * 2 > 5000 ? 5000 : t->backoff_ms * 2;
}

static void tail_disconnected(const redisAsyncContext *ac, int status)
{
    store_tail *t = ac->data;

    (void)status;
    t->ac = NULL; /* hiredis frees it after this returns */
    atomic_store(&t->connected, 0);
    if (!t->closing && t->gen == store_generation(t->s))
        st_suspect(t->s, "change stream lost"); /* not our own move to a new primary */
    tail_schedule(t);
}

/* A gap: the stream was trimmed past what we applied. Load again. */
static void tail_resnapshot(store_tail *t)
{
    char err[STORE_ERR_MAX];

    if (store_snapshot(t->s, t->r, t->last_id, sizeof(t->last_id), &t->rev, err, sizeof(err)) ==
        STORE_OK)
        rep_reclaim(t->r);
}

static void tail_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    store_tail *t = priv;
    redisReply *r = reply;
    size_t i;
    int gap = 0;

    (void)ac;
    if (!r || t->closing)
        return;
    if (r->type == REDIS_REPLY_ERROR) {
        if (st_failover_reply(r))
            st_suspect(t->s, r->str);
        redisAsyncDisconnect(t->ac);
        return;
    }
    atomic_store(&t->heard_ms, now_ms());
    t->backoff_ms = 100;
    /* [[stream, [[id, [f, v, ...]], ...]]] or nil on timeout */
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 && r->element[0]->elements == 2) {
        redisReply *entries = r->element[0]->element[1];
        for (i = 0; i < entries->elements && !gap; i++) {
            redisReply *e = entries->element[i], *kv = e->element[1];
            rec x = {kv->element, kv->elements};
            uint64_t rev = (uint64_t)num(&x, "rev");
            if (rev > t->rev + 1 && t->rev != 0) {
                gap = 1;
                break;
            }
            (void)apply(t->r, str(&x, "type"), str(&x, "id"), &x);
            if (rev > t->rev)
                t->rev = rev;
            snprintf(t->last_id, sizeof(t->last_id), "%s", e->element[0]->str);
        }
        if (gap)
            tail_resnapshot(t);
        rep_set_revision(t->r, t->rev);
        rep_reclaim(t->r);
    }
    if (t->gen != store_generation(t->s)) { /* the primary moved: follow it */
        redisAsyncDisconnect(t->ac);
        return;
    }
    tail_read(t);
}

static void tail_read(store_tail *t)
{
    const char *argv[] = {"XREAD", "COUNT",   "1000",   "BLOCK",
                          "1000",  "STREAMS", K_STREAM, t->last_id};

    if (t->ac)
        redisAsyncCommandArgv(t->ac, tail_reply, t, 8, argv, NULL);
}

static void tail_connected(const redisAsyncContext *ac, int status)
{
    store_tail *t = ac->data;

    if (status != REDIS_OK) {
        t->ac = NULL;
        atomic_store(&t->connected, 0);
        tail_schedule(t);
        return;
    }
    atomic_store(&t->connected, 1);
    atomic_store(&t->heard_ms, now_ms());
}

static void tail_connect(store_tail *t)
{
    char db[8];
    const char *argv[] = {"SELECT", db};
    st_addr a;

    st_current(t->s, &a, &t->gen);
    t->ac = a.path[0]   ? redisAsyncConnectUnix(a.path)
            : a.host[0] ? redisAsyncConnect(a.host, a.port)
                        : NULL;
    if (!t->ac || t->ac->err) {
        if (t->ac)
            redisAsyncFree(t->ac);
        t->ac = NULL;
        tail_schedule(t);
        return;
    }
    t->ac->data = t;
    redisLibeventAttach(t->ac, t->base);
    redisAsyncSetConnectCallback(t->ac, tail_connected);
    redisAsyncSetDisconnectCallback(t->ac, tail_disconnected);
    if (a.pass[0]) { /* first on the wire: a refused AUTH fails what follows */
        const char *auth[3] = {"AUTH", a.user[0] ? a.user : a.pass, a.pass};
        redisAsyncCommandArgv(t->ac, NULL, NULL, a.user[0] ? 3 : 2, auth, NULL);
    }
    if (a.db) {
        snprintf(db, sizeof(db), "%d", a.db);
        redisAsyncCommandArgv(t->ac, NULL, NULL, 2, argv, NULL);
    }
    tail_read(t);
}

store_tail *store_tail_new(store *s, rep *r, struct event_base *base, const char *stream_id,
                           uint64_t rev)
{
    store_tail *t = calloc(1, sizeof(*t));

    if (!t)
        return NULL;
    t->s = s;
    t->r = r;
    t->base = base;
    t->backoff_ms = 100;
    t->rev = rev;
    snprintf(t->last_id, sizeof(t->last_id), "%s", stream_id);
    atomic_init(&t->heard_ms, now_ms());
    atomic_init(&t->connected, 0);
    t->retry = evtimer_new(base, tail_retry_cb, t);
    if (!t->retry) {
        free(t);
        return NULL;
    }
    tail_connect(t);
    return t;
}

void store_tail_free(store_tail *t)
{
    if (!t)
        return;
    t->closing = 1;
    if (t->ac) {
        redisAsyncContext *ac = t->ac;
        t->ac = NULL;
        ac->data = t;
        redisAsyncFree(ac);
    }
    event_free(t->retry);
    free(t);
}

int64_t store_tail_lag_ms(const store_tail *t)
{
    return now_ms() - atomic_load(&((store_tail *)t)->heard_ms);
}

int store_tail_connected(const store_tail *t)
{
    return atomic_load(&((store_tail *)t)->connected);
}
