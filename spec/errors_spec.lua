-- Issue 11: input that reached ssh as options, and errors that named a place
-- inside par instead of the caller's argument.  Each message is checked
-- exactly; the par command runs as a real subprocess, as in cli_spec.lua.
local par = require "par"
local H = require "spec.helpers"
local quote = par.quote

local ENV, PAR, HINT = H.PAR_ENV, H.PAR, H.HINT

local function tmpdir() return H.tmpdir(finally) end

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
    local res = par.run({ { "true" }, "echo x" }, 1, { hosts = { "h" }, ssh = { "printf", "[%s]" } })
    local env = "PARALLEL_SEQ=%d PARALLEL_JOBSLOT=1; export PARALLEL_SEQ PARALLEL_JOBSLOT; "
    assert.are.equal("[-o][BatchMode=yes][--][h][" .. env:format(1) .. "true]", res[1].stdout)
    assert.are.equal("[-o][BatchMode=yes][--][h][" .. env:format(2) .. "/bin/sh -c 'echo x']", res[2].stdout)
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

describe("par.core's option checks", function()
  local core = require "par.core"
  local ok = { { "true" } }

  local function runner_error(msg, cmds, opts)
    assert.has_error(function() core.runner(cmds, opts) end, msg)
  end

  it("name the argument and the option, as the Lua layer does", function()
    local function opt(msg, opts) runner_error("bad argument #2 to 'runner' (" .. msg .. ")", ok, opts) end
    opt("option 'jobs': integer expected, got string", { jobs = "x" })
    opt("option 'jobs': number has no integer representation", { jobs = 2.5 })
    opt("option 'jobs': must be >= 1, got 0", { jobs = 0 })
    opt("option 'jobs': integer expected, got nil", {})
    opt("option 'capture': boolean expected, got number", { jobs = 1, capture = 1 })
    opt("option 'timeout': must be a finite number > 0, got -1", { jobs = 1, timeout = -1 })
    opt("option 'kill_after': must be a finite number >= 0, got inf", { jobs = 1, kill_after = 1 / 0 })
    opt("option 'retries': number has no integer representation", { jobs = 1, retries = 1.5 })
    opt("option 'max_output': must be >= 0, got -1", { jobs = 1, max_output = -1 })
    opt("option 'halt': expected one of never, soon, now, got 'later'", { jobs = 1, halt = "later" })
    opt("option 'halt': expected one of never, soon, now, got number", { jobs = 1, halt = 1 })
    opt("option 'cwd': string contains a NUL byte", { jobs = 1, cwd = "a\0b" })
    opt("option 'stdin': string expected, got number", { jobs = 1, stdin = 1 })
    opt("option 'env': table expected, got string", { jobs = 1, env = "A=1" })
    opt("option 'env': bad variable name 'A=B'", { jobs = 1, env = { ["A=B"] = "x" } })
    opt("option 'env': variable 'A' must be a string without NUL bytes, or false", { jobs = 1, env = { A = true } })
    opt("option 'hosts': 1 to 4096 hosts expected", { jobs = 1, hosts = {} })
    opt("option 'hosts': host #1: table expected", { jobs = 1, hosts = { ":" } })
    opt("option 'hosts': host #1: slots: integer >= 1 expected",
      { jobs = 1, hosts = { { name = ":", slots = "x" } } })
    opt("option 'hosts': host #1: argv: element 2: string without NUL bytes expected",
      { jobs = 1, hosts = { { name = "h", slots = 1, argv = { "ssh", 2 } } }, remote = { "true" } })
    opt("option 'remote': table of command lines expected with option 'hosts'",
      { jobs = 1, hosts = { { name = ":", slots = 1 } } })
  end)

  it("name the command", function()
    runner_error("bad argument #1 to 'runner' (command #2: non-empty table of strings expected)",
      { { "true" }, "true" }, { jobs = 1 })
    runner_error("bad argument #1 to 'runner' (command #1: element 2: string without NUL bytes expected)",
      { { "echo", "a\0b" } }, { jobs = 1 })
  end)

  it("take a huge job or slot count as 'all at once'", function()
    local r <close> = core.runner(ok, { jobs = 3000000000, hosts = { { name = ":", slots = 3000000000 } },
      remote = { "true" } })
    local k, res = r:next()
    assert.are.same({ 1, true, ":" }, { k, res.ok, res.host })
  end)

  it("of core.map agree with par.map's", function()
    local id = function(x) return x end
    assert.has_error(function() core.map(id, { 1 }, { errors = "ignore" }) end,
      "bad argument #3 to 'map' (option 'errors': expected one of raise, collect, got 'ignore')")
    assert.has_error(function() core.map(id, { 1 }, { jobs = "2" }) end,
      "bad argument #3 to 'map' (option 'jobs': integer expected, got string)")
  end)
end)

