-- sale_undo: the platform that sold a code undoes its sale (a return),
-- within the undo window counted from when the sale was recorded.
-- KEYS: 1 the code's sale record.
-- ARGV: 1 platform, 2 window seconds, 3 request id ('' for none).
-- The record keeps who undid it under which request, so the same request
-- again answers as the first time; the other sales reported stay.
-- Returns 1 when undone now, 2 when this request undid it before.
local s = redis.call('HMGET', KEYS[1], 'platform', 'at', 'undone_by', 'undone_req')
if not s[1] then
  if s[3] == ARGV[1] and ARGV[3] ~= '' and s[4] == ARGV[3] then return 2 end
  return redis.error_reply('NOTFOUND the code has no sale to undo')
end
if s[1] ~= ARGV[1] then
  return redis.error_reply('DENIED the code was sold by another platform; only the seller ' ..
    'undoes its sale')
end
local t = redis.call('TIME')
if tonumber(t[1]) - tonumber(s[2]) > tonumber(ARGV[2]) then
  return redis.error_reply('PRECONDITION the sale was recorded ' ..
    (tonumber(t[1]) - tonumber(s[2])) .. ' s ago, past the undo window of ' .. ARGV[2] .. ' s')
end
redis.call('HDEL', KEYS[1], 'platform', 'order', 'sold', 'at')
redis.call('HSET', KEYS[1], 'undone_by', ARGV[1], 'undone_req', ARGV[3], 'undone_at', t[1])
return 1
