--- The par command's output: stdout writes that stop the run when the reader
-- goes away, the printer of job output blocks (grouped, in completion or
-- input order, tagged, verbose), and par map's results as JSON or Lua
-- literals, one a line.
local core = require "par.core"
local util = require "par.util"
local errors = require "par.cli.errors"

local M = {}

local type, pairs, ipairs, tostring, error, pcall = type, pairs, ipairs, tostring, error, pcall
local format, concat = string.format, table.concat
local typename = util.typename

local EPIPE = 32

-- Write to stdout, or stop: a reader that went away (`par ... | head -1`)
-- ends the run as SIGPIPE would, also where the host ignores SIGPIPE; any
-- other failure to write is an error of its own.
local function check_out(ok, err, code)
  if ok then return end
  if code == EPIPE then errors.pipe() end
  errors.system("stdout: " .. tostring(err))
end

--- Write to stdout; see check_out for what a failed write does.
function M.put(...)
  check_out(io.stdout:write(...))
end

--- Flush stdout, as put writes.
function M.flush_out()
  check_out(io.stdout:flush())
end

local put, flush_out = M.put, M.flush_out

-- {======================================================================
-- Job output: grouped (one block per job), line-buffered or ungrouped

-- A job's grouped output is held in memory up to SPILL bytes per stream,
-- and all jobs' together up to HELD; past either it goes to an unlinked
-- temporary file, copied out when the job's turn comes, as GNU parallel
-- does.  So no output is ever cut short, and a -k run waiting on one slow
-- job holds the others' output on disk, not in memory.
M.SPILL = 1024 * 1024
M.HELD = 16 * 1024 * 1024
local PIECE = 65536             -- a spilled file is copied out in pieces of this size

local function check_tmp(ok, err)
  if not ok then errors.system("temporary file: " .. tostring(err)) end
  return ok
end

-- A held stream of one job: strings in memory, or a temporary file.
local Held = {}
Held.__index = Held

local function new_held(pool)
  return setmetatable({ parts = {}, n = 0, pool = pool }, Held)
end

function Held:spill()
  local f = check_tmp(io.tmpfile())
  check_tmp(f:write(concat(self.parts)))
  self.pool.bytes = self.pool.bytes - self.n
  self.parts, self.n, self.file = nil, 0, f
end

function Held:add(s)
  if self.file then check_tmp(self.file:write(s)); return end
  self.parts[#self.parts + 1] = s
  self.n = self.n + #s
  self.pool.bytes = self.pool.bytes + #s
  if self.n > M.SPILL or self.pool.bytes > M.HELD then self:spill() end
end

-- Let go of what is held, unread.
function Held:clear()
  if self.file then self.file:close() else self.pool.bytes = self.pool.bytes - self.n end
  self.parts, self.n, self.file = {}, 0, nil
end

-- Hand what is held to fn(piece), in order, and let it go.
function Held:drain(fn)
  local f = self.file
  if f then
    check_tmp(f:seek("set"))
    while true do
      local piece = f:read(PIECE)
      if not piece then break end
      fn(piece)
    end
    f:close()
  else
    for _, piece in ipairs(self.parts) do fn(piece) end
    self.pool.bytes = self.pool.bytes - self.n
  end
  self.parts, self.n, self.file = {}, 0, nil
end

--- A tagger: function(s) -> s with "tag\t" at the start of each line, for
-- text that arrives in pieces (a line split across pieces is tagged once);
-- the identity when 'tag' is nil.
function M.tagger(tag)
  if tag == nil then return function(s) return s end end
  local pre = tag .. "\t"
  local rep = pre:gsub("%%", "%%%%")
  local at_start = true
  return function(s)
    if s == "" then return s end
    local out = s:gsub("\n", "\n" .. rep)
    if at_start then out = pre .. out end
    at_start = s:byte(-1) == 10
    if at_start then out = out:sub(1, -#pre - 1) end
    return out
  end
end

local function why_failed(res)
  if res.status == "exit" then return "exit " .. tostring(res.code) end
  if res.status == "signal" then return "signal " .. tostring(res.signal) end
  if res.status == "timeout" then return "timeout" end
  if res.status == "error" then return tostring(res.error) end
  return res.status
end

local function write_err(s)
  io.stderr:write(s)
end

--- The printer of job output, fed as jobs start, as their output arrives
-- and as they end:
--   p.start(i, job)           job i ({ text, tag }) was read
--   p.has(i)                  whether job i was started and is not printed yet
--   p.chunk(i, stream, s)     job i wrote s on stream ("stdout", "stderr")
--   p.done(i, res)            job i ended (res.status "skipped": it never ran)
--   p.flush()                 at the end, or an interrupt: print what ended
-- o.ungroup passes output through as it arrives, o.line_buffer whole lines
-- as they arrive, otherwise each job's output is one block when it ends.
-- o.keep_order prints in input order: only the first job not yet printed
-- passes through; the others are held, as grouped output is, until their
-- turn.  Nothing of a job is kept after its output is printed; then
-- after(i, res), if given, is called (the joblog line follows the output).
function M.printer(o, after)
  local mode = o.ungroup and "ungroup" or o.line_buffer and "line" or "group"
  local clear_bar = o.progress == "always" or (o.progress and core.isatty(2))
  local pool = { bytes = 0 }
  local jobs, head = {}, 1          -- head: the first job not yet printed (keep_order)
  local p = {}

  local function write(stream, s)
    if s == "" then return end
    if clear_bar then io.stderr:write("\r\27[K") end
    if stream == "stdout" then put(s) else write_err(s) end
  end

  local function flush_both()
    flush_out()
    io.stderr:flush()
  end

  -- Output of a job that passes through now: as it is, or whole lines.
  local function pass(job, stream, s)
    local tag = job.taggers[stream]
    if mode ~= "line" then return write(stream, tag(s)) end
    local partial = job.partial[stream]
    local last = s:find("\n[^\n]*$")
    if not last then partial[#partial + 1] = s; return end
    partial[#partial + 1] = s:sub(1, last)
    write(stream, tag(concat(partial)))
    job.partial[stream] = { s:sub(last + 1) }
  end

  -- Job 'job' passes through from now on: first what it held.
  local function go_live(job)
    job.live = true
    if o.verbose then write("stdout", job.taggers.stdout(job.text .. "\n")) end
    for _, stream in ipairs({ "stdout", "stderr" }) do
      job.held[stream]:drain(function(s) pass(job, stream, s) end)
    end
    flush_both()
  end

  -- Print the rest of job i, ended with 'res', and forget it.
  local function finish(i, job, res)
    jobs[i] = nil
    if not job.live then
      if res.status ~= "skipped" and o.verbose then write("stdout", job.taggers.stdout(job.text .. "\n")) end
      for _, stream in ipairs({ "stdout", "stderr" }) do
        local tag = job.taggers[stream]
        job.held[stream]:drain(function(s) write(stream, tag(s)) end)
      end
    elseif mode == "line" then      -- a last line without its newline
      for _, stream in ipairs({ "stdout", "stderr" }) do
        write(stream, job.taggers[stream](concat(job.partial[stream])))
      end
    end
    flush_out()
    -- commands that fail without a word of their own get one from par; not
    -- those par stopped (a signal to par says "interrupted" once, a halt
    -- names the job that caused it)
    if not res.ok and res.status ~= "skipped" and not res.stopped and (o.verbose or res.status ~= "exit") then
      write_err(format("par: job %d failed (%s): %s\n", i, why_failed(res), job.text))
    end
    if res.truncated then
      write_err(format("par: job %d: output truncated: %s\n", i, job.text))
    end
    io.stderr:flush()
    if after then after(i, res) end
  end

  -- keep_order: print every ended job from head on, and let the next one
  -- that runs pass through.
  local function advance()
    while jobs[head] and jobs[head].res do
      local job = jobs[head]
      finish(head, job, job.res)
      head = head + 1
    end
    local job = jobs[head]
    if job and mode ~= "group" and not job.live then go_live(job) end
  end

  function p.start(i, job)
    local tag = (o.tag or o.tagstring) and job.tag
    job.taggers = { stdout = M.tagger(tag), stderr = M.tagger(tag) }
    job.held = { stdout = new_held(pool), stderr = new_held(pool) }
    job.partial = { stdout = {}, stderr = {} }
    jobs[i] = job
    if mode ~= "group" and (not o.keep_order or i == head) then go_live(job) end
  end

  --- Job i's tag changed (its {%} is known once it starts).
  function p.retag(i)
    local job = jobs[i]
    local tag = (o.tag or o.tagstring) and job.tag
    job.taggers = { stdout = M.tagger(tag), stderr = M.tagger(tag) }
  end

  function p.has(i)
    return jobs[i] ~= nil
  end

  function p.chunk(i, stream, s)
    local job = jobs[i]
    if stream == "retry" then       -- GNU parallel prints only the last try's output
      if not job.live then job.held.stdout:clear(); job.held.stderr:clear() end
      return
    end
    if job.live then
      pass(job, stream, s)
      if stream == "stdout" then flush_out() else io.stderr:flush() end
    else
      job.held[stream]:add(s)
    end
  end

  function p.done(i, res)
    local job = jobs[i]
    if not o.keep_order then return finish(i, job, res) end
    job.res = res
    if i == head then advance() end
  end

  function p.flush()
    local order = {}
    for i in pairs(jobs) do order[#order + 1] = i end
    table.sort(order)
    for _, i in ipairs(order) do
      local job = jobs[i]
      if job.res then finish(i, job, job.res) end
    end
  end

  return p
end

-- }======================================================================

-- {======================================================================
-- par map: results as JSON or Lua literals, one per line

local function json_encoder()
  local ok, cjson = pcall(require, "cjson")
  if ok then
    local enc = cjson.new and cjson.new() or cjson
    return function(v)
      -- lua-cjson writes "/" as "\/"; undo it, stepping over escape pairs
      return (enc.encode(v):gsub("\\(.)", function(c) if c == "/" then return "/" end end))
    end
  end
  local ok2, dkjson = pcall(require, "dkjson")
  if ok2 then
    return function(v)
      local s, err = dkjson.encode(v)
      if not s then error(err, 0) end
      return s
    end
  end
  errors.usage("--format json needs lua-cjson or dkjson (Debian: apt-get install lua-cjson), or use --format lua")
end

local KEYWORDS = {}
for w in ([[and break do else elseif end false for function goto if in local nil not or
  repeat return then true until while]]):gmatch("%a+") do KEYWORDS[w] = true end

local function lua_number(x)
  if math.type(x) == "integer" then return format("%d", x) end
  if x ~= x then return "0/0" end
  if x == math.huge then return "1/0" end
  if x == -math.huge then return "-1/0" end
  local s
  for prec = 14, 17 do
    s = format("%." .. prec .. "g", x)
    if tonumber(s) == x then break end
  end
  if not s:find("[.eEn]") then s = s .. ".0" end
  return s
end

local function lua_string(s)
  return (format("%q", s):gsub("\\\n", "\\n"):gsub("\r", "\\r"))
end

--- A Lua literal for v (one line): sequences as {a, b}, then other keys sorted.
function M.lua_literal(v, seen)
  local t = type(v)
  if t == "nil" or t == "boolean" then return tostring(v) end
  if t == "number" then return lua_number(v) end
  if t == "string" then return lua_string(v) end
  if t ~= "table" then error("cannot write a " .. typename(v) .. " as a Lua literal", 0) end
  seen = seen or {}
  if seen[v] then error("cannot write a table that contains itself", 0) end
  seen[v] = true
  local parts, n = {}, #v
  for i = 1, n do parts[i] = M.lua_literal(v[i], seen) end
  local keys = {}
  for k in pairs(v) do
    if not (math.type(k) == "integer" and k >= 1 and k <= n) then keys[#keys + 1] = k end
  end
  table.sort(keys, function(a, b)
    if type(a) == type(b) and (type(a) == "number" or type(a) == "string") then return a < b end
    return type(a) < type(b)
  end)
  for _, k in ipairs(keys) do
    local key = type(k) == "string" and k:find("^[%a_][%w_]*$") and not KEYWORDS[k] and k
      or "[" .. M.lua_literal(k, seen) .. "]"
    parts[#parts + 1] = key .. " = " .. M.lua_literal(v[k], seen)
  end
  seen[v] = nil
  return "{" .. concat(parts, ", ") .. "}"
end

local function first_line(s)
  return (tostring(s):match("^[^\n]*"))
end

--- Say on stderr that an item of par map failed: the first line of 'err'
-- only, unless 'verbose'.
function M.item_error(err, verbose)
  local msg = tostring(err):gsub("^par%.map: ", "")
  io.stderr:write("par: ", verbose and msg or first_line(msg), "\n")
  io.stderr:flush()
end

--- A writer of par map's results as 'fmt' ("json" or "lua"), one a line:
-- function(results, errs) -> the number of items that failed.  Made before
-- the map runs, so that a missing JSON library is said before any work.
function M.results_writer(fmt, verbose)
  local encode = fmt == "json" and json_encoder() or M.lua_literal
  return function(results, errs)
    local nfailed = 0
    for i = 1, results.n do
      local err = errs and errs[i]
      local line
      if err == nil then
        local eok, s = pcall(encode, results[i])
        if eok then
          line = s
        else
          err = format("item %d: cannot write the result as %s: %s", i, fmt, first_line(s))
        end
      end
      if err ~= nil then
        nfailed = nfailed + 1
        M.item_error(err, verbose)
        line = fmt == "json" and "null" or "nil"
      end
      put(line, "\n")
    end
    flush_out()
    return nfailed
  end
end

-- }======================================================================

return M
