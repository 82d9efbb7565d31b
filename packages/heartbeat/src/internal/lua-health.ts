// Lua for service health keys. The last-seen time is Redis server time, like every deadline here.

const NOW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function ms(n) return string.format('%.0f', n) end
`;

/**
 * Refreshes the health key (value = JSON, TTL ttlMs) and the registry entry that outlives it.
 * KEYS: health key, services. ARGV: registry field, ttlMs, info JSON object. Returns now.
 */
export const HEALTH_BEAT = `${NOW}
local body = '{"lastSeen":' .. ms(now) .. ',"ttlMs":' .. ARGV[2] .. ',' .. string.sub(ARGV[3], 2)
redis.call('SET', KEYS[1], body, 'PX', ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], body)
return now
`;

/**
 * A graceful stop: records stoppedAt in the registry and, when ARGV[4] is '1', deletes the health key
 * so readers see the service gone at once instead of after its TTL.
 * KEYS: health key, services. ARGV: registry field, ttlMs, info JSON object, '1'|'0'. Returns now.
 */
export const HEALTH_STOP = `${NOW}
if ARGV[4] == '1' then redis.call('DEL', KEYS[1]) end
local body = '{"lastSeen":' .. ms(now) .. ',"stoppedAt":' .. ms(now) .. ',"ttlMs":' .. ARGV[2] .. ',' .. string.sub(ARGV[3], 2)
redis.call('HSET', KEYS[2], ARGV[1], body)
return now
`;

/** Reads health keys. KEYS: the health keys. Returns { now, pttl, value|nil, ... } per key. */
export const HEALTH_READ = `${NOW}
local out = { now }
for i = 1, #KEYS do
  out[#out + 1] = redis.call('PTTL', KEYS[i])
  out[#out + 1] = redis.call('GET', KEYS[i])
end
return out
`;
