-- Issue 11: input that reached ssh as options, and errors that named a place
-- inside par instead of the caller's argument.  Each message is checked
-- exactly; the par command runs as a real subprocess, as in cli_spec.lua.
local par = require "par"
local H = require "spec.helpers"
local quote = par.quote

local ROOT = assert(io.popen("pwd")):read("l")
local ENV = ("LUA_PATH=%s LUA_CPATH=%s "):format(
  quote(ROOT .. "/lua/?.lua;" .. ROOT .. "/lua/?/init.lua;;"), quote(ROOT .. "/?.so;;"))
local PAR = "lua5.4 " .. quote(ROOT .. "/bin/par")
local HINT = "usage: par [options] [CMD] [::: ARG...] | par [options] run|map CONFIG.lua; see par --help\n"

local function tmpdir()
  local d = assert(io.popen("mktemp -d")):read("l")
  finally(function() os.execute("rm -rf " .. quote(d)) end)
  return d
end

-- The names in folder 'd', sorted.
local function listing(d)
  local names = H.lines("ls -A " .. quote(d))
  table.sort(names)
  return names
end

-- Run 'cmd' (shell text) in the fresh folder 'dir' with stdin 'input';
-- returns stdout, stderr and the exit status.  The output files live
-- outside 'dir', so that a spec can check that nothing else appeared there.
local function sh(cmd, dir, input)
  local io_dir = tmpdir()
  local inp, out, err = io_dir .. "/in", io_dir .. "/out", io_dir .. "/err"
  H.writefile(inp, input or "")
  local _, _, status = os.execute(("cd %s && %s <%s >%s 2>%s"):format(
    quote(dir), cmd, quote(inp), quote(out), quote(err)))
  return H.readfile(out), H.readfile(err), status
end

-- par with the shell words 'args'.
local function par_cmd(args, dir, input)
  return sh(ENV .. PAR .. " " .. args, dir, input)
end

-- Lua code in a child lua5.4, in folder 'dir', par on the paths.
local function lua_in(dir, code)
  local script = os.tmpname()
  finally(function() os.remove(script) end)
  H.writefile(script, code)
  return sh(ENV .. "lua5.4 " .. quote(script), dir)
end

local function assert_usage(msg, out, err, status)
  assert.are.same({ "", "par: " .. msg .. "\n" .. HINT, 255 }, { out, err, status })
end

local INJECT = "-oProxyCommand=touch${IFS}PWNED"

describe("host names that ssh would take for options", function()
  it("are a bad argument to par.run, and nothing runs", function()
    local dir = tmpdir()
    local out, err, status = lua_in(dir, [[
      local par = require "par"
      local ok, e = pcall(par.run, {{"true"}}, {hosts = {"-oProxyCommand=touch${IFS}PWNED"}})
      io.write(tostring(ok), "\n", e, "\n")
    ]])
    assert.are.same({ "false\nbad argument #2 to 'run' (option 'hosts': host #1: '" .. INJECT
      .. "' begins with '-' (ssh would take it for an option))\n", "", 0 }, { out, err, status })
    assert.are.same({}, listing(dir))   -- no PWNED
  end)

  it("are rejected after an N/ prefix too, as argument #3 after a job count", function()
    local dir = tmpdir()   -- where ssh would run the ProxyCommand
    assert.has_error(function()
      par.run({ { "true" } }, 2, { hosts = { ":", "2/" .. INJECT }, cwd = dir })
    end, "bad argument #3 to 'run' (option 'hosts': host #2: '" .. INJECT
      .. "' begins with '-' (ssh would take it for an option))")
    assert.are.same({}, listing(dir))
  end)

  it("reach ssh after its end of options, so a host is never an option", function()
    local res = par.run({ { "true" }, "echo x" }, { hosts = { "h" }, ssh = { "printf", "[%s]" } })
    assert.are.equal("[-o][BatchMode=yes][--][h][true]", res[1].stdout)
    assert.are.equal("[-o][BatchMode=yes][--][h][/bin/sh -c 'echo x']", res[2].stdout)
  end)

  it("are a usage error of par -S, and nothing runs", function()
    local dir = tmpdir()
    assert_usage("--sshlogin: '" .. INJECT .. "' begins with '-' (ssh would take it for an option)",
      par_cmd("-S " .. quote(":," .. INJECT) .. " touch ::: ran", dir))
    assert.are.same({}, listing(dir))
  end)

  it("are a usage error of par --sshloginfile, naming the line, and nothing runs", function()
    local dir, hosts = tmpdir(), os.tmpname()
    finally(function() os.remove(hosts) end)
    H.writefile(hosts, "# hosts\n:\n  " .. INJECT .. "\n")
    assert_usage(("--sshloginfile: %s:3: '%s' begins with '-' (ssh would take it for an option)")
      :format(hosts, INJECT), par_cmd("--sshloginfile " .. quote(hosts) .. " touch ::: ran", dir))
    assert.are.same({}, listing(dir))
  end)
end)

describe("slot counts of hosts", function()
  it("are bounded in par.run, naming the host", function()
    assert.has_error(function() par.run({ "true" }, { hosts = { ":", "3000000000/:" } }) end,
      "bad argument #2 to 'run' (option 'hosts': host #2: bad slot count in '3000000000/:' (at most 65536))")
    assert.has_error(function() par.run({ "true" }, { hosts = { "99999999999999999999/:" } }) end,
      "bad argument #2 to 'run' (option 'hosts': host #1: bad slot count in '99999999999999999999/:')")
    local res, nfailed = par.run({ "echo a", "echo b" }, { hosts = { "65536/:" } })
    assert.are.same({ 0, "a\n", "b\n" }, { nfailed, res[1].stdout, res[2].stdout })
  end)

  it("come from a huge opts.jobs as 'practically all', as jobs does without hosts", function()
    local res, nfailed = par.run({ "echo a", "echo b" }, { jobs = 3000000000, hosts = { ":" } })
    assert.are.same({ 0, "a\n", "b\n" }, { nfailed, res[1].stdout, res[2].stdout })
  end)

  it("are bounded in par -S", function()
    assert_usage("--sshlogin: bad slot count in '3000000000/:' (at most 65536)",
      par_cmd("-S 3000000000/: true ::: 1", tmpdir()))
  end)
end)
