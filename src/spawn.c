/*
** spawn.c: run one command: posix_spawn it in its own process group, feed
** its stdin, drain its stdout and stderr, enforce its deadline, reap it.
** Runs on worker threads: plain C, no Lua.
*/
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "run.h"
#include "sys.h"

extern char **environ;

#define READSZ 65536            /* one read(); lives on the worker's stack */
#define ESCAPE_GRACE 0.5        /* see spawn_wait: grandchildren outside the group */

typedef struct Child {
  pid_t pid;
  int pidfd;                    /* -1: no pidfd, poll with waitid(WNOHANG) */
  int in, out, err;             /* our ends of its pipes; -1 once closed */
  const char *input;            /* its stdin: the job's, or the run's */
  size_t inputlen;
  size_t inoff;                 /* bytes of the input written */
  int reaped;
  siginfo_t info;
} Child;

static void closefd (int *fd) {
  if (*fd >= 0) {
    close(*fd);
    *fd = -1;
  }
}

/* Workers block every signal, and the host may ignore SIGPIPE.  Children
** must inherit neither, or they ignore our timeout SIGTERM and pipelines
** misbehave.  Each child leads its own process group, so that a timeout
** can stop a whole `sh -c` pipeline with kill(-pid). */
static int spawn_attrs (posix_spawnattr_t *a) {
  sigset_t none, all;
  int e;
  sigemptyset(&none);
  sigfillset(&all);
  if ((e = posix_spawnattr_init(a)) != 0) return e;
  e = posix_spawnattr_setflags(a, POSIX_SPAWN_SETPGROUP |
                                  POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  if (e == 0) e = posix_spawnattr_setpgroup(a, 0);
  if (e == 0) e = posix_spawnattr_setsigmask(a, &none);
  if (e == 0) e = posix_spawnattr_setsigdefault(a, &all);
  if (e != 0) posix_spawnattr_destroy(a);
  return e;
}

static int spawn_actions (Run *r, posix_spawn_file_actions_t *fa,
                          int in, int out, int err) {
  int e;
  if ((e = posix_spawn_file_actions_init(fa)) != 0) return e;
  e = posix_spawn_file_actions_adddup2(fa, in, 0);
  if (e == 0 && out >= 0) e = posix_spawn_file_actions_adddup2(fa, out, 1);
  if (e == 0 && err >= 0) e = posix_spawn_file_actions_adddup2(fa, err, 2);
  if (e == 0 && r->spec.cwd != NULL)
    e = posix_spawn_file_actions_addchdir_np(fa, r->spec.cwd);
  /* Our own descriptors are CLOEXEC, but the host's need not be: Lua's
  ** io.open, for one, opens without O_CLOEXEC.  A command gets 0-2 only. */
  if (e == 0) e = posix_spawn_file_actions_addclosefrom_np(fa, 3);
  if (e != 0) posix_spawn_file_actions_destroy(fa);
  return e;
}

/* posix_spawn reports a failed chdir with the same errno as a missing
** program; tell the two apart so that the message names the right one. */
static const char *failed_step (Run *r, int e) {
  struct stat st;
  if (r->spec.cwd != NULL && (e == ENOENT || e == ENOTDIR || e == EACCES) &&
      (stat(r->spec.cwd, &st) != 0 || !S_ISDIR(st.st_mode) ||
       access(r->spec.cwd, X_OK) != 0))
    return "chdir";
  return NULL;
}

/* {======================================================= */
/* A job's argv and environment, made at spawn time          */

#define SEQ_VAR "PARALLEL_SEQ="
#define SLOT_VAR "PARALLEL_JOBSLOT="

/* The length of 'str' once each slotmark in it is 'slot' ('slotlen'
** bytes), without the NUL. */
static size_t marked_len (const RunSpec *s, const char *str, size_t slotlen) {
  size_t len = strlen(str);
  const char *p = str, *end = str + len;
  if (s->slotmark == NULL) return len;
  while ((p = memmem(p, (size_t)(end - p), s->slotmark, s->slotmarklen)) != NULL) {
    len = len - s->slotmarklen + slotlen;
    p += s->slotmarklen;
  }
  return len;
}

/* Copy 'str' to 'dst' with each slotmark replaced by 'slot'; returns the
** byte after the NUL written. */
static char *put_marked (const RunSpec *s, char *dst, const char *str,
                         const char *slot, size_t slotlen) {
  const char *p = str, *end = str + strlen(str), *m;
  while (s->slotmark != NULL &&
         (m = memmem(p, (size_t)(end - p), s->slotmark, s->slotmarklen)) != NULL) {
    memcpy(dst, p, (size_t)(m - p));
    dst += m - p;
    memcpy(dst, slot, slotlen);
    dst += slotlen;
    p = m + s->slotmarklen;
  }
  memcpy(dst, p, (size_t)(end - p) + 1);
  return dst + (end - p) + 1;
}

/*
** The argv to run: the job's own, or for a remote host the ssh prefix
** followed by the job's command line, which sets PARALLEL_SEQ and
** PARALLEL_JOBSLOT first (ssh passes no environment).  With a slotmark,
** the job's strings with the slot number in.  Anything but j->argv is one
** malloc'd block, pointers then strings: the caller frees it.
*/
static char **job_argv (Run *r, Job *j) {
  const RunSpec *s = &r->spec;
  const Host *h = j->host >= 0 ? &s->hosts[j->host] : NULL;
  int remote = h != NULL && h->argv != NULL;
  char **src = remote ? h->argv : j->argv, **argv;
  char slot[16], prefix[128];
  size_t i, n = 0, size, slotlen, plen = 0;
  char *p;
  if (!remote && s->slotmark == NULL) return j->argv;
  slotlen = (size_t)snprintf(slot, sizeof slot, "%d", j->slot);
  while (src[n] != NULL) n++;
  size = (n + 2) * sizeof *argv;
  if (remote) {
    plen = (size_t)snprintf(prefix, sizeof prefix, "PARALLEL_SEQ=%lld PARALLEL_JOBSLOT=%s; "
                            "export PARALLEL_SEQ PARALLEL_JOBSLOT; ", j->index, slot);
    size += plen + marked_len(s, j->remote, slotlen) + 1;
  }
  else
    for (i = 0; i < n; i++) size += marked_len(s, src[i], slotlen) + 1;
  if ((argv = malloc(size)) == NULL) return NULL;
  p = (char *)(argv + n + 2);
  if (remote) {
    memcpy(argv, src, n * sizeof *argv);
    argv[n++] = p;
    memcpy(p, prefix, plen);
    put_marked(s, p + plen, j->remote, slot, slotlen);
  }
  else
    for (i = 0; i < n; i++) {
      argv[i] = p;
      p = put_marked(s, p, src[i], slot, slotlen);
    }
  argv[n] = NULL;
  return argv;
}

static int is_var (const char *e, const char *name) {
  return strncmp(e, name, strlen(name)) == 0;
}

/* The environment of a local job: the run's, with PARALLEL_SEQ and
** PARALLEL_JOBSLOT (as GNU parallel sets them) over any inherited ones.
** Only the vector is new, the strings are the run's and 'seq', 'slot';
** the caller frees the vector.  NULL without memory. */
static char **job_env (Run *r, char *seq, char *slot) {
  char **base = r->spec.envp != NULL ? r->spec.envp : environ, **envp;
  size_t i, n = 0, m = 0;
  while (base[n] != NULL) n++;
  if ((envp = malloc((n + 3) * sizeof *envp)) == NULL) return NULL;
  for (i = 0; i < n; i++)
    if (!is_var(base[i], SEQ_VAR) && !is_var(base[i], SLOT_VAR)) envp[m++] = base[i];
  envp[m++] = seq;
  envp[m++] = slot;
  envp[m] = NULL;
  return envp;
}

static int spawn_exec (Run *r, Job *j, Child *c, posix_spawn_file_actions_t *fa,
                       posix_spawnattr_t *attr) {
  char seq[sizeof SEQ_VAR + 24], slot[sizeof SLOT_VAR + 16];
  char **argv = job_argv(r, j), **envp;
  int e = ENOMEM;
  snprintf(seq, sizeof seq, SEQ_VAR "%lld", j->index);
  snprintf(slot, sizeof slot, SLOT_VAR "%d", j->slot);
  envp = job_env(r, seq, slot);
  if (argv != NULL && envp != NULL)
    e = posix_spawnp(&c->pid, argv[0], fa, attr, argv, envp);
  if (argv != j->argv) free(argv);
  free(envp);
  return e;
}

/* }======================================================= */

/* Start the child; 0, or an errno value with j->errwhat naming the step. */
static int spawn_start (Run *r, Job *j, Child *c) {
  int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  int e;
  c->input = j->input != NULL ? j->input : r->spec.input;
  c->inputlen = j->input != NULL ? j->inputlen : r->spec.inputlen;
  j->errwhat = "pipe";
  if ((c->input != NULL && (e = sys_pipe(in, 0)) != 0) ||
      (r->spec.capture && ((e = sys_pipe(out, 0)) != 0 ||
                           (e = sys_pipe(err, 0)) != 0)))
    goto done;
  j->errwhat = "posix_spawn";
  if ((e = spawn_actions(r, &fa, in[0] >= 0 ? in[0] : r->devnull,
                         out[1], err[1])) != 0)
    goto done;
  if ((e = spawn_attrs(&attr)) == 0) {
    j->errwhat = NULL;
    e = spawn_exec(r, j, c, &fa, &attr);
    if (e != 0) j->errwhat = failed_step(r, e);
    posix_spawnattr_destroy(&attr);
  }
  posix_spawn_file_actions_destroy(&fa);
done:
  closefd(&in[0]);                /* the child's ends: it has its own copies */
  closefd(&out[1]);
  closefd(&err[1]);
  if (e != 0) {
    closefd(&in[1]);
    closefd(&out[0]);
    closefd(&err[0]);
    return e;
  }
  c->in = in[1];
  c->out = out[0];
  c->err = err[0];
  if (c->in >= 0) fcntl(c->in, F_SETFL, O_NONBLOCK);   /* never block on a slow reader */
  c->pidfd = sys_pidfd(c->pid);
  return 0;
}

static void reap (Child *c, int flags) {
  memset(&c->info, 0, sizeof c->info);
  if (waitid(P_PID, (id_t)c->pid, &c->info, WEXITED | flags) == 0) {
    if (c->info.si_pid == c->pid) c->reaped = 1;
  }
  else if (errno == ECHILD) {   /* someone else reaped it: the host's SIGCHLD */
    c->reaped = -1;
  }
  if (c->reaped) closefd(&c->pidfd);
}

/* Whether the leader has ended, without reaping it: as a zombie it keeps
** its pid, our pgid, from being recycled before the group kill we send. */
static int exited (Child *c) {
  siginfo_t info;
  if (c->reaped) return 1;
  memset(&info, 0, sizeof info);
  return waitid(P_PID, (id_t)c->pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
         info.si_pid == c->pid;
}

/* Read what is there from *fd into b, keeping at most 'max' bytes and
** dropping the rest, so that memory stays bounded whatever the command
** prints.  Closes *fd at end of file. */
static void drain (Run *r, Job *j, int *fd, int err) {
  char chunk[READSZ];
  ssize_t n = read(*fd, chunk, sizeof chunk);
  Buf *b = err ? &j->errout : &j->out;
  size_t max = r->spec.max_output;
  int *truncated = &j->truncated;
  if (n > 0 && r->spec.stream)
    run_chunk(r, j, err, chunk, (size_t)n);
  else if (n > 0) {
    size_t keep = b->len >= max ? 0 : max - b->len;
    if ((size_t)n < keep) keep = (size_t)n;
    if (buf_add(b, chunk, keep) != 0 || keep < (size_t)n)
      *truncated = 1;
  }
  else if (n == 0 || (errno != EINTR && errno != EAGAIN))
    closefd(fd);
}

static void feed (Child *c) {
  size_t left = c->inputlen - c->inoff;
  ssize_t n = left > 0 ? write(c->in, c->input + c->inoff, left) : 0;
  if (n > 0) c->inoff += (size_t)n;
  if (c->inoff == c->inputlen ||
      (n < 0 && errno != EINTR && errno != EAGAIN))   /* EPIPE: it stopped reading */
    closefd(&c->in);
}

static void signal_group (Child *c, int sig) {
  kill(-c->pid, sig);               /* the group: `sh -c` and what it started */
  /* the leader, even if it left the group (once only: a trap sees each) */
  if (!c->reaped && getpgid(c->pid) != c->pid) kill(c->pid, sig);
}

static int ms_until (double t, double now) {
  double d = (t - now) * 1000.0 + 1.0;
  return d <= 0 ? 0 : d > 1e6 ? 1000000 : (int)d;
}

#define EARLIER(a, t) ((t) > 0 && ((a) < 0 || (t) < (a)))

static void watch (struct pollfd *p, int *np, int fd, short events) {
  p[*np].fd = fd;
  p[*np].events = events;
  p[*np].revents = 0;
  (*np)++;
}

/* Poll the child's pipes and pidfd (and the stop pipe, with 'stop') for
** up to 'timeout' ms, and move what is ready.  0, or -1 if poll failed. */
static int spawn_poll (Run *r, Job *j, Child *c, int stop, int timeout,
                       int *stopseen) {
  struct pollfd p[5];
  int i, np = 0;
  /* the caller has fallen behind on chunks: read nothing for a while, and
  ** the child blocks on its full pipe (its deadline still counts) */
  int hold = r->spec.stream && run_chunksfull(r);
  if (hold && (timeout < 0 || timeout > 10)) timeout = 10;
  if (c->out >= 0 && !hold) watch(p, &np, c->out, POLLIN);
  if (c->err >= 0 && !hold) watch(p, &np, c->err, POLLIN);
  if (c->in >= 0) watch(p, &np, c->in, POLLOUT);
  if (!c->reaped && c->pidfd >= 0) watch(p, &np, c->pidfd, POLLIN);
  if (stop) watch(p, &np, r->stop[0], POLLIN);
  if (poll(p, (nfds_t)np, timeout) < 0 && errno != EINTR) return -1;
  for (i = 0; i < np; i++) {
    if (p[i].revents == 0) continue;
    if (p[i].fd == c->out) drain(r, j, &c->out, 0);
    else if (p[i].fd == c->err) drain(r, j, &c->err, 1);
    else if (p[i].fd == c->in) feed(c);
    else if (p[i].fd == r->stop[0]) *stopseen = 1;
  }
  return 0;
}

/* The job's time limit, seconds from its start; 0 for none. */
static double time_limit (Run *r) {
  double t;
  if (!r->spec.live_timeout) return r->spec.timeout;
  pthread_mutex_lock(&r->mu);
  t = r->timeout_now;
  pthread_mutex_unlock(&r->mu);
  return t;
}

/* Signal k of the run's termination sequence, and the seconds to wait
** after it; the default one is SIGTERM, kill_after, SIGKILL. */
static int term_step (Run *r, int k, double *wait) {
  if (r->spec.nterm == 0) {
    *wait = k == 0 ? r->spec.kill_after : 0;
    return k == 0 ? SIGTERM : SIGKILL;
  }
  *wait = r->spec.termwait[k];
  return r->spec.termsig[k];
}

static int term_steps (Run *r) {
  return r->spec.nterm == 0 ? 2 : r->spec.nterm;
}

/*
** Wait for the child to end and its pipes to close.  A deadline (timeout)
** or a stop from the caller sends the termination sequence to the group:
** each signal, then its wait while the child lives (by default SIGTERM,
** kill_after, SIGKILL); a second stop (killing 2) sends SIGKILL at once.
** A grandchild that left the group (setsid) can hold the pipes open after
** SIGKILL; once the leader is reaped we give up on them after
** ESCAPE_GRACE instead of hanging.  With a live timeout the limit is read
** again at least every 50 ms.
*/
static void spawn_wait (Run *r, Job *j, Child *c, double start) {
  double stepat = 0, giveup = 0;
  int begun = 0, step = 0, killsent = 0, stopseen = 0, nsteps = term_steps(r);
  while (!(c->reaped && c->out < 0 && c->err < 0 && c->in < 0)) {
    int killing, timeout;
    double now = sys_mono(), next = -1, limit = time_limit(r);
    double deadline = limit > 0 ? start + limit : 0;
    int evict = __atomic_load_n(&j->evict, __ATOMIC_ACQUIRE);
    killing = __atomic_load_n(&r->killing, __ATOMIC_ACQUIRE);
    if (!begun && ((deadline > 0 && now >= deadline) || killing > 0 || evict)) {
      if (evict && !killing) ;      /* it runs again: its outcome does not count */
      else if (!killing) j->status = ST_TIMEOUT;
      else if (!exited(c))
        j->stopped = 1;             /* a leader that ended on its own keeps its outcome */
      begun = 1;
    }
    while (begun && !killsent && step < nsteps && (step == 0 || now >= stepat || killing > 1)) {
      double wait;
      int sig = killing > 1 ? SIGKILL : term_step(r, step, &wait);
      if (killing > 1) wait = 0;
      signal_group(c, sig);
      step = sig == SIGKILL ? nsteps : step + 1;
      stepat = now + wait;
      if (sig == SIGKILL) {
        killsent = 1;
        giveup = now + ESCAPE_GRACE;
      }
    }
    if (killsent && c->reaped && now >= giveup) {
      closefd(&c->out);             /* escaped grandchildren keep them open */
      closefd(&c->err);
      closefd(&c->in);
      break;
    }
    if (!begun && deadline > 0) next = deadline;
    if (!begun && (r->spec.live_timeout || __atomic_load_n(&r->evictable, __ATOMIC_ACQUIRE)) &&
        EARLIER(next, now + 0.05))
      next = now + 0.05;            /* a limit that changes, an eviction */
    if (begun && !killsent) {
      if (step < nsteps) next = stepat;
      if (killing > 0 && EARLIER(next, now + 0.05)) next = now + 0.05;  /* watch for a second stop */
    }
    if (killsent && c->reaped) next = giveup;
    if (!c->reaped && c->pidfd < 0 && EARLIER(next, now + 0.01)) next = now + 0.01;
    timeout = next < 0 ? -1 : ms_until(next, now);
    if (spawn_poll(r, j, c, !stopseen && !begun, timeout, &stopseen) != 0) {
      if (!c->reaped) reap(c, 0);   /* cannot wait any other way */
      break;
    }
    if (!c->reaped) reap(c, WNOHANG);
  }
  closefd(&c->out);
  closefd(&c->err);
  closefd(&c->in);
  closefd(&c->pidfd);
}

static void outcome (Job *j, Child *c) {
  int timedout = j->status == ST_TIMEOUT;
  if (c->reaped < 0) {
    j->status = ST_ERROR;
    j->err = ECHILD;
    j->errwhat = "waitid";
    return;
  }
  j->signaled = c->info.si_code != CLD_EXITED;
  j->code = c->info.si_status;
  if (!timedout) j->status = j->signaled ? ST_SIGNAL : ST_EXIT;
}

/* spawn_start, tried again while it fails with EAGAIN and run.c says a
** child of the run may yet end and make room (run_child_retry). */
static int spawn_retry (Run *r, Job *j, Child *c) {
  SpawnRetry t = {0, 0, 0, 0, 0};
  int e;
  run_child_begin(r);
  while ((e = spawn_start(r, j, c)) == EAGAIN && j->errwhat == NULL &&
         run_child_retry(r, &t))
    ;
  if (e != 0) run_child_failed(r);
  return e;
}

/* One attempt: its outcome replaces the previous attempt's. */
void spawn_job (Run *r, Job *j) {
  Child c = {0, -1, -1, -1, -1, NULL, 0, 0, 0, {0}};
  double start;
  j->out.len = j->errout.len = 0;
  j->truncated = j->signaled = j->code = j->err = j->stopped = 0;
  j->status = ST_NONE;
  j->errwhat = NULL;
  j->pid = 0;
  j->started = sys_real();
  start = sys_mono();
  if ((j->err = spawn_retry(r, j, &c)) != 0)
    j->status = ST_ERROR;
  else {
    j->pid = c.pid;
    spawn_wait(r, j, &c, start);
    run_child_end(r);
    outcome(j, &c);
  }
  j->elapsed = sys_mono() - start;
}
