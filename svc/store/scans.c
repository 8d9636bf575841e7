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
    char kh[128], kd[128], kr[128], kl[128];
    st_args a;
    redisReply *r;
    store_err e;
    size_t i;

    memset(out, 0, sizeof(*out));
    snprintf(kh, sizeof(kh), "{tc}:scan:%s", code);
    snprintf(kd, sizeof(kd), "{tc}:scan-devices:%s", code);
    snprintf(kr, sizeof(kr), "{tc}:scan-regions:%s", code);
    snprintf(kl, sizeof(kl), "{tc}:code:%s", code);
    st_script(&a, &st_lua_scan);
    st_key(&a, kh);
    st_key(&a, kd);
    st_key(&a, kr);
    st_key(&a, kl);
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
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 7 ||
        r->element[2]->type != REDIS_REPLY_STRING) {
        freeReplyObject(r);
        return st_fail(STORE_ERR_PROTOCOL, err, errcap, "redis: unexpected reply to scan script");
    }
    for (i = 0; i < 7; i++)
        if (i != 2 && r->element[i]->type != REDIS_REPLY_INTEGER) {
            freeReplyObject(r);
            return st_fail(STORE_ERR_PROTOCOL, err, errcap, "redis: unexpected scan reply");
        }
    out->devices = (uint64_t)r->element[0]->integer;
    out->first_ms = r->element[1]->integer;
    snprintf(out->first_region, sizeof(out->first_region), "%s", r->element[2]->str);
    out->fast_move = r->element[3]->integer != 0;
    out->regions = (uint32_t)r->element[4]->integer;
    out->listings = (uint32_t)r->element[5]->integer;
    out->scans = (uint64_t)r->element[6]->integer;
    freeReplyObject(r);
    return STORE_OK;
}
