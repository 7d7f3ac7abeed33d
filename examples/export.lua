--- export.lua: a `par run` config that exports the SQLite table `items`
-- (the one examples/export_table.lua makes) to CSV in parallel partitions.
--
--   par --bar run examples/export.lua [ROWS [PARTITIONS]]      (what make demo runs)
--
-- The database demo-out/items_ROWS.db (ROWS: $PAR_DEMO_ROWS or 1000000) is
-- created when missing, with export_table.lua's table. par.ranges splits
-- its ids into PARTITIONS (default 20) ranges; 4 jobs run
--   sh examples/export_table.sh DB LO HI demo-out/export
-- each writing demo-out/export/items_LO_HI.csv and printing its row count
-- (tagged with the command).
-- The joblog demo-out/export/ROWS_PARTITIONS.joblog makes the export
-- resumable: run the same command again after an interrupt or a failure and
-- only the partitions that did not succeed run again.
local par = require "par"
local items_db = require "items_db"   -- beside this config: par puts its folder on package.path

local rows, parts = ...
rows = math.tointeger(tonumber(rows or os.getenv("PAR_DEMO_ROWS") or 1000000))
parts = math.tointeger(tonumber(parts or 20))
if not rows or rows < 0 or not parts or parts < 1 then
  error("usage: par run examples/export.lua [ROWS >= 0 [PARTITIONS >= 1]]", 0)
end
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
local dir = "demo-out"
local db, outdir = ("%s/items_%d.db"):format(dir, rows), dir .. "/export"

assert(par.run({ { "mkdir", "-p", dir, outdir } }, 1)[1].ok, "cannot create " .. outdir)
items_db.create(db, rows)   -- the table export_table.lua makes, when missing

local lo, hi = items_db.sqlite(db, "SELECT min(id), max(id) FROM items"):match("^(%-?%d*)|(%-?%d*)")
local commands = {}
if lo ~= "" then
  lo, hi = math.tointeger(tonumber(lo)), math.tointeger(tonumber(hi))
  for i, p in ipairs(par.ranges(lo, hi, (hi - lo) // parts + 1)) do
    commands[i] = { "sh", here .. "/export_table.sh", db, tostring(p[1]), tostring(p[2]), outdir }
  end
end

return {
  commands = commands,
  jobs = 4,
  joblog = ("%s/%d_%d.joblog"):format(outdir, rows, parts),
  resume = "failed",   -- skip the partitions the joblog holds as done, rerun the failed
  progress = true,     -- on a terminal; `par --bar` shows it anyway
  tag = true,          -- each count printed after its command
}
