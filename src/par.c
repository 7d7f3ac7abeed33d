/*
** par.c: luaopen_par_core, the small core functions that belong to no
** other file (cpus, isatty, monotime, filetype), and the helpers the
** Lua-facing files share (par_rawlen).
*/
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "par.h"
#include "interrupt.h"
#include "sys.h"

/* core.cpus(): the CPUs this process may run on (sys_cpus), rather than
** the CPUs the machine has. */
static int par_cpus (lua_State *L) {
  lua_pushinteger(L, sys_cpus());
  return 1;
}

static void setversion (lua_State *L) {
  lua_pushliteral(L, PAR_VERSION);
  lua_setfield(L, -2, "VERSION");
}

/* core.isatty(fd): for the progress display, drawn only on a terminal. */
static int par_isatty (lua_State *L) {
  lua_pushboolean(L, isatty((int)luaL_checkinteger(L, 1)));
  return 1;
}

/* core.monotime(): seconds on the monotonic clock, for the progress display. */
static int par_monotime (lua_State *L) {
  lua_pushnumber(L, (lua_Number)sys_mono());
  return 1;
}

/* par reads tables raw: lua_rawlen and lua_rawgeti, no metamethods, so
** that what the Lua layer checked is what the core and the workers see.
** A list object with a metatable for its methods is read as it is; a
** proxy whose __len counts items it does not hold is a bad argument, never
** a silent empty list.  'what' labels the table in the message, or NULL. */
lua_Integer par_rawlen (lua_State *L, int idx, int arg, const char *what) {
  lua_Integer raw;
  idx = lua_absindex(L, idx);
  raw = (lua_Integer)lua_rawlen(L, idx);
  if (luaL_getmetafield(L, idx, "__len") == LUA_TNIL) return raw;
  lua_pop(L, 1);
  lua_len(L, idx);
  lua_pushinteger(L, raw);
  if (!lua_rawequal(L, -1, -2)) {
    const char *said = luaL_tolstring(L, -2, NULL);
    luaL_argerror(L, arg, lua_pushfstring(L, "%s%s__len says %s but the raw "
                  "length is %I; par reads tables raw, without metamethods",
                  what ? what : "", what ? ": " : "", said, (LUAI_UACINT)raw));
  }
  lua_pop(L, 2);
  return raw;
}

/* core.filetype(path): what path names, following symlinks ("file",
** "directory", "fifo", ...), or fail, msg, errno when stat fails (ENOENT:
** absent).  par.run checks its joblog with it before opening: opening a
** FIFO blocks, and a directory opens but cannot be read. */
static int par_filetype (lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  struct stat st;
  const char *kind = "other";
  if (stat(path, &st) != 0) {
    int en = errno;                 /* the Lua calls below may change errno */
    luaL_pushfail(L);
    lua_pushfstring(L, "%s: %s", path, strerror(en));
    lua_pushinteger(L, en);
    return 3;
  }
  if (S_ISREG(st.st_mode)) kind = "file";
  else if (S_ISDIR(st.st_mode)) kind = "directory";
  else if (S_ISFIFO(st.st_mode)) kind = "fifo";
  else if (S_ISSOCK(st.st_mode)) kind = "socket";
  else if (S_ISCHR(st.st_mode)) kind = "character device";
  else if (S_ISBLK(st.st_mode)) kind = "block device";
  lua_pushstring(L, kind);
  return 1;
}

/* core.newtable(narr [, nrec]): a table with room for so many: par.pool's
** results of a map (growing one by doubling rehashes it 20 times for a
** million items). */
static int par_newtable (lua_State *L) {
  lua_Integer na = luaL_checkinteger(L, 1), nh = luaL_optinteger(L, 2, 0);
  lua_createtable(L, na < 0 ? 0 : na > INT_MAX ? INT_MAX : (int)na,
                  nh < 0 ? 0 : nh > INT_MAX ? INT_MAX : (int)nh);
  return 1;
}

int luaopen_par_core (lua_State *L);

int luaopen_par_core (lua_State *L) {
  luaL_checkversion(L);
  lua_newtable(L);
  setversion(L);
  lua_pushcfunction(L, par_cpus);
  lua_setfield(L, -2, "cpus");
  lua_pushcfunction(L, par_monotime);
  lua_setfield(L, -2, "monotime");
  lua_pushcfunction(L, par_isatty);
  lua_setfield(L, -2, "isatty");
  lua_pushcfunction(L, par_filetype);
  lua_setfield(L, -2, "filetype");
  lua_pushcfunction(L, par_newtable);
  lua_setfield(L, -2, "newtable");
  run_open(L);
  pool_open(L);
  tasks_open(L);
  map_open(L);
  codec_open(L);
  ship_open(L);
  lines_open(L);
  intr_open(L);
  return 1;          /* no lua_setglobal: require's result is the API */
}
