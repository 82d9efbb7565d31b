-- Refreshes a service's health key (value = JSON, TTL ttlMs) and the registry entry that outlives it.
-- Includes: prelude. KEYS: health key, services. Returns now.
local healthKey, servicesKey = KEYS[1], KEYS[2]
local field, ttlMs, infoJson = ARGV[1], ARGV[2], ARGV[3] -- infoJson: a JSON object
local body = '{"lastSeen":' .. ms(now) .. ',"ttlMs":' .. ttlMs .. ',' .. string.sub(infoJson, 2)
redis.call('SET', healthKey, body, 'PX', ttlMs)
redis.call('HSET', servicesKey, field, body)
return now
