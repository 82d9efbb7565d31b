-- The beat, and registration and removal. Includes: prelude, task-keys, health-write.
-- KEYS: deadlines, progressDeadlines, details, progress; with a health record to refresh, also its
--   key, services and the chain key (KEYS[5] here is not task-keys' corruptKey, which beat never uses).
-- ARGV: nb, np, nr, nu (group sizes), then the groups one after the other:
--   nb × (id, timeoutMs): refresh a member that exists and has not expired. A member that is missing
--        or past its deadline is not refreshed (the monitor may be recovering it): it is reported.
--   np × (id, progressTimeoutMs (0 = none), progressJson): progress of beaten members; recorded (and
--        the progress deadline moved) only when it differs from the stored value.
--   nr × (id, timeoutMs, progressTimeoutMs, progressJson, detailsJson): register or re-register:
--        deadline, details (registeredAt prepended), progress clock reset.
--   nu × (id): remove the task everywhere.
-- In that order; the emitter never sends a beat or registration and a removal for one id in one call.
-- With the health keys, after the groups: chunk, chunks, token, field, ttlMs, infoJson, incarnation,
--   ownLastSeen (see health-write).
--   The record is written after this call's writes, in the same script (a record never vouches for
--   a registration that has not run: a separate command could run first, e.g. when this one is
--   resent after NOSCRIPT), by the last chunk of a beat split over several calls, and only when
--   every chunk before it ran (each one advances `token:chunk` in the chain key).
-- Returns { now, health, id, 'missing'|'expired', ... }; health: 0 (not asked or not this chunk),
-- 1 (written), 2 (not written: an earlier chunk did not run), the record that holds the name, or
-- { record } (written over that older copy of another process's record).
local nb, np, nr, nu = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local cursor = 4
local function take()
  cursor = cursor + 1
  return ARGV[cursor]
end
local out = { now }
local nowS = ms(now)
-- Deadline strings are formatted once per distinct timeout: most tasks share one.
local cache = {}
local function deadline(timeout)
  local d = cache[timeout]
  if not d then
    d = ms(now + tonumber(timeout))
    cache[timeout] = d
  end
  return d
end

local ids, timeouts = {}, {}
for k = 1, nb do ids[k], timeouts[k] = take(), take() end
local old = bulk('ZMSCORE', deadlinesKey, nil, ids)
local refresh, alive = {}, {}
for k = 1, nb do
  local id = ids[k]
  if not old[k] then
    push(out, id, 'missing')
  elseif tonumber(old[k]) <= now then
    push(out, id, 'expired')
  else
    push(refresh, deadline(timeouts[k]), id)
    alive[id] = true
  end
end
bulk('ZADD', deadlinesKey, 'XX', refresh)

if np > 0 then
  local beats = {}
  for k = 1, np do beats[k] = { id = take(), timeout = tonumber(take()), json = take() } end
  local pids = {}
  for k, b in ipairs(beats) do pids[k] = b.id end
  local cur = bulk('HMGET', progressKey, nil, pids)
  local values, watched = {}, {}
  for k, b in ipairs(beats) do
    local c = cur[k]
    local colon = c and string.find(c, ':', 1, true)
    if alive[b.id] and (not colon or string.sub(c, colon + 1) ~= b.json) then
      push(values, b.id, nowS .. ':' .. b.json)
      if b.timeout > 0 then push(watched, ms(now + b.timeout), b.id) end
    end
  end
  bulk('HSET', progressKey, nil, values)
  bulk('ZADD', progressDeadlinesKey, nil, watched)
end

if nr > 0 then
  local dl, det, prog, watch, unwatch = {}, {}, {}, {}, {}
  for _ = 1, nr do
    local id, timeout, progressTimeout, progressJson, detailsJson = take(), take(), tonumber(take()), take(), take()
    push(dl, deadline(timeout), id)
    push(det, id, '{"registeredAt":' .. nowS .. ',' .. string.sub(detailsJson, 2))
    push(prog, id, nowS .. ':' .. progressJson)
    if progressTimeout > 0 then
      push(watch, ms(now + progressTimeout), id)
    else
      unwatch[#unwatch + 1] = id
    end
  end
  bulk('ZADD', deadlinesKey, nil, dl)
  bulk('HSET', detailsKey, nil, det)
  bulk('HSET', progressKey, nil, prog)
  bulk('ZADD', progressDeadlinesKey, nil, watch)
  bulk('ZREM', progressDeadlinesKey, nil, unwatch)
end

if nu > 0 then
  local gone = {}
  for k = 1, nu do gone[k] = take() end
  bulk('ZREM', deadlinesKey, nil, gone)
  bulk('ZREM', progressDeadlinesKey, nil, gone)
  bulk('HDEL', detailsKey, nil, gone)
  bulk('HDEL', progressKey, nil, gone)
end

local health = 0
if #KEYS >= 7 then
  local chunk, chunks, token = tonumber(take()), tonumber(take()), take()
  local field, ttlMs, infoJson, incarnation, ownLastSeen = take(), take(), take(), take(), take()
  local chainKey = KEYS[7]
  local chained = chunk == 1 or redis.call('GET', chainKey) == token .. ':' .. (chunk - 1)
  if not chained then
    health = 2
  elseif chunk < chunks then
    redis.call('SET', chainKey, token .. ':' .. chunk, 'PX', 60000)
  else
    if chunks > 1 then redis.call('DEL', chainKey) end
    local r = writeHealth(KEYS[5], KEYS[6], field, ttlMs, infoJson, incarnation, '', ownLastSeen)
    if r == nil then
      health = 1
    elseif r[1] == 'replaced' then
      health = { r[2] }
    else
      health = r[2]
    end
  end
end
table.insert(out, 2, health)
return out
