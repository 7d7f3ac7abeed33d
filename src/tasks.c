/*
** tasks.c: par.pool's parent side: workers forked once (worker.c,
** child_serve) and reused for every call, a queue of tasks, and the loop
** that hands them out and takes their results in.  lua/par/pool.lua builds
** futures, map and imap on it.
**
** - What runs travels (the workers were forked before it existed): a
**   function once per worker, as an F_DEFINE of its bytecode (or of its
**   path in package.loaded: ship.h), by an id that the bytecode itself
**   keys, so that closures of one prototype share it; with each task, the
**   function's upvalues as they are at the call, and its arguments or
**   items.  A map's chunks are one call: its upvalues go to each worker
**   with its first chunk only (FRAME_SAME after).
** - A task is a job: a call (one unit) or a chunk of a map (one unit per
**   item).  Jobs wait in the queue until a worker has room (each may hold
**   'depth' jobs: more while its jobs are quick), then sit in that
**   worker's flight, in order; replies come in the same order, so a frame
**   needs no id.  Only a job still queued can be cancelled.
** - Units are numbered per worker (its seq); the shared page (slot.h)
**   shows the unit running, so a dead or timed-out worker's unit is known:
**   it fails, the rest of its jobs go back to the front of the queue, and
**   a fresh fork takes its place.
** - Results reach Lua as events in a table (tasks_step): a call's value;
**   a span of a chunk's items, stored in the call's sink table; a failed
**   unit; a replacement's failed init.
**
** Only the process that made the pool kills and reaps its workers.
*/
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

#include "par.h"
#include "buf.h"
#include "codec.h"
#include "frame.h"
#include "interrupt.h"
#include "live.h"
#include "opt.h"
#include "pool.h"
#include "ship.h"
#include "slot.h"
#include "sys.h"
#include "worker.h"

#define TASKS_MT      "par.tasks"
#define READ_MIN      (64 * 1024)
#define DEPTH_MAX     32        /* jobs in a worker's flight, at most */
#define QUICK_NS      (200 * 1000LL)    /* a job quicker than this: deeper */
#define SLOW_NS       (2 * 1000000LL)   /* slower: one at a time */
#define TIMEOUT_MAX   4e9
#define SPIN_NS       (50 * 1000LL)     /* tasks_poll */

#if !defined(MSG_NOSIGNAL)
#define MSG_NOSIGNAL  0
#endif

/* User values of a pool */
#define UV_INIT       1         /* opts.init, or nil */
#define UV_DEFS       2         /* fn id -> its F_DEFINE frame, for forks */
#define UV_IDS        3         /* fn -> id (weak); bytecode or path -> id */
#define UV_SINKS      4         /* call id -> where a map's results go */
#define TASKS_NUV     4

/* Event kinds (tasks_step): 5 slots each: kind, id, a, b, c */
enum { EV_VALUE = 1, EV_SPAN, EV_ERROR, EV_INITERR };

/* A function's upvalues at one call, shared by the call's jobs */
typedef struct Block {
  int refs;
  size_t len;
  char data[1];
} Block;

typedef struct Job {
  struct Job *next;
  lua_Integer id;            /* its call's */
  lua_Integer first;         /* a chunk's first item; 1 for a call */
  lua_Integer nunits, got;   /* units, and units replied */
  lua_Integer seq0;          /* in flight: the worker's seq before it */
  int kind;                  /* F_CALL or F_CHUNK */
  int64_t fnid;
  Block *upv;                /* NULL: a function without upvalues to set */
  int64_t tsent;
  Buf units;                 /* count (8 bytes), then the shipped units */
  size_t *offs;              /* a chunk: item k is units[offs[k-1]..offs[k]) */
} Job;

typedef struct TW {
  pid_t pid;                 /* 0: none in this slot */
  int fd;
  int ready;                 /* it ran opts.init */
  int quitting;              /* took max_tasks: no more, EOF once drained */
  int retired, nomem;
  lua_Integer killed;        /* seq of the unit killed for its time, or 0 */
  Buf in, out;
  size_t sent;               /* bytes of 'out' written */
  Job *head, *tail;          /* its flight */
  int nflight, depth;
  int dirty;                 /* jobs added to 'out' since the last send */
  lua_Integer seq;           /* units sent to it */
  lua_Integer lastcall;      /* the call whose upvalues it holds, or 0 */
  lua_Integer ntasks;        /* jobs sent to it */
  int64_t tlast;             /* when its head job began, about */
} TW;

typedef struct Tasks {
  Live live;
  pid_t owner;
  int nw;
  int dead;                  /* terminated: nothing runs, nothing starts */
  int shut;                  /* closing: workers get EOF once idle */
  Slot *slots;
  Job *qhead, *qtail;
  lua_Integer nqueued, nflying;
  double timeout;
  size_t memory;
  lua_Integer maxtasks;
  int64_t nextfn;
  lua_Integer defines, forks;
  lua_Integer blockcall;     /* the call whose upvalues 'block' holds */
  Block *block;
  Job *building;             /* a job not yet queued (job_build) */
  int ev, nev;               /* the events table (stack index), and count */
  int syserr;
  const char *syswhat;
  struct pollfd *pfd;        /* nw + 1 */
  TW w[1];
} Tasks;


/*
** {======================================================
** Jobs and blocks
** =======================================================
*/

static void block_drop (Block *b) {
  if (b != NULL && --b->refs == 0) free(b);
}

static void job_free (Job *j) {
  block_drop(j->upv);
  buf_free(&j->units);
  free(j->offs);
  free(j);
}

static Job *job_new (lua_State *L, int kind, lua_Integer id) {
  Job *j = (Job *)calloc(1, sizeof(Job));
  if (j == NULL) par_nomem(L);
  j->kind = kind;
  j->id = id;
  j->first = 1;
  j->nunits = 1;
  return j;
}

static void queue_push (Tasks *t, Job *j) {
  j->next = NULL;
  if (t->qtail) t->qtail->next = j;
  else t->qhead = j;
  t->qtail = j;
  t->nqueued++;
}

