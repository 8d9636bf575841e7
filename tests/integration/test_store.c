/*
 * test_store.c - the Redis store against a real redis-server: the write
 * rules enforced inside Redis, idempotent issuance, snapshot, tailing the
 * change stream into a second replica, Redis stopped and restarted, and a
 * trimmed stream (gap) forcing a fresh snapshot. URLs: unit/test_store_url.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "redis_fixture.h"
#include "replica.h"
#include "store.h"
#include "store_int.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#define MAKER "91310000MA1FL0001R"
#define OTHER "91440300MA5G000020"
#define CERT "2024010701000001"
#define ACTOR "regulator:test"

static uint64_t affected; /* recalls: kept with the outcome, unused here */

typedef struct fx {
    rf redis;
    store *s;
    char err[STORE_ERR_MAX];
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));

    if (!f || rf_start(&f->redis) != 0)
        return -1;
    if (store_open(f->redis.url, &f->s, f->err, sizeof(f->err)) != STORE_OK)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;

    store_free(f->s);
    rf_destroy(&f->redis);
    free(f);
    return 0;
}

static void seed(fx *f)
{
    static const char *cats[] = {"0704", "1201"};
    rep_cert_fields c = {CERT, REP_KIND_CCC, MAKER, cats, 2, REP_CERT_VALID, "", 0, 1};
    uint64_t rev;

    assert_int_equal(store_put_mfr(f->s, NULL, ACTOR, MAKER, "Acme Power", REP_MFR_ACTIVE, &rev,
                                   f->err, sizeof(f->err)),
                     STORE_OK);
    assert_int_equal(rev, 1);
    assert_int_equal(store_put_mfr(f->s, NULL, ACTOR, OTHER, "Other Co", REP_MFR_ACTIVE, &rev,
                                   f->err, sizeof(f->err)),
                     STORE_OK);
    assert_int_equal(store_put_cert(f->s, NULL, ACTOR, &c, &rev, NULL, f->err, sizeof(f->err)),
                     STORE_OK);
    assert_int_equal(rev, 3);
}

static store_err product(fx *f, const char *caller, const char *cert, const char *cat, char *id)
{
    store_product_req q = {caller, cert, cat, "Acme", "PB-10000", "", "", "test", 1800000000};
    uint64_t rev;
    int64_t registered;

    return store_register_product(f->s, NULL, &q, id, &registered, &rev, f->err, sizeof(f->err));
}

static void test_write_rules(void **state)
{
    fx *f = *state;
    char pid[REP_PRODUCT_ID_MAX + 1];
    uint64_t rev;

    seed(f);
    assert_int_equal(product(f, MAKER, CERT, "0704", pid), STORE_OK);
    assert_string_equal(pid, "P1");
    assert_int_equal(product(f, OTHER, CERT, "0704", pid), STORE_ERR_PRECONDITION);
    assert_string_equal(f->err, "certificate " CERT " is not held by " OTHER);
    assert_int_equal(product(f, MAKER, CERT, "9999", pid), STORE_ERR_PRECONDITION);
    assert_string_equal(f->err, "certificate " CERT " does not cover category 9999");
    assert_int_equal(product(f, MAKER, "NOPE", "0704", pid), STORE_ERR_PRECONDITION);
    assert_string_equal(f->err, "certificate NOPE is not registered");

    assert_int_equal(store_set_cert_status(f->s, NULL, ACTOR, CERT, REP_CERT_SUSPENDED,
                                           "inspection", 5, &rev, NULL, f->err, sizeof(f->err)),
                     STORE_OK);
    assert_int_equal(product(f, MAKER, CERT, "0704", pid), STORE_ERR_PRECONDITION);
    assert_string_equal(f->err, "certificate " CERT " is suspended");
    assert_int_equal(store_set_cert_status(f->s, NULL, ACTOR, "NOPE", REP_CERT_VALID, "", 5, &rev,
                                           NULL, f->err, sizeof(f->err)),
                     STORE_ERR_NOTFOUND);
    assert_int_equal(store_set_cert_status(f->s, NULL, ACTOR, CERT, REP_CERT_VALID, "", 6, &rev,
                                           NULL, f->err, sizeof(f->err)),
                     STORE_OK);
    assert_int_equal(store_put_mfr(f->s, NULL, ACTOR, MAKER, "Acme Power", REP_MFR_SUSPENDED, &rev,
                                   f->err, sizeof(f->err)),
                     STORE_OK);
    assert_int_equal(product(f, MAKER, CERT, "0704", pid), STORE_ERR_PRECONDITION);
    assert_string_equal(f->err, "manufacturer " MAKER " is suspended");
}

