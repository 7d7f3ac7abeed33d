-- par.pool: workers forked once and reused, futures, and what travels to
-- workers that were forked before it existed.  Real processes, checked
-- through /proc; survivors looked for by a marker in their command line.
local par = require "par"
local H = require "spec.helpers"

local function marker() return H.marker(50) end

local function range(n)
  local t = {}
  for i = 1, n do t[i] = i end
  return t
end

-- The pid of the process that runs it (a worker's, in a task).
local function mypid()
  local f = assert(io.open("/proc/self/stat"))
  local pid = f:read("n")
  f:close()
  return math.tointeger(pid)
end

local function busy(secs)
  local t0 = require("par.core").monotime()
  while require("par.core").monotime() - t0 < secs do end
end

local function no_children()
  return H.eventually(function() return #H.children() == 0 end, 5)
end

local function assert_none_left(m)
  assert.are.same({}, H.survivors(m))
  assert.is_true(no_children())
end

describe("par.pool", function()
  describe("is made", function()
    it("with n workers forked at once, each running init once", function()
      local log = H.tmpfile(finally)
      local pool = par.pool(3, { init = function()
        local f = assert(io.open(log, "a"))
        f:write(mypid(), "\n")
        f:close()
      end })
      finally(function() pool:terminate() end)
      local pids = pool:pids()
      assert.are.equal(3, #pids)
      local kids = {}
      for _, p in ipairs(H.children()) do kids[p.pid] = true end
      for _, p in ipairs(pids) do assert.is_true(kids[p]) end
      local inited = {}
      for line in H.readfile(log):gmatch("%d+") do inited[#inited + 1] = tonumber(line) end
      table.sort(inited)
      table.sort(pids)
      assert.are.same(pids, inited)
      for _ = 1, 10 do pool:submit(function() return 1 end):get() end
      assert.are.equal(3, #H.readfile(log):gsub("[^\n]", ""))
    end)

    it("with par.cpus() workers by default", function()
      local pool <close> = par.pool()
      assert.are.equal(par.cpus(), #pool:pids())
    end)

    it("refuses bad arguments in the Lua convention", function()
      assert.has_error(function() par.pool(0) end,
        "bad argument #1 to 'pool' (number of jobs: must be >= 1, got 0)")
      assert.has_error(function() par.pool("x") end,
        "bad argument #1 to 'pool' (number or table expected, got string)")
      assert.has_error(function() par.pool(2, { bogus = 1 }) end,
        "bad argument #2 to 'pool' (unknown option 'bogus')")
      assert.has_error(function() par.pool(2, { max_tasks = 0 }) end)
      assert.has_error(function() par.pool({ init = 3 }) end)
      assert.is_true(no_children())
    end)

    it("fails with the worker's message when init raises, leaving nothing", function()
      local ok, err = pcall(par.pool, 2, { init = function() error("no database") end })
      assert.is_false(ok)
      assert.matches("^par%.pool: init: .-pool_spec%.lua:%d+: no database\nstack traceback:", err)
      assert.is_true(no_children())
    end)
  end)

  describe("submit and get", function()
    local pool
    setup(function() pool = par.pool(2) end)
    teardown(function() pool:close() end)

    it("runs fn(...) on a worker and gives its first result", function()
      local f = pool:submit(function(a, b, c) return a + b, c end, 2, 3, "x")
      assert.are.equal(5, f:get())
      assert.is_true(f:done())
      assert.are.equal(5, f:get())            -- again: the same
      assert.are_not.equal(H.pid(), pool:submit(mypid):get())
    end)

    it("passes every argument, nils in the middle included, and values of every kind", function()
      local t = { 1, 2, { deep = { "x" } }, s = "str", f = 1.5 }
      t.self = t
      local n, last, back = pool:submit(function(...)
        return select("#", ...), select(4, ...), select(1, ...)
      end, t, nil, nil, "end"):get()
      assert.are.equal(4, n)
      assert.is_nil(last)
      assert.is_nil(back)
      local got = pool:submit(function(x) return x end, t):get()
      assert.are.equal(got, got.self)
      assert.are.same({ "x" }, got[3].deep)
      assert.are.equal(1.5, got.f)
      assert.are.equal(0 / 0 ~= 0 / 0, pool:submit(function(x) return x ~= x end, 0 / 0):get())
      assert.are.equal(math.mininteger, pool:submit(function(x) return x end, math.mininteger):get())
    end)

    it("raises fn's error with its traceback, as par.map does; tables as they came", function()
      local f = pool:submit(function() error("boom") end)
      local ok, err = pcall(f.get, f)
      assert.is_false(ok)
      assert.matches("^par%.pool: task: .-pool_spec%.lua:%d+: boom\nstack traceback:\n", err)
      local e = { code = 7 }
      local ok2, err2 = pcall(function() return pool:submit(function() error(e) end):get() end)
      assert.is_false(ok2)
      assert.are.same({ code = 7 }, err2)
      assert.are.equal(3, pool:submit(function() return 3 end):get())   -- the pool goes on
    end)

    it("get(timeout) gives nil, 'timeout' and leaves the task running", function()
      local path = H.tmpfile(finally)
      local f = pool:submit(function(p)
        busy(0.3)
        local fh = assert(io.open(p, "w"))
        fh:write("ran")
        fh:close()
        return "late"
      end, path)
      local v, why = f:get(0.02)
      assert.is_nil(v)
      assert.are.equal("timeout", why)
      assert.is_false(f:done())
      assert.are.equal("late", f:get())
      assert.are.equal("ran", H.readfile(path))
      assert.has_error(function() f:get(-1) end,
        "bad argument #1 to 'get' (non-negative number expected, got number)")
    end)

    it("refuses what cannot travel, naming it, before anything runs", function()
      local fh = io.tmpfile()
      finally(function() fh:close() end)
      assert.has_error(function() pool:submit(function() return fh end) end,
        "par.pool: cannot send upvalue 'fh' of fn (a userdata)")
      local co = coroutine.create(print)
      local ok, err = pcall(pool.submit, pool, function(x) return x end, 1, co)
      assert.is_false(ok)
      assert.matches("cannot send argument #2 %(a coroutine%)", err)
      assert.has_error(function() pool:submit(3) end,
        "bad argument #1 to 'submit' (function or string expected, got number)")
    end)

    it("resolves 'module.func' as par.map does", function()
      assert.are.equal("aaa", pool:submit("string.rep", "a", 3):get())
      assert.are.equal("'a b'", pool:submit("par.util.quote", "a b"):get())
      assert.has_error(function() pool:submit("no.such.module.fn") end)
    end)

    it("apply is submit and get", function()
      assert.are.equal(12, pool:apply(function(x) return x * 2 end, 6))
    end)
  end)

  describe("sends functions", function()
    local pool
    setup(function() pool = par.pool(2) end)
    teardown(function() pool:close() end)

    it("made after the fork, with upvalues of every kind", function()
      local n, s = 40, "str"
      local t = { a = 1 }
      t.loop = t
      local fmt = string.format
      local util = require "par.util"
      local function inner(x) return x + n end            -- a nested closure
      local f = function(x)
        return fmt("%d %s %s %s %s", inner(x), s, tostring(t.loop.loop == t), util.quote("a b"), type(_ENV))
      end
      assert.are.equal("42 str true 'a b' table", pool:submit(f, 2):get())
    end)

    it("binds _ENV to the worker's globals", function()
      local p <close> = par.pool(1, { init = function() _G.WORKER_ONLY = "set by init" end })
      assert.is_nil(rawget(_G, "WORKER_ONLY"))
      assert.are.equal("set by init", p:submit(function() return WORKER_ONLY end):get()) -- luacheck: ignore
    end)

    it("with upvalues as they are at each call", function()
      local k = 1
      local f = function() return k end
      assert.are.equal(1, pool:submit(f):get())
      k = 2
      assert.are.equal(2, pool:submit(f):get())
      local shared = { v = "a" }
      local g = function() return shared.v end
      assert.are.equal("a", pool:submit(g):get())
      shared.v = "b"
      assert.are.equal("b", pool:submit(g):get())
    end)

    it("once per worker for a large map, and once per code for many closures", function()
      local p <close> = par.pool(2)
      local before = p:stats().defines
      local res = p:map(function(x) return x + 1 end, range(100000))
      assert.are.equal(100001, res[100000])
      assert.are.equal(before + 2, p:stats().defines)
      for i = 1, 50 do
        assert.are.equal(i, p:submit(function() return i end):get())
      end
      assert.are.equal(before + 4, p:stats().defines)
    end)

    it("that a worker resolves by path when the module was loaded after the fork", function()
      local p <close> = par.pool(1)
      package.loaded["spec_late_mod"] = nil
      package.preload["spec_late_mod"] = function() return { twice = function(x) return 2 * x end } end
      finally(function()
        package.loaded["spec_late_mod"] = nil
        package.preload["spec_late_mod"] = nil
      end)
      local ok, why = pcall(function()
        local m = require "spec_late_mod"
        return p:submit(function(x) return m.twice(x) end, 21):get()
      end)
      -- the worker has no preload for it: the path cannot resolve there
      assert.is_false(ok)
      assert.matches("cannot resolve 'spec_late_mod", why)
      assert.are.equal(5, p:submit(function() return 5 end):get())
    end)
  end)

  describe("futures", function()
    local pool
    setup(function() pool = par.pool(3) end)
    teardown(function() pool:close() end)

    it("as_completed yields those done first, then in the order they finish", function()
      local early = pool:submit(function() return "early" end)
      early:get()
      local fs = {}
      for i, d in ipairs({ 0.6, 0.1, 0.35 }) do
        fs[i] = pool:submit(function(secs, tag) busy(secs) return tag end, d, i)
      end
      local order = {}
      for f in par.as_completed({ fs[1], fs[2], early, fs[3] }) do order[#order + 1] = f:get() end
      assert.are.same({ "early", 2, 3, 1 }, order)
    end)

    it("as_completed raises past its timeout", function()
      local f = pool:submit(function() busy(0.5) return 1 end)
      local ok, err = pcall(function()
        for _ in par.as_completed({ f }, 0.05) do end
      end)
      assert.is_false(ok)
      assert.matches("par%.as_completed: timeout %(1 of 1 futures not done%)", err)
      assert.are.equal(1, f:get())
    end)

    it("wait: all, any, and with a timeout", function()
      local fs = {}
      for i, d in ipairs({ 0.05, 0.4, 0.4 }) do
        fs[i] = pool:submit(function(secs) busy(secs) return secs end, d)
      end
      local done, pending = par.wait(fs, { any = true })
      assert.are.equal(1, #done)
      assert.are.equal(fs[1], done[1])
      assert.are.equal(2, #pending)
      done, pending = par.wait(fs, { timeout = 0.01 })
      assert.are.equal(1, #done)
      assert.are.equal(2, #pending)
      done, pending = par.wait(fs)
      assert.are.equal(3, #done)
      assert.are.equal(0, #pending)
      assert.has_error(function() par.wait({ 1 }) end,
        "bad argument #1 to 'wait' (futures[1] is a number, not a future)")
      assert.has_error(function() par.wait(fs, { anything = 1 }) end,
        "bad argument #2 to 'wait' (unknown option 'anything')")
    end)

    it("from several coroutines, interleaved", function()
      local out = {}
      local cos = {}
      for c = 1, 3 do
        cos[c] = coroutine.wrap(function()
          for i = 1, 5 do
            local f = pool:submit(function(a, b) return a * 10 + b end, c, i)
            coroutine.yield()
            out[#out + 1] = f:get()
          end
        end)
      end
      for _ = 1, 6 do for c = 1, 3 do cos[c]() end end
      table.sort(out)
      assert.are.same({ 11, 12, 13, 14, 15, 21, 22, 23, 24, 25, 31, 32, 33, 34, 35 }, out)
    end)

    it("cancel: a queued task never runs (true); a running one is left alone (false)", function()
      local p <close> = par.pool(1)
      local path = H.tmpfile(finally)
      local running = p:submit(function() busy(0.3) return "ran" end)
      local queued = {}
      for i = 1, 5 do
        queued[i] = p:submit(function(f, k)
          local fh = assert(io.open(f, "a"))
          fh:write(k, "\n")
          fh:close()
        end, path, i)
      end
      busy(0.05)
      assert.is_false(running:cancel())
      assert.is_true(queued[5]:cancel())
      assert.is_true(queued[5]:cancel())    -- cancelled stays so
      assert.is_true(queued[5]:done())
      assert.is_true(queued[5]:cancelled())
      assert.has_error(function() queued[5]:get() end, "par.pool: the task was cancelled")
      assert.are.equal("ran", running:get())
      for i = 1, 4 do queued[i]:get() end
      assert.is_false(queued[1]:cancel())   -- finished
      assert.are.equal("1\n2\n3\n4\n", H.readfile(path))
    end)
  end)

  describe("map and imap", function()
    local pool
    setup(function() pool = par.pool(2) end)
    teardown(function() pool:close() end)

    it("map: results in order, results.n, every item once", function()
      local res = pool:map(function(x, i) return x * 2 + i end, range(1000))
      assert.are.equal(1000, res.n)
      for i = 1, 1000 do assert.are.equal(3 * i, res[i]) end
      local empty = pool:map(print, {})
      assert.are.same({ n = 0 }, empty)
      local lazy = pool:map(function(x) return -x end, coroutine.wrap(function()
        for i = 1, 50 do coroutine.yield(i) end
      end))
      assert.are.equal(50, lazy.n)
      for i = 1, 50 do assert.are.equal(-i, lazy[i]) end
    end)

    it("map raises the failed item's error, or collects", function()
      local ok, err = pcall(pool.map, pool, function(x)
        if x == 7 then error("seven") end
        return x
      end, range(20))
      assert.is_false(ok)
      assert.matches("^par%.pool: item 7: .-: seven\nstack traceback:", err)
      local res, errs = pool:map(function(x)
        if x % 5 == 0 then error("five") end
        return x
      end, range(20), { errors = "collect" })
      assert.are.equal(20, res.n)
      assert.is_nil(res[5])
      assert.are.equal(4, res[4])
      local failed = {}
      for i in pairs(errs) do failed[#failed + 1] = i end
      table.sort(failed)
      assert.are.same({ 5, 10, 15, 20 }, failed)
      assert.are.equal(10, pool:map(function() return 10 end, { 1 })[1])   -- goes on
    end)

    it("calls on_result in the caller, which may submit more tasks", function()
      local seen, futures = {}, {}
      pool:map(function(x) return x * x end, range(10), { on_result = function(v, i)
        seen[i] = v
        futures[#futures + 1] = pool:submit(function(y) return y + 1 end, v)
      end })
      for i = 1, 10 do assert.are.equal(i * i, seen[i]) end
      local sum = 0
      for f in par.as_completed(futures) do sum = sum + f:get() end
      assert.are.equal(385 + 10, sum)
    end)

    it("refuses bad arguments", function()
      assert.has_error(function() pool:map(print, 3) end,
        "bad argument #2 to 'map' (table or function expected, got number)")
      assert.has_error(function() pool:map(print, {}, { bogus = true }) end,
        "bad argument #3 to 'map' (unknown option 'bogus')")
      local fh = io.tmpfile()
      finally(function() fh:close() end)
      assert.has_error(function() pool:map(function(x) return x end, { 1, fh }) end,
        "par.pool: cannot send item #2 (a userdata)")
    end)

    it("imap: completion order, input order with ordered, errors collected", function()
      local got = {}
      for i, v in pool:imap(function(x) busy(x == 1 and 0.2 or 0) return x end, range(6), { chunksize = 1 }) do
        got[#got + 1] = i
        assert.are.equal(i, v)
      end
      assert.are.equal(6, #got)
      assert.are_not.equal(1, got[1])            -- the slow first item ends later
      local inorder = {}
      for i, v in pool:imap(function(x) busy(x == 1 and 0.1 or 0) return x end, range(6),
          { ordered = true, chunksize = 1 }) do
        inorder[#inorder + 1] = v
        assert.are.equal(i, v)
      end
      assert.are.same(range(6), inorder)
      local errs = {}
      for i, v, err in pool:imap(function(x) if x == 2 then error("two") end return x end, range(3),
          { errors = "collect", ordered = true }) do
        if err then errs[i] = err else assert.are.equal(i, v) end
      end
      assert.matches("par%.pool: item 2: .-two", errs[2])
    end)

    it("imap: a break cancels what was not run, and the pool goes on", function()
      local pulled = 0
      for i in pool:imap(function(x) return x end, function()
        pulled = pulled + 1
        return pulled
      end) do
        if i >= 3 then break end
      end
      assert.is_true(pulled <= 64, pulled)
      assert.are.equal(7, pool:submit(function() return 7 end):get())
      assert.are.equal(2, #pool:pids())
    end)
  end)

  describe("faults", function()
    it("a worker that dies fails only its task and is replaced", function()
      local pool <close> = par.pool(2)
      local path = H.tmpfile(finally)
      local f = pool:submit(function(p)
        local fh = assert(io.open(p, "w"))
        fh:write(mypid())
        fh:close()
        busy(10)
      end, path)
      local others = {}
      for i = 1, 4 do others[i] = pool:submit(function(x) busy(0.05) return x end, i) end
      local victim = assert(H.eventually(function() return tonumber(H.readfile(path)) end, 5))
      os.execute("kill -9 " .. victim)
      local ok, err = pcall(f.get, f)
      assert.is_false(ok)
      assert.are.equal("par.pool: task: worker died (signal 9, SIGKILL)", err)
      for i = 1, 4 do assert.are.equal(i, others[i]:get()) end
      assert.are.equal(2, #pool:pids())
      for _, p in ipairs(pool:pids()) do assert.are_not.equal(victim, p) end
      assert.are.equal(3, pool:stats().forks)
    end)

    it("a task past its timeout fails, and its worker is killed and replaced", function()
      local m = marker()
      local pool <close> = par.pool(1, { timeout = 0.5 })
      local f = pool:submit(function(mk) os.execute("sleep " .. mk) return "slept" end, m)
      local ok, err = pcall(f.get, f)
      assert.is_false(ok)
      assert.are.equal("par.pool: task: timeout after 0.5s", err)
      assert.are.same({}, H.survivors(m))
      assert.are.equal(9, pool:submit(function() return 9 end):get())
      local res, errs = pool:map(function(x) if x == 2 then busy(2) end return x end, range(4),
        { errors = "collect", chunksize = 4 })
      assert.are.equal("par.pool: item 2: timeout after 0.5s", errs[2])
      assert.are.same({ 1, nil, 3, 4 }, { res[1], res[2], res[3], res[4] })
    end)

    it("max_tasks: a worker leaves after so many tasks and a fresh one takes its place", function()
      local pool <close> = par.pool(1, { max_tasks = 2 })
      local pids = {}
      for i = 1, 6 do pids[i] = pool:submit(mypid):get() end
      assert.are.equal(pids[1], pids[2])
      assert.are.equal(pids[3], pids[4])
      assert.are.equal(pids[5], pids[6])
      assert.are_not.equal(pids[1], pids[3])
      assert.are_not.equal(pids[3], pids[5])
      assert.are.equal(3, pool:stats().forks)
    end)

    it("worker_memory: a worker past it is replaced, and no result is lost", function()
      local pool <close> = par.pool(2, { worker_memory = 4 << 20 })
      local res = pool:map(function(x) return string.rep("x", 100000) .. x end, range(400))
      for i = 1, 400 do assert.are.equal(100000 + #tostring(i), #res[i]) end
      assert.is_true(pool:stats().forks > 4)
    end)

    it("works inside a par.map worker", function()
      local res = par.map(function(x)
        local p <close> = par.pool(1)
        return p:submit(function(y) return y * 2 end, x):get()
      end, { 1, 2, 3 })
      assert.are.same({ 2, 4, 6, n = 3 }, res)
      assert.is_true(no_children())
    end)
  end)

  describe("leaves nothing behind", function()
    it("after close, which waits for what was submitted", function()
      local m = marker()
      local path = H.tmpfile(finally)
      local pool = par.pool(2)
      pool:submit(function(p, mk)
        os.execute("sleep 0.3; : " .. mk)
        local fh = assert(io.open(p, "w"))
        fh:write("done")
        fh:close()
      end, path, m)
      pool:close()
      assert.are.equal("done", H.readfile(path))
      assert.has_error(function() pool:submit(print) end, "par.pool: submit on a closed pool")
      assert.has_error(function() pool:map(print, {}) end, "par.pool: map on a closed pool")
      assert_none_left(m)
    end)

    it("after terminate, failing unfinished futures", function()
      local m = marker()
      local pool = par.pool(1)
      local f = pool:submit(function(mk) os.execute("sleep " .. mk) end, m)
      local g = pool:submit(function() return 1 end)
      busy(0.1)
      pool:terminate()
      assert.has_error(function() f:get() end, "par.pool: pool terminated")
      assert.has_error(function() g:get() end, "par.pool: pool terminated")
      assert_none_left(m)
    end)

    it("after an error leaves a <close> scope, without waiting", function()
      local m = marker()
      local t0 = require("par.core").monotime()
      local ok = pcall(function()
        local pool <close> = par.pool(1)
        pool:submit(function(mk) os.execute("sleep " .. mk) end, m)
        busy(0.1)
        error("leaving")
      end)
      assert.is_false(ok)
      assert.is_true(require("par.core").monotime() - t0 < 5)
      assert_none_left(m)
    end)

    it("after the collector takes it", function()
      local m = marker()
      do
        local pool = par.pool(2)
        pool:submit(function(mk) os.execute("sleep " .. mk) end, m)
      end
      collectgarbage()
      collectgarbage()
      assert_none_left(m)
    end)

    it("after os.exit and after Ctrl-C in a blocking get", function()
      local m = marker()
      local c = H.spawn(([[
        local par = require "par"
        local pool = par.pool(2)
        local f = pool:submit(function() os.execute("sleep %s") end)
        pool:submit(function() return 1 end):get()
        os.exit(0)
      ]]):format(m))
      local _, how, status = c.wait()
      assert.are.equal("exit", how)
      assert.are.equal(0, status)
      assert.are.same({}, H.survivors(m))
      local m2 = marker()
      local c2 = H.spawn(([[
        local par = require "par"
        local pool = par.pool(2)
        local f = pool:submit(function() os.execute("sleep %s") end)
        io.write("ready\n") io.flush()
        local ok, err = pcall(f.get, f)
        print(ok, err, pcall(pool.submit, pool, print))
      ]]):format(m2))
      assert.are.equal("ready", c2.line())
      os.execute("sleep 0.3")
      c2.kill("INT")
      local out = c2.wait()
      assert.matches("false\tinterrupted\tfalse\t.-submit on a terminated pool", out)
      assert.are.same({}, H.survivors(m2))
    end)
  end)
end)
