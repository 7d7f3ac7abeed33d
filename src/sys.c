/*
** sys.c: system helpers (see sys.h).  Linux first: process trees come
** from /proc, and each Linux-only call sits in one small function here,
** under #if defined(__linux__), with what a port does instead beside it.
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
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#if defined(__linux__)
#include <sched.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#endif

#include "sys.h"

#define TREE_PASSES   8      /* walks of a tree until no new process shows */
#define FD_GUESS_MAX  65536  /* sys_closecloexec without /proc: numbers tried */


/*
** {======================================================
** Clocks
** =======================================================
*/

static int64_t nanos (clockid_t clk) {
  struct timespec ts;
  clock_gettime(clk, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t sys_monons (void) {
  return nanos(CLOCK_MONOTONIC);
}

int64_t sys_coarsens (void) {
#if defined(__linux__) && defined(CLOCK_MONOTONIC_COARSE)
  return nanos(CLOCK_MONOTONIC_COARSE);
#else
  return nanos(CLOCK_MONOTONIC);
#endif
}

double sys_mono (void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

double sys_real (void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void nap_ms (int ms) {
  struct timespec ts = {0, 0};
  ts.tv_nsec = (long)ms * 1000000L;
  nanosleep(&ts, NULL);
}

/* }====================================================== */


/*
** {======================================================
** Descriptors
** =======================================================
*/

/* Move *fd above 2 as a close-on-exec duplicate: 0, or an errno value
** with *fd as it was, still open. */
static int fd_high (int *fd) {
  int n;
  if (*fd > 2) return 0;
  if ((n = fcntl(*fd, F_DUPFD_CLOEXEC, 3)) < 0) return errno;
  close(*fd);
  *fd = n;
  return 0;
}

static int pair_high (int fd[2]) {
  int e;
  if ((e = fd_high(&fd[0])) == 0 && (e = fd_high(&fd[1])) == 0) return 0;
  close(fd[0]);
  close(fd[1]);
  fd[0] = fd[1] = -1;
  return e;
}

/* pipe2 makes both ends close-on-exec at birth: a par.run worker thread
** that spawns meanwhile cannot leak them into its child.  (A port without
** pipe2, such as macOS, must take a lock against its own spawns around
** pipe and fcntl.) */
int sys_pipe (int fd[2], int nonblock) {
  if (pipe2(fd, O_CLOEXEC | (nonblock ? O_NONBLOCK : 0)) != 0) {
    fd[0] = fd[1] = -1;
    return errno;
  }
  return pair_high(fd);
}

int sys_socketpair (int fd[2]) {
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fd) != 0) {
    fd[0] = fd[1] = -1;
    return errno;
  }
  return pair_high(fd);
}

int sys_writeall (int fd, const void *p, size_t n) {
  const char *s = (const char *)p;
  while (n > 0) {
    ssize_t k = write(fd, s, n);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return -1;
    s += k;
    n -= (size_t)k;
  }
  return 0;
}

/* Where MSG_NOSIGNAL is missing (macOS), a port sets SO_NOSIGPIPE on the
** socket in sys_socketpair instead. */
int sys_sendall (int fd, const void *p, size_t n) {
  const char *s = (const char *)p;
  while (n > 0) {
#if defined(MSG_NOSIGNAL)
    ssize_t k = send(fd, s, n, MSG_NOSIGNAL);
#else
    ssize_t k = send(fd, s, n, 0);
#endif
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return -1;
    s += k;
    n -= (size_t)k;
  }
  return 0;
}

/* }====================================================== */


/*
** {======================================================
** Reading /proc without stdio or opendir: a par.map worker calls these in
** a fork of a big heap, where any malloc may sort and merge the free
** chunks scattered over it, and so copy a page shared with the caller
** for each one it touches (see arena.c)
** =======================================================
*/

/* Call f(name, ud) for each entry of the open directory dfd but "." and
** "..": 0, or -1 if it cannot be read. */
#if defined(__linux__)
static int dir_each (int dfd, void (*f) (const char *, void *), void *ud) {
  union { struct dirent64 e; char b[4096]; } u;   /* on the stack */
  ssize_t n, off;
  while ((n = getdents64(dfd, u.b, sizeof u.b)) > 0) {
    for (off = 0; off < n; ) {
      struct dirent64 *e = (struct dirent64 *)(u.b + off);
      off += e->d_reclen;
      if (e->d_name[0] != '.') f(e->d_name, ud);
    }
  }
  return n < 0 ? -1 : 0;
}
#else
static int dir_each (int dfd, void (*f) (const char *, void *), void *ud) {
  (void)dfd; (void)f; (void)ud;
  errno = ENOSYS;            /* no /proc to read: callers fall back */
  return -1;
}
#endif

static int dir_walk (const char *path, void (*f) (const char *, void *),
                     void *ud) {
  int r, dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return -1;
  r = dir_each(dfd, f, ud);
  close(dfd);
  return r;
}

typedef struct Closing {
  int keep, dfd;             /* closed neither: dfd is being read */
} Closing;

static void close_cloexec (int fd, const Closing *c) {
  int fl;
  if (fd > 2 && fd != c->keep && fd != c->dfd &&
      (fl = fcntl(fd, F_GETFD)) >= 0 && (fl & FD_CLOEXEC))
    close(fd);
}

static void close_entry (const char *name, void *ud) {
  close_cloexec(atoi(name), (const Closing *)ud);
}

void sys_closecloexec (int keep) {
  Closing c;
  int fd, max;
  c.keep = keep;
  c.dfd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (c.dfd >= 0) {
    int r = dir_each(c.dfd, close_entry, &c);
    close(c.dfd);
    if (r == 0) return;
  }
  c.dfd = -1;                /* no /proc: try every number */
  max = (int)sysconf(_SC_OPEN_MAX);
  if (max <= 0 || max > FD_GUESS_MAX) max = FD_GUESS_MAX;
  for (fd = 3; fd < max; fd++) close_cloexec(fd, &c);
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

/* }====================================================== */


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
  size_t i;
  for (i = 0; i < s->n; i++)
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
** Process trees
** =======================================================
*/

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
  ssize_t n, i;
  snprintf(path, sizeof path, "%s/%s/children", w->task, tid);
  if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) return;
  while ((n = read(fd, b, sizeof b)) > 0) {
    for (i = 0; i < n; i++) {          /* a number may span two reads */
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
  if (fast) dir_walk(w->task, task_children, w);
  else dir_walk("/proc", proc_child, w);
  return w->added;
}

/* A SIGSTOP is delivered some time after kill() returns; a process that
** forks in between shows its child only once it has stopped. */
static void wait_stopped (const Pids *s, pid_t self) {
  double until = sys_mono() + 0.1;
  size_t i;
  for (i = 0; i < s->n; i++) {
    int st;
    if (s->v[i] == self) continue;
    while ((st = proc_stat(s->v[i], NULL)) != 0 && st != 'T' && st != 't' &&
           st != 'Z' && st != 'X' && sys_mono() < until)
      nap_ms(1);
  }
}

static int gone (pid_t pid) {
  int st = proc_stat(pid, NULL);
  return st == 0 || st == 'Z' || st == 'X';
}

/* Wait until pid is dead or a zombie, or until 'until'; through its pidfd
** if it has one. */
static void wait_one (pid_t pid, int pidfd, double until) {
  for (;;) {
    double left = until - sys_mono();
    if (pidfd >= 0) {
      struct pollfd p;
      p.fd = pidfd;
      p.events = POLLIN;
      p.revents = 0;
      if (poll(&p, 1, left > 0 ? (int)(left * 1000) + 1 : 0) != 0 || left <= 0)
        return;
    }
    else {
      if (gone(pid) || left <= 0) return;
      nap_ms(2);
    }
  }
}

/* Wait until every process of s but 'self' is dead or a zombie. */
static void wait_gone (const Pids *s, const int *fds, pid_t self, double wait) {
  double until = sys_mono() + wait;
  size_t i;
  for (i = 0; i < s->n; i++)
    if (s->v[i] != self) wait_one(s->v[i], fds[i], until);
}

/* Find the tree below root breadth first, freezing each process found. */
static void tree_find (Pids *s, pid_t self) {
  Walk w;
  int pass, fast = has_children_files();
  memset(&w, 0, sizeof w);
  w.set = s;
  w.self = self;
  for (pass = 0; pass < TREE_PASSES; pass++) {
    int added = 0;
    size_t i;
    wait_stopped(s, self);
    for (i = 0; i < s->n; i++)          /* s grows as we go: breadth first */
      added += children(&w, s->v[i], fast);
    if (added == 0 && pass > 0) break;
  }
}

int sys_killtree (pid_t root, double wait) {
  Pids s = {NULL, 0, 0};
  pid_t self = getpid();
  int *fds, killed = 0;
  size_t i;
  if (!pids_add(&s, root)) return 0;
  if (root != self) kill(root, SIGSTOP);
  tree_find(&s, self);
  fds = (int *)malloc((s.n ? s.n : 1) * sizeof *fds);
  for (i = 0; i < s.n; i++) {
    if (fds != NULL) fds[i] = -1;
    if (s.v[i] == self) continue;
    if (fds != NULL) fds[i] = sys_pidfd(s.v[i]);
    if (kill(s.v[i], SIGKILL) == 0) killed++;
  }
  if (fds != NULL) {
    wait_gone(&s, fds, self, wait);
    for (i = 0; i < s.n; i++)
      if (fds[i] >= 0) close(fds[i]);
    free(fds);
  }
  free(s.v);
  return killed;
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
  until = sys_mono() + 2.0;              /* one we could not kill: give up */
  while ((r = waitpid(-1, &st, WNOHANG)) >= 0 && sys_mono() < until)
    if (r == 0) nap_ms(1);
}

/* }====================================================== */


/*
** {======================================================
** Linux-only calls, one function each
** =======================================================
*/

int sys_pidfd (pid_t pid) {
#if defined(__linux__) && defined(SYS_pidfd_open)
  return (int)syscall(SYS_pidfd_open, pid, 0);
#else
  (void)pid;
  errno = ENOSYS;
  return -1;
#endif
}

/* FreeBSD's procctl(PROC_PDEATHSIG_CTL) would do the same. */
int sys_pdeathsig (int sig) {
#if defined(__linux__)
  return prctl(PR_SET_PDEATHSIG, sig);
#else
  (void)sig;
  errno = ENOSYS;
  return -1;
#endif
}

/* FreeBSD's procctl(PROC_REAP_ACQUIRE) would do the same. */
void sys_subreaper (void) {
#if defined(__linux__) && defined(PR_SET_CHILD_SUBREAPER)
  prctl(PR_SET_CHILD_SUBREAPER, 1);
#endif
}

long sys_cpus (void) {
  long n = 0;
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0)
    n = CPU_COUNT(&set);
#endif
  if (n < 1)
    n = sysconf(_SC_NPROCESSORS_ONLN);
  return n < 1 ? 1 : n;
}

/* }====================================================== */
