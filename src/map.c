/*
** map.c: core.map and core.seqlen, the Lua entry of par.map: the
** arguments and options, the results table, and the protected call that
** runs the pool (pool.c) and tears it down whatever way it ends.
**
** The caller forks workers that already hold, copy-on-write, its whole Lua
** state: fn, items and init travel for free.  Copy-on-write is the whole
** point, so neither side may write to the pages it shares without need
** (each first write is a fault and a copy): the workers keep to their own
** memory (worker.c), the caller holds its collector back (pool.c) and
** keeps the array of the results table out of the forks (results_new).
*/
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#include "par.h"
#include "opt.h"
#include "pool.h"
#include "sys.h"


/*
** {======================================================
** The results table
** =======================================================
*/

/*
** After a fork every page of the caller is write-protected, and the first
** write to each one faults (and copies it while a worker shares it).  A
** results table of a million items spans thousands of pages, and a fault
** can cost more than a tiny item does (bench/faults.c measures one on this
** machine; bench/map_bench.lua, case b, maps a million tiny items): filling
** it would cost more than computing it.  So the array part of the results table is marked
** MADV_DONTFORK: workers, which never read it, do not get it, and the
** caller's writes to it do not fault.  Lua does not say where the array
** is, so an allocator wrapper watches lua_createtable make it.
**
** The pages of the new array were most likely written before, and so
** write-protected by an earlier fork (an earlier map's): the wrapper drops
** them (MADV_DONTNEED) before Lua fills the array, and asks for huge
** pages in their place, so that filling it faults once per 2 MiB where it
** can, and not once per 4 KiB.
*/
typedef struct Spy {
  lua_Alloc f;
  void *ud;
  void *block;           /* the biggest block allocated while watching */
  size_t size;
} Spy;

#define BIG_BLOCK     64   /* pages: smaller blocks are left alone */

/* The whole pages strictly inside a block, away from the allocator's
** headers at either end; 0 if it is not big. */
static size_t block_inside (char *block, size_t size, char **start) {
  uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  uintptr_t a = ((uintptr_t)block + 64 + page - 1) & ~(page - 1);
  uintptr_t b = ((uintptr_t)block + size - 64) & ~(page - 1);
  if (size < BIG_BLOCK * page || b <= a) return 0;
  *start = (char *)a;
  return b - a;
}

static void *spy_alloc (void *ud, void *ptr, size_t osize, size_t nsize) {
  Spy *s = (Spy *)ud;
  void *q = s->f(s->ud, ptr, osize, nsize);
  char *a;
  size_t n;
  if (q == NULL || nsize <= s->size) return q;
  s->block = q;
  s->size = nsize;
  if (ptr == NULL && (n = block_inside((char *)q, nsize, &a)) > 0) {
    madvise(a, n, MADV_DONTNEED);     /* no content yet: Lua fills it */
    sys_hugepages(a, n);
  }
  return q;
}

static int results_make (lua_State *L) {
  lua_Integer n = lua_tointeger(L, 1);
  lua_createtable(L, n > INT_MAX ? INT_MAX : (int)n, 1);
  return 1;
}

static void results_hide (Pool *p, char *block, size_t size) {
  char *a;
  size_t n = block_inside(block, size, &a);
  if (n == 0 || sys_nofork(a, n, 1) != 0) return;
  p->hole = a;
  p->holelen = n;
}

static void results_new (lua_State *L, Pool *p) {
  Spy s;
  int status;
  s.f = lua_getallocf(L, &s.ud);
  s.block = NULL;
  s.size = 0;
  lua_pushcfunction(L, results_make);
  lua_pushinteger(L, p->n);
  lua_setallocf(L, spy_alloc, &s);
  status = lua_pcall(L, 1, 1, 0);
  lua_setallocf(L, s.f, s.ud);
  if (status != LUA_OK) lua_error(L);
  if (s.size >= (size_t)p->n * sizeof(lua_Integer))   /* the array part */
    results_hide(p, (char *)s.block, s.size);
  lua_pushinteger(L, p->n);
  lua_setfield(L, -2, "n");
}

/* map_run (fn, items, init, on_result, pool): the protected part.  The
** results table is made before the first fork, while its pages are still
** the caller's alone: results_new's hiding then keeps them so. */
static int map_run (lua_State *L) {
  Pool *p = (Pool *)lua_touserdata(L, MAP_POOL);
  pool_begin(L, p);
  if (p->lazy) lua_newtable(L);              /* MAP_RESULTS: n unknown */
  else results_new(L, p);
  if (p->collect) lua_newtable(L);           /* MAP_ERRS */
  else lua_pushnil(L);
  pool_run(L, p);
  if (p->lazy) {
    lua_pushinteger(L, p->n);
    lua_setfield(L, MAP_RESULTS, "n");
  }
  return 2;
}

/* }====================================================== */


/*
** {======================================================
** core.map (fn, items, opts)
** =======================================================
*/