/* Jobs given back go first, in their order: 'list' ends at 'last'. */
static void queue_front (Tasks *t, Job *list, Job *last, lua_Integer n) {
  if (list == NULL) return;
  last->next = t->qhead;
  t->qhead = list;
  if (t->qtail == NULL) t->qtail = last;
  t->nqueued += n;
}

static Job *queue_pop (Tasks *t) {
  Job *j = t->qhead;
  if (j == NULL) return NULL;
  t->qhead = j->next;
  if (t->qhead == NULL) t->qtail = NULL;
  t->nqueued--;
  j->next = NULL;
  return j;
}

/* Units u1..u2 (from 1) of chunk j as a job of their own: NULL if none. */
static Job *job_piece (lua_State *L, Job *j, lua_Integer u1, lua_Integer u2) {
  Job *p;
  lua_Integer k, n = u2 - u1 + 1;
  size_t a, b;
  unsigned char cnt[8];
  if (n <= 0) return NULL;
  p = job_new(L, j->kind, j->id);
  p->first = j->first + u1 - 1;
  p->nunits = n;
  p->fnid = j->fnid;
  p->upv = j->upv;
  if (p->upv) p->upv->refs++;
  a = j->offs[u1 - 1];
  b = j->offs[u2];
  p->offs = (size_t *)malloc((size_t)(n + 1) * sizeof(size_t));
  frame_put64(cnt, (uint64_t)n);
  if (p->offs == NULL || buf_add(&p->units, cnt, 8) != 0 ||
      buf_add(&p->units, j->units.data + 8 + a, b - a) != 0) {
    job_free(p);
    par_nomem(L);
  }
  for (k = 0; k <= n; k++) p->offs[k] = j->offs[u1 - 1 + k] - a;
  return p;
}

/* }====================================================== */


/*
** {======================================================
** Workers
** =======================================================
*/

static void tasks_fail (lua_State *L, Tasks *t, const char *what) {
  t->syserr = errno;
  t->syswhat = what;
  luaL_error(L, "par.pool: %s: %s", what, strerror(errno));
}

/* Send what 'out' holds without blocking; poll says when more fits. */
static void tw_send (TW *w) {
  while (w->sent < w->out.len) {
    ssize_t k = send(w->fd, w->out.data + w->sent, w->out.len - w->sent,
                     MSG_DONTWAIT | MSG_NOSIGNAL);
    if (k > 0) w->sent += (size_t)k;
    else if (k < 0 && errno == EINTR) continue;
    else if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    else {                        /* it died: its EOF reports it */
      w->sent = w->out.len;
      break;
    }
  }
  if (w->sent == w->out.len) {
    w->out.len = w->sent = 0;
    if (w->quitting && w->nflight == 0 && w->fd >= 0) shutdown(w->fd, SHUT_WR);
  }
}

static void tw_append (lua_State *L, TW *w, const void *p, size_t n) {
  if (w->sent > 0 && w->sent == w->out.len) w->out.len = w->sent = 0;
  if (buf_add(&w->out, p, n) != 0) par_nomem(L);
}

/* Every definition so far, for a fresh worker. */
static void tw_definitions (lua_State *L, Tasks *t, TW *w) {
  lua_getiuservalue(L, 1, UV_DEFS);
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    size_t n;
    const char *s = lua_tolstring(L, -1, &n);
    tw_append(L, w, s, n);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  (void)t;
}

static void tw_forget (TW *w) {
  if (w->fd >= 0) close(w->fd);
  w->fd = -1;
  w->pid = 0;
  buf_free(&w->in);
  buf_free(&w->out);
  w->sent = 0;
}

/* Fork a worker into slot k (the pool is at stack index 1): 1, or 0 if
** fork failed (errno set). */
static int tw_start (lua_State *L, Tasks *t, int k) {
  TW *w = &t->w[k];
  int sv[2], e;
  pid_t pid;
  if ((e = sys_socketpair(sv)) != 0) {
    errno = e;
    return 0;
  }
  slot_stage(&t->slots[k], SLOT_SETUP);
  slot_stop(&t->slots[k]);
  fflush(NULL);
  pid = fork();
  if (pid < 0) {
    e = errno;
    close(sv[0]);
    close(sv[1]);
    errno = e;
    return 0;
  }
  if (pid == 0) {
    ChildSpec s;
    close(sv[0]);
    s.fd = sv[1];
    s.slot = &t->slots[k];
    s.parent = t->owner;
    s.timed = t->timeout > 0;
    s.budget = t->memory;
    s.who = "par.pool";
    pool_afterfork(L);
    lua_settop(L, 1);
    lua_getiuservalue(L, 1, UV_INIT);
    child_serve(L, &s);
  }
  close(sv[1]);
  setpgid(pid, pid);
  memset(w, 0, sizeof *w);
  w->pid = pid;
  w->fd = sv[0];
  w->depth = 2;
  buf_mapped(&w->in);
  buf_mapped(&w->out);
  t->forks++;
  tw_definitions(L, t, w);
  tw_send(w);
  return 1;
}

/* Kill every worker, then reap them.  No Lua: the exit handler calls it. */
static void tasks_kill (Tasks *t) {
  int k;
  live_remove(&t->live);
  for (k = 0; k < t->nw; k++)
    if (t->w[k].pid > 0) pool_killworker(t->w[k].pid);
  for (k = 0; k < t->nw; k++) {
    pid_t pid = t->w[k].pid;
    tw_forget(&t->w[k]);
    if (pid > 0) pool_waitworker(pid);
  }
}

static void tasks_free (Tasks *t) {
  int k;
  Job *j;
  while ((j = queue_pop(t)) != NULL) job_free(j);
  for (k = 0; k < t->nw; k++) {
    TW *w = &t->w[k];
    while ((j = w->head) != NULL) {
      w->head = j->next;
      job_free(j);
    }
    w->tail = NULL;
    w->nflight = 0;
  }
  t->nflying = 0;
  block_drop(t->block);
  t->block = NULL;
  t->blockcall = 0;
  if (t->building != NULL) job_free(t->building);
  t->building = NULL;
}

