-- One refresh of a service's health key by the reporter itself (see health-write). Includes: prelude,
-- health-write. KEYS: health key, services. ARGV: field, ttlMs, infoJson, incarnation, notBefore,
-- ownLastSeen. Returns now once written ({ 'replaced', record, now } when it wrote over an older
-- copy), else writeHealth's { 'taken', record } or { 'wait' }.
local r = writeHealth(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6])
if r and r[1] == 'replaced' then return { 'replaced', r[2], now } end
return r or now
