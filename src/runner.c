/*
** runner.c: the par.runner userdata, the Lua face of run.c.  It owns the
** pool's threads, children and descriptors; __gc and __close tear them
** down, so a Lua error unwinding through par.run leaks nothing.
*/
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "par.h"
#include "opt.h"
#include "run.h"
#include "interrupt.h"
#include "live.h"
#include "sys.h"

#define RUNNER_MT "par.runner"

extern char **environ;

typedef struct Runner {
  Live live;                 /* on live.c's list while open */
  Run run;
  lua_State *L;              /* the thread that made it: a hook target */
  int open;                  /* run holds resources */
  pid_t owner;               /* a forked par.map worker must not tear down */
  int intrfd;                /* from intr_begin, or -1 */
  int sigseen;               /* interrupts already acted upon */
  int interrupted;
  int chld_reset;            /* we set SIGCHLD from SIG_IGN to SIG_DFL */
  struct sigaction chld_saved;
} Runner;

static Runner *checkrunner (lua_State *L) {
  return (Runner *)luaL_checkudata(L, 1, RUNNER_MT);
}

static void runner_teardown (Runner *r) {
  live_remove(&r->live);
  run_free(&r->run);
  if (r->intrfd >= 0) intr_end(r->L);
  r->intrfd = -1;
  if (r->chld_reset) sigaction(SIGCHLD, &r->chld_saved, NULL);
  r->chld_reset = 0;
}

static int runner_close (lua_State *L) {      /* __gc, __close and :close() */
  Runner *r = checkrunner(L);
  if (r->open && r->owner == getpid())
    runner_teardown(r);
  r->open = 0;
  return 0;
}

/* A signal arrived: stop starting jobs and terminate running ones; a
** second one while they are being stopped kills them at once. */
static void runner_interrupt (Runner *r) {
  run_stop(&r->run, r->interrupted ? 2 : 1);
  r->interrupted = 1;
  r->sigseen = intr_count();
}

/* live.c: a signal met Lua code (LIVE_INTR: this runner may sit in a
** suspended coroutine), or the process exits without closing the state. */
static void runner_live (Live *e, int why) {
  Runner *r = (Runner *)((char *)e - offsetof(Runner, live));
  if (!r->open) return;
  if (why == LIVE_INTR) {
    if (intr_count() > r->sigseen) runner_interrupt(r);
    return;
  }
  runner_teardown(r);
  r->open = 0;
}

/* {======================================================= */
/* Copying the commands and options into C memory           */

#define opterror(L, k, msg)   opt_error(L, 2, k, msg)

/* A copy of the string at idx, or NULL if it is not a string without NUL
** bytes (a number is not converted: lua_next may be traversing it). */
static char *dupstr (lua_State *L, int idx) {
  size_t len;
  const char *s;
  char *p;
  if (lua_type(L, idx) != LUA_TSTRING) return NULL;
  s = lua_tolstring(L, idx, &len);
  if (strlen(s) != len) return NULL;
  if ((p = malloc(len + 1)) == NULL) par_nomem(L);
  memcpy(p, s, len + 1);
  return p;
}

/* Copy the argv table at the top into *argv.  0, or why not: -1 if it is
** empty, else the index of the first element that is not a string
** without NUL bytes.  Read raw, as par reads every table (par_rawlen). */
static lua_Integer load_argv (lua_State *L, char ***argv, int arg,
                              const char *what) {
  lua_Integer k, n = par_rawlen(L, -1, arg, what);
  if (n < 1) return -1;
  if ((*argv = calloc((size_t)n + 1, sizeof **argv)) == NULL)
    par_nomem(L);
  for (k = 1; k <= n; k++) {
    lua_rawgeti(L, -1, k);
    (*argv)[k - 1] = dupstr(L, -1);
    lua_pop(L, 1);
    if ((*argv)[k - 1] == NULL) return k;
  }
  return 0;
}

/* The message for load_argv's 'why'. */
static const char *argv_problem (lua_State *L, const char *what,
                                 lua_Integer why) {
  if (why < 0) return lua_pushfstring(L, "%s: non-empty table of strings expected", what);
  return lua_pushfstring(L, "%s: element %I: string without NUL bytes expected",
                         what, (LUAI_UACINT)why);
}

