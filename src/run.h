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
#define TERMSEQ_MAX 32          /* signals in a termination sequence */

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
  char *slotmark;            /* NULL, or a string (say "\33{%}\33") replaced at
                                spawn time, in each argv string and remote
                                line, by the job's slot number */
  size_t slotmarklen;        /* > 0 */
  int capture;               /* collect stdout and stderr in pipes */
  int halt;                  /* HALT_* */
  int halt_fails;            /* halt once this many jobs failed (>= 1) */
  int retries;
  double timeout;            /* seconds; 0: none */
  double kill_after;         /* SIGTERM to SIGKILL, seconds (without termsig) */
  int nterm;                 /* signals in termsig; 0: SIGTERM, kill_after, SIGKILL */
  int termsig[TERMSEQ_MAX];  /* a job that must stop gets termsig[0], then
                                termsig[k] termwait[k-1] seconds after
                                termsig[k-1] while it lives (GNU's --termseq) */
  double termwait[TERMSEQ_MAX];
  int live_timeout;          /* the caller changes the timeout as the run goes
                                (run_settimeout); spec.timeout is the first */
  double retry_delay;
  double delay;              /* minimum seconds between two starts */
  size_t max_output;         /* bytes kept per stream */
  int stream;                /* pass output on as chunks (run_popchunk), keep none */
  int starts;                /* a CHUNK_START chunk (the slot) as each job starts */
  Host *hosts;               /* NULL: every job runs here */
  int nhosts;
} RunSpec;

typedef struct Job {
  char **argv;               /* NULL-terminated; owned */
  char *remote;              /* the command as one shell string, for ssh */
  long long index;           /* position in the caller's input, from 1 */
  char *input;               /* this job's stdin, over spec.input; owned; NULL: none */
  size_t inputlen;
  int slot;                  /* the worker running it, from 1: unique among
                                running jobs (PARALLEL_JOBSLOT, slotmark) */
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
  struct Job *next;          /* on the input or the completion queue */
  struct Job *live_next;     /* on Run.running while a worker runs it */
  int evict;                 /* atomic: stop it and run it again later (run_evict) */
} Job;

/* Output of a job with spec.stream, as it came from one read. */
#define CHUNK_RETRY 2
#define CHUNK_START 3      /* the job starts: its data is its slot, in digits */

typedef struct Chunk {
  struct Chunk *next;
  long long index;           /* the job's */
  int err;                   /* 1: from its stderr; CHUNK_RETRY: a new try starts */
  size_t len;
  char data[1];              /* len bytes */
} Chunk;

#define CHUNKS_MAX (4u << 20)   /* bytes of chunks queued: then workers
                                   stop reading until the caller catches up */

typedef struct Run {
  RunSpec spec;
  pthread_t *threads;
  int nthreads;              /* started and not yet joined */
  int mu_ok;                 /* mu is initialised */
  pthread_mutex_t mu;        /* guards everything below */
  Job *todo_head, *todo_tail; /* jobs pushed and not yet handed out */
  int input_open;            /* more jobs may be pushed */
  size_t claimed;            /* jobs handed to workers */
  size_t finished;           /* jobs posted on the completion queue */
  int stopping;              /* hand out no more jobs */
  int killing;               /* 1: SIGTERM running groups; 2: SIGKILL now */
  int idle;                  /* workers that have left their loop */
  double next_start;         /* monotonic time the next start may happen */
  Job *done_head, *done_tail;
  Chunk *chunk_head, *chunk_tail;
  size_t chunkbytes;         /* queued in chunks; read atomically by workers */
  Job *requeued;             /* jobs back from an unreachable host, run first */
  int live;                  /* children being spawned or not yet reaped */
  unsigned long ntries;      /* spawns tried so far ... */
  unsigned long nreaped;     /* ... and children reaped */
  int cond_ok;               /* reaped is initialised */
  pthread_cond_t reaped;     /* broadcast when a child is reaped, and on stop */
  pthread_cond_t more;       /* broadcast on a push, the input's end, a stop */
  int wake[2];               /* workers -> caller: a job is done */
  int stop[2];               /* caller -> workers: readable once killing */
  int devnull;
  int nfails;                /* jobs failed so far (atomic), for halt_fails */
  int nslots;                /* workers that took a slot number */
  double timeout_now;        /* with spec.live_timeout: seconds, 0 none */
  int maxrun;                /* jobs running at once at most; 0: one a worker */
  int active;                /* jobs handed to workers and not yet posted */
  int held;                  /* start no job for now (run_hold) */
  Job *running;              /* the jobs workers run now */
  int evictable;             /* atomic: workers look for run_evict every 50 ms */
} Run;

/* Set up the descriptors and the lock; 0, or an errno value with *what
** naming the call that failed. */
int run_init (Run *r, const char **what);
/* Start 'n' workers; 0, or an errno value when none could start. */
int run_start (Run *r, int n);
/* A new job, its argv (and remote) to be filled in; NULL without memory. */
Job *run_newjob (long long index);
/* Queue a job made by run_newjob: the run owns it from now on. */
void run_push (Run *r, Job *j);
/* No more jobs will be pushed: workers leave once the queue is empty. */
void run_endinput (Run *r);
/* Pop one finished job, or NULL; the caller frees it (run_freejob). */
Job *run_pop (Run *r);
/* Pop one chunk of output, or NULL; the caller frees it (free). */
Chunk *run_popchunk (Run *r);
/* Once stopped and every worker has left: a job that never started, to be
** reported as skipped; NULL when none is left. */
Job *run_popskipped (Run *r);
void run_freejob (Job *j);
/* True once every worker has left, every job and chunk was popped. */
int run_over (Run *r);
/* True once the run hands out no more jobs (a halt, a stop). */
int run_stopping (Run *r);
/* Jobs handed out and jobs finished so far. */
void run_counts (Run *r, size_t *claimed, size_t *finished);
/* Hand out no more jobs; with 'kill' 1 also stop running ones (SIGTERM, then
** SIGKILL after kill_after), with 2 SIGKILL them at once. */
void run_stop (Run *r, int kill);
/* Stop, kill, reap and join everything, close every descriptor, free. */
void run_free (Run *r);
/* With spec.live_timeout: the timeout of running and later jobs, seconds
** from each one's start; 0 for none. */
void run_settimeout (Run *r, double secs);
/* With 'on', start no more jobs until called again without it (the par
** command's --load and --memfree); running jobs go on. */
void run_hold (Run *r, int on);
/* From now on jobs may be evicted: call before the first push. */
void run_evictable (Run *r);
/* Stop the running job with the highest index, by the termination
** sequence, and queue it to run again (GNU parallel's --memfree); its
** index, or 0 when none runs. */
long long run_evict (Run *r);
/* At most 'n' jobs at once from now on (>= 1), starting workers up to n;
** 0, or an errno value when no more could start (fewer still run). */
int run_setjobs (Run *r, int n);

/* A worker's retries of one spawn that failed with EAGAIN. */
typedef struct SpawnRetry {
  unsigned long ntries, nreaped;   /* the run's counts at the last failure */
  int failed, misses;
  double backoff;            /* seconds */
} SpawnRetry;

/* spawn.c: queue one chunk of a job's output (spec.stream). */
void run_chunk (Run *r, Job *j, int err, const char *data, size_t len);
/* spawn.c: whether the caller has fallen behind on chunks (CHUNKS_MAX). */
int run_chunksfull (Run *r);

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
