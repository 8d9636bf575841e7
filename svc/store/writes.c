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

/* --- scripts ------------------------------------------------------------- */

/*
 * Lua shared by the scripts that write delisting notices: one notice on
 * the platform's stream (trimmed to the retention window by stream id
 * time), its entry in the platform's notice log (never trimmed: the
 * compliance record) and its acknowledgement state "listings acked
 * complete_ms delisted_unix".
 */
#define LUA_NOTICE                                                                                 \
    "local function notice(plat, cert, batch, status, reason, when, rev, ids, i, last, keep,\n"    \
    "                      actor)\n"                                                               \
    "  local t = redis.call('TIME')\n"                                                             \
    "  local minid = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(keep)\n" \
    "  if minid < 0 then minid = 0 end\n"                                                          \
    "  local listed = table.concat(ids, '\\n', i, last)\n"                                         \
    "  local id = redis.call('XADD', '{tc}:notices:' .. plat, 'MINID', '~', minid, '*',\n"         \
    "    'platform', plat, 'cert', cert, 'batch', batch, 'status', status, 'reason', reason,\n"    \
    "    'effective', when, 'rev', rev, 'listings', listed)\n"                                     \
    "  redis.call('ZADD', '{tc}:notice-log:' .. plat, tonumber(string.match(id, '^%d+')), id)\n"   \
    "  redis.call('HSET', '{tc}:notice-state:' .. plat, id, (last - i + 1) .. ' 0 0 0')\n"         \
    "  audit('delist', actor, cert, 'platform ' .. plat .. '\\nnotice ' .. id .. '\\nbatch ' ..\n" \
    "    batch .. '\\nstatus ' .. status .. '\\neffective ' .. when .. '\\nreason ' .. reason "    \
    "..\n"                                                                                         \
    "    '\\nlistings ' .. (last - i + 1) .. '\\n' .. listed)\n"                                   \
    "end\n"

/*
 * Write a record's fields and log its full new contents on the stream.
 * For a certificate whose status goes to SUSPENDED or REVOKED, or back to
 * VALID from one of them, also write one delisting notice per platform
 * with listings under it (at most STORE_NOTICE_LISTINGS ids a notice) on
 * that platform's notice stream - in the same atomic step as the change.
 * The audit log gets the record's new contents, then its notices.
 * KEYS: record, rev, stream. ARGV: type, id, maxlen, must_exist,
 * notice_retention_ms, actor, f1, v1, ... Returns {revision, notices}.
 */
static const char lua_put[] = LUA_AUDIT LUA_NOTICE LUA_IDEM_BEGIN
    "if ARGV[4] == '1' and redis.call('EXISTS', KEYS[1]) == 0 then\n"
    "  return redis.error_reply('NOTFOUND ' .. ARGV[1] .. ' ' .. ARGV[2] .. ' does not exist')\n"
    "end\n"
    "local before = redis.call('HGET', KEYS[1], 'status')\n"
    "local rev = redis.call('INCR', KEYS[2])\n"
    "local kv = {}\n"
    "for i = 7, #ARGV do kv[#kv + 1] = ARGV[i] end\n"
    "redis.call('HSET', KEYS[1], 'rev', rev, unpack(kv))\n"
    "local all = redis.call('HGETALL', KEYS[1])\n"
    "redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*', 'type', ARGV[1], 'id', ARGV[2],\n"
    "           unpack(all))\n"
    "local lines = {}\n"
    "for i = 1, #all, 2 do lines[#lines + 1] = all[i] .. ' ' .. all[i + 1] end\n"
    "audit(ARGV[1] == 'mfr' and 'manufacturer' or ARGV[1], ARGV[6], ARGV[2],\n"
    "  table.concat(lines, '\\n'))\n"
    "local notices = 0\n"
    "if ARGV[1] == 'cert' then\n"
    "  local after = redis.call('HGET', KEYS[1], 'status')\n"
    "  local down = after == '2' or after == '3'\n"
    "  local back = after == '1' and (before == '2' or before == '3')\n"
    "  if after ~= before and (down or back) then\n"
    "    local cert = ARGV[2]\n"
    "    local reason = redis.call('HGET', KEYS[1], 'reason') or ''\n"
    "    local when = redis.call('HGET', KEYS[1], 'updated') or '0'\n"
    "    for _, plat in ipairs(redis.call('SMEMBERS', '{tc}:cert-platforms:' .. cert)) do\n"
    "      local ids = redis.call('SMEMBERS', '{tc}:cert-listings:' .. cert .. ':' .. plat)\n"
    "      for i = 1, #ids, " STORE_NOTICE_LISTINGS_STR " do\n"
    "        local last = math.min(i + " STORE_NOTICE_LISTINGS_STR " - 1, #ids)\n"
    "        notice(plat, cert, '0', after, reason, when, rev, ids, i, last, ARGV[5], ARGV[6])\n"
    "        notices = notices + 1\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return {rev, notices}\n" LUA_IDEM_END;

