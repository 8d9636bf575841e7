-- bind_plan: what each listing is bound to now, for bind.lua's keys.
-- KEYS: the listings. Returns per listing {code, batch, certificate}, ''
-- where it is not bound.
local out = {}
for i = 1, #KEYS do
  local v = redis.call('HMGET', KEYS[i], 'code', 'batch', 'cert')
  out[#out + 1] = v[1] or ''
  out[#out + 1] = v[2] or ''
  out[#out + 1] = v[3] or ''
end
return out
