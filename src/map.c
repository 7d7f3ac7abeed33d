/*
** map.c: par.map's process pool.
**
** The caller forks workers that already hold, copy-on-write, its whole Lua
** state: fn, items and init travel for free.  The parent sends each worker
** index ranges [a, b] over a socket (guided: big ranges first, smaller
** towards the end) and reads back frames:
**
**   frame = kind (1 byte) .. length (4 bytes LE; 0xffffffff: 8 more) .. body
**
** Results of one worker arrive in the order of its range, so a frame needs
** no index, and the results of consecutive items share one frame.  A
** worker writes when 64 KiB or 20 ms have piled up: a tiny item costs no
** syscall of its own.
**
** Copy-on-write is the whole point, so neither side may write to the pages
** it shares without need (each write is a fault and a copy; on some virtual
** machines a fault costs 20 us):
** - A worker never runs the collector (marking writes to every object),
**   and allocates from an arena of fresh memory (arena.c), not from the
**   free chunks scattered over the inherited heap.  Past
**   opts.worker_memory it finishes its item, gives back the rest of its
**   range and exits; a fresh fork from the caller replaces it.
** - The caller holds its collector back for the duration (gc_pause), and
**   keeps the array of the results table out of the forks (results_new).
**
** A page shared with all workers records the item each one is running (and
** when it started, if items have a timeout).  That costs a store per item,
** not a syscall, and it tells the parent exactly which item a dead worker
** held, and which worker ran past its deadline.
*/
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "par.h"
#include "arena.h"
#include "buf.h"
#include "codec.h"
#include "interrupt.h"
#include "live.h"
#include "sys.h"

#define POOL_MT       "par.pool"

/* frame kinds, worker to parent */
#define F_RESULT      'r'   /* body: encoded results of consecutive items */
#define F_ERROR       'e'   /* body: encoded error value, encoded traceback */
#define F_UNSENT      'u'   /* body: text saying why the result can't travel */
#define F_RETIRE      'q'   /* no body: over budget; the rest of the range is
                               given back and the worker exits */
#define F_INITERR     'i'   /* body: as F_ERROR, for opts.init */
#define F_NOMEM       'm'   /* no body: out of memory where no other frame
                               could be built; the worker exits */

#define HDR_SHORT     5
#define HDR_LONG      13
#define LEN_ESCAPE    0xffffffffu

#define FLUSH_BYTES   (64 * 1024)
#define FLUSH_NS      (20 * 1000000LL)
#define READ_MIN      (256 * 1024)

#define EXIT_ORPHAN   111   /* the parent died before the worker started */
#define EXIT_FAILED   112   /* the worker itself failed; message on stderr */

/* Stack of map_run (and of a worker, which runs inside it). */
#define MAP_FN        1
#define MAP_ITEMS     2
#define MAP_INIT      3
#define MAP_ONRESULT  4
#define MAP_POOL      5
#define MAP_RESULTS   6
#define MAP_ERRS      7


/*
** {======================================================
** The shared page
** =======================================================
*/

/* One per worker slot, in a MAP_SHARED mapping; padded to a cache line so
** that two workers never write the same line.  The worker writes, the
** parent reads.  'cur' is the item it started last (SLOT_SETUP until the
** worker has set itself up, SLOT_INIT while it runs opts.init, 0 before
** its first item).  With timeouts, 't0' is when 'cur' started, in
** CLOCK_MONOTONIC ns, and 0 while no item runs; it doubles as a sequence
** lock: the parent trusts 'cur' only if 't0' read the same around it. */
typedef struct Slot {
  lua_Integer cur;
  int64_t t0;
  char pad[64 - sizeof(lua_Integer) - sizeof(int64_t)];
} Slot;

#define SLOT_SETUP    (-2)
#define SLOT_INIT     (-1)

static void slot_start (Slot *s, lua_Integer i, int timed) {
  if (!timed) {
    __atomic_store_n(&s->cur, i, __ATOMIC_RELAXED);
    return;
  }
  __atomic_store_n(&s->t0, 0, __ATOMIC_SEQ_CST);
  __atomic_store_n(&s->cur, i, __ATOMIC_SEQ_CST);
  __atomic_store_n(&s->t0, sys_monons(), __ATOMIC_SEQ_CST);
}

static void slot_stop (Slot *s) {
  __atomic_store_n(&s->t0, 0, __ATOMIC_SEQ_CST);
}

/* The item a worker is running and since when; 0 if none or unsure. */
static lua_Integer slot_running (Slot *s, int64_t *t0) {
  int64_t t1 = __atomic_load_n(&s->t0, __ATOMIC_SEQ_CST);
  lua_Integer i = __atomic_load_n(&s->cur, __ATOMIC_SEQ_CST);
  if (t1 == 0 || __atomic_load_n(&s->t0, __ATOMIC_SEQ_CST) != t1) return 0;
  *t0 = t1;
  return i;
}

/* }====================================================== */


/*
** {======================================================
** The pool
** =======================================================
*/

typedef struct Range {
  lua_Integer a, b;
} Range;

/* at work: <= W_BUSY; W_NOSTART: the slot's last worker could not start */
enum { W_IDLE, W_BUSY, W_RETIRING, W_QUIT, W_NOSTART };

typedef struct Worker {
  pid_t pid;             /* 0: no process in this slot */
  int fd;                /* parent's end of the socket; -1: closed */
  int state;
  lua_Integer a, b;      /* while W_BUSY: items a..b are still to come */
  lua_Integer killed;    /* item it was killed for running too long, or 0 */
  int nomem;             /* it sent F_NOMEM */
  Buf in;                /* bytes read and not yet decoded */
} Worker;

