-- A graceful stop: records stoppedAt in the registry and, when dropKey is '1', deletes the health key
-- so readers see the service gone at once instead of after its TTL. With `incarnation`, nothing is
-- done when the live record is another process's (an exclusive name taken over).
-- Includes: prelude. KEYS: health key, services. Returns now.
local healthKey, servicesKey = KEYS[1], KEYS[2]
local field, ttlMs, infoJson, dropKey, incarnation = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5] -- infoJson: a JSON object; dropKey: '1'|'0'
if incarnation ~= '' then
  local current = redis.call('GET', healthKey)
  if current and not string.find(current, '"incarnation":"' .. incarnation .. '"', 1, true) then return now end
end
if dropKey == '1' then redis.call('DEL', healthKey) end
local body = '{"lastSeen":' .. ms(now) .. ',"stoppedAt":' .. ms(now) .. ',"ttlMs":' .. ttlMs .. ',' .. string.sub(infoJson, 2)
redis.call('HSET', servicesKey, field, body)
return now
