--- The par command beside GNU parallel 20221122: the same command lines,
-- taken from GNU parallel's manual, tutorial and examples, run by both in
-- fresh directories (spec/support/gnu.lua); stdout and the exit status must
-- agree, and stderr too where a case says so (with the program's name
-- made the same).  A line listed in spec/support/gnu_known.lua is a known
-- difference: pending while it still differs, and a failure once it no
-- longer does, so that the list stays true.
local gnu = require "spec.support.gnu"
local known = require "spec.support.gnu_known"

local ABC = "A\nB\nC\n"
local FILES = {
  ["abc-file"] = ABC,
  ["def-file"] = "D\nE\nF\n",
  ["num8"] = "1\n2\n3\n4\n5\n6\n7\n8\n",
  ["tsv"] = "f1\tf2\nA\tB\nC\tD\n",
  ["csv"] = "a,b,c\n1,2,3\n",
  ["dir/sub/file.tar.gz"] = "x\n",
}

-- { line [, stdin = text] [, stderr = true] [, sort = true] }
local cases = {
  -- Input sources
  { "parallel -k echo ::: A B C" },
  { "parallel -k echo ::: A B ::: 1 2" },
  { "parallel -k echo ::: A B ::: 1 2 ::: x y" },
  { "parallel -k echo :::: abc-file" },
  { "parallel -k echo :::: abc-file def-file" },
  { "parallel -k echo :::: abc-file :::: def-file" },
  { "parallel -k echo :::: abc-file ::: 1 2" },
  { "parallel -k echo ::: A B C :::+ 1 2 3" },
  { "parallel -k echo ::: A B C :::+ 1 2" },
  { "parallel -k echo :::: abc-file ::::+ def-file" },
  { "parallel -k --link echo ::: A B C ::: 1 2 3" },
  { "parallel -k --link echo ::: A B C D ::: 1 2" },
  { "parallel -k --xapply echo ::: A B ::: 1 2 3" },
  { "parallel -k -a abc-file echo" },
  { "parallel -k -a abc-file -a def-file echo" },
  { "parallel -k --arg-file abc-file echo" },
  { "parallel -k -a abc-file echo ::: 1 2" },
  { "cat abc-file | parallel -k echo" },
  { "parallel -k echo", stdin = "a\nb\n\nc\n" },
  { "parallel -k echo :::: -", stdin = "x\ny\n" },
  { "parallel -k echo {} :::: - ::: 1 2", stdin = "x\ny\n" },
  { "printf 'a\\0b\\0' | parallel -k -0 echo" },
  { "printf 'a\\0b\\0' | parallel -k --null echo" },
  { "printf 'a:b:c' | parallel -k -d : echo" },
  { "printf 'a,b,c\\n' | parallel -k --delimiter , echo" },
  { "parallel -k -E stop echo", stdin = "a\nstop\nb\n" },
  { "parallel -k --arg-sep ,, echo ,, A B" },
  { "parallel -k --arg-file-sep // echo // abc-file" },
  { "parallel -k -r echo", stdin = "a\n\n  \nb\n" },
  { "parallel -k --no-run-if-empty echo x{}x", stdin = "a\n\nb\n" },
  { "parallel -k --trim lr echo x{}x ::: ' a ' '  b'" },
  { "parallel -k --trim l echo x{}x ::: ' a '" },
  { "parallel -k --trim r echo x{}x ::: ' a '" },
  { "parallel -k --trim n echo x{}x ::: ' a '" },
  { "parallel -k --colsep '\\t' echo {2} {1} :::: tsv" },
  { "parallel -k --colsep , echo {3}-{1} :::: csv" },
  { "parallel -k --header : --colsep '\\t' echo {f2} {f1} :::: tsv" },
  { "parallel -k --header : echo {a} {b} ::: a 1 2 ::: b 3 4" },
  { "parallel -k echo {} ::: 'a b' \"c'd\" 'e\"f'" },
  { "printf 'a\\r\\n' | parallel -k echo '[{}]'" },
  { "parallel -k echo '#' ::: x", stdin = "" },
  { "parallel echo ::: " },
  { "parallel -k echo", stdin = "" },
  { "parallel -k --shuf echo ::: A B C | sort" },

  -- Replacement strings
  { "parallel -k echo {} ::: dir/sub/file.tar.gz" },
  { "parallel -k echo {.} ::: dir/sub/file.tar.gz" },
  { "parallel -k echo {/} ::: dir/sub/file.tar.gz" },
  { "parallel -k echo {//} ::: dir/sub/file.tar.gz /f dir/ a/b/ f" },
  { "parallel -k echo {/.} ::: dir/sub/file.tar.gz" },
  { "parallel -k echo {#} ::: A B C" },
  { "parallel -k -j1 echo {%} ::: A B C" },
  { "parallel -k echo {1} {2} ::: A B ::: 1 2" },
  { "parallel -k echo {2} {1} ::: A B ::: 1 2" },
  { "parallel -k echo {-1} {-2} ::: A B ::: 1 2" },
  { "parallel -k echo {1/} {2.} ::: d/a.x ::: e/b.y" },
  { "parallel -k echo {1//} {1/.} ::: d/a.x" },
  { "parallel -k echo {} {1} ::: A ::: B" },
  { "parallel -k -I ,, echo ,, ::: A B" },
  { "parallel -k --replace ,, echo ,, ::: A B" },
  { "parallel -k --er ,, echo ,, ::: a.x" },
  { "parallel -k --extensionreplace ,, echo ,, ::: a.x" },
  { "parallel -k --bnr ,, echo ,, ::: d/a.x" },
  { "parallel -k --dnr ,, echo ,, ::: d/a.x" },
  { "parallel -k --bner ,, echo ,, ::: d/a.x" },
  { "parallel -k --seqreplace ,, echo ,, ::: A B" },
  { "parallel -k -j1 --slotreplace ,, echo ,, ::: A B" },
  { "parallel -k --dry-run -j1 echo {%} ::: a b" },
  { "parallel -k --dry-run -j1 --tagstring '<{%}>' echo {} ::: a b" },
  { "parallel -k -j1 --tagstring '{%}x' echo {} ::: a b c" },
  { "parallel -k -j1 -v echo {%} ::: a b" },
  { "parallel -k -t -j1 echo {%} ::: a b", stderr = true },
  { "parallel -k -j1 --joblog log echo {%} ::: a b; cut -f9 log" },
  { "parallel -j1 --halt now,fail=1 'echo {%}; false' ::: a", stderr = true },
  { "parallel -k -j1 --results 'r{%}/' echo {} ::: a; cat r1/stdout" },
  { "parallel -k echo x ::: a b :::: /dev/null" },
  { "parallel -k echo x ::: a ::: ::: b" },
  { "parallel -k echo x ::: a :::" },
  { "parallel -k echo x ::: :::" },
  { "parallel -k echo x ::: ''" },
  { "parallel -k echo x :::", stdin = "q\n" },
  { "parallel -k --plus echo {##} ::: A B C" },
  { "parallel -k --plus echo {0#} ::: A B C D E F G H I J" },
  { "parallel -k --plus echo {+/} {+.} {..} {+..} ::: d/a.tar.gz" },
  { "parallel -k --plus echo {...} {+...} {/..} {/...} ::: d/a.tar.gz.x" },
  { "parallel -k --plus echo {:-x} ::: '' y" },
  { "parallel -k --plus echo {:2:3} ::: abcdefg" },
  { "parallel -k --plus echo {#a} {%g} ::: abcdefg" },
  { "parallel -k --plus echo {/b/X} ::: abcabc" },
  { "parallel -k --plus echo {^a} {,A} ::: abc" },
  { "parallel -k --plus echo {:2} {:10:2} {:3:10} {:7:1}x ::: abcdefg" },
  { "parallel -k --plus echo {:-x} ::: 0 '' 00" },
  { "parallel -k --plus echo {##z.*z.} {#z.*z.} ::: z.z.z.foo" },
  { "parallel -k --plus echo {%%.z.*z} {%.z.*z} ::: foo.z.z.z" },
  { "parallel -k --plus echo {//b/X} {/#a/X} {/%c/X} {/b/} ::: abcabc" },
  { "parallel -k --plus echo {^^a} '{,,A}' {^^[ab]} '{,[A-C]}' ::: abcab ABCAB" },
  { "parallel -k --plus echo {1:-x} {2#a} {1:2:3} {-1%c} {2/a/Z} ::: abc '' ::: abcabc" },
  { "parallel -k --plus echo '{#a|b}' '{#(ab)+}' '{//a|b/-}' '{/\\d/D}' '{#.{2}}' ::: abab1" },
  { "parallel -k --plus echo '{//b*/-}' '{//x*/-}' '{/%x*/-}' '{^^b*}' ::: abc" },
  { "parallel -k --plus echo '{/(a)(b)/$2}' '{%%b+}' '{%\\d}' ::: abab1" },
  { "parallel -k --plus echo {:-no value} '{:-a b}' ::: ''" },
  { "parallel -k -j1 --plus -X echo {:-x} {#a} ::: '' ab ac" },
  { "parallel -k --plus --tagstring '{:-T}{%x}' echo {} ::: '' xbx" },
  { "parallel -k --plus echo {3:-x} {3.} x ::: a ::: b" },
  { "parallel -k -j1 -N2 --plus echo {slot} {} ::: a b c" },
  { "parallel -k -j1 --plus -q echo {slot} ::: a" },
  { "parallel -k echo {3} ::: A ::: B" },
  { "parallel -k echo {} {}.out ::: x" },
  { "parallel -k echo {} ::: '*' '$HOME' '`date`'" },
  { "parallel -k -q echo 'a  b' ::: x" },
  { "parallel -k -q perl -e 'print \"@ARGV\\n\"' ::: a" },
  { "parallel --shellquote ::: 'a b' \"c'd\"" },
  { "parallel --shellquote", stdin = "a b\nc\n" },

  -- Several arguments a job
  { "parallel -k -N2 echo ::: A B C D E" },
  { "parallel -k -n2 echo ::: A B C D E" },
  { "parallel -k --max-args 3 echo ::: A B C D E" },
  { "parallel -k -N2 echo {1}-{2} ::: A B C D" },
  { "parallel -k -N0 echo x ::: A B C" },
  { "parallel -k -L2 echo", stdin = "a b\nc\nd e f\ng\n" },
  { "parallel -k --max-lines 1 echo", stdin = "a b\nc\n" },
  { "parallel -k -L1 echo", stdin = "a \nb\nc\n" },
  { "parallel -k -m echo ::: A B C" },
  { "parallel -k -j1 -m echo ::: A B C D" },
  { "parallel -k -j1 -X echo pre-{}-post ::: A B C" },
  { "parallel -k -j1 --xargs echo ::: A B C" },
  { "parallel -k -j1 --xargs -n 2 echo ::: A B C" },
  { "parallel -k -j1 -s 20 -X echo ::: aaaa bbbb cccc dddd eeee" },
  { "parallel -k -j1 -m -s 12 echo ::: aaaa bbbb cccc" },
  { "parallel -k -x -s 10 -m echo ::: aaaaaaaaaaaa", stderr = true },

  -- --pipe and --pipepart
  { "seq 10 | parallel -k --pipe -N3 cat" },
  { "seq 10 | parallel -k --pipe -N3 wc -l" },
  { "seq 1000 | parallel -k --pipe --block 100 wc -l" },
  { "seq 100000 | parallel -k --pipe --block 100k wc -l" },
  { "seq 10 | parallel -k --pipe -L3 cat" },
  { "printf 'a1b2a3b4' | parallel -k --pipe --recend b -N1 'cat; echo'" },
  { "printf '>a\\nx\\n>b\\ny\\n' | parallel -k --pipe --recstart '>' -N1 'cat; echo --'" },
  { "printf 'a,b,c,' | parallel -k --pipe --recend , --rrs -N1 'cat; echo'" },
  { "printf 'x\\n\\ny\\n' | parallel -k --rrs -N1 --pipe 'echo [$(cat)]'" },
  { "seq 6 | parallel -k --pipe -N2 --cat 'cat {}'" },
  { "seq 3 | parallel -k -j1 --pipe -N1 --tagstring 'T{%}-{#}' 'echo {%} {#}; cat'" },
  { "seq 3 | parallel -k --pipe -N1 'echo [{}] [{.}] [{1}] [{2}]; cat'" },
  { "seq 3 | parallel -k --pipe -N1 --tag cat" },
  { "seq 4 | parallel -k --pipe -N1 --joblog - cat | cut -f1,7-" },
  { "seq 4 | parallel -k -j2 --pipe -N1 --roundrobin --joblog - 'cat >/dev/null' | cut -f1,7- | sort" },
  { "seq 5 | parallel -k --plus --pipe -N2 echo {##} 2>/dev/null; echo $?" },
  { "seq 12 | parallel -k --plus echo {0#} | head -3" },
  { "seq 4 | parallel -k -j1 --pipe -N2 --fifo 'cat {}; echo {#} {%}'" },
  { "seq 4 | parallel -k -j1 --pipe -N2 -v --dry-run 'echo {%} {#} {}'" },
  { "seq 4 | parallel -k -j2 --pipe -N1 --roundrobin 'echo {%}; cat' | sort" },
  { "seq 6 | parallel -k --pipe -N2 --fifo 'cat {}'" },
  { "printf 'h\\n1\\n2\\n3\\n' | parallel -k --pipe -N1 --header : cat" },
  { "seq 4 | parallel -k --tee --pipe 'echo {}; cat' ::: A B" },
  { "parallel -k --pipepart -a num8 --block 4 wc -l" },
  { "seq 10 | parallel -j1 --roundrobin --pipe -N1 wc -l | sort" },
  { "printf 'a1\\nb2\\na3\\n' | parallel -k --pipe --regexp --recstart '[ab]' -N1 'cat; echo --'" },
  { "printf 'Abc\\ndef\\nGhi\\n' | parallel -k --pipe --regexp --recstart '^[A-Z]' -N1 'cat; echo --'" },
  { "printf 'a\\nb\\n\\nc\\n\\n\\nd\\n' | parallel -k --pipe --regexp --recend '\\n\\n' -N1 'cat; echo --'" },
  { "printf '>a\\nx\\n>b\\ny\\n' | parallel -k --pipe --regexp --recstart '>' --rrs -N1 'cat; echo --'" },
  { "seq 100000 | parallel -j3 -k --pipe --roundrobin --block 10k 'echo {#}; wc -l'" },
  { "seq 100000 | parallel -j3 --round-robin --pipe --block 10k wc -l | awk '{s+=$1} END {print s}'" },
  { "seq 10 | parallel -j2 -k --round --pipe --header 1 -N2 'echo {#}; cat'" },
  { "printf 'k,v\\n1,a\\n2,b\\n3,c\\n4,d\\n' | parallel -k --pipe --bin 1 -j3 'echo {#}; cat'" },
  { "printf 'k,v\\n1,a\\n2,b\\n3,c\\n4,d\\n' | parallel -k --pipe --colsep , --bin k -j3 'echo {#}; cat'" },
  { "seq 3000 | parallel --pipe --shard 1 -j3 'sort -u | wc -l' | awk '{s+=$1} END {print s}'" },
  { "printf 'a,1\\nb,2\\na,3\\nc,4\\nb,5\\n' | parallel --pipe --colsep , --shard 1 -j2 sort | sort" },
  { "tail -n +2 csv | parallel --pipe --colsep , --group-by 1 -kN1 wc" },
  { "printf 'u,c\\n1,2\\n1,3\\n2,4\\n' | parallel --pipe --colsep , --group-by u -kN1 'cat; echo'" },
  { "printf 'a\\t1\\na\\t2\\nb\\t3\\n' | parallel -k --pipe --group-by 1 -N1 'echo ==; cat'" },

  -- --halt and exit statuses
  { "parallel -k 'exit {}' ::: 0 1 0 1 1" },
  { "parallel -k -j1 'exit {}' ::: 3" },
  { "seq 105 | parallel -j2 -k 'exit 1'" },
  { "parallel -j1 -k --halt now,fail=1 'echo {}; exit {}' ::: 0 0 4 0 0", stderr = true },
  { "parallel -j1 -k --halt soon,fail=1 'echo {}; exit {}' ::: 0 2 0", stderr = true },
  { "parallel -j1 -k --halt 2 'echo {}; exit {}' ::: 0 5 0" },
  { "parallel -j1 -k --halt 1 'echo {}; exit {}' ::: 0 5 0" },
  { "parallel -j1 -k --halt-on-error 2 'echo {}; exit {}' ::: 0 5 0" },
  { "parallel -j1 -k --halt now,fail=2 'echo {}; exit {}' ::: 0 1 0 1 0 0" },
  { "parallel -j1 -k --halt now,success=1 'echo {}; exit {}' ::: 1 0 1 1" },
  { "parallel -j1 -k --halt now,done=2 'echo {}' ::: 1 2 3 4" },
  { "parallel -j1 -k --halt now,fail=50% 'echo {}; exit {}' ::: 0 1 1 0 0 0" },
  { "parallel -j1 -k --halt never 'exit {}' ::: 1 0 1" },
  { "parallel --halt bogus echo ::: a" },
  { "parallel -k false ::: a b c" },
  { "parallel -k true ::: a b c" },
  { "parallel nosuchcommand-xyz ::: a" },

  -- Output
  { "parallel -k --tag echo ::: A B" },
  { "parallel -k --tag echo ::: A B ::: 1 2" },
  { "parallel -k --tagstring '<{}>' echo ::: A B" },
  { "parallel -k --tagstring '{#}:{1}' echo ::: A B ::: 1" },
  { "parallel -k --tag 'echo x; echo y' ::: A" },
  { "parallel -k -v echo ::: A B" },
  { "parallel -k -t echo ::: A B", stderr = true },
  { "parallel -k --verbose echo ::: A B", stderr = true },
  { "parallel -k --dry-run echo {} ::: A 'b c'" },
  { "parallel -k --dryrun --tag echo {} ::: A" },
  { "parallel -k -v --tag echo {} ::: A" },
  { "parallel -k --silent echo ::: A" },
  { "parallel -k --group echo ::: A B" },
  { "parallel -k --line-buffer echo ::: A B" },
  { "parallel -k --lb --tag echo ::: A B" },
  { "parallel -j1 -u echo ::: A B" },
  { "parallel -k --keep-order echo ::: A B" },
  { "parallel -k --joblog - echo ::: A B | cut -f1,2,6-9" },
  { "parallel -k --joblog - 'sleep 0.{}; echo {}' ::: 3 1 2 | cut -f1,7-9" },
  { "parallel -k --joblog log 'sleep 0.{}; echo {}' ::: 3 1 2; cut -f1,7-9 log" },
  { "parallel -j1 --joblog - 'echo {}; exit {}' ::: 0 1 | cut -f1,7-9" },
  { "parallel -k --results out echo ::: A B >/dev/null; find out -type f | sort; cat out/1/A/stdout" },
  { "parallel -k --results out.csv echo ::: A B >/dev/null; cut -d, -f1,2,7-11 out.csv" },
  { "parallel -k --files echo ::: A B | xargs cat" },
  { "parallel -k --results -.json echo ::: A 'B\"C' | sed 's/\"Starttime.*JobRuntime\": [0-9.]*//'" },
  { "parallel -k --compress seq ::: 300000 200000 | md5sum" },
  { "parallel -k --results -.json --tag 'echo o; echo e >&2' ::: a b | sed 's/\"Starttime.*JobRuntime\": [0-9.]*//'" },
  { "parallel -k --results -.csv --tagstring T{} 'echo o' ::: a | cut -d, -f1,2,5-" },
  { "parallel -k --files --tag echo ::: a b | cut -f1" },

  -- Jobs and load
  { "parallel -k -j1 echo ::: A B" },
  { "parallel -k -j +0 echo ::: A B" },
  { "parallel -k -j -1 echo ::: A B" },
  { "parallel -k -j 50% echo ::: A B" },
  { "parallel -k -j 0 echo ::: A B" },
  { "parallel -k -P 2 echo ::: A B" },
  { "parallel -k --max-procs 2 echo ::: A B" },
  { "parallel -k --jobs 2 echo ::: A B" },
  { "echo 2 > jf; parallel -k -j jf echo ::: A B C" },
  { "echo 1 > jf; parallel -k -j jf 'echo 3 > jf; echo {}' ::: A B C D; cat jf" },
  { "parallel -k --timeout 1 'sleep {}; echo {}' ::: 0 3" },
  { "parallel -k --timeout 1s 'sleep {}; echo {}' ::: 0 3" },
  { "parallel -j1 -k --timeout 200% 'sleep {}; echo {}' ::: 0.3 0.3 0.3 3 0.1" },
  { "parallel -j1 -k --timeout 300% 'sleep {}; echo {}' ::: 0.2 2.5 0.5" },
  { "parallel -k --timeout 0.3 --termseq INT,200,KILL,25 'sleep {}; echo {}' ::: 0 3" },
  { "parallel -k --timeout 0.3 --term-seq KILL,25 'sleep {}; echo {}' ::: 0 3" },
  { "parallel -k --retries 3 'echo try; exit 1' ::: a" },
  { "parallel -k --joblog log 'echo {}; exit {}' ::: 0 1 2 0; parallel -k --joblog log --retry-failed"
    .. " 'echo NEW {}' ::: 5 6; cut -f1,7-9 log" },
  { "parallel -k --joblog log --retry-failed 'echo NEW {}' ::: 5 6; cut -f1,7-9 log" },
  { "parallel -k --retry-failed 'echo NEW {}' ::: 5 6" },
  { "parallel -k --retries 2 'echo {}' ::: a" },
  { "parallel -k --delay 0.1 echo ::: A B" },
  { "parallel -k --load 10000 echo ::: A B" },
  { "parallel -k --progress echo ::: A B" },
  { "parallel -k --eta 'sleep 0.{}; echo {}' ::: 3 1 2" },
  { "parallel -k --eta --progress echo ::: A B 2>/dev/null" },
  { "parallel -k --load 0 echo ::: A B" },
  { "parallel -k --load 100000% echo ::: A B" },
  { "parallel -k --memfree 1k echo ::: A B" },
  { "parallel -k --memfree 1M --load +10000 echo ::: A B" },
  { "parallel -k --delay 0.1s echo ::: A B" },
  { "mkdir w; parallel -k --wd w pwd ::: A | sed 's,.*/,,'" },
  { "parallel -k --nice 10 'nice' ::: A" },
  { "parallel -k 'echo $PARALLEL_SEQ' ::: A B C" },
  { "parallel -k -j1 'echo $PARALLEL_JOBSLOT' ::: A B" },
  { "PARALLEL=-k parallel echo ::: B A" },
  { "PARALLEL='-k --tag' parallel echo ::: B A" },
  { "parallel --will-cite -k echo ::: A" },
  { "parallel --no-notice -k echo ::: A" },
  { "parallel --minversion 20200101" },
  { "parallel --minversion 29990101 >/dev/null" },
  { "parallel --number-of-cores" },
  { "parallel --number-of-threads" },
  { "parallel --number-of-cpus" },

  -- Command lines as the tutorial writes them
  { "parallel -k echo {} '|' tr a-z A-Z ::: a b" },
  { "parallel -k 'echo {} | tr a-z A-Z' ::: a b" },
  { "parallel -k -j2 'echo {}; echo {} >&2' ::: a b 2>/dev/null" },
  { "parallel -k echo ::: 1 2 3 | parallel -k echo x" },
  { "parallel -k 'echo {} > {}.out' ::: a b; cat a.out b.out" },
  { "seq 3 | parallel -k 'echo {}; seq {}'" },
  { "parallel -k gzip -c '<' {} '>' {}.gz ::: abc-file; gunzip -c abc-file.gz" },
  { "ls abc-file def-file | parallel -k wc -l" },
  -- The -S options without remote hosts (spec/ssh_spec.lua has them on real ones)
  { "parallel -k --nonall echo hi" },
  { "parallel -k --onall echo ::: a b" },
  { "parallel -S : -k --onall --tag echo ::: a b" },
  { "parallel -S : -k --onall -v echo ::: 1 'a b'" },
  { "parallel -S : -k --onall -t echo ::: 1", stderr = true },
  { "export PV=v; parallel -k --env PV 'echo $PV' ::: 1" },
  { "parallel -k --env _ echo ::: 1" },
  { "parallel -k --filter-hosts echo ::: 1" },
  { "parallel -k --transfer cat ::: abc-file", stderr = true },
  { "parallel -k --trc {}.x echo ::: abc-file", stderr = true },
  { "parallel -k --bf abc-file echo ::: 1", stderr = true },
  { "parallel -S : -k --return x --cleanup echo ::: 1", stderr = true },
}

