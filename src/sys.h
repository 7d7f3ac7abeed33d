/*
** sys.h: system helpers behind one small function each, so that a port has
** one place to go (DESIGN "Portability"): the clocks, descriptors and
** EINTR loops every file needs, and each Linux-only call par makes, with
** its fallback elsewhere.  Plain C: no Lua header.
*/
#ifndef PAR_SYS_H
#define PAR_SYS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/types.h>


/*
** {======================================================
** Clocks.  The monotonic ones are one clock: a time from one may be
** compared with a time from another (and with run.c's condition waits,
** set to CLOCK_MONOTONIC too).
** =======================================================
*/

int64_t sys_monons (void);      /* CLOCK_MONOTONIC, nanoseconds */
double sys_mono (void);         /* the same, in seconds */
double sys_real (void);         /* CLOCK_REALTIME: seconds since the epoch */

/* The same clock a few ms coarse, for loops that read it often: Linux's
** CLOCK_MONOTONIC_COARSE reads the kernel's last tick, not the hardware
** clock.  Elsewhere CLOCK_MONOTONIC itself. */
int64_t sys_coarsens (void);

/* }====================================================== */


/*
** {======================================================
** Descriptors
** =======================================================
*/

/* Both ends of a new pipe (non-blocking if asked) or of a pair of connected
** stream sockets: close-on-exec from birth, and both above 2, in case the
** host closed its stdio (a pipe at fd 0 would be dup2'd onto itself in a
** child, which keeps it close-on-exec).  0, or an errno value with nothing
** left open. */
int sys_pipe (int fd[2], int nonblock);
int sys_socketpair (int fd[2]);

/* Write all n bytes, again after EINTR and short writes: 0, or -1 with
** errno (EAGAIN from a full non-blocking pipe, EPIPE...).  It calls write()
** and nothing else, so it is async-signal-safe: interrupt.c's handler uses
** it (and saves errno around it, as a handler must). */
int sys_writeall (int fd, const void *p, size_t n);

/* The same with send(): to a socket whose peer is gone it fails with EPIPE
** instead of raising SIGPIPE (MSG_NOSIGNAL), whatever the host did with
** SIGPIPE. */
int sys_sendall (int fd, const void *p, size_t n);

/* In a fork that will not exec (a par.map worker): close what an exec
** would close, every descriptor above 2 marked close-on-exec, but 'keep'.
** The host's own files (io.open does not set the flag) stay open.  On
** Linux it reads /proc/self/fd without malloc; elsewhere, or without
** /proc, it tries every number up to the descriptor limit. */
void sys_closecloexec (int keep);

/* }====================================================== */


/*
** {======================================================
** Processes
** =======================================================
*/

/* A descriptor that polls readable once 'pid' (our child) has exited:
** Linux's pidfd (5.3 and later).  -1 elsewhere and on older kernels:
** callers then poll waitid/waitpid with WNOHANG. */
int sys_pidfd (pid_t pid);

/* Have the kernel send 'sig' to the calling process when its parent dies
** (Linux's PR_SET_PDEATHSIG).  -1 with ENOSYS elsewhere: a par.map worker
** then notices its parent's death only at its next read or write on the
** socket to it. */
int sys_pdeathsig (int sig);

/* Make the calling process adopt its orphaned descendants (Linux's child
** subreaper), so that sys_killtree finds them: a daemon started by a
** command run inside a par.map worker stays a descendant of the worker.
** Elsewhere nothing: such an orphan escapes the tree kill. */
void sys_subreaper (void);

/* SIGKILL every descendant of 'root' (and 'root' itself unless it is the
** calling process), and wait up to 'wait' seconds for the descendants to
** be gone (dead, or zombies); the caller reaps 'root'.  Descendants are
** frozen with SIGSTOP as they are found, so that none can fork behind the
** walk.  Returns how many processes it killed.  The walk reads /proc: on
** a system without it, only 'root' is killed. */
int sys_killtree (pid_t root, double wait);

/* In a process about to exit: kill what it still has running (its
** children and theirs, adopted orphans included) and reap them. */
void sys_reapall (void);

/* The CPUs this process may run on: its affinity mask on Linux (which
** taskset and cgroup cpusets narrow), else the CPUs online.  At least 1. */
long sys_cpus (void);

/* }====================================================== */


/*
** {======================================================
** Memory advice.  Inline here rather than in sys.c: buf.c and arena.c,
** which the fuzz targets link alone, call them.  All are advice: a failure
** (-1; always, where the advice does not exist) costs speed only.
** =======================================================
*/

/* With 'on', leave p[0..n) out of later forks (Linux's MADV_DONTFORK):
** a child has no mapping there at all.  Without, undo that. */
static inline int sys_nofork (void *p, size_t n, int on) {
#if defined(__linux__)
  return madvise(p, n, on ? MADV_DONTFORK : MADV_DOFORK);
#else
  (void)p; (void)n; (void)on;
  return -1;
#endif
}

/* Back p[0..n) with huge pages where the kernel can (Linux's transparent
** huge pages): one fault per 2 MiB filled, not one per 4 KiB. */
static inline int sys_hugepages (void *p, size_t n) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  return madvise(p, n, MADV_HUGEPAGE);
#else
  (void)p; (void)n;
  return -1;
#endif
}

/* }====================================================== */

#endif
