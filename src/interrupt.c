/*
** interrupt.c: signals while a par call is live.
**
** A signal handler gets no context, so this file keeps par's one piece of
** signal state in globals: the self-pipe, the saved handlers and the Lua
** threads to interrupt.  The handler records the signal, writes a byte and
** arms a count hook on those threads, as lua.c does for Ctrl-C:
** - par's own loops (runner:next, the map pool) sleep in poll() on the
**   self-pipe: they stop their children, reap them and raise
**   "interrupted", and acknowledge the signal (intr_ack);
** - Lua code that runs meanwhile (an on_done callback, or the host's code
**   while a par.run sits in a suspended coroutine) meets the hook at its
**   next instruction: the hook stops every live runner (live.c) and raises
**   "interrupted" there; the runner's teardown then reaps.
** The hook counts instructions only (LUA_MASKCOUNT): it never fires on
** the call of a C function, so it cannot cut a __close or __gc short.
** Signals reach only the threads that run Lua (par's worker threads block
** them all), so the nesting state needs no lock; the handler's view of
** the hook targets is kept consistent by blocking the signals around
** every change.
*/
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>

#include "interrupt.h"
#include "live.h"
#include "sys.h"

#define NTARGET 64           /* Lua threads a signal arms; more are not armed */

static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE};
#define NSIG_PAR ((int)(sizeof sigs / sizeof sigs[0]))

typedef struct Target {
  lua_State *L;
  int refs;                  /* intr_begin calls naming it, not yet ended */
  volatile sig_atomic_t armed;
  lua_Hook hook;             /* the host's hook, put back on disarm */
  int mask, count;
  lua_State *main;           /* the main thread of L's state */
} Target;

static int depth = 0;                       /* nested intr_begin calls */
static int selfpipe[2] = {-1, -1};
static volatile sig_atomic_t pending = 0;
static volatile sig_atomic_t count = 0;     /* signals since the outermost begin */
static volatile sig_atomic_t last = 0;
static int acted = 0;                       /* of those, the ones acted upon */
static struct sigaction saved[NSIG_PAR];
static int caught[NSIG_PAR];
static Target targets[NTARGET];

static void intr_hook (lua_State *L, lua_Debug *ar);

static void arm (Target *t) {
  if (t->L == NULL || t->refs == 0 || t->armed) return;
  t->hook = lua_gethook(t->L);
  t->mask = lua_gethookmask(t->L);
  t->count = lua_gethookcount(t->L);
  t->armed = 1;
  lua_sethook(t->L, intr_hook, LUA_MASKCOUNT, 1);   /* safe in a handler: lua.c does it */
}

static void onsignal (int sig) {
  int k, save = errno;       /* a handler must not change errno under the code it interrupted */
  pending = last = sig;
  count++;
  sys_writeall(selfpipe[1], "", 1);   /* async-signal-safe (sys.h) */
  for (k = 0; k < NTARGET; k++) arm(&targets[k]);
  errno = save;              /* EAGAIN: the pipe is full, a wake-up is pending anyway */
}

static void block (sigset_t *old) {
  sigset_t set;
  int k;
  sigemptyset(&set);
  for (k = 0; k < NSIG_PAR; k++) sigaddset(&set, sigs[k]);
  sigprocmask(SIG_BLOCK, &set, old);
}

static void unblock (const sigset_t *old) {
  sigprocmask(SIG_SETMASK, old, NULL);
}

/* Put the host's hooks back wherever ours waits. */
static void disarm (void) {
  sigset_t old;
  int k;
  block(&old);
  for (k = 0; k < NTARGET; k++) {
    Target *t = &targets[k];
    if (!t->armed) continue;
    lua_sethook(t->L, t->hook, t->mask, t->count);
    t->armed = 0;
  }
  unblock(&old);
}

static void intr_hook (lua_State *L, lua_Debug *ar) {
  (void)ar;
  disarm();
  if (count == acted) return;      /* par's own loop took care of it */
  acted = count;
  live_interrupt();                /* stop what runs, even if this error is caught */
  lua_pushliteral(L, "interrupted");
  lua_error(L);
}

static Target *target_find (lua_State *L) {
  int k;
  for (k = 0; k < NTARGET; k++)
    if (targets[k].refs > 0 && targets[k].L == L) return &targets[k];
  return NULL;
}

static Target *target_free (void) {
  int k;
  for (k = 0; k < NTARGET; k++)
    if (targets[k].refs == 0) return &targets[k];
  return NULL;
}

static void target_ref (Target *t, lua_State *L, lua_State *M) {
  if (t->refs++ == 0) {
    t->L = L;
    t->main = M;
    t->armed = 0;
  }
  if (count != acted) arm(t);      /* a signal no one has seen to yet */
}

/* L and its main thread M (most often L itself) become targets.  Both or
** neither: intr_end finds M through L's entry, without the Lua API. */
static void target_add (lua_State *L, lua_State *M) {
  sigset_t old;
  Target *t, *m;
  block(&old);
  t = target_find(L);
  if (t == NULL && (t = target_free()) != NULL) t->refs = 0;
  if (t != NULL) {
    target_ref(t, L, M);
    m = target_find(M);
    if (m == NULL) m = target_free();
    if (m != NULL) target_ref(m, M, M);
    else t->refs--;                /* full: not armed at all */
  }
  unblock(&old);
}

