/*
** sigchld.c: a host with its own SIGCHLD handler, for spec/fault_spec.lua.
** install("count") counts signals and reaps nothing; install("reap") reaps
** every child with waitpid(-1), as careless hosts do; restore() undoes it.
*/
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <lua.h>
#include <lauxlib.h>

static volatile sig_atomic_t count = 0;
static struct sigaction saved;

static void on_count (int sig) {
  (void)sig;
  count++;
}

static void on_reap (int sig) {
  int save = errno;
  (void)sig;
  count++;
  while (waitpid(-1, NULL, WNOHANG) > 0) ;
  errno = save;
}

static int l_install (lua_State *L) {
  static const char *const modes[] = {"count", "reap", NULL};
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = luaL_checkoption(L, 1, NULL, modes) == 0 ? on_count : on_reap;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  count = 0;
  sigaction(SIGCHLD, &sa, &saved);
  return 0;
}

static int l_restore (lua_State *L) {
  sigaction(SIGCHLD, &saved, NULL);
  lua_pushinteger(L, count);
  return 1;
}

int luaopen_spec_support_sigchld (lua_State *L);

int luaopen_spec_support_sigchld (lua_State *L) {
  static const luaL_Reg funcs[] = {{"install", l_install}, {"restore", l_restore}, {NULL, NULL}};
  luaL_newlib(L, funcs);
  return 1;
}
