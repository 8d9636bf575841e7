-- gcra: the generic cell rate algorithm, one event against a bucket.
-- KEYS: 1 the bucket. ARGV: 1 interval us, 2 tolerance us.
-- Returns the wait in microseconds, 0 when the event was allowed (and
-- counted).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new = tat + tonumber(ARGV[1])
local wait = new - tonumber(ARGV[2]) - now
if wait > 0 then return wait end
redis.call('SET', KEYS[1], string.format('%d', new), 'PX',
  math.floor((new - now) / 1000) + 1000)
return 0
