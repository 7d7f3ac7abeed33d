/*
** sys.c: system helpers (see sys.h).  Linux first: process trees come
** from /proc, and each Linux-only call sits in one small function here.
** Plain C: no Lua.
*/
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sys.h"

#define TREE_PASSES   8      /* walks of a tree until no new process shows */

static double mono (void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void nap_ms (int ms) {
  struct timespec ts = {0, (long)ms * 1000000L};
  nanosleep(&ts, NULL);
}


/*
** {======================================================
** Sets of pids
** =======================================================
*/

typedef struct Pids {
  pid_t *v;
  size_t n, cap;
} Pids;

static int pids_has (const Pids *s, pid_t p) {
  for (size_t i = 0; i < s->n; i++)
    if (s->v[i] == p) return 1;
  return 0;
}

/* Add p unless present; 1 if added, 0 if present or out of memory. */
static int pids_add (Pids *s, pid_t p) {
  if (p <= 0 || pids_has(s, p)) return 0;
  if (s->n == s->cap) {
    size_t cap = s->cap ? 2 * s->cap : 32;
    pid_t *v = (pid_t *)realloc(s->v, cap * sizeof *v);
    if (v == NULL) return 0;
    s->v = v;
    s->cap = cap;
  }
  s->v[s->n++] = p;
  return 1;
}

/* }====================================================== */


/*
** {======================================================
** Reading /proc without stdio or opendir: a worker calls this in a fork
** of a big heap, where every malloc may copy pages (see map.c)
** =======================================================
*/

/* Call f(name) for each entry of a directory; -1 if it cannot be read. */
static int dir_each (const char *path, void (*f)(const char *, void *), void *ud) {
  union { struct dirent64 e; char b[4096]; } u;
  int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ssize_t n;
  if (dfd < 0) return -1;
  while ((n = getdents64(dfd, u.b, sizeof u.b)) > 0) {
    for (ssize_t off = 0; off < n; ) {
      struct dirent64 *e = (struct dirent64 *)(u.b + off);
      off += e->d_reclen;
      if (e->d_name[0] != '.') f(e->d_name, ud);
    }
  }
  close(dfd);
  return 0;
}

/* The state letter and parent of a process from /proc/PID/stat; 0 if gone. */
static int proc_stat (pid_t pid, pid_t *ppid) {
  char path[64], b[512], *rp;
  int fd, state;
  ssize_t n;
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) return 0;
  n = read(fd, b, sizeof b - 1);
  close(fd);
  if (n <= 0) return 0;
  b[n] = '\0';
  if ((rp = strrchr(b, ')')) == NULL || rp[1] != ' ') return 0;  /* comm may hold ')' */
  state = rp[2];
  if (ppid != NULL) *ppid = (pid_t)atoi(rp + 4);
  return state;
}

typedef struct Walk {
  Pids *set;
  pid_t parent;          /* whose children we look for */
  pid_t self;
  int added;
  char task[64];         /* /proc/PID/task */
} Walk;

static void found (Walk *w, pid_t p) {
  if (p == w->self || !pids_add(w->set, p)) return;
  kill(p, SIGSTOP);      /* frozen: it forks no more behind our back */
  w->added++;
}

/* One thread's /proc/PID/task/TID/children: "pid pid ... ". */
static void task_children (const char *tid, void *ud) {
  Walk *w = (Walk *)ud;
  char path[128], b[4096];
  long v = 0;
  int fd, digits = 0;
  ssize_t n;
  snprintf(path, sizeof path, "%s/%s/children", w->task, tid);
  if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) return;
  while ((n = read(fd, b, sizeof b)) > 0) {
    for (ssize_t i = 0; i < n; i++) {   /* a number may span two reads */
      if (b[i] >= '0' && b[i] <= '9') {
        v = v * 10 + (b[i] - '0');
        digits = 1;
      }
      else {
        if (digits) found(w, (pid_t)v);
        v = 0;
        digits = 0;
      }
    }
  }
  if (digits) found(w, (pid_t)v);
  close(fd);
}

/* Fallback for kernels without the children files: every process whose
** parent is w->parent. */
static void proc_child (const char *name, void *ud) {
  Walk *w = (Walk *)ud;
  pid_t pid = (pid_t)atoi(name), ppid = 0;
  if (pid > 0 && proc_stat(pid, &ppid) && ppid == w->parent) found(w, pid);
}

