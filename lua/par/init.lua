--- par: run work in parallel.
-- par.run runs a list of commands on a pool of threads (run.lua); par.map
-- maps a Lua function over items on forked worker processes (map.lua).
-- This table is the whole API; options.lua lists every option once.
local core = require "par.core"
local util = require "par.util"

local M = {}

M.VERSION = core.VERSION

--- The CPUs this process may use (affinity-aware, at least 1).
M.cpus = core.cpus

--- Quote a string for a POSIX shell, so that `sh -c` sees it as one word.
M.quote = util.quote

--- The partitions { {lo, hi}, ... } covering first..last in blocks of size.
M.ranges = util.ranges

M.run = require("par.run").run
M.each = require("par.run").each
M.map = require("par.map").map
M.imap = require("par.map").imap
M.pool = require("par.pool").pool
M.as_completed = require("par.pool").as_completed
M.wait = require("par.pool").wait

return M
