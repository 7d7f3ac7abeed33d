--- Known differences between par and GNU parallel 20221122, for
-- spec/gnu_spec.lua: command line -> reason.  A case listed here is pending
-- while the two differ and fails once they agree: then remove its entry.
local NYD = "not done yet: "
return {
  -- features other engineers are building
  ["parallel -k -j1 --halt soon,success=2 'echo {}; exit {}' ::: 1 0 0 2"] = NYD .. "--halt success= counting",
  ["parallel -k -j1 --halt now,fail=50% 'echo {}; exit {}' ::: 0 1 1 0 1 1"] = NYD .. "--halt N% counting",
  ["parallel -k -s 10 echo ::: aaaaaaaaaaaaaaa"] = NYD .. "-x/-s too long",
  ["parallel -k --colsep , --trim lr echo {2}x ::: 'a , b '"] = NYD .. "--trim with --colsep",
  -- intentional differences
  ["parallel -k --rpl '{x} s/a/b/' echo {x} ::: aaa"] =
    "intentional: --rpl and {= =} take Lua, not Perl, expressions",
  ["parallel --no-such-option echo"] =
    "intentional: par writes a one-line usage error on stderr; GNU prints its usage text on stdout",
  ["parallel -j 0x echo ::: a"] =
    "intentional: par writes a one-line usage error on stderr; GNU prints its usage text on stdout",
  -- par bugs found by this spec, not fixed yet (out of time)
  ["seq 4 | parallel -k -n2 -X echo x{}y"] =
    "-n with -X: GNU parallel spreads the last arguments over the job slots (x3y, x4y), par keeps -n of them a job",
}
