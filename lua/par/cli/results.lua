--- --results NAME, as GNU parallel 20221122 has it: each job's stdout,
-- stderr and seq go to files instead of the terminal.
--   NAME without replacement strings: NAME/<ARGS>/{stdout,stderr,seq}, <ARGS>
--     being header/value pairs (1/a/2/b, or the --header : names, sorted as
--     GNU sorts them); in a value \ is \\, TAB \t, NUL \0 and / is \_.
--   NAME with replacement strings: the filled-in name is the stdout file
--     (NAME.err, NAME.seq beside it), or, ending in /, a directory as above.
--   NAME ending in .csv or .tsv: one row per job (-.csv, -.tsv: stdout);
--   in .json, a JSON object per job, a line each (-.json: stdout).
-- The sink has the interface of par.cli.output's printer.
local errors = require "par.cli.errors"
local output = require "par.cli.output"

local M = {}

local format, concat = string.format, table.concat

local function shell_quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- mkdir -p, or a clear error (GNU parallel: exit 255).
local function mkpath(dir)
  if dir == "" then return end
  local ok = os.execute("mkdir -p -- " .. shell_quote(dir) .. " 2>/dev/null")
  if not ok then errors.system(format("--results: cannot make dir '%s'", dir)) end
end

local function spit(path, s)
  local f, err = io.open(path, "wb")
  if not f then errors.system(tostring(err)) end
  local ok, werr = f:write(s)
  f:close()
  if not ok then errors.system(path .. ": " .. tostring(werr)) end
end

local function escape_value(s)
  return (s:gsub("[\\\t%z/]", { ["\\"] = "\\\\", ["\t"] = "\\t", ["\0"] = "\\0", ["/"] = "\\_" }))
end

