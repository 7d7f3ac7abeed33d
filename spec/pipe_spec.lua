-- par --pipe and --pipepart beside GNU parallel's: the same input cut into
-- the same blocks, the same output (with -k) and the same exit status.
local H = require "spec.helpers"
local quote = require("par").quote
local pipe = require "par.cli.pipe"

local GNU = "parallel --will-cite"
local have_gnu = os.execute("command -v parallel >/dev/null 2>&1")

-- Run 'prog args' with stdin from file 'input' (or /dev/null); stdout, exit status.
local function sh(prog, args, input, env)
  local out = os.tmpname()
  local cmd = ("{ %s%s %s; } <%s >%s 2>/dev/null"):format(env or "", prog, args,
    quote(input or "/dev/null"), quote(out))
  local _, _, status = os.execute(cmd)
  local o = H.readfile(out)
  os.remove(out)
  return o, status
end

local function par(args, input, env)
  return sh(H.PAR_ENV .. H.PAR, args, input, env)
end

-- par and GNU parallel give the same output and exit status (with file
-- names of --cat and --fifo as "/F"); returns par's output.
local function same(args, input)
  local o, status = par(args, input)
  if have_gnu then
    local go, gstatus = sh(GNU, args, input)
    assert.are.same({ (go:gsub(" /tmp/%S+", " /F")), gstatus }, { (o:gsub(" /tmp/%S+", " /F")), status })
  end
  return o, status
end

local function file_of(s)
  local path = H.tmpfile(finally)
  H.writefile(path, s)
  return path
end

local function seq(n)
  local t = {}
  for i = 1, n do t[i] = i .. "\n" end
  return table.concat(t)
end

local function md5(path)
  local p = io.popen("md5sum < " .. quote(path))
  local sum = p:read("a")
  p:close()                 -- reaped now: a later spec counts this process's children
  return sum
end

