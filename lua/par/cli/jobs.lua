--- What the par command runs, and running it: jobs from the command line
-- (streamed: each input line is handed on as it arrives) or a par run
-- config on par.each, a par map config on par.map.  Each entry point
-- returns the number of jobs (or items) that failed.
local par = require "par"
local util = require "par.util"
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
-- 'ntasks' is nil for input that streams: 0 is then UNBOUNDED.
local UNBOUNDED = 250
local function resolve_jobs(v, ntasks)
  if type(v) == "string" then
    local pct = tonumber(v:match("^(.-)%%$"))
    return math.max(1, math.floor(par.cpus() * pct / 100))
  end
  if v == 0 then return math.max(ntasks or UNBOUNDED, 1) end
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

-- Run the commands of 'src' (see run_jobs) through par.each: each result
-- to 'handle(i, res)'.  Skipped ones (a resume) come back too.
local function stream_each(src, ro, handle)
  local iter, st, ctl, closer = par.each(src.cmds or src.next_cmd, ro)
  if not iter then errors.system(st) end
  for i, res in iter, st, ctl, closer do handle(i, res) end
end

-- Print the commands of 'src' (its iterator blocks), run nothing.
local function dry_run(src)
  local k = 0
  while true do
    k = k + 1
    local job = src.cmds and src.cmds[k] and src.job_of(k) or not src.cmds and src.next_job()
    if not job then break end
    put(job.text, "\n")
    flush_out()
  end
  return 0
end

-- Run the jobs of 'src': a list (src.cmds, with src.job_of(i) its job
-- { cmd, text, tag }), or an input that streams (src.next_job: an
-- iterator of jobs, false, fd while it has no whole one yet).  Returns the
-- number that failed.  Each command goes to par.each as the input gives
-- it, and its output is printed as it arrives (par.cli.output's printer);
-- nothing of a job is kept once its output is printed.
local function run_jobs(src, o, cfg)
  local values = cfg and cfg.values or {}
  o.keep_order = o.keep_order or values.keep_order
  o.tag = o.tag or values.tag
  local ro = run_options(cfg, o, src.cmds and #src.cmds)
  if not ro.capture and (o.keep_order or o.tag) then
    usage_error((o.tag and "--tag" or "--keep-order")
      .. " needs grouped output; the config asks for ungrouped (capture = false or output = 'ungroup')")
  end
  if o.dry_run then return dry_run(src) end
  o.progress = ro.progress
  local out = ro.capture and output.printer(o)
  local user_done = values.on_done
  local seq, nfailed = 0, 0
  function src.next_cmd()
    local job, fd = src.next_job()
    if not job then return job, fd end
    seq = seq + 1
    if out then out.start(seq, job) end
    return job.cmd
  end
  -- a listed job reaches the printer with its first output or its end
  local function job(i)
    if not out.has(i) then out.start(i, src.job_of(i)) end
  end
  local function handle(i, res)
    if not res.ok and res.status ~= "skipped" then nfailed = nfailed + 1 end
    if out then job(i); out.done(i, res) end
    if user_done and res.status ~= "skipped" then user_done(res, i) end
  end
  if out then
    ro.capture = nil               -- with on_output par.each captures nothing
    ro.on_output = function(i, stream, s) job(i); out.chunk(i, stream, s) end
  end
  local ok, err = pcall(stream_each, src, ro, handle)
  if out then out.flush() end       -- an interrupt: what ended before it is still printed
  if not ok then error(err, 0) end
  return nfailed
end

-- The jobs of a command line (see run_jobs): CMD once per argument of :::
-- (or those arguments as commands), or the input's lines as commands, or
-- CMD once per line of the input.  'block': the input's iterator waits
-- rather than return false.
local function command_jobs(o, plan, block)
  if o.pipe or o.pipepart then return require("par.cli.pipe").jobs(o, plan) end   -- pipe hook
  local lines = plan.mode == "lines"
  local template = concat(plan.words, " ")
  local list = plan.list
  if list then
    local cmds = lines and list or {}
    if not lines then
      for i, a in ipairs(list) do cmds[i] = input.expand(template, a, i) end
    end
    local ok, why = options.find("run", "commands").check(cmds)
    if not ok then usage_error(why) end
    return { cmds = cmds, job_of = function(i) return { cmd = cmds[i], text = cmds[i], tag = list[i] } end }
  end
  local next_item = input.items(o.arg_file, o.null, lines and "command" or "argument", block)
  local seq = 0
  return { next_job = function()
    local a, fd = next_item()
    if not a then return a, fd end
    seq = seq + 1
    local cmd = lines and a or input.expand(template, a, seq)
    return { cmd = cmd, text = cmd, tag = a }
  end }
end

-- Shell text of a command: argv tables quoted word by word.
local function command_text(c)
  if type(c) ~= "table" then return tostring(c) end
  return util.shell_line(c)
end

--- par [options] < COMMANDS, or CMD ::: ARG..., or CMD < ARGS.
function M.command_line(o, plan)
  return run_jobs(command_jobs(o, plan, o.dry_run), o)
end

--- par run CONFIG.lua: the config's commands.
function M.config_run(o, plan)
  local cfg = config.load(plan.config, config.keys("run"), plan.config_args)
  local cmds = config.list(cfg, "commands")
  local cok, why = options.find("run", "commands").check(cmds)
  if not cok then key_error(cfg, "commands", "key 'commands': " .. why) end
  return run_jobs({ cmds = cmds, job_of = function(i)
    local text = command_text(cmds[i])
    return { cmd = cmds[i], text = text, tag = text }
  end }, o, cfg)
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
