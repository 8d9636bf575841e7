/*
 * notices.c - delisting notices in Redis: reading a platform's stream
 * (pages and blocking waits), retention checks, acknowledgements and the
 * compliance report. The notices themselves are written by the scripts in
 * writes.c, atomically with the change that caused them.
 */
#include "store.h"
#include "store_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAGE 10000 /* ids per command when scanning the notice log */

/* --- cursors ------------------------------------------------------------- */

static int parse_u64(const char *s, size_t n, uint64_t *v)
{
    uint64_t x = 0;
    size_t i;

    if (n == 0 || n > 20)
        return -1;
    for (i = 0; i < n; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (d > 9 || x > (UINT64_MAX - d) / 10)
            return -1;
        x = x * 10 + d;
    }
    *v = x;
    return 0;
}

int store_cursor_parse(const char *s, uint64_t *ms, uint64_t *seq)
{
    const char *dash = strchr(s, '-');

    if (!dash || parse_u64(s, (size_t)(dash - s), ms) != 0)
        return -1;
    return parse_u64(dash + 1, strlen(dash + 1), seq);
}

static int cursor_cmp(uint64_t ams, uint64_t aseq, uint64_t bms, uint64_t bseq)
{
    if (ams != bms)
        return ams < bms ? -1 : 1;
    return aseq < bseq ? -1 : aseq > bseq;
}

static void notices_key(char *out, size_t cap, const char *what, const char *platform)
{
    snprintf(out, cap, "{tc}:%s:%s", what, platform);
}

/* --- parsing stream entries --------------------------------------------- */

static const redisReply *entry_field(const redisReply *kv, const char *name)
{
    size_t i;

    for (i = 0; i + 1 < kv->elements; i += 2)
        if (kv->element[i]->type == REDIS_REPLY_STRING && strcmp(kv->element[i]->str, name) == 0)
            return kv->element[i + 1]->type == REDIS_REPLY_STRING ? kv->element[i + 1] : NULL;
    return NULL;
}

static int64_t entry_num(const redisReply *kv, const char *name)
{
    const redisReply *v = entry_field(kv, name);
    return v ? strtoll(v->str, NULL, 10) : 0;
}

static void entry_copy(char *dst, size_t cap, const redisReply *kv, const char *name)
{
    const redisReply *v = entry_field(kv, name);
    size_t n = v ? v->len : 0;

    if (n >= cap)
        n = cap - 1;
    memcpy(dst, v ? v->str : "", n);
    dst[n] = '\0';
}

/* [id, [field, value, ...]] -> one allocation holding the notice, its
 * reason, its listing ids and the pointers to them. */
static store_notice *parse_entry(const redisReply *e)
{
    const redisReply *kv, *reason, *lst;
    size_t rlen, llen, n = 0, i, size;
    store_notice *sn;
    char *p;

    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[0]->type != REDIS_REPLY_STRING || e->element[1]->type != REDIS_REPLY_ARRAY ||
        e->element[0]->len > STORE_CURSOR_MAX)
        return NULL;
    kv = e->element[1];
    reason = entry_field(kv, "reason");
    lst = entry_field(kv, "listings");
    rlen = reason ? reason->len : 0;
    llen = lst ? lst->len : 0;
    if (llen) {
        n = 1;
        for (i = 0; i < llen; i++)
            n += lst->str[i] == '\n';
    }
    size = sizeof(*sn) + n * sizeof(char *) + rlen + 1 + llen + 1;
    sn = calloc(1, size);
    if (!sn)
        return NULL;
    sn->bytes = size;
    memcpy(sn->id, e->element[0]->str, e->element[0]->len);
    if (store_cursor_parse(sn->id, &sn->id_ms, &sn->id_seq) != 0) {
        free(sn);
        return NULL;
    }
    entry_copy(sn->platform, sizeof(sn->platform), kv, "platform");
    entry_copy(sn->cert, sizeof(sn->cert), kv, "cert");
    sn->batch = (uint64_t)entry_num(kv, "batch");
    sn->status = (int)entry_num(kv, "status");
    sn->effective = entry_num(kv, "effective");
    sn->rev = (uint64_t)entry_num(kv, "rev");
    sn->listings = (char **)(sn + 1);
    p = (char *)(sn->listings + n);
    memcpy(p, reason ? reason->str : "", rlen);
    sn->reason = p;
    p += rlen + 1;
    if (llen) {
        memcpy(p, lst->str, llen);
        sn->listings[sn->nlistings++] = p;
        for (i = 0; i < llen; i++)
            if (p[i] == '\n') {
                p[i] = '\0';
                sn->listings[sn->nlistings++] = p + i + 1;
            }
    }
    return sn;
}

