-- sale: a platform reports the sale of one code. The code's keys carry its
-- own hash tag (tc:{CODE}:...), so sales spread over a cluster's slots.
-- KEYS: 1 the code's sale record, 2 its other sales (a set of
--   "platform\norder hash").
-- ARGV: 1 platform, 2 order hash, 3 sold unix, 4 other sales kept at most.
-- The first sale is recorded with the server's time (for the undo window);
-- the same platform reporting the same order again changes nothing; any
-- other sale is added to the set once (beyond the cap only counted).
-- Returns {state, first platform, first sold unix, other sales, written}:
-- state 1 recorded now, 0 this platform's own sale of this order again, 2
-- sold before; written 1 when this call changed anything.
local s = redis.call('HMGET', KEYS[1], 'platform', 'order', 'sold', 'more')
local more = tonumber(s[4] or '0')
if not s[1] then
  local t = redis.call('TIME')
  redis.call('HSET', KEYS[1], 'platform', ARGV[1], 'order', ARGV[2], 'sold', ARGV[3],
    'at', t[1])
  return {1, ARGV[1], tonumber(ARGV[3]), redis.call('SCARD', KEYS[2]) + more, 1}
end
if s[1] == ARGV[1] and s[2] == ARGV[2] then
  return {0, s[1], tonumber(s[3]), redis.call('SCARD', KEYS[2]) + more, 0}
end
local other, written = ARGV[1] .. '\n' .. ARGV[2], 0
if redis.call('SISMEMBER', KEYS[2], other) == 0 then
  written = 1
  if redis.call('SCARD', KEYS[2]) < tonumber(ARGV[4]) then
    redis.call('SADD', KEYS[2], other)
  else
    more = redis.call('HINCRBY', KEYS[1], 'more', 1)
  end
end
return {2, s[1], tonumber(s[3]), redis.call('SCARD', KEYS[2]) + more, written}
