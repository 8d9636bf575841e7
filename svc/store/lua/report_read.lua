-- report_read: reports by their keys, each as {field, value, ...}.
-- KEYS: the reports.
local out = {}
for i = 1, #KEYS do out[i] = redis.call('HGETALL', KEYS[i]) end
return out
