/*
** treemem.c: the memory of a whole process tree, for bench/imap_bench.lua.
**
**   bench/treemem CMD [ARG...]
**
** Runs CMD, and every 10 ms walks it and its descendants
** (/proc/PID/task/PID/children) and sums their resident memory: VmRSS
** (which counts a page shared by a parent and its forks once in each),
** and Pss from smaps_rollup (a shared page split between its sharers, so
** the sum is the tree's real footprint).  When CMD exits, prints on
** stderr: "treemem rss_kib pss_kib hwm_kib", the peak of each sum over
** the samples, and the sum of each process's own VmHWM (its peak RSS, as
** last read).  Exits with CMD's status.  Sampling misses what lives
** less than 10 ms; the sums of the peaks are exact only for VmHWM.
*/
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/types.h>
#include <sys/wait.h>

#define MAXPIDS 4096

static pid_t seen[MAXPIDS];
static long seenhwm[MAXPIDS];
static int nseen;

/* The number after 'key' in /proc/PID/FILE, in kB; 0 if none. */
static long field (pid_t pid, const char *file, const char *key) {
  char path[64], line[256];
  size_t n = strlen(key);
  long v = 0;
  FILE *f;
  snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, file);
  if ((f = fopen(path, "r")) == NULL) return 0;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, key, n) == 0) {
      v = strtol(line + n, NULL, 10);
      break;
    }
  fclose(f);
  return v;
}

static void note_hwm (pid_t pid, long hwm) {
  int k;
  for (k = 0; k < nseen; k++)
    if (seen[k] == pid) {
      if (hwm > seenhwm[k]) seenhwm[k] = hwm;
      return;
    }
  if (nseen < MAXPIDS) {
    seen[nseen] = pid;
    seenhwm[nseen++] = hwm;
  }
}

/* Add pid's and its descendants' memory to *rss and *pss. */
static void walk (pid_t pid, long *rss, long *pss) {
  char path[64];
  FILE *f;
  int child;
  *rss += field(pid, "status", "VmRSS:");
  *pss += field(pid, "smaps_rollup", "Pss:");
  note_hwm(pid, field(pid, "status", "VmHWM:"));
  snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)pid, (int)pid);
  if ((f = fopen(path, "r")) == NULL) return;
  while (fscanf(f, "%d", &child) == 1) walk((pid_t)child, rss, pss);
  fclose(f);
}

int main (int argc, char **argv) {
  struct timespec tick = {0, 10 * 1000000L};
  long peakrss = 0, peakpss = 0, hwm = 0;
  int st, k;
  pid_t pid, r;
  if (argc < 2) {
    fprintf(stderr, "usage: treemem CMD [ARG...]\n");
    return 2;
  }
  if ((pid = fork()) < 0) return perror("fork"), 2;
  if (pid == 0) {
    execvp(argv[1], argv + 1);
    perror(argv[1]);
    _exit(127);
  }
  for (;;) {
    long rss = 0, pss = 0;
    r = waitpid(pid, &st, WNOHANG);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) return perror("waitpid"), 2;
    walk(pid, &rss, &pss);
    if (rss > peakrss) peakrss = rss;
    if (pss > peakpss) peakpss = pss;
    nanosleep(&tick, NULL);
  }
  for (k = 0; k < nseen; k++) hwm += seenhwm[k];
  fprintf(stderr, "treemem %ld %ld %ld\n", peakrss, peakpss, hwm);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return WEXITSTATUS(st);
}
