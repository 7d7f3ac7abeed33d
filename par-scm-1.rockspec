rockspec_format = "3.0"
package = "par"
version = "scm-1"
source = {
  url = "git+file:///dev/null",   -- built from a checkout: `luarocks make`
}
description = {
  summary = "Run work in parallel: commands on a thread pool, Lua maps on forked workers",
  detailed = [[
par.run runs a list of commands N at a time on POSIX threads, with
posix_spawn, captured output, timeouts, retries and a GNU parallel joblog.
par.map maps a Lua function over items on forked worker processes that
already hold the caller's state, so nothing but results is serialized.
]],
  license = "MIT",
}
dependencies = {
  "lua >= 5.4, < 5.5",
}
build = {
  type = "make",
  install = { bin = { par = "bin/par" } },
  build_variables = {
    CFLAGS = "$(CFLAGS)",
    LIBFLAG = "$(LIBFLAG)",
    LUA_INCDIR = "$(LUA_INCDIR)",
  },
  install_variables = {
    PREFIX = "$(PREFIX)",
    LIBDIR = "$(LIBDIR)",
    LUADIR = "$(LUADIR)",
    BINDIR = "$(BINDIR)",
    MANDIR = "$(PREFIX)/share/man",   -- par.1, in the rock's own tree
  },
}
-- busted comes from Debian's lua-busted, not from a rock (none is reachable
-- offline), so the test command calls it directly.
test = {
  type = "command",
  command = "make test",
}
