-- audit_query: one page of audit entries by subject or kind and time.
-- KEYS: 1 meta, 2 entries, 3 the index to walk: the subject's when a
--   subject is given, else the kind's when a kind is (any key otherwise).
-- ARGV: 1 subject, 2 kind, 3 from ms, 4 to ms (0: open), 5 start index,
--   6 limit, 7 index entries looked at per page at most.
-- Times never run backwards, so a time range is an index range, found by
-- binary search. Returns {next index or -1, entries...}.
local n = tonumber(redis.call('HGET', KEYS[1], 'n') or '0')
local function time_of(i)
  local e = redis.call('HGET', KEYS[2], i)
  return e and tonumber(string.match(e, '\ntime (%d+)\n'))
end
local function first_at(ms)
  local lo, hi = 0, n
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    local t = time_of(mid)
    if t and t < ms then lo = mid + 1 else hi = mid end
  end
  return lo
end
local lo, hi = tonumber(ARGV[5]), n
local from, to, limit = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[6])
if from > 0 then lo = math.max(lo, first_at(from)) end
if to > 0 then hi = math.min(hi, first_at(to + 1)) end
local out = {-1}
if lo >= hi then return out end
local function take(i)
  local e = redis.call('HGET', KEYS[2], i)
  if e and (ARGV[2] == '' or string.match(e, '\nkind ([^\n]*)\n') == ARGV[2]) then
    out[#out + 1] = e
  end
end
local set = (ARGV[1] ~= '' or ARGV[2] ~= '') and KEYS[3]
if set then
  local c = redis.call('ZRANGEBYSCORE', set, lo, hi - 1, 'LIMIT', 0, tonumber(ARGV[7]))
  for j = 1, #c do
    if #out > limit then out[1] = tonumber(c[j]); return out end
    take(c[j])
  end
  if #c == tonumber(ARGV[7]) then out[1] = tonumber(c[#c]) + 1 end
else
  local stop = math.min(hi, lo + limit)
  for i = lo, stop - 1 do take(i) end
  if stop < hi then out[1] = stop end
end
return out
