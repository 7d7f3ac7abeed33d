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

--- A bad value as messages show it: a string in quotes, NUL bytes as \0
-- (the core's messages stop at a NUL), else the name of its type.
function M.shown(v)
  if type(v) == "string" then return "'" .. v:gsub("%z", "\\0") .. "'" end
  return M.typename(v)
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

--- The partitions { {lo, hi}, ... } covering first..last in blocks of size;
-- the last block may be short, and first > last gives no block.
function M.ranges(first, last, size)
  for i = 1, 3 do
    local v = select(i, first, last, size)
    if math.type(v) ~= "integer" then
      M.argerror(i, "ranges", type(v) == "number" and "number has no integer representation"
        or "integer expected, got " .. M.typename(v))
    end
  end
  if size < 1 then M.argerror(3, "ranges", "block size must be >= 1, got " .. size) end
  local out = {}
  if first > last then return out end
  if last - first < 0 then M.argerror(2, "ranges", "range too large") end
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

--- Integer >= min, or nil with a reason.  A float with an exact integer
-- value counts as that integer, as luaL_checkinteger has it.
function M.check_count(v, min)
  local i = math_type(v) and math.tointeger(v)
  if not i then
    if type(v) == "number" then return nil, "number has no integer representation" end
    return nil, "integer expected, got " .. M.typename(v)
  end
  if i < min then return nil, format("must be >= %d, got %d", min, i) end
  return i
end

--- Checkers: value -> value, or nil, why (options.lua uses them).
function M.boolean(v)
  if type(v) ~= "boolean" then return nil, "boolean expected, got " .. M.typename(v) end
  return v
end

function M.positive_integer(v) return M.check_count(v, 1) end
function M.nonneg_integer(v) return M.check_count(v, 0) end

function M.positive_number(v)
  if type(v) ~= "number" then return nil, "number expected, got " .. M.typename(v) end
  if not (v > 0) or v == math.huge then -- luacheck: ignore 581 (NaN)
    return nil, "must be a finite number > 0, got " .. tostring(v)
  end
  return v
end

function M.nonneg_number(v)
  if type(v) ~= "number" then return nil, "number expected, got " .. M.typename(v) end
  if not (v >= 0) or v == math.huge then -- luacheck: ignore 581 (NaN)
    return nil, "must be a finite number >= 0, got " .. tostring(v)
  end
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
    return nil, format("boolean or '%s' expected, got %s", word, M.shown(v))
  end
end

function M.oneof(...)
  local names = { ... }
  local set = {}
  for _, n in ipairs(names) do set[n] = true end
  return function(v)
    if set[v] then return v end
    return nil, "expected one of " .. table.concat(names, ", ") .. ", got " .. M.shown(v)
  end
end

return M
