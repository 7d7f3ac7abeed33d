-- par.each, and par.run over an iterator: commands pulled lazily, results
-- as they finish, nothing left behind whatever way the loop ends.
local par = require "par"
local H = require "spec.helpers"

local function marker() return H.marker(40) end

local function assert_none_left(m)
  assert.are.same({}, H.survivors(m))
  assert.are.same({}, H.children())
end

-- An iterator over 'cmds', counting what was pulled.
local function counted(cmds)
  local c = { pulled = 0 }
  function c.next()
    c.pulled = c.pulled + 1
    return cmds[c.pulled]
  end
  return c
end

local function echo_each(n)
  local t = {}
  for i = 1, n do t[i] = "echo " .. i end
  return t
end

describe("par.run over an iterator", function()
  it("takes io.lines over a file", function()
    local path = H.tmpfile(finally)
    H.writefile(path, "echo a\necho b\necho c\n")
    local res, nfailed = par.run(io.lines(path), 2)
    assert.are.equal(0, nfailed)
    assert.are.equal(3, #res)
    assert.are.equal("b\n", res[2].stdout)
    assert.are.equal("echo c", res[3].cmd)
  end)

  it("takes a coroutine.wrap generator of argv tables", function()
    local gen = coroutine.wrap(function()
      for i = 1, 4 do coroutine.yield({ "printf", "%s", tostring(i * i) }) end
    end)
    local res = par.run(gen, 3)
    assert.are.same({ "1", "4", "9", "16" }, { res[1].stdout, res[2].stdout, res[3].stdout, res[4].stdout })
  end)

  it("takes a closure, and runs exactly what it returned", function()
    local c = counted(echo_each(50))
    local res, nfailed = par.run(c.next, 4)
    assert.are.equal(0, nfailed)
    assert.are.equal(50, #res)
    assert.are.equal(51, c.pulled)   -- the nil that ended it, and no more
    for i = 1, 50 do assert.are.equal(i .. "\n", res[i].stdout) end
  end)

  it("halts: stops pulling, and what never started is skipped", function()
    local c = counted({ "exit 3", "sleep 5", "sleep 5", "sleep 5", "sleep 5", "sleep 5" })
    local res, nfailed = par.run(c.next, 1, { halt = "soon" })
    assert.are.equal(1, nfailed)
    assert.is_true(c.pulled < 6, "pulled " .. c.pulled)
    assert.are.equal("exit", res[1].status)
    for i = 2, #res do assert.are.equal("skipped", res[i].status) end
  end)

  it("an iterator that raises stops every command and the error goes on", function()
    local m = marker()
    local n = 0
    local gen = function()
      n = n + 1
      if n <= 2 then return "exec sleep " .. m end
      error("cursor lost")
    end
    local ok, err = pcall(par.run, gen, 4)
    assert.is_false(ok)
    assert.matches("cursor lost", err)
    assert_none_left(m)
  end)

  it("a bad command from an iterator is a bad argument naming its position", function()
    local function from(t) local c = counted(t); return c.next end
    local m = marker()
    assert.has_error(function() par.run(from({ "exec sleep " .. m, "true", "" }), 2) end,
      "bad argument #1 to 'run' (command #3 is an empty string)")
    assert.has_error(function() par.run(from({ "true", 42 }), 2) end,
      "bad argument #1 to 'run' (command #2 must be a string or an argv table)")
    assert.has_error(function()
      for _ in par.each(from({ "true", { "echo", 7 } }), 2) do end
    end, "bad argument #1 to 'each' (command #2: element 2 is a number, not a string)")
    assert_none_left(m)
  end)

  it("rejects what is neither a table nor a function", function()
    assert.has_error(function() par.each(42) end,
      "bad argument #1 to 'each' (table or function expected, got number)")
    assert.has_error(function() par.each({ "true" }, 0) end,
      "bad argument #2 to 'each' (number of jobs: must be >= 1, got 0)")
  end)
end)

describe("par.each", function()
  it("yields every command once, in completion order", function()
    local cmds = { "sleep 0.6; echo 1", "echo 2", "echo 3", "echo 4" }
    local order, seen = {}, {}
    for i, r in par.each(cmds, 2) do
      order[#order + 1] = i
      assert.is_nil(seen[i])
      seen[i] = true
      assert.are.equal(i .. "\n", r.stdout)
      assert.are.equal(cmds[i], r.cmd)
    end
    assert.are.equal(4, #order)
    assert.are_not.equal(1, order[1])   -- the slow first one ends last
    assert.are.equal(1, order[4])
  end)

  it("yields in input order with ordered = true, holding back only what waits", function()
    local cmds = { "sleep 0.6; echo 1", "echo 2", "echo 3", "echo 4" }
    local order, started = {}, {}
    for i, r in par.each(cmds, 2, { ordered = true }) do
      order[#order + 1] = i
      started[i] = r.started
    end
    assert.are.same({ 1, 2, 3, 4 }, order)
    -- the fast ones did not wait for the slow first one to start
    assert.is_true(started[4] - started[1] < 0.5)
  end)

  it("holds at most the read-ahead in flight, whatever the input's length", function()
    local pulled, yielded, most = 0, 0, 0
    local function gen()
      pulled = pulled + 1
      if pulled <= 300 then return { "true" } end
    end
    for _ in par.each(gen, 2) do
      yielded = yielded + 1
      if pulled - yielded > most then most = pulled - yielded end
    end
    assert.are.equal(300, yielded)
    assert.is_true(most <= 2 * 2 + 2 + 1, "in flight: " .. most)
  end)

  it("keeps the caller's memory flat over a long stream", function()
    local function gen(n)
      local k = 0
      return function() k = k + 1; if k <= n then return { "true" } end end
    end
    local function peak(n)
      collectgarbage()
      local base, top = collectgarbage("count"), 0
      local k = 0
      for _ in par.each(gen(n), 2) do
        k = k + 1
        if k % 100 == 0 then            -- what is retained, not the collector's pace
          collectgarbage()
          local now = collectgarbage("count")
          if now - base > top then top = now - base end
        end
      end
      return top
    end
    local small, big = peak(200), peak(4000)
    assert.is_true(big < small + 1024, ("KiB: %.0f for 200, %.0f for 4000"):format(small, big))
  end)

  it("a generator that never ends is fine with a break, and leaves no process", function()
    local m = marker()
    local pulled = 0
    local function forever()
      pulled = pulled + 1
      if pulled <= 3 then return "true" end
      return "exec sleep " .. m
    end
    for i, r in par.each(forever, 2, { ordered = true }) do
      assert.is_true(r.ok)
      if i == 3 then break end
    end
    assert.is_true(pulled < 20, "pulled " .. pulled)
    assert_none_left(m)
  end)

  it("an error in the loop body stops and reaps every command", function()
    local m = marker()
    local cmds = { "true" }
    for i = 2, 6 do cmds[i] = "exec sleep " .. m end
    local ok, err = pcall(function()
      for i in par.each(cmds, 6) do
        if i == 1 then error("body failed") end
      end
    end)
    assert.is_false(ok)
    assert.matches("body failed", err)
    assert_none_left(m)
  end)

  it("a return from the loop body stops and reaps every command", function()
    local m = marker()
    local function first()
      for i, r in par.each({ "exec sleep " .. m, "echo fast", "exec sleep " .. m }, 3) do
        if r.ok then return i end
      end
    end
    assert.are.equal(2, first())
    assert_none_left(m)
  end)

  it("an iterator dropped without closing is torn down by the collector", function()
    local m = marker()
    do
      local f, s = par.each({ "echo x", "exec sleep " .. m, "exec sleep " .. m }, 3)
      local i = f(s)
      assert.is_not_nil(i)
    end
    collectgarbage()
    collectgarbage()
    assert.is_true(H.eventually(function() return #H.survivors(m) == 0 end, 5))
    assert.are.same({}, H.children())
  end)

  it("runs in a coroutine that yields between iterations", function()
    local co = coroutine.wrap(function()
      local got = {}
      for i, r in par.each(echo_each(6), 2, { ordered = true }) do
        got[#got + 1] = i .. "=" .. r.stdout:sub(1, -2)
        coroutine.yield(i)
      end
      return table.concat(got, " ")
    end)
    local ticks = {}
    for _ = 1, 6 do ticks[#ticks + 1] = co() end
    assert.are.same({ 1, 2, 3, 4, 5, 6 }, ticks)
    assert.are.equal("1=1 2=2 3=3 4=4 5=5 6=6", co())
  end)

  it("waits on a descriptor when the iterator says nothing is ready yet", function()
    -- the CLI's protocol: false, fd means "wake me when fd is readable"
    local dir = H.tmpdir(finally)
    local fifo = dir .. "/in"
    os.execute("mkfifo " .. fifo)
    os.execute("(sleep 0.3; echo 'echo late') > " .. fifo .. " &")
    local f = assert(io.open(fifo, "r"))
    local fd
    for _, l in ipairs(H.lines("ls -l /proc/" .. H.pid() .. "/fd")) do
      if l:find(fifo, 1, true) then fd = tonumber(l:match("(%d+) %->")) end
    end
    assert.is_not_nil(fd)
    local calls, sent = 0, false
    local got = {}
    for _, r in par.each(function()
      calls = calls + 1
      if sent then return nil end
      if calls == 1 then return "echo early" end
      if calls == 2 then return false, fd end
      local line = f:read("l")
      sent = true
      return line
    end, 2) do got[#got + 1] = r.stdout end
    f:close()
    assert.are.same({ "early\n", "late\n" }, got)
    assert.are.equal(4, calls)
  end)

  it("passes output to on_output in order and whole, and captures nothing", function()
    local chunks, bytes = {}, 0
    local results = {}
    for i, r in par.each({
      "head -c 10000000 /dev/zero | tr '\\0' a; printf end",
      "seq 1 100000",
    }, 2, { on_output = function(i, stream, chunk)
      assert.are.equal("stdout", stream)
      assert.is_nil(results[i])        -- every chunk before its result
      chunks[i] = chunks[i] or {}
      table.insert(chunks[i], chunk)
      bytes = bytes + #chunk
    end }) do
      assert.is_nil(r.stdout)
      results[i] = r
    end
    local one = table.concat(chunks[1])
    assert.are.equal(10000003, #one)
    assert.are.equal(("a"):rep(10000000) .. "end", one)
    local lines = {}
    for i = 1, 100000 do lines[i] = tostring(i) end
    assert.are.equal(table.concat(lines, "\n") .. "\n", table.concat(chunks[2]))
    assert.is_true(#chunks[1] > 1)
  end)

  it("tells stderr from stdout in on_output", function()
    local got = {}
    par.run({ "echo out; echo err >&2" }, { on_output = function(_, s, c) got[s] = (got[s] or "") .. c end })
    assert.are.same({ stdout = "out\n", stderr = "err\n" }, got)
  end)

  it("marks each new try in on_output with a 'retry' event, between the tries' output", function()
    local dir = os.tmpname()
    os.remove(dir)
    local got = {}
    par.run({ ("echo try; test -e %s || { touch %s; exit 1; }"):format(dir, dir) }, { retries = 2,
      on_output = function(i, s, c) got[#got + 1] = i .. s .. ":" .. c end })
    os.remove(dir)
    assert.same({ "1stdout:try\n", "1retry:", "1stdout:try\n" }, got)
  end)

  it("refuses on_output with capture = false or output", function()
    assert.has_error(function() par.each({ "true" }, { on_output = print, capture = false }) end,
      "bad argument #2 to 'each' (option 'on_output' contradicts option 'capture')")
  end)

  it("returns nil, msg, errno when the joblog cannot be opened", function()
    local dir = H.tmpdir(finally)
    local f, msg, errno = par.each({ "true" }, { joblog = dir .. "/no/such/log" })
    assert.is_nil(f)
    assert.matches("no/such/log", msg)
    assert.are.equal("number", math.type(errno) and "number")
  end)

  it("shows progress with an unknown total: done, running, failed, rate", function()
    local out = H.lua([[
      local par = require "par"
      local k = 0
      for _ in par.each(function() k = k + 1; if k <= 5 then return "true" end end, 2,
        { progress = "always" }) do end
    ]])
    assert.matches("par: 5 done, 0 running, 0 failed, %d+:%d%d elapsed, [%d.]+/s\n$", out)
    assert.not_matches("ETA", out)
  end)
end)

describe("joblog and resume over a streamed input", function()
  it("after a kill, a rerun over the same input runs only what never ended", function()
    local dir = H.tmpdir(finally)
    local log, ran = dir .. "/log", dir .. "/ran"
    local m = marker()
    local script = dir .. "/stream.lua"
    -- 12 commands from a generator; each appends its position to 'ran'
    H.writefile(script, ([[
      local par = require "par"
      local resume = arg[1] == "resume"
      local k = 0
      local function gen()
        k = k + 1
        if k > 12 then return nil end
        local slow = (not resume and k >= 5) and "sleep %s; " or ""
        return slow .. "echo " .. k .. " >> %s"
      end
      for i in par.each(gen, 2, { joblog = %q, resume = resume }) do
        if not resume and i == 4 then io.stdout:write("four\n"); io.stdout:flush() end
      end
    ]]):format(m, ran, log))
    local p = assert(io.popen(H.env .. "exec lua5.4 " .. script .. " & echo $!; wait"))
    local pid = p:read("l")
    assert.are.equal("four", p:read("l"))
    os.execute("sleep 0.2; kill -9 " .. pid)
    p:close()
    -- the orphans of the killed run (not pkill: under make asan's LD_PRELOAD it hangs)
    for q, info in pairs(H.processes()) do
      if info.cmdline:find(m, 1, true) then os.execute("kill -9 " .. q .. " 2>/dev/null") end
    end
    local before = H.readfile(ran)
    local seqs = {}
    for l in io.lines(log) do
      local s = l:match("^(%d+)\t")
      if s then seqs[#seqs + 1] = tonumber(s) end
    end
    table.sort(seqs)
    assert.are.same({ 1, 2, 3, 4 }, seqs)
    H.writefile(ran, "")
    local out, ok = H.lua(("arg = { 'resume' }\n") .. H.readfile(script))
    assert.is_true(ok, out)
    local again = {}
    for l in io.lines(ran) do again[#again + 1] = tonumber(l) end
    table.sort(again)
    assert.are.same({ 5, 6, 7, 8, 9, 10, 11, 12 }, again)
    local first = {}
    for l in before:gmatch("%d+") do first[#first + 1] = tonumber(l) end
    table.sort(first)
    assert.are.same({ 1, 2, 3, 4 }, first)
    assert.are.same({}, H.survivors(m))
  end)
end)

describe("par.each and signals", function()
  it("SIGINT during an endless stream raises 'interrupted' and leaves nothing", function()
    local m = marker()
    local path = os.tmpname()
    H.writefile(path, ([[
      local par = require "par"
      local ok, err = pcall(function()
        for i in par.each(function() return "exec sleep %s" end, 2) do end
      end)
      print(ok, err)
    ]]):format(m))
    local p = assert(io.popen("exec env --default-signal=INT " .. H.env .. "lua5.4 " .. path
      .. " & echo $!; wait"))
    local pid = p:read("l")
    assert.is_true(H.eventually(function() return #H.survivors(m) == 2 end, 5))
    os.execute("kill -INT " .. pid)
    local out = p:read("a")
    p:close()
    os.remove(path)
    assert.are.equal("false\tinterrupted\n", out)
    assert.are.same({}, H.survivors(m))
  end)
end)
