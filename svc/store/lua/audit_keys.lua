--! include audit
-- audit_keys: record the public keys the log's heads are signed with, once
-- per change.
-- KEYS: 1 the recorded keys, 2-5 audit keys. ARGV: 1 actor, 2 the keys.
-- Returns 1 when they changed (and were logged), 0 when already recorded.
if redis.call('GET', KEYS[1]) == ARGV[2] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
audit(2, 'key', ARGV[1], 'keys', ARGV[2])
return 1