/* {revision, notices} from lua_put. */
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

/* KEYS: product, cert, mfr, rev, stream.
 * ARGV: maxlen, product_id, caller, cert, category, brand, model, gtin, now
 * Returns {revision, product_id, registered}. */
static const char lua_product[] = LUA_IDEM_BEGIN
    "local c = redis.call('HMGET', KEYS[2], 'status', 'holder', 'cats', 'valid_until')\n"
    "if not c[1] then return redis.error_reply('PRECONDITION certificate ' .. ARGV[4] ..\n"
    "  ' is not registered') end\n"
    "local names = {['2'] = 'suspended', ['3'] = 'revoked', ['4'] = 'expired'}\n"
    "if c[1] ~= '1' then return redis.error_reply('PRECONDITION certificate ' .. ARGV[4] ..\n"
    "  ' is ' .. (names[c[1]] or 'not valid')) end\n"
    "local vu = tonumber(c[4] or '0')\n"
    "if vu > 0 and vu < tonumber(ARGV[9]) then return redis.error_reply('PRECONDITION ' ..\n"
    "  'certificate ' .. ARGV[4] .. ' has expired') end\n"
    "if c[2] ~= ARGV[3] then return redis.error_reply('PRECONDITION certificate ' .. ARGV[4] ..\n"
    "  ' is not held by ' .. ARGV[3]) end\n"
    "local covered = false\n"
    "for cat in string.gmatch(c[3] or '', '[^,]+') do if cat == ARGV[5] then covered = true end "
    "end\n"
    "if not covered then return redis.error_reply('PRECONDITION certificate ' .. ARGV[4] ..\n"
    "  ' does not cover category ' .. ARGV[5]) end\n"
    "local m = redis.call('HGET', KEYS[3], 'status')\n"
    "if not m then return redis.error_reply('PRECONDITION manufacturer ' .. ARGV[3] ..\n"
    "  ' is not registered') end\n"
    "if m ~= '1' then return redis.error_reply('PRECONDITION manufacturer ' .. ARGV[3] ..\n"
    "  ' is suspended') end\n"
    "local rev = redis.call('INCR', KEYS[4])\n"
    "redis.call('HSET', KEYS[1], 'rev', rev, 'cert', ARGV[4], 'mfr', ARGV[3], 'category', "
    "ARGV[5],\n"
    "  'brand', ARGV[6], 'model', ARGV[7], 'gtin', ARGV[8], 'registered', ARGV[9])\n"
    "redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[1], '*', 'type', 'product', 'id', ARGV[2],\n"
    "  unpack(redis.call('HGETALL', KEYS[1])))\n"
    "return {rev, ARGV[2], tonumber(ARGV[9])}\n" LUA_IDEM_END;

/* KEYS: batch, product, rev, stream, cert, mfr.
 * ARGV: maxlen, batch_id, caller, product_id, quantity, key_id, profile, issued,
 *       manifest, signature, manifest_kid, request_id
 * Returns {batch_id, revision}. */
