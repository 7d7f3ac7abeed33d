--- What the par command runs, and running it: jobs from the command line
-- (streamed: each input line is handed on as it arrives) or a par run
-- config on par.each, a par map config on par.map.  Each entry point
-- returns the number of jobs (or items) that failed.
local par = require "par"
local util = require "par.util"
local progress = require "par.progress"
local options = require "par.options"
local parmap = require "par.map"
local parrun = require "par.run"
local joblog = require "par.joblog"
local config = require "par.cli.config"
local input = require "par.cli.input"
local replace = require "par.cli.replace"
local output = require "par.cli.output"
local errors = require "par.cli.errors"

local M = {}

local type, pairs, ipairs, tostring, error, pcall = type, pairs, ipairs, tostring, error, pcall
local format, concat = string.format, table.concat
local usage_error, key_error = errors.usage, config.key_error
local put, flush_out = output.put, output.flush_out

-- A jobs value (see par.options.cli_jobs) as a number of workers for
-- 'ntasks' tasks: "N%" of the CPUs (rounded up, as GNU parallel does),
-- "+N" and "-N" CPUs more or fewer (at least one), 0 one per task.
-- 'ntasks' is nil for input that streams: 0 is then UNBOUNDED.
local UNBOUNDED = 250
local function resolve_jobs(v, ntasks)
  if type(v) == "string" then
    local pct = tonumber(v:match("^(.-)%%$"))
    if pct then return math.max(1, math.ceil(par.cpus() * pct / 100 - 1e-9)) end
    return math.max(1, par.cpus() + math.tointeger(tonumber(v)))
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

