-- core.lines: the par command's reader of input records, driven directly on
-- files and real pipes.
local core = require "par.core"
local H = require "spec.helpers"

-- Every record of reader r until the end, waiting on its descriptor
-- whenever read() says that nothing whole is there yet.
local function drain(r)
  local out, falses = {}, 0
  while true do
    local rec, msg = r:read()
    if rec == nil then assert.is_nil(msg); return out, falses end
    if rec == false then
      falses = falses + 1
      assert.is_true(r:wait(5))
    else
      out[#out + 1] = rec
    end
  end
end

local function file_with(s)
  local f = io.tmpfile()
  f:write(s)
  f:seek("set")
  return f
end

describe("core.lines", function()
  it("gives each line without its newline, a last line without one, then nil", function()
    local f = file_with("a\n\nb c\r\nlast")
    local r = core.lines(f)
    assert.are.same({ "a", "", "b c\r", "last" }, (drain(r)))
    assert.is_nil(r:read())
    f:close()
  end)

  it("splits on NUL with sep \"\\0\", newlines kept inside", function()
    local f = file_with("one\ntwo\0three\0")
    assert.are.same({ "one\ntwo", "three" }, (drain(core.lines(f, "\0"))))
    f:close()
  end)

  it("reads records of any length, across many reads", function()
    local long = ("x"):rep(3 * 1024 * 1024 + 7)
    local f = file_with(long .. "\nshort\n" .. long)
    local got = drain(core.lines(f))
    assert.are.equal(3, #got)
    assert.is_true(got[1] == long and got[2] == "short" and got[3] == long)
    f:close()
  end)

  it("never blocks on a pipe: false until a line is whole, each line as it arrives", function()
    local p = assert(io.popen("printf 'first\\npart'; sleep 0.5; printf 'ial\\n'; sleep 0.5"))
    local r = core.lines(p)
    assert.is_true(r:wait(5))
    local rec = r:read()
    while rec == false do assert.is_true(r:wait(5)); rec = r:read() end
    assert.are.equal("first", rec)
    -- "part" is there, its newline is not: read() returns at once with false
    local t0 = core.monotime()
    assert.is_false(r:read())
    assert.is_true(core.monotime() - t0 < 0.2)
    -- and wait() waits for more, the partial record notwithstanding
    assert.is_false(r:wait(0.1))
    local rest = drain(r)
    assert.are.same({ "partial" }, rest)
    p:close()
  end)

  it("gives its descriptor, the file's, and leaves the file open", function()
    local f = file_with("x\n")
    local r = core.lines(f)
    assert.is_true(math.type(r:fd()) == "integer" and r:fd() > 2)
    r:close()
    assert.has_error(function() r:read() end, "attempt to use a closed reader")
    assert.are.equal("x\n", f:read("a"))
    f:close()
  end)

  it("reports a read error as nil, msg, errno", function()
    local dir = H.tmpdir(finally)
    local f = assert(io.open(dir))
    local r = core.lines(f)
    local rec, msg, errno = r:read()
    assert.is_nil(rec)
    assert.are.equal("read: Is a directory", msg)
    assert.are.equal(21, errno)
    f:close()
  end)

  it("splits on any one-byte separator, and rejects a longer one and a closed file", function()
    local f = file_with("a,b,,c")
    local r = core.lines(f, ",")
    local got = {}
    for _ = 1, 5 do got[#got + 1] = tostring(r:read()) end
    assert.are.same({ "a", "b", "", "c", "nil" }, got)
    assert.has_error(function() core.lines(f, ",;") end,
      "bad argument #2 to 'lines' (separator must be one byte)")
    f:close()
    assert.has_error(function() core.lines(f) end,
      "bad argument #1 to 'lines' (attempt to use a closed file)")
    assert.has_error(function() core.lines("x") end,
      "bad argument #1 to 'lines' (FILE* expected, got string)")
  end)

  it("leaks no descriptor", function()
    local before = H.fdcount()
    for _ = 1, 20 do
      local f = file_with("a\nb\n")
      drain(core.lines(f))
      f:close()
    end
    collectgarbage(); collectgarbage()
    assert.are.equal(before, H.fdcount())
  end)
end)
