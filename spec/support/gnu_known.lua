--- The command lines of spec/gnu_spec.lua on which par and GNU parallel
-- 20221122 are known to differ, each with its reason.  README's
-- "Differences from GNU parallel" lists the same.  A line here that no
-- longer differs fails the spec, so that this list stays true.
return {
  ["parallel -j1 -k --halt now,done=2 'echo {}' ::: 1 2 3 4"] =
    "GNU parallel 20221122 exits 101 after --halt now,done=N and reports every job that finished;"
    .. " par exits with the jobs' own status and reports the job that made it halt",
  ["parallel -j1 -k --halt now,fail=50% 'echo {}; exit {}' ::: 0 1 1 0 0 0"] =
    "with fail=N% GNU parallel 20221122 judges the percentage against the jobs started so far"
    .. " and exits with a status of its own; par counts against all jobs and exits with the number that failed",
}
