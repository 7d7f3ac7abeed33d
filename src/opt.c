/*
** opt.c: reading a checked options table, with par/util.lua's messages
** (see opt.h).
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "opt.h"

int opt_error (lua_State *L, int idx, const char *k, const char *msg) {
  return luaL_argerror(L, idx, lua_pushfstring(L, "option '%s': %s", k, msg));
}

/* The value at idx as the Lua layer shows a bad one (util.shown): a
** string in quotes, NUL bytes as \0 (a message stops at a NUL), else the
** name of its type. */
const char *opt_shown (lua_State *L, int idx) {
  luaL_Buffer b;
  size_t len, i;
  const char *s;
  if (lua_type(L, idx) != LUA_TSTRING) return luaL_typename(L, idx);
  s = lua_tolstring(L, idx, &len);
  luaL_buffinit(L, &b);
  luaL_addchar(&b, '\'');
  for (i = 0; i < len; i++) {
    if (s[i] == '\0') luaL_addstring(&b, "\\0");
    else luaL_addchar(&b, s[i]);
  }
  luaL_addchar(&b, '\'');
  luaL_pushresult(&b);
  return lua_tostring(L, -1);
}

/* opts[k], which must be nil or of type t; returns its type. */
int opt_field (lua_State *L, int idx, const char *k, int t) {
  int got = lua_getfield(L, idx, k);
  if (got != LUA_TNIL && got != t)
    opt_error(L, idx, k, lua_pushfstring(L, "%s expected, got %s", lua_typename(L, t),
                                   luaL_typename(L, -1)));
  return got;
}

/* A finite number >= 0, or > 0 if 'positive'; 'def' if nil. */
double opt_num (lua_State *L, int idx, const char *k, double def,
                int positive) {
  double v = def;
  if (opt_field(L, idx, k, LUA_TNUMBER) == LUA_TNUMBER) {
    v = lua_tonumber(L, -1);
    if (!(positive ? v > 0 : v >= 0) || v == HUGE_VAL)
      opt_error(L, idx, k, lua_pushfstring(L, "must be a finite number %s 0, got %s",
                                     positive ? ">" : ">=", luaL_tolstring(L, -1, NULL)));
  }
  lua_pop(L, 1);
  return v;
}

/* An integer >= min, clamped to 'max'; 'def' if nil. */
lua_Integer opt_int (lua_State *L, int idx, const char *k, lua_Integer def,
                     lua_Integer min, lua_Integer max) {
  lua_Integer v = def;
  int t = lua_getfield(L, idx, k);
  if (t != LUA_TNIL && t != LUA_TNUMBER)
    opt_error(L, idx, k, lua_pushfstring(L, "integer expected, got %s", luaL_typename(L, -1)));
  if (t == LUA_TNUMBER) {
    int isint;
    v = lua_tointegerx(L, -1, &isint);       /* 2.0 is 2, as luaL_checkinteger says */
    if (!isint)
      opt_error(L, idx, k, "number has no integer representation");
    if (v < min)
      opt_error(L, idx, k, lua_pushfstring(L, "must be >= %I, got %I", (LUAI_UACINT)min,
                                     (LUAI_UACINT)v));
    if (v > max) v = max;
  }
  lua_pop(L, 1);
  return v;
}

int opt_flag (lua_State *L, int idx, const char *k, int def) {
  int v = def;
  if (opt_field(L, idx, k, LUA_TBOOLEAN) == LUA_TBOOLEAN)
    v = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

/* A copy of opts[k], or NULL if nil; 'text' refuses NUL bytes (a path). */
char *opt_str (lua_State *L, int idx, const char *k, size_t *len, int text) {
  char *p = NULL;
  if (opt_field(L, idx, k, LUA_TSTRING) == LUA_TSTRING) {
    const char *s = lua_tolstring(L, -1, len);
    if (text && strlen(s) != *len) opt_error(L, idx, k, "string contains a NUL byte");
    if ((p = malloc(*len + 1)) == NULL) par_nomem(L);
    memcpy(p, s, *len + 1);
  }
  lua_pop(L, 1);
  return p;
}

int opt_word (lua_State *L, int idx, const char *k, const char *const words[],
              int def) {
  int m = def;
  if (lua_getfield(L, idx, k) != LUA_TNIL) {
    const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    for (m = 0; words[m] != NULL && (s == NULL || strcmp(s, words[m]) != 0); m++) ;
    if (words[m] == NULL) {             /* "expected one of a, b, got 'c'" */
      luaL_Buffer b;
      int w;
      luaL_buffinit(L, &b);
      luaL_addstring(&b, "expected one of ");
      for (w = 0; words[w] != NULL; w++) {
        luaL_addstring(&b, words[w]);
        luaL_addstring(&b, ", ");
      }
      luaL_addstring(&b, "got ");
      luaL_pushresult(&b);
      w = lua_gettop(L);
      opt_error(L, idx, k, lua_pushfstring(L, "%s%s", lua_tostring(L, w), opt_shown(L, w - 1)));
    }
  }
  lua_pop(L, 1);
  return m;
}

void opt_func (lua_State *L, int idx, const char *k) {
  int t = lua_getfield(L, idx, k);
  if (t != LUA_TNIL && t != LUA_TFUNCTION)
    opt_error(L, idx, k, lua_pushfstring(L, "function expected, got %s", luaL_typename(L, -1)));
}
