-- --plus's bash-like replacement strings ({:-x}, {:2:3}, {#re}, {%re},
-- {/re/s}, {^a}, {,A} ...): par.cli.regexp (Perl regexps) on its own, and
-- the `par` command run as a real subprocess.  The expected values are
-- what perl 5.36 and GNU parallel 20221122 print.
local H = require "spec.helpers"
local quote = require("par").quote
local regexp = require "par.cli.regexp"

local ENV, PAR = H.PAR_ENV, H.PAR

-- par with the words 'args' (quoted here) in a fresh folder: stdout,
-- stderr and the exit status.
local function par(args)
  local dir = H.tmpdir(finally)
  local t = {}
  for i, a in ipairs(args) do t[i] = quote(a) end
  local out, err = dir .. "/.out", dir .. "/.err"
  local cmd = ("cd %s && %s%s %s </dev/null >%s 2>%s"):format(quote(dir), ENV, PAR,
    table.concat(t, " "), quote(out), quote(err))
  local _, _, status = os.execute(cmd)
  return H.readfile(out), H.readfile(err), status
end

-- The stdout of `par -k --plus echo WORD... ::: ARG...`, which must succeed.
local function plus(words, args)
  local argv = { "-k", "--plus", "echo" }
  for _, w in ipairs(words) do argv[#argv + 1] = w end
  argv[#argv + 1] = ":::"
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  local out, err, status = par(argv)
  assert.are.same({ "", 0 }, { err, status })
  return out
end

local function sorted(s)
  local t = {}
  for line in s:gmatch("[^\n]+") do t[#t + 1] = line end
  table.sort(t)
  return t
end

describe("par.cli.regexp", function()
  -- each: regexp, subject, s/re/<$&>/g, s/re/<$&>/ as perl prints them
  local PERL = {
    { "b*", "abc", "<>a<b><>c<>", "<>abc" },
    { "a|b", "abab1", "<a><b><a><b>1", "<a>bab1" },
    { "(ab)+", "xabab1", "x<abab>1", "x<abab>1" },
    { "x*", "ab", "<>a<>b<>", "<>ab" },
    { "a*?", "aaa", "<><a><><a><><a><>", "<>aaa" },
    { "\\d+", "ab12c345", "ab<12>c<345>", "ab<12>c345" },
    { "[^a-c]+", "abcxyzabc", "abc<xyz>abc", "abc<xyz>abc" },
    { "(a|ab)(c|bcd)", "abcd", "<abcd>", "<abcd>" },
    { "\\bfoo\\b", "foo foobar foo", "<foo> foobar <foo>", "<foo> foobar foo" },
    { "a{2,3}?", "aaaaa", "<aa><aa>a", "<aa>aaa" },
    { "a{,2}", "aaaaa", "<aa><aa><a><>", "<aa>aaa" },
    { "[[:digit:]x]", "a1x2", "a<1><x><2>", "a<1>x2" },
    { "(a*)*", "aab", "<aa><>b<>", "<aa>b" },
    { "(a?){2}b", "b", "<b>", "<b>" },
    { "\\w\\W", "ab-cd ef", "a<b->c<d >ef", "a<b->cd ef" },
    { "$", "abc", "abc<>", "abc<>" },
    { ".*", "abc", "<abc><>", "<abc>" },
    { "a{", "a{b", "<a{>b", "<a{>b" },
    { "(a)\\1", "aab aa", "<aa>b <aa>", "<aa>b aa" },
    { "[a\\-z]", "a-z-b", "<a><-><z><->b", "<a>-z-b" },
    { "(?:ab)*c", "ababc", "<ababc>", "<ababc>" },
    { "a+?", "aaa", "<a><a><a>", "<a>aa" },
    { ".", "a\nb", "<a>\n<b>", "<a>\nb" },
    { "b$", "ab\n", "a<b>\n", "a<b>\n" },
  }

  it("matches as perl does, s///g and s///", function()
    local function mark(whole) return "<" .. whole .. ">" end
    for _, c in ipairs(PERL) do
      local rx = assert(regexp.compile(c[1]))
      assert.are.same({ c[1], c[3], c[4] },
        { c[1], regexp.gsub(rx, c[2], mark, true), regexp.gsub(rx, c[2], mark, false) })
    end
  end)

  it("gives the captures of a match, nil for a group that took no part", function()
    local rx = assert(regexp.compile("(a)|(b)"))
    local i, e, caps = regexp.find(rx, "xb", 1)
    assert.are.same({ 2, 3, nil, "b" }, { i, e, caps[1], caps[2] })
  end)

  it("makes quantifiers lazy as GNU parallel's make_regexp_ungreedy", function()
    assert.are.equal("a*?b+?c{2}?d?[*+]\\*", regexp.ungreedy("a*b+c{2}d?[*+]\\*"))
    assert.are.equal("a*?", regexp.ungreedy("a*?"))
  end)

  it("says what it does not take, and what is wrong", function()
    local cases = {
      { "[", "'[': unmatched [" },
      { "(a", "'(a': unmatched (" },
      { "a)", "'a)': unmatched )" },
      { "*a", "'*a': a quantifier follows nothing" },
      { "(?=a)", "'(?=a)': (?= is not supported" },
      { "a*+", "'a*+': possessive quantifiers are not supported" },
      { "\\pL", "'\\pL': \\p is not supported" },
      { "[b-a]", "'[b-a]': invalid [] range" },
      { "[[:foo:]]", "'[[:foo:]]': POSIX class [:foo:] is unknown" },
    }
    for _, c in ipairs(cases) do
      assert.are.same({ nil, c[2] }, { regexp.compile(c[1]) })
    end
  end)
end)

describe("par --plus's bash-like strings", function()
  it("{:-str} is the value, or str when it is empty (or 0, Perl's ||=)", function()
    assert.are.equal("x\ny\nx\n", plus({ "{:-x}" }, { "", "y", "0" }))
  end)

  it("{:N} and {:N:M} are substrings, empty past the end", function()
    assert.are.equal("cdefg cde    defg\n",
      plus({ "{:2}", "{:2:3}", "{:10}", "{:10:2}", "{:7:2}", "{:3:10}" }, { "abcdefg" }))
  end)

  it("{#re} {##re} {%re} {%%re} take the shortest and longest prefix and suffix", function()
    assert.are.equal("bcdefg abcdef abcdefg abcdefg\nz.z.z.foo z.z.z.foo z.foo foo\n",
      plus({ "{#a}", "{%g}", "{#z.*z.}", "{##z.*z.}" }, { "abcdefg", "z.z.z.foo" }))
    assert.are.equal("foo.z foo\n", plus({ "{%.z.*z}", "{%%.z.*z}" }, { "foo.z.z.z" }))
  end)

  it("{/re/s} {//re/s} {/#re/s} {/%re/s} replace the first, every, a leading, a trailing match",
    function()
      assert.are.equal("aXcabc aXcaXc Xbcabc abcabX acabc\n",
        plus({ "{/b/X}", "{//b/X}", "{/#a/X}", "{/%c/X}", "{/b/}" }, { "abcabc" }))
      assert.are.equal("-a--c-\n", plus({ "{//b*/-}" }, { "abc" }))
    end)

  it("{^re} {^^re} {,re} {,,re} change the case of the first or every match", function()
    assert.are.equal("Abcab AbcAb abcab abcab ABcAB\nABCAB ABCAB aBCAB aBCaB ABCAB\n",
      plus({ "{^a}", "{^^a}", "{,A}", "{,,A}", "{^^[ab]}" }, { "abcab", "ABCAB" }))
  end)

  it("takes the regexp as Perl: alternation, groups, classes, $1 of the whole s///", function()
    assert.are.equal("bab1 ab ----1 abab1} ababD\n",
      plus({ "{#a|b}", "{#(ab)+}", "{//a|b/-}", "{#.{2}}", "{/\\d/D}" }, { "abab1" }))
    assert.are.equal("$2ab1\n", plus({ "{/(a)(b)/$2}" }, { "abab1" }))
  end)

  it("has positional forms, empty for a value the job lacks", function()
    assert.are.equal("abc bcabc c abcab Zbcabc\nx bcabc  abcab Zbcabc\n",
      plus({ "{1:-x}", "{2#a}", "{1:2:3}", "{-1%c}", "{2/a/Z}", ":::", "abc", "" },
        { "abcabc" }))
  end)

  it("does each value of -X and -N alone", function()
    local out, err, status = par { "-k", "-j1", "--plus", "-X", "echo", "{:-x}", "{#a}",
      ":::", "", "ab", "ac" }
    assert.are.same({ "x ab ac  b c\n", "", 0 }, { out, err, status })
  end)

  it("looks in each word: a string spanning two words of the command is text", function()
    local out, err, status = par { "-k", "--plus", "echo", "{:-no", "value}", ":::", "" }
    assert.are.same({ "{:-no value} \n", "", 0 }, { out, err, status })
    out, err, status = par { "-k", "--plus", "echo", "{:-no value}", ":::", "" }
    assert.are.same({ "no value\n", "", 0 }, { out, err, status })
  end)

  it("fills --tagstring too, unquoted", function()
    local out, err, status = par { "-k", "--plus", "--tagstring", "{:-T}{%x}", "echo", "{}",
      ":::", "", "xbx" }
    assert.are.same({ "T\t\nxbxxb\txbx\n", "", 0 }, { out, err, status })
  end)

  it("{slot} is $PARALLEL_JOBSLOT, once a job, for the shell (text with -q)", function()
    local out, err, status = par { "-k", "-j1", "-N2", "--plus", "echo", "{slot}", "{}", ":::", "a", "b", "c" }
    assert.are.same({ "1 a b\n1 c\n", "", 0 }, { out, err, status })
    out, err, status = par { "-k", "-q", "--plus", "echo", "{slot}", ":::", "a" }
    assert.are.same({ "${PARALLEL_JOBSLOT}\n", "", 0 }, { out, err, status })
  end)

  it("ends the command with one line for the --plus strings it does not do", function()
    for _, s in ipairs { "{choose_k}", "{uniq}", "{host}", "{sshlogin}", "{hgrp}", "{agrp}" } do
      local out, err, status = par { "-k", "--plus", "echo", s, ":::", "a" }
      assert.are.same({ "", "par: --plus's " .. s .. " is not supported\n", 255 }, { out, err, status })
    end
  end)

  it("is text without --plus", function()
    local out, err, status = par { "-k", "echo", "{:-x}", ":::", "" }
    assert.are.same({ "{:-x} \n", "", 0 }, { out, err, status })
  end)

  it("ends the command with one line for a regexp it cannot take", function()
    local out, err, status = par { "-k", "--plus", "echo", "{#[}", ":::", "abc" }
    assert.are.same({ "", "par: --plus's {#[}: the Perl regexp '^[(.*)': unmatched [\n", 255 },
      { out, err, status })
    local dir = H.tmpdir(finally)
    H.writefile(dir .. "/long", ("a"):rep(500000) .. "\n")
    out, err, status = par { "-k", "--plus", "echo", "{//(a)*/x}", "::::", dir .. "/long" }
    assert.are.same({ "", "par: --plus's {//(a)*/x}: a value of 500000 bytes is too long for its regexp\n",
      255 }, { out, err, status })
    out, err, status = par { "-k", "--plus", "echo", "{%(?<=a)}", ":::", "abc" }
    assert.are.same({ "",
      "par: --plus's {%(?<=a)}: the Perl regexp '(.*)(?<=a)$': (?< is not supported\n", 255 },
      { out, err, status })
  end)
end)

describe("par's {%} where GNU parallel shows the job slot", function()
  it("--dry-run gives the slots 1 to -j in turn", function()
    local out, err, status = par { "-k", "--dry-run", "-j2", "--tagstring", "<{%}>", "echo", "{%}",
      ":::", "a", "b", "c" }
    assert.are.same({ "<1>\techo 1\n<2>\techo 2\n<1>\techo 1\n", "", 0 }, { out, err, status })
  end)

  it("-t prints each command as it starts, with its slot", function()
    local out, err, status = par { "-k", "-t", "-j1", "echo", "{%}{}", ":::", "a", "b" }
    assert.are.same({ "1a\n1b\n", "echo 1a\necho 1b\n", 0 }, { out, err, status })
    out, err, status = par { "-t", "-j2", "echo {%}; sleep 0.3", ":::", "a", "b" }
    assert.are.same({ { "1", "2" }, { "echo 1; sleep 0.3", "echo 2; sleep 0.3" }, 0 },
      { sorted(out), sorted(err), status })
  end)

  it("--tagstring, -v, --results names and the joblog show the slot", function()
    local out, err, status = par { "-k", "-j1", "-v", "--tagstring", "{%}-{}", "echo", "{%}",
      ":::", "a", "b" }
    assert.are.same({ "1-a\techo 1\n1-a\t1\n1-b\techo 1\n1-b\t1\n", "", 0 }, { out, err, status })
    local dir = H.tmpdir(finally)
    out, err, status = par { "-k", "-j1", "--results", dir .. "/r{%}/", "--joblog", dir .. "/log",
      "echo", "{%}", ":::", "a" }
    assert.are.same({ "", "", 0 }, { out, err, status })
    assert.are.equal("1\n", H.readfile(dir .. "/r1/stdout"))
    assert.matches("\techo 1\n$", H.readfile(dir .. "/log"))
  end)

  it("--line-buffer tags each line with the slot of its job", function()
    local out, err, status = par { "-j2", "--line-buffer", "--tagstring", "{%}",
      "echo $PARALLEL_JOBSLOT", ":::", "a", "b", "c", "d" }
    assert.are.same({ "", 0 }, { err, status })
    local n = 0
    for tag, slot in out:gmatch("(%d)\t(%d) %a\n") do
      assert.are.equal(slot, tag)
      n = n + 1
    end
    assert.are.equal(4, n)
  end)
end)
