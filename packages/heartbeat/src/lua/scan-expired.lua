-- Members whose deadline is <= now: one range query, with their details and progress. Corrupt members
-- are quarantined and reported (flag = reason), and so are members whose deadline lies further ahead
-- than maxAheadMs (absurd-score). Includes: prelude, task-keys, quarantine.
-- KEYS: deadlines, progressDeadlines, details, progress, corrupt.
-- Returns { now, dueTotal, [id, score, details|nil, progress|nil, flag] ... }.
local offset, limit, maxAheadMs = ARGV[1], ARGV[2], ARGV[3] -- maxAheadMs: '' for no bound
local r = redis.call('ZRANGEBYSCORE', deadlinesKey, '-inf', ms(now), 'WITHSCORES', 'LIMIT', offset, limit)
local out = { now, redis.call('ZCOUNT', deadlinesKey, '-inf', ms(now)) }
local ids = {}
for i = 1, #r / 2 do ids[i] = r[2 * i - 1] end
local details = bulk('HMGET', detailsKey, nil, ids)
local progress = bulk('HMGET', progressKey, nil, ids)
for i, id in ipairs(ids) do
  local score = r[2 * i]
  local flag = ''
  if not valid(id) then flag = 'invalid-member' elseif not finite(score) then flag = 'invalid-score' end
  if flag == '' then
    push(out, id, score, details[i], progress[i], '')
  else
    push(out, id, score, false, false, flag)
    quarantine(id, flag)
  end
end
local far = farAhead(deadlinesKey, maxAheadMs, limit)
for i = 1, #far, 2 do
  local id, score = far[i], far[i + 1]
  local flag = absurd(id, score)
  push(out, id, score, false, false, flag)
  quarantine(id, flag)
end
return out