/* Append the entries of one stream reply [[id, kv], ...] to *out. */
static store_err parse_entries(const redisReply *r, store_notice ***out, size_t *n, char *err,
                               size_t cap)
{
    store_notice **v;
    size_t i;

    if (r->type != REDIS_REPLY_ARRAY)
        return st_fail(STORE_ERR_PROTOCOL, err, cap, "redis: want an array of stream entries");
    if (r->elements == 0)
        return STORE_OK;
    v = realloc(*out, (*n + r->elements) * sizeof(*v));
    if (!v)
        return st_fail(STORE_ERR_NOMEM, err, cap, "out of memory");
    *out = v;
    for (i = 0; i < r->elements; i++) {
        store_notice *sn = parse_entry(r->element[i]);
        if (!sn)
            return st_fail(STORE_ERR_PROTOCOL, err, cap, "redis: a notice entry is malformed");
        v[(*n)++] = sn;
    }
    return STORE_OK;
}

static void free_notices(store_notice **v, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* --- pages and retention -------------------------------------------------- */

store_err store_notices_after(store *s, const char *platform, const char *cursor, size_t max,
                              store_notice ***out, size_t *n, char *err, size_t errcap)
{
    char key[128], from[STORE_CURSOR_MAX + 2], count[24];
    const char *argv[6];
    redisReply *r;
    store_err e;

    *out = NULL;
    *n = 0;
    notices_key(key, sizeof(key), "notices", platform);
    snprintf(from, sizeof(from), "%s%s", *cursor ? "(" : "-", cursor);
    snprintf(count, sizeof(count), "%zu", max);
    argv[0] = "XRANGE";
    argv[1] = key;
    argv[2] = from;
    argv[3] = "+";
    argv[4] = "COUNT";
    argv[5] = count;
    e = st_run(s, 6, argv, NULL, &r, err, errcap);
    if (e)
        return e;
    e = parse_entries(r, out, n, err, errcap);
    freeReplyObject(r);
    if (e) {
        free_notices(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return e;
}

store_err store_notices_check(store *s, const char *platform, const char *cursor, char *err,
                              size_t errcap)
{
    char ks[128], kl[128], oldest[STORE_CURSOR_MAX + 1] = "", newest[STORE_CURSOR_MAX + 1] = "";
    uint64_t cms, cseq, oms = 0, oseq = 0, nms = 0, nseq = 0;
    st_args a;
    redisReply *r;
    store_err e;

    if (!*cursor)
        return STORE_OK;
    if (store_cursor_parse(cursor, &cms, &cseq) != 0)
        return st_fail(STORE_ERR_ARG, err, errcap,
                       "cursor '%.48s' is not a notice id (want MS-SEQ, as sent in notice_id)",
                       cursor);
    notices_key(ks, sizeof(ks), "notices", platform);
    notices_key(kl, sizeof(kl), "notice-log", platform);
    st_script(&a, &st_lua_notice_window);
    st_key(&a, ks);
    st_key(&a, kl);
    if ((e = st_run_args(s, &a, &r, err, errcap)) != STORE_OK)
        return e;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_STRING ||
        r->element[0]->len > STORE_CURSOR_MAX || r->element[1]->len > STORE_CURSOR_MAX) {
        freeReplyObject(r);
        return st_fail(STORE_ERR_PROTOCOL, err, errcap, "redis: unexpected reply to window script");
    }
    memcpy(oldest, r->element[0]->str, r->element[0]->len);
    memcpy(newest, r->element[1]->str, r->element[1]->len);
    freeReplyObject(r);
    if (*oldest)
        store_cursor_parse(oldest, &oms, &oseq);
    if (*newest)
        store_cursor_parse(newest, &nms, &nseq);
    if (!*newest || cursor_cmp(cms, cseq, nms, nseq) > 0)
        return st_fail(STORE_ERR_RANGE, err, errcap,
                       "cursor %s is after the newest notice of platform %s (%s); oldest "
                       "available cursor: \"%s\"",
                       cursor, platform, *newest ? newest : "none yet", oldest);
    if (*oldest && cursor_cmp(cms, cseq, oms, oseq) < 0)
        return st_fail(STORE_ERR_RANGE, err, errcap,
                       "cursor %s is older than the retained notices of platform %s; oldest "
                       "available cursor: %s",
                       cursor, platform, oldest);
    return STORE_OK;
}

/* --- acknowledgements ----------------------------------------------------- */

store_err store_ack_notice(store *s, store_idem *idem, const char *platform, const char *notice_id,
                           const char *const *listings, size_t n, int64_t delisted_unix,
                           store_ack *res, char *err, size_t errcap)
{
    char ks[128], kh[128];
    size_t i;
    uint64_t ms, seq;
    st_args a;
    redisReply *r;
    store_err e;

    memset(res, 0, sizeof(*res));
    if (store_cursor_parse(notice_id, &ms, &seq) != 0)
        return st_fail(STORE_ERR_ARG, err, errcap, "notice_id '%.48s' is not a notice id (MS-SEQ)",
                       notice_id);
    if (n > STORE_NOTICE_LISTINGS)
        return st_fail(STORE_ERR_ARG, err, errcap, "%zu listing ids; a notice has at most %d", n,
                       STORE_NOTICE_LISTINGS);
    notices_key(ks, sizeof(ks), "notices", platform);
    notices_key(kh, sizeof(kh), "notice-state", platform);
    st_script_idem(&a, &st_lua_notice_ack, idem);
    st_key(&a, ks);
    st_key(&a, kh);
    st_keyf(&a, "{tc}:notice-acked:%s:%s", platform, notice_id);
    st_audit_keys(&a, "ack", platform);
    st_key(&a, K_UNACKED);
    st_arg(&a, notice_id);
    st_arg_i64(&a, delisted_unix);
    st_arg(&a, platform);
    for (i = 0; i < n; i++)
        st_arg(&a, listings[i]);
    if ((e = st_run_write(s, &a, idem, &r, err, errcap)) != STORE_OK)
        return e;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3) {
        freeReplyObject(r);
        return st_fail(STORE_ERR_PROTOCOL, err, errcap, "redis: unexpected reply to ack script");
    }
    res->listings = (uint32_t)r->element[0]->integer;
    res->acked = (uint32_t)r->element[1]->integer;
    res->complete = r->element[2]->integer != 0;
    freeReplyObject(r);
    return STORE_OK;
}

/* --- the compliance report -------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted v[0..n). */
static double percentile(const double *v, size_t n, double p)
{
    size_t rank;

    if (!n)
        return 0;
    rank = (size_t)(p / 100.0 * (double)n + 0.999999);
    if (rank < 1)
        rank = 1;
    return v[(rank > n ? n : rank) - 1];
}

/* Fold one page of notice ids and their states into c. */
static store_err fold_page(store *s, const char *platform, redisReply *ids, store_compliance *c,
                           double **lat, size_t *nlat, size_t max_unacked, char *err, size_t errcap)
{
    char key[128];
    const char **argv;
    redisReply *r;
    store_err e;
    size_t i;

    notices_key(key, sizeof(key), "notice-state", platform);
    argv = malloc((ids->elements + 2) * sizeof(*argv));
    if (!argv)
        return st_fail(STORE_ERR_NOMEM, err, errcap, "out of memory");
    argv[0] = "HMGET";
    argv[1] = key;
    for (i = 0; i < ids->elements; i++)
        argv[i + 2] = ids->element[i]->str;
    e = st_run(s, (int)ids->elements + 2, argv, NULL, &r, err, errcap);
    free(argv);
    if (e)
        return e;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != ids->elements) {
        freeReplyObject(r);
        return st_fail(STORE_ERR_PROTOCOL, err, errcap, "redis: unexpected reply to HMGET");
    }
    for (i = 0; i < r->elements; i++) {
        const char *id = ids->element[i]->str;
        unsigned long long total = 0, acked = 0, done = 0;
        uint64_t ms = 0, seq;
        if (r->element[i]->type == REDIS_REPLY_STRING)
            sscanf(r->element[i]->str, "%llu %llu %llu", &total, &acked, &done);
        store_cursor_parse(id, &ms, &seq);
        c->notices++;
        c->listings += total;
        if (done) {
            double *v = *lat;
            if ((*nlat & (*nlat - 1)) == 0 &&
                !(v = realloc(*lat, (*nlat ? *nlat * 2 : 64) * sizeof(double)))) {
                freeReplyObject(r);
                return st_fail(STORE_ERR_NOMEM, err, errcap, "out of memory");
            }
            *lat = v;
            v[(*nlat)++] = done > ms ? (double)(done - ms) / 1000.0 : 0.0;
            c->acked++;
        } else if (c->nunacked < max_unacked) {
            snprintf(c->unacked[c->nunacked++], STORE_CURSOR_MAX + 1, "%s", id);
        }
    }
    freeReplyObject(r);
    return STORE_OK;
}

