/*
** pool.c: par.map's process pool, the parent side.  It forks workers
** (worker.c) that already hold, copy-on-write, the caller's whole Lua
** state, hands them tasks over a socket and reads back their results;
** both directions are frames (frame.h).
**
** - Work: the items not yet handed out are a stack of ranges; a task is
**   one range [a, b], guided: big ranges first, smaller towards the end.
**   Lazy items (an iterator's) did not exist at the fork: they are pulled
**   only as a worker frees up, a chunk at a time (adaptive: doubling while
**   a chunk is quick), and travel encoded in the task (F_ITEMS).
** - Two sinks: par.map's results table, decoded straight in; or a stream
**   (par.imap), whose results wait by index until the iterator yields
**   them, with no more than 'wcap' given out and not yet yielded.
** - Results: those of one worker arrive in the order of its range, so a
**   frame needs no index, and the results of consecutive items share one
**   frame, decoded straight into the results table.
** - Workers' deaths: a page shared with all of them (slot.h) says which
**   item each one runs, so a dead worker's item is known and the rest of
**   its range goes back on the stack; a fresh fork replaces it.
** - The caller: each page it writes while workers share it is a fault and
**   a copy, so its collector is held back for the map (pool_gcpause).
**
** Only this file kills and reaps workers, and only in the process that
** opened the pool: a worker holds a copy of the Pool too.
*/
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "pool.h"
#include "codec.h"
#include "frame.h"
#include "interrupt.h"
#include "sys.h"
#include "worker.h"

#define POOL_MT       "par.pool"
#define READ_MIN      (256 * 1024)   /* room for one read of results */
#define CHUNK_MAX     4096           /* adaptive chunks: most items ... */
#define CHUNK_BYTES   (256 * 1024)   /* ... and bytes of lazy items */
#define CHUNK_NS      (5 * 1000000LL)   /* a chunk quicker than this grows */
#define WCAP_MIN      1024           /* a stream holds at least this many, */
#define WCAP_MAX      (1 << 20)      /* and at most (a slot is 16 bytes) */

#if !defined(MSG_NOSIGNAL)
#define MSG_NOSIGNAL  0              /* sys_socketpair sets SO_NOSIGPIPE */
#endif


/*
** {======================================================
** The pool and its workers' processes
** =======================================================
*/

Pool *pool_new (lua_State *L, int nw, lua_Integer n, int nuv) {
  size_t size = sizeof(Pool) + (size_t)(nw - 1) * sizeof(Worker);
  size_t psize = (size_t)(nw + 1) * sizeof(struct pollfd);
  Pool *p = (Pool *)lua_newuserdatauv(L, size + psize, nuv);
  int k;
  memset(p, 0, size);      /* a closed pool: nothing to kill, close or free */
  p->closed = 1;
  p->owner = getpid();
  p->nw = nw;
  p->n = n;
  p->intrfd = -1;
  p->pfd = (struct pollfd *)((char *)p + size);
  p->fname = "map";
  p->chunk = 1;
  for (k = 0; k < nw; k++) {
    p->w[k].fd = -1;
    buf_mapped(&p->w[k].in);      /* see buf.c */
    buf_mapped(&p->w[k].task);
  }
  luaL_setmetatable(L, POOL_MT);
  return p;
}

