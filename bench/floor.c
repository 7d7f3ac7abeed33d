/*
** floor.c: the floor par.run is measured against.  Runs COUNT copies of one
** command with plain posix_spawnp + waitpid, JOBS (2) at a time: spawn two,
** then start the next as each one ends.  No pipes, no process groups, no
** threads: the least any runner can do.  Prints the seconds it took.
**
**   floor [-s] [-j JOBS] [-m MB] COUNT CMD [ARG...]
**   -s: run the command as /bin/sh -c CMD, like a par.run string command
**   -m: first fill MB MiB of memory, to see whether spawning from a big
**       process costs more on this machine whatever the runner does
*/
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now (void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void usage (void) {
  fprintf(stderr, "usage: floor [-s] [-j JOBS] [-m MB] COUNT CMD [ARG...]\n");
  exit(2);
}

static void start (char **argv) {
  pid_t pid;
  int e = posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ);
  if (e != 0) {
    fprintf(stderr, "floor: %s: %s\n", argv[0], strerror(e));
    exit(1);
  }
}

/* Reap one child; a failed command makes the whole measurement void. */
static void reap (void) {
  int st;
  pid_t p;
  do p = waitpid(-1, &st, 0); while (p < 0 && errno == EINTR);   /* ours alone */
  if (p < 0) { perror("floor: waitpid"); exit(1); }
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    fprintf(stderr, "floor: a command failed (status %d)\n", st);
    exit(1);
  }
}

int main (int argc, char **argv) {
  char *shargv[4] = {"/bin/sh", "-c", NULL, NULL};
  char **cmd;
  long count, jobs = 2, running = 0, mb = 0;
  int opt, shell = 0;
  char *ballast = NULL;
  double t;
  while ((opt = getopt(argc, argv, "+sj:m:")) != -1) {
    if (opt == 's') shell = 1;
    else if (opt == 'j' && (jobs = atol(optarg)) >= 1) continue;
    else if (opt == 'm' && (mb = atol(optarg)) >= 0) continue;
    else usage();
  }
  if (argc - optind < 2 || (count = atol(argv[optind])) < 0) usage();
  cmd = argv + optind + 1;
  if (shell) {
    if (argc - optind != 2) usage();
    shargv[2] = cmd[0];
    cmd = shargv;
  }
  if (mb > 0) {               /* touched, so every page is really mapped */
    if ((ballast = malloc((size_t)mb << 20)) == NULL) { perror("floor: malloc"); return 1; }
    memset(ballast, 1, (size_t)mb << 20);
  }
  t = now();
  for (long i = 0; i < count; i++) {
    if (running == jobs) {
      reap();
      running--;
    }
    start(cmd);
    running++;
  }
  while (running-- > 0) reap();
  printf("%.6f\n", now() - t);
  free(ballast);
  return 0;
}
