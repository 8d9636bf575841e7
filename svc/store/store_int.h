/*
 * store_int.h - private to svc/store/: what its files share (the endpoint,
 * commands and scripts, records). The only header besides the .c files that
 * names hiredis.
 */
#ifndef TC_STORE_INT_H
#define TC_STORE_INT_H

#include "scripts.h"
#include "store.h"

#include <hiredis/hiredis.h>
#include <pthread.h>

#define POOL_MAX 16
#define TIMEOUT_MS 2000
/* Writes that fan out delisting notices: a certificate with a million
 * listings takes about a second of Redis time. */
#define FANOUT_TIMEOUT_MS 30000

#define SENTINELS_MAX 8

/* The delisting notices not yet acknowledged in full, every platform's:
 * "platform\nnotice id" scored by the notice's time (lua/lib/notice.lua
 * adds, lua/notice_ack.lua takes out). */
#define K_UNACKED "{tc}:notices-unacked"

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
    /* rediss://: TLS through the bridge (tls.h), whose socket is path; host
     * and port stay the Redis it reaches. tls is set by store_open. */
    int use_tls;
    char tls_ca[256], tls_cert[256], tls_key[256], tls_sni[256];
    struct st_tls *tls;
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
/* The general form: a reply timeout of its own, and a write (durable) is
 * confirmed on the store's replicas (WAIT) before it is answered. */
store_err st_exec(store *s, int argc, const char **argv, const size_t *lens, redisReply **out,
                  int timeout_ms, int durable, char *err, size_t cap);
/* The same with its own reply timeout. A timeout is STORE_ERR_TIMEOUT and
 * is never retried: the command may have run. */
store_err st_run_timeout(store *s, int argc, const char **argv, const size_t *lens,
                         redisReply **out, int timeout_ms, char *err, size_t cap);

#define STORE_IDEM_KEY_MAX (32 + 2 * 128 + STORE_REQUEST_ID_MAX)

/*
 * A command under construction: a script (EVALSHA), its KEYS, then its
 * ARGV. Strings are kept by pointer (they
 * must outlive the run) unless formatted (st_keyf, st_argf, st_arg_i64,
 * st_arg_u64), which are copied into a's own storage. It grows as needed;
 * a failed allocation or a key after an ARGV makes the run fail, so
 * callers check once, at st_run_args. st_run_args and st_run_write free
 * it; st_args_free is for one never run.
 */
#define ST_ARGS_INLINE 64
typedef struct st_chunk st_chunk;
typedef struct st_args {
    int n, cap;
    const char **v;
    size_t *len;
    const char *v0[ST_ARGS_INLINE];
    size_t len0[ST_ARGS_INLINE];
    st_chunk *chunks;
    int nkeys;       /* KEYS so far */
    int in_argv;     /* ARGV begun: no more keys */
    int idem;        /* wrapped write (lua/lib/idem.lua) */
    const char *bad; /* why the run must fail, or NULL */
    char idem_key[STORE_IDEM_KEY_MAX], idem_fp[65], idem_ttl[24], numkeys[16];
    int timeout_ms; /* 0: TIMEOUT_MS */
    int durable;    /* a write to confirm on the replicas (WAIT) */
} st_args;

/* Start a as EVALSHA of lua; KEYS and ARGV follow. */
void st_script(st_args *a, const st_lua *lua);
/* Start a as a wrapped write (--! idem): its idempotency key goes first
 * among KEYS, its fingerprint and TTL first among ARGV (added with the
 * first ARGV); acknowledged once WAIT confirms it. */
void st_script_idem(st_args *a, const st_lua *lua, const store_idem *idem);
/* Start a as a plain command (its name is the first st_arg). */
void st_key(st_args *a, const char *key);
void st_keyf(st_args *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The four keys lua/lib/audit.lua writes for an entry of kind on subject. */
void st_audit_keys(st_args *a, const char *kind, const char *subject);
void st_arg(st_args *a, const char *s);
void st_arg_bin(st_args *a, const void *p, size_t n);
void st_argf(st_args *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void st_arg_i64(st_args *a, int64_t x);
void st_arg_u64(st_args *a, uint64_t x);
void st_args_free(st_args *a);
/* Run a (and free it). A script Redis does not hold (NOSCRIPT: a restarted
 * or promoted server) is sent again whole with EVAL, which loads it. */
store_err st_run_args(store *s, st_args *a, redisReply **r, char *err, size_t cap);

/* Replace *r ({ran, outcome}) by its outcome, setting idem->replayed. */
store_err st_idem_reply(redisReply **r, store_idem *idem, char *err, size_t cap);
/* Run a wrapped write script (st_script_idem) and unwrap its outcome. */
store_err st_run_write(store *s, st_args *a, store_idem *idem, redisReply **r, char *err,
                       size_t cap);

/* A script refused because what its caller read changed before it ran (a
 * guard in the script answered RETRY): the caller reads again. Never
 * returned outside svc/store/. */
#define ST_ERR_RETRY ((store_err)1000)
/* How often a write whose reads keep changing under it is tried. */
#define ST_RETRIES 5

#endif