typedef struct Pool {
  Live live;             /* on live.c's list while open */
  lua_State *L;          /* the thread of the map: a hook target */
  int closed;
  pid_t owner;           /* only this process kills and reaps the workers */
  int nw;                /* worker slots: min(procs, #items) */
  int intrfd;            /* from intr_begin, or -1 */
  int pollintr;          /* 0 once intrfd proved to be another process's */
  int sigseen;           /* intr_count() when we began */
  int syserr;            /* errno of a failed system call, or 0 ... */
  const char *syswhat;   /* ... and which call it was */
  Slot *slots;           /* shared with the workers; NULL if not mapped */
  Range *todo;           /* ranges not yet handed out, used as a stack */
  size_t ntodo, todocap;
  lua_Integer n;         /* #items */
  lua_Integer left;      /* items in 'todo' */
  lua_Integer ndone;     /* items with a result or an error */
  lua_Integer chunksize; /* 0: guided */
  size_t memory;         /* opts.worker_memory, bytes */
  double timeout;        /* opts.timeout, seconds; 0: none */
  int collect;           /* opts.errors == "collect" */
  int64_t t0;            /* CLOCK_MONOTONIC ns when the map began */
  int64_t forkns;        /* how long the last fork took the caller */
  size_t gcbase;         /* caller's heap when the map began (KiB) */
  int gcpaused;          /* we hold the caller's collector back */
  char *hole;            /* results' array part, kept out of forks ... */
  size_t holelen;        /* ... (see results_new), or NULL */
  struct Pool *outer;    /* the pool of an enclosing map, or NULL */
  int chained;           /* registered as the innermost open pool */
  struct pollfd *pfd;    /* nw + 1 entries, after the workers */
  Worker w[1];           /* nw entries */
} Pool;

static Pool *pool_new (lua_State *L, int nw) {
  size_t size = sizeof(Pool) + (size_t)(nw - 1) * sizeof(Worker);
  size_t psize = (size_t)(nw + 1) * sizeof(struct pollfd);
  Pool *p = (Pool *)lua_newuserdatauv(L, size + psize, 0);
  int k;
  memset(p, 0, size);      /* a closed pool: nothing to kill, close or free */
  p->closed = 1;
  p->owner = getpid();
  p->nw = nw;
  p->intrfd = -1;
  p->pfd = (struct pollfd *)((char *)p + size);
  for (k = 0; k < nw; k++) {
    p->w[k].fd = -1;
    buf_mapped(&p->w[k].in);      /* see buf.c */
  }
  luaL_setmetatable(L, POOL_MT);
  return p;
}

/* Wait for one of our workers; its exit status, or -1 if it was lost
** (a host that sets SIGCHLD to SIG_IGN has the kernel reap children). */
static int worker_wait (pid_t pid) {
  int st;
  pid_t r;
  do r = waitpid(pid, &st, 0); while (r < 0 && errno == EINTR);
  return r == pid ? st : -1;
}

static void worker_close (Worker *w) {
  if (w->fd >= 0) close(w->fd);
  w->fd = -1;
  buf_free(&w->in);
}

/* Kill a worker and everything it started: what its item ran in the
** worker's own group (os.execute, io.popen), and what sits in groups of
** its own (par.run's commands, a nested map's workers and theirs).  A
** worker is a subreaper (child_main), so even a daemon an item started is
** still below it.  The group and the pid too, in case the walk found
** nothing: both setpgid calls fail if the worker exits at once. */
static void worker_kill (pid_t pid) {
  sys_killtree(pid, 2.0);
  kill(-pid, SIGKILL);
  kill(pid, SIGKILL);
}

/* Open pools form a chain from the registry, innermost first: a forked
** worker must hide every enclosing map's results too (see child_holes). */
static const char pool_chainkey = 'p';

static void pool_chain (lua_State *L, Pool *p) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &pool_chainkey);
  p->outer = (Pool *)lua_touserdata(L, -1);
  lua_pop(L, 1);
  lua_pushlightuserdata(L, p);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &pool_chainkey);
  p->chained = 1;
}

static void pool_unchain (lua_State *L, Pool *p) {
  if (!p->chained) return;
  if (p->outer != NULL) lua_pushlightuserdata(L, p->outer);
  else lua_pushnil(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &pool_chainkey);
  p->chained = 0;
}

/* Kill every worker first and reap them after, so that they die in
** parallel; a dying worker's mm teardown is what waitpid waits for.  No
** Lua here: the exit handler calls it too. */
static void pool_kill (Pool *p) {
  int k;
  live_remove(&p->live);
  for (k = 0; k < p->nw; k++)
    if (p->w[k].pid > 0) worker_kill(p->w[k].pid);
  for (k = 0; k < p->nw; k++) {
    worker_close(&p->w[k]);
    if (p->w[k].pid > 0) worker_wait(p->w[k].pid);
    p->w[k].pid = 0;
  }
  if (p->intrfd >= 0) intr_end(p->L);
  p->intrfd = -1;
}

/* live.c: the process exits during the map (os.exit from on_result).
** Signals need nothing here: the map's own loop, or the Lua code it
** called, raises and tears down. */
static void pool_live (Live *e, int why) {
  Pool *p = (Pool *)((char *)e - offsetof(Pool, live));
  if (why == LIVE_EXIT && !p->closed) pool_kill(p);
}

static void pool_teardown (lua_State *L, Pool *p) {
  if (p->closed || p->owner != getpid()) return;  /* a worker's copy */
  p->closed = 1;
  pool_kill(p);
  if (p->slots != NULL) munmap(p->slots, (size_t)p->nw * sizeof(Slot));
  p->slots = NULL;
  if (p->hole != NULL) sys_nofork(p->hole, p->holelen, 0);
  p->hole = NULL;
  pool_unchain(L, p);
  free(p->todo);
  p->todo = NULL;
}

static int pool_gc (lua_State *L) {      /* __gc, __close and :close() */
  pool_teardown(L, (Pool *)luaL_checkudata(L, 1, POOL_MT));
  return 0;
}

static void pool_fail (lua_State *L, Pool *p, const char *what) {
  p->syserr = errno;
  p->syswhat = what;
  lua_pushliteral(L, "par.map: system error");   /* map_map returns fail */
  lua_error(L);
}

static void pool_nomem (lua_State *L) {
  luaL_error(L, "not enough memory");
}

/* }====================================================== */


/*
** {======================================================
** Handing out work
** =======================================================
*/

static void todo_push (lua_State *L, Pool *p, lua_Integer a, lua_Integer b) {
  if (a > b) return;
  if (p->ntodo == p->todocap) {
    size_t cap = p->todocap ? 2 * p->todocap : 8;
    Range *t = (Range *)realloc(p->todo, cap * sizeof(Range));
    if (t == NULL) pool_nomem(L);
    p->todo = t;
    p->todocap = cap;
  }
  p->todo[p->ntodo].a = a;
  p->todo[p->ntodo++].b = b;
  p->left += b - a + 1;
}