/* A write that gets no answer in time is not "nothing happened": it says it
 * may have been made, is not sent again, and is indeed made once. */
static void test_timeout_is_not_retried(void **state)
{
    fx *f = *state;
    uint64_t rev = 0;

    seed(f);
    /* Redis busy for 3 s (longer than the store's 2 s timeout). */
    assert_int_equal(rf_cli(&f->redis, "DEBUG SLEEP 3 > /dev/null &"), 0);
    rf_sleep_ms(200);
    assert_int_equal(store_put_mfr(f->s, NULL, ACTOR, OTHER, "Renamed", REP_MFR_ACTIVE, &rev,
                                   f->err, sizeof(f->err)),
                     STORE_ERR_TIMEOUT);
    assert_non_null(strstr(f->err, "may or may not have been made"));
    rf_sleep_ms(1500);
    /* It ran, once: revision 4 (seed wrote 1..3), and the next write is 5. */
    assert_int_equal(store_put_mfr(f->s, NULL, ACTOR, OTHER, "Again", REP_MFR_ACTIVE, &rev, f->err,
                                   sizeof(f->err)),
                     STORE_OK);
    assert_int_equal(rev, 5);
}

/* A batch under request id req (scope: the caller); fp names the request
 * (its first byte is enough to tell two apart). *existing: replayed. */
static void make_batch_fp(fx *f, const char *caller, const char *pid, const char *req, uint8_t fp,
                          store_batch *b, int *existing)
{
    char scope[96];
    store_idem idem = {scope, req, {fp}, 0};
    uint64_t rev;

    memset(b, 0, sizeof(*b));
    assert_int_equal(store_next_batch_id(f->s, &b->id, f->err, sizeof(f->err)), STORE_OK);
    snprintf(b->product_id, sizeof(b->product_id), "%s", pid);
    snprintf(b->issuer, sizeof(b->issuer), "%s", caller);
    snprintf(b->cert_number, sizeof(b->cert_number), "%s", CERT);
    snprintf(b->request_id, sizeof(b->request_id), "%s", req);
    b->quantity = 1000;
    b->key_id = 1;
    b->profile = REP_PROFILE_MAC;
    b->issued = 1800000000;
    b->manifest_len =
        (size_t)snprintf(b->manifest, sizeof(b->manifest), "batch %llu", (unsigned long long)b->id);
    memset(b->signature, 0xab, sizeof(b->signature));
    b->manifest_key_id = 2;
    f->err[0] = '\0';
    snprintf(scope, sizeof(scope), "manufacturer:%s", caller);
    (void)store_create_batch(f->s, &idem, b, &rev, f->err, sizeof(f->err));
    *existing = idem.replayed;
}

static void make_batch(fx *f, const char *caller, const char *pid, const char *req, store_batch *b,
                       int *existing)
{
    make_batch_fp(f, caller, pid, req, 1, b, existing);
}

