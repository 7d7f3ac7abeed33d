--- A one-line progress display on stderr, redrawn in place:
-- done/total, running, failed, elapsed, ETA; with an unknown total (a
-- streamed input), done, running, failed, elapsed and the rate.
local core = require "par.core"

local M = {}

local Bar = {}
Bar.__index = Bar

local function clock()
  return core.monotime()
end

local function hms(s)
  s = math.floor(s + 0.5)
  if s >= 3600 then return string.format("%d:%02d:%02d", s // 3600, s // 60 % 60, s % 60) end
  return string.format("%d:%02d", s // 60, s % 60)
end

--- A display for 'total' tasks (nil: not known), or nil when there is nothing to show: mode
-- true draws only when stderr is a terminal, "always" draws anyway.
function M.new(total, mode, unit)
  if not mode or (mode ~= "always" and not core.isatty(2)) then return nil end
  return setmetatable({ total = total, start = clock(), interval = 0.2, last = -1,
    unit = unit or "done", out = io.stderr }, Bar)
end

function Bar:line(done, running, failed)
  local elapsed = clock() - self.start
  if self.total == nil then
    local rate = elapsed > 0 and done / elapsed or 0
    return string.format("par: %d %s, %d running, %d failed, %s elapsed, %.1f/s",
      done, self.unit, running, failed, hms(elapsed), rate)
  end
  local eta = done > 0 and done < self.total and
    ("ETA " .. hms(elapsed / done * (self.total - done))) or "ETA -"
  if done >= self.total then eta = "done" end
  return string.format("par: %d/%d %s, %d running, %d failed, %s elapsed, %s",
    done, self.total, self.unit, running, failed, hms(elapsed), eta)
end

--- Redraw if the last drawing is older than the interval; 'src' answers
-- counts() with started, finished.
function Bar:draw(src, failed, force)
  local now = clock()
  if not force and now - self.last < self.interval then return end
  self.last = now
  local started, finished = src:counts()
  self.out:write("\r\27[K", self:line(finished, started - finished, failed))
  self.out:flush()
end

function Bar:finish(src, failed)
  self:draw(src, failed or 0, true)
  self.out:write("\n")
  self.out:flush()
end

return M
