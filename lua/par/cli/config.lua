--- par run and par map configs: loading a config file, checking its keys
-- (RUN_KEYS, MAP_KEYS), and errors that blame the line of the config that
-- set a key.
local util = require "par.util"
local options = require "par.options"
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

--- The checker of each key of a par run config (kind "run") or a par map
-- config ("map"), from par.options.
function M.keys(kind)
  return function(key) return options.config_check(kind, key) end
end

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
    local check = type(k) == "string" and keys(k)
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

-- A bad option value, blamed on whoever gave it: the flag that set it
-- ("--joblog: ..."), else the config's key ("c.lua:3: key 'joblog': ...").
local function blame(cfg, o, name, why)
  local flag = o.given[name]
  if flag or not cfg then usage_error(format("%s: %s", flag or name, why)) end
  M.key_error(cfg, name, format("key '%s': %s", name, why))
end

--- par.run's or par.map's options ('call'), assembled from the config 'cfg'
-- (nil for none) and the command line's options 'o', checked as the API
-- checks them: the checked options, or a usage or config error.
function M.check_options(call, opts, cfg, o)
  local checked, name, why = options.check(call, opts)
  if not checked then blame(cfg, o, name, why or "unknown option") end
  local other
  name, other, why = options.relations(call, checked)
  if name then
    local flag = o.given[name]
    if flag or not cfg then
      usage_error(format("%s needs %s", flag or name, other and cli_args.flag_of(call, other) or why))
    end
    M.key_error(cfg, name, format("key '%s' needs %s", name, other and "key '" .. other .. "'" or why))
  end
  return checked
end

return M
