--- par.map: map a Lua function over items on forked worker processes.
--
-- Workers are forks of the caller: fn, items and init reach them without
-- serialisation; only results travel back (through par's codec, so
-- metatables are not sent).  See par.core's map.c (entry),
-- pool.c (the parent side) and worker.c (the forked child) for the machinery.
local core = require "par.core"
local util = require "par.util"
local progress = require "par.progress"
local options = require "par.options"

local M = {}

local type, pcall, require, tostring, concat = type, pcall, require, tostring, table.concat
local format = string.format
local argerror, typename = util.argerror, util.typename

--- The module named by the longest prefix of 'parts' that require finds,
-- and the index of the first part after its name; or nil, why.  A module
-- that exists but fails to load gives its own error.
local function find_module(spec, parts)
  local tried = {}
  for k = #parts, 1, -1 do
    local name = concat(parts, ".", 1, k)
    local ok, mod = pcall(require, name)
    if ok then return mod, k + 1 end
    if type(mod) ~= "string" or not mod:find("module '" .. name .. "' not found", 1, true) then
      return nil, format("cannot resolve '%s': loading module '%s' failed: %s", spec, name,
        tostring(mod))
    end
    tried[#tried + 1] = "'" .. name .. "'"
  end
  return nil, format("cannot resolve '%s': no module %s", spec, concat(tried, " or "))
end

--- "module.name.func": the longest prefix that require finds is the module,
-- the rest a path of fields to the function.  The function, or nil, why.
local function resolve(spec)
  local parts = {}
  for part in (spec .. "."):gmatch("([^.]*)%.") do
    if part == "" then return nil, format("cannot resolve '%s': empty name", spec) end
    parts[#parts + 1] = part
  end
  local v, first = find_module(spec, parts)
  if v == nil then return nil, first end
  for k = first, #parts do
    if type(v) ~= "table" then
      return nil, format("cannot resolve '%s': '%s' is a %s, not a table", spec,
        concat(parts, ".", 1, k - 1), typename(v))
    end
    v = v[parts[k]]
  end
  if type(v) ~= "function" then
    return nil, format("cannot resolve '%s': it is a %s, not a function", spec, typename(v))
  end
  return v
end

--- The function fn_spec names: itself, or the function a "module.func"
-- string resolves to; or nil, why.
function M.resolve(fn_spec)
  local fn, why = options.find("map", "fn").check(fn_spec)
  if type(fn) == "string" then return resolve(fn) end
  return fn, why
end

-- The progress display of a map: items done (results received), workers
-- busy; redrawn as results arrive, finished even when the map raises.  n
-- is nil for an iterator: the total is not known.
local function with_progress(opts, n)
  local bar = progress.new(n, opts.progress, "items")
  opts.progress = nil
  if not bar then return nil end
  local done, user, over = 0, opts.on_result, false
  local src = { counts = function()
    if over then return done, done end     -- finished: none running
    return math.min(done + opts.jobs, n or math.huge), done
  end }
  opts.on_result = function(v, i)
    done = done + 1
    bar:draw(src, 0)
    if user then return user(v, i) end
  end
  return setmetatable({}, { __close = function()
    over = true
    bar:finish(src, 0)
  end })
end

-- fn, items, #items (nil for an iterator) and the options of 'fname'
-- ("map" or "imap"), checked; a bad one raises, blaming the caller's
-- caller.
local function arguments(fname, fn_spec, items, ...)
  local fn, why = M.resolve(fn_spec)
  if not fn then argerror(1, fname, why, 4) end
  local ok, n = options.find("map", "items").check(items)
  if not ok then argerror(2, fname, n, 4) end
  local opts, argn, bad = options.args("map", 3, ...)
  if not opts then argerror(argn, fname, bad, 4) end
  opts.jobs = opts.jobs or core.cpus()
  opts.n = n          -- core.seqlen said so: the core need not look again
  return fn, items, n, opts
end

--- results = par.map(fn_spec, items [, n] [, opts]), as par.run takes them.
-- With opts.errors == "collect": results, errs (errs[i] for each failed i;
-- an empty table when none failed).  results.n == #items always (with an
-- iterator, the number of items it gave).
-- On a system failure (fork, socketpair...): nil, message, errno.
function M.map(...)
  local fn, items, n, opts = arguments("map", ...)
  if n == 0 then
    if opts.errors == "collect" then return { n = 0 }, {} end
    return { n = 0 }
  end
  local bar <close> = with_progress(opts, n) -- luacheck: ignore 211 (closed on return)
  return core.map(fn, items, opts)
end

--- for i, v [, err] in par.imap(fn_spec, items [, n] [, opts]) do ... end:
-- results as they finish (opts.ordered: in input order).  The fourth
-- value closes the stream: a break, a return or an error in the loop
-- body kills and reaps every worker.
function M.imap(...)
  local fn, items, n, opts = arguments("imap", ...)
  local bar = with_progress(opts, n)
  local step, state, ctl, pool = core.imap(fn, items, opts)
  if not bar then return step, state, ctl, pool end
  return step, state, ctl, setmetatable({}, { __close = function()
    pool:close()
    getmetatable(bar).__close()
  end })
end

return M
