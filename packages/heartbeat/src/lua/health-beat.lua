-- Refreshes a service's health key (value = JSON, TTL ttlMs) and the registry entry that outlives it.
-- Includes: prelude. KEYS: health key, services. Returns now, or { 'taken', the record } without
-- writing when `incarnation` is given and the live record is another process's (an exclusive name).
local healthKey, servicesKey = KEYS[1], KEYS[2]
local field, ttlMs, infoJson, incarnation = ARGV[1], ARGV[2], ARGV[3], ARGV[4] -- infoJson: a JSON object
if incarnation ~= '' then
  local current = redis.call('GET', healthKey)
  if current and not string.find(current, '"incarnation":"' .. incarnation .. '"', 1, true) then
    return { 'taken', current }
  end
end
local body = '{"lastSeen":' .. ms(now) .. ',"ttlMs":' .. ttlMs .. ',' .. string.sub(infoJson, 2)
redis.call('SET', healthKey, body, 'PX', ttlMs)
redis.call('HSET', servicesKey, field, body)
return now
