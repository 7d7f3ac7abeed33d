--- The joblog of GNU parallel (`--joblog`): one tab-separated line per
-- finished command, written and flushed as each ends, so that a batch killed
-- halfway leaves a correct log; and the reader behind `resume`.
--
-- The line rule.  A complete line has exactly 9 tab-separated fields, none
-- of them empty: the writer escapes tab, newline and carriage return in the
-- Command column (as \t, \n, \r), and no command is empty.  A run killed
-- while writing can leave a last line without its newline.  Before appending,
-- the writer ends such a line with a tab and a newline: cut before its 8th
-- tab it has at most 8 fields, cut after it 9 with the last empty, or 10.
-- The reader takes only lines that follow the rule, so the cut line is
-- ignored (with a warning) and can neither swallow the next job's line nor
-- pass for a job.  A GNU parallel line whose command holds a tab breaks the
-- rule too: that job runs again.
local core = require "par.core"
local util = require "par.util"

local M = {}

local format = string.format
local HEADER = "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand"

local Log = {}
Log.__index = Log

--- The Command column: argv commands quoted for the shell, on one line.
local function command_text(cmd)
  if type(cmd) == "table" then cmd = util.shell_line(cmd) end
  return (cmd:gsub("[\n\t\r]", { ["\n"] = "\\n", ["\t"] = "\\t", ["\r"] = "\\r" }))
end

--- Exitval and Signal as GNU parallel writes them: a timed-out job has
-- Exitval -1 and the signal that stopped it; a job that could not start -1, 0.
local function exit_fields(res)
  if res.status == "signal" then return 0, res.signal end
  if res.status == "timeout" then return -1, res.signal or 15 end
  if res.status == "error" then return -1, 0 end
  return res.code or -1, 0
end

--- Why 'path' cannot be a joblog, or nil: it must be a regular file or not
-- exist yet.  Checked before anything reads or opens it: opening a FIFO
-- blocks (uninterruptibly, for par), and a directory fails late.
function M.unfit(path)
  if path == "-" then return nil end
  local kind = core.filetype(path)
  if kind and kind ~= "file" then
    return format("%s is %s, not a regular file", path, kind == "other" and "something else" or "a " .. kind)
  end
  return nil
end

-- Write and flush, or raise "joblog: PATH: strerror" and write no more:
-- par.run then stops the run, so that no job ends without its line unseen.
function Log:put(...)
  local ok, err = self.file:write(...)
  if ok then ok, err = self.file:flush() end
  if not ok then
    self.failed = format("joblog: %s: %s", self.path, err)
    self:close()
    error(self.failed, 0)
  end
end

--- Open the joblog at 'path' for appending (its header written when it is
-- new); or nil, "joblog: PATH: <strerror>", errno.
function M.open(path)
  if path == "-" then                -- GNU parallel's --joblog -: stdout
    local log = setmetatable({ file = io.stdout, path = "stdout", host = ":", shared = true }, Log)
    log:put(HEADER, "\n")
    return log
  end
  local f, err, errno = io.open(path, "a+")
  if not f then return nil, "joblog: " .. err, errno end
  local log = setmetatable({ file = f, path = path, host = ":" }, Log)
  local size = f:seek("end")
  if size == 0 then
    log:put(HEADER, "\n")
  else
    f:seek("set", size - 1)
    local last = f:read(1)
    f:seek("end")                   -- C: a read and a write need a seek between them
    if last ~= "\n" then log:put("\t\n") end   -- a cut line: see the line rule
  end
  return log
end

function Log:write(seq, res)
  local exitval, sig = exit_fields(res)
  self:put(format("%d\t%s\t%.3f\t%10.3f\t%d\t%d\t%d\t%d\t%s\n",
    seq, res.host or self.host, res.started or 0, res.elapsed or 0, 0,
    res.stdout and #res.stdout or res.received or 0, exitval, sig, command_text(res.cmd)))
end

function Log:close()
  if self.file then
    if not self.shared then self.file:close() end
    self.file = nil
  end
end
Log.__close = Log.close
Log.__gc = Log.close

--- Read a joblog for resuming.  Returns a table seq -> ok for the commands
-- not to run again: every logged one, or with rerun_failed only those that
-- ended with exit 0 and no signal.  The log is read, not trusted: lines that
-- break the line rule (a cut line, garbage) are skipped with a warning.
function M.read(path, rerun_failed, warn)
  warn = warn or function(msg) io.stderr:write("par: ", msg, "\n") end
  local done = {}
  if path == "-" then return done end
  local f = io.open(path, "r")
  if not f then return done end
  local lineno, bad = 0, 0
  local data = f:read("a")
  f:close()
  for line, nl in data:gmatch("([^\n]*)(\n?)") do
    lineno = lineno + 1
    if line == "" and nl == "" then break end
    if lineno > 1 or line ~= HEADER then
      local seq, exitval, sig = line:match(
        "^(%d+)\t[^\t]+\t%d+%.?%d*\t *%d+%.?%d*\t%d+\t%d+\t(%-?%d+)\t(%d+)\t[^\t]+$")
      seq = seq and math.tointeger(tonumber(seq))
      if not seq or nl == "" then
        bad = bad + 1
        if bad <= 3 then warn(format("joblog %s: line %d ignored (%s)", path, lineno,
          nl == "" and "no end of line" or line:find("\t$") and "cut short"
          or "not a joblog line")) end
      else
        local ok = tonumber(exitval) == 0 and tonumber(sig) == 0
        if ok or not rerun_failed then done[seq] = done[seq] or ok end
      end
    end
  end
  if bad > 3 then warn(format("joblog %s: %d lines ignored in all", path, bad)) end
  return done
end

--- The commands of a joblog, for GNU parallel's --retry-failed: a list,
-- by seq, of the command of each line (the last one for a seq), with
-- "true" for a seq that succeeded and for one the log does not hold (the
-- resume skips those).  nil when the log cannot be read.
function M.commands(path)
  local f = path ~= "-" and io.open(path, "r")
  if not f then return nil end
  local cmds, n = {}, 0
  for line in f:lines() do
    local seq, exitval, sig, cmd = line:match(
      "^(%d+)\t[^\t]+\t[^\t]+\t[^\t]+\t[^\t]+\t[^\t]+\t(%-?%d+)\t(%d+)\t(.*)$")
    seq = seq and math.tointeger(tonumber(seq))
    if seq and seq >= 1 and cmd ~= "" then
      cmds[seq] = (exitval == "0" and sig == "0") and "true" or cmd
      if seq > n then n = seq end
    end
  end
  f:close()
  for k = 1, n do cmds[k] = cmds[k] or "true" end
  return cmds
end

return M
