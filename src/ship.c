/*
** ship.c: values for par.pool's workers (see ship.h).  The format and the
** encoder are codec.c's (CodecExt); this file keeps what depends on the
** state around them: the path map (value -> the path it travels as), and
** resolving paths on arrival.
**
** The path map is built from package.loaded: each module under its name,
** and the fields of each module table, one level deep, under
** "module.field".  Of the globals table's fields only what cannot be
** copied (C functions, userdata) counts: a global table or Lua function the
** script made is sent as itself, since the worker's globals may not have
** it.  A value with several paths takes the best: a module's own name, then
** a module's field, then a global's ("string" before "_G.string"), then
** the shorter, then the smaller in byte order, so that the choice does not
** depend on the order of lua_next.  The map lives in the registry with
** weak keys, and is built again when package.loaded gains, loses or
** replaces a module: a fingerprint of it is checked before a function or
** userdata that the map lacks is sent as bytecode or refused (once an
** encoding).  A hit costs no check, nor does a table: a module loaded since
** the last check whose table is sent alone is copied.
*/
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "par.h"
#include "codec.h"
#include "ship.h"

/* Its address keys the path map in the registry (never written). */
static const char ship_key = 'p';

/* In the path map beside the values: package.loaded when it was built,
** its fingerprint then, and the value -> "module.field" table. */
enum { MAP_LOADED = 1, MAP_PRINT, MAP_NAMES };

#define G_CLASS '2'     /* rank of the globals' fields: the last */


/*
** {======================================================
** The path map
** =======================================================
*/

static int is_name (const char *s, size_t len) {
  static const char word[] = "_abcdefghijklmnopqrstuvwxyz"
                             "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  return len > 0 && !(s[0] >= '0' && s[0] <= '9') && strspn(s, word) == len;
}

/* Values that can have a path: the rest are copied wherever they are. */
static int is_ref (int type) {
  return type == LUA_TTABLE || type == LUA_TFUNCTION ||
         type == LUA_TUSERDATA || type == LUA_TTHREAD ||
         type == LUA_TLIGHTUSERDATA;
}

static int is_globals (lua_State *L, int idx) {
  int r;
  idx = lua_absindex(L, idx);
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
  r = lua_rawequal(L, idx, -1);
  lua_pop(L, 1);
  return r;
}

/* Whether rank a ("0string") beats rank b: class, then length, then bytes. */
static int better (const char *a, size_t alen, const char *b, size_t blen) {
  if (a[0] != b[0]) return a[0] < b[0];
  if (alen != blen) return alen < blen;
  return memcmp(a, b, alen) < 0;
}

/* While building: rank[v] = class digit .. "module.field", and
** modlen[v] = the module's length in it. */
typedef struct Build {
  lua_State *L;
  int rank, modlen;
} Build;

/* Offer the value at v the path mod.field (field NULL: the module). */
static void offer (Build *bd, int v, char class, const char *mod,
                   const char *field) {
  lua_State *L = bd->L;
  size_t len;
  const char *s, *old;
  size_t oldlen;
  if (is_globals(L, v)) return;       /* it has a tag of its own */
  if (field != NULL)
    s = lua_pushfstring(L, "%c%s.%s", class, mod, field);
  else
    s = lua_pushfstring(L, "%c%s", class, mod);
  len = lua_rawlen(L, -1);
  lua_pushvalue(L, v);
  if (lua_rawget(L, bd->rank) == LUA_TSTRING) {
    old = lua_tolstring(L, -1, &oldlen);
    if (!better(s, len, old, oldlen)) {
      lua_pop(L, 2);
      return;
    }
  }
  lua_pop(L, 1);
  lua_pushvalue(L, v);
  lua_insert(L, -2);
  lua_rawset(L, bd->rank);            /* rank[v] = s */
  lua_pushvalue(L, v);
  lua_pushinteger(L, (lua_Integer)strlen(mod));
  lua_rawset(L, bd->modlen);
}

