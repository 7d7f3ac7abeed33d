-- Writes ship_fuzz's seed corpus: a byte for the mode (0: a value, 1: an
-- upvalue block for a 3-upvalue closure), then a valid encoding.  Run from
-- the repository root after `make`:
--   LUA_CPATH='./?.so;;' lua5.4 fuzz/make_ship_corpus.lua [dir]
local core = require "par.core"

local dir = arg[1] or "fuzz/ship_corpus"

local function cyclic()
  local t = { name = "root", fmt = string.format }
  t.self = t
  t.child = { parent = t, g = _G }
  return t
end

local values = {
  path_module = string, path_field = string.format, path_global = print,
  path_userdata = io.stdout, globals = _G, nested_path = { package.loaded, math.huge },
  shared = (function() local s = { io.write } return { s, s, { s } } end)(),
  cycle = cyclic(), plain = { 1, "x", false, 2.5 },
}

-- Upvalue blocks of closures shaped as ship_fuzz's: a, b, c.
local function block(a, b, c)
  return core.ship_upvalues(function() return a, b, c end)
end

local blocks = {
  numbers = block(1, 2.5, -3), paths = block(string.format, io.stderr, _G),
  tables = block({ 1 }, { x = { y = string } }, "s"),
}
local function shared_self()      -- an upvalue that is the closure itself
  local a, b, c
  local f = function() return a, b, c end
  a, b, c = f, { f }, 3
  return core.ship_upvalues(f)
end
blocks.self = shared_self()

local n = 0
local function put(name, mode, s)
  local f = assert(io.open(dir .. "/" .. name, "wb"))
  f:write(mode, assert(s))
  f:close()
  n = n + 1
end
for name, v in pairs(values) do put(name, "\0", core.ship(v)) end
for name, s in pairs(blocks) do put("upvalues_" .. name, "\1", s) end
-- a join: upvalue 2 shares upvalue 1's variable (function id 0, upvalue 1)
put("upvalues_join", "\1", "\3\129\11\0\1\130")
print(("wrote %d seeds to %s"):format(n, dir))
