-- notice(at, aud, plat, cert, batch, status, reason, when, rev, ids, i, last,
--        keep, actor): one delisting notice for listing ids[i..last] on the
-- platform's stream (trimmed to the retention window, keep ms, by stream id
-- time), its entry in the platform's notice log (never trimmed: the
-- compliance record) and its acknowledgement state "listings acked
-- complete_ms delisted_unix", and in the index of notices not yet
-- acknowledged (every platform's: "platform\nid" by time, for the alert on
-- notices left unacknowledged); then its audit entry. KEYS[at] ..
-- KEYS[at+2]: the platform's stream, notice log and notice state;
-- KEYS[aud] ..: the audit keys for kind 'delist' and subject cert; the
-- caller's last key, KEYS[#KEYS]: the unacknowledged index.
local function notice(at, aud, plat, cert, batch, status, reason, when, rev, ids, i, last,
                      keep, actor)
  local t = redis.call('TIME')
  local minid = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(keep)
  if minid < 0 then minid = 0 end
  local listed = table.concat(ids, '\n', i, last)
  local id = redis.call('XADD', KEYS[at], 'MINID', '~', minid, '*',
    'platform', plat, 'cert', cert, 'batch', batch, 'status', status, 'reason', reason,
    'effective', when, 'rev', rev, 'listings', listed)
  local ms = tonumber(string.match(id, '^%d+'))
  redis.call('ZADD', KEYS[at + 1], ms, id)
  redis.call('ZADD', KEYS[#KEYS], ms, plat .. '\n' .. id)
  redis.call('HSET', KEYS[at + 2], id, (last - i + 1) .. ' 0 0 0')
  audit(aud, 'delist', actor, cert, 'platform ' .. plat .. '\nnotice ' .. id .. '\nbatch ' ..
    batch .. '\nstatus ' .. status .. '\neffective ' .. when .. '\nreason ' .. reason ..
    '\nlistings ' .. (last - i + 1) .. '\n' .. listed)
end
