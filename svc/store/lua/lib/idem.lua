-- The idempotent-write wrapper (see --! idem in README.md): the script's
-- own text above is body(); this takes the idempotency key off the front
-- of KEYS and the fingerprint (hex, '' for none) and TTL off the front of
-- ARGV, so the body sees its own KEYS and ARGV as if called alone. Used
-- key, same fingerprint: the recorded outcome, nothing run. Other
-- fingerprint: EXISTS. An error from the body is returned as it is and
-- records nothing. The reply is {1, outcome} when the body ran, {0,
-- outcome} when replayed.
local ik = table.remove(KEYS, 1)
local fp = table.remove(ARGV, 1)
local ttl = table.remove(ARGV, 1)
if fp ~= '' then
  local ex = redis.call('GET', ik)
  if ex then
    if string.sub(ex, 1, 64) ~= fp then
      return redis.error_reply('EXISTS request_id ' .. string.match(ik, '[^:]*$') ..
        ' was used for another request; use a new id for a new request')
    end
    return {0, cjson.decode(string.sub(ex, 65))}
  end
end
local res = body()
if type(res) == 'table' and res.err then return res end
if fp ~= '' then redis.call('SET', ik, fp .. cjson.encode(res), 'EX', ttl) end
return {1, res}
