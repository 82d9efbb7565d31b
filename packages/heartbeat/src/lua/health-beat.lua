-- One refresh of a service's health key by the reporter itself (see health-write). Includes: prelude,
-- health-write. KEYS: health key, services. ARGV: field, ttlMs, infoJson, incarnation, notBefore.
-- Returns now once written, else writeHealth's { 'taken', record } or { 'wait' }.
return writeHealth(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]) or now