static void target_unref (Target *t) {
  if (t == NULL || --t->refs > 0) return;
  if (t->armed) lua_sethook(t->L, t->hook, t->mask, t->count);
  t->armed = 0;
  t->L = t->main = NULL;
}

static void target_remove (lua_State *L) {
  sigset_t old;
  Target *t;
  block(&old);
  if ((t = target_find(L)) != NULL) {
    lua_State *M = t->main;
    target_unref(t);
    target_unref(target_find(M));
  }
  unblock(&old);
}

static lua_State *mainthread (lua_State *L) {
  lua_State *M;
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  M = lua_tothread(L, -1);
  lua_pop(L, 1);
  return M;
}

/* Take over each signal unless the host ignores it (a job started in the
** background by a shell has SIGINT ignored, and must go on ignoring it);
** SIGPIPE only where it would kill the process: a host that ignores it,
** as socket libraries do, gets EPIPE from its writes as before. */
static void catch_all (void) {
  struct sigaction sa;
  int k;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = onsignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;           /* no SA_RESTART: let poll() return EINTR too */
  for (k = 0; k < NSIG_PAR; k++) {
    sigaction(sigs[k], NULL, &saved[k]);
    caught[k] = saved[k].sa_handler != SIG_IGN &&
                (sigs[k] != SIGPIPE || saved[k].sa_handler == SIG_DFL);
    if (caught[k]) sigaction(sigs[k], &sa, NULL);
  }
}

static void restore_all (void) {
  int k;
  for (k = 0; k < NSIG_PAR; k++)
    if (caught[k]) sigaction(sigs[k], &saved[k], NULL);
  memset(caught, 0, sizeof caught);
}

int intr_begin (lua_State *L) {
  if (depth++ == 0) {
    int e = sys_pipe(selfpipe, 1);
    if (e != 0) {
      depth--;
      errno = e;
      return -1;
    }
    pending = count = 0;
    acted = 0;
    catch_all();
  }
  target_add(L, mainthread(L));
  return selfpipe[0];
}

void intr_end (lua_State *L) {
  int sig;
  if (depth == 0) return;
  target_remove(L);
  if (--depth > 0) return;
  disarm();
  restore_all();
  close(selfpipe[0]);
  close(selfpipe[1]);
  selfpipe[0] = selfpipe[1] = -1;
  sig = pending;
  if (count != acted && sig != 0) {  /* it came as par was ending: the host's */
    acted = count;
    raise(sig);
  }
}

int intr_pending (void) {
  return pending;
}

int intr_count (void) {
  return count;
}

void intr_ack (void) {
  acted = count;
  disarm();
}

int intr_last (void) {
  return last;
}

/* In a forked child (a par.map worker): forget the parent's handlers,
** hooks and self-pipe, whose descriptors the child closes, so that a
** par.run or par.map inside the worker installs its own; the host's
** dispositions come back (worker.c then sets SIGINT and SIGTERM to the
** defaults). */
void intr_afterfork (void) {
  disarm();
  restore_all();
  memset(targets, 0, sizeof targets);
  depth = 0;
  selfpipe[0] = selfpipe[1] = -1;
  pending = count = 0;
  acted = 0;
  live_afterfork();
}


/*
** {======================================================
** core.trap () and core.lastsignal ()
** =======================================================
*/

#define TRAP_MT "par.trap"

typedef struct Trap {
  lua_State *L;              /* NULL once closed */
} Trap;

static int trap_close (lua_State *L) {
  Trap *t = (Trap *)luaL_checkudata(L, 1, TRAP_MT);
  if (t->L != NULL) intr_end(t->L);
  t->L = NULL;
  return 0;
}

static int par_trap (lua_State *L) {
  Trap *t = (Trap *)lua_newuserdatauv(L, sizeof *t, 1);
  t->L = NULL;
  luaL_setmetatable(L, TRAP_MT);
  lua_pushthread(L);               /* keep the target alive while armed */
  lua_setiuservalue(L, -2, 1);
  if (intr_begin(L) < 0) {
    int e = errno;
    luaL_pushfail(L);
    lua_pushfstring(L, "pipe: %s", strerror(e));
    lua_pushinteger(L, e);
    return 3;
  }
  t->L = L;
  return 1;
}

static int par_lastsignal (lua_State *L) {
  lua_pushinteger(L, intr_last());
  return 1;
}

void intr_open (lua_State *L) {
  static const luaL_Reg meta[] = {
    {"__gc", trap_close}, {"__close", trap_close}, {NULL, NULL}
  };
  luaL_newmetatable(L, TRAP_MT);
  luaL_setfuncs(L, meta, 0);
  lua_pop(L, 1);
  lua_pushcfunction(L, par_trap);
  lua_setfield(L, -2, "trap");
  lua_pushcfunction(L, par_lastsignal);
  lua_setfield(L, -2, "lastsignal");
}

/* }====================================================== */
