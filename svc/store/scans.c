/*
 * scans.c - consumer scans of a code: distinct devices (HyperLogLog),
 * regions, first and last scan, in one Lua step per scan.
 */
#include "store.h"
#include "store_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define REGIONS_KEPT 64 /* distinct regions remembered per code */

/* lua/scan.lua: record the scan (unless only previewed) and read the
 * code's scan evidence. */
store_err store_scan_record(store *s, const char *code, const char *region, const char *device,
                            int record, int64_t now_ms, const store_scan_rules *rules,
                            store_scan *out, char *err, size_t errcap)
{
    char kh[160], kd[160], kr[160], kl[160], ks[160], kx[160];
    const char *card[] = {"SCARD", kl};
    st_args a;
    redisReply *r;
    store_err e;
    size_t i;

    memset(out, 0, sizeof(*out));
    /* The code's own hash tag: scans spread over a cluster's slots. Its
     * listings are registry data, in the registry's slot: read apart. */
    snprintf(kh, sizeof(kh), "tc:{%s}:scan", code);
    snprintf(kd, sizeof(kd), "tc:{%s}:scan-devices", code);
    snprintf(kr, sizeof(kr), "tc:{%s}:scan-regions", code);
    snprintf(ks, sizeof(ks), "tc:{%s}:sale", code);
    snprintf(kx, sizeof(kx), "tc:{%s}:sale-dups", code);
    snprintf(kl, sizeof(kl), "{tc}:code:%s", code);
    if ((e = st_run(s, 2, card, NULL, &r, err, errcap)) != STORE_OK)
        return e;
    out->listings = r->type == REDIS_REPLY_INTEGER ? (uint32_t)r->integer : 0;
    freeReplyObject(r);
    st_script(&a, &st_lua_scan);
    st_key(&a, kh);
    st_key(&a, kd);
    st_key(&a, kr);
    st_key(&a, ks);
    st_key(&a, kx);
    st_arg_i64(&a, now_ms);
    st_arg(&a, region);
    st_arg(&a, device);
    st_arg_i64(&a, rules->window_ms);
    st_arg(&a, record ? "1" : "0");
    st_arg_i64(&a, rules->ttl_ms > 0 ? rules->ttl_ms : STORE_SCAN_TTL_MS);
    st_arg_i64(&a, rules->travel_age_ms > 0 ? rules->travel_age_ms : STORE_TRAVEL_AGE_MS);
    st_arg_i64(&a, REGIONS_KEPT);
    e = st_run_args(s, &a, &r, err, errcap);
    if (e)
        return e;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 9 ||
        r->element[2]->type != REDIS_REPLY_STRING || r->element[6]->type != REDIS_REPLY_STRING) {
        freeReplyObject(r);
        return st_fail(STORE_ERR_PROTOCOL, err, errcap, "redis: unexpected reply to scan script");
    }
    for (i = 0; i < 9; i++)
        if (i != 2 && i != 6 && r->element[i]->type != REDIS_REPLY_INTEGER) {
            freeReplyObject(r);
            return st_fail(STORE_ERR_PROTOCOL, err, errcap, "redis: unexpected scan reply");
        }
    out->devices = (uint64_t)r->element[0]->integer;
    out->first_ms = r->element[1]->integer;
    snprintf(out->first_region, sizeof(out->first_region), "%s", r->element[2]->str);
    out->fast_move = r->element[3]->integer != 0;
    out->regions = (uint32_t)r->element[4]->integer;
    out->scans = (uint64_t)r->element[5]->integer;
    if (r->element[6]->len) {
        out->sale.state = STORE_SALE_SOLD;
        snprintf(out->sale.platform, sizeof(out->sale.platform), "%s", r->element[6]->str);
        out->sale.sold_unix = r->element[7]->integer;
    }
    out->sale.others = (uint32_t)r->element[8]->integer;
    freeReplyObject(r);
    return STORE_OK;
}