/* Guided scheduling: big ranges first to amortise the round trips, then
** smaller and smaller so that the last items balance across workers. */
static void todo_take (Pool *p, lua_Integer *a, lua_Integer *b) {
  Range *r = &p->todo[p->ntodo - 1];
  lua_Integer c = p->chunksize > 0 ? p->chunksize : p->left / (4 * p->nw);
  if (c < 1) c = 1;
  if (c > r->b - r->a + 1) c = r->b - r->a + 1;
  *a = r->a;
  *b = r->a + c - 1;
  r->a += c;
  p->left -= c;
  if (r->a > r->b) p->ntodo--;
}

/* A send to a worker that just died must not kill the caller with
** SIGPIPE: hence a socket and sys_sendall.  Its death shows up as EOF. */
static void worker_give (Pool *p, Worker *w) {
  int64_t msg[2];
  lua_Integer a, b;
  todo_take(p, &a, &b);
  msg[0] = a;
  msg[1] = b;
  sys_sendall(w->fd, msg, sizeof msg);
  w->a = a;
  w->b = b;
  w->state = W_BUSY;
}

/* }====================================================== */




/*
** {======================================================
** The worker (a forked child; never returns)
** =======================================================
*/

typedef struct Child {
  int fd;                /* socket to the parent */
  Slot *slot;
  int timed;             /* record item start times */
  Arena *arena;          /* where its Lua allocations go ... */
  size_t budget;         /* ... and how much of it before it retires */
  int retire;            /* over budget: leave after this item */
  lua_Integer i, b;      /* the item running, the end of the range */
  int64_t flushed;       /* CLOCK_MONOTONIC_COARSE of the last write */
  int64_t checked;       /* ... and of the last look at the clock */
  int since, every;      /* items since that look, and between looks */
  lua_State *T;          /* items run here (stack: T_MSGH, T_RUN) */
  Buf out;
  size_t batch;          /* where the open F_RESULT frame starts ... */
  int inbatch;           /* ... if there is one */
  size_t encoding;       /* where the result being encoded starts, or 0 */
} Child;

#define CHILD_BASE    5     /* on L: the Child */
#define CHILD_THREAD  6     /* on L: c->T */
#define T_MSGH        1     /* child_msgh */
#define T_RUN         2     /* child_items, with fn and items as upvalues */

static size_t gc_kbytes (lua_State *L) {
  return (size_t)lua_gc(L, LUA_GCCOUNT, 0);
}

static void batch_end (lua_State *L, Child *c);

/* Every way out of a worker: what fn printed appears once, and nothing the
** worker started outlives it. */
static void child_exit (int status) {
  fflush(NULL);
  sys_reapall();
  _exit(status);
}

/* A failed write means the parent is gone: nothing is left to do. */
static void child_flush (lua_State *L, Child *c) {
  batch_end(L, c);
  if (sys_writeall(c->fd, c->out.data, c->out.len) != 0)
    child_exit(EXIT_FAILED);
  c->out.len = 0;
  c->flushed = sys_coarsens();
}

static void put_le (unsigned char *p, uint64_t v, int n) {
  int k;
  for (k = 0; k < n; k++) p[k] = (unsigned char)(v >> (8 * k));
}

/* Start a frame: room for the longest header.  Returns where it begins. */
static size_t frame_open (lua_State *L, Child *c) {
  size_t at;
  batch_end(L, c);
  at = c->out.len;
  if (buf_reserve(&c->out, HDR_LONG + 64) != 0) pool_nomem(L);
  c->out.len += HDR_SHORT;
  return at;
}

/* Write the header; a body of 4 GiB or more takes the long form. */
static void frame_close (lua_State *L, Child *c, size_t at, int kind) {
  unsigned char *h = (unsigned char *)c->out.data + at;
  uint64_t len = c->out.len - at - HDR_SHORT;
  h[0] = (unsigned char)kind;
  if (len < LEN_ESCAPE) {
    put_le(h + 1, len, 4);
    return;
  }
  if (buf_reserve(&c->out, 8) != 0) pool_nomem(L);
  h = (unsigned char *)c->out.data + at;
  memmove(h + HDR_LONG, h + HDR_SHORT, len);
  put_le(h + 1, LEN_ESCAPE, 4);
  put_le(h + HDR_SHORT, len, 8);
  c->out.len += 8;
}

static void frame_text (lua_State *L, Child *c, int kind, const char *s) {
  size_t at = frame_open(L, c);
  if (buf_add(&c->out, s, strlen(s)) != 0) pool_nomem(L);
  frame_close(L, c, at, kind);
}

/* Results of consecutive items share one frame: for tiny results the
** parent's cost per item is then one decode and one store. */
static void batch_end (lua_State *L, Child *c) {
  if (!c->inbatch) return;
  c->inbatch = 0;
  frame_close(L, c, c->batch, F_RESULT);
}

/* The value at the top as a result, or the reason it can't be one. */
static void frame_result (lua_State *L, Child *c) {
  char err[256];
  size_t at;
  if (!c->inbatch) {
    c->batch = frame_open(L, c);
    c->inbatch = 1;
  }
  at = c->encoding = c->out.len;
  if (codec_encode(L, -1, &c->out, "result", err, sizeof err) == 0) {
    c->encoding = 0;
    return;
  }
  c->out.len = at;
  c->encoding = 0;
  frame_text(L, c, F_UNSENT, err);
}

/* Error value and traceback (from child_msgh's table at the top).  An
** error value that can't travel is replaced by a message saying why. */
static void frame_error (lua_State *L, Child *c, int status, int kind) {
  char err[256];
  size_t at = frame_open(L, c);
  if (status == LUA_ERRRUN && lua_istable(L, -1)) {
    lua_rawgeti(L, -1, 2);
    lua_rawgeti(L, -2, 1);
  }
  else {                             /* memory error: no handler ran */
    lua_pushliteral(L, "");
    lua_pushvalue(L, -2);
  }
  if (codec_encode(L, -1, &c->out, "error", err, sizeof err) != 0) {
    c->out.len = at + HDR_SHORT;
    lua_pushfstring(L, "(error object is a %s value that cannot be sent: %s)",
                    luaL_typename(L, -1), err);
    codec_encode(L, -1, &c->out, "error", err, sizeof err);
    lua_pop(L, 1);
  }
  codec_encode(L, -2, &c->out, "traceback", err, sizeof err);
  lua_pop(L, 2);
  frame_close(L, c, at, kind);
}

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
** child_items (c), on T under pcall: run items c->i..c->b with one
** protected call for the lot, not one per item (it halves the cost of a
** tiny item).  When fn raises, c->i is the item that did, and the pcall
** returns to child_range, which reports it and calls again for the rest.
*/
static int child_items (lua_State *T) {
  Child *c = (Child *)lua_touserdata(T, 1);
  for (; c->i <= c->b; c->i++) {
    slot_start(c->slot, c->i, c->timed);
    lua_pushvalue(T, lua_upvalueindex(1));
    lua_rawgeti(T, lua_upvalueindex(2), c->i);
    lua_pushinteger(T, c->i);
    lua_call(T, 2, 1);
    if (c->timed) slot_stop(c->slot);
    frame_result(T, c);
    lua_settop(T, 1);
    if (c->arena->used > c->budget) {
      c->retire = 1;
      c->i++;
      return 0;
    }
    if (c->out.len >= FLUSH_BYTES || child_due(c))
      child_flush(T, c);
  }
  return 0;
}

