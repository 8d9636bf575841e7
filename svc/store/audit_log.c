/*
 * audit_log.c - the audit log in Redis: entries, their indexes, the tree's
 * stored subtree hashes, the signed head and the sequencing lease.
 *
 *   {tc}:audit:meta      hash: n (entries appended), last_ms
 *   {tc}:audit:e         hash: index -> canonical entry
 *   {tc}:audit:s:<subj>  sorted set of indexes by subject; :k:<kind> by kind
 *   {tc}:audit:h:<L>     string: the 32-byte hashes of level L, in order
 *   {tc}:audit:head      hash: size, root, time, kid, sig
 *   {tc}:audit:lease     the sequencing node's token, with a TTL
 *
 * Entries are written by lua/lib/audit.lua inside the scripts whose
 * change they record; times never run backwards, so a time range is an
 * index range, found by binary search.
 */
#include "store.h"
#include "store_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define K_META "{tc}:audit:meta"
#define K_ENTRIES "{tc}:audit:e"
#define K_HEAD "{tc}:audit:head"
#define K_LEASE "{tc}:audit:lease"
#define QUERY_SCAN_MAX "10000" /* candidates looked at per page */
#define READ_MAX 4096

/* --- entries ------------------------------------------------------------- */

/* "name value\n" at *p; copies value (bounded) and advances. */
static int line(const char **p, const char *end, const char *name, char *out, size_t cap)
{
    size_t n = strlen(name);
    const char *nl;

    if ((size_t)(end - *p) <= n || memcmp(*p, name, n) != 0 || (*p)[n] != ' ')
        return -1;
    *p += n + 1;
    nl = memchr(*p, '\n', (size_t)(end - *p));
    if (!nl || (size_t)(nl - *p) >= cap)
        return -1;
    memcpy(out, *p, (size_t)(nl - *p));
    out[nl - *p] = '\0';
    *p = nl + 1;
    return 0;
}

static int number(const char *s, uint64_t *v)
{
    char *end;

    if (!*s || *s < '0' || *s > '9')
        return -1;
    *v = strtoull(s, &end, 10);
    return *end ? -1 : 0;
}

int store_audit_parse(const char *text, size_t len, store_audit_entry *e)
{
    static const char magic[] = "tracecode-audit v1\n";
    const char *p = text, *end = text + len;
    char num[32];
    uint64_t v, blen;
    char *colon;

    memset(e, 0, sizeof(*e));
    if (len < sizeof(magic) - 1 || memcmp(p, magic, sizeof(magic) - 1) != 0)
        return -1;
    p += sizeof(magic) - 1;
    if (line(&p, end, "index", num, sizeof(num)) || number(num, &e->index) ||
        line(&p, end, "time", num, sizeof(num)) || number(num, &v) ||
        line(&p, end, "kind", e->kind, sizeof(e->kind)) ||
        line(&p, end, "actor", e->actor, sizeof(e->actor)) ||
        line(&p, end, "subject", e->subject, sizeof(e->subject)))
        return -1;
    e->time_ms = (int64_t)v;
    if ((size_t)(end - p) < 6 || memcmp(p, "body ", 5) != 0)
        return -1;
    p += 5;
    colon = memchr(p, ':', (size_t)(end - p) < 24 ? (size_t)(end - p) : 24);
    if (!colon || colon == p)
        return -1;
    memcpy(num, p, (size_t)(colon - p));
    num[colon - p] = '\0';
    if (number(num, &blen) || blen != (uint64_t)(end - colon - 1))
        return -1;
    e->body = colon + 1;
    e->body_len = (size_t)blen;
    return 0;
}

void store_audit_entries_free(store_audit_entry *e, size_t n)
{
    if (!e)
        return;
    for (size_t i = 0; i < n; i++)
        free(e[i].text);
    free(e);
}

/* Entries from an array reply, starting at element first. Entries that do
 * not parse are kept (text set, kind empty): the caller decides. */
static store_err entries_of(redisReply *r, size_t first, store_audit_entry **out, size_t *n,
                            char *err, size_t cap)
{
    store_audit_entry *v;
    size_t k = 0;

    *out = NULL;
    *n = 0;
    if (r->elements <= first)
        return STORE_OK;
    v = calloc(r->elements - first, sizeof(*v));
    if (!v)
        return st_fail(STORE_ERR_NOMEM, err, cap, "out of memory");
    for (size_t i = first; i < r->elements; i++, k++) {
        redisReply *x = r->element[i];
        if (x->type != REDIS_REPLY_STRING) {
            store_audit_entries_free(v, k);
            return st_fail(STORE_ERR_PROTOCOL, err, cap, "redis: want audit entries");
        }
        v[k].text = malloc(x->len + 1);
        if (!v[k].text) {
            store_audit_entries_free(v, k);
            return st_fail(STORE_ERR_NOMEM, err, cap, "out of memory");
        }
        memcpy(v[k].text, x->str, x->len);
        v[k].text[x->len] = '\0';
        {
            char *text = v[k].text;
            if (store_audit_parse(text, x->len, &v[k]) != 0)
                memset(&v[k], 0, sizeof(v[k]));
            v[k].text = text;
            v[k].len = x->len;
        }
    }
    *out = v;
    *n = k;
    return STORE_OK;
}