static const char lua_batch[] = LUA_AUDIT LUA_IDEM_BEGIN
    "local p = redis.call('HMGET', KEYS[2], 'mfr', 'cert')\n"
    "if not p[1] then return redis.error_reply('NOTFOUND product ' .. ARGV[4] ..\n"
    "  ' does not exist') end\n"
    "if p[1] ~= ARGV[3] then return redis.error_reply('DENIED product ' .. ARGV[4] ..\n"
    "  ' belongs to another manufacturer') end\n"
    "local cs = redis.call('HGET', KEYS[5], 'status')\n"
    "if cs ~= '1' then return redis.error_reply('PRECONDITION certificate ' .. p[2] ..\n"
    "  ' is not valid') end\n"
    "if redis.call('HGET', KEYS[6], 'status') ~= '1' then\n"
    "  return redis.error_reply('PRECONDITION manufacturer ' .. ARGV[3] .. ' is suspended') end\n"
    "local rev = redis.call('INCR', KEYS[3])\n"
    "redis.call('HSET', KEYS[1], 'rev', rev, 'product', ARGV[4], 'issuer', ARGV[3],\n"
    "  'cert', p[2], 'quantity', ARGV[5], 'key_id', ARGV[6], 'profile', ARGV[7],\n"
    "  'issued', ARGV[8], 'manifest', ARGV[9], 'signature', ARGV[10],\n"
    "  'manifest_kid', ARGV[11], 'request_id', ARGV[12])\n"
    "redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[1], '*', 'type', 'batch', 'id', ARGV[2],\n"
    "  'rev', rev, 'product', ARGV[4], 'quantity', ARGV[5], 'key_id', ARGV[6],\n"
    "  'profile', ARGV[7], 'issued', ARGV[8])\n"
    "audit('issue', 'manufacturer:' .. ARGV[3], ARGV[2], ARGV[9] .. '\\nsignature ' ..\n"
    "  string.gsub(ARGV[10], '.', function(ch) return string.format('%02x', string.byte(ch)) end)\n"
    "  .. '\\nsignature_key ' .. ARGV[11])\n"
    "return {tonumber(ARGV[2]), rev}\n" LUA_IDEM_END;

/* KEYS: batch, recalls, rev, stream.
 * ARGV: maxlen, batch_id, caller, first, last, reason, now, notice_retention_ms,
 *       affected (kept with the outcome)
 * Also writes, in the same step, one notice per platform whose listings
 * carry recalled serials of the batch. Returns {revision, notices, affected}. */
static const char lua_recall[] = LUA_AUDIT LUA_NOTICE LUA_IDEM_BEGIN
    "local b = redis.call('HMGET', KEYS[1], 'issuer', 'quantity', 'cert')\n"
    "if not b[1] then return redis.error_reply('NOTFOUND batch ' .. ARGV[2] ..\n"
    "  ' does not exist') end\n"
    "if b[1] ~= ARGV[3] then return redis.error_reply('DENIED batch ' .. ARGV[2] ..\n"
    "  ' belongs to another manufacturer') end\n"
    "if tonumber(ARGV[5]) >= tonumber(b[2]) then return redis.error_reply('ARG last_serial ' ..\n"
    "  ARGV[5] .. ' is beyond the batch quantity ' .. b[2]) end\n"
    "local rev = redis.call('INCR', KEYS[3])\n"
    "redis.call('RPUSH', KEYS[2], ARGV[4] .. ' ' .. ARGV[5] .. ' ' .. ARGV[6])\n"
    "redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[1], '*', 'type', 'recall', 'id', ARGV[2],\n"
    "  'rev', rev, 'first', ARGV[4], 'last', ARGV[5], 'reason', ARGV[6])\n"
    "local first, last, notices = tonumber(ARGV[4]), tonumber(ARGV[5]), 0\n"
    "local actor = 'manufacturer:' .. ARGV[3]\n"
    "audit('recall', actor, ARGV[2], 'batch ' .. ARGV[2] .. '\\ncertificate ' .. b[3] ..\n"
    "  '\\nfirst_serial ' .. ARGV[4] .. '\\nlast_serial ' .. ARGV[5] .. '\\nreason ' .. ARGV[6])\n"
    "local status = redis.call('HGET', '{tc}:cert:' .. b[3], 'status') or '0'\n"
    "for _, plat in ipairs(redis.call('SMEMBERS', '{tc}:cert-platforms:' .. b[3])) do\n"
    "  local hit = {}\n"
    "  for _, lid in ipairs(redis.call('SMEMBERS', '{tc}:batch-listings:' .. ARGV[2] .. ':' ..\n"
    "      plat)) do\n"
    "    local sn = tonumber(redis.call('HGET', '{tc}:listing:' .. plat .. ':' .. lid, 'serial'))\n"
    "    if sn and sn >= first and sn <= last then hit[#hit + 1] = lid end\n"
    "  end\n"
    "  for i = 1, #hit, " STORE_NOTICE_LISTINGS_STR " do\n"
    "    local e = math.min(i + " STORE_NOTICE_LISTINGS_STR " - 1, #hit)\n"
    "    notice(plat, b[3], ARGV[2], status, ARGV[6], ARGV[7], rev, hit, i, e, ARGV[8], actor)\n"
    "    notices = notices + 1\n"
    "  end\n"
    "end\n"
    "return {rev, notices, tonumber(ARGV[9])}\n" LUA_IDEM_END;

