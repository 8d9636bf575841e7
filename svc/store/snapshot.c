/*
 * snapshot.c - reading the registry whole (at start and after a gap in the
 * change stream) and applying records to the replica.
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
    st_key_of(key, sizeof(key), "batch", sid);
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
    copy_field(b->production_date, sizeof(b->production_date), r->element, r->elements,
               "production_date");
    copy_field(b->lot, sizeof(b->lot), r->element, r->elements, "lot");
    b->quantity = (uint32_t)num_field(r->element, r->elements, "quantity");
    b->key_id = (unsigned)num_field(r->element, r->elements, "key_id");
    b->profile = (int)num_field(r->element, r->elements, "profile");
    if (b->profile != REP_PROFILE_MAC && b->profile != REP_PROFILE_SIG) {
        freeReplyObject(r);
        return st_fail(STORE_ERR_PROTOCOL, err, errcap,
                       "batch %" PRIu64 " is damaged in redis: profile %d", id, b->profile);
    }
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

/* --- applying records to the replica ------------------------------------- */

const char *st_rec_str(const st_rec *x, const char *name)
{
    const redisReply *v = field(x->el, x->n, name);
    return v && v->type == REDIS_REPLY_STRING ? v->str : "";
}

int64_t st_rec_num(const st_rec *x, const char *name)
{
    return num_field(x->el, x->n, name);
}

rep_err st_apply(rep *r, const char *type, const char *id, const st_rec *x)
{
    if (strcmp(type, "mfr") == 0)
        return rep_put_mfr(r, id, st_rec_str(x, "name"), (int)st_rec_num(x, "status"));
    if (strcmp(type, "cert") == 0) {
        char cats[REP_CATEGORIES_MAX * (REP_CATEGORY_MAX + 1) + 1], *p = cats, *save = NULL;
        const char *list[REP_CATEGORIES_MAX];
        const char *c = st_rec_str(x, "cats");
        rep_cert_fields f;
        size_t n = 0;

        if (strlen(c) >= sizeof(cats))
            return REP_ERR_ARG;
        memcpy(cats, c, strlen(c) + 1);
        for (p = strtok_r(cats, ",", &save); p && n < REP_CATEGORIES_MAX;
             p = strtok_r(NULL, ",", &save))
            list[n++] = p;
        f.number = id;
        f.kind = (int)st_rec_num(x, "kind");
        f.holder = st_rec_str(x, "holder");
        f.cat = list;
        f.ncat = n;
        f.status = (int)st_rec_num(x, "status");
        f.reason = st_rec_str(x, "reason");
        f.valid_until = st_rec_num(x, "valid_until");
        f.updated = st_rec_num(x, "updated");
        return rep_put_cert(r, &f);
    }
    if (strcmp(type, "product") == 0) {
        rep_product_fields p = {id,
                                st_rec_str(x, "category"),
                                st_rec_str(x, "brand"),
                                st_rec_str(x, "model"),
                                st_rec_str(x, "gtin"),
                                st_rec_num(x, "registered")};
        rep_err e = rep_put_product(r, &p, st_rec_str(x, "cert"), st_rec_str(x, "mfr"));
        return e ? e : rep_put_passport(r, id, st_rec_str(x, "passport"));
    }
    if (strcmp(type, "batch") == 0) {
        rep_err e =
            rep_put_batch(r, strtoull(id, NULL, 10), st_rec_str(x, "product"),
                          (uint32_t)st_rec_num(x, "quantity"), (unsigned)st_rec_num(x, "key_id"),
                          (int)st_rec_num(x, "profile"), st_rec_num(x, "issued"));
        return e ? e
                 : rep_set_batch_made(r, strtoull(id, NULL, 10), st_rec_str(x, "production_date"),
                                      st_rec_str(x, "lot"));
    }
    if (strcmp(type, "recall") == 0)
        return rep_put_recall(r, strtoull(id, NULL, 10), (uint32_t)st_rec_num(x, "first"),
                              (uint32_t)st_rec_num(x, "last"), st_rec_str(x, "reason"));
    if (strcmp(type, "key") == 0) {
        const char *st = st_rec_str(x, "state");
        int state = strcmp(st, "active") == 0        ? REP_KEY_ACTIVE
                    : strcmp(st, "compromised") == 0 ? REP_KEY_COMPROMISED
                                                     : REP_KEY_VERIFY_ONLY;
        return rep_put_key(r, (unsigned)strtoul(id, NULL, 10), (int)st_rec_num(x, "kind"), state,
                           st_rec_num(x, "activated"), st_rec_num(x, "since"));
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
    redisContext *c = st_pool_get(s, &reused, &gen, err, errcap);
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
            st_pool_put(s, c, gen);
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
                st_pool_put(s, c, gen);
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
                st_rec x = {h->element, h->elements};
                re = st_apply(r, type, id, &x);
            }
            freeReplyObject(h);
            if (re) {
                /* key lives in sc: the message first. The replies still
                 * pipelined on c would answer its next user: c goes. */
                store_err e = st_fail(re == REP_ERR_NOMEM ? STORE_ERR_NOMEM : STORE_ERR_PROTOCOL,
                                      err, errcap, "cannot load %s: %s", key, rep_strerror(re));
                freeReplyObject(sc);
                redisFree(c);
                return e;
            }
        }
        freeReplyObject(sc);
    } while (strcmp(cursor, "0") != 0);
    st_pool_put(s, c, gen);
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