-- The config's hosts, then the command line's: every -S, every --sshloginfile.
local function host_options(ro, o)
  if not o.sshlogin and not o.sshloginfile then return end
  local hosts = {}
  for _, h in ipairs(ro.hosts or {}) do hosts[#hosts + 1] = h end
  for _, list in ipairs(o.sshlogin or {}) do
    for _, h in ipairs(list) do hosts[#hosts + 1] = h end
  end
  for _, path in ipairs(o.sshloginfile or {}) do
    for _, h in ipairs(read_hosts(path)) do hosts[#hosts + 1] = h end
  end
  ro.hosts = hosts
end

-- par.run's options from the config's values and the command line.
local function run_options(cfg, o, njobs)
  local ro = cli_options("run", config_options("run", cfg, { on_done = true }), o)
  host_options(ro, o)
  if ro.jobs ~= nil then ro.jobs = resolve_jobs(ro.jobs, njobs) end
  -- GNU parallel's way of stopping a job, unless a config says otherwise
  if ro.termseq == nil and ro.kill_after == nil then ro.termseq = options.TERMSEQ end
  -- par prints the output itself: grouped unless the config asks for ungrouped
  if ro.capture == false or ro.output == "ungroup" then
    ro.capture, ro.output = false, nil
  else
    ro.capture, ro.output = true, nil
  end
  return config.check_options("run", ro, cfg, o)
end

-- Run the commands of 'src' (see run_jobs) through par.each: its stream's
-- state to 'opened(st)' first, then each result to 'handle(i, res, st)',
-- which returns "soon" or "now" to halt (leaving the loop kills what
-- runs).  Skipped ones (a resume) come back too.
local function stream_each(src, ro, handle, opened)
  local iter, st, ctl, closer = par.each(src.cmds or src.next_cmd, ro)
  if not iter then errors.system(st) end
  opened(st)
  for i, res in iter, st, ctl, closer do
    local halt = handle(i, res, st)
    if halt == "now" then break end
    if halt == "soon" then parrun.stop_starting(st) end
  end
end

-- The tag of a job as --tag and --dry-run --tag print it.
local function tag_of(o, job)
  return (o.tag or o.tagstring) and job.tag and (job.tag .. "\t") or ""
end

-- Job 'job' as it starts in job slot 'slot' (digits): {%} in its
-- command and its tag made the slot.
local function slotted(job, slot)
  job.text = replace.with_slot(job.text, slot)
  if job.tag then job.tag = replace.with_slot(job.tag, slot) end
  if job.results then job.results = replace.with_slot(job.results, slot) end
  return job
end

-- Print the commands of 'src' (its iterator blocks), run nothing.  {%} is
-- the slot each would run in if each took as long: 1, 2 ... -j, 1 ...
-- (GNU parallel's, as its dry jobs end, is one of those)
local function dry_run(src, o)
  local k = 0
  while true do
    k = k + 1
    local job = src.cmds and src.cmds[k] and src.job_of(k) or not src.cmds and src.next_job()
    if not job then break end
    if src.slot then slotted(job, tostring((k - 1) % (src.nslots or 1) + 1)) end
    put(tag_of(o, job), job.text, "\n")
    flush_out()
  end
  return 0
end

-- --halt as GNU parallel has it: h = { when, why, n or pct }.  Returns
-- function(res) -> nil, or "soon" or "now" once the run must halt, and
-- function() -> the exit status (nil: the usual one).
local function halter(h, total)
  local nfail, nok, ndone = 0, 0, 0
  local status, fired = nil, false
  local function count()
    if h.why == "fail" then return nfail end
    if h.why == "success" then return nok end
    return ndone
  end
  return function(res, text)
    if res.status == "skipped" or fired then return nil end
    ndone = ndone + 1
    if res.ok then nok = nok + 1 else nfail = nfail + 1 end
    local hit
    if h.pct then
      hit = ndone >= 3 and count() * 100 >= h.pct * (total or ndone)
    else
      hit = count() >= h.n
    end
    if (h.why == "fail" and res.ok) or (h.why == "success" and not res.ok) then hit = false end
    if not hit then return nil end
    fired = true
    local what = h.why == "fail" and "failed" or h.why == "success" and "succeeded" or "finished"
    io.stderr:write(format("par: This job %s:\n%s\n", what, text))
    if h.why == "fail" and h.n == 1 then
      status = res.status == "exit" and res.code or res.status == "signal" and 128 + res.signal or 1
    elseif h.why == "success" then
      status = 0
    end
    return h.when
  end, function() return status end
end

-- The file that -j names, or nil: GNU parallel reads it again as jobs end.
local function jobs_file(o)
  local path = o.text and o.text.jobs
  if not path or path:match("^%d+$") or path:match("^%d+%.?%d*%%$") or path:match("^[+-]%d+$") then
    return nil
  end
  return path
end

-- A function(st) that reads the -j FILE of 'o' again and sets the number
-- of jobs of par.each's stream st; nil without one.  A file that holds no
-- number of jobs (yet) leaves it as it was.
local function jobs_rereader(o, ntasks)
  local path = jobs_file(o)
  if not path then return nil end
  return function(st)
    local v = options.cli_jobs(path)
    if v == nil then return end
    local n = resolve_jobs(v, ntasks)
    if ntasks then n = math.min(n, math.max(ntasks, 1)) end
    parrun.set_jobs(st, n)
  end
end

-- {======================================================================
-- --load and --memfree, as GNU parallel measures them

-- The processes that run now: /proc/loadavg's runnable ones, but the one
-- reading it; nil if unknown.
local function load_now()
  local f = io.open("/proc/loadavg")
  local s = f and f:read("a")
  if f then f:close() end
  local running = s and tonumber(s:match("^%S+ %S+ %S+ (%d+)/"))
  return running and running - 1
end

-- The --load limit 'spec' as a number of processes; nil if a file holds none.
local function load_limit(spec, depth)
  local n = tonumber(spec:match("^[+-]%d+$"))
  if n then return par.cpus() + n end
  n = tonumber(spec:match("^(%d+)%%$"))
  if n then return par.cpus() * n / 100 end
  n = tonumber(spec:match("^%d+%.?%d*$"))
  if n then return n end
  local f = (depth or 0) < 1 and io.open(spec)
  if not f then return nil end
  local s = (f:read("a") or ""):match("^%s*(.-)%s*$")
  f:close()
  return load_limit(s, 1)
end

-- Free memory in bytes, as GNU parallel counts it on Linux: MemFree,
-- Buffers, Cached and SwapCached; 1 if unknown.
local function mem_free()
  local f = io.open("/proc/meminfo")
  if not f then return 1 end
  local kb = 0
  for line in f:lines() do
    local name, n = line:match("^(%a+):%s+(%d+)")
    if name == "MemFree" or name == "Buffers" or name == "Cached" or name == "SwapCached" then
      kb = kb + tonumber(n)
    end
  end
  f:close()
  return kb * 1024
end

-- Whether a job may start under o.load and o.memfree (GNU parallel's
-- --load 0 is no limit, and a limit is at least 0.01).
local function may_start(o)
  if o.load and o.load ~= "0" then
    local load, max = load_now(), load_limit(o.load)
    -- an unknown load is too high
    if not load or not max or load >= math.max(max, 0.01) then return false end
  end
  return not o.memfree or mem_free() >= o.memfree
end

-- The tick of par.run.set_tick (nil: none): -j FILE read again, and the
-- starts held while may_start says no.
local TICK = 0.5
local function ticker(o, reread, show)
  if not (reread or o.load or o.memfree or show) then return nil end
  local gated = o.load or o.memfree
  return function(st)
    if reread then reread(st) end
    if gated then parrun.hold(st, not may_start(o)) end
    -- GNU parallel's --memfree: below half of it, the youngest job goes back to the queue
    if o.memfree and mem_free() < o.memfree / 2 then parrun.evict(st) end
    if show then show(st) end
  end
end

-- --progress and --eta (par.cli.eta): a function(st) that draws the
-- status line of par.each's stream st while jobs run, and a function()
-- that draws the last one; or nil.
local function gnu_progress(o, ro, total)
  if not (o.gnu_progress or o.eta) then return nil end
  local d = require("par.cli.eta").new(total, ro.jobs or par.cpus(), o.eta)
  local started, finished = 0, 0
  d:start()
  return function(st)
    local s, f = parrun.counts(st)
    if s < started then return end       -- closed
    started, finished = s, f
    if started > 0 then d:update(started - finished, finished, started) end
  end, function(ended)
    d:finish(0, ended, math.max(started, ended))
  end
end

-- }======================================================================

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
  if o.dry_run then return dry_run(src, o) end
  o.progress = ro.progress
  if src.slot then ro.slotmark = src.slot end
  local finish = require("par.cli.remote").setup(ro, o, src)                     -- -S hook
  -- a job's joblog line follows its output, as GNU parallel writes it
  local each_st                     -- par.each's stream, once opened
  -- a job given to par.run as an argv (--pipe's, --tee's) is logged as its
  -- command's text, as GNU parallel logs it, not as the shell line around it
  local logged_as = {}
  local function log_line(i)
    local job = logged_as[i]
    logged_as[i] = nil
    parrun.log_line(each_st, i, job and job.text)
  end
  local printer = ro.capture and not o.results and not o.files
  local out = ro.capture and (o.results and require("par.cli.results").sink(o, src.names)
    or o.files and require("par.cli.results").files_sink(o) or output.printer(o, log_line))
  local user_done = values.on_done
  local seq, nfailed = 0, 0
  local halt, halt_status, halting
  if o.halt then
    halt, halt_status = halter(o.halt, src.cmds and #src.cmds)
    -- a count of failures halts in the core, before another job can start
    if o.halt.why == "fail" and o.halt.n then ro.halt, ro.halt_fails = o.halt.when, o.halt.n end
  end
  local listed = src.cmds
  if (halt or o.trace) and listed then -- a halt stops the input, -t tells each start: list it as it goes
    local k = 0
    src.cmds, src.next_job = nil, function() k = k + 1; return listed[k] and src.job_of(k) end
  end
  local texts, waiting = {}, {}
  local function trace(job)
    io.stderr:write(tag_of(o, job), job.text, "\n")
    io.stderr:flush()
  end
  function src.next_cmd()
    if halting then return nil end
    local job, fd = src.next_job()
    if not job then return job, fd end
    seq = seq + 1
    if out then out.start(seq, job) end
    if src.slot then waiting[seq] = job     -- -t and the rest once its slot is known
    elseif o.trace then trace(job) end
    if halt then texts[seq] = job.text end
    if ro.joblog and type(job.cmd) == "table" then logged_as[seq] = job end
    return job.cmd
  end
  if src.slot then
    ro.on_start = function(i, slot)
      local job = waiting[i] or (listed and src.job_of(i))
      waiting[i] = nil
      if not job then return end
      slotted(job, tostring(slot))
      if texts[i] then texts[i] = job.text end
      if out and out.has(i) and out.retag then out.retag(i) end
      if o.trace then trace(job) end
    end
  end
  -- a listed job reaches the printer with its first output or its end
  local function job(i)
    if not out.has(i) then out.start(i, src.job_of(i)) end
  end
  local reread = not cfg and jobs_rereader(o, src.cmds and #src.cmds)
  local nended = 0
  local function handle(i, res, st)
    if res.status ~= "skipped" then nended = nended + 1 end
    if reread and res.status ~= "skipped" then reread(st) end
    if not res.ok and res.status ~= "skipped" then nfailed = nfailed + 1 end
    if out then job(i); out.done(i, res) end
    if not printer then log_line(i) end
    if user_done and res.status ~= "skipped" then user_done(res, i) end
    if halt then
      local text = texts[i] or (listed and src.job_of(i).text)
      texts[i] = nil
      local when = halt(res, text)
      if when then halting = true end
      return when
    end
  end
  if out then
    ro.capture = nil               -- with on_output par.each captures nothing
    ro.on_output = function(i, stream, s) job(i); out.chunk(i, stream, s) end
  end
  local show, show_last = gnu_progress(o, ro, src.cmds and #src.cmds or listed and #listed)
  local tick = ticker(o, reread, show)
  local function opened(st)
    each_st = st
    parrun.hold_log(st)
    if o.memfree then parrun.evictable(st) end
    if tick then parrun.set_tick(st, tick, show and 0.2 or TICK) end
  end
  local ok, err = pcall(stream_each, src, ro, handle, opened)
  if src.close then src.close() end  -- --roundrobin's reader, however the run ended
  if show then show_last(nended) end
  if out then out.flush() end       -- an interrupt: what ended before it is still printed
  if not ok then error(err, 0) end
  finish()
  local status = halt_status and halt_status()
  if status then return nfailed, status end
  return nfailed
end

-- The options of par.cli.replace from the command line's.
local function template_options(o, names)
  return { quote = o.quote, context = o.multi == "X", plus = o.plus, rpl = o.rpl,
    replace = o.replace, extensionreplace = o.extensionreplace, basenamereplace = o.basenamereplace,
    dirnamereplace = o.dirnamereplace, basenameextensionreplace = o.basenameextensionreplace,
    seqreplace = o.seqreplace, slotreplace = o.slotreplace, header_names = names,
    no_append = o.tee and (o.pipe or o.pipepart) }
end

-- -m, -X, --xargs: the records in 'recs' grouped into jobs as long as the
-- command line stays shorter than -s; with -m and -X, what is left once
-- it all fits on fewer lines than there are slots is spread over them,
-- as GNU parallel does.
local function group_multi(recs, tpl, o, nslots)
  local max = o.max_chars or options.MAX_LINE
  local function len(values) return #tpl.expand({ values = values, seq = 1 }) end
  -- a line of records 1..k is base + their costs + sep for each but the first
  local base = len({})
  local sep = (len({ "x", "x" }) - len({ "x" })) - (len({ "x" }) - base)
  local cost = {}
  for k, r in ipairs(recs) do
    cost[k] = len(r) - base
    if base + cost[k] >= max then
      errors.unsupported(format("Command line too long (%d >= %d) at input %d: %s",
        base + cost[k], max, k - 1, concat(r, " ")))
    end
  end
  local groups, k, n = {}, 1, #recs
  local spread = o.multi ~= "xargs" and nslots > 1
  -- -n caps a job first: only the records left when the input ends spread
  local cap = o.max_args and o.max_args > 0 and o.max_args or math.huge
  local even                          -- the size of the spread rest's lines
  while k <= n do
    local take = even
    if not take then
      local line, j = base, k
      while j <= n and j - k < cap and line + cost[j] + (j > k and sep or 0) < max do
        line = line + cost[j] + (j > k and sep or 0)
        j = j + 1
      end
      take = j - k
      if j > n and spread then
        even = math.ceil((n - k + 1) / nslots)
        take = even
      end
    end
    if o.max_args and o.max_args > 0 then take = math.min(take, o.max_args) end
    local vals = {}
    for m = k, math.min(k + take - 1, n) do table.move(recs[m], 1, #recs[m], #vals + 1, vals) end
    groups[#groups + 1] = vals
    k = k + take
  end
  return groups
end

-- -L: a line that ends in a blank goes on on the next one, as xargs reads it.
local function continued(next_record)
  return function(wait)
    local r, fd = next_record(wait)
    while r and r[#r]:find("[ \t]$") do
      local more = next_record(true)
      if not more then break end
      r = { r[#r] .. more[1] }
    end
    return r, fd
  end
end

-- Fisher-Yates, for --shuf.
local function shuffle(t)
  for i = #t, 2, -1 do
    local j = math.random(i)
    t[i], t[j] = t[j], t[i]
  end
end

-- The jobs of a command line (see run_jobs): CMD with each record of the
-- input (par.cli.input) filled in (par.cli.replace), or the records as
-- commands when there is no CMD; -N, -L, -m and -X put several records in
-- one job.  The input streams unless the jobs need all of it first ({##},
-- -m, -X, --xargs, --shuf).  'block': the input's iterator waits rather
-- than return false.
local function command_jobs(o, plan, block)
  if o.tee then require("par.cli.pipe").check_tee(o, plan) end                  -- --tee hook
  if (o.shard or o.bin) and not o.pipe then
    usage_error((o.shard and "--shard" or "--bin") .. " needs --pipe")
  end
  if (o.pipe or o.pipepart) and not o.tee then                                    -- pipe hook
    local topts = template_options(o, nil)
    topts.no_append = true                  -- a block's job has no argument to append
    if o.cat or o.fifo then topts.replace = "\27{}\27" end   -- {} stays, for the file
    local tpl = replace.compile(plan.words, topts)
    if tpl.total or (o.tagstring and tpl.has_total(o.tagstring)) then
      usage_error("--pipe is incompatible with {##} and {0#}: the number of jobs is known only"
        .. " when the input ends")
    end
    return require("par.cli.pipe").jobs(o, plan, resolve_jobs(o.jobs or par.cpus()), tpl)
  end
  local nslots = resolve_jobs(o.jobs or par.cpus())
  local multi = o.multi
  local per = o.max_args or o.max_lines or 1
  local next_record, names, listed
  if o.nonall then
    next_record, listed = require("par.cli.remote").no_input(), true                -- -S hook
  else
    next_record, names, listed = input.records(o, plan, block)
  end
  if o.max_lines then next_record = continued(next_record) end
  local tpl = replace.compile(plan.words, template_options(o, names))
  local nice = o.nice and o.nice ~= 0 and ("exec nice -n " .. o.nice .. " /bin/sh -c ")
  local slot = tpl.slot or (o.tagstring and tpl.has_slot(o.tagstring))
    or (o.results and tpl.has_slot(o.results))
  local src = { slot = slot and replace.SLOTMARK, names = names, nslots = nslots }
  local maxc = o.max_chars or options.MAX_LINE
  local function make(values, seq, total)
    local job = { values = values, seq = seq, total = total }
    local cmd = tpl.expand(job)
    local text = cmd
    if not multi and #text >= maxc then   -- -m, -X and --xargs: checked as they are grouped
      errors.unsupported(format("Command line too long (%d >= %d) at input %d: %s",
        #text, maxc, seq - 1, concat(values, " ")))
    end
    if tpl.empty and not cmd:find("%S") then cmd = ":" end   -- GNU runs an empty command too
    if nice then cmd = nice .. replace.quote(cmd) end
    if o.tee then cmd = require("par.cli.pipe").tee_cmd(o, cmd) end
    local tag = o.tagstring and tpl.text(o.tagstring, job) or concat(values, " ")
    local res = o.results and tpl.text(o.results, job)
    return { cmd = cmd, text = text, tag = tag, values = values, results = res,
      transfer = require("par.cli.remote").job_files(o, tpl, job) }
  end
  local needs_all = listed or tpl.total or o.shuf or multi or o.onall or o.eta   -- --eta: all first
  if needs_all then
    local recs = {}
    while true do
      local r = next_record(true)
      if not r then break end
      recs[#recs + 1] = r
    end
    local groups
    if multi then
      groups = group_multi(recs, tpl, o, nslots)
    else
      groups = {}
      for k = 1, #recs, math.max(per, 1) do
        local vals = {}
        if per > 0 then
          for m = k, math.min(k + per - 1, #recs) do table.move(recs[m], 1, #recs[m], #vals + 1, vals) end
        end
        groups[#groups + 1] = vals
      end
    end
    if o.shuf then shuffle(groups) end
    local total = #groups
    local cmds, jobs = {}, {}
    for k, vals in ipairs(groups) do
      jobs[k] = make(vals, k, total)
      cmds[k] = jobs[k].cmd
    end
    src.cmds, src.job_of = cmds, function(i) return jobs[i] end
    return src
  end
  local seq, pending = 0, {}
  function src.next_job()
    while #pending < math.max(per, 1) do
      local r, fd = next_record()
      if r == false then return false, fd end
      if not r then break end
      pending[#pending + 1] = r
    end
    if #pending == 0 then return nil end
    local vals = {}
    if per > 0 then
      for _, r in ipairs(pending) do table.move(r, 1, #r, #vals + 1, vals) end
    end
    pending = {}
    seq = seq + 1
    return make(vals, seq)
  end
  return src
end

-- Shell text of a command: argv tables quoted word by word.
local function command_text(c)
  if type(c) ~= "table" then return tostring(c) end
  return util.shell_line(c)
end

-- --retry-failed: the commands of the joblog, as GNU parallel reruns them
-- (the command line's CMD and input are ignored); the resume skips those
-- that succeeded.
local function retry_jobs(cmds, o)
  o.resume = "failed"
  return { cmds = cmds, job_of = function(i)
    return { cmd = cmds[i], text = cmds[i], tag = cmds[i], values = { cmds[i] } }
  end }
end

--- par [options] < COMMANDS, or CMD ::: ARG..., or CMD < ARGS.
function M.command_line(o, plan)
  if o.shellquote then               -- print the input quoted, run nothing
    local next_record = input.records(o, plan, true)
    for r in next_record do
      local q = {}
      for k, v in ipairs(r) do q[k] = replace.quote(v) end
      put(concat(q, " "), "\n")
    end
    flush_out()
    return 0
  end
  local failed = o.retry_failed and o.joblog and joblog.commands(o.joblog)
  if failed then return run_jobs(retry_jobs(failed, o), o) end
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