/* terminate(), __gc, __close: kill and reap now; once only, and only in
** the process that made the pool. */
static void tasks_teardown (Tasks *t) {
  if (t->dead || t->owner != getpid()) return;
  t->dead = 1;
  tasks_kill(t);
  tasks_free(t);
  if (t->slots != NULL) munmap(t->slots, (size_t)t->nw * sizeof(Slot));
  t->slots = NULL;
}

static void tasks_live (Live *e, int why) {
  Tasks *t = (Tasks *)((char *)e - offsetof(Tasks, live));
  if (why == LIVE_EXIT && !t->dead && t->owner == getpid()) tasks_kill(t);
}

/* }====================================================== */


/*
** {======================================================
** Events
** =======================================================
*/

/* Push kind, id, a, then move the two values at the top (b, c) in. */
static void ev_add (lua_State *L, Tasks *t, int kind, lua_Integer id,
                    lua_Integer a) {
  int base = t->nev * 5;
  lua_pushinteger(L, kind);
  lua_rawseti(L, t->ev, base + 1);
  lua_pushinteger(L, id);
  lua_rawseti(L, t->ev, base + 2);
  lua_pushinteger(L, a);
  lua_rawseti(L, t->ev, base + 3);
  lua_rawseti(L, t->ev, base + 5);
  lua_rawseti(L, t->ev, base + 4);
  t->nev++;
}

/* Unit u (from 1) of job j failed with the message at the top. */
static void ev_failed (lua_State *L, Tasks *t, Job *j, lua_Integer u) {
  lua_pushliteral(L, "");
  ev_add(L, t, EV_ERROR, j->id, j->first + u - 1);
}

/* }====================================================== */


/*
** {======================================================
** Replies
** =======================================================
*/

static void tw_done (Tasks *t, TW *w) {
  Job *j = w->head;
  int64_t now = sys_monons(), dt = now - w->tlast;
  w->head = j->next;
  if (w->head == NULL) w->tail = NULL;
  w->nflight--;
  t->nflying--;
  w->tlast = now;
  if (dt < QUICK_NS) {
    if (w->depth < DEPTH_MAX) w->depth *= 2;
  }
  else if (dt > SLOW_NS) w->depth = 1;
  job_free(j);
  if (w->quitting && w->nflight == 0 && w->sent == w->out.len && w->fd >= 0)
    shutdown(w->fd, SHUT_WR);
}

static Job *tw_head (lua_State *L, TW *w) {
  if (w->head == NULL) luaL_error(L, "par.pool: protocol error: a reply to nothing");
  return w->head;
}

static void decode_push (lua_State *L, const char **s, size_t *len) {
  char err[128];
  size_t used;
  if (codec_decode(L, *s, *len, &used, err, sizeof err) != 0)
    luaL_error(L, "par.pool: protocol error: %s", err);
  *s += used;
  *len -= used;
}

static void reply_result (lua_State *L, Tasks *t, TW *w, const char *s,
                          size_t len) {
  Job *j = tw_head(L, w);
  char err[128];
  if (j->kind == F_CALL) {
    decode_push(L, &s, &len);
    lua_pushnil(L);
    ev_add(L, t, EV_VALUE, j->id, 1);
    j->got = 1;
  }
  else {
    lua_Integer k, i = j->first + j->got;
    size_t used;
    lua_getiuservalue(L, 1, UV_SINKS);
    if (lua_rawgeti(L, -1, j->id) != LUA_TTABLE) {   /* its map is over */
      lua_pop(L, 1);
      lua_newtable(L);
    }
    k = codec_decode_some(L, lua_gettop(L), i, j->nunits - j->got, s, len,
                          &used, err, sizeof err);
    if (k < 0 || used != len)
      luaL_error(L, "par.pool: protocol error: %s", k < 0 ? err : "surplus");
    lua_pop(L, 2);
    j->got += k;
    lua_pushinteger(L, k);
    lua_pushnil(L);
    ev_add(L, t, EV_SPAN, j->id, i);
  }
  if (j->got == j->nunits) tw_done(t, w);
}

static void reply_error (lua_State *L, Tasks *t, TW *w, int kind,
                         const char *s, size_t len) {
  Job *j = tw_head(L, w);
  if (kind == F_ERROR) {
    decode_push(L, &s, &len);
    decode_push(L, &s, &len);
  }
  else {
    lua_pushlstring(L, s, len);
    lua_pushliteral(L, "");
  }
  j->got++;
  ev_add(L, t, EV_ERROR, j->id, j->first + j->got - 1);
  if (j->got == j->nunits) tw_done(t, w);
}

static void tw_frame (lua_State *L, Tasks *t, TW *w, const Frame *f) {
  switch (f->kind) {
    case F_RESULT: reply_result(L, t, w, f->body, f->len); break;
    case F_ERROR: case F_UNSENT:
      reply_error(L, t, w, f->kind, f->body, f->len);
      break;
    case F_READY: w->ready = 1; break;
    case F_RETIRE: w->retired = 1; break;
    case F_NOMEM: w->nomem = 1; break;
    case F_INITERR: {
      const char *s = f->body;
      size_t len = f->len;
      decode_push(L, &s, &len);
      decode_push(L, &s, &len);
      w->ready = -1;
      ev_add(L, t, EV_INITERR, 0, 0);
      break;
    }
    default: luaL_error(L, "par.pool: protocol error: bad frame");
  }
}