describe("a huge par.map timeout", function()
  it("means 'practically never', in the Lua layer and in the core alike", function()
    local slow = function(x) if x == 2 then os.execute("sleep 0.3") end return x * 10 end
    assert.are.same({ 10, 20, n = 2 }, par.map(slow, { 1, 2 }, { timeout = 2e9 }))
    assert.are.same({ 10, 20, n = 2 }, par.map(slow, { 1, 2 }, { timeout = 1e300, procs = 2 }))
  end)

  it("still fails an item that runs past a small one", function()
    local res, errs = par.map(function() os.execute("sleep 5") end, { 1 }, { timeout = 0.2, errors = "collect" })
    assert.are.same({ { n = 1 }, { "par.map: item 1: timeout after 0.2s" } }, { res, errs })
  end)

  it("is refused only when it is not finite", function()
    assert.has_error(function() par.map(tostring, { 1 }, { timeout = 1 / 0 }) end,
      "bad argument #3 to 'map' (option 'timeout': must be a finite number > 0, got inf)")
    assert.has_error(function() require("par.core").map(tostring, { 1 }, { timeout = 1 / 0 }) end,
      "bad argument #3 to 'map' (option 'timeout': must be a finite number > 0, got inf)")
  end)
end)

describe("tables par is given", function()
  local RAW = "par reads tables raw, without metamethods"
  -- a proxy: its __len counts 3 items that __index makes up
  local function proxy()
    return setmetatable({}, { __len = function() return 3 end, __index = function(_, i) return "echo " .. i end })
  end

  it("are read raw: a proxy whose __len disagrees is a bad argument to par.map, not an empty result", function()
    assert.has_error(function() par.map(tostring, proxy()) end,
      "bad argument #2 to 'map' (__len says 3 but the raw length is 0; " .. RAW .. ")")
    assert.has_error(function() par.map(tostring, proxy(), { errors = "collect" }) end,
      "bad argument #2 to 'map' (__len says 3 but the raw length is 0; " .. RAW .. ")")
  end)

  it("are read raw by par.run, with the same words", function()
    assert.has_error(function() par.run(proxy()) end,
      "bad argument #1 to 'run' (__len says 3 but the raw length is 0; " .. RAW .. ")")
    local argv = setmetatable({ "echo" }, { __len = function() return 2 end, __index = function() return "x" end })
    assert.has_error(function() par.run({ "true", argv }) end,
      "bad argument #1 to 'run' (command #2: __len says 2 but the raw length is 1; " .. RAW .. ")")
  end)

  it("are read raw by par.core too", function()
    local core = require "par.core"
    assert.has_error(function() core.map(tostring, proxy(), {}) end,
      "bad argument #2 to 'map' (__len says 3 but the raw length is 0; " .. RAW .. ")")
    assert.has_error(function() core.map(tostring, proxy(), { n = 0 }) end,
      "bad argument #2 to 'map' (__len says 3 but the raw length is 0; " .. RAW .. ")")
    assert.has_error(function() core.runner(proxy(), { jobs = 1 }) end,
      "bad argument #1 to 'runner' (__len says 3 but the raw length is 0; " .. RAW .. ")")
  end)

  it("may be list objects with a metatable for their methods", function()
    local List = {}
    List.__index = List
    function List:size() return #self end
    local items = setmetatable({ 1, 2, 3 }, List)
    assert.are.same({ "1", "2", "3", n = 3 }, par.map(tostring, items, 2))
    local cmds = setmetatable({ "echo a", { "echo", "b" } }, { __index = List, __len = rawlen })
    local res = par.run(cmds)
    assert.are.same({ "a\n", "b\n" }, { res[1].stdout, res[2].stdout })
  end)

  it("have their options read raw: __index gives no option, __pairs is not called", function()
    local opts = setmetatable({}, { __index = { jobs = 0 }, __pairs = function() error("called __pairs") end })
    local res, nfailed = par.run({ "true" }, opts)
    assert.are.same({ true, 0 }, { res[1].ok, nfailed })
  end)
end)