/* A job for the argv table at the top, to run as the index'th of the
** input, with 'remote' its command line for ssh hosts (or NULL); raises
** a bad argument 'arg' for a bad argv. */
static Job *new_job (lua_State *L, lua_Integer index, int arg) {
  char what[48];                    /* on the stack: no Lua string per command */
  lua_Integer why = -1;
  Job *j = run_newjob((long long)index);
  if (j == NULL) par_nomem(L);
  snprintf(what, sizeof what, "command #" LUA_INTEGER_FMT, (LUAI_UACINT)index);
  if (lua_type(L, -1) == LUA_TTABLE) why = load_argv(L, &j->argv, arg, what);
  if (why != 0) {
    run_freejob(j);
    luaL_argerror(L, arg, argv_problem(L, what, why));
  }
  return j;
}

/* A job's command line for ssh hosts, from the string at 'idx'. */
static void job_remote (lua_State *L, Run *run, Job *j, int idx, lua_Integer i) {
  if (run->spec.nhosts == 0) return;
  if ((j->remote = dupstr(L, idx)) == NULL) {
    run_freejob(j);
    opterror(L, "remote", lua_pushfstring(L, "line #%I: string without NUL bytes expected",
                                          (LUAI_UACINT)i));
  }
}

/* cmds[i] is an argv array of strings (run.lua made strings into {shell,
** "-c", cmd}), queued as job i; copied, since on_done may edit cmds.
** With hosts, opts.remote[i] is its command line for ssh. */
static void load_jobs (lua_State *L, Run *run, int idx, int optidx) {
  lua_Integer i, n = par_rawlen(L, idx, 1, NULL);
  if (run->spec.nhosts > 0 && lua_getfield(L, optidx, "remote") != LUA_TTABLE)
    opterror(L, "remote", "table of command lines expected with option 'hosts'");
  if (run->spec.nhosts == 0) lua_pushnil(L);
  lua_pushvalue(L, idx);
  for (i = 1; i <= n; i++) {
    Job *j;
    lua_rawgeti(L, -1, i);
    j = new_job(L, i, 1);
    if (run->spec.nhosts > 0) {
      lua_rawgeti(L, -3, i);
      job_remote(L, run, j, -1, i);
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
    run_push(run, j);
  }
  lua_pop(L, 2);
}

static int opthalt (lua_State *L, int idx) {
  static const char *const halts[] = {"never", "soon", "now", NULL};
  return opt_word(L, idx, "halt", halts, 0);
}

/* Is the env entry at -2 (name), -1 (value) one par can set?  A name is a
** non-empty string without '=' or NUL bytes; a value a string without NUL
** bytes, or false (remove the variable). */
static void check_envpair (lua_State *L) {
  size_t len;
  const char *s;
  if (lua_type(L, -2) != LUA_TSTRING || (s = lua_tolstring(L, -2, &len), len == 0) ||
      strlen(s) != len || strchr(s, '=') != NULL)
    opterror(L, "env", lua_pushfstring(L, "bad variable name %s", opt_shown(L, -2)));
  if (lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1)) return;
  if (lua_type(L, -1) != LUA_TSTRING || (s = lua_tolstring(L, -1, &len), strlen(s) != len))
    opterror(L, "env", lua_pushfstring(L, "variable '%s' must be a string without NUL bytes, or false",
                                       lua_tostring(L, -2)));
}

