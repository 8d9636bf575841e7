/*
 * keys.c - the deployment's keys in Redis: which key issues codes of each
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

/* KEYS: key record, rev, stream. ARGV: maxlen, kid, kind, now, actor.
 * The previous issuing key of the kind verifies only from now on.
 * Returns {revision}. */
static const char lua_activate[] = LUA_AUDIT LUA_IDEM_BEGIN
    "if redis.call('HGET', KEYS[1], 'state') == 'compromised' then\n"
    "  return redis.error_reply('PRECONDITION key ' .. ARGV[2] .. ' is compromised: it never '"
    " ..\n"
    "    'issues again')\n"
    "end\n"
    "local prev = redis.call('HGET', '{tc}:keys:issuing', ARGV[3])\n"
    "local rev = redis.call('INCR', KEYS[2])\n"
    "if prev and prev ~= ARGV[2] then\n"
    "  local pk = '{tc}:key:' .. prev\n"
    "  if redis.call('HGET', pk, 'state') == 'active' then\n"
    "    redis.call('HSET', pk, 'state', 'verify-only', 'rev', rev)\n"
    "    redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[1], '*', 'type', 'key', 'id', prev,\n"
    "      unpack(redis.call('HGETALL', pk)))\n"
    "  end\n"
    "end\n"
    "redis.call('HSET', KEYS[1], 'kind', ARGV[3], 'state', 'active', 'activated', ARGV[4],\n"
    "  'rev', rev)\n"
    "redis.call('HSET', '{tc}:keys:issuing', ARGV[3], ARGV[2])\n"
    "redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[1], '*', 'type', 'key', 'id', ARGV[2],\n"
    "  unpack(redis.call('HGETALL', KEYS[1])))\n"
    "audit('key', ARGV[5], 'key:' .. ARGV[2], 'activate\\nkey ' .. ARGV[2] .. '\\nkind ' ..\n"
    "  (ARGV[3] == '1' and 'mac' or 'ed25519') .. '\\nprevious ' .. (prev or 'none'))\n"
    "return {rev}\n" LUA_IDEM_END;

/* KEYS: key record, rev, stream. ARGV: maxlen, kid, kind, since, reason,
 * now, actor. Returns {revision}. */
static const char lua_compromise[] = LUA_AUDIT LUA_IDEM_BEGIN
    "local rev = redis.call('INCR', KEYS[2])\n"
    "if redis.call('HGET', '{tc}:keys:issuing', ARGV[3]) == ARGV[2] then\n"
    "  redis.call('HDEL', '{tc}:keys:issuing', ARGV[3])\n"
    "end\n"
    "redis.call('HSET', KEYS[1], 'kind', ARGV[3], 'state', 'compromised', 'since', ARGV[4],\n"
    "  'reason', ARGV[5], 'compromised_at', ARGV[6], 'rev', rev)\n"
    "redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[1], '*', 'type', 'key', 'id', ARGV[2],\n"
    "  unpack(redis.call('HGETALL', KEYS[1])))\n"
    "audit('key', ARGV[7], 'key:' .. ARGV[2], 'compromise\\nkey ' .. ARGV[2] .. '\\nsince ' ..\n"
    "  ARGV[4] .. '\\nreason ' .. ARGV[5])\n"
    "return {rev}\n" LUA_IDEM_END;

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

/* The front every key script shares: KEYS key record, rev, stream; ARGV
 * maxlen, kid, kind. key holds the record's name for a's lifetime. */
static void key_script(st_args *a, char key[32], const char *lua, store_idem *idem, unsigned kid,
                       int kind)
{
    snprintf(key, 32, "{tc}:key:%u", kid);
    st_script_idem(a, lua, 3, idem);
    st_arg(a, key);
    st_arg(a, K_REV);
    st_arg(a, K_STREAM);
    st_idem_argv(a);
    st_arg_i64(a, STORE_STREAM_MAXLEN);
    st_arg_u64(a, kid);
    st_arg_i64(a, kind);
}

static store_err run_key_script(store *s, st_args *a, store_idem *idem, uint64_t *rev, char *err,
                                size_t errcap)
{
    redisReply *r;
    store_err e = st_run_write(s, a, idem, &r, err, errcap);

    return e ? e : rev_reply(r, rev, err, errcap);
}

store_err store_key_activate(store *s, store_idem *idem, const char *actor, unsigned kid, int kind,
                             int64_t now, uint64_t *rev, char *err, size_t errcap)
{
    char key[32];
    st_args a;

    key_script(&a, key, lua_activate, idem, kid, kind);
    st_arg_i64(&a, now);
    st_arg(&a, actor);
    return run_key_script(s, &a, idem, rev, err, errcap);
}

store_err store_key_compromise(store *s, store_idem *idem, const char *actor, unsigned kid,
                               int kind, int64_t since, const char *reason, int64_t now,
                               uint64_t *rev, char *err, size_t errcap)
{
    char key[32];
    st_args a;

    key_script(&a, key, lua_compromise, idem, kid, kind);
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
