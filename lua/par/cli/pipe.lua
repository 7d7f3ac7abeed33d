--- The par command's --pipe and --pipepart, as GNU parallel has them: the
-- input cut into blocks of about --block bytes, each ending at a record
-- boundary, and each block one job's stdin (with --cat a temporary file,
-- with --fifo a named pipe, either given to the command as {}).
--
-- A record boundary is --recend followed by --recstart (default: recend
-- "\n", no recstart; with only --recstart given, recend is "").  --pipe
-- reads its input in pieces of --block bytes and ends each block at the
-- last boundary in it, carrying the rest on; a record longer than a block
-- is one block.  --pipepart finds, from each block's start, the first
-- boundary at or after --block bytes in the -a FILE and reads the block
-- there, seeking.  -N n (o.max_args) makes blocks of n records.  --header N
-- (or ':', one line) repeats the input's first N lines before every block.
local util = require "par.util"
local errors = require "par.cli.errors"
local replace = require "par.cli.replace"

local M = {}

local format = string.format
local usage_error = errors.usage

local DEFAULT_BLOCK = 1 << 20
local WINDOW = 4096                 -- bytes looked back at for the last boundary first
local FIND = 1 << 16                -- bytes read at a time when seeking a boundary

local ESCAPES = { n = "\n", t = "\t", r = "\r", ["0"] = "\0", ["\\"] = "\\" }

--- A --recstart or --recend as GNU parallel reads it: \n, \t, \r, \0, \\
-- and \xHH stand for their bytes.
function M.unescape(s)
  return (s:gsub("\\(x%x%x)", function(h) return string.char(tonumber(h:sub(2), 16)) end)
    :gsub("\\(.)", function(c) return ESCAPES[c] end))
end

-- The separator: recend .. recstart, and recend's length (a block ends
-- after recend, before recstart).
local function separator(o)
  local recstart = o.recstart and M.unescape(o.recstart) or ""
  local recend = o.recend and M.unescape(o.recend) or (o.recstart and "" or "\n")
  return recend .. recstart, #recend
end

-- {======================================================================
-- Finding boundaries

-- The length of the longest prefix of s[1..upto] that ends at a boundary
-- (the separator wholly inside s[1..upto]), at least 'least'; or nil.
-- Looks back from 'upto' in windows that grow, so that a block is scanned
-- about as far back as its last record is long.
local function last_split(s, sep, nend, upto, least)
  if sep == "" then return upto >= least and upto or nil end
  local w, hi, n = WINDOW, upto, #sep
  while hi >= n do
    local lo = hi - w + 1
    if lo < 1 then lo = 1 end
    local best
    local i = s:find(sep, lo, true)
    while i and i + n - 1 <= hi do
      if i - 1 + nend >= least then best = i end
      i = s:find(sep, i + 1, true)
    end
    if best then return best - 1 + nend end
    if lo == 1 then return nil end
    hi = lo + n - 2                 -- a match ending there starts before lo
    w = w * 4
  end
  return nil
end

-- The length of the shortest prefix of s that ends at a boundary whose
-- separator starts at or after 'from', at least 'least' long; or nil.
local function first_split(s, sep, nend, from, least)
  if sep == "" then return #s >= least and #s or nil end
  local i = s:find(sep, from, true)
  while i and i - 1 + nend < least do i = s:find(sep, i + 1, true) end
  return i and i - 1 + nend or nil
end

-- }======================================================================

-- The input file ('path', or stdin for nil or "-") and its name.
local function open_input(path)
  if path == nil or path == "-" then return io.stdin, "stdin" end
  local f, err = io.open(path, "rb")
  if not f then usage_error(err) end
  return f, path
end

-- The header: the first n lines of f (--header N, or ':' for one).
local function read_header(f, h)
  if h == nil then return "" end
  local n = h == ":" and 1 or math.tointeger(tonumber(h))
  if not n or n < 0 then usage_error(format("--header: number of lines or ':' expected, got '%s'", h)) end
  local lines = {}
  for k = 1, n do
    local l = f:read("L")
    if not l then break end
    lines[k] = l
  end
  return table.concat(lines)
end

