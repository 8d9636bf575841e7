/*
 * writes.c - the registry's writes: each one Lua script (svc/store/lua/)
 * that checks, changes, logs on the change stream and appends to the
 * audit log in one atomic step.
 */
#include "store.h"
#include "store_int.h"

#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define K_REV "{tc}:rev"
#define K_STREAM "{tc}:changes"
#define K_SEQ_PRODUCT "{tc}:seq:product"
#define K_SEQ_BATCH "{tc}:seq:batch"

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

/* A guarded write whose reads kept changing under it. */
static store_err busy(char *err, size_t cap, const char *what)
{
    return st_fail(STORE_ERR_UNAVAILABLE, err, cap,
                   "the listings of %s kept changing while it was written (%d tries); nothing "
                   "was changed: retry shortly (with the same request_id)",
                   what, ST_RETRIES);
}

/*
 * The members of some sets, read in one atomic step (lua/read_sets.lua):
 * one array of strings per set. The writes that fan out delisting notices
 * read what they fan out over this way, name it in KEYS, and let the
 * script check it is still so.
 */
static store_err read_sets(store *s, char *const *sets, size_t n, redisReply **out, char *err,
                           size_t cap)
{
    st_args a;
    redisReply *r;
    store_err e;
    size_t i, j;

    st_script(&a, &st_lua_read_sets);
    for (i = 0; i < n; i++)
        st_key(&a, sets[i]);
    if ((e = st_run_args(s, &a, &r, err, cap)) != STORE_OK)
        return e;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != n)
        goto bad;
    for (i = 0; i < n; i++) {
        if (r->element[i]->type != REDIS_REPLY_ARRAY)
            goto bad;
        for (j = 0; j < r->element[i]->elements; j++)
            if (r->element[i]->element[j]->type != REDIS_REPLY_STRING)
                goto bad;
    }
    *out = r;
    return STORE_OK;
bad:
    freeReplyObject(r);
    return st_fail(STORE_ERR_PROTOCOL, err, cap, "redis: unexpected reply to read_sets");
}

/* The keys lua/lib/notice.lua writes for a platform. */
static void notice_keys(st_args *a, const char *plat)
{
    st_keyf(a, "{tc}:notices:%s", plat);
    st_keyf(a, "{tc}:notice-log:%s", plat);
    st_keyf(a, "{tc}:notice-state:%s", plat);
}

/* {revision, notices} from put.lua. */
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

/*
 * Write a manufacturer's or certificate's fields (fv: name, value, ...)
 * with lua/put.lua. A certificate's platforms are read first, so that the
 * script is given every key its delisting notices touch; when a platform
 * came in between, they are read again.
 */
static store_err put_record(store *s, store_idem *idem, const char *type, const char *id,
                            int must_exist, const char *actor, const char *const *fv, size_t nfv,
                            uint64_t *rev, uint32_t *notices, char *err, size_t errcap)
{
    int cert = strcmp(type, "cert") == 0, attempt;
    char key[160], plats[160];
    char *sets[1] = {plats};
    store_err e = STORE_OK;

    st_key_of(key, sizeof(key), type, id);
    snprintf(plats, sizeof(plats), "{tc}:cert-platforms:%s", id);
    for (attempt = 0; attempt < ST_RETRIES; attempt++) {
        redisReply *plan = NULL, *r, *pl;
        st_args a;
        size_t i;

        if (cert && (e = read_sets(s, sets, 1, &plan, err, errcap)) != STORE_OK)
            return e;
        pl = plan ? plan->element[0] : NULL;
        st_script_idem(&a, &st_lua_put, idem);
        st_key(&a, key);
        st_key(&a, K_REV);
        st_key(&a, K_STREAM);
        st_audit_keys(&a, cert ? "cert" : "manufacturer", id);
        if (pl) {
            st_key(&a, plats);
            st_audit_keys(&a, "delist", id);
            for (i = 0; i < pl->elements; i++) {
                st_keyf(&a, "{tc}:cert-listings:%s:%s", id, pl->element[i]->str);
                notice_keys(&a, pl->element[i]->str);
            }
            st_key(&a, K_UNACKED);
        }
        st_arg(&a, type);
        st_arg(&a, id);
        st_arg_i64(&a, STORE_STREAM_MAXLEN);
        st_arg(&a, must_exist ? "1" : "0");
        st_arg_i64(&a, s->notice_retention_ms);
        st_arg(&a, actor);
        st_arg_i64(&a, STORE_NOTICE_LISTINGS);
        if (pl)
            st_arg_u64(&a, pl->elements);
        else
            st_arg(&a, "");
        for (i = 0; pl && i < pl->elements; i++)
            st_arg(&a, pl->element[i]->str);
        for (i = 0; i < nfv; i++)
            st_arg(&a, fv[i]);
        if (cert)
            a.timeout_ms = FANOUT_TIMEOUT_MS;
        e = st_run_write(s, &a, idem, &r, err, errcap);
        if (plan)
            freeReplyObject(plan);
        if (e == STORE_OK)
            return put_reply(r, rev, notices, err, errcap);
        if (e != ST_ERR_RETRY)
            return e;
    }
    return busy(err, errcap, id);
}

