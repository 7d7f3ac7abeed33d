-- par.options is the one list of every option: the API, the par command,
-- its configs, --help and README all follow it.
local par = require "par"
local core = require "par.core"
local options = require "par.options"
local H = require "spec.helpers"

-- README's option table of section 'title': { name = { default, alias } }.
local function readme_table(title)
  local text = H.readfile(H.ROOT .. "/README.md")
  local from = assert(text:find("\n## " .. title .. "\n", 1, true), title)
  local section = text:sub(from + 1):match("^(.-)\n## ") or text:sub(from + 1)
  local rows = {}
  local intable = false
  for line in section:gmatch("[^\n]*") do
    if line == "| option | default | |" then
      intable = true
    elseif intable and line:find("^|") then
      local names, default = line:match("^| ([^|]-) | ([^|]-) |")
      local name = names and names:match("^`([%w_]+)`")
      if name then rows[name] = { default, names:match("^`[%w_]+` %(`([%w_]+)`%)") } end
    elseif intable then
      break
    end
  end
  return rows
end

local function spec_table(call)
  local rows = {}
  for _, o in ipairs(options[call]) do
    if not o.arg then rows[o.name] = { o.default or "—", o.alias } end
  end
  return rows
end

describe("par.options", function()
  it("is what README's par.run option table lists, with the same defaults", function()
    assert.are.same(spec_table("run"), readme_table("par.run"))
  end)

  it("is what README's par.map option table lists, with the same defaults and aliases", function()
    assert.are.same(spec_table("map"), readme_table("par.map"))
  end)

  it("gives par --help every flag once, with its help line", function()
    local help = H.help_entries()
    local seen = {}
    for _, f in ipairs(options.flags()) do
      local name = f.long and "--" .. f.long or "-" .. f.short
      local found = 0
      for _, line in ipairs(help) do
        if (line .. " "):find(name .. (f.long and " " or ""), 1, true) and line:find(f.help, 1, true) then
          found = found + 1
        end
      end
      assert.are.equal(1, found, name)
      assert.is_nil(seen[name], name .. " listed twice")
      seen[name] = true
    end
  end)

  it("puts every flag in one section of --help, and names in sections only options with flags", function()
    local sections = options.sections()
    local count = 0
    for _, sec in ipairs(sections) do
      assert.are_not.equal("Other options", sec.title, "a flag in no section: " .. tostring(sec[1] and sec[1].long))
      count = count + #sec
    end
    assert.are.equal(#options.flags(), count)
    local flagged = {}
    for _, f in ipairs(options.flags()) do flagged[f.option.name] = true end
    for _, g in ipairs(options.GROUPS) do
      for _, name in ipairs(g) do assert.is_true(flagged[name], name) end
    end
  end)

  it("names a flag that no entry lists nowhere", function()
    local flags = {}
    for _, f in ipairs(options.flags()) do
      if f.long then flags["--" .. f.long] = true end
    end
    for _, line in ipairs(H.help_entries()) do
      local flag = line:match("^  %-?%w?,? *(%-%-[%w-]+)")
      if flag then assert.is_true(flags[flag], flag) end
    end
  end)

  it("has one checker per config key: par run and par map configs take every option", function()
    for _, call in ipairs({ "run", "map" }) do
      for _, o in ipairs(options[call]) do
        assert.is_function(options.config_check(call, o.name), call .. " " .. o.name)
      end
    end
    assert.is_function(options.config_check("run", "keep_order"))
    assert.is_function(options.config_check("map", "format"))
    assert.is_function(options.config_check("map", "procs"))
    assert.is_nil(options.config_check("map", "retries"))
    assert.is_nil(options.config_check("run", "format"))
  end)
end)

describe("a bad value of an option the core reads", function()
  -- Values wrong for one option or another: each option gets them all.
  local BAD = { -1, 0, 1.5, 2.0, 1 / 0, -1 / 0, "x", "", true, false, {}, { A = 1 }, { ["A=B"] = "v" },
    { A = "a\0b" }, "a\0b", function() end }

  local function message(f)
    local ok, err = pcall(f)
    if ok then return "accepted" end
    return (tostring(err):match("%((option .*)%)$")) or err
  end

  it("has the same message from par.run and from par.core", function()
    local n = 0
    for _, o in ipairs(options.run) do
      if o.core then
        for _, v in ipairs(BAD) do
          local lua = message(function() par.run({ "true" }, { [o.name] = v }) end)
          local c = message(function()
            local r = core.runner({ { "true" } }, { jobs = 1, [o.name] = v })
            if r then r:close() end
          end)
          assert.are.equal(lua, c, o.name .. " = " .. tostring(v))
          if lua ~= "accepted" then n = n + 1 end
        end
      end
    end
    assert.is_true(n > 50)                    -- most values are bad for most options
  end)

  it("has the same message from par.map and from par.core", function()
    local id = function(x) return x end
    local n = 0
    for _, o in ipairs(options.map) do
      if not o.arg and o.name ~= "progress" then   -- progress is the Lua layer's own
        for _, v in ipairs(BAD) do
          local lua = message(function() par.map(id, { 1 }, { [o.name] = v }) end)
          local c = message(function() core.map(id, { 1 }, { [o.name] = v }) end)
          assert.are.equal(lua, c, o.name .. " = " .. tostring(v))
          if lua ~= "accepted" then n = n + 1 end
        end
      end
    end
    assert.is_true(n > 50)
  end)

  it("names the option the same way for jobs, in par.run and par.core", function()
    for _, v in ipairs({ 0, -3, 1.5 }) do
      assert.are.equal(message(function() par.run({ "true" }, { jobs = v }) end),
        message(function() core.runner({ { "true" } }, { jobs = v }) end))
    end
  end)
end)

describe("par.run and par.map take (x, list [, n] [, opts])", function()
  local id = function(x) return x end

  it("as jobs in both, and par.map's procs as its alias", function()
    assert.are.same({ "a\n", "b\n" }, (function()
      local r = par.run({ "echo a", "echo b" }, { jobs = 2 })
      return { r[1].stdout, r[2].stdout }
    end)())
    local calls = { { 2 }, { { jobs = 2 } }, { { procs = 2 } }, { 2, { jobs = 2 } }, { nil, { procs = 1 } } }
    for _, args in ipairs(calls) do
      local r = par.map(id, { 1, 2, 3 }, table.unpack(args, 1, 2))
      assert.are.same({ 1, 2, 3, n = 3 }, r)
    end
  end)

  it("raises on a value past the options, in both", function()
    assert.has_error(function() par.run({ "true" }, 1, {}, 3) end, "bad argument #4 to 'run' (no value expected)")
    assert.has_error(function() par.map(id, { 1 }, 1, {}, 3) end, "bad argument #5 to 'map' (no value expected)")
    assert.has_error(function() par.run({ "true" }, {}, 1) end, "bad argument #3 to 'run' (no value expected)")
    assert.has_error(function() par.map(id, { 1 }, {}, 1) end, "bad argument #4 to 'map' (no value expected)")
  end)

  it("refuses a count that contradicts opts.jobs, in both", function()
    assert.has_error(function() par.run({ "true" }, 1, { jobs = 2 }) end,
      "bad argument #3 to 'run' (option 'jobs' contradicts argument #2)")
    assert.has_error(function() par.map(id, { 1 }, 1, { jobs = 2 }) end,
      "bad argument #4 to 'map' (option 'jobs' contradicts argument #3)")
  end)

  it("words a bad count the same way in both", function()
    for _, v in ipairs({ 0, 1.5, "2", true }) do
      local _, run_err = pcall(par.run, { "true" }, v)
      local _, map_err = pcall(par.map, id, { 1 }, v)
      assert.are.equal(run_err:match("%((.*)%)$"), map_err:match("%((.*)%)$"))
    end
  end)
end)

describe("nfailed", function()
  local function cli_status(args)
    local p = io.popen(H.env .. "lua5.4 bin/par " .. args .. " >/dev/null 2>&1; echo $?")
    local status = tonumber(p:read("a"))
    p:close()
    return status
  end

  it("is the par command's exit status, whether halt skipped commands or not", function()
    local cmds = { "true", "false", "exit 3", "true" }
    for _, halt in ipairs({ "never", "soon", "now" }) do
      local _, nfailed = par.run(cmds, { jobs = 1, halt = halt })
      local quoted = {}
      for i, c in ipairs(cmds) do quoted[i] = par.quote(c) end
      assert.are.equal(nfailed, cli_status("-j1 --halt " .. halt .. " ::: " .. table.concat(quoted, " ")), halt)
    end
  end)

  it("is the par command's exit status after a resume that skips logged failures", function()
    local log = H.tmpdir(finally) .. "/log"
    local cmds = { "true", "false", "true" }
    par.run({ cmds[1], cmds[2] }, { joblog = log })
    local _, nfailed = par.run(cmds, { joblog = log, resume = true })
    assert.are.equal(0, nfailed)
    assert.are.equal(0, cli_status("--joblog " .. log .. " --resume ::: true false true"))
  end)
end)
