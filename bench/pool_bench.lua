--- pool_bench.lua: par.pool against par.map and Python's process pools.
--
--   lua5.4 bench/pool_bench.lua        (from the top of the repo, par built;
--                                       sh bench/run.sh runs it too)
--
-- Six cases, 2 workers each, every one timed in rounds that alternate
-- between par and Python (bench/pool_peers.py), each round's runners in
-- processes of their own, the first of them par in odd rounds and Python in
-- even ones, so that a change in the machine's load hits all alike.  A pool,
-- par's or Python's (fork start method), is made and warmed by one call
-- before its clock starts: the timed calls reuse it.  The table shows
-- medians over the rounds; a ratio is the median of the rounds' ratios.
--
--   calls       500 pool:map calls of 100 items x*2 (par.map beside it)
--   heap        the same from a caller holding a ~270 MB heap, built
--               before the pool (par.map beside it: PAR_POOL_MAP_CALLS calls,
--               a fork each)
--   roundtrip   pool:submit(fn, i):get(), one at a time: the median; then
--               again while a busy loop keeps one of the 2 cores busy (not a
--               target: the machine a pool shares is seldom idle)
--   many        20,000 submits, then every get
--   tiny        pool:map of 10^6 items x*2 against par.map of the same
--   strings     10,000 items, each a fresh 10 KB string
--
-- Environment (defaults in brackets): PAR_BENCH_ROUNDS [5],
-- PAR_POOL_HEAP_MB [270], PAR_POOL_MAP_CALLS [25], PAR_POOL_CASES [123456]
-- (the cases to run, by number), PAR_BENCH_PYTHON
-- [python3] ("" skips the Python rows; the targets against Python then go
-- unjudged).
--
-- Child mode:
--   lua5.4 bench/pool_bench.lua --child CASE pool|map ARGS...
-- runs one round of a case with par.pool or par.map and prints
-- "name value" lines (seconds; "heap MiB count" for a heap).
local util = require "bench.util"
local env_int, median = util.env_int, util.median

local ROUNDS = env_int("PAR_BENCH_ROUNDS", 5)
local HEAP_MB = env_int("PAR_POOL_HEAP_MB", 270)
local MAP_CALLS = env_int("PAR_POOL_MAP_CALLS", 25)
local CASES = os.getenv("PAR_POOL_CASES") or "123456"
local PYTHON = os.getenv("PAR_BENCH_PYTHON") or "python3"
local LUA = os.getenv("LUA") or "lua5.4"
local PROCS = 2
local LIMIT = 5          -- seconds: case 4's as_completed and wait give up

-- The work.  Neither function has an upvalue, so what travels to a pool's
-- workers is the bytecode alone (and only once: see 'defines' below).
local function tiny(x) return x * 2 end

-- 10240 bytes, one fresh string per item (Python: (b"%08d" % x) * 1280).
local function fresh10k(x) return ("%08d"):format(x):rep(1280) end

local function range(n)
  local t = {}
  for i = 1, n do t[i] = i end
  return t
end

