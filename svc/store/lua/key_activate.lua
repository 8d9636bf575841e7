--! include audit
--! idem
-- key_activate: make a key the deployment's issuing key of its kind; the
-- previous issuing key of the kind verifies only from now on.
-- KEYS: 1 the key's record, 2 revision counter, 3 change stream, 4 the
--   issuing keys, 5 the previous issuing key's record as the caller read
--   it (any key when none), 6-9 audit keys.
-- ARGV: 1 stream maxlen, 2 key id, 3 kind, 4 now, 5 actor, 6 the previous
--   issuing key id the caller read ('' for none).
-- Another issuing key than the caller read: RETRY, nothing written.
-- Returns {revision}.
if redis.call('HGET', KEYS[1], 'state') == 'compromised' then
  return redis.error_reply('PRECONDITION key ' .. ARGV[2] .. ' is compromised: it never ' ..
    'issues again')
end
local prev = redis.call('HGET', KEYS[4], ARGV[3])
if (prev or '') ~= ARGV[6] then
  return redis.error_reply('RETRY the issuing key changed while key ' .. ARGV[2] ..
    ' was activated')
end
local rev = redis.call('INCR', KEYS[2])
if prev and prev ~= ARGV[2] then
  if redis.call('HGET', KEYS[5], 'state') == 'active' then
    redis.call('HSET', KEYS[5], 'state', 'verify-only', 'rev', rev)
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[1], '*', 'type', 'key', 'id', prev,
      unpack(redis.call('HGETALL', KEYS[5])))
  end
end
redis.call('HSET', KEYS[1], 'kind', ARGV[3], 'state', 'active', 'activated', ARGV[4],
  'rev', rev)
redis.call('HSET', KEYS[4], ARGV[3], ARGV[2])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[1], '*', 'type', 'key', 'id', ARGV[2],
  unpack(redis.call('HGETALL', KEYS[1])))
audit(6, 'key', ARGV[5], 'key:' .. ARGV[2], 'activate\nkey ' .. ARGV[2] .. '\nkind ' ..
  (ARGV[3] == '1' and 'mac' or 'ed25519') .. '\nprevious ' .. (prev or 'none'))
return {rev}
