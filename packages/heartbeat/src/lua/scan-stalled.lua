-- Members whose progress deadline is <= now, with their heartbeat deadline (to tell a hung task whose
-- process still beats from one that is simply dead), details and progress. A progress entry without
-- a heartbeat member is an orphan: quarantined like a corrupt member. A progress deadline further
-- ahead than maxAheadMs (absurd-score) or not finite (invalid-score) of a member whose liveness
-- deadline is sound loses only its progress watch (recorded in the corrupt hash); else quarantined.
-- Includes: prelude, task-keys, quarantine.
-- KEYS: deadlines, progressDeadlines, details, progress, corrupt.
-- Returns { now, dueTotal, [id, progressScore, deadline|nil, details|nil, progress|nil, flag] ... }.
local offset, limit, maxAheadMs = ARGV[1], ARGV[2], ARGV[3] -- maxAheadMs: '' for no bound
local r = redis.call('ZRANGEBYSCORE', progressDeadlinesKey, '-inf', ms(now), 'WITHSCORES', 'LIMIT', offset, limit)
local out = { now, redis.call('ZCOUNT', progressDeadlinesKey, '-inf', ms(now)) }
local ids = {}
for i = 1, #r / 2 do ids[i] = r[2 * i - 1] end
local deadlines = bulk('ZMSCORE', deadlinesKey, nil, ids)
local details = bulk('HMGET', detailsKey, nil, ids)
local progress = bulk('HMGET', progressKey, nil, ids)
for i, id in ipairs(ids) do
  local score, deadline = r[2 * i], deadlines[i]
  local flag = ''
  if not valid(id) then flag = 'invalid-member'
  elseif not finite(score) then flag = 'invalid-score'
  elseif not deadline then flag = 'orphan-progress' end
  if flag == '' then
    push(out, id, score, deadline, details[i], progress[i], '')
  else
    push(out, id, score, deadline, false, false, flag)
    if flag == 'invalid-score' then unwatchOrQuarantine(id, flag) else quarantine(id, flag) end
  end
end
local far = farAhead(progressDeadlinesKey, maxAheadMs, limit)
for i = 1, #far, 2 do
  local id, score = far[i], far[i + 1]
  local flag = absurd(id, score)
  push(out, id, score, redis.call('ZSCORE', deadlinesKey, id), false, false, flag)
  unwatchOrQuarantine(id, flag)
end
return out
