--- par run and par map configs: loading a config file, checking its keys
-- (RUN_KEYS, MAP_KEYS), and errors that blame the line of the config that
-- set a key.
local util = require "par.util"
local cli_args = require "par.cli.args"
local errors = require "par.cli.errors"

local M = {}

local type, pairs, tostring, pcall = type, pairs, tostring, pcall
local format = string.format
local typename = util.typename
local config_error, usage_error = errors.config, errors.usage

-- A message that names the config file: Lua's "file:line: msg" as it is.
local function named(path, msg)
  msg = errors.one_line(msg)
  if msg:sub(1, #path + 1) == path .. ":" then return msg end
  return path .. ": " .. msg
end

-- The line of 'source' that sets 'key', when exactly one line does.
local function key_line(source, key)
  if type(key) ~= "string" or not source then return nil end
  local found, n = nil, 0
  local pat = "%f[%w_]" .. key:gsub("%p", "%%%0") .. "%s*=[^=]"
  for line in (source .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    if (line .. " "):find(pat) then
      if found then return nil end
      found = n
    end
  end
  return found
end

local function key_name(k)
  if type(k) == "string" then return "'" .. k .. "'" end
  return "[" .. tostring(k) .. "]"
end

--- Raise a config error about 'key' of 'cfg', at the line that sets it
-- when exactly one line does.
function M.key_error(cfg, key, msg)
  local line = key_line(cfg.source, key)
  config_error(format("%s%s: %s", cfg.path, line and (":" .. line) or "", msg))
end

-- Checkers for config keys: value -> value, or nil, why.
local function sequence_or_function(v)
  if type(v) == "function" then return v end
  if type(v) ~= "table" then return nil, "table or function expected, got " .. typename(v) end
  if not util.is_sequence(v) then return nil, "sequence expected (keys 1..n only)" end
  return v
end

local function table_value(v)
  if type(v) ~= "table" then return nil, "table expected, got " .. typename(v) end
  return v
end

local function string_or_table(v)
  if type(v) ~= "string" and type(v) ~= "table" then
    return nil, "string or table expected, got " .. typename(v)
  end
  return v
end

local function fn_value(v)
  if type(v) ~= "function" and type(v) ~= "string" then
    return nil, "function or 'module.func' string expected, got " .. typename(v)
  end
  return v
end

--- The keys of a par run config, each with its checker.
M.RUN_KEYS = {
  commands = sequence_or_function,
  jobs = cli_args.check_jobs,
  timeout = util.positive_number,
  kill_after = util.nonneg_number,
  retries = util.nonneg_integer,
  retry_delay = util.nonneg_number,
  halt = util.oneof("never", "soon", "now"),
  joblog = util.string,
  resume = util.boolean_or("failed"),
  progress = util.boolean_or("always"),
  env = table_value,
  cwd = util.string,
  shell = string_or_table,
  stdin = util.string,
  capture = util.boolean,
  output = util.oneof("group", "ungroup"),
  max_output = util.nonneg_integer,
  delay = util.nonneg_number,
  on_done = util.func,
  keep_order = util.boolean,
  tag = util.boolean,
  hosts = table_value,
  ssh = string_or_table,
}

--- The keys of a par map config, each with its checker.
M.MAP_KEYS = {
  fn = fn_value,
  items = sequence_or_function,
  procs = cli_args.check_jobs,
  chunksize = util.positive_integer,
  init = util.func,
  on_result = util.func,
  errors = util.oneof("raise", "collect"),
  worker_memory = util.positive_integer,
  timeout = util.positive_number,
  progress = util.boolean_or("always"),
  format = util.oneof("json", "lua"),
}

-- Prepend the config's directory to package.path, so that the config (and
-- par map's "module.func") can require modules kept beside it.
local function add_config_dir(path)
  local dir = path:match("^(.*)/[^/]*$") or "."
  package.path = format("%s/?.lua;%s/?/init.lua;%s", dir, dir, package.path)
end

--- Load, run and check a config.  Returns { path, source, values }.
function M.load(path, keys, args)
  local f, err = io.open(path, "rb")
  if not f then config_error(err) end
  local source, rerr = f:read("a")
  f:close()
  if not source then config_error(path .. ": " .. tostring(rerr)) end
  -- like loadfile: a first line starting with '#' (a #! line) is skipped
  local chunk, perr = load(source:gsub("^#[^\n]*", "", 1), "@" .. path, "t")
  if not chunk then config_error(named(path, perr)) end
  add_config_dir(path)
  local ok, t = pcall(chunk, table.unpack(args or {}))
  if not ok then
    errors.rethrow_interrupt(t)
    config_error(named(path, errors.text(t)))
  end
  if type(t) ~= "table" then
    config_error(format("%s: must return a table, returned %s", path, typename(t)))
  end
  local cfg = { path = path, source = source, values = {} }
  for k, v in pairs(t) do
    local check = type(k) == "string" and keys[k]
    if not check then M.key_error(cfg, k, "unknown key " .. key_name(k)) end
    local val, why = check(v)
    if val == nil then M.key_error(cfg, k, format("key '%s': %s", k, why)) end
    cfg.values[k] = val
  end
  return cfg
end

--- A sequence from a key that holds one or a function returning one.
function M.list(cfg, key)
  local v = cfg.values[key]
  if v == nil then M.key_error(cfg, key, format("key '%s' is missing", key)) end
  if type(v) == "function" then
    local ok, t = pcall(v)
    if not ok then
      errors.rethrow_interrupt(t)
      config_error(named(cfg.path, errors.text(t)))
    end
    if type(t) ~= "table" or not util.is_sequence(t) then
      M.key_error(cfg, key, format("key '%s': the function returned %s, not a sequence", key,
        type(t) == "table" and "a table with keys other than 1..n" or "a " .. typename(t)))
    end
    v = t
  end
  return v
end

--- An error par.run or par.map raised about its arguments, in the terms of
-- whoever gave the value: "bad argument #2 to 'run' (option 'joblog': ...)"
-- -> "--joblog: ..." when the command line set it (or there is no config),
-- else "c.lua:3: key 'joblog': ...".  'o' holds the command-line options.
function M.api_error(cfg, msg, argkeys, o)
  if type(msg) ~= "string" then return nil end
  local n, fname, why = msg:match("^bad argument #(%d) to '(%a+)' %((.*)%)$")
  if not n then return nil end
  local key, rest = why:match("^option '([%w_]+)': (.*)$")
  if key then
    local flag = cli_args.option(key)
    if flag and (not cfg or o[key] ~= nil) then usage_error(format("--%s: %s", flag.long, rest)) end
    return cfg and M.key_error(cfg, key, format("key '%s': %s", key, rest))
  end
  key = argkeys[tonumber(n)]
  if not key then return nil end
  if cfg then M.key_error(cfg, key, format("key '%s': %s", key, why)) end
  usage_error(format("%s: %s", fname, why))
end

return M
