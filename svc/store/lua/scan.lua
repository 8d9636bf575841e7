-- scan: record a consumer scan of a code and answer its evidence.
-- KEYS: 1 scan hash, 2 devices (HyperLogLog), 3 regions set, 4 the code's
--   sale record, 5 its other sales: all under the code's own hash tag
--   (tc:{CODE}:...), so scans spread over a cluster.
-- ARGV: 1 now ms, 2 region, 3 device, 4 window ms, 5 record (1/0), 6 ttl ms,
--   7 travel age ms, 8 regions kept at most.
-- Recording, a scan from another province (the first two digits of the
-- region code) within window ms of the previous one is travel evidence,
-- kept travel age ms; the code's keys live ttl ms past its last scan. Not
-- recording, nothing is written (a preview, a HEAD, no device).
-- Returns {devices, first_ms, first_region, fast_move, regions, scans,
-- sold by ('' when not sold), sold unix, other sales}.
local h = KEYS[1]
local now = tonumber(ARGV[1])
if ARGV[5] == '1' then
  if ARGV[3] ~= '' then redis.call('PFADD', KEYS[2], ARGV[3]) end
  redis.call('HINCRBY', h, 'scans', 1)
  redis.call('HSETNX', h, 'first_ms', ARGV[1])
  if ARGV[2] ~= '' then
    redis.call('HSETNX', h, 'first_region', ARGV[2])
    if redis.call('SCARD', KEYS[3]) < tonumber(ARGV[8]) then
      redis.call('SADD', KEYS[3], ARGV[2])
    end
    local last = redis.call('HMGET', h, 'last_region', 'last_ms')
    if last[1] and string.sub(last[1], 1, 2) ~= string.sub(ARGV[2], 1, 2) and
        now - tonumber(last[2]) < tonumber(ARGV[4]) then
      redis.call('HSET', h, 'travel_ms', ARGV[1])
    end
    redis.call('HSET', h, 'last_region', ARGV[2], 'last_ms', ARGV[1])
  end
  for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[6]) end
end
local f = redis.call('HMGET', h, 'first_ms', 'first_region', 'travel_ms', 'scans')
local travel = f[3] and now - tonumber(f[3]) < tonumber(ARGV[7]) and 1 or 0
local sold = redis.call('HMGET', KEYS[4], 'platform', 'sold', 'more')
return {redis.call('PFCOUNT', KEYS[2]), tonumber(f[1] or '0'), f[2] or '', travel,
  redis.call('SCARD', KEYS[3]), tonumber(f[4] or '0'), sold[1] or '', tonumber(sold[2] or '0'),
  redis.call('SCARD', KEYS[5]) + tonumber(sold[3] or '0')}