/* A worker is gone: blame the unit it ran (a timeout's, or its death's),
** give the rest of its flight back to the queue, front first. */
static void tw_died (lua_State *L, Tasks *t, TW *w, int st) {
  int k = (int)(w - t->w);
  lua_Integer cur = slot_cur(&t->slots[k]), bad = 0;
  Job *j = w->head, *back = NULL, *last = NULL;
  lua_Integer nback = 0;
  if (w->killed) bad = w->killed;
  else if (!w->retired && j != NULL && cur > j->seq0 + j->got) bad = cur;
  while (j != NULL) {
    Job *next = j->next, *pieces[2];
    lua_Integer u = bad - j->seq0;        /* the failed unit, in j */
    int np = 0, q;
    t->nflying--;
    if (u >= 1 && u <= j->nunits && u > j->got) {
      if (w->killed) pool_pushtimeout(L, t->timeout);
      else if (w->nomem) lua_pushliteral(L, "not enough memory");
      else pool_pushdeath(L, st);
      ev_failed(L, t, j, u);
      if (j->kind == F_CHUNK) {
        pieces[np++] = job_piece(L, j, j->got + 1, u - 1);
        pieces[np++] = job_piece(L, j, u + 1, j->nunits);
      }
      job_free(j);
    }
    else if (j->got > 0) {                /* part of a chunk replied */
      pieces[np++] = job_piece(L, j, j->got + 1, j->nunits);
      job_free(j);
    }
    else {
      j->next = NULL;
      pieces[np++] = j;
    }
    for (q = 0; q < np; q++) {
      if (pieces[q] == NULL) continue;
      if (last) last->next = pieces[q];
      else back = pieces[q];
      last = pieces[q];
      last->next = NULL;
      nback++;
    }
    j = next;
  }
  w->head = w->tail = NULL;
  w->nflight = 0;
  queue_front(t, back, last, nback);
}

static void tw_ended (lua_State *L, Tasks *t, TW *w) {
  pid_t pid = w->pid;
  int st, ready = w->ready;
  tw_forget(w);
  st = pool_waitworker(pid);
  if (ready == 0) {                    /* before or in its init */
    pool_pushdeath(L, st);
    lua_pushliteral(L, "");
    w->ready = -1;
    ev_add(L, t, EV_INITERR, 0, 0);
  }
  tw_died(L, t, w, st);
  w->pid = 0;
}

static void tw_input (lua_State *L, Tasks *t, TW *w) {
  ssize_t n;
  size_t off = 0;
  Frame f;
  if (buf_reserve(&w->in, READ_MIN) != 0) par_nomem(L);
  n = read(w->fd, w->in.data + w->in.len, w->in.cap - w->in.len);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
  if (n <= 0) {
    tw_ended(L, t, w);
    return;
  }
  w->in.len += (size_t)n;
  while (frame_next(w->in.data + off, w->in.len - off, &f)) {
    tw_frame(L, t, w, &f);
    off += f.size;
  }
  if (off > 0) {
    memmove(w->in.data, w->in.data + off, w->in.len - off);
    w->in.len -= off;
  }
}

/* }====================================================== */


/*
** {======================================================
** Handing out jobs
** =======================================================
*/

static void job_send (lua_State *L, Tasks *t, TW *w, Job *j) {
  unsigned char h[FRAME_LONG], head[32];
  int same = w->lastcall == j->id;
  size_t upvlen = same || j->upv == NULL ? 0 : j->upv->len;
  uint64_t body = 32 + upvlen + j->units.len;
  frame_put64(head, (uint64_t)j->id);
  frame_put64(head + 8, (uint64_t)j->fnid);
  frame_put64(head + 16, (uint64_t)j->first);
  frame_put64(head + 24, same ? FRAME_SAME : (uint64_t)upvlen);
  tw_append(L, w, h, frame_puthead(h, j->kind, body));
  tw_append(L, w, head, 32);
  if (upvlen > 0) tw_append(L, w, j->upv->data, upvlen);
  tw_append(L, w, j->units.data, j->units.len);
  w->lastcall = j->id;
  j->seq0 = w->seq;
  w->seq += j->nunits;
  j->tsent = sys_monons();
  if (w->head == NULL) w->tlast = j->tsent;
  if (w->tail) w->tail->next = j;
  else w->head = j;
  w->tail = j;
  w->nflight++;
  t->nflying++;
  if (t->maxtasks > 0 && ++w->ntasks >= t->maxtasks) w->quitting = 1;
}

/* Fill empty slots (a worker died, retired or took max_tasks), then give
** each worker jobs while it has room. */
static void tasks_dispatch (lua_State *L, Tasks *t) {
  int k;
  if (t->dead) return;
  for (k = 0; k < t->nw; k++) {
    if (t->w[k].pid != 0) continue;
    if (t->shut && t->qhead == NULL) continue;
    if (!tw_start(L, t, k)) tasks_fail(L, t, "fork");
  }
  while (t->qhead != NULL) {          /* each job to the least loaded */
    TW *w = NULL;
    for (k = 0; k < t->nw; k++) {
      TW *x = &t->w[k];
      if (x->pid == 0 || x->fd < 0 || x->quitting || x->ready < 0 ||
          x->nflight >= (t->qhead->kind == F_CHUNK && x->depth < 2 ? 2 : x->depth))
        continue;                /* a map's next chunk waits in each worker */
      /* the fewest in flight; of those, the one that replied last: it is
      ** still spinning (child_spin), awake */
      if (w == NULL || x->nflight < w->nflight ||
          (x->nflight == w->nflight && x->tlast > w->tlast))
        w = x;
    }
    if (w == NULL) break;
    job_send(L, t, w, queue_pop(t));
    w->dirty = 1;
  }
  for (k = 0; k < t->nw; k++)
    if (t->w[k].dirty) {
      t->w[k].dirty = 0;
      tw_send(&t->w[k]);
    }
  if (t->shut && t->qhead == NULL)
    for (k = 0; k < t->nw; k++) {
      TW *w = &t->w[k];
      if (w->pid != 0 && w->fd >= 0 && w->nflight == 0 && !w->quitting) {
        w->quitting = 1;
        if (w->sent == w->out.len) shutdown(w->fd, SHUT_WR);
      }
    }
}

