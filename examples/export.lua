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

local rows, parts = ...
rows = math.tointeger(tonumber(rows or os.getenv("PAR_DEMO_ROWS") or 1000000))
parts = math.tointeger(tonumber(parts or 20))
if not rows or rows < 0 or not parts or parts < 1 then
  error("usage: par run examples/export.lua [ROWS >= 0 [PARTITIONS >= 1]]", 0)
end
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
local dir = "demo-out"
local db, outdir = ("%s/items_%d.db"):format(dir, rows), dir .. "/export"

-- One sqlite3 call on file 'path' (argv form: no quoting), returning its output.
local function sqlite(path, sql, input)
  local res = par.run({ { "sqlite3", "-bail", "-batch", path, sql } }, 1, { stdin = input })[1]
  if not res.ok then error("sqlite3: " .. (res.error or res.stderr), 0) end
  return res.stdout
end

-- The same table as export_table.lua's (keep the two in step), generated
-- inside sqlite3 under a temporary name, then renamed.
local GENERATE = [[
PRAGMA journal_mode = OFF;
PRAGMA synchronous = OFF;
CREATE TABLE items (
  id      INTEGER PRIMARY KEY,
  name    TEXT NOT NULL,
  price   REAL NOT NULL,
  qty     INTEGER NOT NULL,
  created TEXT NOT NULL
);
WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < %d)
INSERT INTO items
SELECT i, 'item-' || i, (i * 7919 %% 100000) / 100.0, i %% 97,
       date('2020-01-01', '+' || (i %% 1461) || ' days')
FROM seq WHERE i <= %d;
]]

assert(par.run({ { "mkdir", "-p", dir, outdir } }, 1)[1].ok, "cannot create " .. outdir)
local f = io.open(db)
if f then
  f:close()
else
  os.remove(db .. ".tmp")
  sqlite(db .. ".tmp", ".read /dev/stdin", GENERATE:format(rows, rows))
  assert(os.rename(db .. ".tmp", db))
end

local lo, hi = sqlite(db, "SELECT min(id), max(id) FROM items"):match("^(%-?%d*)|(%-?%d*)")
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
