-- --results: par writes the same files as GNU parallel 20221122.
local gnu = require "spec.support.gnu"

-- Every file under r.dir but the sandbox's own (.sh, .in, .out, .err):
-- "path=contents" lines, sorted.
local function tree(r)
  local p = assert(io.popen("cd '" .. r.dir .. "' && find . -type f ! -path './.*' | LC_ALL=C sort"))
  local lines = {}
  for path in p:lines() do
    local f = assert(io.open(r.dir .. "/" .. path, "rb"))
    lines[#lines + 1] = path .. "=" .. f:read("a")
    f:close()
  end
  p:close()
  return table.concat(lines, "\n")
end

-- The CSV/TSV text with Starttime and JobRuntime (columns 3, 4) blanked.
local function untimed(s, sep)
  return (s:gsub("(\n%d+" .. sep .. "[^" .. sep .. "]*" .. sep .. ")[%d.]+" .. sep .. " *[%d.]+", "%1T" .. sep .. "T"))
end

local function same_tree(line, opts)
  local p, g = gnu.both(line, opts)
  assert.are.equal(g.status, p.status)
  assert.are.equal(g.stdout, p.stdout)
  local gt = tree(g)
  assert.are_not.equal("", gt)
  assert.are.equal(gt, tree(p))
  gnu.clean(p); gnu.clean(g)
end

describe("--results DIR, as GNU parallel", function()
  it("two sources: DIR/1/a/2/b/{stdout,stderr,seq}, nothing printed", function()
    same_tree("parallel -k --results out 'echo o{1}{2}; echo e{2} >&2' ::: a b ::: 1 2")
  end)

  it("escapes / and \\ in values, keeps blanks, * and ..", function()
    same_tree("parallel -k --results out echo", { stdin = "b/c\nd e\nx\\y\na*b\n" })
  end)

  it("--header : names the levels", function()
    same_tree("parallel -k --header : --results h echo {n} {m} ::: n p q ::: m 1 2")
  end)

  it("a replacement string names the stdout file; .err and .seq beside it", function()
    same_tree("parallel -k --results 'my_{}' echo ::: foo bar 'x/y'")
  end)

  it("a name ending in / is a directory holding stdout, stderr, seq", function()
    same_tree("parallel -k --results 'dir/{1}/' 'echo {}; echo E >&2' ::: a b")
  end)

  it("failing jobs: their output saved, the exit status counts them", function()
    same_tree("parallel -k --results out 'echo {}; exit {}' ::: 0 1 2")
  end)
end)

describe("--results FILE.csv / .tsv, as GNU parallel", function()
  for _, case in ipairs({
    { "x.csv", ",", "parallel -k --results x.csv 'echo {}; echo e >&2' ::: a 'b,\"c' ::: 1" },
    { "x.tsv", "\t", "parallel -k --results x.tsv 'echo {}' ::: a 'b c'" },
  }) do
    it(case[1] .. ": the same rows, times aside", function()
      local p, g = gnu.both(case[3])
      assert.are.equal(g.status, p.status)
      local function file(r)
        local f = assert(io.open(r.dir .. "/" .. case[1], "rb"))
        local s = f:read("a")
        f:close()
        return untimed(s, case[2])
      end
      local gs = file(g)
      assert.truthy(gs:find("^Seq" .. case[2]))
      assert.are.equal(gs, file(p))
      gnu.clean(p); gnu.clean(g)
    end)
  end

  it("-.csv writes the table on stdout", function()
    local p, g = gnu.both("parallel -k --results -.csv echo ::: a b")
    assert.are.equal(untimed(g.stdout, ","), untimed(p.stdout, ","))
    assert.are.equal(g.status, p.status)
    gnu.clean(p); gnu.clean(g)
  end)
end)

describe("--results FILE.json, as GNU parallel", function()
  local function untimed_json(s)
    return (s:gsub('"Starttime": [%d.]+, "JobRuntime": [%d.]+', "T"))
  end

  for _, line in ipairs({
    "parallel -k --results -.json 'echo {}; echo e >&2' ::: 'a\"b' 'c\\d' ''",
    "parallel -k --results -.json 'printf \"\\001\\t\\303\\251/\"; exit {2}' ::: x y ::: 0 3",
    "parallel -k --results -.json --header : echo {h} ::: h q r",
  }) do
    it("-.json, a JSON object a line on stdout: " .. line, function()
      local p, g = gnu.both(line)
      assert.truthy(g.stdout:find('^{ "Seq": 1, "Host": ":", "Starttime": '), g.stdout)
      assert.are.equal(untimed_json(g.stdout), untimed_json(p.stdout))
      assert.are.equal(g.status, p.status)
      gnu.clean(p); gnu.clean(g)
    end)
  end

  it("x.json: the same file, read back by a JSON parser", function()
    local line = "parallel -k --results x.json 'echo {}; echo e >&2' ::: a 'b c'; cat x.json"
    local p, g = gnu.both(line)
    assert.are.equal(untimed_json(g.stdout), untimed_json(p.stdout))
    local cjson = require "cjson"
    local n = 0
    for l in p.stdout:gmatch("[^\n]+") do
      local t = cjson.decode(l)
      n = n + 1
      assert.are.same({ n, ":", 0, { n == 1 and "a" or "b c" }, (n == 1 and "a" or "b c") .. "\n", "e\n" },
        { t.Seq, t.Host, t.Exitval, t.V, t.Stdout, t.Stderr })
    end
    assert.are.equal(2, n)
    gnu.clean(p); gnu.clean(g)
  end)
end)

describe("--results, par only", function()
  it("a DIR that cannot be made is a clear error, not a crash", function()
    local r = gnu.run("par", "touch f; parallel --results f/x echo ::: a")
    assert.are_not.equal(0, r.status)
    assert.truthy(r.stderr:find("par: .*cannot make dir 'f/x/1/a'"), r.stderr)
    assert.falsy(r.stderr:find("traceback"))
    gnu.clean(r)
  end)

  it("is no longer unsupported", function()
    local r = gnu.run("par", "parallel --res o echo ::: z && cat o/1/z/stdout")
    assert.are.equal(0, r.status)
    assert.are.equal("z\n", r.stdout)
    gnu.clean(r)
  end)
end)

describe("--joblog, as GNU parallel", function()
  it("the same columns; Receive counts the job's stdout bytes", function()
    local p, g = gnu.both("parallel -j1 -k --joblog j.log 'printf %0{}d 0; exit {}' ::: 3 12 >/dev/null")
    local function log(r)
      local f = assert(io.open(r.dir .. "/j.log", "rb"))
      local s = f:read("a")
      f:close()
      return untimed(s, "\t")
    end
    local gl = log(g)
    assert.truthy(gl:find("\n1\t:\tT\tT\t0\t3\t3\t0\tprintf %%03d 0; exit 3\n", 1))
    assert.are.equal(gl, log(p))
    assert.are.equal(g.status, p.status)
    gnu.clean(p); gnu.clean(g)
  end)
end)

describe("--files and --tmpdir, as GNU parallel", function()
  -- the printed names, with the random part replaced, and the files' contents
  local function files(r)
    local names, contents = {}, {}
    for name in r.stdout:gmatch("[^\n]+") do
      names[#names + 1] = (name:gsub("par.....%.par$", "parXXXXX.par"))
      local f = io.open(name:sub(1, 1) == "/" and name or r.dir .. "/" .. name, "rb")
      contents[#contents + 1] = f and f:read("a") or "(missing)"
      if f then f:close() end
    end
    return table.concat(names, "\n"), table.concat(contents, "|")
  end

  it("-k: the names in input order, each file the job's stdout only", function()
    local p, g = gnu.both("mkdir t; parallel -k --files --tmpdir t 'echo {}; echo e >&2' ::: a b c")
    local gn, gc = files(g)
    assert.are.equal("t/parXXXXX.par\nt/parXXXXX.par\nt/parXXXXX.par", gn)
    assert.are.equal("a\n|b\n|c\n", gc)
    local pn, pc = files(p)
    assert.are.equal(gn, pn)
    assert.are.equal(gc, pc)
    assert.are.equal(g.stderr, p.stderr)
    assert.are.equal(g.status, p.status)
    gnu.clean(p); gnu.clean(g)
  end)

  it("without --tmpdir: $TMPDIR", function()
    local p, g = gnu.both("mkdir t; TMPDIR=$PWD/t parallel --files echo ::: z; ls t | wc -l")
    for _, r in ipairs({ p, g }) do
      assert.truthy(r.stdout:find("^" .. r.dir:gsub("%p", "%%%0") .. "/t/par.....%.par\n1\n$"), r.stdout)
    end
    gnu.clean(p); gnu.clean(g)
  end)

  it("a --tmpdir that does not exist: a clear error, no job output lost silently", function()
    local r = gnu.run("par", "parallel --files --tmpdir nope echo ::: a")
    assert.are.equal(255, r.status)
    assert.truthy(r.stderr:find("par: --files: cannot make a file in 'nope'", 1, true), r.stderr)
    gnu.clean(r)
  end)
end)