/* Run items a..b.  Returns 0 when over budget: F_RETIRE is sent and the
** parent takes the rest of the range back. */
static int child_range (lua_State *L, Child *c, lua_Integer a, lua_Integer b) {
  lua_State *T = c->T;
  c->i = a;
  c->b = b;
  while (c->i <= c->b && !c->retire) {
    int status;
    lua_pushvalue(T, T_RUN);
    lua_pushlightuserdata(T, c);
    status = lua_pcall(T, 1, 0, T_MSGH);
    if (status == LUA_OK) continue;
    if (c->timed) slot_stop(c->slot);
    if (c->encoding) c->out.len = c->encoding;  /* out of memory there */
    c->encoding = 0;
    lua_xmove(T, L, 1);
    frame_error(L, c, status, F_ERROR);
    lua_settop(L, CHILD_THREAD);
    c->retire = c->arena->used > c->budget;
    c->i++;
  }
  if (c->retire) frame_text(L, c, F_RETIRE, "");
  if (c->out.len > 0) child_flush(L, c);
  return !c->retire;
}

/* Read one task; 0 at EOF (no more work). */
static int child_task (lua_State *L, Child *c, lua_Integer *a, lua_Integer *b) {
  int64_t msg[2];
  size_t got = 0;
  while (got < sizeof msg) {
    ssize_t k = read(c->fd, (char *)msg + got, sizeof msg - got);
    if (k < 0 && errno == EINTR) continue;
    if (k == 0 && got == 0) return 0;
    if (k <= 0) luaL_error(L, "read from parent: %s", k ? strerror(errno) : "EOF");
    got += (size_t)k;
  }
  *a = msg[0];
  *b = msg[1];
  return 1;
}

static void child_init (lua_State *L, Child *c) {
  int status;
  if (!lua_isnil(L, MAP_INIT)) {
    __atomic_store_n(&c->slot->cur, SLOT_INIT, __ATOMIC_SEQ_CST);
    lua_pushvalue(L, MAP_INIT);
    lua_xmove(L, c->T, 1);
    status = lua_pcall(c->T, 0, 0, T_MSGH);
    if (status != LUA_OK) {
      lua_xmove(c->T, L, 1);
      frame_error(L, c, status, F_INITERR);
      child_flush(L, c);
      luaL_error(L, "init failed");
    }
  }
  __atomic_store_n(&c->slot->cur, 0, __ATOMIC_SEQ_CST);
}

/* The worker's body, protected: a Lua error here must end in _exit, never
** unwind into the parent's frames that this process inherited.  Items
** run on a thread of their own, so that a traceback shows fn's frames and
** not the parent's, which this process inherited too. */
static int child_run (lua_State *L) {
  Child *c = (Child *)lua_touserdata(L, CHILD_BASE);
  lua_Integer a, b;
  c->T = lua_newthread(L);                  /* CHILD_THREAD */
  lua_pushcfunction(c->T, child_msgh);      /* T_MSGH */
  lua_pushvalue(L, MAP_FN);
  lua_pushvalue(L, MAP_ITEMS);
  lua_xmove(L, c->T, 2);
  lua_pushcclosure(c->T, child_items, 2);   /* T_RUN */
  c->flushed = c->checked = sys_coarsens();
  c->every = 1;
  child_init(L, c);
  while (child_task(L, c, &a, &b))
    if (!child_range(L, c, a, b)) break;
  return 0;
}

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

/* Where a results array was kept out of this process, map zeroed pages:
** zero bytes read as nil, so a collection that the worker's own code
** starts can still traverse those tables. */
static void child_holes (lua_State *L) {
  Pool *q;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &pool_chainkey);
  q = (Pool *)lua_touserdata(L, -1);
  lua_pop(L, 1);
  for (; q != NULL; q = q->outer)
    if (q->hole != NULL)
      mmap(q->hole, q->holelen, PROT_READ | PROT_WRITE,
           MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
}

/* Out of memory where not even an error frame could be built (setting up,
** or reporting an item): say so in a frame built on the stack.  Results
** not sent yet are lost; the parent gives those items to another worker. */
static void child_nomem (Child *c) {
  char h[HDR_SHORT] = {F_NOMEM, 0, 0, 0, 0};
  sys_writeall(c->fd, h, sizeof h);
}

static void child_main (lua_State *L, Pool *p, int self, int fd) {
  Child c;
  Arena arena;
  int status;
  setpgid(0, 0);                      /* see worker_kill */
  sys_subreaper();                    /* orphans below stay ours */
  sys_pdeathsig(SIGKILL);             /* die with the parent ... */
  if (getppid() != p->owner)          /* ... even if it died already */
    _exit(EXIT_ORPHAN);
  child_holes(L);
  intr_afterfork();
  child_signals();
  /* the siblings' sockets, and whatever par.run holds if this map runs
  ** inside its on_done (a command's pipe kept open here would get no EOF
  ** until we exit): a worker never execs, so the flag alone closes nothing */
  sys_closecloexec(fd);
  lua_gc(L, LUA_GCSTOP);
  memset(&arena, 0, sizeof arena);
  lua_setallocf(L, arena_alloc, &arena);
  memset(&c, 0, sizeof c);
  buf_mapped(&c.out);                 /* see buf.c */
  c.arena = &arena;
  c.fd = fd;
  c.slot = &p->slots[self];
  c.timed = p->timeout > 0;
  c.budget = p->memory;
  lua_pushcfunction(L, child_run);
  lua_pushvalue(L, MAP_FN);
  lua_pushvalue(L, MAP_ITEMS);
  lua_pushvalue(L, MAP_INIT);
  lua_pushnil(L);                     /* MAP_ONRESULT: not for workers */
  lua_pushlightuserdata(L, &c);       /* CHILD_BASE */
  status = lua_pcall(L, 5, 0, 0);
  if (status == LUA_ERRMEM) child_nomem(&c);
  else if (status != LUA_OK && lua_type(L, -1) == LUA_TSTRING &&
      strcmp(lua_tostring(L, -1), "init failed") != 0)
    fprintf(stderr, "par.map: worker %ld: %s\n", (long)getpid(),
            lua_tostring(L, -1));
  child_exit(status == LUA_OK ? 0 : EXIT_FAILED);
}

