--- items_db.lua: the demo's SQLite table `items`, shared by
-- export_table.lua (par.run from Lua) and export.lua (a `par run` config).
local par = require "par"

local M = {}

--- One sqlite3 call through par.run (argv form: no quoting of the path);
-- its output, or an error naming what went wrong.
function M.sqlite(db, sql, input)
  local res = par.run({ { "sqlite3", "-bail", "-batch", db, sql } }, 1, { stdin = input })[1]
  if res.status == "error" then error(res.error .. " (Debian: apt-get install sqlite3)", 0) end
  if not res.ok then error(("sqlite3 %s: %s"):format(db, res.stderr:gsub("\n$", "")), 0) end
  return res.stdout
end

-- The table is generated inside sqlite3 by a recursive CTE: a million rows
-- take about a second, where inserting them one by one from Lua takes far
-- longer.
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

--- Create database 'db' with 'rows' rows unless it exists; true if it was
-- made.  It is built under a temporary name, so an interrupted build leaves
-- no half-filled database behind to be mistaken for a finished one.
function M.create(db, rows)
  local f = io.open(db)
  if f then f:close(); return false end
  local tmp = db .. ".tmp"
  os.remove(tmp)
  M.sqlite(tmp, ".read /dev/stdin", GENERATE:format(rows, rows))
  assert(os.rename(tmp, db))
  return true
end

return M