/* The fields of module table t, named 'mod'. */
static void offer_fields (Build *bd, int t, const char *mod, int globals) {
  lua_State *L = bd->L;
  size_t len;
  lua_pushnil(L);
  while (lua_next(L, t)) {
    int type = lua_type(L, -1);
    if (lua_type(L, -2) == LUA_TSTRING && is_ref(type) &&
        (!globals || lua_iscfunction(L, -1) || type == LUA_TUSERDATA ||
         type == LUA_TLIGHTUSERDATA)) {
      const char *k = lua_tolstring(L, -2, &len);
      if (is_name(k, len))
        offer(bd, lua_gettop(L), globals ? G_CLASS : '1', mod, k);
    }
    lua_pop(L, 1);
  }
}

/* A module name a path can hold: a string, with no '\0' to cut it short. */
static int is_modname (lua_State *L, int k) {
  return lua_type(L, k) == LUA_TSTRING &&
         strlen(lua_tostring(L, k)) == lua_rawlen(L, k);
}

/* Offers every path in package.loaded (at 'loaded'). */
static void offer_all (Build *bd, int loaded) {
  lua_State *L = bd->L;
  luaL_checkstack(L, 8, "par.ship");
  lua_pushnil(L);
  while (lua_next(L, loaded)) {
    if (is_modname(L, -2) && is_ref(lua_type(L, -1)))
      offer(bd, lua_gettop(L), '0', lua_tostring(L, -2), NULL);
    lua_pop(L, 1);
  }
  lua_pushnil(L);
  while (lua_next(L, loaded)) {
    if (is_modname(L, -2) && lua_type(L, -1) == LUA_TTABLE)
      offer_fields(bd, lua_gettop(L), lua_tostring(L, -2),
                   is_globals(L, -1));
    lua_pop(L, 1);
  }
}

/* map[v] = the bytes to send, names[v] = "module.field", for each v ranked. */
static void fill_map (Build *bd, int map, int names) {
  lua_State *L = bd->L;
  lua_pushnil(L);
  while (lua_next(L, bd->rank)) {     /* v, rank */
    size_t len, modlen;
    const char *s = lua_tolstring(L, -1, &len);
    lua_pushvalue(L, -2);
    lua_rawget(L, bd->modlen);
    modlen = (size_t)lua_tointeger(L, -1);
    lua_pop(L, 1);
    lua_pushvalue(L, -2);
    if (modlen + 1 < len)
      codec_pushpath(L, s + 1, modlen, s + 2 + modlen, len - 2 - modlen);
    else
      codec_pushpath(L, s + 1, modlen, "", 0);
    lua_rawset(L, map);
    lua_pushvalue(L, -2);
    lua_pushlstring(L, s + 1, len - 1);
    lua_rawset(L, names);
    lua_pop(L, 1);
  }
}

static uint64_t mix (const void *p) {
  uint64_t u = (uint64_t)(uintptr_t)p;
  u ^= u >> 31;
  u *= UINT64_C(0x9e3779b97f4a7c15);
  return u ^ (u >> 29);
}

/* A fingerprint of package.loaded at t: its names and their values, as
** the sum of a mix of each pair (a sum, so lua_next's order does not
** matter).  A count alone misses a module unloaded and another loaded
** since; a pointer reused for another string can only cause a rebuild. */
static lua_Integer fingerprint (lua_State *L, int t) {
  uint64_t h = 0;
  lua_pushnil(L);
  while (lua_next(L, t)) {
    h += mix(lua_topointer(L, -2)) ^ (mix(lua_topointer(L, -1)) << 1);
    h += 1;
    lua_pop(L, 1);
  }
  return (lua_Integer)(h & (uint64_t)LUA_MAXINTEGER);
}

static void set_weak (lua_State *L) {
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
}

