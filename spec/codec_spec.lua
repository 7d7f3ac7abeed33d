-- The value codec: par.map results travel with it, and its decoder
-- treats its input as untrusted.
local core = require "par.core"

local encode, decode = core.encode, core.decode

local function bits(x) return string.pack("<d", x) end

local function float_of(u) return (string.unpack("<d", string.pack("<i8", u))) end

-- Compares two value graphs exactly: subtypes, float bits, and the shape of
-- shared references (a table seen twice in 'a' must be one table in 'b').
local function same(a, b, map)
  map = map or {}
  if type(a) ~= type(b) then return false end
  if type(a) == "number" then
    return math.type(a) == math.type(b) and
      (math.type(a) == "integer" and a == b or bits(a) == bits(b))
  end
  if type(a) ~= "table" then return a == b end
  if map[a] ~= nil then return map[a] == b end
  map[a] = b
  local n = 0
  for k, v in next, a do
    n = n + 1
    if type(k) ~= "table" then
      if not same(v, rawget(b, k), map) then return false end
    elseif map[k] ~= nil then
      if not same(v, rawget(b, map[k]), map) then return false end
    else
      -- a table key cannot be looked up in the copy: find one of its shape
      local found = false
      for k2, v2 in next, b do
        local m2 = setmetatable({}, { __index = map })
        if type(k2) == "table" and same(k, k2, m2) and same(v, v2, m2) then
          for x, y in next, m2 do map[x] = y end
          found = true
          break
        end
      end
      if not found then return false end
    end
  end
  for _ in next, b do n = n - 1 end
  return n == 0
end

local function roundtrip(v)
  return decode(encode(v))
end