store_err store_compliance_get(store *s, const char *platform, int64_t from_unix, int64_t to_unix,
                               size_t max_unacked, store_compliance *c, char *err, size_t errcap)
{
    char key[128], lo[24], hi[24], off[24], page[24];
    const char *argv[] = {"ZRANGEBYSCORE", key, lo, hi, "LIMIT", off, page};
    double *lat = NULL;
    size_t nlat = 0, offset = 0;
    store_err e = STORE_OK;

    memset(c, 0, sizeof(*c));
    if (to_unix && to_unix < from_unix)
        return st_fail(STORE_ERR_ARG, err, errcap,
                       "to_unix %" PRId64 " is before from_unix %" PRId64, to_unix, from_unix);
    c->unacked = calloc(max_unacked ? max_unacked : 1, sizeof(*c->unacked));
    if (!c->unacked)
        return st_fail(STORE_ERR_NOMEM, err, errcap, "out of memory");
    notices_key(key, sizeof(key), "notice-log", platform);
    snprintf(lo, sizeof(lo), "%" PRId64, from_unix > 0 ? from_unix * 1000 : 0);
    if (to_unix > 0)
        snprintf(hi, sizeof(hi), "%" PRId64, to_unix * 1000 + 999);
    else
        snprintf(hi, sizeof(hi), "+inf");
    snprintf(page, sizeof(page), "%d", PAGE);
    for (;;) {
        redisReply *r;
        size_t got;
        snprintf(off, sizeof(off), "%zu", offset);
        e = st_run(s, 7, argv, NULL, &r, err, errcap);
        if (e)
            break;
        if (r->type != REDIS_REPLY_ARRAY) {
            freeReplyObject(r);
            e = st_fail(STORE_ERR_PROTOCOL, err, errcap, "redis: unexpected reply to ZRANGE");
            break;
        }
        got = r->elements;
        if (got)
            e = fold_page(s, platform, r, c, &lat, &nlat, max_unacked, err, errcap);
        freeReplyObject(r);
        if (e || got < PAGE)
            break;
        offset += got;
    }
    if (!e && nlat) {
        qsort(lat, nlat, sizeof(*lat), cmp_double);
        c->p50_s = percentile(lat, nlat, 50);
        c->p99_s = percentile(lat, nlat, 99);
    }
    free(lat);
    if (e)
        store_compliance_free(c);
    return e;
}

