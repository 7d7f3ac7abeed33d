-- The `par` command, run as a real subprocess: `lua5.4 bin/par ...`, with
-- stdout, stderr, the exit status and the files it leaves checked exactly.
local H = require "spec.helpers"
local quote = require("par").quote

local ROOT, ENV, PAR, HINT = H.ROOT, H.PAR_ENV, H.PAR, H.HINT

local function tmpdir() return H.tmpdir(finally) end

-- Words to shell text: a table is quoted word by word, a string used as is.
local function words(args)
  if type(args) == "string" then return args end
  local t = {}
  for i, a in ipairs(args) do t[i] = quote(a) end
  return table.concat(t, " ")
end

--- Run par with 'args' (in 'opts.cwd', default a fresh temporary folder),
-- feeding 'opts.input' (default: nothing) on stdin.  Returns stdout,
-- stderr, exit status and the folder.
local function run(args, opts)
  opts = opts or {}
  local dir = opts.cwd or tmpdir()
  local out, err, inp = dir .. "/.out", dir .. "/.err", dir .. "/.in"
  H.writefile(inp, opts.input or "")
  local cmd = ("cd %s && %s%s%s %s <%s >%s 2>%s"):format(quote(dir), opts.env or "",
    opts.noenv and "" or ENV, opts.par or PAR, words(args), quote(inp), quote(out), quote(err))
  local _, _, status = os.execute(cmd)
  local o, e = H.readfile(out), H.readfile(err)
  os.remove(out); os.remove(err); os.remove(inp)
  return o, e, status, dir
end

-- run's stdout, stderr and exit status only, for assert.are.same({ ... }).
local function par(args, opts)
  local o, e, status = run(args, opts)
  return o, e, status
end

