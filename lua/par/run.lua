--- par.run and par.each: run commands, n at a time, on a pool of threads
-- (the core's runner, src/runner.c and src/run.c).  This side checks the
-- arguments (options.lua), pulls the commands from their table or
-- iterator as workers free up, reads and writes the joblog, draws the
-- progress line and calls on_done and on_output; the core spawns, waits
-- and kills.  par.each is the machinery; par.run is a loop over it.
local core = require "par.core"
local util = require "par.util"
local options = require "par.options"
local hostlist = require "par.hosts"
local joblog = require "par.joblog"
local progress = require "par.progress"

local M = {}

local type, pcall, error, rawget, setmetatable, pairs, tonumber =
  type, pcall, error, rawget, setmetatable, pairs, tonumber
local math_type = math.type

-- (cmds [, n] [, opts]), checked: the options, or a bad argument raised at
-- 'level' (the caller of par.run or par.each).
local function stream_args(call, level, cmds, ...)
  local ok, why = options.find("run", "commands").check(cmds)
  if not ok then util.argerror(1, call, why, level) end
  local opts, argn
  opts, argn, why = options.args("run", 2, ...)
  if not opts then util.argerror(argn, call, why, level) end
  if opts.on_output and (opts.capture == false or opts.output) then
    util.argerror(argn, call, "option 'on_output' contradicts option '"
      .. (opts.output and "output" or "capture") .. "'", level)
  end
  return opts
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

-- {======================================================================
-- The stream: what par.each's iterator holds

-- The commands pushed and not yet back are 'inflight'; the input is pulled
-- while fewer than 'limit' are, so that a worker that ends a job finds
-- the next one queued (the read-ahead), and memory is bounded by 'limit'
-- whatever the input's length.  Results wait in 'ready' (a queue) to be
-- yielded; with 'ordered', in 'held' until those before them are ready.

local function ready_put(st, i, res)
  local t = st.tail + 1
  st.tail = t
  st.ready_i[t], st.ready_r[t] = i, res
end

local function deliver(st, i, res)
  if not st.ordered then return ready_put(st, i, res) end
  local held = st.held
  held[i] = res
  local want = st.want
  while held[want] do
    ready_put(st, want, held[want])
    held[want] = nil
    want = want + 1
  end
  st.want = want
end

-- The command's text pulled as the i'th input (st.cmds[i] for a table):
-- kept with its result as res.cmd, and in flight only.
local function push(st, c, i)
  local argv = c
  if type(c) == "string" then
    local shell = st.shell
    argv = table.move(shell, 1, #shell, 1, {})
    argv[#argv + 1] = c
  end
  local stdin = type(c) == "table" and rawget(c, "stdin") or nil
  st.r:push(argv, i, st.hosts and hostlist.line(c, st.opts, st.shell, i) or nil, stdin)
  st.cmd[i] = c
  st.inflight = st.inflight + 1
  if stdin then st.nstdin = st.nstdin + 1; st.stdin_of[i] = true end
end

-- Pull commands while the read-ahead has room.  A bad command raises
-- (the stream's closer tears down); a source that says "nothing yet"
-- (false, fd) is waited for on fd.
local function pull(st)
  local r = st.r
  st.waitfd = nil
  -- commands with their own stdin hold it in the core until they end
  -- (par --pipe's blocks): read ahead only one of those beyond the slots
  while not st.ended and st.inflight < st.limit and st.tail - st.head < st.limit
      and (st.nstdin == 0 or st.inflight <= st.jobs) do
    if r:stopping() then return end
    local c, fd = st.source()
    if c == nil then
      st.ended = true
      r:endinput()
      return
    end
    if c == false then
      if math_type(fd) ~= "integer" or fd < 0 then
        util.argerror(1, st.call, "iterator returned false without a descriptor to wait on", 0)
      end
      st.waitfd = fd
      return
    end
    local i = st.pos + 1
    st.pos = i
    if not st.listed then
      local ok, why = options.check_command(c, i)
      if not ok then util.argerror(1, st.call, why, 0) end
    end
    local ok = st.done[i]
    if ok ~= nil then
      st.nskipped = st.nskipped + 1
      deliver(st, i, skipped(c, ok))
    else
      push(st, c, i)
    end
  end
end

-- Take one finished job: its joblog line unless it was skipped or par cut
-- it short in a run that ends early ('abort', or an interrupt), so that a
-- resume reruns exactly the jobs that never ended on their own.
local function take(st, i, res, abort)
  res.cmd = st.cmd[i]
  st.cmd[i] = nil
  if st.received then res.received, st.received[i] = st.received[i], nil end
  st.inflight = st.inflight - 1
  if st.stdin_of[i] then st.stdin_of[i] = nil; st.nstdin = st.nstdin - 1 end
  if not res.ok and res.status ~= "skipped" then st.failed = st.failed + 1 end
  local log = st.log
  if log and not log.failed and res.status ~= "skipped"
      and not (res.stopped and (abort or st.r:interrupted())) then
    if abort then pcall(log.write, log, i, res)
    elseif st.log_held then st.log_held[i] = res
    else log:write(i, res) end
  end
end

-- The joblog lines held for M.log_line and not written yet, in input order.
local function write_held(st)
  local held, order = st.log_held, {}
  if not held then return end
  for i in pairs(held) do order[#order + 1] = i end
  table.sort(order)
  for _, i in ipairs(order) do
    if not st.log.failed then pcall(st.log.write, st.log, i, held[i]) end
  end
  st.log_held = nil
end

-- With timeout = "N%": a command that succeeded counts in the median of
-- runtimes, which sets the time limit of those that run and those to come.
-- As GNU parallel's: the last 999 runtimes, in milliseconds written with
-- three decimals, sorted as strings, the lower middle one.
local RUNTIMES = 999
local function timed(st, res)
  if not st.pct or not res.ok or res.status ~= "exit" then return end
  local n = st.nruntimes
  local ms = math.floor((res.elapsed or 0) * 1000)
  st.runtimes[n % RUNTIMES + 1] = string.format("%.3f", ms / 1000)
  st.nruntimes = n + 1
  local sorted = table.move(st.runtimes, 1, #st.runtimes, 1, {})
  table.sort(sorted)
  local median = tonumber(sorted[(#sorted - 1) // 2 + 1])
  st.r:settimeout(math.max(st.pct * median, 1e-6))   -- GNU's limit 0 stops all at once
end

-- The progress line's counts: jobs started, jobs finished.
local function counts(st)
  local started, finished = st.r:counts()
  return started + st.nskipped, finished + st.nskipped
end

local function draw(st, force)
  local bar = st.bar
  if bar then bar:draw(st.counter, st.failed, force) end
end

local function over(st)
  st.over = true
  if st.bar then st.bar:finish(st.counter, st.failed) end
end

-- Command c with each slotmark 'mark' made 'slot' (digits): c as it runs.
local function marked(c, mark, slot)
  local pat = mark:gsub("%p", "%%%0")
  if type(c) == "string" then return (c:gsub(pat, slot)) end
  local t = {}
  for k, v in pairs(c) do           -- the argv's words, not its stdin
    t[k] = math_type(k) == "integer" and type(v) == "string" and v:gsub(pat, slot) or v
  end
  return t
end

-- Command i starts in job slot 'slot' (digits): the command its result
-- and the joblog give is the one that runs; then on_start.
local function started(st, i, slot)
  local mark = st.opts.slotmark
  if mark and st.cmd[i] then st.cmd[i] = marked(st.cmd[i], mark, slot) end
  if st.on_start then st.on_start(i, tonumber(slot)) end
end

-- The tick of M.set_tick, when it is due.
local function tick(st)
  local now = core.monotime()
  if now < st.tick_at then return end
  st.tick_at = now + st.tick_every
  st.tick(st)
end

-- The next event from the core: a result, output, a timeout or "input".
local function wait(st)
  local r = st.r
  local every = st.bar and st.bar.interval
  if st.tick and (not every or st.tick_every < every) then every = st.tick_every end
  local k, a, b = r:next(every, st.waitfd)
  if st.tick then tick(st) end
  if k == nil then
    over(st)
    if a == "interrupted" then error("interrupted", 0) end
    return
  end
  if k == false then
    if a == "input" then st.waitfd = nil else draw(st) end
  elseif a == "start" then
    started(st, k, b)
  elseif type(a) == "string" then
    if a == "stdout" and st.log then st.received[k] = (st.received[k] or 0) + #b end
    st.on_output(k, a, b)
  else
    take(st, k, a)
    timed(st, a)
    if st.group then write_group(a) end
    draw(st)
    if st.on_done then st.on_done(a, k) end
    deliver(st, k, a)
  end
end

-- The iterator: i, result, one per command, until the input is over.
local function step(st)
  while true do
    local h = st.head
    if h < st.tail then
      h = h + 1
      st.head = h
      local i, res = st.ready_i[h], st.ready_r[h]
      st.ready_i[h], st.ready_r[h] = nil, nil
      return i, res
    end
    if st.over then return nil end
    pull(st)
    -- nothing ready: a result, output, input or the end comes from the core
    -- (a stopped run gives back what never started, then nil)
    if st.head == st.tail then wait(st) end
  end
end

-- After an error or a break: kill what runs, as halt = "now" would, and
-- wait for every job, logging those that ended on their own, without
-- on_done.  A failing joblog write here ends logging, not the wait: the
-- first error is the one raised.
local function abort(st)
  local r = st.r
  r:stop(1)
  while true do
    local k, res = r:next()
    if not k then break end
    if type(res) == "table" then take(st, k, res, true) end
  end
  if st.bar then st.bar:finish(st.counter, st.failed) end
end

local function close(st)
  if st.closed then return end
  st.closed = true
  if not st.over then pcall(abort, st) end
  st.r:close()
  if st.log then
    write_held(st)
    st.log:close()
  end
end

-- The closer the for loop closes (break, return, an error in its body or
-- in the iterator); dropped unclosed, its collection tears down at once.
local Closer = {
  __close = function(c) close(c.st) end,
  __gc = function(c)
    local st = c.st
    st.closed = true
    st.r:close()
    if st.log then st.log:close() end
  end,
}

-- }======================================================================

-- The stream for checked (cmds, opts), or nil, msg, errno.
local function open(call, cmds, opts)
  local listed = type(cmds) == "table"
  local total = listed and #cmds or nil
  local source = cmds
  if listed then
    local k = 0
    source = function() k = k + 1; return rawget(cmds, k) end
  end
  local done = opts.resume and joblog.read(opts.joblog, opts.resume == "failed") or {}
  local log, why, errno
  if opts.joblog then
    log, why, errno = joblog.open(opts.joblog)
    if not log then return nil, why, errno end
  end
  local group = opts.output == "group"
  local capture = opts.capture
  if capture == nil then capture = opts.output == nil end
  local jobs = opts.jobs or core.cpus()
  local hosts
  if opts.hosts then hosts, jobs = hostlist.list(opts, jobs) end
  if total then jobs = math.min(jobs, math.max(total, 1)) end
  local copts = { jobs = jobs, hosts = hosts, remote = hosts and {}, open = true,
    capture = capture or group or opts.on_output ~= nil, chunks = opts.on_output ~= nil,
    starts = opts.on_start ~= nil or opts.slotmark ~= nil }
  for _, o in ipairs(options.run) do
    if o.core then copts[o.name] = opts[o.name] end
  end
  local pct = type(opts.timeout) == "string" and tonumber(opts.timeout:sub(1, -2)) / 100
  if pct then copts.live_timeout = true else copts.timeout = opts.timeout end
  if opts.termseq then copts.termseq = options.termseq(opts.termseq) end
  local r, syswhy, syserr = core.runner({}, copts)
  if not r then             -- no thread could start: nothing ran
    if log then log:close() end
    return nil, syswhy, syserr
  end
  local st = { call = call, r = r, log = log, received = {}, opts = opts, source = source, listed = listed,
    shell = opts.shell or { "/bin/sh", "-c" }, hosts = hosts, done = done, group = group,
    on_done = opts.on_done, on_output = opts.on_output, on_start = opts.on_start,
    ordered = opts.ordered, want = 1,
    held = {}, cmd = {}, ready_i = {}, ready_r = {}, head = 0, tail = 0, pos = 0,
    inflight = 0, nskipped = 0, failed = 0, limit = 2 * jobs + 2, jobs = jobs, nstdin = 0,
    stdin_of = {}, pct = pct, runtimes = pct and {}, nruntimes = 0 }
  st.counter = { counts = function() return counts(st) end }
  st.bar = progress.new(total, opts.progress)
  return st, setmetatable({ st = st }, Closer)
end

--- for i, res in par.each(cmds [, n] [, opts]): par.run's results, one per
-- command, as each ends (opts.ordered: in input order).  cmds may be an
-- iterator function.  On a failure of the system: nil, msg, errno.
function M.each(cmds, ...)
  local opts = stream_args("each", 4, cmds, ...)
  local st, closer, errno = open("each", cmds, opts)
  if not st then return nil, closer, errno end
  return step, st, nil, closer
end

--- Start no more commands of the stream whose state 'st' par.each gave
-- (its second value): those not started come back "skipped".  The par
-- command's --halt soon,fail=N uses it.
function M.stop_starting(st)
  st.r:stop(0)
end

--- Hold the joblog lines of the stream whose state 'st' par.each gave
-- (before its first step), each until M.log_line(st, i) writes it: the par
-- command writes a job's line after its output, in the order it prints
-- the jobs (-k: input order), as GNU parallel does.  The lines not written
-- when the stream closes are written then.
function M.hold_log(st)
  if st.log then st.log_held = {} end
end

--- Write the held joblog line of command i, if there is one; 'text', if
-- given, is the command it names (the par command's text of an argv job).
function M.log_line(st, i, text)
  local res = st.log_held and st.log_held[i]
  if res then
    st.log_held[i] = nil
    if text then res = setmetatable({ cmd = text }, { __index = res }) end
    st.log:write(i, res)
  end
end

--- Call fn(st) now, then every 'every' seconds at most, as long as the
-- stream whose state 'st' par.each gave runs (before its first step); fn
-- may hold the starts (M.hold) or change the number of jobs (M.set_jobs).
-- The par command's --load, --memfree and -j FILE.
function M.set_tick(st, fn, every)
  st.tick, st.tick_every, st.tick_at = fn, every, 0
  tick(st)
end

--- Let M.evict stop commands of stream 'st' (before its first step): its
-- commands look for an eviction every 50 ms.
function M.evictable(st)
  st.r:evictable()
end

--- Stop the running command of stream 'st' that came last in the input,
-- as a timeout would (termseq), and run it again later, as if it had not
-- started (GNU parallel's --memfree); its index, or nil if none runs.
function M.evict(st)
  return st.r:evict()
end

--- Commands of stream 'st' started and finished so far (not those a
-- resume skipped).
function M.counts(st)
  return st.r:counts()
end

--- With 'on', start no more commands of stream 'st' until M.hold(st, false);
-- those running go on.
function M.hold(st, on)
  st.r:hold(on and true or false)
end

--- At most 'n' commands at once from now on, in the stream whose state
-- 'st' par.each gave (the par command's -j FILE, read again as jobs end).
-- On a failure of the system to start more threads: nil, msg, errno.
function M.set_jobs(st, n)
  if n == st.jobs then return true end
  local ok, why, errno = st.r:setjobs(n)
  if not ok then return nil, why, errno end
  st.jobs, st.limit = n, 2 * n + 2
  return true
end

--- Run a list of commands, n at a time, on a pool of threads.
-- @return results (in input order), nfailed
function M.run(cmds, ...)
  local opts = stream_args("run", 4, cmds, ...)
  opts.ordered = nil
  local st, closer, errno = open("run", cmds, opts)
  if not st then return nil, closer, errno end
  local results, c <close> = {}, closer   -- luacheck: ignore 211 (closed on return)
  for i, res in step, st do results[i] = res end
  local total = type(cmds) == "table" and #cmds or st.pos
  for i = st.pos + 1, total do results[i] = skipped(rawget(cmds, i), false) end
  return results, st.failed
end

return M
