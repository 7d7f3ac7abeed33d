--- curl.lua: fetch a list of URLs in parallel with curl.
--
--   lua5.4 examples/curl.lua URLFILE [OUTDIR [THREADS]]
--   lua5.4 examples/curl.lua            (a self-contained offline demo)
--
-- URLFILE holds one URL per line (blank lines and lines starting with # are
-- skipped). Each URL becomes an argv command
--   {"curl", "-sS", "-f", "-o", OUTDIR/NAME, URL}
-- run with no shell, so a URL full of quotes or `$(...)` is just data. The
-- files land in OUTDIR (default demo-out/curl), named after the last part
-- of the URL's path. Each fetch is printed as it ends; failures are listed
-- with curl's message; the exit status is 1 if any fetch failed.
--
-- With no arguments the script makes a temporary folder with a few files
-- and a URL file naming them as file:// URLs, plus one that does not exist,
-- and fetches them: it needs no network, and shows a failure being reported.
local par = require "par"
local monotime = require("par.core").monotime

local function die(msg, status)
  io.stderr:write("curl.lua: ", msg, "\n")
  os.exit(status or 1)
end

-- Runs one argv command; its stdout, or an error naming the command.
local function check(argv)
  local res = par.run({ argv }, 1)[1]
  if not res.ok then
    die(("%s failed: %s"):format(argv[1], res.error or res.stderr:gsub("\n$", "")))
  end
  return res.stdout
end

local function read_urls(path)
  local f, err = io.open(path)
  if not f then die(err) end
  local urls = {}
  for line in f:lines() do
    line = line:match("^%s*(.-)%s*$")
    if line ~= "" and not line:find("^#") then
      -- curl would take a leading '-' as an option: argv spares us the
      -- shell, not the program's own parsing.
      if line:find("^%-") then die(("%s: not a URL: %s"):format(path, line)) end
      urls[#urls + 1] = line
    end
  end
  f:close()
  return urls
end

-- A file name for each URL: the last segment of its path, made safe; the
-- line number is prefixed when that is empty or already taken.
local function file_names(urls)
  local names, seen = {}, {}
  for i, url in ipairs(urls) do
    local name = url:gsub("[?#].*$", ""):match("[^/]*$"):gsub("[^%w._-]", "_")
    if name == "" or name:find("^%.+$") then name = "index.html" end
    if seen[name] then name = ("%d-%s"):format(i, name) end
    seen[name] = true
    names[i] = name
  end
  return names
end

local function fetch(urls, outdir, threads)
  check({ "mkdir", "-p", "--", outdir })
  local names, cmds = file_names(urls), {}
  for i, url in ipairs(urls) do
    cmds[i] = { "curl", "-sS", "-f", "-o", outdir .. "/" .. names[i], url }
  end
  local start = monotime()
  local results, nfailed = par.run(cmds, threads, {
    on_done = function(res, i)
      print(("%-4s %s"):format(res.ok and "ok" or "FAIL", urls[i]))
    end,
  })
  local secs = monotime() - start
  local bytes = 0
  if nfailed > 0 then print(("\n%d of %d fetches failed:"):format(nfailed, #urls)) end
  for i, res in ipairs(results) do
    if res.ok then
      local f = io.open(cmds[i][5], "rb")
      if f then bytes = bytes + f:seek("end"); f:close() end
    else
      local why = res.error or res.stderr:gsub("\n+$", ""):gsub("\n", "; ")
      if why == "" then why = res.status .. " " .. (res.code or res.signal or "") end
      print(("  %s: %s"):format(urls[i], why))
    end
  end
  print(("\nfetched %d of %d URLs into %s (%d bytes) on %d threads in %.2f s"):format(
    #urls - nfailed, #urls, outdir, bytes, math.min(threads, math.max(#urls, 1)), secs))
  return nfailed
end

-- file:// URLs want absolute paths with unsafe bytes percent-encoded.
local function file_url(path)
  return "file://" .. path:gsub("[^%w/._~-]", function(c) return ("%%%02X"):format(c:byte()) end)
end

local function write_file(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
end

local function demo()
  local dir = check({ "mktemp", "-d", "-t", "par-curl-demo.XXXXXX" }):gsub("\n$", "")
  local src, urls = dir .. "/site", {}
  check({ "mkdir", "--", src })
  for i = 1, 5 do
    local path = ("%s/page%d.txt"):format(src, i)
    write_file(path, ("page %d\n"):format(i):rep(i * 100))
    urls[#urls + 1] = file_url(path)
  end
  urls[#urls + 1] = file_url(src .. "/missing.txt")   -- the one meant to fail
  local list = dir .. "/urls.txt"
  write_file(list, table.concat(urls, "\n") .. "\n")
  print(("demo: %d file:// URLs in %s, the last one missing\n"):format(#urls, list))
  local nfailed = fetch(read_urls(list), dir .. "/out", 4)
  print(("\ndemo files are in %s (remove it with: rm -r %s)"):format(dir, par.quote(dir)))
  -- The demo succeeds when exactly the missing file failed.
  return nfailed == 1 and 0 or 1
end

local function main()
  if #arg == 0 then return demo() end
  local threads = 8
  if arg[3] then
    threads = math.tointeger(tonumber(arg[3]))
    if not threads or threads < 1 then die("THREADS must be a positive integer, got '" .. arg[3] .. "'", 2) end
  end
  local urls = read_urls(arg[1])
  if #urls == 0 then die(arg[1] .. ": no URLs") end
  return fetch(urls, arg[2] or "demo-out/curl", threads) > 0 and 1 or 0
end

os.exit(main())