static int has_children_files (void) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)getpid(), (int)getpid());
  return access(path, R_OK) == 0;
}

/* Add the children of 'parent' to w->set; how many were new. */
static int children (Walk *w, pid_t parent, int fast) {
  w->added = 0;
  w->parent = parent;
  snprintf(w->task, sizeof w->task, "/proc/%d/task", (int)parent);
  if (fast) dir_each(w->task, task_children, w);
  else dir_each("/proc", proc_child, w);
  return w->added;
}

/* A SIGSTOP is delivered some time after kill() returns; a process that
** forks in between shows its child only once it has stopped. */
static void wait_stopped (const Pids *s, pid_t self) {
  double until = mono() + 0.1;
  for (size_t i = 0; i < s->n; i++) {
    int st;
    if (s->v[i] == self) continue;
    while ((st = proc_stat(s->v[i], NULL)) != 0 && st != 'T' && st != 't' &&
           st != 'Z' && st != 'X' && mono() < until)
      nap_ms(1);
  }
}

/* }====================================================== */


static int pidfd_of (pid_t pid) {
#ifdef SYS_pidfd_open
  return (int)syscall(SYS_pidfd_open, pid, 0);
#else
  (void)pid;
  return -1;
#endif
}

static int gone (pid_t pid) {
  int st = proc_stat(pid, NULL);
  return st == 0 || st == 'Z' || st == 'X';
}

/* Wait until every process of s but 'self' is dead or a zombie. */
static void wait_gone (const Pids *s, const int *fds, pid_t self, double wait) {
  double until = mono() + wait;
  for (size_t i = 0; i < s->n; i++) {
    if (s->v[i] == self) continue;
    for (;;) {
      double left = until - mono();
      if (fds[i] >= 0) {
        struct pollfd p = {fds[i], POLLIN, 0};
        if (poll(&p, 1, left > 0 ? (int)(left * 1000) + 1 : 0) != 0 || left <= 0) break;
      }
      else {
        if (gone(s->v[i]) || left <= 0) break;
        nap_ms(2);
      }
    }
  }
}

int sys_killtree (pid_t root, double wait) {
  Pids s = {NULL, 0, 0};
  Walk w;
  pid_t self = getpid();
  int fast = has_children_files(), *fds, killed = 0;
  memset(&w, 0, sizeof w);
  w.set = &s;
  w.self = self;
  if (!pids_add(&s, root)) return 0;
  if (root != self) kill(root, SIGSTOP);
  for (int pass = 0; pass < TREE_PASSES; pass++) {
    int added = 0;
    wait_stopped(&s, self);
    for (size_t i = 0; i < s.n; i++)       /* s grows as we go: breadth first */
      added += children(&w, s.v[i], fast);
    if (added == 0 && pass > 0) break;
  }
  fds = (int *)malloc((s.n ? s.n : 1) * sizeof *fds);
  for (size_t i = 0; i < s.n; i++) {
    if (fds != NULL) fds[i] = -1;
    if (s.v[i] == self) continue;
    if (fds != NULL) fds[i] = pidfd_of(s.v[i]);
    if (kill(s.v[i], SIGKILL) == 0) killed++;
  }
  if (fds != NULL) {
    wait_gone(&s, fds, self, wait);
    for (size_t i = 0; i < s.n; i++)
      if (fds[i] >= 0) close(fds[i]);
    free(fds);
  }
  free(s.v);
  return killed;
}

void sys_subreaper (void) {
#ifdef PR_SET_CHILD_SUBREAPER
  prctl(PR_SET_CHILD_SUBREAPER, 1);
#endif
}

/* A subreaper with no child has no live descendant at all: an orphan
** anywhere below it would have become its child.  So the common case costs
** one waitpid. */
void sys_reapall (void) {
  double until;
  int st;
  pid_t r;
  do r = waitpid(-1, &st, WNOHANG); while (r > 0);
  if (r < 0 && errno == ECHILD) return;
  sys_killtree(getpid(), 2.0);
  until = mono() + 2.0;                  /* one we could not kill: give up */
  while ((r = waitpid(-1, &st, WNOHANG)) >= 0 && mono() < until)
    if (r == 0) nap_ms(1);
}
