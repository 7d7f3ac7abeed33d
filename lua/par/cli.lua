--- The `par` command: GNU parallel's conventions on top of par.run and
-- par.map.  bin/par is one line: os.exit(require("par.cli").main(arg)).
--
--   par [options] < COMMANDS          par [options] CMD ::: ARG...
--   par [options] CMD < ARGS          par [options] run|map CONFIG.lua [ARG...]
--
-- Exit status as GNU parallel: 0 all ok, 1..100 the number of failed jobs,
-- 101 more than 100, 255 a usage or config error; 128 + N after signal N.
local par = require "par"
local util = require "par.util"
local joblog = require "par.joblog"
local progress = require "par.progress"
local core = require "par.core"

local M = {}

local type, pairs, ipairs, tostring, error, pcall = type, pairs, ipairs, tostring, error, pcall
local format, concat = string.format, table.concat
local typename = util.typename

local USAGE_HINT = "usage: par [options] [CMD] [::: ARG...] | par [options] run|map CONFIG.lua; see par --help"

-- Errors that end the command with status 255: raised as tables so that they
-- cannot be mistaken for a bug in par itself.
local function usage_error(msg) error({ usage = msg }, 0) end
local function config_error(msg) error({ config = msg }, 0) end

local EPIPE = 32

-- Write to stdout, or stop: a reader that went away (`par ... | head -1`)
-- ends the run as SIGPIPE would, also where the host ignores SIGPIPE; any
-- other failure to write is an error of its own.
local function check_out(ok, err, code)
  if ok then return end
  if code == EPIPE then error({ pipe = true }, 0) end
  error({ system = "stdout: " .. tostring(err) }, 0)
end

local function put(...)
  check_out(io.stdout:write(...))
end

local function flush_out()
  check_out(io.stdout:flush())
end

-- An interrupt raised inside a function par called for the user (a config
-- chunk, a commands() function) is still an interrupt, not a config error.
local function rethrow_interrupt(e)
  if e == "interrupted" then error(e, 0) end
end

