-- notice_window: the retention window of a platform, from its notice log
-- (never trimmed) and its stream (trimmed): the newest notice, and the
-- newest one trimmed away - the oldest cursor after which every notice is
-- still retained. Redis 7.0 does not track trimmed ids itself
-- (max-deleted-entry-id moves only on XDEL).
-- KEYS: 1 stream, 2 notice log. Returns {oldest_cursor, newest}, "" for
-- none.
local function parse(id)
  local a, b = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(a), tonumber(b)
end
local function before(x, y)
  local a, b = parse(x)
  local c, d = parse(y)
  return a < c or (a == c and b < d)
end
local top = redis.call('ZREVRANGE', KEYS[2], 0, 0)
local newest = top[1] or ''
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
if #first == 0 then return {newest, newest} end
local f = first[1][1]
local oldest = ''
for _, id in ipairs(redis.call('ZREVRANGEBYSCORE', KEYS[2], parse(f), '-inf', 'LIMIT', 0,
    64)) do
  if before(id, f) and (oldest == '' or before(oldest, id)) then oldest = id end
end
return {oldest, newest}
