-- par.imap (results as they finish) and lazy items (an iterator as the
-- items of par.map and par.imap): real workers, checked through /proc.
local par = require "par"
local H = require "spec.helpers"

local function range(n)
  local t = {}
  for i = 1, n do t[i] = i end
  return t
end

local function counter(n)
  local k = 0
  return function()
    if k < n then
      k = k + 1
      return k
    end
  end
end

local function wrap(n)
  return coroutine.wrap(function() for i = 1, n do coroutine.yield(i) end end)
end

local function lines_file(n)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  for i = 1, n do f:write(i, "\n") end
  f:close()
  return path
end

local function no_children()
  for _ = 1, 100 do
    if #H.children() == 0 then return true end
    os.execute("sleep 0.05")
  end
  return false
end

-- The pairs a loop saw, as { [i] = v } and the order of the indices.
local function drain(...)
  local got, order = {}, {}
  for i, v in ... do
    assert.is_nil(got[i], "index " .. i .. " yielded twice")
    got[i] = v
    order[#order + 1] = i
  end
  return got, order
end

local function double(x) return tonumber(x) * 2 end

describe("lazy items", function()
  it("par.map takes io.lines, coroutine.wrap and a closure, and returns results.n", function()
    local path = lines_file(50)
    finally(function() os.remove(path) end)
    local want = {}
    for i = 1, 50 do want[i] = 2 * i end
    want.n = 50
    assert.are.same(want, par.map(double, io.lines(path), 2))
    assert.are.same(want, par.map(double, wrap(50), 2))
    assert.are.same(want, par.map(double, counter(50), { jobs = 2, chunksize = 3 }))
  end)

  it("par.imap takes io.lines, coroutine.wrap and a closure", function()
    local path = lines_file(30)
    finally(function() os.remove(path) end)
    local want = {}
    for i = 1, 30 do want[i] = 2 * i end
    for _, items in ipairs({ io.lines(path), wrap(30), counter(30) }) do
      assert.are.same(want, (drain(par.imap(double, items, 2))))
    end
  end)

  it("gives an empty iterator { n = 0 }, and no fork", function()
    assert.are.same({ n = 0 }, par.map(double, counter(0), 2))
    assert.are.same({}, (drain(par.imap(double, counter(0), 2))))
    assert.are.same({}, H.children())
  end)

  it("pulls only as workers free up: a generator that never ends, with break", function()
    local pulled, seen = 0, 0
    local function forever()
      pulled = pulled + 1
      return pulled
    end
    for _, v in par.imap(function(x) return x + 1 end, forever, 2) do
      seen = seen + 1
      assert.is_true(v >= 2)
      if seen == 20000 then break end
    end
    assert.are.equal(20000, seen)
    assert.is_true(pulled >= 20000 and pulled < 20000 + 40000, "pulled " .. pulled)
    assert.is_true(no_children())
  end)

  it("stops the map when the iterator raises, and leaves no worker", function()
    local k = 0
    local function bad()
      k = k + 1
      if k == 500 then error("no more items", 0) end
      return k
    end
    assert.has_error(function() par.map(double, bad, 2) end, "no more items")
    assert.are.same({}, H.children())
    k = 0
    assert.has_error(function()
      for _ in par.imap(double, bad, 2) do end
    end, "no more items")
    assert.are.same({}, H.children())
  end)

  it("names the position of an item the codec cannot send, and its path", function()
    local items = { 1, 2, 3, 4, 5, 6, function() end }
    local k = 0
    local function gen()
      k = k + 1
      return items[k]
    end
    local ok, err = pcall(par.map, double, gen, 2)
    assert.is_false(ok)
    assert.matches("bad argument #2 to 'map' (item #7: cannot send a function (at item))", err, 1, true)
    local co = coroutine.create(function() end)
    local rows = { { 1 }, { 2, { co } } }
    k = 0
    ok, err = pcall(function()
      for _ in par.imap(function(x) return x[1] end, function()
        k = k + 1
        return rows[k]
      end, 2) do end
    end)
    assert.is_false(ok)
    assert.matches("bad argument #2 to 'imap' (item #2: cannot send a thread (at item[2][1]))", err, 1, true)
    assert.are.same({}, H.children())
  end)

  it("sends a 1 MB item through the socket, both ways", function()
    local big = string.rep("x", 1 << 20)
    local got = drain(par.imap(function(s) return s .. "!" end, function()
      if big then
        local b = big
        big = nil
        return b
      end
    end, 2))
    assert.are.equal((1 << 20) + 1, #got[1])
    local r = par.map(function(s) return #s end, wrap(6) and coroutine.wrap(function()
      for i = 1, 6 do coroutine.yield(string.rep(tostring(i), 1 << 20)) end
    end), 2)
    assert.are.same({ 1 << 20, 1 << 20, 1 << 20, 1 << 20, 1 << 20, 1 << 20, n = 6 }, r)
  end)

  it("sends again the items a dead worker held", function()
    local r, errs = par.map(function(x)
      if x == 5 then os.exit(3) end
      return x
    end, counter(40), { jobs = 2, chunksize = 4, errors = "collect" })
    assert.are.equal(40, r.n)
    for i = 1, 40 do
      if i ~= 5 then assert.are.equal(i, r[i]) end
    end
    assert.matches("^par.map: item 5: worker died %(exit 3%)", errs[5])
  end)
end)

describe("par.imap", function()
  it("yields every index exactly once in completion order, the slow first item late", function()
    local got, order = drain(par.imap(function(x)
      if x == 1 then os.execute("sleep 0.5") end
      return x * 10
    end, range(20), { jobs = 2, chunksize = 1 }))
    for i = 1, 20 do assert.are.equal(i * 10, got[i]) end
    assert.are.equal(20, #order)
    assert.are_not.equal(1, order[1])
  end)

  it("yields 1..n in input order with ordered = true", function()
    local _, order = drain(par.imap(function(x)
      if x == 1 then os.execute("sleep 0.3") end
      return x
    end, counter(200), { jobs = 2, ordered = true }))
    assert.are.same(range(200), order)
  end)

  it("takes a table of items", function()
    local got = drain(par.imap(function(x) return -x end, range(1000), 2))
    for i = 1, 1000 do assert.are.equal(-i, got[i]) end
  end)

  it("raises at the failed item with par.map's message, and leaves no worker", function()
    local ok, err = pcall(function()
      for _ in par.imap(function(x)
        if x == 5 then error("five", 0) end
        return x
      end, range(10), { jobs = 2, ordered = true }) do end
    end)
    assert.is_false(ok)
    assert.matches("^par.map: item 5: five", err)
    assert.are.same({}, H.children())
  end)

  it("yields i, nil, err with errors = 'collect'", function()
    local errs, vals = {}, {}
    for i, v, err in par.imap(function(x)
      if x % 3 == 0 then error("no " .. x, 0) end
      return x
    end, counter(9), { jobs = 2, errors = "collect" }) do
      if err then
        assert.is_nil(v)
        errs[i] = err
      else
        vals[i] = v
      end
    end
    assert.are.same({ 1, 2, nil, 4, 5, nil, 7, 8 }, vals)
    assert.are.same({ 3, 6, 9 }, (function()
      local t = {}
      for i in pairs(errs) do t[#t + 1] = i end
      table.sort(t)
      return t
    end)())
    assert.matches("^par.map: item 6: no 6", errs[6])
  end)

  it("kills and reaps every worker on break", function()
    for _ in par.imap(function(x) os.execute("sleep 0.1") return x end, range(100), 2) do -- luacheck: ignore 512
      assert.is_true(#H.children() > 0)
      break
    end
    assert.are.same({}, H.children())
  end)

  it("kills and reaps every worker on an error in the loop body", function()
    assert.has_error(function()
      for _ in par.imap(function(x) return x end, counter(1e9), 2) do error("body", 0) end
    end, "body")
    assert.are.same({}, H.children())
  end)

  it("kills and reaps every worker on return from the loop", function()
    local function first()
      for _, v in par.imap(function(x) os.execute("sleep 0.1") return x end, range(50), 2) do -- luacheck: ignore 512
        return v
      end
    end
    assert.is_number(first())
    assert.are.same({}, H.children())
  end)

  it("tears down at once when a step raises, before anything closes it", function()
    local k = 0
    local step, state, ctl = par.imap(function(x) return x end, function()
      k = k + 1
      if k == 3000 then error("iterator broke", 0) end
      return k
    end, 2)
    local ok, err = pcall(function()
      for _ = 1, 1e9 do
        if step(state, ctl) == nil then break end
      end
    end)
    assert.is_false(ok)
    assert.are.equal("iterator broke", err)
    assert.are.same({}, H.children())
    assert.is_nil(step(state, ctl))
  end)

  it("yields each index once with chunks bigger than its window", function()
    local n, sum, most = 0, 0, 0
    for i, v in par.imap(function(x) return x end, counter(2500000), { jobs = 2, chunksize = 1 << 20 }) do
      assert(i == v)
      n, sum, most = n + 1, sum + i, math.max(most, i)
    end
    assert.are.equal(2500000, n)
    assert.are.equal(2500000, most)
    assert.are.equal(2500000 * 2500001 // 2, sum)
  end)

  it("is torn down by the collector when abandoned", function()
    local step, state, ctl = par.imap(function(x) return x end, counter(1e9), 2)
    assert.is_number((step(state, ctl)))
    assert.is_true(#H.children() > 0)
    step, state, ctl = nil, nil, nil -- luacheck: ignore 311
    collectgarbage()
    collectgarbage()
    assert.are.same({}, H.children())
  end)

  it("runs inside a coroutine that yields between iterations", function()
    local co = coroutine.wrap(function()
      for i, v in par.imap(function(x) return x * x end, wrap(10), { jobs = 2, ordered = true }) do
        coroutine.yield(i, v)
      end
      return "done"
    end)
    for i = 1, 10 do
      local k, v = co()
      assert.are.equal(i, k)
      assert.are.equal(i * i, v)
      assert.is_true(#H.children() > 0 or i == 10)
    end
    assert.are.equal("done", co())
    assert.are.same({}, H.children())
  end)

  it("calls on_result for each result, and draws progress with an unknown total", function()
    local seen = {}
    local n = 0
    for _ in par.imap(function(x) return x + 1 end, counter(25), {
      jobs = 2, on_result = function(v, i) seen[i] = v end }) do
      n = n + 1
    end
    assert.are.equal(25, n)
    for i = 1, 25 do assert.are.equal(i + 1, seen[i]) end
    local script = [[
      local par = require "par"
      local k = 0
      for _ in par.imap(function(x) return x end, function() k = k + 1; if k <= 40 then return k end end,
        { jobs = 2, progress = "always" }) do end
      local r = par.map(function(x) return x end, function() k = k - 1; if k > 0 then return k end end,
        { jobs = 2, progress = "always" })
      io.write(r.n)
    ]]
    local p = io.popen(H.env .. "lua5.4 -e " .. H.quote(script) .. " 2>&1")
    local out = p:read("a")
    p:close()
    assert.matches("par: 40 items, 0 running, 0 failed, ", out, 1, true)
    assert.matches("par: 40 items, 0 running, 0 failed, [^\n]*\n40$", out)
  end)

  it("keeps the caller's memory bounded over 200,000 items from a generator", function()
    -- a collector that keeps pace with the garbage the loop makes (44 MB of
    -- results): what stays is what par holds, not garbage not yet swept
    collectgarbage("incremental", 150, 200)
    finally(function() collectgarbage("incremental", 200, 100) end)
    collectgarbage()
    local before = collectgarbage("count")
    local most, n = before, 0
    for _, v in par.imap(function(x) return x .. ("!"):rep(200) end, counter(200000), 2) do
      n = n + 1
      assert(v)
      if n % 1000 == 0 then most = math.max(most, collectgarbage("count")) end
    end
    assert.are.equal(200000, n)
    assert.is_true(most - before < 20 * 1024, ("grew %.0f KiB"):format(most - before))
  end)
end)