describe("par.map(fn, items [, n] [, opts])", function()
  local function fails(x) error("no " .. x, 0) end

  it("takes a count and an options table, as par.run does", function()
    local first = function(s) return (s:match("^[^\n]*")) end
    local res, errs = par.map(fails, { 1, 2 }, 2, { errors = "collect" })
    assert.are.same({ { n = 2 }, "par.map: item 1: no 1", "par.map: item 2: no 2" },
      { res, first(errs[1]), first(errs[2]) })
    assert.are.same({ "1", "2", n = 2 }, par.map(tostring, { 1, 2 }, 2, { procs = 2 }))
    res, errs = par.map(fails, { 1 }, nil, { errors = "collect" })
    assert.are.same({ { n = 1 }, "par.map: item 1: no 1" }, { res, first(errs[1]) })
  end)

  it("refuses a procs option that contradicts the count, as par.run refuses jobs", function()
    assert.has_error(function() par.map(tostring, { 1 }, 2, { procs = 3 }) end,
      "bad argument #4 to 'map' (option 'procs' contradicts argument #3)")
    assert.has_error(function() par.run({ "true" }, 2, { jobs = 3 }) end,
      "bad argument #3 to 'run' (option 'jobs' contradicts argument #2)")
    assert.has_error(function() par.map(tostring, { 1 }, 2, "x") end,
      "bad argument #4 to 'map' (table expected, got string)")
    assert.has_error(function() par.map(tostring, { 1 }, 2, { foo = 1 }) end,
      "bad argument #4 to 'map' (unknown option 'foo')")
  end)

  it("refuses a value past the last argument, in par.run too", function()
    assert.has_error(function() par.map(tostring, { 1 }, 2, {}, "x") end,
      "bad argument #5 to 'map' (no value expected)")
    assert.has_error(function() par.map(tostring, { 1 }, {}, 2) end,
      "bad argument #4 to 'map' (no value expected)")
    assert.has_error(function() par.run({ "true" }, 2, {}, "x") end,
      "bad argument #4 to 'run' (no value expected)")
    assert.has_error(function() par.run({ "true" }, {}, 2) end,
      "bad argument #3 to 'run' (no value expected)")
  end)

  it("blames the caller's line", function()
    local ok, err = pcall(function() par.map(tostring, { 1 }, 2, {}, "x") end)
    assert.are.same({ false, "spec/errors_spec.lua:" .. (debug.getinfo(1, "l").currentline - 1)
      .. ": bad argument #5 to 'map' (no value expected)" }, { ok, err })
    ok, err = pcall(function() par.run({ "true" }, 2, { foo = 1 }) end)
    assert.are.same({ false, "spec/errors_spec.lua:" .. (debug.getinfo(1, "l").currentline - 1)
      .. ": bad argument #3 to 'run' (unknown option 'foo')" }, { ok, err })
  end)

  it("and par.run take options after a nil count", function()
    local res = par.run({ "cat" }, nil, { stdin = "in" })
    assert.are.equal("in", res[1].stdout)
  end)
end)

describe("error values with NUL bytes", function()
  local function head(s) return (s:match("^[^\n]*")) end

  it("keep every byte in par.map's raised error", function()
    local ok, err = pcall(par.map, function() error("a\0b", 0) end, { 1 })
    assert.are.same({ false, "par.map: item 1: a\0b" }, { ok, head(err) })
  end)

  it("keep every byte in par.map's collected errors", function()
    local res, errs = par.map(function(x) error(x .. "\0" .. x, 0) end, { "p", "q" }, { errors = "collect" })
    assert.are.same({ { n = 2 }, "par.map: item 1: p\0p", "par.map: item 2: q\0q" },
      { res, head(errs[1]), head(errs[2]) })
  end)

  it("keep every byte in an init error", function()
    local ok, err = pcall(par.map, tostring, { 1 }, { init = function() error("i\0j", 0) end })
    assert.are.same({ false, "par.map: init: i\0j" }, { ok, head(err) })
  end)
end)

