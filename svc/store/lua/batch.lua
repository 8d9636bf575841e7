--! include audit
--! idem
-- batch: record an issued batch of a product its caller makes, under a
-- valid certificate, with the signed manifest in the audit log.
-- KEYS: 1 batch, 2 product, 3 revision counter, 4 change stream,
--   5 certificate, 6 manufacturer, 7-10 audit keys.
-- ARGV: 1 stream maxlen, 2 batch id, 3 caller, 4 product id, 5 quantity,
--   6 key id, 7 profile, 8 issued, 9 manifest, 10 signature, 11 manifest
--   key id, 12 request id, 13 production date, 14 lot ('' when not given).
-- Returns {batch id, revision}.
local p = redis.call('HMGET', KEYS[2], 'mfr', 'cert')
if not p[1] then return redis.error_reply('NOTFOUND product ' .. ARGV[4] ..
  ' does not exist') end
if p[1] ~= ARGV[3] then return redis.error_reply('DENIED product ' .. ARGV[4] ..
  ' belongs to another manufacturer') end
local cs = redis.call('HGET', KEYS[5], 'status')
local names = {['2'] = 'suspended', ['3'] = 'revoked', ['4'] = 'expired', ['5'] = 'cancelled'}
if cs ~= '1' then return redis.error_reply('PRECONDITION certificate ' .. p[2] ..
  ' is ' .. (names[cs] or 'not valid')) end
if redis.call('HGET', KEYS[6], 'status') ~= '1' then
  return redis.error_reply('PRECONDITION manufacturer ' .. ARGV[3] .. ' is suspended') end
local rev = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[1], 'rev', rev, 'product', ARGV[4], 'issuer', ARGV[3],
  'cert', p[2], 'quantity', ARGV[5], 'key_id', ARGV[6], 'profile', ARGV[7],
  'issued', ARGV[8], 'manifest', ARGV[9], 'signature', ARGV[10],
  'manifest_kid', ARGV[11], 'request_id', ARGV[12], 'production_date', ARGV[13],
  'lot', ARGV[14])
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[1], '*', 'type', 'batch', 'id', ARGV[2],
  'rev', rev, 'product', ARGV[4], 'quantity', ARGV[5], 'key_id', ARGV[6],
  'profile', ARGV[7], 'issued', ARGV[8], 'production_date', ARGV[13], 'lot', ARGV[14])
local made = ''
if ARGV[13] ~= '' then made = made .. '\nproduction_date ' .. ARGV[13] end
if ARGV[14] ~= '' then made = made .. '\nlot ' .. ARGV[14] end
audit(7, 'issue', 'manufacturer:' .. ARGV[3], ARGV[2], ARGV[9] .. '\nsignature ' ..
  string.gsub(ARGV[10], '.', function(ch) return string.format('%02x', string.byte(ch)) end)
  .. '\nsignature_key ' .. ARGV[11] .. made)
return {tonumber(ARGV[2]), rev}
