local par = require "par"
local H = require "spec.helpers"

local function statuses(res)
  local out = {}
  for i, r in ipairs(res) do out[i] = r.status end
  return out
end

local function tmp() return H.tmpfile(finally) end

describe("par.run job control", function()
  describe("timeout", function()
    it("stops a command that traps SIGTERM, and its whole group", function()
      local pids = tmp()
      local cmd = "trap '' TERM; echo started; sleep 30 & echo $! > " .. pids .. "; wait; echo never"
      local res, nfailed = par.run({ cmd, "echo fine" }, { timeout = 0.3, kill_after = 0.2 })
      assert.are.equal(1, nfailed)
      local r = res[1]
      assert.are.equal("timeout", r.status)
      assert.is_false(r.ok)
      assert.are.equal(9, r.signal)          -- SIGTERM was ignored: SIGKILL ended it
      assert.are.equal("started\n", r.stdout)
      assert.is_false(H.alive(assert(tonumber(H.readfile(pids)))))
      assert.are.equal("exit", res[2].status)
    end)

    it("ends a command that obeys SIGTERM with SIGTERM", function()
      local res = par.run({ "sleep 30" }, { timeout = 0.2 })
      assert.are.equal("timeout", res[1].status)
      assert.are.equal(15, res[1].signal)
    end)

    it("does not hang on a grandchild that left the group holding the pipes", function()
      local pids = tmp()
      local res = par.run({ "setsid sleep 30 & echo $! > " .. pids .. "; echo out; wait" },
        { timeout = 0.2, kill_after = 0.1 })
      assert.are.equal("timeout", res[1].status)
      assert.are.equal("out\n", res[1].stdout)
      os.execute("kill " .. H.readfile(pids))
    end)

    it("rejects timeouts that are not positive numbers", function()
      assert.has_error(function() par.run({ "true" }, { timeout = -1 }) end,
        "bad argument #2 to 'run' (option 'timeout': must be a finite number > 0, got -1)")
      assert.has_error(function() par.run({ "true" }, { timeout = "1" }) end,
        "bad argument #2 to 'run' (option 'timeout': seconds or 'N%' (N > 0) expected, got '1')")
      assert.has_error(function() par.run({ "true" }, { timeout = "0%" }) end,
        "bad argument #2 to 'run' (option 'timeout': seconds or 'N%' (N > 0) expected, got '0%')")
      assert.has_error(function() par.run({ "true" }, { kill_after = -1 }) end,
        "bad argument #2 to 'run' (option 'kill_after': must be a finite number >= 0, got -1)")
    end)
  end)

  describe("timeout = 'N%'", function()
    it("stops a command after N% of the median runtime of those that succeeded", function()
      local cmds = { "sleep 0.3", "sleep 0.3", "sleep 0.3", "sleep 3; echo never", "sleep 0.1" }
      local res, nfailed = par.run(cmds, 1, { timeout = "200%" })
      assert.are.equal(1, nfailed)
      assert.are.same({ "exit", "exit", "exit", "timeout", "exit" }, statuses(res))
      assert.are.equal("", res[4].stdout)
      assert.is_true(res[4].elapsed > 0.55 and res[4].elapsed < 1.5, res[4].elapsed)
    end)

    it("has no limit before a command succeeds; failures do not count", function()
      local res, nfailed = par.run({ "sleep 0.05; false", "sleep 0.5", "sleep 0.2" }, 1,
        { timeout = "100%" })
      assert.are.equal(1, nfailed)
      assert.are.same({ "exit", "exit", "exit" }, statuses(res))
    end)

    it("changes the limit of a command already running", function()
      -- the long one starts first, the short ones end meanwhile and set the limit
      local res = par.run({ "sleep 3", "sleep 0.2", "sleep 0.2", "sleep 0.2" }, 2, { timeout = "300%" })
      assert.are.same({ "timeout", "exit", "exit", "exit" }, statuses(res))
      assert.is_true(res[1].elapsed < 2, res[1].elapsed)
    end)
  end)

  describe("termseq", function()
    -- the job prints its name for each signal that it traps, and when it was
    local trapper = "for s in TERM INT HUP; do trap \"echo $s\" $s; done; echo start; "
      .. "i=0; while [ $i -lt 100 ]; do sleep 0.02; i=$((i+1)); done; echo end"

    it("sends each signal, then waits, while the command lives", function()
      local res = par.run({ trapper }, { timeout = 0.2, termseq = "TERM,150,INT,150,SIGHUP,150,KILL,25" })
      assert.are.equal("timeout", res[1].status)
      assert.are.equal(9, res[1].signal)
      assert.are.equal("start\nTERM\nINT\nHUP\n", res[1].stdout)
      assert.is_true(res[1].elapsed > 0.6 and res[1].elapsed < 1.5, res[1].elapsed)
    end)

    it("stops with the first signal a command obeys", function()
      local res = par.run({ "sleep 5" }, { timeout = 0.1, termseq = "INT,1000,KILL,25" })
      assert.are.same({ "timeout", 2 }, { res[1].status, res[1].signal })
      assert.is_true(res[1].elapsed < 1, res[1].elapsed)
    end)

    it("lets a command live on once the sequence is over without a SIGKILL", function()
      local res = par.run({ trapper }, { timeout = 0.1, termseq = "TERM,50,15" })
      assert.are.equal("timeout", res[1].status)
      assert.are.equal("start\nTERM\nTERM\nend\n", res[1].stdout)
    end)

    it("is what halt = 'now' sends to the others", function()
      local res = par.run({ trapper, "sleep 0.2; exit 3" }, 2,
        { halt = "now", termseq = "HUP,100,KILL,25" })
      assert.are.equal("start\nHUP\n", res[1].stdout)
      assert.are.equal(9, res[1].signal)
    end)

    it("rejects what is not a sequence of signals and milliseconds", function()
      assert.has_error(function() par.run({ "true" }, { termseq = "FOO,100" }) end,
        "bad argument #2 to 'run' (option 'termseq': 'FOO' is not a signal)")
      assert.has_error(function() par.run({ "true" }, { termseq = "TERM,x" }) end,
        "bad argument #2 to 'run' (option 'termseq': milliseconds >= 0 expected after TERM, got 'x')")
      assert.has_error(function() par.run({ "true" }, { termseq = "" }) end,
        "bad argument #2 to 'run' (option 'termseq': 1 to 32 signals expected, got '')")
      assert.has_error(function() par.run({ "true" }, { termseq = 15 }) end,
        "bad argument #2 to 'run' (option 'termseq': string expected, got number)")
    end)
  end)

  describe("evict (the par command's --memfree)", function()
    it("stops the running command that came last and runs it again later", function()
      local prun = require "par.run"
      local log = tmp()
      os.remove(log)
      local st, evicted
      local cmds = { "echo early; sleep 0.6; echo one", "echo go >> " .. log .. "; sleep 0.5; echo two",
        "echo three" }
      local got = {}
      local iter, s, ctl, closer = par.each(cmds, 2, { termseq = "TERM,100,KILL,25",
        on_output = function(_, _, chunk)
          if chunk == "early\n" then os.execute("sleep 0.2"); evicted = prun.evict(st) end
        end })
      st = s
      prun.evictable(st)
      for i, res in iter, s, ctl, closer do got[i] = res.status .. " " .. tostring(res.ok) end
      assert.are.equal(2, evicted)
      assert.are.same({ "exit true", "exit true", "exit true" }, got)
      assert.are.equal("go\ngo\n", H.readfile(log))
    end)
  end)

  describe("retries", function()
    it("reruns a failed command until it succeeds", function()
      local counter = tmp()
      os.remove(counter)
      local cmd = ("n=$(cat %s 2>/dev/null || echo 0); n=$((n+1)); echo $n > %s; echo try $n; [ $n -ge 2 ]")
        :format(counter, counter)
      local res, nfailed = par.run({ cmd }, { retries = 3 })
      assert.are.equal(0, nfailed)
      assert.is_true(res[1].ok)
      assert.are.equal(2, res[1].attempts)
      assert.are.equal("try 2\n", res[1].stdout)   -- the output of the last attempt
      assert.are.equal("2\n", H.readfile(counter))
    end)

    it("gives up after k more attempts", function()
      local res = par.run({ "exit 4", "true" }, { retries = 2, retry_delay = 0.01 })
      assert.are.equal(3, res[1].attempts)
      assert.are.equal(4, res[1].code)
      assert.are.equal(1, res[2].attempts)
    end)

    it("rejects a negative or fractional count", function()
      assert.has_error(function() par.run({ "true" }, { retries = -1 }) end,
        "bad argument #2 to 'run' (option 'retries': must be >= 0, got -1)")
      assert.has_error(function() par.run({ "true" }, { retries = 1.5 }) end,
        "bad argument #2 to 'run' (option 'retries': number has no integer representation)")
    end)
  end)

  describe("halt", function()
    it("'soon' starts nothing after the first failure", function()
      local res, nfailed = par.run({ "true", "false", "true", "true" }, { jobs = 1, halt = "soon" })
      assert.are.same({ "exit", "exit", "skipped", "skipped" }, statuses(res))
      assert.are.equal(1, nfailed)    -- the commands that ran and failed: skipped ones never ran
      assert.are.same({ true, false, false, false }, { res[1].ok, res[2].ok, res[3].ok, res[4].ok })
    end)

    it("'soon' lets running commands finish", function()
      local res = par.run({ "sleep 0.5; echo done", "false", "true", "true" }, { jobs = 2, halt = "soon" })
      assert.are.same({ "exit", "exit", "skipped", "skipped" }, statuses(res))
      assert.are.equal("done\n", res[1].stdout)
    end)

    it("'now' also stops running commands", function()
      local res = par.run({ "sleep 30", "sleep 0.2; false", "true" }, { jobs = 2, halt = "now" })
      assert.are.same({ "signal", "exit", "skipped" }, statuses(res))
      assert.are.equal(15, res[1].signal)
      assert.are.equal("true", res[3].cmd)
    end)

    it("'soon' also stops a command waiting out its delay", function()
      local res = par.run({ "false", "echo started" }, { jobs = 2, delay = 0.5, halt = "soon" })
      assert.are.same({ "exit", "skipped" }, statuses(res))
    end)

    it("'never' runs everything", function()
      local res, nfailed = par.run({ "false", "true", "false" }, { jobs = 1, halt = "never" })
      assert.are.same({ "exit", "exit", "exit" }, statuses(res))
      assert.are.equal(2, nfailed)
    end)

    it("rejects other values", function()
      assert.has_error(function() par.run({ "true" }, { halt = "later" }) end,
        "bad argument #2 to 'run' (option 'halt': expected one of never, soon, now, got 'later')")
    end)
  end)

  describe("on_done", function()
    it("is called on the caller's thread once per command, in completion order", function()
      local order = {}
      local res = par.run({ "sleep 1; echo a", "echo b", "sleep 0.5; echo c" }, {
        jobs = 3, on_done = function(r, i) order[#order + 1] = i .. r.stdout end })
      assert.are.same({ "2b\n", "3c\n", "1a\n" }, order)
      assert.are.equal(3, #res)
    end)

    it("keeps error values that are tables", function()
      local e = {}
      local ok, got = pcall(par.run, { "true" }, { on_done = function() error(e) end })
      assert.is_false(ok)
      assert.are.equal(e, got)
    end)
  end)

  describe("max_output", function()
    it("keeps the first bytes of 100 MB and drops the rest", function()
      local res = par.run({ "head -c 104857600 /dev/zero; echo tail >&2" }, { max_output = 1048576 })
      assert.is_true(res[1].ok)
      assert.is_true(res[1].truncated)
      assert.are.equal(1048576, #res[1].stdout)
      assert.are.equal("tail\n", res[1].stderr)
    end)

    it("keeps exactly the cap when one read passes it", function()
      local res = par.run({ "head -c 100000 /dev/zero" }, { max_output = 10 })
      assert.is_true(res[1].truncated)
      assert.are.equal(string.rep("\0", 10), res[1].stdout)
    end)

    it("does not mark output under the cap", function()
      local res = par.run({ "echo small" }, { max_output = 6 })
      assert.is_nil(res[1].truncated)
      assert.are.equal("small\n", res[1].stdout)
    end)
  end)

  describe("output", function()
    it("'group' writes each command's output in one block #child_lua", function()
      local out = H.lua([[
        local par = require "par"
        local cmds = {}
        for i = 1, 100 do
          cmds[i] = ("for k in 1 2 3; do echo %d-$k; sleep 0.00$k; done"):format(i)
        end
        local res = par.run(cmds, { jobs = 8, capture = false, output = "group" })
        io.write("stdout field: ", tostring(res[1].stdout), "\n")
      ]])
      local lines = {}
      for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
      assert.are.equal("stdout field: nil", table.remove(lines))
      assert.are.equal(300, #lines)
      local seen = {}
      for k = 1, 300, 3 do
        local id = lines[k]:match("^(%d+)%-1$")
        assert.is_truthy(id)
        assert.are.same({ id .. "-1", id .. "-2", id .. "-3" }, { lines[k], lines[k + 1], lines[k + 2] })
        seen[id] = true
      end
      local n = 0
      for _ in pairs(seen) do n = n + 1 end
      assert.are.equal(100, n)
    end)

    it("needs capture = false", function()
      assert.has_error(function() par.run({ "true" }, { output = "group", capture = true }) end,
        "bad argument #2 to 'run' (option 'output' needs capture = false)")
    end)
  end)

  describe("delay", function()
    it("spaces command starts", function()
      local res = par.run({ "true", "true", "true" }, { jobs = 3, delay = 0.2 })
      local starts = { res[1].started, res[2].started, res[3].started }
      table.sort(starts)
      assert.is_true(starts[2] - starts[1] >= 0.19)
      assert.is_true(starts[3] - starts[2] >= 0.19)
    end)
  end)

  describe("progress", function()
    it("draws done/total, running, failed, elapsed and ETA on stderr with 'always' #child_lua", function()
      local out = H.lua([[
        local res = require("par").run({ "echo a", "false", "echo c" }, { jobs = 1, progress = "always" })
        io.stdout:write("|", res[1].stdout, res[3].stdout)
      ]])
      assert.matches("\r\27%[Kpar: 3/3 done, 0 running, 1 failed, 0:00 elapsed, done\n|a\nc\n$", out)
    end)

    it("draws par.map's progress too, items done out of the total #child_lua", function()
      local out = H.lua([[
        local r = require("par").map(function(x) return x * 2 end, { 1, 2, 3 }, { procs = 2, progress = "always" })
        io.stdout:write("|", r[1] + r[2] + r[3])
      ]])
      assert.matches("\r\27%[Kpar: 3/3 items, 0 running, 0 failed, 0:00 elapsed, done\n|12$", out)
    end)

    it("rejects a bad progress mode", function()
      assert.has_error(function() par.map(print, { 1 }, { progress = "yes" }) end,
        "bad argument #3 to 'map' (option 'progress': boolean or 'always' expected, got 'yes')")
    end)

    it("draws nothing when stderr is not a terminal #child_lua", function()
      local out = H.lua([[ require("par").run({ "true" }, { progress = true }) io.write("end") ]])
      assert.are.equal("end", out)
    end)
  end)
end)

describe("joblog and resume", function()
  local function joblines(path)
    local out = {}
    for l in (H.readfile(path) or ""):gmatch("[^\n]+") do out[#out + 1] = l end
    return out
  end

  it("appends GNU parallel's format, one line per command", function()
    local log = tmp()
    os.remove(log)
    par.run({ "echo hi", { "sh", "-c", "exit 3" }, "kill -9 $$" }, { jobs = 1, joblog = log })
    local l = joblines(log)
    assert.are.equal("Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand", l[1])
    assert.matches("^1\t:\t%d+%.%d%d%d\t +%d+%.%d%d%d\t0\t3\t0\t0\techo hi$", l[2])
    assert.matches("^2\t:\t.*\t0\t0\t3\t0\tsh %-c 'exit 3'$", l[3])
    assert.matches("^3\t:\t.*\t0\t0\t0\t9\tkill %-9 %$%$$", l[4])
    par.run({ "true" }, { joblog = log })
    assert.are.equal(5, #joblines(log))     -- appended, header not repeated
  end)

  it("resume skips what the log holds; resume = 'failed' reruns failures", function()
    local log = tmp()
    os.remove(log)
    local cmds = { "true", "exit 1", "true" }
    par.run({ cmds[1], cmds[2] }, { joblog = log })
    local res, nfailed = par.run(cmds, { joblog = log, resume = true })
    assert.are.same({ "skipped", "skipped", "exit" }, statuses(res))
    assert.are.same({ true, false, true }, { res[1].ok, res[2].ok, res[3].ok })
    assert.are.equal(0, nfailed)    -- the failure is the log's, from the earlier call
    res = par.run(cmds, { joblog = log, resume = "failed" })
    assert.are.same({ "skipped", "exit", "skipped" }, statuses(res))
  end)

  it("ignores a corrupt last line and garbage, with a warning #child_lua", function()
    local log = tmp()
    H.writefile(log, "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n"
      .. "1\t:\t1700000000.000\t     0.001\t0\t0\t0\t0\ttrue\n"
      .. "garbage line\n"
      .. "2\t:\t1700000000.000\t     0.001\t0\t0\t0\t0\ttr")
    local out = H.lua(([[
      local res = require("par").run({ "true", "echo two", "echo three" }, { joblog = %q, resume = true })
      print(res[1].status, res[2].status, res[3].status)
    ]]):format(log))
    assert.are.equal("par: joblog " .. log .. ": line 3 ignored (not a joblog line)\n"
      .. "par: joblog " .. log .. ": line 4 ignored (no end of line)\n"
      .. "skipped\texit\texit\n", out)
  end)

  it("rejects resume without a joblog", function()
    assert.has_error(function() par.run({ "true" }, { resume = true }) end,
      "bad argument #2 to 'run' (option 'resume' needs option 'joblog')")
  end)

  it("writes a log that GNU parallel --resume accepts", function()
    local log, dir = tmp(), tmp()
    os.remove(log); os.remove(dir)
    assert(os.execute("mkdir " .. dir))
    finally(function() os.execute("rm -rf " .. dir) end)
    local cmds = {}
    for i = 1, 6 do cmds[i] = "touch " .. dir .. "/" .. i .. (i == 3 and "; exit 1" or "") end
    par.run({ cmds[1], cmds[2], cmds[3] }, { joblog = log })
    assert(os.execute("rm -f " .. dir .. "/*"))
    local list = tmp()
    H.writefile(list, table.concat(cmds, "\n") .. "\n")
    assert(os.execute("parallel --will-cite -j2 --resume --joblog " .. log .. " < " .. list))
    assert.are.same({ "4", "5", "6" }, H.lines("ls " .. dir))
    os.execute("rm -f " .. dir .. "/*")
    par.run(cmds, { joblog = log, resume = true })
    assert.are.same({}, H.lines("ls " .. dir))   -- par now skips all six, as parallel logged 4-6
  end)
end)

describe("interrupts", function()
  local script = [[
    local par = require "par"
    local f = io.open("/proc/self/stat"); io.write(f:read("n"), "\n"); io.flush(); f:close()
    local cmds = { "true", "true" }
    for i = 3, 6 do cmds[i] = "echo $$ >> %s; exec sleep 30" end
    local ok, err = pcall(par.run, cmds, { jobs = 2, joblog = %q, kill_after = 0.5 })
    io.write(tostring(ok), " ", tostring(err), "\n")
    error(err, 0)
  ]]

  local function interrupted_run(sig)
    local pids, log = tmp(), tmp()
    os.remove(pids); os.remove(log)
    local path = tmp()
    H.writefile(path, script:format(pids, log))
    local p = assert(io.popen(H.env .. "exec lua5.4 " .. path .. " 2>&1"))
    local pid = assert(tonumber(p:read("l")))
    local sleeps
    for _ = 1, 500 do                      -- until both running sleeps wrote their pid
      sleeps = {}
      for l in (H.readfile(pids) or ""):gmatch("%d+") do sleeps[#sleeps + 1] = tonumber(l) end
      if #sleeps == 2 then break end
      os.execute("sleep 0.01")
    end
    assert.are.equal(2, #sleeps)
    os.execute("kill -" .. sig .. " " .. pid)
    local out = p:read("a")
    local ok, how, code = p:close()
    return out, ok, how, code, sleeps, log
  end

  for _, sig in ipairs({ "INT", "TERM" }) do
    it("SIG" .. sig .. " stops the run, kills every command and raises 'interrupted' #child_lua", function()
      local out, ok, how, code, sleeps = interrupted_run(sig)
      assert.matches("\nfalse interrupted\n", "\n" .. out)
      assert.matches("\nlua5.4: interrupted\n", "\n" .. out)
      assert.is_nil(ok)
      assert.are.same({ "exit", 1 }, { how, code })
      for _, pid in ipairs(sleeps) do assert.is_false(H.alive(pid)) end
    end)
  end

  it("leaves a joblog of the finished commands that resume completes #child_lua", function()
    local _, _, _, _, _, log = interrupted_run("INT")
    local lines = {}
    for l in H.readfile(log):gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.are.equal(3, #lines)
    local seqs = { lines[2]:match("^%d+"), lines[3]:match("^%d+") }
    table.sort(seqs)
    assert.are.same({ "1", "2" }, seqs)
    local res = par.run({ "true", "true", "echo 3", "echo 4", "echo 5", "echo 6" }, { joblog = log, resume = true })
    assert.are.same({ "skipped", "skipped", "exit", "exit", "exit", "exit" }, statuses(res))
  end)
end)

-- The par command's job control, as GNU parallel's: a real `par` process.
describe("par command job control", function()
  local quote = par.quote

  -- Run par with the shell words 'args' in 'opts.cwd' (default a fresh
  -- folder), 'opts.input' on stdin; stdout, stderr, exit status, the folder.
  local function run(args, opts)
    opts = opts or {}
    local dir = opts.cwd or H.tmpdir(finally)
    local out, err, inp = dir .. "/.out", dir .. "/.err", dir .. "/.in"
    H.writefile(inp, opts.input or "")
    local cmd = ("cd %s && %s%s %s <%s >%s 2>%s"):format(quote(dir), H.PAR_ENV, H.PAR, args,
      quote(inp), quote(out), quote(err))
    local _, _, status = os.execute(cmd)
    local o, e = H.readfile(out), H.readfile(err)
    os.remove(out); os.remove(err); os.remove(inp)
    return o, e, status, dir
  end

  describe("--timeout N%", function()
    it("kills a job that runs longer than N% of the median runtime", function()
      local out, err, status = run("-j1 -k --timeout 200% 'sleep {}; echo {}' ::: 0.3 0.3 0.3 3 0.1")
      assert.are.same({ "0.3\n0.3\n0.3\n0.1\n", 1 }, { out, status })
      assert.matches("sleep 3; echo 3", err, 1, true)
    end)

    it("refuses a share that is not a number", function()
      local out, err, status = run("--timeout x% echo ::: a")
      assert.are.same({ "", 255 }, { out, status })
      assert.matches("^par: %-%-timeout: seconds or 'N%%' %(N > 0%) expected, got 'x%%'\n", err)
    end)
  end)

  describe("--retry-failed", function()
    local function fields(log)
      local t = {}
      for l in log:gmatch("[^\n]+") do
        local f = {}
        for w in l:gmatch("[^\t]+") do f[#f + 1] = w end
        t[#t + 1] = table.concat({ f[1], f[7], f[8], f[9] }, " ")
      end
      table.sort(t)
      return t
    end

    it("runs the joblog's failed commands again, not the command line's", function()
      local _, _, status, dir = run("-k --joblog log 'echo {}; exit {}' ::: 0 3 0 4")
      assert.are.equal(2, status)
      local out, err, status2 = run("-k --joblog log --retry-failed 'echo NEW {}' ::: x y", { cwd = dir })
      assert.are.same({ "3\n4\n", "", 2 }, { out, err, status2 })
      assert.are.same({ "1 0 0 echo 0; exit 0", "2 3 0 echo 3; exit 3", "2 3 0 echo 3; exit 3",
        "3 0 0 echo 0; exit 0", "4 4 0 echo 4; exit 4", "4 4 0 echo 4; exit 4",
        "Seq Exitval Signal Command" }, fields(H.readfile(dir .. "/log")))
    end)

    it("runs the command line when there is no joblog to read, or no --joblog", function()
      local out, _, status, dir = run("-k --joblog log --retry-failed 'echo NEW {}' ::: x y")
      assert.are.same({ "NEW x\nNEW y\n", 0 }, { out, status })
      assert.matches("echo NEW y\n$", H.readfile(dir .. "/log"))
      out, _, status = run("-k --retry-failed 'echo NEW {}' ::: x")
      assert.are.same({ "NEW x\n", 0 }, { out, status })
    end)
  end)

  describe("-j FILE", function()
    local sleeps = ("sleep 0.4; echo s\n"):rep(6)

    it("is read again as jobs end: rewritten, it changes how many run at once", function()
      local dir = H.tmpdir(finally)
      H.writefile(dir .. "/jf", "1\n")
      local start = require("par.core").monotime()
      local out, err, status = run("-j jf", { cwd = dir, input = "echo 3 > jf\n" .. sleeps })
      local took = require("par.core").monotime() - start
      assert.are.same({ ("s\n"):rep(6), "", 0 }, { out, err, status })
      assert.are.equal("3\n", H.readfile(dir .. "/jf"))
      assert.is_true(took < 1.8, took)      -- 6 x 0.4 s one at a time would be 2.4 s
    end)

    it("keeps its number while the file holds none, and runs one at a time from 1", function()
      local dir = H.tmpdir(finally)
      H.writefile(dir .. "/jf", "2\n")
      local start = require("par.core").monotime()
      local out, _, status = run("-j jf", { cwd = dir, input = ": > jf\n" .. sleeps })
      local took = require("par.core").monotime() - start
      assert.are.same({ ("s\n"):rep(6), 0 }, { out, status })
      assert.is_true(took >= 1.2 and took < 2.3, took)   -- two at a time: 3 x 0.4 s
    end)
  end)

  describe("--load and --memfree", function()
    -- par under `timeout -s INT`: stdout and the exit status
    local function limited(secs, args)
      local dir = H.tmpdir(finally)
      local cmd = ("cd %s && %stimeout -s INT %s %s %s </dev/null >out 2>/dev/null"):format(
        quote(dir), H.PAR_ENV, secs, H.PAR, args)
      local _, _, status = os.execute(cmd)
      return H.readfile(dir .. "/out"), status
    end

    local function so(args, opts)
      local out, _, status = run(args, opts)
      return out, status
    end

    it("start jobs while the limit is not reached", function()
      assert.are.same({ "a\nb\n", 0 }, { so("-k --load 10000 echo ::: a b") })
      assert.are.same({ "a\nb\n", 0 }, { so("-k --load +10000 echo ::: a b") })
      assert.are.same({ "a\nb\n", 0 }, { so("-k --load 0 echo ::: a b") })     -- 0: no limit
      assert.are.same({ "a\nb\n", 0 }, { so("-k --memfree 1k echo ::: a b") })
      assert.are.same({ "a\nb\n", 0 }, { so("-k --memfree 1 --load 500000% echo ::: a b") })
    end)

    it("--memfree waits while there is less memory free, as GNU parallel does", function()
      assert.are.same({ "", 124 }, { limited(1, "--memfree 1000T echo ::: a") })   -- timed out
    end)

    it("--load reads a file that holds the limit", function()
      local dir = H.tmpdir(finally)
      H.writefile(dir .. "/max", "10000\n")
      assert.are.same({ "a\n", 0 }, { so("--load max echo ::: a", { cwd = dir }) })
    end)

    it("refuse a limit they cannot read", function()
      local out, err, status = run("--load x echo ::: a")
      assert.are.same({ "", 255 }, { out, status })
      assert.matches("^par: %-%-load: a number, %+N, %-N, N%% or a file expected, got 'x'\n", err)
      out, err, status = run("--memfree -1 echo ::: a")
      assert.are.same({ "", 255 }, { out, status })
      assert.matches("^par: %-%-memfree: a size of 0 or more expected, got '%-1'\n", err)
    end)

    it("--memfree 0 is no limit, as GNU parallel's", function()
      assert.are.same({ "a\n", 0 }, { so("--memfree 0 echo ::: a") })
    end)
  end)

  describe("--progress and --eta", function()
    local HEAD = "\nComputers / CPU cores / Max jobs to run\n1:local / %d / 2\n\n"
      .. "Computer:jobs running/jobs completed/%%of started jobs/Average seconds to complete\n"

    it("--progress: GNU parallel's lines on stderr, stdout as it was", function()
      local out, err, status = run("-k -j2 --progress 'sleep 0.3; echo {}' ::: a b c")
      assert.are.same({ "a\nb\nc\n", 0 }, { out, status })
      assert.are.equal(HEAD:format(par.cpus()), err:sub(1, #HEAD:format(par.cpus())))
      assert.matches("\rlocal:2/0/100%%/0%.0s \r", err)
      assert.matches("\rlocal:0/3/100%%/%d+%.%ds \n$", err)
    end)

    it("--eta: the seconds left, the jobs left and the average time a job", function()
      local out, err, status = run("-k -j2 --eta 'sleep 0.3; echo {}' ::: a b c")
      assert.are.same({ "a\nb\nc\n", 0 }, { out, status })
      assert.matches("\rETA: 0s Left: 3 AVG: 0%.00s  local:2/0/100%%/0%.0s \r", err)
      assert.matches("\rETA: %d+s Left: 0 AVG: %d+%.%d%ds  local:0/3/100%%/%d+%.%ds \n$", err)
    end)
  end)

  describe("--joblog", function()
    local function seqs(s)
      local t = {}
      for l in s:gmatch("[^\n]+") do t[#t + 1] = l:match("^(%d+)\t") or l:match("^[^\t]+$") end
      return table.concat(t, " ")
    end

    it("- writes a job's line after its output, and with -k in input order", function()
      local out, _, status = run("-k --joblog - 'sleep 0.{}; echo {}' ::: 3 1 2")
      assert.are.equal(0, status)
      assert.are.equal("3 1 1 2 2 3", seqs(out:gsub("^Seq[^\n]*\n", "")))
    end)

    it("FILE holds the lines of -k in input order, of a run without -k as jobs end", function()
      local _, _, status, dir = run("-k -j3 --joblog log 'sleep 0.{}; echo {}' ::: 3 1 2")
      assert.are.equal(0, status)
      assert.are.equal("1 2 3", seqs(H.readfile(dir .. "/log"):gsub("^Seq[^\n]*\n", "")))
      _, _, status, dir = run("-j3 --joblog log 'sleep 0.{}; echo {}' ::: 3 1 2")
      assert.are.equal(0, status)
      assert.are.equal("2 3 1", seqs(H.readfile(dir .. "/log"):gsub("^Seq[^\n]*\n", "")))
    end)

    it("logs the jobs that ended before a halt, in input order with -k", function()
      local _, _, status, dir = run("-k -j3 --halt now,fail=1 --joblog log "
        .. "'sleep {}; exit {= _ = _ == \"0.4\" and 5 or 0 =}' ::: 3 0.1 0.4")
      assert.are.equal(5, status)
      assert.are.equal("2 3", seqs(H.readfile(dir .. "/log"):gsub("^Seq[^\n]*\n", "")))
    end)
  end)

  describe("--termseq", function()
    local trapper = "'for s in TERM INT; do trap \"echo $s\" $s; done; echo start;"
      .. " i=0; while [ $i -lt 100 ]; do sleep 0.02; i=$((i+1)); done; echo end'"

    it("is GNU parallel's TERM,200,TERM,100,TERM,50,KILL,25 by default", function()
      local out, _, status = run("--timeout 0.2 " .. trapper .. " ::: 1")
      assert.are.same({ "start\nTERM\nTERM\nTERM\n", 1 }, { out, status })
    end)

    it("sends the signals given, --term-seq too", function()
      for _, flag in ipairs({ "--termseq", "--term-seq" }) do
        local out, _, status = run("--timeout 0.2 " .. flag .. " INT,150,TERM,150,KILL,25 "
          .. trapper .. " ::: 1")
        assert.are.same({ "start\nINT\nTERM\n", 1 }, { out, status })
      end
    end)

    it("is what --halt now sends to the jobs still running", function()
      -- a job killed by a halt prints nothing: this one writes to a file
      local logger = "'for s in TERM INT; do trap \"echo $s >> log\" $s; done; echo start >> log;"
        .. " i=0; while [ $i -lt 100 ]; do sleep 0.02; i=$((i+1)); done'"
      local out, _, status, dir = run("-j2 --halt now,fail=1 --termseq INT,100,KILL,25 "
        .. "sh -c {} ::: " .. logger .. " 'sleep 0.3; exit 4'")
      assert.are.same({ "", 4 }, { out, status })
      assert.are.equal("start\nINT\n", H.readfile(dir .. "/log"))
    end)

    it("refuses a signal it does not know", function()
      local out, err, status = run("--termseq FOO,100 echo ::: a")
      assert.are.same({ "", "par: --termseq: 'FOO' is not a signal\n" }, { out, err:match("^[^\n]*\n") })
      assert.are.equal(255, status)
    end)
  end)
end)