/* Build the path map, store it in the registry and push it. */
static void paths_build (lua_State *L) {
  Build bd;
  int top = lua_gettop(L), loaded, map;
  luaL_checkstack(L, 12, "par.ship");
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  loaded = top + 1;
  lua_newtable(L);
  lua_newtable(L);
  bd.L = L;
  bd.rank = top + 2;
  bd.modlen = top + 3;
  offer_all(&bd, loaded);
  lua_createtable(L, 3, 64);
  map = lua_gettop(L);
  set_weak(L);
  lua_newtable(L);
  set_weak(L);
  fill_map(&bd, map, map + 1);
  lua_rawseti(L, map, MAP_NAMES);
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
  codec_pushpath(L, NULL, 0, NULL, 0);
  lua_rawset(L, map);
  lua_pushvalue(L, loaded);
  lua_rawseti(L, map, MAP_LOADED);
  lua_pushinteger(L, fingerprint(L, loaded));
  lua_rawseti(L, map, MAP_PRINT);
  lua_pushvalue(L, map);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &ship_key);
  lua_replace(L, top + 1);
  lua_settop(L, top + 1);
}

/* Whether the map at 'map' was built from package.loaded as it is now: the
** same table, with the same fingerprint.  (A field that a module changed
** goes unseen: its old value keeps its path, and the new value is copied
** or refused until package.loaded itself changes.) */
static int paths_current (lua_State *L, int map) {
  int ok;
  luaL_checkstack(L, 4, "par.ship");
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_rawgeti(L, map, MAP_LOADED);
  ok = lua_rawequal(L, -1, -2);
  lua_pop(L, 1);
  if (ok) {
    lua_rawgeti(L, map, MAP_PRINT);
    ok = lua_tointeger(L, -1) == fingerprint(L, lua_gettop(L) - 1);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return ok;
}

/* Push the path map, built if there is none yet (CodecExt.pushpaths). */
static void paths_push (lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &ship_key) != LUA_TTABLE) {
    lua_pop(L, 1);
    paths_build(L);
  }
}

/* CodecExt.fresh */
static int paths_fresh (lua_State *L, int paths) {
  if (paths_current(L, paths)) return 0;
  paths_build(L);
  lua_replace(L, paths);
  return 1;
}

/* names[v] pushed, or nothing and 0. */
static int paths_name (lua_State *L, int map, int idx) {
  lua_rawgeti(L, map, MAP_NAMES);
  lua_pushvalue(L, idx);
  if (lua_rawget(L, -2) == LUA_TSTRING) {
    lua_remove(L, -2);
    return 1;
  }
  lua_pop(L, 2);
  return 0;
}

/* Made current only on a miss, as the encoder does (see codec.c). */
int ship_path (lua_State *L, int idx) {
  int map, r;
  idx = lua_absindex(L, idx);
  if (!is_ref(lua_type(L, idx))) return 0;
  paths_push(L);
  map = lua_gettop(L);
  r = paths_name(L, map, idx);
  if (r == 0 && paths_fresh(L, map)) r = paths_name(L, map, idx);
  lua_remove(L, map);
  return r;
}

/* }====================================================== */


/*
** {======================================================
** Resolving paths, in the worker
** =======================================================
*/

/* resolve(mod, field): require(mod) if package.loaded has no such name,
** then its field (field "" for the module), through lua_getfield, since a
** module's fields may be made on demand.  Raises the reason it cannot. */
static int resolve_slow (lua_State *L) {
  const char *mod = lua_tostring(L, 1), *field = lua_tostring(L, 2);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  if (lua_getfield(L, 3, mod) == LUA_TNIL) {
    lua_pop(L, 1);
    if (lua_getglobal(L, "require") != LUA_TFUNCTION)
      return luaL_error(L, "no function 'require'");
    lua_pushvalue(L, 1);
    lua_call(L, 1, 1);
  }
  if (field[0] == '\0') return 1;
  if (lua_type(L, -1) != LUA_TTABLE)
    return luaL_error(L, "module '%s' is a %s, not a table", mod,
                      luaL_typename(L, -1));
  if (lua_getfield(L, -1, field) == LUA_TNIL)
    return luaL_error(L, "module '%s' has no field '%s'", mod, field);
  return 1;
}

