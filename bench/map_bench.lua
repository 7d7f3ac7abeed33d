--- map_bench.lua: par.map against the serial loop and Python's Pool.map.
--
--   lua5.4 bench/map_bench.lua        (from the top of the repo, par built;
--                                      sh bench/run.sh runs it too)
--
-- Every case is timed in rounds that alternate between the serial loop and
-- par.map, so that a change in the machine's load hits both alike; the
-- table shows medians.  The serial loop runs in a process of its own that
-- never forks (--serial below), warmed by one untimed run.  Python's
-- figures come from bench/map_peers.py, whose
-- pool is started and warmed before its clock starts (its best case; par.map
-- forks on every call and that is in its figures).  The "floor" rows time
-- what any map by forked workers pays on this machine before par's own
-- costs: (b) workers that only read the items, (c) the serial loop run just
-- after a fork, as par.map's caller receives its results.  Prints one markdown
-- table, then the targets with their verdicts.  Environment (defaults in
-- brackets): PAR_BENCH_ROUNDS [5], PAR_BENCH_HEAP_MB [1024],
-- PAR_BENCH_PYTHON [python3] ("" skips the Python rows).
--
-- Child modes:
--   lua5.4 bench/map_bench.lua --heap MB
-- builds MB MiB of Lua tables, then times the start-up and memory cases
-- from that process and prints "name seconds [extra]" lines;
--   lua5.4 bench/map_bench.lua --serial a|b|c WORK
-- prints the seconds of one serial loop of a case.
local par = require "par"
local now = require("par.core").monotime
local util = require "bench.util"
local env_int, median, pid = util.env_int, util.median, util.pid

local PROCS = 2

local ROUNDS = env_int("PAR_BENCH_ROUNDS", 5)
local HEAP = arg[1] == "--heap"
local HEAP_MB = env_int("PAR_BENCH_HEAP_MB", 1024)

local function range(n)
  local t = {}
  for i = 1, n do t[i] = i end
  return t
end

-- The loop par.map replaces: results in a fresh table, as par.map's are.
local function serial(fn, items)
  local r = {}
  for i = 1, #items do r[i] = fn(items[i], i) end
  return r
end

-- A full collection first, except in a process holding a big heap: there,
-- after a fork, it would fault on every page and take seconds.
local function timed(f, ...)
  if not HEAP then collectgarbage() end
  local t = now()
  f(...)
  return now() - t
end

-- timed(f), with 'before' run after the collection, untimed.
local function timed_after(before, f)
  collectgarbage()
  before()
  local t = now()
  f()
  return now() - t
end

