-- A page of in-flight tasks by deadline, for an admin listing. Includes: prelude, task-keys.
-- KEYS: deadlines, progressDeadlines, details, progress.
-- Returns { now, total, id, deadline, progressDeadline|nil, details|nil, progress|nil, ... }.
local start, stop = ARGV[1], ARGV[2] -- ranks
local r = redis.call('ZRANGE', deadlinesKey, start, stop, 'WITHSCORES')
local out = { now, redis.call('ZCARD', deadlinesKey) }
local ids = {}
for i = 1, #r / 2 do ids[i] = r[2 * i - 1] end
local watched = bulk('ZMSCORE', progressDeadlinesKey, nil, ids)
local details = bulk('HMGET', detailsKey, nil, ids)
local progress = bulk('HMGET', progressKey, nil, ids)
for i, id in ipairs(ids) do push(out, id, r[2 * i], watched[i], details[i], progress[i]) end
return out
