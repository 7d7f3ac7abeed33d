/*
** worker.c: a par.map worker, the forked child's side.  It holds the
** caller's whole Lua state copy-on-write, so fn, items and init are simply
** there (but for the items of an iterator, which did not exist at the
** fork: those come encoded in F_ITEMS tasks).  It takes tasks from its socket (frames, frame.h), runs fn on
** each item of a range under one protected call, and writes the results
** back as frames, batched: it writes when FLUSH_BYTES or FLUSH_NS have
** piled up, so that a tiny item costs no syscall of its own.
**
** Copy-on-write is the whole point, so a worker must not write to the
** pages it shares with the caller without need: each first write is a
** fault and a copy of the page (bench/faults.c measures what that costs on
** this machine).  So its collector never runs (marking writes to every
** object), and it allocates from an arena of fresh memory (arena.c), not
** from the free chunks scattered over the inherited heap.  Past its budget
** (opts.worker_memory) it finishes its item, gives back the rest of its
** range and exits; the pool forks a fresh one from the caller.
*/
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "par.h"
#include "arena.h"
#include "buf.h"
#include "codec.h"
#include "frame.h"
#include "ship.h"
#include "interrupt.h"
#include "sys.h"
#include "worker.h"

#define FLUSH_BYTES   (64 * 1024)
#define FLUSH_NS      (20 * 1000000LL)
#define TASK_READ     4096  /* room for a read of tasks: ranges are tiny */
#define SPIN_NS       (50 * 1000LL)   /* par.pool: child_spin */

/* Stack of child_run */
#define W_FN          1
#define W_ITEMS       2
#define W_INIT        3
#define W_CHILD       4     /* the Child */
#define W_THREAD      5     /* c->T */
#define W_BATCH       6     /* the items of the last F_ITEMS task, from 1 */

/* Stack of c->T */
#define T_MSGH        1     /* child_msgh */
#define T_RUN         2     /* child_items */

typedef struct Child {
  int fd;                /* socket to the parent */
  Slot *slot;
  int timed;             /* record item start times */
  Arena *arena;          /* where its Lua allocations go ... */
  size_t budget;         /* ... and how much of it before it retires */
  int retire;            /* over budget: leave after this item */
  lua_Integer i, b;      /* the item running, the end of the range */
  lua_Integer seq;       /* par.pool: units begun since the fork */
  lua_Integer off;       /* item i is items[i - off] */
  lua_Integer seqoff;    /* the slot shows item i as i + seqoff */
  int64_t flushed;       /* sys_coarsens of the last write */
  int64_t checked;       /* ... and of the last look at the clock */
  int since, every;      /* items since that look, and between looks */
  lua_State *T;          /* items run here (stack: T_MSGH, T_RUN) */
  Buf in;                /* task bytes read and not yet handled */
  Buf out;
  size_t batch;          /* where the open F_RESULT frame starts ... */
  int inbatch;           /* ... if there is one */
  size_t encoding;       /* where the result being encoded starts, or 0 */
  int top;               /* L's stack top between items */
  int spin;              /* spin before it sleeps (child_spin) */
} Child;


/*
** {======================================================
** Leaving
** =======================================================
*/

/* Every way out of a worker: what fn printed appears once, and nothing the
** worker started outlives it. */
static void child_exit (int status) {
  fflush(NULL);
  sys_reapall();
  _exit(status);
}

/* Out of memory where not even an error frame could be built (setting up,
** reporting an item, closing a frame): say so in a frame built on the
** stack, and leave.  Results not sent yet are lost; the parent gives those
** items to another worker.  What was sent is whole frames (child_flush
** sends nothing else), so the F_NOMEM frame is read as one. */
static void child_oom (Child *c) {
  unsigned char h[FRAME_LONG];
  sys_writeall(c->fd, h, frame_puthead(h, F_NOMEM, 0));
  child_exit(EXIT_FAILED);
}

/* }====================================================== */


