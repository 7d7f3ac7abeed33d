--- run_bench.lua: par.run against the floor and its peers.
--
--   sh bench/run.sh          (compiles bench/floor, then runs this)
--
-- Process creation dominates when the commands are `true`, so the bar is
-- bench/floor: plain posix_spawnp + waitpid, 2 at a time. Every runner is
-- timed on the same commands, 2 at a time, in rounds that alternate between
-- runners, so that a change in the machine's load hits them all alike; the
-- table shows each runner's median. Prints one markdown table, then the
-- targets with their verdicts. Environment (defaults in brackets):
--   PAR_BENCH_N [2000] commands per run, PAR_BENCH_ROUNDS [5] rounds,
--   PAR_BENCH_PARALLEL_ROUNDS [2] rounds of GNU parallel (slow),
--   PAR_BENCH_HEAP_MB [1024] and PAR_BENCH_HEAP_ROUNDS [3] for the heap rows.
--
-- Child mode, for the heap rows:
--   lua5.4 bench/run_bench.lua --heap MB COUNT
-- builds MB MiB of Lua tables (0: none), then times par.run on COUNT argv
-- commands {"true"} and prints "seconds heap_mb".
local par = require "par"
local now = require("par.core").monotime
local util = require "bench.util"
local env_int, median = util.env_int, util.median

local JOBS = 2

local function commands(n, cmd)
  local cmds = {}
  for i = 1, n do cmds[i] = cmd end
  return cmds
end

-- Time par.run; every command must succeed, or the figure means nothing.
local function time_par(cmds)
  local t = now()
  local _, nfailed = par.run(cmds, JOBS)
  local secs = now() - t
  assert(nfailed == 0, "par.run: a benchmark command failed")
  return secs
end

-- {======================================================================
-- Child mode: spawn cost with a big Lua heap

local build_heap = util.heap

if arg[1] == "--heap" then
  local mb, n = math.tointeger(tonumber(arg[2])), math.tointeger(tonumber(arg[3]))
  local heap = mb > 0 and build_heap(mb) or {}
  time_par(commands(20, { "true" }))            -- warm up: threads, caches
  local secs = time_par(commands(n, { "true" }))
  print(("%.6f %.0f"):format(secs, collectgarbage("count") / 1024))
  assert(heap)                                  -- keep it alive until here
  os.exit(0)
end

-- }======================================================================

local function have(prog)
  return os.execute("command -v " .. prog .. " >/dev/null 2>&1") == true
end

-- Seconds an external program reports on its stdout's first line.
local function reported(cmdline)
  local p = assert(io.popen(cmdline))
  local out = p:read("a")
  local ok = p:close()
  local secs = tonumber(out:match("^%S+"))
  assert(ok and secs, cmdline .. ": failed:\n" .. out)
  return secs, out
end

-- Wall time of a shell pipeline, timed from here (its start-up included).
local function timed(cmdline)
  local t = now()
  local ok = os.execute(cmdline)
  local secs = now() - t
  assert(ok, cmdline .. ": failed")
  return secs
end

local function loadavg()
  local f = io.open("/proc/loadavg")
  local s = f and f:read("l") or "?"
  if f then f:close() end
  return s:match("^(%S+ %S+ %S+)") or s
end

local N = env_int("PAR_BENCH_N", 2000)
local ROUNDS = env_int("PAR_BENCH_ROUNDS", 5)
local PROUNDS = env_int("PAR_BENCH_PARALLEL_ROUNDS", 2)
local HEAP_MB = env_int("PAR_BENCH_HEAP_MB", 1024)
local HROUNDS = env_int("PAR_BENCH_HEAP_ROUNDS", 3)
local HEAP_N = 500
local here = arg[0]:match("^(.*)/[^/]*$") or "."
local floor = here .. "/floor"
local lua = os.getenv("LUA") or "lua5.4"

assert(io.open(floor), floor .. " is missing: run bench/run.sh, which compiles it")
local has_python = have("python3")
local has_parallel = have("parallel")