static void test_batches(void **state)
{
    fx *f = *state;
    char pid[REP_PRODUCT_ID_MAX + 1];
    store_batch b, again, got;
    int existing;
    uint64_t rev;

    seed(f);
    assert_int_equal(product(f, MAKER, CERT, "0704", pid), STORE_OK);
    make_batch(f, MAKER, pid, "req-1", &b, &existing);
    assert_string_equal(f->err, "");
    assert_int_equal(existing, 0);
    assert_int_equal(b.id, 1);
    /* The same request id: the same batch, not a second one. */
    make_batch(f, MAKER, pid, "req-1", &again, &existing);
    assert_int_equal(existing, 1);
    assert_int_equal(again.id, 1);
    assert_int_equal(again.quantity, 1000);
    assert_memory_equal(again.manifest, "batch 1", 7);
    /* The same id for another request: refused, nothing stored. */
    make_batch_fp(f, MAKER, pid, "req-1", 2, &again, &existing);
    assert_string_equal(f->err, "request_id req-1 was used for another request; use a new id for "
                                "a new request");
    assert_int_equal(store_get_batch(f->s, again.id, &got, f->err, sizeof(f->err)),
                     STORE_ERR_NOTFOUND);
    /* Another caller's id space is its own. */
    make_batch(f, OTHER, pid, "req-1", &again, &existing);
    assert_int_equal(existing, 0);
    assert_string_equal(f->err, "product P1 belongs to another manufacturer");
    /* Another maker cannot issue for this product. */
    make_batch(f, OTHER, pid, "", &again, &existing);
    assert_string_equal(f->err, "product P1 belongs to another manufacturer");

    assert_int_equal(store_get_batch(f->s, 1, &got, f->err, sizeof(f->err)), STORE_OK);
    assert_string_equal(got.issuer, MAKER);
    assert_int_equal(got.manifest_key_id, 2);
    assert_int_equal(got.signature[63], 0xab);
    assert_int_equal(store_get_batch(f->s, 99, &got, f->err, sizeof(f->err)), STORE_ERR_NOTFOUND);

    assert_int_equal(store_recall(f->s, NULL, MAKER, 1, 10, 19, "swelling", 5, &affected, &rev,
                                  NULL, f->err, sizeof(f->err)),
                     STORE_OK);
    assert_int_equal(store_recall(f->s, NULL, OTHER, 1, 10, 19, "x", 5, &affected, &rev, NULL,
                                  f->err, sizeof(f->err)),
                     STORE_ERR_DENIED);
    assert_int_equal(store_recall(f->s, NULL, MAKER, 1, 10, 1000, "x", 5, &affected, &rev, NULL,
                                  f->err, sizeof(f->err)),
                     STORE_ERR_ARG);
    assert_string_equal(f->err, "last_serial 1000 is beyond the batch quantity 1000");
    assert_int_equal(store_recall(f->s, NULL, MAKER, 7, 1, 2, "x", 5, &affected, &rev, NULL, f->err,
                                  sizeof(f->err)),
                     STORE_ERR_NOTFOUND);
}

/* Pump the loop until cond holds or 15 s pass (reconnect backoff is at
 * most 5 s). */
static int pump(struct event_base *base, int (*cond)(void *), void *arg)
{
    int i;

    for (i = 0; i < 1500; i++) {
        if (cond(arg))
            return 1;
        event_base_loop(base, EVLOOP_NONBLOCK | EVLOOP_ONCE);
        rf_sleep_ms(10);
    }
    return cond(arg);
}

typedef struct watch {
    rep *r;
    int want;
    uint64_t batch;
} watch;

static int cert_is(void *arg)
{
    watch *w = arg;
    rep_cert *c = rep_cert_find(w->r, CERT);
    return c && atomic_load(&c->v)->status == w->want;
}

static int batch_there(void *arg)
{
    watch *w = arg;
    return rep_batch_get(w->r, w->batch) != NULL;
}

