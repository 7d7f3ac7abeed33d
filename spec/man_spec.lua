-- The man page (doc/mkman.lua makes par.1 from what --help is made of),
-- its installation by make install and by the rockspec, and README's
-- lists of differences from GNU parallel, kept equal to the one list
-- --help and the man page print (par.cli.differences).
local H = require "spec.helpers"
local options = require "par.options"
local diff = require "par.cli.differences"

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local _, _, status = p:close()
  return out, status
end

-- Roff's escapes of a text, as mkman writes it.
local function roff(s)
  return (s:gsub("\\", "\\e"):gsub("%-", "\\-"))
end

local function squeeze(s)
  return (s:gsub("%s+", " "):gsub("^ ", ""):gsub(" $", ""))
end

describe("the man page #man", function()
  local dir, page
  setup(function()
    dir = H.tmpdir()
    page = dir .. "/par.1"
    local out, status = sh(H.env .. "lua5.4 doc/mkman.lua > " .. page)
    assert(status == 0, out)
  end)
  teardown(function() H.rmtree(dir) end)

  it("is roff that groff reads without a warning", function()
    assert.are.same({ "", 0 }, { sh("groff -man -ww -z " .. page) })
  end)

  it("documents every flag with its argument, its help line and its default", function()
    local text = H.readfile(page)
    local entries = {}
    for entry in text:gmatch("%.TP\n([^\n]*\n[^\n]*)") do entries[#entries + 1] = entry end
    for _, f in ipairs(options.flags()) do
      local name = "\\fB" .. roff(f.long and "--" .. f.long or "-" .. f.short) .. "\\fR"
      local found
      for _, e in ipairs(entries) do
        local head = e:match("^[^\n]*")
        local tail = (head .. ","):sub(#name + 1, #name + 1)
        if head:sub(1, #name) == name and (tail == "," or tail == " ") then found = e end
        if head:find(", " .. name, 1, true) then found = e end
      end
      assert(found, "no entry for " .. name)
      if f.arg then assert.truthy(found:find("\\fI" .. roff(f.arg) .. "\\fR", 1, true), name) end
      assert.truthy(found:find(roff(f.help), 1, true), name .. ": its help")
      if not f.final then assert.truthy(found:find("%[[^\n]*%]$"), name .. ": its default") end
    end
  end)

  it("reads as a man page: sections, the option groups, the differences, the exit status", function()
    local out, status = sh("MANWIDTH=100 LC_ALL=C man -l " .. page .. " | col -b")
    assert.are.equal(0, status)
    for _, title in ipairs({ "NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "ENVIRONMENT",
        "EXIT STATUS", "DIFFERENCES FROM GNU PARALLEL", "EXAMPLES", "SEE ALSO" }) do
      assert.truthy(out:find("\n" .. title .. "\n", 1, true), title)
    end
    for _, g in ipairs(options.GROUPS) do assert.truthy(out:find("\n   " .. g.title .. "\n", 1, true), g.title) end
    local flat = squeeze(out:gsub("%-\n%s+", "-"))
    for _, d in ipairs(diff.DIFFERENCES) do
      local first = diff.plain(d.text):match("^(.-[%w)]) ")
      assert.truthy(flat:find(squeeze(diff.plain(d.text)):sub(1, 40), 1, true), first)
    end
    assert.truthy(flat:find("255 a usage or config error", 1, true))
  end)
end)

describe("README", function()
  it("lists the differences from GNU parallel and what is not done, as --help and the man page do", function()
    local readme = H.readfile("README.md")
    local from = assert(readme:find("**Differences from GNU parallel**", 1, true))
    local to = assert(readme:find("\n\n", readme:find("**Not done yet**", from, true), true))
    assert.are.equal(squeeze(diff.markdown()), squeeze(readme:sub(from, to)))
  end)

  it("and --help names each difference", function()
    local help = H.lines(H.env .. "lua5.4 bin/par --help")
    for _, d in ipairs(diff.DIFFERENCES) do
      assert.is_true(#d.short <= 88, d.short)
      local found = false
      for _, line in ipairs(help) do found = found or line == "  - " .. d.short end
      assert.is_true(found, d.short)
    end
  end)
end)

describe("installing #install", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmtree(dir) end)

  it("make install puts par.1 in MANDIR/man1, where man finds it", function()
    local out, status = sh("make install DESTDIR=" .. dir .. " PREFIX=/usr")
    assert(status == 0, out)
    local page = dir .. "/usr/share/man/man1/par.1"
    assert.are.equal(H.readfile("doc/par.1"), H.readfile(page))
    out = sh("MANWIDTH=80 LC_ALL=C man -M " .. dir .. "/usr/share/man par | col -b")
    assert.truthy(out:find("par%s+%-%s+run shell commands"), out)
  end)

  it("the rockspec installs par.1 in the rock's tree", function()
    if not sh("command -v luarocks"):find("luarocks") then
      pending("luarocks is not installed")
      return
    end
    local src = dir .. "/src"
    local out, status = sh("mkdir " .. src .. " && git ls-files -z --cached --others --exclude-standard"
      .. " | xargs -0 cp --parents -t " .. src)
    assert(status == 0, out)
    out, status = sh("cd " .. src .. " && luarocks --lua-version=5.4 make --tree=" .. dir
      .. "/tree par-scm-1.rockspec")
    assert(status == 0, out)
    local pages = sh("find " .. dir .. "/tree -path '*share/man/man1/par.1'")
    assert.truthy(pages:find("par.1\n$"), pages)
    assert.are.equal(H.readfile(src .. "/doc/par.1"), H.readfile(pages:sub(1, -2)))
  end)
end)