/* Milliseconds to the next unit's deadline (or 'limit', if sooner). */
static int tasks_polltime (Tasks *t, int limit) {
  int64_t now, lim = (int64_t)(t->timeout * 1e9), next = -1;
  int k;
  if (t->timeout <= 0) return limit;
  now = sys_monons();
  for (k = 0; k < t->nw; k++) {
    TW *w = &t->w[k];
    int64_t t0 = 0, d;
    lua_Integer i;
    if (w->pid == 0 || w->head == NULL || w->killed) continue;
    i = slot_running(&t->slots[k], &t0);
    if (i <= w->head->seq0 + w->head->got)
      t0 = w->tlast;           /* not begun yet: it cannot end before */
    d = t0 + lim - now;
    if (next < 0 || d < next) next = d;
  }
  if (next < 0) return limit;
  next = next <= 0 ? 0 : next / 1000000 + 1;
  if (next > INT_MAX) next = INT_MAX;
  return limit >= 0 && limit < next ? limit : (int)next;
}

static void tasks_timeouts (Tasks *t) {
  int64_t now, lim = (int64_t)(t->timeout * 1e9);
  int k;
  if (t->timeout <= 0) return;
  now = sys_monons();
  for (k = 0; k < t->nw; k++) {
    TW *w = &t->w[k];
    int64_t t0 = 0;
    lua_Integer i;
    if (w->pid == 0 || w->head == NULL || w->killed) continue;
    i = slot_running(&t->slots[k], &t0);
    if (i > w->head->seq0 + w->head->got && now - t0 >= lim) {
      pool_killworker(w->pid);
      w->killed = i;
    }
  }
}

/*
** poll the workers, spinning first for SPIN_NS while replies are due: a
** wake-up from sleep costs 30 to 80 us on this machine's VM, a round trip
** spinning about 6 (bench/pool_bench.lua measures the round trip).  par's
** signal handlers go in only for the sleep: installing them costs two
** dozen system calls, more than a whole round trip.  A signal that comes
** while it sleeps terminates the pool and raises "interrupted".
*/
static int tasks_poll (lua_State *L, Tasks *t, int ms) {
  int r, fd, seen, sig, n = t->nw;
  int64_t t0 = sys_monons(), spent = 0;
  do {
    if ((r = poll(t->pfd, (nfds_t)n, 0)) != 0 || ms == 0) return r;
    spent = sys_monons() - t0;
  } while (t->nflying > 0 && spent < SPIN_NS);
  if (ms > 1) ms -= (int)(spent / 1000000);
  if ((fd = intr_begin(L)) < 0) tasks_fail(L, t, "pipe");
  seen = intr_count();
  t->pfd[n].fd = fd;
  t->pfd[n].events = POLLIN;
  t->pfd[n].revents = 0;
  r = poll(t->pfd, (nfds_t)(n + 1), ms);
  if (r > 0 && t->pfd[n].revents) r--;
  sig = intr_count() != seen;
  if (sig) intr_ack();
  intr_end(L);
  if (sig) {
    tasks_teardown(t);
    luaL_error(L, "interrupted");
  }
  return r;
}

/* One wait of at most 'ms' (-1: for ever) and what it brought. */
static void tasks_wait (lua_State *L, Tasks *t, int ms) {
  int k, r;
  for (k = 0; k < t->nw; k++) {
    TW *w = &t->w[k];
    t->pfd[k].fd = w->fd;
    t->pfd[k].events = POLLIN;
    t->pfd[k].revents = 0;
    if (w->sent < w->out.len) t->pfd[k].events |= POLLOUT;
  }
  r = tasks_poll(L, t, tasks_polltime(t, ms));
  if (r < 0 && errno != EINTR) tasks_fail(L, t, "poll");
  for (k = 0; r > 0 && k < t->nw; k++) {
    short ev = t->pfd[k].revents;
    TW *w = &t->w[k];
    if ((ev & POLLOUT) && w->fd >= 0) tw_send(w);
    if ((ev & ~POLLOUT) && w->fd >= 0) tw_input(L, t, w);
  }
  tasks_timeouts(t);
}

/* }====================================================== */


/*
** {======================================================
** The pool's methods
** =======================================================
*/

static Tasks *tasks_check (lua_State *L) {
  return (Tasks *)luaL_checkudata(L, 1, TASKS_MT);
}

static Tasks *tasks_live_check (lua_State *L) {
  Tasks *t = tasks_check(L);
  if (t->dead) luaL_error(L, "par.pool: the pool is terminated");
  if (t->owner != getpid()) luaL_error(L, "par.pool: the pool belongs to another process");
  return t;
}