static void test_snapshot_and_tail(void **state)
{
    fx *f = *state;
    char pid[REP_PRODUCT_ID_MAX + 1], id[64];
    struct event_base *base = event_base_new();
    rep *r = rep_new();
    store_tail *t;
    store_batch b;
    int existing;
    uint64_t rev;
    watch w = {r, REP_CERT_REVOKED, 0};

    seed(f);
    assert_int_equal(product(f, MAKER, CERT, "0704", pid), STORE_OK);
    make_batch(f, MAKER, pid, "", &b, &existing);
    assert_int_equal(store_recall(f->s, NULL, MAKER, b.id, 3, 4, "swelling", 5, &affected, &rev,
                                  NULL, f->err, sizeof(f->err)),
                     STORE_OK);

    /* A node starting now loads everything... */
    assert_int_equal(store_snapshot(f->s, r, id, sizeof(id), &rev, f->err, sizeof(f->err)),
                     STORE_OK);
    assert_int_equal(rev, rep_revision(r));
    assert_true(rev >= 6);
    assert_non_null(rep_batch_get(r, b.id));
    assert_string_equal(rep_batch_get(r, b.id)->product->cert->number, CERT);
    assert_string_equal(rep_recalled(atomic_load(&rep_batch_get(r, b.id)->recalls), 3)->reason,
                        "swelling");
    assert_string_equal(atomic_load(&rep_mfr_find(r, MAKER)->v)->name, "Acme Power");

    /* ...and then follows the change stream. */
    t = store_tail_new(f->s, r, base, id, rev);
    assert_non_null(t);
    assert_int_equal(store_set_cert_status(f->s, NULL, ACTOR, CERT, REP_CERT_REVOKED, "fire", 7,
                                           &rev, NULL, f->err, sizeof(f->err)),
                     STORE_OK);
    assert_true(pump(base, cert_is, &w));
    assert_string_equal(atomic_load(&rep_cert_find(r, CERT)->v)->reason, "fire");
    assert_int_equal(rep_revision(r), rev);
    assert_true(store_tail_connected(t));
    assert_true(store_tail_lag_ms(t) < 3000);

    /* Redis goes away: the tail notices; writes fail UNAVAILABLE. */
    rf_stop(&f->redis);
    {
        int i;
        for (i = 0; i < 100 && store_tail_connected(t); i++) {
            event_base_loop(base, EVLOOP_NONBLOCK | EVLOOP_ONCE);
            rf_sleep_ms(10);
        }
    }
    assert_false(store_tail_connected(t));
    assert_int_equal(
        store_put_mfr(f->s, NULL, ACTOR, MAKER, "x", REP_MFR_ACTIVE, &rev, f->err, sizeof(f->err)),
        STORE_ERR_UNAVAILABLE);
    /* The replica still answers from what it has. */
    assert_int_equal(atomic_load(&rep_cert_find(r, CERT)->v)->status, REP_CERT_REVOKED);

    /* Back again (AOF kept everything): the tail reconnects, catches up. */
    assert_int_equal(rf_start(&f->redis), 0);
    w.want = REP_CERT_VALID;
    assert_int_equal(store_set_cert_status(f->s, NULL, ACTOR, CERT, REP_CERT_VALID, "restored", 8,
                                           &rev, NULL, f->err, sizeof(f->err)),
                     STORE_OK);
    assert_true(pump(base, cert_is, &w));
    assert_true(store_tail_connected(t));

    /* A gap: while the tail is away, the stream is trimmed to nothing and a
     * batch is made; the tail must notice and load it from a snapshot. */
    rf_stop(&f->redis);
    {
        int i;
        for (i = 0; i < 100 && store_tail_connected(t); i++) {
            event_base_loop(base, EVLOOP_NONBLOCK | EVLOOP_ONCE);
            rf_sleep_ms(10);
        }
    }
    assert_int_equal(rf_start(&f->redis), 0);
    make_batch(f, MAKER, pid, "", &b, &existing);
    make_batch(f, MAKER, pid, "", &b, &existing);
    assert_int_equal(rf_cli(&f->redis, "XTRIM '{tc}:changes' MAXLEN 1"), 0);
    w.batch = b.id - 1; /* its entry was trimmed away */
    assert_true(pump(base, batch_there, &w));
    w.batch = b.id;
    assert_true(pump(base, batch_there, &w));

    store_tail_free(t);
    event_base_free(base);
    rep_reclaim(r);
    rep_free(r);
}

static int has(const char *body, size_t len, const char *needle)
{
    size_t n = strlen(needle);

    for (size_t i = 0; i + n <= len; i++)
        if (memcmp(body + i, needle, n) == 0)
            return 1;
    return 0;
}

/* The audit log: the write scripts append entries in the same step as
 * their change; queries by subject, kind, time and page; the sequencing
 * lease is exclusive, and a commit needs the lease and the right size. */
