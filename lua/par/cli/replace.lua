--- GNU parallel's replacement strings: a command template compiled once,
-- then expanded for each job.
--
--   {}  {.}  {/}  {//}  {/.}    the arguments; without extension, basename,
--                               dirname, basename without extension
--   {N} {-N} {N.} {N/} ...      the Nth value (of an input source, a column,
--                               or an argument of the job); -N counts back
--   {#} {%}                     the job's sequence number and its slot
--   {= code =} {=N code =}      a Lua expression (or statements) over _
--   --plus: {##} {0#} {0%} {+/} {+.} {..} {+..} {...} {+...} {/..} {/...}
--          {slot} ($PARALLEL_JOBSLOT)
--   --plus, as bash: {:-str} {:N} {:N:M} {#re} {##re} {%re} {%%re}
--          {/re/str} {//re/str} {/#re/str} {/%re/str} {^re} {^^re} {,re} {,,re}
--          (re a Perl regexp, par.cli.regexp; all positional too: {2#re})
--   --rpl '{TAG} code'          a replacement string of one's own
--
-- A value is quoted for the shell as GNU parallel quotes it; a job's values
-- are joined by spaces.  A template without any replacement string gets
-- the arguments appended.
local errors = require "par.cli.errors"
local regexp = require "par.cli.regexp"

local M = {}

local type, tostring, tonumber, ipairs, pairs, pcall, load, setmetatable =
  type, tostring, tonumber, ipairs, pairs, pcall, load, setmetatable
local format, concat, upper, lower = string.format, table.concat, string.upper, string.lower
local min = math.min
local usage_error = errors.usage

--- The placeholder the core replaces by a job's slot when it starts it
-- (par.run's slotmark): {%} has no value before then.
M.SLOTMARK = "\27%slot\27"

--- s with each SLOTMARK in it made 'slot' (digits).
function M.with_slot(s, slot)
  return (s:gsub("\27%%slot\27", slot))
end

--- s quoted for the shell as GNU parallel quotes it: left alone when it
-- holds only letters, digits and -./+_, otherwise in single quotes.
function M.quote(s)
  if s ~= "" and not s:find("[^%w%-%./+_]") then return s end
  return "'" .. s:gsub("'", "'\"'\"'") .. "'"
end

-- {======================================================================
-- Modifiers: what {N<mod>} and {<mod>} do to a value

local function dirname(v)
  local s = v:gsub("/+$", "")
  if s == "" then return v == "" and "." or "/" end
  local d = s:match("^(.*)/[^/]*$")
  if not d then return "." end
  d = d:gsub("/+$", "")
  return d == "" and "/" or d
end

local function noext(v) return (v:gsub("%.[^./]*$", "")) end
local function base(v) return v:match("[^/]*$") end

-- --plus: {+/} the directory part ({} is {+/}/{/}), {+.} the extension
-- ({} is {.}.{+.}); {..} and {...} drop two and three extensions when
-- there are that many, {+..} and {+...} are what they drop.
local function exts(v, n)
  local b = base(v)
  local pat = "^(.-)(" .. ("%.[^./]+"):rep(n) .. ")$"
  local head, tail = b:match(pat)
  if not head or head == "" then return v, "" end
  return v:sub(1, #v - #tail), tail:sub(2)
end

local MODS = {
  [""] = function(v) return v end,
  ["."] = noext,
  ["/"] = base,
  ["//"] = dirname,
  ["/."] = function(v) return noext(base(v)) end,
}

local PLUS_MODS = {
  ["+/"] = function(v) return v:match("^(.*)/[^/]*$") or "" end,
  ["+."] = function(v) return base(v):match("^.+%.([^.]*)$") or "" end,
  [".."] = function(v) return (exts(v, 2)) end,
  ["+.."] = function(v) return select(2, exts(v, 2)) end,
  ["..."] = function(v) return (exts(v, 3)) end,
  ["+..."] = function(v) return select(2, exts(v, 3)) end,
  ["/.."] = function(v) return (exts(base(v), 2)) end,
  ["/..."] = function(v) return (exts(base(v), 3)) end,
}

-- }======================================================================

-- {======================================================================
-- --plus's bash-like strings: GNU parallel's --rpl definitions of them
-- (%Global::plus), each a Perl s/// with the user's text as its regexp

-- A Perl regexp of the text of a --plus string 'token', or the end.
local function perl_regexp(re, token)
  local rx, err = regexp.compile(re)
  if not rx then errors.config(format("--plus's %s: the Perl regexp %s", token, err)) end
  return rx
end

-- s/rx/repl/ (g: every match), repl(whole, caps) -> text.  The matcher
-- recurses once a repeat of a group: a long enough value overflows it.
local function subst(re, token, repl, g)
  local rx = perl_regexp(re, token)
  return function(v)
    local ok, r = pcall(regexp.gsub, rx, v, repl, g)
    if ok then return r end
    errors.rethrow_interrupt(r)
    if type(r) == "string" and r:find("stack overflow", 1, true) then
      errors.config(format("--plus's %s: a value of %d bytes is too long for its regexp", token, #v))
    end
    error(r, 0)
  end
end

local function first_cap(_, caps) return caps[1] or "" end
local function text_of(str) return function() return str end end
local function upper_cap(_, caps) return upper(caps[1]) end
local function lower_cap(_, caps) return lower(caps[1]) end

-- A number of {:N:M} that string.sub takes (Perl's substr, huge or not).
local function count(n) return min(tonumber(n), 2 ^ 31) // 1 end

-- GNU's s/FMT/REPL/ (g: every match), the user's text in FMT at %s (at
-- %u: made ungreedy first, GNU's make_regexp_ungreedy); REPL nil: the
-- string's second part, {/re/str}'s str.
local function s_form(fmt, repl, g)
  return function(token, re, str)
    local text = fmt:gsub("%%([su])", function(c) return c == "u" and regexp.ungreedy(re) or re end)
    return subst(text, token, repl or text_of(str), g)
  end
end

-- {:N:M}, {:N} and {:-str}
local function substring(_, n, m)
  n, m = count(n), count(m)
  return function(v) return v:sub(n + 1, n + m) end
end
local function drop(_, n)
  n = count(n)
  return function(v) return v:sub(n + 1) end
end
local function default(_, str)
  return function(v) return (v == "" or v == "0") and str or v end   -- Perl's $_ ||= str
end

-- Each string after its "{": a Lua pattern of the rest, and
-- function(token, a, b) -> function(value) of its captures.  In GNU's
-- order (the longest definition first), which matters where two match.
local BASH = {
  { "/([^#%%}/]+)/([^}]*)}", s_form("%s") },
  { "/#([^}][^}]-)/([^}]*)}", s_form("^%s", nil, true) },
  { "/%%([^}][^}]-)/([^}]*)}", s_form("%s$", nil, true) },
  { "//([^}][^}]-)/([^}]*)}", s_form("%s", nil, true) },
  { "##([^#}][^}]*)}", s_form("^%s", text_of("")) },
  { ":(%d+):(%d+)}", substring },
  { "#([^#}][^}]*)}", s_form("^%u(.*)", first_cap) },
  { ":%-([^}]+)}", default },
  { "%%%%([^}]+)}", s_form("%s$", text_of("")) },
  { "%^%^([^}]+)}", s_form("(%s)", upper_cap, true) },
  { ",,([^}]+)}", s_form("(%s)", lower_cap, true) },
  { "%%([^}]+)}", s_form("(.*)%u$", first_cap) },
  { "%^([^}]+)}", s_form("^(%s)", upper_cap) },
  { ",([^}]+)}", s_form("^(%s)", lower_cap) },
  { ":(%d+)}", drop },
}

-- The captures of 'pat' at 'at' of s, and the index after the match
-- ('pat' ends in "()"); nil if it does not match there.
local function captures(s, pat, at)
  local caps = { s:match(pat, at) }
  if #caps == 0 then return nil end
  local stop = table.remove(caps)
  return caps, stop
end

-- A --plus bash-like string at 'at' of s, {str} or {N str}: its part
-- and its end; nil if there is none, or if it would span a word boundary
-- of 'bounds' (GNU parallel looks in each word of the command).
local function bash_part(s, at, bounds)
  for _, b in ipairs(BASH) do
    local n
    local caps, stop = captures(s, "^{" .. b[1] .. "()", at)
    if not caps then
      caps, stop = captures(s, "^{(%-?%d+)%s*" .. b[1] .. "()", at)
      n = caps and tonumber(table.remove(caps, 1))
    end
    if caps and n ~= 0 then
      for k = at, stop - 1 do
        if bounds and bounds[k] then return nil end
      end
      return { pos = n, fn = b[2](s:sub(at, stop - 1), caps[1], caps[2]) }, stop
    end
  end
  return nil
end

-- }======================================================================

-- {======================================================================
-- {= code =}: Lua over the argument _

-- The chunk of 'code': an expression whose value replaces the argument, or
-- statements that change _ (GNU's Perl changes $_).  It sees _G, and Q(s)
-- (quote), uq() (leave this value unquoted), seq() and total_jobs().
local function lua_code(code, where)
  local env = setmetatable({}, { __index = _G })
  local f = load("return " .. code, "=" .. where, "t", env)
  if not f then
    local err
    f, err = load(code, "=" .. where, "t", env)
    if not f then usage_error(err) end
  end
  local job
  env.Q = M.quote
  env.seq = function() return job.seq end
  env.total_jobs = function() return job.total end
  env.uq = function() env.__uq = true end
  return function(v, j)
    job = j
    env._, env.__uq = v, nil
    local ok, r = pcall(f)
    if not ok then usage_error(errors.text(r)) end
    if r == nil then r = env._ end
    if r == nil then r = "" end
    return tostring(r), env.__uq
  end
end

-- }======================================================================

-- {======================================================================
-- Compiling a template

-- A part of a template is a literal string, or a table:
--   { pos = N or nil, fn = function(value, job) -> text[, unquoted] }
--   { seq = true, pad = bool }, { slot = true }, { total = true }, { raw = text }
-- where pos nil means every value of the job.

-- --plus's strings par does not do: they skip jobs ({choose_k}, {uniq}),
-- or name the ssh host of the job.
local PLUS_NOT_DONE = { "{choose_k}", "{uniq}", "{host}", "{sshlogin}", "{hgrp}", "{agrp}" }

-- The replacement strings of 'o' (-I, --er, ... and --plus, --rpl) as a
-- list of { text, make = function() -> part }, longest text first.
local function fixed_tokens(o)
  local list = {}
  local function add(text, part) list[#list + 1] = { text = text, part = part } end
  local function mod(m) return { fn = MODS[m] } end
  add(o.replace or "{}", mod(""))
  add(o.extensionreplace or "{.}", mod("."))
  add(o.basenamereplace or "{/}", mod("/"))
  add(o.dirnamereplace or "{//}", mod("//"))
  add(o.basenameextensionreplace or "{/.}", mod("/."))
  add(o.seqreplace or "{#}", { seq = true })
  add(o.slotreplace or "{%}", { slot = true })
  if o.plus then
    add("{##}", { total = true })
    add("{0#}", { seq = true, pad = true })
    add("{0%}", { slot = true })
    add("{slot}", { raw = "${PARALLEL_JOBSLOT}" })   -- once a job, for the shell to expand
    for _, name in ipairs(PLUS_NOT_DONE) do add(name, { not_done = name }) end
    for m, fn in pairs(PLUS_MODS) do add("{" .. m .. "}", { fn = fn }) end
  end
  for name, pos in pairs(o.header_names or {}) do
    add("{" .. name .. "}", { pos = pos, fn = MODS[""] })
  end
  for _, r in ipairs(o.rpl or {}) do
    local tag, code = r:match("^%s*(%S+)%s+(.*)$")
    if not tag then usage_error(format("--rpl: '%s' is not 'TAG code'", r)) end
    add(tag, { fn = lua_code(code, "--rpl " .. tag) })
  end
  table.sort(list, function(a, b) return #a.text > #b.text end)
  return list
end

-- A positional {N<mod>} or {-N<mod>} at 'at' of s: the part and its end.
local function positional(s, at, plus)
  local n, m, stop = s:match("^{(%-?%d+)([^{}]*)}()", at)
  if not n then return nil end
  local fn = MODS[m] or (plus and PLUS_MODS[m])
  n = tonumber(n)
  if not fn or n == 0 then return nil end
  return { pos = n, fn = fn }, stop
end

-- {= code =} or {=N code =} at 'at' of s.
local function code_part(s, at, nexpr)
  local n, code, stop = s:match("^{=(%-?%d*)(.-)=}()", at)
  if not n then return nil end
  local where = format("{=%s ... =} #%d", n, nexpr)
  return { pos = tonumber(n), fn = lua_code(code, where) }, stop
end

-- The parts of string s ('bounds': the indexes of the spaces that join
-- the command's words, if it is their line).
local function parse(s, tokens, o, counts, bounds)
  local parts, lit, i = {}, {}, 1
  local function flush()
    if #lit > 0 then parts[#parts + 1] = concat(lit); lit = {} end
  end
  while i <= #s do
    local part, stop
    for _, t in ipairs(tokens) do
      if s:sub(i, i + #t.text - 1) == t.text then part, stop = t.part, i + #t.text; break end
    end
    if not part and s:byte(i) == 123 then   -- "{"
      part, stop = positional(s, i, o.plus)
      if not part and o.plus then part, stop = bash_part(s, i, bounds) end
      if not part then
        counts.code = counts.code + 1
        part, stop = code_part(s, i, counts.code)
      end
    end
    if part and part.not_done then
      errors.unsupported(format("--plus's %s is not supported", part.not_done))
    end
    if part then
      flush()
      parts[#parts + 1] = part
      counts.n = counts.n + 1
      if part.total or part.pad then counts.total = true end   -- {0#} pads to {##}'s width
      if part.slot then counts.slot = true end
      i = stop
    else
      lit[#lit + 1] = s:sub(i, i)
      i = i + 1
    end
  end
  flush()
  return parts
end

--- Compile the command's words (and options 'o': quote, context, plus,
-- replace, ...).  Returns a template with:
--   tpl.total   it needs the number of jobs ({##})
--   tpl.slot    it needs the job's slot ({%}: SLOTMARK stands for it)
--   tpl.empty   there is no command: the values are the command
--   tpl.expand(job) -> the shell command of job { values, seq, total }
--   tpl.text(s, job) -> s with replacement strings filled in (--tagstring)
function M.compile(words, o)
  local tokens = fixed_tokens(o)
  local counts = { n = 0, code = 0 }
  local wordparts = {}
  for i, w in ipairs(words) do
    local parts = parse(w, tokens, o, counts)
    if o.quote then
      for k, p in ipairs(parts) do
        if type(p) == "string" then parts[k] = M.quote(p) end
      end
    end
    wordparts[i] = parts
  end
  -- without -q the words are one shell line, and -X's context is a word of it
  if not o.quote then
    local bounds, at = {}, 0
    for k = 1, #words - 1 do
      at = at + #words[k] + 1
      bounds[at] = true
    end
    local line = parse(concat(words, " "), tokens, o, { n = 0, code = 0 }, bounds)
    wordparts = {}
    local cur = {}
    for _, p in ipairs(line) do
      if type(p) == "string" then
        local first = true
        for piece in (p .. " "):gmatch("([^ ]*) ") do
          if not first then wordparts[#wordparts + 1] = cur; cur = {} end
          first = false
          if piece ~= "" then cur[#cur + 1] = piece end
        end
      else
        cur[#cur + 1] = p
      end
    end
    wordparts[#wordparts + 1] = cur
  end
  local tpl = { total = counts.total, slot = counts.slot, empty = #words == 0 }
  local append = counts.n == 0 and not o.no_append   -- --tee --pipe appends nothing
  local context = o.context

  -- The text of 'part' for 'job': one value, or all of them.
  local function value(part, job, v)
    if part.seq then
      local s = tostring(job.seq)
      if part.pad and job.total then s = ("0"):rep(#tostring(job.total) - #s) .. s end
      return s
    end
    if part.slot then return M.SLOTMARK end
    if part.total then return tostring(job.total) end
    if part.raw then return o.quote and M.quote(part.raw) or part.raw end   -- -q: as GNU, text
    local vals = job.values
    if v ~= nil then
      local t, uq = part.fn(v, job)
      return uq and t or M.quote(t)
    end
    if part.pos then
      local k = part.pos < 0 and #vals + part.pos + 1 or part.pos
      -- as GNU parallel: a value the job lacks is nothing, its code not run
      if vals[k] == nil then return o.quote and "''" or "" end
      local t, uq = part.fn(vals[k], job)
      return uq and t or M.quote(t)
    end
    local out = {}
    for k = 1, #vals do
      local t, uq = part.fn(vals[k], job)
      out[k] = uq and t or M.quote(t)
    end
    return concat(out, " ")
  end

  local function word_text(parts, job, v)
    local out = {}
    for k, p in ipairs(parts) do
      out[k] = type(p) == "string" and p or value(p, job, v)
    end
    return concat(out)
  end

  -- -X: a word with a replacement string of every value is repeated, once
  -- for each value
  local function per_value(parts)
    for _, p in ipairs(parts) do
      if type(p) == "table" and p.fn and not p.pos then return true end
    end
    return false
  end

  function tpl.expand(job)
    if tpl.empty then return concat(job.values, " ") end
    local out = {}
    for _, parts in ipairs(wordparts) do
      if context and per_value(parts) then
        local each = {}
        for k, v in ipairs(job.values) do each[k] = word_text(parts, job, v) end
        out[#out + 1] = concat(each, " ")
      else
        out[#out + 1] = word_text(parts, job)
      end
    end
    local cmd = concat(out, " ")
    if append and #job.values > 0 then
      local q = {}
      for k, v in ipairs(job.values) do q[k] = M.quote(v) end
      cmd = cmd .. " " .. concat(q, " ")
    end
    return cmd
  end

  -- --tagstring: its replacement strings, unquoted (each string parsed once)
  local parsed = {}
  local function parts_of(s)
    local parts = parsed[s]
    if not parts then
      parts = parse(s, tokens, o, { n = 0, code = 0 })
      parsed[s] = parts
    end
    return parts
  end

  --- Whether s (a --tagstring, a --results name) has {%}.
  function tpl.has_slot(s)
    for _, p in ipairs(parts_of(s)) do
      if type(p) == "table" and p.slot then return true end
    end
    return false
  end

  --- Whether s (a --tagstring) needs the number of jobs: {##}, {0#}.
  function tpl.has_total(s)
    for _, p in ipairs(parts_of(s)) do
      if type(p) == "table" and (p.total or p.pad) then return true end
    end
    return false
  end

  function tpl.text(s, job)
    local parts = parts_of(s)
    local out = {}
    for k, p in ipairs(parts) do
      if type(p) == "string" then
        out[k] = p
      elseif p.fn then
        local vals = job.values
        if p.pos then
          local n = p.pos < 0 and #vals + p.pos + 1 or p.pos
          out[k] = vals[n] and (p.fn(vals[n], job)) or ""
        else
          local each = {}
          for n = 1, #vals do each[n] = (p.fn(vals[n], job)) end
          out[k] = concat(each, " ")
        end
      else
        out[k] = value(p, job)
      end
    end
    return concat(out)
  end

  return tpl
end

-- }======================================================================

return M
