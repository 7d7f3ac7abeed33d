--- export_table.lua: export a SQLite table to CSV in parallel partitions.
--
--   lua5.4 examples/export_table.lua [-j JOBS] [-p PARTITIONS] [-d DIR] [ROWS]
--
-- Creates DIR/items_ROWS.db (DIR: demo-out; ROWS: $PAR_DEMO_ROWS or
-- 1000000) with a generated table `items` unless it exists, splits the ids
-- into PARTITIONS (20) ranges with par.ranges, and runs
--   sh examples/export_table.sh DB LO HI DIR/csv
-- for each on JOBS (par.cpus()) threads with par.run. Each writes
-- DIR/csv/items_LO_HI.csv and prints how many rows it wrote; the script
-- checks that these add up to the rows in the table (exit status 1 if not,
-- or if any partition failed) and prints a summary. `make demo` runs it.
local par = require "par"
local monotime = require("par.core").monotime

local here = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = here .. "/?.lua;" .. package.path
local items_db = require "items_db"

local function die(msg, status)
  io.stderr:write("export_table.lua: ", msg, "\n")
  os.exit(status or 1)
end

local function usage(msg)
  die(msg .. "\nusage: lua5.4 examples/export_table.lua [-j JOBS] [-p PARTITIONS] [-d DIR] [ROWS]", 2)
end

local function count(s, what, min)
  local n = math.tointeger(tonumber(s))
  if not n or n < min then usage(("%s must be an integer >= %d, got '%s'"):format(what, min, tostring(s))) end
  return n
end

local function parse_args(args)
  local o = { jobs = par.cpus(), parts = 20, dir = "demo-out",
    rows = os.getenv("PAR_DEMO_ROWS") or "1000000" }
  local flags = { ["-j"] = "jobs", ["-p"] = "parts", ["-d"] = "dir" }
  local i = 1
  while i <= #args do
    local a, key = args[i], flags[args[i]]
    if key then
      if args[i + 1] == nil then usage("option " .. a .. " needs a value") end
      o[key] = args[i + 1]
      i = i + 2
    elseif a:find("^%-") then
      usage("unknown option " .. a)
    else
      o.rows = a
      i = i + 1
    end
  end
  o.jobs = count(o.jobs, "JOBS", 1)
  o.parts = count(o.parts, "PARTITIONS", 1)
  o.rows = count(o.rows, "ROWS", 0)
  return o
end

local function sqlite(db, sql, input)
  local ok, out = pcall(items_db.sqlite, db, sql, input)
  if not ok then die(out) end
  return out
end

local function create_db(db, rows)
  local f = io.open(db)
  if f then f:close(); return end
  io.write(("creating %s with %d rows ... "):format(db, rows))
  io.flush()
  local t = monotime()
  local ok, err = pcall(items_db.create, db, rows)
  if not ok then die(err) end
  print(("%.2f s"):format(monotime() - t))
end

-- Each partition's rows, from the number export_table.sh printed.
local function collect(results, parts, csvdir)
  local exported, failures = 0, {}
  for i, res in ipairs(results) do
    local lo, hi = parts[i][1], parts[i][2]
    local n = res.ok and math.tointeger(tonumber(res.stdout))
    local file = ("%s/items_%d_%d.csv"):format(csvdir, lo, hi)
    local f = n and io.open(file)
    if f then
      f:close()
      exported = exported + n
    else
      local why = res.error or res.stderr:gsub("\n+$", ""):gsub("\n", "; ")
      if why == "" then why = n and ("no file " .. file) or ("exit " .. tostring(res.code or res.status)) end
      failures[#failures + 1] = ("partition %d..%d failed: %s"):format(lo, hi, why)
    end
  end
  return exported, failures
end

local function main()
  local o = parse_args(arg)
  local db, csvdir = ("%s/items_%d.db"):format(o.dir, o.rows), o.dir .. "/csv"
  -- Start clean: stale files from a run with other partitions would mislead.
  local res = par.run({ ("mkdir -p %s && rm -f %s/items_*_*.csv"):format(
    par.quote(csvdir), par.quote(csvdir)) }, 1)[1]
  if not res.ok then die(res.error or res.stderr) end
  create_db(db, o.rows)

  local lo, hi, total = sqlite(db, "SELECT min(id), max(id), count(*) FROM items"):match("^(%-?%d*)|(%-?%d*)|(%d+)")
  total = math.tointeger(tonumber(total or "")) or die("cannot count the rows of " .. db)
  local parts = {}
  if total > 0 then
    lo, hi = math.tointeger(tonumber(lo)), math.tointeger(tonumber(hi))
    parts = par.ranges(lo, hi, (hi - lo) // o.parts + 1)
  end
  local script, cmds = here .. "/export_table.sh", {}
  for i, p in ipairs(parts) do
    cmds[i] = { "sh", script, db, tostring(p[1]), tostring(p[2]), csvdir }
  end

  local t = monotime()
  local results = par.run(cmds, { jobs = o.jobs, progress = true })
  local secs = monotime() - t
  local exported, failures = collect(results, parts, csvdir)

  for _, msg in ipairs(failures) do io.stderr:write(msg, "\n") end
  print(("exported %d rows of table items in %d partitions on %d threads: %.2f s, %.0f rows/s"):format(
    exported, #parts, math.min(o.jobs, math.max(#parts, 1)), secs, secs > 0 and exported / secs or 0))
  print(("files: %s/items_LO_HI.csv"):format(csvdir))
  if exported ~= total or #failures > 0 then
    print(("check FAILED: %d rows exported, %d rows in the table, %d partition(s) failed"):format(
      exported, total, #failures))
    return 1
  end
  print(("check ok: %d rows exported = %d rows in the table"):format(exported, total))
  return 0
end

os.exit(main())