/* The id of the function at idx, defining it if new: F_DEFINE to every
** worker, kept for forks.  Negative for a function that travels as its
** path (no upvalues of ours to set).  0 with a message in err if it
** cannot travel. */
static int64_t fn_id (lua_State *L, Tasks *t, int idx, char *err, size_t errsz) {
  int64_t id;
  int path, k;
  Buf b = BUF_INIT;
  unsigned char h[FRAME_LONG];
  idx = lua_absindex(L, idx);
  lua_getiuservalue(L, 1, UV_IDS);
  lua_pushvalue(L, idx);
  if (lua_rawget(L, -2) == LUA_TNUMBER) {
    id = (int64_t)lua_tointeger(L, -1);
    lua_pop(L, 2);
    return id;
  }
  lua_pop(L, 1);
  path = ship_path(L, idx);                  /* pushes the path */
  if (!path) {
    if (ship_dump(L, idx, &b, err, errsz) != 0) {
      lua_pop(L, 1);
      buf_free(&b);
      return 0;
    }
    lua_pushlstring(L, b.data, b.len);
  }
  else {
    lua_pushliteral(L, "\0");                /* a path key is no bytecode */
    lua_insert(L, -2);
    lua_concat(L, 2);
  }
  if (lua_rawget(L, -2) == LUA_TNUMBER) {    /* the same code, defined */
    id = (int64_t)lua_tointeger(L, -1);
    lua_pop(L, 1);
  }
  else {
    char kind = path ? 's' : 'b';
    lua_pop(L, 1);
    id = ++t->nextfn;
    if (path) {
      b.len = 0;
      if (ship_encode(L, idx, &b, "fn", err, errsz) != 0) {
        lua_pop(L, 1);
        buf_free(&b);
        return 0;
      }
    }
    /* the frame: header, id, kind, body */
    {
      luaL_Buffer lb;
      unsigned char idb[8];
      frame_put64(idb, (uint64_t)id);
      luaL_buffinit(L, &lb);
      luaL_addlstring(&lb, (const char *)h, frame_puthead(h, F_DEFINE, 9 + b.len));
      luaL_addlstring(&lb, (const char *)idb, 8);
      luaL_addchar(&lb, kind);
      luaL_addlstring(&lb, b.data, b.len);
      luaL_pushresult(&lb);
    }
    lua_getiuservalue(L, 1, UV_DEFS);
    lua_pushvalue(L, -2);
    lua_rawseti(L, -2, id);
    lua_pop(L, 1);
    for (k = 0; k < t->nw; k++) {
      size_t n;
      const char *s = lua_tolstring(L, -1, &n);
      if (t->w[k].pid == 0 || t->w[k].fd < 0) continue;
      tw_append(L, &t->w[k], s, n);
      t->defines++;
    }
    lua_pop(L, 1);
    if (path) id = -id;
    /* the code's key: bytecode or path */
    if (path) {
      lua_pushliteral(L, "\0");
      ship_path(L, idx);
      lua_concat(L, 2);
    }
    else lua_pushlstring(L, b.data, b.len);
    lua_pushinteger(L, (lua_Integer)id);
    lua_rawset(L, -3);
  }
  buf_free(&b);
  lua_pushvalue(L, idx);
  lua_pushinteger(L, (lua_Integer)id);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  return id;
}

/* The upvalues of fn (at idx) for call 'id': a Block, or NULL for a
** function that travels as its path; *bad set if they cannot travel. */
static Block *fn_block (lua_State *L, Tasks *t, int idx, lua_Integer id,
                        int64_t fnid, char *err, size_t errsz, int *bad) {
  Buf b = BUF_INIT;
  Block *k;
  *bad = 0;
  if (fnid < 0) return NULL;
  if (t->block != NULL && t->blockcall == id) {
    t->block->refs++;
    return t->block;
  }
  if (ship_upvalues(L, idx, &b, "fn", err, errsz) != 0) {
    buf_free(&b);
    *bad = 1;
    return NULL;
  }
  k = (Block *)malloc(sizeof(Block) + b.len);
  if (k == NULL) {
    buf_free(&b);
    par_nomem(L);
  }
  k->refs = 2;                         /* the job's and the cache's */
  k->len = b.len;
  if (b.len > 0) memcpy(k->data, b.data, b.len);
  buf_free(&b);
  block_drop(t->block);
  t->block = k;
  t->blockcall = id;
  return k;
}

/* A job being built is the pool's (t->building) until it is queued: a
** memory error while its units are encoded leaks nothing. */
static Job *job_build (lua_State *L, Tasks *t, int kind, lua_Integer id,
                       lua_Integer n) {
  unsigned char cnt[8];
  Job *j;
  if (t->building != NULL) job_free(t->building);
  t->building = j = job_new(L, kind, id);
  frame_put64(cnt, (uint64_t)n);
  if (buf_add(&j->units, cnt, 8) != 0) par_nomem(L);
  return j;
}

static void job_queue (lua_State *L, Tasks *t, Job *j) {
  t->building = NULL;
  queue_push(t, j);
  tasks_dispatch(L, t);                /* it may start before any step */
}

static void job_drop (Tasks *t) {
  if (t->building != NULL) job_free(t->building);
  t->building = NULL;
}

/* t:call(id, fn, ...) -> true, or false, why (fn or an argument cannot
** travel): a job for fn(...), queued. */
static int tasks_call (lua_State *L) {
  Tasks *t = tasks_live_check(L);
  lua_Integer id = luaL_checkinteger(L, 2);
  int k, n = lua_gettop(L) - 3, bad;
  char err[256], what[32];
  int64_t fnid;
  Job *j;
  Block *upv;
  luaL_checktype(L, 3, LUA_TFUNCTION);
  if ((fnid = fn_id(L, t, 3, err, sizeof err)) == 0) goto unsent;
  upv = fn_block(L, t, 3, id, fnid, err, sizeof err, &bad);
  if (bad) goto unsent;
  j = job_build(L, t, F_CALL, id, n);
  j->fnid = fnid < 0 ? -fnid : fnid;
  j->upv = upv;
  block_drop(t->block);                /* a call's block is its own */
  t->block = NULL;
  t->blockcall = 0;
  for (k = 1; k <= n; k++) {
    if (ship_encode(L, 3 + k, &j->units, "argument", err, sizeof err) != 0) {
      Buf scratch = BUF_INIT;          /* again, for the message's name */
      snprintf(what, sizeof what, "argument #%d", k);
      ship_encode(L, 3 + k, &scratch, what, err, sizeof err);
      buf_free(&scratch);
      job_drop(t);
      goto unsent;
    }
  }
  job_queue(L, t, j);
  lua_pushboolean(L, 1);
  return 1;
unsent:
  lua_pushboolean(L, 0);
  lua_pushstring(L, err);
  return 2;
}

