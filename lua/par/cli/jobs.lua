--- What the par command runs, and running it: jobs from the command line or
-- a par run config on par.run, a par map config on par.map.  Each entry
-- point returns the number of jobs (or items) that failed.
local par = require "par"
local util = require "par.util"
local joblog = require "par.joblog"
local progress = require "par.progress"
local options = require "par.options"
local parmap = require "par.map"
local config = require "par.cli.config"
local input = require "par.cli.input"
local output = require "par.cli.output"
local errors = require "par.cli.errors"

local M = {}

local type, pairs, ipairs, tostring, error, pcall = type, pairs, ipairs, tostring, error, pcall
local format, concat = string.format, table.concat
local usage_error, key_error = errors.usage, config.key_error
local put, flush_out = output.put, output.flush_out

-- A jobs value (see par.cli.args.check_jobs) as a number of workers for
-- 'ntasks' tasks: "N%" of the CPUs (at least one), 0 one per task.
local function resolve_jobs(v, ntasks)
  if type(v) == "string" then
    local pct = tonumber(v:match("^(.-)%%$"))
    return math.max(1, math.floor(par.cpus() * pct / 100))
  end
  if v == 0 then return math.max(ntasks, 1) end
  return v
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

-- The options of 'call' that a config's values give, under their names
-- (par.map's procs is jobs), but for those the par command handles itself
-- ('own') and the positional ones.
local function config_options(call, cfg, own)
  local out = {}
  for k, v in pairs(cfg and cfg.values or {}) do
    local opt = options.find(call, k)
    if opt and not opt.arg and not own[opt.name] then
      if out[opt.name] ~= nil and out[opt.name] ~= v then
        key_error(cfg, opt.alias, format("key '%s' contradicts key '%s'", opt.alias, opt.name))
      end
      out[opt.name] = v
    end
  end
  return out
end

-- Then the command line's, over them.
local function cli_options(call, opts, o)
  for _, opt in ipairs(options[call]) do
    if opt.flags and o[opt.name] ~= nil then opts[opt.name] = o[opt.name] end
  end
  return opts
end

-- The config's hosts, then the command line's (-S, --sshloginfile).
local function host_options(ro, o)
  if not o.sshlogin and not o.sshloginfile then return end
  local hosts = {}
  for _, h in ipairs(ro.hosts or {}) do hosts[#hosts + 1] = h end
  for _, h in ipairs(o.sshlogin or {}) do hosts[#hosts + 1] = h end
  for _, h in ipairs(o.sshloginfile and read_hosts(o.sshloginfile) or {}) do hosts[#hosts + 1] = h end
  ro.hosts = hosts
end

-- par.run's options from the config's values and the command line.
local function run_options(cfg, o, njobs)
  local ro = cli_options("run", config_options("run", cfg, { on_done = true }), o)
  host_options(ro, o)
  if ro.jobs ~= nil then ro.jobs = resolve_jobs(ro.jobs, njobs) end
  -- par prints the output itself: grouped unless the config asks for ungrouped
  if ro.capture == false or ro.output == "ungroup" then
    ro.capture, ro.output = false, nil
  else
    ro.capture, ro.output = true, nil
  end
  return config.check_options("run", ro, cfg, o)
end

-- Run 'jobs' ({ cmd, text, tag }); returns the number that failed.
local function run_jobs(jobs, o, cfg)
  local values = cfg and cfg.values or {}
  local cmds = {}
  for i, job in ipairs(jobs) do cmds[i] = job.cmd end
  local cok, why = options.find("run", "commands").check(cmds)
  if not cok then
    if cfg then key_error(cfg, "commands", "key 'commands': " .. why) end
    usage_error(why)
  end
  o.keep_order = o.keep_order or values.keep_order
  o.tag = o.tag or values.tag
  local ro = run_options(cfg, o, #jobs)
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
  local skip = ro.resume and joblog.read(ro.joblog, ro.resume == "failed", function() end) or {}
  local out = output.printer(o, jobs, skip)
  local user_done = values.on_done
  ro.on_done = function(res, i)
    if ro.capture then out.done(res, i) end
    if user_done then user_done(res, i) end
  end
  local ok, results
  ok, results, why = pcall(par.run, cmds, ro)
  if not ok then
    out.flush()   -- an interrupt: what ended before it is still printed
    error(results, 0)
  end
  if results == nil then errors.system(why) end
  out.flush()
  return why                        -- par.run's nfailed: what ran and failed
end

-- The jobs of a command line: its input lines as commands, or CMD once per
-- argument (of ::: or of the input).
local function command_jobs(o, plan)
  local jobs = {}
  if plan.mode == "lines" and not plan.list then
    for i, line in ipairs(input.read(o.arg_file, o.null, "command")) do
      jobs[i] = { cmd = line, text = line, tag = line }
    end
    return jobs
  end
  local list = plan.list or input.read(o.arg_file, o.null, "argument")
  local template = concat(plan.words, " ")
  for i, a in ipairs(list) do
    local cmd = plan.mode == "lines" and a or input.expand(template, a, i)
    if cmd:find("\0", 1, true) then usage_error(format("argument %d contains a NUL byte", i)) end
    jobs[i] = { cmd = cmd, text = cmd, tag = a }
  end
  return jobs
end

-- Shell text of a command: argv tables quoted word by word.
local function command_text(c)
  if type(c) ~= "table" then return tostring(c) end
  return util.shell_line(c)
end

--- par [options] < COMMANDS, or CMD ::: ARG..., or CMD < ARGS.
function M.command_line(o, plan)
  return run_jobs(command_jobs(o, plan), o)
end

--- par run CONFIG.lua: the config's commands.
function M.config_run(o, plan)
  local cfg = config.load(plan.config, config.keys("run"), plan.config_args)
  local cmds = config.list(cfg, "commands")
  local jobs = {}
  for i, c in ipairs(cmds) do
    local text = command_text(c)
    jobs[i] = { cmd = c, text = text, tag = text }
  end
  return run_jobs(jobs, o, cfg)
end

-- par.map's options from the config's values and the command line; the
-- par command draws the progress line and calls on_result itself.
local function map_options(cfg, o, nitems)
  local mo = cli_options("map", config_options("map", cfg, { progress = true, on_result = true }), o)
  mo.progress = nil
  if mo.errors == nil then mo.errors = "collect" end
  if mo.jobs ~= nil then mo.jobs = resolve_jobs(mo.jobs, nitems) end
  return config.check_options("map", mo, cfg, o)
end

--- par map CONFIG.lua: the config's fn over its items, each result printed.
function M.config_map(o, plan)
  local cfg = config.load(plan.config, config.keys("map"), plan.config_args)
  local v = cfg.values
  if v.fn == nil then key_error(cfg, "fn", "key 'fn' is missing") end
  local fn, why = parmap.resolve(v.fn)
  if not fn then key_error(cfg, "fn", "key 'fn': " .. why) end
  local items = config.list(cfg, "items")
  local fmt = o.format or v.format or "json"
  local write_results = output.results_writer(fmt, o.verbose)
  local mo = map_options(cfg, o, #items)
  local mode = o.progress or v.progress
  local bar = progress.new(#items, mode, "items")
  local ndone = 0
  local counter = { counts = function()
    local running = math.min(mo.jobs or par.cpus(), #items - ndone)
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
  local ok, results, errs = pcall(par.map, fn, items, mo)
  if bar then ndone = #items; bar:finish(counter, 0) end
  if not ok then
    if type(results) == "string" and results:find("^par%.map: item %d+: ") then
      -- errors = "raise": the first failure ends the map
      output.item_error(results, o.verbose)
      return 1
    end
    error(results, 0)
  end
  if results == nil then errors.system(errs) end
  return write_results(results, errs)
end

return M
