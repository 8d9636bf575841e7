-- read_sets: the members of some sets in one atomic read (what a write
-- that fans out delisting notices must name in its KEYS).
-- KEYS: the sets. Returns one array of members per set.
local out = {}
for i = 1, #KEYS do out[#out + 1] = redis.call('SMEMBERS', KEYS[i]) end
return out
