-- Shared by the scans: a member that cannot be a task id, or a score that is not a finite number, is
-- moved into the corrupt hash with everything stored for it. Done here, on the server, so a member
-- whose bytes do not survive a round trip as text is handled too, and so corrupt members can never
-- pile up at the head of the range and block it.
local function valid(id) return #id <= 256 and string.find(id, '^[%w_%.:@/%+=%-]+$') ~= nil end
local function finite(s) local n = tonumber(s) return n ~= nil and n == n and n ~= math.huge and n ~= -math.huge end
local function quarantine(id, reason)
  local rec = {
    reason = reason,
    quarantinedAt = ms(now),
    deadline = redis.call('ZSCORE', deadlinesKey, id) or nil,
    progressDeadline = redis.call('ZSCORE', progressDeadlinesKey, id) or nil,
    details = redis.call('HGET', detailsKey, id) or nil,
    progress = redis.call('HGET', progressKey, id) or nil,
  }
  redis.call('HSET', corruptKey, id, cjson.encode(rec))
  forget(id)
end
-- A valid member whose progress deadline is unusable (+inf, absurdly far) but whose liveness
-- deadline is a finite number: only its progress watch is dropped (recorded in the corrupt hash).
-- Its liveness deadline still bounds it, and a live task is not recovered for a worker's progress
-- bound this monitor does not know (a worker's longer progressTimeoutMs).
local function unwatchOrQuarantine(id, reason)
  local d = redis.call('ZSCORE', deadlinesKey, id)
  if not valid(id) or not d or not finite(d) then return quarantine(id, reason) end
  local rec = { reason = reason, quarantinedAt = ms(now), deadline = d, progressDeadline = redis.call('ZSCORE', progressDeadlinesKey, id) or nil, scope = 'progress-watch' }
  redis.call('HSET', corruptKey, id, cjson.encode(rec))
  redis.call('ZREM', progressDeadlinesKey, id)
end
-- maxAheadMs, when not empty: the furthest a deadline may lie ahead of now (the longest configured
-- timeout plus slack). Members scored beyond it (+inf, 1e15) would never come due and would hide
-- their task from reconciliation: up to `limit` of them are quarantined per scan.
local function farAhead(key, maxAheadMs, limit)
  if maxAheadMs == nil or maxAheadMs == '' then return {} end
  return redis.call('ZRANGEBYSCORE', key, '(' .. ms(now + tonumber(maxAheadMs)), '+inf', 'WITHSCORES', 'LIMIT', 0, limit)
end
local function absurd(id, score)
  if not valid(id) then return 'invalid-member' elseif not finite(score) then return 'invalid-score' end
  return 'absurd-score'
end
