/*
 * key_state.c - the deployment's keys in Redis: which key issues codes of each
 * kind, which keys are compromised since when, and which live node holds
 * which keys.
 *
 *   {tc}:key:KID       hash: kind (1 mac, 2 ed25519), state (active,
 *                      verify-only, compromised), activated, since, reason,
 *                      rev; on the change stream as type "key", so every
 *                      node's replica follows it
 *   {tc}:keys:issuing  hash: kind -> the issuing key id
 *   {tc}:node:ID       string "kid,kid,...": the keys node ID can verify;
 *                      set every few seconds with a TTL (a node that stops
 *                      beating is no longer live)
 */
#include "store_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define K_REV "{tc}:rev"
#define K_STREAM "{tc}:changes"

#define K_ISSUING "{tc}:keys:issuing"

static store_err rev_reply(redisReply *r, uint64_t *rev, char *err, size_t errcap)
{
    store_err e = STORE_OK;

    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
        r->element[0]->type == REDIS_REPLY_INTEGER)
        *rev = (uint64_t)r->element[0]->integer;
    else
        e = st_fail(STORE_ERR_PROTOCOL, err, errcap, "redis: unexpected reply to a key script");
    freeReplyObject(r);
    return e;
}

static store_err run_key_script(store *s, st_args *a, store_idem *idem, uint64_t *rev, char *err,
                                size_t errcap)
{
    redisReply *r;
    store_err e = st_run_write(s, a, idem, &r, err, errcap);

    return e ? e : rev_reply(r, rev, err, errcap);
}

/*
 * lua/key_activate.lua, given the previous issuing key of the kind as read
 * just before (its record is among the script's KEYS); read again when
 * another activation came in between.
 */
store_err store_key_activate(store *s, store_idem *idem, const char *actor, unsigned kid, int kind,
                             int64_t now, uint64_t *rev, char *err, size_t errcap)
{
    char k[16], prev[32], subject[32];
    const char *argv[] = {"HGET", K_ISSUING, k};
    int attempt;
    store_err e;

    snprintf(k, sizeof(k), "%d", kind);
    snprintf(subject, sizeof(subject), "key:%u", kid);
    for (attempt = 0; attempt < ST_RETRIES; attempt++) {
        redisReply *r;
        st_args a;

        if ((e = st_run(s, 3, argv, NULL, &r, err, errcap)) != STORE_OK)
            return e;
        snprintf(prev, sizeof(prev), "%s", r->type == REDIS_REPLY_STRING ? r->str : "");
        freeReplyObject(r);
        st_script_idem(&a, &st_lua_key_activate, idem);
        st_keyf(&a, "{tc}:key:%u", kid);
        st_key(&a, K_REV);
        st_key(&a, K_STREAM);
        st_key(&a, K_ISSUING);
        if (prev[0])
            st_keyf(&a, "{tc}:key:%s", prev);
        else
            st_keyf(&a, "{tc}:key:%u", kid);
        st_audit_keys(&a, "key", subject);
        st_arg_i64(&a, STORE_STREAM_MAXLEN);
        st_arg_u64(&a, kid);
        st_arg_i64(&a, kind);
        st_arg_i64(&a, now);
        st_arg(&a, actor);
        st_arg(&a, prev);
        e = run_key_script(s, &a, idem, rev, err, errcap);
        if (e != ST_ERR_RETRY)
            return e;
    }
    return st_fail(STORE_ERR_UNAVAILABLE, err, errcap,
                   "the issuing key kept changing while key %u was activated; nothing was "
                   "changed: retry",
                   kid);
}

store_err store_key_compromise(store *s, store_idem *idem, const char *actor, unsigned kid,
                               int kind, int64_t since, const char *reason, int64_t now,
                               uint64_t *rev, char *err, size_t errcap)
{
    char subject[32];
    st_args a;

    snprintf(subject, sizeof(subject), "key:%u", kid);
    st_script_idem(&a, &st_lua_key_compromise, idem);
    st_keyf(&a, "{tc}:key:%u", kid);
    st_key(&a, K_REV);
    st_key(&a, K_STREAM);
    st_key(&a, K_ISSUING);
    st_audit_keys(&a, "key", subject);
    st_arg_i64(&a, STORE_STREAM_MAXLEN);
    st_arg_u64(&a, kid);
    st_arg_i64(&a, kind);
    st_arg_i64(&a, since);
    st_arg(&a, reason);
    st_arg_i64(&a, now);
    st_arg(&a, actor);
    return run_key_script(s, &a, idem, rev, err, errcap);
}

