/*
 * store_int.h - private to svc/store/: what its files share (the endpoint,
 * commands and scripts, records). The only header besides the .c files that
 * names hiredis.
 */
#ifndef TC_STORE_INT_H
#define TC_STORE_INT_H

#include "store.h"

#include <hiredis/hiredis.h>
#include <pthread.h>

#define POOL_MAX 16
#define TIMEOUT_MS 2000
#define ARGV_MAX 64
/* Writes that fan out delisting notices: a certificate with a million
 * listings takes about a second of Redis time. */
#define FANOUT_TIMEOUT_MS 30000

/*
 * Lua shared by every script that writes something the audit log records:
 * audit(kind, actor, subject, body) appends one entry in the same atomic
 * step as the change it records. The entry is the canonical text below
 * (what the Merkle tree hashes); its index comes from one counter, its
 * time from Redis and never runs backwards. Kind, actor and subject are
 * single-line (newlines become spaces); the body is length-prefixed.
 * Indexes: by subject and by kind (sorted sets scored by index).
 */
#define LUA_AUDIT                                                                                  \
    "local function audit(kind, actor, subject, body)\n"                                           \
    "  local t = redis.call('TIME')\n"                                                             \
    "  local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"                     \
    "  local last = tonumber(redis.call('HGET', '{tc}:audit:meta', 'last_ms') or '0')\n"           \
    "  if ms < last then ms = last end\n"                                                          \
    "  local idx = redis.call('HINCRBY', '{tc}:audit:meta', 'n', 1) - 1\n"                         \
    "  redis.call('HSET', '{tc}:audit:meta', 'last_ms', string.format('%d', ms))\n"                \
    "  kind = string.gsub(kind, '[\\r\\n]', ' ')\n"                                                \
    "  actor = string.gsub(actor, '[\\r\\n]', ' ')\n"                                              \
    "  subject = string.gsub(subject, '[\\r\\n]', ' ')\n"                                          \
    "  redis.call('HSET', '{tc}:audit:e', idx, 'tracecode-audit v1\\nindex ' ..\n"                 \
    "    string.format('%d', idx) .. '\\ntime ' .. string.format('%d', ms) .. '\\nkind ' ..\n"     \
    "    kind .. '\\nactor ' .. actor .. '\\nsubject ' .. subject .. '\\nbody ' .. #body ..\n"     \
    "    ':' .. body)\n"                                                                           \
    "  if subject ~= '' then redis.call('ZADD', '{tc}:audit:s:' .. subject, idx, idx) end\n"       \
    "  redis.call('ZADD', '{tc}:audit:k:' .. kind, idx, idx)\n"                                    \
    "end\n"

/*
 * Every write script is its body between LUA_IDEM_BEGIN and LUA_IDEM_END:
 * the wrapper takes the idempotency key off the front of KEYS and the
 * fingerprint (hex, '' for none) and TTL off the front of ARGV, so the body
 * sees its own KEYS and ARGV as if called alone. Used key, same
 * fingerprint: the recorded outcome, nothing run. Other fingerprint:
 * EXISTS. An error from the body is returned as it is and records
 * nothing. The reply is {1, outcome} when the body ran, {0, outcome} when
 * replayed (st_idem_reply unwraps it). Outcomes are numbers, strings and
 * arrays of them (kept as JSON; numbers below 10^14 stay exact).
 */
