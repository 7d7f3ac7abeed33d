local par = require "par"
local joblog = require "par.joblog"
local H = require "spec.helpers"

local HEADER = "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n"

local function tmp() return H.tmpfile(finally) end
local function tmpdir() return H.tmpdir(finally) end

-- The Seq column of each job line of a joblog, in file order.
local function seqs(path)
  local out = {}
  for l in (H.readfile(path) or ""):gmatch("[^\n]+") do
    if not l:find("^Seq\t") then out[#out + 1] = tonumber(l:match("^%d+")) or l end
  end
  return out
end

-- The children of this process not in 'before' (a set of pids), zombies
-- included: a file io.popen opened earlier and the collector has not closed
-- yet leaves a zombie of its own, which is no leak of par's.
local function new_children(before)
  local out = {}
  for _, c in ipairs(H.children()) do
    if not before[c.pid] then out[#out + 1] = c end
  end
  return out
end

local function child_set()
  local set = {}
  for _, c in ipairs(H.children()) do set[c.pid] = true end
  return set
end

-- A joblog of exactly 'size' bytes, header first, ending with a newline.
local function padded_log(path, size)
  local filler = "1\t:\t1700000000.000\t     0.001\t0\t0\t0\t0\ttrue #"
  H.writefile(path, HEADER .. filler .. ("x"):rep(size - #HEADER - #filler - 1) .. "\n")
end

describe("par.joblog.read", function()
  local function line(seq, exit, sig, cmd)
    return ("%d\t:\t1700000000.123\t     0.005\t0\t0\t%d\t%d\t%s\n"):format(seq, exit, sig, cmd or "true")
  end

  local function read(text, rerun_failed)
    local path = os.tmpname()
    H.writefile(path, text)
    local warnings = {}
    local done = joblog.read(path, rerun_failed, function(m) warnings[#warnings + 1] = m end)
    os.remove(path)
    return done, warnings
  end

  it("maps each logged seq to whether it succeeded", function()
    local done, warnings = read(HEADER .. line(1, 0, 0) .. line(2, 1, 0) .. line(3, 0, 9) .. line(5, -1, 15))
    assert.are.same({ [1] = true, [2] = false, [3] = false, [5] = false }, done)
    assert.are.same({}, warnings)
  end)

  it("keeps only successes when failures are to be rerun", function()
    local done = read(HEADER .. line(1, 0, 0) .. line(2, 1, 0), true)
    assert.are.same({ [1] = true }, done)
  end)

  it("counts a seq as done if any of its lines succeeded", function()
    assert.are.same({ [1] = true }, read(HEADER .. line(1, 1, 0) .. line(1, 0, 0)))
  end)

  it("returns nothing for a missing log", function()
    assert.are.same({}, joblog.read("/nonexistent/par.log", false, error))
  end)

  it("survives 10,000 random corruptions, never raising", function()
    math.randomseed(42)
    local good = HEADER
    for i = 1, 20 do good = good .. line(i, i % 3 == 0 and 1 or 0, 0, "echo " .. i .. " \\t x") end
    local path = os.tmpname()
    finally(function() os.remove(path) end)
    for _ = 1, 10000 do
      local s = good
      for _ = 1, math.random(1, 4) do
        if s == "" then break end
        local at, kind = math.random(1, #s), math.random(1, 4)
        if kind == 1 then s = s:sub(1, at - 1) .. string.char(math.random(0, 255)) .. s:sub(at + 1)
        elseif kind == 2 then s = s:sub(1, at - 1) .. s:sub(at + math.random(1, 40))
        elseif kind == 3 then s = s:sub(1, at) .. s:sub(math.random(1, #s))
        else s = s:sub(1, at) end
      end
      H.writefile(path, s)
      local ok, done = pcall(joblog.read, path, math.random() < 0.5, function() end)
      assert(ok, done)
      for seq, v in pairs(done) do
        assert(math.type(seq) == "integer" and type(v) == "boolean")
      end
    end
  end)
end)

describe("a joblog cut short by a killed run", function()
  local CUT = "7\t:\t1700000000.123\t     0.005\t0\t0\t0\t0\techo seven"
  local next_job = { status = "exit", code = 0, started = 1700000001, elapsed = 0.5, cmd = "echo eight" }

  it("is ended before appending, and stays ignored, wherever the cut fell", function()
    local path = tmp()
    for n = 1, #CUT do
      H.writefile(path, HEADER .. CUT:sub(1, n))
      local log = joblog.open(path)
      log:write(8, next_job)
      log:close()
      local warnings = {}
      local done = joblog.read(path, false, function(m) warnings[#warnings + 1] = m end)
      assert.are.same({ [8] = true }, done, "cut after byte " .. n)
      assert.are.same({ "joblog " .. path .. ": line 2 ignored (cut short)" }, warnings, "cut after byte " .. n)
    end
  end)

  it("loses no job of the run that appends to it #child_lua", function()
    local log, ran = tmp(), tmp()
    os.remove(ran)
    H.writefile(log, HEADER .. "1\t:\t1700000000.123\t     0.005\t0\t0\t0\t0\ttrue\n2\t:\t17000")
    local cmds = { "true", "echo 2 >> " .. ran, "echo 3 >> " .. ran }
    local code = ([[
      local res = require("par").run(%s, { jobs = 1, joblog = %q, resume = true })
      print(res[1].status, res[2].status, res[3].status)
    ]]):format(require("par.cli").lua_literal(cmds), log)
    assert.are.equal("par: joblog " .. log .. ": line 3 ignored (no end of line)\n"
      .. "skipped\texit\texit\n", H.lua(code))
    assert.are.equal("par: joblog " .. log .. ": line 3 ignored (cut short)\n"
      .. "skipped\tskipped\tskipped\n", H.lua(code))
    assert.are.equal("2\n3\n", H.readfile(ran))
  end)

  it("ignores a line with more than 9 fields, such as GNU parallel's for a command with a tab", function()
    local path = tmp()
    H.writefile(path, HEADER .. "1\t:\t1700000000.123\t     0.005\t0\t0\t0\t0\tprintf 'a\tb'\n")
    local warnings = {}
    assert.are.same({}, joblog.read(path, false, function(m) warnings[#warnings + 1] = m end))
    assert.are.same({ "joblog " .. path .. ": line 2 ignored (not a joblog line)" }, warnings)
  end)
end)

describe("a joblog that is not a regular file", function()
  it("is rejected, naming what it is, before anything runs", function()
    local dir = tmpdir()
    for _, resume in ipairs({ false, true }) do
      assert.has_error(function() par.run({ "touch " .. dir .. "/ran" }, { joblog = dir, resume = resume }) end,
        "bad argument #2 to 'run' (option 'joblog': " .. dir .. " is a directory, not a regular file)")
    end
    assert.has_error(function() par.run({ "touch " .. dir .. "/ran" }, 1, { joblog = "/dev/null" }) end,
      "bad argument #3 to 'run' (option 'joblog': /dev/null is a character device, not a regular file)")
    assert.is_nil(H.readfile(dir .. "/ran"))
  end)

  it("is rejected when it is a FIFO, which would block the run #child_lua", function()
    local dir = tmpdir()
    local fifo = dir .. "/fifo"
    assert(os.execute("mkfifo " .. fifo))
    local script = dir .. "/run.lua"
    H.writefile(script, ([[
      local ok, err = pcall(require("par").run, { "true" }, { joblog = %q, resume = true })
      print(ok, err)
    ]]):format(fifo))
    local p = assert(io.popen(H.env .. "timeout 10 lua5.4 " .. script .. " 2>&1"))
    local out = p:read("a")
    p:close()
    assert.are.equal("false\tbad argument #2 to 'run' (option 'joblog': " .. fifo
      .. " is a fifo, not a regular file)\n", out)
  end)

  it("is accepted when absent, or a symlink to a regular file", function()
    local dir = tmpdir()
    assert(os.execute("ln -s " .. dir .. "/real " .. dir .. "/link"))
    par.run({ "true" }, { joblog = dir .. "/link" })
    assert.are.same({ 1 }, seqs(dir .. "/real"))
  end)
end)

describe("a joblog that cannot be written", function()
  -- A child lua5.4 whose file size limit is 1 block of 512 bytes, with SIGXFSZ
  -- ignored: writing past the limit fails with EFBIG, a real OS fault.
  local LIMIT = "trap '' XFSZ; ulimit -f 1; "

  it("stops the run, kills and reaps every command, raises 'joblog: PATH: strerror' #child_lua", function()
    local log = tmp()
    padded_log(log, 512)
    local before = H.readfile(log)
    local out = H.lua(([[
      local H = require "spec.helpers"
      local cmds = { "exec sleep 9.4211" }
      for i = 2, 200 do cmds[i] = "true" end
      local ok, err = pcall(require("par").run, cmds, { jobs = 2, joblog = %q, kill_after = 0.2 })
      print(ok, err, #H.descendants())
    ]]):format(log), LIMIT)
    assert.are.equal("false\tjoblog: " .. log .. ": File too large\t0\n", out)
    assert.are.same({}, H.survivors("sleep 9.4211"))
    assert.are.equal(before, H.readfile(log))
  end)

  it("runs nothing when the header cannot be written #child_lua", function()
    local log, dir = tmp(), tmpdir()
    os.remove(log)
    local out = H.lua(([[
      local ok, err = pcall(require("par").run, { "touch %s/ran" }, { joblog = %q })
      print(ok, err)
    ]]):format(dir, log), "trap '' XFSZ; ulimit -f 0; ")
    assert.are.equal("false\tjoblog: " .. log .. ": File too large\n", out)
    assert.is_nil(H.readfile(dir .. "/ran"))
  end)

  it("stops the run on a full file system (ENOSPC), leaving nothing running", function()
    if H.lines("exec id -u")[1] ~= "0" then
      pending("needs root to mount a tmpfs")
      return
    end
    local dir = tmpdir()
    assert(os.execute("mount -t tmpfs -o size=16k par-spec-tmpfs " .. dir))
    finally(function() os.execute("umount " .. dir) end)
    local log = dir .. "/log"
    padded_log(log, 4096)               -- its page is full: the next byte needs a new one
    os.execute("dd if=/dev/zero of=" .. dir .. "/fill bs=4096 2>/dev/null")
    local cmds = { "exec sleep 9.4212" }
    for i = 2, 200 do cmds[i] = "true" end
    local kids = child_set()
    assert.has_error(function() par.run(cmds, { jobs = 2, joblog = log, kill_after = 0.2 }) end,
      "joblog: " .. log .. ": No space left on device")
    assert.are.same({}, new_children(kids))
    assert.are.same({}, H.survivors("sleep 9.4212"))
    assert.are.equal(4096, #H.readfile(log))
  end)
end)

describe("par.run cut short", function()
  it("marks the jobs par itself stopped, and only those", function()
    local res = par.run({ "exec sleep 9.4214" }, { timeout = 0.1 })
    assert.are.same({ "timeout", 15 }, { res[1].status, res[1].signal })
    assert.is_nil(res[1].stopped)
    res = par.run({ "exec sleep 9.4214", "sleep 0.2; exit 1" }, { jobs = 2, halt = "now" })
    assert.are.same({ "signal", 15, true }, { res[1].status, res[1].signal, res[1].stopped })
    assert.are.same({ "exit", 1 }, { res[2].status, res[2].code })
    assert.is_nil(res[2].stopped)
  end)

  it("by an interrupt leaves no joblog line for a job stopped running, or in its retry pause #child_lua", function()
    local log, ran, trapped = tmp(), tmp(), tmp()
    os.remove(log); os.remove(ran); os.remove(trapped)
    local cmds = { "true", "echo $$ >> " .. ran .. "; exit 1",
      "trap 'exit 3' TERM; echo $$ >> " .. trapped .. "; sleep 9.4213 & wait" }
    local path = tmp()
    H.writefile(path, ([[
      local f = io.open("/proc/self/stat"); io.write(f:read("n"), "\n"); io.flush(); f:close()
      local ok, err = pcall(require("par").run, %s, { jobs = 3, joblog = %q, retries = 1, retry_delay = 30,
        kill_after = 5, on_done = function(res, i) io.write(i, " ", res.status, " ", tostring(res.stopped), "\n") end })
      print(ok, err)
    ]]):format(require("par.cli").lua_literal(cmds), log))
    local p = assert(io.popen(H.env .. "exec lua5.4 " .. path .. " 2>&1"))
    local pid = assert(tonumber(p:read("l")))
    -- job 2 failed and was reaped (so it waits out retry_delay); job 3 traps SIGTERM
    assert(H.eventually(function()
      local p2, p3 = tonumber(H.readfile(ran) or ""), tonumber(H.readfile(trapped) or "")
      return p2 and p3 and not H.readfile("/proc/" .. p2 .. "/stat") and #seqs(log) == 1
    end, 10))
    os.execute("kill -INT " .. pid)
    local lines = {}
    for l in p:read("a"):gmatch("[^\n]+") do lines[#lines + 1] = l end
    p:close()
    table.sort(lines)
    assert.are.same({ "1 exit nil", "2 exit true", "3 exit true", "false\tinterrupted" }, lines)
    assert.are.same({ 1 }, seqs(log))
    assert.are.same({}, H.survivors("sleep 9.4213"))
    local res = par.run({ "true", "true", "true" }, { joblog = log, resume = true })
    assert.are.same({ "skipped", "exit", "exit" }, { res[1].status, res[2].status, res[3].status })
  end)

  it("by an error in on_done: kills the rest, logs the jobs that ended on their own, raises the same value",
    function()
      local log, dir = tmp(), tmpdir()
      os.remove(log)
      local boom = setmetatable({}, { __tostring = function() return "boom" end })
      local calls = 0
      local cmds = { "true", "until [ -e " .. dir .. "/go ]; do sleep 0.01; done; echo $$ > " .. dir .. "/pid",
        "exec sleep 9.4215" }
      local kids = child_set()
      local ok, err = pcall(par.run, cmds, { jobs = 3, joblog = log, kill_after = 0.2, on_done = function()
        calls = calls + 1
        H.writefile(dir .. "/go", "")
        -- job 2 has ended on its own once its pid is reaped: gone from /proc
        assert(H.eventually(function()
          local pid = tonumber(H.readfile(dir .. "/pid") or "")
          return pid and not H.readfile("/proc/" .. pid .. "/stat")
        end, 10))
        error(boom)
      end })
      assert.is_false(ok)
      assert.are.equal(boom, err)
      assert.are.equal(1, calls)             -- not called again for the jobs drained after the error
      assert.are.same({ 1, 2 }, seqs(log))
      assert.are.same({}, new_children(kids))
      assert.are.same({}, H.survivors("sleep 9.4215"))
    end)

  it("lets on_done yield when par.run runs in a coroutine", function()
    local co = coroutine.wrap(function()
      local res = par.run({ "echo a", "echo b" }, { jobs = 1, on_done = function(res) coroutine.yield(res.stdout) end })
      return #res
    end)
    assert.are.same({ "a\n", "b\n", 2 }, { co(), co(), co() })
  end)
end)
