--- The examples, run as a user runs them: lua5.4 in a subprocess, from the
-- repository's top, with par on the paths.
local H = require "spec.helpers"

local q = H.quote   -- the spec builds command lines out of temp paths

-- Lines without their ends; sqlite3's CSV ends lines with CRLF (RFC 4180).
local function split(s)
  local out = {}
  for l in s:gmatch("([^\n]*)\n") do out[#out + 1] = l:gsub("\r$", "") end
  return out
end

--- Run `lua5.4 SCRIPT ARGS...`; its stdout lines, its stderr, its exit status.
local function run(script, ...)
  local words = { "exec lua5.4", q(script) }
  for _, a in ipairs({ ... }) do words[#words + 1] = q(a) end
  local errfile = os.tmpname()
  local p = assert(io.popen(H.env .. table.concat(words, " ") .. " 2>" .. q(errfile)))
  local out = p:read("a")
  local _, how, status = p:close()
  local err = H.readfile(errfile)
  os.remove(errfile)
  assert.are.equal("exit", how)
  return split(out), err, status
end

-- Lines matching 'pattern', with their first capture, sorted.
local function grab(lines, pattern)
  local caps = {}
  for _, l in ipairs(lines) do
    local c = l:match(pattern)
    if c then caps[#caps + 1] = c end
  end
  table.sort(caps)
  return caps
end

describe("examples/multithread.lua", function()
  it("prints each command as it ends, then the wall time", function()
    local out, err, status = run("examples/multithread.lua", "4", "4", "0.2")
    assert.are.equal(0, status)
    assert.are.equal("", err)
    assert.are.equal(5, #out)
    for i = 1, 4 do assert.matches("^done #%d: sleep 0%.2 %(ok%)$", out[i]) end
    assert.are.same({ "1", "2", "3", "4" }, grab(out, "^done #(%d+):"))
    assert.matches("^4 x sleep 0%.2 on 4 threads: %d+%.%d%d s wall time " ..
      "%(ideal 0%.20 s, one by one 0%.80 s%)$", out[5])
  end)

  it("takes the count and the threads from its arguments", function()
    local out, _, status = run("examples/multithread.lua", "3", "2", "0")
    assert.are.equal(0, status)
    assert.are.same({ "1", "2", "3" }, grab(out, "^done #(%d+): sleep 0 %(ok%)$"))
    assert.matches("^3 x sleep 0 on 2 threads: .* %(ideal 0%.00 s, one by one 0%.00 s%)$", out[4])
  end)

  it("rejects a bad count with a usage message and status 2", function()
    local out, err, status = run("examples/multithread.lua", "0")
    assert.are.equal(2, status)
    assert.are.same({}, out)
    assert.are.equal("multithread.lua: argument #1 must be a positive integer, got '0'\n" ..
      "usage: lua5.4 examples/multithread.lua [COUNT [THREADS [SECONDS]]]\n", err)
  end)
end)

describe("examples/curl.lua #curl", function()
  it("runs its offline demo and reports the missing URL", function()
    local out, err, status = run("examples/curl.lua")
    local dir = out[1] and out[1]:match("^demo: 6 file:// URLs in (.-)/urls%.txt, the last one missing$")
    assert.is_string(dir)
    finally(function() H.rmtree(dir) end)
    assert.are.equal(0, status)
    assert.are.equal("", err)
    local url = "file://" .. dir .. "/site/"
    assert.are.same({ "FAIL " .. url .. "missing.txt", "ok   " .. url .. "page1.txt",
      "ok   " .. url .. "page2.txt", "ok   " .. url .. "page3.txt", "ok   " .. url .. "page4.txt",
      "ok   " .. url .. "page5.txt" }, grab(out, "^(%a+ +file:.*)$"))
    assert.are.equal("1 of 6 fetches failed:", out[10])
    assert.are.equal("  " .. url .. "missing.txt: curl: (37) Couldn't open file " ..
      dir .. "/site/missing.txt", out[11])
    assert.matches("^fetched 5 of 6 URLs into " .. dir:gsub("%p", "%%%0") ..
      "/out %(10500 bytes%) on 4 threads in %d+%.%d%d s$", out[13])
    for i = 1, 5 do
      assert.are.equal(("page %d\n"):format(i):rep(i * 100), H.readfile(("%s/out/page%d.txt"):format(dir, i)))
    end
    assert.is_nil(H.readfile(dir .. "/out/missing.txt"))
  end)

  it("fetches a URL file into a folder, names clashes apart, and fails on a bad URL", function()
    local dir = H.tmpdir(finally)
    H.writefile(dir .. "/a.txt", "alpha\n")
    os.execute("mkdir " .. q(dir .. "/sub"))
    H.writefile(dir .. "/sub/a.txt", "beta\n")
    H.writefile(dir .. "/urls", ("# a comment\n\nfile://%s/a.txt\n  file://%s/sub/a.txt  \n"):format(dir, dir))
    local out, err, status = run("examples/curl.lua", dir .. "/urls", dir .. "/out", "2")
    assert.are.equal(0, status)
    assert.are.equal("", err)
    assert.are.equal(4, #out)
    assert.are.equal("", out[3])
    assert.matches("^fetched 2 of 2 URLs into .* %(11 bytes%) on 2 threads in", out[4])
    assert.are.equal("alpha\n", H.readfile(dir .. "/out/a.txt"))
    assert.are.equal("beta\n", H.readfile(dir .. "/out/2-a.txt"))

    H.writefile(dir .. "/urls", ("file://%s/a.txt\nfile://%s/nope\n"):format(dir, dir))
    out, err, status = run("examples/curl.lua", dir .. "/urls", dir .. "/out2")
    assert.are.equal(1, status)
    assert.are.equal("", err)
    assert.are.same({ "FAIL file://" .. dir .. "/nope", "ok   file://" .. dir .. "/a.txt" },
      grab(out, "^(%a+ +file:.*)$"))
    assert.are.equal("1 of 2 fetches failed:", out[4])
    assert.are.equal("  file://" .. dir .. "/nope: curl: (37) Couldn't open file " .. dir .. "/nope", out[5])
  end)

  it("refuses a line that curl would take for an option", function()
    local dir = H.tmpdir(finally)
    H.writefile(dir .. "/urls", "--config=/etc/passwd\n")
    local out, err, status = run("examples/curl.lua", dir .. "/urls", dir .. "/out")
    assert.are.equal(1, status)
    assert.are.same({}, out)
    assert.are.equal("curl.lua: " .. dir .. "/urls: not a URL: --config=/etc/passwd\n", err)
  end)
end)

describe("examples/export_table.sh", function()
  local dir
  setup(function()
    dir = H.tmpdir()
    assert(os.execute("sqlite3 " .. q(dir .. "/t.db") .. " " .. q("CREATE TABLE items (id INTEGER PRIMARY KEY, " ..
      "name TEXT); INSERT INTO items VALUES (1, 'a'), (2, 'b,\"c\"'), (5, 'e');")))
  end)
  teardown(function() H.rmtree(dir) end)

  local function export(...)
    local p = assert(io.popen(table.concat({ "sh examples/export_table.sh", ... }, " ") .. " 2>&1"))
    local out = p:read("a")
    local _, _, status = p:close()
    return out, status
  end

  it("exports one id range as CSV and prints its row count", function()
    local out, status = export(q(dir .. "/t.db"), "2", "9", q(dir .. "/out"))
    assert.are.equal(0, status)
    assert.are.equal("2\n", out)
    assert.are.equal('id,name\r\n2,"b,""c"""\r\n5,e\r\n', H.readfile(dir .. "/out/items_2_9.csv"))
  end)

  it("writes an empty file for an empty range", function()
    local out, status = export(q(dir .. "/t.db"), "3", "4", q(dir .. "/out"))
    assert.are.equal(0, status)
    assert.are.equal("0\n", out)
    assert.are.equal("", H.readfile(dir .. "/out/items_3_4.csv"))   -- sqlite3 heads only rows
  end)

  it("rejects a bound that is not an integer", function()
    local out, status = export(q(dir .. "/t.db"), "1", "'2;drop'", q(dir .. "/out"))
    assert.are.equal(2, status)
    assert.are.equal("export_table.sh: not an integer: '2;drop'\nusage: export_table.sh DB LO HI OUTDIR\n", out)
  end)

  it("fails, leaving no file, when the table is missing", function()
    assert(os.execute("sqlite3 " .. q(dir .. "/empty.db") .. " 'CREATE TABLE other (x)'"))
    local out, status = export(q(dir .. "/empty.db"), "1", "2", q(dir .. "/out"))
    assert.are.equal(1, status)
    assert.matches("no such table: items", out)
    assert.is_nil(H.readfile(dir .. "/out/items_1_2.csv"))
  end)
end)

describe("examples/export_table.lua", function()
  it("creates the table, exports it in partitions and checks the total", function()
    local dir = H.tmpdir(finally)
    local out, err, status = run("examples/export_table.lua", "-j", "2", "-d", dir, "10000")
    assert.are.equal(0, status)
    assert.are.equal("", err)    -- no progress line: stderr is not a terminal
    assert.are.equal(4, #out)
    assert.matches("^creating " .. dir:gsub("%p", "%%%0") ..
      "/items_10000%.db with 10000 rows %.%.%. %d+%.%d%d s$", out[1])
    assert.matches("^exported 10000 rows of table items in 20 partitions on 2 threads: " ..
      "%d+%.%d%d s, %d+ rows/s$", out[2])
    assert.are.equal("files: " .. dir .. "/csv/items_LO_HI.csv", out[3])
    assert.are.equal("check ok: 10000 rows exported = 10000 rows in the table", out[4])
    local rows = 0
    for k = 0, 19 do
      local lo, hi = k * 500 + 1, k * 500 + 500
      local csv = assert(H.readfile(("%s/csv/items_%d_%d.csv"):format(dir, lo, hi)))
      local lines = split(csv)
      assert.are.equal("id,name,price,qty,created", lines[1])
      assert.matches("^" .. lo .. ",item%-" .. lo .. ",", lines[2])
      assert.matches("^" .. hi .. ",item%-" .. hi .. ",", lines[#lines])
      rows = rows + #lines - 1
    end
    assert.are.equal(10000, rows)
    assert.are.equal("1,item-1,79.19,1,2020-01-02\r\n", H.readfile(dir .. "/csv/items_1_500.csv"):match("\n(.-\n)"))

    -- A second run reuses the database and replaces the files.
    out, err, status = run("examples/export_table.lua", "-j", "2", "-p", "3", "-d", dir, "10000")
    assert.are.equal(0, status)
    assert.are.equal("", err)
    assert.are.equal(3, #out)
    assert.matches("^exported 10000 rows of table items in 3 partitions on 2 threads:", out[1])
    assert.are.equal("check ok: 10000 rows exported = 10000 rows in the table", out[3])
    assert.is_nil(H.readfile(dir .. "/csv/items_1_500.csv"))
    assert.is_string(H.readfile(dir .. "/csv/items_6669_10000.csv"))
  end)

  it("takes the row count from PAR_DEMO_ROWS", function()
    local dir = H.tmpdir(finally)
    local p = assert(io.popen("PAR_DEMO_ROWS=7 " .. H.env ..
      "exec lua5.4 examples/export_table.lua -j 3 -d " .. q(dir)))
    local out = split(p:read("a"))
    local _, _, status = p:close()
    assert.are.equal(0, status)
    assert.matches("^creating .*/items_7%.db with 7 rows", out[1])
    assert.matches("^exported 7 rows of table items in 7 partitions on 3 threads:", out[2])
    assert.are.equal("check ok: 7 rows exported = 7 rows in the table", out[4])
  end)

  it("exits 1 and says so when the partitions do not add up", function()
    local dir = H.tmpdir(finally)
    -- The same script beside an export_table.sh that loses a partition.
    assert(os.execute("cp examples/export_table.lua examples/items_db.lua " .. q(dir)))
    H.writefile(dir .. "/export_table.sh",
      '[ "$2" = 1 ] && { echo lost >&2; exit 3; }\nexec sh examples/export_table.sh "$@"\n')
    local out, err, status = run(dir .. "/export_table.lua", "-d", dir, "100")
    assert.are.equal(1, status)
    assert.are.equal("partition 1..5 failed: lost\n", err)
    assert.are.equal("check FAILED: 95 rows exported, 100 rows in the table, 1 partition(s) failed", out[4])
  end)
end)