/* Wait for one of our workers; its exit status, or -1 if it was lost
** (a host that sets SIGCHLD to SIG_IGN has the kernel reap children). */
int pool_waitworker (pid_t pid) {
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
** worker is a subreaper (worker.c), so even a daemon an item started is
** still below it.  The group and the pid too, in case the walk found
** nothing: both setpgid calls fail if the worker exits at once. */
void pool_killworker (pid_t pid) {
  sys_killtree(pid, 2.0);
  kill(-pid, SIGKILL);
  kill(pid, SIGKILL);
}

/* Kill every worker first and reap them after, so that they die in
** parallel; a dying worker's mm teardown is what waitpid waits for.  No
** Lua here: the exit handler calls it too. */
static void pool_kill (Pool *p) {
  int k;
  live_remove(&p->live);
  for (k = 0; k < p->nw; k++)
    if (p->w[k].pid > 0) pool_killworker(p->w[k].pid);
  for (k = 0; k < p->nw; k++) {
    worker_close(&p->w[k]);
    if (p->w[k].pid > 0) pool_waitworker(p->w[k].pid);
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

/* A system call failed: raise, for map_map to return fail, msg, errno
** after the teardown. */
static void pool_fail (lua_State *L, Pool *p, const char *what) {
  p->syserr = errno;
  p->syswhat = what;
  lua_pushliteral(L, "par.map: system error");
  lua_error(L);
}

/* }====================================================== */


/*
** {======================================================
** Results arrays kept out of the forks
** =======================================================
*/

/* Open pools form a chain from the registry, innermost first: a forked
** worker must hide every enclosing map's results too (pool_afterfork). */
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

/* In a fresh fork: where a results array was kept out of this process,
** map zeroed pages.  Zero bytes read as nil, so a collection that the
** worker's own code starts can still traverse those tables. */
void pool_afterfork (lua_State *L) {
  Pool *q;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &pool_chainkey);
  q = (Pool *)lua_touserdata(L, -1);
  lua_pop(L, 1);
  for (; q != NULL; q = q->outer)
    if (q->hole != NULL)
      mmap(q->hole, q->holelen, PROT_READ | PROT_WRITE,
           MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
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
    if (t == NULL) par_nomem(L);
    p->todo = t;
    p->todocap = cap;
  }
  p->todo[p->ntodo].a = a;
  p->todo[p->ntodo++].b = b;
  p->left += b - a + 1;
}

/* How many items from 'first' on a stream may give out now: no more than
** wcap waiting to be yielded, and in input order none at wcap or more
** past the next to yield (the arrived ring is that long).  Unbounded
** for par.map. */
static lua_Integer stream_room (Pool *p, lua_Integer first) {
  if (!p->stream) return LUA_MAXINTEGER;
  if (p->ordered) return p->nexty + p->wcap - first;
  return p->wcap - p->hold;
}

/* Items per task: opts.chunksize; else adaptive for lazy items and
** streams (chunk_adapt); else guided, from what is left. */
static lua_Integer pool_chunk (Pool *p) {
  lua_Integer c = p->chunksize;
  if (c <= 0) c = (p->lazy || p->stream) ? p->chunk : p->left / (4 * p->nw);
  return c < 1 ? 1 : c;
}

/* Guided scheduling: big ranges first to amortise the round trips, then
** smaller and smaller so that the last items balance across workers.
** 0 if a stream has no room for the next item. */
static int todo_take (Pool *p, lua_Integer *a, lua_Integer *b) {
  Range *r;
  lua_Integer c = pool_chunk(p), room;
  assert(p->ntodo > 0 && p->left > 0);
  r = &p->todo[p->ntodo - 1];
  if (c > r->b - r->a + 1) c = r->b - r->a + 1;
  room = stream_room(p, r->a);
  if (c > room) c = room;
  if (c < 1) return 0;
  *a = r->a;
  *b = r->a + c - 1;
  r->a += c;
  p->left -= c;
  if (r->a > r->b) p->ntodo--;
  return 1;
}

/* {------------------------------------------------------
** Lazy items: pulled from the iterator into a worker's F_ITEMS task
** ------------------------------------------------------- */

static void offs_reserve (lua_State *L, Worker *w, size_t n) {
  size_t *o;
  if (n <= w->offcap) return;
  o = (size_t *)realloc(w->offs, n * sizeof(size_t));
  if (o == NULL) par_nomem(L);
  w->offs = o;
  w->offcap = n;
}

/* A value the codec cannot send is the caller's bad argument: the item's
** position, and the codec's path ("cannot send a function (at item)"). */
static void item_unencodable (lua_State *L, Pool *p, lua_Integer i,
                              const char *err) {
  lua_pushfstring(L, "bad argument #2 to '%s' (item #%I: %s)", p->fname,
                  (LUAI_UACINT)i, err);
  lua_error(L);
}

/* Pull up to c items (fewer past CHUNK_BYTES) and encode them after the
** open F_ITEMS frame of w->task; how many. */
static lua_Integer items_pull (lua_State *L, Pool *p, Worker *w,
                               lua_Integer c) {
  char err[256];
  size_t at = w->task.len;
  lua_Integer k;
  offs_reserve(L, w, (size_t)(c < CHUNK_MAX ? c : CHUNK_MAX) + 2);
  for (k = 0; k < c && !p->eof && w->task.len - at < CHUNK_BYTES; k++) {
    if ((size_t)k + 2 > w->offcap) offs_reserve(L, w, 2 * (size_t)k + 2);
    w->offs[k] = w->task.len - at;
    lua_pushvalue(L, MAP_ITEMS);
    lua_call(L, 0, 1);
    if (lua_isnil(L, -1)) p->eof = 1;
    else if (codec_encode(L, -1, &w->task, "item", err, sizeof err) != 0)
      item_unencodable(L, p, p->n + 1, err);
    else p->n++;
    lua_pop(L, 1);
  }
  if (p->eof) k--;
  w->offs[k] = w->task.len - at;
  return k;
}

/* A span given back, as the task: its bytes and offsets as they were. */
static lua_Integer items_redo (lua_State *L, Pool *p, Worker *w) {
  Span *sp = &p->redo[--p->nredo];
  lua_Integer k, n = sp->b - sp->a + 1;
  int e = buf_add(&w->task, sp->bytes, sp->offs[n]);
  offs_reserve(L, w, (size_t)n + 1);
  for (k = 0; k <= n; k++) w->offs[k] = sp->offs[k];
  w->first = sp->a;
  free(sp->bytes);
  free(sp->offs);
  if (e != 0) par_nomem(L);
  return n;
}

/* Build w->task: a span given back, else fresh items; 1, or 0 if a stream
** has no room, or -1 once the iterator is done. */
static int items_make (lua_State *L, Pool *p, Worker *w) {
  lua_Integer k, room;
  size_t at;
  w->task.len = 0;
  if (p->nredo == 0 && p->eof) return -1;
  room = stream_room(p, p->nredo > 0 ? p->redo[p->nredo - 1].a : p->n + 1);
  if (room < 1) return 0;
  w->first = p->nredo > 0 ? p->redo[p->nredo - 1].a : p->n + 1;
  if (frame_beginitems(&w->task, &at, w->first) != 0) par_nomem(L);
  if (p->nredo > 0) k = items_redo(L, p, w);
  else {
    lua_Integer c = pool_chunk(p);
    k = items_pull(L, p, w, c < room ? c : room);
  }
  if (k == 0) {
    w->task.len = 0;
    return -1;
  }
  w->base = w->task.len - w->offs[k];
  if (frame_end(&w->task, at, F_ITEMS) != 0) par_nomem(L);
  w->base = w->task.len - w->offs[k];    /* a long header moved the body */
  w->a = w->first;
  w->b = w->first + k - 1;
  return 1;
}

/* Items a..b of w's task go back, to be sent again as they were. */
static void redo_push (lua_State *L, Pool *p, Worker *w, lua_Integer a,
                       lua_Integer b) {
  size_t from = w->offs[a - w->first], n = (size_t)(b - a + 1), k;
  size_t len = w->offs[b - w->first + 1] - from;
  Span *sp;
  if (p->nredo == p->redocap) {
    size_t cap = p->redocap ? 2 * p->redocap : 8;
    Span *t = (Span *)realloc(p->redo, cap * sizeof(Span));
    if (t == NULL) par_nomem(L);
    p->redo = t;
    p->redocap = cap;
  }
  sp = &p->redo[p->nredo];
  sp->bytes = (char *)malloc(len > 0 ? len : 1);
  sp->offs = (size_t *)malloc((n + 1) * sizeof(size_t));
  if (sp->bytes == NULL || sp->offs == NULL) {
    free(sp->bytes);
    free(sp->offs);
    par_nomem(L);
  }
  memcpy(sp->bytes, w->task.data + w->base + from, len);
  for (k = 0; k <= n; k++) sp->offs[k] = w->offs[a - w->first + k] - from;
  sp->a = a;
  sp->b = b;
  p->nredo++;
}

/* }------------------------------------------------------ */

/* Items a..b of w's task go back to be handed out again. */
static void pool_giveback (lua_State *L, Pool *p, Worker *w, lua_Integer a,
                           lua_Integer b) {
  if (a > b) return;
  p->hold -= b - a + 1;
  if (p->lazy) redo_push(L, p, w, a, b);
  else todo_push(L, p, a, b);
}

/* Is there work not yet handed out? */
static int pool_more (Pool *p) {
  return p->lazy ? (p->nredo > 0 || !p->eof) : p->left > 0;
}

/* Choose w's next task (w->a..w->b, and for lazy items w->task): 1, 0 if
** a stream has no room for now, -1 if no work is left. */
static int task_make (lua_State *L, Pool *p, Worker *w) {
  int r;
  if (p->lazy) r = items_make(L, p, w);
  else if (p->left == 0) r = -1;
  else if ((r = todo_take(p, &w->a, &w->b)) == 1) w->first = w->a;
  if (r == 1) p->hold += w->b - w->a + 1;
  return r;
}

/* Send what is left of w->task without blocking; poll says when more
** fits.  A worker that died takes no more: its EOF reports it. */
static void worker_send (lua_State *L, Pool *p, Worker *w) {
  while (w->sent < w->task.len) {
    ssize_t k = send(w->fd, w->task.data + w->sent, w->task.len - w->sent,
                     MSG_DONTWAIT | MSG_NOSIGNAL);
    if (k > 0) w->sent += (size_t)k;
    else if (k < 0 && errno == EINTR) continue;
    else if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    else if (k < 0 && (errno == EPIPE || errno == ECONNRESET))
      w->sent = w->task.len;
    else pool_fail(L, p, "send");
  }
}

/*
** A task goes only to an idle worker: one that has reported on every item
** of its last task, and so has read that task whole.  The socket towards
** it is then empty, and an F_RANGE task (FRAME_RANGE bytes) always fits:
** the send never blocks, however long the worker itself blocks writing
** results that the parent has yet to read.  An F_ITEMS task may not fit:
** it is sent without blocking, the rest as poll says the socket has room
** (pool_wait), while the parent goes on reading results.  A send to a
** worker that just died must not kill the caller with SIGPIPE
** (sys_sendall); its death shows up as EOF on its socket.
*/
static void task_send (lua_State *L, Pool *p, Worker *w) {
  assert(w->state == W_IDLE);
  w->state = W_BUSY;
  w->tgive = sys_monons();
  if (p->lazy) {
    w->sent = 0;
    worker_send(L, p, w);
    return;
  }
  else {
    unsigned char task[FRAME_RANGE];
    frame_putrange(task, w->a, w->b);
    if (sys_sendall(w->fd, task, sizeof task) != 0 && errno != EPIPE &&
        errno != ECONNRESET)
      pool_fail(L, p, "send");
  }
}

/* A task done quickly: the next chunks may be twice as big; one that took
** long: half.  (Only while chunks adapt: pool_chunk.) */
static void chunk_adapt (Pool *p, Worker *w) {
  int64_t dt = sys_monons() - w->tgive;
  lua_Integer k = w->b - w->first + 1;
  if (dt < CHUNK_NS && k >= p->chunk && p->chunk < CHUNK_MAX) p->chunk *= 2;
  else if (dt > 8 * CHUNK_NS && p->chunk > 1) p->chunk /= 2;
}

/* }====================================================== */


/*
** {======================================================
** Starting and ending workers
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

/* The child's side of worker_start: never returns. */
static void worker_child (lua_State *L, Pool *p, int k, int fd) {
  ChildSpec s;
  pool_afterfork(L);
  s.fd = fd;
  s.slot = &p->slots[k];
  s.parent = p->owner;
  s.timed = p->timeout > 0;
  s.budget = p->memory;
  s.who = "par.map";
  lua_pushvalue(L, MAP_FN);
  lua_pushvalue(L, MAP_ITEMS);
  lua_pushvalue(L, MAP_INIT);
  child_main(L, &s);
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
  slot_stage(&p->slots[k], SLOT_SETUP);
  slot_stop(&p->slots[k]);
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
    worker_child(L, p, k, sv[1]);
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
void pool_pushdeath (lua_State *L, int st) {
  if (st == -1)
    lua_pushliteral(L, "worker died (status lost)");
  else if (WIFSIGNALED(st))
    lua_pushfstring(L, "worker died (signal %d, %s)", WTERMSIG(st),
                    signame(WTERMSIG(st)));
  else
    lua_pushfstring(L, "worker died (exit %d)", WEXITSTATUS(st));
}

void pool_pushtimeout (lua_State *L, double t) {
  char num[32];
  snprintf(num, sizeof num, "%.14g", t);
  lua_pushfstring(L, "timeout after %ss", num);
}

/* A stream's item i has arrived: the slot of MAP_RESULTS (from 0; wcap
** of them, an array) where its result goes.  In input order, slot i mod
** wcap (no two items that wait at once share one: stream_room); in
** completion order, the ring's next, which also records i. */
static lua_Integer stream_slot (Pool *p, lua_Integer i) {
  lua_Integer s;
  if (p->ordered) {
    s = i & (p->wcap - 1);
    p->arrived[s] = 1;
    return s;
  }
  s = (p->qhead + p->qlen++) & (p->wcap - 1);
  p->q[s] = i;
  return s;
}

/* Item i failed with the message (or error value) at the top: raise it,
** or record it and go on.  A stream raises only when it yields item i. */
static void item_failed (lua_State *L, Pool *p, lua_Integer i) {
  if (!p->collect && !p->stream) lua_error(L);
  lua_rawseti(L, MAP_ERRS, i);
  p->ndone++;
  if (p->stream) {
    stream_slot(p, i);
    p->nerrs++;
  }
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
  else pool_pushdeath(L, st);
}

/* A busy worker is gone.  Blame the item it was running (the shared slot
** says which), or the first it held if it never started one; the items it
** ran whose results it had not sent yet go back in the queue.  A death in
** opts.init raises; one for want of memory before it could even set
** itself up blames no item. */
static void worker_died (lua_State *L, Pool *p, Worker *w, int st) {
  lua_Integer cur = slot_cur(&p->slots[w - p->w]);
  lua_Integer blame = (cur >= w->a && cur <= w->b) ? cur : w->a;
  if (cur == SLOT_SETUP && w->nomem) {
    pool_giveback(L, p, w, w->a, w->b);
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
    pool_giveback(L, p, w, w->a, w->b);
    return;
  }
  if (w->killed) {
    blame = w->killed;
    pool_pushtimeout(L, p->timeout);
  }
  else push_why(L, w, st);
  pool_giveback(L, p, w, w->a, blame - 1);
  pool_giveback(L, p, w, blame + 1, w->b);
  item_fail_reason(L, p, blame);
}

/* The worker's socket reached EOF: it has exited or is about to. */
static void worker_ended (lua_State *L, Pool *p, Worker *w) {
  pid_t pid = w->pid;
  int st;
  worker_close(w);
  st = pool_waitworker(pid);
  w->pid = 0;
  if (w->state == W_BUSY) worker_died(L, p, w, st);
}

/* }====================================================== */


/*
** {======================================================
** Frames from workers
** =======================================================
*/

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

/* A stream's results, without on_result: straight into their slots, in
** runs of consecutive slots (a run ends where the ring wraps). */
static void stream_results (lua_State *L, Pool *p, Worker *w,
                            const char *s, size_t len) {
  char err[128];
  while (len > 0) {
    lua_Integer k, j, s0, max;
    size_t used;
    if (w->state != W_BUSY || w->a > w->b)
      protocol_error(L, w, "result for no item");
    s0 = p->ordered ? w->a & (p->wcap - 1)
                    : (p->qhead + p->qlen) & (p->wcap - 1);
    max = w->b - w->a + 1;
    if (max > p->wcap - s0) max = p->wcap - s0;
    k = codec_decode_some(L, MAP_RESULTS, s0 + 1, max, s, len, &used,
                          err, sizeof err);
    if (k < 0) protocol_error(L, w, err);
    for (j = 0; j < k; j++) stream_slot(p, w->a + j);
    w->a += k;
    p->ndone += k;
    s += used;
    len -= used;
  }
}

/* Without on_result, the results of a frame go straight into their slots:
** one decoder set-up per frame, not per item. */
static void item_result (lua_State *L, Pool *p, Worker *w,
                         const char *s, size_t len) {
  if (lua_isnil(L, MAP_ONRESULT) && p->stream) {
    stream_results(L, p, w, s, len);
    return;
  }
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
    lua_rawseti(L, MAP_RESULTS, p->stream ? stream_slot(p, i) + 1 : i);
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
  if (w->state == W_BUSY) pool_giveback(L, p, w, w->a, w->b);
  w->state = W_RETIRING;
}

static void frame_handle (lua_State *L, Pool *p, Worker *w, const Frame *f) {
  switch (f->kind) {
    case F_RESULT: item_result(L, p, w, f->body, f->len); break;
    case F_ERROR: item_error(L, p, w, f->body, f->len); break;
    case F_UNSENT: item_unsent(L, p, w, f->body, f->len); break;
    case F_RETIRE: worker_retire(L, p, w); break;
    case F_NOMEM: w->nomem = 1; break;
    case F_INITERR:
      push_error(L, w, "init", f->body, f->len);
      lua_error(L);
      break;
    default: protocol_error(L, w, "bad frame");
  }
  if (w->state == W_BUSY && w->a > w->b) {
    chunk_adapt(p, w);
    w->state = W_IDLE;
  }
}

/* Handle every complete frame in w->in; keep a partial one for later. */
static void worker_frames (lua_State *L, Pool *p, Worker *w) {
  size_t off = 0;
  Frame f;
  while (frame_next(w->in.data + off, w->in.len - off, &f)) {
    frame_handle(L, p, w, &f);
    off += f.size;
  }
  if (off > 0) {
    memmove(w->in.data, w->in.data + off, w->in.len - off);
    w->in.len -= off;
  }
}

static void worker_input (lua_State *L, Pool *p, Worker *w) {
  ssize_t n;
  if (buf_reserve(&w->in, READ_MIN) != 0) par_nomem(L);
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
** The caller's collector
** =======================================================
*/

/*
** While the map runs, each page the caller's collector marks is a fault,
** and a copy while the workers share it; so the collector must not step.
** LUA_GCSTOP would do, but LUA_GCRESTART then zeroes the collector's debt
** and so starts a new cycle at once, however far the next one was: with a
** big heap, one step of it soon marks a table that holds most of the heap,
** and so faults on nearly every page of the heap (bench/faults.c measures
** what one fault costs).  Instead the debt is lowered by a headroom for
** the map and raised by as much after it: the collector keeps its pace, as
** if the map had allocated with it running.  (LUA_GCSTEP adds its
** argument, in KiB, to the debt, and steps only if the debt is then
** positive.)
*/
#define GC_HEADROOM   (1 << 30)          /* KiB: 1 TiB */

static size_t gc_kbytes (lua_State *L) {
  return (size_t)lua_gc(L, LUA_GCCOUNT, 0);
}

void pool_gcpause (lua_State *L, Pool *p) {
  p->gcbase = gc_kbytes(L);
  if (!lua_gc(L, LUA_GCISRUNNING)) return;   /* stopped by the caller */
  lua_gc(L, LUA_GCSTEP, -GC_HEADROOM);
  p->gcpaused = 1;
}

void pool_gcresume (lua_State *L, Pool *p) {
  if (!p->gcpaused) return;
  p->gcpaused = 0;
  lua_gc(L, LUA_GCSTEP, GC_HEADROOM);
}

/* ... but not for ever: once the caller has allocated as much again as it
** held (or 64 MiB) during the map, a garbage-heavy on_result has the
** collector back. */
static void pool_gccheck (lua_State *L, Pool *p) {
  size_t lim = p->gcbase > 64u << 10 ? p->gcbase : 64u << 10;
  if (p->gcpaused && gc_kbytes(L) > p->gcbase + lim) pool_gcresume(L, p);
}

/* }====================================================== */


/*
** {======================================================
** The caller's loop
** =======================================================
*/

/* A replacement (for a worker that retired or died) forks from the
** caller, which copies its page tables, in proportion to its heap
** (bench/map_bench.lua, case d, times a fork beside a big heap), and costs
** as much again when it exits.  It pays only if the workers at work would
** take longer than that over the items left: with s the time one worker
** has taken per item so far and n workers at work, one more saves
** left * s * (1/n - 1/(n + 1)). */
static int pool_worthfork (Pool *p) {
  int k, n = 0;
  double s;
  for (k = 0; k < p->nw; k++)
    n += p->w[k].pid != 0 && p->w[k].state <= W_BUSY;
  if (n == 0 || p->ndone == 0 || p->lazy) return 1;  /* lazy: left unknown */
  s = (double)(sys_monons() - p->t0) * p->nw / (double)p->ndone;
  return (double)p->left * s / ((double)n * (n + 1)) > 2.0 * (double)p->forkns;
}

/* Give idle workers work, or tell them there is none; fill empty slots
** while work is left (a replacement forks from the caller, so it holds
** the caller's state as it is now). */
static void pool_dispatch (lua_State *L, Pool *p) {
  int k, r;
  for (k = 0; k < p->nw; k++) {
    Worker *w = &p->w[k];
    if (w->pid == 0 || w->state != W_IDLE) continue;
    if ((r = task_make(L, p, w)) > 0) task_send(L, p, w);
    else if (r < 0) {
      shutdown(w->fd, SHUT_WR);      /* EOF: the worker flushes and exits */
      w->state = W_QUIT;
    }
  }
  /* lazy items are pulled before the fork: none, no fork */
  for (k = 0; k < p->nw && pool_more(p); k++) {
    Worker *w = &p->w[k];
    if (w->pid != 0) continue;
    if (w->state == W_NOSTART && pool_alive(p) > 0) continue;
    if (!pool_worthfork(p) || task_make(L, p, w) <= 0) break;
    if (worker_start(L, p, k)) task_send(L, p, w);
    else pool_giveback(L, p, w, w->a, w->b);
  }
}

static int pool_done (Pool *p) {
  int k;
  if (pool_more(p)) return 0;
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
      pool_killworker(w->pid);            /* its EOF reports the item */
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

static void pool_wait (lua_State *L, Pool *p) {
  int k, r, base = 0;
  if (p->intrfd >= 0 && p->pollintr) {
    p->pfd[0].fd = p->intrfd;
    p->pfd[0].events = POLLIN;
    base = 1;
  }
  for (k = 0; k < p->nw; k++) {
    Worker *w = &p->w[k];
    p->pfd[base + k].fd = w->fd;         /* -1 (empty slot): poll skips it */
    p->pfd[base + k].events = POLLIN;
    if (w->state == W_BUSY && w->sent < w->task.len)
      p->pfd[base + k].events |= POLLOUT;   /* a task still to send */
  }
  r = poll(p->pfd, (nfds_t)(base + p->nw), pool_polltime(p));
  pool_checkintr(L, p);
  if (r < 0 && errno != EINTR) pool_fail(L, p, "poll");
  if (r > 0 && base && p->pfd[0].revents)
    p->pollintr = 0;   /* readable, yet no new signal: a byte an inner
                          par.run left; pool_checkintr still counts */
  for (k = 0; r > 0 && k < p->nw; k++) {
    short ev = p->pfd[base + k].revents;
    if ((ev & POLLOUT) && p->w[k].fd >= 0) worker_send(L, p, &p->w[k]);
    if ((ev & ~POLLOUT) && p->w[k].fd >= 0) worker_input(L, p, &p->w[k]);
  }
  pool_timeouts(p);
  pool_gccheck(L, p);
}

/* A stream's window: four times what all workers may take at once, so
** that some always can take more while the caller drains the rest (with
** very many workers or huge chunks, fewer: then some wait for room).  A
** stream is not chained (pool_chain): it has no results array to hide. */
static void stream_begin (lua_State *L, Pool *p) {
  lua_Integer c = p->chunksize > 0 ? p->chunksize : CHUNK_MAX, want;
  if (c > WCAP_MAX) c = WCAP_MAX;
  want = 4 * (lua_Integer)p->nw * c;
  for (p->wcap = WCAP_MIN; p->wcap < want && p->wcap < WCAP_MAX; )
    p->wcap *= 2;
  p->nexty = 1;
  if (p->ordered) p->arrived = (unsigned char *)calloc((size_t)p->wcap, 1);
  else p->q = (lua_Integer *)malloc((size_t)p->wcap * sizeof(lua_Integer));
  if (p->arrived == NULL && p->q == NULL) par_nomem(L);
}

void pool_begin (lua_State *L, Pool *p) {
  size_t size = (size_t)p->nw * sizeof(Slot);
  void *m = mmap(NULL, size, PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) pool_fail(L, p, "mmap");
  p->slots = (Slot *)m;
  p->closed = 0;
  p->t0 = sys_monons();
  p->L = L;
  live_add(&p->live, pool_live);
  if (!p->lazy) todo_push(L, p, 1, p->n);
  if (p->stream) {
    stream_begin(L, p);
    return;              /* each step holds the signals (pool_intr) */
  }
  pool_chain(L, p);
  pool_intr(L, p, 1);
}

void pool_intr (lua_State *L, Pool *p, int on) {
  if (!on) {
    if (p->intrfd >= 0) intr_end(p->L);
    p->intrfd = -1;
    return;
  }
  p->L = L;
  p->intrfd = intr_begin(L);
  if (p->intrfd < 0) pool_fail(L, p, "pipe");
  p->sigseen = intr_count();
  p->pollintr = 1;
}

/* Every item is in exactly one place at all times: on the todo stack, in
** a busy worker's range, or done; so once no range is left and no worker
** lives, all are done. */
void pool_run (lua_State *L, Pool *p) {
  for (;;) {
    pool_dispatch(L, p);
    if (pool_done(p)) break;
    pool_wait(L, p);
  }
  assert(p->ndone == p->n);
}

static int stream_ready (Pool *p) {
  if (p->ordered) return p->arrived[p->nexty & (p->wcap - 1)];
  return p->qlen > 0;
}

/* The same loop as pool_run, stopping as soon as a result can go. */
int pool_step (lua_State *L, Pool *p) {
  for (;;) {
    pool_dispatch(L, p);
    if (stream_ready(p)) return 1;
    if (pool_done(p)) return 0;
    pool_wait(L, p);
  }
}

int pool_pop (Pool *p, lua_Integer *i, lua_Integer *slot) {
  if (p->closed || !stream_ready(p)) return 0;
  if (p->ordered) {
    *i = p->nexty++;
    *slot = *i & (p->wcap - 1);
    p->arrived[*slot] = 0;
  }
  else {
    *slot = p->qhead;
    *i = p->q[p->qhead];
    p->qhead = (p->qhead + 1) & (p->wcap - 1);
    p->qlen--;
  }
  p->hold--;
  return 1;
}

/* The C memory of a closed pool: tasks, spans given back, the stream's
** rings. */
static void pool_free (Pool *p) {
  int k;
  for (k = 0; k < p->nw; k++) {
    buf_free(&p->w[k].task);
    free(p->w[k].offs);
    p->w[k].offs = NULL;
    p->w[k].offcap = 0;
  }
  while (p->nredo > 0) {
    p->nredo--;
    free(p->redo[p->nredo].bytes);
    free(p->redo[p->nredo].offs);
  }
  free(p->redo);
  p->redo = NULL;
  free(p->arrived);
  p->arrived = NULL;
  free(p->q);
  p->q = NULL;
}

void pool_teardown (lua_State *L, Pool *p) {
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
  pool_free(p);
}

/* }====================================================== */


Pool *pool_check (lua_State *L, int idx) {
  return (Pool *)luaL_checkudata(L, idx, POOL_MT);
}

static int pool_gc (lua_State *L) {      /* __gc, __close and :close() */
  pool_teardown(L, pool_check(L, 1));
  return 0;
}

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

void pool_open (lua_State *L) {
  luaL_newmetatable(L, POOL_MT);
  luaL_setfuncs(L, pool_meta, 0);
  luaL_newlibtable(L, pool_methods);
  luaL_setfuncs(L, pool_methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}