-- {======================================================================
-- Options

-- One entry per option: the parser and --help both read this table.
local OPTIONS = {
  { "a", "arg-file", "FILE", "arg_file", "stdin", "read commands (or, with CMD, arguments) from FILE; '-' is stdin" },
  { "0", "null", nil, "null", "off", "input items end with NUL, not newline" },
  { "j", "jobs", "N", "jobs", "CPUS", "run N jobs at once; N% is a share of the CPUs; 0 runs all at once" },
  { nil, "timeout", "S", "timeout", "none", "stop a job after S seconds (SIGTERM to its group, then SIGKILL)" },
  { nil, "retries", "N", "retries", "0", "run a failed job up to N more times" },
  { nil, "halt", "WHEN", "halt", "never", "after a failure: soon starts no new job, now also kills the running ones" },
  { nil, "joblog", "FILE", "joblog", "none", "append GNU parallel's joblog line for each job as it ends" },
  { nil, "resume", nil, "resume", "off", "with a joblog: skip the jobs it already holds" },
  { nil, "resume-failed", nil, "resume_failed", "off", "with a joblog: rerun its failed jobs, skip the others in it" },
  { nil, "bar", nil, "bar", "off", "show a progress line on stderr" },
  { "k", "keep-order", nil, "keep_order", "off", "print job output in input order, not completion order" },
  { nil, "tag", nil, "tag", "off", "prefix each output line with the job's argument and a tab" },
  { nil, "dry-run", nil, "dry_run", "off", "print the commands, run nothing" },
  { nil, "delay", "S", "delay", "0", "wait at least S seconds between two job starts" },
  { "S", "sshlogin", "HOSTS", "sshlogin", "none",
    "run jobs on these ssh hosts, comma-separated ([N/]host; ':' is here)" },
  { nil, "sshloginfile", "FILE", "sshloginfile", "none", "read ssh hosts from FILE, one per line (# comments)" },
  { nil, "format", "FMT", "format", "json", "par map: print results as json or lua, one per line" },
  { "v", "verbose", nil, "verbose", "off", "print each command before its output, and why each failed job failed" },
  { nil, "version", nil, "version", nil, "print the version and exit" },
  { "h", "help", nil, "help", nil, "print this help and exit" },
}

local BY_SHORT, BY_LONG, BY_KEY = {}, {}, {}
for i, o in ipairs(OPTIONS) do
  local opt = { short = o[1], long = o[2], arg = o[3], key = o[4], default = o[5], help = o[6] }
  if opt.short then BY_SHORT[opt.short] = opt end
  BY_LONG[opt.long] = opt
  BY_KEY[opt.key] = opt
  OPTIONS[i] = opt
end

local function help_text()
  local lines = {
    "usage: par [options] < COMMANDS            run each line of stdin as a shell command",
    "       par [options] -a FILE               the same, reading FILE",
    "       par [options] CMD [WORD...] ::: ARG...   run CMD once per ARG",
    "       par [options] CMD [WORD...] < ARGS       run CMD once per line of stdin (or -a FILE)",
    "       par [options] run CONFIG.lua [ARG...]    run the commands a config returns",
    "       par [options] map CONFIG.lua [ARG...]    map a Lua function over items, print the results",
    "",
    "In CMD, {} is the argument quoted for the shell ({.} without extension, {/} basename,",
    "{//} dirname, {/.} basename without extension) and {#} the job number; without any",
    "of them, the argument is appended. Blank lines and lines starting with # are skipped.",
    "Options after run|map CONFIG.lua are options too; other words (and all after --)",
    "reach the config as '...'. Command-line options override the config's keys.",
    "",
    "options (default in brackets):",
  }
  for _, o in ipairs(OPTIONS) do
    local names = (o.short and ("-" .. o.short .. ", ") or "    ") .. "--" .. o.long
      .. (o.arg and (" " .. o.arg) or "")
    local default = o.default
    if default == "CPUS" then default = tostring(par.cpus()) .. ", the CPUs" end
    lines[#lines + 1] = format("  %-22s %s%s", names, o.help, default and (" [" .. default .. "]") or "")
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "exit status: 0 all jobs ok; 1-100 the number that failed; 101 more than 100;"
  lines[#lines + 1] = "255 a usage or config error; 128+N after signal N (130 Ctrl-C, 143 SIGTERM),"
  lines[#lines + 1] = "every job stopped first; 141 when stdout closes (| head)."
  return concat(lines, "\n") .. "\n"
end

-- Option values, checked as they are read; 'what' names the option.
local function parse_number(s, what, min_exclusive)
  local v = tonumber(s)
  if not v or v ~= v or v == math.huge or v < 0 or (min_exclusive and v == 0) then
    usage_error(format("%s: %s number expected, got '%s'", what, min_exclusive and "a positive" or "a non-negative", s))
  end
  return v
end

local function parse_count(s, what)
  local v = math.tointeger(tonumber(s))
  if not v or v < 0 or not s:find("^%s*%d+%s*$") then
    usage_error(format("%s: a non-negative integer expected, got '%s'", what, s))
  end
  return v
end

-- A jobs value (integer >= 0 or "N%"), or nil, why.
local function check_jobs(v)
  if math.type(v) == "integer" and v >= 0 then return v end
  if type(v) == "string" then
    local pct = v:match("^(%d+%.?%d*)%%$")
    if pct then return v end
    local n = v:match("^%d+$") and math.tointeger(tonumber(v))
    if n then return n end
  end
  return nil, "integer >= 0 or 'N%' expected, got " ..
    (type(v) == "string" and ("'" .. v .. "'") or typename(v))
end

local VALUE_PARSERS = {
  jobs = function(s)
    local v, why = check_jobs(s)
    if v == nil then usage_error("--jobs: " .. why) end
    return v
  end,
  timeout = function(s) return parse_number(s, "--timeout", true) end,
  delay = function(s) return parse_number(s, "--delay") end,
  retries = function(s) return parse_count(s, "--retries") end,
  halt = function(s)
    if s ~= "never" and s ~= "soon" and s ~= "now" then
      usage_error(format("--halt: never, soon or now expected, got '%s'", s))
    end
    return s
  end,
  sshlogin = function(s)
    local hosts = {}
    for h in s:gmatch("[^,%s]+") do
      local why = util.host_problem(h)
      if why then usage_error("--sshlogin: " .. why) end
      hosts[#hosts + 1] = h
    end
    if #hosts == 0 then usage_error("--sshlogin: no host given") end
    return hosts
  end,
  format = function(s)
    if s ~= "json" and s ~= "lua" then usage_error(format("--format: json or lua expected, got '%s'", s)) end
    return s
  end,
}

-- Store one option; 'value' is nil for a flag.
local function set_option(opts, o, value)
  local parse = VALUE_PARSERS[o.key]
  opts[o.key] = o.arg and (parse and parse(value) or value) or true
end

-- Parse the long option at args[i] ("--name" or "--name=value"); returns the next index.
local function long_option(opts, args, i)
  local name, value = args[i]:match("^%-%-([^=]*)=(.*)$")
  name = name or args[i]:sub(3)
  local o = BY_LONG[name]
  if not o then usage_error(format("unknown option '--%s'", name)) end
  if not o.arg then
    if value then usage_error(format("option '--%s' takes no value", name)) end
    set_option(opts, o)
    return i + 1
  end
  if not value then
    value = args[i + 1]
    if value == nil then usage_error(format("option '--%s' needs a value (%s)", name, o.arg)) end
    i = i + 1
  end
  set_option(opts, o, value)
  return i + 1
end

-- Parse a cluster of short options ("-kv", "-j4", "-j 4"); returns the next index.
local function short_options(opts, args, i)
  local s = args[i]
  local k = 2
  while k <= #s do
    local c = s:sub(k, k)
    local o = BY_SHORT[c]
    if not o then usage_error(format("unknown option '-%s'", c)) end
    if o.arg then
      local value = s:sub(k + 1)
      if value == "" then
        value = args[i + 1]
        if value == nil then usage_error(format("option '-%s' needs a value (%s)", c, o.arg)) end
        i = i + 1
      end
      set_option(opts, o, value)
      return i + 1
    end
    set_option(opts, o)
    k = k + 1
  end
  return i + 1
end

-- Parse options from args[i] on, up to the first word that is not an option
-- (or "--", which is skipped).  Returns the index of that word.
local function parse_options(opts, args, i)
  while args[i] ~= nil do
    local a = args[i]
    if a == "--" then return i + 1, true end
    if a:sub(1, 2) == "--" then
      i = long_option(opts, args, i)
    elseif a:sub(1, 1) == "-" and #a > 1 then
      i = short_options(opts, args, i)
    else
      return i
    end
  end
  return i
end

--- Split the command line into options and the rest.  Returns opts and a
-- plan: { mode = "lines"|"args"|"run"|"map", words, config, config_args, ... }.
function M.parse(args)
  local opts = {}
  local i, dashdash = parse_options(opts, args, 1)
  local plan = {}
  local first = args[i]
  if not dashdash and (first == "run" or first == "map") then
    plan.mode = first
    plan.config = args[i + 1]
    if plan.config == nil then usage_error(format("'par %s' needs a config file", first)) end
    plan.config_args = {}
    i = i + 2
    while args[i] ~= nil do
      local done
      i, done = parse_options(opts, args, i)
      if done then
        table.move(args, i, #args, #plan.config_args + 1, plan.config_args)
        break
      end
      if args[i] ~= nil then
        plan.config_args[#plan.config_args + 1] = args[i]
        i = i + 1
      end
    end
    return opts, plan
  end
  local words = {}
  while args[i] ~= nil and args[i] ~= ":::" do
    words[#words + 1] = args[i]
    i = i + 1
  end
  plan.words = words
  if args[i] == ":::" then
    local list = table.move(args, i + 1, #args, 1, {})
    for _, a in ipairs(list) do
      if a == ":::" then usage_error("only one ':::' is supported") end
    end
    if opts.arg_file then usage_error("-a FILE and ::: cannot be combined") end
    plan.list = list
  end
  plan.mode = #words > 0 and "args" or "lines"
  return opts, plan
end

-- }======================================================================

-- {======================================================================
-- Input: commands or arguments, one per line (or NUL-terminated)

-- Items of 'path' (stdin if nil or "-"): commands or arguments, as 'what'
-- says, for the messages.
local function read_input(path, null, what)
  local f, err
  if path == nil or path == "-" then
    f = io.stdin
  else
    f, err = io.open(path, "rb")
    if not f then usage_error(err) end
  end
  local data, rerr = f:read("a")
  if f ~= io.stdin then f:close() end
  if not data then usage_error(format("%s: %s", path or "stdin", rerr)) end
  local items = {}
  if null then
    for item in data:gmatch("([^\0]*)\0?") do
      if item ~= "" then items[#items + 1] = item end
    end
  else
    local n, name = 0, (path == nil or path == "-") and "stdin" or path
    for line in (data .. "\n"):gmatch("([^\n]*)\n") do
      n = n + 1
      line = line:gsub("\r$", "")
      if line:find("%S") and not line:find("^%s*#") then
        if line:find("\0", 1, true) then
          usage_error(format("%s:%d: %s %d contains a NUL byte (use -0 for NUL-separated input)",
            name, n, what, #items + 1))
        end
        items[#items + 1] = line
      end
    end
  end
  return items
end

-- Replacement strings of GNU parallel, each given the raw argument.
local REPLACE = {
  ["{}"] = function(a) return a end,
  ["{.}"] = function(a) return (a:gsub("%.[^./]*$", "")) end,
  ["{/}"] = function(a) return a:match("[^/]*$") end,
  ["{//}"] = function(a) return a:match("^(.*)/") or "." end,
  ["{/.}"] = function(a) return (a:match("[^/]*$"):gsub("%.[^.]*$", "")) end,
}

--- The shell command for argument 'a' of job 'seq': template's replacement
-- strings filled in, or the quoted argument appended when it has none.
function M.expand(template, a, seq)
  local used = false
  local cmd = template:gsub("{[^{}]*}", function(r)
    if r == "{#}" then used = true; return tostring(seq) end
    local f = REPLACE[r]
    if not f then return nil end
    used = true
    return par.quote(f(a))
  end)
  if not used then cmd = cmd .. " " .. par.quote(a) end
  return cmd
end

-- }======================================================================

-- {======================================================================
-- Configs

-- Shell text of a command: argv tables quoted word by word.
local function command_text(c)
  if type(c) ~= "table" then return tostring(c) end
  return util.shell_line(c)
end

local function one_line(s)
  return (tostring(s):gsub("%s*\n%s*", " "))
end

-- A message that names the config file: Lua's "file:line: msg" as it is.
local function named(path, msg)
  msg = one_line(msg)
  if msg:sub(1, #path + 1) == path .. ":" then return msg end
  return path .. ": " .. msg
end

local function error_text(e)
  if type(e) == "string" or type(e) == "number" then return tostring(e) end
  local mt = getmetatable(e)
  if mt and mt.__tostring then return tostring(e) end
  return "raised a " .. typename(e) .. " value"
end

-- The line of 'source' that sets 'key', when exactly one line does.
local function key_line(source, key)
  if type(key) ~= "string" or not source then return nil end
  local found, n = nil, 0
  local pat = "%f[%w_]" .. key:gsub("%p", "%%%0") .. "%s*=[^=]"
  for line in (source .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    if (line .. " "):find(pat) then
      if found then return nil end
      found = n
    end
  end
  return found
end

local function key_name(k)
  if type(k) == "string" then return "'" .. k .. "'" end
  return "[" .. tostring(k) .. "]"
end

local function key_error(cfg, key, msg)
  local line = key_line(cfg.source, key)
  config_error(format("%s%s: %s", cfg.path, line and (":" .. line) or "", msg))
end

-- Checkers for config keys: value -> value, or nil, why.
local function sequence_or_function(v)
  if type(v) == "function" then return v end
  if type(v) ~= "table" then return nil, "table or function expected, got " .. typename(v) end
  if not util.is_sequence(v) then return nil, "sequence expected (keys 1..n only)" end
  return v
end

local function table_value(v)
  if type(v) ~= "table" then return nil, "table expected, got " .. typename(v) end
  return v
end


local function string_or_table(v)
  if type(v) ~= "string" and type(v) ~= "table" then
    return nil, "string or table expected, got " .. typename(v)
  end
  return v
end


local function fn_value(v)
  if type(v) ~= "function" and type(v) ~= "string" then
    return nil, "function or 'module.func' string expected, got " .. typename(v)
  end
  return v
end

local RUN_KEYS = {
  commands = sequence_or_function,
  jobs = check_jobs,
  timeout = util.positive_number,
  kill_after = util.nonneg_number,
  retries = util.nonneg_integer,
  retry_delay = util.nonneg_number,
  halt = util.oneof("never", "soon", "now"),
  joblog = util.string,
  resume = util.boolean_or("failed"),
  progress = util.boolean_or("always"),
  env = table_value,
  cwd = util.string,
  shell = string_or_table,
  stdin = util.string,
  capture = util.boolean,
  output = util.oneof("group", "ungroup"),
  max_output = util.nonneg_integer,
  delay = util.nonneg_number,
  on_done = util.func,
  keep_order = util.boolean,
  tag = util.boolean,
  hosts = table_value,
  ssh = string_or_table,
}

local MAP_KEYS = {
  fn = fn_value,
  items = sequence_or_function,
  procs = check_jobs,
  chunksize = util.positive_integer,
  init = util.func,
  on_result = util.func,
  errors = util.oneof("raise", "collect"),
  worker_memory = util.positive_integer,
  timeout = util.positive_number,
  progress = util.boolean_or("always"),
  format = util.oneof("json", "lua"),
}

-- Prepend the config's directory to package.path, so that the config (and
-- par map's "module.func") can require modules kept beside it.
local function add_config_dir(path)
  local dir = path:match("^(.*)/[^/]*$") or "."
  package.path = format("%s/?.lua;%s/?/init.lua;%s", dir, dir, package.path)
end

--- Load, run and check a config.  Returns { path, source, values }.
function M.load_config(path, keys, args)
  local f, err = io.open(path, "rb")
  if not f then config_error(err) end
  local source, rerr = f:read("a")
  f:close()
  if not source then config_error(path .. ": " .. tostring(rerr)) end
  -- like loadfile: a first line starting with '#' (a #! line) is skipped
  local chunk, perr = load(source:gsub("^#[^\n]*", "", 1), "@" .. path, "t")
  if not chunk then config_error(named(path, perr)) end
  add_config_dir(path)
  local ok, t = pcall(chunk, table.unpack(args or {}))
  if not ok then
    rethrow_interrupt(t)
    config_error(named(path, error_text(t)))
  end
  if type(t) ~= "table" then
    config_error(format("%s: must return a table, returned %s", path, typename(t)))
  end
  local cfg = { path = path, source = source, values = {} }
  for k, v in pairs(t) do
    local check = type(k) == "string" and keys[k]
    if not check then key_error(cfg, k, "unknown key " .. key_name(k)) end
    local val, why = check(v)
    if val == nil then key_error(cfg, k, format("key '%s': %s", k, why)) end
    cfg.values[k] = val
  end
  return cfg
end

-- A sequence from a key that holds one or a function returning one.
local function config_list(cfg, key)
  local v = cfg.values[key]
  if v == nil then key_error(cfg, key, format("key '%s' is missing", key)) end
  if type(v) == "function" then
    local ok, t = pcall(v)
    if not ok then
      rethrow_interrupt(t)
      config_error(named(cfg.path, error_text(t)))
    end
    if type(t) ~= "table" or not util.is_sequence(t) then
      key_error(cfg, key, format("key '%s': the function returned %s, not a sequence", key,
        type(t) == "table" and "a table with keys other than 1..n" or "a " .. typename(t)))
    end
    v = t
  end
  return v
end

-- An error par.run or par.map raised about its arguments, in the terms of
-- whoever gave the value: "bad argument #2 to 'run' (option 'joblog': ...)"
-- -> "--joblog: ..." when the command line set it (or there is no config),
-- else "c.lua:3: key 'joblog': ...".  'o' holds the command-line options.
local function api_error(cfg, msg, argkeys, o)
  if type(msg) ~= "string" then return nil end
  local n, fname, why = msg:match("^bad argument #(%d) to '(%a+)' %((.*)%)$")
  if not n then return nil end
  local key, rest = why:match("^option '([%w_]+)': (.*)$")
  if key then
    local flag = BY_KEY[key]
    if flag and (not cfg or o[key] ~= nil) then usage_error(format("--%s: %s", flag.long, rest)) end
    return cfg and key_error(cfg, key, format("key '%s': %s", key, rest))
  end
  key = argkeys[tonumber(n)]
  if not key then return nil end
  if cfg then key_error(cfg, key, format("key '%s': %s", key, why)) end
  usage_error(format("%s: %s", fname, why))
end

-- }======================================================================

-- {======================================================================
-- Jobs: run, and print output blocks

local function exit_status(nfailed)
  if nfailed > 100 then return 101 end
  return nfailed
end

local function resolve_jobs(v, ntasks)
  if type(v) == "string" then
    local pct = tonumber(v:match("^(.-)%%$"))
    return math.max(1, math.floor(par.cpus() * pct / 100))
  end
  if v == 0 then return math.max(ntasks, 1) end
  return v
end

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

-- The printer: writes each job's output as one block, in completion order
-- or (keep_order) in input order; 'skip' holds the indices that will never
-- end (resumed from the joblog).
local function printer(o, jobs, skip)
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

-- Hosts from an --sshloginfile: one a line, blank lines and # comments skipped.
local function read_hosts(path)
  local f, err = io.open(path)
  if not f then usage_error("--sshloginfile: " .. err) end
  local hosts, n = {}, 0
  for line in f:lines() do
    n = n + 1
    line = line:match("^%s*(.-)%s*$")
    if line ~= "" and not line:find("^#") then
      local why = util.host_problem(line)
      if why then f:close(); usage_error(format("--sshloginfile: %s:%d: %s", path, n, why)) end
      hosts[#hosts + 1] = line
    end
  end
  f:close()
  if #hosts == 0 then usage_error("--sshloginfile: no host in " .. path) end
  return hosts
end

-- par.run's options from the config's values and the command line.
local function run_options(cfg_values, o, njobs)
  local ro = {}
  for k, v in pairs(cfg_values) do ro[k] = v end
  ro.commands, ro.keep_order, ro.tag, ro.on_done = nil, nil, nil, nil
  if o.jobs ~= nil then ro.jobs = o.jobs end
  ro.jobs = ro.jobs ~= nil and resolve_jobs(ro.jobs, njobs) or nil
  for _, k in ipairs({ "timeout", "retries", "halt", "joblog", "delay" }) do
    if o[k] ~= nil then ro[k] = o[k] end
  end
  local hosts = o.sshlogin or o.sshloginfile and read_hosts(o.sshloginfile)
  if hosts then
    ro.hosts = ro.hosts or {}
    for _, h in ipairs(hosts) do ro.hosts[#ro.hosts + 1] = h end
  end
  if o.resume then ro.resume = true end
  if o.resume_failed then ro.resume = "failed" end
  if o.bar then ro.progress = "always" end
  -- par prints the output itself: grouped unless the config asks for ungrouped
  if ro.capture == false or ro.output == "ungroup" then
    ro.capture, ro.output = false, nil
  else
    ro.capture, ro.output = true, nil
  end
  return ro
end

--- Run 'jobs' ({ cmd, text, tag }); returns the exit status.
local function run_jobs(jobs, o, cfg)
  local values = cfg and cfg.values or {}
  o.keep_order = o.keep_order or values.keep_order
  o.tag = o.tag or values.tag
  local ro = run_options(values, o, #jobs)
  if ro.resume and not ro.joblog then
    if cfg and cfg.values.resume and not o.resume and not o.resume_failed then
      key_error(cfg, "resume", "key 'resume' needs key 'joblog'")
    end
    usage_error((o.resume_failed and "--resume-failed" or "--resume") .. " needs --joblog FILE")
  end
  if not ro.capture and (o.keep_order or o.tag) then
    usage_error((o.tag and "--tag" or "--keep-order")
      .. " needs grouped output; the config asks for ungrouped (capture = false or output = 'ungroup')")
  end
  if o.dry_run then
    for _, job in ipairs(jobs) do put(job.text, "\n") end
    flush_out()
    return 0
  end
  o.progress = ro.progress
  -- par.run checks the joblog too, but this read comes first (and a FIFO blocks it)
  local unfit = ro.joblog and joblog.unfit(ro.joblog)
  if unfit then
    if cfg and o.joblog == nil then key_error(cfg, "joblog", "key 'joblog': " .. unfit) end
    usage_error("--joblog: " .. unfit)
  end
  local skip = ro.resume and joblog.read(ro.joblog, ro.resume == "failed", function() end) or {}
  local out = printer(o, jobs, skip)
  local user_done = values.on_done
  ro.on_done = function(res, i)
    if ro.capture then out.done(res, i) end
    if user_done then user_done(res, i) end
  end
  local cmds = {}
  for i, job in ipairs(jobs) do cmds[i] = job.cmd end
  local ok, results, why = pcall(par.run, cmds, ro)
  if not ok then
    api_error(cfg, results, { "commands" }, o)
    out.flush()   -- an interrupt: what ended before it is still printed
    error(results, 0)
  end
  if results == nil then error({ system = why }, 0) end
  out.flush()
  local nfailed = 0
  for _, res in ipairs(results) do
    if not res.ok and res.status ~= "skipped" then nfailed = nfailed + 1 end
  end
  return exit_status(nfailed)
end

local function command_jobs(o, plan)
  local jobs = {}
  if plan.mode == "lines" and not plan.list then
    for i, line in ipairs(read_input(o.arg_file, o.null, "command")) do
      jobs[i] = { cmd = line, text = line, tag = line }
    end
    return jobs
  end
  local list = plan.list or read_input(o.arg_file, o.null, "argument")
  local template = concat(plan.words, " ")
  for i, a in ipairs(list) do
    local cmd = plan.mode == "lines" and a or M.expand(template, a, i)
    if cmd:find("\0", 1, true) then usage_error(format("argument %d contains a NUL byte", i)) end
    jobs[i] = { cmd = cmd, text = cmd, tag = a }
  end
  return jobs
end

local function config_run(o, plan)
  for _, k in ipairs({ "arg_file", "null" }) do
    if o[k] then usage_error(format("option '--%s' does not apply to 'par run'", (k:gsub("_", "-")))) end
  end
  local cfg = M.load_config(plan.config, RUN_KEYS, plan.config_args)
  local cmds = config_list(cfg, "commands")
  local jobs = {}
  for i, c in ipairs(cmds) do
    if type(c) ~= "string" and type(c) ~= "table" then
      key_error(cfg, "commands", format("key 'commands': command #%d is a %s, not a string or argv table",
        i, typename(c)))
    end
    local text = command_text(c)
    jobs[i] = { cmd = c, text = text, tag = text }
  end
  return run_jobs(jobs, o, cfg)
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
  usage_error("--format json needs lua-cjson or dkjson (Debian: apt-get install lua-cjson), or use --format lua")
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

local function config_map(o, plan)
  for _, k in ipairs({ "retries", "halt", "joblog", "resume", "resume_failed", "tag",
      "dry_run", "delay", "arg_file", "null", "sshlogin", "sshloginfile" }) do
    if o[k] then usage_error(format("option '--%s' does not apply to 'par map'", (k:gsub("_", "-")))) end
  end
  local cfg = M.load_config(plan.config, MAP_KEYS, plan.config_args)
  local v = cfg.values
  if v.fn == nil then key_error(cfg, "fn", "key 'fn' is missing") end
  local items = config_list(cfg, "items")
  local fmt = o.format or v.format or "json"
  local encode = fmt == "json" and json_encoder() or M.lua_literal
  local mo = { errors = v.errors or "collect" }
  for _, k in ipairs({ "chunksize", "init", "worker_memory", "timeout" }) do mo[k] = v[k] end
  if o.timeout then mo.timeout = o.timeout end
  local procs = o.jobs
  if procs == nil then procs = v.procs end
  mo.procs = procs ~= nil and resolve_jobs(procs, #items) or nil
  local mode = o.bar and "always" or v.progress
  local bar = progress.new(#items, mode, "items")
  local ndone = 0
  local counter = { counts = function()
    local running = math.min(mo.procs or par.cpus(), #items - ndone)
    return ndone + running, ndone
  end }
  local user_result = v.on_result
  if bar or user_result then
    mo.on_result = function(i, res)
      ndone = ndone + 1
      if bar then bar:draw(counter, 0) end
      if user_result then return user_result(i, res) end
    end
  end
  local ok, results, errs = pcall(par.map, v.fn, items, mo)
  if bar then ndone = #items; bar:finish(counter, 0) end
  if not ok then
    api_error(cfg, results, { "fn", "items" }, o)
    if type(results) == "string" and results:find("^par%.map: item %d+: ") then
      -- errors = "raise": the first failure ends the map
      local msg = results:gsub("^par%.map: ", "")
      io.stderr:write("par: ", o.verbose and msg or first_line(msg), "\n")
      return 1
    end
    error(results, 0)
  end
  if results == nil then error({ system = errs }, 0) end
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
      local msg = tostring(err):gsub("^par%.map: ", "")
      io.stderr:write("par: ", o.verbose and msg or first_line(msg), "\n")
      io.stderr:flush()
      line = fmt == "json" and "null" or "nil"
    end
    put(line, "\n")
  end
  flush_out()
  return exit_status(nfailed)
end

-- }======================================================================

local function main(args)
  local o, plan = M.parse(args)
  if o.help then put(help_text()); flush_out(); return 0 end
  if o.version then put("par ", par.VERSION, "\n"); flush_out(); return 0 end
  if o.format and plan.mode ~= "map" then usage_error("--format applies only to 'par map'") end
  if plan.mode == "run" then return config_run(o, plan) end
  if plan.mode == "map" then return config_map(o, plan) end
  return run_jobs(command_jobs(o, plan), o)
end

--- Run the par command with the arguments 'args' (the script's 'arg');
-- returns the exit status.
function M.main(args)
  -- SIGINT, SIGTERM, SIGHUP, SIGQUIT and SIGPIPE become the error
  -- "interrupted" wherever they arrive, and par.run and par.map reap what
  -- they started before it reaches us
  local trap <close> = core.trap() -- luacheck: ignore 211 (closed on return)
  local ok, status = pcall(main, args or {})
  if ok then return status end
  local e = status
  if type(e) == "table" and e.usage then
    io.stderr:write("par: ", one_line(e.usage), "\n", USAGE_HINT, "\n")
  elseif type(e) == "table" and e.config then
    io.stderr:write("par: ", one_line(e.config), "\n")
  elseif type(e) == "table" and e.system then
    io.stderr:write("par: ", one_line(e.system), "\n")
  elseif type(e) == "table" and e.pipe then
    return 128 + 13                    -- as if SIGPIPE had ended us: no word
  elseif e == "interrupted" then
    local sig = core.lastsignal()
    if sig == 0 then sig = 2 end
    if sig ~= 13 then io.stderr:write("par: interrupted\n") end
    return 128 + sig
  else
    io.stderr:write("par: ", one_line(error_text(e)), "\n")
  end
  return 255
end

return M
