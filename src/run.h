/*
** run.h: the thread pool behind par.run.  Plain C: no Lua header here, so
** that nothing a worker thread runs can touch a lua_State.
*/
#ifndef PAR_RUN_H
#define PAR_RUN_H

#include <pthread.h>
#include <stddef.h>
#include <sys/types.h>

#include "buf.h"

enum { HALT_NEVER, HALT_SOON, HALT_NOW };
enum { ST_NONE, ST_EXIT, ST_SIGNAL, ST_ERROR, ST_TIMEOUT };

#define HOST_MAXFAILS 3         /* unreachable this many times in a row: dropped */

/* A machine to run jobs on.  Remote hosts run a job as argv + its 'remote'
** string (ssh ... HOST -- CMD); the local host (argv NULL) runs job argv. */
typedef struct Host {
  char **argv;               /* NULL-terminated ssh prefix, or NULL: local */
  char *name;
  int slots;                 /* jobs at once */
  int running;               /* guarded by Run.mu, as are the two below */
  int fails;                 /* unreachable in a row */
  int dropped;
} Host;

/* What every job of a run shares; filled by the caller before run_start. */
typedef struct RunSpec {
  char **envp;               /* NULL: the caller's environment */
  char *cwd;                 /* NULL: the caller's directory */
  char *input;               /* data for every command's stdin; NULL: /dev/null */
  size_t inputlen;
  int capture;               /* collect stdout and stderr in pipes */
  int halt;                  /* HALT_* */
  int retries;
  double timeout;            /* seconds; 0: none */
  double kill_after;         /* SIGTERM to SIGKILL, seconds */
  double retry_delay;
  double delay;              /* minimum seconds between two starts */
  size_t max_output;         /* bytes kept per stream */
  Host *hosts;               /* NULL: every job runs here */
  int nhosts;
} RunSpec;

typedef struct Job {
  char **argv;               /* NULL-terminated; owned */
  char *remote;              /* the command as one shell string, for ssh */
  int index;                 /* position in the caller's list, from 1 */
  int host;                  /* index in spec.hosts of the host that ran it, or -1 */
  /* the outcome, written by the worker that ran the job */
  int status;                /* ST_* */
  int code;                  /* exit code, or signal number */
  int signaled;              /* ST_TIMEOUT: code is a signal number */
  int err;                   /* ST_ERROR: errno value */
  const char *errwhat;       /* ST_ERROR: the failed step, or NULL */
  int attempts;
  int truncated;
  int stopped;               /* par cut it short: a stop's kill, or a stop during its retries */
  pid_t pid;
  double started;            /* seconds since the epoch */
  double elapsed;            /* seconds */
  Buf out, errout;
  struct Job *next;          /* on the completion queue */
} Job;

typedef struct Run {
  RunSpec spec;
  Job *jobs;
  size_t njobs;
  pthread_t *threads;
  int nthreads;              /* started and not yet joined */
  int mu_ok;                 /* mu is initialised */
  pthread_mutex_t mu;        /* guards everything below */
  size_t claimed;            /* jobs handed to workers */
  size_t finished;           /* jobs posted on the completion queue */
  int stopping;              /* hand out no more jobs */
  int killing;               /* 1: SIGTERM running groups; 2: SIGKILL now */
  int idle;                  /* workers that have left their loop */
  double next_start;         /* monotonic time the next start may happen */
  Job *done_head, *done_tail;
  Job *requeued;             /* jobs back from an unreachable host, run first */
  int live;                  /* children being spawned or not yet reaped */
  unsigned long ntries;      /* spawns tried so far ... */
  unsigned long nreaped;     /* ... and children reaped */
  int cond_ok;               /* reaped is initialised */
  pthread_cond_t reaped;     /* broadcast when a child is reaped, and on stop */
  int wake[2];               /* workers -> caller: a job is done */
  int stop[2];               /* caller -> workers: readable once killing */
  int devnull;
} Run;

/* Set up the descriptors and the lock; 0, or an errno value with *what
** naming the call that failed. */
int run_init (Run *r, const char **what);
/* Start up to 'n' workers; 0, or an errno value when none could start. */
int run_start (Run *r, int n);
/* Pop one finished job, or NULL. */
Job *run_pop (Run *r);
/* True once every worker has left and the completion queue is empty. */
int run_over (Run *r);
/* Jobs handed out and jobs finished so far. */
void run_counts (Run *r, size_t *claimed, size_t *finished);
/* Hand out no more jobs; with 'kill' 1 also stop running ones (SIGTERM, then
** SIGKILL after kill_after), with 2 SIGKILL them at once. */
void run_stop (Run *r, int kill);
/* Stop, kill, reap and join everything, close every descriptor, free. */
void run_free (Run *r);

/* A worker's retries of one spawn that failed with EAGAIN. */
typedef struct SpawnRetry {
  unsigned long ntries, nreaped;   /* the run's counts at the last failure */
  int failed, misses;
  double backoff;            /* seconds */
} SpawnRetry;

/* spawn.c counts its children with these, so that a spawn failing with
** EAGAIN can tell whether another child of the run may end and make room. */
void run_child_begin (Run *r);                 /* before posix_spawn */
int run_child_retry (Run *r, SpawnRetry *t);   /* it failed with EAGAIN: 1 to
                                                  try again, 0 to give up */
void run_child_failed (Run *r);                /* the spawn failed for good */
void run_child_end (Run *r);                   /* the child was reaped */

/* spawn.c: run one attempt of 'j'; fills its outcome. */
void spawn_job (Run *r, Job *j);

#endif
