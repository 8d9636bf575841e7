-- audit_read: entries by index.
-- KEYS: 1 entries. ARGV: 1 from, 2 count. Returns the entries ('' where
-- missing).
local out = {}
for i = tonumber(ARGV[1]), tonumber(ARGV[1]) + ARGV[2] - 1 do
  out[#out + 1] = redis.call('HGET', KEYS[1], i) or ''
end
return out
