--- Differential spec: the par command against GNU parallel 20221122, case by
-- case, from GNU's manual (EXAMPLES and option descriptions), tutorial and
-- parallel_examples.  Each case runs both programs in fresh sandboxes
-- (spec/support/gnu.lua) and compares stdout and exit status (and stderr
-- when the case says stderr = true, with the program name normalized).
-- Known differences are in spec/support/gnu_manual_known.lua: such a case is
-- pending while it differs, and fails once it agrees, so the list stays honest.
local gnu = require("spec.support.gnu")
local known = require("spec.support.gnu_manual_known")

local F3 = { ["a.txt"] = "1\n2\n3\n", ["b.txt"] = "a\nb\n" }
local T = { ["t.tsv"] = "x\ty\n1\t2\n3\t4\n" }
local CSV = { ["h.csv"] = "n,m\n1,2\n3,4\n" }

local cases = {
  -- input sources
  { "parallel -k echo ::: a b c" },
  { "parallel -k echo ::: a b ::: 1 2" },
  { "parallel -k echo ::: a b ::: 1 2 ::: x y" },
  { "parallel -k echo ::: a b c :::+ 1 2 3" },
  { "parallel -k echo ::: a b :::+ 1 2 ::: x y" },
  { "parallel -k echo :::: a.txt", files = F3 },
  { "parallel -k echo :::: a.txt b.txt", files = F3 },
  { "parallel -k echo :::: a.txt ::::+ a.txt", files = F3 },
  { "parallel -k echo :::: a.txt ::: x y", files = F3 },
  { "parallel -k --link echo ::: a b c ::: 1 2 3" },
  { "parallel -k --link echo ::: a b c ::: 1 2" },
  { "parallel -k --xapply echo ::: a b c d ::: 1 2" },
  { "parallel -k -a a.txt echo", files = F3 },
  { "parallel -k -a a.txt -a b.txt echo", files = F3 },
  { "parallel -k -a a.txt echo ::: x y", files = F3 },
  { "parallel -k --arg-file a.txt echo", files = F3 },
  { "printf '1\\n2\\n3\\n' | parallel -k echo" },
  { "printf 'a b\\nc d\\n' | parallel -k echo" },
  { "printf '1\\n2\\n' | parallel -k echo :::: - ::: x y" },
  { "printf 'a,b,c' | parallel -k -d , echo" },
  { "printf 'a\\0b\\0c\\0' | parallel -k -0 echo" },
  { "printf 'a\\0b\\0c\\0' | parallel -k --null echo" },
  { "printf 'a:b:c' | parallel -k --delimiter : echo" },
  { "printf 'a\\nb\\nSTOP\\nc\\n' | parallel -k -E STOP echo" },
  { "parallel -k --arg-sep ,, echo ,, a b" },
  { "parallel -k --arg-file-sep // echo // a.txt", files = F3 },
  { "printf 'a\\n\\nb\\n' | parallel -k -r echo" },
  { "printf 'a\\n\\nb\\n' | parallel -k echo x{}x" },
  { "printf '  a  \\n' | parallel -k --trim lr echo x{}x" },
  { "printf '  a  \\n' | parallel -k --trim l echo x{}x" },
  { "printf '  a  \\n' | parallel -k --trim r echo x{}x" },
  { "printf '  a  \\n' | parallel -k --trim n echo x{}x" },
  { "parallel -k --colsep '\\t' echo {2} {1} :::: t.tsv", files = T },
  { "parallel -k --colsep , echo {1}+{2} :::: h.csv", files = CSV },
  { "parallel -k --colsep , --header : echo {n}+{m} :::: h.csv", files = CSV },
  { "parallel -k --header : echo {f1} {f2} ::: f1 a b ::: f2 1 2" },
  { "parallel -k --colsep '\\t' --header : echo {y} :::: t.tsv", files = T },
  { "parallel -k echo ::: a ::: " , stderr = false },
  { "parallel -k echo {} ::: 'a b' \"c'd\"" },
  -- replacement strings
  { "parallel -k echo {} ::: dir/sub/file.tar.gz" },
  { "parallel -k echo {.} ::: dir/sub/file.tar.gz" },
  { "parallel -k echo {/} ::: dir/sub/file.tar.gz" },
  { "parallel -k echo {//} ::: dir/sub/file.tar.gz" },
  { "parallel -k echo {/.} ::: dir/sub/file.tar.gz" },
  { "parallel -k echo {//} ::: file" },
  { "parallel -k echo {.} ::: .hidden" },
  { "parallel -k echo {.} ::: a.b/c" },
  { "parallel -k echo {#} ::: a b c" },
  { "parallel -k -j1 echo {%} ::: a b c" },
  { "parallel -k echo {1} {2} ::: a b ::: c d" },
  { "parallel -k echo {-1} {-2} ::: a b ::: c d" },
  { "parallel -k echo {1/} {2.} ::: x/a.b ::: y/c.d" },
  { "parallel -k echo {1//} {1/.} ::: x/a.b" },
  { "parallel -k echo {2} ::: a b" },
  { "parallel -k echo {3} ::: a ::: b" },
  { "parallel -k -I ,, echo ,, ::: a b" },
  { "parallel -k -I {o} echo {o}{o} ::: a b" },
  { "parallel -k --replace ,, echo ,, ::: a" },
  { "parallel -k --er ,, echo ,, ::: a.b" },
  { "parallel -k --extensionreplace ,, echo ,, ::: a.b" },
  { "parallel -k --bnr ,, echo ,, ::: x/a.b" },
  { "parallel -k --dnr ,, echo ,, ::: x/a.b" },
  { "parallel -k --bner ,, echo ,, ::: x/a.b" },
  { "parallel -k --seqreplace ,, echo ,, ::: a b" },
  { "parallel -k -j1 --slotreplace ,, echo ,, ::: a b" },
  { "parallel -k echo {##} ::: a b c" },
  { "parallel -k echo {#}/{##} ::: a b ::: c d" },
  { "parallel -k --plus echo {..} ::: a.tar.gz" },
  { "parallel -k --plus echo {...} ::: a.tar.gz" },
  { "parallel -k --plus echo {/..} ::: x/a.tar.gz" },
  { "parallel -k --plus echo {/...} ::: x/a.tar.gz" },
  { "parallel -k --plus echo {+.} ::: a.tar.gz" },
  { "parallel -k --plus echo {+..} ::: a.tar.gz" },
  { "parallel -k --plus echo {+/} ::: x/y/a.b" },
  { "parallel -k --plus echo {##} ::: a b" },
  { "parallel -k --plus echo {0#} ::: a b" },
  { "parallel -k --plus echo {:-x} ::: a ''" },
  { "parallel -k --plus echo {:2:3} ::: abcdefg" },
  { "parallel -k --plus echo {#ab} ::: abcab" },
  { "parallel -k --plus echo {%ab} ::: abcab" },
  { "parallel -k --plus echo {/ab/X} ::: abcab" },
  { "parallel -k --plus echo {^a} ::: abc" },
  { "parallel -k --rpl '{x} s/a/b/' echo {x} ::: aaa", note = "perl" },
  { "parallel -k echo 'pre{}post' ::: a" },
  { "parallel -k echo '{}' '{}' ::: a" },
  { "parallel -k echo ::: a b" },
  { "parallel -k echo X ::: a b" },
  -- -m -X -N -n -L -s -x
  { "parallel -k -m echo ::: a b c d" },
  { "parallel -k -X echo pre{}post ::: a b c" },
  { "parallel -k -m echo pre{}post ::: a b c" },
  { "printf '1\\n2\\n3\\n' | parallel -k --xargs echo" },
  { "parallel -k -N2 echo ::: a b c d e" },
  { "parallel -k -N2 echo {1}-{2} ::: a b c d e" },
  { "parallel -k -n2 echo ::: a b c d e" },
  { "parallel -k --max-args 3 echo ::: a b c d e" },
  { "parallel -k -N0 echo x ::: a b c" },
  { "printf 'a b\\nc\\nd e\\n' | parallel -k -L2 echo" },
  { "printf 'a b\\nc\\nd e\\n' | parallel -k --max-lines 1 echo" },
  { "parallel -k -s 20 -m echo ::: aaaa bbbb cccc dddd eeee" },
  { "parallel -k -X -N2 echo ::: a b c d e" },
  { "parallel -k -m -j1 echo ::: a b c" },
  { "seq 10 | parallel -k -X -j2 echo" },
  -- --pipe
  { "seq 5 | parallel -k --pipe cat" },
  { "seq 5 | parallel -k --pipe wc -l" },
  { "seq 1000 | parallel -k --pipe --block 1k wc -l" },
  { "seq 1000 | parallel -k --pipe --block 500 wc -l" },
  { "printf 'a\\nb\\n' | parallel -k --pipe --cat cat {}" },
  { "printf 'a\\nb\\n' | parallel -k --pipe --fifo cat {}" },
  { "printf '>1\\nx\\n>2\\ny\\n' | parallel -k --pipe --recstart '>' -N1 cat" },
  { "printf 'a;b;c;' | parallel -k --pipe --recend ';' -N1 cat" },
  { "printf 'h\\n1\\n2\\n3\\n' | parallel -k --pipe --header : -N1 cat" },
  { "printf 'h\\n1\\n2\\n3\\n' | parallel -k --pipe --header 1 -N2 cat" },
  { "seq 10 | parallel -k --pipe -N3 cat" },
  { "seq 10 | parallel -k --pipe -L2 -N1 cat" },
  { "seq 10 | parallel --pipe --roundrobin -j2 wc -l", sort = true },
  { "seq 3 | parallel -k --pipe --tee sed s/^/{}/ ::: a b" },
  { "printf 'a1b2c3' | parallel -k --pipe --regexp --recend '[0-9]' -N1 cat" },
  { "parallel -k --pipepart -a a.txt cat", files = F3 },
  { "parallel -k --pipepart --block 2 -a a.txt wc -l", files = F3 },
  { "seq 5 | parallel -k --pipe --rrs --recend 3 -N1 cat" },
  -- --halt
  { "parallel -k -j1 --halt now,fail=1 'echo {}; exit {}' ::: 0 1 2 3" },
  { "parallel -k -j1 --halt soon,fail=1 'echo {}; exit {}' ::: 0 1 2 3" },
  { "parallel -k -j1 --halt never 'echo {}; exit {}' ::: 0 1 2 3" },
  { "parallel -k -j1 --halt 2 'echo {}; exit {}' ::: 0 1 2 3" },
  { "parallel -k -j1 --halt 1 'echo {}; exit {}' ::: 0 1 2 3" },
  { "parallel -k -j1 --halt 0 'echo {}; exit {}' ::: 0 1 2 3" },
  { "parallel -k -j1 --halt now,fail=2 'echo {}; exit {}' ::: 0 1 2 3" },
  { "parallel -k -j1 --halt now,success=1 'echo {}; exit {}' ::: 1 0 2" },
  { "parallel -k -j1 --halt soon,success=2 'echo {}; exit {}' ::: 1 0 0 2", stderr = true },
  { "parallel -k -j1 --halt now,done=2 'echo {}; exit {}' ::: 1 0 0 2" },
  { "parallel -k -j1 --halt now,fail=50% 'echo {}; exit {}' ::: 0 1 1 0 1 1" },
  { "parallel -k -j1 --halt-on-error 2 'echo {}; exit {}' ::: 0 3 0" },
  { "parallel -k -j1 --halt now,fail=1 'exit {}' ::: 0 5 0", stderr = true },
  -- exit statuses
  { "parallel -k 'exit {}' ::: 0 0 0" },
  { "parallel -k 'exit {}' ::: 0 1 0 2" },
  { "seq 150 | parallel -k 'exit 1'" },
  { "seq 101 | parallel -k 'exit 1'" },
  { "seq 100 | parallel -k 'exit 1'" },
  { "parallel -k false ::: a b c" },
  { "parallel -k -j1 'kill -9 $$' ::: 1" },
  { "parallel --no-such-option echo" },
  { "parallel -j 0x echo ::: a" },
  { "parallel echo {} :::: nonexistent" },
  -- output
  { "parallel -k --tag echo x ::: a b" },
  { "parallel -k --tag echo ::: a b ::: c" },
  { "parallel -k --tagstring '<{}>' echo x ::: a b" },
  { "parallel -k --tagstring '{#}:' echo x ::: a b" },
  { "parallel -k --tag 'echo 1; echo 2' ::: a" },
  { "parallel -k --line-buffer echo ::: a b c" },
  { "parallel -k --lb --tag echo ::: a b" },
  { "parallel -j1 -u echo ::: a b c" },
  { "parallel -j1 --ungroup echo ::: a b c" },
  { "parallel -k --group 'echo a; echo b' ::: 1 2" },
  { "parallel -j4 'sleep 0.{}; echo {}' ::: 3 2 1", sort = true },
  { "parallel -j4 -k 'sleep 0.{}; echo {}' ::: 3 2 1" },
  { "parallel -k 'echo {} >&2' ::: a b", stderr = true },
  { "parallel -k -t echo ::: a b", stderr = true },
  { "parallel -k -v echo ::: a b" },
  { "parallel -k --verbose echo ::: a b" },
  { "parallel -k --dry-run echo ::: a b" },
  { "parallel -k --dry-run echo {#} {} ::: 'a b'" },
  { "parallel -k --dry-run -j1 echo {%} ::: a" },
  { "parallel -k -t -j1 echo {%} ::: a", stderr = true },
  { "parallel -k --silent echo ::: a" },
  { "parallel -k --joblog - echo ::: a b | cut -f1,2,5-7,9" },
  { "parallel -k -j1 --joblog jl echo ::: a b; cut -f1,2,5-7,9 jl" },
  { "parallel -k -j1 --joblog jl 'exit {}' ::: 0 3; cut -f7,9 jl" },
  { "parallel -k --results out echo ::: a b; cat out/1/a/stdout out/1/b/stdout" },
  { "parallel -k --results out.tsv echo ::: a; cut -f1,7-9 out.tsv" },
  { "parallel -k --files echo ::: a b | xargs cat" },
  { "parallel -k echo -n ::: a b" },
  { "parallel -k printf '%s' ::: a b" },
  -- jobs
  { "parallel -k -j1 echo ::: a b" },
  { "parallel -k -j +1 echo ::: a b" },
  { "parallel -k -j -1 echo ::: a b" },
  { "parallel -k -j 50% echo ::: a b" },
  { "parallel -k -j 200% echo ::: a b" },
  { "parallel -k -P 2 echo ::: a b" },
  { "parallel -k --jobs 3 echo ::: a b" },
  { "parallel -k -j0 echo ::: a b" },
  { "parallel -k -j1 'echo $PARALLEL_SEQ' ::: a b c" },
  { "parallel -k -j1 'echo $PARALLEL_JOBSLOT' ::: a b c" },
  { "parallel -k -j2 'echo $PARALLEL_JOBSLOT' ::: a", sort = true },
  { "parallel --number-of-cores" },
  { "parallel --number-of-cpus" },
  { "parallel --number-of-threads" },
  { "parallel --minversion 20100101" },
  { "parallel --minversion 29990101" },
  { "parallel --will-cite -k echo ::: a" },
  { "parallel --no-notice -k echo ::: a" },
  { "PARALLEL=-k parallel echo ::: a b" },
  { "PARALLEL='-k --tag' parallel echo ::: a b" },
  -- timing
  { "parallel -k --timeout 1 'sleep {}; echo {}' ::: 0 5" },
  { "parallel -k --timeout 200% 'sleep {}; echo {}' ::: 0.1 0.1 0.1 5" },
  { "parallel -k --retries 3 'echo x; exit 1' ::: a" },
  { "parallel -k --retries 2 'test -e f || { touch f; exit 1; }; echo ok' ::: a" },
  { "parallel -k --delay 0.1 echo ::: a b" },
  { "parallel -k --delay 0.1s echo ::: a b" },
  -- misc
  { "mkdir d; parallel -k --wd d pwd ::: a | sed 's:.*/::'" },
  { "parallel -k --wd .. 'test -d {}' ::: /tmp && echo yes" },
  { "parallel -k -q echo 'a  b' ::: c" },
  { "parallel -k -q printf '%s\\n' ::: 'a b' c" },
  { "parallel -k -q sh -c 'echo $0' ::: a" },
  { "parallel -k -q perl -e 'print \"$ARGV[0]\\n\"' ::: a" },
  { "echo 'a b$c' | parallel --shellquote" },
  { "printf 'a\\nb c\\n' | parallel --shellquote" },
  { "parallel -k --nice 10 echo ::: a" },
  { "parallel -k 'echo {} | tr a-z A-Z' ::: ab cd" },
  { "parallel -k echo '{}>x' ::: a; cat x" },
  { "parallel -k 'echo \"{}\"' ::: 'a  b'" },
  { "parallel -k echo ::: '*'" },
  { "parallel -k echo ::: '$HOME' | grep -c HOME" },
  -- examples from the manuals
  { "parallel -k gzip ::: a.txt b.txt; ls", files = F3 },
  { "parallel -k 'echo {} {.}.out' ::: x.in y.in" },
  { "seq 3 | parallel -k seq {}" },
  { "seq 3 | parallel -k -j1 'echo {}; echo {}'" },
  { "parallel -k echo {1} {2} {1} ::: a ::: b" },
  { "parallel -k 'mkdir -p {//} && echo {/}' ::: p/q/r; ls -d p/q" },
  { "parallel -k 'convert {} {.}.png' ::: a.gif", stderr = false },
  { "seq 3 | parallel -k -I @@ echo @@ @@" },
  { "(echo a; echo b) | parallel -k echo {#}:{}" },
  { "parallel -k --colsep ' ' echo {2} ::: 'a b' 'c d'" },
  { "parallel -k --tag --colsep , echo {2} :::: h.csv", files = CSV },
  { "parallel -k --header : --colsep , --tag echo {m} :::: h.csv", files = CSV },
  { "seq 4 | parallel -k -N2 echo {1}+{2}" },
  { "seq 4 | parallel -k -n2 -X echo x{}y" },
  { "parallel -k 'seq {1} {2}' ::: 1 2 ::: 3" },
  { "parallel -k --link 'echo {1}={2}' ::: a b ::: 1 2" },
  { "parallel -k echo {1} ::: a b :::+ 1 2 :::+ x y" },
  { "seq 6 | parallel -k --pipe -N2 'tr \"\\n\" +; echo'" },
  { "seq 1 3 | parallel -k --dry-run -X rm {}" },
  { "parallel -k --dry-run 'echo {}; echo {.}' ::: a.b" },
  { "parallel -k -j1 --tag 'echo {}; exit {}' ::: 0 1" },
  { "parallel -k echo ::: 1 2 3 | parallel -k echo x" },
  { "parallel -k --tagstring {} echo {} ::: a" },
  { "parallel -k --tag -v echo ::: a" },
  { "parallel -k -j2 --halt now,fail=1 'sleep {}; exit 1' ::: 0.1 3" },
  { "parallel -k echo" },
  { "true | parallel -k echo" },
  { "true | parallel -k -r echo" },
  { "true | parallel -k --pipe cat" },
  { "parallel -k :::" },
  { "parallel -k echo ::: a b | wc -l" },
  { "parallel -k --joblog - -j1 'exit {}' ::: 1 2 | cut -f1,7" },
  { "parallel -k -j1 -k --halt now,fail=1 --joblog jl 'exit {}' ::: 1 0; cut -f1,7 jl" },
  { "parallel -k --xargs -n2 echo ::: a b c d e" },
  { "parallel -k -x -s 10 -m echo ::: aaaaaaaaaaaaaaa" },
  { "parallel -k -s 10 echo ::: aaaaaaaaaaaaaaa" },
  { "printf 'a b \\nc\\n' | parallel -k -L1 echo" },
  { "parallel -k --colsep , --trim lr echo {2}x ::: 'a , b '" },
}