#define LUA_IDEM_BEGIN "local function body()\n"
#define LUA_IDEM_END                                                                               \
    "end\n"                                                                                        \
    "local ik = table.remove(KEYS, 1)\n"                                                           \
    "local fp = table.remove(ARGV, 1)\n"                                                           \
    "local ttl = table.remove(ARGV, 1)\n"                                                          \
    "if fp ~= '' then\n"                                                                           \
    "  local ex = redis.call('GET', ik)\n"                                                         \
    "  if ex then\n"                                                                               \
    "    if string.sub(ex, 1, 64) ~= fp then\n"                                                    \
    "      return redis.error_reply('EXISTS request_id ' .. string.match(ik, '[^:]*$') ..\n"       \
    "        ' was used for another request; use a new id for a new request')\n"                   \
    "    end\n"                                                                                    \
    "    return {0, cjson.decode(string.sub(ex, 65))}\n"                                           \
    "  end\n"                                                                                      \
    "end\n"                                                                                        \
    "local res = body()\n"                                                                         \
    "if type(res) == 'table' and res.err then return res end\n"                                    \
    "if fp ~= '' then redis.call('SET', ik, fp .. cjson.encode(res), 'EX', ttl) end\n"             \
    "return {1, res}\n"

#define STORE_STR_(x) #x
#define STORE_STR(x) STORE_STR_(x)

#define SENTINELS_MAX 8

typedef struct st_hostport {
    char host[256];
    int port;
} st_hostport;

typedef struct st_addr {
    char host[256]; /* the primary: given, or as the Sentinels last named it */
    int port;
    char path[256]; /* unix socket when set */
    int db;
    char user[128]; /* ACL user; "" with a password: the default user */
    char pass[256]; /* "": no AUTH. Never logged. */
    /* redis-sentinel://: the Sentinels and the name of the primary they
     * watch; nsentinel 0 for a fixed address. */
    int nsentinel;
    st_hostport sentinel[SENTINELS_MAX];
    char master[128];
    char sentinel_pass[256];
} st_addr;

/* An idle connection and the endpoint generation it was dialled under. */
typedef struct st_conn {
    redisContext *c;
    unsigned gen;
} st_conn;

struct store {
    st_addr a; /* a.host and a.port under mu: the Sentinels move them */
    pthread_mutex_t mu;
    pthread_cond_t wake; /* the monitor: resolve now */
    st_conn idle[POOL_MAX];
    int nidle;
    /* Bumped whenever the primary may have changed: connections of an older
     * generation are closed instead of pooled, the tail and the notice
     * reader dial again. */
    _Atomic unsigned gen;
    _Atomic int suspect; /* a connection saw the primary fail: ask again */
    _Atomic int stopping;
    int monitoring;
    pthread_t monitor;
    /* The Sentinel that answered last, kept connected (monitor thread, or
     * store_open before it starts): polls reuse it, not a dial each. */
    redisContext *sentinel_c;
    int sentinel_i;
    int64_t notice_retention_ms;
    int replicas;      /* WAIT for this many replicas before acknowledging */
    int replicas_wait; /* ms */
};

store_err st_fail(store_err e, char *err, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* url: redis://[user[:password]@]host[:port][/db] (user and password
 * percent-encoded) or unix:/path[?db=N]; a password (and user) the URL does
 * not give come from TRACESVC_REDIS_PASSWORD (_USER) or the first line of
 * the file TRACESVC_REDIS_PASSWORD_FILE. -1 when it does not parse. */
int st_parse_url(const char *url, st_addr *a);
/* url with its credentials replaced by *** (for messages). */
void st_redact(const char *url, char *out, size_t cap);
/* AUTH on c as user (or the default user) when pass is set; -1 with err
 * set when refused. what names the server in the message. */
int st_auth(redisContext *c, const char *user, const char *pass, const char *what, char *err,
            size_t cap);
/* A pooled connection if there is one (*reused = 1), else a new one. */
redisContext *st_pool_get(store *s, int *reused, unsigned *gen, char *err, size_t cap);
/* Back into the pool, unless broken or dialled to a primary since left. */
void st_pool_put(store *s, redisContext *c, unsigned gen);
/* A record as name/value pairs (from HGETALL or a stream entry), its
 * fields ("" and 0 when absent), and applying it to the replica. */
