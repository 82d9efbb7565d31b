// Lua for the task heartbeat keys. Every script reads the clock with TIME: deadlines are Redis server
// time in ms, never a worker's clock. Every key a script touches is in KEYS and shares the hash tag.
// Scores and times are written with %.0f so they stay plain integers (Lua's tostring would not).
//
// Per-member work goes through bulk(): one multi-member command (ZMSCORE, HMGET, ZADD, HSET) per 1 000
// arguments instead of one call per member, which cut a 2 000-task beat from ~6 ms to ~3 ms of server
// time. (ZMSCORE needs Redis >= 6.2.) Chunks keep unpack() inside Lua's C-stack limit.
const NOW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function ms(n) return string.format('%.0f', n) end
local function same(cur, score) return cur ~= false and cur ~= nil and (cur == score or tonumber(cur) == tonumber(score)) end
local function bulk(cmd, key, opt, items)
  local out, n = {}, 0
  for i = 1, #items, 1000 do
    local j = math.min(i + 999, #items)
    local r
    if opt then r = redis.call(cmd, key, opt, unpack(items, i, j)) else r = redis.call(cmd, key, unpack(items, i, j)) end
    if type(r) == 'table' then
      for x = 1, j - i + 1 do out[n + x] = r[x] end
      n = n + j - i + 1
    end
  end
  return out
end
`;

/**
 * The beat, and registration and removal. ARGV[1..4] = nb, np, nr, nu; then
 *  nb × (id, timeoutMs): refresh a member that exists and has not expired. A member that is missing or
 *       past its deadline is not refreshed (the monitor may be recovering it): it is reported.
 *  np × (id, progressTimeoutMs (0 = none), progressJson): progress of beaten members; recorded (and the
 *       progress deadline moved) only when it differs from the stored value.
 *  nr × (id, timeoutMs, progressTimeoutMs, progressJson, detailsJson): register or re-register:
 *       deadline, details (registeredAt prepended), progress clock reset.
 *  nu × (id): remove the task everywhere.
 * In that order; the emitter never sends a beat or registration and a removal for one id in one call.
 * Deadline strings are formatted once per distinct timeout: most tasks share one.
 * KEYS: deadlines, progressDeadlines, details, progress. Returns { now, id, 'missing'|'expired', ... }.
 */
export const BEAT = `${NOW}
local out, o = { now }, 1
local nb, np, nr, nu = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local nowS = ms(now)
local cache = {}
local function deadline(timeout)
  local d = cache[timeout]
  if not d then
    d = ms(now + tonumber(timeout))
    cache[timeout] = d
  end
  return d
end
local ids = {}
for k = 1, nb do ids[k] = ARGV[3 + 2 * k] end
local old = bulk('ZMSCORE', KEYS[1], nil, ids)
local refresh, r, alive = {}, 0, {}
for i = 1, nb do
  local id = ids[i]
  if not old[i] then
    out[o + 1], out[o + 2], o = id, 'missing', o + 2
  elseif tonumber(old[i]) <= now then
    out[o + 1], out[o + 2], o = id, 'expired', o + 2
  else
    refresh[r + 1], refresh[r + 2], r = deadline(ARGV[4 + 2 * i]), id, r + 2
    if np > 0 then alive[id] = true end
  end
end
bulk('ZADD', KEYS[1], 'XX', refresh)
local base = 5 + 2 * nb
if np > 0 then
  local pids = {}
  for k = 0, np - 1 do pids[k + 1] = ARGV[base + 3 * k] end
  local cur = bulk('HMGET', KEYS[4], nil, pids)
  local values, watched = {}, {}
  for k = 0, np - 1 do
    local id, pt, prog, c = ARGV[base + 3 * k], tonumber(ARGV[base + 3 * k + 1]), ARGV[base + 3 * k + 2], cur[k + 1]
    local colon = c and string.find(c, ':', 1, true)
    if alive[id] and (not colon or string.sub(c, colon + 1) ~= prog) then
      values[#values + 1] = id
      values[#values + 1] = nowS .. ':' .. prog
      if pt > 0 then
        watched[#watched + 1] = ms(now + pt)
        watched[#watched + 1] = id
      end
    end
  end
  bulk('HSET', KEYS[4], nil, values)
  bulk('ZADD', KEYS[2], nil, watched)
end
base = base + 3 * np
if nr > 0 then
  local dl, det, prog, watch, unwatch = {}, {}, {}, {}, {}
  for k = 0, nr - 1 do
    local b = base + 5 * k
    local id, pt = ARGV[b], tonumber(ARGV[b + 2])
    dl[2 * k + 1], dl[2 * k + 2] = deadline(ARGV[b + 1]), id
    det[2 * k + 1], det[2 * k + 2] = id, '{"registeredAt":' .. nowS .. ',' .. string.sub(ARGV[b + 4], 2)
    prog[2 * k + 1], prog[2 * k + 2] = id, nowS .. ':' .. ARGV[b + 3]
    if pt > 0 then
      watch[#watch + 1] = ms(now + pt)
      watch[#watch + 1] = id
    else
      unwatch[#unwatch + 1] = id
    end
  end
  bulk('ZADD', KEYS[1], nil, dl)
  bulk('HSET', KEYS[3], nil, det)
  bulk('HSET', KEYS[4], nil, prog)
  bulk('ZADD', KEYS[2], nil, watch)
  bulk('ZREM', KEYS[2], nil, unwatch)
end
base = base + 5 * nr
if nu > 0 then
  local gone = {}
  for k = 0, nu - 1 do gone[k + 1] = ARGV[base + k] end
  bulk('ZREM', KEYS[1], nil, gone)
  bulk('ZREM', KEYS[2], nil, gone)
  bulk('HDEL', KEYS[3], nil, gone)
  bulk('HDEL', KEYS[4], nil, gone)
end
return out
`;

// Shared by the scans: a member that cannot be a task id, or a score that is not a finite number, is
// moved into the corrupt hash with everything stored for it. Done here, on the server, so a member
// whose bytes do not survive a round trip as text is handled too, and so corrupt members can never
// pile up at the head of the range and block it. KEYS[5] is the corrupt hash.
const QUARANTINE_FN = `
local function valid(id) return #id <= 256 and string.find(id, '^[%w_%.:@/%+=%-]+$') ~= nil end
local function finite(s) local n = tonumber(s) return n ~= nil and n == n and n ~= math.huge and n ~= -math.huge end
local function quarantine(id, reason)
  local rec = {
    reason = reason,
    quarantinedAt = ms(now),
    deadline = redis.call('ZSCORE', KEYS[1], id) or nil,
    progressDeadline = redis.call('ZSCORE', KEYS[2], id) or nil,
    details = redis.call('HGET', KEYS[3], id) or nil,
    progress = redis.call('HGET', KEYS[4], id) or nil,
  }
  redis.call('HSET', KEYS[5], id, cjson.encode(rec))
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
  redis.call('HDEL', KEYS[3], id)
  redis.call('HDEL', KEYS[4], id)
end
-- A valid member whose progress deadline is unusable (+inf, absurdly far) but whose liveness
-- deadline is a finite number: only its progress watch is dropped (recorded in the corrupt hash).
-- Its liveness deadline still bounds it, and a live task is not recovered for a worker's progress
-- bound this monitor does not know (a worker's longer progressTimeoutMs).
local function unwatchOrQuarantine(id, reason)
  local d = redis.call('ZSCORE', KEYS[1], id)
  if not valid(id) or not d or not finite(d) then return quarantine(id, reason) end
  local rec = { reason = reason, quarantinedAt = ms(now), deadline = d, progressDeadline = redis.call('ZSCORE', KEYS[2], id) or nil, scope = 'progress-watch' }
  redis.call('HSET', KEYS[5], id, cjson.encode(rec))
  redis.call('ZREM', KEYS[2], id)
end
-- ARGV[3], when not empty: the furthest a deadline may lie ahead of now (the longest configured
-- timeout plus slack). Members scored beyond it (+inf, 1e15) would never come due and would hide
-- their task from reconciliation: up to ARGV[2] of them are quarantined per scan.
local function farAhead(key)
  if ARGV[3] == nil or ARGV[3] == '' then return {} end
  return redis.call('ZRANGEBYSCORE', key, '(' .. ms(now + tonumber(ARGV[3])), '+inf', 'WITHSCORES', 'LIMIT', 0, ARGV[2])
end
local function absurd(id, score)
  if not valid(id) then return 'invalid-member' elseif not finite(score) then return 'invalid-score' end
  return 'absurd-score'
end
`;

/**
 * Members whose deadline is <= now: one range query, with their details and progress. Corrupt members
 * are quarantined and reported (flag = reason), and so are members whose deadline lies further ahead
 * than ARGV[3] ms (absurd-score).
 * KEYS: deadlines, progressDeadlines, details, progress, corrupt. ARGV: offset, limit, maxAheadMs|''.
 * Returns { now, dueTotal, [id, score, details|nil, progress|nil, flag] ... }.
 */
export const SCAN_EXPIRED = `${NOW}${QUARANTINE_FN}
local r = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ms(now), 'WITHSCORES', 'LIMIT', ARGV[1], ARGV[2])
local out, o = { now, redis.call('ZCOUNT', KEYS[1], '-inf', ms(now)) }, 2
local ids = {}
for i = 1, #r / 2 do ids[i] = r[2 * i - 1] end
local details = bulk('HMGET', KEYS[3], nil, ids)
local progress = bulk('HMGET', KEYS[4], nil, ids)
for i = 1, #ids do
  local id, score = ids[i], r[2 * i]
  local flag = ''
  if not valid(id) then flag = 'invalid-member' elseif not finite(score) then flag = 'invalid-score' end
  if flag == '' then
    out[o + 1], out[o + 2], out[o + 3], out[o + 4], out[o + 5] = id, score, details[i], progress[i], ''
  else
    out[o + 1], out[o + 2], out[o + 3], out[o + 4], out[o + 5] = id, score, false, false, flag
    quarantine(id, flag)
  end
  o = o + 5
end
local far = farAhead(KEYS[1])
for i = 1, #far / 2 do
  local id, score = far[2 * i - 1], far[2 * i]
  local flag = absurd(id, score)
  out[o + 1], out[o + 2], out[o + 3], out[o + 4], out[o + 5] = id, score, false, false, flag
  quarantine(id, flag)
  o = o + 5
end
return out
`;

/**
 * Members whose progress deadline is <= now, with their heartbeat deadline (to tell a hung task whose
 * process still beats from one that is simply dead), details and progress. A progress entry without
 * a heartbeat member is an orphan: quarantined like a corrupt member. A progress deadline further
 * ahead than ARGV[3] ms (absurd-score) or not finite (invalid-score) of a member whose liveness
 * deadline is sound loses only its progress watch (recorded in the corrupt hash); else quarantined.
 * KEYS: deadlines, progressDeadlines, details, progress, corrupt. ARGV: offset, limit, maxAheadMs|''.
 * Returns { now, dueTotal, [id, progressScore, deadline|nil, details|nil, progress|nil, flag] ... }.
 */
export const SCAN_STALLED = `${NOW}${QUARANTINE_FN}
local r = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ms(now), 'WITHSCORES', 'LIMIT', ARGV[1], ARGV[2])
local out, o = { now, redis.call('ZCOUNT', KEYS[2], '-inf', ms(now)) }, 2
local ids = {}
for i = 1, #r / 2 do ids[i] = r[2 * i - 1] end
local deadlines = bulk('ZMSCORE', KEYS[1], nil, ids)
local details = bulk('HMGET', KEYS[3], nil, ids)
local progress = bulk('HMGET', KEYS[4], nil, ids)
for i = 1, #ids do
  local id, score, deadline = ids[i], r[2 * i], deadlines[i]
  local flag = ''
  if not valid(id) then flag = 'invalid-member'
  elseif not finite(score) then flag = 'invalid-score'
  elseif not deadline then flag = 'orphan-progress' end
  if flag == '' then
    out[o + 1], out[o + 2], out[o + 3], out[o + 4], out[o + 5], out[o + 6] = id, score, deadline, details[i], progress[i], ''
  else
    out[o + 1], out[o + 2], out[o + 3], out[o + 4], out[o + 5], out[o + 6] = id, score, deadline, false, false, flag
    if flag == 'invalid-score' then unwatchOrQuarantine(id, flag) else quarantine(id, flag) end
  end
  o = o + 6
end
local far = farAhead(KEYS[2])
for i = 1, #far / 2 do
  local id, score = far[2 * i - 1], far[2 * i]
  local flag = absurd(id, score)
  out[o + 1], out[o + 2], out[o + 3], out[o + 4], out[o + 5], out[o + 6] = id, score, redis.call('ZSCORE', KEYS[1], id), false, false, flag
  unwatchOrQuarantine(id, flag)
  o = o + 6
end
return out
`;

/**
 * Compare-and-delete: removes a task everywhere only if the score it was read with is still there
 * ('d': its deadline, 'p': its progress deadline). A member that beat again, made progress or was
 * re-registered has another score and is kept.
 * KEYS: deadlines, progressDeadlines, details, progress. ARGV: n, then id, 'd'|'p', score per entry.
 * Returns one 1 (removed) or 0 (kept) per entry.
 */
export const REMOVE = `${NOW}
local out = {}
local n = tonumber(ARGV[1])
for k = 0, n - 1 do
  local b = 2 + k * 3
  local id = ARGV[b]
  local set = KEYS[1]
  if ARGV[b + 1] == 'p' then set = KEYS[2] end
  if same(redis.call('ZSCORE', set, id), ARGV[b + 2]) then
    redis.call('ZREM', KEYS[1], id)
    redis.call('ZREM', KEYS[2], id)
    redis.call('HDEL', KEYS[3], id)
    redis.call('HDEL', KEYS[4], id)
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
`;

/**
 * A page of in-flight tasks by deadline, for an admin listing.
 * KEYS: deadlines, progressDeadlines, details, progress. ARGV: start, stop (ranks).
 * Returns { now, total, id, deadline, progressDeadline|nil, details|nil, progress|nil, ... }.
 */
export const LIST = `${NOW}
local r = redis.call('ZRANGE', KEYS[1], ARGV[1], ARGV[2], 'WITHSCORES')
local out, o = { now, redis.call('ZCARD', KEYS[1]) }, 2
local ids = {}
for i = 1, #r / 2 do ids[i] = r[2 * i - 1] end
local watched = bulk('ZMSCORE', KEYS[2], nil, ids)
local details = bulk('HMGET', KEYS[3], nil, ids)
local progress = bulk('HMGET', KEYS[4], nil, ids)
for i = 1, #ids do
  out[o + 1], out[o + 2], out[o + 3], out[o + 4], out[o + 5] = ids[i], r[2 * i], watched[i], details[i], progress[i]
  o = o + 5
end
return out
`;

/**
 * The earliest deadlines and progress deadlines: the first ARGV[1] + 1 of each set (ARGV[1] = how
 * many members the caller will pass over; default 0). KEYS: deadlines, progressDeadlines.
 * Returns { now, [id, deadline ...], [id, progressDeadline ...] }.
 */
export const NEXT = `${NOW}
local n = tonumber(ARGV[1] or '0') or 0
return { now, redis.call('ZRANGE', KEYS[1], 0, n, 'WITHSCORES'), redis.call('ZRANGE', KEYS[2], 0, n, 'WITHSCORES') }
`;

/**
 * Gauges. KEYS: deadlines, progressDeadlines, details, progress, corrupt.
 * Returns { now, inFlight, expiredDue, stalledDue, corrupt }.
 */
export const COUNTS = `${NOW}
return {
  now,
  redis.call('ZCARD', KEYS[1]),
  redis.call('ZCOUNT', KEYS[1], '-inf', ms(now)),
  redis.call('ZCOUNT', KEYS[2], '-inf', ms(now)),
  redis.call('HLEN', KEYS[5]),
}
`;

/**
 * Moves aside every heartbeat key whose type is not the one this package writes (a string or list
 * where a sorted set or hash belongs makes every script fail with WRONGTYPE, so no task could be
 * beaten, scanned or recovered): renamed to `<key>:wrong-type:<ms>` (same hash tag), nothing deleted.
 * KEYS: the keys to check; ARGV: the expected type of each ('zset' | 'hash').
 * Returns { key, foundType, movedTo, ... } for each key moved.
 */
export const SET_ASIDE_WRONG_TYPES = `${NOW}
local out = {}
for i = 1, #KEYS do
  local t = redis.call('TYPE', KEYS[i])
  if type(t) == 'table' then t = t['ok'] end
  if t ~= 'none' and t ~= ARGV[i] then
    local aside = KEYS[i] .. ':wrong-type:' .. ms(now)
    redis.call('RENAME', KEYS[i], aside)
    out[#out + 1] = KEYS[i]
    out[#out + 1] = t
    out[#out + 1] = aside
  end
end
return out
`;
