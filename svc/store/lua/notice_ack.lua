--! include audit
--! idem
-- notice_ack: a platform acknowledges a delisting notice, whole or some of
-- its listings.
-- KEYS: 1 the platform's notice stream, 2 its notice state, 3 the notice's
--   acknowledged listings, 4-7 audit keys, 8 the index of unacknowledged
--   notices (a complete acknowledgement takes the notice out).
-- ARGV: 1 notice id, 2 delisted unix time, 3 platform, 4.. listing ids
--   (none: the whole notice).
-- Returns {listings, acked, complete}.
local st = redis.call('HGET', KEYS[2], ARGV[1])
if not st then return redis.error_reply('NOTFOUND notice ' .. ARGV[1] ..
  ' was not sent to this platform') end
local total, acked, done = string.match(st, '^(%d+) (%d+) (%d+)')
total = tonumber(total)
if done ~= '0' then return {total, total, 1} end
if #ARGV > 3 then
  local e = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
  if #e == 0 then return redis.error_reply('PRECONDITION notice ' .. ARGV[1] ..
    ' is past retention: acknowledge it whole, without listing ids') end
  local f, mine = e[1][2], {}
  for j = 1, #f, 2 do
    if f[j] == 'listings' then
      for l in string.gmatch(f[j + 1], '[^\n]+') do mine[l] = true end
    end
  end
  for j = 4, #ARGV do
    if not mine[ARGV[j]] then return redis.error_reply('ARG listing ' .. ARGV[j] ..
      ' is not in notice ' .. ARGV[1]) end
  end
  for j = 4, #ARGV, 1000 do
    redis.call('SADD', KEYS[3], unpack(ARGV, j, math.min(j + 999, #ARGV)))
  end
  acked = redis.call('SCARD', KEYS[3])
else
  acked = total
end
local complete = 0
if acked >= total then
  local t = redis.call('TIME')
  complete = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('DEL', KEYS[3])
  redis.call('ZREM', KEYS[8], ARGV[3] .. '\n' .. ARGV[1])
end
redis.call('HSET', KEYS[2], ARGV[1], total .. ' ' .. acked .. ' ' .. complete .. ' ' ..
  ARGV[2])
local plat = ARGV[3]
audit(4, 'ack', 'platform:' .. plat, plat, 'notice ' .. ARGV[1] .. '\nlistings ' .. total ..
  '\nacked ' .. acked .. '\ncomplete ' .. (complete > 0 and 'yes' or 'no') ..
  '\ndelisted ' .. ARGV[2] .. '\nthis_ack ' .. (#ARGV > 3 and (#ARGV - 3) or total))
return {total, acked, complete > 0 and 1 or 0}
