--- par.pool: worker processes forked once and reused, with futures.
--
-- par.map forks its workers on every call, so that fn and items reach
-- them for free.  A pool pays the fork once; what the caller makes later
-- travels instead: arguments, items and results through par's codec, and
-- functions as their bytecode with their upvalues as they are at each
-- call (a value the caller reaches through package.loaded goes as its
-- path).  See par.core's tasks.c (the parent side) and worker.c
-- (child_serve) for the machinery; this file builds futures, map and imap
-- on the core's events.
local core = require "par.core"
local util = require "par.util"
local options = require "par.options"
local resolve = require("par.map").resolve

local M = {}

local type, pcall, error, setmetatable, getmetatable = type, pcall, error, setmetatable, getmetatable
local next, tostring = next, tostring
local format, huge, min, max, ceil = string.format, math.huge, math.min, math.max, math.ceil
local monotime = core.monotime
local argerror, typename = util.argerror, util.typename

-- The core's events (tasks.c, tasks_step), five slots each
local EV_VALUE, EV_SPAN, EV_INITERR = 1, 2, 4   -- and 3, EV_ERROR: a unit failed

local Pool = {}
Pool.__index = Pool
local Future = {}
Future.__index = Future

--- The error a failed unit raises: a table as it came; anything else as
-- "par.pool: <who>: msg" and the worker's traceback, as par.map does.
local function failure(who, err, tb)
  if type(err) == "table" then return err end
  local msg
  if type(err) == "string" or type(err) == "number" then msg = err
  else msg = format("(error object is a %s value)", typename(err)) end
  msg = "par.pool: " .. who .. ": " .. msg
  if tb and tb ~= "" then msg = msg .. "\n" .. tb end
  return msg
end

local function usable(self, fname)
  if self.state ~= "open" then
    error(format("par.pool: %s on a %s pool", fname, self.state), 3)
  end
end

-- {======================================================================
-- The loop: one step of the core, its events to their handlers
-- =======================================================================

local function broken(self, why)
  self.state = "terminated"
  self.T:terminate()
  local waiting = self.waiting
  self.waiting = {}
  for _, h in next, waiting do h:fail(why) end
end

--- Wait at most 'timeout' seconds (nil: until something happens) and
-- dispatch what arrived; the number of events.
local function step(self, timeout)
  local ev = self.ev
  local ok, n = pcall(self.T.step, self.T, timeout, ev)
  if not ok then
    broken(self, "par.pool: pool terminated")
    error(n, 0)
  end
  local waiting = self.waiting
  if n == 0 and timeout == nil then
    local queued, flying = self.T:pending()
    if queued == 0 and flying == 0 then
      for _, h in next, waiting do
        if h.left == nil or h.left > 0 then
          -- nothing can come for it: never wait for ever on a task lost
          broken(self, "par.pool: internal error: a task was lost")
          return 0
        end
      end
    end
  end
  for b = 0, 5 * (n - 1), 5 do
    local kind, id, a, x, y = ev[b + 1], ev[b + 2], ev[b + 3], ev[b + 4], ev[b + 5]
    ev[b + 4], ev[b + 5] = nil, nil
    if kind == EV_INITERR then
      broken(self, failure("init", x, y))
      return n
    end
    local h = waiting[id]
    if h then h:event(kind, a, x, y) end
  end
  return n
end

-- }======================================================================

