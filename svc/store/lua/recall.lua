--! include audit notice
--! idem
-- recall: recall serials first..last of a batch its caller issued, and in
-- the same step write one delisting notice per platform whose listings
-- carry recalled serials (at most ARGV[10] listing ids a notice).
--
-- KEYS: 1 batch, 2 its recalls, 3 revision counter, 4 change stream,
--   5-8 audit keys, 9 the batch's certificate, 10 the certificate's
--   platforms, 11-14 audit keys of the notices, then per platform: notice
--   stream, notice log, notice state, its listings of the batch, then each
--   of those listings; last, the index of unacknowledged notices.
-- ARGV: 1 stream maxlen, 2 batch id, 3 caller, 4 first, 5 last, 6 reason,
--   7 now, 8 notice retention ms, 9 affected (kept with the outcome),
--   10 listing ids a notice, 11 the certificate the caller read the
--   listings for, 12 platforms n, then per platform: its name, its
--   listings n, the listing ids.
-- The listings (and platforms) must be the ones now: else RETRY, nothing
-- written, and the caller reads them again.
-- Returns {revision, notices, affected}.
local b = redis.call('HMGET', KEYS[1], 'issuer', 'quantity', 'cert')
if not b[1] then return redis.error_reply('NOTFOUND batch ' .. ARGV[2] ..
  ' does not exist') end
if b[1] ~= ARGV[3] then return redis.error_reply('DENIED batch ' .. ARGV[2] ..
  ' belongs to another manufacturer') end
if tonumber(ARGV[5]) >= tonumber(b[2]) then return redis.error_reply('ARG last_serial ' ..
  ARGV[5] .. ' is beyond the batch quantity ' .. b[2]) end
local function same()
  if b[3] ~= ARGV[11] or redis.call('SCARD', KEYS[10]) ~= tonumber(ARGV[12]) then
    return false
  end
  local k, a = 15, 13
  for _ = 1, tonumber(ARGV[12]) do
    local n = tonumber(ARGV[a + 1])
    if redis.call('SCARD', KEYS[k + 3]) ~= n then return false end
    for x = 1, n do
      if redis.call('SISMEMBER', KEYS[k + 3], ARGV[a + 1 + x]) == 0 then return false end
    end
    k, a = k + 4 + n, a + 2 + n
  end
  return true
end
if not same() then
  return redis.error_reply('RETRY the listings of batch ' .. ARGV[2] ..
    ' changed while it was recalled')
end
local rev = redis.call('INCR', KEYS[3])
redis.call('RPUSH', KEYS[2], ARGV[4] .. ' ' .. ARGV[5] .. ' ' .. ARGV[6])
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[1], '*', 'type', 'recall', 'id', ARGV[2],
  'rev', rev, 'first', ARGV[4], 'last', ARGV[5], 'reason', ARGV[6])
local first, last, notices = tonumber(ARGV[4]), tonumber(ARGV[5]), 0
local chunk = tonumber(ARGV[10])
local actor = 'manufacturer:' .. ARGV[3]
audit(5, 'recall', actor, ARGV[2], 'batch ' .. ARGV[2] .. '\ncertificate ' .. b[3] ..
  '\nfirst_serial ' .. ARGV[4] .. '\nlast_serial ' .. ARGV[5] .. '\nreason ' .. ARGV[6])
local status = redis.call('HGET', KEYS[9], 'status') or '0'
local k, a = 15, 13
for _ = 1, tonumber(ARGV[12]) do
  local plat, n = ARGV[a], tonumber(ARGV[a + 1])
  local hit = {}
  for x = 1, n do
    local sn = tonumber(redis.call('HGET', KEYS[k + 3 + x], 'serial'))
    if sn and sn >= first and sn <= last then hit[#hit + 1] = ARGV[a + 1 + x] end
  end
  for i = 1, #hit, chunk do
    local e = math.min(i + chunk - 1, #hit)
    notice(k, 11, plat, b[3], ARGV[2], status, ARGV[6], ARGV[7], rev, hit, i, e, ARGV[8], actor)
    notices = notices + 1
  end
  k, a = k + 4 + n, a + 2 + n
end
return {rev, notices, tonumber(ARGV[9])}
