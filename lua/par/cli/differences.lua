--- Where the par command differs from GNU parallel 20221122 on purpose,
-- each with its reason, and what it does not do yet: one list, which
-- --help prints short, the man page in full, and README holds as
-- markdown (spec/man_spec.lua keeps README equal to M.markdown()).
--
-- An entry's 'text' is markdown with `code` marks only; 'short' is a
-- line of --help (at most 88 columns, no marks).
local M = {}

local ipairs, concat = ipairs, table.concat

M.DIFFERENCES = {
  { short = "{= code =} and --rpl are Lua over _ (the argument), not Perl: Lua is what par embeds",
    text = "`{= code =}` and `--rpl 'TAG code'` are Lua, not Perl: `_` is the argument, and the"
      .. " value of the expression replaces it (`{= _:upper() =}`); statements that change `_`"
      .. " work too (`{= _ = _:gsub(\"a\", \"b\") =}`), with `Q(s)`, `uq()`, `seq()` and"
      .. " `total_jobs()` at hand: par embeds Lua, not a Perl." },
  { short = "errors par can name are one 'par: ...' line and exit 255 (GNU: a Perl message)",
    text = "Errors par can name are one `par: ...` line and exit 255, where GNU parallel dies"
      .. " with a Perl message and another status: a `--results` directory that cannot be"
      .. " made, a `--tmpdir` that does not exist." },
  { short = "--tee needs ::: arguments and holds stdin in memory (a job's stdin is a string)",
    text = "`--tee` needs `:::` arguments (without them GNU parallel reads stdin as arguments"
      .. " and its jobs get no input) and reads stdin into memory once (a job's stdin in par is"
      .. " a string); it does not combine with `--pipepart`." },
  { short = "--results and --files write a job's output when it ends; long names are errors",
    text = "`--results` and `--files` write a job's output when it ends (GNU parallel writes as"
      .. " it runs), and do not shorten argument directories longer than the file system"
      .. " allows (par reports the failure instead)." },
  { short = "--halt now,done=N exits with the jobs' status; fail=N% counts all the jobs",
    text = "`--halt now,done=N` exits with the jobs' own status and names the job that made it"
      .. " halt (GNU parallel 20221122 exits 101 and names every job that finished); with"
      .. " `fail=N%` par counts against all the jobs, GNU parallel against those started so"
      .. " far." },
  { short = "--timeout is checked to the millisecond (GNU: whole seconds)",
    text = "`--timeout` (and `--timeout N%`) is checked to the millisecond; GNU parallel 20221122"
      .. " checks it against whole seconds, so its jobs may run up to a second longer." },
  { short = "--load counts /proc/loadavg's runnable tasks; --memfree stops a job each 0.5 s at most",
    text = "`--load` counts the runnable tasks of `/proc/loadavg` (but the reader), checked as jobs"
      .. " end and every 0.5 s; GNU parallel counts the processes in states R, D and O that `ps`"
      .. " lists, in the background. `--memfree` stops at most one job each 0.5 s." },
  { short = "-j FILE without a number keeps the last one; read as jobs end and every 0.5 s",
    text = "A `-j FILE` that holds no number when read again keeps the last number (GNU parallel"
      .. " stops); par reads it as each job ends and every 0.5 s, GNU parallel once a second when"
      .. " its modification time (whole seconds) changed." },
  { short = "--progress and --eta show the run as one computer, local, also with -S hosts",
    text = "`--progress` and `--eta` show the run as one computer, `local`, also with `-S` hosts." },
  { short = "--compress is accepted and compresses nothing: held output is in memory or a temp file",
    text = "`--compress` is accepted and compresses nothing: par holds a job's output in memory up"
      .. " to 1 MiB, then in an unlinked temporary file, as it is; `--compress-program` is not"
      .. " supported." },
  { short = "-m on a large input fills whole lines first, then spreads the rest over the jobs",
    text = "`-m` on a large input fills whole lines and spreads only the rest, so its split"
      .. " differs from GNU parallel's there." },
  { short = "--dry-run gives {%} the slots 1, 2 ... -j in turn (GNU's depend on timing)",
    text = "`--dry-run` gives `{%}` the slots 1, 2 ... -j in turn; GNU parallel's depend on how"
      .. " fast its dry jobs end (that sequence is one of them)." },
  { short = "--plus's regexps: par's own Perl-regexp matcher, without lookaround, \\p, (?flags)",
    text = "`--plus`'s regexps are matched by par's own Perl-regexp matcher (literals, `.`,"
      .. " classes with `\\d \\w \\s` and `[:alpha:]`, groups, `|`, greedy and lazy quantifiers,"
      .. " `^ $ \\b \\A \\z \\Z`, back-references). Lookaround, `\\p{..}`, `\\Q..\\E`, possessive"
      .. " quantifiers and inline modifiers end the command with one line naming them"
      .. " (`par: --plus's {#(?=a)}: ... (?= is not supported`); a bad regexp is one `par:` line"
      .. " and exit 255 where GNU parallel prints Perl's error and exits 25; a value of hundreds"
      .. " of KB against a repeated group is too long for the matcher (a `par:` line)." },
  { short = "--roundrobin gives the blocks in turn, as GNU's -k (without it, GNU: to a ready job)",
    text = "`--roundrobin` gives the blocks in turn, block k to job (k - 1) mod N + 1, as GNU"
      .. " parallel does with `-k`; without `-k` GNU parallel gives a block to whichever job is"
      .. " ready to read, so totals agree but not which job got what. A job no block reaches is"
      .. " not started (GNU parallel starts it and drops its output)." },
  { short = "--regexp: as far as a Lua pattern goes (no |, ( ), {n}); not with --pipepart",
    text = "`--regexp` reads `--recstart` and `--recend` as far as a Lua pattern goes: characters,"
      .. " `.`, `[classes]`, `\\d \\s \\w` (and `\\D \\S \\W`), `\\n \\t \\r \\xHH`,"
      .. " `* + ? *?`, `^` first and `$` last (at a line's start and end, as Perl's `/m`); `|`,"
      .. " `( )`, `{n}`, `\\b` and the like end the command with one `par:` line, and so does"
      .. " `--regexp` with `--pipepart`." },
  { short = "--shard's hash is par's own; --shard, --bin, --group-by take no Perl expression",
    text = "`--shard`'s hash is par's own (FNV-1a; GNU parallel's is seeded anew each run): the"
      .. " same value always goes to the same job, but not to the job GNU parallel picks."
      .. " `--shard`, `--bin` and `--group-by` take a column number or name; a Perl expression"
      .. " after it (`--bin '3 $_%=100'`) ends the command with one `par:` line. `--group-by`"
      .. " with `--header :` keeps the header as it is (GNU parallel 20221122 leaves its"
      .. " 20-character record marker in it); `--group-by` with `--pipepart` is not supported." },
  { short = "--env copies variables, not bash functions; no PARALLEL_* variables on ssh hosts",
    text = "`--env` copies variables only, not bash functions. On remote hosts par does not set"
      .. " `PARALLEL_SEQ`, `PARALLEL_PID`, `PARALLEL_SSHLOGIN`, `PARALLEL_SSHHOST` or"
      .. " `PARALLEL_JOBSLOT`. `--record-env` lists only the environment par was started with"
      .. " (GNU parallel's list also has variables it sets itself)." },
  { short = "--return quotes a file name once for rsync (GNU: twice, wrong for rsync >= 3.2.4)",
    text = "`--return` quotes a file name once for rsync (rsync 3.2.4 and later protect remote"
      .. " arguments); GNU parallel quotes it twice." },
  { short = "--wd DIR with : among the -S hosts needs DIR on this machine too",
    text = "`--wd DIR` with `:` among the `-S` hosts also applies `DIR` to the local ssh process,"
      .. " so `DIR` must exist on this machine too." },
}

--- GNU parallel's options that par refuses (`par: --X is not supported`).
M.NOT_DONE = "`--plus`'s `{choose_k}`, `{uniq}`, `{host}`, `{sshlogin}`, `{hgrp}`, `{agrp}`"
  .. " (`par: --plus's {uniq} is not supported`); `--compress-program`; `--wd ...` for jobs on"
  .. " this machine, `--joblog` with `--onall`/`--nonall`, `--rsync-opts`, `--controlmaster`,"
  .. " `--ssh-delay`, `--hostgroups`; and GNU parallel's other options that `par --help` does"
  .. " not list (`--sqlmaster`, `--semaphore`, `--tmux`, ...)."

--- Text without its code marks, for --help.
function M.plain(s)
  return (s:gsub("`", ""))
end

--- README's two lists, as markdown: the differences, then what is not
-- done yet.
function M.markdown()
  local out = { "**Differences from GNU parallel**, on purpose:", "" }
  for _, d in ipairs(M.DIFFERENCES) do out[#out + 1] = "- " .. d.text end
  out[#out + 1] = ""
  out[#out + 1] = "**Not done yet** (each ends the command with `par: --X is not supported`,"
    .. " exit 255): " .. M.NOT_DONE
  return concat(out, "\n")
end

return M