/* KEYS: {tc}:rev (only for routing; every key is under {tc}).
 * ARGV: platform, then per binding: listing_id, code, batch, cert, serial.
 * Listings that change are one audit entry (subject: the platform).
 * Returns per binding {other_listings, other_platforms}. */
static const char lua_bind[] = LUA_AUDIT LUA_IDEM_BEGIN
    "local plat = ARGV[1]\n"
    "local out, changed = {}, {}\n"
    "for i = 2, #ARGV, 5 do\n"
    "  local lid, code, batch, cert, serial = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3],\n"
    "    ARGV[i + 4]\n"
    "  local lk = '{tc}:listing:' .. plat .. ':' .. lid\n"
    "  local member = plat .. '\\t' .. lid\n"
    "  local old = redis.call('HMGET', lk, 'code', 'batch', 'cert')\n"
    "  if old[1] and old[1] ~= code then\n"
    "    redis.call('SREM', '{tc}:code:' .. old[1], member)\n"
    "    redis.call('SREM', '{tc}:cert-listings:' .. old[3] .. ':' .. plat, lid)\n"
    "    redis.call('SREM', '{tc}:batch-listings:' .. old[2] .. ':' .. plat, lid)\n"
    "  end\n"
    "  if old[1] ~= code then\n"
    "    redis.call('HSET', lk, 'code', code, 'batch', batch, 'cert', cert, 'serial', serial)\n"
    "    redis.call('SADD', '{tc}:code:' .. code, member)\n"
    "    redis.call('SADD', '{tc}:cert-listings:' .. cert .. ':' .. plat, lid)\n"
    "    redis.call('SADD', '{tc}:batch-listings:' .. batch .. ':' .. plat, lid)\n"
    "    redis.call('SADD', '{tc}:cert-platforms:' .. cert, plat)\n"
    "    changed[#changed + 1] = 'listing ' .. lid .. ' code ' .. code .. ' batch ' .. batch ..\n"
    "      ' certificate ' .. cert .. ' serial ' .. serial\n"
    "  end\n"
    "  local others, plats = 0, {}\n"
    "  for _, m in ipairs(redis.call('SRANDMEMBER', '{tc}:code:' .. code, 1000)) do\n"
    "    if m ~= member then\n"
    "      others = others + 1\n"
    "      local p = string.match(m, '^(.-)\\t')\n"
    "      if p ~= plat then plats[p] = true end\n"
    "    end\n"
    "  end\n"
    "  local np = 0\n"
    "  for _ in pairs(plats) do np = np + 1 end\n"
    "  out[#out + 1] = others\n"
    "  out[#out + 1] = np\n"
    "end\n"
    "if #changed > 0 then audit('listing', 'platform:' .. plat, plat, table.concat(changed, "
    "'\\n'))\n"
    "end\n"
    "return out\n" LUA_IDEM_END;

/* --- rate limits ------------------------------------------------------------ */

/* KEYS: the bucket. ARGV: interval_us, tolerance_us. Returns the wait in
 * microseconds, 0 when the event was allowed (and counted). */