store_err store_put_mfr(store *s, store_idem *idem, const char *actor, const char *credit_code,
                        const char *name, int status, uint64_t *rev, char *err, size_t errcap)
{
    char st[16];
    const char *fv[] = {"name", name, "status", st};

    snprintf(st, sizeof(st), "%d", status);
    return put_record(s, idem, "mfr", credit_code, 0, actor, fv, 4, rev, NULL, err, errcap);
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
    char cats[REP_CATEGORIES_MAX * (REP_CATEGORY_MAX + 1) + 1], num[4][24];
    const char *fv[] = {"kind", num[0],   "holder",  f->holder,     "cats", cats,      "status",
                        num[1], "reason", f->reason, "valid_until", num[2], "updated", num[3]};

    join_cats(f, cats, sizeof(cats));
    snprintf(num[0], sizeof(num[0]), "%d", f->kind);
    snprintf(num[1], sizeof(num[1]), "%d", f->status);
    snprintf(num[2], sizeof(num[2]), "%" PRId64, (int64_t)f->valid_until);
    snprintf(num[3], sizeof(num[3]), "%" PRId64, (int64_t)f->updated);
    return put_record(s, idem, "cert", f->number, 0, actor, fv, sizeof(fv) / sizeof(fv[0]), rev,
                      notices, err, errcap);
}

