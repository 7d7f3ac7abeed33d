--- Helpers for par's benchmarks.  bench/run.sh runs them from the
-- repository's top, and so does a bench that starts a copy of itself, so
-- `require "bench.util"`.
local M = {}

--- The integer in environment variable 'name', else 'default'.
function M.env_int(name, default)
  local v = os.getenv(name)
  return v and math.tointeger(tonumber(v)) or default
end

--- The median of the numbers in 't' (which is left as it was).
function M.median(t)
  local s = table.move(t, 1, #t, 1, {})
  table.sort(s)
  local m = #s // 2
  return #s % 2 == 1 and s[m + 1] or (s[m] + s[m + 1]) / 2
end

--- This process's pid (a forked map worker's own, in a worker).
function M.pid()
  local f = assert(io.open("/proc/self/stat"))
  local p = f:read("n")
  f:close()
  return math.tointeger(p)
end

--- A big Lua heap: many small tables of numbers and short strings, like a
-- program's data, until the collector counts 'mb' MiB.
function M.heap(mb)
  local heap, i = {}, 0
  while collectgarbage("count") < mb * 1024 do
    for _ = 1, 10000 do
      i = i + 1
      heap[i] = { i, i * 0.5, i + 1, i + 2, i + 3, i + 4, i + 5, i + 6, i + 7, i + 8,
        i + 9, i + 10, i + 11, i + 12, "k" .. (i % 4096), "v" }
    end
  end
  return heap
end

return M
