--- cli_tput_bench.lua: the par command's throughput on many `true` jobs,
-- beside par.run on the same commands and GNU parallel.
--
--   sh bench/run.sh          (or: lua5.4 bench/cli_tput_bench.lua, from the top)
--
-- Each runner runs N jobs `true`, 2 at a time, each job through /bin/sh -c:
--   par.run        par.run of N strings "true" (from this process)
--   par, stdin     `par -j2 < FILE`, FILE holding N lines `true`
--   par, ::::      `par -j2 true :::: FILE`, FILE holding N numbers
--   GNU parallel   `parallel --will-cite -j2 < FILE` on fewer lines (it spends
--                  milliseconds of its own on each job): compared per job
-- Rounds alternate between the runners, so that a change in the machine's
-- load hits them all alike; each row is the runner's median.  The targets
-- (the par command at no less than 0.9 times par.run's throughput and at
-- least 5 times GNU parallel's) are printed with their verdicts.
-- Environment (defaults in brackets): PAR_BENCH_TPUT_N [50000],
-- PAR_BENCH_TPUT_GNU_N [5000], PAR_BENCH_TPUT_ROUNDS [3].
local par = require "par"
local now = require("par.core").monotime
local util = require "bench.util"
local env_int, median = util.env_int, util.median

local N = env_int("PAR_BENCH_TPUT_N", 50000)
local GN = env_int("PAR_BENCH_TPUT_GNU_N", 5000)
local ROUNDS = env_int("PAR_BENCH_TPUT_ROUNDS", 3)
local lua = os.getenv("LUA") or "lua5.4"
local have_gnu = os.execute("command -v parallel >/dev/null 2>&1") == true

local dir = io.popen("mktemp -d"):read("l")
local function write(path, n, line)
  local f = assert(io.open(path, "w"))
  for i = 1, n do f:write(line or i, "\n") end
  f:close()
end
write(dir .. "/true", N, "true")
write(dir .. "/nums", N)
write(dir .. "/gnu", GN, "true")

local function shell(cmd)
  local t = now()
  assert(os.execute(cmd .. " > /dev/null"), "failed: " .. cmd)
  return now() - t
end

local cmds = {}
for i = 1, N do cmds[i] = "true" end

local PAR = lua .. " bin/par -j2"
local runners = {
  { name = "par.run", n = N, time = function()
      local t = now()
      local _, nfailed = par.run(cmds, 2)
      assert(nfailed == 0, "par.run: a command failed")
      return now() - t
    end },
  { name = "par, stdin", n = N, time = function() return shell(PAR .. " < " .. dir .. "/true") end },
  { name = "par, ::::", n = N, time = function() return shell(PAR .. " true :::: " .. dir .. "/nums") end },
  { name = "GNU parallel, stdin", n = GN, skip = not have_gnu and "parallel not found",
    time = function() return shell("parallel --will-cite -j2 < " .. dir .. "/gnu") end },
}

for _, r in ipairs(runners) do r.samples = {} end
for _ = 1, ROUNDS do
  for _, r in ipairs(runners) do
    if not r.skip then table.insert(r.samples, r:time()) end
  end
end

print(("## The par command's throughput: jobs `true`, 2 at a time (%d rounds, medians; load %s)")
  :format(ROUNDS, io.open("/proc/loadavg"):read("l"):match("^(%S+ %S+ %S+)")))
print()
print("| runner | jobs | wall | jobs/s |")
print("|---|---:|---:|---:|")
local rate = {}
for _, r in ipairs(runners) do
  if r.skip then
    print(("| %s | %s | | |"):format(r.name, r.skip))
  else
    local secs = median(r.samples)
    rate[r.name] = r.n / secs
    print(("| %s | %d | %.2f s | %.0f |"):format(r.name, r.n, secs, rate[r.name]))
  end
end
print()
local base, gnu = rate["par.run"], rate["GNU parallel, stdin"]
for _, name in ipairs({ "par, stdin", "par, ::::" }) do
  local x = rate[name] / base
  print(("target: %s at >= 0.9x par.run's throughput: %.2fx, %s"):format(name, x, x >= 0.9 and "met" or "NOT met"))
  if gnu then
    local y = rate[name] / gnu
    print(("target: %s at >= 5x GNU parallel's: %.1fx, %s"):format(name, y, y >= 5 and "met" or "NOT met"))
  end
end
os.execute("rm -rf " .. dir)
