/*
 * script.c - building commands for the store's scripts: EVALSHA with KEYS
 * and ARGV counted as they are added, formatted arguments kept in chunks
 * that never move, the idempotent-write wrapper's parts, and the lookup
 * that lets conn.c send a script Redis lost (NOSCRIPT) again whole.
 */
#include "scripts.h"
#include "store.h"
#include "store_int.h"

#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK 4096
#define NUMKEYS_AT 2 /* EVALSHA sha numkeys KEYS... ARGV... */

struct st_chunk {
    st_chunk *next;
    size_t used, cap;
    char buf[];
};

const st_lua *st_lua_find(const char *sha, size_t len)
{
    size_t i;

    for (i = 0; i < st_lua_count; i++)
        if (len == 40 && memcmp(st_lua_all[i]->sha, sha, 40) == 0)
            return st_lua_all[i];
    return NULL;
}

static void args_init(st_args *a)
{
    a->n = 0;
    a->cap = ST_ARGS_INLINE;
    a->v = a->v0;
    a->len = a->len0;
    a->chunks = NULL;
    a->nkeys = 0;
    a->in_argv = 0;
    a->idem = 0;
    a->bad = NULL;
    a->timeout_ms = 0;
    a->durable = 0;
}

void st_args_free(st_args *a)
{
    while (a->chunks) {
        st_chunk *next = a->chunks->next;
        free(a->chunks);
        a->chunks = next;
    }
    if (a->v != a->v0) {
        free(a->v);
        free(a->len);
    }
    a->v = a->v0;
    a->len = a->len0;
    a->n = 0;
}

static void push(st_args *a, const char *p, size_t n)
{
    if (a->bad)
        return;
    if (a->n == a->cap) {
        int cap = a->cap * 2;
        const char **v = malloc((size_t)cap * sizeof(*v));
        size_t *len = malloc((size_t)cap * sizeof(*len));

        if (!v || !len) {
            free(v);
            free(len);
            a->bad = "out of memory";
            return;
        }
        memcpy(v, a->v, (size_t)a->n * sizeof(*v));
        memcpy(len, a->len, (size_t)a->n * sizeof(*len));
        if (a->v != a->v0) {
            free(a->v);
            free(a->len);
        }
        a->v = v;
        a->len = len;
        a->cap = cap;
    }
    a->v[a->n] = p;
    a->len[a->n++] = n;
}

/* Room for n bytes that stays where it is until a is freed. */
static char *room(st_args *a, size_t n)
{
    st_chunk *c = a->chunks;

    if (!c || c->cap - c->used < n) {
        size_t cap = n > CHUNK ? n : CHUNK;
        if (!(c = malloc(sizeof(*c) + cap))) {
            a->bad = "out of memory";
            return NULL;
        }
        c->cap = cap;
        c->used = 0;
        c->next = a->chunks;
        a->chunks = c;
    }
    c->used += n;
    return c->buf + c->used - n;
}

/* Formatted into the current chunk when it fits (one vsnprintf), else
 * into a new one. */
static const char *vformat(st_args *a, size_t *n, const char *fmt, va_list ap)
{
    st_chunk *c = a->chunks;
    va_list aq;
    int len;
    char *p;

    va_copy(aq, ap);
    len = c ? vsnprintf(c->buf + c->used, c->cap - c->used, fmt, aq) : -1;
    va_end(aq);
    if (c && len >= 0 && (size_t)len < c->cap - c->used) {
        p = c->buf + c->used;
        c->used += (size_t)len + 1;
        *n = (size_t)len;
        return p;
    }
    va_copy(aq, ap);
    len = vsnprintf(NULL, 0, fmt, aq);
    va_end(aq);
    if (len < 0 || !(p = room(a, (size_t)len + 1)))
        return NULL;
    vsnprintf(p, (size_t)len + 1, fmt, ap);
    *n = (size_t)len;
    return p;
}

void st_script(st_args *a, const st_lua *lua)
{
    args_init(a);
    push(a, "EVALSHA", 7);
    push(a, lua->sha, 40);
    push(a, "", 0); /* numkeys (NUMKEYS_AT), once known */
}

