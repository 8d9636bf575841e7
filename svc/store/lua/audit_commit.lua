-- audit_commit: append new subtree hashes and the signed head, if this
-- node still holds the lease and the tree is where it thinks.
-- KEYS: 1 the lease, 2 the head, 3.. the hashes of level 0, 1, ... (one
--   per level given in ARGV).
-- ARGV: 1 token, 2 old size, 3 new size, 4 root, 5 time, 6 key id,
--   7 signature, 8.. the new hashes of level 0, 1, ...
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('DENIED this node no longer holds the sequencing lease') end
local size = tonumber(redis.call('HGET', KEYS[2], 'size') or '0')
if size ~= tonumber(ARGV[2]) then return redis.error_reply('PRECONDITION the tree is at ' ..
  size .. ', not ' .. ARGV[2]) end
if redis.call('STRLEN', KEYS[3]) ~= size * 32 then
  return redis.error_reply('PRECONDITION level 0 does not hold ' .. size .. ' hashes') end
for i = 8, #ARGV do
  if #ARGV[i] > 0 then redis.call('APPEND', KEYS[i - 5], ARGV[i]) end
end
redis.call('HSET', KEYS[2], 'size', ARGV[3], 'root', ARGV[4], 'time', ARGV[5],
  'kid', ARGV[6], 'sig', ARGV[7])
return 1
