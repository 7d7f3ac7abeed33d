/*
** par.h: what the Lua-facing files of par.core share.  The files that
** never touch a lua_State (run.c, spawn.c, buf.c, frame.c, sys.c, arena.c,
** live.c) include no Lua header.
*/
#ifndef PAR_H
#define PAR_H

#include <lua.h>
#include <lauxlib.h>

#define PAR_VERSION "0.1.0"

/* Each adds its functions to the module table at the top of the stack. */
void run_open (lua_State *L);       /* runner.c: runner */
void map_open (lua_State *L);       /* map.c: map, seqlen */
void codec_open (lua_State *L);     /* codec.c: encode, decode */
void pool_open (lua_State *L);      /* pool.c: none, the par.pool metatable */
void tasks_open (lua_State *L);     /* tasks.c: tasks (par.pool's core) */
void lines_open (lua_State *L);     /* lines.c: lines */
void ship_open (lua_State *L);      /* ship.c: ship, unship, ship_* */

/* par.c: #t at idx, read raw (as par reads every table); a __len that
** disagrees raises "bad argument #arg (what: __len says ...)". */
lua_Integer par_rawlen (lua_State *L, int idx, int arg, const char *what);

/* Raise "not enough memory" where a C allocation failed, as lauxlib does.
** A macro, as lauxlib's shorthands are: tools that follow luaL_error then
** know that it does not return. */
#define par_nomem(L)  luaL_error(L, "not enough memory")

#endif
