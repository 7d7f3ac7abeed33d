/*
** noenv.c: for `make tsan` only.  The ThreadSanitizer runtime is preloaded
** into lua5.4; the shells and tools the specs spawn must not inherit it
** (dash crashes under it).  Loaded by spec/support/sanitizer.lua.
*/
#include <stdlib.h>
#include <lua.h>

int luaopen_noenv (lua_State *L);

int luaopen_noenv (lua_State *L) {
  (void)L;
  unsetenv("LD_PRELOAD");
  return 0;
}
