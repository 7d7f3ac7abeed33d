--- cli_bench.lua: the par command on streamed input, beside GNU parallel
-- and xargs.
--
--   sh bench/run.sh          (or: lua5.4 bench/cli_bench.lua, from the top)
--
-- Two tables.  Latency: the time from the first input line written to the
-- start of its job, with the runner already up and waiting on its input
-- (both ends are `date +%s.%N`, so a date process each side is included
-- alike); rounds alternate between runners, the median shown.  Throughput:
-- N input lines `true`, each run with /bin/sh -c, 2 at a time: wall time and
-- peak RSS of the runner (/usr/bin/time -f %M: its largest process).  GNU
-- parallel runs fewer lines, since it is slow at 200,000 (it spends some
-- ms of its own per job): its row says how many, and its rate is per line.
-- Environment (defaults in brackets):
--   PAR_BENCH_LAT_ROUNDS [9] latency rounds, PAR_BENCH_STREAM_N [200000]
--   lines for par and xargs, PAR_BENCH_PARALLEL_N [20000] for GNU parallel.
local util = require "bench.util"
local env_int, median = util.env_int, util.median

local LROUNDS = env_int("PAR_BENCH_LAT_ROUNDS", 9)
local N = env_int("PAR_BENCH_STREAM_N", 200000)
local PN = env_int("PAR_BENCH_PARALLEL_N", 20000)
local lua = os.getenv("LUA") or "lua5.4"

local function have(prog)
  return os.execute("command -v " .. prog .. " >/dev/null 2>&1") == true
end

local function readnum(path)
  local f = io.open(path)
  local s = f and f:read("a")
  if f then f:close() end
  return tonumber(s and s:match("[%d.]+%s*$"))
end

local dir = io.popen("mktemp -d"):read("l")
local PAR = lua .. " bin/par"

-- The runners: a shell command that reads job arguments on stdin, 2 at a
-- time ('lat': each argument x runs `date > STARTED; : x`), and one that
-- runs each stdin line as a shell command ('lines').
local runners = {
  { name = "par", lat = PAR .. " -j2 'date +%s.%N > " .. dir .. "/started; :'",
    lines = PAR .. " -j2", n = N },
  { name = "GNU parallel", lat = "parallel --will-cite -j2 'date +%s.%N > " .. dir .. "/started; :'",
    lines = "parallel --will-cite -j2", n = PN, skip = not have("parallel") and "parallel not found" },
  { name = "xargs -P2", lat = "xargs -P2 -n1 sh -c 'date +%s.%N > " .. dir .. "/started' sh",
    lines = "xargs -P2 -n1 sh -c", n = N },
}

-- One latency sample: the runner gets 1 s to start, then one line.
local function latency(r)
  os.remove(dir .. "/started")
  local cmd = ("(sleep 1; date +%%s.%%N > %s/wrote; echo x; sleep 0.5) | %s"):format(dir, r.lat)
  assert(os.execute(cmd), r.name .. ": failed")
  return readnum(dir .. "/started") - readnum(dir .. "/wrote")
end

local have_time = io.open("/usr/bin/time") ~= nil

-- One throughput run over 'n' lines `true`: seconds, peak RSS in MB.
local function throughput(r)
  local input = ("%s/true.%d"):format(dir, r.n)
  if not io.open(input) then os.execute(("yes true | head -n %d > %s"):format(r.n, input)) end
  local cmd = ("/usr/bin/time -f '%%e %%M' -o %s/time %s < %s > /dev/null"):format(dir, r.lines, input)
  assert(os.execute(cmd), r.name .. ": failed")
  local f = assert(io.open(dir .. "/time"))
  local secs, kb = f:read("a"):match("([%d.]+) (%d+)%s*$")
  f:close()
  return tonumber(secs), tonumber(kb) / 1024
end

local samples = {}
for _, r in ipairs(runners) do samples[r] = {} end
for _ = 1, LROUNDS do
  for _, r in ipairs(runners) do
    if not r.skip then table.insert(samples[r], latency(r)) end
  end
end

print(("## The par command, streamed input (%d latency rounds; load %s)"):format(LROUNDS,
  io.open("/proc/loadavg"):read("l"):match("^(%S+ %S+ %S+)")))
print()
print("| runner | first line to its job, median | min | max |")
print("|---|---:|---:|---:|")
for _, r in ipairs(runners) do
  if r.skip then
    print(("| %s | %s | | |"):format(r.name, r.skip))
  else
    local t = samples[r]
    table.sort(t)
    print(("| %s | %.1f ms | %.1f ms | %.1f ms |"):format(r.name, median(t) * 1000, t[1] * 1000, t[#t] * 1000))
  end
end
print()
if not have_time then print("(/usr/bin/time not found: no throughput table; apt-get install time)"); return end
print("| runner | lines `true` | wall | per 1000 lines | peak RSS |")
print("|---|---:|---:|---:|---:|")
local par_lat
for _, r in ipairs(runners) do
  if r.skip then
    print(("| %s | %s | | | |"):format(r.name, r.skip))
  else
    local secs, mb = throughput(r)
    print(("| %s | %d | %.1f s | %.2f s | %.1f MB |"):format(r.name, r.n, secs, secs * 1000 / r.n, mb))
  end
  if r.name == "par" then par_lat = median(samples[r]) end
end
print()
print(("target: par's first line to its job under 20 ms median: %.1f ms, %s"):format(par_lat * 1000,
  par_lat < 0.020 and "met" or "NOT met"))
os.execute("rm -rf " .. dir)
