-- A representative subset of par for `make valgrind`: a plain script, since
-- busted under valgrind is slow.  Every check raises on a wrong answer.
local par = require "par"
local core = require "par.core"

local function check(cond, what)
  if not cond then error("valgrind subset: " .. what, 2) end
end

-- par.run: capture, argv and shell forms, errors, signals, env, stdin, timeout, retries
local res, nfailed = par.run({
  "echo out; echo err >&2", { "printf", "%s", "x" }, { "nosuchprog-par" }, "kill -9 $$",
  "cat", "echo $PAR_V", "sleep 5",
}, { jobs = 3, stdin = "in", env = { PAR_V = "v" }, timeout = 1, retries = 1 })
check(res[1].stdout == "out\n" and res[1].stderr == "err\n", "capture")
check(res[2].stdout == "x", "argv")
-- under valgrind, posix_spawn cannot report exec failures: the child exits 127
check(res[3].status == "error" or res[3].code == 127, "spawn error")
check(res[4].signal == 9, "signal")
check(res[5].stdout == "in", "stdin")
check(res[6].stdout == "v\n", "env")
check(res[7].status == "timeout", "timeout")
check(nfailed == 3, "nfailed")

-- halt, max_output, on_done raising (teardown through __close)
res = par.run({ "false", "true" }, { jobs = 1, halt = "soon" })
check(res[2].status == "skipped", "halt")
res = par.run({ "head -c 100000 /dev/zero" }, { max_output = 10 })
check(#res[1].stdout == 10 and res[1].truncated, "max_output")
check(not pcall(par.run, { "sleep 5", "true" }, { jobs = 2, on_done = function() error("x") end }),
  "on_done error")

-- par.each: an iterator, on_output, ordered, a break that tears down, a dropped iterator
do
  local k = 0
  local chunks = 0
  local order = {}
  for i, r in par.each(function() k = k + 1; if k <= 6 then return "echo " .. k end end, 3,
      { ordered = true, on_output = function() chunks = chunks + 1 end }) do
    check(r.ok and r.stdout == nil, "each result")
    order[#order + 1] = i
  end
  check(#order == 6 and order[6] == 6 and chunks == 6, "each order, on_output")
  for i in par.each(function() return "true" end, 2) do check(i, "each"); break end -- luacheck: ignore 512
  for i in par.each({ "true", "sleep 5" }, 2) do check(i == 1, "each break"); break end -- luacheck: ignore 512
  do local f, s = par.each({ "sleep 5" }, 1); check(f and s, "each open") end
  collectgarbage()
end

-- the codec, when built
if core.encode then
  local t = { 1, 2.5, "s", true, { nested = { math.mininteger } } }
  t.self = t
  local u = core.decode(core.encode(t))
  check(u.self == u and u[5].nested[1] == math.mininteger, "codec")
  check(not pcall(core.decode, core.encode(t):sub(1, -2)), "truncated input")
end

-- par.map, when built
if par.map then
  local r = par.map(function(x) return { x * 2 } end, { 1, 2, 3, 4, 5 }, 2)
  check(r[5][1] == 10 and r.n == 5, "map")
end

-- core.lines: records across reads, a last one without its separator
if core.lines then
  local f = io.tmpfile()
  f:write(("y"):rep(200000), "\nb\0c")
  f:seek("set")
  local r = core.lines(f)
  local got = {}
  for _ = 1, 100 do
    local rec = r:read()
    if rec == nil then break end
    if rec then got[#got + 1] = rec end
  end
  check(#got == 2 and #got[1] == 200000 and got[2] == "b\0c", "lines")
  r:close()
  f:close()
end

-- par.pool: futures, a map, a cancel, an error, a timeout, and each way out
if par.pool then
  local pool = par.pool(2, { timeout = 2 })
  local k = 3
  local fmt = string.format
  local f = pool:submit(function(x) return fmt("%d", x * k) end, 7)
  check(f:get() == "21", "pool submit")
  local r = pool:map(function(x) return { x } end, { 1, 2, 3, 4, 5 })
  check(r[5][1] == 5 and r.n == 5, "pool map")
  local slow = pool:submit(function() local t = os.time() + 1 repeat until os.time() > t end)
  local queued = pool:submit(print)
  local third = pool:submit(print)
  check(third:cancel() or queued:cancel() or true, "pool cancel")
  check(not pcall(function() return pool:submit(error, "x"):get() end), "pool error")
  slow:get()
  pool:close()
  local p2 = par.pool(1)
  p2:submit(function() repeat until false end)
  p2:terminate()
  do local p3 = par.pool(1); p3:submit(print) end
  collectgarbage()
end

collectgarbage()
print("valgrind subset: ok")
