-- audit(at, kind, actor, subject, body): append one entry to the audit log
-- in the same atomic step as the change it records. KEYS[at] .. KEYS[at+3]
-- are the log's meta hash, its entries, the subject's index and the kind's
-- index (st_audit_keys in C names them). The entry is the canonical text
-- below, which the Merkle tree hashes; its index comes from one counter,
-- its time from Redis and never runs backwards. Kind, actor and subject
-- are single-line (newlines become spaces); the body is length-prefixed.
local function audit(at, kind, actor, subject, body)
  local meta, entries = KEYS[at], KEYS[at + 1]
  local t = redis.call('TIME')
  local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local last = tonumber(redis.call('HGET', meta, 'last_ms') or '0')
  if ms < last then ms = last end
  local idx = redis.call('HINCRBY', meta, 'n', 1) - 1
  redis.call('HSET', meta, 'last_ms', string.format('%d', ms))
  kind = string.gsub(kind, '[\r\n]', ' ')
  actor = string.gsub(actor, '[\r\n]', ' ')
  subject = string.gsub(subject, '[\r\n]', ' ')
  redis.call('HSET', entries, idx, 'tracecode-audit v1\nindex ' ..
    string.format('%d', idx) .. '\ntime ' .. string.format('%d', ms) .. '\nkind ' ..
    kind .. '\nactor ' .. actor .. '\nsubject ' .. subject .. '\nbody ' .. #body ..
    ':' .. body)
  if subject ~= '' then redis.call('ZADD', KEYS[at + 2], idx, idx) end
  redis.call('ZADD', KEYS[at + 3], idx, idx)
end