local function same_name(s)
  return (s:gsub("parallel: ", "PROG: "):gsub("par: ", "PROG: "):gsub("PROG: Error: ", "PROG: "))
end

local function check(line, opts)
  local p, g = gnu.both(line, { stdin = opts.stdin, files = FILES })
  gnu.clean(p)
  gnu.clean(g)
  if opts.sort then
    local function sorted(s)
      local t = {}
      for l in s:gmatch("[^\n]*\n?") do if l ~= "" then t[#t + 1] = l end end
      table.sort(t)
      return table.concat(t)
    end
    p.stdout, g.stdout = sorted(p.stdout), sorted(g.stdout)
  end
  local mine = { stdout = p.stdout, status = p.status }
  local theirs = { stdout = g.stdout, status = g.status }
  if opts.stderr then
    mine.stderr, theirs.stderr = same_name(p.stderr), same_name(g.stderr)
  end
  return mine, theirs
end

local function agree(a, b)
  return a.stdout == b.stdout and a.status == b.status and a.stderr == b.stderr
end

describe("par beside GNU parallel 20221122 #gnu", function()
  for _, c in ipairs(cases) do
    local line = c[1]
    local why = known[line]
    it(line, function()
      local mine, theirs = check(line, c)
      if why then
        if agree(mine, theirs) then
          error("known difference no longer differs: remove it from gnu_known.lua: " .. line)
        end
        pending(why)
      else
        assert.same(theirs, mine)
      end
    end)
  end

  it("lists no known difference that has no case", function()
    local lines = {}
    for _, c in ipairs(cases) do lines[c[1]] = true end
    for line in pairs(known) do
      assert(lines[line], "gnu_known.lua lists a line no case runs: " .. line)
    end
  end)
end)

describe("a GNU parallel option par does not do", function()
  it("ends the command with one line naming a Perl regexp of --plus it does not take", function()
    local r = gnu.run("par", "parallel -k --plus echo '{#(?=a)}' ::: abc")
    gnu.clean(r)
    assert.same({ "par: --plus's {#(?=a)}: the Perl regexp '^(?=a)(.*)': (?= is not supported\n", 255, "" },
      { r.stderr, r.status, r.stdout })
  end)

  for _, opt in ipairs({ "--sqlmaster x", "--semaphore", "--tmux", "--controlmaster", "--sql x",
      "--compress-program gzip" }) do
    it("ends the command with one line naming it: " .. opt, function()
      local r = gnu.run("par", "parallel " .. opt .. " echo ::: a")
      gnu.clean(r)
      local name = opt:match("^%S+")
      assert.equal("par: " .. name .. " is not supported\n", r.stderr)
      assert.equal(255, r.status)
      assert.equal("", r.stdout)
    end)
  end
end)