/*
** {======================================================
** Writing frames
** =======================================================
*/

static size_t child_open (lua_State *L, Child *c);

/* Results of consecutive items share one frame: for tiny results the
** parent's cost per item is then one decode and one store. */
static void batch_end (Child *c) {
  if (!c->inbatch) return;
  c->inbatch = 0;
  if (frame_end(&c->out, c->batch, F_RESULT) != 0) child_oom(c);
}

/* A failed write means the parent is gone: nothing is left to do. */
static void child_flush (Child *c) {
  batch_end(c);
  if (sys_writeall(c->fd, c->out.data, c->out.len) != 0)
    child_exit(EXIT_FAILED);
  c->out.len = 0;
  c->flushed = sys_coarsens();
}

/* Start a frame after the open batch; where it begins. */
static size_t child_open (lua_State *L, Child *c) {
  size_t at;
  batch_end(c);
  if (frame_begin(&c->out, &at) != 0) par_nomem(L);
  return at;
}

/* The frame could not be closed for want of memory: the items it reports
** on would be out of step with the parent's count (child_oom). */
static void child_close (Child *c, size_t at, int kind) {
  if (frame_end(&c->out, at, kind) != 0) child_oom(c);
}

static void child_text (lua_State *L, Child *c, int kind, const char *s) {
  batch_end(c);
  if (frame_add(&c->out, kind, s, strlen(s)) != 0) par_nomem(L);
}

/* The value at the top as a result, or the reason it can't be one. */
static void child_result (lua_State *L, Child *c) {
  char err[256];
  size_t at;
  if (!c->inbatch) {
    c->batch = child_open(L, c);
    c->inbatch = 1;
  }
  at = c->encoding = c->out.len;
  if (codec_encode(L, -1, &c->out, "result", err, sizeof err) == 0) {
    c->encoding = 0;
    return;
  }
  c->out.len = at;
  c->encoding = 0;
  child_text(L, c, F_UNSENT, err);
}

/* Error value and traceback (from child_msgh's table at the top).  An
** error value that can't travel is replaced by a message saying why. */
static void child_error (lua_State *L, Child *c, int status, int kind) {
  char err[256];
  size_t at = child_open(L, c);
  if (status == LUA_ERRRUN && lua_istable(L, -1)) {
    lua_rawgeti(L, -1, 2);
    lua_rawgeti(L, -2, 1);
  }
  else {                             /* memory error: no handler ran */
    lua_pushliteral(L, "");
    lua_pushvalue(L, -2);
  }
  if (codec_encode(L, -1, &c->out, "error", err, sizeof err) != 0) {
    c->out.len = at + FRAME_SHORT;
    lua_pushfstring(L, "(error object is a %s value that cannot be sent: %s)",
                    luaL_typename(L, -1), err);
    codec_encode(L, -1, &c->out, "error", err, sizeof err);
    lua_pop(L, 1);
  }
  codec_encode(L, -2, &c->out, "traceback", err, sizeof err);
  lua_pop(L, 2);
  child_close(c, at, kind);
}

/* }====================================================== */


/*
** {======================================================
** Running items
** =======================================================
*/

/* Message handler: keep the error value as it is (tables stay tables) and
** the traceback beside it, without its last line: that is child_items,
** par's own frame. */
static int child_msgh (lua_State *L) {
  static const char own[] = "\n\t[C]: in ?";
  size_t len, n = sizeof own - 1;
  const char *tb;
  lua_createtable(L, 2, 0);
  lua_pushvalue(L, 1);
  lua_rawseti(L, -2, 1);
  luaL_traceback(L, L, NULL, 1);
  tb = lua_tolstring(L, -1, &len);
  if (len >= n && memcmp(tb + len - n, own, n) == 0)
    lua_pushlstring(L, tb, len - n);
  else
    lua_pushvalue(L, -1);
  lua_rawseti(L, 2, 2);
  lua_settop(L, 2);
  return 1;
}

