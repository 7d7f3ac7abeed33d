#!/bin/sh
# bench/run.sh: par's benchmarks (`make bench` runs this).
# Compiles the floor (bench/floor.c, plain posix_spawn + waitpid), then
# times par.run against it and its peers; then prints this machine's cost
# per page fault (bench/faults.c), which bounds a fork-based map, and runs
# par.map's benchmark; par.each's; par.imap's, under bench/treemem (the
# memory of a whole process tree); the par command on streamed input
# (bench/cli_bench.lua) and its throughput on 50,000 jobs beside par.run and
# GNU parallel (bench/cli_tput_bench.lua); par.pool beside par.map and Python's process pools
# (bench/pool_bench.lua, bench/pool_peers.py); par --pipe and --pipepart
# beside GNU parallel's (bench/pipe_bench.sh).
# Run from anywhere; par must be built (make).
set -eu
cd "$(dirname "$0")/.."
: "${LUA:=lua5.4}" "${CC:=cc}"
LUA_PATH=${LUA_PATH:-'lua/?.lua;lua/?/init.lua;;'}
LUA_CPATH=${LUA_CPATH:-'./?.so;;'}
export LUA LUA_PATH LUA_CPATH

"$CC" -O2 -std=c99 -D_GNU_SOURCE -Wall -Wextra -o bench/floor bench/floor.c
"$LUA" bench/run_bench.lua
echo
"$CC" -O2 -std=c99 -D_GNU_SOURCE -Wall -Wextra -o bench/faults bench/faults.c
bench/faults
echo
"$LUA" bench/map_bench.lua
echo
"$LUA" bench/each_bench.lua
echo
"$CC" -O2 -std=c99 -D_GNU_SOURCE -Wall -Wextra -o bench/treemem bench/treemem.c
"$LUA" bench/imap_bench.lua
echo
"$LUA" bench/cli_bench.lua
echo
"$LUA" bench/cli_tput_bench.lua
echo
"$LUA" bench/pool_bench.lua
echo
sh bench/pipe_bench.sh