/* t:chunk(id, fn, items, a, b, first, sink) -> true, or false, why: a job
** for fn(items[k], first + k - a) over k = a..b, whose results go to
** sink[first + k - a]. */
static int tasks_chunk (lua_State *L) {
  Tasks *t = tasks_live_check(L);
  lua_Integer id = luaL_checkinteger(L, 2), a, b, first, k;
  char err[256], what[40];
  int64_t fnid;
  int bad;
  Job *j;
  Block *upv;
  luaL_checktype(L, 3, LUA_TFUNCTION);
  luaL_checktype(L, 4, LUA_TTABLE);
  a = luaL_checkinteger(L, 5);
  b = luaL_checkinteger(L, 6);
  first = luaL_checkinteger(L, 7);
  luaL_checktype(L, 8, LUA_TTABLE);
  luaL_argcheck(L, a <= b && b - a < INT_MAX / 4 && first >= 1, 6, "bad range");
  if ((fnid = fn_id(L, t, 3, err, sizeof err)) == 0) goto unsent;
  upv = fn_block(L, t, 3, id, fnid, err, sizeof err, &bad);
  if (bad) goto unsent;
  j = job_build(L, t, F_CHUNK, id, b - a + 1);
  j->fnid = fnid < 0 ? -fnid : fnid;
  j->upv = upv;
  j->first = first;
  j->nunits = b - a + 1;
  j->offs = (size_t *)malloc((size_t)(j->nunits + 1) * sizeof(size_t));
  if (j->offs == NULL) par_nomem(L);
  j->offs[0] = 0;
  for (k = a; k <= b; k++) {
    lua_rawgeti(L, 4, k);
    if (ship_encode(L, -1, &j->units, "item", err, sizeof err) != 0) {
      Buf scratch = BUF_INIT;          /* again, for the message's name */
      snprintf(what, sizeof what, "item #%lld", (long long)(first + k - a));
      ship_encode(L, -1, &scratch, what, err, sizeof err);
      buf_free(&scratch);
      lua_pop(L, 1);
      job_drop(t);
      goto unsent;
    }
    lua_pop(L, 1);
    j->offs[k - a + 1] = j->units.len - 8;
  }
  lua_getiuservalue(L, 1, UV_SINKS);
  lua_pushvalue(L, 8);
  lua_rawseti(L, -2, id);
  lua_pop(L, 1);
  job_queue(L, t, j);
  lua_pushboolean(L, 1);
  return 1;
unsent:
  lua_pushboolean(L, 0);
  lua_pushstring(L, err);
  return 2;
}

/* t:sink(id): forget call id's sink (its map is over). */
static int tasks_sink (lua_State *L) {
  tasks_check(L);
  luaL_checkinteger(L, 2);
  lua_getiuservalue(L, 1, UV_SINKS);
  lua_pushnil(L);
  lua_rawseti(L, -2, lua_tointeger(L, 2));
  return 0;
}

/* t:cancel(id) -> whether a job of call id was still queued (now gone). */
static int tasks_cancel (lua_State *L) {
  Tasks *t = tasks_check(L);
  lua_Integer id = luaL_checkinteger(L, 2);
  Job **pp = &t->qhead, *prev = NULL;
  int found = 0;
  while (*pp != NULL) {
    Job *j = *pp;
    if (j->id == id) {
      *pp = j->next;
      if (t->qtail == j) t->qtail = prev;
      t->nqueued--;
      job_free(j);
      found = 1;
      continue;
    }
    prev = j;
    pp = &j->next;
  }
  lua_pushboolean(L, found);
  return 1;
}

/* The body of t:step, under pcall: stack 1 pool, 2 timeout, 3 events. */
static int step_run (lua_State *L) {
  Tasks *t = (Tasks *)lua_touserdata(L, 1);
  double tmo = lua_isnil(L, 2) ? -1 : lua_tonumber(L, 2);
  int64_t end = tmo >= 0 ? sys_monons() + (int64_t)(tmo * 1e9) : 0;
  t->ev = 3;
  t->nev = 0;
  for (;;) {
    int ms = -1;
    tasks_dispatch(L, t);
    if (t->nev > 0 || t->dead) break;
    if (t->nqueued == 0 && t->nflying == 0 && !t->shut) break;
    if (t->shut && t->nqueued == 0 && t->nflying == 0) {
      int k, alive = 0;
      for (k = 0; k < t->nw; k++) alive += t->w[k].pid != 0;
      if (!alive) break;
    }
    if (tmo >= 0) {
      int64_t left = end - sys_monons();
      if (left <= 0 && tmo > 0) break;
      ms = left <= 0 ? 0 : (int)(left / 1000000 + (left % 1000000 != 0));
    }
    tasks_wait(L, t, ms);
    if (t->nev == 0 && tmo == 0) break;
  }
  lua_pushinteger(L, t->nev);
  return 1;
}

/* t:step([timeout,] events) -> n: wait (at most timeout seconds; nil: as
** long as something is pending) until at least one event, handing out
** jobs meanwhile; events[5k-4 .. 5k] is kind, id, a, b, c of the k-th:
**   EV_VALUE  id, 1, value, nil          a call's first result
**   EV_SPAN   id, first, count, nil      items' results, in the sink
**   EV_ERROR  id, item, err, traceback   a unit failed
**   EV_INITERR 0, 0, err, traceback      a replacement's init failed
** par's signal handlers are in place while it waits; a signal terminates
** the pool and raises "interrupted". */
static int tasks_step (lua_State *L) {
  Tasks *t = tasks_live_check(L);
  int status;
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 3);
  lua_pushcfunction(L, step_run);
  lua_insert(L, 1);
  status = lua_pcall(L, 3, 1, 0);
  if (status != LUA_OK) {
    if (!t->dead) tasks_teardown(t);
    return lua_error(L);
  }
  return 1;
}

/* t:close(): no new jobs; once the queue and flights are empty the
** workers get EOF and exit, and are reaped (step keeps going until then);
** t:closed() says whether every worker is gone. */
static int tasks_close (lua_State *L) {
  Tasks *t = tasks_check(L);
  t->shut = 1;
  return 0;
}

static int tasks_gone (lua_State *L) {
  Tasks *t = tasks_check(L);
  int k, alive = 0;
  for (k = 0; k < t->nw; k++) alive += t->w[k].pid != 0;
  if (alive == 0 && !t->dead) tasks_teardown(t);
  lua_pushboolean(L, alive == 0);
  return 1;
}

static int tasks_terminate (lua_State *L) {
  tasks_teardown(tasks_check(L));
  return 0;
}

/* t:pending() -> jobs queued, jobs in flight */
static int tasks_pending (lua_State *L) {
  Tasks *t = tasks_check(L);
  lua_pushinteger(L, t->nqueued);
  lua_pushinteger(L, t->nflying);
  return 2;
}