static const char lua_gcra[] = "local t = redis.call('TIME')\n"
                               "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
                               "local tat = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
                               "if tat < now then tat = now end\n"
                               "local new = tat + tonumber(ARGV[1])\n"
                               "local wait = new - tonumber(ARGV[2]) - now\n"
                               "if wait > 0 then return wait end\n"
                               "redis.call('SET', KEYS[1], string.format('%d', new), 'PX',\n"
                               "  math.floor((new - now) / 1000) + 1000)\n"
                               "return 0\n";

store_err store_gcra(store *s, const char *key, int64_t interval_us, int64_t tolerance_us,
                     int64_t *retry_us, char *err, size_t errcap)
{
    st_args a;
    redisReply *r;
    store_err e;

    uint64_t wait = 0;

    st_script(&a, lua_gcra, 1);
    st_arg(&a, key);
    st_arg_i64(&a, interval_us);
    st_arg_i64(&a, tolerance_us);
    e = st_run_args(s, &a, &r, err, errcap);
    if (!e)
        e = int_reply(r, &wait, err, errcap);
    *retry_us = (int64_t)wait;
    return e;
}

/* --- idempotency ---------------------------------------------------------- */

void st_idem_parts(const store_idem *idem, char *key, char fp[65], char ttl[24])
{
    static const char hex[] = "0123456789abcdef";
    size_t i;

    snprintf(ttl, 24, "%d", STORE_IDEM_TTL_S);
    if (!idem || !idem->request_id || !idem->request_id[0]) {
        snprintf(key, STORE_IDEM_KEY_MAX, "{tc}:idem:-");
        fp[0] = '\0';
        return;
    }
    snprintf(key, STORE_IDEM_KEY_MAX, "{tc}:idem:%s:%s", idem->scope, idem->request_id);
    for (i = 0; i < 32; i++) {
        fp[2 * i] = hex[idem->fp[i] >> 4];
        fp[2 * i + 1] = hex[idem->fp[i] & 15];
    }
    fp[64] = '\0';
}

void st_script_idem(st_args *a, const char *lua, int nkeys, const store_idem *idem)
{
    st_idem_parts(idem, a->idem_key, a->idem_fp, a->idem_ttl);
    st_script(a, lua, nkeys + 1);
    a->durable = 1; /* acknowledged only once on the replicas (WAIT) */
    st_arg(a, a->idem_key);
}

void st_idem_argv(st_args *a)
{
    st_arg(a, a->idem_fp);
    st_arg(a, a->idem_ttl);
}

store_err st_idem_reply(redisReply **r, store_idem *idem, char *err, size_t cap)
{
    redisReply *w = *r, *out;

    if (w->type != REDIS_REPLY_ARRAY || w->elements != 2 ||
        w->element[0]->type != REDIS_REPLY_INTEGER) {
        freeReplyObject(w);
        *r = NULL;
        return st_fail(STORE_ERR_PROTOCOL, err, cap, "redis: want {ran, outcome} from a write");
    }
    if (idem)
        idem->replayed = w->element[0]->integer == 0;
    out = w->element[1];
    w->element[1] = NULL; /* detached: freed by the caller */
    freeReplyObject(w);
    *r = out;
    return STORE_OK;
}

/* Run a wrapped write script and unwrap its outcome. */
store_err st_run_write(store *s, st_args *a, store_idem *idem, redisReply **r, char *err,
                       size_t cap)
{
    store_err e = st_run_args(s, a, r, err, cap);

    return e ? e : st_idem_reply(r, idem, err, cap);
}

void st_key_of(char *out, size_t cap, const char *type, const char *id)
{
    snprintf(out, cap, "{tc}:%s:%s", type, id);
}

void st_script(st_args *a, const char *lua, int nkeys)
{
    a->n = 0;
    a->timeout_ms = 0;
    a->durable = 0;
    st_arg(a, "EVAL");
    st_arg(a, lua);
    st_arg_i64(a, nkeys);
}

/* --- writes -------------------------------------------------------------- */

