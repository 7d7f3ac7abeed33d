--- The `par` command: GNU parallel's conventions on top of par.each and
-- par.map.  bin/par is one line: os.exit(require("par.cli").main(arg)).
-- This module dispatches, and turns errors into messages and exit statuses;
-- the rest of par.cli is args, input, config, jobs, output and errors.
--
--   par [options] < COMMANDS          par [options] CMD ::: ARG...
--   par [options] CMD < ARGS          par [options] run|map CONFIG.lua [ARG...]
--
-- Exit status as GNU parallel: 0 all ok, 1..100 the number of failed jobs,
-- 101 more than 100, 255 a usage or config error; 128 + N after signal N.
local par = require "par"
local core = require "par.core"
local args = require "par.cli.args"
local config = require "par.cli.config"
local errors = require "par.cli.errors"
local input = require "par.cli.input"
local jobs = require "par.cli.jobs"
local output = require "par.cli.output"
local options = require "par.options"

local M = {
  parse = args.parse,
  expand = input.expand,
  lua_literal = output.lua_literal,
  load_config = config.load,
}

local type, pcall = type, pcall
local one_line = errors.one_line
local put, flush_out = output.put, output.flush_out

local USAGE_HINT = "usage: par [options] [CMD] [::: ARG...] | par [options] run|map CONFIG.lua; see par --help"

local function exit_status(nfailed)
  if nfailed > 100 then return 101 end
  return nfailed
end

-- The GNU parallel release whose command line par follows (--minversion).
local GNU_VERSION = 20221122

-- The options that do their job and end the command; nil when none is given.
local function final(o)
  if o.help then put(args.help()); flush_out(); return 0 end
  if o.version then put("par ", par.VERSION, "\n"); flush_out(); return 0 end
  if o.minversion then
    local want = tonumber(o.minversion)
    if not want then errors.usage("--minversion: a version (YYYYMMDD) expected, got '" .. o.minversion .. "'") end
    put(GNU_VERSION, "\n"); flush_out()
    return GNU_VERSION >= want and 0 or 255
  end
  if o.number_of then
    put(o.number_of == "sockets" and 1 or par.cpus(), "\n"); flush_out()
    return 0
  end
  if o.record_env then return require("par.cli.remote").record_env() end
  if o.max_line_length then put(options.MAX_LINE, "\n"); flush_out(); return 0 end
  return nil
end

local function main(argv)
  local o, plan = args.parse(argv)
  local status = final(o)
  if status then return status end
  args.check_modes(o, plan.mode)
  if o.silent then o.verbose, o.trace = nil, nil end
  local nfailed
  if plan.mode == "map" then return exit_status(jobs.config_map(o, plan)) end
  if plan.mode == "run" then
    nfailed, status = jobs.config_run(o, plan)
  else
    nfailed, status = jobs.command_line(o, plan)
  end
  return status or exit_status(nfailed)
end

-- Say what ended the command (see par.cli.errors); returns the exit status.
local function report(e)
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
    io.stderr:write("par: ", one_line(errors.text(e)), "\n")
  end
  return 255
end

--- Run the par command with the arguments 'argv' (the script's 'arg');
-- returns the exit status.
function M.main(argv)
  -- SIGINT, SIGTERM, SIGHUP, SIGQUIT and SIGPIPE become the error
  -- "interrupted" wherever they arrive, and par.run and par.map reap what
  -- they started before it reaches us
  local trap <close> = core.trap() -- luacheck: ignore 211 (closed on return)
  local ok, status = pcall(main, argv or {})
  if ok then return status end
  return report(status)
end

return M
