--! include audit
--! idem
-- key_compromise: mark a key compromised since a time; it stops issuing.
-- KEYS: 1 the key's record, 2 revision counter, 3 change stream, 4 the
--   issuing keys, 5-8 audit keys.
-- ARGV: 1 stream maxlen, 2 key id, 3 kind, 4 since, 5 reason, 6 now,
--   7 actor. Returns {revision}.
local rev = redis.call('INCR', KEYS[2])
if redis.call('HGET', KEYS[4], ARGV[3]) == ARGV[2] then
  redis.call('HDEL', KEYS[4], ARGV[3])
end
redis.call('HSET', KEYS[1], 'kind', ARGV[3], 'state', 'compromised', 'since', ARGV[4],
  'reason', ARGV[5], 'compromised_at', ARGV[6], 'rev', rev)
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[1], '*', 'type', 'key', 'id', ARGV[2],
  unpack(redis.call('HGETALL', KEYS[1])))
audit(5, 'key', ARGV[7], 'key:' .. ARGV[2], 'compromise\nkey ' .. ARGV[2] .. '\nsince ' ..
  ARGV[4] .. '\nreason ' .. ARGV[5])
return {rev}