/* }====================================================== */


/*
** {======================================================
** Starting and ending workers (parent side)
** =======================================================
*/

static int pool_alive (Pool *p) {
  int k, n = 0;
  for (k = 0; k < p->nw; k++) n += p->w[k].pid != 0;
  return n;
}

/* A worker could not start (fork failed; or it could not set itself up,
** as on ENOMEM under a ulimit -v): the pool goes on with the workers it
** has, and only with none left does the map fail with nil, msg, errno. */
static void worker_nostart (lua_State *L, Pool *p, Worker *w,
                            const char *what, int e) {
  w->state = W_NOSTART;
  if (pool_alive(p) > 0) return;
  errno = e;
  pool_fail(L, p, what);
}

/* Fork a worker into slot k; 0 if it could not start (worker_nostart). */
static int worker_start (lua_State *L, Pool *p, int k) {
  Worker *w = &p->w[k];
  int sv[2], e;
  pid_t pid;
  int64_t t;
  if ((e = sys_socketpair(sv)) != 0) {
    errno = e;
    pool_fail(L, p, "socketpair");
  }
  __atomic_store_n(&p->slots[k].cur, SLOT_SETUP, __ATOMIC_SEQ_CST);
  p->slots[k].t0 = 0;
  fflush(NULL);                 /* or the child would print it again */
  t = sys_monons();
  pid = fork();
  if (pid < 0) {
    e = errno;
    close(sv[0]);
    close(sv[1]);
    worker_nostart(L, p, w, "fork", e);
    return 0;
  }
  if (pid == 0) {
    close(sv[0]);
    child_main(L, p, k, sv[1]);
  }
  p->forkns = sys_monons() - t;
  close(sv[1]);
  setpgid(pid, pid);            /* whichever of us comes first makes it */
  w->pid = pid;
  w->fd = sv[0];
  w->state = W_IDLE;
  w->killed = 0;
  w->nomem = 0;
  w->in.len = 0;
  return 1;
}

static const char *signame (int sig) {
  static const struct { int sig; const char *name; } names[] = {
    {SIGHUP, "SIGHUP"}, {SIGINT, "SIGINT"}, {SIGQUIT, "SIGQUIT"},
    {SIGILL, "SIGILL"}, {SIGTRAP, "SIGTRAP"}, {SIGABRT, "SIGABRT"},
    {SIGBUS, "SIGBUS"}, {SIGFPE, "SIGFPE"}, {SIGKILL, "SIGKILL"},
    {SIGUSR1, "SIGUSR1"}, {SIGSEGV, "SIGSEGV"}, {SIGUSR2, "SIGUSR2"},
    {SIGPIPE, "SIGPIPE"}, {SIGALRM, "SIGALRM"}, {SIGTERM, "SIGTERM"},
    {SIGXCPU, "SIGXCPU"}, {SIGXFSZ, "SIGXFSZ"}, {SIGSYS, "SIGSYS"},
  };
  size_t k;
  for (k = 0; k < sizeof names / sizeof names[0]; k++)
    if (names[k].sig == sig) return names[k].name;
  return "?";
}

/* "worker died (signal 9, SIGKILL)" or "(exit 3)". */
static void push_death (lua_State *L, int st) {
  if (st == -1)
    lua_pushliteral(L, "worker died (status lost)");
  else if (WIFSIGNALED(st))
    lua_pushfstring(L, "worker died (signal %d, %s)", WTERMSIG(st),
                    signame(WTERMSIG(st)));
  else
    lua_pushfstring(L, "worker died (exit %d)", WEXITSTATUS(st));
}

static void push_timeout (lua_State *L, double t) {
  char num[32];
  snprintf(num, sizeof num, "%.14g", t);
  lua_pushfstring(L, "timeout after %ss", num);
}

/* Item i failed with the message (or error value) at the top: raise it,
** or record it and go on. */
static void item_failed (lua_State *L, Pool *p, lua_Integer i) {
  if (!p->collect) lua_error(L);
  lua_rawseti(L, MAP_ERRS, i);
  p->ndone++;
}

/* Messages are joined with lua_concat, never through a "%s": that would
** cut an error value at its first NUL byte. */
static void item_fail_reason (lua_State *L, Pool *p, lua_Integer i) {
  lua_pushfstring(L, "par.map: item %I: ", (LUAI_UACINT)i);
  lua_insert(L, -2);
  lua_concat(L, 2);
  item_failed(L, p, i);
}

/* Why a worker died: it ran out of memory, or its wait status. */
static void push_why (lua_State *L, Worker *w, int st) {
  if (w->nomem) lua_pushliteral(L, "not enough memory");
  else push_death(L, st);
}

/* A busy worker is gone.  Blame the item it was running (the shared slot
** says which), or the first it held if it never started one; the items it
** ran whose results it had not sent yet go back in the queue.  A death in
** opts.init raises; one for want of memory before it could even set
** itself up blames no item. */
static void worker_died (lua_State *L, Pool *p, Worker *w, int st) {
  lua_Integer cur = __atomic_load_n(&p->slots[w - p->w].cur, __ATOMIC_SEQ_CST);
  lua_Integer blame = (cur >= w->a && cur <= w->b) ? cur : w->a;
  if (cur == SLOT_SETUP && w->nomem) {
    todo_push(L, p, w->a, w->b);
    worker_nostart(L, p, w, "worker setup", ENOMEM);
    return;
  }
  if (cur == SLOT_INIT) {
    lua_pushliteral(L, "par.map: init: ");
    push_why(L, w, st);
    lua_concat(L, 2);
    lua_error(L);
  }
  if (w->killed && w->killed < w->a) {   /* it finished before the kill */
    todo_push(L, p, w->a, w->b);
    return;
  }
  if (w->killed) {
    blame = w->killed;
    push_timeout(L, p->timeout);
  }
  else push_why(L, w, st);
  todo_push(L, p, w->a, blame - 1);
  todo_push(L, p, blame + 1, w->b);
  item_fail_reason(L, p, blame);
}