store_err store_put_mfr(store *s, store_idem *idem, const char *actor, const char *credit_code,
                        const char *name, int status, uint64_t *rev, char *err, size_t errcap)
{
    char key[128];
    st_args a;
    redisReply *r;
    store_err e;

    st_key_of(key, sizeof(key), "mfr", credit_code);
    st_script_idem(&a, lua_put, 3, idem);
    st_arg(&a, key);
    st_arg(&a, K_REV);
    st_arg(&a, K_STREAM);
    st_idem_argv(&a);
    st_arg(&a, "mfr");
    st_arg(&a, credit_code);
    st_arg_i64(&a, STORE_STREAM_MAXLEN);
    st_arg(&a, "0");
    st_arg_i64(&a, s->notice_retention_ms);
    st_arg(&a, actor);
    st_arg(&a, "name");
    st_arg(&a, name);
    st_arg(&a, "status");
    st_arg_i64(&a, status);
    e = st_run_write(s, &a, idem, &r, err, errcap);
    return e ? e : put_reply(r, rev, NULL, err, errcap);
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
    char key[128], cats[REP_CATEGORIES_MAX * (REP_CATEGORY_MAX + 1) + 1];
    st_args a;
    redisReply *r;
    store_err e;

    st_key_of(key, sizeof(key), "cert", f->number);
    join_cats(f, cats, sizeof(cats));
    st_script_idem(&a, lua_put, 3, idem);
    st_arg(&a, key);
    st_arg(&a, K_REV);
    st_arg(&a, K_STREAM);
    st_idem_argv(&a);
    st_arg(&a, "cert");
    st_arg(&a, f->number);
    st_arg_i64(&a, STORE_STREAM_MAXLEN);
    st_arg(&a, "0");
    st_arg_i64(&a, s->notice_retention_ms);
    st_arg(&a, actor);
    a.timeout_ms = FANOUT_TIMEOUT_MS;
    st_arg(&a, "kind");
    st_arg_i64(&a, f->kind);
    st_arg(&a, "holder");
    st_arg(&a, f->holder);
    st_arg(&a, "cats");
    st_arg(&a, cats);
    st_arg(&a, "status");
    st_arg_i64(&a, f->status);
    st_arg(&a, "reason");
    st_arg(&a, f->reason);
    st_arg(&a, "valid_until");
    st_arg_i64(&a, f->valid_until);
    st_arg(&a, "updated");
    st_arg_i64(&a, f->updated);
    e = st_run_write(s, &a, idem, &r, err, errcap);
    return e ? e : put_reply(r, rev, notices, err, errcap);
}

