--- Remote hosts for par.run: each command runs as `ssh HOST -- LINE`, where
-- LINE applies cwd and env on the remote side.  par keeps the queue, the
-- results and the joblog; the system's OpenSSH client runs the command.
--
-- With opts.transfer, a job may send files to its host first, bring files
-- back and remove them there after, as GNU parallel's --transferfile,
-- --return and --cleanup do: the host's argv is then a local shell that
-- runs the job's script (M.line) with the host's name in $h, and the
-- script runs rsync and ssh.
local util = require "par.util"

local M = {}

local type, ipairs, next, rawget = type, ipairs, next, rawget
local concat = table.concat
local quote = util.quote

-- The host's argv prefix when jobs run a local script: the script comes
-- last, as the core appends the line.
local WRAP = 'h=$1; eval "$2"'

-- The ssh client's words, as a table, with BatchMode (never a prompt).
local function ssh_words(opts)
  local ssh = opts.ssh or { "ssh" }
  local w = table.move(ssh, 1, #ssh, 1, {})
  w[#w + 1] = "-o"
  w[#w + 1] = "BatchMode=yes"
  return w
end

-- The environment and the shell of command 'c' on the remote side.
local function env_and_command(parts, c, opts, shell)
  if opts.env then
    local names = {}
    for k in next, opts.env do names[#names + 1] = k end
    table.sort(names)
    parts[#parts + 1] = "env"
    for _, k in ipairs(names) do
      local v = opts.env[k]
      parts[#parts + 1] = v == false and "-u " .. quote(k) or quote(k .. "=" .. v)
    end
  end
  if type(c) == "string" then
    parts[#parts + 1] = util.shell_line(shell) .. " " .. quote(c)
  else
    parts[#parts + 1] = util.shell_line(c)
  end
  return concat(parts, " ")
end

-- {======================================================================
-- Files to and from the host (GNU parallel's rules: a relative path, or
-- one with /./ in it, is relative to the remote work dir, where only the
-- part after /./ is kept; an absolute one is the same path there)

local RSYNC = "rsync --protocol 30 -rlDzR"

local function relative(f)
  return not f:find("^/") or f:find("/%./") ~= nil
end

local function dirname(f)
  local d = f:match("^(.*)/[^/]*$")
  if d == nil then return "." end
  return d == "" and "/" or d
end

local function basename(f)
  return f:match("([^/]*)$")
end

-- A command run on host $h from the script: the words of 'ssh' quoted.
local function on_host(ssh, line)
  return ssh .. ' -- "$h" ' .. quote(line) .. " </dev/null"
end

-- rsync of file 'f' to the work dir 'wd' of host $h (GNU: an unreadable
-- file is not sent, with a warning).
local function send(ssh, f, wd)
  local fh = io.open(f, "r")
  if not fh then
    local warning = "par: Warning: " .. f .. " is not readable and will not be transferred."
    return "echo " .. quote(warning) .. " >&2;"
  end
  fh:close()
  local dest = relative(f) and wd or "/"
  return on_host(ssh, "mkdir -p " .. quote(dest)) .. " && " .. RSYNC .. " -e " .. quote(ssh)
    .. " " .. quote(f) .. ' "$h":' .. quote(dest) .. " </dev/null;"
end

-- rsync of file 'f' back from the work dir 'wd' of host $h, to the same
-- place here (dir/./file comes back to dir/file).
local function fetch(ssh, f, wd)
  f = f:gsub("^%./", "")
  local from = relative(f) and wd .. "/" or ""
  local base = f:match("^(.*)/%./")
  base = base and base .. "/" or ""
  local cd = dirname((f:gsub("^.*/%./", "")))
  return "mkdir -p " .. quote(base .. cd) .. " && " .. RSYNC .. " -e " .. quote(ssh)
    .. " " .. quote("--rsync-path=cd " .. quote(from .. cd) .. "; rsync") .. ' -- "$h":'
    .. quote(basename(f)) .. " " .. quote(base .. cd) .. " </dev/null;"
end

-- The path of sent or returned file 'f' on the host.
local function remote_path(f, wd)
  if f:find("/%./") then return (f:gsub("^.*/%./", wd .. "/")) end
  if not f:find("^/") then return wd .. "/" .. f end
  return f
end

--- The shell line that removes 'files' from work dir 'wd' on the host,
-- and the directories they leave empty there (GNU's --cleanup).
function M.cleanup_line(files, wd)
  local rm, dirs, seen = {}, {}, {}
  for _, f in ipairs(files) do
    local p = remote_path(f, wd)
    rm[#rm + 1] = quote(p)
    local d = dirname(p)
    while d ~= "." and d ~= "/" and d ~= "" and not seen[d] do
      seen[d] = true
      dirs[#dirs + 1] = d
      d = dirname(d)
    end
  end
  table.sort(dirs, function(a, b) return #a > #b or (#a == #b and a < b) end)
  local line = "rm -f " .. concat(rm, " ") .. " 2>/dev/null;"
  if #dirs > 0 then
    for k, d in ipairs(dirs) do dirs[k] = quote(d .. "/") end
    line = line .. " rmdir " .. concat(dirs, " ") .. " 2>/dev/null;"
  end
  return line .. " true"
end

--- The lines that send each file of 'files' to work dir 'wd' of host $h
-- (for a script run by M.argv's shell), one a file.
function M.send_lines(opts, files, wd)
  local ssh = util.shell_line(ssh_words(opts))
  local out = {}
  for k, f in ipairs(files) do out[k] = send(ssh, f, wd) end
  return out
end

-- The local script of job 'i': send its files, run it, bring its files
-- back, clean up, and exit with the job's status.
local function script(c, opts, shell, t)
  local ssh = util.shell_line(ssh_words(opts))
  local wd = t.wd or "."
  local pre, post = {}, {}
  for _, f in ipairs(t.send or {}) do pre[#pre + 1] = send(ssh, f, wd) end
  local parts = {}
  if t.wd then
    parts[1] = "{ mkdir -p -- " .. quote(wd) .. " && cd -- " .. quote(wd) .. "; } || exit 255;"
  elseif opts.cwd then
    parts[1] = "cd " .. quote(opts.cwd) .. " &&"
  end
  local line = env_and_command(parts, c, opts, shell)
  for _, f in ipairs(t.back or {}) do post[#post + 1] = fetch(ssh, f, wd) end
  if t.cleanup then
    local files = table.move(t.send or {}, 1, #(t.send or {}), 1, {})
    table.move(t.back or {}, 1, #(t.back or {}), #files + 1, files)
    if #files > 0 then post[#post + 1] = on_host(ssh, M.cleanup_line(files, wd)) .. ";" end
  end
  if t.rmwd then post[#post + 1] = on_host(ssh, "rm -rf " .. quote(wd)) .. ";" end
  local run = ssh .. ' -- "$h" ' .. quote(line)
  if #post == 0 then return concat(pre, " ") .. " exec " .. run end
  return concat(pre, " ") .. " " .. run .. "; _s=$?; " .. concat(post, " ") .. " exit $_s"
end

-- }======================================================================

--- The remote shell line of command 'c' (a string, run by 'shell', or an
-- argv table), with opts.cwd and opts.env applied there; with
-- opts.transfer, the local script of job 'i' (see M.argv).
function M.line(c, opts, shell, i)
  if opts.transfer then return script(c, opts, shell, opts.transfer(i) or {}) end
  local parts = {}
  if opts.cwd then parts[1] = "cd " .. quote(opts.cwd) .. " &&" end
  return env_and_command(parts, c, opts, shell)
end

--- The argv that runs a job's M.line on host 'name' (not ":"); the line
-- comes after it.  ssh reads no option after "--", so the host and the
-- line after it are never options, whatever they begin with.
function M.argv(opts, name)
  if opts.transfer then return { "/bin/sh", "-c", WRAP, "par", name } end
  local argv = ssh_words(opts)
  argv[#argv + 1] = "--"
  argv[#argv + 1] = name
  return argv
end

--- The core's host list, and the number of worker threads: one per slot.
-- A host without "N/" gets 'slots' (opts.jobs), which the Lua layer does
-- not bound (#cmds bounds the threads): here at most MAX_SLOTS, as with
-- "N/".
function M.list(opts, slots)
  local out, total = {}, 0
  slots = math.min(slots, util.MAX_SLOTS)
  for i = 1, #opts.hosts do
    local spec = rawget(opts.hosts, i)
    local n, name = spec:match("^(%d+)/(.*)$")
    local h = { name = name or spec, slots = n and math.tointeger(tonumber(n)) or slots }
    if h.name ~= ":" then h.argv = M.argv(opts, h.name) end
    out[#out + 1] = h
    total = total + h.slots
  end
  return out, total
end

return M