typedef struct st_rec {
    redisReply **el;
    size_t n;
} st_rec;
const char *st_rec_str(const st_rec *x, const char *name);
int64_t st_rec_num(const st_rec *x, const char *name);
rep_err st_apply(rep *r, const char *type, const char *id, const st_rec *x);
/* "{tc}:type:id" */
void st_key_of(char *out, size_t cap, const char *type, const char *id);
/* A blocking connection with the store's timeout, on the selected db. */
redisContext *st_dial(const st_addr *a, char *err, size_t cap);
/* The address of the primary as now known, and its generation. */
void st_current(store *s, st_addr *a, unsigned *gen);
/* A connection to the primary as now known, and the generation it belongs
 * to (see store.gen). */
redisContext *st_dial_primary(store *s, unsigned *gen, char *err, size_t cap);
/* An error reply or a broken connection that says the primary is not
 * where we think (READONLY, MASTERDOWN, LOADING, connection lost): in
 * Sentinel mode the monitor asks the Sentinels again at once. */
void st_suspect(store *s, const char *why);
/* 1 when reply is an error a failover explains. */
int st_failover_reply(const redisReply *r);

/*
 * One command on a pooled connection. Error replies from our scripts start
 * with a word naming the store_err (NOTFOUND, PRECONDITION, DENIED, ARG);
 * the rest is the message. Caller frees the reply with freeReplyObject.
 */
store_err st_run(store *s, int argc, const char **argv, const size_t *lens, redisReply **out,
                 char *err, size_t cap);
/* The same with its own reply timeout. A timeout is STORE_ERR_TIMEOUT and
 * is never retried: the command may have run. */
store_err st_run_timeout(store *s, int argc, const char **argv, const size_t *lens,
                         redisReply **out, int timeout_ms, char *err, size_t cap);

#define STORE_IDEM_KEY_MAX (32 + 2 * 128 + STORE_REQUEST_ID_MAX)

/* A write: acknowledged once WAIT confirms it on the store's replicas. */
store_err st_run_durable(store *s, int argc, const char **argv, const size_t *lens,
                         redisReply **out, char *err, size_t cap);

/* An argv under construction: strings with explicit lengths. */
typedef struct st_args {
    char idem_key[STORE_IDEM_KEY_MAX], idem_fp[65], idem_ttl[24];
    int n;
    const char *v[ARGV_MAX];
    size_t len[ARGV_MAX];
    char num[ARGV_MAX][24]; /* storage for formatted numbers */
    int timeout_ms;         /* 0: TIMEOUT_MS */
    int durable;            /* a write to confirm on the replicas (WAIT) */
} st_args;

void st_arg(st_args *a, const char *s);
void st_arg_bin(st_args *a, const void *p, size_t n);
void st_arg_i64(st_args *a, int64_t x);
void st_arg_u64(st_args *a, uint64_t x);
/* Start a as EVAL of lua with nkeys keys. */
void st_script(st_args *a, const char *lua, int nkeys);
store_err st_run_args(store *s, st_args *a, redisReply **r, char *err, size_t cap);

/* The idempotency key and fingerprint of a write script (LUA_IDEM_*): the
 * key, into key (cap >= STORE_IDEM_KEY_MAX), goes first among KEYS; fp
 * (65 bytes) and ttl (24) first among ARGV. */
void st_idem_parts(const store_idem *idem, char *key, char fp[65], char ttl[24]);
/* Start a as EVAL of a wrapped write script with nkeys keys of its own;
 * the caller adds its keys, then st_idem_argv, then its ARGV. */
void st_script_idem(st_args *a, const char *lua, int nkeys, const store_idem *idem);
void st_idem_argv(st_args *a);
/* Replace *r ({ran, outcome}) by its outcome, setting idem->replayed. */
store_err st_idem_reply(redisReply **r, store_idem *idem, char *err, size_t cap);
/* Run a wrapped write script (st_script_idem) and unwrap its outcome. */
store_err st_run_write(store *s, st_args *a, store_idem *idem, redisReply **r, char *err,
                       size_t cap);

#endif
