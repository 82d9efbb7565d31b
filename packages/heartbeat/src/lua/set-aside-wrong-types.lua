-- Moves aside every heartbeat key whose type is not the one this package writes (a string or list
-- where a sorted set or hash belongs makes every script fail with WRONGTYPE, so no task could be
-- beaten, scanned or recovered): renamed to `<key>:wrong-type:<ms>` (same hash tag), nothing deleted.
-- Includes: prelude. KEYS: the keys to check. ARGV: the expected type of each key ('zset' | 'hash').
-- Returns { key, foundType, movedTo, ... } for each key moved.
local out = {}
for i, key in ipairs(KEYS) do
  local expected = ARGV[i]
  local found = redis.call('TYPE', key)
  if type(found) == 'table' then found = found['ok'] end
  if found ~= 'none' and found ~= expected then
    local aside = key .. ':wrong-type:' .. ms(now)
    redis.call('RENAME', key, aside)
    push(out, key, found, aside)
  end
end
return out
