-- Nothing par starts outlives the call that started it, whatever way the
-- call ends: a killed map worker, a signal (in par's wait, in a callback, or
-- while a par.run sits in a suspended coroutine), os.exit from a callback, a
-- closed stdout of the par command.  Survivors are looked for everywhere:
-- by the parent links in /proc from this process, and by a marker argument
-- unique to each spec among all processes (re-parented to init or not).
local par = require "par"
local H = require "spec.helpers"

local function marker() return H.marker(30) end

local function assert_none_left(m)
  assert.are.same({}, H.survivors(m))
  local mine = {}
  for _, d in ipairs(H.descendants()) do
    if d.cmdline:find(m, 1, true) then mine[#mine + 1] = d.pid .. " " .. d.state .. " " .. d.cmdline end
  end
  assert.are.same({}, mine)
end

local spawn = H.spawn

describe("par.map leaves no descendant of its workers", function()
  it("kills the commands a timed-out worker's par.run started", function()
    local m = marker()
    local res, errs = par.map(function(x)
      par.run({ "exec sleep " .. m })
      return x
    end, { 1, 2 }, { timeout = 0.5, errors = "collect" })
    assert.are.equal(2, res.n)
    assert.are.equal("par.map: item 1: timeout after 0.5s", errs[1])
    assert.are.equal("par.map: item 2: timeout after 0.5s", errs[2])
    assert_none_left(m)
  end)

  it("kills what os.execute and io.popen started in a timed-out worker", function()
    local m = marker()
    local _, errs = par.map(function(x)
      if x == 1 then os.execute("exec sleep " .. m) end
      io.popen("exec sleep " .. m)
      os.execute("sleep 30")
      return x
    end, { 1, 2 }, { timeout = 0.5, errors = "collect" })
    assert.are.equal("par.map: item 1: timeout after 0.5s", errs[1])
    assert_none_left(m)
  end)

  it("kills a nested map's workers and the commands they run", function()
    local m = marker()
    local _, errs = par.map(function(x)
      par.map(function(y) par.run({ "exec sleep " .. m }); return y end, { 1, 2 }, 2)
      return x
    end, { 1, 2 }, { timeout = 0.5, errors = "collect" })
    assert.are.equal("par.map: item 2: timeout after 0.5s", errs[2])
    assert_none_left(m)
  end)

  it("kills a daemon an item started, even though it left the worker's tree", function()
    local m = marker()
    local res = par.map(function(x)
      os.execute("setsid sh -c 'exec sleep " .. m .. "' </dev/null >/dev/null 2>&1 &")
      return x * 2
    end, { 1, 2, 3 }, 2)
    assert.are.same({ 2, 4, 6, n = 3 }, res)
    assert_none_left(m)
  end)

  it("kills and reaps the workers' commands when fn raises (errors = 'raise')", function()
    local m = marker()
    local ok, e = pcall(par.map, function(x)
      if x == 1 then
        os.execute("sleep 0.3")
        error("boom", 0)
      end
      par.run({ "exec sleep " .. m })
    end, { 1, 2 }, 2)
    assert.is_false(ok)
    assert.are.equal("par.map: item 1: boom", e:match("^[^\n]*"))
    assert_none_left(m)
  end)

  it("kills the workers' commands when the caller gets SIGTERM", function()
    local m = marker()
    local c = spawn(([[
      local par = require "par"
      io.stdout:setvbuf("line")
      local ok, e = pcall(par.map, function(x)
        par.run({ "exec sleep %s" })
        return x
      end, { 1, 2 }, { procs = 2, on_result = function() end,
        init = function() io.stdout:write("ready\n") end })
      print(ok, e)
    ]]):format(m))
    assert.are.equal("ready", c.line())
    os.execute("sleep 0.3")
    c.kill("TERM")
    local out = c.wait()
    assert.are.equal("false\tinterrupted\n", out:gsub("ready\n", ""))
    assert_none_left(m)
  end)
end)

describe("a signal to the caller", function()
  for _, sig in ipairs({ "HUP", "QUIT", "TERM", "INT" }) do
    it("SIG" .. sig .. " during par.run stops, reaps and raises 'interrupted'", function()
      local m = marker()
      local c = spawn(([[
        local par = require "par"
        io.stdout:setvbuf("line")
        local ok, e = pcall(par.run, { "echo ready", "exec sleep %s", "exec sleep %s" }, {
          jobs = 3, on_done = function(r) io.stdout:write(r.stdout) end })
        print(ok, e)
      ]]):format(m, m))
      assert.are.equal("ready", c.line())
      c.kill(sig)
      local out, how, status = c.wait()
      assert.are.equal("false\tinterrupted\n", out)
      assert.are.same({ "exit", 0 }, { how, status })
      assert_none_left(m)
    end)
  end

  it("in a long on_done raises 'interrupted' inside it and reaps the rest", function()
    local m = marker()
    local c = spawn(([[
      local par = require "par"
      io.stdout:setvbuf("line")
      local ok, e = pcall(par.run, { "true", "exec sleep %s" }, {
        jobs = 2, on_done = function() print("looping"); while true do end end })
      print(ok, e)
    ]]):format(m))
    assert.are.equal("looping", c.line())
    c.kill("INT")
    local out = c.wait()
    assert.are.equal("false\tinterrupted\n", out)
    assert_none_left(m)
  end)

  it("in a long on_result raises 'interrupted' inside it and kills the workers", function()
    local m = marker()
    local c = spawn(([[
      local par = require "par"
      io.stdout:setvbuf("line")
      local ok, e = pcall(par.map, function(x)
        if x == 2 then par.run({ "exec sleep %s" }) end
        return x
      end, { 1, 2 }, { procs = 2, chunksize = 1,
        on_result = function() print("looping"); while true do end end })
      print(ok, e)
    ]]):format(m))
    assert.are.equal("looping", c.line())
    os.execute("sleep 0.3")
    c.kill("TERM")
    local out = c.wait()
    assert.are.equal("false\tinterrupted\n", out)
    assert_none_left(m)
  end)

  it("while par.run is suspended in a coroutine raises 'interrupted' in the host's code", function()
    local m = marker()
    local c = spawn(([[
      local par = require "par"
      io.stdout:setvbuf("line")
      local co = coroutine.wrap(function()
        par.run({ "true", "exec sleep %s" }, { jobs = 2, on_done = function() coroutine.yield() end })
      end)
      co()
      local ok, e = pcall(function()
        print("suspended")
        while true do end
      end)
      print(ok, e)
      co = nil
      collectgarbage(); collectgarbage()
      print("collected")
    ]]):format(m))
    assert.are.equal("suspended", c.line())
    c.kill("INT")
    local out, how, status = c.wait()
    assert.are.equal("false\tinterrupted\ncollected\n", out)
    assert.are.same({ "exit", 0 }, { how, status })
    assert_none_left(m)
  end)

  it("after par.run has returned follows the host's disposition", function()
    local c = spawn([[
      local par = require "par"
      io.stdout:setvbuf("line")
      par.run({ "true" })
      print("done")
      while true do end
    ]])
    assert.are.equal("done", c.line())
    c.kill("TERM")
    local out, how, status = c.wait()
    assert.are.equal("", out)
    assert.are.same({ "signal", 15 }, { how, status })
  end)
end)

describe("os.exit from a callback", function()
  it("in on_done kills and reaps the commands still running", function()
    local m = marker()
    local c = spawn(([[
      local par = require "par"
      par.run({ "true", "exec sleep %s", "exec sleep %s" }, { jobs = 3,
        on_done = function(r, i) if i == 1 then os.exit(7) end end })
    ]]):format(m, m))
    local out, how, status = c.wait()
    assert.are.equal("", out)
    assert.are.same({ "exit", 7 }, { how, status })
    assert_none_left(m)
  end)

  it("in on_result kills the workers and what they started", function()
    local m = marker()
    local c = spawn(([[
      local par = require "par"
      par.map(function(x)
        if x == 2 then par.run({ "exec sleep %s" }) end
        return x
      end, { 1, 2 }, { procs = 2, chunksize = 1,
        on_result = function(v) if v == 1 then os.execute("sleep 0.3"); os.exit(true) end end })
    ]]):format(m))
    local out, how, status = c.wait()
    assert.are.equal("", out)
    assert.are.same({ "exit", 0 }, { how, status })
    assert_none_left(m)
  end)

  it("after par is unloaded by lua_close runs nothing of par's (a clean exit)", function()
    local c = spawn([[
      local par = require "par"
      par.run({ "true" })
      par.map(function(x) return x end, { 1, 2 }, 2)
      print("ok")
    ]])
    local out, how, status = c.wait()
    assert.are.equal("ok\n", out)
    assert.are.same({ "exit", 0 }, { how, status })
  end)
end)

describe("the par command", function()
  local par_cmd = "exec timeout -s KILL 30 env --default-signal=INT,QUIT,HUP,TERM,PIPE " .. H.env .. "lua5.4 bin/par "

  it("exits 141 and leaves nothing when its stdout closes (| head -1)", function()
    local m = marker()
    for _, ignore in ipairs({ "", "trap '' PIPE; " }) do
      local sh = assert(io.popen("exec bash -c " .. par.quote(ignore .. par_cmd
        .. "-j 3 'sleep {}; echo {}' ::: 0.1 0.3 " .. m .. " " .. m
        .. " | head -1; echo \"status ${PIPESTATUS[0]}\"")))
      local out = sh:read("a")
      sh:close()
      assert.are.equal("0.1\nstatus 141\n", out)
      assert_none_left(m)
    end
  end)

  for sig, num in pairs({ HUP = 1, QUIT = 3, TERM = 15, INT = 2 }) do
    it("exits 128+" .. num .. " on SIG" .. sig .. " and leaves nothing", function()
      local m = marker()
      local p = assert(io.popen("sh -c " .. par.quote("echo $$; " .. par_cmd
        .. "-j 3 'sleep {}; echo {}' ::: 0 " .. m .. " " .. m) .. " 2>&1"))
      local pid = p:read("l")
      assert.are.equal("0", p:read("l"))
      os.execute("kill -" .. sig .. " " .. pid)
      local out = p:read("a")
      local _, how, status = p:close()
      assert.are.same({ "exit", 128 + num }, { how, status })
      assert.truthy(out:find("par: interrupted\n", 1, true))
      assert_none_left(m)
    end)
  end

  it("exits 130 when Ctrl-C stops a config's commands() function", function()
    local cfg = os.tmpname()
    finally(function() os.remove(cfg) end)
    H.writefile(cfg, [[
      return { commands = function() io.stdout:write("ready\n"); io.stdout:flush(); while true do end end }
    ]])
    local p = assert(io.popen("sh -c " .. par.quote("echo $$; " .. par_cmd .. "run " .. cfg) .. " 2>&1"))
    local pid = p:read("l")
    assert.are.equal("ready", p:read("l"))
    os.execute("kill -INT " .. pid)
    local out = p:read("a")
    local _, how, status = p:close()
    assert.are.equal("par: interrupted\n", out)
    assert.are.same({ "exit", 130 }, { how, status })
  end)
end)
