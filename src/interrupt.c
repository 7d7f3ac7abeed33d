/*
** interrupt.c: SIGINT and SIGTERM while par waits for its children.
**
** A signal handler gets no context, so this file keeps the one piece of
** mutable global state in par: the self-pipe and the saved handlers.  The
** handler only records the signal and writes a byte; the waiting loop sees
** the pipe readable, tears its children down and raises "interrupted".
** Only the thread that runs Lua calls these functions (worker threads block
** every signal), so the nesting count needs no lock.
*/
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include "interrupt.h"

static int depth = 0;                       /* nested intr_begin calls */
static int selfpipe[2] = {-1, -1};
static volatile sig_atomic_t pending = 0;
static volatile sig_atomic_t count = 0;     /* signals since the outermost begin */
static struct sigaction saved_int, saved_term;

static void onsignal (int sig) {
  int save = errno;          /* a handler must not change errno under the code it interrupted */
  ssize_t n;
  pending = sig;
  count++;
  do n = write(selfpipe[1], "", 1); while (n < 0 && errno == EINTR);
  errno = save;              /* EAGAIN: the pipe is full, a wake-up is pending anyway */
}

/* Take over 'sig' unless the host ignores it: a job started in the
** background by a shell has SIGINT ignored, and must go on ignoring it. */
static void catch (int sig, const struct sigaction *sa, struct sigaction *old) {
  sigaction(sig, NULL, old);
  if (old->sa_handler != SIG_IGN)
    sigaction(sig, sa, NULL);
}

int intr_begin (void) {
  struct sigaction sa;
  if (depth++ > 0) return selfpipe[0];
  if (pipe2(selfpipe, O_CLOEXEC | O_NONBLOCK) != 0) {
    depth--;
    return -1;
  }
  pending = count = 0;
  sa.sa_handler = onsignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;           /* no SA_RESTART: let poll() return EINTR too */
  catch(SIGINT, &sa, &saved_int);
  catch(SIGTERM, &sa, &saved_term);
  return selfpipe[0];
}

void intr_end (void) {
  if (depth == 0 || --depth > 0) return;
  sigaction(SIGINT, &saved_int, NULL);
  sigaction(SIGTERM, &saved_term, NULL);
  close(selfpipe[0]);
  close(selfpipe[1]);
  selfpipe[0] = selfpipe[1] = -1;
}

int intr_pending (void) {
  return pending;
}

int intr_count (void) {
  return count;
}

/* In a forked child (a par.map worker): forget the parent's handlers and
** self-pipe, whose descriptors the child closes, so that a par.run or
** par.map inside the worker installs its own. */
void intr_afterfork (void) {
  depth = 0;
  selfpipe[0] = selfpipe[1] = -1;
  pending = count = 0;
}
