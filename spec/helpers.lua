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

--- Pids whose parent is 'pid' (default: this process), with their states.
function M.children(pid)
  pid = pid or M.pid()
  local kids = {}
  for _, name in ipairs(lines("exec ls /proc")) do
    local f = name:match("^%d+$") and io.open("/proc/" .. name .. "/stat")
    if f then
      local stat = f:read("a") or ""
      f:close()
      local state, ppid = stat:match("%) (%S) (%d+)")
      if tonumber(ppid) == pid then kids[#kids + 1] = { pid = tonumber(name), state = state } end
    end
  end
  return kids
end

--- Number of open descriptors of this process.
function M.fdcount()
  return #lines("exec ls /proc/" .. M.pid() .. "/fd")
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

M.env = "LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='./?.so;;' "

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

return M