/* core.seqlen (t): #t if t is a sequence (no holes in 1..#t and no
** integer key beyond it), else nil.  One pass of lua_next, cheaper than
** the same check in Lua, which matters for a million tiny items
** (bench/map_bench.lua, case b). */
static int map_seqlen (lua_State *L) {
  lua_Integer n, inside = 0;
  luaL_checktype(L, 1, LUA_TTABLE);
  n = (lua_Integer)lua_rawlen(L, 1);
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    lua_pop(L, 1);
    if (lua_isinteger(L, -1)) {
      lua_Integer k = lua_tointeger(L, -1);
      if (k > n) return 0;
      inside += k >= 1;
    }
  }
  if (inside != n) return 0;
  lua_pushinteger(L, n);
  return 1;
}

/* #items, which must be a sequence, read raw (par_rawlen).  opts.n is the
** Lua layer's word that it ran core.seqlen already (a second pass over the
** items would cost as much again, a fair share of a map of tiny items:
** bench/map_bench.lua, case b): then only #items is compared.  A wrong word could not
** harm memory, only call fn with nil items. */
static lua_Integer map_len (lua_State *L) {
  lua_Integer n, raw = par_rawlen(L, 2, 2, NULL);
  int isint;
  lua_getfield(L, 3, "n");
  n = lua_tointegerx(L, -1, &isint);
  lua_pop(L, 1);
  if (isint && n == raw) return n;
  lua_pushcfunction(L, map_seqlen);
  lua_pushvalue(L, 2);
  lua_call(L, 1, 1);
  luaL_argcheck(L, lua_isinteger(L, -1), 2, "sequence expected");
  n = lua_tointeger(L, -1);
  lua_pop(L, 1);
  return n;
}

/* A huge timeout is a fair way to say "practically never": it is clamped,
** not refused, where its nanoseconds added to a CLOCK_MONOTONIC time
** (pool_polltime, pool_timeouts) would overflow int64. */
#define TIMEOUT_MAX   4e9   /* seconds: 127 years */

static int opt_collect (lua_State *L) {
  static const char *const modes[] = {"raise", "collect", NULL};
  return opt_word(L, 3, "errors", modes, 0);
}

static void opts_read (lua_State *L, Pool *p) {
  double t = opt_num(L, 3, "timeout", 0, 1);
  p->chunksize = opt_int(L, 3, "chunksize", 0, 1, LUA_MAXINTEGER);
  p->memory = (size_t)opt_int(L, 3, "worker_memory", 64 << 20, 1, LUA_MAXINTEGER);
  p->timeout = t > TIMEOUT_MAX ? TIMEOUT_MAX : t;
  p->collect = opt_collect(L);
  p->ordered = opt_flag(L, 3, "ordered", 0);   /* a stream's; checked for all */
}

static int map_empty (lua_State *L, int collect) {
  lua_createtable(L, 0, 1);
  lua_pushinteger(L, 0);
  lua_setfield(L, -2, "n");
  if (collect) lua_newtable(L);
  return collect ? 2 : 1;
}

/* Restore what the map changed in the caller, whatever way it ended. */
static void map_finish (lua_State *L, Pool *p) {
  pool_teardown(L, p);
  pool_gcresume(L, p);
}

static int map_error (lua_State *L, Pool *p) {
  if (p->syserr) {
    luaL_pushfail(L);
    lua_pushfstring(L, "%s: %s", p->syswhat, strerror(p->syserr));
    lua_pushinteger(L, p->syserr);
    return 3;
  }
  return lua_error(L);
}

/* The items: a sequence (their number), or an iterator (-1). */
static lua_Integer map_items (lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  luaL_argexpected(L, lua_istable(L, 2) || lua_isfunction(L, 2), 2,
                   "table or function");
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 3);
  return lua_isfunction(L, 2) ? -1 : map_len(L);
}

static int map_map (lua_State *L) {
  lua_Integer n, procs;
  Pool *p;
  int status;
  n = map_items(L);
  procs = opt_int(L, 3, "jobs", 1, 1, 4096);
  if (n == 0) return map_empty(L, opt_collect(L));
  opt_func(L, 3, "init");                        /* 4 */
  opt_func(L, 3, "on_result");                   /* 5 */
  if (n > 0 && procs > n) procs = n;
  p = pool_new(L, (int)procs, n < 0 ? 0 : n, 0);
  p->lazy = n < 0;
  opts_read(L, p);
  pool_gcpause(L, p);
  lua_pushcfunction(L, map_run);
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 4);
  lua_pushvalue(L, 5);
  lua_pushvalue(L, 6);
  status = lua_pcall(L, 5, 2, 0);
  map_finish(L, p);
  if (status != LUA_OK) return map_error(L, p);
  if (!p->collect) lua_pop(L, 1);            /* errs: nil */
  return p->collect ? 2 : 1;
}

/* }====================================================== */


/*
** {======================================================
** core.imap (fn, items, opts): the same pool as a stream
** =======================================================
*/

/* User values of an imap's pool: what map_run has on its stack */
#define IMAP_NUV      6