/* The caller's environment with opts.env applied: a string value adds or
** replaces a variable, false removes it.  Built once, shared by all jobs. */
static void load_env (lua_State *L, Run *run, int idx) {
  size_t i, n = 0, m = 0;
  char **envp;
  if (opt_field(L, idx, "env", LUA_TTABLE) == LUA_TNIL) {
    lua_pop(L, 1);
    return;
  }
  while (environ[n] != NULL) n++;
  lua_pushnil(L);
  while (lua_next(L, -2)) { check_envpair(L); m++; lua_pop(L, 1); }
  if ((envp = calloc(n + m + 1, sizeof *envp)) == NULL) par_nomem(L);
  run->spec.envp = envp;
  m = 0;
  for (i = 0; i < n; i++) {      /* keep the variables env leaves alone */
    const char *eq = strchr(environ[i], '=');
    size_t len = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
    lua_pushlstring(L, environ[i], len);
    if (lua_rawget(L, -2) == LUA_TNIL && (envp[m++] = strdup(environ[i])) == NULL)
      par_nomem(L);
    lua_pop(L, 1);
  }
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    if (lua_isstring(L, -1)) {
      lua_pushvalue(L, -2);
      lua_pushliteral(L, "=");
      lua_pushvalue(L, -3);
      lua_concat(L, 3);
      envp[m++] = dupstr(L, -1);        /* checked: not NULL */
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

/* One entry of opts.hosts, at the top, into h; 'what' is "host #i". */
static void load_host (lua_State *L, Host *h, const char *what) {
  lua_Integer slots = 0, why;
  if (lua_type(L, -1) != LUA_TTABLE)
    opterror(L, "hosts", lua_pushfstring(L, "%s: table expected", what));
  lua_getfield(L, -1, "name");
  if ((h->name = dupstr(L, -1)) == NULL)
    opterror(L, "hosts", lua_pushfstring(L, "%s: name: string without NUL bytes expected", what));
  lua_getfield(L, -2, "slots");
  if (!lua_isinteger(L, -1) || (slots = lua_tointeger(L, -1)) < 1)
    opterror(L, "hosts", lua_pushfstring(L, "%s: slots: integer >= 1 expected", what));
  h->slots = slots < INT_MAX ? (int)slots : INT_MAX;
  lua_pop(L, 2);
  if (lua_getfield(L, -1, "argv") != LUA_TNIL) {   /* ssh ... -- host: remote */
    const char *label = lua_pushfstring(L, "option 'hosts': %s: argv", what);
    lua_pushvalue(L, -2);
    why = lua_istable(L, -1) ? load_argv(L, &h->argv, 2, label) : -1;
    if (why != 0) luaL_argerror(L, 2, argv_problem(L, label, why));
    lua_pop(L, 2);
  }
  lua_pop(L, 1);
}

/* opts.hosts: { {name = "h1", slots = 2, argv = {"ssh", ..., "--", "h1"}},
** {name = ":", slots = 2} (local) }, and opts.remote: each job's command
** as one shell string, which ssh hands to the remote shell. */
static void load_hosts (lua_State *L, Run *run, int idx) {
  RunSpec *s = &run->spec;
  lua_Integer n;
  int i;
  if (opt_field(L, idx, "hosts", LUA_TTABLE) == LUA_TNIL) {
    lua_pop(L, 1);
    return;
  }
  n = par_rawlen(L, -1, 2, "option 'hosts'");
  if (n < 1 || n > 4096) opterror(L, "hosts", "1 to 4096 hosts expected");
  if ((s->hosts = calloc((size_t)n, sizeof *s->hosts)) == NULL) par_nomem(L);
  s->nhosts = (int)n;
  for (i = 1; i <= s->nhosts; i++) {
    const char *what = lua_pushfstring(L, "host #%d", i);
    lua_rawgeti(L, -2, i);
    load_host(L, &s->hosts[i - 1], what);
    lua_pop(L, 2);
  }
  lua_pop(L, 1);
}

/* opts.termseq: { signal, seconds, signal, seconds, ... } (par.options
** reads GNU's "TERM,200,KILL,25" into it). */
static void load_termseq (lua_State *L, RunSpec *s, int idx) {
  lua_Integer n, k;
  if (opt_field(L, idx, "termseq", LUA_TTABLE) == LUA_TNIL) {
    lua_pop(L, 1);
    return;
  }
  n = par_rawlen(L, -1, idx, "option 'termseq'");
  if (n < 2 || n % 2 != 0 || n / 2 > TERMSEQ_MAX)
    opterror(L, "termseq", "1 to 32 pairs of a signal and seconds expected");
  for (k = 0; k < n / 2; k++) {
    int isnum;
    lua_Integer sig;
    double wait;
    lua_rawgeti(L, -1, 2 * k + 1);
    sig = lua_tointegerx(L, -1, &isnum);
    if (!isnum || sig < 1 || sig >= NSIG) opterror(L, "termseq", "a signal number expected");
    lua_rawgeti(L, -2, 2 * k + 2);
    wait = lua_tonumberx(L, -1, &isnum);
    if (!isnum || !(wait >= 0 && wait < 1e9)) opterror(L, "termseq", "seconds >= 0 expected");
    s->termsig[k] = (int)sig;
    s->termwait[k] = wait;
    lua_pop(L, 2);
  }
  s->nterm = (int)(n / 2);
  lua_pop(L, 1);
}

static void load_spec (lua_State *L, Run *run, int idx) {
  RunSpec *s = &run->spec;
  size_t len = 0;
  s->capture = opt_flag(L, idx, "capture", 1);
  s->stream = opt_flag(L, idx, "chunks", 0);
  s->starts = opt_flag(L, idx, "starts", 0);
  s->timeout = opt_num(L, idx, "timeout", 0, 1);          /* 0: none */
  s->kill_after = opt_num(L, idx, "kill_after", 2, 0);
  s->live_timeout = opt_flag(L, idx, "live_timeout", 0);
  run->timeout_now = s->timeout;
  load_termseq(L, s, idx);
  s->retries = (int)opt_int(L, idx, "retries", 0, 0, INT_MAX - 1);
  s->retry_delay = opt_num(L, idx, "retry_delay", 0, 0);
  s->delay = opt_num(L, idx, "delay", 0, 0);
  s->max_output = (size_t)opt_int(L, idx, "max_output", 64 << 20, 0,
                                 (lua_Integer)(SIZE_MAX < LUA_MAXINTEGER ? SIZE_MAX : LUA_MAXINTEGER));
  s->halt = opthalt(L, idx);
  s->halt_fails = (int)opt_int(L, idx, "halt_fails", 1, 1, INT_MAX);
  s->cwd = opt_str(L, idx, "cwd", &len, 1);
  s->input = opt_str(L, idx, "stdin", &s->inputlen, 0);
  s->slotmark = opt_str(L, idx, "slotmark", &s->slotmarklen, 1);
  if (s->slotmark != NULL && s->slotmarklen == 0)
    opterror(L, "slotmark", "non-empty string expected");
  load_env(L, run, idx);
  load_hosts(L, run, idx);
}

/* }======================================================= */

/* A host that ignores SIGCHLD makes the kernel reap our children before we
** can read their status; restore the default for the duration of the run. */
static void fix_sigchld (Runner *r) {
  struct sigaction dfl;
  sigaction(SIGCHLD, NULL, &r->chld_saved);
  if (r->chld_saved.sa_handler == SIG_IGN ||
      (r->chld_saved.sa_flags & SA_NOCLDWAIT)) {
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(SIGCHLD, &dfl, NULL);
    r->chld_reset = 1;
  }
}

/* A failure of the system (no thread, no pipe): tear down what started,
** then fail, "what: strerror", errno, as luaL_fileresult does. */
static int syserror (lua_State *L, Runner *r, const char *what, int e) {
  runner_teardown(r);
  r->open = 0;
  luaL_pushfail(L);
  lua_pushfstring(L, "%s: %s", what, strerror(e));
  lua_pushinteger(L, e);
  return 3;
}

/* core.runner(cmds, opts): copy everything, then start the workers. */
static int par_runner (lua_State *L) {
  Runner *r;
  int e, jobs;
  const char *what;
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TTABLE);
  if (lua_getfield(L, 2, "jobs") == LUA_TNIL)   /* required: no default */
    opterror(L, "jobs", "integer expected, got nil");
  lua_pop(L, 1);
  jobs = (int)opt_int(L, 2, "jobs", 1, 1, INT_MAX);
  r = (Runner *)lua_newuserdatauv(L, sizeof *r, 1);
  memset(r, 0, sizeof *r);          /* closed and empty: safe to collect */
  r->intrfd = -1;
  r->owner = getpid();
  r->L = L;
  luaL_setmetatable(L, RUNNER_MT);
  lua_pushthread(L);                /* a hook target lives as long as we do */
  lua_setiuservalue(L, -2, 1);
  r->open = 1;
  live_add(&r->live, runner_live);
  if ((e = run_init(&r->run, &what)) != 0) return syserror(L, r, what, e);
  load_spec(L, &r->run, 2);
  load_jobs(L, &r->run, 1, 2);
  if (!opt_flag(L, 2, "open", 0)) run_endinput(&r->run);
  if ((r->intrfd = intr_begin(L)) < 0) return syserror(L, r, "pipe", errno);
  r->sigseen = intr_count();
  fix_sigchld(r);
  if ((e = run_start(&r->run, jobs)) != 0) return syserror(L, r, "pthread_create", e);
  return 1;
}

/* {======================================================= */
/* Results                                                  */

static void setstr (lua_State *L, const char *k, const char *v) {
  lua_pushstring(L, v);
  lua_setfield(L, -2, k);
}

static void setnum (lua_State *L, const char *k, double v) {
  lua_pushnumber(L, v);
  lua_setfield(L, -2, k);
}

static void setint (lua_State *L, const char *k, lua_Integer v) {
  lua_pushinteger(L, v);
  lua_setfield(L, -2, k);
}

static void setoutput (lua_State *L, const char *k, Buf *b) {
  lua_pushlstring(L, b->data != NULL ? b->data : "", b->len);
  lua_setfield(L, -2, k);
  buf_free(b);                      /* the string is Lua's now */
}

static const char *const statusnames[] = {
  "skipped", "exit", "signal", "error", "timeout"
};

static void pushnohosts (lua_State *L, Run *run) {
  luaL_Buffer b;
  int i;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, "no host left to run on: ");
  for (i = 0; i < run->spec.nhosts; i++) {
    if (i > 0) luaL_addstring(&b, ", ");
    luaL_addstring(&b, run->spec.hosts[i].name);
  }
  luaL_addstring(&b, " unreachable (ssh exit 255)");
  luaL_pushresult(&b);
}

