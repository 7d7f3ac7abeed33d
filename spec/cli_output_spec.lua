-- par.cli.output's printer, driven directly: job starts, output pieces and
-- ends fed by hand in a child lua5.4, its stdout checked exactly.
local H = require "spec.helpers"

-- Run 'body' with p = the printer of options 'opts' (a Lua literal) and
-- output = par.cli.output; returns what it wrote (stdout and stderr).
local function feed(opts, body)
  local out, ok = H.lua(([[
local output = require "par.cli.output"
local p = output.printer(%s)
local function start(i, tag) p.start(i, { text = "cmd" .. i, tag = tag or ("t" .. i) }) end
local function ok(i) p.done(i, { ok = true, status = "exit", code = 0 }) end
%s
p.flush()
]]):format(opts, body))
  assert.is_true(ok, out)
  return out
end

describe("the par command's printer", function()
  it("groups: each job's output in one block when it ends, in completion order", function()
    assert.are.equal("b1\nb2\na1\na2\n", feed("{}", [[
      start(1); start(2)
      p.chunk(1, "stdout", "a1\n"); p.chunk(2, "stdout", "b1\n")
      p.chunk(1, "stdout", "a2\n"); p.chunk(2, "stdout", "b2\n")
      ok(2); ok(1)]]))
  end)

  it("with keep_order prints in input order, and nothing of a job twice", function()
    assert.are.equal("a\nb\nc\n", feed("{ keep_order = true }", [[
      start(1); start(2); start(3)
      p.chunk(3, "stdout", "c\n"); ok(3)
      p.chunk(2, "stdout", "b\n"); ok(2)
      p.chunk(1, "stdout", "a\n"); ok(1)]]))
  end)

  it("passes a skipped job over in input order", function()
    assert.are.equal("a\nc\n", feed("{ keep_order = true }", [[
      start(1); start(2); start(3)
      p.chunk(3, "stdout", "c\n"); ok(3)
      p.done(2, { ok = true, status = "skipped" })
      p.chunk(1, "stdout", "a\n"); ok(1)]]))
  end)

  it("with line_buffer writes whole lines as they come, never mixed, a last partial line at the end", function()
    assert.are.equal("a-one\nb-one\nb-two\na-two\na-end", feed("{ line_buffer = true }", [[
      start(1); start(2)
      p.chunk(1, "stdout", "a-o"); p.chunk(2, "stdout", "b-o")
      p.chunk(1, "stdout", "ne\na-t"); p.chunk(2, "stdout", "ne\nb-two\n")
      p.chunk(1, "stdout", "wo\na-end")
      ok(2); ok(1)]]))
  end)

  it("with ungroup passes each piece through at once", function()
    assert.are.equal("a-ob-one\nne\n", feed("{ ungroup = true }", [[
      start(1); start(2)
      p.chunk(1, "stdout", "a-o"); p.chunk(2, "stdout", "b-one\n"); p.chunk(1, "stdout", "ne\n")
      ok(1); ok(2)]]))
  end)

  it("with keep_order lets the first job pass through and holds the others until their turn", function()
    assert.are.equal("a1\n[a done]\nb1\nb2\n", feed("{ keep_order = true, line_buffer = true }", [[
      start(1); start(2)
      p.chunk(2, "stdout", "b1\n"); p.chunk(1, "stdout", "a1\n")
      io.stdout:write("[a done]\n")   -- a1 is out already, b1 is not
      ok(1); p.chunk(2, "stdout", "b2\n"); ok(2)]]))
  end)

  it("tags each line once, also a line split across pieces, in every mode", function()
    for _, opts in ipairs({ "{ tag = true }", "{ tag = true, line_buffer = true }",
        "{ tag = true, ungroup = true }" }) do
      assert.are.equal("t1\tab\nt1\t\nt1\tc%\n", feed(opts, [[
        start(1)
        p.chunk(1, "stdout", "a"); p.chunk(1, "stdout", "b\n\nc"); p.chunk(1, "stdout", "%\n")
        ok(1)]]), opts)
    end
  end)

  it("moves held output past the threshold to an unlinked temporary file, then copies it out whole", function()
    local out = feed("{ keep_order = true }", [[
      output.SPILL = 1000
      start(1); start(2)
      for k = 1, 500 do p.chunk(2, "stdout", ("%05d\n"):format(k)) end
      ok(2)
      local deleted = 0
      for l in io.popen("ls -l /proc/" .. require("spec.helpers").pid() .. "/fd"):lines() do
        if l:find("(deleted)", 1, true) then deleted = deleted + 1 end
      end
      p.chunk(1, "stdout", "first " .. deleted .. "\n"); ok(1)]])
    local want = { "first 1\n" }
    for k = 1, 500 do want[#want + 1] = ("%05d\n"):format(k) end
    assert.are.equal(table.concat(want), out)
  end)

  it("says why a job failed that said nothing itself, after its output", function()
    assert.are.equal("x\npar: job 1 failed (signal 9): cmd1\n", feed("{}", [[
      start(1); p.chunk(1, "stdout", "x\n")
      p.done(1, { ok = false, status = "signal", signal = 9 })]]))
  end)
end)