local function varint(u)
  local t = {}
  repeat
    local byte = u & 0x7f
    u = u >> 7
    t[#t + 1] = string.char(u ~= 0 and byte | 0x80 or byte)
  until u == 0
  return table.concat(t)
end

describe("par.core.encode and decode", function()

  describe("round-trip", function()
    it("nil and booleans", function()
      assert.is_nil(roundtrip(nil))
      assert.is_true(roundtrip(true))
      assert.is_false(roundtrip(false))
    end)

    it("integers, keeping the subtype, at every varint length", function()
      local cases = { 0, 1, -1, 63, 64, 127, 128, -64, -65, 255, 256, 1 << 31,
        -(1 << 31), 1 << 32, (1 << 53) + 1, math.maxinteger, math.mininteger,
        math.maxinteger - 1, math.mininteger + 1 }
      for i = 0, 63 do
        cases[#cases + 1] = 1 << i
        cases[#cases + 1] = -(1 << i)
        cases[#cases + 1] = (1 << i) - 1
      end
      for _, i in ipairs(cases) do
        local d = roundtrip(i)
        assert.equal("integer", math.type(d))
        assert.equal(i, d)
      end
    end)

    it("floats bit for bit, with -0.0, infinities and NaN payloads", function()
      local cases = { 0.0, -0.0, 1.0, -1.5, math.pi, 1e308, -1e-308, 5e-324,
        math.huge, -math.huge, 0 / 0, -(0 / 0), 2.0 ^ 63, -2.0 ^ 63,
        float_of(0x7ff8000000000123), float_of(0x7ff0000000000001),
        float_of(-0x0000000000000001) }    -- 0xffff...: NaN, sign set, full payload
      for _, x in ipairs(cases) do
        local d = roundtrip(x)
        assert.equal("float", math.type(d))
        assert.equal(bits(x), bits(d))
      end
      assert.equal(-math.huge, 1 / roundtrip(-0.0))
      assert.equal(math.huge, 1 / roundtrip(0.0))
      local nan = roundtrip(0 / 0)
      assert.is_true(nan ~= nan)
    end)

    it("strings of every short length and binary content", function()
      local all = {}
      for i = 0, 255 do all[#all + 1] = string.char(i) end
      all = table.concat(all)
      for n = 0, 300 do
        local s = all:rep(2):sub(1, n)
        assert.equal(s, roundtrip(s))
      end
      assert.equal("a\0b", roundtrip("a\0b"))
    end)

    it("a 100 MB string", function()
      local s = ("\0\1\2\255"):rep(25 * 2 ^ 20)
      local e = encode(s)
      assert.equal(#s + 5, #e)         -- tag, 4-byte length, the bytes
      local d = decode(e)
      assert.equal(#s, #d)
      assert.is_true(s == d)
    end)

    it("nested tables with keys of every kind", function()
      local t = {
        1, 2.5, "three", { 4, { 5, { 6 } } }, false,
        name = "x", ["a b"] = { deep = { deeper = { "y" } } },
        [true] = "t", [false] = 0, [1.5] = -0.0, [-7] = math.mininteger,
        [math.huge] = "inf", [{ "key" }] = { "value" }, [""] = "",
        [0] = "zero", [100] = "sparse",
      }
      local d = roundtrip(t)
      assert.is_true(same(t, d))
      assert.equal("three", d[3])
      assert.equal("y", d["a b"].deep.deeper[1])
      assert.equal("t", d[true])
      assert.equal(1 / -0.0, 1 / d[1.5])
      assert.equal("sparse", d[100])
    end)

    it("arrays with holes", function()
      local t = { 1, nil, 3, nil, nil, 6, n = 6 }
      local d = roundtrip(t)
      assert.is_true(same(t, d))
      local u = {}
      for i = 0, 20 do u[1 << i] = i end     -- a border far from the others
      assert.is_true(same(u, roundtrip(u)))
    end)

    it("an empty table, and tables of nils alone", function()
      assert.is_true(same({}, roundtrip({})))
      assert.is_true(same({ {}, { {} } }, roundtrip({ {}, { {} } })))
    end)

    it("a table shared twice as one table", function()
      local shared = { 1, 2 }
      local t = { a = shared, b = shared, list = { shared, shared } }
      local d = roundtrip(t)
      assert.is_true(d.a == d.b)
      assert.is_true(d.a == d.list[1] and d.a == d.list[2])
      assert.same({ 1, 2 }, d.a)
    end)

    it("cycles, including through keys", function()
      local t = { name = "root" }
      t.self = t
      t.child = { parent = t }
      t[t.child] = t
      local d = roundtrip(t)
      assert.is_true(d.self == d)
      assert.is_true(d.child.parent == d)
      assert.is_true(d[d.child] == d)
      assert.is_true(same(t, d))
    end)

    it("ignores metatables and never calls metamethods", function()
      local function boom() error("metamethod called") end
      local mt = { __index = boom, __newindex = boom, __pairs = boom, __len = boom }
      local t = setmetatable({ 1, 2, x = setmetatable({ 3 }, mt) }, mt)
      local d = roundtrip(t)
      assert.is_nil(getmetatable(d))
      assert.is_nil(getmetatable(d.x))
      assert.equal(3, d.x[1])
      assert.equal(2, #d)
    end)

    it("200 nested levels", function()
      local t = {}
      local cur = t
      for _ = 2, 200 do cur.a = {}; cur = cur.a end
      cur.leaf = true
      local d = roundtrip(t)
      for _ = 2, 200 do d = d.a end
      assert.is_true(d.leaf)
    end)
  end)

  describe("format", function()
    it("uses one byte for small integers, nil and booleans", function()
      assert.equal("\x80", encode(0))
      assert.equal("\xff", encode(127))
      assert.equal("\3\x80\2", encode(128))
      assert.equal("\3\1", encode(-1))
      assert.equal("\0", encode(nil))
      assert.equal("\1", encode(false))
      assert.equal("\2", encode(true))
    end)

    it("uses tag + bytes for short strings, tag + length + bytes above", function()
      assert.equal("\x42hi", encode("hi"))
      assert.equal("\x7f" .. ("x"):rep(63), encode(("x"):rep(63)))
      assert.equal("\5\64" .. ("x"):rep(64), encode(("x"):rep(64)))
    end)

    it("writes floats as 8 little-endian bytes", function()
      assert.equal("\4" .. string.pack("<d", 1.5), encode(1.5))
    end)

    it("writes tables as counts, values, pairs and back-references", function()
      assert.equal("\6\2\0\x81\x82", encode({ 1, 2 }))
      local t = {}
      t[1] = t
      assert.equal("\6\1\0\7\0", encode(t))
      assert.equal("\6\0\1\x41k\x80", encode({ k = 0 }))
    end)
  end)

  describe("encode errors", function()
    local function err(v, root)
      local ok, msg = pcall(encode, v, root)
      assert.is_false(ok)
      return msg
    end

    it("names the path of a function, userdata or thread", function()
      assert.equal("cannot send a function (at result.handler)",
        err({ handler = print }, "result"))
      assert.equal("cannot send a userdata (at result[3].x)",
        err({ 1, 2, { x = io.stdout } }, "result"))
      assert.equal("cannot send a thread (at value)", err(coroutine.create(print)))
      assert.equal("cannot send a function (at value)", err(print))
      assert.equal('cannot send a function (at r["a b"][true][1.5][-3]._x9)',
        err({ ["a b"] = { [true] = { [1.5] = { [-3] = { _x9 = print } } } } }, "r"))
    end)

    it("quotes odd string keys and cuts long ones", function()
      assert.equal('cannot send a function (at r["say \\"hi\\"\\n\\0"])',
        err({ ['say "hi"\n\0'] = print }, "r"))
      assert.equal('cannot send a function (at r["1x"])', err({ ["1x"] = print }, "r"))
      assert.equal('cannot send a function (at r["\\0011"])', err({ ["\0011"] = print }, "r"))
      local msg = err({ [("k"):rep(1000)] = print }, "r")
      assert.matches('^cannot send a function %(at r%["k+%.%.%."%]%)$', msg)
      assert.is_true(#msg < 100)
    end)

    it("names keys that cannot be sent, and paths through table keys", function()
      assert.equal("cannot send a function (at value.t{key})",
        err({ t = { [print] = 1 } }))
      assert.equal("cannot send a function (at value{key}.f)",
        err({ [{ f = print }] = 1 }))
      assert.equal("cannot send a function (at value[table])",
        err({ [{}] = print }))
    end)

    it("refuses tables nested deeper than 200 levels, with a short path", function()
      local t = {}
      local cur = t
      for _ = 2, 201 do cur.a = {}; cur = cur.a end
      local msg = err(t, "result")
      assert.matches("^cannot send a table nested deeper than 200 levels %(at result%.a%.a[.a]*%.%.%.[.a]*%.a%)$", msg)
      assert.is_true(#msg < 256)
    end)

    it("refuses a cycle nested too deep only when the depth is real", function()
      local t = {}
      t.a = t                          -- a back-reference, not depth
      assert.is_true(roundtrip(t).a ~= nil)
    end)

    it("defaults the root to 'value' and checks arguments", function()
      assert.equal("cannot send a function (at value[1])", err({ print }))
      assert.has_error(function() encode() end,
        "bad argument #1 to 'encode' (value expected)")
    end)

    it("leaves no partial state behind: the next encode is clean", function()
      err({ 1, 2, print })
      assert.equal("\6\1\0\x81", encode({ 1 }))
    end)
  end)

  describe("decode errors", function()
    local function err(s)
      local ok, msg = pcall(decode, s)
      assert.is_false(ok)
      return msg
    end

    it("reports each kind of bad input", function()
      assert.equal("par.decode: truncated input", err(""))
      assert.equal("par.decode: bad tag 0x08", err("\8"))
      assert.equal("par.decode: bad tag 0x3f", err("\x3f"))
      assert.equal("par.decode: trailing garbage", err("\0\0"))
      assert.equal("par.decode: truncated input", err("\3"))
      assert.equal("par.decode: truncated input", err("\4\0\0\0\0\0\0\0"))
      assert.equal("par.decode: truncated input", err("\x45abcd"))
      assert.equal("par.decode: bad varint", err("\3" .. ("\xff"):rep(9) .. "\2"))
      assert.equal("par.decode: bad varint", err("\3" .. ("\xff"):rep(10) .. "\1"))
      assert.equal("par.decode: bad back-reference", err("\7\0"))
      assert.equal("par.decode: bad back-reference", err("\6\1\0\7\1"))
      assert.equal("par.decode: bad key (nil)", err("\6\0\1\0\x80"))
      assert.equal("par.decode: bad key (NaN)", err("\6\0\1\4" .. string.pack("<d", 0 / 0) .. "\x80"))
      assert.has_error(function() decode() end,
        "bad argument #1 to 'decode' (string expected, got no value)")
    end)

    it("accepts the longest varints", function()
      assert.equal(math.mininteger, decode("\3" .. ("\xff"):rep(9) .. "\1"))
    end)

    it("checks lengths against the bytes left, without overflow", function()
      for _, n in ipairs{ 2, 100, 1 << 32, (1 << 62), -1 } do
        assert.equal("par.decode: truncated input", err("\5" .. varint(n) .. "x"))
        assert.equal("par.decode: truncated input", err("\6" .. varint(n) .. "\0\0"))
        assert.equal("par.decode: truncated input", err("\6\0" .. varint(n) .. "\0\0"))
      end
    end)

    it("does not preallocate for counts the input cannot hold, summed over levels", function()
      -- 200 nested tables each claiming a million values, backed by one
      -- million nils: without the shared bound this preallocates 3 GB
      local n = 1000000
      local head = ("\6" .. varint(n) .. "\0"):rep(199)
      local s = head .. "\6\0\0" .. ("\0"):rep(n)
      assert.equal("par.decode: truncated input", err(s))
      -- while one honest table of a million nils is fine
      assert.equal(0, #decode("\6" .. varint(n) .. "\0" .. ("\0"):rep(n)))
    end)

    it("refuses nesting deeper than 200 levels", function()
      local ok = ("\6\1\0"):rep(199) .. "\6\0\0"
      assert.equal("table", type(decode(ok)))
      assert.equal("par.decode: nested too deep", err(("\6\1\0"):rep(200) .. "\6\0\0"))
      assert.equal("par.decode: nested too deep", err(("\6\0\1"):rep(300) .. "\0"))
    end)

    it("fails on every proper prefix of an encoding", function()
      local shared = { "shared", 2 ^ 0.5 }
      local t = { 1, -1, 3.25, "short", ("long"):rep(40), true, false,
        { shared, shared, { x = math.maxinteger } },
        [{ "k" }] = { [0 / 0 ~= 0 / 0] = -0.0 }, s = shared }
      t.me = t
      local s = encode(t)
      assert.is_true(same(t, decode(s)))
      for i = 0, #s - 1 do
        local ok, msg = pcall(decode, s:sub(1, i))
        assert.is_false(ok)
        assert.matches("^par%.decode: ", msg)
      end
    end)

    it("survives 10,000 random mutations: an error or a value, never a crash", function()
      math.randomseed(20240601)
      local seeds = {
        encode({ 1, 2, 3, name = "x", nested = { a = { b = { c = {} } } } }),
        encode({ [1.5] = true, [false] = "no", s = ("z"):rep(70), f = -0.0 }),
        encode((function() local t = { 1 }; t.self = t; t[t] = t; return t end)()),
        encode({ math.mininteger, math.maxinteger, 0 / 0, math.huge }),
        encode("plain string"),
      }
      local decoded, failed = 0, 0
      for i = 1, 10000 do
        local s = seeds[i % #seeds + 1]
        for _ = 1, math.random(1, 3) do
          local pos = math.random(1, #s)
          local op = math.random(3)
          local byte = string.char(math.random(0, 255))
          if op == 1 then
            s = s:sub(1, pos - 1) .. byte .. s:sub(pos + 1)
          elseif op == 2 then
            s = s:sub(1, pos - 1) .. byte .. s:sub(pos)
          elseif #s > 1 then
            s = s:sub(1, pos - 1) .. s:sub(pos + 1)
          end
        end
        local ok, v = pcall(decode, s)
        if ok then
          decoded = decoded + 1
          assert.is_true(same(v, decode(encode(v))))   -- what decodes is sendable
        else
          failed = failed + 1
          assert.matches("^par%.decode: ", v)
        end
      end
      assert.equal(10000, decoded + failed)
      assert.is_true(decoded > 0 and failed > 0)
    end)
  end)
end)