static void test_audit_log(void **state)
{
    fx *f = *state;
    store_audit_entry *e = NULL;
    store_audit_query q = {.subject = CERT, .kind = "", .limit = 100};
    uint64_t n = 0, next, idx;
    size_t k = 0;
    int held = 0;

    seed(f);
    assert_int_equal(store_set_cert_status(f->s, NULL, ACTOR, CERT, REP_CERT_SUSPENDED,
                                           "inspection", 5, &(uint64_t){0}, NULL, f->err,
                                           sizeof(f->err)),
                     STORE_OK);
    assert_int_equal(store_audit_count(f->s, &n, f->err, sizeof(f->err)), STORE_OK);
    assert_int_equal(n, 4); /* two makers, the certificate, its suspension */

    /* by subject: the certificate's two entries, in order, whole */
    assert_int_equal(store_audit_query_run(f->s, &q, &e, &k, &next, f->err, sizeof(f->err)),
                     STORE_OK);
    assert_int_equal(k, 2);
    assert_int_equal(next, UINT64_MAX);
    assert_string_equal(e[1].kind, "cert");
    assert_string_equal(e[1].actor, ACTOR);
    assert_int_equal(e[1].index, 3);
    assert_true(e[0].index < e[1].index && e[0].time_ms <= e[1].time_ms);
    assert_true(has(e[1].body, e[1].body_len, "\nstatus 2\n"));
    assert_true(has(e[1].body, e[1].body_len, "\nreason inspection\n"));
    store_audit_entries_free(e, k);

    /* by kind, paged one at a time */
    q.subject = "";
    q.kind = "manufacturer";
    q.limit = 1;
    assert_int_equal(store_audit_query_run(f->s, &q, &e, &k, &next, f->err, sizeof(f->err)),
                     STORE_OK);
    assert_int_equal(k, 1);
    assert_string_equal(e[0].subject, MAKER);
    assert_int_not_equal(next, UINT64_MAX);
    store_audit_entries_free(e, k);
    q.start = next;
    assert_int_equal(store_audit_query_run(f->s, &q, &e, &k, &next, f->err, sizeof(f->err)),
                     STORE_OK);
    assert_int_equal(k, 1);
    assert_string_equal(e[0].subject, OTHER);
    store_audit_entries_free(e, k);

    /* a time range after everything: nothing */
    q = (store_audit_query){
        .subject = "", .kind = "", .from_ms = INT64_C(4102444800000), .limit = 10};
    assert_int_equal(store_audit_query_run(f->s, &q, &e, &k, &next, f->err, sizeof(f->err)),
                     STORE_OK);
    assert_int_equal(k, 0);
    store_audit_entries_free(e, k);

    /* a direct append gets the next index; an oversized body is refused */
    assert_int_equal(store_audit_append(f->s, "verify", "node:a", "plat-1", "total 3", 7, &idx,
                                        f->err, sizeof(f->err)),
                     STORE_OK);
    assert_int_equal(idx, 4);
    assert_int_equal(store_audit_append(f->s, "verify", "node:a", "p", "", STORE_AUDIT_BODY_MAX + 1,
                                        &idx, f->err, sizeof(f->err)),
                     STORE_ERR_ARG);

    /* the lease: one holder; a commit without it, or from the wrong size, fails */
    assert_int_equal(store_audit_lease(f->s, "node-a", 5000, &held, f->err, sizeof(f->err)),
                     STORE_OK);
    assert_true(held);
    assert_int_equal(store_audit_lease(f->s, "node-b", 5000, &held, f->err, sizeof(f->err)),
                     STORE_OK);
    assert_false(held);
    {
        store_tree_head h = {.size = 1, .time_unix = 5, .kid = 1};
        const uint8_t *lv[1] = {h.root};
        size_t len[1] = {32};
        assert_int_equal(
            store_audit_commit(f->s, "node-b", 0, &h, lv, len, 1, f->err, sizeof(f->err)),
            STORE_ERR_DENIED);
        assert_int_equal(
            store_audit_commit(f->s, "node-a", 3, &h, lv, len, 1, f->err, sizeof(f->err)),
            STORE_ERR_PRECONDITION);
        assert_int_equal(
            store_audit_commit(f->s, "node-a", 0, &h, lv, len, 1, f->err, sizeof(f->err)),
            STORE_OK);
        assert_int_equal(store_audit_head(f->s, &h, f->err, sizeof(f->err)), STORE_OK);
        assert_int_equal(h.size, 1);
    }
    assert_int_equal(store_audit_release(f->s, "node-a", f->err, sizeof(f->err)), STORE_OK);
    assert_int_equal(store_audit_lease(f->s, "node-b", 5000, &held, f->err, sizeof(f->err)),
                     STORE_OK);
    assert_true(held);
}