store_err store_audit_append(store *s, const char *kind, const char *actor, const char *subject,
                             const char *body, size_t len, uint64_t *index, char *err,
                             size_t errcap)
{
    st_args a;
    redisReply *r;
    store_err e;

    if (len > STORE_AUDIT_BODY_MAX)
        return st_fail(STORE_ERR_ARG, err, errcap, "audit body of %zu bytes is over %d", len,
                       STORE_AUDIT_BODY_MAX);
    st_script(&a, &st_lua_audit_append);
    st_audit_keys(&a, kind, subject);
    st_arg(&a, kind);
    st_arg(&a, actor);
    st_arg(&a, subject);
    st_arg_bin(&a, body, len);
    if ((e = st_run_args(s, &a, &r, err, errcap)) != STORE_OK)
        return e;
    if (r->type != REDIS_REPLY_INTEGER || r->integer < 0)
        e = st_fail(STORE_ERR_PROTOCOL, err, errcap, "redis: want the entry's index");
    else if (index)
        *index = (uint64_t)r->integer;
    freeReplyObject(r);
    return e;
}

store_err store_audit_keys(store *s, const char *actor, const char *keys, size_t len, char *err,
                           size_t errcap)
{
    st_args a;
    redisReply *r;
    store_err e;

    st_script(&a, &st_lua_audit_keys);
    st_key(&a, "{tc}:audit:keys");
    st_audit_keys(&a, "key", "keys");
    st_arg(&a, actor);
    st_arg_bin(&a, keys, len);
    if ((e = st_run_args(s, &a, &r, err, errcap)) == STORE_OK)
        freeReplyObject(r);
    return e;
}

store_err store_audit_query_run(store *s, const store_audit_query *q, store_audit_entry **out,
                                size_t *n, uint64_t *next, char *err, size_t errcap)
{
    st_args a;
    redisReply *r;
    store_err e;

    *out = NULL;
    *n = 0;
    st_script(&a, &st_lua_audit_query);
    st_key(&a, K_META);
    st_key(&a, K_ENTRIES);
    if (q->subject && q->subject[0])
        st_keyf(&a, "{tc}:audit:s:%s", q->subject);
    else if (q->kind && q->kind[0])
        st_keyf(&a, "{tc}:audit:k:%s", q->kind);
    else
        st_key(&a, K_ENTRIES); /* not walked */
    st_arg(&a, q->subject ? q->subject : "");
    st_arg(&a, q->kind ? q->kind : "");
    st_arg_i64(&a, q->from_ms);
    st_arg_i64(&a, q->to_ms);
    st_arg_u64(&a, q->start);
    st_arg_u64(&a, q->limit);
    st_arg(&a, QUERY_SCAN_MAX);
    if ((e = st_run_args(s, &a, &r, err, errcap)) != STORE_OK)
        return e;
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
        r->element[0]->type != REDIS_REPLY_INTEGER) {
        freeReplyObject(r);
        return st_fail(STORE_ERR_PROTOCOL, err, errcap, "redis: unexpected reply to audit query");
    }
    *next = r->element[0]->integer < 0 ? UINT64_MAX : (uint64_t)r->element[0]->integer;
    e = entries_of(r, 1, out, n, err, errcap);
    freeReplyObject(r);
    return e;
}

store_err store_audit_read(store *s, uint64_t from, size_t count, store_audit_entry **out,
                           size_t *n, char *err, size_t errcap)
{
    st_args a;
    redisReply *r;
    store_err e;

    if (count > READ_MAX)
        count = READ_MAX;
    st_script(&a, &st_lua_audit_read);
    st_key(&a, K_ENTRIES);
    st_arg_u64(&a, from);
    st_arg_u64(&a, count);
    if ((e = st_run_args(s, &a, &r, err, errcap)) != STORE_OK)
        return e;
    e = r->type == REDIS_REPLY_ARRAY
            ? entries_of(r, 0, out, n, err, errcap)
            : st_fail(STORE_ERR_PROTOCOL, err, errcap, "redis: want audit entries");
    freeReplyObject(r);
    return e;
}

store_err store_audit_count(store *s, uint64_t *n, char *err, size_t errcap)
{
    const char *argv[] = {"HGET", K_META, "n"};
    redisReply *r;
    store_err e = st_run(s, 3, argv, NULL, &r, err, errcap);

    if (e)
        return e;
    *n = 0;
    if (r->type == REDIS_REPLY_STRING)
        *n = strtoull(r->str, NULL, 10);
    else if (r->type != REDIS_REPLY_NIL)
        e = st_fail(STORE_ERR_PROTOCOL, err, errcap, "redis: want the audit entry count");
    freeReplyObject(r);
    return e;
}

/* --- the tree ------------------------------------------------------------ */

