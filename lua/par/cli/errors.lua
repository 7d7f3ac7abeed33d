--- The par command's errors: the tables it raises to end with a message of
-- its own, and the text of any error value.  par.cli (init) turns them into
-- exit statuses.
--
-- Raised as tables, so that they cannot be mistaken for a bug in par itself:
--   { usage = msg }    a usage error (status 255, with the usage hint)
--   { config = msg }   a config error, or an option of GNU parallel that
--                      par does not have (status 255, one line)
--   { system = msg }   the system failed us, as par.run's nil, msg (status 255)
--   { pipe = true }    stdout's reader went away (status 141, no word)
-- and the string "interrupted" is a signal (status 128 + N).
local util = require "par.util"

local M = {}

local type, error, tostring, getmetatable = type, error, tostring, getmetatable

function M.usage(msg) error({ usage = msg }, 0) end
function M.config(msg) error({ config = msg }, 0) end
function M.system(msg) error({ system = msg }, 0) end
function M.pipe() error({ pipe = true }, 0) end
function M.unsupported(msg) error({ config = msg }, 0) end

--- An interrupt raised inside a function par called for the user (a config
-- chunk, a commands() function) is still an interrupt, not a config error.
function M.rethrow_interrupt(e)
  if e == "interrupted" then error(e, 0) end
end

--- s on one line: each newline, with the spaces around it, becomes a space.
function M.one_line(s)
  return (tostring(s):gsub("%s*\n%s*", " "))
end

--- The text of a raised value of any type.
function M.text(e)
  if type(e) == "string" or type(e) == "number" then return tostring(e) end
  local mt = getmetatable(e)
  if mt and mt.__tostring then return tostring(e) end
  return "raised a " .. util.typename(e) .. " value"
end

return M