local function sorted_lines(s)
  local t = {}
  for l in s:gmatch("[^\n]+") do t[#t + 1] = l end
  table.sort(t)
  return t
end

local function count_lines(s)
  local n = 0
  for _ in s:gmatch("\n") do n = n + 1 end
  return n
end

-- A usage error: nothing on stdout, one line naming the problem, the hint, 255.
local function assert_usage(msg, out, err, status)
  assert.are.equal("", out)
  assert.are.equal("par: " .. msg .. "\n" .. HINT, err)
  assert.are.equal(255, status)
end

describe("par command", function()
  describe("--help and --version", function()
    it("--help lists every option, each with its default", function()
      local out, err, status = par("--help")
      assert.are.equal("", err)
      assert.are.equal(0, status)
      assert.truthy(out:find("^usage: par %[options%]"))
      local opts = {
        "-a, --arg-file FILE", "-0, --null", "-j, --jobs N", "--timeout S", "--retries N",
        "--halt WHEN", "--joblog FILE", "--resume", "--resume-failed", "--bar",
        "-k, --keep-order", "--tag", "--dry-run", "--delay S", "--format FMT", "-t, --verbose",
        "-N N", "-n, --max-args N", "-m, --multi", "-X, --context", "-d, --delimiter D", "-C, --colsep RE",
        "-s, --max-chars N", "-I, --replace STR", "--trim n|l|r|lr",
      }
      local entries = "\n" .. table.concat(H.help_entries(), "\n") .. "\n"
      for _, o in ipairs(opts) do
        local line = entries:match("\n  [ -]*" .. o:gsub("%p", "%%%0") .. " [^\n]*")
        assert(line, "no line for " .. o)
        assert.truthy(line:find("%[[^%]]+%]$"), "no default for " .. o)
      end
      assert.truthy(out:find("\n  %-V, %-%-version "))
      assert.truthy(out:find("\n  %-h, %-%-help "))
      assert.are.same({ out, "", 0 }, { par("-h") })
    end)

    it("--version prints par.VERSION", function()
      assert.are.same({ "par " .. require("par").VERSION .. "\n", "", 0 }, { par("--version") })
    end)
  end)

  describe("commands from stdin or -a FILE", function()
    it("runs one shell command per line; blank lines and # comments run as the no-ops they are", function()
      local out, err, status = par("-k", {
        input = "echo one\n\n   \n# echo comment\n  # indented comment\necho two; echo 2 >&2\necho 'three  3'\n",
      })
      assert.are.equal("one\ntwo\nthree  3\n", out)
      assert.are.equal("2\n", err)
      assert.are.equal(0, status)
    end)

    it("reads -a FILE and --arg-file=FILE", function()
      local dir = tmpdir()
      H.writefile(dir .. "/cmds", "echo a\necho b\n")
      assert.are.same({ "a\nb\n", "", 0 }, { par("-k -a cmds", { cwd = dir }) })
      assert.are.same({ "a\nb\n", "", 0 }, { par("-k --arg-file=cmds", { cwd = dir }) })
      assert.are.same({ "a\nb\n", "", 0 }, { par("-k -a - ", { cwd = dir, input = "echo a\necho b" }) })
    end)

    it("splits on NUL with -0 and --null, keeping newlines inside a command", function()
      local input = "echo 'x\ny'\0echo z\0"
      assert.are.same({ "x\ny\nz\n", "", 0 }, { par("-k -0", { input = input }) })
      assert.are.same({ "x\ny\nz\n", "", 0 }, { par("-k --null", { input = input }) })
    end)

    it("takes the words after ::: as commands when no command is given", function()
      assert.are.same({ "a\nb c\n", "", 0 }, { par({ "-k", ":::", "echo a", "echo b c" }) })
    end)

    it("runs nothing, successfully, on empty input", function()
      assert.are.same({ "", "", 0 }, { par("", { input = "\n# nothing\n" }) })
    end)

    it("names a missing -a FILE", function()
      local out, err, status = par("-a nosuch")
      assert_usage("nosuch: No such file or directory", out, err, status)
    end)
  end)

  describe("CMD ::: ARGS and CMD < ARGS", function()
    it("replaces {} with the argument quoted for the shell", function()
      local out, err, status, dir = run({ "-k", "echo", "'<'{}'>'", ":::", "a b", "$(touch pwned)", "it's", "*" })
      assert.are.equal("<a b>\n<$(touch pwned)>\n<it's>\n<*>\n", out)
      assert.are.equal("", err)
      assert.are.equal(0, status)
      assert.is_nil(H.readfile(dir .. "/pwned"))
    end)

    it("appends the quoted argument when the command has no replacement string", function()
      assert.are.same({ "x a  b\nx c\n", "", 0 }, { par({ "-k", "echo", "x", ":::", "a  b", "c" }) })
      assert.are.same({ "a  b\n", "", 0 }, { par({ "printf", "'%s\\n'", ":::", "a  b" }) })
    end)

    it("replaces {#} with the job number, and then appends nothing", function()
      assert.are.same({ "1 a\n2 b\n3 c\n", "", 0 }, { par({ "-k", "echo", "{#}", "{}", ":::", "a", "b", "c" }) })
      assert.are.same({ "1\n2\n", "", 0 }, { par({ "-k", "echo", "{#}", ":::", "a", "b" }) })
    end)

    it("knows GNU parallel's {.} {/} {//} {/.}", function()
      assert.are.same({ "d/a.tar a.tar.gz d a.tar\n", "", 0 },
        { par({ "echo", "{.}", "{/}", "{//}", "{/.}", ":::", "d/a.tar.gz" }) })
    end)

    it("reads the arguments from stdin, one per line, or from -a FILE", function()
      -- as GNU parallel: every line is an argument, a blank one and a "\r" too
      assert.are.same({ "<a b>\n<>\n<# kept>\n<c\r>\n", "", 0 },
        { par({ "-k", "echo", "'<'{}'>'" }, { input = "a b\n\n# kept\nc\r\n" }) })
      local dir = tmpdir()
      H.writefile(dir .. "/args", "1\n2\n")
      assert.are.same({ "n=1\nn=2\n", "", 0 }, { par({ "-k", "-a", "args", "echo", "n={}" }, { cwd = dir }) })
      assert.are.same({ "a\nb\n", "", 0 }, { par({ "-k", "-0", "echo" }, { input = "a\0b\0" }) })
    end)

    it("takes options only before the command", function()
      assert.are.same({ "-k a\n", "", 0 }, { par({ "echo", "-k", ":::", "a" }) })
      assert.are.same({ "x\n", "", 0 }, { par({ "--", "echo", ":::", "x" }) })
    end)

    it("combines every ::: and -a FILE, GNU parallel's way: the last varies fastest", function()
      local dir = tmpdir()
      H.writefile(dir .. "/x", "x1\nx2\n")
      assert.are.same({ "a 1\na 2\nb 1\nb 2\n", "", 0 }, { par({ "-k", "echo", ":::", "a", "b", ":::", "1", "2" }) })
      assert.are.same({ "x1 a\nx2 a\n", "", 0 }, { par({ "-k", "-a", "x", "echo", ":::", "a" }, { cwd = dir }) })
      assert_usage("':::+' needs an input source before it", par({ "echo", ":::+", "a" }))
    end)

    it("gives an empty source one empty value beside others, and none alone, as GNU parallel", function()
      assert.are.same({ "x a \nx b \n", "", 0 },
        { par({ "-k", "echo", "x", ":::", "a", "b", "::::", "/dev/null" }) })
      assert.are.same({ "x a  b\n", "", 0 }, { par({ "-k", "echo", "x", ":::", "a", ":::", ":::", "b" }) })
      assert.are.same({ "x a \n", "", 0 }, { par({ "-k", "echo", "x", ":::", "a", ":::" }) })
      assert.are.same({ "", "", 0 }, { par({ "-k", "echo", "x", ":::", ":::" }) })
      assert.are.same({ "", "", 0 }, { par({ "-k", "echo", "x", "::::", "/dev/null", "::::", "/dev/null" }) })
      assert.are.same({ "x \n", "", 0 }, { par({ "-k", "echo", "x", ":::", "" }) })
    end)

    it("drops a separator that is the last word: stdin is the input, as GNU parallel", function()
      assert.are.same({ "x q\n", "", 0 }, { par({ "-k", "echo", "x", ":::" }, { input = "q\n" }) })
      assert.are.same({ "x q\n", "", 0 }, { par({ "-k", "echo", "x", "::::" }, { input = "q\n" }) })
      assert.are.same({ "", "", 0 }, { par({ "-k", "echo", "x", ":::" }) })
    end)
  end)

  describe("output", function()
    -- Job 1 ends only after the joblog shows job 2 ended: a completion order
    -- that does not depend on timing.
    local WAIT = "until grep -q 'echo second' log 2>/dev/null; do sleep 0.01; done; echo first"

    it("prints each job's output when it ends, in completion order", function()
      assert.are.same({ "second\nfirst\n", "", 0 }, { par({ "-j2", "--joblog", "log", ":::", WAIT, "echo second" }) })
    end)

    it("with -k and --keep-order prints in input order", function()
      -- with -k a joblog line waits for the jobs before it, as GNU's: job 2 says it ended
      local wait = "until [ -e done ]; do sleep 0.01; done; sleep 0.2; echo first"
      assert.are.same({ "first\nsecond\n", "", 0 },
        { par({ "-j2", "-k", ":::", wait, "echo second; touch done" }) })
      assert.are.same({ "first\nsecond\n", "", 0 },
        { par({ "-j2", "--keep-order", ":::", wait, "echo second; touch done" }) })
    end)

    it("never interleaves the lines of jobs running at once", function()
      local cmd = "for i in 1 2 3 4 5 6 7 8; do echo {}-$i; echo {}-$i >&2; sleep 0.01; done"
      local out, err, status = par({ "-j", "4", cmd, ":::", "a", "b", "c", "d" })
      assert.are.equal(0, status)
      for _, s in ipairs({ out, err }) do
        assert.are.equal(32, count_lines(s))
        for job in ("abcd"):gmatch(".") do
          local block = {}
          for i = 1, 8 do block[i] = job .. "-" .. i .. "\n" end
          assert.truthy(s:find(table.concat(block), 1, true), s)
        end
      end
    end)

    it("with --tag prefixes every stdout and stderr line with the argument and a tab", function()
      assert.are.same({ "a b\tout a b\na b\t2\nc\tout c\nc\t2\n", "a b\terr\nc\terr\n", 0 },
        { par({ "-k", "--tag", "echo out {}; echo 2; echo err >&2", ":::", "a b", "c" }) })
      assert.are.same({ "echo x\tx\n", "", 0 }, { par("--tag", { input = "echo x\n" }) })
    end)

    it("with -v prints each command before its output, and why a job failed", function()
      assert.are.same({ "echo 1\n1\nexit 3\n", "par: job 2 failed (exit 3): exit 3\n", 1 },
        { par({ "-k", "-v", ":::", "echo 1", "exit 3" }) })
      -- --verbose is GNU's -t: the command on stderr
      assert.are.same({ "1\n", "echo 1\n", 0 }, { par({ "--verbose", ":::", "echo 1" }) })
      assert.are.same({ "1\n", "echo 1\n", 0 }, { par({ "-t", ":::", "echo 1" }) })
    end)

    it("with --dry-run prints the commands and runs nothing", function()
      local out, err, status, dir = run({ "--dry-run", "touch", "{}", ":::", "a b", "c" })
      assert.are.same({ "touch 'a b'\ntouch c\n", "", 0 }, { out, err, status })
      assert.is_nil(H.readfile(dir .. "/c"))
    end)

    it("with --bar draws a progress line on stderr", function()
      local out, err, status = par({ "--bar", ":::", "true", "true" })
      assert.are.equal("", out)
      assert.are.equal(0, status)
      assert.truthy(err:find("par: 2/2 done, 0 running, 0 failed, %d+:%d%d elapsed, done\n$"), err)
    end)
  end)

  describe("job control options", function()
    -- A barrier: each job waits (up to 20 s) until 'n' jobs have started.
    local function barrier(n)
      return ("touch started.{}; i=0; until [ $(ls started.* | wc -l) -ge %d ]; do "
        .. "i=$((i+1)); [ $i -gt 2000 ] && exit 9; sleep 0.01; done"):format(n)
    end

    it("-j N runs N jobs at once", function()
      assert.are.same({ "", "", 0 }, { par({ "-j", "3", barrier(3), ":::", "1", "2", "3" }) })
      assert.are.same({ "", "", 0 }, { par({ "--jobs=3", barrier(3), ":::", "1", "2", "3" }) })
    end)

    it("-j N% runs that share of the CPUs, -j 0 all jobs at once", function()
      local cpus = require("par").cpus()
      local args = { "-j", "200%", barrier(2 * cpus), ":::" }
      for i = 1, 2 * cpus do args[#args + 1] = tostring(i) end
      assert.are.same({ "", "", 0 }, { par(args) })
      assert.are.same({ "", "", 0 }, { par({ "-j", "0", barrier(5), ":::", "1", "2", "3", "4", "5" }) })
    end)

    it("-j 1 runs one job at a time, in order", function()
      assert.are.same({ "3\n2\n1\n", "", 0 }, { par({ "-j1", "sleep 0.{}; echo {}", ":::", "3", "2", "1" }) })
    end)

    it("rejects bad values of -j", function()
      for _, v in ipairs({ "abc", "1.5", "%", "+x" }) do
        local out, err, status = par({ "-j", v, "true", ":::", "1" })
        assert_usage("--jobs: integer >= 0, 'N%', '+N', '-N' or a file expected, got '" .. v .. "'",
          out, err, status)
      end
    end)

    it("--timeout S stops a job that runs too long", function()
      assert.are.same({ "", "par: job 1 failed (timeout): sleep 30\n", 1 },
        { par({ "--timeout", "0.2", ":::", "sleep 30" }) })
      local out, err, status = par({ "--timeout", "0", "true", ":::", "1" })
      assert_usage("--timeout: must be a finite number > 0, got 0", out, err, status)
    end)

    it("--retries N tries a failing job up to N times in all, as GNU parallel", function()
      local cmd = "echo x >> count; [ $(wc -l < count) -ge 3 ]"
      local out, err, status, dir = run({ "--retries", "3", ":::", cmd })
      assert.are.same({ "", "", 0 }, { out, err, status })
      assert.are.equal("x\nx\nx\n", H.readfile(dir .. "/count"))
      out, err, status, dir = run({ "--retries", "2", ":::", cmd })
      assert.are.same({ "", "", 1 }, { out, err, status })
      assert.are.equal("x\nx\n", H.readfile(dir .. "/count"))
      assert_usage("--retries: integer >= 0 expected, got 'x'", par({ "--retries", "x", "true" }))
    end)

    it("--halt soon starts nothing after a failure", function()
      -- GNU's legacy 1 is soon,fail=1; the status is the failing job's
      for _, h in ipairs({ "soon", "1", "soon,fail=1" }) do
        local out, err, status, dir = run({ "-j1", "--halt", h, ":::", "exit 2", "touch ran" })
        assert.are.same({ "", "par: This job failed:\nexit 2\n", 2 }, { out, err, status })
        assert.is_nil(H.readfile(dir .. "/ran"))
      end
      local out, err, status = run({ "-j1", "-k", "--halt", "soon,fail=2", "echo {}; exit {}",
        ":::", "3", "0", "4", "5" })
      assert.are.same({ "3\n0\n4\n", "par: This job failed:\necho 4; exit 4\n", 2 }, { out, err, status })
    end)

    it("--halt now also stops the running jobs", function()
      local out, err, status, dir = run({ "-j2", "--halt=now", ":::",
        "until [ -e pid ]; do sleep 0.01; done; exit 1", "echo $$ > pid.tmp; mv pid.tmp pid; exec sleep 30" })
      assert.are.equal("", out)
      assert.are.equal(1, status)
      assert.are.equal("par: This job failed:\nuntil [ -e pid ]; do sleep 0.01; done; exit 1\n", err)
      assert.is_false(H.alive(assert(tonumber(H.readfile(dir .. "/pid")))))
    end)

    it("--halt never runs every job; other words are rejected", function()
      local out, err, status, dir = run({ "-j1", "--halt", "never", ":::", "exit 2", "touch ran" })
      assert.are.same({ "", "", 1 }, { out, err, status })
      assert.are.equal("", H.readfile(dir .. "/ran"))
      assert_usage("--halt: now|soon,fail|success|done=N|N% expected (or 0, 1, 2), got 'later'",
        par({ "--halt", "later", "true" }))
    end)

    it("--joblog FILE writes GNU parallel's joblog", function()
      local _, _, status, dir = run({ "-k", "--joblog", "log", ":::", "true", "exit 4" })
      assert.are.equal(1, status)
      local log = H.readfile(dir .. "/log")
      assert.truthy(log:find("^Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n"))
      assert.truthy(log:find("\n1\t:\t[%d.]+\t *[%d.]+\t0\t0\t0\t0\ttrue\n"))
      assert.truthy(log:find("\n2\t:\t[%d.]+\t *[%d.]+\t0\t0\t4\t0\texit 4\n"))
    end)

    it("--resume skips the jobs in the joblog; --resume-failed reruns its failures", function()
      local dir = tmpdir()
      local args = { "-j1", "--joblog", "log", "echo {} >> ran; [ {} != 2 ]", ":::", "1", "2" }
      assert.are.same({ "", "", 1 }, { par(args, { cwd = dir }) })
      args[#args + 1] = "3"
      table.insert(args, 1, "--resume")
      assert.are.same({ "", "", 0 }, { par(args, { cwd = dir }) })
      assert.are.equal("1\n2\n3\n", H.readfile(dir .. "/ran"))
      args[1] = "--resume-failed"
      assert.are.same({ "", "", 1 }, { par(args, { cwd = dir }) })
      assert.are.equal("1\n2\n3\n2\n", H.readfile(dir .. "/ran"))
    end)

    it("--joblog FILE that cannot be written stops every job: one line on stderr, exit 255", function()
      local dir = tmpdir()
      local header = "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n"
      H.writefile(dir .. "/log", header .. ("#"):rep(512 - #header - 1) .. "\n")   -- at the size limit
      local out, err, status = run({ "-j2", "--joblog", "log", ":::", "exec sleep 9.4216", "true", "true" },
        { cwd = dir, env = "trap '' XFSZ; ulimit -f 1; " })
      assert.are.same({ "", "par: joblog: log: File too large\n", 255 }, { out, err, status })
      assert.are.same({}, H.survivors("sleep 9.4216"))
    end)

    it("--joblog FILE must be a regular file or absent, else a usage error before any job", function()
      local dir = tmpdir()
      assert_usage("--joblog: . is a directory, not a regular file",
        par({ "--joblog", ".", "touch", "ran", ":::", "1" }, { cwd = dir }))
      H.writefile(dir .. "/c.lua", 'return { commands = { "touch ran" }, joblog = "." }')
      assert.are.same({ "", "par: c.lua:1: key 'joblog': . is a directory, not a regular file\n", 255 },
        { par("run c.lua", { cwd = dir }) })
      assert_usage("--joblog: /dev/null is a character device, not a regular file",
        par("--joblog /dev/null run c.lua", { cwd = dir }))
      assert(os.execute("mkfifo " .. dir .. "/fifo"))    -- par reads it first for --resume: no hang
      assert_usage("--joblog: fifo is a fifo, not a regular file",
        par("--resume --joblog fifo touch ran ::: 1", { cwd = dir, par = "timeout 10 " .. PAR }))
      assert.is_nil(H.readfile(dir .. "/ran"))
    end)

    it("--resume and --resume-failed need --joblog", function()
      assert_usage("--resume needs --joblog FILE", par({ "--resume", "true", ":::", "1" }))
      assert_usage("--resume-failed needs --joblog FILE", par({ "--resume-failed", "true", ":::", "1" }))
    end)

    it("--delay S spaces the job starts", function()
      local _, _, status, dir = run({ "--delay", "0.3", "-j2", "--joblog", "log", "true", ":::", "1", "2" })
      assert.are.equal(0, status)
      local starts = {}
      for seq, t in H.readfile(dir .. "/log"):gmatch("\n(%d)\t:\t([%d.]+)") do starts[tonumber(seq)] = tonumber(t) end
      assert.is_true(math.abs(starts[2] - starts[1]) >= 0.29)
      assert_usage("--delay: must be a finite number >= 0, got -1", par({ "--delay", "-1", "true" }))
    end)
  end)

  describe("exit status", function()
    local function failing(n, ok)
      local args = { "-j", "8", "exit", ":::" }
      for _ = 1, n do args[#args + 1] = "1" end
      for _ = 1, ok or 0 do args[#args + 1] = "0" end
      return args
    end

    it("is 0 when every job succeeded", function()
      assert.are.same({ "", "", 0 }, { par(failing(0, 3)) })
    end)

    it("is the number of failed jobs, up to 100", function()
      assert.are.same({ "", "", 1 }, { par(failing(1, 2)) })
      assert.are.same({ "", "", 3 }, { par(failing(3, 2)) })
      assert.are.same({ "", "", 100 }, { par(failing(100)) })
    end)

    it("is 101 when more than 100 jobs failed", function()
      assert.are.same({ "", "", 101 }, { par(failing(101)) })
    end)

    it("is 255 on a usage error, with one line naming it and the usage hint", function()
      assert_usage("unknown option '--bogus'", par("--bogus"))
      assert_usage("unknown option '-Z'", par("-kZ"))
      assert_usage("option '-j' needs a value (N)", par("-j"))
      assert_usage("option '--joblog' needs a value (FILE)", par("--joblog"))
      assert_usage("option '--tag' takes no value", par("--tag=1 true"))
      assert_usage("'par run' needs a config file", par("run"))
      assert_usage("option '--format' applies only to 'par map'", par("--format lua true"))
      assert_usage("--format: expected one of json, lua, got 'xml'", par("--format xml map x.lua"))
    end)

    it("is 143 (128 + SIGTERM) after SIGTERM, with every job stopped", function()
      local dir = tmpdir()
      local cmd = ("cd %s && (%s%s 'echo $$ >> pids; sleep 30' ::: 1 2 2>err & p=$!; "
        .. "until [ $(cat pids 2>/dev/null | wc -l) -ge 2 ]; do sleep 0.01; done; "
        .. "kill -TERM $p; wait $p; echo $? > status)")
        :format(quote(dir), ENV, PAR)
      os.execute(cmd)
      assert.are.equal("143\n", H.readfile(dir .. "/status"))
      assert.truthy(H.readfile(dir .. "/err"):find("par: interrupted\n$"))
      for pid in H.readfile(dir .. "/pids"):gmatch("%d+") do assert.is_false(H.alive(pid)) end
    end)
  end)

  describe("par run CONFIG.lua", function()
    local function config(dir, text, name)
      H.writefile(dir .. "/" .. (name or "c.lua"), text)
    end

    it("runs the commands a config returns, with its options", function()
      local dir = tmpdir()
      config(dir, [[
        local n = ...
        local cmds = {}
        for i = 1, tonumber(n) do cmds[i] = "echo job " .. i .. " $FOO" end
        cmds[#cmds + 1] = { "printf", "%s|", "argv", "a b" }
        return { commands = cmds, jobs = 2, env = { FOO = "foo" }, joblog = "log", keep_order = true }
      ]])
      assert.are.same({ "job 1 foo\njob 2 foo\nargv|a b|", "", 0 }, { par("run c.lua 2", { cwd = dir }) })
      local log = H.readfile(dir .. "/log")
      assert.truthy(log:find("\t0\t0\tprintf '%s|' argv 'a b'\n", 1, true))
    end)

    it("calls a commands function, and lets the config require modules beside it", function()
      local dir = tmpdir()
      os.execute("mkdir " .. quote(dir .. "/cfg"))
      config(dir, "return { words = function() return { 'x', 'y' } end }", "cfg/wordlist.lua")
      config(dir, [[
        local par = require "par"
        return { commands = function()
          local t = {}
          for i, w in ipairs(require("wordlist").words()) do t[i] = "echo " .. par.quote(w) end
          return t
        end, keep_order = true, tag = true }
      ]], "cfg/c.lua")
      assert.are.same({ "echo x\tx\necho y\ty\n", "", 0 }, { par("run cfg/c.lua", { cwd = dir }) })
    end)

    it("lets command-line options override the config", function()
      local dir = tmpdir()
      config(dir, [[return { commands = { "echo a", "exit 1", "echo c" }, jobs = 3, joblog = "one",
        halt = "never", keep_order = true }]])
      assert.are.same({ "a\n", "par: This job failed:\nexit 1\n", 1 },
        { par("-j1 --joblog two --halt soon run c.lua", { cwd = dir }) })
      assert.is_nil(H.readfile(dir .. "/one"))
      assert.truthy(H.readfile(dir .. "/two"):find("\n2\t"))
      -- options after the config too; '--' passes the rest to the config
      config(dir, "return { commands = { 'echo ' .. table.concat({...}, ',') } }", "d.lua")
      assert.are.same({ "echo x,-v\n", "", 0 }, { par("run d.lua --dry-run x -- -v", { cwd = dir }) })
    end)

    it("runs on_done, cwd and ungrouped output from the config", function()
      local dir = tmpdir()
      os.execute("mkdir " .. quote(dir .. "/sub"))
      config(dir, [[return { commands = { "pwd" }, cwd = "sub", output = "ungroup",
        on_done = function(res, i) print("done", i, res.ok) end }]])
      assert.are.same({ dir .. "/sub\ndone\t1\ttrue\n", "", 0 }, { par("run c.lua", { cwd = dir }) })
      assert_usage("--tag needs grouped output; the config asks for ungrouped (capture = false or output = 'ungroup')",
        par("--tag run c.lua", { cwd = dir }))
    end)

    it("rejects -a and -0, which apply only to commands read from input", function()
      assert_usage("option '--arg-file' does not apply to 'par run'", par("-a x run c.lua"))
      assert_usage("option '--null' does not apply to 'par run'", par("run c.lua -0"))
    end)

    it("with --dry-run prints string and argv commands", function()
      local dir = tmpdir()
      config(dir, [[return { commands = { "touch a", { "touch", "b c" } } }]])
      assert.are.same({ "touch a\ntouch 'b c'\n", "", 0 }, { par("--dry-run run c.lua", { cwd = dir }) })
      assert.is_nil(H.readfile(dir .. "/a"))
    end)

    describe("rejects a bad config with one line naming the file", function()
      local function bad(text, msg, args)
        local dir = tmpdir()
        if text then config(dir, text) end
        local out, err, status = par(args or "run c.lua", { cwd = dir })
        assert.are.same({ "", "par: " .. msg .. "\n", 255 }, { out, err, status })
      end

      it("that does not exist", function()
        bad(nil, "c.lua: No such file or directory")
      end)

      it("that does not parse, with Lua's line", function()
        bad("return {\n  jobs = 2\n  commands = {}\n}\n",
          "c.lua:3: '}' expected (to close '{' at line 1) near 'commands'")
      end)

      it("that raises, with Lua's line", function()
        bad("local x = 1\nerror('no input\\nfound')\n", "c.lua:2: no input found")
        bad("error('plain', 0)", "c.lua: plain")
        bad("error({})", "c.lua: raised a table value")
      end)

      it("that returns something other than a table", function()
        bad("return 'echo a'", "c.lua: must return a table, returned string")
        bad("", "c.lua: must return a table, returned nil")
      end)

      it("with an unknown key, and its line when one line sets it", function()
        bad("return {\n  commands = {},\n  jbos = 4,\n}\n", "c.lua:3: unknown key 'jbos'")
        bad("return { 'echo a' }", "c.lua: unknown key [1]")
      end)

      it("with a value of the wrong type", function()
        bad("return {\n  commands = {},\n  jobs = 'four',\n}",
          "c.lua:3: key 'jobs': integer >= 0, 'N%', '+N', '-N' or a file expected, got 'four'")
        bad("return { commands = 'echo a' }", "c.lua:1: key 'commands': table or function expected, got string")
        bad("return { commands = {}, halt = 'later' }",
          "c.lua:1: key 'halt': expected one of never, soon, now, got 'later'")
        bad("return { commands = {}, timeout = -1 }", "c.lua:1: key 'timeout': must be a finite number > 0, got -1")
        bad("return { commands = { 'true', 42 } }",
          "c.lua:1: key 'commands': command #2 must be a string or an argv table")
        bad("return { commands = { 'true' }, env = { ['A=B'] = 'x' } }",
          "c.lua:1: key 'env': bad variable name 'A=B'")
      end)

      it("with a missing or broken commands", function()
        bad("return { jobs = 2 }", "c.lua: key 'commands' is missing")
        bad("return { commands = function() return 3 end }",
          "c.lua:1: key 'commands': the function returned a number, not a sequence")
        bad("return { commands = function() return { x = 1 } end }",
          "c.lua:1: key 'commands': the function returned a table with keys other than 1..n, not a sequence")
        bad("return { commands = function() error('boom') end }", "c.lua:1: boom")
      end)

      it("with resume but no joblog", function()
        bad("return { commands = {}, resume = true }", "c.lua:1: key 'resume' needs key 'joblog'")
      end)
    end)
  end)

  describe("par map CONFIG.lua", function()
    local WEIGHTS = {
      '["type1",1,2]', '["type1",2,4]', '["type1",3,6]', '["type1",4,8]', '["type1",5,10]',
      '["type1",6,12]', '["type1",7,14]', '["type1",8,16]', '["type1",9,18]',
      '["type2",1,3]', '["type2",2,6]', '["type2",3,9]', '["type2",4,12]', '["type2",5,15]',
      '["type2",6,18]', '["type2",7,21]', '["type2",8,24]', '["type2",9,27]',
    }

    it("prints the weight table example as JSON lines, in item order", function()
      local out, err, status = par({ "map", ROOT .. "/examples/weights.lua" })
      assert.are.same({ table.concat(WEIGHTS, "\n") .. "\n", "", 0 }, { out, err, status })
    end)

    it("prints Lua literals with --format lua", function()
      local out, err, status = par({ "-j", "2", "map", ROOT .. "/examples/weights.lua", "--format", "lua" })
      local lua = {}
      for i, l in ipairs(WEIGHTS) do lua[i] = l:gsub("%[", "{"):gsub("%]", "}"):gsub(",", ", ") end
      assert.are.same({ table.concat(lua, "\n") .. "\n", "", 0 }, { out, err, status })
    end)

    it("writes strings, floats, nested and keyed tables, and nil", function()
      local dir = tmpdir()
      H.writefile(dir .. "/m.lua", [[return { fn = function(x) return x end, items = function() return {
        "a/b\n\"q\"", 0.5, 2^53, { k = { 1, 2 } }, false } end }]])
      assert.are.same({ '"a/b\\n\\"q\\""\n0.5\n9.007199254741e+15\n{"k":[1,2]}\nfalse\n', "", 0 },
        { par("map m.lua", { cwd = dir }) })
      assert.are.same({ '"a/b\\n\\"q\\""\n0.5\n9007199254740992.0\n{k = {1, 2}}\nfalse\n', "", 0 },
        { par("--format=lua map m.lua", { cwd = dir }) })
      H.writefile(dir .. "/m.lua", [[return { fn = function(x) return x end,
        items = { { "x", b = 1, a = 2, ["end"] = 3, [2.5] = 0.1 } } }]])
      assert.are.same({ '{"x", [2.5] = 0.1, a = 2, b = 1, ["end"] = 3}\n', "", 0 },
        { par("--format lua map m.lua", { cwd = dir }) })
    end)

    it("prints null for a failed item, the error on stderr, and counts it", function()
      local dir = tmpdir()
      H.writefile(dir .. "/m.lua", [[return { fn = function(x)
        if x % 2 == 0 then error("even " .. x) end
        return x end, items = { 1, 2, 3, 4 }, procs = 2 }]])
      local out, err, status = par("map m.lua", { cwd = dir })
      assert.are.same({ "1\nnull\n3\nnull\n", 2 }, { out, status })
      assert.are.equal("par: item 2: m.lua:2: even 2\npar: item 4: m.lua:2: even 4\n", err)
      out, err, status = par("--format lua map m.lua", { cwd = dir })
      assert.are.same({ "1\nnil\n3\nnil\n", 2 }, { out, status })
      assert.are.equal("par: item 2: m.lua:2: even 2\npar: item 4: m.lua:2: even 4\n", err)
      err = select(2, par("-v map m.lua", { cwd = dir }))
      assert.truthy(err:find("^par: item 2: m.lua:2: even 2\nstack traceback:\n"))
    end)

    it("counts a result it cannot write as a failure", function()
      local dir = tmpdir()
      H.writefile(dir .. "/m.lua", [[return { fn = function(x) return x end, items = { 1, 1/0 } }]])
      local out, err, status = par("map m.lua", { cwd = dir })
      assert.are.same({ "1\nnull\n", 1 }, { out, status })
      assert.truthy(err:find("^par: item 2: cannot write the result as json: [^\n]+\n$"), err)
      assert.are.same({ "1\n1/0\n", "", 0 }, { par("--format lua map m.lua", { cwd = dir }) })
    end)

    it("stops at the first failure with errors = 'raise'", function()
      local dir = tmpdir()
      H.writefile(dir .. "/m.lua", [[return { fn = function(x) error("no " .. x, 0) end,
        items = { 1 }, errors = "raise" }]])
      assert.are.same({ "", "par: item 1: no 1\n", 1 }, { par("map m.lua", { cwd = dir }) })
    end)

    it("applies --timeout and --bar", function()
      local dir = tmpdir()
      H.writefile(dir .. "/m.lua", [[return { fn = function(x)
        if x == 2 then while true do end end return x end, items = { 1, 2, 3 }, procs = 2 }]])
      local out, err, status = par("--timeout 0.3 --bar map m.lua", { cwd = dir })
      assert.are.same({ "1\nnull\n3\n", 1 }, { out, status })
      assert.truthy(err:find("par: 3/3 items, 0 running, 0 failed, [%d:]+ elapsed, done\n", 1, false), err)
      assert.truthy(err:find("par: item 2: timeout after 0.3s\n", 1, true), err)
    end)

    it("rejects options that apply only to commands", function()
      local cmdonly = { "--joblog x", "--retries 1", "--halt soon", "--resume", "--resume-failed", "--tag",
        "--dry-run", "--delay 1", "--arg-file x", "--null" }
      for _, o in ipairs(cmdonly) do
        local out, err, status = par(o .. " map m.lua")
        assert_usage(("option '%s' does not apply to 'par map'"):format(o:match("^%S+")), out, err, status)
      end
    end)

    describe("rejects a bad config with one line naming the file", function()
      local function bad(text, msg)
        local dir = tmpdir()
        H.writefile(dir .. "/m.lua", text)
        local out, err, status = par("map m.lua", { cwd = dir })
        assert.are.same({ "", "par: " .. msg .. "\n", 255 }, { out, err, status })
      end

      it("with a missing fn or items", function()
        bad("return { items = {} }", "m.lua: key 'fn' is missing")
        bad("return { fn = print }", "m.lua: key 'items' is missing")
      end)

      it("with an fn that does not resolve", function()
        bad("return { fn = 'nosuchmod.f', items = { 1 } }",
          "m.lua:1: key 'fn': cannot resolve 'nosuchmod.f': no module 'nosuchmod.f' or 'nosuchmod'")
        bad("return { fn = 42, items = {} }",
          "m.lua:1: key 'fn': function or 'module.func' string expected, got number")
      end)

      it("with an unknown key or a wrong type", function()
        bad("return { fn = print, items = {}, commands = {} }", "m.lua:1: unknown key 'commands'")
        bad("return { fn = print, items = { 1, nil, 3 } }", "m.lua:1: key 'items': sequence expected (keys 1..n only)")
        bad("return { fn = print, items = {}, errors = 'ignore' }",
          "m.lua:1: key 'errors': expected one of raise, collect, got 'ignore'")
        bad("return { fn = print, items = {}, format = 'xml' }",
          "m.lua:1: key 'format': expected one of json, lua, got 'xml'")
      end)

      it("with jobs and its older name procs that disagree", function()
        -- whichever of the two pairs() meets first (its order varies from run to run)
        for _, extra in ipairs({ "", "chunksize = 1,", "timeout = 5,", "errors = 'raise',", "init = print," }) do
          for _ = 1, 2 do
            bad("return { fn = print, items = { 1 }, " .. extra .. "\n jobs = 2, procs = 3 }",
              "m.lua:2: key 'procs' contradicts key 'jobs'")
          end
        end
        bad("return { fn = print, items = { 1 }, procs = 'many' }",
          "m.lua:1: key 'procs': integer >= 0, 'N%', '+N', '-N' or a file expected, got 'many'")
      end)
    end)
  end)

  describe("examples", function()
    it("urls.lua fetches file:// URLs with curl #curl", function()
      local dir = tmpdir()
      H.writefile(dir .. "/a.txt", "A\n")
      H.writefile(dir .. "/urls", ("# list\nfile://%s/a.txt\n\nfile://%s/missing.txt\n"):format(dir, dir))
      local out, err, status = par({ "-k", "run", ROOT .. "/examples/urls.lua", "urls", "got" }, { cwd = dir })
      assert.are.same({ "FAIL file://" .. dir .. "/missing.txt", "ok   file://" .. dir .. "/a.txt" }, sorted_lines(out))
      assert.truthy(err:find("curl: %(37%)"), err)
      assert.are.equal(1, status)
      assert.are.equal("A\n", H.readfile(dir .. "/got/a.txt"))
      local uout, uerr, ustatus = par({ "run", ROOT .. "/examples/urls.lua" }, { cwd = dir })
      local usage = "usage: par run examples/urls.lua URLFILE [OUTDIR]"
      assert.are.same({ "", "par: " .. ROOT .. "/examples/urls.lua: " .. usage .. "\n", 255 }, { uout, uerr, ustatus })
    end)

    it("export.lua exports the table in partitions, and resumes from its joblog", function()
      local out, err, status, dir = run({ "--bar", "run", ROOT .. "/examples/export.lua", "1000", "4" })
      assert.are.equal(0, status)
      local total = 0
      for n in out:gmatch("\t(%d+)\n") do total = total + tonumber(n) end
      assert.are.equal(1000, total)
      assert.truthy(err:find("par: 4/4 done"))
      local csv = H.readfile(dir .. "/demo-out/export/items_251_500.csv")
      assert.are.equal(251, count_lines(csv))   -- a header and 250 rows
      local log = H.readfile(dir .. "/demo-out/export/1000_4.joblog")
      assert.are.equal(5, count_lines(log))
      -- a second run finds every partition done
      assert.are.same({ "", "", 0 }, { par({ "run", ROOT .. "/examples/export.lua", "1000", "4" }, { cwd = dir }) })
      assert.are.equal(log, H.readfile(dir .. "/demo-out/export/1000_4.joblog"))
    end)

    it("weights_fn.weigh is the weight table's function", function()
      package.path = ROOT .. "/examples/?.lua;" .. package.path
      assert.are.same({ "type2", 4, 12 }, require("weights_fn").weigh({ "type2", 4 }))
    end)
  end)

  describe("the bin/par script", function()
    -- A checkout's layout, with the core.so of the build under test (under
    -- `make asan`, build/asan/par/core.so): bin/par, lua/, par/core.so.
    it("finds par from a checkout with no Lua paths set", function()
      local top = tmpdir()
      local cmd = ("set -e; cd %s; t=%s; install -d $t/bin $t/par; install -m 755 bin/par $t/bin/par; "
        .. "cp -R lua $t/lua; install -m 755 %s $t/par/core.so"):format(quote(ROOT), quote(top),
        quote(H.BUILD .. "/par/core.so"))
      assert.is_true(os.execute(cmd))
      local opts = { noenv = true, par = "env -u LUA_PATH -u LUA_CPATH lua5.4 " .. quote(top .. "/bin/par") }
      assert.are.same({ "par " .. require("par").VERSION .. "\n", "", 0 }, { par({ "--version" }, opts) })
      assert.are.same({ "ok\n", "", 0 }, { par("::: 'echo ok'", opts) })
    end)

    it("finds par in an install prefix with no Lua paths set", function()
      local prefix = tmpdir()
      -- the Makefile's own install of the Lua side, so that this sees every
      -- module it installs, beside the core.so of the build under test
      local cmd = ("make -s -C %s install-lua PREFIX=%s >/dev/null && install -D -m 755 %s %s")
        :format(quote(ROOT), quote(prefix), quote(H.BUILD .. "/par/core.so"),
          quote(prefix .. "/lib/lua/5.4/par/core.so"))
      assert.is_true(os.execute(cmd))
      local opts = { noenv = true, par = "env -u LUA_PATH -u LUA_CPATH " .. quote(prefix .. "/bin/par") }
      assert.are.same({ "ok\n", "", 0 }, { par("::: 'echo ok'", opts) })
      assert.are.same({ "par " .. require("par").VERSION .. "\n", "", 0 }, { par("--version", opts) })
    end)
  end)
end)
