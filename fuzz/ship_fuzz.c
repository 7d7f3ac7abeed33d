/*
** ship_fuzz.c: libFuzzer target for ship's decoder (src/ship.c on
** src/codec.c): paths into package.loaded, the globals tag, back-references
** and upvalue blocks with joins.  Never bytecode: lua_load must only see
** the parent's bytes, so values are decoded by ship_decode_nofuncs, which
** refuses the function tag, and upvalue blocks go onto a closure compiled
** here from source.
**
** The first byte chooses: even, the rest is one value; odd, the rest is an
** upvalue block for  local a, b, c; return function() return a, b, c end.
** Each input runs in a fresh lua_State with the standard libraries, and
** with package.path and package.cpath empty, so that a path's require
** finds nothing on disk.
**
** Promises checked (any broken one aborts): a failed decode pushes nothing
** and says why; a value that decodes encodes again with ship_encode (every
** value a path resolves to has a path), and that decodes to the same graph
** (same subtypes, float bits, sharing; the same objects for paths); an
** upvalue block that sets leaves the stack as it was, and the upvalues
** encoded again set a second copy of the closure to the same values.
**
**   make fuzz-ship      (build/fuzz/ship_fuzz, seeds in fuzz/ship_corpus)
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#include "../src/ship.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

typedef struct Input {
  const char *p;
  size_t n;
} Input;

static void check (int ok, const char *what) {
  if (!ok) {
    fprintf(stderr, "ship_fuzz: %s\n", what);
    abort();
  }
}

static int same (lua_State *L, int a, int b, int map);

static int same_number (lua_State *L, int a, int b) {
  lua_Number x, y;
  if (lua_isinteger(L, a) != lua_isinteger(L, b)) return 0;
  if (lua_isinteger(L, a)) return lua_tointeger(L, a) == lua_tointeger(L, b);
  x = lua_tonumber(L, a);
  y = lua_tonumber(L, b);
  return memcmp(&x, &y, sizeof x) == 0;
}

/* A table or function key can't be looked up in a copy, where the copy is
** another object: these are counted, and looked up under their copy when
** the map has met them already.  Entries of 'a' under other keys must
** match in 'b'. */
static int is_object (int type) {
  return type == LUA_TTABLE || type == LUA_TFUNCTION;
}

