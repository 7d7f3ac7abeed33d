--- Writes the man page of the par command, par.1, on stdout, from what
-- --help is made of: the usage lines, the option sections of
-- par.options (every flag, its argument, its help and its default), the
-- differences from GNU parallel and the exit status.  `make man` runs it
-- (with the checkout's lua/ and par/core.so first on the paths); make
-- install and the rockspec install the result.
local par = require "par"
local args = require "par.cli.args"
local diff = require "par.cli.differences"

local ipairs, concat = ipairs, table.concat
local out = {}

-- A line of roff.  Requests (".TP") go as they are; a line of text that
-- starts with a quote, or a dot before a non-letter, is made inert.
local function put(...)
  local line = concat({ ... })
  if line:match("^'") or line:match("^%.[^%a\\]") then line = "\\&" .. line end
  out[#out + 1] = line
end

-- Text for roff: backslashes and hyphens escaped, `code` in bold.
local function roff(s)
  s = s:gsub("\\", "\\e"):gsub("%-", "\\-")
  return (s:gsub("`([^`]*)`", "\\fB%1\\fR"))
end

local function para(s)
  put(".PP")
  put(roff(s))
end

put('.TH PAR 1 "" "par ', par.VERSION, '" "User Commands"')
put(".SH NAME")
put("par \\- run shell commands, or a Lua function over items, in parallel;"
  .. " a drop\\-in for GNU parallel")
put(".SH SYNOPSIS")
for _, u in ipairs(args.USAGE) do
  put(".TP")
  put(".B ", roff(u[1]))
  put(roff(u[2]))
end
put(".SH DESCRIPTION")
para("`par` runs jobs N at a time, each as soon as a slot is free, reading its input as it"
  .. " arrives: each line of stdin (or of `-a FILE`, or each `:::` argument) is a job, or"
  .. " an argument put into CMD. Each job's output is printed in one block when it ends"
  .. " (completion order; `-k`: input order), never interleaved. It follows GNU parallel's"
  .. " command line: a script can call `par` where it called `parallel`.")
for _, p in ipairs(args.ABOUT) do para(p) end
put(".SH OPTIONS")
para("The default of each option is in brackets.")
for _, g in ipairs(args.groups("the number of CPUs")) do
  put(".SS ", roff(g.title))
  for _, f in ipairs(g) do
    local names = {}
    if f.short then names[#names + 1] = "\\fB" .. roff(f.short) .. "\\fR" end
    if f.long then names[#names + 1] = "\\fB" .. roff(f.long) .. "\\fR" end
    put(".TP")
    put(concat(names, ", "), f.arg and " \\fI" .. roff(f.arg) .. "\\fR" or "")
    put(roff(f.help), f.default and " [" .. roff(f.default) .. "]" or "")
  end
end
put(".SH ENVIRONMENT")
put(".TP")
put(".B PARALLEL")
put("default options, read before the command line's, as GNU parallel reads them.")
put(".TP")
put(".B PARALLEL_SEQ")
put("set in each job's environment to its job number.")
put(".TP")
put(".B PARALLEL_JOBSLOT")
put("set in each job's environment to its job slot.")
put(".TP")
put(".B TMPDIR")
put("where \\fB\\-\\-files\\fR and the output held back of long jobs go,"
  .. " unless \\fB\\-\\-tmpdir\\fR says.")
put(".SH EXIT STATUS")
put(roff(args.EXIT))
put(".SH DIFFERENCES FROM GNU PARALLEL")
para("Where par differs from GNU parallel 20221122 on purpose:")
for _, d in ipairs(diff.DIFFERENCES) do
  put(".IP \\(bu 2")
  put(roff(d.text))
end
para("Not done yet: each of these ends the command with `par: --X is not supported`, exit"
  .. " 255: " .. diff.NOT_DONE)
put(".SH EXAMPLES")
for _, e in ipairs({
  { "par \\-j 8 < commands.txt", "run one shell command a line, 8 at a time" },
  { "par \\-k \\-\\-tag gzip \\-9 {} ::: *.log", "compress each log; output in input order, tagged" },
  { "par \\-\\-joblog log \\-\\-resume sh job.sh < args.txt", "rerun only what the log lacks" },
  { "cat big.csv | par \\-\\-pipe \\-\\-block 10M wc \\-l", "count the lines of 10 MB blocks" },
  { "par echo {1} {2} ::: a b ::: 1 2", "every combination of two sources" },
}) do
  put(".TP")
  put(".B ", e[1])
  put(e[2])
end
put(".SH SEE ALSO")
put(".BR parallel (1),")
put(".BR xargs (1);")
put("README.md of par for par.run, par.map and par.pool, the Lua API.")
io.write(concat(out, "\n"), "\n")
