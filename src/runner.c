/*
** runner.c: the par.runner userdata, the Lua face of run.c.  It owns the
** pool's threads, children and descriptors; __gc and __close tear them
** down, so a Lua error unwinding through par.run leaks nothing.
*/
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "par.h"
#include "run.h"
#include "interrupt.h"

#define RUNNER_MT "par.runner"

extern char **environ;

typedef struct Runner {
  Run run;
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
  run_free(&r->run);
  if (r->intrfd >= 0) intr_end();
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

/* {======================================================= */
/* Copying the commands and options into C memory           */

static char *dupstr (lua_State *L, int idx, const char *what, int i) {
  size_t len;
  const char *s = lua_tolstring(L, idx, &len);
  char *p;
  if (s == NULL || strlen(s) != len)
    luaL_error(L, "bad %s #%d (string without NUL bytes expected)", what, i);
  if ((p = malloc(len + 1)) == NULL) luaL_error(L, "not enough memory");
  memcpy(p, s, len + 1);
  return p;
}

/* An argv array of strings, at the top of the stack, into *argv. */
static void load_argv (lua_State *L, char ***argv, int i) {
  lua_Integer n = luaL_len(L, -1);
  if (n < 1) luaL_error(L, "bad command #%d (non-empty argv table expected)", i);
  if ((*argv = calloc((size_t)n + 1, sizeof **argv)) == NULL)
    luaL_error(L, "not enough memory");
  for (lua_Integer k = 1; k <= n; k++) {
    lua_rawgeti(L, -1, k);
    (*argv)[k - 1] = dupstr(L, -1, "command", i);
    lua_pop(L, 1);
  }
}

static void load_jobs (lua_State *L, Run *run, int idx) {
  lua_Integer n = luaL_len(L, idx);
  run->jobs = calloc(n > 0 ? (size_t)n : 1, sizeof *run->jobs);
  if (run->jobs == NULL) luaL_error(L, "not enough memory");
  run->njobs = (size_t)n;
  lua_pushvalue(L, idx);
  for (lua_Integer i = 1; i <= n; i++) {
    run->jobs[i - 1].index = (int)i;
    run->jobs[i - 1].host = -1;
    /* cmds[i] is an argv array of strings (par/init.lua made strings into
    ** {shell, "-c", cmd}); copy it, since on_done may edit cmds. */
    if (lua_rawgeti(L, -1, i) != LUA_TTABLE)
      luaL_error(L, "bad command #%d (non-empty argv table expected)", (int)i);
    load_argv(L, &run->jobs[i - 1].argv, (int)i);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

static double optnum (lua_State *L, int idx, const char *k, double def) {
  double v = def;
  int t = lua_getfield(L, idx, k);
  if (t == LUA_TNUMBER) v = lua_tonumber(L, -1);
  if ((t != LUA_TNIL && t != LUA_TNUMBER) || !(v >= 0))
    luaL_error(L, "bad option '%s' (non-negative number expected)", k);
  lua_pop(L, 1);
  return v;
}

static int optflag (lua_State *L, int idx, const char *k, int def) {
  int t = lua_getfield(L, idx, k), v = def;
  if (t == LUA_TBOOLEAN) v = lua_toboolean(L, -1);
  else if (t != LUA_TNIL) luaL_error(L, "bad option '%s' (boolean expected)", k);
  lua_pop(L, 1);
  return v;
}

static char *optstr (lua_State *L, int idx, const char *k, size_t *len) {
  char *p = NULL;
  int t = lua_getfield(L, idx, k);
  if (t == LUA_TSTRING) {
    const char *s = lua_tolstring(L, -1, len);
    if ((p = malloc(*len + 1)) == NULL) luaL_error(L, "not enough memory");
    memcpy(p, s, *len + 1);
  }
  else if (t != LUA_TNIL) luaL_error(L, "bad option '%s' (string expected)", k);
  lua_pop(L, 1);
  return p;
}

/* The caller's environment with opts.env applied: a string value adds or
** replaces a variable, false removes it.  Built once, shared by all jobs. */
static void load_env (lua_State *L, Run *run, int idx) {
  size_t n = 0, m = 0;
  char **envp;
  if (lua_getfield(L, idx, "env") == LUA_TNIL) {
    lua_pop(L, 1);
    return;
  }
  luaL_checktype(L, -1, LUA_TTABLE);
  while (environ[n] != NULL) n++;
  lua_pushnil(L);
  while (lua_next(L, -2)) { m++; lua_pop(L, 1); }
  if ((envp = calloc(n + m + 1, sizeof *envp)) == NULL) luaL_error(L, "not enough memory");
  run->spec.envp = envp;
  m = 0;
  for (size_t i = 0; i < n; i++) {      /* keep the variables env leaves alone */
    const char *eq = strchr(environ[i], '=');
    size_t len = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
    lua_pushlstring(L, environ[i], len);
    if (lua_rawget(L, -2) == LUA_TNIL && (envp[m++] = strdup(environ[i])) == NULL)
      luaL_error(L, "not enough memory");
    lua_pop(L, 1);
  }
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    if (lua_type(L, -2) != LUA_TSTRING || (lua_type(L, -1) != LUA_TSTRING &&
                                          lua_type(L, -1) != LUA_TBOOLEAN))
      luaL_error(L, "bad option 'env' (string keys and string or false values expected)");
    if (lua_isstring(L, -1)) {
      lua_pushvalue(L, -2);
      lua_pushliteral(L, "=");
      lua_pushvalue(L, -3);
      lua_concat(L, 3);
      envp[m] = dupstr(L, -1, "env", (int)m + 1);
      m++;
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

/* opts.hosts: { {name = "h1", slots = 2, argv = {"ssh", ..., "h1", "--"}},
** {name = ":", slots = 2} (local) }, and opts.remote: each job's command
** as one shell string, which ssh hands to the remote shell. */
static void load_hosts (lua_State *L, Run *run, int idx) {
  RunSpec *s = &run->spec;
  lua_Integer n;
  if (lua_getfield(L, idx, "hosts") == LUA_TNIL) {
    lua_pop(L, 1);
    return;
  }
  luaL_checktype(L, -1, LUA_TTABLE);
  n = luaL_len(L, -1);
  luaL_argcheck(L, n >= 1 && n <= 4096, 2, "option 'hosts' must list 1 to 4096 hosts");
  if ((s->hosts = calloc((size_t)n, sizeof *s->hosts)) == NULL) luaL_error(L, "not enough memory");
  s->nhosts = (int)n;
  for (int i = 1; i <= (int)n; i++) {
    Host *h = &s->hosts[i - 1];
    if (lua_rawgeti(L, -1, i) != LUA_TTABLE)
      luaL_error(L, "bad option 'hosts' (tables expected)");
    lua_getfield(L, -1, "name");
    h->name = dupstr(L, -1, "host", i);
    lua_getfield(L, -2, "slots");
    h->slots = (int)luaL_checkinteger(L, -1);
    luaL_argcheck(L, h->slots >= 1, 2, "host slots must be >= 1");
    lua_pop(L, 2);
    if (lua_getfield(L, -1, "argv") == LUA_TTABLE) {
      load_argv(L, &h->argv, i);
    }
    lua_pop(L, 2);
  }
  lua_pop(L, 1);
  if (lua_getfield(L, idx, "remote") != LUA_TTABLE)
    luaL_error(L, "bad option 'remote' (table of command lines expected with 'hosts')");
  for (size_t i = 0; i < run->njobs; i++) {
    lua_rawgeti(L, -1, (lua_Integer)i + 1);
    run->jobs[i].remote = dupstr(L, -1, "command", (int)i + 1);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

static void load_spec (lua_State *L, Run *run, int idx) {
  RunSpec *s = &run->spec;
  size_t len = 0;
  double retries;
  static const char *const halts[] = {"never", "soon", "now", NULL};
  s->capture = optflag(L, idx, "capture", 1);
  s->timeout = optnum(L, idx, "timeout", 0);
  s->kill_after = optnum(L, idx, "kill_after", 2);
  retries = optnum(L, idx, "retries", 0);
  s->retries = retries < INT_MAX - 1 ? (int)retries : INT_MAX - 1;
  s->retry_delay = optnum(L, idx, "retry_delay", 0);
  s->delay = optnum(L, idx, "delay", 0);
  s->max_output = (size_t)optnum(L, idx, "max_output", 64.0 * 1024 * 1024);
  lua_getfield(L, idx, "halt");
  s->halt = luaL_checkoption(L, -1, "never", halts);
  lua_pop(L, 1);
  s->cwd = optstr(L, idx, "cwd", &len);
  s->input = optstr(L, idx, "stdin", &s->inputlen);
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

static int syserror (lua_State *L, Runner *r, const char *what, int e) {
  runner_teardown(r);
  r->open = 0;
  return luaL_error(L, "par.run: %s: %s", what, strerror(e));
}

/* core.runner(cmds, opts): copy everything, then start the workers. */
static int par_runner (lua_State *L) {
  Runner *r;
  int e, jobs;
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_getfield(L, 2, "jobs");
  jobs = (int)luaL_checkinteger(L, -1);
  luaL_argcheck(L, jobs >= 1, 2, "option 'jobs' must be >= 1");
  lua_pop(L, 1);
  r = (Runner *)lua_newuserdatauv(L, sizeof *r, 0);
  memset(r, 0, sizeof *r);          /* closed and empty: safe to collect */
  r->intrfd = -1;
  r->owner = getpid();
  luaL_setmetatable(L, RUNNER_MT);
  r->open = 1;
  if ((e = run_init(&r->run)) != 0) return syserror(L, r, "init", e);
  load_jobs(L, &r->run, 1);
  load_spec(L, &r->run, 2);
  if ((r->intrfd = intr_begin()) < 0) return syserror(L, r, "pipe", errno);
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
  luaL_buffinit(L, &b);
  luaL_addstring(&b, "no host left to run on: ");
  for (int i = 0; i < run->spec.nhosts; i++) {
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
  if (r->run.spec.capture) {
    setoutput(L, "stdout", &j->out);
    setoutput(L, "stderr", &j->errout);
  }
}

/* }======================================================= */

static void drainfd (int fd) {
  char b[256];
  while (read(fd, b, sizeof b) > 0) ;
}

/* A signal arrived: stop starting jobs and terminate running ones; a
** second one while they are being stopped kills them at once. */
static void check_interrupt (Runner *r) {
  int n = intr_count();
  if (n > r->sigseen) {
    run_stop(&r->run, r->interrupted ? 2 : 1);
    r->interrupted = 1;
    r->sigseen = n;
  }
}

/*
** runner:next([wait]): the next finished job as index, result; false when
** 'wait' seconds passed first; nil when every job is done, plus
** "interrupted" when SIGINT or SIGTERM cut the run short.
*/
static int runner_next (lua_State *L) {
  Runner *r = checkrunner(L);
  double wait = luaL_optnumber(L, 2, -1);
  double until = wait >= 0 ? now_mono() + wait : 0;
  luaL_argcheck(L, r->open, 1, "runner is closed");
  for (;;) {
    struct pollfd p[2] = {{r->run.wake[0], POLLIN, 0}, {r->intrfd, POLLIN, 0}};
    int ms = -1;
    Job *j = run_pop(&r->run);
    check_interrupt(r);
    if (j != NULL) {
      lua_pushinteger(L, j->index);
      pushresult(L, r, j);
      return 2;
    }
    if (run_over(&r->run)) {
      lua_pushnil(L);
      if (!r->interrupted) return 1;
      lua_pushliteral(L, "interrupted");
      return 2;
    }
    if (wait >= 0) {
      double left = until - now_mono();
      if (left <= 0) {
        lua_pushboolean(L, 0);
        return 1;
      }
      ms = left > 1e6 ? 1000000000 : (int)(left * 1000.0) + 1;
    }
    if (poll(p, 2, ms) > 0) {
      if (p[0].revents) drainfd(r->run.wake[0]);
      if (p[1].revents) drainfd(r->intrfd);
    }
  }
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
  {"counts", runner_counts},
  {"stop", runner_stop},
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