static void pusherror (lua_State *L, Run *run, Job *j) {
  const char *msg = strerror(j->err);
  if (j->errwhat == NULL)
    lua_pushfstring(L, "cannot run '%s': %s", j->argv[0], msg);
  else if (strcmp(j->errwhat, "chdir") == 0)
    lua_pushfstring(L, "cannot change to directory '%s': %s", run->spec.cwd, msg);
  else if (strcmp(j->errwhat, "hosts") == 0)
    pushnohosts(L, run);
  else if (strcmp(j->errwhat, "waitid") == 0)
    lua_pushfstring(L, "cannot get the exit status of '%s': it was reaped by "
                    "someone else (a SIGCHLD handler calling wait?)", j->argv[0]);
  else
    lua_pushfstring(L, "cannot run '%s': %s: %s", j->argv[0], j->errwhat, msg);
  lua_setfield(L, -2, "error");
}

static void pushresult (lua_State *L, Runner *r, Job *j) {
  lua_createtable(L, 0, 12);
  lua_pushboolean(L, j->status == ST_EXIT && j->code == 0);
  lua_setfield(L, -2, "ok");
  setstr(L, "status", statusnames[j->status]);
  if (j->status == ST_NONE) return;
  if (j->status == ST_ERROR) pusherror(L, &r->run, j);
  else if (j->signaled) setint(L, "signal", j->code);
  else if (j->status != ST_TIMEOUT || j->pid != 0) setint(L, "code", j->code);
  if (j->pid != 0) setint(L, "pid", j->pid);
  if (j->host >= 0) setstr(L, "host", r->run.spec.hosts[j->host].name);
  setnum(L, "elapsed", j->elapsed);
  setnum(L, "started", j->started);
  setint(L, "attempts", j->attempts);
  if (j->truncated) {
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "truncated");
  }
  if (j->stopped) {
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "stopped");
  }
  if (r->run.spec.capture && !r->run.spec.stream) {
    setoutput(L, "stdout", &j->out);
    setoutput(L, "stderr", &j->errout);
  }
}

