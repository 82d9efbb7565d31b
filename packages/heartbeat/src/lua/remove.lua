-- Compare-and-delete: removes a task everywhere only if the score it was read with is still there
-- ('d': its deadline, 'p': its progress deadline). A member that beat again, made progress or was
-- re-registered has another score and is kept. Includes: prelude, task-keys.
-- KEYS: deadlines, progressDeadlines, details, progress.
-- ARGV: n, then n × (id, 'd'|'p', score). Returns one 1 (removed) or 0 (kept) per entry.
local n = tonumber(ARGV[1])
local function same(cur, score) return cur ~= false and cur ~= nil and (cur == score or tonumber(cur) == tonumber(score)) end
local nextArg = 2
local function take()
  local v = ARGV[nextArg]
  nextArg = nextArg + 1
  return v
end
local out = {}
for k = 1, n do
  local id, which, score = take(), take(), take()
  local set = deadlinesKey
  if which == 'p' then set = progressDeadlinesKey end
  if same(redis.call('ZSCORE', set, id), score) then
    forget(id)
    out[k] = 1
  else
    out[k] = 0
  end
end
return out
