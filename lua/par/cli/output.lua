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
-- Job output blocks

-- Each line of s prefixed with 'tag' and a tab.
local function tagged(s, tag)
  if tag == nil or s == "" then return s end
  local out = {}
  for line, nl in s:gmatch("([^\n]*)(\n?)") do
    if line == "" and nl == "" then break end
    out[#out + 1] = tag .. "\t" .. line .. nl
  end
  return concat(out)
end

local function why_failed(res)
  if res.status == "exit" then return "exit " .. tostring(res.code) end
  if res.status == "signal" then return "signal " .. tostring(res.signal) end
  if res.status == "timeout" then return "timeout" end
  if res.status == "error" then return tostring(res.error) end
  return res.status
end

--- The printer: writes each job's output as one block, in completion order
-- or (keep_order) in input order; 'skip' holds the indices that will never
-- end (resumed from the joblog).
function M.printer(o, jobs, skip)
  local pending, nextp = {}, 1
  local clear_bar = o.progress == "always" or (o.progress and core.isatty(2))
  local function emit(i, res)
    local job = jobs[i]
    if clear_bar then io.stderr:write("\r\27[K") end
    if o.verbose then put(job.text, "\n") end
    if res.stdout and res.stdout ~= "" then put(tagged(res.stdout, o.tag and job.tag)) end
    flush_out()
    if res.stderr and res.stderr ~= "" then io.stderr:write(tagged(res.stderr, o.tag and job.tag)) end
    -- commands that fail without a word of their own get one from par
    if not res.ok and res.status ~= "skipped" and (o.verbose or res.status ~= "exit") then
      io.stderr:write(format("par: job %d failed (%s): %s\n", i, why_failed(res), job.text))
    end
    if res.truncated then
      io.stderr:write(format("par: job %d: output truncated: %s\n", i, job.text))
    end
    io.stderr:flush()
  end
  local p = {}
  function p.done(res, i)
    if not o.keep_order then return emit(i, res) end
    pending[i] = res
    while nextp <= #jobs do
      if skip[nextp] ~= nil then
        nextp = nextp + 1
      elseif pending[nextp] then
        emit(nextp, pending[nextp])
        pending[nextp] = nil
        nextp = nextp + 1
      else
        break
      end
    end
  end
  function p.flush()
    for i = 1, #jobs do
      if pending[i] then emit(i, pending[i]); pending[i] = nil end
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