-- {======================================================================
-- Futures
-- =======================================================================

local done_seq = 0

local function settle(f, state, v)
  f.state, f.value = state, v
  done_seq = done_seq + 1
  f.seq = done_seq
  local pool = f.pool
  pool.waiting[f.id] = nil
  pool.npending = pool.npending - 1
  local watchers = f.watchers
  if watchers then
    f.watchers = nil
    for k = 1, #watchers do
      local q = watchers[k]
      q.n = q.n + 1
      q[q.n] = f
    end
  end
end

function Future:event(kind, _, x, y)
  if kind == EV_VALUE then settle(self, "done", x)
  else settle(self, "failed", failure("task", x, y)) end
end

function Future:fail(why)
  if self.state == "pending" then settle(self, "failed", why) end
end

--- f:get([timeout]): fn's first result; fn's error raised; with a
-- timeout, nil, "timeout" if it has not finished by then (it keeps
-- running).
function Future:get(timeout)
  if timeout ~= nil and (type(timeout) ~= "number" or timeout ~= timeout or timeout < 0) then
    argerror(1, "get", "non-negative number expected, got " .. typename(timeout))
  end
  local deadline = timeout and monotime() + timeout
  while self.state == "pending" do
    local left
    if deadline then
      left = deadline - monotime()
      if left <= 0 then return nil, "timeout" end
    end
    step(self.pool, left)
  end
  if self.state == "done" then return self.value end
  if self.state == "cancelled" then error("par.pool: the task was cancelled", 2) end
  error(self.value, 0)
end

--- f:done(): whether it has finished (a result, an error, or cancelled).
function Future:done()
  return self.state ~= "pending"
end

--- f:cancelled()
function Future:cancelled()
  return self.state == "cancelled"
end

--- f:status(): "pending", "done" (a result), "failed" or "cancelled".
function Future:status()
  return self.state
end

--- f:error(): the error a failed task raised (what get would raise), or
-- nil; it never waits.
function Future:error()
  if self.state == "failed" then return self.value end
  return nil
end

--- f:cancel(): a task still queued never runs (true); one that a worker
-- holds, or that has finished, is left alone (false).
function Future:cancel()
  if self.state == "cancelled" then return true end
  if self.state ~= "pending" or not self.pool.T:cancel(self.id) then return false end
  settle(self, "cancelled", nil)
  return true
end

Future.__name = "par.future"
Future.__tostring = function(f) return format("par.future (%s)", f.state) end

-- }======================================================================

