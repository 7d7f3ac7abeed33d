--- The par command's input: the items it reads (commands or arguments, one a
-- line or NUL-terminated, from stdin or -a FILE), and the replacement
-- strings of GNU parallel that turn an argument into a command.
local util = require "par.util"
local errors = require "par.cli.errors"

local M = {}

local tostring = tostring
local format = string.format
local usage_error = errors.usage

--- Items of 'path' (stdin if nil or "-"): commands or arguments, as 'what'
-- says, for the messages.
function M.read(path, null, what)
  local f, err
  if path == nil or path == "-" then
    f = io.stdin
  else
    f, err = io.open(path, "rb")
    if not f then usage_error(err) end
  end
  local data, rerr = f:read("a")
  if f ~= io.stdin then f:close() end
  if not data then usage_error(format("%s: %s", path or "stdin", rerr)) end
  local items = {}
  if null then
    for item in data:gmatch("([^\0]*)\0?") do
      if item ~= "" then items[#items + 1] = item end
    end
  else
    local n, name = 0, (path == nil or path == "-") and "stdin" or path
    for line in (data .. "\n"):gmatch("([^\n]*)\n") do
      n = n + 1
      line = line:gsub("\r$", "")
      if line:find("%S") and not line:find("^%s*#") then
        if line:find("\0", 1, true) then
          usage_error(format("%s:%d: %s %d contains a NUL byte (use -0 for NUL-separated input)",
            name, n, what, #items + 1))
        end
        items[#items + 1] = line
      end
    end
  end
  return items
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