static int same_entries (lua_State *L, int a, int b, int map) {
  long na = 0, nb = 0, ta = 0, tb = 0;
  int ok = 1;
  lua_pushnil(L);
  while (ok && lua_next(L, a)) {
    int k = lua_gettop(L) - 1;
    na++;
    if (is_object(lua_type(L, k))) {
      ta++;
      lua_pushvalue(L, k);
      if (lua_rawget(L, map) != LUA_TNIL) {   /* the key's copy */
        lua_rawget(L, b);
        ok = same(L, k + 1, k + 2, map);
      }
      lua_pop(L, 1);
    }
    else {
      lua_pushvalue(L, k);
      lua_rawget(L, b);
      ok = same(L, k + 1, k + 2, map);
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  if (!ok) {
    lua_pop(L, 1);              /* the key left by the break */
    return 0;
  }
  lua_pushnil(L);
  while (lua_next(L, b)) {
    nb++;
    tb += is_object(lua_type(L, -2));
    lua_pop(L, 1);
  }
  return na == nb && ta == tb;
}

/* A table met before must map to the same copy; one of the state's own
** (a path's, the globals) must be that very table. */
static int same_table (lua_State *L, int a, int b, int map) {
  lua_pushvalue(L, a);
  if (lua_rawget(L, map) != LUA_TNIL) {
    int ok = lua_rawequal(L, -1, b);
    lua_pop(L, 1);
    return ok;
  }
  lua_pop(L, 1);
  lua_pushvalue(L, a);
  lua_pushvalue(L, b);
  lua_rawset(L, map);
  if (lua_rawequal(L, a, b)) return 1;
  return same_entries(L, a, b, map);
}

/* The closure of run_upvalues maps to its copy, and may be an upvalue of
** itself: a function the map holds must be its copy there. */
static int same_function (lua_State *L, int a, int b, int map) {
  int ok;
  lua_pushvalue(L, a);
  if (lua_rawget(L, map) == LUA_TNIL) ok = lua_rawequal(L, a, b);
  else ok = lua_rawequal(L, -1, b);
  lua_pop(L, 1);
  return ok;
}

static int same (lua_State *L, int a, int b, int map) {
  luaL_checkstack(L, 8, "same");
  if (lua_type(L, a) != lua_type(L, b)) return 0;
  switch (lua_type(L, a)) {
    case LUA_TNUMBER: return same_number(L, a, b);
    case LUA_TTABLE: return same_table(L, a, b, map);
    case LUA_TFUNCTION: return same_function(L, a, b, map);
    default: return lua_rawequal(L, a, b);
  }
}

static void decoded (lua_State *L, int v) {
  Buf b = BUF_INIT;
  char err[512];
  size_t used;
  int top = lua_gettop(L);
  if (ship_encode(L, v, &b, "value", err, sizeof err) != 0) {
    fprintf(stderr, "ship_fuzz: %s\n", err);
    check(0, "a decoded value does not encode");
  }
  check(lua_gettop(L) == top, "encode unbalanced the stack");
  check(ship_decode_nofuncs(L, b.data, b.len, &used, err, sizeof err) == 0,
        "a re-encoding does not decode");
  check(used == b.len && lua_gettop(L) == top + 1, "bad re-decode");
  lua_newtable(L);
  check(same(L, v, top + 1, top + 2), "re-decoded value differs");
  lua_settop(L, top);
  buf_free(&b);
}

static void run_value (lua_State *L, Input *in) {
  char err[512];
  size_t used = 0;
  int base = lua_gettop(L);
  err[0] = '\0';
  if (ship_decode_nofuncs(L, in->p, in->n, &used, err, sizeof err) != 0) {
    check(lua_gettop(L) == base, "a failed decode pushed something");
    check(err[0] != '\0', "a failed decode gave no message");
    return;
  }
  check(lua_gettop(L) == base + 1 && used >= 1 && used <= in->n,
        "bad decode result");
  decoded(L, base + 1);
}

static void newclosure (lua_State *L) {
  check(luaL_loadstring(L, "local a, b, c; return function() "
                           "return a, b, c end") == LUA_OK &&
        lua_pcall(L, 0, 1, 0) == LUA_OK, "cannot make the closure");
}

static void run_upvalues (lua_State *L, Input *in) {
  Buf b = BUF_INIT;
  char err[512];
  int base = lua_gettop(L), f = base + 1, g = base + 2, i;
  newclosure(L);
  err[0] = '\0';
  if (ship_setupvalues(L, f, in->p, in->n, err, sizeof err) != 0) {
    check(lua_gettop(L) == f, "a failed setupvalues unbalanced the stack");
    check(err[0] != '\0', "a failed setupvalues gave no message");
    return;
  }
  check(lua_gettop(L) == f, "setupvalues unbalanced the stack");
  if (ship_upvalues(L, f, &b, "fn", err, sizeof err) != 0) {
    fprintf(stderr, "ship_fuzz: %s\n", err);
    check(0, "set upvalues do not encode");
  }
  newclosure(L);
  check(ship_setupvalues(L, g, b.data, b.len, err, sizeof err) == 0,
        "re-encoded upvalues do not set");
  buf_free(&b);
  lua_newtable(L);              /* one map for all three: sharing */
  lua_pushvalue(L, f);
  lua_pushvalue(L, g);
  lua_rawset(L, g + 1);
  for (i = 1; i <= 3; i++) {
    lua_getupvalue(L, f, i);
    lua_getupvalue(L, g, i);
    check(same(L, g + 2, g + 3, g + 1), "re-set upvalue differs");
    lua_settop(L, g + 1);
  }
}

/* Runs under lua_pcall: a memory error raises rather than panics. */
static int run (lua_State *L) {
  Input *in = (Input *)lua_touserdata(L, 1);
  Input rest;
  luaL_openlibs(L);
  lua_getglobal(L, "package");
  lua_pushliteral(L, "");
  lua_setfield(L, -2, "path");
  lua_pushliteral(L, "");
  lua_setfield(L, -2, "cpath");
  lua_pop(L, 1);
  if (in->n == 0) return 0;
  rest.p = in->p + 1;
  rest.n = in->n - 1;
  if (in->p[0] & 1) run_upvalues(L, &rest);
  else run_value(L, &rest);
  return 0;
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size) {
  Input in;
  lua_State *L = luaL_newstate();
  if (L == NULL) return 0;
  in.p = (const char *)data;
  in.n = size;
  lua_pushcfunction(L, run);
  lua_pushlightuserdata(L, &in);
  lua_pcall(L, 1, 0, 0);
  lua_close(L);
  return 0;
}
