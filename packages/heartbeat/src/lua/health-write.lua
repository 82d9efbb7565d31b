-- Included after prelude. writeHealth: refreshes a service's health key (value = JSON, TTL ttlMs) and
-- the registry entry that outlives it. Returns nil once written; with `incarnation` (an exclusive
-- name) { 'taken', the record } without writing when the live record is another process's, and
-- { 'wait' } without writing while the key is absent before `notBefore` (Redis ms, '' for none: a
-- holder's record lost before it expired; the holder may be alive and write it again).
-- `ownLastSeen` (Redis ms of this process's last write, '' before its first): another process's
-- record older than that is a copy Redis came back with (a snapshot or AOF restore, a lagging
-- replica promoted), not a takeover (a process takes the name over only after this one's record
-- expired, so later): it is written over and { 'replaced', the record } returned. Only while
-- Redis's clock is not behind that write: a clock stepped back (an NTP step, a failover to a host
-- whose clock is slow) makes a takeover's record look older too, so it counts as a takeover.
-- (Issue 13 adversary, round 7: two live processes wrote over each other after a 90 s step back.)
local function writeHealth(healthKey, servicesKey, field, ttlMs, infoJson, incarnation, notBefore, ownLastSeen)
  local replaced = nil
  if incarnation ~= '' then
    local current = redis.call('GET', healthKey)
    if current and not string.find(current, '"incarnation":"' .. incarnation .. '"', 1, true) then
      local seen = tonumber(string.match(current, '^{"lastSeen":(%d+),'))
      local own = tonumber(ownLastSeen)
      if not (seen and own and seen < own and now >= own) then return { 'taken', current } end
      replaced = current
    end
    if not current and notBefore ~= '' and now < tonumber(notBefore) then return { 'wait' } end
  end
  -- infoJson: a JSON object
  local body = '{"lastSeen":' .. ms(now) .. ',"ttlMs":' .. ttlMs .. ',' .. string.sub(infoJson, 2)
  redis.call('SET', healthKey, body, 'PX', ttlMs)
  redis.call('HSET', servicesKey, field, body)
  if replaced then return { 'replaced', replaced } end
  return nil
end