-- The runners, in the order of the table. 'base' names the floor row a
-- runner's throughput is compared with.
local rows = {
  { key = "floor", name = "floor: posix_spawnp + waitpid, argv `true`", n = N, base = "floor",
    run = function() return reported(("%s %d true"):format(floor, N)) end },
  { key = "par", name = "par.run argv `{\"true\"}`, output captured", n = N, base = "floor",
    run = function() return time_par(commands(N, { "true" })) end },
  { key = "floor_sh", name = "floor: posix_spawnp + waitpid, `/bin/sh -c true`", n = N, base = "floor_sh",
    run = function() return reported(("%s -s %d true"):format(floor, N)) end },
  { key = "par_sh", name = "par.run shell `\"true\"`, output captured", n = N, base = "floor_sh",
    run = function() return time_par(commands(N, "true")) end },
  { key = "xargs", name = ("`seq %d \\| xargs -P2 -n1 true`"):format(N), n = N, base = "floor",
    run = function() return timed(("seq %d | xargs -P2 -n1 true"):format(N)) end },
  { key = "python", name = "Python ThreadPoolExecutor(2) + subprocess.run", n = N, base = "floor",
    skip = not has_python and "python3 not found",
    run = function() return reported(("python3 %s/run_peers.py %d %d"):format(here, N, JOBS)) end },
  { key = "parallel", name = ("`seq %d \\| parallel -j2 true`"):format(N), n = N, base = "floor",
    rounds = PROUNDS, skip = not has_parallel and "parallel not found",
    run = function() return timed(("seq %d | parallel -j2 true"):format(N)) end },
  { key = "floor0", name = "floor, argv, small process", n = HEAP_N, base = "floor0", rounds = HROUNDS,
    run = function() return reported(("%s %d true"):format(floor, HEAP_N)) end },
  { key = "floor1", name = ("floor, argv, %d MB of memory touched first"):format(HEAP_MB), n = HEAP_N,
    base = "floor0", rounds = HROUNDS,
    run = function() return reported(("%s -m %d %d true"):format(floor, HEAP_MB, HEAP_N)) end },
  { key = "heap0", name = "par.run argv, empty Lua heap", n = HEAP_N, base = "floor0", rounds = HROUNDS,
    run = function() return reported(("%s %s/run_bench.lua --heap 0 %d"):format(lua, here, HEAP_N)) end },
  { key = "heap1", name = ("par.run argv, %d MB Lua heap"):format(HEAP_MB), n = HEAP_N, base = "floor0",
    rounds = HROUNDS,
    run = function() return reported(("%s %s/run_bench.lua --heap %d %d"):format(lua, here, HEAP_MB, HEAP_N)) end },
}

local byname = {}
for _, r in ipairs(rows) do
  byname[r.key] = r
  r.times = {}
end

io.stderr:write(("bench: %d CPUs, load average %s; %d rounds of %d commands\n"):format(
  par.cpus(), loadavg(), ROUNDS, N))
local load_before = loadavg()
local maxrounds = ROUNDS
for _, r in ipairs(rows) do maxrounds = math.max(maxrounds, r.rounds or ROUNDS) end
for round = 1, maxrounds do
  for _, r in ipairs(rows) do
    if not r.skip and round <= (r.rounds or ROUNDS) then
      local secs, out = r.run()
      r.times[#r.times + 1] = secs
      if r.key == "heap1" then r.heap_mb = tonumber(out:match("^%S+ (%d+)")) end
      io.stderr:write(("bench: round %d: %-52s %8.3f s\n"):format(round, r.name, secs))
    end
  end
end

-- {======================================================================
-- Report

local function rate(r) return r.n / r.secs end

-- The machine's load drifts between rounds (other work shares it), so each
-- ratio is taken within a round, between runs made seconds apart, and the
-- median of those is reported: 'a' throughput over 'b' throughput.
local function paired(a, b)
  local ratios = {}
  for i = 1, math.min(#a.times, #b.times) do
    ratios[i] = (a.n / a.times[i]) / (b.n / b.times[i])
  end
  return median(ratios)
end

print(("%d CPUs; load average %s before, %s after; medians of %d rounds (GNU parallel %d, heap %d)"):format(
  par.cpus(), load_before, loadavg(), ROUNDS, PROUNDS, HROUNDS))
print("ratio to floor: throughput over the floor's (for the 500-command rows, the first 500-command floor's)")
print("in the same round, median over rounds\n")
print("| runner | commands | seconds (median) | commands/s | ratio to floor |")
print("| --- | ---: | ---: | ---: | ---: |")
for _, r in ipairs(rows) do
  if not r.skip then r.secs = median(r.times) end
end
for _, r in ipairs(rows) do
  local name = r.name
  if r.key == "heap1" and r.heap_mb then name = ("par.run argv, %d MB Lua heap"):format(r.heap_mb) end
  if r.skip then
    print(("| %s | %d | skipped: %s | | |"):format(name, r.n, r.skip))
  else
    print(("| %s | %d | %.3f | %.0f | %.2f |"):format(name, r.n, r.secs, rate(r), paired(r, byname[r.base])))
  end
end

local failed = 0
local function target(what, value, op, bar)
  local ok = op == ">=" and value >= bar or op == "<=" and value <= bar
  if not ok then failed = failed + 1 end
  print(("- %s: %.2f (target %s %.2f) %s"):format(what, value, op, bar, ok and "PASS" or "MISS"))
end
print("\nTargets (medians of ratios within a round):")
target("par.run argv throughput / floor", paired(byname.par, byname.floor), ">=", 0.90)
target("par.run shell throughput / floor `sh -c`", paired(byname.par_sh, byname.floor_sh), ">=", 0.90)
target("par.run argv throughput / xargs", paired(byname.par, byname.xargs), ">=", 1.5)
target(("time for %d commands, %d MB heap / empty heap"):format(HEAP_N, HEAP_MB),
  1 / paired(byname.heap1, byname.heap0), "<=", 1.2)
print(("  (the same for the floor, %d MB touched / none: %.2f; this part is the machine's)"):format(
  HEAP_MB, 1 / paired(byname.floor1, byname.floor0)))
print(("\n%s; reproduce with: make bench (or sh bench/run.sh)"):format(
  failed == 0 and "all targets met" or failed .. " of 4 targets missed"))
-- }======================================================================
