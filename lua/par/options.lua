--- Every option of par.run, par.map and the par command, once.
--
-- One list per call.  An entry is an option (or, with 'arg', a positional
-- argument that a config file gives as a key):
--   name     its key in opts, and in a config file
--   check    value -> value, or nil, why: what the API accepts
--   default  the default as README and --help show it (nil: none)
--   help     one line, for README's tables
--   flags    the par command's flags that set it (see FLAG below); a flag
--            table shared by two calls ('--jobs') is the same table
--   config   checker of the config key when it differs from check (a
--            config's values are the par command's: jobs = "50%");
--            false when a config cannot set it
--   alias    another name the API accepts for it (par.map's procs)
--   arg      the argument's position, for positional entries
--   core     par.run hands it to the core as it is (runner.c reads it)
-- par.run, par.map, the par command's parser, its config checks and its
-- --help all read these lists; spec/options_spec.lua holds README's option
-- tables to them.
local util = require "par.util"
local joblog = require "par.joblog"

local M = {}

local type, next, rawget, rawlen, tostring, ipairs = type, next, rawget, rawlen, tostring, ipairs
local format = string.format
local typename = util.typename

-- {======================================================================
-- Checkers: value -> value, or nil, why

local function check_string(v)
  if type(v) ~= "string" then return nil, "string expected, got " .. typename(v) end
  if v:find("\0", 1, true) then return nil, "string contains a NUL byte" end
  return v
end

-- Whether t holds keys 1..#t only, besides a key 'extra' (if given).
local function is_sequence_but(t, extra)
  if extra == nil or rawget(t, extra) == nil then return util.is_sequence(t) end
  local n, count = rawlen(t), 0
  for k in next, t do
    if k ~= extra then
      if math.type(k) ~= "integer" or k < 1 or k > n then return false end
      count = count + 1
    end
  end
  return count == n
end

--- A command given as an argv table: nil, why unless it is one.  'extra':
-- a key it may hold besides its words (a command's "stdin").
function M.check_argv(t, what, extra)
  if type(t) ~= "table" then return nil, what .. " must be a string or an argv table" end
  local bad = util.len_problem(t)
  if bad then return nil, what .. ": " .. bad end
  if #t == 0 or not is_sequence_but(t, extra) then
    return nil, what .. " must be a non-empty sequence of strings"
  end
  for k = 1, #t do
    local a = rawget(t, k)
    if type(a) ~= "string" then
      return nil, format("%s: element %d is a %s, not a string", what, k, typename(a))
    end
    if a:find("\0", 1, true) then return nil, format("%s: element %d contains a NUL byte", what, k) end
  end
  return t
end

--- par.run's commands: a sequence of strings and argv tables.
--- Command #i of an input: a string for the shell, or an argv table.
function M.check_command(c, i)
  if type(c) == "string" then
    if c == "" then return nil, format("command #%d is an empty string", i) end
    if c:find("\0", 1, true) then return nil, format("command #%d contains a NUL byte", i) end
    return c
  end
  local stdin = type(c) == "table" and rawget(c, "stdin")
  if stdin and type(stdin) ~= "string" then
    return nil, format("command #%d: stdin must be a string, got %s", i, typename(stdin))
  end
  return M.check_argv(c, "command #" .. i, "stdin")
end

local function check_commands(cmds)
  if type(cmds) == "function" then return cmds end
  if type(cmds) ~= "table" then return nil, "table or function expected, got " .. typename(cmds) end
  local bad = util.len_problem(cmds)
  if bad then return nil, bad end
  if not util.is_sequence(cmds) then return nil, "sequence expected (keys 1..n only)" end
  for i = 1, #cmds do
    local ok, why = M.check_command(rawget(cmds, i), i)
    if not ok then return nil, why end
  end
  return cmds
end

--- par.map's items: items, #items (nil for an iterator); or nil, why.
local function check_items(items)
  if type(items) == "function" then return items end
  if type(items) ~= "table" then return nil, "table or function expected, got " .. typename(items) end
  local bad = util.len_problem(items)
  if bad then return nil, bad end
  local n = require("par.core").seqlen(items)
  if not n then return nil, "sequence expected, got a table with holes or keys beyond #items" end
  return items, n
end

local function check_fn(v)
  if type(v) == "function" or type(v) == "string" then return v end
  return nil, "function or string expected, got " .. typename(v)
end

local function check_env(v)
  if type(v) ~= "table" then return nil, "table expected, got " .. typename(v) end
  for k, val in next, v do
    if type(k) ~= "string" or k == "" or k:find("[=%z]") then
      return nil, "bad variable name " .. util.shown(k)
    end
    if val ~= false and type(val) ~= "string" or (val and val:find("\0", 1, true)) then
      return nil, format("variable '%s' must be a string without NUL bytes, or false", k)
    end
  end
  return v
end

local function check_shell(v)
  if type(v) == "string" then
    return check_string(v) and { v, "-c" } or nil, "string without NUL bytes expected"
  end
  return M.check_argv(v, "shell")
end

local function check_hosts(v)
  if type(v) ~= "table" then return nil, "table expected, got " .. typename(v) end
  local bad = util.len_problem(v)
  if bad then return nil, bad end
  if #v == 0 or not util.is_sequence(v) then return nil, "non-empty sequence of host names expected" end
  for i = 1, #v do
    local why = util.host_problem(rawget(v, i), "host #" .. i)
    if why then return nil, why end
  end
  return v
end

local function check_ssh(v)
  if type(v) == "string" then
    local words = {}
    for w in v:gmatch("%S+") do words[#words + 1] = w end
    if #words == 0 then return nil, "empty ssh command" end
    return words
  end
  return M.check_argv(v, "ssh")
end

local function check_mark(v)
  local s, why = check_string(v)
  if s == "" then return nil, "non-empty string expected" end
  return s, why
end

local function check_joblog(v)
  local path, why = check_string(v)
  if not path then return nil, why end
  why = joblog.unfit(path)
  if why then return nil, why end
  return path
end

--- The par command's number of jobs (a config's too), as GNU parallel's
-- -j: an integer >= 0 (0: as many as possible), "N%" of the CPUs, "+N"
-- or "-N" CPUs more or fewer, or a file that holds one of these.
function M.cli_jobs(v)
  if math.type(v) == "integer" and v >= 0 then return v end
  if type(v) == "string" then
    if v:match("^%d+%.?%d*%%$") or v:match("^[+-]%d+$") then return v end
    local n = v:match("^%d+$") and math.tointeger(tonumber(v))
    if n then return n end
    local f = io.open(v)
    if f then
      local s = f:read("l") or ""
      f:close()
      s = s:match("^%s*(.-)%s*$")
      if s ~= v and M.cli_jobs(s) ~= nil then return M.cli_jobs(s) end
      return nil, format("the file '%s' holds no number of jobs", v)
    end
  end
  return nil, "integer >= 0, 'N%', '+N', '-N' or a file expected, got " .. util.shown(v)
end

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

-- }======================================================================

-- {======================================================================
-- Flags of the par command.  FLAG: short (one letter or nil), long, arg
-- (the value's name; nil for a flag without a value), parse (string ->
-- value, or nil, why; for a flag with a value), value (what a flag without
-- one sets; default true), key (where the parsed value goes: default the
-- option's name), default and help (for --help; 'final' marks a flag that
-- does its job and exits, shown without a default).

-- A number from the command line ('what': "number" or "integer"), then
-- the option's own check.
local function number_flag(check, what)
  return function(s)
    local v = tonumber(s)
    if v == nil then return nil, format("%s expected, got '%s'", what or "number", s) end
    return check(math.tointeger(v) or v)
  end
end

local function word_flag(check)
  return function(s) return check(s) end
end

-- A time as GNU parallel writes it: seconds, or with units (1.5h, 2m30s).
local UNITS = { s = 1, m = 60, h = 3600, d = 86400 }
local function duration(check)
  return function(s)
    local v = tonumber(s)
    if v == nil then
      if s:find("%%$") then return check(s) end
      local total, rest = 0, s
      while rest ~= "" do
        local n, u, after = rest:match("^(%d*%.?%d+)([smhd])()")
        if not n then return nil, format("seconds expected (or with a unit: 30s, 2m, 1h, 1d), got '%s'", s) end
        total = total + tonumber(n) * UNITS[u]
        rest = rest:sub(after)
      end
      v = total
    end
    return check(math.tointeger(v) or v)
  end
end

-- --retries N of GNU parallel is N tries in all; par.run's retries are
-- tries after the first.
local function tries_flag(s)
  local n = math.tointeger(tonumber(s))
  if n == nil or n < 0 then return nil, "integer >= 0 expected, got '" .. s .. "'" end
  return math.max(n - 1, 0)
end

--- A run's timeout: seconds, or "N%" of the median runtime of the jobs
-- that succeeded so far (GNU parallel's --timeout N%).
function M.check_timeout(v)
  if type(v) == "string" then
    local pct = v:match("^(%d+%.?%d*)%%$")
    if pct and tonumber(pct) > 0 then return v end
    return nil, "seconds or 'N%' (N > 0) expected, got " .. util.shown(v)
  end
  return util.positive_number(v)
end

-- Linux's signal numbers, for --termseq's names.
local SIGNALS = { HUP = 1, INT = 2, QUIT = 3, ILL = 4, TRAP = 5, ABRT = 6, IOT = 6, BUS = 7,
  FPE = 8, KILL = 9, USR1 = 10, SEGV = 11, USR2 = 12, PIPE = 13, ALRM = 14, TERM = 15,
  STKFLT = 16, CHLD = 17, CONT = 18, STOP = 19, TSTP = 20, TTIN = 21, TTOU = 22, URG = 23,
  XCPU = 24, XFSZ = 25, VTALRM = 26, PROF = 27, WINCH = 28, IO = 29, POLL = 29, PWR = 30,
  SYS = 31 }

--- GNU parallel's --termseq: "SIG,MS,SIG,MS,...", signals by name (TERM,
-- SIGTERM) or number, each followed by the milliseconds to wait for the
-- job to end before the next; a last signal without a wait waits 0.
-- Returns { sig, seconds, sig, seconds, ... }, or nil, why.
function M.termseq(v)
  local s, why = check_string(v)
  if not s then return nil, why end
  local words, out = {}, {}
  for w in (s .. ","):gmatch("([^,]*),") do words[#words + 1] = w end
  if #words % 2 == 1 then words[#words + 1] = "0" end
  if s == "" or #words > 64 then return nil, "1 to 32 signals expected, got " .. util.shown(v) end
  for k = 1, #words, 2 do
    local name, ms = words[k]:upper():gsub("^SIG", ""), tonumber(words[k + 1])
    local sig = SIGNALS[name] or math.tointeger(tonumber(name))
    if not sig or sig < 1 or sig > 64 then return nil, format("'%s' is not a signal", words[k]) end
    if not ms or ms < 0 or ms >= 1e9 then
      return nil, format("milliseconds >= 0 expected after %s, got '%s'", words[k], words[k + 1])
    end
    out[#out + 1], out[#out + 2] = sig, ms / 1000
  end
  return out
end

local function check_termseq(v)
  local ok, why = M.termseq(v)
  if not ok then return nil, why end
  return v
end

--- GNU parallel's default --termseq.
M.TERMSEQ = "TERM,200,TERM,100,TERM,50,KILL,25"

local function host_words(s)
  local hosts = {}
  for h in s:gmatch("[^,%s]+") do
    local why = util.host_problem(h)
    if why then return nil, why end
    hosts[#hosts + 1] = h
  end
  if #hosts == 0 then return nil, "no host given" end
  return hosts
end

local JOBS = { short = "j", long = "jobs", arg = "N", parse = M.cli_jobs, default = "CPUS",
  help = "run N jobs at once; N% of the CPUs (rounded up), +N or -N CPUs more or fewer,"
    .. " a FILE holding N; 0 runs all at once" }
local PROCS = { short = "P", long = "max-procs", arg = "N", parse = M.cli_jobs, default = "CPUS",
  help = "the same as -j" }
local TIMEOUT = { long = "timeout", arg = "S", parse = duration(M.check_timeout),
  help = "stop a job after S seconds (or 30s, 2m, 1h, 1d), or N% of the median runtime of the"
    .. " jobs that succeeded so far: --termseq to its group" }
local BAR = { long = "bar", value = "always", help = "show a progress line on stderr" }

-- }======================================================================

local HALT = util.oneof("never", "soon", "now")
local PROGRESS = util.boolean_or("always")

--- par.run(cmds [, n] [, opts])
M.run = {
  { name = "commands", arg = 1, check = check_commands, config = sequence_or_function,
    help = "a sequence of commands (strings run with the shell, argv tables directly),"
      .. " or an iterator function returning them, then nil" },
  { name = "jobs", check = util.positive_integer, config = M.cli_jobs, flags = { JOBS, PROCS },
    default = "`par.cpus()`", help = "worker threads; never more than commands" },
  { name = "capture", check = util.boolean, default = "`true`",
    help = "`false`: commands share the caller's stdout and stderr" },
  { name = "stdin", core = true, check = util.string, default = "`/dev/null`", help = "a string fed to every command" },
  { name = "env", core = true, check = check_env, config = table_value,
    help = "`{NAME = \"value\"}` adds or overrides a variable, `{NAME = false}` removes one" },
  { name = "cwd", core = true, check = check_string, help = "directory the commands run in",
    flags = { { long = "wd", arg = "DIR", help = "run the jobs in directory DIR" } } },
  { name = "shell", check = check_shell, config = string_or_table, default = "`{\"/bin/sh\", \"-c\"}`",
    help = "for string commands: a program (`\"bash\"`) or an argv prefix" },
  { name = "timeout", check = M.check_timeout, flags = { TIMEOUT },
    help = "seconds, or `\"N%\"` of the median runtime of the commands that succeeded so far;"
      .. " then `termseq` to the command's process group" },
  { name = "kill_after", core = true, check = util.nonneg_number, default = "2",
    help = "seconds between a timeout's SIGTERM and its SIGKILL (without `termseq`)" },
  { name = "termseq", check = check_termseq,
    default = "SIGTERM, `kill_after`, SIGKILL",
    flags = { { long = "termseq", arg = "SEQ", parse = check_termseq, default = M.TERMSEQ,
      help = "signals and milliseconds sent to a job on a timeout, --halt now or an interrupt:"
        .. " each signal, then its wait while the job lives" },
      { long = "term-seq", arg = "SEQ", parse = check_termseq, help = "the same as --termseq" } },
    help = "GNU parallel's `--termseq`: `\"SIG,MS,SIG,MS,...\"` sent to a command that must stop" },
  { name = "retries", core = true, check = util.nonneg_integer, default = "0",
    flags = { { long = "retries", arg = "N", parse = tries_flag, default = "1",
      help = "try a failing job up to N times in all (GNU's count: the Lua option retries is N - 1)" } },
    help = "run a failed command again, up to `retries` more times" },
  { name = "retry_delay", core = true, check = util.nonneg_number, default = "0",
    help = "seconds to wait before each retry" },
  { name = "halt", core = true, check = HALT, default = "`\"never\"`",
    help = "`\"soon\"`: after a failure start nothing new; `\"now\"`: also stop running commands" },
  { name = "halt_fails", core = true, check = util.positive_integer, default = "1",
    help = "with `halt`: how many commands must fail before it halts" },
  { name = "on_done", check = util.func,
    help = "`function(result, i)` on the caller's thread as each command ends" },
  { name = "on_output", check = util.func,
    help = "`function(i, stream, chunk)` as output arrives (`\"stdout\"`, `\"stderr\"`); nothing is captured" },
  { name = "on_start", check = util.func,
    help = "`function(i, slot)` on the caller's thread as each command starts, with its job slot" },
  { name = "ordered", check = util.boolean, default = "`false`",
    help = "`par.each`: yield in input order, holding back only what must wait" },
  { name = "progress", check = PROGRESS, default = "`false`", flags = { BAR },
    help = "one line on stderr, redrawn; `true` only on a terminal, `\"always\"` anyway" },
  { name = "joblog", check = check_joblog, config = util.string,
    flags = { { long = "joblog", arg = "FILE",
      help = "append GNU parallel's joblog line for each job as it ends" } },
    help = "append GNU parallel's `--joblog` lines, flushed as each command ends" },
  { name = "resume", check = util.boolean_or("failed"), default = "`false`",
    flags = { { long = "resume", help = "with a joblog: skip the jobs it already holds" },
      { long = "resume-failed", value = "failed",
        help = "with a joblog: rerun its failed jobs, skip the others in it" } },
    help = "with `joblog`: `true` skips what the log holds; `\"failed\"` reruns its failures" },
  { name = "max_output", core = true, check = util.nonneg_integer, default = "64 MiB",
    help = "bytes kept per stream; the rest is read and dropped, `truncated = true`" },
  { name = "output", check = util.oneof("group", "ungroup"),
    help = "with `capture = false`: `\"group\"` writes each command's output in one block;"
      .. " `\"ungroup\"` passes it through" },
  { name = "delay", core = true, check = util.nonneg_number, default = "0",
    flags = { { long = "delay", arg = "S", parse = duration(util.nonneg_number),
      help = "wait at least S seconds (or 30s, 2m, ...) between two job starts" } },
    help = "minimum seconds between two command starts" },
  { name = "hosts", check = check_hosts, config = table_value,
    flags = { { short = "S", long = "sshlogin", arg = "HOSTS", parse = host_words, key = "sshlogin",
      multi = true, help = "run jobs on these ssh hosts, comma-separated ([N/]host; ':' is here); repeated,"
        .. " the hosts add up" },
      { long = "sshloginfile", arg = "FILE", key = "sshloginfile", multi = true,
        help = "read ssh hosts from FILE, one per line (# comments); repeated, the hosts add up" } },
    help = "`{\"[N/]host\", ...}`: run the commands there over ssh; `\":\"` is this machine" },
  { name = "ssh", check = check_ssh, config = string_or_table, default = "`ssh`",
    flags = { { long = "ssh", arg = "CMD", default = "ssh",
      help = "the ssh client for -S hosts, as words (--ssh 'ssh -F FILE')" } },
    help = "the ssh client, as a string of words or an argv table" },
  { name = "transfer", check = util.func,
    help = "`function(i)` for ssh hosts: command i's `{send = {FILE...}, back = {FILE...},"
      .. " cleanup = true, wd = DIR, rmwd = true}` or nil, as GNU parallel's --transfer, --return,"
      .. " --cleanup and --wd" },
  { name = "slotmark", core = true, check = check_mark,
    help = "a string replaced in each command, as it starts, by its job slot number" },
}

--- par.map(fn, items [, n] [, opts])
M.map = {
  { name = "fn", arg = 1, check = check_fn, config = fn_value,
    help = "a function, or `\"module.name.func\"`" },
  { name = "items", arg = 2, check = check_items, config = sequence_or_function,
    help = "a sequence of values, or an iterator function called until it returns nil" },
  { name = "jobs", alias = "procs", check = util.positive_integer, config = M.cli_jobs,
    flags = { JOBS, PROCS }, default = "`par.cpus()`", help = "worker processes; never more than items" },
  { name = "chunksize", check = util.positive_integer, default = "guided",
    help = "items handed to a worker at a time" },
  { name = "init", check = util.func, help = "a function each worker runs once, before its first item" },
  { name = "on_result", check = util.func,
    help = "`function(value, i)` in the caller as each result arrives" },
  { name = "errors", check = util.oneof("raise", "collect"), default = "`\"raise\"`",
    help = "`\"collect\"`: return `results, errs`" },
  { name = "worker_memory", check = util.positive_integer, default = "64 MiB",
    help = "fresh memory a worker may take before it is replaced" },
  { name = "timeout", check = util.positive_number, flags = { TIMEOUT }, help = "seconds per item" },
  { name = "progress", check = PROGRESS, default = "`false`", flags = { BAR },
    help = "as for `par.run`, counting items" },
  { name = "ordered", check = util.boolean, default = "`false`",
    help = "`par.imap` only: yield in input order, holding back only what must wait" },
}

--- par.pool([n] [, opts])
M.pool = {
  { name = "jobs", alias = "procs", check = util.positive_integer, default = "`par.cpus()`",
    help = "worker processes, forked when the pool is made" },
  { name = "init", check = util.func, help = "a function each worker runs once, after its fork" },
  { name = "worker_memory", check = util.positive_integer, default = "64 MiB",
    help = "fresh memory a worker may take before it is replaced" },
  { name = "max_tasks", check = util.positive_integer, default = "none",
    help = "tasks a worker runs before it is replaced (a map's chunk is one)" },
  { name = "timeout", check = util.positive_number,
    help = "seconds per task (per item of a map): its worker is killed and replaced" },
}

--- pool:map(fn, items [, opts]) and pool:imap
M.pool_map = {
  { name = "chunksize", check = util.positive_integer, default = "guided",
    help = "items sent to a worker at a time" },
  { name = "on_result", check = util.func,
    help = "`function(value, i)` in the caller as each result arrives" },
  { name = "errors", check = util.oneof("raise", "collect"), default = "`\"raise\"`",
    help = "`\"collect\"`: return `results, errs` (imap: yield `i, nil, err`)" },
  { name = "ordered", check = util.boolean, default = "`false`",
    help = "`pool:imap` only: yield in input order" },
}

local FORMAT = util.oneof("json", "lua")
local TRIM = util.oneof("n", "l", "r", "lr", "rl")

local function any_integer(v)
  if math.type(v) == "integer" then return v end
  return nil, "integer expected, got " .. tostring(v)
end

-- -d D: one byte, or \n, \t, \0, \\ and \xHH.
local ESCAPES = { n = "\n", t = "\t", r = "\r", ["0"] = "\0", ["\\"] = "\\" }
local function delimiter(s)
  local d = s
  if s:sub(1, 1) == "\\" and #s > 1 then
    local hex = s:match("^\\x(%x%x)$")
    d = ESCAPES[s:sub(2)] or (hex and string.char(tonumber(hex, 16)))
  end
  if not d or #d ~= 1 then return nil, format("one character expected (or \\n, \\t, \\0, \\xHH), got '%s'", s) end
  return d
end

-- --halt as GNU parallel writes it: WHEN,WHY=N or WHY=N% (WHEN now or
-- soon, WHY fail, success or done), or never, or the legacy 0, 1, 2.
-- Returns { when, why, n or pct } (nil: never).
local function gnu_halt(s)
  if s == "never" or s == "0" then return false end
  if s == "soon" or s == "1" then return { when = "soon", why = "fail", n = 1 } end
  if s == "now" or s == "2" then return { when = "now", why = "fail", n = 1 } end
  local when, why, n, pct = s:match("^(%a+),(%a+)=(%d+%.?%d*)(%%?)$")
  if not why or (when ~= "now" and when ~= "soon")
      or (why ~= "fail" and why ~= "success" and why ~= "done") then
    return nil, format("now|soon,fail|success|done=N|N%% expected (or 0, 1, 2), got '%s'", s)
  end
  n = tonumber(n)
  if pct == "%" then return { when = when, why = why, pct = n } end
  if math.type(n) ~= "integer" or n < 1 then return nil, format("a count >= 1 expected, got '%s'", s) end
  return { when = when, why = why, n = n }
end

-- --load MAX: a number of processes, +N or -N CPUs more or fewer, N% of
-- the CPUs, or a file that holds one of these (read again as it changes).
local function load_spec(s)
  if s:match("^[+-]%d+$") or s:match("^%d+%%$") or s:match("^%d+%.?%d*$") then return s end
  if require("par.core").filetype(s) == "file" then return s end
  return nil, format("a number, +N, -N, N%% or a file expected, got '%s'", s)
end

-- --memfree SIZE, with --block's units.
local function mem_size(s)
  if tonumber((s:gsub("[KMGTPEkmgtpe]?[iI]?$", ""))) == 0 then return 0 end   -- no limit, as GNU's
  local v, why = require("par.cli.pipe").size(s)
  if v == nil then return nil, why end
  if v < 0 then return nil, format("a size of 0 or more expected, got '%s'", s) end
  return v
end

-- --block SIZE, read as par.cli.pipe reads it (required when parsed: the
-- par command alone loads the CLI modules).
local function pipe_size(s)
  return require("par.cli.pipe").size(s)
end

--- The par command's own options; 'modes' are the ones each applies to
-- ("lines" and "args": commands from input; "run", "map": a config), and
-- 'config' the config kind that may set it too.
M.cli = {
  -- input
  { name = "arg_file", modes = "lines args",
    flags = { { short = "a", long = "arg-file", arg = "FILE", multi = true, default = "stdin",
      help = "an input source: the lines of FILE ('-' is stdin); repeated, sources combine" } } },
  { name = "null", modes = "lines args",
    flags = { { short = "0", long = "null", help = "input items end with NUL, not newline" } } },
  { name = "delimiter", modes = "lines args",
    flags = { { short = "d", long = "delimiter", arg = "D", parse = delimiter, default = "\\n",
      help = "input items end with the character D (\\n, \\t, \\0, \\xHH too)" } } },
  { name = "eof", modes = "lines args",
    flags = { { short = "E", long = "eof", arg = "STR",
      help = "an item STR ends the input; it and the rest are not read" } } },
  { name = "no_run_if_empty", modes = "lines args",
    flags = { { short = "r", long = "no-run-if-empty", help = "skip items that are empty or all blanks" } } },
  { name = "trim", modes = "lines args",
    flags = { { long = "trim", arg = "n|l|r|lr", parse = word_flag(TRIM), default = "n",
      help = "remove blanks at the left, the right or both ends of each item" } } },
  { name = "colsep", modes = "lines args",
    flags = { { short = "C", long = "colsep", arg = "RE",
      help = "split each item into columns at RE ({1}, {2}, ...): a character, \\t, \\s+, [class]+" } } },
  { name = "header", modes = "lines args",
    flags = { { long = "header", arg = ":|N",
      help = "the first item of each source names its columns ({name} replacement strings);"
        .. " with --pipe, the input's first N lines (':' one) start every block" } } },
  { name = "link", modes = "lines args",
    flags = { { long = "link", help = "take the input sources side by side (the shorter wrap around),"
      .. " not every combination" }, { long = "xapply", help = "the same as --link" } } },
  { name = "shuf", modes = "lines args",
    flags = { { long = "shuf", help = "run the jobs in a random order (reads all input first)" } } },
  { name = "arg_sep", modes = "lines args",
    flags = { { long = "arg-sep", arg = "SEP", default = ":::", help = "use SEP for ::: (and SEP+ for :::+)" } } },
  { name = "arg_file_sep", modes = "lines args",
    flags = { { long = "arg-file-sep", arg = "SEP", default = "::::",
      help = "use SEP for :::: (and SEP+ for ::::+)" } } },
  -- arguments per job
  { name = "max_args", modes = "lines args",
    flags = { { short = "N", arg = "N", parse = number_flag(util.nonneg_integer, "integer"),
      help = "N items per job, {1}..{N} each; -N0 reads one item a job and inserts none" },
      { short = "n", long = "max-args", arg = "N", parse = number_flag(util.nonneg_integer, "integer"),
        help = "the same as -N" } } },
  { name = "max_lines", modes = "lines args",
    flags = { { short = "L", long = "max-lines", arg = "N", parse = number_flag(util.positive_integer, "integer"),
      help = "N input lines per job (a line ending in a blank goes on on the next);"
        .. " with --pipe, a record is N lines" } } },
  { name = "multi", modes = "lines args",
    flags = { { short = "m", long = "multi", value = "m",
      help = "as many items per job as the command line holds ({} is all of them), spread over the jobs" },
      { short = "X", long = "context", value = "X",
        help = "the same, repeating each word that holds a replacement string once per item" },
      { long = "xargs", value = "xargs", help = "as many items per job as the command line holds, not spread" } } },
  { name = "max_chars", modes = "lines args",
    flags = { { short = "s", long = "max-chars", arg = "N", parse = number_flag(util.positive_integer, "integer"),
      default = "130329", help = "command lines of -m, -X and --xargs are shorter than N" } } },
  { name = "exit_if_long", modes = "lines args",
    flags = { { short = "x", long = "exit", help = "a command line longer than -s is an error (it always is)" } } },
  -- replacement strings
  { name = "replace", modes = "lines args",
    flags = { { short = "I", long = "replace", arg = "STR", default = "{}", help = "use STR for {}" } } },
  { name = "extensionreplace", modes = "lines args",
    flags = { { long = "extensionreplace", arg = "STR", default = "{.}", help = "use STR for {.}" },
      { long = "er", arg = "STR", help = "the same" } } },
  { name = "basenamereplace", modes = "lines args",
    flags = { { long = "basenamereplace", arg = "STR", default = "{/}", help = "use STR for {/}" },
      { long = "bnr", arg = "STR", help = "the same" } } },
  { name = "dirnamereplace", modes = "lines args",
    flags = { { long = "dirnamereplace", arg = "STR", default = "{//}", help = "use STR for {//}" },
      { long = "dnr", arg = "STR", help = "the same" } } },
  { name = "basenameextensionreplace", modes = "lines args",
    flags = { { long = "basenameextensionreplace", arg = "STR", default = "{/.}", help = "use STR for {/.}" },
      { long = "bner", arg = "STR", help = "the same" } } },
  { name = "seqreplace", modes = "lines args",
    flags = { { long = "seqreplace", arg = "STR", default = "{#}", help = "use STR for {#}" } } },
  { name = "slotreplace", modes = "lines args",
    flags = { { long = "slotreplace", arg = "STR", default = "{%}", help = "use STR for {%}" } } },
  { name = "plus", modes = "lines args",
    flags = { { long = "plus", help = "also {##} (the number of jobs), {0#}, {+/}, {+.}, {..}, {...}, ..." } } },
  { name = "rpl", modes = "lines args",
    flags = { { long = "rpl", arg = "'TAG CODE'", multi = true,
      help = "a replacement string TAG whose value is the Lua CODE over _ (the argument)" } } },
  { name = "quote", modes = "lines args",
    flags = { { short = "q", long = "quote",
      help = "quote the command's words too: the shell runs them as they are" } } },
  -- jobs
  { name = "halt", modes = "lines args run",
    flags = { { long = "halt", arg = "WHEN", parse = gnu_halt, default = "never",
      help = "now|soon,fail|success|done=N|N%: stop after N (or N%) such jobs; now also kills"
        .. " the running ones; 0, 1 and 2 are never, soon,fail=1 and now,fail=1" },
      { long = "halt-on-error", arg = "WHEN", parse = gnu_halt, help = "the same as --halt" } } },
  { name = "load", modes = "lines args run",
    flags = { { long = "load", arg = "MAX", parse = load_spec,
      help = "start a job only while fewer than MAX processes run (+N, -N, N% of the CPUs,"
        .. " or a FILE holding one)" } } },
  { name = "memfree", modes = "lines args run",
    flags = { { long = "memfree", arg = "SIZE", parse = mem_size,
      help = "start a job only while more than SIZE bytes of memory are free (k, M, G, ...)" } } },
  { name = "gnu_progress", modes = "lines args run",
    flags = { { long = "progress",
      help = "show GNU parallel's progress lines on stderr: jobs running, completed,"
        .. " seconds a job" } } },
  { name = "eta", modes = "lines args run",
    flags = { { long = "eta",
      help = "--progress with the estimated seconds left (reads all input first)" } } },
  { name = "retry_failed", modes = "lines args",
    flags = { { long = "retry-failed",
      help = "with --joblog FILE: run again the commands FILE logs as failed,"
        .. " not CMD and its input" },
      { long = "retryfailed", help = "the same" } } },
  { name = "nice", modes = "lines args",
    flags = { { long = "nice", arg = "N", parse = number_flag(any_integer, "integer"),
      default = "0", help = "run the jobs under nice -n N" } } },
  -- output
  { name = "keep_order", modes = "lines args run", config = "run", check = util.boolean,
    flags = { { short = "k", long = "keep-order",
      help = "print job output in input order, not completion order" } } },
  { name = "tag", modes = "lines args run", config = "run", check = util.boolean,
    flags = { { long = "tag", help = "prefix each output line with the job's arguments and a tab" } } },
  { name = "tagstring", modes = "lines args",
    flags = { { long = "tagstring", arg = "STR", help = "--tag with STR (replacement strings filled in)" } } },
  { name = "line_buffer", modes = "lines args run",
    flags = { { long = "line-buffer", help = "print output a whole line at a time as it arrives; lines never mix" },
      { long = "lb", help = "the same" } } },
  { name = "ungroup", modes = "lines args run",
    flags = { { short = "u", long = "ungroup",
      help = "print output as it arrives, in pieces; lines of jobs may mix" } } },
  { name = "group", modes = "lines args run",
    flags = { { long = "group", default = "on",
      help = "print each job's output in one block when it ends" } } },
  { name = "results", modes = "lines args",
    flags = { { long = "results", arg = "NAME",
      help = "save each job's stdout, stderr, seq in NAME/<args>/ (NAME.csv, .tsv: a row a job; .json: an"
        .. " object a line; -.csv ...: on stdout), not print them" },
      { long = "res", arg = "NAME", help = "the same" } } },
  { name = "files", modes = "lines args",
    flags = { { long = "files", help = "save each job's stdout in a new file in --tmpdir and print its name" },
      { long = "output-as-files", help = "the same" }, { long = "outputasfiles", help = "the same" } } },
  { name = "tmpdir", modes = "lines args",
    flags = { { long = "tmpdir", arg = "DIR", default = "$TMPDIR, else /tmp",
      help = "--files: make the files in DIR" } } },
  { name = "dry_run", modes = "lines args run",
    flags = { { long = "dry-run", help = "print the commands, run nothing" },
      { long = "dryrun", help = "the same" } } },
  { name = "format", modes = "map", config = "map", check = FORMAT,
    flags = { { long = "format", arg = "FMT", parse = word_flag(FORMAT), default = "json",
      help = "par map: print results as json or lua, one per line" } } },
  { name = "verbose", modes = "lines args run map",
    flags = { { short = "v",
      help = "print each command on stdout before its output, and why each failed job failed" } } },
  { name = "trace", modes = "lines args run",
    flags = { { short = "t", long = "verbose", help = "print each command on stderr as it starts" } } },
  { name = "silent", modes = "lines args run map",
    flags = { { long = "silent", help = "print no command (undoes -v and -t)" } } },
  -- compatibility
  { name = "compress", modes = "lines args",
    flags = { { long = "compress", help = "accepted, as GNU parallel's; par does not compress the output it"
      .. " holds (in memory up to 1 MiB a job, then in an unlinked temporary file)" } } },
  { name = "will_cite", modes = "lines args run map",
    flags = { { long = "will-cite", help = "accepted, as GNU parallel's; par asks for no citation" },
      { long = "no-notice", help = "the same" }, { long = "bibtex", help = "the same" } } },
  { name = "minversion", modes = "lines args run map",
    flags = { { long = "minversion", arg = "V", final = true,
      help = "print par's GNU parallel version; exit 255 if it is older than V" } } },
  { name = "number_of", modes = "lines args run map",
    flags = { { long = "number-of-cpus", value = "cpus", final = true, help = "print the number of CPUs and exit" },
      { long = "number-of-cores", value = "cores", final = true, help = "the same" },
      { long = "number-of-threads", value = "threads", final = true, help = "the same" },
      { long = "number-of-sockets", value = "sockets", final = true, help = "print 1 and exit" } } },
  { name = "max_line_length", modes = "lines args run map",
    flags = { { long = "max-line-length-allowed", final = true, help = "print the -s limit and exit" } } },
  { name = "shellquote", modes = "lines args",
    flags = { { long = "shellquote", help = "print each input item quoted for the shell, run nothing" } } },
  { name = "version", modes = "lines args run map",
    flags = { { short = "V", long = "version", final = true, help = "print the version and exit" } } },
  { name = "help", modes = "lines args run map",
    flags = { { short = "h", long = "help", final = true, help = "print this help and exit" } } },
  -- -S hosts (par.cli.remote) {===============================================
  { name = "transferfile", modes = "lines args",
    flags = { { long = "transferfile", arg = "FILE", multi = true,
      help = "-S: send FILE ({} filled in) to the job's host first; relative: to its home or --wd" },
      { long = "tf", arg = "FILE", multi = true, help = "the same as --transferfile" } } },
  { name = "transfer", modes = "lines args",
    flags = { { long = "transfer", help = "-S: the same as --tf {}" } } },
  { name = "return_files", modes = "lines args",
    flags = { { long = "return", arg = "FILE", multi = true,
      help = "-S: bring FILE ({} filled in) back from the job's host after it ran" } } },
  { name = "cleanup", modes = "lines args",
    flags = { { long = "cleanup",
      help = "-S: remove the sent and returned files (at the end the --basefile's) from the host" } } },
  { name = "trc", modes = "lines args",
    flags = { { long = "trc", arg = "FILE", multi = true,
      help = "-S: the same as --transfer --return FILE --cleanup" } } },
  { name = "basefile", modes = "lines args",
    flags = { { long = "basefile", arg = "FILE", multi = true,
      help = "-S: send FILE to each host before the first job" },
      { long = "bf", arg = "FILE", multi = true, help = "the same as --basefile" } } },
  { name = "onall", modes = "lines args",
    flags = { { long = "onall", help = "run every job on every -S host, in turn; a host's output in one block" } } },
  { name = "nonall", modes = "lines args",
    flags = { { long = "nonall", help = "run the command, with no arguments, once on every -S host" } } },
  { name = "filter_hosts", modes = "lines args run",
    flags = { { long = "filter-hosts", help = "drop the -S hosts that ssh cannot reach, with a warning" } } },
  { name = "env_vars", modes = "lines args run",
    flags = { { long = "env", arg = "NAME", multi = true,
      help = "copy variable NAME (NAME,NAME; _: all but --record-env's) to the -S hosts" } } },
  { name = "record_env", modes = "lines args run map",
    flags = { { long = "record-env", final = true,
      help = "write the names of the environment's variables to ~/.parallel/ignored_vars" } } },
  -- }=========================================================================
  -- --pipe (par.cli.pipe) {==================================================
  { name = "pipe", modes = "lines args",
    flags = { { long = "pipe", help = "cut stdin into blocks at record ends; each block is one job's stdin" } } },
  { name = "pipepart", modes = "lines args",
    flags = { { long = "pipepart", help = "as --pipe, reading the blocks of -a FILE by seeking in it" },
      { long = "pipe-part", help = "the same as --pipepart" } } },
  { name = "block", modes = "lines args",
    flags = { { long = "block", arg = "SIZE", parse = pipe_size, default = "1M",
      help = "--pipe: block size in bytes; k, m, g are powers of 1000, K, M, G of 1024" },
      { long = "block-size", arg = "SIZE", parse = pipe_size, default = "1M",
        help = "the same as --block" } } },
  { name = "recstart", modes = "lines args",
    flags = { { long = "recstart", arg = "STR",
      help = "--pipe: records start with STR (\\n, \\t, \\0 and \\xHH are read)" } } },
  { name = "recend", modes = "lines args",
    flags = { { long = "recend", arg = "STR", default = "\\n",
      help = "--pipe: records end with STR; '' for none (blocks of exactly SIZE)" } } },
  { name = "regexp", modes = "lines args",
    flags = { { long = "regexp", help = "--pipe: --recstart, --recend are regexps (as far as a Lua pattern goes)" } } },
  { name = "cat", modes = "lines args",
    flags = { { long = "cat", help = "--pipe: {} is a temporary file holding the block, removed after" } } },
  { name = "fifo", modes = "lines args",
    flags = { { long = "fifo", help = "--pipe: {} is a named pipe the block is written to" } } },
  { name = "rrs", modes = "lines args",
    flags = { { long = "rrs", help = "--pipe: take each record's --recstart and --recend out of its block" },
      { long = "remove-rec-sep", help = "the same as --rrs" },
      { long = "removerecsep", help = "the same as --rrs" } } },
  { name = "roundrobin", modes = "lines args",
    flags = { { long = "roundrobin", help = "--pipe: start -j N jobs once and give them the blocks in turn" },
      { long = "round-robin", help = "the same as --roundrobin" }, { long = "round", help = "the same" } } },
  { name = "shard", modes = "lines args",
    flags = { { long = "shard", arg = "COL",
      help = "--pipe: N jobs started once; a line to the job of its column COL's hash (number or name)" } } },
  { name = "group_by", modes = "lines args",
    flags = { { long = "group-by", arg = "COL",
      help = "--pipe: a run of lines with the same column COL (number or name) is one record" },
      { long = "groupby", arg = "COL", help = "the same as --group-by" } } },
  { name = "bin", modes = "lines args",
    flags = { { long = "bin", arg = "COL",
      help = "--pipe: as --shard, a line to job (COL's value) mod N (0: the last)" } } },
  { name = "tee", modes = "lines args",
    flags = { { long = "tee", help = "every job (one per ::: argument) gets all of stdin as its stdin" } } },
  -- }=========================================================================
}

--- The sections of --help and of the man page: a title, then the names of
-- the options whose flags it lists, in order.  Every flag's option is in
-- one section (spec/options_spec.lua checks it).
M.GROUPS = {
  { title = "Input sources",
    "arg_file", "arg_sep", "arg_file_sep", "link", "null", "delimiter", "eof", "no_run_if_empty",
    "trim", "colsep", "header", "shuf" },
  { title = "Several arguments a job",
    "max_args", "max_lines", "multi", "max_chars", "exit_if_long" },
  { title = "Replacement strings",
    "replace", "extensionreplace", "basenamereplace", "dirnamereplace",
    "basenameextensionreplace", "seqreplace", "slotreplace", "plus", "rpl", "quote" },
  { title = "Jobs",
    "jobs", "load", "memfree", "cwd", "nice", "delay", "timeout", "termseq", "retries", "halt",
    "joblog", "resume", "retry_failed" },
  { title = "Output",
    "keep_order", "tag", "tagstring", "line_buffer", "ungroup", "group", "results", "files",
    "tmpdir", "compress", "dry_run", "verbose", "trace", "silent", "progress", "gnu_progress", "eta",
    "format" },
  { title = "--pipe and --pipepart",
    "pipe", "pipepart", "block", "recstart", "recend", "regexp", "cat", "fifo", "rrs",
    "roundrobin", "group_by", "shard", "bin", "tee" },
  { title = "Remote hosts",
    "hosts", "ssh", "filter_hosts", "transferfile", "transfer", "return_files", "cleanup", "trc",
    "basefile", "onall", "nonall", "env_vars", "record_env" },
  { title = "Information and compatibility",
    "will_cite", "minversion", "number_of", "max_line_length", "shellquote", "version", "help" },
}

--- The longest command line of -m, -X and --xargs by default, as GNU
-- parallel's on Linux (par --max-line-length-allowed).
M.MAX_LINE = 130329

--- GNU parallel's options (20221122's manual), for the message of one that
-- par does not have: "par: --sqlmaster is not supported".
M.GNU_OPTIONS = {}
for _, name in ipairs({
  "--arg-file", "--arg-file-sep", "--arg-sep", "--bar", "--basefile", "--basenameextensionreplace",
  "--basenamereplace", "--bf", "--bg", "--bin", "--block", "--block-size", "--block-timeout",
  "--bner", "--bnr", "--bt", "--cat", "--cf", "--cleanup", "--color", "--color-failed", "--colsep",
  "--compress", "--compress-program", "--controlmaster", "--csv", "--ctag", "--ctagstring",
  "--decompress-program", "--delay", "--delimiter", "--dirnamereplace", "--dnr", "--dry-run",
  "--embed", "--env", "--eof", "--er", "--eta", "--exit", "--extensionreplace", "--fg", "--fifo",
  "--files", "--filter", "--filter-hosts", "--gnu", "--group", "--group-by", "--halt",
  "--halt-on-error", "--hashbang", "--header", "--help", "--hgrp", "--hostgroups", "--id",
  "--interactive", "--jl", "--joblog", "--jobs", "--keep-order", "--latest-line", "--lb",
  "--limit", "--line-buffer", "--link", "--ll", "--load", "--max-args", "--max-chars",
  "--max-line-length-allowed", "--max-lines", "--max-procs", "--max-replace-args", "--memfree",
  "--memsuspend", "--minversion", "--nice", "--no-keep-order", "--no-run-if-empty", "--nonall",
  "--noswap", "--null", "--number-of-cores", "--number-of-cpus", "--number-of-sockets",
  "--number-of-threads", "--onall", "--open-tty", "--output-as-files", "--outputasfiles",
  "--parens", "--pipe", "--pipe-part", "--plain", "--plus", "--process-slot-var", "--profile",
  "--progress", "--quote", "--recend", "--record-env", "--recstart", "--regexp",
  "--remove-rec-sep", "--removerecsep", "--replace", "--res", "--results", "--resume",
  "--resume-failed", "--retries", "--retry-failed", "--return", "--round", "--round-robin",
  "--rpl", "--rrs", "--rsync-opts", "--semaphore", "--semaphore-name", "--semaphore-timeout",
  "--seqreplace", "--session", "--shard", "--shebang", "--shebang-wrap", "--shell-completion",
  "--shell-quote", "--show-limits", "--shuf", "--silent", "--skip-first-line", "--slf",
  "--slotreplace", "--spreadstdin", "--sql", "--sql-and-worker", "--sql-master", "--sql-worker",
  "--ssh", "--ssh-delay", "--sshlogin", "--sshloginfile", "--st", "--tag", "--tagstring", "--tee",
  "--template", "--term-seq", "--tf", "--timeout", "--tmpdir", "--tmpl", "--tmux", "--tmuxpane",
  "--total", "--total-jobs", "--transfer", "--transferfile", "--trc", "--trim", "--tty",
  "--ungroup", "--use-cores-instead-of-threads", "--use-cpus-instead-of-cores",
  "--use-sockets-instead-of-threads", "--verbose", "--version", "--wait", "--wd", "--workdir",
  "--xapply", "--xargs", "--sqlmaster", "--sqlworker", "--sqlandworker", "--roundrobin", "--tee",
  "--keeporder", "--workdir", "--transfer-file", "--return", "--basefile", "--shellquote",
  "--dryrun", "--no-notice", "--will-cite", "--bibtex", "--citation", "--halt-on-error", "-0",
  "-1", "-2", "-C", "-E", "-I", "-J", "-L", "-M", "-N", "-P", "-S", "-V", "-X", "-a", "-d", "-e",
  "-h", "-i", "-j", "-k", "-l", "-m", "-n", "-o", "-p", "-q", "-r", "-s", "-t", "-u", "-v", "-x",
  "-F",
}) do M.GNU_OPTIONS[name] = true end

-- {======================================================================
-- Reading the lists

local BY_NAME = {}
for call, list in next, { run = M.run, map = M.map, cli = M.cli, pool = M.pool,
    pool_map = M.pool_map } do
  local t = {}
  for _, o in ipairs(list) do
    t[o.name] = o
    if o.alias then t[o.alias] = o end
  end
  BY_NAME[call] = t
end

--- The entry of option 'name' (or its alias) of 'call', or nil.
function M.find(call, name)
  return BY_NAME[call][name]
end

--- Check the options table 'opts' of 'call' ("run" or "map"): the checked
-- options in a new table, aliases under the option's name; or nil, name,
-- why (why is nil for an option that does not exist).  A positional
-- argument is not an option.
function M.check(call, opts)
  local out, by = {}, BY_NAME[call]
  for k, v in next, opts do
    local o = type(k) == "string" and by[k]
    if not o or o.arg then return nil, tostring(k) end
    local val, why = o.check(v)
    if val == nil then return nil, k, why end
    if out[o.name] ~= nil and out[o.name] ~= val then
      return nil, o.alias or k, format("contradicts option '%s'", o.name)
    end
    out[o.name] = val
  end
  return out
end

--- What one option says of another, which neither check can see: nil, or
-- the option's name and the option it needs (or nil, and what it needs).
function M.relations(call, opts)
  if call ~= "run" then return nil end
  if opts.resume and not opts.joblog then return "resume", "joblog" end
  if opts.output and opts.capture then return "output", nil, "capture = false" end
  return nil
end

--- Each flag of the par command once, in the order --help lists them, as
-- a table that reads the flag's fields, with 'option' (the entry of the
-- first call that lists it), 'call' ("cli", "run" or "map") and 'modes'
-- (the set of modes of the par command it applies to) filled in.
function M.flags()
  local out, by = {}, {}
  for _, call in ipairs({ "cli", "run", "map" }) do
    for _, o in ipairs(M[call]) do
      for _, f in ipairs(o.flags or {}) do
        local t = by[f]
        if not t then
          t = setmetatable({ option = o, call = call, modes = {} }, { __index = f })
          by[f] = t
          out[#out + 1] = t
        end
        local modes = call == "cli" and o.modes or call == "run" and "lines args run" or "map"
        for m in modes:gmatch("%a+") do t.modes[m] = true end
      end
    end
  end
  local last = {}                   -- --version and --help close the list
  for i = #out, 1, -1 do
    if out[i].final then table.insert(last, 1, table.remove(out, i)) end
  end
  return table.move(last, 1, #last, #out + 1, out)
end

--- The flags of M.flags() by section of M.GROUPS: a list of { title =,
-- the flags in order }; a flag whose option no section names goes in a
-- last one titled "Other options".
function M.sections()
  local at, out = {}, {}
  for i, g in ipairs(M.GROUPS) do
    out[i] = { title = g.title }
    for j, name in ipairs(g) do at[name] = { i, j } end
  end
  local other = { title = "Other options" }
  local flags = M.flags()
  for k, f in ipairs(flags) do f.rank = k end
  for _, f in ipairs(flags) do
    local place = at[f.option.name]
    local list = place and out[place[1]] or other
    list[#list + 1] = f
  end
  for _, list in ipairs(out) do
    table.sort(list, function(a, b)
      local pa, pb = at[a.option.name][2], at[b.option.name][2]
      if pa ~= pb then return pa < pb end
      return a.rank < b.rank
    end)
  end
  if #other > 0 then out[#out + 1] = other end
  return out
end

--- The checker of config key 'name' of a "run" or "map" config, or nil.
function M.config_check(call, name)
  local o = BY_NAME[call][name]
  if o and o.config ~= false then return o.config or o.check end
  for _, c in ipairs(M.cli) do
    if c.name == name and c.config == call then return c.check end
  end
  return nil
end

--- The options of fname(x, y [, n] [, opts]) for 'call', from the
-- arguments at position 'first' on (the ...): n is the number of jobs.
-- Returns the checked options (with opts.jobs = n) and the position they
-- came from; or nil, position, why.  A value past them is a bad argument,
-- and so is an opts.jobs that contradicts n.
function M.args(call, first, ...)
  local a, b = ...
  local opts, argn, n = {}, first, nil
  if type(a) == "number" then
    local why
    n, why = util.positive_integer(a)
    if n == nil then return nil, first, "number of jobs: " .. why end
  elseif type(a) == "table" then
    b, argn = a, first - 1
  elseif a ~= nil then
    return nil, first, "number or table expected, got " .. typename(a)
  end
  if b ~= nil then
    argn = argn + 1
    if type(b) ~= "table" then return nil, argn, "table expected, got " .. typename(b) end
    local name, why
    opts, name, why = M.check(call, b)
    if not opts then
      return nil, argn, why and format("option '%s': %s", name, why) or format("unknown option '%s'", name)
    end
    if n ~= nil and opts.jobs ~= nil and opts.jobs ~= n then
      return nil, argn, format("option '%s' contradicts argument #%d",
        rawget(b, "jobs") ~= nil and "jobs" or "procs", first)
    end
    local other
    name, other, why = M.relations(call, opts)
    if name then
      return nil, argn, format("option '%s' needs %s", name, other and "option '" .. other .. "'" or why)
    end
  end
  for i = argn - first + 2, select("#", ...) do
    if select(i, ...) ~= nil then return nil, first + i - 1, "no value expected" end
  end
  if n ~= nil then opts.jobs = n end
  return opts, argn
end

-- }======================================================================

return M