/* Scans: read-only looks write nothing; travel evidence ages out; every key
 * of a code expires its ttl after the last recorded scan. */
static void test_scans(void **state)
{
    fx *f = *state;
    store_scan_rules rules = {3600 * 1000, 60 * 1000, 5000};
    const char *code = "00000000000000000000000000000000AA";
    int64_t t = 1800000000000LL;
    store_scan out;
    long long ttl;
    char cmd[300];
    FILE *p;

    /* A look: nothing stored. */
    assert_int_equal(
        store_scan_record(f->s, code, "", "", 0, t, &rules, &out, f->err, sizeof(f->err)),
        STORE_OK);
    assert_int_equal(out.devices, 0);
    assert_int_equal(out.first_ms, 0);
    /* Beijing, then Shenzhen 10 minutes later: travel evidence. */
    assert_int_equal(
        store_scan_record(f->s, code, "110101", "dev1", 1, t, &rules, &out, f->err, sizeof(f->err)),
        STORE_OK);
    assert_int_equal(store_scan_record(f->s, code, "440305", "dev2", 1, t + 600000, &rules, &out,
                                       f->err, sizeof(f->err)),
                     STORE_OK);
    assert_int_equal(out.fast_move, 1);
    assert_int_equal(out.devices, 2);
    assert_int_equal(out.regions, 2);
    /* Read 4 s later: still there; 6 s later (travel_age 5 s): aged out. */
    assert_int_equal(
        store_scan_record(f->s, code, "", "", 0, t + 604000, &rules, &out, f->err, sizeof(f->err)),
        STORE_OK);
    assert_int_equal(out.fast_move, 1);
    assert_int_equal(
        store_scan_record(f->s, code, "", "", 0, t + 606000, &rules, &out, f->err, sizeof(f->err)),
        STORE_OK);
    assert_int_equal(out.fast_move, 0);
    assert_int_equal(out.devices, 2); /* the rest of the history stays */
    /* Each key of the code lives ttl_ms (60 s) past the last scan. */
    snprintf(cmd, sizeof(cmd), "redis-cli -s %s PTTL 'tc:{%s}:scan-devices'", f->redis.sock, code);
    p = popen(cmd, "r");
    assert_non_null(p);
    assert_int_equal(fscanf(p, "%lld", &ttl), 1);
    pclose(p);
    assert_true(ttl > 50000 && ttl <= 60000);
}

/* A script Redis lost (SCRIPT FLUSH, as on a restarted or promoted server
 * without them) is sent again whole and loaded: the write succeeds, and the
 * next one finds it under the SHA-1 the build computed. */
