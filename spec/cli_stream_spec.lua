-- The par command streams: jobs start as their input lines arrive, output
-- is printed as each job ends (or as it comes, with --line-buffer and -u),
-- output of any size arrives whole, and memory stays flat over a long
-- input.  Real processes and pipes; each scenario is a shell script run
-- in a fresh folder, with ./par the command under test.  Where a timing
-- matters, the script itself watches par's output and says what it saw,
-- with bounds loose enough for a loaded machine.
local H = require "spec.helpers"
local quote = H.quote

-- A fresh folder holding ./par: bin/par of this checkout, with the default
-- dispositions of the signals a spec sends, killed after 600 s whatever
-- happens.  Its pid is timeout's: signal par itself with $(pgrep -P PID).
-- pgrep runs without LD_PRELOAD: under `make asan` a preloaded runtime hangs it.
local function folder()
  local dir = H.tmpdir(finally)
  H.writefile(dir .. "/par", "#!/bin/sh\nexec timeout -s KILL 600 env --default-signal=INT,QUIT,HUP,TERM,PIPE "
    .. H.PAR_ENV .. "lua5.4 " .. quote(H.ROOT .. "/bin/par") .. ' "$@"\n')
  os.execute("chmod +x " .. quote(dir .. "/par"))
  return dir
end

-- Run 'script' with sh in 'dir'; returns its stdout and exit status.
local function sh(dir, script)
  local p = assert(io.popen("cd " .. quote(dir) .. " && sh -c " .. quote(script)))
  local out = p:read("a")
  local _, _, status = p:close()
  return out, status
end

-- A shell loop waiting up to 'secs' for 'cond' (a shell test), then going on.
local function until_(cond, secs)
  return ("i=0; until { %s; } 2>/dev/null; do i=$((i+1)); [ $i -gt %d ] && break; sleep 0.05; done; "):format(
    cond, secs * 20)
end

local function num(dir, name)
  return tonumber(H.readfile(dir .. "/" .. name))
end

-- A unique marker for the commands of one spec, for pgrep.
local function marker()
  return ("37.%d%04d"):format(H.pid() % 1000, math.random(1000, 9999))
end