store_err store_set_cert_status(store *s, store_idem *idem, const char *actor, const char *number,
                                int status, const char *reason, int64_t now, uint64_t *rev,
                                uint32_t *notices, char *err, size_t errcap)
{
    char st[16], when[24];
    const char *fv[] = {"status", st, "reason", reason, "updated", when};

    snprintf(st, sizeof(st), "%d", status);
    snprintf(when, sizeof(when), "%" PRId64, now);
    return put_record(s, idem, "cert", number, 1, actor, fv, 6, rev, notices, err, errcap);
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
    st_key_of(kp, sizeof(kp), "product", product_id);
    st_key_of(kc, sizeof(kc), "cert", q->cert_number);
    st_key_of(km, sizeof(km), "mfr", q->caller);
    st_script_idem(&a, &st_lua_product, idem);
    st_key(&a, kp);
    st_key(&a, kc);
    st_key(&a, km);
    st_key(&a, K_REV);
    st_key(&a, K_STREAM);
    st_audit_keys(&a, "product", product_id);
    st_arg_i64(&a, STORE_STREAM_MAXLEN);
    st_arg(&a, product_id);
    st_arg(&a, q->caller);
    st_arg(&a, q->cert_number);
    st_arg(&a, q->category);
    st_arg(&a, q->brand);
    st_arg(&a, q->model);
    st_arg(&a, q->gtin ? q->gtin : "");
    st_arg_i64(&a, q->now);
    st_arg(&a, q->passport ? q->passport : "");
    st_arg(&a, q->actor ? q->actor : q->caller);
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

store_err store_update_passport(store *s, store_idem *idem, const char *actor, const char *caller,
                                const char *product_id, const char *passport, uint64_t *rev,
                                char *err, size_t errcap)
{
    char kp[128];
    st_args a;
    redisReply *r;
    store_err e;

    st_key_of(kp, sizeof(kp), "product", product_id);
    st_script_idem(&a, &st_lua_product_update, idem);
    st_key(&a, kp);
    st_key(&a, K_REV);
    st_key(&a, K_STREAM);
    st_audit_keys(&a, "product", product_id);
    st_arg_i64(&a, STORE_STREAM_MAXLEN);
    st_arg(&a, product_id);
    st_arg(&a, caller);
    st_arg(&a, passport);
    st_arg(&a, actor);
    if ((e = st_run_write(s, &a, idem, &r, err, errcap)) != STORE_OK)
        return e;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_INTEGER) {
        freeReplyObject(r);
        return st_fail(STORE_ERR_PROTOCOL, err, errcap,
                       "redis: unexpected reply to product_update");
    }
    *rev = (uint64_t)r->element[0]->integer;
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
    st_key_of(kb, sizeof(kb), "batch", id);
    st_key_of(kp, sizeof(kp), "product", b->product_id);
    st_key_of(kc, sizeof(kc), "cert", b->cert_number);
    st_key_of(km, sizeof(km), "mfr", b->issuer);
    st_script_idem(&a, &st_lua_batch, idem);
    st_key(&a, kb);
    st_key(&a, kp);
    st_key(&a, K_REV);
    st_key(&a, K_STREAM);
    st_key(&a, kc);
    st_key(&a, km);
    st_audit_keys(&a, "issue", id);
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
    st_arg(&a, b->production_date);
    st_arg(&a, b->lot);
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

/* --- recalls ----------------------------------------------------------------- */

/*
 * What a recall fans out over, read before it: the batch's certificate,
 * the platforms with listings under it (*plats: {[platforms]}) and each
 * one's listings of the batch (*lists: {[listings], ...}, in the same
 * order). The script checks they are still so.
 */
static store_err recall_plan(store *s, const char *id, char *cert, size_t certcap,
                             redisReply **plats, redisReply **lists, char *err, size_t errcap)
{
    char kb[64], kp[320];
    const char *argv[] = {"HGET", kb, "cert"};
    char *kp1[1] = {kp}, **sets;
    redisReply *r;
    store_err e;
    size_t i, n;

    st_key_of(kb, sizeof(kb), "batch", id);
    if ((e = st_run(s, 3, argv, NULL, &r, err, errcap)) != STORE_OK)
        return e;
    snprintf(cert, certcap, "%s", r->type == REDIS_REPLY_STRING ? r->str : "");
    freeReplyObject(r);
    snprintf(kp, sizeof(kp), "{tc}:cert-platforms:%s", cert);
    if ((e = read_sets(s, kp1, 1, plats, err, errcap)) != STORE_OK)
        return e;
    n = (*plats)->element[0]->elements;
    if (!(sets = calloc(n ? n : 1, sizeof(*sets))))
        goto nomem;
    for (i = 0; i < n; i++) {
        const char *p = (*plats)->element[0]->element[i]->str;
        size_t len = strlen(id) + strlen(p) + 32;
        if (!(sets[i] = malloc(len)))
            break;
        snprintf(sets[i], len, "{tc}:batch-listings:%s:%s", id, p);
    }
    e = i == n ? read_sets(s, sets, n, lists, err, errcap)
               : st_fail(STORE_ERR_NOMEM, err, errcap, "out of memory");
    while (i > 0)
        free(sets[--i]);
    free(sets);
    if (e)
        freeReplyObject(*plats);
    return e;
nomem:
    freeReplyObject(*plats);
    return st_fail(STORE_ERR_NOMEM, err, errcap, "out of memory");
}

store_err store_recall(store *s, store_idem *idem, const char *caller, uint64_t batch_id,
                       uint32_t first, uint32_t last, const char *reason, int64_t now,
                       uint64_t *affected, uint64_t *rev, uint32_t *notices, char *err,
                       size_t errcap)
{
    char kb[64], kr[64], id[24], cert[256];
    redisReply *r = NULL;
    store_err e = ST_ERR_RETRY;
    int attempt;

    if (first > last)
        return st_fail(STORE_ERR_ARG, err, errcap, "first_serial %u is after last_serial %u", first,
                       last);
    snprintf(id, sizeof(id), "%" PRIu64, batch_id);
    st_key_of(kb, sizeof(kb), "batch", id);
    st_key_of(kr, sizeof(kr), "recalls", id);
    for (attempt = 0; attempt < ST_RETRIES && e == ST_ERR_RETRY; attempt++) {
        redisReply *plats = NULL, *lists = NULL, *pl;
        st_args a;
        size_t i, j;

        if ((e = recall_plan(s, id, cert, sizeof(cert), &plats, &lists, err, errcap)) != STORE_OK)
            return e;
        pl = plats->element[0];
        st_script_idem(&a, &st_lua_recall, idem);
        st_key(&a, kb);
        st_key(&a, kr);
        st_key(&a, K_REV);
        st_key(&a, K_STREAM);
        st_audit_keys(&a, "recall", id);
        st_keyf(&a, "{tc}:cert:%s", cert);
        st_keyf(&a, "{tc}:cert-platforms:%s", cert);
        st_audit_keys(&a, "delist", cert);
        for (i = 0; i < pl->elements; i++) {
            const redisReply *ids = lists->element[i];
            notice_keys(&a, pl->element[i]->str);
            st_keyf(&a, "{tc}:batch-listings:%s:%s", id, pl->element[i]->str);
            for (j = 0; j < ids->elements; j++)
                st_keyf(&a, "{tc}:listing:%s:%s", pl->element[i]->str, ids->element[j]->str);
        }
        st_key(&a, K_UNACKED);
        st_arg_i64(&a, STORE_STREAM_MAXLEN);
        st_arg(&a, id);
        st_arg(&a, caller);
        st_arg_u64(&a, first);
        st_arg_u64(&a, last);
        st_arg(&a, reason);
        st_arg_i64(&a, now);
        st_arg_i64(&a, s->notice_retention_ms);
        st_arg_u64(&a, *affected);
        st_arg_i64(&a, STORE_NOTICE_LISTINGS);
        st_arg(&a, cert);
        st_arg_u64(&a, pl->elements);
        for (i = 0; i < pl->elements; i++) {
            const redisReply *ids = lists->element[i];
            st_arg(&a, pl->element[i]->str);
            st_arg_u64(&a, ids->elements);
            for (j = 0; j < ids->elements; j++)
                st_arg(&a, ids->element[j]->str);
        }
        a.timeout_ms = FANOUT_TIMEOUT_MS;
        e = st_run_write(s, &a, idem, &r, err, errcap);
        freeReplyObject(plats);
        freeReplyObject(lists);
    }
    if (e == ST_ERR_RETRY)
        return busy(err, errcap, id);
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

/* --- listings ---------------------------------------------------------------- */

/* What a listing is bound to before a call binds it: code, batch, cert. */
typedef struct bound {
    const char *code, *batch, *cert;
    size_t i; /* the binding, for sorting */
} bound;

/* By listing id, then by position in the call. */
static int by_listing(const bound *p, const bound *q, const store_binding *bb)
{
    int c = strcmp(bb[p->i].listing_id, bb[q->i].listing_id);

    return c ? c : (p->i > q->i) - (p->i < q->i);
}

/* A merge sort: qsort has no context argument (qsort_r is not C11), and
 * the bindings through a static would not be thread-safe. */
static void sort_bound(bound *v, bound *tmp, size_t n, const store_binding *b)
{
    size_t h = n / 2, i = 0, j = h, k = 0;

    if (n < 2)
        return;
    sort_bound(v, tmp, h, b);
    sort_bound(v + h, tmp, n - h, b);
    while (i < h && j < n)
        tmp[k++] = by_listing(&v[i], &v[j], b) <= 0 ? v[i++] : v[j++];
    while (i < h)
        tmp[k++] = v[i++];
    while (j < n)
        tmp[k++] = v[j++];
    memcpy(v, tmp, n * sizeof(*v));
}

/*
 * old[i]: what binding i's listing is bound to just before binding i runs
 * in the script - as read (plan: code, batch, cert per binding), or, for a
 * listing bound twice in one call, the earlier binding's.
 */
static int plan_old(const store_binding *b, size_t n, const redisReply *plan, bound *old,
                    char (*nums)[24])
{
    bound *v = malloc(n * sizeof(*v)), *tmp = malloc(n * sizeof(*tmp));
    size_t k;

    if (!v || !tmp) {
        free(v);
        free(tmp);
        return -1;
    }
    for (k = 0; k < n; k++) {
        old[k].code = plan->element[3 * k]->str;
        old[k].batch = plan->element[3 * k + 1]->str;
        old[k].cert = plan->element[3 * k + 2]->str;
        v[k].i = k;
    }
    sort_bound(v, tmp, n, b);
    for (k = 1; k < n; k++)
        if (strcmp(b[v[k].i].listing_id, b[v[k - 1].i].listing_id) == 0) {
            size_t i = v[k].i, j = v[k - 1].i; /* j < i: i binds after j */
            old[i].code = b[j].code;
            old[i].batch = nums[j];
            old[i].cert = b[j].cert_number;
        }
    free(v);
    free(tmp);
    return 0;
}

/* What each listing is bound to now (lua/bind_plan.lua). */
static store_err bind_plan(store *s, const char *platform, const store_binding *b, size_t n,
                           redisReply **out, char *err, size_t errcap)
{
    st_args a;
    redisReply *r;
    store_err e;
    size_t i;

    st_script(&a, &st_lua_bind_plan);
    for (i = 0; i < n; i++)
        st_keyf(&a, "{tc}:listing:%s:%s", platform, b[i].listing_id);
    if ((e = st_run_args(s, &a, &r, err, errcap)) != STORE_OK)
        return e;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 * n) {
        freeReplyObject(r);
        return st_fail(STORE_ERR_PROTOCOL, err, errcap, "redis: unexpected reply to bind_plan");
    }
    for (i = 0; i < r->elements; i++)
        if (r->element[i]->type != REDIS_REPLY_STRING) {
            freeReplyObject(r);
            return st_fail(STORE_ERR_PROTOCOL, err, errcap, "redis: unexpected bind_plan reply");
        }
    *out = r;
    return STORE_OK;
}

/* The keys of one binding in lua/bind.lua: five, and three more for a
 * listing that was bound. */
static void binding_keys(st_args *a, const char *plat, const store_binding *b, const char *batch,
                         const bound *old)
{
    st_keyf(a, "{tc}:listing:%s:%s", plat, b->listing_id);
    st_keyf(a, "{tc}:code:%s", b->code);
    st_keyf(a, "{tc}:cert-listings:%s:%s", b->cert_number, plat);
    st_keyf(a, "{tc}:batch-listings:%s:%s", batch, plat);
    st_keyf(a, "{tc}:cert-platforms:%s", b->cert_number);
    if (old->code[0]) {
        st_keyf(a, "{tc}:code:%s", old->code);
        st_keyf(a, "{tc}:cert-listings:%s:%s", old->cert, plat);
        st_keyf(a, "{tc}:batch-listings:%s:%s", old->batch, plat);
    }
}

store_err store_bind_listings(store *s, store_idem *idem, const char *platform, store_binding *b,
                              size_t n, char *err, size_t errcap)
{
    char(*nums)[24];
    bound *old;
    redisReply *r = NULL;
    store_err e = ST_ERR_RETRY;
    size_t i;
    int attempt;

    if (n == 0)
        return STORE_OK;
    if (n > STORE_BINDINGS_MAX)
        return st_fail(STORE_ERR_ARG, err, errcap, "at most %d bindings per call",
                       STORE_BINDINGS_MAX);
    nums = malloc(n * sizeof(*nums));
    old = malloc(n * sizeof(*old));
    if (!nums || !old) {
        free(nums);
        free(old);
        return st_fail(STORE_ERR_NOMEM, err, errcap, "out of memory");
    }
    for (i = 0; i < n; i++)
        snprintf(nums[i], sizeof(nums[i]), "%" PRIu64, b[i].batch);
    for (attempt = 0; attempt < ST_RETRIES && e == ST_ERR_RETRY; attempt++) {
        redisReply *plan = NULL;
        st_args a;

        if ((e = bind_plan(s, platform, b, n, &plan, err, errcap)) != STORE_OK)
            break;
        if (plan_old(b, n, plan, old, nums) != 0) {
            freeReplyObject(plan);
            e = st_fail(STORE_ERR_NOMEM, err, errcap, "out of memory");
            break;
        }
        st_script_idem(&a, &st_lua_bind, idem);
        st_audit_keys(&a, "listing", platform);
        for (i = 0; i < n; i++)
            binding_keys(&a, platform, &b[i], nums[i], &old[i]);
        st_arg(&a, platform);
        for (i = 0; i < n; i++) {
            st_arg(&a, b[i].listing_id);
            st_arg(&a, b[i].code);
            st_arg(&a, nums[i]);
            st_arg(&a, b[i].cert_number);
            st_arg_u64(&a, b[i].serial);
            st_arg(&a, old[i].code);
        }
        e = st_run_write(s, &a, idem, &r, err, errcap);
        freeReplyObject(plan);
    }
    free(nums);
    free(old);
    if (e == ST_ERR_RETRY)
        return busy(err, errcap, platform);
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

/* --- rate limits ------------------------------------------------------------ */

store_err store_gcra(store *s, const char *key, int64_t interval_us, int64_t tolerance_us,
                     int64_t *retry_us, char *err, size_t errcap)
{
    st_args a;
    redisReply *r;
    store_err e;
    uint64_t wait = 0;

    st_script(&a, &st_lua_gcra);
    st_key(&a, key);
    st_arg_i64(&a, interval_us);
    st_arg_i64(&a, tolerance_us);
    e = st_run_args(s, &a, &r, err, errcap);
    if (!e)
        e = int_reply(r, &wait, err, errcap);
    *retry_us = (int64_t)wait;
    return e;
}
