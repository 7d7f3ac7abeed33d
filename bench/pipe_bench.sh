#!/bin/sh
# bench/pipe_bench.sh: `par --pipe` and `par --pipepart` beside GNU
# parallel's, on 1 GB of text lines (made once, in a temporary file), each
# block counted by `wc -l`.  The two run alternately, ROUNDS times each;
# the table gives the medians and par's time over GNU's.  Every run must
# count the same lines.  Run from anywhere; par must be built (make).
set -eu
cd "$(dirname "$0")/.."
: "${LUA:=lua5.4}" "${ROUNDS:=3}" "${BLOCK:=10M}" "${SIZE_MB:=1024}"
LUA_PATH=${LUA_PATH:-'lua/?.lua;lua/?/init.lua;;'}
LUA_CPATH=${LUA_CPATH:-'./?.so;;'}
export LUA_PATH LUA_CPATH

if ! command -v parallel >/dev/null; then
  echo "pipe_bench: GNU parallel is not installed: skipped"
  exit 0
fi
data=$(mktemp "${TMPDIR:-/tmp}/pipe_bench.XXXXXX")
trap 'rm -f "$data" "$data.par" "$data.gnu"' EXIT INT TERM
"$LUA" - "$data" "$SIZE_MB" <<'EOF'
local t = {}
for i = 1, 100000 do t[i] = ("%d a line of text for the pipe benchmark %x"):format(i, i * 7919) end
local s = table.concat(t, "\n") .. "\n"
local f, n, want = assert(io.open(arg[1], "wb")), 0, tonumber(arg[2]) * 2 ^ 20
while n < want do f:write(s); n = n + #s end
f:close()
EOF
lines=$(wc -l < "$data")

# seconds, to stdout; the line count summed over the blocks must be $lines
timed() {
  start=$(date +%s.%N)
  got=$("$@" | awk '{ s += $1 } END { print s }')
  end=$(date +%s.%N)
  if [ "$got" != "$lines" ]; then echo "pipe_bench: $* counted $got lines, not $lines" >&2; exit 1; fi
  echo "$end - $start" | bc
}
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

par_pipe() { "$LUA" bin/par --pipe --block "$BLOCK" wc -l < "$data"; }
gnu_pipe() { parallel --will-cite --pipe --block "$BLOCK" wc -l < "$data"; }
par_part() { "$LUA" bin/par --pipepart -a "$data" --block "$BLOCK" wc -l; }
gnu_part() { parallel --will-cite --pipepart -a "$data" --block "$BLOCK" wc -l; }

for t in pipe part; do
  : > "$data.par"; : > "$data.gnu"
  i=0
  while [ "$i" -lt "$ROUNDS" ]; do
    timed "par_$t" >> "$data.par"
    timed "gnu_$t" >> "$data.gnu"
    i=$((i + 1))
  done
  eval "par_$t=\$(median < \"\$data.par\")"
  eval "gnu_$t=\$(median < \"\$data.gnu\")"
  rm -f "$data.par" "$data.gnu"
done

echo "par --pipe on $(($(wc -c < "$data") / 1048576)) MiB, $lines lines, --block $BLOCK, wc -l," \
  "$(nproc) CPUs; medians of $ROUNDS rounds, alternating"
printf '%-12s %10s %10s %8s\n' "" "par (s)" "GNU (s)" "par/GNU"
printf '%-12s %10.2f %10.2f %8.2f\n' "--pipe" "$par_pipe" "$gnu_pipe" "$(echo "$par_pipe / $gnu_pipe" | bc -l)"
printf '%-12s %10.2f %10.2f %8.2f\n' "--pipepart" "$par_part" "$gnu_part" "$(echo "$par_part / $gnu_part" | bc -l)"