local function norm(s) return (s:gsub("parallel:", "par:")) end

describe("par against GNU parallel #gnu", function()
  for _, c in ipairs(cases) do
    local line = c[1]
    it(line, function()
      local p, g = gnu.both(line, { stdin = c.stdin, files = c.files, timeout = c.timeout or 30 })
      gnu.clean(p); gnu.clean(g)
      local function key(r)
        local out = r.stdout
        if c.sort then
          local t = {}
          for l in out:gmatch("[^\n]*\n?") do if l ~= "" then t[#t + 1] = l end end
          table.sort(t)
          out = table.concat(t)
        end
        local k = { out = out, status = r.status }
        if c.stderr then k.err = norm(r.stderr) end
        return k
      end
      local pk, gk = key(p), key(g)
      local same = pk.out == gk.out and pk.status == gk.status and pk.err == gk.err
      if known[line] then
        if same then
          error("known difference no longer differs: remove it from gnu_manual_known.lua")
        end
        pending(known[line])
        return
      end
      assert.are.same(gk, pk)
    end)
  end
end)

describe("par on GNU options it does not do", function()
  local options = require("par.options")
  local have, names = {}, {}
  for _, f in ipairs(options.flags()) do
    if f.long then have["--" .. f.long] = true end
    if f.short then have["-" .. f.short] = true end
  end
  for name in pairs(options.GNU_OPTIONS) do
    if not have[name] then names[#names + 1] = name end
  end
  table.sort(names)
  it("has some to check", function() assert.is_true(#names > 0) end)
  for _, name in ipairs(names) do
    it(name .. " fails with one line and status 255", function()
      local r = gnu.run("par", "parallel " .. name .. " echo ::: a", { timeout = 20 })
      gnu.clean(r)
      assert.are.equal(255, r.status)
      assert.are.equal("par: " .. name .. " is not supported\n", r.stderr)
      assert.are.equal("", r.stdout)
    end)
  end
end)