/* The common case without a protected call: the module is loaded and its
** field is there, raw. */
static int resolve_fast (lua_State *L, const char *mod, size_t modlen,
                         const char *field, size_t fieldlen) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_pushlstring(L, mod, modlen);
  if (lua_rawget(L, -2) == LUA_TNIL) {
    lua_pop(L, 2);
    return 0;
  }
  if (fieldlen > 0) {
    if (lua_type(L, -1) != LUA_TTABLE) {
      lua_pop(L, 2);
      return 0;
    }
    lua_pushlstring(L, field, fieldlen);
    if (lua_rawget(L, -2) == LUA_TNIL) {
      lua_pop(L, 3);
      return 0;
    }
    lua_remove(L, -2);
  }
  lua_remove(L, -2);
  return 1;
}

/* CodecExt.resolve */
static int ship_resolve (lua_State *L, const char *mod, size_t modlen,
                         const char *field, size_t fieldlen, char *err,
                         size_t errsz) {
  if (!lua_checkstack(L, 6)) {
    snprintf(err, errsz, "stack overflow");
    return -1;
  }
  if (memchr(mod, '\0', modlen) != NULL ||
      memchr(field, '\0', fieldlen) != NULL) {
    snprintf(err, errsz, "bad path");
    return -1;
  }
  if (resolve_fast(L, mod, modlen, field, fieldlen)) return 0;
  lua_pushcfunction(L, resolve_slow);
  lua_pushlstring(L, mod, modlen);
  lua_pushlstring(L, field, fieldlen);
  if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
    snprintf(err, errsz, "cannot resolve '%.*s%s%.*s' in the worker: %s",
             (int)modlen, mod, fieldlen > 0 ? "." : "", (int)fieldlen, field,
             lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "error");
    lua_pop(L, 1);
    return -1;
  }
  return 0;
}

/* }====================================================== */


/*
** {======================================================
** The interface (ship.h)
** =======================================================
*/

static void ext_init (CodecExt *x, int funcs) {
  x->pushpaths = paths_push;
  x->fresh = paths_fresh;
  x->resolve = ship_resolve;
  x->funcs = funcs;
}

int ship_encode (lua_State *L, int idx, Buf *b, const char *root,
                 char *err, size_t errsz) {
  CodecExt x;
  ext_init(&x, 1);
  return codec_encode_ext(L, idx, b, root, err, errsz, &x);
}

int ship_decode (lua_State *L, const char *p, size_t n, size_t *used,
                 char *err, size_t errsz) {
  CodecExt x;
  ext_init(&x, 1);
  return codec_decode_ext(L, p, n, used, err, errsz, &x);
}

int ship_decode_nofuncs (lua_State *L, const char *p, size_t n,
                         size_t *used, char *err, size_t errsz) {
  CodecExt x;
  ext_init(&x, 0);
  return codec_decode_ext(L, p, n, used, err, errsz, &x);
}

int ship_dump (lua_State *L, int idx, Buf *b, char *err, size_t errsz) {
  if (lua_type(L, idx) != LUA_TFUNCTION || lua_iscfunction(L, idx)) {
    snprintf(err, errsz, "cannot send fn (a %s)",
             lua_type(L, idx) == LUA_TFUNCTION ? "C function"
                                               : luaL_typename(L, idx));
    return -1;
  }
  if (codec_dump(L, idx, b) != 0) {
    snprintf(err, errsz, "not enough memory");
    return -1;
  }
  return 0;
}

int ship_load (lua_State *L, const char *p, size_t n, char *err,
               size_t errsz) {
  return codec_load(L, p, n, err, errsz);
}

int ship_upvalues (lua_State *L, int idx, Buf *b, const char *root,
                   char *err, size_t errsz) {
  CodecExt x;
  ext_init(&x, 1);
  return codec_upvalues(L, idx, b, root, err, errsz, &x);
}