store_err store_set_cert_status(store *s, store_idem *idem, const char *actor, const char *number,
                                int status, const char *reason, int64_t now, uint64_t *rev,
                                uint32_t *notices, char *err, size_t errcap)
{
    char key[128];
    st_args a;
    redisReply *r;
    store_err e;

    st_key_of(key, sizeof(key), "cert", number);
    st_script_idem(&a, lua_put, 3, idem);
    st_arg(&a, key);
    st_arg(&a, K_REV);
    st_arg(&a, K_STREAM);
    st_idem_argv(&a);
    st_arg(&a, "cert");
    st_arg(&a, number);
    st_arg_i64(&a, STORE_STREAM_MAXLEN);
    st_arg(&a, "1");
    st_arg_i64(&a, s->notice_retention_ms);
    st_arg(&a, actor);
    a.timeout_ms = FANOUT_TIMEOUT_MS;
    st_arg(&a, "status");
    st_arg_i64(&a, status);
    st_arg(&a, "reason");
    st_arg(&a, reason);
    st_arg(&a, "updated");
    st_arg_i64(&a, now);
    e = st_run_write(s, &a, idem, &r, err, errcap);
    return e ? e : put_reply(r, rev, notices, err, errcap);
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
    st_script_idem(&a, lua_product, 5, idem);
    st_arg(&a, kp);
    st_arg(&a, kc);
    st_arg(&a, km);
    st_arg(&a, K_REV);
    st_arg(&a, K_STREAM);
    st_idem_argv(&a);
    st_arg_i64(&a, STORE_STREAM_MAXLEN);
    st_arg(&a, product_id);
    st_arg(&a, q->caller);
    st_arg(&a, q->cert_number);
    st_arg(&a, q->category);
    st_arg(&a, q->brand);
    st_arg(&a, q->model);
    st_arg(&a, q->gtin ? q->gtin : "");
    st_arg_i64(&a, q->now);
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
    st_script_idem(&a, lua_batch, 6, idem);
    st_arg(&a, kb);
    st_arg(&a, kp);
    st_arg(&a, K_REV);
    st_arg(&a, K_STREAM);
    st_arg(&a, kc);
    st_arg(&a, km);
    st_idem_argv(&a);
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

/* Field lookup in a flat name/value array of replies. */
store_err store_recall(store *s, store_idem *idem, const char *caller, uint64_t batch_id,
                       uint32_t first, uint32_t last, const char *reason, int64_t now,
                       uint64_t *affected, uint64_t *rev, uint32_t *notices, char *err,
                       size_t errcap)
{
    char kb[64], kr[64], id[24];
    st_args a;
    redisReply *r;
    store_err e;

    if (first > last)
        return st_fail(STORE_ERR_ARG, err, errcap, "first_serial %u is after last_serial %u", first,
                       last);
    snprintf(id, sizeof(id), "%" PRIu64, batch_id);
    st_key_of(kb, sizeof(kb), "batch", id);
    st_key_of(kr, sizeof(kr), "recalls", id);
    st_script_idem(&a, lua_recall, 4, idem);
    st_arg(&a, kb);
    st_arg(&a, kr);
    st_arg(&a, K_REV);
    st_arg(&a, K_STREAM);
    st_idem_argv(&a);
    st_arg_i64(&a, STORE_STREAM_MAXLEN);
    st_arg(&a, id);
    st_arg(&a, caller);
    st_arg_u64(&a, first);
    st_arg_u64(&a, last);
    st_arg(&a, reason);
    st_arg_i64(&a, now);
    st_arg_i64(&a, s->notice_retention_ms);
    st_arg_u64(&a, *affected);
    a.timeout_ms = FANOUT_TIMEOUT_MS;
    e = st_run_write(s, &a, idem, &r, err, errcap);
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

store_err store_bind_listings(store *s, store_idem *idem, const char *platform, store_binding *b,
                              size_t n, char *err, size_t errcap)
{
    char ik[STORE_IDEM_KEY_MAX], fp[65], ttl[24];
    const char **argv;
    size_t *lens, argc = 8 + 5 * n, i, k;
    char(*nums)[2][24];
    redisReply *r;
    store_err e;

    if (n == 0)
        return STORE_OK;
    if (n > STORE_BINDINGS_MAX)
        return st_fail(STORE_ERR_ARG, err, errcap, "at most %d bindings per call",
                       STORE_BINDINGS_MAX);
    argv = malloc(argc * sizeof(*argv));
    lens = malloc(argc * sizeof(*lens));
    nums = malloc(n * sizeof(*nums));
    if (!argv || !lens || !nums) {
        free(argv);
        free(lens);
        free(nums);
        return st_fail(STORE_ERR_NOMEM, err, errcap, "out of memory");
    }
    st_idem_parts(idem, ik, fp, ttl);
    argv[0] = "EVAL";
    argv[1] = lua_bind;
    argv[2] = "2"; /* keys under {tc}, so a cluster routes the script to that slot */
    argv[3] = ik;
    argv[4] = K_REV;
    argv[5] = fp;
    argv[6] = ttl;
    argv[7] = platform;
    for (i = 0, k = 8; i < n; i++) {
        snprintf(nums[i][0], sizeof(nums[i][0]), "%" PRIu64, b[i].batch);
        snprintf(nums[i][1], sizeof(nums[i][1]), "%" PRIu32, b[i].serial);
        argv[k++] = b[i].listing_id;
        argv[k++] = b[i].code;
        argv[k++] = nums[i][0];
        argv[k++] = b[i].cert_number;
        argv[k++] = nums[i][1];
    }
    for (i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    e = st_run_durable(s, (int)argc, argv, lens, &r, err, errcap);
    free(argv);
    free(lens);
    free(nums);
    if (!e)
        e = st_idem_reply(&r, idem, err, errcap);
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