store_err store_audit_head(store *s, store_tree_head *h, char *err, size_t errcap)
{
    const char *argv[] = {"HMGET", K_HEAD, "size", "root", "time", "kid", "sig"};
    redisReply *r, **el;
    store_err e = st_run(s, 7, argv, NULL, &r, err, errcap);

    memset(h, 0, sizeof(*h));
    if (e)
        return e;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 5) {
        freeReplyObject(r);
        return st_fail(STORE_ERR_PROTOCOL, err, errcap, "redis: unexpected tree head reply");
    }
    el = r->element;
    if (el[0]->type == REDIS_REPLY_STRING) {
        if (el[1]->type != REDIS_REPLY_STRING || el[1]->len != sizeof(h->root) ||
            el[4]->type != REDIS_REPLY_STRING || el[4]->len != sizeof(h->sig) ||
            el[2]->type != REDIS_REPLY_STRING || el[3]->type != REDIS_REPLY_STRING) {
            freeReplyObject(r);
            return st_fail(STORE_ERR_PROTOCOL, err, errcap,
                           "redis: the stored tree head is "
                           "damaged");
        }
        h->size = strtoull(el[0]->str, NULL, 10);
        memcpy(h->root, el[1]->str, sizeof(h->root));
        h->time_unix = strtoll(el[2]->str, NULL, 10);
        h->kid = (uint32_t)strtoul(el[3]->str, NULL, 10);
        memcpy(h->sig, el[4]->str, sizeof(h->sig));
    }
    freeReplyObject(r);
    return STORE_OK;
}

store_err store_audit_hashes(store *s, const unsigned *levels, const uint64_t *indexes, size_t n,
                             uint8_t *out, char *err, size_t errcap)
{
    st_args a;
    redisReply *r;
    store_err e;
    size_t i;

    if (n == 0)
        return STORE_OK;
    st_script(&a, &st_lua_audit_hashes);
    for (i = 0; i < n; i++)
        st_keyf(&a, "{tc}:audit:h:%u", levels[i]);
    for (i = 0; i < n; i++) {
        st_arg_u64(&a, levels[i]);
        st_arg_u64(&a, indexes[i]);
    }
    if ((e = st_run_args(s, &a, &r, err, errcap)) != STORE_OK)
        return e;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != n) {
        freeReplyObject(r);
        return st_fail(STORE_ERR_PROTOCOL, err, errcap, "redis: want %zu subtree hashes", n);
    }
    for (i = 0; i < n; i++) {
        if (r->element[i]->type != REDIS_REPLY_STRING || r->element[i]->len != 32) {
            freeReplyObject(r);
            return st_fail(STORE_ERR_PROTOCOL, err, errcap, "redis: a subtree hash is damaged");
        }
        memcpy(out + 32 * i, r->element[i]->str, 32);
    }
    freeReplyObject(r);
    return STORE_OK;
}

store_err store_audit_lease(store *s, const char *token, int64_t ttl_ms, int *held, char *err,
                            size_t errcap)
{
    st_args a;
    redisReply *r;
    store_err e;

    st_script(&a, &st_lua_audit_lease);
    st_key(&a, K_LEASE);
    st_arg(&a, token);
    st_arg_i64(&a, ttl_ms);
    if ((e = st_run_args(s, &a, &r, err, errcap)) != STORE_OK)
        return e;
    *held = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    freeReplyObject(r);
    return STORE_OK;
}

store_err store_audit_release(store *s, const char *token, char *err, size_t errcap)
{
    st_args a;
    redisReply *r;
    store_err e;

    st_script(&a, &st_lua_audit_release);
    st_key(&a, K_LEASE);
    st_arg(&a, token);
    if ((e = st_run_args(s, &a, &r, err, errcap)) == STORE_OK)
        freeReplyObject(r);
    return e;
}

store_err store_audit_commit(store *s, const char *token, uint64_t old_size,
                             const store_tree_head *h, const uint8_t *const *level,
                             const size_t *len, unsigned nlevels, char *err, size_t errcap)
{
    st_args a;
    redisReply *r;
    store_err e;

    if (nlevels > 64)
        return st_fail(STORE_ERR_ARG, err, errcap, "too many tree levels");
    st_script(&a, &st_lua_audit_commit);
    st_key(&a, K_LEASE);
    st_key(&a, K_HEAD);
    for (unsigned i = 0; i < nlevels; i++)
        st_keyf(&a, "{tc}:audit:h:%u", i);
    st_arg(&a, token);
    st_arg_u64(&a, old_size);
    st_arg_u64(&a, h->size);
    st_arg_bin(&a, h->root, sizeof(h->root));
    st_arg_i64(&a, h->time_unix);
    st_arg_u64(&a, h->kid);
    st_arg_bin(&a, h->sig, sizeof(h->sig));
    for (unsigned i = 0; i < nlevels; i++)
        st_arg_bin(&a, level[i], len[i]);
    if ((e = st_run_args(s, &a, &r, err, errcap)) == STORE_OK)
        freeReplyObject(r);
    return e;
}
