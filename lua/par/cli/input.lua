--- The par command's input: the items it reads (commands or arguments, one a
-- line or NUL-terminated, from stdin or -a FILE) as they arrive, and the replacement
-- strings of GNU parallel that turn an argument into a command.
local core = require "par.core"
local util = require "par.util"
local errors = require "par.cli.errors"

local M = {}

local tostring = tostring
local format = string.format
local usage_error = errors.usage

-- The file of 'path' (stdin if nil or "-") and its name for messages.
local function open_input(path)
  if path == nil or path == "-" then return io.stdin, "stdin" end
  local f, err = io.open(path, "rb")
  if not f then usage_error(err) end
  return f, path
end

--- The items of 'path' (stdin if nil or "-"), commands or arguments as
-- 'what' says (for the messages), read as they arrive: an iterator that
-- returns the next item; false, fd when no whole item is there yet (wait
-- until fd is readable, then call again); nil at the end.  With 'block' it
-- waits itself and never returns false.  Blank lines and # lines are
-- skipped, a "\r" before the newline dropped; with 'null' items end with
-- NUL and only empty ones are skipped.
function M.items(path, null, what, block)
  local f, name = open_input(path)
  local r = core.lines(f, null and "\0" or "\n")
  local nline, nitem = 0, 0
  local function finish()
    r:close()
    if f ~= io.stdin then f:close() end
  end
  local function take(rec)
    if null then return rec ~= "" end
    nline = nline + 1
    if not rec:find("%S") or rec:find("^%s*#") then return false end
    if rec:find("\0", 1, true) then
      usage_error(format("%s:%d: %s %d contains a NUL byte (use -0 for NUL-separated input)",
        name, nline, what, nitem + 1))
    end
    return true
  end
  return function()
    while true do
      if f == nil then return nil end
      local rec, err = r:read()
      if rec == nil then
        finish()
        f = nil
        if err then usage_error(format("%s: %s", name, err)) end
        return nil
      elseif rec == false then
        if not block then return false, r:fd() end
        r:wait()
      else
        if not null then rec = rec:gsub("\r$", "") end
        if take(rec) then
          nitem = nitem + 1
          return rec
        end
      end
    end
  end
end

-- Replacement strings of GNU parallel, each given the raw argument.
local REPLACE = {
  ["{}"] = function(a) return a end,
  ["{.}"] = function(a) return (a:gsub("%.[^./]*$", "")) end,
  ["{/}"] = function(a) return a:match("[^/]*$") end,
  ["{//}"] = function(a) return a:match("^(.*)/") or "." end,
  ["{/.}"] = function(a) return (a:match("[^/]*$"):gsub("%.[^.]*$", "")) end,
}

--- The shell command for argument 'a' of job 'seq': template's replacement
-- strings filled in, or the quoted argument appended when it has none.
function M.expand(template, a, seq)
  local used = false
  local cmd = template:gsub("{[^{}]*}", function(r)
    if r == "{#}" then used = true; return tostring(seq) end
    local f = REPLACE[r]
    if not f then return nil end
    used = true
    return util.quote(f(a))
  end)
  if not used then cmd = cmd .. " " .. util.quote(a) end
  return cmd
end

return M
