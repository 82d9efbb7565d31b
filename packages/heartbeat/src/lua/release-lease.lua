-- Releases a lease (a key holding its holder's token, with an expiry) only if this holder still
-- holds it: a lease that lapsed and was taken by another holder is left alone.
-- KEYS: the lease key. ARGV: the holder's token. Returns 1 (released) or 0 (not held).
local leaseKey, token = KEYS[1], ARGV[1]
if redis.call('GET', leaseKey) == token then return redis.call('DEL', leaseKey) end
return 0
