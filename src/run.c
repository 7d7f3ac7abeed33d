/*
** run.c: the thread pool behind par.run.  Each worker claims the next job
** as soon as its last one ends, runs it (spawn.c) and posts it on the
** completion queue; the caller's thread, the only one that touches Lua,
** turns finished jobs into results.  Plain C, no Lua.
*/
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "run.h"
#include "sys.h"

#define STACKSIZE (256 * 1024)      /* a worker needs little: one read buffer */
#define SPAWN_MISSES 8              /* see run_child_retry */
#define SPAWN_BACKOFF 0.01          /* seconds, doubling ... */
#define SPAWN_BACKOFF_MAX 1.0       /* ... up to this */

static void lock (Run *r) { pthread_mutex_lock(&r->mu); }
static void unlock (Run *r) { pthread_mutex_unlock(&r->mu); }

/* EAGAIN is fine: the pipe is full, so a wake-up is already pending. */
static void wakeup (int fd) {
  sys_writeall(fd, "", 1);
}

/* The condition waits with deadlines on sys_mono's clock. */
static int cond_init (pthread_cond_t *c) {
  pthread_condattr_t a;
  int e;
  if ((e = pthread_condattr_init(&a)) != 0) return e;
  e = pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
  if (e == 0) e = pthread_cond_init(c, &a);
  pthread_condattr_destroy(&a);
  return e;
}