/* Is it time to write what has piled up?  Reading the clock costs as much
** as a tiny item, so while items are quick it is read every 'every' items
** only (up to 64, doubling), and after every item once they are slow. */
static int child_due (Child *c) {
  int64_t now;
  if (++c->since < c->every) return 0;
  now = sys_coarsens();
  c->every = now - c->checked < 1000000 ? (c->every < 64 ? 2 * c->every : 64) : 1;
  c->checked = now;
  c->since = 0;
  return now - c->flushed >= FLUSH_NS;
}

/*
** child_items (c, items, fn), on T under pcall: run items c->i..c->b with one
** protected call for the lot, not one per item (a pcall costs about as
** much as a tiny item itself: bench/map_bench.lua, case b).  When fn raises, c->i is the item that did, and the pcall
** returns to child_range, which reports it and calls again for the rest.
*/
static int child_items (lua_State *T) {
  Child *c = (Child *)lua_touserdata(T, 1);
  for (; c->i <= c->b; c->i++) {
    slot_start(c->slot, c->i + c->seqoff, c->timed);
    lua_pushvalue(T, 3);
    lua_rawgeti(T, 2, c->i - c->off);
    lua_pushinteger(T, c->i);
    lua_call(T, 2, 1);
    if (c->timed) slot_stop(c->slot);
    child_result(T, c);
    lua_settop(T, 3);
    if (c->arena->used > c->budget) {
      c->retire = 1;
      c->i++;
      return 0;
    }
    if (c->out.len >= FLUSH_BYTES || child_due(c))
      child_flush(c);
  }
  return 0;
}

/* Run fn (at L's stack index 'fn') over items a..b, item i being
** items[i - off] of the table at L's stack index 'items'.  Returns 0 when
** over budget: F_RETIRE is sent and the parent takes the rest of the
** range back. */
static int child_range (lua_State *L, Child *c, lua_Integer a, lua_Integer b,
                        int items, lua_Integer off, int fn) {
  lua_State *T = c->T;
  c->i = a;
  c->b = b;
  c->off = off;
  while (c->i <= c->b && !c->retire) {
    int status;
    lua_pushvalue(T, T_RUN);
    lua_pushlightuserdata(T, c);
    lua_pushvalue(L, items);
    lua_pushvalue(L, fn);
    lua_xmove(L, T, 2);
    status = lua_pcall(T, 3, 0, T_MSGH);
    if (status == LUA_OK) continue;
    if (c->timed) slot_stop(c->slot);
    if (c->encoding) c->out.len = c->encoding;  /* out of memory there */
    c->encoding = 0;
    lua_xmove(T, L, 1);
    child_error(L, c, status, F_ERROR);
    lua_settop(L, c->top);
    c->retire = c->arena->used > c->budget;
    c->i++;
  }
  if (c->retire) child_text(L, c, F_RETIRE, "");
  if (c->out.len > 0) child_flush(c);
  return !c->retire;
}

static void child_init (lua_State *L, Child *c, int init) {
  int status;
  if (!lua_isnil(L, init)) {
    slot_stage(c->slot, SLOT_INIT);
    lua_pushvalue(L, init);
    lua_xmove(L, c->T, 1);
    status = lua_pcall(c->T, 0, 0, T_MSGH);
    if (status != LUA_OK) {
      lua_xmove(c->T, L, 1);
      child_error(L, c, status, F_INITERR);
      child_flush(c);
      luaL_error(L, "init failed");
    }
  }
  slot_stage(c->slot, 0);
}

/* }====================================================== */


/*
** {======================================================
** Taking tasks
** =======================================================
*/

