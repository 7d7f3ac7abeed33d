--- Argument checking shared by par's Lua layer.
-- Messages follow Lua's own: "bad argument #2 to 'run' (number expected, got nil)".
local M = {}

local type, error, format, next, rawlen, tostring = type, error, string.format, next, rawlen, tostring
local math_type = math.type

--- Raise "bad argument #i to 'fname' (msg)", blaming the caller of the API
-- function (level 3: skip argerror and the API function itself).
function M.argerror(i, fname, msg, level)
  error(format("bad argument #%d to '%s' (%s)", i, fname, msg), level or 3)
end

--- Name of a value's type as Lua's messages give it.
function M.typename(v)
  local mt = getmetatable(v)
  if type(mt) == "table" and type(mt.__name) == "string" then return mt.__name end
  return type(v)
end

-- par reads every table it is given raw (rawlen, rawget, next: no
-- metamethods), so that what the Lua layer checks is what the core and the
-- workers see.  A list object with a metatable for its methods works; a
-- proxy whose __len counts items it does not hold is refused (len_problem),
-- never taken for an empty list.

--- True when t is a table whose raw keys are exactly 1..n.
function M.is_sequence(t)
  local n = rawlen(t)
  local count = 0
  for k in next, t do
    if math_type(k) ~= "integer" or k < 1 or k > n then return false end
    count = count + 1
  end
  return count == n
end

--- Why #t (which __len may answer) is not t's raw length, or nil.
function M.len_problem(t)
  local raw, n = rawlen(t), #t
  if n == raw then return nil end
  return format("__len says %s but the raw length is %d; par reads tables raw, without metamethods",
    tostring(n), raw)
end

--- Quote a string for a POSIX shell, so that `sh -c` sees it as one word
-- (par.quote).  Numbers are quoted as their text.
function M.quote(s)
  if type(s) == "number" then s = tostring(s) end
  if type(s) ~= "string" then M.argerror(1, "quote", "string expected, got " .. M.typename(s)) end
  if s:find("\0", 1, true) then M.argerror(1, "quote", "string contains a NUL byte") end
  if s ~= "" and not s:find("[^%w@%%+=:,./_-]") then return s end
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

--- The shell line that runs argv 'words': each word quoted, space-separated.
function M.shell_line(words)
  local out = {}
  for i = 1, #words do out[i] = M.quote(rawget(words, i)) end
  return table.concat(out, " ")
end

--- Most jobs one host of opts.hosts ("N/host") may run at once.
M.MAX_SLOTS = 65536

--- Why 'h' cannot be a host of opts.hosts ("[N/]host", as ssh takes it;
-- ":" is this machine), or nil.  'what' names it ("host #2"), or nil.  A
-- name that begins with '-' would reach ssh as an option, and
-- -oProxyCommand=... runs a command here.
function M.host_problem(h, what)
  local label = what and what .. ": " or ""
  if type(h) ~= "string" or h == "" or h:find("[%s%z]") then
    return (what or "host") .. " must be a non-empty string without spaces"
  end
  local n, name = h:match("^(%d+)/(.*)$")
  if n then
    local slots = math.tointeger(tonumber(n))
    if name == "" or not slots or slots < 1 then return format("%sbad slot count in '%s'", label, h) end
    if slots > M.MAX_SLOTS then
      return format("%sbad slot count in '%s' (at most %d)", label, h, M.MAX_SLOTS)
    end
  end
  name = name or h
  if name:sub(1, 1) == "-" then
    return format("%s'%s' begins with '-' (ssh would take it for an option)", label, name)
  end
  return nil
end

--- Integer >= min, or nil with a reason.
function M.check_count(v, min)
  if math_type(v) ~= "integer" then
    if type(v) == "number" then return nil, "number has no integer representation" end
    return nil, "integer expected, got " .. M.typename(v)
  end
  if v < min then return nil, format("must be >= %d, got %d", min, v) end
  return v
end