-- The column headers of a job's values: the --header names or 1, 2, ...
-- 'names' maps name -> position; 'per' records per job (-N).
local function headers(n, names, per)
  local by_pos = {}
  for name, pos in pairs(names or {}) do by_pos[pos] = name end
  local ncols = math.max(1, n // math.max(per or 1, 1))
  local h = {}
  for k = 1, n do
    local col = (k - 1) % ncols + 1
    h[k] = by_pos[col] or tostring(col)
  end
  return h, ncols
end

--- The directory part of a job's values: GNU's args_as_dirname.
function M.dirname(values, names, per)
  local h, ncols = headers(#values, names, per)
  -- within each record, columns sorted numerically, then asciibetically
  local order = {}
  for c = 1, ncols do order[c] = c end
  local function num(s) return tonumber(s:match("^%s*[+-]?%d*%.?%d+")) or 0 end
  table.sort(order, function(a, b)
    local ha, hb = h[a], h[b]
    if num(ha) ~= num(hb) then return num(ha) < num(hb) end
    if ha ~= hb then return ha < hb end
    return a < b
  end)
  local parts = {}
  for base = 0, #values - 1, ncols do
    for _, c in ipairs(order) do
      local k = base + c
      if values[k] ~= nil then
        parts[#parts + 1] = h[k]
        parts[#parts + 1] = escape_value(values[k])
      end
    end
  end
  return concat(parts, "/")
end

--- Whether 'name' is a table file and its kind: the separator of a csv
-- or tsv, or "json" (a JSON object a line).
function M.table_sep(name)
  if name:find("%.csv$") then return "," end
  if name:find("%.tsv$") then return "\t" end
  if name:find("%.json$") then return "json" end
  return nil
end

-- GNU's jsonquote: \ and " escaped, the control characters as \u00XX, the
-- other bytes as they are.
local function json_quote(s)
  s = tostring(s):gsub("\\", "\\\\"):gsub('"', '\\"')
  return (s:gsub("[%z\1-\31]", function(c) return format("\\u%04x", c:byte()) end))
end

-- A row (Seq ... Command, the values, Stdout, Stderr) as GNU's JSON line.
local function json_row(f)
  local n, vals = #f, {}
  for k = 10, n - 2 do vals[#vals + 1] = '"' .. json_quote(f[k]) .. '"' end
  return format('{ "Seq": %s, "Host": "%s", "Starttime": %s, "JobRuntime": %s, "Send": %s, '
    .. '"Receive": %s, "Exitval": %s, "Signal": %s, "Command": "%s", "V": [ %s ], '
    .. '"Stdout": "%s", "Stderr": "%s" }\n', f[1], json_quote(f[2]), f[3], f[4], f[5], f[6], f[7],
    f[8], json_quote(f[9]), concat(vals, ","), json_quote(f[n - 1]), json_quote(f[n]))
end

-- GNU's combine_ref: " doubled; quoted when it held ", blanks, sep or NUL.
local function csv_field(s, sep)
  s = tostring(s)
  local q = false
  if s:find('"', 1, true) then s = s:gsub('"', '""'); q = true end
  if s:find("[%s" .. (sep == "\t" and "\t" or sep) .. "%z]") then q = true end
  return q and ('"' .. s .. '"') or s
end

local function exit_fields(res)
  if res.status == "signal" then return 0, res.signal end
  if res.status == "timeout" then return -1, res.signal or 15 end
  if res.status == "error" then return -1, 0 end
  return res.code or -1, 0
end

--- The sink for --results o.results.  'job' tables given to start hold
-- values and results (the name filled in) and text.
function M.sink(o, names)
  local name = o.results
  local sep = M.table_sep(name)
  local jobs = {}
  local s = {}
  local tfile, header_done
  if sep then
    if name == "-.csv" or name == "-.tsv" or name == "-.json" then
      tfile = io.stdout
    else
      local err
      tfile, err = io.open(name, "w")
      if not tfile then errors.system("--results: " .. tostring(err)) end
    end
  end

  local function write_row(fields)
    local line
    if sep == "json" then
      line = json_row(fields)
    else
      local out = {}
      for k, v in ipairs(fields) do out[k] = csv_field(v, sep) end
      line = concat(out, sep) .. "\n"
    end
    if tfile == io.stdout then output.put(line); output.flush_out()
    else tfile:write(line); tfile:flush() end
  end

  -- -k: table rows in input order (files need none)
  local rows, head = {}, 1
  local function row_done(i, fields)
    if not o.keep_order then return write_row(fields) end
    rows[i] = fields
    while rows[head] ~= nil do
      if rows[head] then write_row(rows[head]) end
      rows[head] = nil
      head = head + 1
    end
  end

  function s.start(i, job)
    job.out, job.err = {}, {}
    jobs[i] = job
  end
  function s.has(i) return jobs[i] ~= nil end
  function s.chunk(i, stream, str)
    local job = jobs[i]
    local t = stream == "stdout" and job.out or job.err
    t[#t + 1] = str
  end
  function s.done(i, res)
    local job = jobs[i]
    jobs[i] = nil
    if res.status == "skipped" then
      if sep then row_done(i, false) end
      return
    end
    local out, err = concat(job.out), concat(job.err)
    local vals = job.values or {}
    if sep then
      if not header_done and sep ~= "json" then
        header_done = true
        local h = { "Seq", "Host", "Starttime", "JobRuntime", "Send", "Receive", "Exitval", "Signal", "Command" }
        for k = 1, #vals do h[#h + 1] = names and next(names) and headers(#vals, names, o.max_args)[k] or ("V" .. k) end
        h[#h + 1] = "Stdout"; h[#h + 1] = "Stderr"
        write_row(h)
      end
      local ev, sg = exit_fields(res)
      local row = { i, res.host or ":", format("%.3f", res.started or 0), format("%0.3f", res.elapsed or 0),
        0, #out, ev, sg, job.text }
      for _, v in ipairs(vals) do row[#row + 1] = v end
      if (o.tag or o.tagstring) and job.tag then   -- as GNU parallel: the rows' output tagged
        out, err = output.tagger(job.tag)(out), output.tagger(job.tag)(err)
      end
      row[#row + 1] = out; row[#row + 1] = err
      row_done(i, row)
      return
    end
    local filled = job.results or name
    local o_path, e_path, s_path
    if filled == name or filled:find("/$") then
      local dir = filled == name and (name .. "/" .. M.dirname(vals, names, o.max_args)) or filled
      mkpath(dir)
      dir = dir:gsub("/*$", "")
      o_path, e_path, s_path = dir .. "/stdout", dir .. "/stderr", dir .. "/seq"
    else
      local dir = filled:match("^(.*)/")
      if dir then mkpath(dir) end
      o_path, e_path, s_path = filled, filled .. ".err", filled .. ".seq"
    end
    spit(o_path, out)
    spit(e_path, err)
    spit(s_path, tostring(i))
  end
  function s.flush()
    if sep then
      local order = {}
      for k in pairs(rows) do order[#order + 1] = k end
      table.sort(order)
      for _, k in ipairs(order) do if rows[k] then write_row(rows[k]) end end
      rows = {}
    end
    if tfile and tfile ~= io.stdout then tfile:close() end
  end
  return s
end

--- The sink for --files: each job's stdout goes to a new file
-- TMPDIR/parXXXXX.par (--tmpdir, $TMPDIR or /tmp), whose name is printed
-- (in input order with -k); its stderr is dropped, as GNU parallel's is.
function M.files_sink(o)
  local dir = o.tmpdir or os.getenv("TMPDIR") or "/tmp"
  local jobs, names, head = {}, {}, 1
  local s = {}
  local function say(name) output.put(name, "\n"); output.flush_out() end
  local function named(i, name, tag)
    if name and tag then name = tag .. "\t" .. name end   -- --tag: as GNU parallel
    if not o.keep_order then return say(name) end
    names[i] = name
    while names[head] ~= nil do
      if names[head] then say(names[head]) end
      names[head] = nil
      head = head + 1
    end
  end
  function s.start(i, job) job.out = {}; jobs[i] = job end
  function s.has(i) return jobs[i] ~= nil end
  function s.chunk(i, stream, str)
    if stream == "stdout" then local t = jobs[i].out; t[#t + 1] = str end
  end
  function s.done(i, res)
    local job = jobs[i]
    jobs[i] = nil
    if res.status == "skipped" then return named(i, false) end
    local p = io.popen("mktemp --suffix=.par -- " .. shell_quote(dir .. "/parXXXXX") .. " 2>/dev/null")
    local name = p and p:read("l")
    if p then p:close() end
    if not name or name == "" then errors.system(format("--files: cannot make a file in '%s'", dir)) end
    spit(name, concat(job.out))
    named(i, name, (o.tag or o.tagstring) and job.tag)
  end
  function s.flush()
    local order = {}
    for k in pairs(names) do order[#order + 1] = k end
    table.sort(order)
    for _, k in ipairs(order) do if names[k] then say(names[k]) end end
    names = {}
  end
  return s
end

return M
