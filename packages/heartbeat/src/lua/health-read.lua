-- Reads health keys. Includes: prelude. KEYS: the health keys.
-- Returns { now, pttl, value|nil, ... } per key.
local out = { now }
for _, key in ipairs(KEYS) do push(out, redis.call('PTTL', key), redis.call('GET', key)) end
return out