/* The next task, whole, at the start of c->in; 0 at the end of the
** stream (no more work).  A stream that ends inside a frame is a
** protocol error. */
/* A par.pool worker waits for its next task spinning, for SPIN_NS, before
** it sleeps in read: a wake-up from sleep costs 30 to 80 us on this
** machine's VM (bench/pool_bench.lua), a round trip spinning about 6.
** What it read, or -1 if nothing came. */
static ssize_t child_spin (Child *c) {
  int64_t end = sys_monons() + SPIN_NS;
  do {
    ssize_t k = recv(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len,
                     MSG_DONTWAIT);
    if (k >= 0) return k;
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return -1;
  } while (sys_monons() < end);
  return -1;
}

static int child_next (lua_State *L, Child *c, Frame *f) {
  while (!frame_next(c->in.data, c->in.len, f)) {
    ssize_t k;
    if (buf_reserve(&c->in, TASK_READ) != 0) par_nomem(L);
    k = c->spin ? child_spin(c) : -1;
    if (k < 0)
      do k = read(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len);
      while (k < 0 && errno == EINTR);
    if (k == 0 && c->in.len == 0) return 0;
    if (k <= 0)
      luaL_error(L, "read from parent: %s", k < 0 ? strerror(errno) : "EOF");
    c->in.len += (size_t)k;
  }
  return 1;
}

static void child_consume (Child *c, size_t n) {
  memmove(c->in.data, c->in.data + n, c->in.len - n);
  c->in.len -= n;
}

/* An F_ITEMS task: its items decoded into the batch table (reused, so
** that tiny items cost no allocation), then run as items a, a + 1... */
static int child_itemstask (lua_State *L, Child *c, const Frame *f) {
  char err[128];
  const char *s;
  size_t len;
  int64_t a;
  lua_Integer k;
  if (frame_getitems(f, &a, &s, &len) != 0 || a < 1)
    luaL_error(L, "protocol error: bad items task");
  k = codec_decode_into(L, W_BATCH, 1, LUA_MAXINTEGER, s, len, err, sizeof err);
  if (k <= 0)
    luaL_error(L, "protocol error: bad items task: %s", k < 0 ? err : "no items");
  return child_range(L, c, (lua_Integer)a, (lua_Integer)a + k - 1, W_BATCH,
                     (lua_Integer)a - 1, W_FN);
}

/* Carry out one task; 0 once the worker takes no more (it retired).  A
** new kind of task is one more case here.  A kind this worker does not
** know is a protocol error: child_main says so and exits EXIT_FAILED. */
static int child_task (lua_State *L, Child *c, const Frame *f) {
  int64_t a, b;
  switch (f->kind) {
    case F_RANGE:
      if (frame_getrange(f, &a, &b) != 0 || a < 1 || a > b)
        luaL_error(L, "protocol error: bad range task");
      return child_range(L, c, (lua_Integer)a, (lua_Integer)b, W_ITEMS, 0, W_FN);
    case F_ITEMS: return child_itemstask(L, c, f);
    default: {
      char msg[64];
      snprintf(msg, sizeof msg, "protocol error: unknown task kind 0x%02x",
               (unsigned)f->kind);
      lua_pushstring(L, msg);
      return lua_error(L);
    }
  }
}

/* The worker's body, protected: a Lua error here must end in _exit, never
** unwind into the parent's frames that this process inherited.  Items
** run on a thread of their own, so that a traceback shows fn's frames and
** not the parent's, which this process inherited too. */
static int child_run (lua_State *L) {
  Child *c = (Child *)lua_touserdata(L, W_CHILD);
  Frame f;
  c->T = lua_newthread(L);                  /* W_THREAD */
  lua_pushcfunction(c->T, child_msgh);      /* T_MSGH */
  lua_pushcfunction(c->T, child_items);     /* T_RUN */
  lua_newtable(L);                          /* W_BATCH */
  c->top = W_BATCH;
  c->flushed = c->checked = sys_coarsens();
  c->every = 1;
  child_init(L, c, W_INIT);
  while (child_next(L, c, &f)) {
    int more = child_task(L, c, &f);
    child_consume(c, f.size);               /* f points into c->in till here */
    if (!more) break;
  }
  return 0;
}

/* }====================================================== */


