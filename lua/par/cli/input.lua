--- The par command's input, as GNU parallel reads it: input sources (the
-- arguments after each ::: and :::+, the files after :::: and ::::+ and of
-- each -a, or stdin), their values split at -d (newline; NUL with -0),
-- trimmed (--trim), cut at -E, split into columns (--colsep), named by a
-- --header; and the records they make: every combination of the sources,
-- the last varying fastest, linked sources (:::+, --link) taken side by
-- side.  A single file or stdin is read as it arrives.
local core = require "par.core"
local errors = require "par.cli.errors"

local M = {}

local ipairs = ipairs
local format = string.format
local usage_error = errors.usage

-- {======================================================================
-- Values

local TRIM = {
  n = function(v) return v end,
  l = function(v) return (v:gsub("^%s+", "")) end,
  r = function(v) return (v:gsub("%s+$", "")) end,
  lr = function(v) return (v:match("^%s*(.-)%s*$")) end,
}
TRIM.rl = TRIM.lr

-- GNU's --colsep is a Perl regexp; the common ones (a character, \t, \s+,
-- a class) become a Lua pattern.
local PERL_ESCAPES = { t = "\t", n = "\n", s = "%s", S = "%S", d = "%d", D = "%D", w = "[%w_]", W = "[^%w_]" }
local function colsep_pattern(re)
  local out, i = {}, 1
  local class = false
  while i <= #re do
    local c = re:sub(i, i)
    if c == "\\" and i < #re then
      local n = re:sub(i + 1, i + 1)
      out[#out + 1] = PERL_ESCAPES[n] or ("%" .. n)
      i = i + 2
    else
      if c == "[" then class = true elseif c == "]" then class = false end
      if c == "%" or (c == "-" and not class) then c = "%" .. c end
      if c == "|" or c == "(" or c == ")" or c == "{" then
        usage_error("--colsep: the regexp '" .. re .. "' is beyond what par reads (a character, \\t, \\s+, [class]+)")
      end
      out[#out + 1] = c
      i = i + 1
    end
  end
  return table.concat(out)
end

-- A function(value) -> the value's columns (a list), for --colsep.
local function splitter(sep)
  local pat = colsep_pattern(sep)
  if ("x"):find(pat) or (""):find(pat) then
    usage_error("--colsep: '" .. sep .. "' matches the empty string")
  end
  return function(v)
    local cols, at = {}, 1
    while true do
      local s, e = v:find(pat, at)
      if not s then break end
      cols[#cols + 1] = v:sub(at, s - 1)
      at = e + 1
    end
    cols[#cols + 1] = v:sub(at)
    return cols
  end
end

M.splitter = splitter               -- for --shard and --bin (par.cli.pipe)

-- The file of 'path' (stdin if "-") and its name for messages.
local function open_input(path)
  if path == "-" then return io.stdin, "stdin" end
  local f, err = io.open(path, "rb")
  if not f then usage_error(err) end
  return f, path
end

-- The reader of a file's values as they arrive: function([wait]) ->
-- value; false, fd when no whole one is there yet (with 'block' or 'wait'
-- it waits itself); nil at the end.  'accept(v)' is the filter of -r, -E, --trim:
-- a value, false to skip it, nil to end the input.
local function file_values(path, sep, accept, block)
  local f, name = open_input(path)
  local r = core.lines(f, sep)
  local n = 0
  local function finish()
    r:close()
    if f ~= io.stdin then f:close() end
    f = nil
  end
  return function(wait)
    while f do
      local rec, err = r:read()
      if rec == nil then
        finish()
        if err then usage_error(format("%s: %s", name, err)) end
        return nil
      elseif rec == false then
        if not (block or wait) then return false, r:fd() end
        r:wait()
      else
        n = n + 1
        if sep ~= "\0" and rec:find("\0", 1, true) then
          usage_error(format("%s:%d: input %d contains a NUL byte (use -0 for NUL-separated input)",
            name, n, n))
        end
        local v = accept(rec)
        if v == nil then finish(); return nil end
        if v then return v end
      end
    end
    return nil
  end
end

-- }======================================================================

-- {======================================================================
-- Records

-- The filter of -E, -r and --trim.
local function acceptor(o)
  local trim = TRIM[o.trim or "n"]
  local eof, skip_empty = o.eof, o.no_run_if_empty
  local ended = false
  return function(v)
    if ended then return nil end
    if eof and v == eof then ended = true; return nil end
    if skip_empty and not v:find("%S") then return false end
    return trim(v)
  end
end

-- Every value of a source, read now: a list.
local function all_values(src, o, sep)
  if src.values then
    local accept, out = acceptor(o), {}
    for _, v in ipairs(src.values) do
      local a = accept(v)
      if a == nil then break end
      if a then out[#out + 1] = a end
    end
    return out
  end
  local next_value, out = file_values(src.path, sep, acceptor(o), true), {}
  for v in next_value do out[#out + 1] = v end
  return out
end

--- The input sources of the command line: plan.sources ({ values } for
-- :::, { path } for ::::, each with 'linked' for :::+ and ::::+), after
-- those of -a; stdin when there is none.
function M.sources(o, plan)
  local list = {}
  for _, path in ipairs(o.arg_file or {}) do list[#list + 1] = { path = path } end
  for _, s in ipairs(plan.sources or {}) do list[#list + 1] = s end
  if #list == 0 then list[1] = { path = "-" } end
  return list
end

--- The records of the input: an iterator of lists of values, as
-- file_values's (false, fd while waiting unless 'block'), the header's
-- names ({ name = position }) with --header, and whether the input is
-- all in memory already (not one file read as it arrives).  'o' holds -d, -0, --trim,
-- -E, -r, --colsep, --header, --link.
function M.records(o, plan, block)
  local sources = M.sources(o, plan)
  local sep = o.delimiter or (o.null and "\0") or "\n"
  local split = o.colsep and splitter(o.colsep)
  local names = o.header and {}
  local trim = o.trim and o.trim ~= "n" and TRIM[o.trim]
  local function columns(v)
    if not split then return { v } end
    local cols = split(v)
    if trim then                        -- as GNU parallel: each column trimmed too
      for k, c in ipairs(cols) do cols[k] = trim(c) end
    end
    return cols
  end
  -- a header is the first value of each source
  local function take_header(cols, at)
    for k, name in ipairs(cols) do names[name] = at + k - 1 end
  end

  if #sources == 1 and sources[1].path then
    local next_value = file_values(sources[1].path, sep, acceptor(o), block)
    if names then
      local h = next_value(true)
      if h then take_header(columns(h), 1) end
    end
    return function(wait)
      local v, fd = next_value(wait)
      if not v then return v, fd end
      return columns(v)
    end, names
  end

  -- several sources (or ::: arguments): read them all, then combine
  local lists = {}
  for k, s in ipairs(sources) do
    local vals = all_values(s, o, sep)
    local rows = {}
    for i, v in ipairs(vals) do rows[i] = columns(v) end
    lists[k] = { rows = rows, linked = s.linked or (o.link and k > 1) }
  end
  local groups, width = {}, 0
  local some = false                   -- a source has a value (past its header)
  for _, l in ipairs(lists) do some = some or #l.rows > (names and 1 or 0) end
  for _, l in ipairs(lists) do
    if names then
      local h = table.remove(l.rows, 1)
      if h then take_header(h, width + 1) end
    end
    -- as GNU parallel's first combination takes one value of each source:
    -- an empty one gives "", unless every one is empty
    if some and #l.rows == 0 then l.rows[1] = columns("") end
    width = width + (l.rows[1] and #l.rows[1] or 1)
    if l.linked and #groups > 0 then
      local g = groups[#groups]
      g[#g + 1] = l
    else
      groups[#groups + 1] = { l }
    end
  end
  -- a group's rows: its sources side by side; --link wraps the shorter
  -- ones around, :::+ stops at the shortest
  local grouped = {}
  for gi, g in ipairs(groups) do
    local n = #g[1].rows
    for _, l in ipairs(g) do
      if o.link then n = math.max(n, #l.rows) else n = math.min(n, #l.rows) end
    end
    local rows = {}
    for i = 1, n do
      local row = {}
      for _, l in ipairs(g) do
        local r = l.rows[(i - 1) % math.max(#l.rows, 1) + 1] or {}
        table.move(r, 1, #r, #row + 1, row)
      end
      rows[i] = row
    end
    grouped[gi] = rows
  end
  local ng = #grouped
  for _, rows in ipairs(grouped) do
    if #rows == 0 then return function() return nil end, names, true end
  end
  local at = {}
  for gi = 1, ng do at[gi] = 1 end
  local over = ng == 0
  return function()
    if over then return nil end
    local rec = {}
    for gi = 1, ng do
      local r = grouped[gi][at[gi]]
      table.move(r, 1, #r, #rec + 1, rec)
    end
    -- the next combination: the last group fastest
    local gi = ng
    while gi >= 1 do
      at[gi] = at[gi] + 1
      if at[gi] <= #grouped[gi] then break end
      at[gi] = 1
      gi = gi - 1
    end
    if gi == 0 then over = true end
    return rec
  end, names, true
end

-- }======================================================================

return M