-- {======================================================================
-- The pool
-- =======================================================================

local function next_id(self)
  local id = self.nextid + 1
  self.nextid = id
  return id
end

local function function_arg(fn_spec, fname, level)
  local fn, why = resolve(fn_spec)
  if not fn then argerror(1, fname, why, level + 1) end
  return fn
end

--- pool:submit(fn, ...): a future for fn(...), run on one of the workers.
function Pool:submit(fn_spec, ...)
  usable(self, "submit")
  local fn = function_arg(fn_spec, "submit", 2)
  local id = next_id(self)
  local ok, why = self.T:call(id, fn, ...)
  if not ok then error("par.pool: " .. why, 2) end
  local f = setmetatable({ pool = self, id = id, state = "pending" }, Future)
  self.waiting[id] = f
  self.npending = self.npending + 1
  return f
end

--- pool:apply(fn, ...): fn(...)'s first result, on a worker.
function Pool:apply(fn_spec, ...)
  usable(self, "apply")
  local f = self:submit(function_arg(fn_spec, "apply", 2), ...)
  return f:get()
end

-- The items and options of pool:map and pool:imap.
local function map_args(self, fname, fn_spec, items, opts)
  usable(self, fname)
  local fn = function_arg(fn_spec, fname, 3)
  local ok, n = options.find("map", "items").check(items)
  if not ok then argerror(2, fname, n, 3) end
  if opts ~= nil then
    if type(opts) ~= "table" then argerror(3, fname, "table expected, got " .. typename(opts), 3) end
    local checked, name, why = options.check("pool_map", opts)
    if not checked then
      argerror(3, fname, why and format("option '%s': %s", name, why) or format("unknown option '%s'", name), 3)
    end
    opts = checked
  else
    opts = {}
  end
  return fn, n, opts
end

-- A map's chunks: the size asked for, or guided: a quarter of each
-- worker's share, at most 4096.
local function chunk_size(self, opts, n)
  if opts.chunksize then return opts.chunksize end
  if not n then return nil end
  return max(1, min(4096, ceil(n / (4 * self.n))))
end

-- A call of map or imap, a handler of its events: items' results arrive
-- in 'sink'; 'arrived' collects their indices for a stream.
local Call = {}
Call.__index = Call

function Call:event(kind, a, x, y)
  if kind == EV_SPAN then
    self.left = self.left - x
    self.spans = self.spans + 1
    local on_result, sink, arrived = self.on_result, self.sink, self.arrived
    if arrived then
      local na = self.na
      for i = a, a + x - 1 do
        na = na + 1
        arrived[na] = i
      end
      self.na = na
    end
    if on_result then
      for i = a, a + x - 1 do on_result(sink[i], i) end
    end
  else
    self.left = self.left - 1
    local err = failure("item " .. a, x, y)
    if not self.first_err or a < self.first_err then self.first_err = a end
    self.errs[a] = err
    if self.arrived then
      self.na = self.na + 1
      self.arrived[self.na] = a
    end
  end
end

function Call:fail(why)
  self.broken = why
end

local function call_new(self, fn, opts, sink)
  local c = setmetatable({ pool = self, id = next_id(self), fn = fn, sink = sink, errs = {},
    left = 0, spans = 0, on_result = opts.on_result, collect = opts.errors == "collect" }, Call)
  self.waiting[c.id] = c
  return c
end

local function call_end(c)
  local pool = c.pool
  pool.waiting[c.id] = nil
  if pool.state ~= "terminated" then
    pool.T:cancel(c.id)
    pool.T:sink(c.id)
  end
end

local function call_push(c, items, a, b, first)
  local ok, why = c.pool.T:chunk(c.id, c.fn, items, a, b, first, c.sink)
  if not ok then
    call_end(c)
    error("par.pool: " .. why, 3)
  end
  c.left = c.left + (b - a + 1)
end

--- pool:map(fn, items [, opts]): par.map's contract, on the pool's
-- workers: results in order (results.n == #items); the first failed
-- item's error raised, or with errors = "collect", results, errs.
function Pool:map(fn_spec, items, opts)
  local fn, n
  fn, n, opts = map_args(self, "map", fn_spec, items, opts)
  if not n then                        -- an iterator: the stream, kept
    local results, errs, count = {}, {}, 0
    local sub = { errors = "collect", chunksize = opts.chunksize, ordered = false }
    for i, v, err in self:imap(fn, items, sub) do
      count = i > count and i or count
      if err ~= nil then
        if opts.errors ~= "collect" then error(err, 0) end
        errs[i] = err
      else
        results[i] = v
        if opts.on_result then opts.on_result(v, i) end
      end
    end
    results.n = count
    if opts.errors == "collect" then return results, errs end
    return results
  end
  local results = core.newtable(n, 1)
  results.n = n
  if n == 0 then
    if opts.errors == "collect" then return results, {} end
    return results
  end
  local c = call_new(self, fn, opts, results)
  local size, a = chunk_size(self, opts, n), 1
  local window = 4 * self.n
  while true do
    while a <= n do
      local queued = self.T:pending()
      if queued >= window then break end
      local b = min(n, a + size - 1)
      call_push(c, items, a, b, a)
      a = b + 1
    end
    if c.broken then
      call_end(c)
      error(c.broken, 0)
    end
    if c.first_err and not c.collect then
      call_end(c)
      error(c.errs[c.first_err], 0)
    end
    if c.left == 0 and a > n then break end
    step(self, nil)
  end
  call_end(c)
  if c.collect then return results, c.errs end
  return results
end

--- for i, v [, err] in pool:imap(fn, items [, opts]) do ... end: par.imap's
-- contract: results as they finish (opts.ordered: in input order).  The
-- fourth value closes the stream: what it sent and has not run is
-- cancelled; the pool goes on.
function Pool:imap(fn_spec, items, opts)
  local fn, n
  fn, n, opts = map_args(self, "imap", fn_spec, items, opts)
  local sink = {}
  local c = call_new(self, fn, opts, sink)
  c.arrived, c.na = {}, 0
  local head, ordered, want = 1, opts.ordered, 1
  local got = {}                       -- ordered: arrived and not yet yielded
  local pulled, eof, buf = 0, n == 0, {}
  local size, grow = chunk_size(self, opts, n), not opts.chunksize
  size = size or 1
  local window = 2 * self.n + 2
  local over, spans = false, 0

  local function close()
    if over then return end
    over = true
    call_end(c)
  end

  local function refill()
    while not eof and self.T:pending() < window do
      local first = pulled + 1
      if n then
        local b = min(n, pulled + size)
        call_push(c, items, first, b, first)
        pulled = b
        eof = pulled >= n
      else
        local k = 0
        while k < size do
          local v = items()
          if v == nil then eof = true break end
          k = k + 1
          buf[k] = v
        end
        if k > 0 then
          call_push(c, buf, 1, k, first)
          pulled = pulled + k
        end
        for j = k, 1, -1 do buf[j] = nil end
        if grow and size < 1024 and c.spans > spans then  -- results came: grow
          size, spans = size * 2, c.spans
        end
      end
    end
  end

  -- The next index ready to yield, or nil.
  local function ready()
    local arrived = c.arrived
    if ordered then
      while head <= c.na do
        got[arrived[head]] = true
        arrived[head] = nil
        head = head + 1
      end
      head, c.na = 1, 0
      if got[want] then
        got[want] = nil
        want = want + 1
        return want - 1
      end
      return nil
    end
    if head <= c.na then
      local i = arrived[head]
      arrived[head] = nil
      head = head + 1
      if head > c.na then head, c.na = 1, 0 end
      return i
    end
    return nil
  end

  local function iterate()
    if over then return nil end
    while true do
      local i = ready()
      if i then
        local err = c.errs[i]
        if err ~= nil then
          c.errs[i] = nil
          if not c.collect then
            close()
            error(err, 0)
          end
          return i, nil, err
        end
        local v = sink[i]
        sink[i] = nil
        return i, v
      end
      if c.broken then
        close()
        error(c.broken, 0)
      end
      if self.state ~= "open" and self.state ~= "closing" then
        close()
        error("par.pool: imap on a " .. self.state .. " pool", 2)
      end
      local ok, why = pcall(refill)
      if not ok then
        close()
        error(why, 2)
      end
      if eof and c.left == 0 then
        close()
        return nil
      end
      step(self, nil)
    end
  end

  return iterate, nil, nil, setmetatable({}, { __close = close, __gc = close })
end

--- pool:close(): no new work; waits for what was submitted, then the
-- workers exit and are reaped.
function Pool:close()
  if self.state == "closed" or self.state == "terminated" then return end
  self.state = "closing"
  while next(self.waiting) ~= nil do
    local id, h = next(self.waiting)
    if getmetatable(h) == Call then self.waiting[id] = nil
    else step(self, nil) end
  end
  self.T:close()
  while not self.T:gone() do step(self, nil) end
  self.state = "closed"
end

--- pool:terminate(): kill the workers now; futures not finished fail with
-- "pool terminated".
function Pool:terminate()
  if self.state == "closed" or self.state == "terminated" then return end
  broken(self, "par.pool: pool terminated")
end

--- pool:pids(): the workers' process ids, now.
function Pool:pids()
  return self.T:stats().pids
end

--- pool:stats(): {pids, forks, defines}: forks and function definitions
-- sent so far.
function Pool:stats()
  return self.T:stats()
end

Pool.__name = "par.pool"
Pool.__tostring = function(p) return format("par.pool (%d workers, %s)", p.n, p.state) end
-- Leaving its scope normally waits for the work; by an error, terminates.
Pool.__close = function(p, err)
  if err ~= nil then p:terminate() else p:close() end
end
Pool.__gc = function(p) p.T:terminate() end

--- par.pool([n] [, opts]): n workers forked now (default par.cpus()); each
-- runs opts.init once.  An error in init fails the creation with the
-- worker's message; a failure of the system returns nil, msg, errno.
function M.pool(...)
  local opts, argn, why = options.args("pool", 1, ...)
  if not opts then argerror(argn, "pool", why, 2) end
  local n = opts.jobs or core.cpus()
  local T, err, tb = core.tasks(n, {
    init = opts.init, worker_memory = opts.worker_memory,
    max_tasks = opts.max_tasks, timeout = opts.timeout })
  if T == nil then return nil, err, tb end
  if T == false then error(failure("init", err, tb), 2) end
  return setmetatable({ T = T, n = n, nextid = 0, waiting = {}, npending = 0, ev = {},
    state = "open" }, Pool)
end

-- {======================================================================
-- Waiting on many futures
-- =======================================================================

local function check_futures(fname, futures)
  if type(futures) ~= "table" then
    argerror(1, fname, "table of futures expected, got " .. typename(futures), 3)
  end
  for i = 1, #futures do
    if getmetatable(futures[i]) ~= Future then
      argerror(1, fname, format("futures[%d] is a %s, not a future", i, typename(futures[i])), 3)
    end
  end
end

local function check_timeout(fname, argn, t)
  if t ~= nil and (type(t) ~= "number" or t ~= t or t < 0) then
    argerror(argn, fname, "non-negative number expected, got " .. typename(t), 3)
  end
end

-- One wait on behalf of 'futures' (those pending): step their pools, at
-- most 'left' seconds (nil: until something happens).
-- The pools of the futures still pending, once: a wait steps them.
local function pools_of(futures)
  local pools, seen = {}, {}
  for i = 1, #futures do
    local f = futures[i]
    if f.state == "pending" and not seen[f.pool] then
      seen[f.pool] = true
      pools[#pools + 1] = f.pool
    end
  end
  return pools
end

-- One wait on behalf of futures of 'pools': at most 'left' seconds (nil:
-- until something happens).
local function wait_some(pools, left)
  if #pools == 0 then return end
  if #pools == 1 then return step(pools[1], left) end
  for k = 1, #pools do
    if step(pools[k], 0) > 0 then return end
  end
  step(pools[1], min(left or huge, 0.002))
end

-- Watch the futures of a list: a queue that each one not yet finished
-- joins as it finishes; and how many were finished or are distinct.
local function watch(futures)
  local queue, seen, total, finished = { n = 0 }, {}, 0, {}
  for i = 1, #futures do
    local f = futures[i]
    if not seen[f] then
      seen[f] = true
      total = total + 1
      if f.state ~= "pending" then finished[#finished + 1] = f
      else
        local w = f.watchers or {}
        w[#w + 1] = queue
        f.watchers = w
      end
    end
  end
  return queue, finished, total
end

--- for f in par.as_completed(futures [, timeout]) do ... end: the futures
-- as they finish (those already finished first).  Past the timeout it
-- raises "par.as_completed: timeout (k of n futures not done)".
function M.as_completed(futures, timeout)
  check_futures("as_completed", futures)
  check_timeout("as_completed", 2, timeout)
  local deadline = timeout and monotime() + timeout
  local pools = pools_of(futures)
  local later, finished, total = watch(futures)
  local fi, head, yielded = 1, 1, 0
  return function()
    while true do
      if fi <= #finished then
        fi = fi + 1
        yielded = yielded + 1
        return finished[fi - 1]
      end
      if head <= later.n then          -- those that finished since
        local f = later[head]
        later[head] = nil
        head = head + 1
        yielded = yielded + 1
        return f
      end
      if yielded >= total then return nil end
      local l
      if deadline then
        l = deadline - monotime()
        if l <= 0 then
          error(format("par.as_completed: timeout (%d of %d futures not done)", total - yielded, total), 2)
        end
      end
      wait_some(pools, l)
    end
  end, nil, nil, nil
end

--- done, pending = par.wait(futures [, {any = true, timeout = s}]): wait
-- until every future is done (any: at least one); two sequences, in the
-- order of futures.
function M.wait(futures, opts)
  check_futures("wait", futures)
  local any, timeout = false, nil
  if opts ~= nil then
    if type(opts) ~= "table" then argerror(2, "wait", "table expected, got " .. typename(opts)) end
    for k, v in next, opts do
      if k == "any" then
        if type(v) ~= "boolean" then argerror(2, "wait", "option 'any': boolean expected, got " .. typename(v)) end
        any = v
      elseif k == "timeout" then check_timeout("wait", 2, v); timeout = v
      else argerror(2, "wait", format("unknown option '%s'", tostring(k))) end
    end
  end
  local deadline = timeout and monotime() + timeout
  local pools = pools_of(futures)
  local later, finished, total = watch(futures)
  while true do
    local ndone = #finished + later.n
    if ndone == total or (any and ndone > 0) then break end
    local l
    if deadline then
      l = deadline - monotime()
      if l <= 0 then break end
    end
    wait_some(pools, l)
  end
  local done, pending = {}, {}
  for i = 1, #futures do
    local f = futures[i]
    local t = f.state ~= "pending" and done or pending
    t[#t + 1] = f
  end
  return done, pending
end

-- }======================================================================

M.Future = Future
return M
