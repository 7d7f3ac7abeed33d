--- Known differences between par and GNU parallel 20221122, for
-- spec/gnu_spec.lua: command line -> reason.  A case listed here is pending
-- while the two differ and fails once they agree: then remove its entry.
local NYD = "not done yet: "
return {
  -- features other engineers are building
  ["parallel -k -j1 --halt soon,success=2 'echo {}; exit {}' ::: 1 0 0 2"] = NYD .. "--halt success= counting",
  ["parallel -k -j1 --halt now,fail=50% 'echo {}; exit {}' ::: 0 1 1 0 1 1"] = NYD .. "--halt N% counting",
  -- intentional differences
  ["parallel -k --rpl '{x} s/a/b/' echo {x} ::: aaa"] =
    "intentional: --rpl and {= =} take Lua, not Perl, expressions",
  ["parallel --no-such-option echo"] =
    "intentional: par writes a one-line usage error on stderr; GNU prints its usage text on stdout",
  ["parallel -j 0x echo ::: a"] =
    "intentional: par writes a one-line usage error on stderr; GNU prints its usage text on stdout",
}
