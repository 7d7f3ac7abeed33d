--- par: run work in parallel.
-- par.run runs a list of commands on a pool of threads; par.map maps a Lua
-- function over items on forked worker processes.
local core = require "par.core"
local util = require "par.util"
local joblog = require "par.joblog"
local progress = require "par.progress"

local M = {}

M.VERSION = core.VERSION

local type, ipairs, tostring, rawget, next = type, ipairs, tostring, rawget, next
local format = string.format
local argerror, typename = util.argerror, util.typename

--- The CPUs this process may use (affinity-aware, at least 1).
M.cpus = core.cpus

--- Quote a string for a POSIX shell, so that `sh -c` sees it as one word.
M.quote = util.quote

--- The partitions { {lo, hi}, ... } covering first..last in blocks of size;
-- the last block may be short, and first > last gives no block.
function M.ranges(first, last, size)
  for i = 1, 3 do
    local v = select(i, first, last, size)
    if math.type(v) ~= "integer" then
      argerror(i, "ranges", type(v) == "number" and "number has no integer representation"
        or "integer expected, got " .. typename(v))
    end
  end
  if size < 1 then argerror(3, "ranges", "block size must be >= 1, got " .. size) end
  local out = {}
  if first > last then return out end
  if last - first < 0 then argerror(2, "ranges", "range too large") end
  local lo = first
  while true do
    if last - lo < size then   -- no overflow: lo <= last here
      out[#out + 1] = { lo, last }
      return out
    end
    out[#out + 1] = { lo, lo + size - 1 }
    lo = lo + size
  end
end

-- {======================================================================
-- par.run: checks

local function check_string(v)
  if type(v) ~= "string" then return nil, "string expected, got " .. typename(v) end
  if v:find("\0", 1, true) then return nil, "string contains a NUL byte" end
  return v
end

local function check_argv(t, what)
  if type(t) ~= "table" then return nil, what .. " must be a string or an argv table" end
  local bad = util.len_problem(t)
  if bad then return nil, what .. ": " .. bad end
  if #t == 0 or not util.is_sequence(t) then return nil, what .. " must be a non-empty sequence of strings" end
  for k = 1, #t do
    local a = rawget(t, k)
    if type(a) ~= "string" then
      return nil, format("%s: element %d is a %s, not a string", what, k, typename(a))
    end
    if a:find("\0", 1, true) then return nil, format("%s: element %d contains a NUL byte", what, k) end
  end
  return t
end

local function check_env(v)
  if type(v) ~= "table" then return nil, "table expected, got " .. typename(v) end
  for k, val in next, v do
    if type(k) ~= "string" or k == "" or k:find("[=%z]") then
      return nil, "bad variable name " .. format("%q", tostring(k))
    end
    if val ~= false and type(val) ~= "string" or (val and val:find("\0", 1, true)) then
      return nil, format("variable '%s' must be a string without NUL bytes, or false", k)
    end
  end
  return v
end

local function check_shell(v)
  if type(v) == "string" then
    return check_string(v) and { v, "-c" } or nil, "string without NUL bytes expected"
  end
  return check_argv(v, "shell")
end

local function check_hosts(v)
  if type(v) ~= "table" then return nil, "table expected, got " .. typename(v) end
  local bad = util.len_problem(v)
  if bad then return nil, bad end
  if #v == 0 or not util.is_sequence(v) then return nil, "non-empty sequence of host names expected" end
  for i = 1, #v do
    local why = util.host_problem(rawget(v, i), "host #" .. i)
    if why then return nil, why end
  end
  return v
end

local function check_ssh(v)
  if type(v) == "string" then
    local words = {}
    for w in v:gmatch("%S+") do words[#words + 1] = w end
    if #words == 0 then return nil, "empty ssh command" end
    return words
  end
  return check_argv(v, "ssh")
end

local RUN_OPTS = {
  jobs = util.positive_integer,
  capture = util.boolean,
  stdin = util.string,
  env = check_env,
  cwd = check_string,
  shell = check_shell,
  timeout = util.positive_number,
  kill_after = util.nonneg_number,
  retries = util.nonneg_integer,
  retry_delay = util.nonneg_number,
  halt = util.oneof("never", "soon", "now"),
  on_done = util.func,
  progress = util.boolean_or("always"),
  joblog = check_string,
  resume = util.boolean_or("failed"),
  max_output = util.nonneg_integer,
  output = util.oneof("group", "ungroup"),
  delay = util.nonneg_number,
  hosts = check_hosts,
  ssh = check_ssh,
}

-- par.run(cmds [, n] [, opts]): the number of jobs, as util.count_opts
-- checks it.
local function jobs_count(v)
  local n, why = util.check_count(v, 1)
  if not n then return nil, "number of jobs: " .. why end
  return n
end

-- par.run(cmds [, n] [, opts]): returns the checked options and the argument
-- number they came from.
local function run_args(cmds, ...)
  if type(cmds) ~= "table" then argerror(1, "run", "table expected, got " .. typename(cmds), 4) end
  local bad = util.len_problem(cmds)
  if bad then argerror(1, "run", bad, 4) end
  if not util.is_sequence(cmds) then argerror(1, "run", "sequence expected (keys 1..n only)", 4) end
  local opts, argn = util.count_opts("run", 2, RUN_OPTS, "jobs", jobs_count, 5, ...)
  if opts.resume and not opts.joblog then argerror(argn, "run", "option 'resume' needs option 'joblog'", 4) end
  local unfit = opts.joblog and joblog.unfit(opts.joblog)
  if unfit then argerror(argn, "run", "option 'joblog': " .. unfit, 4) end
  if opts.output and opts.capture then
    argerror(argn, "run", "option 'output' needs capture = false", 4)
  end
  for i = 1, #cmds do
    local c = rawget(cmds, i)
    if type(c) == "string" then
      if c == "" then argerror(1, "run", format("command #%d is an empty string", i), 4) end
      if c:find("\0", 1, true) then argerror(1, "run", format("command #%d contains a NUL byte", i), 4) end
    else
      local ok, why = check_argv(c, "command #" .. i)
      if not ok then argerror(1, "run", why, 4) end
    end
  end
  return opts, argn
end

-- }======================================================================

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

-- {======================================================================
-- Remote hosts: ssh HOST -- LINE, where LINE applies cwd and env remotely.

local function remote_line(c, opts, shell)
  local parts = {}
  if opts.cwd then parts[#parts + 1] = "cd " .. M.quote(opts.cwd) .. " &&" end
  if opts.env then
    local names = {}
    for k in next, opts.env do names[#names + 1] = k end
    table.sort(names)
    parts[#parts + 1] = "env"
    for _, k in ipairs(names) do
      local v = opts.env[k]
      parts[#parts + 1] = v == false and "-u " .. M.quote(k) or M.quote(k .. "=" .. v)
    end
  end
  if type(c) == "string" then
    parts[#parts + 1] = util.shell_line(shell) .. " " .. M.quote(c)
  else
    parts[#parts + 1] = util.shell_line(c)
  end
  return table.concat(parts, " ")
end

-- The core's host list, and the number of worker threads: one per slot.
-- A host without "N/" gets opts.jobs slots, which the Lua layer does not
-- bound (#cmds bounds the threads): here at most MAX_SLOTS, as with "N/".
-- ssh reads no option after "--", so the host and the line after it are
-- never options, whatever they begin with.
local function host_list(opts, slots)
  local ssh = opts.ssh or { "ssh" }
  local out, total = {}, 0
  slots = math.min(slots, util.MAX_SLOTS)
  for i = 1, #opts.hosts do
    local spec = rawget(opts.hosts, i)
    local n, name = spec:match("^(%d+)/(.*)$")
    local h = { name = name or spec, slots = n and math.tointeger(tonumber(n)) or slots }
    if h.name ~= ":" then
      h.argv = table.move(ssh, 1, #ssh, 1, {})
      table.move({ "-o", "BatchMode=yes", "--", h.name }, 1, 4, #h.argv + 1, h.argv)
    end
    out[#out + 1] = h
    total = total + h.slots
  end
  return out, total
end

-- }======================================================================

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
  if not res.ok then st.failed = st.failed + 1 end
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
  local log <close> = opts.joblog and joblog.open(opts.joblog) or nil
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
    hosts, jobs = host_list(opts, jobs)
    remote = {}
    for k, i in ipairs(todo) do remote[k] = remote_line(cmds[i], opts, shell) end
  end
  local r <close>, syswhy, errno = core.runner(argvs(cmds, shell, todo), {
    jobs = math.min(jobs, math.max(#todo, 1)), hosts = hosts, remote = remote,
    capture = capture or group,
    stdin = opts.stdin, env = opts.env, cwd = opts.cwd,
    timeout = opts.timeout, kill_after = opts.kill_after,
    retries = opts.retries, retry_delay = opts.retry_delay,
    halt = opts.halt, max_output = opts.max_output, delay = opts.delay,
  })
  if not r then return nil, syswhy, errno end   -- no thread could start: nothing ran
  local st = { r = r, log = log, bar = bar, cmds = cmds, todo = todo, results = results,
    group = group, failed = 0 }
  -- pcall, not a C boundary: on_done may still yield when par.run runs in a coroutine
  local ok, over = pcall(wait_all, st, opts.on_done)
  if not ok then
    pcall(abort, st)                -- a second interrupt ends the wait; r's __close reaps
    error(over, 0)
  end
  if over == "interrupted" then error("interrupted", 0) end
  local nfailed = 0
  for i = 1, total do
    if not results[i] then results[i] = skipped(cmds[i], false) end
    if not results[i].ok then nfailed = nfailed + 1 end
  end
  return results, nfailed
end

M.map = require("par.map").map

return M
