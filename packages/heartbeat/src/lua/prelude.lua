-- Included first in every script. `now` is Redis server time in ms: deadlines are never a worker's
-- clock. ms() writes scores and times as plain integers (Lua's tostring would not).
-- bulk() runs one multi-member command (ZMSCORE, HMGET, ZADD, HSET...) per 1 000 arguments instead of
-- one call per member, which cut a 2 000-task beat from ~6 ms to ~3 ms of server time (ZMSCORE needs
-- Redis >= 6.2); the chunks keep unpack() inside Lua's C-stack limit.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function ms(n) return string.format('%.0f', n) end
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
-- Appends values to a list, in order.
local function push(list, ...)
  for i = 1, select('#', ...) do list[#list + 1] = select(i, ...) end
end