/* t:stats() -> {pids = {...}, forks = n, defines = n} */
static int tasks_stats (lua_State *L) {
  Tasks *t = tasks_check(L);
  int k, n = 0;
  lua_createtable(L, 0, 3);
  lua_newtable(L);
  for (k = 0; k < t->nw; k++)
    if (t->w[k].pid > 0) {
      lua_pushinteger(L, t->w[k].pid);
      lua_rawseti(L, -2, ++n);
    }
  lua_setfield(L, -2, "pids");
  lua_pushinteger(L, t->forks);
  lua_setfield(L, -2, "forks");
  lua_pushinteger(L, t->defines);
  lua_setfield(L, -2, "defines");
  return 1;
}

static void tasks_opts (lua_State *L, Tasks *t) {
  double tm = opt_num(L, 2, "timeout", 0, 1);
  t->timeout = tm > TIMEOUT_MAX ? TIMEOUT_MAX : tm;
  t->memory = (size_t)opt_int(L, 2, "worker_memory", 64 << 20, 1, LUA_MAXINTEGER);
  t->maxtasks = opt_int(L, 2, "max_tasks", 0, 1, LUA_MAXINTEGER);
}

/* Wait for every worker's F_READY: 0, or -1 with err, traceback pushed
** (an init failed, or a worker died in it). */
static int tasks_ready (lua_State *L, Tasks *t) {
  for (;;) {
    int k, ready = 0;
    for (k = 0; k < t->nw; k++) ready += t->w[k].ready > 0;
    if (ready == t->nw) return 0;
    t->nev = 0;
    tasks_wait(L, t, -1);
    if (t->nev > 0) {
      lua_rawgeti(L, t->ev, 4);
      lua_rawgeti(L, t->ev, 5);
      return -1;
    }
  }
}

static int new_run (lua_State *L) {
  Tasks *t = (Tasks *)lua_touserdata(L, 1);
  int k, status;
  lua_newtable(L);                           /* 2: events */
  t->ev = 2;
  for (k = 0; k < t->nw; k++)
    if (!tw_start(L, t, k)) tasks_fail(L, t, "fork");
  status = tasks_ready(L, t);
  if (status == 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  lua_pushboolean(L, 0);
  lua_insert(L, -3);
  return 3;
}

/* core.tasks(n, opts) -> pool; or false, err, traceback when a worker's
** init failed; or nil, msg, errno on a system failure.  Forks n workers
** and waits until each has run opts.init. */
static int tasks_new (lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  size_t size, psize;
  Tasks *t;
  int k, status;
  void *m;
  luaL_argcheck(L, n >= 1 && n <= 4096, 1, "1..4096 expected");
  luaL_checktype(L, 2, LUA_TTABLE);
  size = sizeof(Tasks) + (size_t)(n - 1) * sizeof(TW);
  psize = (size_t)(n + 1) * sizeof(struct pollfd);
  opt_func(L, 2, "init");                            /* 3 */
  t = (Tasks *)lua_newuserdatauv(L, size + psize, TASKS_NUV);   /* 4 */
  memset(t, 0, size);
  t->dead = 1;
  t->owner = getpid();
  t->nw = (int)n;
  t->pfd = (struct pollfd *)((char *)t + size);
  for (k = 0; k < t->nw; k++) t->w[k].fd = -1;
  luaL_setmetatable(L, TASKS_MT);
  tasks_opts(L, t);
  lua_pushvalue(L, 3);
  lua_setiuservalue(L, 4, UV_INIT);
  lua_newtable(L);
  lua_setiuservalue(L, 4, UV_DEFS);
  lua_newtable(L);
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_setiuservalue(L, 4, UV_IDS);
  lua_newtable(L);
  lua_setiuservalue(L, 4, UV_SINKS);
  m = mmap(NULL, (size_t)n * sizeof(Slot), PROT_READ | PROT_WRITE,
           MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) {
    int e = errno;
    luaL_pushfail(L);
    lua_pushfstring(L, "mmap: %s", strerror(e));
    lua_pushinteger(L, e);
    return 3;
  }
  t->slots = (Slot *)m;
  t->dead = 0;
  live_add(&t->live, tasks_live);
  lua_pushcfunction(L, new_run);
  lua_pushvalue(L, 4);
  status = lua_pcall(L, 1, 3, 0);
  if (status == LUA_OK && lua_toboolean(L, 5)) {
    lua_settop(L, 4);
    return 1;
  }
  tasks_teardown(t);
  if (status == LUA_OK) return 3;            /* false, err, traceback */
  if (t->syserr == 0) return lua_error(L);
  luaL_pushfail(L);
  lua_pushfstring(L, "%s: %s", t->syswhat, strerror(t->syserr));
  lua_pushinteger(L, t->syserr);
  return 3;
}

static int tasks_gc (lua_State *L) {
  Tasks *t = tasks_check(L);
  tasks_teardown(t);
  return 0;
}

static const luaL_Reg tasks_meta[] = {
  {"__gc", tasks_gc},
  {"__close", tasks_gc},
  {"__index", NULL},
  {NULL, NULL}
};

static const luaL_Reg tasks_methods[] = {
  {"call", tasks_call},
  {"chunk", tasks_chunk},
  {"sink", tasks_sink},
  {"cancel", tasks_cancel},
  {"step", tasks_step},
  {"close", tasks_close},
  {"gone", tasks_gone},
  {"terminate", tasks_terminate},
  {"pending", tasks_pending},
  {"stats", tasks_stats},
  {NULL, NULL}
};

void tasks_open (lua_State *L) {
  luaL_newmetatable(L, TASKS_MT);
  luaL_setfuncs(L, tasks_meta, 0);
  luaL_newlibtable(L, tasks_methods);
  luaL_setfuncs(L, tasks_methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  lua_pushcfunction(L, tasks_new);
  lua_setfield(L, -2, "tasks");
}

/* }====================================================== */