int ship_setupvalues (lua_State *L, int idx, const char *p, size_t n,
                      char *err, size_t errsz) {
  CodecExt x;
  ext_init(&x, 1);
  return codec_setupvalues(L, idx, p, n, err, errsz, &x);
}

/* }====================================================== */


/*
** {======================================================
** Lua functions, for the specs: each returns its value, or nil and the
** message (no raise, so a spec can assert the message)
** =======================================================
*/

typedef int (*ShipFn) (lua_State *L, int idx, Buf *b, const char *root,
                       char *err, size_t errsz);

static int push_buf (lua_State *L, int r, Buf *b, const char *err) {
  if (r != 0) {
    buf_free(b);
    luaL_pushfail(L);
    lua_pushstring(L, err);
    return 2;
  }
  lua_pushlstring(L, b->data, b->len);
  buf_free(b);
  return 1;
}

static int ship_call (lua_State *L, ShipFn fn, const char *deflt) {
  const char *root = luaL_optstring(L, 2, deflt);
  char err[512];
  Buf *b;
  luaL_checkany(L, 1);
  b = codec_newbuf(L);
  return push_buf(L, fn(L, 1, b, root, err, sizeof err), b, err);
}

static int fail (lua_State *L, const char *err) {
  luaL_pushfail(L);
  lua_pushstring(L, err);
  return 2;
}

/* core.ship(v [, root]) -> string | nil, err */
static int ship_lship (lua_State *L) {
  return ship_call(L, ship_encode, "value");
}

/* core.unship(s) -> v | nil, err */
static int ship_lunship (lua_State *L) {
  size_t n, used;
  char err[512];
  const char *s = luaL_checklstring(L, 1, &n);
  if (ship_decode(L, s, n, &used, err, sizeof err) != 0) return fail(L, err);
  if (used != n) return fail(L, "trailing garbage");
  return 1;
}

/* core.ship_upvalues(f [, root]) -> string | nil, err */
static int ship_lupvalues (lua_State *L) {
  return ship_call(L, ship_upvalues, "fn");
}

/* core.ship_setupvalues(f, s) -> true | nil, err */
static int ship_lsetupvalues (lua_State *L) {
  size_t n;
  char err[512];
  const char *s = luaL_checklstring(L, 2, &n);
  luaL_checktype(L, 1, LUA_TFUNCTION);
  if (ship_setupvalues(L, 1, s, n, err, sizeof err) != 0) return fail(L, err);
  lua_pushboolean(L, 1);
  return 1;
}

/* core.ship_dump(f) -> bytecode | nil, err */
static int ship_ldump (lua_State *L) {
  char err[512];
  Buf *b;
  luaL_checkany(L, 1);
  b = codec_newbuf(L);
  return push_buf(L, ship_dump(L, 1, b, err, sizeof err), b, err);
}

/* core.ship_load(bytecode) -> f | nil, err */
static int ship_lload (lua_State *L) {
  size_t n;
  char err[512];
  const char *s = luaL_checklstring(L, 1, &n);
  if (ship_load(L, s, n, err, sizeof err) != 0) return fail(L, err);
  return 1;
}

/* core.ship_path(v) -> "module.field" | nil */
static int ship_lpath (lua_State *L) {
  luaL_checkany(L, 1);
  if (!ship_path(L, 1)) luaL_pushfail(L);
  return 1;
}

static const luaL_Reg ship_funcs[] = {
  {"ship", ship_lship},
  {"unship", ship_lunship},
  {"ship_upvalues", ship_lupvalues},
  {"ship_setupvalues", ship_lsetupvalues},
  {"ship_dump", ship_ldump},
  {"ship_load", ship_lload},
  {"ship_path", ship_lpath},
  {NULL, NULL}
};

void ship_open (lua_State *L) {
  luaL_setfuncs(L, ship_funcs, 0);
}

/* }====================================================== */