static void test_noscript(void **state)
{
    fx *f = *state;
    const char *flush[] = {"SCRIPT", "FLUSH"};
    const char *exists[] = {"SCRIPT", "EXISTS", st_lua_put.sha,
                            "0000000000000000000000000000000000000000"};
    const char *unknown[] = {"EVALSHA", "0000000000000000000000000000000000000000", "0"};
    redisReply *r;
    uint64_t rev;

    seed(f);
    assert_int_equal(st_run(f->s, 2, flush, NULL, &r, f->err, sizeof(f->err)), STORE_OK);
    freeReplyObject(r);
    assert_int_equal(st_run(f->s, 4, exists, NULL, &r, f->err, sizeof(f->err)), STORE_OK);
    assert_int_equal(r->element[0]->integer, 0);
    freeReplyObject(r);
    assert_int_equal(store_put_mfr(f->s, NULL, ACTOR, MAKER, "Acme Again", REP_MFR_ACTIVE, &rev,
                                   f->err, sizeof(f->err)),
                     STORE_OK);
    assert_int_equal(rev, 4);
    assert_int_equal(st_run(f->s, 4, exists, NULL, &r, f->err, sizeof(f->err)), STORE_OK);
    assert_int_equal(r->element[0]->integer, 1); /* loaded, under our SHA-1 */
    assert_int_equal(r->element[1]->integer, 0);
    freeReplyObject(r);
    /* A SHA-1 that is none of ours stays the error it is. */
    assert_int_equal(st_run(f->s, 3, unknown, NULL, &r, f->err, sizeof(f->err)),
                     STORE_ERR_PROTOCOL);
    assert_non_null(strstr(f->err, "NOSCRIPT"));
}

/* A batch record damaged in Redis (a profile no code has, or none) is
 * refused as such when read back, never handed on to issue codes under. */
static void test_damaged_batch(void **state)
{
    fx *f = *state;
    const char *set[] = {"HSET", "{tc}:batch:99", "quantity", "5", "profile", "7"};
    const char *del[] = {"HDEL", "{tc}:batch:99", "profile"};
    store_batch b;
    redisReply *r;

    assert_int_equal(st_run(f->s, 6, set, NULL, &r, f->err, sizeof(f->err)), STORE_OK);
    freeReplyObject(r);
    assert_int_equal(store_get_batch(f->s, 99, &b, f->err, sizeof(f->err)), STORE_ERR_PROTOCOL);
    assert_string_equal(f->err, "batch 99 is damaged in redis: profile 7");
    assert_int_equal(st_run(f->s, 3, del, NULL, &r, f->err, sizeof(f->err)), STORE_OK);
    freeReplyObject(r);
    assert_int_equal(store_get_batch(f->s, 99, &b, f->err, sizeof(f->err)), STORE_ERR_PROTOCOL);
    assert_string_equal(f->err, "batch 99 is damaged in redis: profile 0");
}

/* Listings bound while a certificate is suspended: the suspension reads
 * the platforms before its script runs (so that the script is given every
 * key), and must still write a notice for exactly the listings bound
 * before it - by the audit log's order - on every platform, new ones too
 * (half the bindings bring a platform of their own). */
#define BINDS 400
typedef struct binder {
    fx *f;
    _Atomic int done;
    int failed;
} binder;

static void *bind_many(void *arg)
{
    binder *b = arg;
    char err[STORE_ERR_MAX];

    for (int i = 0; i < BINDS; i++) {
        char plat[32], lid[32], code[32];
        store_binding x = {lid, code, 1, CERT, (uint32_t)i, 0, 0};

        snprintf(plat, sizeof(plat), i % 2 ? "p%d" : "shop", i);
        snprintf(lid, sizeof(lid), "L%d", i);
        snprintf(code, sizeof(code), "K%d", i);
        if (store_bind_listings(b->f->s, NULL, plat, &x, 1, err, sizeof(err)) != STORE_OK)
            b->failed++;
        atomic_store(&b->done, i + 1);
    }
    return NULL;
}

/* The listing ids of plat's notices written at revision rev. */
static size_t notice_ids(fx *f, const char *plat, uint64_t rev, char ids[][16], size_t cap)
{
    char key[64];
    const char *argv[] = {"XRANGE", key, "-", "+"};
    redisReply *r;
    size_t n = 0;

    snprintf(key, sizeof(key), "{tc}:notices:%s", plat);
    assert_int_equal(st_run(f->s, 4, argv, NULL, &r, f->err, sizeof(f->err)), STORE_OK);
    for (size_t i = 0; i < r->elements; i++) {
        st_rec x = {r->element[i]->element[1]->element, r->element[i]->element[1]->elements};
        char *save = NULL, *tok, *s;

        if ((uint64_t)st_rec_num(&x, "rev") != rev)
            continue;
        s = strdup(st_rec_str(&x, "listings"));
        for (tok = strtok_r(s, "\n", &save); tok && n < cap; tok = strtok_r(NULL, "\n", &save))
            snprintf(ids[n++], 16, "%s", tok);
        free(s);
    }
    freeReplyObject(r);
    return n;
}

