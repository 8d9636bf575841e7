/*
 * sales.c - sold codes (docs/SALES.md): one record per code under the
 * code's own hash tag, written by lua/sale.lua and lua/sale_undo.lua;
 * the deployment's salt for order references; a request id claimed for a
 * request whose writes span many slots.
 */
#include "store.h"
#include "store_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OTHER_SALES_KEPT 32 /* other sales remembered per code; more only counted */

static void sale_keys(st_args *a, const char *code, int dups)
{
    st_keyf(a, "tc:{%s}:sale", code);
    if (dups)
        st_keyf(a, "tc:{%s}:sale-dups", code);
}

/* {state, platform, sold, others} from sale.lua. */
static store_err sale_reply(redisReply *r, store_sale *out, char *err, size_t errcap)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 5 ||
        r->element[0]->type != REDIS_REPLY_INTEGER || r->element[1]->type != REDIS_REPLY_STRING ||
        r->element[2]->type != REDIS_REPLY_INTEGER || r->element[3]->type != REDIS_REPLY_INTEGER ||
        r->element[4]->type != REDIS_REPLY_INTEGER)
        return st_fail(STORE_ERR_PROTOCOL, err, errcap, "redis: unexpected reply to sale script");
    out->state = (int)r->element[0]->integer;
    snprintf(out->platform, sizeof(out->platform), "%s", r->element[1]->str);
    out->sold_unix = r->element[2]->integer;
    out->others = (uint32_t)r->element[3]->integer;
    out->written = r->element[4]->integer != 0;
    return STORE_OK;
}

store_err store_sale_report(store *s, const char *code, const char *platform,
                            const char *order_hash, int64_t sold_unix, store_sale *out, char *err,
                            size_t errcap)
{
    st_args a;
    redisReply *r;
    store_err e;

    memset(out, 0, sizeof(*out));
    st_script(&a, &st_lua_sale);
    a.durable = 1; /* acknowledged once on the replicas, as every write */
    sale_keys(&a, code, 1);
    st_arg(&a, platform);
    st_arg(&a, order_hash);
    st_arg_i64(&a, sold_unix);
    st_arg_i64(&a, OTHER_SALES_KEPT);
    if ((e = st_run_args(s, &a, &r, err, errcap)) != STORE_OK)
        return e;
    e = sale_reply(r, out, err, errcap);
    freeReplyObject(r);
    return e;
}

store_err store_sale_undo(store *s, const char *code, const char *platform, const char *request_id,
                          int64_t window_s, int *replayed, char *err, size_t errcap)
{
    st_args a;
    redisReply *r;
    store_err e;

    st_script(&a, &st_lua_sale_undo);
    a.durable = 1;
    sale_keys(&a, code, 0);
    st_arg(&a, platform);
    st_arg_i64(&a, window_s);
    st_arg(&a, request_id ? request_id : "");
    if ((e = st_run_args(s, &a, &r, err, errcap)) != STORE_OK)
        return e;
    *replayed = r->type == REDIS_REPLY_INTEGER && r->integer == 2;
    freeReplyObject(r);
    return STORE_OK;
}

store_err store_sale_salt(store *s, char out[STORE_SALT_HEX + 1], char *err, size_t errcap)
{
    static const char hex[] = "0123456789abcdef";
    char fresh[STORE_SALT_HEX + 1];
    uint8_t rnd[STORE_SALT_HEX / 2];
    const char *set[] = {"SET", "{tc}:sale-salt", fresh, "NX"};
    const char *get[] = {"GET", "{tc}:sale-salt"};
    redisReply *r;
    store_err e;
    FILE *f = fopen("/dev/urandom", "rb");

    if (!f || fread(rnd, 1, sizeof(rnd), f) != sizeof(rnd)) {
        if (f)
            fclose(f);
        return st_fail(STORE_ERR_NOMEM, err, errcap, "cannot read /dev/urandom for the salt");
    }
    fclose(f);
    for (size_t i = 0; i < sizeof(rnd); i++) {
        fresh[2 * i] = hex[rnd[i] >> 4];
        fresh[2 * i + 1] = hex[rnd[i] & 15];
    }
    fresh[STORE_SALT_HEX] = '\0';
    /* The first node to ask makes it; every node reads the same one. */
    if ((e = st_exec(s, 4, set, NULL, &r, TIMEOUT_MS, 1, err, errcap)) != STORE_OK)
        return e;
    freeReplyObject(r);
    if ((e = st_run(s, 2, get, NULL, &r, err, errcap)) != STORE_OK)
        return e;
    if (r->type != REDIS_REPLY_STRING || r->len != STORE_SALT_HEX) {
        freeReplyObject(r);
        return st_fail(STORE_ERR_PROTOCOL, err, errcap, "redis: {tc}:sale-salt is not %d hex",
                       STORE_SALT_HEX);
    }
    memcpy(out, r->str, STORE_SALT_HEX + 1);
    freeReplyObject(r);
    return STORE_OK;
}

store_err store_idem_claim(store *s, const store_idem *idem, char *err, size_t errcap)
{
    static const char hex[] = "0123456789abcdef";
    char key[STORE_IDEM_KEY_MAX], fp[65], ttl[24];
    const char *set[] = {"SET", key, fp, "NX", "EX", ttl};
    const char *get[] = {"GET", key};
    redisReply *r;
    store_err e;

    if (!idem || !idem->request_id || !idem->request_id[0])
        return STORE_OK;
    snprintf(key, sizeof(key), "{tc}:idem:%s:%s", idem->scope, idem->request_id);
    for (size_t i = 0; i < 32; i++) {
        fp[2 * i] = hex[idem->fp[i] >> 4];
        fp[2 * i + 1] = hex[idem->fp[i] & 15];
    }
    fp[64] = '\0';
    snprintf(ttl, sizeof(ttl), "%d", STORE_IDEM_TTL_S);
    if ((e = st_exec(s, 6, set, NULL, &r, TIMEOUT_MS, 1, err, errcap)) != STORE_OK)
        return e;
    if (r->type == REDIS_REPLY_STATUS) { /* OK: the first time */
        freeReplyObject(r);
        return STORE_OK;
    }
    freeReplyObject(r);
    if ((e = st_run(s, 2, get, NULL, &r, err, errcap)) != STORE_OK)
        return e;
    /* A wrapped write keeps its fingerprint in front of its outcome. */
    e = r->type == REDIS_REPLY_STRING && r->len >= 64 && memcmp(r->str, fp, 64) == 0
            ? STORE_OK
            : st_fail(STORE_ERR_EXISTS, err, errcap,
                      "request_id %s was used for another request; use a new id for a new "
                      "request",
                      idem->request_id);
    freeReplyObject(r);
    return e;
}
