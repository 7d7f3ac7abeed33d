--- GNU parallel's --progress and --eta on stderr, in its format: the list
-- of computers once, a header, then one status line redrawn after "\r"
-- and ended with a newline when the run is over:
--
--   Computers / CPU cores / Max jobs to run
--   1:local / 2 / 2
--
--   Computer:jobs running/jobs completed/%of started jobs/Average seconds to complete
--   ETA: 3s Left: 6 AVG: 0.50s  local:2/4/100%/0.5s
--
-- par runs its jobs on this machine or, with -S, spread over hosts that
-- the status line counts as one computer, "local".
local par = require "par"

local M = {}

local format, floor, max, min = string.format, math.floor, math.max, math.min
local time = os.time

local HEADER = "Computer:jobs running/jobs completed/%of started jobs/Average seconds to complete"

-- The program's start, whole seconds, as Perl's $^T.
local T0 = time()

--- A display for a run of 'total' jobs (nil: not known) on 'slots' job
-- slots; 'eta': --eta's numbers too.  d:start() once, d:update(running,
-- completed, started) as it goes, d:finish(...) at the end.
function M.new(total, slots, eta)
  return setmetatable({ total = total, slots = slots, eta = eta, out = io.stderr }, { __index = M })
end

function M:start()
  self.out:write("\nComputers / CPU cores / Max jobs to run\n",
    format("1:local / %d / %d\n", par.cpus(), self.slots), "\n", HEADER, "\n")
  self.out:flush()
end

-- GNU parallel's compute_eta: whole seconds, the average time a job since
-- the first one completed, smoothed, and an ETA that does not go up by
-- less than 10%.
local function compute_eta(self, completed)
  local total = max(self.total or completed, completed)
  local left = total - completed
  if completed == 0 then return left, 0, 0 end
  local pct = min(completed / total, 100)
  self.first = self.first or time()
  local avg = (time() - self.first) / completed
  self.smoothed = self.smoothed or avg
  if self.smoothed == 0 then self.smoothed = avg end     -- Perl's ||=
  self.smoothed = (1 - pct) * self.smoothed + pct * avg
  local eta = floor(left * self.smoothed)
  if self.last_eta and eta * 0.9 < self.last_eta and self.last_eta < eta then
    eta = self.last_eta
  else
    self.last_eta = eta
  end
  return left, avg, eta
end

--- The status line for these counts.
function M:status(running, completed, started)
  local s = ""
  if self.eta then
    local left, avg, eta = compute_eta(self, completed)
    s = format("ETA: %ds Left: %d AVG: %.2fs  ", eta, left, avg)
  end
  if started > 0 then
    local secs = completed > 0 and (time() - T0) / completed or 0
    s = s .. format("local:%d/%d/%d%%/%.1fs ", running, completed,
      floor((running + completed) * 100 / started), secs)
  end
  return s
end

function M:update(running, completed, started)
  self.out:write("\r", self:status(running, completed, started))
  self.out:flush()
end

function M:finish(running, completed, started)
  self.out:write("\r", self:status(running, completed, started), "\n")
  self.out:flush()
end

return M