/* The iterator's upvalues: the pool and its results and errors tables */
#define UP_POOL       lua_upvalueindex(1)
#define UP_RESULTS    lua_upvalueindex(2)
#define UP_ERRS       lua_upvalueindex(3)

/* Push what map_run has on its stack: fn, items, init, on_result, pool,
** results, errs. */
static void imap_stack (lua_State *L) {
  int k;
  for (k = 1; k <= 4; k++) lua_getiuservalue(L, UP_POOL, k);
  lua_pushvalue(L, UP_POOL);
  lua_pushvalue(L, UP_RESULTS);
  lua_pushvalue(L, UP_ERRS);
}

static int imap_run (lua_State *L) {
  lua_pushboolean(L, pool_step(L, (Pool *)lua_touserdata(L, MAP_POOL)));
  return 1;
}

/* Item i of the stream, its result in slot s: i, result; or i, nil, err
** with errors = "collect", else the error raised (after the teardown).
** Nothing stays in the pool once it is yielded. */
static int imap_push (lua_State *L, Pool *p, lua_Integer i, lua_Integer s) {
  if (p->nerrs > 0) {
    if (lua_rawgeti(L, UP_ERRS, i) != LUA_TNIL) {
      p->nerrs--;
      lua_pushnil(L);
      lua_rawseti(L, UP_ERRS, i);
      if (!p->collect) {
        pool_teardown(L, p);
        return lua_error(L);
      }
      lua_pushinteger(L, i);
      lua_pushnil(L);
      lua_rotate(L, -3, 2);
      return 3;
    }
    lua_pop(L, 1);
  }
  lua_pushinteger(L, i);
  lua_rawgeti(L, UP_RESULTS, s + 1);
  lua_pushnil(L);
  lua_rawseti(L, UP_RESULTS, s + 1);
  return 2;
}

/* The iterator: imap_next () -> i, v [, err], or nothing at the end.  A
** result ready goes at once; else the pool runs (with par's signal
** handlers in place) until one is.  Any error tears down first. */
static int imap_next (lua_State *L) {
  Pool *p = (Pool *)lua_touserdata(L, UP_POOL);
  lua_Integer i, s;
  int status, more;
  if (pool_pop(p, &i, &s)) return imap_push(L, p, i, s);
  if (p->closed) return 0;
  lua_settop(L, 0);
  lua_pushcfunction(L, imap_run);
  imap_stack(L);
  pool_intr(L, p, 1);
  status = lua_pcall(L, 7, 1, 0);
  pool_intr(L, p, 0);
  if (status != LUA_OK) {
    pool_teardown(L, p);
    if (p->syserr)
      luaL_error(L, "par.imap: %s: %s", p->syswhat, strerror(p->syserr));
    return lua_error(L);
  }
  more = lua_toboolean(L, -1);
  lua_settop(L, 0);
  if (more && pool_pop(p, &i, &s)) return imap_push(L, p, i, s);
  pool_teardown(L, p);
  return 0;
}

/* core.imap (fn, items, opts) -> imap_next, nil, nil, pool: a generic
** for's iterator whose closing value (the pool) tears down. */
static int map_imap (lua_State *L) {
  lua_Integer n = map_items(L), procs = opt_int(L, 3, "jobs", 1, 1, 4096);
  Pool *p;
  int k;
  opt_func(L, 3, "init");                        /* 4 */
  opt_func(L, 3, "on_result");                   /* 5 */
  if (n >= 0 && procs > (n > 0 ? n : 1)) procs = n > 0 ? n : 1;
  p = pool_new(L, (int)procs, n < 0 ? 0 : n, IMAP_NUV);   /* 6 */
  p->lazy = n < 0;
  p->stream = 1;
  p->fname = "imap";
  opts_read(L, p);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, 6, 1);
  lua_pushvalue(L, 2);
  lua_setiuservalue(L, 6, 2);
  for (k = 4; k <= 5; k++) {
    lua_pushvalue(L, k);
    lua_setiuservalue(L, 6, k - 1);
  }
  pool_begin(L, p);                              /* sets p->wcap */
  lua_pushvalue(L, 6);
  lua_createtable(L, p->wcap > INT_MAX ? INT_MAX : (int)p->wcap, 0);
  lua_newtable(L);
  lua_pushvalue(L, -2);
  lua_setiuservalue(L, 6, 5);                    /* results not yet yielded */
  lua_pushvalue(L, -1);
  lua_setiuservalue(L, 6, 6);                    /* errors not yet yielded */
  lua_pushcclosure(L, imap_next, 3);
  lua_pushnil(L);
  lua_pushnil(L);
  lua_pushvalue(L, 6);
  return 4;
}

/* }====================================================== */


void map_open (lua_State *L) {
  lua_pushcfunction(L, map_imap);
  lua_setfield(L, -2, "imap");
  lua_pushcfunction(L, map_map);
  lua_setfield(L, -2, "map");
  lua_pushcfunction(L, map_seqlen);
  lua_setfield(L, -2, "seqlen");
}
