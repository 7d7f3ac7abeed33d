/*
** decode_fuzz.c: libFuzzer target for par's decoder (src/codec.c).
**
** Each input is decoded in a fresh lua_State.  A value that decodes must
** encode again, that encoding must decode, and the two decoded values must
** be the same graph: same subtypes, float bits and sharing.  A failed
** decode must push nothing.  The input is also decoded as a frame of
** results (codec_decode_into), which must store no more values than it
** may, leave the stack as it was, and agree with codec_decode on the
** first value.  Any broken promise aborts.
**
**   clang -g -O1 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
**     -I/usr/include/lua5.4 \
**     fuzz/decode_fuzz.c src/codec.c src/buf.c -llua5.4 -o build/fuzz/decode_fuzz
**   build/fuzz/decode_fuzz -max_total_time=60 NEWDIR fuzz/corpus   (or: make fuzz)
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lua.h>
#include <lauxlib.h>

#include "../src/codec.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

typedef struct Input {
  const char *p;
  size_t n;
} Input;

static void check (int ok, const char *what) {
  if (!ok) {
    fprintf(stderr, "decode_fuzz: %s\n", what);
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

/* Entries of 'a' under non-table keys must match in 'b'; table keys can't
** be looked up in the copy, so only their number is compared. */
static int same_entries (lua_State *L, int a, int b, int map) {
  long na = 0, nb = 0, ta = 0, tb = 0;
  int ok = 1;
  lua_pushnil(L);
  while (ok && lua_next(L, a)) {
    int k = lua_gettop(L) - 1;
    na++;
    if (lua_type(L, k) == LUA_TTABLE) ta++;
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
    tb += lua_type(L, -2) == LUA_TTABLE;
    lua_pop(L, 1);
  }
  return na == nb && ta == tb;
}

static int same_table (lua_State *L, int a, int b, int map) {
  lua_pushvalue(L, a);
  if (lua_rawget(L, map) != LUA_TNIL) {   /* met before: must map to b */
    int ok = lua_rawequal(L, -1, b);
    lua_pop(L, 1);
    return ok;
  }
  lua_pop(L, 1);
  lua_pushvalue(L, a);
  lua_pushvalue(L, b);
  lua_rawset(L, map);
  return same_entries(L, a, b, map);
}

static int same (lua_State *L, int a, int b, int map) {
  luaL_checkstack(L, 8, "same");
  if (lua_type(L, a) != lua_type(L, b)) return 0;
  switch (lua_type(L, a)) {
    case LUA_TNUMBER: return same_number(L, a, b);
    case LUA_TTABLE: return same_table(L, a, b, map);
    default: return lua_rawequal(L, a, b);
  }
}

static void encode (lua_State *L, int idx, Buf *b) {
  char err[256];
  int top = lua_gettop(L);
  check(codec_encode(L, idx, b, "value", err, sizeof err) == 0,
        "a decoded value does not encode");
  check(lua_gettop(L) == top, "encode unbalanced the stack");
}

static void roundtrip (lua_State *L, int base) {
  Buf e1 = BUF_INIT, e2 = BUF_INIT;
  char err[128];
  size_t used;
  encode(L, base + 1, &e1);
  check(codec_decode(L, e1.data, e1.len, &used, err, sizeof err) == 0,
        "a re-encoding does not decode");
  check(used == e1.len && lua_gettop(L) == base + 2, "bad re-decode");
  encode(L, base + 2, &e2);
  lua_newtable(L);
  check(same(L, base + 1, base + 2, base + 3), "re-decoded value differs");
  if (lua_type(L, base + 1) != LUA_TTABLE)   /* no order to vary */
    check(e1.len == e2.len && memcmp(e1.data, e2.data, e1.len) == 0,
          "re-encodings differ");
  buf_free(&e1);
  buf_free(&e2);
}

#define RUN_MAX 16

/* 'first': stack index of codec_decode's value, or 0 if it failed. */
static void run_into (lua_State *L, Input *in, int first) {
  char err[128];
  int t = lua_gettop(L) + 1;
  lua_Integer k;
  lua_newtable(L);
  err[0] = '\0';
  k = codec_decode_into(L, t, 1, RUN_MAX, in->p, in->n, err, sizeof err);
  check(lua_gettop(L) == t, "decode_into unbalanced the stack");
  check(k >= -1 && k <= RUN_MAX, "decode_into: bad count");
  if (k < 0) check(err[0] != '\0', "a failed decode_into gave no message");
  check(k <= 0 || first != 0, "decode_into took what decode refused");
  if (k > 0) {
    lua_rawgeti(L, t, 1);
    lua_newtable(L);
    check(same(L, first, t + 1, t + 2), "decode_into's first value differs");
  }
  lua_settop(L, t - 1);
}

/* Runs under lua_pcall: a memory error raises rather than panics. */
static int run (lua_State *L) {
  Input *in = (Input *)lua_touserdata(L, 1);
  char err[128];
  size_t used = 0;
  int base = lua_gettop(L);
  err[0] = '\0';
  if (codec_decode(L, in->p, in->n, &used, err, sizeof err) != 0) {
    check(lua_gettop(L) == base, "a failed decode pushed something");
    check(err[0] != '\0', "a failed decode gave no message");
    run_into(L, in, 0);
    return 0;
  }
  check(lua_gettop(L) == base + 1 && used >= 1 && used <= in->n,
        "bad decode result");
  run_into(L, in, base + 1);
  roundtrip(L, base);
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
