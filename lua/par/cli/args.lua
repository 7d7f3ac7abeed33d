--- The par command line: the parser that splits a command line into
-- options and a plan, and --help.  Both read the flags of par.options,
-- where every option is listed once.
--
-- The parsed options are keyed by option name (flag.key where a flag sets
-- a key of its own: --sshlogin, --sshloginfile); opts.given[key] names
-- the flag that set it ("--joblog"), for messages; opts.text[key] the
-- value as the command line wrote it (-j FILE is read again as jobs end).
local par = require "par"
local options = require "par.options"
local errors = require "par.cli.errors"

local M = {}

local ipairs, tostring = ipairs, tostring
local format, concat = string.format, table.concat
local usage_error = errors.usage

-- {======================================================================
-- Options

local FLAGS = options.flags()
local BY_SHORT, BY_LONG = {}, {}
for _, f in ipairs(FLAGS) do
  if f.short then BY_SHORT[f.short] = f end
  if f.long then BY_LONG[f.long] = f end
end

--- The key a flag sets in the parsed options.
local function key_of(f) return f.key or f.option.name end

--- A flag's name as a command line writes it: "--jobs", or "-v".
local function name_of(f) return f.long and "--" .. f.long or "-" .. f.short end
M.name_of = name_of

-- An option of GNU parallel that par does not have ends the command with
-- one line naming it, before anything runs.
local function unknown(name)
  if options.GNU_OPTIONS[name] then errors.unsupported(name .. " is not supported") end
  usage_error(format("unknown option '%s'", name))
end

--- The flag that set parsed option 'key' last ("--jobs"), or nil.
function M.flag(opts, key)
  return opts.given[key]
end

--- The name of the first flag of option 'name' of 'call', with its value
-- ("--joblog FILE"), or nil when no flag sets it.
function M.flag_of(call, name)
  local o = options.find(call, name)
  local f = o and o.flags and o.flags[1]
  return f and "--" .. f.long .. (f.arg and " " .. f.arg or "")
end

--- Refuse an option that the plan's mode does not take.
function M.check_modes(opts, mode)
  for _, f in ipairs(FLAGS) do
    if opts.given[key_of(f)] == name_of(f) and not f.modes[mode] then
      if mode == "lines" or mode == "args" then
        usage_error(format("option '%s' applies only to 'par %s'", name_of(f),
          f.modes.run and "run" or "map"))
      end
      usage_error(format("option '%s' does not apply to 'par %s'", name_of(f), mode))
    end
  end
end

-- The default as --help shows it: README's text without its code marks.
local function help_default(f)
  if f.default then return f.default end
  local first = f.option.flags[1]
  if first.default and first.arg == f.arg then return first.default end   -- an alias
  if not f.arg then return "off" end
  local d = f.option.default
  return d and (d:gsub('[`"]', "")) or "none"
end

--- The usage lines, as --help and the man page give them.
M.USAGE = {
  { "par [options] < COMMANDS", "run each line of stdin as a shell command" },
  { "par [options] -a FILE", "the same, reading FILE" },
  { "par [options] CMD [WORD...] ::: ARG...", "run CMD once per ARG" },
  { "par [options] CMD [WORD...] < ARGS", "run CMD once per line of stdin (or -a FILE)" },
  { "par [options] run CONFIG.lua [ARG...]", "run the commands a config returns" },
  { "par [options] map CONFIG.lua [ARG...]", "map a Lua function over items, print the results" },
}

--- What --help says after the usage lines, and the man page in its
-- DESCRIPTION: paragraphs, `code` marked.
M.ABOUT = {
  "In CMD, `{}` is the argument quoted for the shell (`{.}` without extension, `{/}`"
    .. " basename, `{//}` dirname, `{/.}` basename without extension, `{1}` `{2}` ... the"
    .. " columns or sources), `{#}` the job number and `{%}` the job slot; without any of"
    .. " them, the argument is appended. Every input line is an argument, blank or not.",
  "Options after run|map CONFIG.lua are options too; other words (and all after `--`)"
    .. " are the config's arguments (its `...`). Command-line options override the config's keys.",
  "Options of GNU parallel that par does not have end the command with one line naming"
    .. " them (`par: --X is not supported`, exit 255).",
}

--- The exit status, as --help and the man page give it.
M.EXIT = "0 when every job succeeded; 1-100 the number of jobs that failed; 101 more than 100;"
  .. " 255 a usage or config error; 128+N after signal N (130 Ctrl-C, 143 SIGTERM), every"
  .. " job stopped first; 141 when stdout closes (| head)."

--- The sections of options, each { title =, the flags }, with each flag's
-- names ("-j, --jobs N") and its default as --help shows them; a default
-- that is the number of CPUs reads 'cpus' ("2, the CPUs" by default).
function M.groups(cpus)
  cpus = cpus or tostring(par.cpus()) .. ", the CPUs"
  local out = {}
  for i, sec in ipairs(options.sections()) do
    local g = { title = sec.title }
    for j, f in ipairs(sec) do
      local default = not f.final and help_default(f) or nil
      if default == "CPUS" then default = cpus end
      g[j] = {
        short = f.short and "-" .. f.short, long = f.long and "--" .. f.long, arg = f.arg,
        help = f.help, default = default,
      }
    end
    out[i] = g
  end
  return out
end

-- 'text' filled after 'first' into lines of at most 'width' columns,
-- those after the first starting with 'indent'.
local function fill(first, text, width, indent, out)
  local line = first
  for word in text:gmatch("%S+") do
    if #line > #indent and #line + 1 + #word > width then
      out[#out + 1] = line
      line = indent .. word
    else
      line = (line == "" or line:sub(-1) == " ") and line .. word or line .. " " .. word
    end
  end
  out[#out + 1] = line
end

--- The text of --help.
function M.help()
  local diff = require "par.cli.differences"
  local lines = {}
  for i, u in ipairs(M.USAGE) do
    lines[i] = format("%s %-38s %s", i == 1 and "usage:" or "      ", u[1], u[2])
  end
  for _, p in ipairs(M.ABOUT) do
    lines[#lines + 1] = ""
    fill("", diff.plain(p), 88, "", lines)
  end
  for _, g in ipairs(M.groups()) do
    lines[#lines + 1] = ""
    lines[#lines + 1] = g.title .. " (default in brackets):"
    for _, f in ipairs(g) do
      local names = (f.short and f.short .. (f.long and ", " or "") or "    ")
        .. (f.long or "") .. (f.arg and " " .. f.arg or "")
      local text = f.help .. (f.default and " [" .. f.default .. "]" or "")
      if #names > 22 then
        lines[#lines + 1] = "  " .. names
        names = ""
      end
      fill(format("  %-22s ", names), text, 100, (" "):rep(25), lines)
    end
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "Differences from GNU parallel, on purpose (man par for more):"
  for _, d in ipairs(diff.DIFFERENCES) do lines[#lines + 1] = "  - " .. d.short end
  lines[#lines + 1] = ""
  fill("Exit status: ", M.EXIT, 88, "", lines)
  return concat(lines, "\n") .. "\n"
end

-- }======================================================================

-- {======================================================================
-- The parser

-- Store one option; 'value' is nil for a flag.
local function set_option(opts, f, value)
  local key = key_of(f)
  if f.arg then opts.text[key] = value end
  if f.arg and f.parse then
    local v, why = f.parse(value)
    if v == nil then usage_error(format("%s: %s", name_of(f), why)) end
    value = v
  elseif not f.arg then
    value = f.value == nil or f.value
  end
  if f.multi then
    local list = opts[key] or {}
    list[#list + 1] = value
    value = list
  end
  opts[key] = value
  opts.given[key] = name_of(f)
end

-- The value of flag f (written 'as') at args[i] is the next word; returns
-- the index after it.
local function next_value(opts, f, args, i, as)
  local value = args[i + 1]
  if value == nil then usage_error(format("option '%s' needs a value (%s)", as, f.arg)) end
  set_option(opts, f, value)
  return i + 2
end

-- Parse the long option at args[i] ("--name" or "--name=value"); returns the next index.
local function long_option(opts, args, i)
  local name, value = args[i]:match("^%-%-([^=]*)=(.*)$")
  name = name or args[i]:sub(3)
  local o = BY_LONG[name]
  if not o then unknown("--" .. name) end
  if not o.arg then
    if value then usage_error(format("option '--%s' takes no value", name)) end
    set_option(opts, o)
    return i + 1
  end
  if value then
    set_option(opts, o, value)
    return i + 1
  end
  return next_value(opts, o, args, i, "--" .. name)
end

-- Parse a cluster of short options ("-kv", "-j4", "-j 4"); returns the next index.
local function short_options(opts, args, i)
  local s = args[i]
  local k = 2
  while k <= #s do
    local c = s:sub(k, k)
    local o = BY_SHORT[c]
    if not o then unknown("-" .. c) end
    if o.arg then
      local value = s:sub(k + 1)
      if value == "" then return next_value(opts, o, args, i, "-" .. c) end
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

-- The words of $PARALLEL, GNU parallel's default options: split at
-- blanks, with '...' and "..." quoting.
local function env_words(s)
  local words, cur, i, quoted = {}, nil, 1, false
  while i <= #s do
    local c = s:sub(i, i)
    if c == "'" or c == '"' then
      local close = s:find(c, i + 1, true)
      if not close then usage_error("$PARALLEL: unbalanced " .. c) end
      cur = (cur or "") .. s:sub(i + 1, close - 1)
      i, quoted = close + 1, true
    elseif c:find("%s") then
      if cur or quoted then words[#words + 1] = cur or "" end
      cur, quoted, i = nil, false, i + 1
    else
      cur = (cur or "") .. c
      i = i + 1
    end
  end
  if cur or quoted then words[#words + 1] = cur or "" end
  return words
end

-- The input sources after the command: 'args' from index i, each
-- separator (::: :::+ :::: ::::+, or --arg-sep's and --arg-file-sep's)
-- starting one or, for ::::, one per file.
local function sources(opts, args, i)
  local asep, fsep = opts.arg_sep or ":::", opts.arg_file_sep or "::::"
  local list, cur = {}, nil
  while args[i] ~= nil do
    local a = args[i]
    if a == asep or a == asep .. "+" then
      cur = { values = {}, linked = a ~= asep }
      list[#list + 1] = cur
    elseif a == fsep or a == fsep .. "+" then
      cur = { files = true, linked = a ~= fsep }
    elseif cur.files then
      list[#list + 1] = { path = a, linked = cur.linked }
      cur = { files = true, linked = false }
    else
      cur.values[#cur.values + 1] = a
    end
    i = i + 1
  end
  return list
end

--- Split the command line into options and the rest.  Returns opts and a
-- plan: { mode = "lines"|"args"|"run"|"map", words, sources, config,
-- config_args }.  $PARALLEL's options come first.
function M.parse(argv)
  local args = argv
  local env = os.getenv("PARALLEL")
  if env and env:find("%S") then
    args = env_words(env)
    table.move(argv, 1, #argv, #args + 1, args)
  end
  local opts = { given = {}, text = {} }
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
  local asep, fsep = opts.arg_sep or ":::", opts.arg_file_sep or "::::"
  local seps = { [asep] = true, [asep .. "+"] = true, [fsep] = true, [fsep .. "+"] = true }
  local words = {}
  while args[i] ~= nil and not seps[args[i]] do
    words[#words + 1] = args[i]
    i = i + 1
  end
  plan.words = words
  -- GNU parallel drops a separator that is the last word (so stdin is the
  -- input): its loop over the words ends before it
  if args[i] ~= nil and args[i + 1] == nil then i = i + 1 end
  if args[i] ~= nil then
    if args[i]:sub(-1) == "+" then usage_error(format("'%s' needs an input source before it", args[i])) end
    plan.sources = sources(opts, args, i)
  end
  plan.mode = #words > 0 and "args" or "lines"
  return opts, plan
end

-- }======================================================================

return M