/* The worker's socket reached EOF: it has exited or is about to. */
static void worker_ended (lua_State *L, Pool *p, Worker *w) {
  pid_t pid = w->pid;
  int st;
  worker_close(w);
  st = worker_wait(pid);
  w->pid = 0;
  if (w->state == W_BUSY) worker_died(L, p, w, st);
}

/* }====================================================== */


/*
** {======================================================
** Frames (parent side)
** =======================================================
*/

static uint64_t get_le (const unsigned char *p, int n) {
  uint64_t v = 0;
  while (n-- > 0) v = (v << 8) | p[n];
  return v;
}

/* Header length and body length of the frame at p, or 0 if incomplete. */
static size_t frame_header (const unsigned char *p, size_t avail,
                            uint64_t *len) {
  if (avail < HDR_SHORT) return 0;
  *len = get_le(p + 1, 4);
  if (*len != LEN_ESCAPE) return HDR_SHORT;
  if (avail < HDR_LONG) return 0;
  *len = get_le(p + HDR_SHORT, 8);
  return HDR_LONG;
}

static void protocol_error (lua_State *L, Worker *w, const char *what) {
  luaL_error(L, "par.map: worker %d: %s", (int)w->pid, what);
}

/* The next item a busy worker reports on. */
static lua_Integer item_next (lua_State *L, Worker *w) {
  if (w->state != W_BUSY || w->a > w->b)
    protocol_error(L, w, "result for no item");
  return w->a++;
}

static void decode_one (lua_State *L, Worker *w, const char **s, size_t *len) {
  char err[128];
  size_t used;
  if (codec_decode(L, *s, *len, &used, err, sizeof err) != 0)
    protocol_error(L, w, err);
  *s += used;
  *len -= used;
}

/* Without on_result, the results of a frame go straight into their slots:
** one decoder set-up per frame, not per item. */
static void item_result (lua_State *L, Pool *p, Worker *w,
                         const char *s, size_t len) {
  if (lua_isnil(L, MAP_ONRESULT) && len > 0) {
    char err[128];
    lua_Integer k;
    if (w->state != W_BUSY) protocol_error(L, w, "result for no item");
    k = codec_decode_into(L, MAP_RESULTS, w->a, w->b - w->a + 1, s, len,
                          err, sizeof err);
    if (k < 0) protocol_error(L, w, err);
    w->a += k;
    p->ndone += k;
    return;
  }
  while (len > 0) {
    lua_Integer i = item_next(L, w);
    decode_one(L, w, &s, &len);
    p->ndone++;
    lua_pushvalue(L, -1);
    lua_rawseti(L, MAP_RESULTS, i);
    lua_pushvalue(L, MAP_ONRESULT);
    lua_insert(L, -2);
    lua_pushinteger(L, i);
    lua_call(L, 2, 0);
  }
}

/* Decode error value and traceback; leave the error to raise or collect:
** a table as it came, anything else as "par.map: <who>: msg\ntraceback". */
static void push_error (lua_State *L, Worker *w, const char *who,
                        const char *s, size_t len) {
  decode_one(L, w, &s, &len);
  decode_one(L, w, &s, &len);
  if (lua_istable(L, -2)) {
    lua_pop(L, 1);
    return;
  }
  lua_pushfstring(L, "par.map: %s: ", who);
  if (lua_type(L, -3) == LUA_TSTRING || lua_type(L, -3) == LUA_TNUMBER)
    lua_pushvalue(L, -3);            /* every byte of it (item_fail_reason) */
  else
    lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, -3));
  lua_concat(L, 2);
  if (lua_rawlen(L, -2) > 0) {
    lua_pushliteral(L, "\n");
    lua_pushvalue(L, -3);
    lua_concat(L, 3);
  }
  lua_replace(L, -3);
  lua_pop(L, 1);
}

static void item_error (lua_State *L, Pool *p, Worker *w,
                        const char *s, size_t len) {
  char who[48];
  lua_Integer i = item_next(L, w);
  snprintf(who, sizeof who, "item " LUA_INTEGER_FMT, (LUAI_UACINT)i);
  push_error(L, w, who, s, len);
  item_failed(L, p, i);
}

static void item_unsent (lua_State *L, Pool *p, Worker *w,
                         const char *s, size_t len) {
  lua_Integer i = item_next(L, w);
  lua_pushlstring(L, s, len);
  item_fail_reason(L, p, i);
}

static void worker_retire (lua_State *L, Pool *p, Worker *w) {
  if (w->state == W_BUSY) todo_push(L, p, w->a, w->b);
  w->state = W_RETIRING;
}

static void frame_handle (lua_State *L, Pool *p, Worker *w, int kind,
                          const char *s, size_t len) {
  switch (kind) {
    case F_RESULT: item_result(L, p, w, s, len); break;
    case F_ERROR: item_error(L, p, w, s, len); break;
    case F_UNSENT: item_unsent(L, p, w, s, len); break;
    case F_RETIRE: worker_retire(L, p, w); break;
    case F_NOMEM: w->nomem = 1; break;
    case F_INITERR:
      push_error(L, w, "init", s, len);
      lua_error(L);
      break;
    default: protocol_error(L, w, "bad frame");
  }
  if (w->state == W_BUSY && w->a > w->b) w->state = W_IDLE;
}

/* Handle every complete frame in w->in; keep a partial one for later, and
** make room for all of it if its header says it is big. */
static void worker_frames (lua_State *L, Pool *p, Worker *w) {
  size_t off = 0;
  for (;;) {
    const unsigned char *h = (const unsigned char *)w->in.data + off;
    size_t avail = w->in.len - off;
    uint64_t len;
    size_t hl = frame_header(h, avail, &len);
    if (hl == 0 || avail - hl < len) break;
    frame_handle(L, p, w, h[0], (const char *)h + hl, (size_t)len);
    off += hl + (size_t)len;
  }
  if (off > 0) {
    memmove(w->in.data, w->in.data + off, w->in.len - off);
    w->in.len -= off;
  }
}