-- {======================================================================
-- --pipe: blocks of a stream

-- GNU parallel's warning when a record does not fit in a block, which then
-- grows for good.
local function warn_grown(size)
  io.stderr:write(format("par: warning: a record was longer than %d. Increasing to --blocksize %d.\n",
    size, math.ceil(size * 1.3 + 1)))
end

-- Blocks of about 'size' bytes from f.  'carry' is what the last read left
-- past the last boundary; one read per block in the common case, and the
-- block is the carry and one piece of that read.  Once the input ends
-- (a short read), all that is left is the last block.  A record longer than
-- the block grows the block for good, by GNU parallel's rule and warning.
local function stream_blocks(f, size, sep, nend, header)
  local carry, eof = "", false
  return function()
    local buf = carry
    while true do
      if eof then
        carry = ""
        if buf == "" then return nil end
        return header .. buf
      end
      if #buf < size then
        local want = size - #buf
        local s = f:read(want)
        if not s or #s < want then
          eof = true
          if s then buf = buf .. s end
        else
          local p = last_split(s, sep, nend, #s, buf == "" and 1 or 0)
          if p then                 -- the common case: a boundary in what was just read
            carry = s:sub(p + 1)
            return header .. (buf == "" and s:sub(1, p) or buf .. s:sub(1, p))
          end
          buf = buf .. s
        end
      end
      if not eof then
        local p = last_split(buf, sep, nend, math.min(#buf, size), 1)
        if p then
          carry = buf:sub(p + 1)
          return header .. buf:sub(1, p)
        end
        warn_grown(size)
        size = math.ceil(size * 1.3 + 1)
      end
    end
  end
end

-- Blocks of 'n' records each from f (-N n), read 'size' bytes at a time.
local function record_blocks(f, size, sep, nend, header, n)
  local buf, eof = "", false
  return function()
    local from, count, last = 1, 0, 0
    while true do
      local p = sep ~= "" and first_split(buf, sep, nend, from, last + 1)
      if p then
        count = count + 1
        last = p
        from = p - nend + 2
        if count == n then break end
      elseif eof then
        last = #buf
        break
      else
        from = math.max(from, #buf - #sep + 2)
        local s = f:read(size)
        if s then buf = buf .. s else eof = true end
      end
    end
    if last == 0 then return nil end
    local block = buf:sub(1, last)
    buf = buf:sub(last + 1)
    return header .. block
  end
end

-- Blocks of whole records of 'lines' lines each (-L with --pipe, as GNU
-- parallel has it): a block ends after a multiple of 'lines' newlines,
-- within 'size' bytes if it can, else after one record; with 'n' (-N),
-- after exactly n such records.  The last block takes what is left.
local function line_blocks(f, size, header, lines, n)
  local buf, eof = "", false
  return function()
    local pos, count, nl, last = 0, 0, 0, 0
    while true do
      local i = buf:find("\n", pos + 1, true)
      if i then
        pos, nl = i, nl + 1
        if nl % lines == 0 then
          if n then
            count = count + 1
            last = i
            if count == n then break end
          elseif i <= size then
            last = i
            if i == size then break end
          elseif last > 0 then break
          else
            last = i
            warn_grown(size)
            size = math.ceil(size * 1.3 + 1)
            break
          end
        end
      elseif eof then
        if last == 0 then last = #buf end
        break
      else
        local s = f:read(math.max(size, FIND))
        if s then buf = buf .. s else eof = true end
      end
    end
    if last == 0 then return nil end
    local block = buf:sub(1, last)
    buf = buf:sub(last + 1)
    return header .. block
  end
end

-- }======================================================================

-- {======================================================================
-- --regexp: --recstart and --recend as regular expressions

-- What of a Perl regexp par reads: one atom after another, each maybe
-- with *, +, ? or *? after it; ^ first and $ last, at a line's start and end.
local REGEXP_LIMIT = "is beyond what par reads (characters, ., [classes], \\d \\s \\w, "
  .. "\\n \\t \\xHH, * + ? *?, ^ first, $ last)"
local PERL_CLASS = { d = "%d", D = "%D", s = "%s", S = "%S", w = "[%w_]", W = "[^%w_]" }
local PERL_BYTE = { n = "\n", t = "\t", r = "\r", f = "\f", e = "\27", a = "\a", ["0"] = "\0" }

local function beyond(re, what)
  usage_error(format("%s: the regexp '%s' %s", what, re, REGEXP_LIMIT))
end

-- A byte as a Lua pattern item.
local function literal(c)
  return c:find("^[%^%$%(%)%%%.%[%]%*%+%-%?]$") and "%" .. c or c
end

-- The escape at re[i] (a backslash) as a pattern item, and the index after it.
local function perl_escape(re, i, class, what)
  local c = re:sub(i + 1, i + 1)
  local h = c == "x" and re:match("^%x%x", i + 2)
  if h then return literal(string.char(tonumber(h, 16))), i + 4 end
  if PERL_BYTE[c] then return literal(PERL_BYTE[c]), i + 2 end
  if PERL_CLASS[c] then
    local item = PERL_CLASS[c]
    if class then item = item:gsub("^%[(.*)%]$", "%1") end
    if class and item:sub(1, 1) == "^" then beyond(re, what) end
    return item, i + 2
  end
  if c == "" or c:find("%w") then beyond(re, what) end
  return literal(c), i + 2
end

-- A [class] at re[i] as a Lua class, and the index after it.
local function perl_class(re, i, what)
  local out, j = { "[" }, i + 1
  if re:sub(j, j) == "^" then out[2] = "^"; j = j + 1 end
  local first = true
  while j <= #re do
    local c = re:sub(j, j)
    if c == "]" and not first then
      out[#out + 1] = "]"
      return table.concat(out), j + 1
    end
    if c == "\\" then
      local item
      item, j = perl_escape(re, j, true, what)
      out[#out + 1] = item
    else
      out[#out + 1] = c == "%" and "%%" or c
      j = j + 1
    end
    first = false
  end
  usage_error(format("%s: the regexp '%s' has a [ without its ]", what, re))
end

--- A --recstart or --recend regexp (GNU parallel's are Perl's) as a Lua
-- pattern: { pat = pattern, bol = began with ^, eol = ended with $ }.
-- 'what' names the option in messages.
function M.perl_pattern(re, what)
  local out, i = {}, 1
  local p = { bol = false, eol = false }
  if re:sub(1, 1) == "^" then p.bol, i = true, 2 end
  local n = #re
  if n >= i and re:sub(n, n) == "$" and re:sub(n - 1, n - 1) ~= "\\" then p.eol, n = true, n - 1 end
  local atom = false
  while i <= n do
    local c = re:sub(i, i)
    if c == "\\" then
      out[#out + 1], i = perl_escape(re, i, false, what)
      atom = true
    elseif c == "[" then
      out[#out + 1], i = perl_class(re, i, what)
      atom = true
    elseif c == "*" or c == "+" or c == "?" then
      if not atom then beyond(re, what) end
      if re:sub(i + 1, i + 1) == "?" then
        if c ~= "*" then beyond(re, what) end
        c, i = "-", i + 1
      end
      out[#out + 1] = c
      i, atom = i + 1, false
    elseif c:find("[|(){}^$]") then
      beyond(re, what)
    else
      out[#out + 1] = c == "." and "[^\n]" or literal(c)
      i, atom = i + 1, true
    end
  end
  p.pat = table.concat(out)
  return p
end

-- The boundaries of --regexp: function(s, init) -> the start of the first
-- match of recend..recstart at or after init, the boundary's offset (the
-- bytes before it: recend ends, recstart starts there) and the match's
-- end; or nil.  ^ and $ hold at a line's start and end, as Perl's /m.
local function regexp_finder(o)
  local rs = M.perl_pattern(o.recstart or "", "--recstart")
  local re
  if o.recend then re = M.perl_pattern(o.recend, "--recend")
  else re = { pat = o.recstart and "" or "\n" } end
  if o.recend == "" and not o.recstart then re.pat = "." end      -- GNU: '(?s:.)'
  local pat = re.pat .. "()" .. rs.pat
  local function eol(s, k) return k > #s or s:byte(k) == 10 end
  local function bol(s, k) return k == 1 or s:byte(k - 1) == 10 end
  return function(s, init)
    while true do
      local a, e, q = s:find(pat, init)
      if not a then return nil end
      if (not rs.bol or bol(s, q)) and (not re.bol or bol(s, a)) and (not re.eol or eol(s, q))
          and (not rs.eol or eol(s, e + 1)) then
        return a, q - 1, e
      end
      init = a + 1
    end
  end, rs, re
end

-- The offset of the last boundary in s past offset 'after', or nil.
local function last_boundary(find, s, after)
  local best, init = nil, 1
  while true do
    local a, p = find(s, init)
    if not a then return best end
    if p > after then best = p end
    init = a + 1
  end
end

-- The offset of the n'th boundary in s, each record non-empty, or nil.
local function nth_boundary(find, s, n)
  local start, count, init = 0, 0, 1
  while true do
    local a, p = find(s, init)
    if not a then return nil end
    if p > start then
      count, start = count + 1, p
      if count == n then return p end
    end
    init = a + 1
  end
end

-- Blocks of f cut at --regexp boundaries, by GNU parallel's reading: each
-- read fills the buffer up to a multiple of 'size'; without -N ('n') a block
-- ends at the last boundary read, with -N after n records (and input before
-- the first --recstart is a record of its own).  What is left at the end of
-- the input is the last block.  Nothing cut from a read grows the block.
local function regexp_blocks(f, size, find, rs, header, n)
  local buf, eof, done, garbage = "", false, false, n == nil
  local queue, qh, qt = {}, 1, 0
  local function emit(len)
    qt = qt + 1
    queue[qt] = header .. buf:sub(1, len)
    buf = buf:sub(len + 1)
  end
  local function cut()
    if not n then
      local p = not eof and last_boundary(find, buf, 0)
      if p then emit(p) end
      return
    end
    if not garbage and buf ~= "" then   -- input before the first recstart: a record alone
      garbage = true
      local p = not buf:find("^" .. rs.pat) and nth_boundary(find, buf, 1)
      if p then emit(p) end
    end
    while true do
      local p = nth_boundary(find, buf, n)
      if not p then return end
      emit(p)
    end
  end
  return function()
    while qh > qt do
      if done then return nil end
      local before = qt
      local want = size - #buf % size
      local s = f:read(want)
      if s then buf = buf .. s end
      eof = not s or #s < want
      cut()
      if eof then
        if buf ~= "" then emit(#buf) end
        done = true
      elseif qt == before then
        warn_grown(size)
        size = math.ceil(size * 1.3 + 1)
      end
    end
    local b = queue[qh]
    queue[qh], qh = nil, qh + 1
    return b
  end
end

--- --rrs with --regexp: 'blocks' with the matches of recend..recstart, a
-- leading recstart and a trailing recend taken out of each (the first
-- 'nheader' bytes kept).
local function remove_regexps(blocks, nheader, o)
  local find, rs, re = regexp_finder(o)
  return function()
    local b = blocks()
    if not b then return nil end
    local body, out, at = b:sub(nheader + 1), {}, 1
    while true do
      local a, _, e = find(body, at)
      if not a then break end
      if e >= a then
        out[#out + 1] = body:sub(at, a - 1)
        at = e + 1
      else
        out[#out + 1] = body:sub(at, a)
        at = a + 1
      end
    end
    out[#out + 1] = body:sub(at)
    body = table.concat(out)
    if rs.pat ~= "" then body = body:gsub("^" .. rs.pat, "", 1) end
    if re.pat ~= "" then body = body:gsub(re.pat .. "$", "", 1) end
    return b:sub(1, nheader) .. body
  end
end

-- }======================================================================

-- {======================================================================
-- --group-by: records of lines with the same value in a column

-- A --group-by, --shard or --bin expression: the column (a number, or a name read from
-- the input's first line), or a usage error for a Perl expression.
local function column_of(expr, what)
  local col, rest = expr:match("^(%-?%d+)%s*(.-)$")
  local name
  if not col then name, rest = expr:match("^([%a_][%w_]*)%s*(.-)$") end
  if rest == nil then rest = expr end
  if rest ~= "" then errors.unsupported(format("%s's perl expression ('%s') is not supported", what, rest)) end
  return math.tointeger(tonumber(col)), name
end
M.column_of = column_of

local ALNUM = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

-- GNU parallel's way: a random 20-character --recstart put before each line
-- whose column differs from the line before's, then taken out (--rrs).
local function marker()
  local t = {}
  for i = 1, 20 do
    local k = math.random(#ALNUM)
    t[i] = ALNUM:sub(k, k)
  end
  return table.concat(t)
end

-- f as a reader of n bytes at a time (f:read(n)) with 'mark' before each
-- line that starts a group.  The column is split from the line as read,
-- newline and all, as perl -a splits it.
local function group_reader(f, col, split, mark)
  local pieces, np, have, last, eof = {}, 0, 0, nil, false
  local function add(s)
    np, have = np + 1, have + #s
    pieces[np] = s
  end
  return { read = function(_, n)
    while have < n and not eof do
      local line = f:read("L")
      if not line then
        eof = true
      else
        local cols = split(line)
        local v = cols[col >= 1 and col or #cols + col] or ""
        if v ~= last then add(mark); last = v end
        add(line)
      end
    end
    if have == 0 then return nil end
    local s = table.concat(pieces, "", 1, np)
    pieces, np, have = {}, 0, 0
    if #s > n then add(s:sub(n + 1)); s = s:sub(1, n) end
    return s
  end }
end

-- --group-by COL: f's lines in groups, and the options cutting blocks at
-- their starts; a column name reads the first line as the header.
local function group_input(f, o, header)
  if o.pipepart then errors.unsupported("--group-by with --pipepart is not supported") end
  local col, name = column_of(o.group_by, "--group-by")
  local split = require("par.cli.input").splitter(o.colsep or "\t")
  if name then
    if header == "" then header = f:read("L") or "" end   -- --header's lines, or the first
    for k, v in ipairs(split((header:match("^[^\n]*"):gsub("\r$", "")))) do
      if v == name and not col then col = k end
    end
    if not col then
      usage_error(format("--group-by: column '%s' not found in the header line", name))
    end
  end
  local mark = marker()
  local go = setmetatable({ recstart = mark, recend = "", rrs = true, regexp = false, max_lines = false },
    { __index = o })
  return group_reader(f, col, split, mark), go, header
end

-- }======================================================================

-- --pipepart: blocks of a file, found by seeking.  Reads a few KB at each
-- border to find the boundary, then the block itself in one read.
local function part_blocks(f, size, sep, nend, header, name)
  local total, err = f:seek("end")
  if not total then usage_error(format("--pipepart: %s: %s", name, err)) end
  local pos = #header
  local function boundary(border)
    if sep == "" then return border end
    local keep, at = "", border
    while at < total do
      f:seek("set", at)
      local s = keep .. f:read(FIND)
      local p = first_split(s, sep, nend, 1, 0)
      if p then return at - #keep + p end
      at = at + #s - #keep
      keep = #sep > 1 and s:sub(-(#sep - 1)) or ""
    end
    return total
  end
  return function()
    if pos >= total then return nil end
    local stop = pos + size >= total and total or boundary(pos + size)
    f:seek("set", pos)
    local block = f:read(stop - pos)
    pos = stop
    return header .. block
  end
end

-- --pipepart --block -N: the size of a block for N parts per jobslot, by
-- GNU parallel's sum (so the last part may be a little short).
local function part_size(f, name, size, nslots)
  local here = f:seek()
  local total, err = f:seek("end")
  if not total then usage_error(format("--pipepart: %s: %s", name, err)) end
  f:seek("set", here)
  return 1 + total // nslots // -size
end

--- The blocks of the input for the parsed options 'o': a function that
-- returns the next block, or nil at the end.  It blocks while it reads.
-- o.pipepart reads the file of -a (o.arg_file[1]) by seeking; o.pipe reads
-- it or stdin.  o.block: bytes (default 1 MiB); o.recstart,
-- o.recend: strings as given (escapes are read here); o.max_args: records
-- per block; o.header: "N" lines or ":"; o.regexp, o.group_by.  With
-- 'once' (--roundrobin) the header starts no block: it is returned second.
function M.source(o, nslots, once)
  local files = o.arg_file or {}
  if #files > 1 then usage_error("--pipe reads one input: give -a FILE once") end
  local path = files[1]
  if o.pipepart and (path == nil or path == "-") then
    usage_error("--pipepart needs a file to read (-a FILE)")
  end
  local f, name = open_input(path)
  local size = o.block or (o.pipepart and -10 or DEFAULT_BLOCK)
  if o.pipepart and o.roundrobin then size = -1 end     -- GNU: one part per jobslot
  if size < 0 and not o.pipepart then
    usage_error("--block: a negative size (parts per jobslot) needs --pipepart")
  end
  local header = read_header(f, o.header)
  if o.group_by then f, o, header = group_input(f, o, header) end
  local sep, nend = separator(o)
  local whole = header
  if once then header = "" end
  if o.pipepart then
    if o.regexp then errors.unsupported("--regexp with --pipepart is not supported") end
    if o.max_args then usage_error("--pipepart cannot count records (-N): use --block") end
    if size < 0 then size = part_size(f, name, size, nslots or 1) end
    return part_blocks(f, size, sep, nend, header, name)
  end
  local blocks
  if o.regexp and not o.max_lines then
    local find, rs = regexp_finder(o)
    blocks = regexp_blocks(f, size, find, rs, header, o.max_args)
  elseif o.max_lines then
    if o.recstart or (o.recend and M.unescape(o.recend) ~= "\n") then
      usage_error("-L counts lines: it cannot be combined with --recstart or --recend")
    end
    blocks = line_blocks(f, size, header, o.max_lines, o.max_args)
  elseif o.max_args then blocks = record_blocks(f, size, sep, nend, header, o.max_args)
  else blocks = stream_blocks(f, size, sep, nend, header) end
  if o.rrs then
    local removed = (o.regexp and remove_regexps or M.remove_separators)(blocks, #header, o)
    blocks = function()               -- a block left empty starts no job, as in GNU parallel
      local b
      repeat b = removed() until b ~= ""
      return b
    end
  end
  return blocks, whole
end

--- --rrs: 'blocks' with each record's --recstart and --recend taken out
-- (the first 'nheader' bytes, the --header, kept as they are).
function M.remove_separators(blocks, nheader, o)
  local recstart = o.recstart and M.unescape(o.recstart) or ""
  local recend = o.recend and M.unescape(o.recend) or (o.recstart and "" or "\n")
  local sep = recend .. recstart
  return function()
    local b = blocks()
    if not b then return nil end
    local head, body = b:sub(1, nheader), b:sub(nheader + 1)
    if recstart ~= "" and body:sub(1, #recstart) == recstart then body = body:sub(#recstart + 1) end
    if recend ~= "" and body:sub(-#recend) == recend then body = body:sub(1, -#recend - 1) end
    if sep ~= "" then body = body:gsub((sep:gsub("%W", "%%%0")), "") end
    return head .. body
  end
end

-- {======================================================================
-- Jobs

-- The command text with {} as the block's file, named in the shell
-- variable _par_f (appended when 'cmd' has no {}), and {#} the job number.
local function file_command(cmd, seq)
  local used = false
  local text = cmd:gsub("{#?}", function(r)
    if r == "{#}" then return tostring(seq) end
    used = true
    return '"$_par_f"'
  end)
  if not used then text = text .. ' "$_par_f"' end
  return text
end

local MKTEMP = '_par_f=$(mktemp %s"${TMPDIR:-/tmp}/parXXXXXX") || exit 255; '

--- The filler of a --pipe command: function(seq) -> the command text of
-- job seq, its tag.  'tpl' is the command's template (par.cli.replace,
-- compiled without appending): a block's job has one empty argument, as
-- in GNU parallel, so {}, {1} and the rest are '' for the shell; with --cat
-- and --fifo, {} is left for the file.  Without 'tpl', {#} alone.
function M.filler(o, cmd, tpl)
  if not tpl then return function(seq) return (cmd:gsub("{#}", tostring(seq))), "" end end
  return function(seq)
    local job = { values = { "" }, seq = seq }
    return tpl.expand(job), o.tagstring and tpl.text(o.tagstring, job) or ""
  end
end

--- The job of block 'block', the seq'th, for the command 'fill' gives (a
-- filler, or the command's text): { cmd = an argv table with the block
-- as its stdin, text = the shell command, tag }.  With o.cat the shell
-- first copies its stdin to a temporary file, which is {} and is removed
-- after; with o.fifo, {} is a named pipe the shell fills from its stdin
-- while the command runs.
function M.job(o, fill, block, seq)
  if type(fill) == "string" then fill = M.filler(o, fill) end
  local cmd, tag = fill(seq)
  local text
  if o.cat then
    text = MKTEMP:format("") .. 'cat > "$_par_f"; { ' .. file_command(cmd, seq)
      .. '\n} </dev/null; _par_s=$?; rm -f "$_par_f"; exit $_par_s'
  elseif o.fifo then
    text = MKTEMP:format("-u ") .. 'mkfifo -m 600 "$_par_f" || exit 255; '
      .. 'exec 3<&0; cat <&3 > "$_par_f" 3<&- & exec 3<&-; { ' .. file_command(cmd, seq)
      .. '\n} </dev/null; _par_s=$?; kill $! 2>/dev/null; rm -f "$_par_f"; exit $_par_s'
  else
    text = cmd
  end
  return { cmd = { "/bin/sh", "-c", text, stdin = block }, text = text, tag = tag }
end

--- The jobs of a --pipe command line for par.cli.jobs (its run_jobs): an
-- iterator of jobs, one per block, then nil.
function M.jobs(o, plan, nslots, tpl)
  if o.cat and o.fifo then usage_error("--cat and --fifo cannot be combined") end
  if plan.sources then usage_error("--pipe reads its input from stdin or -a FILE, not ::: or ::::") end
  if #plan.words == 0 then usage_error("--pipe needs a command") end
  local cmd = M.filler(o, table.concat(plan.words, " "), tpl)
  local slot = tpl and (tpl.slot or (o.tagstring and tpl.has_slot(o.tagstring)))
  if (o.roundrobin and not o.pipepart) or o.shard or o.bin then
    local src = M.spread_jobs(o, cmd, nslots)
    src.slot = slot and replace.SLOTMARK
    return src
  end
  local next_block = M.source(o, nslots)
  local seq, last = 0, nil
  return { slot = slot and replace.SLOTMARK, next_job = function()
    -- par.each copied the last block into the core when it pushed that
    -- job, and keeps the job's command until it ends: drop the Lua copy,
    -- so that a block is held once, not twice, while it waits and runs.
    if last then last.stdin = nil end
    local block = next_block()
    if not block then return nil end
    seq = seq + 1
    local job = M.job(o, cmd, block, seq)
    last = job.cmd
    return job
  end }
end

-- {======================================================================
-- --roundrobin, --shard, --bin: jobs started once, fed by a reader process
--
-- N jobs each read a named pipe of their own.  A reader process (this
-- module's distribute, in a Lua of its own, with par's stdin) cuts the
-- input and writes it to the pipes: with --roundrobin block k to job
-- (k - 1) % N + 1 in turn (GNU parallel does so with -k; without it, it
-- gives a block to whichever job is ready), with --shard and --bin each
-- line to the job of its column's value.  It tells par on its stdout which
-- job to start ("k") before it opens k's pipe, and ends with "!kind\tmsg"
-- when it fails.  par starts nothing else and reads no block itself, so
-- its loop never waits on a job's stdin while the job waits on its output.

-- The options the reader needs, as Lua source.
local SPREAD_KEYS = { "pipepart", "block", "recstart", "recend", "regexp", "max_args", "max_lines",
  "header", "rrs", "arg_file", "colsep", "group_by", "shard", "bin", "roundrobin" }

local function literal_of(v)
  if type(v) == "table" then
    local t = {}
    for k, x in ipairs(v) do t[k] = literal_of(x) end
    return "{" .. table.concat(t, ",") .. "}"
  end
  return type(v) == "string" and format("%q", v) or tostring(v)
end

local function spread_source(o, dir, n)
  local t = {}
  for _, k in ipairs(SPREAD_KEYS) do
    if o[k] ~= nil then t[#t + 1] = k .. "=" .. literal_of(o[k]) end
  end
  return format("{o={%s},dir=%q,n=%d}", table.concat(t, ","), dir, n)
end


-- Perl's number of a string, as --bin takes it: leading digits, truncated.
local function perl_int(s)
  local v = tonumber(s:match("^%s*([+-]?%d+%.?%d*)") or s:match("^%s*([+-]?%.%d+)") or "0") or 0
  v = v < 0 and math.ceil(v) or math.floor(v)
  return math.tointeger(v) or 0
end

-- FNV-1a, 32 bits: the same value always goes to the same job.
local function hash(s)
  local h = 2166136261
  for i = 1, #s do h = ((h ~ s:byte(i)) * 16777619) & 0xffffffff end
  return h
end

-- The job (1..n) of each line for --shard or --bin, in the reader.
local function line_router(o, n, header)
  local what = o.bin and "--bin" or "--shard"
  local col, name = column_of(o.bin or o.shard, what)
  local split = require("par.cli.input").splitter(o.colsep or ",")
  if name then
    local names = split((header:gsub("\r?\n$", "")))
    for k, v in ipairs(names) do if v == name then col = k end end
    if not col then usage_error(format("%s: column '%s' not found in the header line", what, name)) end
  end
  local memo, nmemo = {}, 0
  return function(line)
    local cols = split((line:gsub("\n$", "")))
    local v = cols[col >= 1 and col or #cols + col] or ""
    if o.bin then
      local r = perl_int(v) % n
      return r == 0 and n or r
    end
    local k = memo[v]
    if not k then
      if nmemo >= 10000 then memo, nmemo = {}, 0 end
      k = hash(v) % n + 1
      memo[v], nmemo = k, nmemo + 1
    end
    return k
  end
end

-- In the reader: function(k) -> the pipe of job k, and true the first time
-- (par is told to start job k then, before the pipe is opened).
local function opener(dir)
  local outs = {}
  return function(k)
    local f = outs[k]
    if f then return f, false end
    io.stdout:write(k, "\n")
    io.stdout:flush()
    local path = dir .. "/" .. k
    local err
    f, err = io.open(path, "wb")          -- waits for job k to open it
    if not f then errors.system(err) end
    os.remove(path)
    f:setvbuf("full", 1 << 16)
    outs[k] = f
    return f, true
  end, outs
end

-- --roundrobin in the reader: the blocks in turn, the header first in each
-- job's input.  A job that is gone (its pipe broken) gets no more.
local function spread_blocks(o, n, open)
  local blocks, header = M.source(o, n, true)
  local dead, ndead, k = {}, 0, 0
  for block in blocks do
    repeat k = k % n + 1 until not dead[k]
    local f, fresh = open(k)
    local ok = (not fresh or header == "" or f:write(header)) and f:write(block) and f:flush()
    if not ok then
      dead[k], ndead = true, ndead + 1
      if ndead == n then return end
    end
  end
end

-- --shard and --bin in the reader: every job started, then each line to
-- its job.  A column name reads the first line as the header (given to no job).
local function spread_lines(o, n, open)
  local f = open_input(o.arg_file and o.arg_file[1])
  local what = o.bin and "--bin" or "--shard"
  local _, name = column_of(o.bin or o.shard, what)
  local header = name and (f:read("L") or "") or ""
  local route = line_router(o, n, header)
  local outs, dead = {}, {}
  for k = 1, n do outs[k] = open(k) end
  for line in f:lines("L") do
    local k = route(line)
    if not dead[k] and not outs[k]:write(line) then dead[k] = true end
  end
end

--- The reader process of --roundrobin, --shard and --bin ('spec' as
-- spread_source writes it): writes the jobs' pipes, then exits.
function M.distribute(spec)
  local open, outs = opener(spec.dir)
  local ok, e = pcall(spec.o.roundrobin and spread_blocks or spread_lines, spec.o, spec.n, open)
  for _, f in pairs(outs) do f:close() end
  if not ok then
    local kind = type(e) == "table" and (e.usage and "usage" or e.config and "config") or "system"
    local msg = type(e) == "table" and (e.usage or e.config or e.system) or errors.text(e)
    io.stdout:write("!", kind, "\t", errors.one_line(msg), "\n")
    io.stdout:flush()
    os.exit(1)
  end
  os.exit(0)
end

-- A new directory for the pipes, in --tmpdir, $TMPDIR or /tmp.
local function fifo_dir(o, n)
  local p = io.popen('mktemp -d "${TMPDIR:-/tmp}/parXXXXXX" 2>/dev/null', "r")
  if o.tmpdir then
    p:close()
    p = io.popen("mktemp -d " .. util.quote(o.tmpdir .. "/parXXXXXX") .. " 2>/dev/null", "r")
  end
  local dir = p:read("l")
  p:close()
  if not dir or dir == "" then errors.system("cannot make a directory for the jobs' pipes") end
  local paths = {}
  for k = 1, n do paths[k] = util.quote(dir .. "/" .. k) end
  if not os.execute("mkfifo -m 600 " .. table.concat(paths, " ")) then
    os.execute("rm -rf " .. util.quote(dir))
    errors.system("mkfifo failed in " .. dir)
  end
  return dir
end

-- The reader's command: this Lua, with par's paths, SIGPIPE ignored (a
-- job that ends early breaks its pipe, and the reader goes on with the
-- others).  Its first line is its pid.
local function reader_command(o, dir, n)
  local code = format("package.path=%q package.cpath=%q require('par.cli.pipe').distribute(%s)",
    package.path, package.cpath, spread_source(o, dir, n))
  return "trap '' PIPE; echo $$; lua=$(readlink /proc/$PPID/exe 2>/dev/null); exec \"${lua:-lua5.4}\" -e "
    .. util.quote(code)
end

--- The jobs of --roundrobin, --shard and --bin for par.cli.jobs: job k
-- (started as the reader asks) reads its pipe; src.close() ends the
-- reader and removes the pipes, whether the run ended or was cut short.
function M.spread_jobs(o, cmd, n)
  if o.shard or o.bin then column_of(o.bin or o.shard, o.bin and "--bin" or "--shard") end
  if o.dry_run then                    -- the N jobs' commands; nothing is read
    local k = 0
    return { next_job = function() k = k + 1; return k <= n and M.job(o, cmd, nil, k) or nil end }
  end
  local dir = fifo_dir(o, n)
  local p = io.popen(reader_command(o, dir, n), "r")
  local r = require("par.core").lines(p)
  local function line_of()
    local line = r:read()
    while line == false do r:wait(); line = r:read() end
    return line
  end
  local pid = math.tointeger(tonumber(line_of()))
  local src, closed, ended = {}, false, false
  -- a run cut short (--halt, an error) may leave the reader waiting for a
  -- job par will not start: it is stopped before it is waited for
  function src.close()
    if closed then return end
    closed = true
    if not ended and pid then os.execute("kill -TERM " .. pid .. " 2>/dev/null") end
    r:close()
    local ok, how, code = p:close()
    os.execute("rm -rf " .. util.quote(dir))
    if ended and not ok then        -- it ended without a word: no input must pass for done
      errors.system(format("the reader of --pipe's input failed (%s %s)", how, code))
    end
  end
  function src.next_job()
    local line = r:read()
    if line == false then return false, r:fd() end
    if line == nil then ended = true; return nil end
    local kind, msg = line:match("^!(%a+)\t(.*)$")
    if kind then
      src.close()
      errors[kind](msg)
    end
    local k = assert(math.tointeger(tonumber(line)))
    local job = M.job(o, cmd, nil, k)
    job.cmd[3] = "exec <" .. util.quote(dir .. "/" .. k) .. "\n" .. job.cmd[3]
    return job
  end
  return src
end

-- }======================================================================

--- --tee: the command line must give its arguments with ::: or ::::,
-- since stdin is every job's input.
function M.check_tee(o, plan)
  if not plan.sources then usage_error("--tee gives all of stdin to every job: give the arguments with :::") end
  if o.pipepart then usage_error("--tee reads stdin: it cannot be combined with --pipepart") end
end

--- --tee: job command 'cmd' (shell text) with all of stdin as its stdin.
-- Stdin is read once, at the first job, and kept for the rest.
function M.tee_cmd(o, cmd)
  if not o.tee_input then o.tee_input = io.stdin:read("a") or "" end
  return { "/bin/sh", "-c", cmd, stdin = o.tee_input }
end

--- A --block size as GNU parallel writes it: a number, maybe with a
-- fraction, then K, M, G, T, P, E (powers of 1024) or k, m, g, t, p, e
-- (of 1000), or any of them with i after (Ki, ki: 1024); negative for
-- --pipepart's parts per jobslot.  Bytes, or nil, why.
function M.size(s)
  local minus, num, unit, bin = s:match("^(%-?)(%d*%.?%d+)([KMGTPEkmgtpe]?)([iI]?)$")
  local v = tonumber(num)
  if not v or (bin ~= "" and unit == "") then
    return nil, format("size expected (like 10M, 1.5k, 2Gi or -2), got '%s'", s)
  end
  if bin ~= "" then unit = unit:upper() end      -- Ki, ki, KI: 1024 whatever the case
  local powers = { K = 1024, M = 1024 ^ 2, G = 1024 ^ 3, T = 1024 ^ 4, P = 1024 ^ 5, E = 1024 ^ 6,
    k = 1e3, m = 1e6, g = 1e9, t = 1e12, p = 1e15, e = 1e18 }
  v = math.floor(v * (powers[unit] or 1))
  if v < 1 then return nil, format("size must be at least 1 byte (or -N parts), got '%s'", s) end
  v = math.tointeger(v) or v
  return minus == "-" and -v or v
end

M.quote = util.quote               -- for callers that build {} themselves

return M
