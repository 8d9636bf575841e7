--! include audit
--! idem
-- product_update: a manufacturer replaces the passport of its own product
-- (the stored form, svc/core/passport.h); logged in the audit log under the
-- product id, on the change stream with the whole product.
-- KEYS: 1 product, 2 revision counter, 3 change stream, 4-7 audit keys.
-- ARGV: 1 stream maxlen, 2 product id, 3 caller, 4 passport, 5 actor.
-- Returns {revision, registered}.
local p = redis.call('HMGET', KEYS[1], 'mfr', 'registered')
if not p[1] then return redis.error_reply('NOTFOUND product ' .. ARGV[2] ..
  ' is not registered') end
if p[1] ~= ARGV[3] then return redis.error_reply('DENIED product ' .. ARGV[2] ..
  ' belongs to another manufacturer') end
local rev = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], 'rev', rev, 'passport', ARGV[4])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[1], '*', 'type', 'product', 'id', ARGV[2],
  unpack(redis.call('HGETALL', KEYS[1])))
audit(4, 'product', ARGV[5], ARGV[2], 'product ' .. ARGV[2] .. '\npassport\n' .. ARGV[4])
return {rev, tonumber(p[2])}