describe("input lines with NUL bytes", function()
  it("are a usage error of par CMD naming the line and the argument; nothing after it runs", function()
    local dir = tmpdir()
    assert_usage("stdin:1: input 1 contains a NUL byte (use -0 for NUL-separated input)",
      par_cmd("touch", dir, "x\0y\nafter\n"))
    assert.are.same({}, listing(dir))
    -- the input streams: the lines before the bad one may have started already
    assert_usage("stdin:4: input 4 contains a NUL byte (use -0 for NUL-separated input)",
      par_cmd("touch", dir, "# comment\n\nran\nx\0y\nafter\n"))
    for _, name in ipairs(listing(dir)) do
      assert.is_true(name == "# comment" or name == "ran", name)
    end
  end)

  it("are a usage error of par -a FILE, naming the file", function()
    local dir, file = tmpdir(), os.tmpname()
    finally(function() os.remove(file) end)
    H.writefile(file, "touch ran\ntouch x\0y\n")
    assert_usage(file .. ":2: input 2 contains a NUL byte (use -0 for NUL-separated input)",
      par_cmd("-a " .. quote(file), dir))
    assert.are.same({}, listing(dir))
  end)

  it("are fine with -0, where NUL ends an item", function()
    assert.are.same({ "a\nb\n", "", 0 }, { par_cmd("-0 -k echo", tmpdir(), "a\0b\0") })
  end)
end)

describe("a failure of the system itself", function()
  -- One child lua5.4 per limit: each prints what par.run and par.map gave.
  local CALLS = [[
    local par = require "par"
    local function show(what, ok, a, b, c)
      if not ok then print(what, "raised", a) elseif a == nil then print(what, "nil", b, c)
      else print(what, "ok") end
    end
    show("run", pcall(function()
      local res, why, errno = par.run({ "echo hi" }, 1)
      if not res then return res, why, errno end
      -- a command that could not start is data: the call itself did not fail
      if res[1].stdout == "hi\n" or res[1].error == "cannot run '/bin/sh': pipe: Too many open files" then
        return res
      end
      return nil, "wrong result: " .. tostring(res[1].status), 0
    end))
    show("map", pcall(function()
      local res, why, errno = par.map(function(x) return x * 2 end, { 1, 2, 3 }, 2)
      if res and res[3] ~= 6 then return nil, "wrong result", 0 end
      return res, why, errno
    end))
  ]]

  it("is nil, 'what: strerror', errno from par.run and par.map under ulimit -n #child_lua", function()
    local failed = { run = 0, map = 0 }
    for n = 4, 12 do
      -- stderr joins stdout before the limit: dash cannot redirect under it
      local p = assert(io.popen(("exec 2>&1; ulimit -n %d; %slua5.4 -e %s"):format(n, H.env, quote(CALLS))))
      local out = p:read("a")
      p:close()
      for call, how, rest in out:gmatch("(%a+)\t(%a+)([^\n]*)\n") do
        if how == "nil" then
          assert.matches("^\t%a[%w_ /]*: Too many open files\t24$", rest)
          failed[call] = failed[call] + 1
        else
          assert.are.equal("ok", how, call .. " under ulimit -n " .. n .. ": " .. how .. rest)
        end
      end
      assert.are.equal(2, select(2, out:gsub("\n", "")), out)
    end
    assert.is_true(failed.run > 0 and failed.map > 0)   -- the limits did bite
  end)

  it("is nil, 'joblog: PATH: strerror', errno when the joblog cannot be opened", function()
    local res, why, errno = par.run({ "true" }, { joblog = "/etc/passwd/log" })
    assert.are.same({ nil, "joblog: /etc/passwd/log: Not a directory", 20 }, { res, why, errno })
  end)

  it("is nil, msg, errno for a joblog in a directory par may not write #child_lua", function()
    local dir = tmpdir()
    os.execute("chmod 555 " .. dir)
    local script = os.tmpname()
    finally(function() os.remove(script) end)
    H.writefile(script, ("print(require('par').run({ 'true' }, { joblog = %q }))"):format(dir .. "/log"))
    os.execute("chmod 644 " .. script)
    local p = assert(io.popen(("setpriv --reuid=47321 --regid=47321 --clear-groups env %slua5.4 %s 2>&1")
      :format(H.env, script)))
    local out = p:read("a")
    p:close()
    assert.are.equal(("nil\tjoblog: %s/log: Permission denied\t13\n"):format(dir), out)
  end)
end)