--- Median seconds of each runner over ROUNDS alternating rounds.  A runner
-- either is timed here (run, with an untimed 'before'), or times itself
-- (measure: returns seconds).
local function race(runners, rounds)
  local times = {}
  for _, r in ipairs(runners) do times[r.name] = {} end
  for _ = 1, rounds or ROUNDS do
    for _, r in ipairs(runners) do
      local t = times[r.name]
      if r.measure then t[#t + 1] = r.measure()
      elseif r.before then t[#t + 1] = timed_after(r.before, r.run)
      else t[#t + 1] = timed(r.run) end
    end
  end
  local out = {}
  for _, r in ipairs(runners) do out[r.name] = median(times[r.name]) end
  return out
end

-- {======================================================================
-- The work

-- About 1 ms of arithmetic, calibrated on this machine.
local function calibrate()
  local n = 10000
  while true do
    local t = now()
    local s = 0
    for k = 1, n do s = s + k % 7 end
    local dt = now() - t
    if dt > 0.02 then return math.floor(n * 0.001 / dt) end
    n = n * 2
  end
end

local function cpu_fn(work)
  return function(x)
    local s = 0
    for k = 1, work do s = s + (k + x) % 7 end
    return s
  end
end

local function tiny(x) return x * 2 end

-- 10240 bytes, one fresh string per item (Python: (b"%08d" % x) * 1280).
local function fresh10k(x) return string.format("%08d", x):rep(1280) end

-- About 10 KB of garbage: 100 small tables and the table holding them.
local function garbage10k(x)
  local g = {}
  for k = 1, 100 do g[k] = { k, x } end
  return x, #g      -- par.map keeps the first value only
end

-- Private_Dirty of this process, in KiB.
local function private_dirty()
  local f = io.open("/proc/self/smaps_rollup")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return tonumber(s:match("Private_Dirty:%s*(%d+) kB"))
end

--- Sum over workers of the most each dirtied: every 250th item reports its
-- worker's Private_Dirty (a separate, untimed run).
local function workers_dirty(items)
  local r = par.map(function(x, i)
    garbage10k(x)
    if i % 250 == 0 then return { pid(), private_dirty() } end
  end, items, PROCS)
  local most = {}
  for i = 1, r.n do
    local v = r[i]
    if v then most[v[1]] = math.max(most[v[1]] or 0, v[2]) end
  end
  local sum, n = 0, 0
  for _, kb in pairs(most) do
    sum = sum + kb
    n = n + 1
  end
  return sum / 1024, n
end

-- }======================================================================

-- {======================================================================
-- Child mode: a process holding a big heap

local build_heap = util.heap

local function heap_cases(mb)
  local heap = mb > 0 and build_heap(mb) or {}
  collectgarbage()
  local two = { 1, 2 }
  local startup = {}
  for k = 1, ROUNDS do
    startup[k] = timed(par.map, function(x) return x end, two, PROCS)
  end
  local items = range(10000)
  local mem = {}
  for k = 1, ROUNDS do mem[k] = timed(par.map, garbage10k, items, PROCS) end
  local dirty, nworkers = workers_dirty(items)
  print(("startup %.6f"):format(median(startup)))
  print(("memory %.6f %.1f %d %.0f"):format(median(mem), dirty, nworkers,
    collectgarbage("count") / 1024))
  return heap
end

if arg[1] == "--heap" then
  heap_cases(tonumber(arg[2]))
  os.exit(0)
end

-- Child mode: the serial loop of a case, in a process that never forks.
-- After any fork, the first write to each page a process held faults, and
-- on some VMs that costs more than the loop: a serial loop timed in this
-- process, which forks for par.map, would be slowed by par.map's forks.
-- Items are built and the loop run twice untimed, as in a program that has
-- been running for a while (the first runs take several times as long:
-- malloc's heap is still growing into fresh pages); then the median of five
-- timed runs (here later runs of (c) still alternate between about 0.05 s,
-- when malloc reuses memory, and 0.2 s, when it takes fresh pages).
local function serial_work(case, work)
  if case == "a" then return cpu_fn(work), range(2000), 0, 1 end
  if case == "b" then return tiny, range(1000000), 2, 5 end
  return fresh10k, range(10000), 2, 5
end

if arg[1] == "--serial" then
  local fn, items, warm, runs = serial_work(arg[2], tonumber(arg[3]))
  local t = {}
  for _ = 1, warm do timed(serial, fn, items) end
  for k = 1, runs do t[k] = timed(serial, fn, items) end
  print(("%.9f"):format(median(t)))
  os.exit(0)
end

local function serial_child(case, work)
  local cmd = ("%s bench/map_bench.lua --serial %s %d"):format(os.getenv("LUA") or "lua5.4",
    case, work or 0)
  local p = assert(io.popen(cmd))
  local secs = tonumber(p:read("a"))
  assert(p:close() and secs, "map_bench --serial failed")
  return secs
end

-- }======================================================================

local function heap_run(mb)
  local cmd = ("%s bench/map_bench.lua --heap %d"):format(os.getenv("LUA") or "lua5.4", mb)
  local p = assert(io.popen(cmd))
  local out = {}
  for line in p:lines() do
    local name, rest = line:match("^(%S+) (.*)$")
    local f = {}
    for x in rest:gmatch("%S+") do f[#f + 1] = tonumber(x) end
    out[name] = f
  end
  assert(p:close(), "map_bench --heap failed")
  return out
end

local function python(case, n)
  local py = os.getenv("PAR_BENCH_PYTHON") or "python3"
  if py == "" then return {} end
  local p = io.popen(("%s bench/map_peers.py %s %d %d 2>/dev/null"):format(py, case, n, ROUNDS))
  local out = {}
  for line in p:lines() do
    local name, secs = line:match("^(.-) (%S+)$")
    out[#out + 1] = { name = name, secs = tonumber(secs) }
  end
  p:close()
  return out
end

local function best_pool(rows)
  local best
  for _, r in ipairs(rows) do
    if r.name:find("Pool", 1, true) and (not best or r.secs < best.secs) then best = r end
  end
  return best
end

local rows, verdicts = {}, {}
local function row(case, what, secs, note)
  rows[#rows + 1] = ("| %s | %s | %.3f | %s |"):format(case, what, secs, note or "")
end
-- The serial, par.map and floor rows of a case, par.map and floor as ratios.
local function race_rows(case, t, floor)
  row(case, "serial loop", t.serial)
  row(case, "par.map, 2 workers", t.par, ("%.2fx serial"):format(t.par / t.serial))
  row(case, "floor: " .. floor, t.floor, ("%.2fx serial"):format(t.floor / t.serial))
end
local function verdict(ok, text)
  verdicts[#verdicts + 1] = ("- [%s] %s"):format(ok and "met" or "NOT MET", text)
end

-- (a) CPU-bound
local work = calibrate()
local cpu = cpu_fn(work)
local items = range(2000)
local a = race({
  { name = "serial", measure = function() return serial_child("a", work) end },
  { name = "par", run = function() par.map(cpu, items, PROCS) end },
})
row("a: 2,000 items of ~1 ms", "serial loop", a.serial)
row("a: 2,000 items of ~1 ms", "par.map, 2 workers", a.par, ("%.2fx faster"):format(a.serial / a.par))
verdict(a.serial / a.par >= 1.8, ("a: par.map %.2fx faster than serial (target >= 1.8x)")
  :format(a.serial / a.par))

-- (b) tiny items.  The floor: forked workers that only read their half of
-- the items, which every par.map of them must do (on a VM where the first
-- touch of each inherited page is costly, this alone is not free).
items = range(1000000)
local function read_half(_, i)
  local lo, hi = (i - 1) * #items // 2 + 1, i * #items // 2
  local s = 0
  for k = lo, hi do s = s + items[k] end
  return s
end
local b = race({
  { name = "serial", measure = function() return serial_child("b") end },
  { name = "par", run = function() par.map(tiny, items, PROCS) end },
  { name = "floor", run = function() par.map(read_half, { 1, 2 }, PROCS) end },
})
race_rows("b: 1,000,000 items x*2", b, "2 forked workers only read the items")
local pyb = python("tiny", 1000000)
for _, r in ipairs(pyb) do row("b: 1,000,000 items x*2", r.name, r.secs) end
local pb = best_pool(pyb)
verdict(b.par <= 2 * b.serial, ("b: par.map %.2fx the serial loop (target <= 2x)"):format(b.par / b.serial))
if pb then
  verdict(b.par < pb.secs, ("b: par.map %.3f s vs %s %.3f s"):format(b.par, pb.name, pb.secs))
end

-- (c) large results.  The floor: the serial loop run just after a fork
-- (of a trivial map, untimed), as par.map's caller must take its results:
-- every page it then writes was write-protected by the fork.
items = range(10000)
local c = race({
  { name = "serial", measure = function() return serial_child("c") end },
  { name = "par", run = function() par.map(fresh10k, items, PROCS) end },
  { name = "floor", run = function() serial(fresh10k, items) end,
    before = function() par.map(tiny, { 1 }, 1) end },
})
race_rows("c: 10,000 fresh 10 KB strings", c, "the serial loop just after a fork")
local pyc = python("strings", 10000)
for _, r in ipairs(pyc) do row("c: 10,000 fresh 10 KB strings", r.name, r.secs) end
local pc = best_pool(pyc)
verdict(c.par <= 1.9 * c.serial, ("c: par.map %.2fx the serial loop (target <= 1.9x)")
  :format(c.par / c.serial))
if pc then
  verdict(c.par < pc.secs, ("c: par.map %.3f s vs Python's best pool (%s) %.3f s")
    :format(c.par, pc.name, pc.secs))
end

-- (d), (e): from an empty process and from one holding HEAP_MB MiB
items = nil
collectgarbage()
local empty, big = heap_run(0), heap_run(HEAP_MB)
local heapname = ("%d MiB"):format(big.memory[4])
row("d: start-up, 2 items", "from an empty process", empty.startup[1])
row("d: start-up, 2 items", "from a process holding " .. heapname, big.startup[1])
verdict(big.startup[1] <= 0.060, ("d: %.1f ms from %s of tables (target <= 60 ms)")
  :format(big.startup[1] * 1000, heapname))
row("e: 10,000 items of 10 KB garbage", "from an empty process", empty.memory[1],
  ("workers dirtied %.0f MB"):format(empty.memory[2]))
row("e: 10,000 items of 10 KB garbage", "from a process holding " .. heapname, big.memory[1],
  ("workers dirtied %.0f MB (%d workers)"):format(big.memory[2], big.memory[3]))
verdict(big.memory[2] < 200, ("e: workers dirtied %.0f MB in all (target < 200 MB)")
  :format(big.memory[2]))
verdict(big.memory[1] < 2 * empty.memory[1], ("e: %.2fx the time from an empty process "
  .. "(target < 2x)"):format(big.memory[1] / empty.memory[1]))

print(("par.map benchmark: %d workers, %d rounds (medians), 1 ms of work = %d iterations")
  :format(PROCS, ROUNDS, work))
print()
print("| case | runner | seconds | note |")
print("|---|---|---:|---|")
for _, r in ipairs(rows) do print(r) end
print()
for _, v in ipairs(verdicts) do print(v) end
