--- The par command line: the options (one table that the parser and --help
-- both read), their value parsers, and the parser that splits a command line
-- into options and a plan.
--
-- The parser and --help need, per option, only the record built below:
--   { short = "j" or nil, long = "jobs", arg = "N" or nil (nil: a flag),
--     key = "jobs", default = "CPUS" or nil, help = "...",
--     parse = function(text) -> value (raises a usage error) or nil }
-- OPTIONS and VALUE_PARSERS are where those records come from.
local par = require "par"
local util = require "par.util"
local errors = require "par.cli.errors"

local M = {}

local type, ipairs, tostring = type, ipairs, tostring
local format, concat = string.format, table.concat
local usage_error = errors.usage
local typename = util.typename

-- {======================================================================
-- Options

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

--- A jobs value (integer >= 0 or "N%"), or nil, why: for -j, and for the
-- configs' jobs and procs keys.
function M.check_jobs(v)
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
    local v, why = M.check_jobs(s)
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

-- One row per option: short flag, long flag, arg name (nil: a flag), key in
-- opts, default for --help, help line.  Its value parser is VALUE_PARSERS[key].
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
  local opt = { short = o[1], long = o[2], arg = o[3], key = o[4], default = o[5], help = o[6],
    parse = VALUE_PARSERS[o[4]] }
  if opt.short then BY_SHORT[opt.short] = opt end
  BY_LONG[opt.long] = opt
  BY_KEY[opt.key] = opt
  OPTIONS[i] = opt
end

--- The option that sets opts[key], or nil.
function M.option(key)
  return BY_KEY[key]
end

--- The text of --help.
function M.help()
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

-- }======================================================================

-- {======================================================================
-- The parser

-- Store one option; 'value' is nil for a flag.
local function set_option(opts, o, value)
  opts[o.key] = o.arg and (o.parse and o.parse(value) or value) or true
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

return M
