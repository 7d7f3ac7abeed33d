local par = require "par"
local H = require "spec.helpers"

-- Two real sshd on 127.0.0.2 and 127.0.0.3 (spec/support/sshd.sh), started
-- for this file and stopped at its end, whether the specs pass or not.
describe("par.run on SSH hosts #ssh", function()
  local dir, ssh
  local A, B = "127.0.0.2", "127.0.0.3"

  setup(function()
    dir = os.tmpname()
    os.remove(dir)
    local out = H.lines("sh spec/support/sshd.sh start " .. dir .. " 2>&1")
    assert(tonumber(out[#out]), "sshd did not start: " .. table.concat(out, "\n"))
    ssh = { "ssh", "-F", dir .. "/ssh_config" }
  end)

  teardown(function()
    if dir then
      os.execute("sh spec/support/sshd.sh stop " .. dir)
      os.execute("rm -rf " .. dir)
    end
  end)

  it("runs 200 commands across both hosts, each result naming its host", function()
    local cmds = {}
    for i = 1, 200 do cmds[i] = i % 2 == 0 and "echo " .. i or { "echo", tostring(i) } end
    local res, nfailed = par.run(cmds, { hosts = { "4/" .. A, "4/" .. B }, ssh = ssh })
    assert.are.equal(0, nfailed)
    local count = {}
    for i = 1, 200 do
      assert.are.equal(i .. "\n", res[i].stdout)
      count[res[i].host] = (count[res[i].host] or 0) + 1
    end
    assert.is_true(count[A] > 0 and count[B] > 0)
    assert.are.equal(200, count[A] + count[B])
  end)

  it("applies env and cwd on the remote side and quotes argv commands", function()
    local res = par.run({ "echo \"$PAR_R|${HOME-unset}\"; pwd", { "printf", "%s", "a b'c$(id)" } },
      { hosts = { A }, ssh = ssh, env = { PAR_R = "x y", HOME = false }, cwd = "/usr" })
    assert.are.equal("x y|unset\n/usr\n", res[1].stdout)
    assert.are.equal("a b'c$(id)", res[2].stdout)
    assert.are.equal(A, res[1].host)
  end)

  it("sends a command's files to its host and brings some back with the option transfer", function()
    local here = H.tmpdir(finally)
    H.writefile(here .. "/in.txt", "x\n")
    local res = par.run({ "tr x y < in.txt > out.txt; pwd; cat out.txt" }, { hosts = { A }, ssh = ssh,
      transfer = function(i)
        assert.are.equal(1, i)
        return { send = { here .. "/./in.txt" }, back = { here .. "/./out.txt" }, cleanup = true,
          wd = "w/x" }
      end })
    assert.are.equal(dir .. "/home/w/x\ny\n", res[1].stdout)
    assert.are.equal("y\n", H.readfile(here .. "/out.txt"))
    assert.are.same({}, H.lines("ls -A " .. dir .. "/home"))        -- the files, then the dirs
    assert.has_error(function() par.run({ "true" }, { transfer = {} }) end,
      "bad argument #2 to 'run' (option 'transfer': function expected, got table)")
  end)

  it("mixes the local machine ':' with remote hosts and logs the host", function()
    local log = os.tmpname()
    finally(function() os.remove(log) end)
    os.remove(log)
    local cmds = {}
    for i = 1, 20 do cmds[i] = "sleep 0.05; echo " .. i end
    local res = par.run(cmds, { hosts = { "2/:", "2/" .. A }, ssh = ssh, joblog = log })
    local hosts = {}
    for _, r in ipairs(res) do hosts[r.host] = true end
    assert.is_true(hosts[":"] and hosts[A])
    local logged = {}
    for line in H.readfile(log):gmatch("[^\n]+") do
      local seq, host = line:match("^(%d+)\t([^\t]+)")
      if seq then logged[tonumber(seq)] = host end
    end
    for i = 1, 20 do assert.are.equal(res[i].host, logged[i]) end
  end)

  it("moves jobs off a host whose sshd stops halfway, losing nothing", function()
    local cmds = {}
    for i = 1, 60 do cmds[i] = "sleep 0.1; echo " .. i end
    local stopped = false
    local res, nfailed = par.run(cmds, {
      hosts = { "2/" .. A, "2/" .. B }, ssh = ssh,
      on_done = function(_, i)
        if i >= 10 and not stopped then
          stopped = true
          os.execute("sh spec/support/sshd.sh stop " .. dir .. " " .. B)
        end
      end,
    })
    assert.are.equal(0, nfailed)
    local lateA = 0
    for i = 1, 60 do
      assert.are.equal(i .. "\n", res[i].stdout)
      if i > 30 and res[i].host == A then lateA = lateA + 1 end
    end
    assert.are.equal(30, lateA)
  end)

  it("fails the remaining jobs with a message when every host is unreachable", function()
    os.execute("sh spec/support/sshd.sh stop " .. dir .. " " .. B)   -- if not stopped already
    local res, nfailed = par.run({ "true", "true" }, { hosts = { B }, ssh = ssh, retries = 2 })
    assert.are.equal(2, nfailed)
    assert.are.equal("error", res[1].status)
    assert.are.equal("no host left to run on: " .. B .. " unreachable (ssh exit 255)", res[1].error)
  end)

  it("stops the local ssh client on a timeout", function()
    local res = par.run({ "sleep 30" }, { hosts = { A }, ssh = ssh, timeout = 0.5 })
    assert.are.equal("timeout", res[1].status)
    assert.are.same({}, H.children())
  end)

  it("runs a par run config on hosts given by -S and --sshloginfile", function()
    local cfg, hostfile = os.tmpname(), os.tmpname()
    finally(function() os.remove(cfg); os.remove(hostfile) end)
    H.writefile(cfg, ("return { commands = { 'echo one', 'echo two', 'echo three' }, "
      .. "ssh = { 'ssh', '-F', %q } }"):format(dir .. "/ssh_config"))
    H.writefile(hostfile, "# hosts\n\n2/" .. A .. "\n")
    for _, opt in ipairs({ "-S 1/" .. A, "--sshloginfile " .. hostfile }) do
      local p = io.popen(H.env .. "lua5.4 bin/par -k " .. opt .. " run " .. cfg .. " 2>&1")
      local out = p:read("a")
      local ok = p:close()
      assert.are.equal("one\ntwo\nthree\n", out)
      assert.is_true(ok)
    end
  end)

  it("rejects bad host lists", function()
    assert.has_error(function() par.run({ "true" }, { hosts = {} }) end,
      "bad argument #2 to 'run' (option 'hosts': non-empty sequence of host names expected)")
    assert.has_error(function() par.run({ "true" }, { hosts = { "0/h" } }) end,
      "bad argument #2 to 'run' (option 'hosts': host #1: bad slot count in '0/h')")
    assert.has_error(function() par.run({ "true" }, { hosts = { "a b" } }) end,
      "bad argument #2 to 'run' (option 'hosts': host #1 must be a non-empty string without spaces)")
  end)
end)

-- The par command's options for -S hosts (par.cli.remote), each line run
-- by par and by GNU parallel over the same two sshd, in fresh dirs holding
-- the same files: the outputs, the files left here and on the hosts agree.
describe("par -S with files, --wd, --onall, --filter-hosts, --env #ssh", function()
  local gnu = require "spec.support.gnu"
  local dir, home, sshopt
  local FILES = { ["a.txt"] = "A\n", ["b.txt"] = "B\n", ["sub/s.txt"] = "S\n",
    ["base.txt"] = "BASE\n" }

  setup(function()
    dir = os.tmpname()
    os.remove(dir)
    local out = H.lines("sh spec/support/sshd.sh start " .. dir .. " 2>&1")
    assert(tonumber(out[#out]), "sshd did not start: " .. table.concat(out, "\n"))
    home = dir .. "/home"
    sshopt = "--ssh " .. H.quote("ssh -F " .. dir .. "/ssh_config") .. " "
  end)

  teardown(function()
    if dir then
      os.execute("sh spec/support/sshd.sh stop " .. dir)
      os.execute("rm -rf " .. dir)
    end
  end)

  local function listing(d)
    local find = " && find . -mindepth 1 -path './.*' -prune -o -print | sort"
    return table.concat(H.lines("cd " .. H.quote(d) .. find), " ")
  end

  -- 'which' runs "parallel " .. sshopt .. line; the result with the files
  -- here and on the host after, the remote home emptied again.
  local function run(which, line, opts)
    opts = opts or {}
    opts.files = opts.files or FILES
    local r = gnu.run(which, "parallel " .. sshopt .. line, opts)
    r.here, r.there = listing(r.dir), listing(home)
    r.stderr = r.stderr:gsub("parallel: Error: ", "par: "):gsub("parallel: ", "par: ")
      :gsub("'parallel ", "'par "):gsub(r.dir:gsub("%p", "%%%0"), ".")
    gnu.clean(r)
    os.execute("rm -rf " .. H.quote(home) .. "/* " .. H.quote(home) .. "/.parallel")
    return r
  end

  -- par's result, checked against GNU parallel's when it is installed.
  local function both(line, opts)
    local p = run("par", line, opts)
    if os.execute("command -v parallel >/dev/null") then
      local g = run("gnu", line, opts)
      assert.are.same({ g.stdout, g.stderr, g.status, g.here, g.there },
        { p.stdout, p.stderr, p.status, p.here, p.there })
    end
    return p
  end

  it("--trc sends each file, brings the result back and cleans up there", function()
    local r = both("-S 127.0.0.2,127.0.0.3 -k --trc {}.out 'tr A-Z a-z < {} > {}.out; cat {}.out'"
      .. " ::: a.txt b.txt sub/s.txt")
    assert.are.equal("a\nb\ns\n", r.stdout)
    assert.are.equal(0, r.status)
    assert.are.equal("./a.txt ./a.txt.out ./b.txt ./b.txt.out ./base.txt ./sub ./sub/s.txt"
      .. " ./sub/s.txt.out", r.here)
    assert.are.equal("", r.there)
  end)

  it("--transfer and --return without --cleanup leave the files on the host", function()
    local r = both("-S 127.0.0.2 --transfer --return {}.n 'wc -c < {} > {}.n' ::: a.txt sub/s.txt")
    assert.are.equal("", r.stdout)
    assert.are.equal("./a.txt ./a.txt.n ./sub ./sub/s.txt ./sub/s.txt.n", r.there)
    assert.matches("./a.txt.n ./b.txt", r.here, 1, true)
  end)

  it("--tf keeps what follows /./ of a path; a missing file is not sent, with a warning", function()
    local r = both("-S 127.0.0.2 -k --tf {} --cleanup 'cat s.txt; echo *' ::: ./sub/./s.txt")
    assert.are.equal("S\ns.txt ./sub/./s.txt\n", r.stdout)
    assert.are.equal("", r.there)
    r = both("-S 127.0.0.2 --transfer 'cat {}' ::: nosuch.txt")
    assert.are.equal(1, r.status)
    assert.matches("^par: Warning: nosuch.txt is not readable and will not be transferred.\n",
      r.stderr)
  end)

  it("--wd DIR runs the jobs in DIR on the host, made if need be; --wd ... in a new one", function()
    local r = both("-S 127.0.0.2 -k --wd w/x --trc {}.o 'pwd; cat {} > {}.o' ::: a.txt sub/s.txt")
    assert.are.equal((home .. "/w/x\n"):rep(2), r.stdout)
    assert.are.equal("", r.there)                   -- --cleanup: the emptied dirs too
    assert.matches("./a.txt.o", r.here, 1, true)
    r = both("-S 127.0.0.2 --wd ... --trc {}.o 'pwd | sed s/-[0-9]*-[0-9]*$/-N/; cat {} > {}.o'"
      .. " ::: a.txt")
    local host = H.lines("cat /proc/sys/kernel/hostname")[1]
    assert.are.equal(home .. "/.parallel/tmp/" .. host .. "-N\n", r.stdout)
    assert.are.equal(0, r.status)
    r = both("-S 127.0.0.2 -k --pipe -N1 --wd w 'pwd; cat'", { stdin = "a\nb\n" })
    assert.are.equal(home .. "/w\na\n" .. home .. "/w\nb\n", r.stdout)
  end)

  it("--basefile goes to each host before the first job; --cleanup removes it after", function()
    local r = both("-S 1/127.0.0.2 -k --bf base.txt 'cat base.txt {}' ::: a.txt")
    assert.are.equal("BASE\n", r.stdout)
    assert.are.equal("cat: a.txt: No such file or directory\n", r.stderr)
    assert.are.equal("./base.txt", r.there)
    r = both("-S 127.0.0.2,127.0.0.3 -k --bf base.txt --cleanup 'cat base.txt; echo {}' ::: 1 2")
    assert.are.equal("BASE\n1\nBASE\n2\n", r.stdout)
    assert.are.equal("", r.there)
  end)

  it("--onall runs every job on every host, --nonall the command once on each", function()
    local r = both("-S 127.0.0.3,127.0.0.2 -k --tag --onall 'echo {}; exit {}' ::: 0 1 2")
    assert.are.equal("127.0.0.2\t0\n127.0.0.2\t1\n127.0.0.2\t2\n"
      .. "127.0.0.3\t0\n127.0.0.3\t1\n127.0.0.3\t2\n", r.stdout)
    assert.are.equal(2, r.status)            -- a job failed on each of the two hosts
    r = both("-S 127.0.0.3,127.0.0.2 -k --nonall 'echo hi {}x; hostname >/dev/null'")
    assert.are.equal("hi x\nhi x\n", r.stdout)
    assert.are.equal(0, r.status)
    r = both("-S 127.0.0.2,127.0.0.3 -k --onall --trc {}.o 'cat {} > {}.o; echo *' ::: a.txt")
    assert.are.equal("a.txt a.txt.o\na.txt a.txt.o\n", r.stdout)
    assert.are.equal("", r.there)
  end)

  it("takes the hosts of every -S, not only the last", function()
    local r = both("-S 127.0.0.3 -S 127.0.0.2 -k --tag --nonall 'echo hi'")
    assert.are.equal("127.0.0.2\thi\n127.0.0.3\thi\n", r.stdout)
    assert.are.equal(0, r.status)
  end)

  it("--filter-hosts drops a host that is down, with a warning; none left is an error", function()
    local r = both("-S 127.0.0.2,127.0.0.9 --filter-hosts -k 'echo {}' ::: 1 2")
    assert.are.equal("1\n2\n", r.stdout)
    assert.are.equal("par: Warning: Removed 127.0.0.9.\n", r.stderr)
    r = both("-S 127.0.0.9 --filter-hosts echo ::: 1")
    assert.are.equal("par: Warning: Removed 127.0.0.9.\npar: Cannot run any jobs.\n", r.stderr)
    assert.are.equal(255, r.status)
  end)

  it("--env copies variables to the host; --env _ all but those --record-env saw", function()
    local env = { PV = "x y'z", PW = "2" }
    local r = both("-S 127.0.0.2 --env PV,NOSUCH --env PW"
      .. " 'echo \"[$PV]\" $PW ${NOSUCH-unset}' ::: 1", { env = env })
    assert.are.equal("[x y'z] 2 unset 1\n", r.stdout)
    r = both("-S 127.0.0.2 'echo \"[${PV-unset}]\"' ::: 1", { env = env })
    assert.are.equal("[unset] 1\n", r.stdout)
    r = both("-S 127.0.0.2 --env _ 'echo $PV' ::: 1", { env = env })
    assert.are.equal("par: Run 'par --record-env' in a clean environment first.\n", r.stderr)
    local line = "--record-env && export NEWV=new && parallel " .. sshopt
      .. "-S 127.0.0.2 --env _ 'echo $NEWV ${PV-unset}' ::: 1"
    r = both(line, { env = env })
    assert.are.equal("par: Cannot write to ./.parallel/ignored_vars.\n", r.stderr)
    local files = { [".parallel/.keep"] = "" }
    for k, v in pairs(FILES) do files[k] = v end
    r = both(line, { env = env, files = files })
    assert.are.equal("new unset 1\n", r.stdout)
  end)

  it("refuses --wd ... for jobs on this machine, and --joblog with --onall", function()
    local r = run("par", "--wd ... echo ::: 1")
    assert.are.equal("par: --wd ... is a new dir on each remote host: not supported for jobs"
      .. " on this machine\n" .. H.HINT, r.stderr)
    assert.are.equal(255, r.status)
    r = run("par", "-S 127.0.0.2 --onall --joblog log echo ::: 1")
    assert.are.same({ "par: --joblog with --onall or --nonall is not supported\n", 255, "" },
      { r.stderr, r.status, r.stdout })
  end)
end)