/*
** {======================================================
** Serving a pool (par.pool)
** =======================================================
*/

/*
** A par.pool worker was forked when the pool was made, so what it runs
** travels: functions once each as F_DEFINE (kept in S_FNS by id), and each
** task with the function's upvalues as the caller had them at the call
** (unless the worker's last task was of the same call: a map's chunks
** after its first), and its arguments or items.  Units are numbered from
** the worker's start (c->seq): the slot shows the unit running, so that
** the parent knows what a dead or timed-out worker held.
*/

/* Stack of serve_run */
#define S_INIT        1
#define S_CHILD       2
#define S_THREAD      3
#define S_FNS         4     /* fn id -> function, or why it is not one */
#define S_BATCH       5     /* a chunk's items, from 1 */
#define S_BAD         6     /* why the last call's upvalues failed, or nil */

typedef struct Task {
  lua_Integer id, first, count;
  lua_Integer nunits;        /* 1 for a call, count for a chunk */
  int64_t fnid;
  uint64_t upvlen;
  const char *upv;
  const char *units;         /* 'count' shipped values ... */
  size_t len;                /* ... in so many bytes */
} Task;

#define TASK_HEAD     40    /* id, fn id, first, upvalue length, count */

static void serve_define (lua_State *L, const Frame *f) {
  char err[256];
  size_t used;
  const char *s = f->body + 9;
  size_t n;
  int64_t id;
  if (f->len < 9) luaL_error(L, "protocol error: bad definition");
  id = (int64_t)frame_get64(f->body);
  n = f->len - 9;
  if (f->body[8] == 'b') {
    if (ship_load(L, s, n, err, sizeof err) != 0) lua_pushstring(L, err);
  }
  else if (ship_decode(L, s, n, &used, err, sizeof err) != 0)
    lua_pushstring(L, err);
  else if (!lua_isfunction(L, -1))
    lua_pushfstring(L, "fn resolved to a %s", luaL_typename(L, -1));
  lua_rawseti(L, S_FNS, id);
}

/* Every unit of the task fails with the message at the top. */
static void serve_fail (lua_State *L, Child *c, const Task *t) {
  lua_Integer k;
  for (k = 0; k < t->nunits; k++) {
    slot_start(c->slot, ++c->seq, 0);
    child_text(L, c, F_UNSENT, lua_tostring(L, -1));
  }
  lua_pop(L, 1);
}

static void serve_parse (lua_State *L, const Frame *f, Task *t) {
  const char *p = f->body;
  size_t left = f->len;
  if (left < TASK_HEAD - 8) luaL_error(L, "protocol error: bad task");
  t->id = (lua_Integer)frame_get64(p);
  t->fnid = (int64_t)frame_get64(p + 8);
  t->first = (lua_Integer)frame_get64(p + 16);
  t->upvlen = frame_get64(p + 24);
  p += 32;
  left -= 32;
  t->upv = p;
  if (t->upvlen != FRAME_SAME) {
    if (t->upvlen > left) luaL_error(L, "protocol error: bad task");
    p += t->upvlen;
    left -= (size_t)t->upvlen;
  }
  if (left < 8) luaL_error(L, "protocol error: bad task");
  t->count = (lua_Integer)frame_get64(p);
  t->units = p + 8;
  t->len = left - 8;
  t->nunits = f->kind == F_CALL ? 1 : t->count;
  if (t->count < (f->kind == F_CALL ? 0 : 1) || t->count > INT_MAX / 2 ||
      t->first < 1)
    luaL_error(L, "protocol error: bad task");
}