--- Check an options table against a spec { name = checker }, where a checker
-- returns the normalised value or nil, reason.  Raises on an unknown option
-- (naming it) or a bad value.  Returns a new table of the checked options.
function M.check_opts(opts, spec, argn, fname, level)
  level = level or 4
  local out = {}
  for k, v in next, opts do
    local check = type(k) == "string" and spec[k]
    if not check then
      M.argerror(argn, fname, format("unknown option '%s'", tostring(k)), level)
    end
    local val, why = check(v)
    if val == nil then
      M.argerror(argn, fname, format("option '%s': %s", k, why), level)
    end
    out[k] = val
  end
  return out
end

--- The optional count and options of fname(x, y [, n] [, opts]), from the
-- arguments at position 'first' on (the ...).  'count' checks n (n, or nil,
-- why), 'key' is the option n stands for, 'spec' the options' checkers (as
-- for check_opts).  Returns the checked options, with opts[key] = n, and
-- the position they came from.  A value past them is a bad argument, and
-- so is an opts[key] that contradicts n.  'level' blames the caller of the
-- API function, as in argerror, counted from here.
function M.count_opts(fname, first, spec, key, count, level, ...)
  local a, b = ...
  local opts, argn, n = {}, first, nil
  if type(a) == "table" then
    opts, b = M.check_opts(a, spec, first, fname, level + 1), nil
  elseif a ~= nil then
    local why
    n, why = count(a)
    if n == nil then M.argerror(first, fname, why, level) end
  end
  if b ~= nil then
    if type(b) ~= "table" then M.argerror(first + 1, fname, "table expected, got " .. M.typename(b), level) end
    opts, argn = M.check_opts(b, spec, first + 1, fname, level + 1), first + 1
    if n ~= nil and opts[key] ~= nil and opts[key] ~= n then
      M.argerror(argn, fname, format("option '%s' contradicts argument #%d", key, first), level)
    end
  end
  for i = type(a) == "table" and 2 or 3, select("#", ...) do
    if select(i, ...) ~= nil then M.argerror(first + i - 1, fname, "no value expected", level) end
  end
  if n ~= nil then opts[key] = n end
  return opts, argn
end

--- Checkers for check_opts.
function M.boolean(v)
  if type(v) ~= "boolean" then return nil, "boolean expected, got " .. M.typename(v) end
  return v
end

function M.positive_integer(v) return M.check_count(v, 1) end
function M.nonneg_integer(v) return M.check_count(v, 0) end

function M.positive_number(v)
  if type(v) ~= "number" then return nil, "number expected, got " .. M.typename(v) end
  if not (v > 0) or v == math.huge then return nil, "must be a finite number > 0" end -- luacheck: ignore 581 (NaN)
  return v
end

function M.nonneg_number(v)
  if type(v) ~= "number" then return nil, "number expected, got " .. M.typename(v) end
  if not (v >= 0) or v == math.huge then return nil, "must be a finite number >= 0" end -- luacheck: ignore 581 (NaN)
  return v
end

function M.func(v)
  if type(v) ~= "function" then return nil, "function expected, got " .. M.typename(v) end
  return v
end

function M.string(v)
  if type(v) ~= "string" then return nil, "string expected, got " .. M.typename(v) end
  return v
end

--- A checker for true, false or one word, such as progress = "always".
function M.boolean_or(word)
  return function(v)
    if type(v) == "boolean" or v == word then return v end
    return nil, format("boolean or '%s' expected, got %s", word,
      type(v) == "string" and ("'" .. v .. "'") or M.typename(v))
  end
end

function M.oneof(...)
  local names = { ... }
  local set = {}
  for _, n in ipairs(names) do set[n] = true end
  return function(v)
    if set[v] then return v end
    return nil, "expected one of " .. table.concat(names, ", ") .. ", got "
      .. (type(v) == "string" and ("'" .. v .. "'") or M.typename(v))
  end
end

return M
