local par = require "par"
local H = require "spec.helpers"

describe("par.run under load and faults", function()
  it("runs 20,000 commands on 16 threads and leaves nothing behind #load", function()
    collectgarbage(); collectgarbage()
    local fds = H.fdcount()
    local cmds = {}
    for i = 1, 20000 do cmds[i] = { "echo", tostring(i) } end
    local res, nfailed = par.run(cmds, 16)
    assert.are.equal(0, nfailed)
    assert.are.equal(20000, #res)
    for i = 1, 20000 do
      if res[i].stdout ~= i .. "\n" then assert.are.equal(i .. "\n", res[i].stdout) end
    end
    res = nil -- luacheck: ignore 311 (dropped for the collector)
    collectgarbage(); collectgarbage()
    assert.are.equal(fds, H.fdcount())
    assert.are.same({}, H.children())
  end)

  it("reports descriptor exhaustion as errors and completes the rest #child_lua", function()
    local out = H.lua([[
      local par = require "par"
      local cmds = {}
      for i = 1, 200 do cmds[i] = { "sh", "-c", "sleep 0.01; echo " .. i } end
      local res = par.run(cmds, 8)
      local errors, oks, other = 0, 0, 0
      for i, r in ipairs(res) do
        if r.status == "error" then
          errors = errors + 1
          assert(r.error == "cannot run 'sh': pipe: Too many open files", r.error)
        elseif r.ok and r.stdout == i .. "\n" then oks = oks + 1
        else other = other + 1 end
      end
      local fds = 0
      for _ in io.popen("ls /proc/" .. io.open("/proc/self/stat"):read("n") .. "/fd"):lines() do fds = fds + 1 end
      print(errors > 0, oks > 0, other, errors + oks)
    ]], "ulimit -n 20; ")
    assert.are.equal("true\ttrue\t0\t200\n", out)
  end)

  it("copes with a command that closes its stdout early", function()
    local res = par.run({ "exec 1>&-; sleep 0.1; echo late >&2", "head -c 1000000 /dev/zero | head -c 10" }, 2)
    assert.is_true(res[1].ok)
    assert.are.equal("", res[1].stdout)
    assert.are.equal("late\n", res[1].stderr)
    assert.are.equal(10, #res[2].stdout)
  end)

  it("does not hang on a daemonized grandchild holding the pipes past a timeout", function()
    local pidfile = os.tmpname()
    finally(function() os.execute("kill $(cat " .. pidfile .. ") 2>/dev/null"); os.remove(pidfile) end)
    local res = par.run({ "setsid sh -c 'echo $$ > " .. pidfile .. "; exec sleep 30' & sleep 30" },
      { timeout = 0.2, kill_after = 0.1, stdin = string.rep("x", 10 * 2 ^ 20) })
    assert.are.equal("timeout", res[1].status)
    assert.are.same({}, H.children())
  end)

  it("reports exit codes when the host ignores SIGCHLD #child_lua", function()
    local out = H.lua([[
      local res = require("par").run({ "exit 3", "true", "kill -9 $$" }, 2)
      print(res[1].code, res[2].code, res[3].signal)
    ]], "trap '' CHLD; ")
    assert.are.equal("3\t0\t9\n", out)
  end)

  it("works beside a host's own SIGCHLD handler that reaps nothing", function()
    local sigchld = require "spec.support.sigchld"
    sigchld.install("count")
    local ok, res = pcall(par.run, { "exit 3", "true" }, 2)
    local seen = sigchld.restore()
    assert.is_true(ok)
    assert.are.same({ 3, 0 }, { res[1].code, res[2].code })
    assert.is_true(seen >= 1)   -- the host's handler still ran (SIGCHLDs coalesce: maybe once)
  end)

  it("says why when a host's SIGCHLD handler reaps par's children", function()
    local sigchld = require "spec.support.sigchld"
    sigchld.install("reap")
    local ok, res = pcall(par.run, { "sleep 0.2; exit 3" }, 1)
    sigchld.restore()
    assert.is_true(ok)
    local r = res[1]
    assert.is_true(r.code == 3 or r.error ==
      "cannot get the exit status of '/bin/sh': it was reaped by someone else (a SIGCHLD handler calling wait?)")
    assert.are.same({}, H.children())
  end)
end)

describe("par.map under faults", function()
  it("computes every other item of 100,000 when a worker is SIGKILLed every 500 items", function()
    local items = {}
    for i = 1, 100000 do items[i] = i end
    local function pid()
      local f = io.open("/proc/self/stat")
      local n = f:read("n")
      f:close()
      return math.tointeger(n)
    end
    local res, errs = par.map(function(x)
      if x % 500 == 0 then os.execute("kill -9 " .. pid()) end
      return x * 3
    end, items, { procs = 2, errors = "collect" })
    assert.are.equal(100000, res.n)
    local failed = 0
    for i = 1, 100000 do
      if i % 500 == 0 then
        assert.are.equal(("par.map: item %d: worker died (signal 9, SIGKILL)"):format(i), errs[i])
        assert.is_nil(res[i])
        failed = failed + 1
      elseif res[i] ~= i * 3 then
        assert.are.equal(i * 3, res[i])
      end
    end
    assert.are.equal(200, failed)
    local n = 0
    for _ in pairs(errs) do n = n + 1 end
    assert.are.equal(200, n)
    assert.are.same({}, H.children())
  end)
end)

-- {======================================================================
-- Resource limits.  Each case runs in a child lua5.4 under its limit.

local function sanitized()
  return (os.getenv("LD_PRELOAD") or ""):find("san", 1, true) ~= nil
end

-- A caller holding 140 MiB of strings.
local HEAP = [[
  local par = require "par"
  local heap = {}
  for i = 1, 140 do heap[i] = string.rep(string.char(64 + i % 26), 2^20 - 64) end
  collectgarbage()
]]

-- ulimit -v for a child that runs HEAP: what the caller needs (its VmPeak,
-- about 150 MB here) and 40 MiB more.  That leaves room for workers that
-- map what they use, not for the 64 MiB a worker's arena used to map up
-- front, nor for a 100 MiB string.
local limit
local function heap_limit()
  if not limit then
    local out = H.lua(HEAP .. [[
      print(io.open("/proc/self/status"):read("a"):match("VmPeak:%s*(%d+)"))
    ]])
    limit = assert(tonumber(out), out) + 40 * 1024
  end
  return limit
end

local function uid()
  return tonumber(H.readfile("/proc/self/status"):match("\nUid:%s*(%d+)"))
end

-- RLIMIT_NPROC does not apply to root, so these children run as a uid no
-- account uses: the limit then counts only the child's own processes and
-- threads.  The checkout is world-readable; the snippet is made so too.
local UID = 47321

local function lua_as_user(code, prlimit)
  local path = os.tmpname()
  H.writefile(path, code)
  os.execute("chmod 644 " .. path)
  local p = assert(io.popen(("prlimit %s setpriv --reuid=%d --regid=%d --clear-groups env %slua5.4 %s 2>&1")
    :format(prlimit, UID, UID, H.env, path)))
  local out = p:read("a")
  p:close()
  os.remove(path)
  return out
end

describe("par.map under resource limits", function()
  it("runs tiny items beside a 140 MiB caller under ulimit -v #child_lua", function()
    if sanitized() then return pending("ASan and UBSan reserve terabytes of address space: no ulimit -v") end
    local out = H.lua(HEAP .. [[
      local r, errs = par.map(function(x) return x end, { 1, 2, 3 }, { procs = 2, errors = "collect" })
      print(r.n, r[1], r[2], r[3], next(errs))
    ]], "ulimit -v " .. heap_limit() .. "; ")
    assert.are.equal("3\t1\t2\t3\tnil\n", out)
  end)

  it("fails the item that cannot get memory, and only that one #child_lua", function()
    if sanitized() then return pending("ASan and UBSan reserve terabytes of address space: no ulimit -v") end
    local out = H.lua(HEAP .. [[
      local function fn(x)
        if x == 2 then return ("x"):rep(100 * 2^20) end
        return x
      end
      local r, errs = par.map(fn, { 1, 2, 3 }, { procs = 2, errors = "collect" })
      print(r.n, r[1], r[2], r[3], errs[1], errs[2], errs[3])
      print(pcall(par.map, fn, { 1, 2, 3 }, 2))
    ]], "ulimit -v " .. heap_limit() .. "; ")
    assert.are.equal("3\t1\tnil\t3\tnil\tpar.map: item 2: not enough memory\tnil\n"
      .. "false\tpar.map: item 2: not enough memory\n", out)
  end)

  it("returns nil, msg, errno when no worker can set itself up #child_lua", function()
    local shim = H.shim("nomap")
    if not H.readfile(shim) then return pending("make " .. shim .. " first (make test does)") end
    local out = H.lua([[
      local par = require "par"
      print(par.map(function(x) return x end, { 1, 2, 3 }, { procs = 2, errors = "collect" }))
      print(par.map(function(x) return x end, { 1, 2, 3 }, { procs = 2, init = function() end }))
    ]], ("LD_PRELOAD='%s %s' "):format(os.getenv("LD_PRELOAD") or "", shim))
    assert.are.equal(("nil\tworker setup: Cannot allocate memory\t12\n"):rep(2), out)
  end)

  it("goes on with the workers it could fork under ulimit -u, or returns nil, msg, errno #child_lua", function()
    if uid() ~= 0 then return pending("needs root, to run a child as another user (RLIMIT_NPROC spares root)") end
    local code = [[
      local par = require "par"
      local r, errs = par.map(function(x) return x * 2 end, { 1, 2, 3, 4, 5, 6, 7, 8 },
        { procs = 4, errors = "collect" })
      if not r then print(r, errs) else print(r.n, table.concat(r, " "), next(errs)) end
      print(par.map(function(x) return x end, { 1, 2 }, 2))
    ]]
    assert.are.equal("8\t2 4 6 8 10 12 14 16\tnil\n" .. "table: X\n",
      (lua_as_user(code, "--nproc=3"):gsub("table: 0x%x+", "table: X")))
    assert.are.equal("nil\tfork: Resource temporarily unavailable\n"
      .. "nil\tfork: Resource temporarily unavailable\t11\n", lua_as_user(code, "--nproc=1"))
  end)
end)

describe("par.run under resource limits", function()
  it("waits for a command to end when ulimit -u stops a spawn, then spawns #child_lua", function()
    if uid() ~= 0 then return pending("needs root, to run a child as another user (RLIMIT_NPROC spares root)") end
    -- 20 threads and the caller leave room for 9 commands
    local out = lua_as_user([[
      local cmds = {}
      for i = 1, 50 do cmds[i] = { "true" } end
      local res, nfailed = require("par").run(cmds, 20)
      local errs = {}
      for i = 1, 50 do if not res[i].ok then errs[#errs + 1] = res[i].error end end
      print(#res, nfailed, errs[1])
    ]], "--nproc=30")
    assert.are.equal("50\t0\tnil\n", out)
  end)

  it("returns nil, msg, errno when no worker thread can start #child_lua", function()
    if uid() ~= 0 then return pending("needs root, to run a child as another user (RLIMIT_NPROC spares root)") end
    local out = lua_as_user([[
      print(require("par").run({ { "true" }, { "true" } }, 2))
    ]], "--nproc=1")
    assert.are.equal("nil\tpthread_create: Resource temporarily unavailable\t11\n", out)
  end)

  it("reports the spawn's error when nothing else of the run could end #child_lua", function()
    if uid() ~= 0 then return pending("needs root, to run a child as another user (RLIMIT_NPROC spares root)") end
    local out = lua_as_user([[
      local res, nfailed = require("par").run({ { "true" }, { "true" } }, 1)
      print(nfailed, res[1].error, res[2].error)
    ]], "--nproc=2")
    assert.are.equal("2\tcannot run 'true': Resource temporarily unavailable"
      .. "\tcannot run 'true': Resource temporarily unavailable\n", out)
  end)
end)
