--- Run one command line under GNU parallel and under par, for the
-- differential specs.  A line is shell text, as GNU parallel's manual writes
-- it: the word `parallel` in it runs either `parallel --will-cite` or this
-- checkout's bin/par, through a shell function, so pipelines
-- (`seq 3 | parallel echo`) and redirections work as written.  Each run
-- happens in a fresh directory holding the case's files, with HOME there
-- (GNU parallel writes ~/.parallel), $PARALLEL unset, SHELL=/bin/sh and the C
-- locale, so that the two programs see the same world.
local M = {}

local function shell_quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

local function slurp(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end

local function spit(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

local pwd = assert(io.popen("pwd"))
local cwd = pwd:read("l")
pwd:close()                 -- reaped: pool_spec counts this process's children
M.PAR = cwd .. "/bin/par"
M.GNU = "command parallel --will-cite"

--- A fresh directory holding 'files' ({ [name] = text }); names may hold '/'.
function M.sandbox(files)
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. shell_quote(dir)))
  for name, text in pairs(files or {}) do
    local sub = name:match("^(.*)/[^/]*$")
    if sub then assert(os.execute("mkdir -p " .. shell_quote(dir .. "/" .. sub))) end
    spit(dir .. "/" .. name, text)
  end
  return dir
end

--- Runs 'line' with 'which' ("par" or "gnu") in a new sandbox.  'opts':
-- stdin (text), files (as for sandbox), env ({ NAME = value }), timeout
-- (seconds, default 60).  Returns { stdout =, stderr =, status =, dir = }.
function M.run(which, line, opts)
  opts = opts or {}
  local dir = M.sandbox(opts.files)
  local prog = which == "par" and shell_quote(M.PAR) or M.GNU
  local env = { "LC_ALL=C", "SHELL=/bin/sh", "HOME=" .. shell_quote(dir) }
  for k, v in pairs(opts.env or {}) do env[#env + 1] = k .. "=" .. shell_quote(v) end
  spit(dir .. "/.in", opts.stdin or "")
  spit(dir .. "/.sh", ("parallel() { %s \"$@\"; }\n%s\n"):format(prog, line))
  local script = ("cd %s && exec env -u PARALLEL %s timeout -k 5 %d /bin/sh .sh <.in >.out 2>.err")
    :format(shell_quote(dir), table.concat(env, " "), opts.timeout or 60)
  local ok, how, code = os.execute(script)
  local status = ok and 0 or (how == "exit" and code or 128 + code)
  local r = { stdout = slurp(dir .. "/.out"), stderr = slurp(dir .. "/.err"), status = status, dir = dir }
  return r
end

--- Removes what M.run left.
function M.clean(r)
  if r and r.dir and r.dir:match("^/tmp/") then os.execute("rm -rf " .. shell_quote(r.dir)) end
end

--- Runs 'line' under both programs: par's result, GNU's.
function M.both(line, opts)
  return M.run("par", line, opts), M.run("gnu", line, opts)
end

return M
