-- ship: values for par.pool's workers, which were forked before the values
-- were made.  Functions travel as bytecode and upvalues, what the caller
-- reaches through package.loaded as its path, the globals table as a tag.
-- Most cases are decoded twice: here, and in a fresh lua5.4 that never had
-- the value (the real case).
local core = require "par.core"
local helpers = require "spec.helpers"

local ship, unship = core.ship, core.unship

local function roundtrip(v, root)
  local s = assert(ship(v, root))
  return assert(unship(s))
end

-- Ship 'v', then run 'code' in a child lua5.4 where the decoded value is
-- 'v' ('before' runs before the decoding); returns what the child printed
-- (stdout and stderr).
local function in_child(v, code, finally, before)
  local path = helpers.tmpfile(finally)
  helpers.writefile(path, assert(ship(v, "fn")))
  local out = helpers.lua((before or "") .. ([[
local core = require "par.core"
local f = assert(io.open(%q, "rb"))
local v = assert(core.unship(f:read("a")))
f:close()
]]):format(path) .. code)
  return out
end

describe("ship", function()
  describe("plain values", function()
    it("are encoded as the codec encodes them", function()
      for _, v in ipairs({ 0, -1, 1.5, "x", ("y"):rep(100), true, { 1, 2, a = { "b" } } }) do
        assert.are.equal(core.encode(v), ship(v))
      end
      assert.are.equal(core.encode(nil), ship(nil))
    end)

    it("keep cycles and shared subtables", function()
      local shared = { 1 }
      local t = { a = shared, b = shared }
      t.self = t
      local r = roundtrip(t)
      assert.are.equal(r, r.self)
      assert.are.equal(r.a, r.b)
      assert.are_not.equal(shared, r.a)
      assert.are.same({ 1 }, r.a)
    end)

    it("refuse a coroutine, naming it by root and path", function()
      local co = coroutine.create(print)
      local s, err = ship(co, "argument #2")
      assert.is_nil(s)
      assert.are.equal("cannot send argument #2 (a coroutine)", err)
      s, err = ship({ x = { co } }, "item #7")
      assert.is_nil(s)
      assert.are.equal("cannot send item #7 (a coroutine at item #7.x[1])", err)
    end)

    it("refuse a userdata that has no path, and a C function", function()
      local fh = io.tmpfile()
      finally(function() fh:close() end)
      assert.are.same({ nil, "cannot send value (a userdata)" }, { ship(fh) })
      local c = coroutine.wrap(function() end)   -- a C closure, in no module
      assert.are.same({ nil, "cannot send value (a C function at value.w)" }, { ship({ w = c }) })
    end)
  end)

  describe("paths", function()
    it("name a module, a module's field and a global function", function()
      assert.are.equal("string", core.ship_path(string))
      assert.are.equal("string.format", core.ship_path(string.format))
      assert.are.equal("io.stdout", core.ship_path(io.stdout))
      assert.are.equal("_G.print", core.ship_path(print))
      assert.are.equal("par.core.ship", core.ship_path(core.ship))
      assert.is_nil(core.ship_path(_G))                 -- a tag, not a path
      assert.is_nil(core.ship_path({}))
      assert.is_nil(core.ship_path(42))
    end)

    it("skip a module name that a path cannot hold", function()
      local name = "ship_spec\0nul"
      local mod = { f = function() return "copied" end }
      package.loaded[name] = mod
      finally(function() package.loaded[name] = nil end)
      assert.is_nil(core.ship_path(mod))
      assert.is_nil(core.ship_path(mod.f))
      assert.are.equal("copied", roundtrip(mod).f())
    end)

    it("win over copying: a module table travels as its name", function()
      local s = assert(ship(string))
      assert.is_true(#s < 10)
      assert.are.equal(string, assert(unship(s)))
      assert.are.equal(io.stdout, roundtrip(io.stdout))
      assert.are.equal(string.format, roundtrip({ f = string.format }).f)
    end)

    it("are refused by the plain codec's decoder", function()
      assert.has_error(function() core.decode(ship(string.format)) end, "par.decode: bad tag 0x0a")
    end)

    it("see a module loaded after the first ship", function()
      assert(ship(function() return print end))   -- the map is built by now
      local name = "ship_spec_late"
      local mod = { f = function() return "late" end }
      package.loaded[name] = mod
      finally(function() package.loaded[name] = nil end)
      assert.are.equal(name .. ".f", core.ship_path(mod.f))
      local g = roundtrip(function() return mod.f() end)
      assert.are.equal("late", g())
    end)

    it("resolve in a process that has not loaded the module yet", function()
      local util = require "par.util"
      local quote = util.quote
      assert.are.equal("par.util.quote", core.ship_path(quote))
      local out = in_child(function(s) return quote(s) end, [[
print(v("a b"), package.loaded["par.util"].quote == select(2, debug.getupvalue(v, 1)))
]], finally, [[
print(package.loaded["par.util"])
]])
      assert.are.equal("nil\n" .. util.quote("a b") .. "\ttrue\n", out)
    end)

    it("that cannot resolve are an error naming them", function()
      local name = "ship_spec_nowhere"
      package.loaded[name] = { f = function() end }
      finally(function() package.loaded[name] = nil end)
      local f = package.loaded[name].f
      local path = helpers.tmpfile(finally)
      helpers.writefile(path, assert(ship(function() return f end, "fn")))
      local out = helpers.lua(([[
local core = require "par.core"
local f = assert(io.open(%q, "rb"))
print(core.unship(f:read("a")))
]]):format(path))
      assert.are.equal("nil\tcannot resolve 'ship_spec_nowhere.f' in the worker: module 'ship_spec_nowhere' not found:",
        out:match("^[^\n]*"))
    end)
  end)

  describe("a function", function()
    it("keeps upvalues of every plain kind, in another process", function()
      local n, x, s, b = 41, 0.5, "str", false
      local t = { k = "v" }
      t.self = t
      local out = in_child(function()
        return n + 1, x, s, b, t.self.self.k, t.self == t
      end, "print(v())", finally)
      assert.are.equal("42\t0.5\tstr\tfalse\tv\ttrue\n", out)
    end)

    it("reaches modules through upvalues: string.format, cjson, io.stdout", function()
      local fmt = string.format
      local json = require "cjson"
      local out = io.stdout
      local printed = in_child(function(v)
        out:write(fmt("%s|", json.encode({ v })))
        return json == package.loaded.cjson
      end, "print(v(3))", finally)
      assert.are.equal("[3]|true\n", printed)
    end)

    it("finds the worker's globals through _ENV", function()
      local function f() return MARK, tostring(_G == _ENV) end -- luacheck: ignore 113
      local out = in_child(f, [[
MARK = "child"
print(v())
]], finally)
      assert.are.equal("child\ttrue\n", out)
      local g = roundtrip(_G)
      assert.are.equal(_G, g)
    end)

    it("binds any _ENV to the worker's globals, even a sandbox's", function()
      local f
      do
        local _ENV = setmetatable({ MARK = "sandbox" }, { __index = _G }) -- luacheck: ignore 211
        f = function() return MARK end -- luacheck: ignore 113
      end
      assert.are.equal("child\n", in_child(f, 'MARK = "child" print(v())', finally))
    end)

    it("carries a nested closure with upvalues of its own", function()
      local base = 10
      local function add(k) return base + k end
      local function twice(k) return add(add(k)) end
      assert.are.equal("25\n", in_child(function(k) return twice(k) end, "print(v(5))", finally))
    end)

    it("keeps a table shared by two closures shared", function()
      local state = { n = 0 }
      local function inc() state.n = state.n + 1 end
      local function get() return state.n end
      local both = { inc = inc, get = get }
      local out = in_child(both, "v.inc() v.inc() print(v.get())", finally)
      assert.are.equal("2\n", out)
    end)

    it("keeps a variable shared by two closures shared", function()
      local n = 0
      local function inc() n = n + 1 end
      local function get() return n end
      local out = in_child(function() inc(); inc(); return get(), n end, "print(v())", finally)
      assert.are.equal("2\t2\n", out)
    end)

    it("keeps variables shared past the first sixteen", function()
      local names, doubles, sums = {}, {}, {}
      for i = 1, 20 do
        names[i] = "a" .. i
        doubles[i] = ("a%d = a%d * 2"):format(i, i)
        sums[i] = "a" .. i
      end
      local make = assert(load(([[
local %s = %s
local function double() %s end
local function sum() return %s end
return function() double(); return sum() end]]):format(table.concat(names, ", "),
        table.concat({ 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20 }, ", "),
        table.concat(doubles, " "), table.concat(sums, " + "))))
      assert.are.equal("420\t840\n", in_child(make(), "print(v(), v())", finally))
    end)

    it("that refers to itself stays one function", function()
      local function fact(k) return k <= 1 and 1 or k * fact(k - 1) end
      local g = roundtrip(fact)
      assert.are.equal(120, g(5))
      assert.are.equal(g, select(2, debug.getupvalue(g, 1)))
    end)

    it("keeps its line numbers for tracebacks", function()
      local line = debug.getinfo(1, "l").currentline + 1
      local function boom() error("boom") end
      local out = in_child(boom, "print(select(2, pcall(v)))", finally)
      assert.are.equal(("spec/ship_spec.lua:%d: boom\n"):format(line), out)
    end)

    it("refuses a userdata upvalue with a message naming it", function()
      local conn = io.tmpfile()
      finally(function() conn:close() end)
      local cfg = { handle = conn }
      local function uses_conn() return conn end
      assert.are.same({ nil, "cannot send upvalue 'conn' of fn (a userdata)" },
        { ship(uses_conn, "fn") })
      assert.are.same({ nil, "cannot send upvalue 'cfg' of fn (a userdata at cfg.handle)" },
        { ship(function() return cfg end, "fn") })
      assert.are.same({ nil, "cannot send upvalue 'conn' of fn.uses_conn (a userdata)" },
        { ship(function() return uses_conn() end, "fn") })
    end)

    it("refuses a coroutine upvalue", function()
      local co = coroutine.create(print)
      assert.are.same({ nil, "cannot send upvalue 'co' of fn (a coroutine)" },
        { ship(function() return co end, "fn") })
    end)

    it("nested too deep is an error, not a crash", function()
      local f = function() return 0 end
      for _ = 1, 250 do
        local g = f
        f = function() return g() + 1 end
      end
      local s, err = ship(f, "fn")
      assert.is_nil(s)
      assert.matches("^cannot send upvalue 'g' of fn%.g%.g.*%(a function nested deeper than 200 levels%)$", err)
    end)
  end)

  describe("bytecode once, upvalues each call", function()
    it("set the upvalues a caller changed since", function()
      local n = 1
      local label = "a"
      local function f() return label .. n end
      local code = assert(core.ship_dump(f))
      local g = assert(core.ship_load(code))
      assert(core.ship_setupvalues(g, assert(core.ship_upvalues(f, "fn"))))
      assert.are.equal("a1", g())
      n, label = 2, "b"
      assert(core.ship_setupvalues(g, assert(core.ship_upvalues(f, "fn"))))
      assert.are.equal("b2", g())
    end)

    it("in another process", function()
      local n = 7
      local function f() return n * 6 end
      local path = helpers.tmpfile(finally)
      helpers.writefile(path, string.pack("<s4s4", assert(core.ship_dump(f)), assert(core.ship_upvalues(f))))
      local out = helpers.lua(([[
local core = require "par.core"
local f = assert(io.open(%q, "rb"))
local code, ups = string.unpack("<s4s4", f:read("a"))
local g = assert(core.ship_load(code))
assert(core.ship_setupvalues(g, ups))
print(g())
]]):format(path))
      assert.are.equal("42\n", out)
    end)

    it("name the refused upvalue after the root", function()
      local fh = io.tmpfile()
      finally(function() fh:close() end)
      assert.are.same({ nil, "cannot send upvalue 'fh' of fn (a userdata)" },
        { core.ship_upvalues(function() return fh end) })
    end)

    it("refuse a C function", function()
      assert.are.same({ nil, "cannot send fn (a C function)" }, { core.ship_dump(coroutine.wrap(print)) })
      assert.are.same({ nil, "cannot send fn (a C function)" }, { core.ship_upvalues(print) })
    end)

    it("refuse a block for another function", function()
      local a, b = 1, 2
      local ups = assert(core.ship_upvalues(function() return a, b end))
      local g = function() end
      assert.are.same({ nil, "bad upvalue count" }, { core.ship_setupvalues(g, ups) })
      assert.are.same({ nil, "not a Lua function" }, { core.ship_setupvalues(print, ups) })
    end)
  end)

  describe("the decoder", function()
    it("refuses garbage", function()
      assert.are.same({ nil, "truncated input" }, { unship("\8") })
      assert.are.same({ nil, "trailing garbage" }, { unship(ship(1) .. "x") })
      assert.are.same({ nil, "bad tag 0x0b" }, { unship("\11") })
      assert.are.equal("bad function: ", select(2, unship("\8\1x\0")):sub(1, 14))
    end)
  end)
end)
