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

/*
 * KEYS: scan hash, devices (HLL), regions set, the code's listings set.
 * ARGV: now_ms, region, device, window_ms, record (1/0), ttl_ms, travel_age_ms.
 * Recording, a scan from another province (the first two digits of the
 * region code) within window_ms of the previous one is travel evidence,
 * kept travel_age_ms; the code's keys live ttl_ms past its last scan.
 * Not recording, nothing is written (a preview, a HEAD, no device).
 * Returns {devices, first_ms, first_region, fast_move, regions, listings,
 * scans}.
 */
static const char lua_scan[] =
    "local h = KEYS[1]\n"
    "local now = tonumber(ARGV[1])\n"
    "if ARGV[5] == '1' then\n"
    "  if ARGV[3] ~= '' then redis.call('PFADD', KEYS[2], ARGV[3]) end\n"
    "  redis.call('HINCRBY', h, 'scans', 1)\n"
    "  redis.call('HSETNX', h, 'first_ms', ARGV[1])\n"
    "  if ARGV[2] ~= '' then\n"
    "    redis.call('HSETNX', h, 'first_region', ARGV[2])\n"
    "    if redis.call('SCARD', KEYS[3]) < " STORE_STR(
        REGIONS_KEPT) " then\n"
                      "      redis.call('SADD', KEYS[3], ARGV[2])\n"
                      "    end\n"
                      "    local last = redis.call('HMGET', h, 'last_region', 'last_ms')\n"
                      "    if last[1] and string.sub(last[1], 1, 2) ~= string.sub(ARGV[2], 1, 2) "
                      "and\n"
                      "        now - tonumber(last[2]) < tonumber(ARGV[4]) then\n"
                      "      redis.call('HSET', h, 'travel_ms', ARGV[1])\n"
                      "    end\n"
                      "    redis.call('HSET', h, 'last_region', ARGV[2], 'last_ms', ARGV[1])\n"
                      "  end\n"
                      "  for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[6]) end\n"
                      "end\n"
                      "local f = redis.call('HMGET', h, 'first_ms', 'first_region', 'travel_ms', "
                      "'scans')\n"
                      "local travel = f[3] and now - tonumber(f[3]) < tonumber(ARGV[7]) and 1 or "
                      "0\n"
                      "return {redis.call('PFCOUNT', KEYS[2]), tonumber(f[1] or '0'), f[2] or '', "
                      "travel,\n"
                      "  redis.call('SCARD', KEYS[3]), redis.call('SCARD', KEYS[4]), tonumber(f[4] "
                      "or '0')}\n";

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
    st_script(&a, lua_scan, 4);
    st_arg(&a, kh);
    st_arg(&a, kd);
    st_arg(&a, kr);
    st_arg(&a, kl);
    st_arg_i64(&a, now_ms);
    st_arg(&a, region);
    st_arg(&a, device);
    st_arg_i64(&a, rules->window_ms);
    st_arg(&a, record ? "1" : "0");
    st_arg_i64(&a, rules->ttl_ms > 0 ? rules->ttl_ms : STORE_SCAN_TTL_MS);
    st_arg_i64(&a, rules->travel_age_ms > 0 ? rules->travel_age_ms : STORE_TRAVEL_AGE_MS);
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
