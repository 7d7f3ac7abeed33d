--- Helpers for par's specs: look at the test process itself through /proc.
local M = {}

function M.pid()
  local f = assert(io.open("/proc/self/stat"))
  local pid = f:read("n")
  f:close()
  return math.tointeger(pid)
end

local function lines(cmd)
  local out = {}
  local p = assert(io.popen(cmd))
  for l in p:lines() do out[#out + 1] = l end
  p:close()
  return out
end
M.lines = lines

--- Every process on the machine as { [pid] = { ppid =, state =, cmdline = } }.
local function processes()
  local procs = {}
  for _, name in ipairs(lines("exec ls /proc")) do
    local f = name:match("^%d+$") and io.open("/proc/" .. name .. "/stat")
    if f then
      local stat = f:read("a") or ""
      f:close()
      local state, ppid = stat:match("%) (%S) (%d+)")
      local c = io.open("/proc/" .. name .. "/cmdline", "rb")
      local cmdline = c and (c:read("a") or ""):gsub("%z", " ") or ""
      if c then c:close() end
      if state then procs[tonumber(name)] = { ppid = tonumber(ppid), state = state, cmdline = cmdline } end
    end
  end
  return procs
end
M.processes = processes

--- Pids whose parent is 'pid' (default: this process), with their states.
function M.children(pid)
  pid = pid or M.pid()
  local kids = {}
  for p, info in pairs(processes()) do
    if info.ppid == pid then kids[#kids + 1] = { pid = p, state = info.state } end
  end
  table.sort(kids, function(x, y) return x.pid < y.pid end)
  return kids
end

--- Number of open descriptors of this process.  Listed by os.execute into
-- a file, not through io.popen: the write end of popen's own pipe may still
-- be open in this process while ls runs, and counted or not by chance.
function M.fdcount()
  local path = os.tmpname()
  os.execute("exec ls /proc/" .. M.pid() .. "/fd > " .. path)
  local n = 0
  for _ in io.lines(path) do n = n + 1 end
  os.remove(path)
  return n
end

--- True while process 'pid' runs.  A zombie does not count here: an
-- orphan is reaped by init, not by us; M.children catches our own zombies.
function M.alive(pid)
  local f = io.open("/proc/" .. pid .. "/stat")
  if not f then return false end
  local state = (f:read("a") or ""):match("%) (%S)")
  f:close()
  return state ~= nil and state ~= "Z"
end


--- Every descendant of 'pid' (default: this process), zombies included,
-- found by walking the parent links of /proc/*/stat: { {pid =, state =, cmdline =} }.
function M.descendants(pid)
  pid = pid or M.pid()
  local procs, out, frontier = processes(), {}, { [pid] = true }
  local found = true
  while found do
    found = false
    for p, info in pairs(procs) do
      if frontier[info.ppid] and not frontier[p] then
        frontier[p] = true
        found = true
        out[#out + 1] = { pid = p, state = info.state, cmdline = info.cmdline }
      end
    end
  end
  return out
end

--- Live processes anywhere (re-parented to init or not) whose command line
-- holds 'marker': a spec starts its commands with a unique argument, such as
-- `sleep 37.0042`, and asks afterwards whether any of them survived.
function M.survivors(marker)
  local out = {}
  for p, info in pairs(processes()) do
    if info.state ~= "Z" and p ~= M.pid() and info.cmdline:find(marker, 1, true)
        and not info.cmdline:find("survivors", 1, true) then
      out[#out + 1] = p .. " " .. info.cmdline
    end
  end
  table.sort(out)
  return out
end

--- Quote 's' as one word for sh.
local function quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end
M.quote = quote

--- Remove the temporary folder 'dir' and all in it (nothing outside $TMPDIR).
function M.rmtree(dir)
  local tmp = (os.getenv("TMPDIR") or "/tmp"):gsub("/$", "")
  assert(dir:sub(1, #tmp + 1) == tmp .. "/" or dir:find("^/tmp/"), "not a temporary folder: " .. dir)
  os.execute("rm -rf " .. quote(dir))
end

--- A fresh temporary folder.  Given busted's 'finally', it is removed when
-- the spec ends; else call M.rmtree (say, in a teardown).
function M.tmpdir(finally)
  local d = lines("mktemp -d")[1]   -- popen closed: no zombie for later specs
  if finally then finally(function() M.rmtree(d) end) end
  return d
end

--- A fresh temporary file name (the file exists, empty), removed by busted's
-- 'finally' when the spec ends.
function M.tmpfile(finally)
  local p = os.tmpname()
  finally(function() os.remove(p) end)
  return p
end

--- Wait up to 'secs' for 'pred' to hold (polling); returns its last value.
function M.eventually(pred, secs)
  local deadline = os.time() + (secs or 5)
  local v = pred()
  while not v and os.time() <= deadline do
    os.execute("sleep 0.05")
    v = pred()
  end
  return v
end

function M.readfile(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

function M.writefile(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

--- For running bin/par from any folder: absolute paths of this checkout.
M.ROOT = lines("pwd")[1]

--- The folder of the build these specs run on, absolute: the one whose
-- par/core.so this process loads.  It is the checkout for the normal build,
-- build/asan or build/tsan for `make asan` or `make tsan` (busted --cpath);
-- the spec shims sit beside it in spec/support/.  The Lua processes the specs
-- start get it on LUA_CPATH (M.env, M.PAR_ENV), so they load the same build.
local core = package.searchpath("par.core", package.cpath)
local build = core and core:match("^(.-)/?par/core%.so$") or "."
if build == "" or build == "." then build = M.ROOT
elseif build:sub(1, 1) ~= "/" then build = M.ROOT .. "/" .. build:gsub("^%./", "") end
M.BUILD = build

--- The path of the spec shim spec/support/'name'.so of this build.
function M.shim(name)
  return M.BUILD .. "/spec/support/" .. name .. ".so"
end

M.PAR_ENV = ("LUA_PATH=%s LUA_CPATH=%s "):format(
  quote(M.ROOT .. "/lua/?.lua;" .. M.ROOT .. "/lua/?/init.lua;;"), quote(M.BUILD .. "/?.so;;"))
M.PAR = "lua5.4 " .. quote(M.ROOT .. "/bin/par")
M.HINT = "usage: par [options] [CMD] [::: ARG...] | par [options] run|map CONFIG.lua; see par --help\n"

--- The same, with the Lua path relative: for a child started from the top.
M.env = "LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH=" .. quote(M.BUILD .. "/?.so;;") .. " "

--- Run a Lua snippet in a child lua5.4 with par on the paths; returns its
-- output (stdout and stderr) and what io.popen's close gives.
function M.lua(code, prefix)
  local path = os.tmpname()
  M.writefile(path, code)
  local p = assert(io.popen((prefix or "") .. M.env .. "exec lua5.4 " .. path .. " 2>&1"))
  local out = p:read("a")
  local ok, how, status = p:close()
  os.remove(path)
  return out, ok, how, status
end

local marker_seq = 0
--- A `sleep` argument no other process on the machine has: base (a few
-- per spec file) keeps files apart, the pid runs apart.
function M.marker(base)
  marker_seq = marker_seq + 1
  return ("%d.%04d%03d"):format(base + marker_seq, M.pid() % 10000, marker_seq)
end

--- A child lua5.4 running 'code', with every signal at its default (a
-- shell ignores SIGINT and SIGQUIT for a background job, and so would its
-- children).  Its first line of output is its pid; wait() returns the
-- rest, and how and with what it ended.
function M.spawn(code)
  local path = os.tmpname()
  M.writefile(path, code)
  local p = assert(io.popen("exec timeout -s KILL 30 env --default-signal=INT,QUIT,HUP,TERM,PIPE " .. M.env ..
    "sh -c 'echo $$; exec lua5.4 " .. path .. "' 2>&1"))
  local pid = assert(math.tointeger(tonumber(p:read("l"))))
  local c = { pid = pid }
  function c.line() return p:read("l") end
  function c.kill(sig) os.execute(("kill -%s %d"):format(sig, pid)) end
  function c.wait()
    local out = p:read("a")
    local _, how, status = p:close()
    os.remove(path)
    return out, how, status
  end
  return c
end

--- The entries of `par --help`: each option's line with its continuation
-- lines (those indented past the names) joined by one space.
function M.help_entries()
  local out = {}
  for _, line in ipairs(M.lines(M.env .. "lua5.4 bin/par --help")) do
    local more = line:match("^" .. (" "):rep(25) .. "(%S.*)$")
    if more and #out > 0 and out[#out]:match("^  ") then
      out[#out] = out[#out] .. (out[#out]:match(" $") and "" or " ") .. more
    else
      out[#out + 1] = line
    end
  end
  return out
end

return M
