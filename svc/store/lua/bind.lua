--! include audit
--! idem
-- bind: a platform binds its listings to codes. Per binding the listing
-- record, the code's set of listings, the certificate's and batch's sets
-- of the platform's listings and the certificate's platforms change. A
-- certificate's platforms only ever grow (put.lua and recall.lua rely on
-- it). Listings that change are one audit entry (subject: the platform).
--
-- KEYS: 1-4 audit keys, then per binding five: the listing, the code's
--   listings, the certificate's listings on the platform, the batch's
--   listings on the platform, the certificate's platforms; and three more
--   for a listing that was bound (as the caller read it): the old code's
--   listings, the old certificate's and the old batch's listings on the
--   platform.
-- ARGV: 1 platform, then per binding six: listing id, code, batch,
--   certificate, serial, and the code it was bound to when the caller read
--   it ('' for none).
-- A listing bound to something else than the caller read: RETRY, nothing
-- written. Returns per binding {other_listings, other_platforms}.
local plat = ARGV[1]
local now, at = {}, {}
local k = 5
for i = 2, #ARGV, 6 do
  local lk = KEYS[k]
  at[i] = k
  if now[lk] == nil then now[lk] = redis.call('HGET', lk, 'code') or '' end
  if now[lk] ~= ARGV[i + 5] then
    return redis.error_reply('RETRY listing ' .. ARGV[i] .. ' changed while it was bound')
  end
  now[lk] = ARGV[i + 1]
  k = k + (ARGV[i + 5] ~= '' and 8 or 5)
end
local out, changed = {}, {}
for i = 2, #ARGV, 6 do
  local k = at[i]
  local lid, code, batch, cert, serial = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3],
    ARGV[i + 4]
  local old = ARGV[i + 5]
  local member = plat .. '\t' .. lid
  if old ~= '' and old ~= code then
    redis.call('SREM', KEYS[k + 5], member)
    redis.call('SREM', KEYS[k + 6], lid)
    redis.call('SREM', KEYS[k + 7], lid)
  end
  if old ~= code then
    redis.call('HSET', KEYS[k], 'code', code, 'batch', batch, 'cert', cert, 'serial', serial)
    redis.call('SADD', KEYS[k + 1], member)
    redis.call('SADD', KEYS[k + 2], lid)
    redis.call('SADD', KEYS[k + 3], lid)
    redis.call('SADD', KEYS[k + 4], plat)
    changed[#changed + 1] = 'listing ' .. lid .. ' code ' .. code .. ' batch ' .. batch ..
      ' certificate ' .. cert .. ' serial ' .. serial
  end
  local others, plats = 0, {}
  for _, m in ipairs(redis.call('SRANDMEMBER', KEYS[k + 1], 1000)) do
    if m ~= member then
      others = others + 1
      local p = string.match(m, '^(.-)\t')
      if p ~= plat then plats[p] = true end
    end
  end
  local np = 0
  for _ in pairs(plats) do np = np + 1 end
  out[#out + 1] = others
  out[#out + 1] = np
end
if #changed > 0 then audit(1, 'listing', 'platform:' .. plat, plat, table.concat(changed, '\n'))
end
return out