store_err store_key_reason(store *s, unsigned kid, char *reason, size_t cap, char *err,
                           size_t errcap)
{
    char key[32];
    const char *argv[] = {"HGET", key, "reason"};
    redisReply *r;
    store_err e;

    snprintf(key, sizeof(key), "{tc}:key:%u", kid);
    e = st_run(s, 3, argv, NULL, &r, err, errcap);
    if (e)
        return e;
    snprintf(reason, cap, "%s", r->type == REDIS_REPLY_STRING ? r->str : "");
    freeReplyObject(r);
    return STORE_OK;
}

store_err store_node_beat(store *s, const char *node_id, const char *kids, int ttl_s, char *err,
                          size_t errcap)
{
    char key[96], ttl[16];
    const char *argv[] = {"SET", key, kids, "EX", ttl};
    redisReply *r;
    store_err e;

    snprintf(key, sizeof(key), "{tc}:node:%s", node_id);
    snprintf(ttl, sizeof(ttl), "%d", ttl_s);
    e = st_run(s, 5, argv, NULL, &r, err, errcap);
    if (!e)
        freeReplyObject(r);
    return e;
}

store_err store_nodes(store *s, store_node **out, size_t *n, char *err, size_t errcap)
{
    char cursor[32] = "0";
    store_node *v = NULL;
    size_t have = 0, cap = 0;
    store_err e = STORE_OK;

    do {
        const char *scan[] = {"SCAN", cursor, "MATCH", "{tc}:node:*", "COUNT", "1000"};
        const char **argv = NULL;
        redisReply *sc, *g = NULL;
        size_t i, k;

        e = st_run(s, 6, scan, NULL, &sc, err, errcap);
        if (e)
            break;
        if (sc->type != REDIS_REPLY_ARRAY || sc->elements != 2 ||
            sc->element[1]->type != REDIS_REPLY_ARRAY) {
            freeReplyObject(sc);
            e = st_fail(STORE_ERR_PROTOCOL, err, errcap, "redis: bad SCAN reply");
            break;
        }
        snprintf(cursor, sizeof(cursor), "%s", sc->element[0]->str);
        k = sc->element[1]->elements;
        if (k) { /* the page's values in one round trip */
            if (have + k > cap) {
                store_node *nv = realloc(v, (have + k) * sizeof(*v));
                if (nv) {
                    v = nv;
                    cap = have + k;
                }
            }
            argv = have + k <= cap ? malloc((k + 1) * sizeof(*argv)) : NULL;
            if (!argv) {
                free(argv);
                freeReplyObject(sc);
                e = st_fail(STORE_ERR_NOMEM, err, errcap, "out of memory");
                break;
            }
            argv[0] = "MGET";
            for (i = 0; i < k; i++)
                argv[i + 1] = sc->element[1]->element[i]->str;
            e = st_run(s, (int)(k + 1), argv, NULL, &g, err, errcap);
            free(argv);
        }
        if (!e && g && g->type == REDIS_REPLY_ARRAY && g->elements == k) {
            for (i = 0; i < k; i++) {
                if (g->element[i]->type != REDIS_REPLY_STRING)
                    continue; /* expired between SCAN and MGET */
                snprintf(v[have].id, sizeof(v[have].id), "%s",
                         sc->element[1]->element[i]->str + strlen("{tc}:node:"));
                snprintf(v[have].kids, sizeof(v[have].kids), "%s", g->element[i]->str);
                have++;
            }
        } else if (!e && k) {
            e = st_fail(STORE_ERR_PROTOCOL, err, errcap, "redis: bad MGET reply");
        }
        if (g)
            freeReplyObject(g);
        freeReplyObject(sc);
    } while (!e && strcmp(cursor, "0") != 0);
    if (e) {
        free(v);
        return e;
    }
    *out = v;
    *n = have;
    return STORE_OK;
}

int store_node_holds(const store_node *node, unsigned kid)
{
    const char *p = node->kids;

    while (*p) {
        char *end;
        unsigned long k = strtoul(p, &end, 10);
        if (end == p)
            return 0;
        if (k == kid)
            return 1;
        p = *end == ',' ? end + 1 : end;
    }
    return 0;
}