/* }======================================================= */

static void drainfd (int fd) {
  char b[256];
  while (read(fd, b, sizeof b) > 0) ;
}

/* A signal seen by our own loop: no hook raises for it. */
static void check_interrupt (Runner *r) {
  if (intr_count() > r->sigseen) {
    runner_interrupt(r);
    intr_ack();
  }
}

static int pushjob (lua_State *L, Runner *r, Job *j) {
  lua_pushinteger(L, (lua_Integer)j->index);
  pushresult(L, r, j);
  run_freejob(j);
  return 2;
}

static int pushchunk (lua_State *L, Chunk *c) {
  lua_pushinteger(L, (lua_Integer)c->index);
  lua_pushstring(L, c->err == CHUNK_START ? "start" : c->err == CHUNK_RETRY ? "retry"
                   : c->err ? "stderr" : "stdout");
  lua_pushlstring(L, c->data, c->len);
  free(c);
  return 3;
}

/*
** runner:next([wait [, fd]]): what happened next.  A finished job as
** index, result (a stopped run's jobs that never started come as
** skipped); with opts.chunks, output before it as index, "stdout" or
** "stderr", the bytes; with opts.starts, index, "start", the job's slot
** (digits) as it starts.  false when 'wait' seconds passed first; false,
** "input" when descriptor fd became readable; nil when every job is done,
** plus "interrupted" when SIGINT or SIGTERM cut the run short.
*/
static int runner_next (lua_State *L) {
  Runner *r = checkrunner(L);
  double wait = luaL_optnumber(L, 2, -1);
  double until = wait >= 0 ? sys_mono() + wait : 0;
  int fd = (int)luaL_optinteger(L, 3, -1);
  luaL_argcheck(L, r->open, 1, "runner is closed");
  for (;;) {
    struct pollfd p[3] = {{r->run.wake[0], POLLIN, 0}, {r->intrfd, POLLIN, 0},
                          {fd, POLLIN, 0}};
    int ms = -1;
    Chunk *c = run_popchunk(&r->run);
    Job *j;
    if (c != NULL) return pushchunk(L, c);
    check_interrupt(r);
    if ((j = run_pop(&r->run)) != NULL || (j = run_popskipped(&r->run)) != NULL)
      return pushjob(L, r, j);
    if (run_over(&r->run)) {
      lua_pushnil(L);
      if (!r->interrupted) return 1;
      lua_pushliteral(L, "interrupted");
      return 2;
    }
    if (wait >= 0) {
      double left = until - sys_mono();
      if (left <= 0) {
        lua_pushboolean(L, 0);
        return 1;
      }
      ms = left > 1e6 ? 1000000000 : (int)(left * 1000.0) + 1;
    }
    if (poll(p, fd >= 0 ? 3 : 2, ms) > 0) {
      if (p[0].revents) drainfd(r->run.wake[0]);
      if (p[1].revents) drainfd(r->intrfd);
      if (fd >= 0 && p[2].revents) {
        lua_pushboolean(L, 0);
        lua_pushliteral(L, "input");
        return 2;
      }
    }
  }
}

