--- Remote hosts for par.run: each command runs as `ssh HOST -- LINE`, where
-- LINE applies cwd and env on the remote side.  par keeps the queue, the
-- results and the joblog; the system's OpenSSH client runs the command.
local util = require "par.util"

local M = {}

local type, ipairs, next, rawget = type, ipairs, next, rawget
local quote = util.quote

--- The remote shell line of command 'c' (a string, run by 'shell', or an
-- argv table), with opts.cwd and opts.env applied there.
function M.line(c, opts, shell)
  local parts = {}
  if opts.cwd then parts[#parts + 1] = "cd " .. quote(opts.cwd) .. " &&" end
  if opts.env then
    local names = {}
    for k in next, opts.env do names[#names + 1] = k end
    table.sort(names)
    parts[#parts + 1] = "env"
    for _, k in ipairs(names) do
      local v = opts.env[k]
      parts[#parts + 1] = v == false and "-u " .. quote(k) or quote(k .. "=" .. v)
    end
  end
  if type(c) == "string" then
    parts[#parts + 1] = util.shell_line(shell) .. " " .. quote(c)
  else
    parts[#parts + 1] = util.shell_line(c)
  end
  return table.concat(parts, " ")
end

--- The core's host list, and the number of worker threads: one per slot.
-- A host without "N/" gets 'slots' (opts.jobs), which the Lua layer does
-- not bound (#cmds bounds the threads): here at most MAX_SLOTS, as with
-- "N/".  ssh reads no option after "--", so the host and the line after it
-- are never options, whatever they begin with.
function M.list(opts, slots)
  local ssh = opts.ssh or { "ssh" }
  local out, total = {}, 0
  slots = math.min(slots, util.MAX_SLOTS)
  for i = 1, #opts.hosts do
    local spec = rawget(opts.hosts, i)
    local n, name = spec:match("^(%d+)/(.*)$")
    local h = { name = name or spec, slots = n and math.tointeger(tonumber(n)) or slots }
    if h.name ~= ":" then
      h.argv = table.move(ssh, 1, #ssh, 1, {})
      table.move({ "-o", "BatchMode=yes", "--", h.name }, 1, 4, #h.argv + 1, h.argv)
    end
    out[#out + 1] = h
    total = total + h.slots
  end
  return out, total
end

return M
