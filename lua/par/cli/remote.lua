--- The par command's options for -S hosts, as GNU parallel 20221122 has
-- them: --transferfile (--tf, --transfer), --return, --cleanup, --trc,
-- --basefile, --wd on remote hosts, --onall, --nonall, --filter-hosts,
-- --env and --record-env.  par.hosts runs the rsync and ssh of each job;
-- this module fills in its files per job and runs the steps of a whole
-- run (basefiles, host filtering, --onall's per-host scripts).
local par = require "par"
local hostlist = require "par.hosts"
local util = require "par.util"
local errors = require "par.cli.errors"

local M = {}

local ipairs, setmetatable = ipairs, setmetatable
local concat = table.concat
local quote = util.quote
local usage_error = errors.usage

-- {======================================================================
-- Small helpers

local function slurp(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- The names of the variables of our environment (Lua has no environ).
local function env_names()
  local names = {}
  for entry in (slurp("/proc/self/environ") or ""):gmatch("[^%z]+") do
    local name = entry:match("^([^=]+)=")
    if name then names[#names + 1] = name end
  end
  return names
end

-- GNU parallel's config dir: $PARALLEL_HOME, or ~/.parallel.
local function config_dir()
  return os.getenv("PARALLEL_HOME") or ((os.getenv("HOME") or "") .. "/.parallel")
end

local function remote_hosts(ro)
  local out = {}
  for _, spec in ipairs(ro.hosts or {}) do
    local name = spec:match("^%d+/(.*)$") or spec
    if name ~= ":" then out[#out + 1] = name end
  end
  return out
end

local function has_local(ro)
  for _, spec in ipairs(ro.hosts or {}) do
    if (spec:match("^%d+/(.*)$") or spec) == ":" then return true end
  end
  return false
end

-- Run the local shell 'script' once for each host of 'names', with the
-- host in $h, all at once; their output goes to stderr, as GNU's does.
-- Returns the results.
local function on_each_host(ro, names, script)
  local cmds = {}
  for k, name in ipairs(names) do cmds[k] = { "/bin/sh", "-c", "h=$1; " .. script, "par", name } end
  if #cmds == 0 then return {} end
  local res = par.run(cmds, { jobs = #cmds, timeout = ro.timeout })
  for _, r in ipairs(res) do io.stderr:write(r.stdout or "", r.stderr or "") end
  return res
end

-- }======================================================================

-- {======================================================================
-- Each job's files and work dir

-- --transfer and --trc in the lists of --tf, --return and --cleanup.
local function normalize(o)
  if o.remote_normalized then return end
  o.remote_normalized = true
  local tf = o.transferfile or {}
  if o.transfer or o.trc then tf[#tf + 1] = "{}" end
  local back = o.return_files or {}
  for _, f in ipairs(o.trc or {}) do back[#back + 1] = f end
  o.transferfile = #tf > 0 and tf or nil
  o.return_files = #back > 0 and back or nil
  o.cleanup = o.cleanup or (o.trc and true)
end

--- Whether the options 'o' ask for any of the remote steps of a job.
function M.wanted(o)
  normalize(o)
  return o.transferfile or o.return_files or o.cleanup or o.cwd ~= nil
end

-- The remote work dir of --wd, as GNU's Job::workdir: "." is this dir
-- relative to $HOME, "..." a new dir under ~/.parallel/tmp; otherwise the
-- filled-in DIR, without /./, a trailing / or a leading ./.
local uniq
local function workdir(o, tpl, job)
  local wd = o.cwd
  if wd == "." then
    local pwd, home = os.getenv("PWD") or ".", os.getenv("HOME")
    if home and home ~= "" and home ~= "/" then
      home = home:gsub("/+$", "")
      if pwd == home then return "." end
      if pwd:sub(1, #home + 1) == home .. "/" then return pwd:sub(#home + 2) end
    end
    return pwd
  end
  if wd == "..." then
    if not uniq then
      local host = (slurp("/proc/sys/kernel/hostname") or "localhost"):gsub("%s+$", "")
      local pid = (slurp("/proc/self/stat") or ""):match("^(%d+)") or tostring(os.time())
      uniq = host .. "-" .. pid .. "-"
    end
    return ".parallel/tmp/" .. uniq .. job.seq
  end
  wd = tpl.text(wd, job):gsub("/%./", "/")
  wd = wd:gsub("(.)/+$", "%1"):gsub("^%./", "")
  return wd
end

-- The file names of templates 'list' for 'job': "{}" is each value.
local function files(list, tpl, job)
  local out = {}
  for _, t in ipairs(list or {}) do
    if t == "{}" then
      for _, v in ipairs(job.values) do out[#out + 1] = v end
    else
      out[#out + 1] = tpl.text(t, job)
    end
  end
  return out
end

--- The remote steps of 'job' (par.run's opts.transfer entry): its files
-- to send and to bring back, its work dir; nil when there is none.
function M.job_files(o, tpl, job)
  if not M.wanted(o) then return nil end
  local t = { send = files(o.transferfile, tpl, job), back = files(o.return_files, tpl, job),
    cleanup = o.cleanup }
  if o.cwd then
    t.wd = workdir(o, tpl, job)
    t.rmwd = o.cwd == "..."
  end
  return t
end

-- }======================================================================

-- {======================================================================
-- --env, --record-env

--- --record-env: the names of the variables of this environment to
-- $PARALLEL_HOME/ignored_vars, which --env _ leaves out.
function M.record_env()
  local path = config_dir() .. "/ignored_vars"
  local f = io.open(path, "w")
  if not f then errors.system("Cannot write to " .. path .. ".") end
  local names = env_names()
  for _, name in ipairs(names) do f:write(name, "\n") end
  f:close()
  return 0
end

-- The names of --env: NAME,NAME...; _ is every variable not in
-- ignored_vars.
local function env_list(o)
  local names, all = {}, false
  for _, s in ipairs(o.env_vars or {}) do
    for name in s:gmatch("[^,]+") do
      if name == "_" then all = true else names[#names + 1] = name end
    end
  end
  if all then
    local text = slurp(config_dir() .. "/ignored_vars")
    if not text then errors.config("Run 'par --record-env' in a clean environment first.") end
    local ignored = {}
    for name in text:gmatch("[^\n]+") do ignored[name] = true end
    for _, name in ipairs(env_names()) do
      if not ignored[name] then names[#names + 1] = name end
    end
  end
  return names
end

-- --env: the variables, as they are here, to par.run's env (a variable
-- that is not set, or whose name the shell cannot take, is left out).
local function apply_env(ro, o)
  if not o.env_vars then return end
  local env = ro.env or {}
  for _, name in ipairs(env_list(o)) do
    local v = os.getenv(name)
    if v and env[name] == nil and name:find("^[%a_][%w_]*$") and not v:find("\0", 1, true) then
      env[name] = v
    end
  end
  ro.env = env
end

-- }======================================================================

-- {======================================================================
-- Steps of the whole run

-- --filter-hosts: drop the remote hosts where `true` cannot run.
local function filter_hosts(ro)
  local names = remote_hosts(ro)
  local ssh = util.shell_line(ro.ssh or { "ssh" }) .. " -o BatchMode=yes"
  local cmds = {}
  for k, name in ipairs(names) do
    cmds[k] = { "/bin/sh", "-c", ssh .. ' -- "$1" true </dev/null', "par", name }
  end
  local down = {}
  if #cmds > 0 then
    local res = par.run(cmds, { jobs = #cmds, timeout = 30 })
    for k, r in ipairs(res) do
      if not r.ok then down[names[k]] = true end
    end
  end
  local kept, removed = {}, {}
  for _, spec in ipairs(ro.hosts) do
    local name = spec:match("^%d+/(.*)$") or spec
    if down[name] then removed[#removed + 1] = name else kept[#kept + 1] = spec end
  end
  if #removed > 0 then
    table.sort(removed)
    io.stderr:write("par: Warning: Removed ", concat(removed, " "), ".\n")
  end
  if #kept == 0 then errors.config("Cannot run any jobs.") end
  ro.hosts = kept
end

-- The work dir of the basefiles: that of a job without arguments.
local function base_workdir(o)
  if not o.cwd then return "." end
  return workdir(o, { text = function(s) return s end }, { values = {}, seq = 1 })
end

-- --basefile: each file to each remote host, before the first job.
local function send_basefiles(ro, o)
  local wd = base_workdir(o)
  for _, f in ipairs(o.basefile) do
    if not f:find("^/") and o.cwd == "..." then
      errors.config("Work dir '...' will not work with relative basefiles.")
    end
  end
  on_each_host(ro, remote_hosts(ro), concat(hostlist.send_lines(ro, o.basefile, wd), " "))
end

-- --basefile with --cleanup: remove them from each host after the last job.
local function remove_basefiles(ro, o)
  local ssh = util.shell_line(ro.ssh or { "ssh" }) .. " -o BatchMode=yes"
  local line = hostlist.cleanup_line(o.basefile, base_workdir(o))
  on_each_host(ro, remote_hosts(ro), ssh .. ' -- "$h" ' .. quote(line) .. " </dev/null")
end

-- --onall, --nonall: for each host (in the order of their names), one
-- local job that runs every job there in turn (as GNU's sub-parallel
-- with -j1); its status is the number that failed.
local function onall(ro, o, src)
  if ro.joblog then errors.unsupported("--joblog with --onall or --nonall is not supported") end
  local hosts, seen = {}, {}
  for _, spec in ipairs(ro.hosts or { ":" }) do
    if not seen[spec] then seen[spec] = true; hosts[#hosts + 1] = spec end
  end
  table.sort(hosts)
  local jobs = {}
  for k = 1, #src.cmds do jobs[k] = src.job_of(k) end
  local shell = ro.shell or { "/bin/sh", "-c" }
  local cmds, per_host = {}, {}
  for n, spec in ipairs(hosts) do
    local name = spec:match("^%d+/(.*)$") or spec
    local lines = { "f=0" }
    for k, job in ipairs(jobs) do
      local text = quote(job.show or job.text)
      if o.verbose then lines[#lines + 1] = "printf '%s\\n' " .. text end
      local argv
      if name == ":" then
        argv = table.move(shell, 1, #shell, 1, {})
        argv[#argv + 1] = job.cmd
      else
        local ho = setmetatable({ transfer = ro.transfer and function() return job.transfer end },
          { __index = ro })
        argv = hostlist.argv(ho, name)
        argv[#argv + 1] = hostlist.line(job.cmd, ho, shell, k)
      end
      lines[#lines + 1] = util.shell_line(argv) .. " </dev/null || f=$((f + 1))"
    end
    lines[#lines + 1] = "[ $f -gt 101 ] && f=101; exit $f"
    cmds[n] = { "/bin/sh", stdin = concat(lines, "\n") .. "\n" }
    local text = concat(lines, "\n")
    per_host[n] = { cmd = cmds[n], text = text, show = spec, tag = spec, values = {} }
  end
  ro.hosts, ro.transfer, ro.env = nil, nil, nil
  -- each host's script prints its commands for -v; -t prints none, as GNU's
  o.verbose, o.trace = nil, nil
  if o.jobs == nil then ro.jobs = math.max(#hosts, 1) end
  src.cmds, src.next_job = cmds, nil
  src.job_of = function(i) return per_host[i] end
end

-- GNU's warning for files to move with no remote host to move them to.
local IGNORED = { { "trc", "--trc" }, { "transfer", "--transfer" },
  { "transferfile", "--transferfile" }, { "return_files", "--return" }, { "cleanup", "--cleanup" },
  { "basefile", "--basefile" } }
local function warn_ignored(o)
  for _, k in ipairs(IGNORED) do
    if o.given[k[1]] then
      io.stderr:write("par: Warning: ", k[2], " ignored as there are no remote --sshlogin.\n")
      return
    end
  end
end

--- Fill in par.run's options 'ro' for the remote options of 'o', for the
-- jobs of 'src' (see par.cli.jobs): env, the host list, each job's files;
-- send the basefiles.  Returns a function to call after the last job.
function M.setup(ro, o, src)
  apply_env(ro, o)
  if ro.hosts and o.filter_hosts then filter_hosts(ro) end
  local remote = #remote_hosts(ro) > 0
  if not remote then warn_ignored(o) end
  if o.cwd == "..." and (not remote or has_local(ro)) then
    usage_error("--wd ... is a new dir on each remote host: not supported for jobs on this machine")
  end
  if remote and M.wanted(o) then
    -- the core would apply cwd to the local ssh too: with ':' among the
    -- hosts, --wd DIR is this machine's too, and must be here
    if not has_local(ro) or o.cwd == "." then ro.cwd = nil end
    -- a job without files of its own (--pipe's blocks) still gets --wd
    local plain = o.cwd and o.cwd ~= "." and o.cwd ~= "..." and { wd = o.cwd } or nil
    if src.cmds then
      local job_of = src.job_of
      ro.transfer = function(i) local j = job_of(i); return j and j.transfer or plain end
    else
      local seen, k, next_job = {}, 0, src.next_job
      src.next_job = function(...)
        local job, fd = next_job(...)
        if job then k = k + 1; seen[k] = job.transfer end
        return job, fd
      end
      ro.transfer = function(i) local t = seen[i]; seen[i] = nil; return t or plain end
    end
  end
  if remote and o.basefile then send_basefiles(ro, o) end
  if o.onall or o.nonall then onall(ro, o, src) end
  return function()
    if remote and o.basefile and o.cleanup then remove_basefiles(ro, o) end
  end
end

--- The input of --nonall: one job, with no arguments.
function M.no_input()
  local done = false
  return function()
    if done then return nil end
    done = true
    return {}
  end
end

-- }======================================================================

return M