/* fn of the task at the top, with its upvalues set: 1; or 0 with why at
** the top instead. */
static int serve_fn (lua_State *L, Child *c, const Task *t) {
  char err[256];
  if (lua_rawgeti(L, S_FNS, t->fnid) != LUA_TFUNCTION) {
    if (!lua_isstring(L, -1)) {
      lua_pop(L, 1);
      lua_pushliteral(L, "protocol error: task of an undefined fn");
    }
    return 0;
  }
  if (t->upvlen == FRAME_SAME) {
    if (lua_isnil(L, S_BAD)) return 1;
    lua_pop(L, 1);
    lua_pushvalue(L, S_BAD);
    return 0;
  }
  lua_pushnil(L);
  lua_replace(L, S_BAD);
  if (t->upvlen == 0) return 1;              /* it travelled as its path */
  if (ship_setupvalues(L, -1, t->upv, (size_t)t->upvlen, err, sizeof err) == 0)
    return 1;
  lua_pop(L, 1);
  lua_pushstring(L, err);
  lua_pushvalue(L, -1);
  lua_replace(L, S_BAD);
  (void)c;
  return 0;
}

/* Decode the task's units, pushing them (a call's arguments) or storing
** them in S_BATCH (a chunk's items): 1, or 0 with why at the top. */
static int serve_units (lua_State *L, const Task *t, int push) {
  char err[256];
  const char *p = t->units;
  size_t left = t->len, used;
  lua_Integer k;
  if (push) luaL_checkstack(L, (int)t->count + 5, "too many arguments");
  for (k = 1; k <= t->count; k++) {
    if (ship_decode(L, p, left, &used, err, sizeof err) != 0) {
      if (push) lua_pop(L, (int)(k - 1));
      lua_pushstring(L, err);
      return 0;
    }
    p += used;
    left -= used;
    if (!push) lua_rawseti(L, S_BATCH, k);
  }
  return 1;
}

/* One call: fn(...) on T, its first result (or error) as the unit's. */
static void serve_call (lua_State *L, Child *c, const Task *t) {
  lua_State *T = c->T;
  int status, nargs = (int)t->count;
  if (!serve_units(L, t, 1)) {
    lua_remove(L, -2);                       /* fn */
    serve_fail(L, c, t);
    return;
  }
  luaL_checkstack(T, nargs + 5, "too many arguments");
  lua_xmove(L, T, nargs + 1);
  slot_start(c->slot, ++c->seq, c->timed);
  status = lua_pcall(T, nargs, 1, T_MSGH);
  if (c->timed) slot_stop(c->slot);
  if (status == LUA_OK) {
    child_result(T, c);
    lua_settop(T, T_RUN);
    return;
  }
  if (c->encoding) c->out.len = c->encoding;
  c->encoding = 0;
  lua_xmove(T, L, 1);
  lua_settop(T, T_RUN);
  child_error(L, c, status, F_ERROR);
  lua_pop(L, 1);
}

/* A task: 0 once the worker takes no more (it retired). */
static int serve_task (lua_State *L, Child *c, const Frame *f) {
  Task t;
  int more = 1;
  serve_parse(L, f, &t);
  if (!serve_fn(L, c, &t)) serve_fail(L, c, &t);
  else if (f->kind == F_CALL) serve_call(L, c, &t);
  else if (!serve_units(L, &t, 0)) {
    lua_remove(L, -2);
    serve_fail(L, c, &t);
  }
  else {
    c->seqoff = c->seq - t.first + 1;
    c->top = lua_gettop(L);                  /* fn stays between items */
    more = child_range(L, c, t.first, t.first + t.count - 1, S_BATCH,
                       t.first - 1, c->top);
    c->top = S_BAD;
    c->seq += t.count;
    lua_settop(L, S_BAD);
    return more;
  }
  lua_settop(L, c->top);
  if (c->arena->used > c->budget) {
    child_text(L, c, F_RETIRE, "");
    more = 0;
  }
  child_flush(c);
  return more;
}