void store_compliance_free(store_compliance *c)
{
    free(c->unacked);
    c->unacked = NULL;
    c->nunacked = 0;
}

/* --- the blocking reader ---------------------------------------------------- */

struct store_reader {
    store *s; /* the endpoint: connections come from it */
    redisContext *c;
    unsigned gen;                /* the endpoint generation c was dialled under */
    _Atomic long long client_id; /* 0: not connected */
};

store_err store_reader_open(store *s, store_reader **out, char *err, size_t errcap)
{
    store_reader *rd = calloc(1, sizeof(*rd));

    *out = NULL;
    if (!rd)
        return st_fail(STORE_ERR_NOMEM, err, errcap, "out of memory");
    rd->s = s;
    atomic_init(&rd->client_id, 0);
    *out = rd;
    return STORE_OK;
}

static void reader_drop(store_reader *rd)
{
    atomic_store(&rd->client_id, 0);
    if (rd->c)
        redisFree(rd->c);
    rd->c = NULL;
}

void store_reader_free(store_reader *rd)
{
    if (!rd)
        return;
    reader_drop(rd);
    free(rd);
}

static store_err reader_connect(store_reader *rd, char *err, size_t errcap)
{
    redisReply *r;

    rd->c = st_dial_primary(rd->s, &rd->gen, err, errcap);
    if (!rd->c)
        return STORE_ERR_UNAVAILABLE;
    r = redisCommand(rd->c, "CLIENT ID");
    if (!r || r->type != REDIS_REPLY_INTEGER) {
        if (r)
            freeReplyObject(r);
        reader_drop(rd);
        return st_fail(STORE_ERR_UNAVAILABLE, err, errcap, "redis: CLIENT ID failed");
    }
    atomic_store(&rd->client_id, r->integer);
    freeReplyObject(r);
    return STORE_OK;
}

