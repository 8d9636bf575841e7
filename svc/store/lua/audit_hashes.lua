-- audit_hashes: stored subtree hashes of the audit log's Merkle tree.
-- KEYS: per hash asked for, its level's hashes. ARGV: per hash, its level
-- and its index in the level. Returns the 32-byte hashes.
local out = {}
for j = 1, #KEYS do
  local l, i = ARGV[2 * j - 1], tonumber(ARGV[2 * j])
  local h = redis.call('GETRANGE', KEYS[j], i * 32, i * 32 + 31)
  if #h ~= 32 then return redis.error_reply('NOTFOUND subtree hash ' .. l .. ':' .. i ..
    ' is not stored') end
  out[#out + 1] = h
end
return out
