/*
** worker.h: a par.map worker, the forked child's side (see worker.c).
*/
#ifndef PAR_WORKER_H
#define PAR_WORKER_H

#include <stddef.h>
#include <sys/types.h>

#include <lua.h>

#include "slot.h"

#define EXIT_ORPHAN   111   /* the parent died before the worker started */
#define EXIT_FAILED   112   /* the worker itself failed; message on stderr */

/* What a worker gets from the pool at the fork, besides the Lua state. */
typedef struct ChildSpec {
  int fd;                /* its end of the socket to the parent */
  Slot *slot;            /* its slot of the shared page */
  pid_t parent;          /* the pool's process */
  int timed;             /* items have a timeout: record start times */
  size_t budget;         /* bytes it may allocate before it retires */
  const char *who;       /* "par.map" or "par.pool", for messages */
} ChildSpec;

/* The body of a worker, just after the fork, with fn, items and opts.init
** (or nil) at the top of L's stack.  Takes tasks from the socket until
** the parent closes it, or until the worker retires; never returns. */
void child_main (lua_State *L, const ChildSpec *s);

/* The body of a par.pool worker, with opts.init (or nil) at the top of L's
** stack: takes tasks (F_DEFINE, F_CALL, F_CHUNK) until the parent closes
** the socket, or until it retires; never returns. */
void child_serve (lua_State *L, const ChildSpec *s);

#endif