store_err store_reader_wait(store_reader *rd, const char *const *platforms,
                            const char *const *after, size_t n, int block_ms, store_notice ***out,
                            size_t *nout, char *err, size_t errcap)
{
    char block[24], (*keys)[128] = NULL;
    const char **argv = NULL;
    redisReply *r = NULL;
    store_err e = STORE_OK;
    size_t i, argc = 0;

    *out = NULL;
    *nout = 0;
    if (rd->c && rd->gen != store_generation(rd->s))
        reader_drop(rd); /* the primary moved: read from the new one */
    if (!rd->c && (e = reader_connect(rd, err, errcap)) != STORE_OK)
        return e;
    keys = malloc((n ? n : 1) * sizeof(*keys));
    argv = malloc((6 + 2 * n) * sizeof(*argv));
    if (!keys || !argv) {
        e = st_fail(STORE_ERR_NOMEM, err, errcap, "out of memory");
        goto out;
    }
    snprintf(block, sizeof(block), "%d", block_ms);
    argv[argc++] = "XREAD";
    argv[argc++] = "COUNT";
    argv[argc++] = "64";
    argv[argc++] = "BLOCK";
    argv[argc++] = block;
    argv[argc++] = "STREAMS";
    for (i = 0; i < n; i++) {
        notices_key(keys[i], sizeof(keys[i]), "notices", platforms[i]);
        argv[argc++] = keys[i];
    }
    for (i = 0; i < n; i++)
        argv[argc++] = *after[i] ? after[i] : "0-0";
    r = redisCommandArgv(rd->c, (int)argc, argv, NULL);
    if (!r) {
        e = st_fail(STORE_ERR_UNAVAILABLE, err, errcap, "redis: %s", rd->c->errstr);
        reader_drop(rd);
        st_suspect(rd->s, "connection lost");
        goto out;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        e = st_fail(strncmp(r->str, "UNBLOCKED", 9) == 0 ? STORE_OK : STORE_ERR_UNAVAILABLE, err,
                    errcap, "redis: %s", r->str);
        if (st_failover_reply(r)) {
            reader_drop(rd);
            st_suspect(rd->s, r->str);
        }
        goto out;
    }
    /* nil on timeout, else [[key, [[id, kv], ...]], ...] */
    for (i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements && !e; i++) {
        const redisReply *s = r->element[i];
        if (s->type != REDIS_REPLY_ARRAY || s->elements != 2)
            e = st_fail(STORE_ERR_PROTOCOL, err, errcap, "redis: unexpected XREAD reply");
        else
            e = parse_entries(s->element[1], out, nout, err, errcap);
    }
    if (e) {
        free_notices(*out, *nout);
        *out = NULL;
        *nout = 0;
    }
out:
    if (r)
        freeReplyObject(r);
    free(keys);
    free(argv);
    return e;
}