/* The listing ids plat bound before the audit entry at index. */
static size_t bound_before(const store_audit_entry *e, size_t k, uint64_t index, char ids[][16],
                           size_t cap)
{
    size_t n = 0;

    for (size_t i = 0; i < k; i++)
        if (e[i].index < index && n < cap)
            assert_int_equal(sscanf(e[i].body, "listing %15s", ids[n++]), 1);
    return n;
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void test_fanout_under_binds(void **state)
{
    enum { CHANGES = 40 };
    fx *f = *state;
    binder b = {f, 0, 0};
    pthread_t t;
    store_audit_entry *e = NULL, *le = NULL;
    store_audit_query q = {.subject = CERT, .kind = "cert", .limit = 100};
    uint64_t rev, next, at[CHANGES], revs[CHANGES];
    size_t k = 0, lk = 0, total = 0;
    int changes = 0;
    static char got[BINDS][16], want[BINDS][16];

    seed(f);
    assert_int_equal(pthread_create(&t, NULL, bind_many, &b), 0);
    while (atomic_load(&b.done) < BINDS / 8)
        rf_sleep_ms(1);
    /* Suspend and reinstate while the bindings come in; each change is
     * refused only when platforms kept coming, and then changed nothing. */
    while (atomic_load(&b.done) < BINDS && changes < CHANGES) {
        int status = changes % 2 ? REP_CERT_VALID : REP_CERT_SUSPENDED, tries = 0;
        store_err r;
        do
            r = store_set_cert_status(f->s, NULL, ACTOR, CERT, status, "inspection", 5, &rev, NULL,
                                      f->err, sizeof(f->err));
        while (r == STORE_ERR_UNAVAILABLE && strstr(f->err, "kept changing") && ++tries < 100);
        assert_int_equal(r, STORE_OK);
        changes++;
    }
    pthread_join(t, NULL);
    assert_int_equal(b.failed, 0);
    assert_true(changes >= 2);

    /* Each change's audit index and revision (its body is the record). */
    assert_int_equal(store_audit_query_run(f->s, &q, &e, &k, &next, f->err, sizeof(f->err)),
                     STORE_OK);
    assert_int_equal(k, (size_t)changes + 1); /* registered, then the changes */
    for (int c = 0; c < changes; c++) {
        const char *p = strstr(e[c + 1].body, "rev ");
        assert_non_null(p);
        at[c] = e[c + 1].index;
        revs[c] = strtoull(p + 4, NULL, 10);
    }
    store_audit_entries_free(e, k);
    for (int i = 0; i < BINDS; i = i ? i + 2 : 1) { /* shop, then p1, p3, ... */
        store_audit_query lq = {.kind = "listing", .limit = 1000};
        char plat[32];

        snprintf(plat, sizeof(plat), i % 2 ? "p%d" : "shop", i);
        lq.subject = plat;
        assert_int_equal(store_audit_query_run(f->s, &lq, &le, &lk, &next, f->err, sizeof(f->err)),
                         STORE_OK);
        for (int c = 0; c < changes; c++) {
            size_t ng = notice_ids(f, plat, revs[c], got, BINDS);
            size_t nw = bound_before(le, lk, at[c], want, BINDS);

            qsort(got, ng, sizeof(got[0]), cmp_id);
            qsort(want, nw, sizeof(want[0]), cmp_id);
            assert_int_equal(ng, nw);
            for (size_t j = 0; j < ng; j++)
                assert_string_equal(got[j], want[j]);
            total += ng;
        }
        store_audit_entries_free(le, lk);
    }
    assert_true(total >= BINDS / 8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_write_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_is_not_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_and_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scans, setup, teardown),
        cmocka_unit_test_setup_teardown(test_noscript, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fanout_under_binds, setup, teardown),
    };
    signal(SIGPIPE, SIG_IGN); /* as tracesvc does: see store.h */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