int run_init (Run *r, const char **what) {
  int e;
  r->wake[0] = r->wake[1] = r->stop[0] = r->stop[1] = r->devnull = -1;
  *what = "pthread_mutex_init";
  if ((e = pthread_mutex_init(&r->mu, NULL)) != 0) return e;
  r->mu_ok = 1;
  *what = "pthread_cond_init";
  if ((e = cond_init(&r->reaped)) != 0) return e;
  if ((e = pthread_cond_init(&r->more, NULL)) != 0) {
    pthread_cond_destroy(&r->reaped);
    return e;
  }
  r->cond_ok = 1;
  r->input_open = 1;
  *what = "pipe";
  if ((e = sys_pipe(r->wake, 1)) != 0 || (e = sys_pipe(r->stop, 1)) != 0)
    return e;
  *what = "open /dev/null";
  if ((r->devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0)
    return errno;
  return 0;
}

/* Sleep until monotonic time 't' (a delay before a start or a retry); 0 if
** the run stopped meanwhile: halt = "soon" starts nothing new either. */
static int pause_until (Run *r, double t) {
  for (;;) {
    double now = sys_mono(), ms = (t - now) * 1000.0 + 1;
    struct pollfd p = {r->stop[0], POLLIN, 0};
    if (__atomic_load_n(&r->stopping, __ATOMIC_ACQUIRE)) return 0;
    if (now >= t) return 1;
    /* the stop pipe wakes us only for a kill: look again at least every 50 ms */
    poll(&p, 1, ms > 50 ? 50 : (int)ms);
  }
}

/* A live host with a free slot, the least loaded first; -1 if none.  With
** every host dropped, *none_left is set.  Called with the lock held. */
static int pick_host (Run *r, int *none_left) {
  int i, best = -1, live = 0;
  for (i = 0; i < r->spec.nhosts; i++) {
    Host *h = &r->spec.hosts[i];
    if (h->dropped) continue;
    live++;
    /* running/slots < best's, cross-multiplied: in 64 bits, for any int slots */
    if (h->running < h->slots && (best < 0 ||
        (long long)h->running * r->spec.hosts[best].slots <
        (long long)r->spec.hosts[best].running * h->slots))
      best = i;
  }
  *none_left = live == 0;
  return best;
}

/* {======================================================= */
/* Spawns that fail with EAGAIN                             */

void run_child_begin (Run *r) {
  lock(r);
  r->live++;
  r->ntries++;
  unlock(r);
}

void run_child_failed (Run *r) {
  lock(r);
  r->live--;
  unlock(r);
}

void run_child_end (Run *r) {
  lock(r);
  r->live--;
  r->nreaped++;
  pthread_cond_broadcast(&r->reaped);
  unlock(r);
}

static void wait_reaped (Run *r, unsigned long seen, double secs) {
  struct timespec ts;
  double t = sys_mono() + secs;
  ts.tv_sec = (time_t)t;
  ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
  while (r->nreaped == seen && !__atomic_load_n(&r->stopping, __ATOMIC_ACQUIRE))
    if (pthread_cond_timedwait(&r->reaped, &r->mu, &ts) == ETIMEDOUT) break;
}

/*
** posix_spawn failed with EAGAIN: the user's process limit (RLIMIT_NPROC,
** ulimit -u, which counts threads too) or a cgroup's pids.max.  While
** other children of the run live, one of them ending makes room: wait for
** that, or for a backoff (processes outside the run hold slots too, and
** may end), then try again.  With no other child of the run alive, or once
** the run is stopping, the error stands.  Siblings waiting alike race for
** each slot that frees up, and a spawn holds its slot a while before
** posix_spawn returns, so losing a race is not counted: a failed try is a
** miss, and SPAWN_MISSES of them end the retries, only when a child of the
** run was reaped since the last one and no other spawn of the run was
** tried meanwhile.  (Were every try to fail, the run's children would
** end without successors, and the error would then stand.)  The caller's
** own pending child does not count as live while it waits, or two threads
** failing at once would wait for each other.
*/
int run_child_retry (Run *r, SpawnRetry *t) {
  int again;
  lock(r);
  r->live--;
  if (t->failed++ > 0 && r->nreaped != t->nreaped && r->ntries == t->ntries + 1)
    t->misses++;                    /* the one try since was ours */
  t->nreaped = r->nreaped;
  t->ntries = r->ntries;
  again = r->live > 0 && t->misses < SPAWN_MISSES &&
          !__atomic_load_n(&r->stopping, __ATOMIC_ACQUIRE);
  if (again) {
    t->backoff = t->backoff <= 0 ? SPAWN_BACKOFF : t->backoff * 2;
    if (t->backoff > SPAWN_BACKOFF_MAX) t->backoff = SPAWN_BACKOFF_MAX;
    wait_reaped(r, t->nreaped, t->backoff);
    again = !__atomic_load_n(&r->stopping, __ATOMIC_ACQUIRE);
  }
  r->live++;                        /* back: the next try, or run_child_failed */
  r->ntries += again;
  unlock(r);
  return again;
}

/* }======================================================= */

/* A job handed out is back (posted, or requeued): its place under maxrun
** is free.  Called with the lock held. */
static void release (Run *r) {
  r->active--;
  if (r->maxrun > 0) pthread_cond_broadcast(&r->more);
}

/* The next job: one back from an unreachable host first, then the input's
** next; while the input is open and has none, wait for a push; while
** maxrun jobs are out, wait for one back, and while held for the hold to
** end.  NULL once the input is over, or on a stop.  Called with the lock
** held. */
static Job *next_job (Run *r) {
  Job *j;
  for (;;) {
    if (r->stopping) return NULL;
    if ((r->held || (r->maxrun > 0 && r->active >= r->maxrun)) &&
        (r->requeued != NULL || r->todo_head != NULL)) {
      pthread_cond_wait(&r->more, &r->mu);    /* a post frees a place */
      continue;
    }
    if ((j = r->requeued) != NULL) {
      r->requeued = j->next;
      r->active++;
      return j;
    }
    if ((j = r->todo_head) != NULL) {
      r->todo_head = j->next;
      if (r->todo_head == NULL) r->todo_tail = NULL;
      r->claimed++;
      r->active++;
      return j;
    }
    if (!r->input_open) return NULL;
    pthread_cond_wait(&r->more, &r->mu);
  }
}

/*
** The next job and a host slot for it, or NULL when this worker is done:
** nothing left, a stop, or (with hosts) no free slot because hosts were
** dropped; the job then goes back for a worker that has one.  With every
** host dropped the job comes back marked as an error, to be posted.
*/
static Job *claim (Run *r) {
  Job *j = NULL;
  double at = 0;
  lock(r);
  if ((j = next_job(r)) != NULL) {
    j->host = -1;
    if (r->spec.nhosts > 0) {
      int none_left, h = pick_host(r, &none_left);
      if (h >= 0) {
        j->host = h;
        r->spec.hosts[h].running++;
      }
      else if (none_left) {
        j->status = ST_ERROR;
        j->errwhat = "hosts";
        unlock(r);
        return j;
      }
      else {
        j->next = r->requeued;
        r->requeued = j;
        release(r);
        j = NULL;
      }
    }
    if (j != NULL && r->spec.delay > 0) {
      double now = sys_mono();
      at = r->next_start > now ? r->next_start : now;
      r->next_start = at + r->spec.delay;
    }
  }
  unlock(r);
  if (j != NULL && at > 0 && !pause_until(r, at))
    j->status = ST_NONE;            /* stopped before its turn: skipped */
  else if (j != NULL)
    j->status = ST_EXIT;            /* will run */
  return j;
}

static int evicted (Job *j) {
  return __atomic_load_n(&j->evict, __ATOMIC_ACQUIRE);
}

static int job_ok (const Job *j) {
  return j->status == ST_EXIT && j->code == 0;
}

/* ssh exits 255 when it could not reach the host (or the remote command
** exited 255, which ssh cannot tell apart). */
static int unreachable (Run *r, const Job *j) {
  return j->host >= 0 && r->spec.hosts[j->host].argv != NULL &&
         j->status == ST_EXIT && j->code == 255;
}

/* Release the job's host slot; count an unreachable host, and drop it
** after HOST_MAXFAILS in a row.  Returns true to requeue the job. */
static int host_done (Run *r, Job *j) {
  Host *h;
  int requeue = 0, dropped = 0;
  if (j->host < 0) return 0;
  h = &r->spec.hosts[j->host];
  lock(r);
  h->running--;
  if (unreachable(r, j) && !__atomic_load_n(&r->stopping, __ATOMIC_ACQUIRE)) {
    requeue = 1;
    if (++h->fails >= HOST_MAXFAILS && !h->dropped)
      h->dropped = dropped = 1;
    j->next = r->requeued;
    r->requeued = j;
    release(r);
  }
  else if (j->status == ST_EXIT)
    h->fails = 0;
  unlock(r);
  if (dropped)
    dprintf(2, "par: host %s dropped: unreachable %d times in a row (ssh exit 255)\n",
            h->name, HOST_MAXFAILS);
  return requeue;
}

/* A stop that denies a failed job the retries it had left cuts it short
** as surely as a kill: it is marked stopped, so that a resume reruns it. */
static void attempts (Run *r, Job *j) {
  if (r->spec.starts && j->attempts == 0) {   /* again on another host's worker */
    char slot[16];
    int n = snprintf(slot, sizeof slot, "%d", j->slot);
    run_chunk(r, j, CHUNK_START, slot, (size_t)n);
  }
  for (;;) {
    j->attempts++;
    spawn_job(r, j);
    if (evicted(j)) {
      j->attempts--;                /* not an attempt: it runs again later */
      return;
    }
    if (unreachable(r, j)) {
      j->attempts--;                /* not an attempt: another host will try */
      return;
    }
    if (job_ok(j) || j->attempts > r->spec.retries)
      return;
    if (__atomic_load_n(&r->stopping, __ATOMIC_ACQUIRE) ||
        (r->spec.retry_delay > 0 && !pause_until(r, sys_mono() + r->spec.retry_delay))) {
      j->stopped = 1;
      return;
    }
    /* what was streamed so far came from a failed try */
    if (r->spec.stream) run_chunk(r, j, CHUNK_RETRY, "", 0);
  }
}

static void post (Run *r, Job *j) {
  lock(r);
  j->next = NULL;
  if (r->done_tail) r->done_tail->next = j;
  else r->done_head = j;
  r->done_tail = j;
  r->finished++;
  release(r);
  unlock(r);
  wakeup(r->wake[1]);
}

static void go_live (Run *r, Job *j) {
  lock(r);
  j->live_next = r->running;
  r->running = j;
  unlock(r);
}

/* Off Run.running; an evicted job goes back to the queue (true), its host
** slot freed and what it streamed dropped. */
static int leave_live (Run *r, Job *j) {
  Job **p;
  int back;
  lock(r);
  for (p = &r->running; *p != NULL && *p != j; p = &(*p)->live_next)
    ;
  if (*p == j) *p = j->live_next;
  j->live_next = NULL;
  back = evicted(j) && !r->stopping;
  if (evicted(j) && !back) j->stopped = 1;    /* a stop came first: cut short */
  if (back) {
    if (j->host >= 0) r->spec.hosts[j->host].running--;
    __atomic_store_n(&j->evict, 0, __ATOMIC_RELEASE);
    j->next = r->requeued;
    r->requeued = j;
    release(r);
  }
  unlock(r);
  if (back && r->spec.stream) run_chunk(r, j, CHUNK_RETRY, "", 0);
  return back;
}

static void *worker (void *arg) {
  Run *r = (Run *)arg;
  Job *j;
  /* one worker runs one job at a time, so its number is a job slot */
  int slot = __atomic_add_fetch(&r->nslots, 1, __ATOMIC_RELAXED);
  while ((j = claim(r)) != NULL) {
    int halt = 0;
    j->slot = slot;
    if (j->status == ST_EXIT) {
      go_live(r, j);
      attempts(r, j);
      if (leave_live(r, j)) continue;
      if (host_done(r, j)) continue;
      halt = !job_ok(j) && r->spec.halt != HALT_NEVER
          && __atomic_add_fetch(&r->nfails, 1, __ATOMIC_RELAXED) >= r->spec.halt_fails;
    }
    else if (j->host >= 0) {        /* stopped during its delay */
      lock(r);
      r->spec.hosts[j->host].running--;
      unlock(r);
    }
    /* the job that halts the run is posted before the stop kills the
    ** others, so that its result comes first (j is the caller's after) */
    post(r, j);
    if (halt) run_stop(r, r->spec.halt == HALT_NOW);
  }
  lock(r);
  r->idle++;
  unlock(r);
  wakeup(r->wake[1]);
  return NULL;
}

/* Workers start with every signal blocked, so that SIGINT, SIGTERM and
** SIGCHLD go to the caller's thread, and SIGPIPE from a command that closed
** its stdin becomes EPIPE. */
static int add_workers (Run *r, int n) {
  pthread_attr_t attr;
  sigset_t all, old;
  int e = 0, had = r->nthreads;
  pthread_t *t = (pthread_t *)realloc(r->threads, (size_t)n * sizeof *t);
  if (t == NULL) return ENOMEM;
  r->threads = t;
  if ((e = pthread_attr_init(&attr)) != 0) return e;
  pthread_attr_setstacksize(&attr, STACKSIZE);
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  while (r->nthreads < n) {
    if ((e = pthread_create(&r->threads[r->nthreads], &attr, worker, r)) != 0)
      break;
    r->nthreads++;
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  pthread_attr_destroy(&attr);
  return r->nthreads > had ? 0 : e;   /* fewer workers still finish the run */
}

int run_start (Run *r, int n) {
  return add_workers(r, n < 1 ? 1 : n);
}

/* Called by the caller's thread only, as run_start is: it alone touches
** r->threads and r->nthreads but for reads under the lock. */
int run_setjobs (Run *r, int n) {
  int grow;
  if (n < 1) n = 1;
  lock(r);
  r->maxrun = n;
  pthread_cond_broadcast(&r->more);
  grow = n > r->nthreads && r->input_open && !r->stopping;
  unlock(r);
  return grow ? add_workers(r, n) : 0;
}

void run_hold (Run *r, int on) {
  lock(r);
  r->held = on;
  if (!on) pthread_cond_broadcast(&r->more);
  unlock(r);
}

void run_evictable (Run *r) {
  __atomic_store_n(&r->evictable, 1, __ATOMIC_RELEASE);
}

long long run_evict (Run *r) {
  Job *j, *young = NULL;
  lock(r);
  for (j = r->running; j != NULL; j = j->live_next)
    if (!evicted(j) && (young == NULL || j->index > young->index)) young = j;
  if (young != NULL) __atomic_store_n(&young->evict, 1, __ATOMIC_RELEASE);
  unlock(r);
  return young != NULL ? young->index : 0;
}

void run_settimeout (Run *r, double secs) {
  lock(r);
  r->timeout_now = secs;
  unlock(r);
}

Job *run_newjob (long long index) {
  Job *j = (Job *)calloc(1, sizeof *j);
  if (j != NULL) {
    j->index = index;
    j->host = -1;
  }
  return j;
}

void run_push (Run *r, Job *j) {
  lock(r);
  j->next = NULL;
  if (r->todo_tail) r->todo_tail->next = j;
  else r->todo_head = j;
  r->todo_tail = j;
  pthread_cond_signal(&r->more);
  unlock(r);
}

void run_endinput (Run *r) {
  lock(r);
  r->input_open = 0;
  pthread_cond_broadcast(&r->more);
  unlock(r);
}

/* {======================================================= */
/* Output passed on as it comes (spec.stream)               */

void run_chunk (Run *r, Job *j, int err, const char *data, size_t len) {
  Chunk *c = (Chunk *)malloc(offsetof(Chunk, data) + len);
  if (c == NULL) {                  /* dropped, and said so */
    j->truncated = 1;
    return;
  }
  c->next = NULL;
  c->index = j->index;
  c->err = err;
  c->len = len;
  memcpy(c->data, data, len);
  lock(r);
  if (r->chunk_tail) r->chunk_tail->next = c;
  else r->chunk_head = c;
  r->chunk_tail = c;
  __atomic_store_n(&r->chunkbytes, r->chunkbytes + len, __ATOMIC_RELAXED);
  unlock(r);
  wakeup(r->wake[1]);
}

int run_chunksfull (Run *r) {
  return __atomic_load_n(&r->chunkbytes, __ATOMIC_RELAXED) >= CHUNKS_MAX;
}

Chunk *run_popchunk (Run *r) {
  Chunk *c;
  lock(r);
  c = r->chunk_head;
  if (c != NULL) {
    r->chunk_head = c->next;
    if (r->chunk_head == NULL) r->chunk_tail = NULL;
    __atomic_store_n(&r->chunkbytes, r->chunkbytes - c->len, __ATOMIC_RELAXED);
  }
  unlock(r);
  return c;
}

/* }======================================================= */

Job *run_popskipped (Run *r) {
  Job *j = NULL;
  lock(r);
  if (r->stopping && r->idle == r->nthreads) {
    if ((j = r->requeued) != NULL) r->requeued = j->next;
    else if ((j = r->todo_head) != NULL) {
      r->todo_head = j->next;
      if (r->todo_head == NULL) r->todo_tail = NULL;
    }
  }
  unlock(r);
  if (j != NULL) j->status = ST_NONE;
  return j;
}

int run_stopping (Run *r) {
  return __atomic_load_n(&r->stopping, __ATOMIC_ACQUIRE);
}

Job *run_pop (Run *r) {
  Job *j;
  lock(r);
  j = r->done_head;
  if (j != NULL) {
    r->done_head = j->next;
    if (r->done_head == NULL) r->done_tail = NULL;
  }
  unlock(r);
  return j;
}

int run_over (Run *r) {
  int over;
  lock(r);
  over = r->idle == r->nthreads && r->done_head == NULL && r->chunk_head == NULL &&
         r->todo_head == NULL && r->requeued == NULL;
  unlock(r);
  return over;
}

void run_counts (Run *r, size_t *claimed, size_t *finished) {
  lock(r);
  *claimed = r->claimed;
  *finished = r->finished;
  unlock(r);
}

void run_stop (Run *r, int kill) {
  int wake = 0;
  lock(r);
  __atomic_store_n(&r->stopping, 1, __ATOMIC_RELEASE);
  if (r->cond_ok) pthread_cond_broadcast(&r->more);
  if (kill > r->killing) {
    wake = r->killing == 0;
    __atomic_store_n(&r->killing, kill, __ATOMIC_RELEASE);
  }
  if (r->cond_ok) pthread_cond_broadcast(&r->reaped);   /* see run_child_retry */
  unlock(r);
  if (wake) wakeup(r->stop[1]);     /* never read: stays readable for all */
}

static void closeall (Run *r) {
  int *fds[] = {&r->wake[0], &r->wake[1], &r->stop[0], &r->stop[1], &r->devnull};
  size_t i;
  for (i = 0; i < sizeof fds / sizeof fds[0]; i++) {
    if (*fds[i] >= 0) close(*fds[i]);
    *fds[i] = -1;
  }
}

/* A NULL-terminated vector of strings, and the strings. */
static void free_strv (char **v) {
  char **a;
  for (a = v; a != NULL && *a != NULL; a++) free(*a);
  free(v);
}

void run_freejob (Job *j) {
  if (j == NULL) return;
  free_strv(j->argv);
  free(j->remote);
  free(j->input);
  buf_free(&j->out);
  buf_free(&j->errout);
  free(j);
}

static void free_list (Job *j) {
  while (j != NULL) {
    Job *next = j->next;
    run_freejob(j);
    j = next;
  }
}

/* After the join: every job is on one of these lists. */
static void free_jobs (Run *r) {
  Chunk *c = r->chunk_head;
  free_list(r->todo_head);
  free_list(r->requeued);
  free_list(r->done_head);
  r->todo_head = r->todo_tail = r->requeued = r->done_head = r->done_tail = NULL;
  while (c != NULL) {
    Chunk *next = c->next;
    free(c);
    c = next;
  }
  r->chunk_head = r->chunk_tail = NULL;
}

static void free_hosts (Run *r) {
  int i;
  for (i = 0; r->spec.hosts != NULL && i < r->spec.nhosts; i++) {
    free_strv(r->spec.hosts[i].argv);
    free(r->spec.hosts[i].name);
  }
  free(r->spec.hosts);
  r->spec.hosts = NULL;
}

void run_free (Run *r) {
  int i;
  if (r->nthreads > 0) {
    run_stop(r, 1);
    for (i = 0; i < r->nthreads; i++)
      pthread_join(r->threads[i], NULL);
    r->nthreads = 0;
  }
  free_jobs(r);
  free_hosts(r);
  free(r->threads);
  r->threads = NULL;
  free(r->spec.cwd);
  free(r->spec.input);
  free(r->spec.slotmark);
  r->spec.cwd = r->spec.input = r->spec.slotmark = NULL;
  free_strv(r->spec.envp);
  r->spec.envp = NULL;
  closeall(r);
  if (r->cond_ok) {
    pthread_cond_destroy(&r->reaped);
    pthread_cond_destroy(&r->more);
  }
  r->cond_ok = 0;
  if (r->mu_ok) pthread_mutex_destroy(&r->mu);
  r->mu_ok = 0;
}
