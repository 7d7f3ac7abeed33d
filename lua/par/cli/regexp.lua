--- Perl regular expressions, as much of them as --plus's bash-like
-- replacement strings need ({#re}, {%re}, {/re/str}, {^re} ...): GNU
-- parallel puts the user's text into a Perl s/// as a regexp, so par
-- matches it as Perl would, by backtracking in Perl's order.
--
-- Done: literals, . (not newline), [...] (ranges, ^, \d \w \s and POSIX
-- [:name:] inside), \d \D \w \W \s \S \h \H \b \B \A \z \Z, \t \n \r \f \e
-- \a \xHH \x{H} \0oo, \1-\9, ^ $ (end, or before a final newline), ( ),
-- (?: ), |, * + ? {n} {n,} {n,m} {,m} and their lazy forms (*? ...).
-- Anything else (lookaround, \p, possessive quantifiers, modifiers) is an
-- error: one par: line, never a different match.
local M = {}

local byte, char, sub, find, huge = string.byte, string.char, string.sub, string.find, math.huge
local tonumber, error, ipairs, pairs, pcall, type = tonumber, error, ipairs, pairs, pcall, type
local concat = table.concat

-- {======================================================================
-- Parsing: the text to a tree
--
--   { t = "set", [c] = true ... }    one byte of the set (neg: not of it)
--   { t = "seq", n1, n2 ... }        { t = "alt", n1, n2 ... }
--   { t = "group", n = k, node }     capture k (n nil: (?: ))
--   { t = "rep", node, min, max, lazy }
--   { t = "bol" } { t = "eol" } { t = "end" } { t = "word", neg }
--   { t = "ref", n = k }

local function bad(re, msg) error({ regexp = ("'%s': %s"):format(re, msg) }, 0) end

local function range_set(set, a, b)
  for c = a, b do set[c] = true end
  return set
end

local function is_word(c)
  return c and (c == 95 or (c >= 48 and c <= 57) or (c >= 65 and c <= 90) or (c >= 97 and c <= 122))
end

-- The bytes of a class escape (\d \w \s \h) or POSIX class name.
local CLASSES = {
  d = function(s) return range_set(s, 48, 57) end,
  w = function(s) for c = 0, 255 do if is_word(c) then s[c] = true end end return s end,
  s = function(s) for _, c in ipairs { 9, 10, 11, 12, 13, 32 } do s[c] = true end return s end,
  h = function(s) s[9], s[32] = true, true return s end,
  v = function(s) return range_set(s, 10, 13) end,
}
local POSIX = {
  alpha = "%a", digit = "%d", alnum = "%w", space = "%s", upper = "%u", lower = "%l",
  punct = "%p", xdigit = "%x", cntrl = "%c", print = "[%g ]", graph = "%g", blank = "[ \t]",
}

local function posix_set(set, name, neg, re)
  local pat = name == "word" and "[%w_]" or POSIX[name]
  if not pat then bad(re, ("POSIX class [:%s:] is unknown"):format(name)) end
  for c = 0, 255 do
    if (find(char(c), pat) ~= nil) ~= neg then set[c] = true end
  end
  return set
end

-- Escapes that stand for one byte.
local BYTES = { t = 9, n = 10, r = 13, f = 12, e = 27, a = 7 }

-- The escape at re[i] (after the backslash): a byte, or a set (a class
-- escape), and the index after it.
local function escape(re, i)
  local c = sub(re, i, i)
  if c == "" then bad(re, "a trailing \\") end
  local lc = c:lower()
  if CLASSES[lc] then
    local s = CLASSES[lc]({})
    if c ~= lc then
      local n = {}
      for b = 0, 255 do if not s[b] then n[b] = true end end
      s = n
    end
    return nil, s, i + 1
  end
  if BYTES[c] then return BYTES[c], nil, i + 1 end
  if c == "x" then
    local hex, stop = re:match("^{(%x+)}()", i + 1)
    if not hex then hex, stop = re:match("^(%x?%x?)()", i + 1) end
    local v = tonumber(hex ~= "" and hex or "0", 16)
    if v > 255 then bad(re, "\\x above \\xFF is not supported") end
    return v, nil, stop
  end
  if c == "0" then
    local oct, stop = re:match("^([0-7]?[0-7]?)()", i + 1)
    return tonumber(oct ~= "" and oct or "0", 8), nil, stop
  end
  if c:find("%w") then bad(re, ("\\%s is not supported"):format(c)) end
  return byte(c), nil, i + 1
end

-- [...] at re[i]: its set and the index after it.
local function class(re, i)
  local set, neg = {}, false
  i = i + 1
  if sub(re, i, i) == "^" then neg, i = true, i + 1 end
  local first = true
  while true do
    local c = sub(re, i, i)
    if c == "" then bad(re, "unmatched [") end
    if c == "]" and not first then i = i + 1; break end
    first = false
    local lo, s
    local name, pstop = re:match("^%[:(%^?%a+):%]()", i)
    if name then
      posix_set(set, name:gsub("^%^", ""), name:sub(1, 1) == "^", re)
      i = pstop
    else
      if c == "\\" and sub(re, i + 1, i + 1) == "b" then lo, i = 8, i + 2   -- [\b]: backspace
      elseif c == "\\" then lo, s, i = escape(re, i + 1)
      else lo, i = byte(c), i + 1 end
      if s then
        for b in pairs(s) do set[b] = true end
      elseif sub(re, i, i) == "-" and not find(sub(re, i + 1, i + 1), "^%]?$") then  -- a range
        local hi
        if sub(re, i + 1, i + 1) == "\\" then hi, s, i = escape(re, i + 2)
        else hi, i = byte(re, i + 1), i + 2 end
        if s then bad(re, "a range ends in a class escape") end
        if hi < lo then bad(re, "invalid [] range") end
        range_set(set, lo, hi)
      else
        set[lo] = true
      end
    end
  end
  if neg then
    local n = {}
    for b = 0, 255 do if not set[b] then n[b] = true end end
    set = n
  end
  set.t = "set"
  return set, i
end

local parse_alt

-- A quantifier at re[i]: min, max and the index after it, or nil.
local function quantifier(re, i)
  local c = sub(re, i, i)
  if c == "*" then return 0, huge, i + 1 end
  if c == "+" then return 1, huge, i + 1 end
  if c == "?" then return 0, 1, i + 1 end
  if c ~= "{" then return nil end
  local a, comma, b, stop = re:match("^{(%d*)(,?)(%d*)}()", i)
  if not a or (a == "" and (comma == "" or b == "")) then return nil end  -- a literal {
  local lo = tonumber(a) or 0
  local hi = comma == "" and lo or tonumber(b) or huge
  if hi < lo then bad(re, "a {n,m} quantifier with n > m") end
  return lo, hi, stop
end

-- One atom at re[i], with its quantifier: the node and the index after.
local function piece(re, i, st)
  local c = sub(re, i, i)
  local node
  if c == "(" then
    local n
    if sub(re, i + 1, i + 2) == "?:" then i = i + 3
    elseif sub(re, i + 1, i + 1) == "?" then
      bad(re, "(?" .. sub(re, i + 2, i + 2) .. " is not supported")
    else st.groups = st.groups + 1; n = st.groups; i = i + 1 end
    local inner
    inner, i = parse_alt(re, i, st)
    if sub(re, i, i) ~= ")" then bad(re, "unmatched (") end
    node, i = { t = "group", n = n, inner }, i + 1
  elseif c == "[" then
    node, i = class(re, i)
  elseif c == "." then
    node, i = range_set({ t = "set" }, 0, 255), i + 1
    node[10] = nil
  elseif c == "^" then node, i = { t = "bol" }, i + 1
  elseif c == "$" then node, i = { t = "eol" }, i + 1
  elseif c == "\\" then
    local e = sub(re, i + 1, i + 1)
    if e == "b" or e == "B" then node, i = { t = "word", neg = e == "B" }, i + 2
    elseif e == "A" then node, i = { t = "bol" }, i + 2
    elseif e == "z" then node, i = { t = "end" }, i + 2
    elseif e == "Z" then node, i = { t = "eol" }, i + 2
    elseif e:find("^[1-9]$") then node, i = { t = "ref", n = tonumber(e) }, i + 2
    else
      local b, s
      b, s, i = escape(re, i + 1)
      node = s or { [b] = true }
      node.t = "set"
    end
  elseif c == "*" or c == "+" or c == "?" or (c == "{" and quantifier(re, i)) then
    bad(re, "a quantifier follows nothing")
  else
    node, i = { t = "set", [byte(c)] = true }, i + 1
  end
  local lo, hi, stop = quantifier(re, i)
  if not lo then return node, i end
  i = stop
  local lazy = sub(re, i, i) == "?"
  if lazy then i = i + 1
  elseif sub(re, i, i) == "+" then bad(re, "possessive quantifiers are not supported") end
  return { t = "rep", node, lo, hi, lazy }, i
end

local function parse_seq(re, i, st)
  local seq = { t = "seq" }
  while i <= #re do
    local c = sub(re, i, i)
    if c == "|" or c == ")" then break end
    seq[#seq + 1], i = piece(re, i, st)
  end
  return seq, i
end

function parse_alt(re, i, st)
  local alt = { t = "alt" }
  alt[1], i = parse_seq(re, i, st)
  while sub(re, i, i) == "|" do
    alt[#alt + 1], i = parse_seq(re, i + 1, st)
  end
  return alt, i
end

-- }======================================================================

-- {======================================================================
-- Matching: backtracking, each choice in Perl's order

-- match(n, s, i, caps, k): node n at s[i], then k(j) for the rest; the
-- result of k, or nil.  caps[k] = { from, to } as the match goes.
local match

local function match_rep(n, s, i, caps, k)
  local node, lo, hi, lazy = n[1], n[2], n[3], n[4]
  if node.t == "set" then            -- one byte an iteration: no recursion
    local j = i
    while j - i < hi and node[byte(s, j) or -1] do j = j + 1 end
    if j - i < lo then return nil end
    local from, to, step = j, i + lo, -1
    if lazy then from, to, step = i + lo, j, 1 end
    for e = from, to, step do
      local r = k(e)
      if r then return r end
    end
    return nil
  end
  local function try(j, count)
    local function more()
      if count >= hi then return nil end
      return match(node, s, j, caps, function(e)
        if e == j and count >= lo then return nil end   -- an empty iteration ends the loop
        return try(e, count + 1)
      end)
    end
    if count < lo then return more() end
    if lazy then return k(j) or more() end
    return more() or k(j)
  end
  return try(i, 0)
end

local function at_word(s, i) return is_word(byte(s, i)) end

function match(n, s, i, caps, k)
  local t = n.t
  if t == "set" then
    if n[byte(s, i) or -1] then return k(i + 1) end
    return nil
  elseif t == "seq" then
    local function step(j, x)
      if x > #n then return k(j) end
      return match(n[x], s, j, caps, function(e) return step(e, x + 1) end)
    end
    return step(i, 1)
  elseif t == "alt" then
    for _, a in ipairs(n) do
      local r = match(a, s, i, caps, k)
      if r then return r end
    end
    return nil
  elseif t == "group" then
    return match(n[1], s, i, caps, function(e)
      if not n.n then return k(e) end
      local old = caps[n.n]
      caps[n.n] = { i, e }
      local r = k(e)
      if not r then caps[n.n] = old end
      return r
    end)
  elseif t == "rep" then
    return match_rep(n, s, i, caps, k)
  elseif t == "bol" then
    if i == 1 then return k(i) end
  elseif t == "eol" then
    if i == #s + 1 or (i == #s and byte(s, i) == 10) then return k(i) end
  elseif t == "end" then
    if i == #s + 1 then return k(i) end
  elseif t == "word" then
    if (at_word(s, i - 1) ~= at_word(s, i)) ~= n.neg then return k(i) end
  elseif t == "ref" then
    local c = caps[n.n]
    if not c then return nil end   -- a group that took no part matches nothing
    local text = sub(s, c[1], c[2] - 1)
    if sub(s, i, i + #text - 1) == text then return k(i + #text) end
  end
  return nil
end

-- }======================================================================

--- Compile Perl regexp text 're'.  Returns the regexp, or nil and a
-- message.
function M.compile(re)
  local st = { groups = 0 }
  local ok, tree, stop = pcall(parse_alt, re, 1, st)
  if not ok then
    if type(tree) == "table" and tree.regexp then return nil, tree.regexp end
    error(tree, 0)
  end
  if stop <= #re then return nil, ("'%s': unmatched )"):format(re) end
  return { tree = tree, groups = st.groups }
end

--- The leftmost match of regexp 'rx' in s at or after index 'init': its
-- first index, the index after it, and its captures (caps[k] = text or
-- nil).  'nonempty': no empty match at init (Perl's rule after an empty
-- match in s///g).  nil when there is none.
function M.find(rx, s, init, nonempty)
  for i = init, #s + 1 do
    local caps = {}
    local e = match(rx.tree, s, i, caps, function(e)
      if nonempty and e == init and i == init then return nil end
      return e
    end)
    if e then
      local texts = {}
      for k = 1, rx.groups do
        local c = caps[k]
        texts[k] = c and sub(s, c[1], c[2] - 1) or nil
      end
      return i, e, texts
    end
  end
  return nil
end

--- Perl's s/rx/.../ (all of them if 'global'): each match replaced by
-- repl(whole, caps).
function M.gsub(rx, s, repl, global)
  local out, pos, last, empty = {}, 1, 1, false
  while pos <= #s + 1 do
    local i, e, caps = M.find(rx, s, pos, empty)
    if not i then break end
    out[#out + 1] = sub(s, last, i - 1)
    out[#out + 1] = repl(sub(s, i, e - 1), caps)
    last, pos, empty = e, e, e == i
    if not global then break end
  end
  out[#out + 1] = sub(s, last)
  return concat(out)
end

--- GNU parallel's make_regexp_ungreedy: a ? after each quantifier (* + })
-- outside a class that has none.
function M.ungreedy(re)
  local out, class_state, escaped, found = {}, false, false, false
  for c in re:gmatch(".") do
    if found then
      if c ~= "?" then out[#out + 1] = "?" end
      found = false
    end
    out[#out + 1] = c
    if escaped then escaped = false
    elseif c == "\\" then escaped = true
    elseif c == "[" then class_state = true
    elseif class_state then
      if c == "]" then class_state = false end
    elseif c == "*" or c == "}" or c == "+" then found = true end
  end
  if found then out[#out + 1] = "?" end
  return concat(out)
end

return M