static void worker_input (lua_State *L, Pool *p, Worker *w) {
  ssize_t n;
  if (buf_reserve(&w->in, READ_MIN) != 0) pool_nomem(L);
  n = read(w->fd, w->in.data + w->in.len, w->in.cap - w->in.len);
  if (n > 0) {
    w->in.len += (size_t)n;
    worker_frames(L, p, w);
  }
  else if (n == 0 || (errno != EINTR && errno != EAGAIN))
    worker_ended(L, p, w);
}

/* }====================================================== */


/*
** {======================================================
** The caller's loop
** =======================================================
*/

/* A replacement (for a worker that retired or died) forks from the
** caller, which costs its page tables (25 ms for a 1 GB heap), and as much
** again when it exits.  It pays only if the workers at work would take
** longer than that over the items left: with s the time one worker has
** taken per item so far and n workers at work, one more saves
** left * s * (1/n - 1/(n + 1)). */
static int pool_worthfork (Pool *p) {
  int k, n = 0;
  double s;
  for (k = 0; k < p->nw; k++)
    n += p->w[k].pid != 0 && p->w[k].state <= W_BUSY;
  if (n == 0 || p->ndone == 0) return 1;
  s = (double)(sys_monons() - p->t0) * p->nw / (double)p->ndone;
  return (double)p->left * s / ((double)n * (n + 1)) > 2.0 * (double)p->forkns;
}

/* Give idle workers work, or tell them there is none; fill empty slots
** while work is left (a replacement forks from the caller, so it holds
** the caller's state as it is now). */
static void pool_dispatch (lua_State *L, Pool *p) {
  int k;
  for (k = 0; k < p->nw; k++) {
    Worker *w = &p->w[k];
    if (w->pid == 0 || w->state != W_IDLE) continue;
    if (p->left > 0) worker_give(p, w);
    else {
      shutdown(w->fd, SHUT_WR);      /* EOF: the worker flushes and exits */
      w->state = W_QUIT;
    }
  }
  for (k = 0; k < p->nw && p->left > 0; k++) {
    if (p->w[k].pid != 0) continue;
    if (p->w[k].state == W_NOSTART && pool_alive(p) > 0) continue;
    if (!pool_worthfork(p)) break;
    if (worker_start(L, p, k)) worker_give(p, &p->w[k]);
  }
}

static int pool_done (Pool *p) {
  int k;
  if (p->left > 0) return 0;
  for (k = 0; k < p->nw; k++)
    if (p->w[k].pid != 0) return 0;
  return 1;
}

/* Milliseconds until the next item deadline, or -1 without timeouts. */
static int pool_polltime (Pool *p) {
  int64_t now, limit = (int64_t)(p->timeout * 1e9), next = limit;
  int k;
  if (p->timeout <= 0) return -1;
  now = sys_monons();
  for (k = 0; k < p->nw; k++) {
    int64_t t0 = 0;
    Worker *w = &p->w[k];
    if (w->pid == 0 || w->state != W_BUSY || w->killed) continue;
    if (slot_running(&p->slots[k], &t0) >= w->a && t0 + limit - now < next)
      next = t0 + limit - now;
  }
  if (next < 0) return 0;
  return next / 1000000 + 1 > INT_MAX ? INT_MAX : (int)(next / 1000000 + 1);
}

static void pool_timeouts (Pool *p) {
  int64_t now, limit = (int64_t)(p->timeout * 1e9);
  int k;
  if (p->timeout <= 0) return;
  now = sys_monons();
  for (k = 0; k < p->nw; k++) {
    int64_t t0 = 0;
    Worker *w = &p->w[k];
    lua_Integer i;
    if (w->pid == 0 || w->state != W_BUSY || w->killed) continue;
    i = slot_running(&p->slots[k], &t0);
    if (i >= w->a && i <= w->b && now - t0 >= limit) {
      worker_kill(w->pid);            /* its EOF reports the item */
      w->killed = i;
    }
  }
}

/* Count, not intr_pending(): an outer par call may have seen a signal
** before we began. */
static void pool_checkintr (lua_State *L, Pool *p) {
  if (p->intrfd >= 0 && intr_count() != p->sigseen) {
    intr_ack();
    lua_pushliteral(L, "interrupted");
    lua_error(L);
  }
}

/*
** While the map runs, each page the caller's collector marks is a fault,
** and a copy while the workers share it; so the collector must not step.
** LUA_GCSTOP would do, but LUA_GCRESTART then zeroes the collector's debt
** and so starts a new cycle at once, however far the next one was: with a
** big heap, one step of it soon marks a table that holds most of the heap,
** and faults on nearly every page (10 s for 1 GB on a VM where a fault
** costs 20 us).  Instead the debt is lowered by a headroom for the map and
** raised by as much after it: the collector keeps its pace, as if the map
** had allocated with it running.  (LUA_GCSTEP adds its argument, in KiB,
** to the debt, and steps only if the debt is then positive.)
*/
#define GC_HEADROOM   (1 << 30)          /* KiB: 1 TiB */

static void gc_pause (lua_State *L, Pool *p) {
  p->gcbase = gc_kbytes(L);
  if (!lua_gc(L, LUA_GCISRUNNING)) return;   /* stopped by the caller */
  lua_gc(L, LUA_GCSTEP, -GC_HEADROOM);
  p->gcpaused = 1;
}

static void gc_resume (lua_State *L, Pool *p) {
  if (!p->gcpaused) return;
  p->gcpaused = 0;
  lua_gc(L, LUA_GCSTEP, GC_HEADROOM);
}

/* ... but not for ever: once the caller has allocated as much again as it
** held (or 64 MiB) during the map, a garbage-heavy on_result has the
** collector back. */
static void pool_gccheck (lua_State *L, Pool *p) {
  size_t lim = p->gcbase > 64u << 10 ? p->gcbase : 64u << 10;
  if (p->gcpaused && gc_kbytes(L) > p->gcbase + lim) gc_resume(L, p);
}

static void pool_wait (lua_State *L, Pool *p) {
  int k, r, base = 0;
  if (p->intrfd >= 0 && p->pollintr) {
    p->pfd[0].fd = p->intrfd;
    p->pfd[0].events = POLLIN;
    base = 1;
  }
  for (k = 0; k < p->nw; k++) {
    p->pfd[base + k].fd = p->w[k].fd;    /* -1 (empty slot): poll skips it */
    p->pfd[base + k].events = POLLIN;
  }
  r = poll(p->pfd, (nfds_t)(base + p->nw), pool_polltime(p));
  pool_checkintr(L, p);
  if (r < 0 && errno != EINTR) pool_fail(L, p, "poll");
  if (r > 0 && base && p->pfd[0].revents)
    p->pollintr = 0;   /* readable, yet no new signal: a byte an inner
                          par.run left; pool_checkintr still counts */
  for (k = 0; r > 0 && k < p->nw; k++)
    if (p->pfd[base + k].revents && p->w[k].fd >= 0)
      worker_input(L, p, &p->w[k]);
  pool_timeouts(p);
  pool_gccheck(L, p);
}

