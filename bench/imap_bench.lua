--- imap_bench.lua: par.imap against Python's Pool(2).imap, time and memory.
--
--   lua5.4 bench/imap_bench.lua       (from the top of the repo, par built
--                                      and bench/treemem compiled;
--                                      sh bench/run.sh does both)
--
-- The work: fn = x * 2 over a generator of 1..N (N = 10^7 by default), 2
-- workers, the caller summing the results as they come.  par.imap pulls
-- the generator as workers free up; Python's Pool(2).imap(f, generator,
-- chunksize=1000) does the same work (bench/imap_peers.py).  Each runner
-- is a process of its own, run under bench/treemem, which samples the
-- whole process tree (caller and workers) every 10 ms: the table shows its
-- peak of the summed Pss (shared pages split between the forks that share
-- them: the tree's real footprint) and of the summed VmRSS (a shared page
-- counted in each), and the sum of each process's VmHWM.  Time is what
-- the runner measures itself, from before the pool starts (its forks
-- included) to the last result.  Rounds alternate between the runners;
-- the table shows medians.  Environment (defaults in brackets):
-- PAR_IMAP_N [10000000], PAR_BENCH_ROUNDS [3], PAR_BENCH_PYTHON [python3]
-- ("" skips the Python rows).
--
-- Child mode:
--   lua5.4 bench/imap_bench.lua --par N [ordered]
-- runs par.imap once and prints "seconds sum".
local util = require "bench.util"
local env_int, median = util.env_int, util.median

local N = env_int("PAR_IMAP_N", 10000000)
local ROUNDS = env_int("PAR_BENCH_ROUNDS", 3)
local PYTHON = os.getenv("PAR_BENCH_PYTHON") or "python3"
local LUA = os.getenv("LUA") or "lua5.4"

if arg[1] == "--par" then
  local par = require "par"
  local now = require("par.core").monotime
  local n, k = math.tointeger(tonumber(arg[2])), 0
  local function gen()
    if k < n then
      k = k + 1
      return k
    end
  end
  local t = now()
  local s = 0
  for _, v in par.imap(function(x) return x * 2 end, gen, { jobs = 2, ordered = arg[3] == "ordered" }) do
    s = s + v
  end
  io.write(("%.6f %d\n"):format(now() - t, s))
  os.exit(0)
end

-- One run of 'cmd' under bench/treemem: seconds, Pss, RSS, HWM (MiB).
local function measure(cmd)
  local out = os.tmpname()
  local ok = os.execute(("bench/treemem %s > %s 2>&1"):format(cmd, out))
  local f = assert(io.open(out))
  local text = f:read("a")
  f:close()
  os.remove(out)
  assert(ok, "failed: " .. cmd .. "\n" .. text)
  local secs, sum = text:match("^(%S+) (%d+)\n")
  local rss, pss, hwm = text:match("treemem (%d+) (%d+) (%d+)")
  assert(secs and rss, "no figures from: " .. cmd .. "\n" .. text)
  local want = N * (N + 1)           -- the sum of 2x over 1..N
  assert(math.tointeger(tonumber(sum)) == want, "wrong sum from: " .. cmd)
  return tonumber(secs), pss / 1024, rss / 1024, hwm / 1024
end

local runners = {
  { name = "par.imap (completion order)", cmd = ("%s bench/imap_bench.lua --par %d"):format(LUA, N) },
  { name = "par.imap ordered = true", cmd = ("%s bench/imap_bench.lua --par %d ordered"):format(LUA, N) },
}
if PYTHON ~= "" then
  runners[#runners + 1] = { name = "python Pool(2).imap chunksize=1000",
    cmd = ("%s bench/imap_peers.py imap %d"):format(PYTHON, N), python = true }
  runners[#runners + 1] = { name = "python Pool(2).imap_unordered chunksize=1000",
    cmd = ("%s bench/imap_peers.py imap_unordered %d"):format(PYTHON, N) }
end

local fig = {}
for _, r in ipairs(runners) do fig[r] = { {}, {}, {}, {} } end
for _ = 1, ROUNDS do
  for _, r in ipairs(runners) do
    local m = { measure(r.cmd) }
    for k = 1, 4 do table.insert(fig[r][k], m[k]) end
  end
end

print(("par.imap benchmark: x*2 over a generator of %d items, 2 workers, %d rounds (medians)"):format(N, ROUNDS))
print()
print("| runner | seconds | peak Pss, tree (MiB) | peak RSS, tree (MiB) | sum of VmHWM (MiB) |")
print("|---|---:|---:|---:|---:|")
local med = {}
for _, r in ipairs(runners) do
  med[r] = {}
  for k = 1, 4 do med[r][k] = median(fig[r][k]) end
  print(("| %s | %.3f | %.1f | %.1f | %.1f |"):format(r.name, table.unpack(med[r])))
end
print()
local py
for _, r in ipairs(runners) do if r.python then py = med[r] end end
if py then
  local par = med[runners[1]]
  local function verdict(ok) return ok and "[met]" or "[NOT MET]" end
  print(("- %s time: par.imap %.2fx Python's Pool(2).imap (target <= 0.7x)"):format(
    verdict(par[1] <= 0.7 * py[1]), par[1] / py[1]))
  print(("- %s memory: par.imap's tree peaks at %.1f MiB Pss, Python's at %.1f MiB (target: no more)"):format(
    verdict(par[2] <= py[2]), par[2], py[2]))
  print(("- %s memory: par.imap's VmHWM sum %.1f MiB, Python's %.1f MiB (target: no more)"):format(
    verdict(par[4] <= py[4]), par[4], py[4]))
end