describe("par --pipe", function()
  it("cuts stdin into the blocks GNU parallel cuts it into", function()
    local o = same("--pipe --block 10k -k wc -c", file_of(seq(100000)))
    assert.are.equal(59, select(2, o:gsub("\n", "")))
    local l30 = {}
    for i = 1, 20 do l30[i] = ("%029d\n"):format(i) end
    assert.are.equal("90\n90\n90\n90\n90\n90\n60\n",
      same("--pipe --block 100 -k wc -c", file_of(table.concat(l30))))
  end)

  it("reads 10k as 10,000 bytes and 10K as 10,240, as GNU parallel does", function()
    assert.are.equal(10000, pipe.size("10k"))
    assert.are.equal(10240, pipe.size("10K"))
    assert.are.equal(1572864, pipe.size("1.5M"))
    assert.are.equal(2000000000, pipe.size("2g"))
    assert.is_nil(pipe.size("ten"))
    local _, status = par("--pipe --block ten cat")
    assert.are.equal(255, status)
  end)

  it("never splits a record: each block ends with a newline", function()
    local lines, r = {}, 7
    for i = 1, 300 do
      r = (r * 1103515245 + 12345) % 2147483648
      lines[i] = string.rep(string.char(97 + i % 26), 100 + r % 2900) .. "\n"
    end
    local o = same("--pipe --block 1k -k 'tail -c 1 | od -An -c'", file_of(table.concat(lines)))
    local n = 0
    for line in o:gmatch("[^\n]+") do
      n = n + 1
      assert.are.equal("\\n", line:match("%S+"))
    end
    assert.is_true(n > 100)
  end)

  it("passes a 100 MB input through byte for byte", function()
    local t = {}
    for i = 1, 50000 do t[i] = ("%d some text %x\n"):format(i, i * 31) end
    local chunk = table.concat(t)
    local path = H.tmpfile(finally)
    local f = assert(io.open(path, "wb"))
    for _ = 1, math.ceil(100e6 / #chunk) do f:write(chunk) end
    f:write("no newline at the end")
    f:close()
    local o = par("--pipe --block 3M -k cat | md5sum", path)
    assert.are.equal(md5(path), o)
  end)

  it("splits at --recstart, at --recend, and at recend followed by recstart", function()
    local fasta = file_of(">a\nx\n>b\ny\ny\n>c\nz\n")
    assert.are.equal(">a\nx\n===\n>b\ny\ny\n===\n>c\nz\n===\n",
      same("--pipe --recstart '>' --block 8 -k 'cat; echo ==='", fasta))
    same("--pipe --recstart '>' --recend '' --block 8 -k 'cat; echo ==='", fasta)
    local recs = {}
    for i = 1, 30 do recs[i] = ("BEGIN\n%d\nEND\n"):format(i) .. (i % 4 == 0 and "END\nx\n" or "") end
    same("--pipe --recend 'END\\n' --recstart 'BEGIN' --block 40 -k 'cat; echo ==='", file_of(table.concat(recs)))
    same("--pipe --recend 'X' --block 5 -k 'cat; echo'", file_of("aXbbXcccXddddXeeeeeX"))
    assert.are.equal("abcdefg\nhijklmn\nop\n",
      same("--pipe --recend '' --block 7 -k 'cat; echo'", file_of("abcdefghijklmnop")))
  end)

  it("runs nothing for empty input, and passes the last record without its newline", function()
    assert.are.same({ "", 0 }, { same("--pipe -k wc -c", file_of("")) })
    assert.are.equal("a\nbEND", same("--pipe -k 'cat; printf END'", file_of("a\nb")))
  end)

  it("exits with the number of blocks whose job failed", function()
    assert.are.same({ "", 3 }, { same("--pipe --block 10 -k 'grep -q 2'", file_of(seq(20))) })
  end)

  it("repeats --header lines before every block", function()
    same("--pipe --header : --block 4 -k 'cat; echo ='", file_of("h1\n" .. seq(5)))
    assert.are.equal("h1\nh2\n1\n2\n=\nh1\nh2\n3\n4\n=\nh1\nh2\n5\n=\n",
      same("--pipe --header 2 --block 4 -k 'cat; echo ='", file_of("h1\nh2\n" .. seq(5))))
  end)

  it("gives {} as a temporary file with --cat and a named pipe with --fifo, and removes them", function()
    local tmp = H.tmpdir(finally)
    local input = file_of(seq(10))
    for _, mode in ipairs({ "--cat", "--fifo" }) do
      local o = par(mode .. " --pipe --block 6 -k 'wc -c < {}; test -" .. (mode == "--cat" and "f" or "p") .. " {}'",
        input, "TMPDIR=" .. quote(tmp) .. " ")
      assert.are.equal("6\n6\n6\n3\n", o)
      local ls = io.popen("ls -A " .. quote(tmp))
      assert.are.equal("", ls:read("a"))
      ls:close()
      assert.are.equal("6\n6\n6\n3\n", same(mode .. " --pipe --block 6 -k 'wc -c < {}'", input))
      assert.matches("^6 /%S+\n6 /%S+\n6 /%S+\n3 /%S+\n$", same(mode .. " --pipe --block 6 -k wc -c", input))
    end
  end)

  it("holds a block about once: 100 MB in 10 MB blocks peak under 100 MB of RSS #rss", function()
    -- 2 running, 1 queued, the one being read: held twice each, it peaked near 150 MB
    local path = file_of(string.rep(string.rep("x", 59) .. "\n", 100 * 2 ^ 20 // 60))
    local rss = os.tmpname()
    finally(function() os.remove(rss) end)
    local o, status = par("-j2 --pipe --block 10M wc -l", path, "/usr/bin/time -o " .. quote(rss) .. " -f %M env ")
    assert.are.equal(0, status)
    local n = 0
    for c in o:gmatch("%d+") do n = n + tonumber(c) end
    assert.are.equal(100 * 2 ^ 20 // 60, n)
    local kb = assert(tonumber(H.readfile(rss):match("(%d+)%s*$")))
    assert.is_true(kb < 100 * 1024, kb .. " KB")
  end)

  it("feeds --roundrobin's jobs 100 MB in 10 MB blocks under 100 MB of RSS #rss", function()
    local path = file_of(string.rep(string.rep("x", 59) .. "\n", 100 * 2 ^ 20 // 60))
    local rss = os.tmpname()
    finally(function() os.remove(rss) end)
    local o, status = par("-j2 --pipe --roundrobin --block 10M wc -l", path,
      "/usr/bin/time -o " .. quote(rss) .. " -f %M env ")
    assert.are.equal(0, status)
    local n, jobs = 0, 0
    for c in o:gmatch("%d+") do n, jobs = n + tonumber(c), jobs + 1 end
    assert.are.same({ 100 * 2 ^ 20 // 60, 2 }, { n, jobs })
    local kb = assert(tonumber(H.readfile(rss):match("(%d+)%s*$")))
    assert.is_true(kb < 100 * 1024, kb .. " KB")
  end)

  it("leaves no named pipe and no reader behind, also when --halt cuts the run short", function()
    local tmp = H.tmpdir(finally)
    local env = "TMPDIR=" .. quote(tmp) .. " "
    local input = file_of(seq(1000))
    assert.are.same({ "3\n", 0 }, { par("--pipe --roundrobin -j3 --block 1k 'wc -l' | wc -l", input, env) })
    assert.are.same({ "", 1 }, { par("--pipe --roundrobin -j3 --block 1k --halt now,fail=1 'exit 1'",
      file_of(seq(1000)), env) })
    assert.are.same({ "2\n", 0 }, { par("--pipe --shard 1 -j2 'wc -l' | wc -l", file_of(seq(1000)), env) })
    local ls = io.popen("ls -A " .. quote(tmp))
    assert.are.equal("", ls:read("a"))
    ls:close()
    -- /proc read here, not pgrep: under make asan a pgrep inherits the preload and may hang
    assert.are.same({}, H.survivors("par.cli.pipe').distribute"))
  end)

  it("makes blocks of -N records", function()
    local path = file_of("a\nb\nc\nd\ne\n")
    local next_block = pipe.source({ pipe = true, max_args = 2, arg_file = { path } })
    assert.are.same({ "a\nb\n", "c\nd\n", "e\n" }, { next_block(), next_block(), next_block() })
    assert.is_nil(next_block())
  end)
end)

describe("par --pipepart", function()
  it("cuts -a FILE where GNU parallel cuts it", function()
    local l25 = {}
    for i = 1, 8 do l25[i] = ("%024d\n"):format(i) end
    local path = file_of(table.concat(l25))
    assert.are.equal("125\n75\n", same("--pipepart -a " .. quote(path) .. " --block 100 -k wc -c"))
    assert.are.equal("100\n100\n", same("--pipe-part -a " .. quote(path) .. " --block 99 -k wc -c"))
    local big = file_of(seq(200000))
    same("--pipepart -a " .. quote(big) .. " --block 10k -k md5sum")
    local fasta = file_of(string.rep(">a\nxx\n>bb\ny\ny\n", 100))
    same("--pipepart -a " .. quote(fasta) .. " --recstart '>' --block 50 -k 'cat; echo ==='")
  end)

  it("gives the same bytes as --pipe", function()
    local path = file_of(seq(300000) .. "tail")
    assert.are.equal(md5(path), (par("--pipepart -a " .. quote(path) .. " --block 100k -k cat | md5sum")))
    local function total(o)
      local n = 0
      for c in o:gmatch("%d+") do n = n + tonumber(c) end
      return n
    end
    assert.are.equal(300000, total(par("--pipe --block 100k wc -l", path)))
    assert.are.equal(300000, total(par("--pipepart -a " .. quote(path) .. " --block 100k wc -l")))
  end)

  it("needs a file", function()
    local _, status = par("--pipepart wc -l", file_of("a\n"))
    assert.are.equal(255, status)
  end)
end)

describe("par --pipe beside GNU parallel (spec/support/gnu.lua) #gnu", function()
  local gnu = require "spec.support.gnu"

  -- par and GNU give the same stdout and status for 'line' on 'stdin';
  -- par's result.
  local function both(line, stdin)
    local p, g = gnu.both(line, { stdin = stdin })
    finally(function() gnu.clean(p); gnu.clean(g) end)
    if have_gnu then
      assert.are.same({ g.stdout, g.status }, { p.stdout, p.status })
    end
    return p
  end

  local ten = seq(10)

  it("makes -L records of N lines, -N of them a job", function()
    assert.are.equal("10\n", both("parallel -k --pipe -L 2 'wc -l'", ten).stdout)
    assert.are.equal("9\n1\n", both("parallel -k --pipe -L 3 'wc -l'", ten).stdout)
    assert.are.equal("2\n2\n2\n2\n2\n", both("parallel -k --pipe --block 6 -L 2 'wc -l'", ten).stdout)
    assert.are.equal("4\n4\n2\n", both("parallel -k --pipe -L 2 -N 2 'wc -l'", ten).stdout)
    assert.are.equal("3\n3\n3\n1\n", both("parallel -k --pipe --max-lines 3 -N 1 'wc -l'", ten).stdout)
    local p = both("parallel -k --pipe --block 5 -L 3 'wc -l'", ten)
    assert.are.equal("3\n3\n3\n1\n", p.stdout)
    assert.matches("record was longer than 5%. Increasing to %-%-blocksize 8", p.stderr)
  end)

  it("takes each record's --recstart and --recend out with --rrs", function()
    local input = "h\nSa\nb\nSc\nSd\n"
    assert.are.equal("==\nhSa==\nbSc==\nSd", both("parallel -k --pipe --rrs -N2 'echo ==; cat'", input).stdout)
    assert.are.equal("==\na\nb\n==\nc\n==\nd\n",
      both("parallel -k --pipe --rrs --recstart S -N1 'echo ==; cat' | tail -n +3", input).stdout)
    assert.are.equal("==\nh\nSa\n==\nc\nSd\n",
      both("parallel -k --pipe --remove-rec-sep --recstart S --recend 'b\\n' -N1 'echo ==; cat'", input).stdout)
    assert.are.equal("==\nh\nSa==\nh\nb==\nh\nSc==\nh\nSd",
      both("parallel -k --pipe --rrs --header 1 -N1 'echo ==; cat'", input).stdout)
  end)

  it("gives every job all of stdin with --tee", function()
    local big = seq(100000)
    assert.are.equal("1\n2\n2\n1\n9\n1\n", both("parallel -k --tee --pipe 'echo {}; grep -c {}' ::: 1 2 9", ten).stdout)
    assert.are.equal(1, both("parallel -k --tee --pipe 'grep -c {}' ::: 1 2 11", ten).status)
    assert.are.equal("1\na\n1\nb\n1\nc\n", both("parallel -k --tee --pipe 'head -1; echo {}' ::: a b c", big).stdout)
    assert.are.equal("588895\n588895\n", both("parallel -k --tee --pipe 'wc -c' ::: a b", big).stdout)
  end)

  it("cuts --pipepart --block -N into N parts per jobslot, and 10 by default", function()
    local files = { s = seq(1000) }
    local function parts(line)
      local p, g = gnu.both(line, { files = files })
      finally(function() gnu.clean(p); gnu.clean(g) end)
      if have_gnu then assert.are.same({ g.stdout, g.status }, { p.stdout, p.status }) end
      return p.stdout
    end
    assert.are.equal("1948\n1945\n", parts("parallel -k -j2 --pipepart -a s --block -1 'wc -c'"))
    assert.are.equal("976\n976\n976\n965\n", parts("parallel -k -j2 --pipepart -a s --block -2 'wc -c'"))
    assert.are.equal("1300\n1300\n1293\n", parts("parallel -k -j3 --pipepart -a s --block -1 'wc -c'"))
    assert.are.equal(20, select(2, parts("parallel -k -j2 --pipepart -a s 'wc -c'"):gsub("\n", "")))
    assert.are.equal("656\n656\n656\n656\n656\n633\n",
      parts("parallel -k -j3 --header 2 --pipepart -a s --block -2 'wc -c'"))
    local p = gnu.run("par", "parallel --pipe --block -1 wc -c", { stdin = "a\n" })
    finally(function() gnu.clean(p) end)
    assert.are.equal(255, p.status)
    assert.matches("negative size %(parts per jobslot%) needs %-%-pipepart", p.stderr)
  end)

  it("reads --block units as GNU parallel does: k 1000, K, Ki and ki 1024", function()
    local input = seq(100000)
    for b, first in pairs({ ["10k"] = "9998", ["10K"] = "10238", ["10ki"] = "10238", ["10Ki"] = "10238",
        ["1.5k"] = "1500", ["0.01m"] = "9998", ["0.01M"] = "10483", ["0.01mi"] = "10483" }) do
      assert.are.equal(first, both("parallel -k --pipe --block " .. b .. " 'wc -c' | head -1", input)
        .stdout:match("%d+"))
    end
    assert.is_nil(pipe.size("10i"))
  end)

  it("reads --recstart and --recend as regexps with --regexp", function()
    local fasta = ">a\nxx\n>b\ny\n>c\nz\n"
    assert.are.equal(">a\nxx\n--\n>b\ny\n--\n>c\nz\n--\n",
      both("parallel -k --pipe --regexp --recstart '>' -N1 'cat; echo --'", fasta).stdout)
    assert.are.equal("Abc\ndef\n--\nGhi\n--\n",
      both("parallel -k --pipe --regexp --recstart '^[A-Z]' -N1 'cat; echo --'", "Abc\ndef\nGhi\n").stdout)
    assert.are.equal("a\nb\n\n--\nc\n\n--\n\nd\n--\n",
      both("parallel -k --pipe --regexp --recend '\\n\\n' -N1 'cat; echo --'", "a\nb\n\nc\n\n\nd\n").stdout)
    assert.are.equal("a\nb\nc\nd\n", both("parallel -k --pipe --regexp --recend '\\d+' --rrs -N1 'cat; echo'",
      "a1b22c333d").stdout)
    -- input before the first --recstart is a record of its own
    assert.are.equal("zz\n--\n>a\n>b\n--\n", both("parallel -k --pipe --regexp --recstart '>' -N2 'cat; echo --'",
      "zz\n>a\n>b\n").stdout)
    local big = seq(100000)
    assert.are.equal(both("parallel -k --pipe --regexp --recend '0\\n' --block 10k 'wc -l'", big).stdout,
      both("parallel -k --pipe --recend '0\\n' --block 10k 'wc -l'", big).stdout)
    local p = both("parallel -k --pipe --regexp --recstart '^[A-Z]' --block 8 'cat; echo --'",
      "Abc\ndef\nGhi\njkl\nMno\n")
    assert.are.equal("Abc\ndef\n--\nGhi\njkl\n--\nMno\n--\n", p.stdout)
    assert.matches("record was longer than 8%. Increasing to %-%-blocksize 12", p.stderr)
  end)

  it("refuses a --regexp beyond a Lua pattern, and with --pipepart", function()
    for _, line in ipairs({ "parallel --pipe --regexp --recstart '(a|b)' cat",
        "parallel --pipe --regexp --recend 'a{2}' cat", "parallel --pipe --regexp --recend '\\bx' cat" }) do
      local p = gnu.run("par", line, { stdin = ten })
      finally(function() gnu.clean(p) end)
      assert.are.equal(255, p.status)
      assert.matches("the regexp '.-' is beyond what par reads", p.stderr)
    end
    local p = gnu.run("par", "parallel --pipepart -a f --regexp --recstart a cat", { files = { f = "a\n" } })
    finally(function() gnu.clean(p) end)
    assert.are.same({ 255, "par: --regexp with --pipepart is not supported\n" }, { p.status, p.stderr })
  end)

  it("starts --roundrobin's N jobs once and gives them the blocks in turn, as GNU's -k", function()
    local big = seq(100000)
    assert.are.equal("10\n", both("parallel -j1 --roundrobin --pipe -N1 wc -l", ten).stdout)
    assert.are.equal("1\n34209\n2\n33803\n3\n31988\n",
      both("parallel -j3 -k --pipe --roundrobin --block 10k 'echo {#}; wc -l'", big).stdout)
    assert.are.equal("100000\n",
      both("parallel -j3 --pipe --roundrobin --block 10k wc -l | awk '{s+=$1} END {print s}'", big).stdout)
    -- the header once at the start of each job's input; fewer blocks than jobs, fewer jobs
    assert.are.equal("==1\n1\n2\n3\n6\n7\n10\n==2\n1\n4\n5\n8\n9\n",
      both("parallel --pipe --header 1 --roundrobin -N2 -j2 -k 'echo =={#}; cat'", ten).stdout)
    assert.are.equal("x1\n1\n", both("parallel -j4 --roundrobin --pipe 'echo x{#}; wc -l'", "1\n").stdout)
    local empty = both("parallel -j3 --roundrobin --pipe 'echo x; wc -l'", "")
    assert.are.same({ "", 0 }, { empty.stdout, empty.status })
  end)

  it("gives each line to job (column value) mod N with --bin, and to one job per value with --shard", function()
    local kv = "k,v\n1,a\n2,b\n3,c\n4,d\n5,e\n"
    assert.are.equal("==1\n1,a\n4,d\n==2\n2,b\n5,e\n==3\nk,v\n3,c\n",
      both("parallel --pipe --bin 1 -j3 -k 'echo =={#}; cat'", kv).stdout)
    assert.are.equal("==1\n1,a\n4,d\n==2\n2,b\n5,e\n==3\n3,c\n",
      both("parallel --pipe --bin k --colsep , -j3 -k 'echo =={#}; cat'", kv).stdout)
    assert.are.equal("==1\n1\n==2\n2\n==3\n==4\n",
      both("parallel --pipe --bin 1 -j4 -k 'echo =={#}; cat'", "1\n2\n").stdout)
    assert.are.equal("1\n0\n2\n0\n3\n0\n", both("parallel --pipe --shard 1 -j3 -k 'echo {#}; wc -l'", "").stdout)
    local lines = {}
    for i = 1, 3000 do lines[i] = ("k%d,%d\n"):format(i % 17, i) end
    -- every value in one job only: its count is the whole count
    local o = both("parallel --pipe --shard 1 --colsep , -j3 'cut -d, -f1 | sort | uniq -c' | sort -k2",
      table.concat(lines)).stdout
    local n = 0
    for c in o:gmatch("(%d+) k%d+") do n = n + 1; assert.is_true(tonumber(c) >= 176, c) end
    assert.are.equal(17, n)
    local p = gnu.run("par", "parallel --pipe --bin '1 $_%=3' -j3 cat", { stdin = ten })
    finally(function() gnu.clean(p) end)
    assert.are.same({ 255, "par: --bin's perl expression ('$_%=3') is not supported\n" }, { p.status, p.stderr })
    local q = gnu.run("par", "parallel --shard 1 -j3 echo", { stdin = ten })
    finally(function() gnu.clean(q) end)
    assert.are.equal(255, q.status)
    assert.matches("^par: %-%-shard needs %-%-pipe\n", q.stderr)
  end)

  it("makes runs of lines with the same column value records with --group-by", function()
    local csv = "UserID, Consumption\n123,    1\n123,    2\n12-3,   1\n221,    3\n221,    1\n2/21,   5\n"
    assert.are.equal(("      2       4      20\n      1       2      10\n"):rep(2),
      both("tail -n +2 | parallel --pipe --colsep , --group-by 1 -kN1 wc", csv).stdout)
    local by_name = both("parallel --pipe --colsep , --group-by UserID -kN1 'cat; echo'", csv).stdout
    assert.are.equal("UserID, Consumption\n123,    1\n123,    2\n\n", by_name:sub(1, 41))
    assert.are.equal(by_name,
      both("parallel --pipe --colsep , --header : --group-by UserID -kN1 'cat; echo'", csv).stdout)
    local t = {}
    for i = 1, 100000 do t[i] = ("%d\t%d\n"):format(i // 7, i) end
    local groups = table.concat(t)
    both("parallel --pipe --group-by 1 --block 10k -k 'wc -l'", groups)
    assert.are.equal("      1 20\n   4760 21\n      1 20\n",
      both("parallel --pipe --group-by 1 -N3 -k 'wc -l' | uniq -c", groups).stdout)
    assert.are.equal("76551\n23449\n", both("parallel --pipe --group-by 1 --roundrobin -j3 -k 'wc -l'", groups).stdout)
    local p = gnu.run("par", "parallel --pipe --group-by '1 s/\\D//g' -kN1 wc", { stdin = csv })
    finally(function() gnu.clean(p) end)
    assert.are.same({ 255, "par: --group-by's perl expression ('s/\\D//g') is not supported\n" },
      { p.status, p.stderr })
  end)

  it("refuses --tee without ::: arguments", function()
    local p = gnu.run("par", "parallel --tee wc -l", { stdin = ten })
    finally(function() gnu.clean(p) end)
    assert.are.equal(255, p.status)
    assert.matches("%-%-tee gives all of stdin to every job", p.stderr)
  end)
end)