/* The string at 'idx' as job j's stdin, copied: its own, over opts.stdin. */
static void job_input (lua_State *L, Job *j, int idx) {
  size_t len;
  const char *s = lua_tolstring(L, idx, &len);
  if ((j->input = malloc(len > 0 ? len : 1)) == NULL) {
    run_freejob(j);
    par_nomem(L);
  }
  memcpy(j->input, s, len);
  j->inputlen = len;
}

/* runner:push(argv, i [, remote [, input]]): queue argv as the i'th
** command of the input ('remote': its line for ssh hosts; 'input': its
** stdin, over opts.stdin), with opts.open. */
static int runner_push (lua_State *L) {
  Runner *r = checkrunner(L);
  lua_Integer i = luaL_checkinteger(L, 3);
  Job *j;
  luaL_argcheck(L, r->open, 1, "runner is closed");
  luaL_argcheck(L, r->run.input_open, 1, "runner's input is over");
  luaL_argexpected(L, lua_isnoneornil(L, 5) || lua_type(L, 5) == LUA_TSTRING, 5,
                   "string or nil");
  lua_settop(L, 5);
  lua_pushvalue(L, 2);
  j = new_job(L, i, 2);
  if (!lua_isnil(L, 5)) job_input(L, j, 5);
  if (r->run.spec.nhosts > 0) {
    if (lua_type(L, 4) != LUA_TSTRING) {
      run_freejob(j);
      luaL_argerror(L, 4, "string expected with hosts");
    }
    job_remote(L, &r->run, j, 4, i);
  }
  run_push(&r->run, j);
  return 0;
}

/* runner:endinput(): no more commands; the workers leave once done. */
static int runner_endinput (lua_State *L) {
  Runner *r = checkrunner(L);
  if (r->open) run_endinput(&r->run);
  return 0;
}

