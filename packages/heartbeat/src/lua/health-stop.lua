-- A graceful stop: records stoppedAt in the registry and, when dropKey is '1', deletes the health key
-- so readers see the service gone at once instead of after its TTL.
-- Includes: prelude. KEYS: health key, services. Returns now.
local healthKey, servicesKey = KEYS[1], KEYS[2]
local field, ttlMs, infoJson, dropKey = ARGV[1], ARGV[2], ARGV[3], ARGV[4] -- infoJson: a JSON object; dropKey: '1'|'0'
if dropKey == '1' then redis.call('DEL', healthKey) end
local body = '{"lastSeen":' .. ms(now) .. ',"stoppedAt":' .. ms(now) .. ',"ttlMs":' .. ttlMs .. ',' .. string.sub(infoJson, 2)
redis.call('HSET', servicesKey, field, body)
return now