-- {======================================================================
-- Child mode: one round of a case, par's side

-- The CPU seconds (user + system) a pool's workers have used so far, and
-- their pids, joined by spaces (if they differ at the end of the timed map,
-- a worker was replaced and its CPU is not all counted)
local function workers_cpu(pool)
  local sum, pids = 0, pool:pids()
  for _, pid in ipairs(pids) do
    local f = io.open("/proc/" .. pid .. "/stat")
    if f then
      local fields = {}
      for v in f:read("a"):gsub("^.*%) ", ""):gmatch("%S+") do fields[#fields + 1] = v end
      f:close()
      sum = sum + (fields[12] + fields[13]) / 100     -- utime, stime: clock ticks
    end
  end
  return sum, table.concat(pids, " ")
end

local function child(case, how, ...)
  local par = require "par"
  local now = require("par.core").monotime
  local a = { ... }
  for k = 1, #a do a[k] = math.tointeger(tonumber(a[k])) end
  local function out(name, v) print(("%s %.9f"):format(name, v)) end
  local function check(r, n, f)
    assert(r.n == n and r[1] == f(1) and r[n] == f(n), "wrong results")
  end
  -- A pool made after whatever the case builds, warmed by one call
  local function pool_for(fn, items)
    local pool = assert(par.pool(PROCS))
    check(pool:map(fn, items), #items, fn)
    return pool
  end
  local function timed(f)
    collectgarbage()
    local t = now()
    f()
    return now() - t
  end

  if case == "calls" then                 -- CALLS ITEMS [HEAP_MB]
    local ncalls, nitems, mb = a[1], a[2], a[3] or 0
    local heap = mb > 0 and util.heap(mb) or {}
    collectgarbage()
    if mb > 0 then print(("heap %.1f %d"):format(collectgarbage("count") / 1024, #heap)) end
    local items = range(nitems)
    if how == "pool" then
      local t = now()
      local pool <close> = pool_for(tiny, items)
      out("start", now() - t)
      out("calls", timed(function()
        for _ = 1, ncalls do pool:map(tiny, items) end
      end))
    else
      check(par.map(tiny, items, PROCS), nitems, tiny)
      out("calls", timed(function()
        for _ = 1, ncalls do par.map(tiny, items, PROCS) end
      end))
    end
    assert(heap)                          -- alive until here
  elseif case == "roundtrip" then         -- N
    local pool <close> = pool_for(tiny, range(100))
    local ts = {}
    collectgarbage()
    for i = 1, a[1] do
      local t = now()
      local v = pool:submit(tiny, i):get()
      ts[i] = now() - t
      assert(v == 2 * i)
    end
    out("roundtrip", median(ts))
    out("defines", pool:stats().defines)
  elseif case == "many" then              -- N
    local pool <close> = pool_for(tiny, range(100))
    local n = a[1]
    out("many", timed(function()
      local fs = {}
      for i = 1, n do fs[i] = pool:submit(tiny, i) end
      for i = 1, n do assert(fs[i]:get() == 2 * i) end
    end))
    -- as_completed and wait get a timeout, far past their time, so that a
    -- pool that loses a future (or is slow to find it) fails the row
    -- instead of holding up the bench
    local ok, err = pcall(timed, function()
      local fs = {}
      for i = 1, n do fs[i] = pool:submit(tiny, i) end
      local k = 0
      for _ in par.as_completed(fs, LIMIT) do k = k + 1 end
      assert(k == n, "as_completed gave too few futures")
    end)
    if ok then out("as_completed", err)
    else io.stderr:write("pool_bench: as_completed: ", tostring(err), "\n") end
    local pending
    ok, err = pcall(timed, function()
      local fs = {}
      for i = 1, n do fs[i] = pool:submit(tiny, i) end
      pending = select(2, par.wait(fs, { timeout = LIMIT }))
      assert(#pending == 0, "par.wait: timeout")
    end)
    if ok then out("wait", err)
    else
      io.stderr:write("pool_bench: wait: ", tostring(err), " (", pending and #pending or "?", " of ", n,
        " pending)\n")
    end
    if pending and #pending > 0 then pool:terminate() end
  elseif case == "tiny" or case == "strings" then   -- N
    -- Beside the time, the CPU seconds of the caller and (a pool's) of
    -- its workers, summed: where the time goes
    local fn = case == "tiny" and tiny or fresh10k
    local items = range(a[1])
    local r, c
    local function cpu_timed(f)
      collectgarbage()
      c = os.clock()
      local t = now()
      f()
      local dt = now() - t
      c = os.clock() - c
      return dt
    end
    if how == "pool" then
      local pool <close> = pool_for(fn, items)
      local w, pids = workers_cpu(pool)
      out(how, cpu_timed(function() r = pool:map(fn, items) end))
      local w1, pids1 = workers_cpu(pool)
      if pids1 == pids then out("workers cpu", w1 - w) end
      out("defines", pool:stats().defines)
      out("forks", pool:stats().forks)
    else
      check(par.map(fn, items, PROCS), #items, fn)
      out(how, cpu_timed(function() r = par.map(fn, items, PROCS) end))
    end
    out("caller cpu", c)
    check(r, #items, fn)
  else
    error("unknown case " .. tostring(case))
  end
end

if arg[1] == "--child" then
  child(table.unpack(arg, 2))
  os.exit(0)
end

-- }======================================================================

--- The "name value..." lines of a command, as { name = {numbers} }.
local function lines_of(cmd)
  local p = assert(io.popen(cmd))
  local out = {}
  for line in p:lines() do
    local name, rest = line:match("^(.-) ([%d.e+-]+[%d.e+%s-]*)$")
    if name then
      local f = {}
      for x in rest:gmatch("%S+") do f[#f + 1] = tonumber(x) end
      out[name] = f
    end
  end
  assert(p:close(), "failed: " .. cmd)
  return out
end

local function lua_cmd(...)
  return table.concat({ LUA, "bench/pool_bench.lua --child", ... }, " ")
end
local function py_cmd(...)
  if PYTHON == "" then return nil end
  return table.concat({ PYTHON, "bench/pool_peers.py", ... }, " ")
end

--- Runs the commands of a case ROUNDS times, alternating which goes
-- first; returns per round a table merging every command's figures, keys
-- prefixed by the command's tag ("par pool: calls").
local function rounds_of(cmds)
  local list = {}
  for tag, cmd in pairs(cmds) do list[#list + 1] = { tag = tag, cmd = cmd } end
  table.sort(list, function(x, y) return x.tag < y.tag end)
  local rounds = {}
  for r = 1, ROUNDS do
    local fig = {}
    for k = 1, #list do
      local c = list[r % 2 == 1 and k or #list + 1 - k]
      for name, f in pairs(lines_of(c.cmd)) do fig[c.tag .. ": " .. name] = f end
    end
    rounds[r] = fig
  end
  return rounds
end

--- The median over rounds of figure 'key' (its field 'k', default 1), or nil.
local function med(rounds, key, k)
  local t = {}
  for _, fig in ipairs(rounds) do
    if fig[key] then t[#t + 1] = fig[key][k or 1] end
  end
  return #t > 0 and median(t) or nil
end

--- The median over rounds of key a / key b (nil if b is missing).
local function ratio(rounds, a, b)
  local t = {}
  for _, fig in ipairs(rounds) do
    if fig[a] and fig[b] then t[#t + 1] = fig[a][1] / fig[b][1] end
  end
  return #t > 0 and median(t) or nil
end

--- " (rounds: lo-hi)": the least and the most of f(fig) over the rounds.
local function spread(rounds, f, fmt)
  local lo, hi = math.huge, -math.huge
  for _, fig in ipairs(rounds) do
    local ok, v = pcall(f, fig)
    if ok and v then lo, hi = math.min(lo, v), math.max(hi, v) end
  end
  if lo > hi then return "" end
  return (" (rounds: " .. fmt .. " to " .. fmt .. ")"):format(lo, hi)
end
local function per_round_ratio(a, b)
  return function(fig) return fig[a][1] / fig[b][1] end
end

--- The key among 'keys' with the least median, and that median.
local function best(rounds, keys)
  local bk, bm
  for _, key in ipairs(keys) do
    local m = med(rounds, key)
    if m and (not bm or m < bm) then bk, bm = key, m end
  end
  return bk, bm
end

-- Python's runner names of a case, as they come in its rounds
local function py_keys(rounds)
  local keys = {}
  for key in pairs(rounds[1]) do
    if key:find("^python: ") and not key:find("^python: heap") then keys[#keys + 1] = key end
  end
  table.sort(keys)
  return keys
end

-- A Python runner's name for the table
local function pyname(key)
  local name = key:sub(#"python: " + 1)
  if name:find("^floor: ") then return "floor (Python os.write, os.read): " .. name:sub(8) end
  return "Python " .. name
end

local rows, verdicts = {}, {}
local function row(case, runner, secs, unit, note)
  local fmt = { s = "%.3f s", ms = "%.2f ms", us = "%.1f µs" }
  local scale = { s = 1, ms = 1e3, us = 1e6 }
  rows[#rows + 1] = ("| %s | %s | %s | %s |"):format(case, runner,
    secs and fmt[unit]:format(secs * scale[unit]) or "—", note or "")
end
local function verdict(ok, text)
  if ok == nil then verdicts[#verdicts + 1] = "- [not judged] " .. text
  else verdicts[#verdicts + 1] = ("- [%s] %s"):format(ok and "PASS" or "MISS", text) end
end
local function x(v) return v and ("%.2fx"):format(v) or "—" end

-- 1, 2: many small maps, from an empty caller and from a big one
local function calls_case(label, mb)
  local heap = mb > 0 and " " .. mb or ""
  local pcalls = mb > 0 and MAP_CALLS or 500
  local R = rounds_of({
    ["par pool"] = lua_cmd("calls pool 500 100" .. heap),
    ["par map"] = lua_cmd("calls map", pcalls, "100" .. heap),
    python = py_cmd("calls 500 100" .. heap),
  })
  local p, m, py = med(R, "par pool: calls"), med(R, "par map: calls"), med(R, "python: Pool(2).map")
  local r = ratio(R, "par pool: calls", "python: Pool(2).map")
  if mb > 0 then
    local note = ("Lua heap %.0f MiB (collectgarbage), %d tables"):format(med(R, "par pool: heap"),
      med(R, "par pool: heap", 2))
    if py then
      note = note .. ("; Python heap %.0f MiB (RSS growth), %d lists"):format(med(R, "python: heap"),
        med(R, "python: heap", 2))
    end
    rows[#rows + 1] = ("| %s | | | %s |"):format(label, note)
  end
  row(label, "**par.pool(2)**, 500 x pool:map", p, "s", ("%.3f ms a call; %s Python"):format(p * 2, x(r)))
  row(label, ("par.map, %d x par.map"):format(pcalls), m, "s", ("%.3f ms a call"):format(m * 1000 / pcalls))
  if py then
    row(label, "Python Pool(2), 500 x Pool.map", py, "s", ("%.3f ms a call"):format(py * 2))
  end
  row(label, "start: par.pool(2) + its first map", med(R, "par pool: start"), "ms")
  return r, spread(R, per_round_ratio("par pool: calls", "python: Pool(2).map"), "%.2fx")
end

local function want(case) return CASES:find(case, 1, true) ~= nil end

if want("1") then
  local r1, s1 = calls_case("1: 500 maps of 100 items", 0)
  verdict(r1 and r1 <= 0.5, ("1: 500 pool:map calls %s the time of Python's Pool(2).map%s (target <= 0.5x)")
    :format(x(r1), s1))
end
if want("2") then
  local r2, s2 = calls_case(("2: the same, caller holding %d MB"):format(HEAP_MB), HEAP_MB)
  verdict(r2 and r2 <= 0.5, ("2: from a %d MB heap, pool:map %s Python's%s (target <= 0.5x)")
    :format(HEAP_MB, x(r2), s2))
end

--- Runs f() while another process keeps one core busy (a shell's busy
-- loop, started here and ended by its pid): on a 2-core machine, the
-- pool's processes then share the other one.
local function with_busy_core(f)
  local p = assert(io.popen("sh -c 'while :; do :; done' </dev/null >/dev/null 2>&1 & echo $!"))
  local pid = assert(math.tointeger(tonumber(p:read("l"))), "no pid for the busy loop")
  p:close()
  local ok, err = pcall(f)
  os.execute("kill " .. pid)
  assert(ok, err)
end

-- 3: one round trip at a time; then again with one core busy
if want("3") then
  local function roundtrips(label)
    local R = rounds_of({ par = lua_cmd("roundtrip pool 2000"), python = py_cmd("roundtrip 2000") })
    row(label, "**par.pool** (median round trip)", med(R, "par: roundtrip"), "us",
      ("fn defined %d times in all (once a worker)"):format(med(R, "par: defines")))
    for _, key in ipairs(py_keys(R)) do
      row(label, pyname(key), med(R, key), "us", ("par %s"):format(x(ratio(R, "par: roundtrip", key))))
    end
    return R
  end
  local R = roundtrips("3: submit(fn, i):get(), 2,000 times")
  local rt = med(R, "par: roundtrip")
  verdict(rt <= 50e-6, ("3: round trip median %.1f µs%s (target <= 50 µs)"):format(rt * 1e6,
    spread(R, function(fig) return fig["par: roundtrip"][1] * 1e6 end, "%.1f")))
  with_busy_core(function() roundtrips("3b: the same, another process keeping one core busy") end)
end

-- 4: many futures at once
if want("4") then
  local N = 20000
  local R = rounds_of({ par = lua_cmd("many pool", N), python = py_cmd("many", N) })
  local m = med(R, "par: many")
  local label = "4: 20,000 submits, then every get"
  row(label, "**par.pool** submit + get", m / N, "us", ("%.3f s in all"):format(m))
  for _, w in ipairs({ { "as_completed", "par.as_completed(futures)" }, { "wait", "par.wait(futures)" } }) do
    local t = med(R, "par: " .. w[1])
    row(label, "par.pool submit + " .. w[2], t and t / N, "us",
      not t and ("not done in %d s (see stderr)"):format(LIMIT) or nil)
  end
  for _, key in ipairs(py_keys(R)) do
    row(label, pyname(key), med(R, key) / N, "us",
      ("par %s"):format(x(ratio(R, "par: many", key))))
  end
  verdict(m / N <= 20e-6, ("4: %.1f µs a task%s (target <= 20 µs)"):format(m / N * 1e6,
    spread(R, function(fig) return fig["par: many"][1] / N * 1e6 end, "%.1f")))
end

-- 5, 6: one big map, pool against par.map and Python
local function big_case(label, case, n)
  local R = rounds_of({
    ["par pool"] = lua_cmd(case, "pool", n), ["par map"] = lua_cmd(case, "map", n),
    python = py_cmd(case, n) })
  local wcpu = med(R, "par pool: workers cpu")
  row(label, "**pool:map**", med(R, "par pool: pool"), "s",
    ("%s par.map; CPU: caller %.3f s, workers %s; fn defined %d times, %d forks in all"):format(
      x(ratio(R, "par pool: pool", "par map: map")), med(R, "par pool: caller cpu"),
      wcpu and ("%.3f s"):format(wcpu) or "? (replaced during the map)",
      med(R, "par pool: defines"), med(R, "par pool: forks")))
  row(label, "par.map", med(R, "par map: map"), "s",
    ("CPU: caller %.3f s"):format(med(R, "par map: caller cpu")))
  for _, key in ipairs(py_keys(R)) do
    row(label, pyname(key), med(R, key), "s",
      ("pool:map %s"):format(x(ratio(R, "par pool: pool", key))))
  end
  return R
end

if want("5") then
  local R = big_case("5: 10^6 items x*2", "tiny", 1000000)
  local r = ratio(R, "par pool: pool", "par map: map")
  verdict(r <= 1, ("5: pool:map of 10^6 items %s par.map's time%s (target <= 1x)"):format(x(r),
    spread(R, per_round_ratio("par pool: pool", "par map: map"), "%.2fx")))
end

if want("6") then
  local R = big_case("6: 10,000 fresh 10 KB strings", "strings", 10000)
  local key, bm = best(R, py_keys(R))
  if key then
    local r = ratio(R, "par pool: pool", key)
    verdict(r < 1, ("6: pool:map %.3f s, %s Python's best pool (%s, %.3f s)%s (target < 1x)")
      :format(med(R, "par pool: pool"), x(r), pyname(key), bm,
        spread(R, per_round_ratio("par pool: pool", key), "%.2fx")))
  else
    verdict(nil, "6: no Python figures")
  end
end

print(("par.pool benchmark: %d workers, %d alternating rounds (medians; ratios are medians of each"
  .. " round's); every pool, par's or Python's (fork start method), made and warmed before its clock")
  :format(PROCS, ROUNDS))
print()
print("| case | runner | time | note |")
print("|---|---|---:|---|")
for _, r in ipairs(rows) do print(r) end
print()
for _, v in ipairs(verdicts) do print(v) end
