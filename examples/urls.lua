--- urls.lua: a `par run` config that fetches a list of URLs with curl.
--
--   par run examples/urls.lua URLFILE [OUTDIR]
--
-- URLFILE holds one URL per line (blank lines and # comments skipped);
-- file:// URLs work offline. Each URL becomes the argv command
--   curl -sS -f --create-dirs -o OUTDIR/NAME URL
-- (no shell: a URL full of quotes is just data), NAME being the last part of
-- the URL's path. OUTDIR defaults to demo-out/urls. 8 fetches run at once,
-- each gets 60 s and 2 retries; "ok URL" or "FAIL URL" is printed as each
-- ends, and the exit status is the number of failed fetches.
local urlfile, outdir = ...
if not urlfile then error("usage: par run examples/urls.lua URLFILE [OUTDIR]", 0) end
outdir = outdir or "demo-out/urls"

local f = assert(io.open(urlfile))
local urls = {}
for line in f:lines() do
  line = line:match("^%s*(.-)%s*$")
  if line ~= "" and not line:find("^#") then
    -- curl would take a leading '-' as an option: argv spares us the shell,
    -- not the program's own parsing
    if line:find("^%-") then error(("%s: not a URL: %s"):format(urlfile, line), 0) end
    urls[#urls + 1] = line
  end
end
f:close()

-- A file name per URL: the last part of its path, made safe; prefixed with
-- the line's number when empty or already taken.
local commands, seen = {}, {}
for i, url in ipairs(urls) do
  local name = url:gsub("[?#].*$", ""):match("[^/]*$"):gsub("[^%w._-]", "_")
  if name == "" or name:find("^%.+$") then name = "index.html" end
  if seen[name] then name = ("%d-%s"):format(i, name) end
  seen[name] = true
  commands[i] = { "curl", "-sS", "-f", "--create-dirs", "-o", outdir .. "/" .. name, url }
end

return {
  commands = commands,
  jobs = 8,
  timeout = 60,
  retries = 2,
  on_done = function(res, i)
    print(("%-4s %s"):format(res.ok and "ok" or "FAIL", urls[i]))
  end,
}
