--- par.run: run a list of commands, n at a time, on a pool of threads
-- (the core's runner, src/runner.c and src/run.c).  This side checks the
-- arguments (options.lua), reads and writes the joblog, draws the progress
-- line and calls on_done; the core spawns, waits and kills.
local core = require "par.core"
local util = require "par.util"
local options = require "par.options"
local hostlist = require "par.hosts"
local joblog = require "par.joblog"
local progress = require "par.progress"

local M = {}

local ipairs, type, pcall, error = ipairs, type, pcall, error

-- par.run(cmds [, n] [, opts]): the checked options.  Level 4 blames the
-- caller of par.run (argerror, run_args, M.run).
local function run_args(cmds, ...)
  local ok, why = options.find("run", "commands").check(cmds)
  if not ok then util.argerror(1, "run", why, 4) end
  local opts, argn
  opts, argn, why = options.args("run", 2, ...)
  if not opts then util.argerror(argn, "run", why, 4) end
  return opts
end

-- The argv vectors the core runs: string commands go through the shell.
local function argvs(cmds, shell, todo)
  local out = {}
  for k, i in ipairs(todo) do
    local c = cmds[i]
    if type(c) == "string" then
      local v = table.move(shell, 1, #shell, 1, {})
      v[#v + 1] = c
      out[k] = v
    else
      out[k] = c
    end
  end
  return out
end


local function skipped(cmd, ok)
  return { cmd = cmd, ok = ok, status = "skipped" }
end

-- Write a grouped command's output in one piece each.
local function write_group(res)
  if res.stdout ~= "" then io.stdout:write(res.stdout); io.stdout:flush() end
  if res.stderr ~= "" then io.stderr:write(res.stderr); io.stderr:flush() end
  res.stdout, res.stderr = nil, nil
end

-- Take one finished job: its result into place and, unless it was skipped
-- or par cut it short in a run that ends early ('abort', or an interrupt),
-- its joblog line, so that a resume reruns exactly the jobs that never ended
-- on their own.  Returns the job's index in cmds.
local function take(st, k, res, abort)
  local i = st.todo[k]
  res.cmd = st.cmds[i]
  st.results[i] = res
  if not res.ok and res.status ~= "skipped" then st.failed = st.failed + 1 end
  local log = st.log
  if log and not log.failed and res.status ~= "skipped"
      and not (res.stopped and (abort or st.r:interrupted())) then
    if abort then pcall(log.write, log, i, res) else log:write(i, res) end
  end
  return i
end

-- Every result, as each job ends; returns what r:next gave at the end
-- ("interrupted" when SIGINT or SIGTERM cut the run short).
local function wait_all(st, on_done)
  local r, bar = st.r, st.bar
  while true do
    local k, res = r:next(bar and bar.interval)
    if k == nil then
      if bar then bar:finish(r, st.failed) end
      return res
    elseif k then
      local i = take(st, k, res)
      if st.group then write_group(res) end
      if bar then bar:draw(r, st.failed) end
      if on_done then on_done(res, i) end
    elseif bar then
      bar:draw(r, st.failed)
    end
  end
end

-- After an error in wait_all (on_done raising, a joblog failure, an
-- interrupt raised anywhere): kill what runs, as halt = "now" would, and
-- wait for every job, logging those that ended on their own, without
-- on_done.  A failing joblog write here ends logging, not the wait: the
-- first error is the one raised.
local function abort(st)
  st.r:stop(1)
  while true do
    local k, res = st.r:next()
    if not k then break end
    take(st, k, res, true)
  end
  if st.bar then st.bar:finish(st.r, st.failed) end
end

--- Run a list of commands, n at a time, on a pool of threads.
-- @return results (in input order), nfailed
function M.run(cmds, ...)
  local opts = run_args(cmds, ...)
  local results, total = {}, #cmds
  local todo = {}
  local done = opts.resume and joblog.read(opts.joblog, opts.resume == "failed") or {}
  local log, why, errno
  if opts.joblog then
    log, why, errno = joblog.open(opts.joblog)
    if not log then return nil, why, errno end
  end
  local log_closer <close> = log -- luacheck: ignore 211 (closed on return)
  for i = 1, total do
    local ok = done[i]
    if ok ~= nil then
      results[i] = skipped(cmds[i], ok)
    else
      todo[#todo + 1] = i
    end
  end
  local group = opts.output == "group"
  local capture = opts.capture
  if capture == nil then capture = opts.output == nil end
  local bar = progress.new(#todo, opts.progress)
  local shell = opts.shell or { "/bin/sh", "-c" }
  local jobs = opts.jobs or core.cpus()
  local hosts, remote
  if opts.hosts then
    hosts, jobs = hostlist.list(opts, jobs)
    remote = {}
    for k, i in ipairs(todo) do remote[k] = hostlist.line(cmds[i], opts, shell) end
  end
  local copts = { jobs = math.min(jobs, math.max(#todo, 1)), hosts = hosts, remote = remote,
    capture = capture or group }
  for _, o in ipairs(options.run) do
    if o.core then copts[o.name] = opts[o.name] end
  end
  local r <close>, syswhy, syserr = core.runner(argvs(cmds, shell, todo), copts)
  if not r then return nil, syswhy, syserr end   -- no thread could start: nothing ran
  local st = { r = r, log = log, bar = bar, cmds = cmds, todo = todo, results = results,
    group = group, failed = 0 }
  -- pcall, not a C boundary: on_done may still yield when par.run runs in a coroutine
  local ok, over = pcall(wait_all, st, opts.on_done)
  if not ok then
    pcall(abort, st)                -- a second interrupt ends the wait; r's __close reaps
    error(over, 0)
  end
  if over == "interrupted" then error("interrupted", 0) end
  for i = 1, total do
    if not results[i] then results[i] = skipped(cmds[i], false) end
  end
  return results, st.failed
end

return M
