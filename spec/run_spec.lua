local par = require "par"
local H = require "spec.helpers"

describe("par.run", function()
  describe("results", function()
    it("gives every field of a finished command", function()
      local res, nfailed = par.run({ "printf out; printf err >&2; exit 0" }, 1)
      local r = res[1]
      assert.are.equal(0, nfailed)
      assert.are.equal("printf out; printf err >&2; exit 0", r.cmd)
      assert.is_true(r.ok)
      assert.are.equal("exit", r.status)
      assert.are.equal(0, r.code)
      assert.is_nil(r.signal)
      assert.is_nil(r.error)
      assert.are.equal("out", r.stdout)
      assert.are.equal("err", r.stderr)
      assert.are.equal("float", math.type(r.elapsed))
      assert.is_true(r.elapsed >= 0 and r.elapsed < 60)
      assert.are.equal("integer", math.type(r.pid))
      assert.is_true(r.pid > 1)
      assert.are.equal(1, r.attempts)
      assert.is_true(math.abs(r.started - os.time()) < 60)
    end)

    it("keeps input order whatever the completion order", function()
      local res = par.run({ "sleep 0.3; echo 1", "echo 2", "sleep 0.1; echo 3" }, 3)
      assert.are.same({ "1\n", "2\n", "3\n" }, { res[1].stdout, res[2].stdout, res[3].stdout })
    end)

    it("reports exit codes as data and counts failures", function()
      local res, nfailed = par.run({ "exit 3", "exit 0", "exit 255", "false" }, 2)
      assert.are.equal(3, nfailed)
      assert.are.same({ 3, 0, 255, 1 }, { res[1].code, res[2].code, res[3].code, res[4].code })
      assert.are.same({ false, true, false, false }, { res[1].ok, res[2].ok, res[3].ok, res[4].ok })
      for _, r in ipairs(res) do assert.are.equal("exit", r.status) end
    end)

    it("reports a command killed by a signal", function()
      local res, nfailed = par.run({ "kill -TERM $$", { "sh", "-c", "kill -9 $$" } }, 2)
      assert.are.equal(2, nfailed)
      assert.are.equal("signal", res[1].status)
      assert.are.equal(15, res[1].signal)
      assert.is_nil(res[1].code)
      assert.are.equal(9, res[2].signal)
      assert.is_false(res[2].ok)
    end)

    it("reports a command that cannot start", function()
      local res, nfailed = par.run({ { "nosuchprog-par", "x" }, { "/etc/passwd" } }, 2)
      assert.are.equal(2, nfailed)
      assert.are.equal("error", res[1].status)
      assert.is_false(res[1].ok)
      assert.are.equal("cannot run 'nosuchprog-par': No such file or directory", res[1].error)
      assert.are.equal("cannot run '/etc/passwd': Permission denied", res[2].error)
      assert.is_nil(res[1].code)
      assert.is_nil(res[1].pid)
    end)

    it("reports a shell command that is not found as exit 127", function()
      local res = par.run({ "nosuchprog-par" }, 1)
      assert.are.equal("exit", res[1].status)
      assert.are.equal(127, res[1].code)
      assert.matches("nosuchprog%-par", res[1].stderr)
    end)

    it("returns an empty list for no commands", function()
      local res, nfailed = par.run({}, 4)
      assert.are.same({}, res)
      assert.are.equal(0, nfailed)
    end)
  end)

  describe("command forms", function()
    it("runs argv tables directly, without a shell", function()
      local hostile = "$(touch /tmp/par-pwned); `id`; 'q' \"d\" \\ * ?"
      local res = par.run({ { "printf", "%s|%s", hostile, "" } }, 1)
      assert.are.equal(hostile .. "|", res[1].stdout)
      assert.is_nil(io.open("/tmp/par-pwned"))
    end)

    it("finds argv programs on PATH", function()
      local res = par.run({ { "echo", "found" } }, 1)
      assert.are.equal("found\n", res[1].stdout)
    end)

    it("runs strings with /bin/sh -c, and opts.shell overrides it", function()
      local res = par.run({ "echo $0" }, 1)
      assert.are.equal("/bin/sh\n", res[1].stdout)
      res = par.run({ "echo $0 $1" }, { shell = { "sh", "-c", "echo custom", "me" } })
      assert.are.equal("custom\n", res[1].stdout)
      res = par.run({ "echo ${BASH_VERSION:+bash}" }, { shell = "bash" })
      assert.are.equal("bash\n", res[1].stdout)
    end)
  end)

  describe("at scale", function()
    it("runs 1,000 commands on 8 threads", function()
      local cmds = {}
      for i = 1, 1000 do cmds[i] = i % 2 == 0 and { "echo", tostring(i) } or "echo " .. i end
      local seen = 0
      local res, nfailed = par.run(cmds, { jobs = 8, on_done = function() seen = seen + 1 end })
      assert.are.equal(0, nfailed)
      assert.are.equal(1000, #res)
      assert.are.equal(1000, seen)
      for i = 1, 1000 do assert.are.equal(i .. "\n", res[i].stdout) end
    end)

    it("drains 10 MB on both stdout and stderr of one command", function()
      local res = par.run({ "head -c 10485760 /dev/zero; head -c 10485760 /dev/zero >&2; "
        .. "head -c 10485760 /dev/zero" }, 1)
      assert.is_true(res[1].ok)
      assert.are.equal(20971520, #res[1].stdout)
      assert.are.equal(10485760, #res[1].stderr)
      assert.are.equal(string.rep("\0", 4096), res[1].stdout:sub(-4096))
    end)

    it("keeps binary output intact", function()
      local res = par.run({ { "printf", "a\\000b\\377\\n" } }, 1)
      assert.are.equal("a\0b\255\n", res[1].stdout)
    end)
  end)

  describe("hygiene", function()
    it("passes a command only stdin, stdout and stderr", function()
      local held = { assert(io.open("/etc/passwd")), assert(io.open(os.tmpname(), "w")) }
      local res = par.run({ "ls /proc/$$/fd", { "sh", "-c", "ls /proc/$$/fd" } }, 2)
      for _, f in ipairs(held) do f:close() end
      assert.are.equal("0\n1\n2\n", res[1].stdout)
      assert.are.equal("0\n1\n2\n", res[2].stdout)
    end)

    it("leaves no zombie and no descriptor behind", function()
      collectgarbage(); collectgarbage()
      local before = H.fdcount()
      for _ = 1, 3 do par.run({ "true", "false", "exit 7", { "nosuchprog-par" }, "sleep 0.05" }, 3) end
      collectgarbage(); collectgarbage()
      assert.are.same({}, H.children())
      assert.are.equal(before, H.fdcount())
    end)

    it("starts each command in its own process group", function()
      -- field 5 of /proc/PID/stat is the process group (ps hangs under ASan)
      local res = par.run({ "cut -d' ' -f5 /proc/$$/stat; echo $$" }, 1)
      local pgid, pid = res[1].stdout:match("(%d+)%s+(%d+)")
      assert.is_truthy(pid)
      assert.are.equal(pid, pgid)
    end)

    it("gives commands the default signal mask and dispositions #child_lua", function()
      -- the host ignores INT, TERM and PIPE (as under nohup or a shell's &)
      local out = H.lua([[
        local res = require("par").run({ "grep -E '^Sig(Blk|Ign)' /proc/self/status" }, 1)
        io.write(res[1].stdout)
      ]], "trap '' INT TERM PIPE; ")
      local blk, ign = out:match("SigBlk:%s*(%x+)%s+SigIgn:%s*(%x+)")
      assert.are.equal(0, tonumber(blk, 16))
      -- glibc keeps its two internal signals (32, 33) as it found them
      assert.are.equal(0, tonumber(ign, 16) & 0x7fffffff)
    end)

    it("kills and reaps a running child when on_done raises", function()
      local pidfile = os.tmpname()
      finally(function() os.remove(pidfile) end)
      local cmds = { "echo $$ > " .. pidfile .. "; exec sleep 30", "sleep 0.2" }
      assert.has_error(function()
        par.run(cmds, { jobs = 2, on_done = function() error("boom", 0) end })
      end, "boom")
      local pid = assert(tonumber(H.readfile(pidfile)))
      assert.is_false(H.alive(pid))
      assert.are.same({}, H.children())
    end)
  end)

  describe("stdin, env and cwd", function()
    it("gives commands /dev/null as stdin by default", function()
      local res = par.run({ "cat; echo end" }, 1)
      assert.are.equal("end\n", res[1].stdout)
    end)

    it("feeds opts.stdin to every command", function()
      local res = par.run({ "cat", { "wc", "-c" } }, { stdin = "hello\0world\n" })
      assert.are.equal("hello\0world\n", res[1].stdout)
      assert.are.equal("12", res[2].stdout:match("%d+"))
    end)

    it("survives a command that does not read 10 MB of stdin", function()
      local res = par.run({ "exit 0", "head -c 10 >/dev/null" }, { stdin = string.rep("x", 10 * 2 ^ 20) })
      assert.is_true(res[1].ok)
      assert.is_true(res[2].ok)
    end)

    it("adds, overrides and removes environment variables", function()
      local res = par.run({ "echo \"$PAR_A|${HOME-unset}|$PATH\"" },
        { env = { PAR_A = "x y", HOME = false, PATH = "/usr/bin:/bin" } })
      assert.are.equal("x y|unset|/usr/bin:/bin\n", res[1].stdout)
      res = par.run({ "echo \"${PAR_A-unset}\"" }, 1)
      assert.are.equal("unset\n", res[1].stdout)
    end)

    it("runs commands in opts.cwd", function()
      local res = par.run({ "pwd", { "pwd" } }, { cwd = "/usr" })
      assert.are.equal("/usr\n", res[1].stdout)
      assert.are.equal("/usr\n", res[2].stdout)
    end)

    it("reports a missing cwd as an error naming the directory", function()
      local res = par.run({ "true" }, { cwd = "/nonexistent-par" })
      assert.are.equal("error", res[1].status)
      assert.are.equal("cannot change to directory '/nonexistent-par': No such file or directory",
        res[1].error)
    end)

    it("shares the caller's stdout and stderr with capture = false #child_lua", function()
      local out = H.lua([[
        local par = require "par"
        io.stdout:write("before\n"); io.stdout:flush()
        local res = par.run({ "echo inherited; echo oops >&2" }, { capture = false })
        print(res[1].stdout == nil, res[1].stderr == nil, res[1].ok)
      ]])
      assert.are.equal("before\ninherited\noops\ntrue\ttrue\ttrue\n", out)
    end)
  end)

  describe("bad input", function()
    local function err(msg, ...)
      local args = table.pack(...)
      assert.has_error(function() par.run(table.unpack(args, 1, args.n)) end, msg)
    end

    it("rejects a missing or non-sequence command list", function()
      err("bad argument #1 to 'run' (table or function expected, got nil)", nil)
      err("bad argument #1 to 'run' (table or function expected, got string)", "echo", 2)
      err("bad argument #1 to 'run' (sequence expected (keys 1..n only))", { "a", x = "b" })
      err("bad argument #1 to 'run' (sequence expected (keys 1..n only))", { [1] = "a", [3] = "b" })
    end)

    it("rejects bad commands, naming their index", function()
      err("bad argument #1 to 'run' (command #2 is an empty string)", { "true", "" })
      err("bad argument #1 to 'run' (command #1 must be a non-empty sequence of strings)", { {} })
      err("bad argument #1 to 'run' (command #1: element 2 is a number, not a string)", { { "echo", 1 } })
      err("bad argument #1 to 'run' (command #1 contains a NUL byte)", { "echo a\0b" })
      err("bad argument #1 to 'run' (command #1: element 2 contains a NUL byte)", { { "echo", "a\0" } })
      err("bad argument #1 to 'run' (command #3 must be a string or an argv table)", { "a", "b", 3 })
    end)

    it("rejects bad job counts", function()
      err("bad argument #2 to 'run' (number of jobs: must be >= 1, got 0)", { "true" }, 0)
      err("bad argument #2 to 'run' (number of jobs: must be >= 1, got -1)", { "true" }, -1)
      err("bad argument #2 to 'run' (number of jobs: number has no integer representation)", { "true" }, 2.5)
      err("bad argument #2 to 'run' (number or table expected, got string)", { "true" }, "x")
      err("bad argument #2 to 'run' (option 'jobs': must be >= 1, got 0)", { "true" }, { jobs = 0 })
    end)

    it("rejects unknown options and options of the wrong type", function()
      err("bad argument #2 to 'run' (unknown option 'job')", { "true" }, { job = 2 })
      err("bad argument #3 to 'run' (unknown option 'foo')", { "true" }, 2, { foo = true })
      err("bad argument #2 to 'run' (option 'capture': boolean expected, got string)", { "true" },
        { capture = "yes" })
      err("bad argument #2 to 'run' (option 'cwd': string expected, got number)", { "true" }, { cwd = 1 })
      err("bad argument #2 to 'run' (option 'env': bad variable name 'A=B')", { "true" },
        { env = { ["A=B"] = "x" } })
      err("bad argument #2 to 'run' (option 'env': variable 'A' must be a string without NUL bytes, or false)",
        { "true" }, { env = { A = 1 } })
      err("bad argument #2 to 'run' (option 'stdin': string expected, got table)", { "true" }, { stdin = {} })
      err("bad argument #2 to 'run' (option 'timeout': must be a finite number > 0, got 0)", { "true" },
        { timeout = 0 })
    end)

    it("starts nothing when an argument is bad", function()
      local marker = os.tmpname()
      os.remove(marker)
      assert.has_error(function() par.run({ "touch " .. marker, "" }, 2) end)
      assert.is_nil(io.open(marker))
    end)
  end)
end)

describe("par.quote", function()
  it("round-trips hostile strings through sh -c", function()
    local hostile = { "", "plain", "with space", "it's", "\"dq\"", "$(id)", "`id`", "a\nb", "*", "~",
      "-n", "\\", "!x", "a'b'c", "'", "''", "\t", "semi;colon", "pipe|x", "&", "é ü", "\255\1" }
    local cmds = {}
    for i, s in ipairs(hostile) do cmds[i] = "printf %s " .. par.quote(s) end
    local res = par.run(cmds, 4)
    for i, s in ipairs(hostile) do assert.are.equal(s, res[i].stdout) end
  end)

  it("leaves safe words alone and rejects what a shell cannot take", function()
    assert.are.equal("/usr/bin/x-y_z.1", par.quote("/usr/bin/x-y_z.1"))
    assert.are.equal("''", par.quote(""))
    assert.are.equal("42", par.quote(42))
    assert.has_error(function() par.quote("a\0b") end,
      "bad argument #1 to 'quote' (string contains a NUL byte)")
    assert.has_error(function() par.quote(nil) end, "bad argument #1 to 'quote' (string expected, got nil)")
  end)
end)

describe("par.ranges", function()
  it("covers first..last in blocks, the last one short", function()
    assert.are.same({ { 1, 3 }, { 4, 6 }, { 7, 9 }, { 10, 10 } }, par.ranges(1, 10, 3))
    assert.are.same({ { 1, 5 }, { 6, 10 } }, par.ranges(1, 10, 5))
    assert.are.same({ { 1, 10 } }, par.ranges(1, 10, 100))
    assert.are.same({ { 5, 5 } }, par.ranges(5, 5, 1))
    assert.are.same({ { -3, -2 }, { -1, 0 } }, par.ranges(-3, 0, 2))
    assert.are.same({}, par.ranges(2, 1, 1))
  end)

  it("handles the ends of the integer range", function()
    local max = math.maxinteger
    assert.are.same({ { max - 2, max - 1 }, { max, max } }, par.ranges(max - 2, max, 2))
    assert.are.same({ { max - 1, max } }, par.ranges(max - 1, max, max))
    assert.has_error(function() par.ranges(math.mininteger, max, 1) end,
      "bad argument #2 to 'ranges' (range too large)")
  end)

  it("rejects bad arguments", function()
    assert.has_error(function() par.ranges(1, 10, 0) end,
      "bad argument #3 to 'ranges' (block size must be >= 1, got 0)")
    assert.has_error(function() par.ranges(1.5, 10, 1) end,
      "bad argument #1 to 'ranges' (number has no integer representation)")
    assert.has_error(function() par.ranges(1, nil, 1) end, "bad argument #2 to 'ranges' (integer expected, got nil)")
  end)
end)

describe("par.cpus and par.VERSION", function()
  it("counts the CPUs this process may use #child_lua", function()
    local n = par.cpus()
    assert.are.equal("integer", math.type(n))
    assert.is_true(n >= 1)
    local out = H.lines("taskset -c 0 env " .. H.env .. "lua5.4 -e 'print(require(\"par\").cpus())'")
    assert.are.same({ "1" }, out)
  end)

  it("has a version", function()
    assert.matches("^%d+%.%d+%.%d+$", par.VERSION)
  end)
end)

describe("par.run: a command's own stdin, its job number and its job slot", function()
  local big = string.rep("0123456789abcde\n", 50 * 2 ^ 20 / 16)   -- 50 MiB

  it("feeds an argv command's stdin field to that command alone", function()
    local res = par.run({ { "wc", "-l", stdin = "a\nb\n" }, "cat", { "cat", stdin = "" } },
      { stdin = "shared\n" })
    assert.are.equal("2", res[1].stdout:match("%d+"))
    assert.are.equal("shared\n", res[2].stdout)
    assert.are.equal("", res[3].stdout)
  end)

  it("streams 50 MiB of one command's stdin while reading its output", function()
    local res = par.run({ { "cat", stdin = big }, { "wc", "-c", stdin = big } }, 2)
    assert.is_true(res[1].stdout == big)
    assert.are.equal(tostring(#big), res[2].stdout:match("%d+"))
  end)

  it("survives commands that do not read their stdin", function()
    local res, nfailed = par.run({ { "true", stdin = big }, { "head", "-c", "3", stdin = big },
      { "sh", "-c", "sleep 0.2", stdin = big } }, 3)
    assert.are.equal(0, nfailed)
    assert.are.equal("012", res[2].stdout)
  end)

  it("feeds the same stdin again to each retry", function()
    local log = H.tmpfile(finally)
    local res = par.run({ { "sh", "-c", "cat >> " .. H.quote(log) .. "; [ $(wc -l < " .. H.quote(log)
      .. ") -ge 3 ]", stdin = "x\n" } }, { retries = 5 })
    assert.is_true(res[1].ok)
    assert.are.equal(3, res[1].attempts)
    assert.are.equal("x\nx\nx\n", H.readfile(log))
  end)

  it("rejects a stdin that is not a string", function()
    assert.has_error(function() par.run({ { "cat", stdin = 5 } }) end,
      "bad argument #1 to 'run' (command #1: stdin must be a string, got number)")
    assert.has_error(function() par.run({ { "cat", stdin = "x", other = 1 } }) end,
      "bad argument #1 to 'run' (command #1 must be a non-empty sequence of strings)")
  end)

  it("sets PARALLEL_SEQ and PARALLEL_JOBSLOT over inherited ones", function()
    local cmds = {}
    for i = 1, 5 do cmds[i] = "echo $PARALLEL_SEQ $PARALLEL_JOBSLOT" end
    local res = par.run(cmds, { jobs = 1, env = { PARALLEL_SEQ = "99", PARALLEL_JOBSLOT = "99" } })
    for i = 1, 5 do assert.are.equal(i .. " 1\n", res[i].stdout) end
    res = par.run({ { "sh", "-c", "echo $PARALLEL_SEQ $PARALLEL_JOBSLOT" } }, 1)
    assert.are.equal("1 1\n", res[1].stdout)
  end)

  it("gives running commands distinct slots, reused as they end", function()
    local cmds = {}
    for i = 1, 12 do cmds[i] = "echo $PARALLEL_JOBSLOT; sleep 0." .. (i % 3 + 1) end
    local res = par.run(cmds, 3)
    local used = {}
    for i, a in ipairs(res) do
      local slot = tonumber(a.stdout)
      assert.is_true(slot >= 1 and slot <= 3, a.stdout)
      used[slot] = true
      for k = 1, i - 1 do
        local b = res[k]
        if tonumber(b.stdout) == slot then    -- one slot: one ran after the other
          assert.is_true(a.started >= b.started + b.elapsed - 0.01 or b.started >= a.started + a.elapsed - 0.01)
        end
      end
    end
    assert.is_true(used[1] and used[2] and used[3])
  end)

  it("replaces opts.slotmark in each command by its slot", function()
    local res = par.run({ { "echo", "s=@S@,@S@" }, "echo x@S@y" }, { jobs = 1, slotmark = "@S@" })
    assert.are.equal("s=1,1\n", res[1].stdout)
    assert.are.equal("x1y\n", res[2].stdout)
    res = par.run({ "echo $PARALLEL_JOBSLOT=@S@; sleep 0.2", "echo $PARALLEL_JOBSLOT=@S@; sleep 0.2" },
      { jobs = 2, slotmark = "@S@" })
    for _, r in ipairs(res) do assert.matches("^([12])=%1\n$", r.stdout) end
    assert.are_not.equal(res[1].stdout, res[2].stdout)
    assert.has_error(function() par.run({ "true" }, { slotmark = "" }) end,
      "bad argument #2 to 'run' (option 'slotmark': non-empty string expected)")
  end)

  it("gives the command as it ran, slot in, in the result and the joblog", function()
    local log = os.tmpname()
    finally(function() os.remove(log) end)
    local res = par.run({ { "echo", "s=@S@" }, "echo @S@%" }, { jobs = 1, slotmark = "@S@", joblog = log })
    assert.are.same({ "echo", "s=1" }, res[1].cmd)
    assert.are.equal("echo 1%", res[2].cmd)
    local cmds = {}
    for line in io.lines(log) do cmds[#cmds + 1] = line:match("[^\t]*$") end
    assert.are.same({ "Command", "echo s=1", "echo 1%" }, cmds)
  end)

  it("calls on_start with each command's slot, before its output and its result", function()
    local events = {}
    local cmds = {}
    for i = 1, 6 do cmds[i] = "echo $PARALLEL_JOBSLOT; sleep 0.0" .. i end
    for i, res in par.each(cmds, 2, {
      on_start = function(i, slot) events[#events + 1] = { i, "start", slot } end,
      on_output = function(i, _, chunk) events[#events + 1] = { i, "out", tonumber(chunk) } end,
    }) do
      events[#events + 1] = { i, "done", res.ok }
    end
    local seen = {}
    for _, e in ipairs(events) do
      local i, what, v = e[1], e[2], e[3]
      if what == "start" then
        assert.is_nil(seen[i], "started twice: " .. i)
        assert.is_true(v == 1 or v == 2)
        seen[i] = v
      elseif what == "out" then
        assert.are.equal(seen[i], v)          -- $PARALLEL_JOBSLOT: the slot on_start gave
      else
        assert.is_not_nil(seen[i], "done before its start: " .. i)
        assert.is_true(v)
      end
    end
    assert.are.equal(18, #events)
    assert.has_error(function() par.run({ "true" }, { on_start = 1 }) end,
      "bad argument #2 to 'run' (option 'on_start': function expected, got number)")
  end)
end)
