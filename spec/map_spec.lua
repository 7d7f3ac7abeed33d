local par = require "par"
local H = require "spec.helpers"

local function range(n)
  local t = {}
  for i = 1, n do t[i] = i end
  return t
end

-- The pid of the process running this (a worker, inside fn), from /proc.
local mypid = H.pid

local function wait_for(cond)
  for _ = 1, 200 do
    if cond() then return true end
    os.execute("sleep 0.05")
  end
  return false
end

local function no_children()
  return wait_for(function() return #H.children() == 0 end)
end

local function first_line(s)
  return (s:match("^[^\n]*"))
end

local function bits(x) return string.pack("<d", x) end

describe("par.map", function()
  describe("results", function()
    it("maps fn(item, i) over items in input order, with results.n", function()
      local r = par.map(function(x, i) return { x, i } end, { "a", "b", "c", "d", "e" }, 2)
      assert.are.same({ { "a", 1 }, { "b", 2 }, { "c", 3 }, { "d", 4 }, { "e", 5 }, n = 5 }, r)
    end)

    it("leaves a hole for a nil result, and n tells", function()
      local r = par.map(function(x) if x % 2 == 0 then return x end end, range(5), 2)
      assert.are.same({ [2] = 2, [4] = 4, n = 5 }, r)
    end)

    it("takes items with keys that are not positive integers, as Lua's # does", function()
      local r = par.map(function(x) return x end, table.pack("a", "b", "c"), 2)
      assert.are.same({ "a", "b", "c", n = 3 }, r)
    end)

    it("takes the first return value only", function()
      local r = par.map(function(x) return x, "more" end, { 1, 2 }, 2)
      assert.are.same({ 1, 2, n = 2 }, r)
    end)

    it("uses par.cpus() workers by default and never more than items", function()
      local r = par.map(function() return mypid() end, range(40), { chunksize = 1 })
      local pids = {}
      for _, pid in ipairs(r) do pids[pid] = true end
      local n = 0
      for _ in pairs(pids) do n = n + 1 end
      assert.is_true(n >= 1 and n <= par.cpus())
      local one = par.map(function() return mypid() end, { 1 }, 8)
      assert.are.equal(1, one.n)
      assert.are_not.equal(mypid(), one[1])
    end)

    it("returns {n = 0} for empty items, and an empty errs with collect", function()
      assert.are.same({ n = 0 }, par.map(function() error("never") end, {}))
      local r, errs = par.map(function() error("never") end, {}, { errors = "collect" })
      assert.are.same({ n = 0 }, r)
      assert.are.same({}, errs)
    end)

    it("runs init once in each worker, before its first item", function()
      local r = par.map(function() return _G.par_map_init end, range(20),
        { procs = 2, init = function() _G.par_map_init = (_G.par_map_init or 0) + 1 end })
      for i = 1, 20 do assert.are.equal(1, r[i]) end
      assert.is_nil(_G.par_map_init)
    end)

    it("gives results that the workers of the next map can read", function()
      local first = par.map(function(x) return x * 3 end, range(100000), 2)
      local second = par.map(function(i) return first[i * 1000] end, range(100), 2)
      for i = 1, 100 do assert.are.equal(i * 3000, second[i]) end
    end)

    it("survives a collection that fn runs in a worker", function()
      local r = par.map(function(x)
        collectgarbage()
        return x + 1
      end, range(20000), { procs = 2, chunksize = 5000 })
      assert.are.equal(20000, r.n)
      assert.are.equal(2, r[1])
      assert.are.equal(20001, r[20000])
    end)

    it("leaves the caller's collector running, or stopped, as it was", function()
      par.map(function(x) return x end, range(10), 2)
      assert.is_true(collectgarbage("isrunning"))
      collectgarbage("stop")
      finally(function() collectgarbage("restart") end)
      par.map(function(x) return x end, range(10), 2)
      assert.is_false(collectgarbage("isrunning"))
    end)

    it("calls on_result(value, i) in the caller for every result", function()
      local seen, count, caller = {}, 0, mypid()
      local r = par.map(function(x) return x * 10 end, range(50), {
        procs = 2, chunksize = 3,
        on_result = function(v, i)
          assert.are.equal(caller, mypid())
          seen[i] = v
          count = count + 1
        end })
      assert.are.equal(50, count)
      for i = 1, 50 do assert.are.equal(i * 10, seen[i], r[i]) end
    end)
  end)

  describe("values that travel back", function()
    it("keeps every scalar kind, subtype and bit pattern", function()
      local nan = string.unpack("<d", "\1\0\0\0\0\0\248\127")   -- a NaN with a payload
      local values = { true, false, 0, -1, 127, 128, math.maxinteger, math.mininteger,
        0.0, -0.0, 1.5, 1e308, 5e-324, math.huge, -math.huge, 0 / 0, nan, 3.0,
        "", "x", string.rep("z", 63), string.rep("y", 64), "a\0b\255\n" }
      local all = {}
      for c = 0, 255 do all[#all + 1] = string.char(c) end
      values[#values + 1] = table.concat(all)
      local r = par.map(function(i) return values[i] end, range(#values), 2)
      assert.are.equal(#values, r.n)
      for i, v in ipairs(values) do
        assert.are.equal(math.type(v), math.type(r[i]))
        if type(v) == "number" and math.type(v) == "float" then
          assert.are.equal(bits(v), bits(r[i]))
        else
          assert.are.equal(v, r[i])
        end
      end
    end)

    it("sends a 100 MB binary string", function()
      local r = par.map(function(n) return string.rep("\0\1\2\255", n) end, { 25 * 1024 * 1024 }, 1)
      assert.are.equal(100 * 1024 * 1024, #r[1])
      assert.are.equal(string.rep("\0\1\2\255", 1000), r[1]:sub(1, 4000))
      assert.are.equal("\0\1\2\255", r[1]:sub(-4))
    end)

    it("sends nested tables with keys of every kind", function()
      local v = { 1, 2, { 3, { 4, { 5 } } }, x = { y = { z = "deep" } },
        [1.5] = "float key", [true] = "true key", [false] = 0, [-7] = "negative",
        [math.maxinteger] = "max", ["with space"] = { [""] = "empty key" } }
      local r = par.map(function() return v end, { 1, 2 }, 2)
      assert.are.same(v, r[1])
      assert.are.same(v, r[2])
      assert.are_not.equal(r[1], r[2])
    end)

    it("keeps a table referenced twice as one table, and keeps cycles", function()
      local r = par.map(function()
        local shared = { "s" }
        local cyc = { name = "c" }
        cyc.self = cyc
        cyc.list = { cyc, shared }
        return { a = shared, b = shared, c = cyc, [shared] = "table key" }
      end, { 1 }, 1)
      local v = r[1]
      assert.are.equal(v.a, v.b)
      assert.are.equal("s", v.a[1])
      assert.are.equal("table key", v[v.a])
      assert.are.equal(v.c, v.c.self)
      assert.are.equal(v.c, v.c.list[1])
      assert.are.equal(v.a, v.c.list[2])
    end)

    it("does not send metatables", function()
      local r = par.map(function()
        return setmetatable({ 1 }, { __index = function() return "meta" end })
      end, { 1 }, 1)
      assert.is_nil(getmetatable(r[1]))
      assert.is_nil(r[1].missing)
    end)

    it("raises for a value that cannot be sent, naming the item and path", function()
      local bad = {
        function() return print end,
        function() return { handler = print } end,
        function() return { list = { 1, 2, coroutine.create(print) } } end,
        function() return { out = { io.stdout } } end,
      }
      local msgs = {
        "par.map: item 1: cannot send a function (at result)",
        "par.map: item 2: cannot send a function (at result.handler)",
        "par.map: item 3: cannot send a thread (at result.list[3])",
        "par.map: item 4: cannot send a userdata (at result.out[1])",
      }
      for i = 1, #bad do
        local items = {}
        for k = 1, i do items[k] = k end
        assert.has_error(function()
          par.map(function(k) if k == i then return bad[i]() end end, items, 2)
        end, msgs[i])
      end
    end)

    it("raises for a table nested deeper than the limit", function()
      local ok, err = pcall(par.map, function()
        local t = {}
        for _ = 1, 300 do t = { t } end
        return t
      end, { 1 }, 1)
      assert.is_false(ok)
      assert.matches("^par%.map: item 1: cannot send a table nested deeper than 200 levels %(at result", err)
    end)

    it("collects unsendable results with errors = 'collect'", function()
      local r, errs = par.map(function(x) if x == 2 then return { f = print } end return x end,
        range(3), { procs = 2, errors = "collect" })
      assert.are.same({ 1, nil, 3, n = 3 }, r)
      assert.are.same({ [2] = "par.map: item 2: cannot send a function (at result.f)" }, errs)
    end)
  end)

  describe("errors", function()
    it("raises the item index, the message and the worker's traceback", function()
      local function fn(x)
        if x == 7 then error("boom") end
        return x
      end
      local ok, err = pcall(par.map, fn, range(10), 2)
      assert.is_false(ok)
      local line = debug.getinfo(fn, "S").linedefined
      local lines = {}
      for l in err:gmatch("[^\n]+") do lines[#lines + 1] = l end
      assert.are.same({
        "par.map: item 7: spec/map_spec.lua:" .. (line + 1) .. ": boom",
        "stack traceback:",
        "\t[C]: in function 'error'",
        "\tspec/map_spec.lua:" .. (line + 1) .. ": in function <spec/map_spec.lua:" .. line .. ">",
      }, lines)
    end)

    it("stops every other worker before raising", function()
      local pidfile = os.tmpname()
      finally(function() os.remove(pidfile) os.remove(pidfile .. ".go") end)
      local ok, err = pcall(par.map, function(x)
        if x == 1 then
          while not io.open(pidfile .. ".go") do os.execute("sleep 0.02") end
          error("first", 0)
        end
        local f = io.open(pidfile, "w")
        f:write(mypid())
        f:close()
        io.open(pidfile .. ".go", "w"):close()
        os.execute("sleep 30")
      end, { 1, 2 }, { procs = 2, chunksize = 1 })
      assert.is_false(ok)
      assert.are.equal("par.map: item 1: first", first_line(err))
      local pid = tonumber(H.readfile(pidfile))
      assert.is_false(H.alive(pid))
      assert.are.same({}, H.children())
    end)

    it("raises an error table as the table itself", function()
      local ok, err = pcall(par.map, function(x)
        if x == 3 then error({ code = 42, where = { "x" } }) end
      end, range(4), 2)
      assert.is_false(ok)
      assert.are.same({ code = 42, where = { "x" } }, err)
    end)

    it("says what a nil, boolean or number error value was", function()
      for v, want in pairs({ [false] = "(error object is a boolean value)", [42] = "42",
        [1.5] = "1.5" }) do
        local ok, err = pcall(par.map, function() error(v) end, { 1 }, 1)
        assert.is_false(ok)
        assert.are.equal("par.map: item 1: " .. want, first_line(err))
      end
      local ok, err = pcall(par.map, function() error() end, { 1 }, 1)
      assert.is_false(ok)
      assert.are.equal("par.map: item 1: (error object is a nil value)", first_line(err))
    end)

    it("sends an error table holding a function as a message", function()
      local ok, err = pcall(par.map, function() error({ f = print }) end, { 1 }, 1)
      assert.is_false(ok)
      assert.are.equal("par.map: item 1: (error object is a table value that cannot be sent: "
        .. "cannot send a function (at error.f))", first_line(err))
    end)

    it("collects errors with errors = 'collect' and computes every other item", function()
      local r, errs = par.map(function(x)
        if x % 4 == 0 then error("bad " .. x, 0) end
        if x == 5 then error({ code = 5 }) end
        return x
      end, range(12), { procs = 2, errors = "collect" })
      assert.are.same({ 1, 2, 3, nil, nil, 6, 7, nil, 9, 10, 11, nil, n = 12 }, r)
      assert.are.same({ 4, 5, 8, 12 }, (function()
        local ks = {}
        for k in pairs(errs) do ks[#ks + 1] = k end
        table.sort(ks)
        return ks
      end)())
      assert.are.equal("par.map: item 4: bad 4", first_line(errs[4]))
      assert.matches("\nstack traceback:\n", errs[4])
      assert.are.same({ code = 5 }, errs[5])
      assert.are.equal("par.map: item 12: bad 12", first_line(errs[12]))
    end)

    it("returns an empty errs table when nothing failed", function()
      local r, errs = par.map(function(x) return x end, range(3), { errors = "collect" })
      assert.are.same({ 1, 2, 3, n = 3 }, r)
      assert.are.same({}, errs)
    end)

    it("raises an error of init in both modes", function()
      for _, mode in ipairs({ "raise", "collect" }) do
        local ok, err = pcall(par.map, function(x) return x end, range(4),
          { procs = 2, errors = mode, init = function() error("no setup", 0) end })
        assert.is_false(ok)
        assert.are.equal("par.map: init: no setup", first_line(err))
        assert.is_true(no_children())
      end
      local ok, err = pcall(par.map, function(x) return x end, range(4),
        { procs = 2, errors = "collect", init = function() os.exit(4) end })
      assert.is_false(ok)
      assert.are.equal("par.map: init: worker died (exit 4)", err)
    end)

    it("stops the workers and re-raises when on_result raises", function()
      assert.has_error(function()
        par.map(function(x) return x end, range(100), {
          procs = 2, on_result = function(_, i) if i == 1 then error("stop", 0) end end })
      end, "stop")
      assert.are.same({}, H.children())
    end)
  end)

  describe("workers that die", function()
    local function kill_self_at(n)
      return function(x)
        if x == n then os.execute("kill -9 " .. mypid()) end
        return x
      end
    end

    it("raise the item a worker held when SIGKILL took it", function()
      assert.has_error(function() par.map(kill_self_at(12), range(30), 2) end,
        "par.map: item 12: worker died (signal 9, SIGKILL)")
      assert.are.same({}, H.children())
    end)

    it("are replaced with errors = 'collect', and every other item is computed", function()
      local r, errs = par.map(kill_self_at(12), range(30), { procs = 2, errors = "collect" })
      local want = range(30)
      want[12] = nil
      want.n = 30
      assert.are.same(want, r)
      assert.are.same({ [12] = "par.map: item 12: worker died (signal 9, SIGKILL)" }, errs)
      assert.are.same({}, H.children())
    end)

    it("report os.exit in fn as an exit status", function()
      assert.has_error(function()
        par.map(function(x) if x == 5 then os.exit(3) end return x end, range(9), 2)
      end, "par.map: item 5: worker died (exit 3)")
      local r, errs = par.map(function(x) if x % 3 == 0 then os.exit(true) end return x end,
        range(9), { procs = 2, errors = "collect" })
      assert.are.same({ 1, 2, nil, 4, 5, nil, 7, 8, nil, n = 9 }, r)
      assert.are.same({ [3] = "par.map: item 3: worker died (exit 0)",
        [6] = "par.map: item 6: worker died (exit 0)",
        [9] = "par.map: item 9: worker died (exit 0)" }, errs)
    end)

    it("blame the right item even when results before it were not sent yet", function()
      -- one range of 100 items; the results of 1..49 sit in the worker's buffer
      local r, errs = par.map(kill_self_at(50), range(100),
        { procs = 1, chunksize = 100, errors = "collect" })
      local want = range(100)
      want[50] = nil
      want.n = 100
      assert.are.same(want, r)
      assert.are.same({ [50] = "par.map: item 50: worker died (signal 9, SIGKILL)" }, errs)
    end)

    it("leave no zombie and no worker behind", function()
      local r = par.map(function() return mypid() end, range(8), { procs = 2, chunksize = 1 })
      assert.are.same({}, H.children())
      for _, pid in ipairs(r) do assert.is_false(H.alive(pid)) end
      pcall(par.map, kill_self_at(3), range(8), 2)
      assert.are.same({}, H.children())
    end)

    it("keep the caller's own files open for fn", function()
      local path = os.tmpname()
      finally(function() os.remove(path) end)
      local f = assert(io.open(path, "w"))      -- io.open: no close-on-exec
      par.map(function(x) assert(f:write(x, "\n")) assert(f:flush()) end, range(4), 2)
      f:close()
      local got = {}
      for line in io.lines(path) do got[#got + 1] = tonumber(line) end
      table.sort(got)
      assert.are.same({ 1, 2, 3, 4 }, got)
    end)

    it("close every descriptor they used", function()
      par.map(function(x) return x end, range(10), 2)
      collectgarbage()
      local before = H.fdcount()
      par.map(function(x) return x end, range(100), 2)
      pcall(par.map, function() error("x") end, range(10), 2)
      pcall(par.map, kill_self_at(2), range(10), { procs = 2, errors = "collect" })
      collectgarbage()
      collectgarbage()
      assert.are.equal(before, H.fdcount())
    end)
  end)

  describe("timeout", function()
    it("kills a worker whose item runs too long, with its children", function()
      local pidfile = os.tmpname()
      finally(function() os.remove(pidfile) end)
      local r, errs = par.map(function(x)
        if x == 3 then os.execute("sleep 30 & echo $! > " .. pidfile .. "; wait") end
        return x
      end, range(6), { procs = 2, timeout = 0.5, errors = "collect" })
      assert.are.same({ 1, 2, nil, 4, 5, 6, n = 6 }, r)
      assert.are.same({ [3] = "par.map: item 3: timeout after 0.5s" }, errs)
      local sleeper = tonumber(H.readfile(pidfile))
      assert.is_true(wait_for(function() return not H.alive(sleeper) end))
    end)

    it("raises with errors = 'raise'", function()
      assert.has_error(function()
        par.map(function(x) if x == 2 then os.execute("sleep 30") end return x end,
          range(3), { procs = 2, timeout = 1 })
      end, "par.map: item 2: timeout after 1s")
      assert.are.same({}, H.children())
    end)
  end)

  describe("worker_memory", function()
    it("replaces a worker past its budget, and every result is right", function()
      local r = par.map(function(x)
        local garbage = {}
        for k = 1, 200 do garbage[k] = { k, tostring(k) } end
        assert(#garbage == 200)
        return { x, mypid() }
      end, range(3000), { procs = 2, worker_memory = 1024 * 1024 })
      local pids, n = {}, 0
      for i = 1, 3000 do
        assert.are.equal(i, r[i][1])
        if not pids[r[i][2]] then n = n + 1 end
        pids[r[i][2]] = true
      end
      assert.is_true(n > 4)
      assert.are.same({}, H.children())
    end)

    it("counts memory that Lua frees and the worker reuses only once", function()
      -- Each item grows a table to 8192 entries: the arrays it outgrows
      -- (128 KB in all) are freed on the way (a small table made at each
      -- step keeps the array from growing in place) and reused by the next
      -- item; only the last one (128 KB) stays, as garbage.  With reuse,
      -- 100 items fit in one 20 MB budget; without, they need two workers.
      local r = par.map(function()
        local t, steps = {}, {}
        for k = 1, 8192 do
          if k & (k - 1) == 0 then steps[#steps + 1] = {} end
          t[k] = k
        end
        assert(#t == 8192 and #steps == 14)
        return mypid()
      end, range(100), { procs = 1, worker_memory = 20 * 1024 * 1024 })
      for i = 2, 100 do assert.are.equal(r[1], r[i]) end
    end)

    it("gives the serial loop's results whatever a worker frees and reuses", function()
      -- Strings built piece by piece, tables grown, shrunk and dropped,
      -- chunks compiled (the parser shrinks its arrays), of sizes that vary
      -- with the item: blocks of every size are freed, shrunk, split and
      -- reused.  A block handed out twice would corrupt some result.
      local function churn(x)
        local seed, parts, sum = x, {}, 0
        for k = 1, 40 do
          seed = (seed * 1103515245 + 12345) % 2147483648
          local len = seed % 3000
          parts[k] = string.rep(string.char(65 + k % 26), len)
          local t = {}
          for j = 1, len % 700 do t[j] = j * k end
          sum = sum + #t + (t[#t] or 0)
          for j = #t // 2 + 1, #t do t[j] = nil end
          t.key = k                      -- a rehash: the array shrinks
          sum = sum + #t + assert(load("return " .. len .. " + " .. k))()
        end
        local s = table.concat(parts)
        return { #s, s:sub(-50), sum, s:byte(#s // 2) }
      end
      local items = range(2000)
      local r = par.map(churn, items, { procs = 2, worker_memory = 8 * 1024 * 1024 })
      for i = 1, #items do assert.are.same(churn(i), r[i]) end
    end)

    it("keeps the caller's heap shared: workers dirty little of it", function()
      local big = {}
      for i = 1, 1000000 do big[i] = { i } end          -- about 80 MB of tables
      local dirty = par.map(function()
        local garbage = {}
        for k = 1, 100000 do garbage[k] = { k } end        -- about 8 MB of its own
        assert(#garbage == 100000)
        local s = H.readfile("/proc/self/smaps_rollup")
        return tonumber(s:match("Private_Dirty:%s*(%d+) kB"))
      end, { 1, 2 }, 2)
      assert.are.equal(1000000, #big)
      for i = 1, 2 do assert.is_true(dirty[i] < 30 * 1024, dirty[i] .. " kB dirty") end
    end)
  end)

  describe("where it is called from", function()
    it("works inside a worker (nested map)", function()
      local r = par.map(function(x)
        return par.map(function(y) return x * y end, range(4), 2)
      end, range(3), 2)
      assert.are.same({ 1, 2, 3, 4, n = 4 }, r[1])
      assert.are.same({ 3, 6, 9, 12, n = 4 }, r[3])
    end)

    it("works from a coroutine", function()
      local co = coroutine.wrap(function()
        local r = par.map(function(x) return x + 1 end, range(10), 2)
        coroutine.yield(r)
        return par.map(function(x) return x * 2 end, range(10), 2)
      end)
      assert.are.equal(11, co()[10])
      assert.are.equal(20, co()[10])
    end)

    it("cleans up when raising from a coroutine", function()
      local co = coroutine.create(function()
        return par.map(function(x) if x == 2 then error("co", 0) end return x end, range(4), 2)
      end)
      local ok, err = coroutine.resume(co)
      assert.is_false(ok)
      assert.are.equal("par.map: item 2: co", first_line(err))
      assert.are.same({}, H.children())
    end)

    it("does not hold par.run's pipes open while it maps inside on_done", function()
      local mark = os.tmpname()
      os.remove(mark)
      finally(function() os.remove(mark) end)
      local seen
      par.run({ "true", "sleep 0.3; cat >/dev/null; touch " .. mark }, 2, {
        stdin = string.rep("x", 1 << 20),
        on_done = function(_, i)
          if i ~= 1 then return end
          -- the worker waits for command 2 to see EOF on its stdin and finish
          seen = par.map(function()
            for _ = 1, 200 do
              local f = io.open(mark)
              if f then f:close() return true end
              os.execute("sleep 0.05")
            end
            return false
          end, { 1 }, 1)[1]
        end,
      })
      assert.is_true(seen)
    end)

    it("works inside on_done of par.run", function()
      local got
      par.run({ "true" }, { on_done = function()
        got = par.map(function(x) return x * 3 end, range(5), 2)
      end })
      assert.are.same({ 3, 6, 9, 12, 15, n = 5 }, got)
    end)
  end)

  describe("output", function()
    it("appears once, whether printed in fn or buffered before the map", function()
      local out, ok = H.lua([[
        local par = require "par"
        io.write("before\n")                   -- buffered: stdout is a pipe
        par.map(function(x)
          print("item " .. x)                  -- print flushes stdout itself
          io.write("written ", x, "\n")          -- io.write does not
        end, { 1, 2, 3, 4, 5, 6 }, 3)
        io.write("after\n")
      ]])
      assert.is_true(ok)
      local lines = {}
      for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
      table.sort(lines)
      assert.are.same({ "after", "before", "item 1", "item 2", "item 3", "item 4", "item 5",
        "item 6", "written 1", "written 2", "written 3", "written 4", "written 5", "written 6" },
        lines)
    end)
  end)

  describe("interrupts", function()
    it("SIGINT stops and reaps every worker and raises 'interrupted'", function()
      local dir = os.tmpname()
      finally(function() os.execute("rm -f " .. dir .. "*") end)
      H.writefile(dir .. ".lua", ([[
        local f = io.open("%s.pid", "w") f:write(io.open("/proc/self/stat"):read("n")) f:close()
        require("par").map(function(x)
          os.execute("sleep 30 & echo $! >> %s.sleeps; wait")
        end, { 1, 2, 3, 4 }, 2)
      ]]):format(dir, dir))
      local child = io.popen(H.env .. "exec lua5.4 " .. dir .. ".lua > " .. dir .. ".out 2>&1")
      local pid
      assert.is_true(wait_for(function()
        local s = H.readfile(dir .. ".sleeps")
        pid = tonumber(H.readfile(dir .. ".pid") or "")
        return s ~= nil and select(2, s:gsub("\n", "")) == 2
      end))
      os.execute("kill -INT " .. pid)
      local ok, how, code = child:close()
      assert.are.same({ nil, "exit", 1 }, { ok, how, code })
      assert.matches("^lua5.4: interrupted\n", H.readfile(dir .. ".out"))
      for sleeper in H.readfile(dir .. ".sleeps"):gmatch("%d+") do
        assert.is_true(wait_for(function() return not H.alive(tonumber(sleeper)) end))
      end
    end)
  end)

  describe("a caller killed with SIGKILL", function()
    it("takes its workers with it", function()
      local dir = os.tmpname()
      finally(function() os.execute("rm -f " .. dir .. "*") end)
      H.writefile(dir .. ".lua", ([[
        local f = io.open("%s.pid", "w") f:write(io.open("/proc/self/stat"):read("n")) f:close()
        require("par").map(function()
          local w = io.open("%s.workers", "a")
          w:write(io.open("/proc/self/stat"):read("n"), "\n")
          w:close()
          while true do end
        end, { 1, 2 }, 2)
      ]]):format(dir, dir))
      local child = io.popen(H.env .. "exec lua5.4 " .. dir .. ".lua > /dev/null 2>&1")
      local pid, workers
      assert.is_true(wait_for(function()
        local s = H.readfile(dir .. ".workers")
        pid = tonumber(H.readfile(dir .. ".pid") or "")
        workers = s and { s:match("(%d+)\n(%d+)\n") }
        return workers ~= nil and #workers == 2
      end))
      os.execute("kill -9 " .. pid)
      child:close()
      for _, w in ipairs(workers) do
        assert.is_true(wait_for(function() return not H.alive(tonumber(w)) end))
      end
    end)
  end)

  describe("fn_spec given as a string", function()
    local dir = os.tmpname()
    local oldpath = package.path
    setup(function()
      os.remove(dir)
      os.execute("mkdir -p " .. dir .. "/pmod")
      H.writefile(dir .. "/pmod.lua", "return { sub = { triple = function(x) return 3 * x end }, n = 1 }")
      H.writefile(dir .. "/pmod/deep.lua", "return { neg = function(x) return -x end }")
      H.writefile(dir .. "/pbroken.lua", "error('pbroken fails to load', 0)")
      package.path = dir .. "/?.lua;" .. package.path
    end)
    teardown(function()
      package.path = oldpath
      os.execute("rm -rf " .. dir)
    end)

    it("resolves a standard function", function()
      assert.are.same({ "A", "BC", n = 2 }, par.map("string.upper", { "a", "bc" }, 2))
    end)

    it("takes the longest prefix that require finds as the module", function()
      assert.are.same({ 3, 6, n = 2 }, par.map("pmod.sub.triple", { 1, 2 }, 2))
      assert.are.same({ -1, -2, n = 2 }, par.map("pmod.deep.neg", { 1, 2 }, 2))
    end)

    it("says what it tried when nothing resolves", function()
      assert.has_error(function() par.map("nomod.sub.fn", { 1 }) end,
        "bad argument #1 to 'map' (cannot resolve 'nomod.sub.fn': no module 'nomod.sub.fn' "
        .. "or 'nomod.sub' or 'nomod')")
      assert.has_error(function() par.map("pmod.sub.nothere", { 1 }) end,
        "bad argument #1 to 'map' (cannot resolve 'pmod.sub.nothere': it is a nil, not a function)")
      assert.has_error(function() par.map("pmod.n.f", { 1 }) end,
        "bad argument #1 to 'map' (cannot resolve 'pmod.n.f': 'pmod.n' is a number, not a table)")
      assert.has_error(function() par.map("pbroken.f", { 1 }) end,
        "bad argument #1 to 'map' (cannot resolve 'pbroken.f': loading module 'pbroken' failed: "
        .. "pbroken fails to load)")
      assert.has_error(function() par.map("a..b", { 1 }) end,
        "bad argument #1 to 'map' (cannot resolve 'a..b': empty name)")
    end)
  end)

  describe("bad input", function()
    local id = function(x) return x end
    local cases = {
      { function() par.map(nil, { 1 }) end,
        "bad argument #1 to 'map' (function or string expected, got nil)" },
      { function() par.map(42, { 1 }) end,
        "bad argument #1 to 'map' (function or string expected, got number)" },
      { function() par.map(id, nil) end, "bad argument #2 to 'map' (table or function expected, got nil)" },
      { function() par.map(id, "abc") end, "bad argument #2 to 'map' (table or function expected, got string)" },
      { function() par.map(id, { 1, nil, 3 }) end,
        "bad argument #2 to 'map' (sequence expected, got a table with holes or keys beyond #items)" },
      { function() par.map(id, { 1, 2, [4] = 4 }) end,
        "bad argument #2 to 'map' (sequence expected, got a table with holes or keys beyond #items)" },
      { function() par.map(id, { 1 }, 0) end, "bad argument #3 to 'map' (number of jobs: must be >= 1, got 0)" },
      { function() par.map(id, { 1 }, 1.5) end,
        "bad argument #3 to 'map' (number of jobs: number has no integer representation)" },
      { function() par.map(id, { 1 }, "2") end,
        "bad argument #3 to 'map' (number or table expected, got string)" },
      { function() par.map(id, { 1 }, { jobs = 2, procs = 3 }) end,
        "bad argument #3 to 'map' (option 'procs': contradicts option 'jobs')" },
      { function() par.map(id, { 1 }, { jobs = 0 }) end,
        "bad argument #3 to 'map' (option 'jobs': must be >= 1, got 0)" },
      { function() par.map(id, { 1 }, { procs = 0 }) end,
        "bad argument #3 to 'map' (option 'procs': must be >= 1, got 0)" },
      { function() par.map(id, { 1 }, { chunksize = "big" }) end,
        "bad argument #3 to 'map' (option 'chunksize': integer expected, got string)" },
      { function() par.map(id, { 1 }, { errors = "ignore" }) end,
        "bad argument #3 to 'map' (option 'errors': expected one of raise, collect, got 'ignore')" },
      { function() par.map(id, { 1 }, { init = 3 }) end,
        "bad argument #3 to 'map' (option 'init': function expected, got number)" },
      { function() par.map(id, { 1 }, { on_result = true }) end,
        "bad argument #3 to 'map' (option 'on_result': function expected, got boolean)" },
      { function() par.map(id, { 1 }, { worker_memory = 0 }) end,
        "bad argument #3 to 'map' (option 'worker_memory': must be >= 1, got 0)" },
      { function() par.map(id, { 1 }, { timeout = -1 }) end,
        "bad argument #3 to 'map' (option 'timeout': must be a finite number > 0, got -1)" },
    }
    for k, case in ipairs(cases) do
      it("rejects case " .. k .. ": " .. case[2], function()
        assert.has_error(case[1], case[2])
      end)
    end

    it("blames the caller's line", function()
      local ok, err = pcall(function() par.map(id, nil) end)
      assert.is_false(ok)
      assert.are.equal("spec/map_spec.lua:" .. (debug.getinfo(1, "l").currentline - 2)
        .. ": bad argument #2 to 'map' (table or function expected, got nil)", err)
    end)

    it("is checked by par.core too", function()
      local core = require "par.core"
      assert.has_error(function() core.map(id, { 1 }, { jobs = 0 }) end,
        "bad argument #3 to 'map' (option 'jobs': must be >= 1, got 0)")
      assert.has_error(function() core.map(id, { 1 }, { errors = "x" }) end)
      assert.has_error(function() core.map(id, { 1, 2, [4] = 4 }, {}) end,
        "bad argument #2 to 'map' (sequence expected)")
      assert.has_error(function() core.map("f", { 1 }, {}) end)
    end)
  end)

  describe("the seed example", function()
    it("prints exactly the line Python prints", function()
      local p = assert(io.popen(H.env .. "lua5.4 examples/multiprocess.lua"))
      local out = p:read("a")
      assert.is_true(p:close())
      assert.are.equal("[('type1', 1, 2), ('type1', 2, 4), ('type1', 3, 6), ('type1', 4, 8), "
        .. "('type1', 5, 10), ('type1', 6, 12), ('type1', 7, 14), ('type1', 8, 16), "
        .. "('type1', 9, 18), ('type2', 1, 3), ('type2', 2, 6), ('type2', 3, 9), "
        .. "('type2', 4, 12), ('type2', 5, 15), ('type2', 6, 18), ('type2', 7, 21), "
        .. "('type2', 8, 24), ('type2', 9, 27)]\n", out)
    end)
  end)
end)
