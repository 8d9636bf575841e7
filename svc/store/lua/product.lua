--! include audit
--! idem
-- product: register a product under a valid certificate its holder holds
-- for the category, by a registered manufacturer in good standing, with
-- its passport (its stored form, svc/core/passport.h); logged in the audit
-- log under the product id.
-- KEYS: 1 product, 2 certificate, 3 manufacturer, 4 revision counter,
--   5 change stream, 6-9 audit keys.
-- ARGV: 1 stream maxlen, 2 product id, 3 caller, 4 certificate, 5 category,
--   6 brand, 7 model, 8 gtin, 9 now, 10 passport, 11 actor.
-- Returns {revision, product id, registered}.
local c = redis.call('HMGET', KEYS[2], 'status', 'holder', 'cats', 'valid_until')
if not c[1] then return redis.error_reply('PRECONDITION certificate ' .. ARGV[4] ..
  ' is not registered') end
local names = {['2'] = 'suspended', ['3'] = 'revoked', ['4'] = 'expired', ['5'] = 'cancelled'}
if c[1] ~= '1' then return redis.error_reply('PRECONDITION certificate ' .. ARGV[4] ..
  ' is ' .. (names[c[1]] or 'not valid')) end
local vu = tonumber(c[4] or '0')
if vu > 0 and vu < tonumber(ARGV[9]) then return redis.error_reply('PRECONDITION ' ..
  'certificate ' .. ARGV[4] .. ' has expired') end
if c[2] ~= ARGV[3] then return redis.error_reply('PRECONDITION certificate ' .. ARGV[4] ..
  ' is not held by ' .. ARGV[3]) end
local covered = false
for cat in string.gmatch(c[3] or '', '[^,]+') do if cat == ARGV[5] then covered = true end end
if not covered then return redis.error_reply('PRECONDITION certificate ' .. ARGV[4] ..
  ' does not cover category ' .. ARGV[5]) end
local m = redis.call('HGET', KEYS[3], 'status')
if not m then return redis.error_reply('PRECONDITION manufacturer ' .. ARGV[3] ..
  ' is not registered') end
if m ~= '1' then return redis.error_reply('PRECONDITION manufacturer ' .. ARGV[3] ..
  ' is suspended') end
local rev = redis.call('INCR', KEYS[4])
redis.call('HSET', KEYS[1], 'rev', rev, 'cert', ARGV[4], 'mfr', ARGV[3], 'category', ARGV[5],
  'brand', ARGV[6], 'model', ARGV[7], 'gtin', ARGV[8], 'registered', ARGV[9],
  'passport', ARGV[10])
audit(6, 'product', ARGV[11], ARGV[2], 'product ' .. ARGV[2] .. '\ncertificate ' .. ARGV[4] ..
  '\ncategory ' .. ARGV[5] .. '\nbrand ' .. ARGV[6] .. '\nmodel ' .. ARGV[7] .. '\ngtin ' ..
  ARGV[8] .. '\n' .. ARGV[10])
redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[1], '*', 'type', 'product', 'id', ARGV[2],
  unpack(redis.call('HGETALL', KEYS[1])))
return {rev, ARGV[2], tonumber(ARGV[9])}