static void pool_open (lua_State *L, Pool *p) {
  size_t size = (size_t)p->nw * sizeof(Slot);
  void *m = mmap(NULL, size, PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) pool_fail(L, p, "mmap");
  p->slots = (Slot *)m;
  p->closed = 0;
  p->t0 = sys_monons();
  pool_chain(L, p);
  todo_push(L, p, 1, p->n);
  p->L = L;
  live_add(&p->live, pool_live);
  p->intrfd = intr_begin(L);
  if (p->intrfd < 0) pool_fail(L, p, "pipe");
  p->sigseen = intr_count();
  p->pollintr = 1;
}

/*
** After a fork every page of the caller is write-protected, and the first
** write to each one faults (and copies it while a worker shares it).  A
** results table of a million items spans thousands of pages, and on some
** virtual machines a fault costs 20 us or more: filling it would cost more
** than computing it.  So the array part of the results table is marked
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
  pool_open(L, p);
  results_new(L, p);                         /* MAP_RESULTS */
  if (p->collect) lua_newtable(L);           /* MAP_ERRS */
  else lua_pushnil(L);
  for (;;) {
    pool_dispatch(L, p);
    if (pool_done(p)) break;
    pool_wait(L, p);
  }
  if (p->ndone != p->n)
    return luaL_error(L, "par.map: internal error: %I of %I items done",
                      (LUAI_UACINT)p->ndone, (LUAI_UACINT)p->n);
  return 2;
}

/* }====================================================== */


/*
** {======================================================
** core.map (fn, items, opts)
** =======================================================
*/

/* core.seqlen (t): #t if t is a sequence (no holes in 1..#t and no
** integer key beyond it), else nil.  One pass of lua_next: a third of
** what the same check costs in Lua, which matters for a million tiny
** items. */
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
** Lua layer's word that it ran core.seqlen already (a pass over a million
** items is 10 ms): then only #items is compared.  A wrong word could not
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

/* Options are checked as the Lua layer checks them (an integer is of the
** integer subtype, a number is not a numeric string), so that what it
** lets through the core takes. */
static lua_Integer opt_int (lua_State *L, const char *name, lua_Integer def,
                            lua_Integer min) {
  lua_Integer v = def;
  if (lua_getfield(L, 3, name) != LUA_TNIL) {
    if (!lua_isinteger(L, -1) || (v = lua_tointeger(L, -1)) < min)
      luaL_argerror(L, 3, lua_pushfstring(L, "option '%s': integer >= %I "
                    "expected", name, (LUAI_UACINT)min));
  }
  lua_pop(L, 1);
  return v;
}

/* A huge timeout is a fair way to say "practically never": it is clamped,
** not refused, where its nanoseconds added to a CLOCK_MONOTONIC time
** (pool_polltime, pool_timeouts) would overflow int64. */
#define TIMEOUT_MAX   4e9   /* seconds: 127 years */

static double opt_timeout (lua_State *L) {
  double v = 0;
  if (lua_getfield(L, 3, "timeout") != LUA_TNIL) {
    v = lua_tonumber(L, -1);
    if (lua_type(L, -1) != LUA_TNUMBER || !(v > 0) || v == HUGE_VAL)
      luaL_argerror(L, 3, "option 'timeout': finite number > 0 expected");
    if (v > TIMEOUT_MAX) v = TIMEOUT_MAX;
  }
  lua_pop(L, 1);
  return v;
}

static void opt_func (lua_State *L, const char *name) {
  int t = lua_getfield(L, 3, name);
  if (t != LUA_TNIL && t != LUA_TFUNCTION)
    luaL_argerror(L, 3, lua_pushfstring(L, "option '%s': function expected",
                  name));
}

static int opt_collect (lua_State *L) {
  int t = lua_getfield(L, 3, "errors"), collect = 0;
  if (t != LUA_TNIL) {
    const char *s = t == LUA_TSTRING ? lua_tostring(L, -1) : "";
    collect = strcmp(s, "collect") == 0;
    if (!collect && strcmp(s, "raise") != 0)
      luaL_argerror(L, 3, "option 'errors': 'raise' or 'collect' expected");
  }
  lua_pop(L, 1);
  return collect;
}

static void opts_read (lua_State *L, Pool *p) {
  p->chunksize = opt_int(L, "chunksize", 0, 1);
  p->memory = (size_t)opt_int(L, "worker_memory", 64 << 20, 1);
  p->timeout = opt_timeout(L);
  p->collect = opt_collect(L);
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
  gc_resume(L, p);
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

static int map_map (lua_State *L) {
  lua_Integer n, procs;
  Pool *p;
  int status;
  luaL_checktype(L, 1, LUA_TFUNCTION);
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 3);
  n = map_len(L);
  procs = opt_int(L, "procs", 1, 1);
  if (n == 0) return map_empty(L, opt_collect(L));
  opt_func(L, "init");                        /* 4 */
  opt_func(L, "on_result");                   /* 5 */
  if (procs > n) procs = n;
  p = pool_new(L, (int)(procs < 4096 ? procs : 4096));
  p->n = n;
  opts_read(L, p);
  gc_pause(L, p);
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


static const luaL_Reg pool_meta[] = {
  {"__gc", pool_gc},
  {"__close", pool_gc},
  {"__index", NULL},       /* placeholder, set to pool_methods */
  {NULL, NULL}
};

static const luaL_Reg pool_methods[] = {
  {"close", pool_gc},
  {NULL, NULL}
};

void map_open (lua_State *L) {
  luaL_newmetatable(L, POOL_MT);
  luaL_setfuncs(L, pool_meta, 0);
  luaL_newlibtable(L, pool_methods);
  luaL_setfuncs(L, pool_methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  lua_pushcfunction(L, map_map);
  lua_setfield(L, -2, "map");
  lua_pushcfunction(L, map_seqlen);
  lua_setfield(L, -2, "seqlen");
}