describe("the par command streams", function()
  it("starts the first job as soon as its line is complete", function()
    local dir = folder()
    local _, status = sh(dir, "(date +%s.%N > wrote; echo 1; sleep 3; echo 2) "
      .. "| ./par -j2 'date +%s.%N > started.{}'")
    assert.are.equal(0, status)
    local lag = num(dir, "started.1") - num(dir, "wrote")
    assert.is_true(lag < 1, "the first job started " .. lag .. " s after its line")
  end)

  it("prints a finished job's output while its input still waits for the next line", function()
    local dir = folder()
    local out, status = sh(dir, "(echo 'echo a'; " .. until_("grep -q '^a$' out", 5)
      .. "if grep -q '^a$' out; then echo 'echo saw-a'; else echo 'echo missed-a'; fi) | ./par > out; cat out")
    assert.are.same({ "a\nsaw-a\n", 0 }, { out, status })
  end)

  it("with -k prints a slow first job first, then the rest in order, the fast ones not held back from starting",
    function()
    local dir = folder()
    local out, status = sh(dir, "(echo 'sleep 1; date +%s.%N > end.1; echo one'; "
      .. "for n in 2 3 4; do echo \"date +%s.%N > start.$n; echo $n\"; done; "
      .. until_("[ $(wc -l < out) -ge 4 ]", 5)
      .. "echo \"echo lines-$(wc -l < out)\") | ./par -k -j2 > out; cat out")
    assert.are.same({ "one\n2\n3\n4\nlines-4\n", 0 }, { out, status })
    assert.is_true(num(dir, "start.4") < num(dir, "end.1"), "job 4 waited for job 1 to end")
  end)

  it("with --line-buffer never mixes two jobs' output within a line", function()
    local dir = folder()
    -- each line in two writes, 300 of them per job, both jobs at once
    local out, status = sh(dir, "./par -j2 --line-buffer "
      .. "'for i in $(seq 300); do printf \"{}-%04d-\" $i; printf \"%0700d\\n\" 0; done' ::: a b")
    assert.are.equal(0, status)
    local n, seen, mixed = 0, { a = 0, b = 0 }, {}
    for line in out:gmatch("([^\n]*)\n") do
      n = n + 1
      local job, k = line:match("^([ab])%-(%d%d%d%d)%-" .. ("0"):rep(700) .. "$")
      if not job then mixed[#mixed + 1] = line:sub(1, 40)
      else
        seen[job] = seen[job] + 1
        assert.are.equal(seen[job], tonumber(k))
      end
    end
    assert.are.same({}, mixed)
    assert.are.same({ 600, 300, 300 }, { n, seen.a, seen.b })
    assert.are.equal(#out, 600 * 708)
  end)

  it("with -u passes output through as it comes, a partial line too", function()
    local dir = folder()
    local out, status = sh(dir, "./par -u ::: 'printf part; sleep 3; echo ial' > out & "
      .. until_("[ -s out ]", 2) .. "echo \"early: $(cat out)\"; wait; cat out")
    assert.are.same({ "early: part\npartial\n", 0 }, { out, status })
  end)

  it("prints a 70 MB job output whole, and a killed job's partial output", function()
    local dir = folder()
    local out, status = sh(dir, "head -c 70000000 /dev/zero | tr '\\0' x > want; echo >> want; "
      .. "./par ::: 'cat want' > got; echo $?; cmp want got && echo same; "
      .. "./par --timeout 1 ::: 'head -c 100000 /dev/zero | tr \"\\0\" y; sleep 30' 2>err | wc -c; cat err")
    assert.are.equal(0, status)
    assert.are.equal("0\nsame\n100000\n"
      .. "par: job 1 failed (timeout): head -c 100000 /dev/zero | tr \"\\0\" y; sleep 30\n", out)
  end)

  it("keeps memory flat over 200,000 input lines and a 200,000-argument -a FILE #load", function()
    local dir = folder()
    local out, status = sh(dir, "yes true | head -n 200000 > cmds; yes x | head -n 200000 > args; "
      .. "/usr/bin/time -f %M -o rss1 ./par -j2 < cmds; echo $?; "
      .. "/usr/bin/time -f %M -o rss2 ./par -j2 -a args true; echo $?")
    assert.are.same({ "0\n0\n", 0 }, { out, status })
    for _, f in ipairs({ "rss1", "rss2" }) do
      local kb = tonumber(H.readfile(dir .. "/" .. f):match("(%d+)%s*$"))
      assert.is_true(kb < 30 * 1024, f .. ": peak RSS " .. kb .. " KB")
    end
  end)

  it("runs an endless input (tail -f) until SIGINT, then leaves nothing behind, status 130", function()
    local dir = folder()
    local m = marker()
    -- a background job's stdin is /dev/null unless redirected: hence the FIFO
    local out, status = sh(dir, "printf '1\\n2\\n3\\n' > in; mkfifo fifo; "
      .. "tail -f in > fifo & tailpid=$!; ./par -j2 'sleep " .. m .. "{}' < fifo 2> err & parpid=$!; "
      .. until_("[ $(env -u LD_PRELOAD pgrep -fc '^sleep " .. m .. "') -ge 2 ]", 10)
      .. "echo \"running $(env -u LD_PRELOAD pgrep -fc '^sleep " .. m .. "')\"; "
      .. "kill -INT $(env -u LD_PRELOAD pgrep -P $parpid); wait $parpid; echo $?; kill $tailpid; cat err")
    assert.are.same({ "running 2\n130\npar: interrupted\n", 0 }, { out, status })
    assert.are.same({}, H.survivors("sleep " .. m))
  end)

  it("--dry-run prints each command as its line arrives, running nothing", function()
    local dir = folder()
    local out, status = sh(dir, "(echo 'touch x'; " .. until_("grep -q x out", 5)
      .. "if grep -q x out; then echo 'touch saw'; else echo 'touch missed'; fi) | ./par --dry-run > out; cat out; ls")
    assert.are.same({ "touch x\ntouch saw\nout\npar\n", 0 }, { out, status })
  end)

  it("resumes a streamed run killed midway: only the jobs its joblog lacks run, by Seq", function()
    local dir = folder()
    local _, status = sh(dir, "seq 10 | sed 's/.*/echo & >> ran; sleep 0.2/' > cmds; mkfifo fifo; "
      .. "(cat cmds; exec sleep 30) > fifo & feeder=$!; ./par -j1 --joblog log < fifo & parpid=$!; "
      .. until_("[ $(cat log 2>/dev/null | wc -l) -ge 4 ]", 10)
      .. "kill -9 $(env -u LD_PRELOAD pgrep -P $parpid); kill $feeder; wait; sleep 0.5")
    assert.are.equal(0, status)
    local first = {}
    for seq in H.readfile(dir .. "/log"):gmatch("\n(%d+)\t") do first[tonumber(seq)] = true end
    local nfirst = 0
    for _ in pairs(first) do nfirst = nfirst + 1 end
    assert.is_true(nfirst >= 3 and nfirst < 10, "jobs logged before the kill: " .. nfirst)
    local out
    out, status = sh(dir, "./par -j1 --joblog log --resume < cmds; echo $?")
    assert.are.same({ "0\n", 0 }, { out, status })
    local again = {}
    for seq in H.readfile(dir .. "/log"):gmatch("\n(%d+)\t") do
      seq = tonumber(seq)
      if first[seq] then first[seq] = nil else again[#again + 1] = seq end
    end
    local want = {}
    for seq = 1, 10 do
      if not H.readfile(dir .. "/log"):find("\n" .. seq .. "\t", 1, true) then want[#want + 1] = seq end
    end
    table.sort(again)
    assert.are.same({}, want)                 -- every Seq is in the log
    assert.are.equal(10 - nfirst, #again)     -- the second run ran only those the first lacked
    local ran = {}
    for n in H.readfile(dir .. "/ran"):gmatch("%d+") do ran[tonumber(n)] = (ran[tonumber(n)] or 0) + 1 end
    for seq = 1, 10 do assert.is_true((ran[seq] or 0) >= 1, "job " .. seq .. " never ran") end
  end)
end)
