--! include audit notice
--! idem
-- put: write a manufacturer's or certificate's fields and log its full new
-- contents on the change stream and in the audit log. When a certificate's
-- status goes to SUSPENDED, REVOKED or CANCELLED, or back to VALID from one
-- of them,
-- also write one delisting notice per platform with listings under it (at
-- most ARGV[7] listing ids a notice), in the same atomic step.
--
-- KEYS: 1 record, 2 revision counter, 3 change stream, 4-7 audit keys;
--   for a certificate also 8 its platforms (those with listings under it),
--   9-12 audit keys of its notices, then per platform: its listings of the
--   certificate, notice stream, notice log, notice state; last, the index
--   of unacknowledged notices.
-- ARGV: 1 type, 2 id, 3 stream maxlen, 4 must exist (1/0), 5 notice
--   retention ms, 6 actor, 7 listing ids a notice, 8 platforms n (as the
--   caller read them; '' for a manufacturer), 9.. their names, then field,
--   value, ...
-- A certificate's platforms only ever grow (bind.lua adds, nothing
-- removes), so as many now as the caller read means the same ones; more
-- means a platform came in between: RETRY, nothing written, and the caller
-- reads them again.
-- Returns {revision, notices}.
local np = tonumber(ARGV[8]) or 0
local f0 = 9 + np
if ARGV[4] == '1' and redis.call('EXISTS', KEYS[1]) == 0 then
  return redis.error_reply('NOTFOUND ' .. ARGV[1] .. ' ' .. ARGV[2] .. ' does not exist')
end
local before = redis.call('HGET', KEYS[1], 'status')
local after = before
for i = f0, #ARGV - 1, 2 do
  if ARGV[i] == 'status' then after = ARGV[i + 1] end
end
local fanout = false
if ARGV[1] == 'cert' and after ~= before then
  local down = after == '2' or after == '3' or after == '5'
  local back = after == '1' and (before == '2' or before == '3' or before == '5')
  fanout = down or back
end
if fanout and redis.call('SCARD', KEYS[8]) ~= np then
  return redis.error_reply('RETRY a platform listed certificate ' .. ARGV[2] ..
    ' while it was written')
end
local rev = redis.call('INCR', KEYS[2])
local kv = {}
for i = f0, #ARGV do kv[#kv + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], 'rev', rev, unpack(kv))
local all = redis.call('HGETALL', KEYS[1])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*', 'type', ARGV[1], 'id', ARGV[2],
           unpack(all))
local lines = {}
for i = 1, #all, 2 do lines[#lines + 1] = all[i] .. ' ' .. all[i + 1] end
audit(4, ARGV[1] == 'mfr' and 'manufacturer' or ARGV[1], ARGV[6], ARGV[2],
  table.concat(lines, '\n'))
local notices = 0
if fanout then
  local cert, chunk = ARGV[2], tonumber(ARGV[7])
  local reason = redis.call('HGET', KEYS[1], 'reason') or ''
  local when = redis.call('HGET', KEYS[1], 'updated') or '0'
  for j = 1, np do
    local at = 13 + 4 * (j - 1)
    local ids = redis.call('SMEMBERS', KEYS[at])
    for i = 1, #ids, chunk do
      local last = math.min(i + chunk - 1, #ids)
      notice(at + 1, 9, ARGV[8 + j], cert, '0', after, reason, when, rev, ids, i, last,
        ARGV[5], ARGV[6])
      notices = notices + 1
    end
  end
end
return {rev, notices}