int store_reader_interrupt(store *s, store_reader *rd)
{
    char id[24], err[STORE_ERR_MAX];
    const char *argv[] = {"CLIENT", "UNBLOCK", id, "ERROR"};
    long long cid = atomic_load(&rd->client_id);
    redisReply *r;
    int done = 0;

    if (!cid)
        return 0;
    snprintf(id, sizeof(id), "%lld", cid);
    if (st_run(s, 4, argv, NULL, &r, err, sizeof(err)) == STORE_OK) {
        done = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
        freeReplyObject(r);
    }
    return done;
}

/* --- notices not yet acknowledged --------------------------------------------- */

store_err store_unacked(store *s, size_t max, store_unacked_row *rows, size_t *nrows,
                        uint64_t *total, char *err, size_t errcap)
{
    char stop[24];
    const char *card[] = {"ZCARD", K_UNACKED};
    const char *range[] = {"ZRANGE", K_UNACKED, "0", stop, "WITHSCORES"};
    size_t cap = *nrows, i;
    redisReply *r;
    store_err e;

    *nrows = 0;
    *total = 0;
    if (!max)
        return STORE_OK;
    if ((e = st_run(s, 2, card, NULL, &r, err, errcap)) != STORE_OK)
        return e;
    if (r->type == REDIS_REPLY_INTEGER)
        *total = (uint64_t)r->integer;
    freeReplyObject(r);
    snprintf(stop, sizeof(stop), "%zu", max - 1);
    if ((e = st_run(s, 5, range, NULL, &r, err, errcap)) != STORE_OK)
        return e;
    if (r->type != REDIS_REPLY_ARRAY || r->elements % 2) {
        freeReplyObject(r);
        return st_fail(STORE_ERR_PROTOCOL, err, errcap, "redis: unexpected reply to ZRANGE");
    }
    for (i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *m = r->element[i], *sc = r->element[i + 1];
        const char *nl;
        size_t len, k;
        if (m->type != REDIS_REPLY_STRING || sc->type != REDIS_REPLY_STRING ||
            !(nl = memchr(m->str, '\n', m->len)))
            continue;
        len = (size_t)(nl - m->str);
        if (len > STORE_PLATFORM_MAX)
            continue;
        for (k = 0; k < *nrows; k++)
            if (strlen(rows[k].platform) == len && memcmp(rows[k].platform, m->str, len) == 0)
                break;
        if (k == *nrows) { /* the first seen is the oldest: ZRANGE is by time */
            if (*nrows == cap)
                continue;
            memcpy(rows[k].platform, m->str, len);
            rows[k].platform[len] = '\0';
            rows[k].oldest_ms = strtoll(sc->str, NULL, 10);
            rows[k].count = 0;
            (*nrows)++;
        }
        rows[k].count++;
    }
    freeReplyObject(r);
    return STORE_OK;
}
