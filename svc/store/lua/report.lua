-- report: a consumer's problem report about a code, in the registry's slot.
-- KEYS: 1 the report (its id allocated by the caller), 2 the device's rate
--   counter, 3 the code's rate counter, 4 all reports, 5 the code's, 6 the
--   batch's, 7 the product's, 8 the manufacturer's.
-- ARGV: 1 id, 2 reports a device may file a window, 3 that window in s,
--   4 reports a code may take a window, 5 that window in s, then field,
--   value, ...
-- Over a rate: LIMIT, nothing written. Indexes are scored by id (ids grow
-- with time). Returns the reports of the code so far.
local function over(key, max, window)
  local n = redis.call('INCR', key)
  if n == 1 then redis.call('EXPIRE', key, window) end
  return n > tonumber(max)
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.error_reply('EXISTS report ' .. ARGV[1] .. ' exists')
end
if over(KEYS[2], ARGV[2], ARGV[3]) then
  redis.call('DECR', KEYS[2])
  return redis.error_reply('LIMIT this device has sent ' .. ARGV[2] ..
    ' reports in the last ' .. ARGV[3] .. ' s; try later')
end
if over(KEYS[3], ARGV[4], ARGV[5]) then
  redis.call('DECR', KEYS[2])
  redis.call('DECR', KEYS[3])
  return redis.error_reply('LIMIT this code has taken ' .. ARGV[4] ..
    ' reports in the last ' .. ARGV[5] .. ' s; try later')
end
local t = redis.call('TIME')
redis.call('HSET', KEYS[1], 'created', t[1], unpack(ARGV, 6))
for i = 4, 8 do redis.call('ZADD', KEYS[i], tonumber(ARGV[1]), ARGV[1]) end
return redis.call('ZCARD', KEYS[5])
