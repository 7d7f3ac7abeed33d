-- Writes the fuzzer's seed corpus: valid encodings of values of every kind.
-- Run from the repository root after `make`:
--   LUA_CPATH='./?.so;;' lua5.4 fuzz/make_corpus.lua [dir]
local core = require "par.core"

local dir = arg[1] or "fuzz/corpus"

local function cyclic()
  local t = { name = "root" }
  t.self = t
  t.child = { parent = t }
  t[t.child] = t
  return t
end

local function shared()
  local s = { 1, 2 }
  return { a = s, b = s, list = { s, s } }
end

local function nested(n)
  local t = {}
  local cur = t
  for _ = 2, n do cur.a = {}; cur = cur.a end
  return t
end

local seeds = {
  ["true"] = true, ["false"] = false,
  small_int = 7, int = 300, minint = math.mininteger,
  maxint = math.maxinteger, float = 1.5, negzero = -0.0, inf = math.huge,
  nan = string.unpack("<d", string.pack("<i8", 0x7ff8000000000123)),
  short_string = "hello", long_string = ("0123456789"):rep(10), binary = "\0\1\255",
  array = { 1, 2, 3, "x", false }, holes = { 1, nil, 3 },
  record = { name = "x", [1.5] = true, [false] = -0.0, ["a b"] = { deep = {} } },
  shared = shared(), cycle = cyclic(), nested = nested(20),
}

local n = 0
for name, v in pairs(seeds) do
  local f = assert(io.open(dir .. "/" .. name, "wb"))
  f:write(core.encode(v))
  f:close()
  n = n + 1
end
local f = io.open(dir .. "/nil", "wb")   -- nil can't be a table value above
f:write(core.encode(nil))
f:close()
print(("wrote %d seeds to %s"):format(n + 1, dir))
