--- multithread.lua: a list of `sleep` commands on a pool of threads.
--
--   lua5.4 examples/multithread.lua [COUNT [THREADS [SECONDS]]]
--
-- Runs COUNT (8) commands `sleep SECONDS` (1) on THREADS (4) worker threads,
-- printing each command as it finishes and then the total wall time. Each
-- worker takes the next command as soon as its last one ends, so 8 x sleep 1
-- on 4 threads takes about 2 s, where running them one by one takes 8 s.
local par = require "par"
local monotime = require("par.core").monotime

local function usage(msg)
  io.stderr:write("multithread.lua: ", msg, "\n",
    "usage: lua5.4 examples/multithread.lua [COUNT [THREADS [SECONDS]]]\n")
  os.exit(2)
end

local function count_arg(i, default)
  local v = arg[i]
  if v == nil then return default end
  local n = math.tointeger(tonumber(v))
  if not n or n < 1 then usage(("argument #%d must be a positive integer, got '%s'"):format(i, v)) end
  return n
end

local count = count_arg(1, 8)
local threads = count_arg(2, 4)
local seconds = arg[3] or "1"
if not seconds:match("^%d+%.?%d*$") then usage("SECONDS must be a number such as 1 or 0.2, got '" .. seconds .. "'") end

local cmds = {}
for i = 1, count do cmds[i] = "sleep " .. seconds end

local start = monotime()
local _, nfailed = par.run(cmds, threads, {
  on_done = function(res, i)
    print(("done #%d: %s (%s)"):format(i, res.cmd, res.ok and "ok" or res.error or res.status))
  end,
})
local wall = monotime() - start

-- With the commands spread evenly, the run takes ceil(count / threads) rounds.
local rounds = (count + threads - 1) // threads
print(("%d x sleep %s on %d threads: %.2f s wall time (ideal %.2f s, one by one %.2f s)"):format(
  count, seconds, threads, wall, rounds * tonumber(seconds), count * tonumber(seconds)))
if nfailed > 0 then
  io.stderr:write(("%d command(s) failed\n"):format(nfailed))
  os.exit(1)
end