static int serve_run (lua_State *L) {
  Child *c = (Child *)lua_touserdata(L, S_CHILD);
  Frame f;
  c->T = lua_newthread(L);                  /* S_THREAD */
  lua_pushcfunction(c->T, child_msgh);      /* T_MSGH */
  lua_pushcfunction(c->T, child_items);     /* T_RUN */
  lua_newtable(L);                          /* S_FNS */
  lua_newtable(L);                          /* S_BATCH */
  lua_pushnil(L);                           /* S_BAD */
  c->top = S_BAD;
  c->spin = 1;
  c->flushed = c->checked = sys_coarsens();
  c->every = 1;
  child_init(L, c, S_INIT);
  child_text(L, c, F_READY, "");
  child_flush(c);
  while (child_next(L, c, &f)) {
    int more = 1;
    if (f.kind == F_DEFINE) serve_define(L, &f);
    else if (f.kind == F_CALL || f.kind == F_CHUNK) more = serve_task(L, c, &f);
    else luaL_error(L, "protocol error: unknown task kind 0x%02x",
                    (unsigned)f.kind);
    child_consume(c, f.size);
    if (!more) break;
  }
  return 0;
}

/* }====================================================== */


/*
** {======================================================
** Setting up
** =======================================================
*/

/* Signals: the parent's SIGINT/SIGTERM handlers write to the parent's
** self-pipe, so a worker must not keep them; with the defaults a Ctrl-C
** to the terminal's process group stops workers as it stops the caller.
** SIGPIPE stays as the host set it (socket libraries ignore it). */
static void child_signals (void) {
  struct sigaction sa;
  sigset_t set;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_DFL;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigprocmask(SIG_UNBLOCK, &set, NULL);
}

/* The process itself: its own group (see the pool's worker_kill), a
** subreaper so that orphans below stay its own, and dead with its parent
** even if the parent died already. */
static void child_process (const ChildSpec *s) {
  setpgid(0, 0);
  sys_subreaper();
  sys_pdeathsig(SIGKILL);
  if (getppid() != s->parent)
    _exit(EXIT_ORPHAN);
  intr_afterfork();
  child_signals();
  /* the siblings' sockets, and whatever par.run holds if this map runs
  ** inside its on_done (a command's pipe kept open here would get no EOF
  ** until we exit): a worker never execs, so the flag alone closes nothing */
  sys_closecloexec(s->fd);
}

/* The body of both kinds of worker: 'run' under a protected call, with
** the 'nargs' values at the top of L's stack and the Child after them. */
static void child_body (lua_State *L, const ChildSpec *s, lua_CFunction run,
                        int nargs) {
  Child c;
  Arena arena;
  int status;
  child_process(s);
  lua_gc(L, LUA_GCSTOP);
  memset(&arena, 0, sizeof arena);
  lua_setallocf(L, arena_alloc, &arena);
  memset(&c, 0, sizeof c);
  buf_mapped(&c.in);                  /* see buf.c */
  buf_mapped(&c.out);
  c.arena = &arena;
  c.fd = s->fd;
  c.slot = s->slot;
  c.timed = s->timed;
  c.budget = s->budget;
  if (buf_reserve(&c.in, TASK_READ) != 0)
    child_oom(&c);                    /* still SLOT_SETUP: a setup failure */
  lua_pushcfunction(L, run);
  lua_insert(L, -nargs - 1);
  lua_pushlightuserdata(L, &c);       /* W_CHILD, S_CHILD */
  status = lua_pcall(L, nargs + 1, 0, 0);
  if (status == LUA_ERRMEM) child_oom(&c);
  else if (status != LUA_OK && lua_type(L, -1) == LUA_TSTRING &&
      strcmp(lua_tostring(L, -1), "init failed") != 0)
    fprintf(stderr, "%s: worker %ld: %s\n", s->who, (long)getpid(),
            lua_tostring(L, -1));
  child_exit(status == LUA_OK ? 0 : EXIT_FAILED);
}

void child_main (lua_State *L, const ChildSpec *s) {
  child_body(L, s, child_run, 3);
}

void child_serve (lua_State *L, const ChildSpec *s) {
  child_body(L, s, serve_run, 1);
}

/* }====================================================== */
