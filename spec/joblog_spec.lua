local par = require "par"
local joblog = require "par.joblog"
local H = require "spec.helpers"

local HEADER = "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n"

local function tmp()
  local p = os.tmpname()
  finally(function() os.remove(p) end)
  return p
end

local function tmpdir()
  local d = H.lines("exec mktemp -d")[1]
  finally(function() os.execute("rm -rf " .. par.quote(d)) end)
  return d
end

-- The Seq column of each job line of a joblog, in file order.
local function seqs(path)
  local out = {}
  for l in (H.readfile(path) or ""):gmatch("[^\n]+") do
    if not l:find("^Seq\t") then out[#out + 1] = tonumber(l:match("^%d+")) or l end
  end
  return out
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
end)