/* The idempotency key, fingerprint (hex, "" for none) and TTL of a write. */
static void idem_parts(const store_idem *idem, char *key, char fp[65], char ttl[24])
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

void st_script_idem(st_args *a, const st_lua *lua, const store_idem *idem)
{
    st_script(a, lua);
    idem_parts(idem, a->idem_key, a->idem_fp, a->idem_ttl);
    a->idem = 1;
    a->durable = 1; /* acknowledged only once on the replicas (WAIT) */
    st_key(a, a->idem_key);
}

void st_key(st_args *a, const char *key)
{
    if (a->in_argv) {
        a->bad = "a key after the script's arguments";
        return;
    }
    push(a, key, strlen(key));
    a->nkeys++;
}

void st_keyf(st_args *a, const char *fmt, ...)
{
    va_list ap;
    const char *p;
    size_t n = 0;

    va_start(ap, fmt);
    p = vformat(a, &n, fmt, ap);
    va_end(ap);
    if (p)
        st_key(a, p);
}

void st_audit_keys(st_args *a, const char *kind, const char *subject)
{
    size_t i, n = strlen(subject);
    char *s = room(a, n + 1);

    if (!s)
        return;
    /* as audit.lua makes it single-line */
    for (i = 0; i <= n; i++)
        s[i] = subject[i] == '\r' || subject[i] == '\n' ? ' ' : subject[i];
    st_key(a, "{tc}:audit:meta");
    st_key(a, "{tc}:audit:e");
    st_keyf(a, "{tc}:audit:s:%s", s);
    st_keyf(a, "{tc}:audit:k:%s", kind);
}

static void begin_argv(st_args *a)
{
    if (a->in_argv)
        return;
    a->in_argv = 1;
    if (a->idem) {
        push(a, a->idem_fp, strlen(a->idem_fp));
        push(a, a->idem_ttl, strlen(a->idem_ttl));
    }
}

void st_arg_bin(st_args *a, const void *p, size_t n)
{
    begin_argv(a);
    push(a, p, n);
}

void st_arg(st_args *a, const char *s)
{
    st_arg_bin(a, s, strlen(s));
}

void st_argf(st_args *a, const char *fmt, ...)
{
    va_list ap;
    const char *p;
    size_t n = 0;

    va_start(ap, fmt);
    p = vformat(a, &n, fmt, ap);
    va_end(ap);
    if (p)
        st_arg_bin(a, p, n);
}

void st_arg_i64(st_args *a, int64_t x)
{
    st_argf(a, "%" PRId64, x);
}

void st_arg_u64(st_args *a, uint64_t x)
{
    st_argf(a, "%" PRIu64, x);
}

store_err st_run_args(store *s, st_args *a, redisReply **r, char *err, size_t cap)
{
    store_err e;

    *r = NULL;
    begin_argv(a);
    if (a->bad) {
        e = st_fail(STORE_ERR_NOMEM, err, cap, "cannot build the redis command: %s", a->bad);
    } else {
        snprintf(a->numkeys, sizeof(a->numkeys), "%d", a->nkeys);
        a->v[NUMKEYS_AT] = a->numkeys;
        a->len[NUMKEYS_AT] = strlen(a->numkeys);
        e = st_exec(s, a->n, a->v, a->len, r, a->timeout_ms ? a->timeout_ms : TIMEOUT_MS,
                    a->durable, err, cap);
    }
    st_args_free(a);
    return e;
}

/* --- idempotency ---------------------------------------------------------- */

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

store_err st_run_write(store *s, st_args *a, store_idem *idem, redisReply **r, char *err,
                       size_t cap)
{
    store_err e = st_run_args(s, a, r, err, cap);

    return e ? e : st_idem_reply(r, idem, err, cap);
}

void st_key_of(char *out, size_t cap, const char *type, const char *id)
{
    snprintf(out, cap, "{tc}:%s:%s", type, id);
}
