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
