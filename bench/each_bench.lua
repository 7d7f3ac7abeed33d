--- each_bench.lua: par.each over an iterator against par.run over a table.
--
--   lua5.4 bench/each_bench.lua    (bench/run.sh runs it: `make bench`)
--
-- Two questions, each answered in fresh child processes so that one run's
-- memory does not hide another's:
--   * memory: the caller's peak RSS (VmHWM) running par.each over an
--     iterator of N commands {"true"}, for N = 1,000 and PAR_BENCH_EACH_N
--     [200000]; the target is less than 10 MB of growth between the two.
--     par.run over a table of the same N is shown beside it: it must hold
--     every result, and its table of commands.
--   * throughput: commands per second of par.each (iterator) and par.run
--     (table), PAR_BENCH_EACH_TPUT [20000] commands, 2 at a time, in
--     PAR_BENCH_ROUNDS [5] rounds alternating between the two; medians.
--     The target is at least 0.95 of par.run's.
--
-- Child mode: lua5.4 bench/each_bench.lua --child each|run N
-- prints "seconds peak_kib".
local util = require "bench.util"
local env_int, median = util.env_int, util.median

local JOBS = 2

local function peak_kib()
  for line in io.lines("/proc/self/status") do
    local v = line:match("^VmHWM:%s+(%d+)")
    if v then return tonumber(v) end
  end
end

if arg[1] == "--child" then
  local par = require "par"
  local now = require("par.core").monotime
  local how, n = arg[2], math.tointeger(tonumber(arg[3]))
  local t, nfailed = now(), 0
  if how == "each" then
    local k = 0
    local function gen()
      k = k + 1
      if k <= n then return { "true" } end
    end
    for _, r in par.each(gen, JOBS) do
      if not r.ok then nfailed = nfailed + 1 end
    end
  else
    local cmds = {}
    for i = 1, n do cmds[i] = { "true" } end
    local _
    _, nfailed = par.run(cmds, JOBS)
  end
  local secs = now() - t
  assert(nfailed == 0, "a benchmark command failed")
  print(("%.6f %d"):format(secs, peak_kib()))
  os.exit(0)
end

local LUA = os.getenv("LUA") or "lua5.4"

local function child(how, n)
  local p = assert(io.popen(("%s bench/each_bench.lua --child %s %d"):format(LUA, how, n)))
  local out = p:read("a")
  assert(p:close(), "child failed: " .. out)
  local secs, kib = out:match("^(%S+) (%d+)")
  return tonumber(secs), tonumber(kib)
end

local big = env_int("PAR_BENCH_EACH_N", 200000)
local tput_n = env_int("PAR_BENCH_EACH_TPUT", 20000)
local rounds = env_int("PAR_BENCH_ROUNDS", 5)

print(("### par.each: memory over a stream (peak RSS of the caller, %d jobs)"):format(JOBS))
print()
print("| commands | par.each (iterator) | par.run (table) |")
print("|---|---|---|")
local rss = {}
for _, n in ipairs({ 1000, big }) do
  local _, each_kib = child("each", n)
  local _, run_kib = child("run", n)
  rss[n] = each_kib
  print(("| %d | %.1f MB | %.1f MB |"):format(n, each_kib / 1024, run_kib / 1024))
end
local growth = (rss[big] - rss[1000]) / 1024
print()
print(("### par.each: throughput, %d commands `true`, %d at a time, median of %d rounds"):format(
  tput_n, JOBS, rounds))
print()
local t_each, t_run = {}, {}
for r = 1, rounds do
  if r % 2 == 1 then
    t_each[r] = child("each", tput_n); t_run[r] = child("run", tput_n)
  else
    t_run[r] = child("run", tput_n); t_each[r] = child("each", tput_n)
  end
end
local me, mr = median(t_each), median(t_run)
print("| runner | commands/s |")
print("|---|---|")
print(("| par.each (iterator) | %.0f |"):format(tput_n / me))
print(("| par.run (table) | %.0f |"):format(tput_n / mr))
print()
print(("target: RSS growth from 1000 to %d commands < 10 MB: %.1f MB, %s"):format(
  big, growth, growth < 10 and "met" or "MISSED"))
print(("target: par.each throughput >= 0.95 of par.run's: %.3f, %s"):format(
  mr / me, mr / me >= 0.95 and "met" or "MISSED"))