/* runner:stopping(): whether the run hands out no more jobs. */
static int runner_stopping (lua_State *L) {
  Runner *r = checkrunner(L);
  lua_pushboolean(L, !r->open || run_stopping(&r->run));
  return 1;
}

/* runner:stop([kill]): start no more jobs; kill = 1 terminates running
** ones (SIGTERM, then SIGKILL after kill_after), 2 kills them at once. */
static int runner_stop (lua_State *L) {
  Runner *r = checkrunner(L);
  int kill = (int)luaL_optinteger(L, 2, 0);
  luaL_argcheck(L, kill >= 0 && kill <= 2, 2, "0, 1 or 2 expected");
  if (r->open) run_stop(&r->run, kill);
  return 0;
}

/* runner:settimeout(secs): with live_timeout, the time limit of running
** and later jobs; 0 for none. */
static int runner_settimeout (lua_State *L) {
  Runner *r = checkrunner(L);
  double t = luaL_checknumber(L, 2);
  luaL_argcheck(L, t >= 0 && t < 1e12, 2, "seconds >= 0 expected");
  if (r->open) run_settimeout(&r->run, t);
  return 0;
}

/* runner:setjobs(n): at most n jobs at once from now on, starting more
** workers if need be.  true, or fail, "pthread_create: ...", errno when
** none more could start (the run goes on with those it has). */
static int runner_setjobs (lua_State *L) {
  Runner *r = checkrunner(L);
  lua_Integer n = luaL_checkinteger(L, 2);
  int e = 0;
  luaL_argcheck(L, n >= 1 && n <= 100000, 2, "1 to 100000 expected");
  if (r->open) e = run_setjobs(&r->run, (int)n);
  if (e != 0) return luaL_fileresult(L, 0, "pthread_create");
  lua_pushboolean(L, 1);
  return 1;
}

/* runner:hold(on): with on true, start no more jobs until runner:hold(false). */
static int runner_hold (lua_State *L) {
  Runner *r = checkrunner(L);
  int on = lua_toboolean(L, 2);
  if (r->open) run_hold(&r->run, on);
  return 0;
}

/* runner:evictable(): jobs may be evicted from now on (before any push). */
static int runner_evictable (lua_State *L) {
  Runner *r = checkrunner(L);
  if (r->open) run_evictable(&r->run);
  return 0;
}

/* runner:evict(): stop the running job with the highest index and queue it
** to run again; its index, or nil when none runs. */
static int runner_evict (lua_State *L) {
  Runner *r = checkrunner(L);
  long long i = r->open ? run_evict(&r->run) : 0;
  if (i == 0) lua_pushnil(L);
  else lua_pushinteger(L, (lua_Integer)i);
  return 1;
}

/* runner:counts(): jobs started so far, jobs finished so far. */
static int runner_counts (lua_State *L) {
  Runner *r = checkrunner(L);
  size_t claimed = 0, finished = 0;
  if (r->open) run_counts(&r->run, &claimed, &finished);
  lua_pushinteger(L, (lua_Integer)claimed);
  lua_pushinteger(L, (lua_Integer)finished);
  return 2;
}

/* runner:interrupted(): whether SIGINT or SIGTERM cut the run short. */
static int runner_interrupted (lua_State *L) {
  lua_pushboolean(L, checkrunner(L)->interrupted);
  return 1;
}

static const luaL_Reg runner_methods[] = {
  {"interrupted", runner_interrupted},
  {"next", runner_next},
  {"push", runner_push},
  {"endinput", runner_endinput},
  {"stopping", runner_stopping},
  {"counts", runner_counts},
  {"stop", runner_stop},
  {"settimeout", runner_settimeout},
  {"setjobs", runner_setjobs},
  {"hold", runner_hold},
  {"evictable", runner_evictable},
  {"evict", runner_evict},
  {"close", runner_close},
  {NULL, NULL}
};

static const luaL_Reg runner_meta[] = {
  {"__gc", runner_close},
  {"__close", runner_close},
  {"__index", NULL},
  {NULL, NULL}
};

void run_open (lua_State *L) {
  luaL_newmetatable(L, RUNNER_MT);
  luaL_setfuncs(L, runner_meta, 0);
  luaL_newlib(L, runner_methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  lua_pushcfunction(L, par_runner);
  lua_setfield(L, -2, "runner");
}
