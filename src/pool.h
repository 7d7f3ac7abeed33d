/*
** pool.h: par.map's process pool, the parent side (see pool.c), for
** map.c, which reads the options into a Pool and runs it.
*/
#ifndef PAR_POOL_H
#define PAR_POOL_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "par.h"
#include "buf.h"
#include "live.h"
#include "slot.h"

/* Stack of map_run (map.c), where the pool runs and workers are forked;
** an imap step (map.c) lays out its stack the same way.  With lazy items,
** MAP_ITEMS is the iterator; with a stream, MAP_RESULTS holds the results
** not yet yielded (an array of wcap slots: pool_pop) and MAP_ERRS the
** errors (by index). */
#define MAP_FN        1
#define MAP_ITEMS     2
#define MAP_INIT      3
#define MAP_ONRESULT  4
#define MAP_POOL      5
#define MAP_RESULTS   6
#define MAP_ERRS      7

typedef struct Range {
  lua_Integer a, b;
} Range;

/* Lazy items a..b given back by a worker (it died or retired), encoded
** as they were sent: bytes[offs[k - a]..offs[k - a + 1]) is item k. */
typedef struct Span {
  lua_Integer a, b;
  char *bytes;
  size_t *offs;
} Span;

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
  int64_t tgive;         /* sys_monons when its task was given */
  /* lazy items: its task's F_ITEMS frame, kept until the task is done (a
  ** death or a retirement gives the rest back, as a Span) */
  Buf task;
  size_t sent;           /* bytes of 'task' written so far */
  lua_Integer first;     /* the task's first item ... */
  size_t *offs;          /* ... item first + k at offs[k] from 'base' */
  size_t base, offcap;
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
  lua_Integer chunksize; /* opts.chunksize; 0: guided */
  size_t memory;         /* opts.worker_memory, bytes */
  double timeout;        /* opts.timeout, seconds; 0: none */
  int collect;           /* opts.errors == "collect" */
  int64_t t0;            /* sys_monons when the map began */
  int64_t forkns;        /* how long the last fork took the caller */
  size_t gcbase;         /* caller's heap when the map began (KiB) */
  int gcpaused;          /* we hold the caller's collector back */
  char *hole;            /* results' array part, kept out of forks ... */
  size_t holelen;        /* ... (map.c: results_new), or NULL */
  struct Pool *outer;    /* the pool of an enclosing map, or NULL */
  int chained;           /* registered as the innermost open pool */
  struct pollfd *pfd;    /* nw + 1 entries, after the workers */
  const char *fname;     /* "map" or "imap", for bad arguments */
  /* Lazy items (MAP_ITEMS is an iterator): n and left count what was
  ** pulled, and items go to workers in F_ITEMS frames */
  int lazy;
  int eof;               /* the iterator returned nil */
  Span *redo;            /* given back, to send again first */
  size_t nredo, redocap;
  lua_Integer chunk;     /* adaptive chunk size (lazy items or a stream) */
  /* A stream (par.imap): results wait in MAP_RESULTS until yielded */
  int stream;
  int ordered;           /* yield in input order */
  lua_Integer hold;      /* items given out and not yet yielded */
  lua_Integer wcap;      /* most items held at once (a power of 2) */
  lua_Integer nexty;     /* ordered: the next item to yield */
  unsigned char *arrived;   /* ordered: arrived[i & (wcap - 1)] */
  lua_Integer *q;        /* completion order: a ring of items done */
  lua_Integer qhead, qlen;
  lua_Integer nerrs;     /* errors in MAP_ERRS not yet yielded */
  Worker w[1];           /* nw entries */
} Pool;

/* Push a closed pool of 'nw' worker slots for n items (a "par.pool"
** userdata with nuv user values: its __gc and __close tear down).  The
** caller sets the options' fields (and lazy, stream, ordered, fname). */
Pool *pool_new (lua_State *L, int nw, lua_Integer n, int nuv);

/* Open the pool, on map_run's stack: the shared page, the signal
** handlers, all items to do.  A system failure raises, with p->syserr
** and p->syswhat set: after the teardown core.map returns nil, msg, errno. */
void pool_begin (lua_State *L, Pool *p);

/* Fork workers, hand out the items and take in the results, until every
** item has a result or an error (or until an error is raised: the first
** failed item's without opts.errors = "collect", a system failure's as
** for pool_begin, "interrupted"...). */
void pool_run (lua_State *L, Pool *p);

/* Hold the caller's signals (on), or give them back: a stream does so
** for each step only, so that its loop body runs under the host's. */
void pool_intr (lua_State *L, Pool *p, int on);

/* A stream: run until a result is ready to yield (1) or every item has
** been yielded (0); with the stack laid out as for map_run. */
int pool_step (lua_State *L, Pool *p);

/* A stream's next result, if ready: 1 with its index in *i and its slot
** in *slot (MAP_RESULTS[*slot + 1]; an error is MAP_ERRS[*i]). */
int pool_pop (Pool *p, lua_Integer *i, lua_Integer *slot);

/* Kill and reap every worker, and undo what pool_begin did; once only,
** and only in the process that opened it. */
void pool_teardown (lua_State *L, Pool *p);

/* Hold the caller's collector back for the map, and let it go (see .c). */
void pool_gcpause (lua_State *L, Pool *p);
void pool_gcresume (lua_State *L, Pool *p);

/* Shared with par.pool's parent side (tasks.c): kill a worker and all it
** started; wait for it (its status, or -1 if lost); push why it died
** ("worker died (signal 9, SIGKILL)"), or "timeout after Ns". */
void pool_killworker (pid_t pid);
/* In a fresh fork that goes on running Lua: map zeroed pages where an
** open map keeps its results array out of forks (see map.c). */
void pool_afterfork (lua_State *L);
int pool_waitworker (pid_t pid);
void pool_pushdeath (lua_State *L, int st);
void pool_pushtimeout (lua_State *L, double t);

/* The pool userdata at stack index idx (a "par.pool"). */
Pool *pool_check (lua_State *L, int idx);

#endif
