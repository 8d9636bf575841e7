-- audit_lease: take or renew the sequencing lease.
-- KEYS: 1 the lease. ARGV: 1 token, 2 ttl ms. Returns 1 when held.
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if cur then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
