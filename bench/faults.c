/*
** faults.c: what this machine charges per page for the memory traffic of a
** fork-based map.  par.map's speed on small items is bounded by these, and
** they vary a hundredfold between bare metal and some virtual machines.
**
**   cc -O2 -std=c99 -D_GNU_SOURCE -o bench/faults bench/faults.c
**   bench/faults
**
** Prints one markdown table: microseconds per 4 KiB page (median of 5
** runs over 64 MiB), for
**   - a first write to fresh memory (what malloc's new pages cost);
**   - the same with huge pages (MADV_HUGEPAGE), per 4 KiB of them;
**   - a child's first read of a page it inherited (a worker reading items);
**   - a parent's write to a page a live child shares (copy-on-write);
**   - a parent's write to a page after its child exited (still
**     write-protected by the fork: every write after any fork pays this).
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SIZE   ((size_t)64 << 20)
#define PAGE   ((size_t)4096)
#define RUNS   5

static double now (void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* 2 MiB-aligned, so that huge pages can back it when asked; the slack
** on either side is unmapped at once. */
static char *region (int huge) {
  size_t align = (size_t)2 << 20;
  char *base = mmap(NULL, SIZE + align, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  char *p;
  if (base == MAP_FAILED) {
    perror("mmap");
    exit(1);
  }
  p = (char *)(((uintptr_t)base + align - 1) & ~(uintptr_t)(align - 1));
  if (p > base) munmap(base, (size_t)(p - base));
  munmap(p + SIZE, (size_t)(base + align - p));
  madvise(p, SIZE, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
  return p;
}

static void release (char *p) {
  munmap(p, SIZE);
}

/* Seconds to write one byte in each page of p. */
static double touch (char *p) {
  double t = now();
  size_t i;
  for (i = 0; i < SIZE; i += PAGE) p[i] = (char)i;
  return now() - t;
}

static double first_write (int huge) {
  char *p = region(huge);
  double s = touch(p);
  release(p);
  return s;
}

/* A child reads each page once and reports its time through a pipe. */
static double child_read (void) {
  char *p = region(0);
  int fd[2];
  double s = 0;
  pid_t pid;
  touch(p);
  if (pipe(fd) != 0) exit(1);
  pid = fork();
  if (pid == 0) {
    volatile char sink = 0;
    double t = now();
    size_t i;
    for (i = 0; i < SIZE; i += PAGE) sink += p[i];
    t = now() - t;
    if (write(fd[1], &t, sizeof t) != (ssize_t)sizeof t) _exit(1);
    _exit(sink == 42);
  }
  if (read(fd[0], &s, sizeof s) != (ssize_t)sizeof s) exit(1);
  waitpid(pid, NULL, 0);
  close(fd[0]);
  close(fd[1]);
  release(p);
  return s;
}

/* The parent writes each page while a child shares it, or after the child
** has exited. */
static double parent_write (int child_alive) {
  char *p = region(0);
  int fd[2];
  double s;
  pid_t pid;
  char c;
  touch(p);
  if (pipe(fd) != 0) exit(1);
  pid = fork();
  if (pid == 0) {
    close(fd[1]);
    (void)!read(fd[0], &c, 1);          /* wait until the parent is done */
    _exit(0);
  }
  if (!child_alive) {
    close(fd[1]);
    waitpid(pid, NULL, 0);
  }
  s = touch(p);
  if (child_alive) {
    close(fd[1]);
    waitpid(pid, NULL, 0);
  }
  close(fd[0]);
  release(p);
  return s;
}

static int cmp (const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double per_page_us (double (*f) (int), int arg) {
  double t[RUNS];
  int k;
  for (k = 0; k < RUNS; k++) t[k] = f(arg);
  qsort(t, RUNS, sizeof t[0], cmp);
  return t[RUNS / 2] * 1e6 / (double)(SIZE / PAGE);
}

static double read_wrap (int unused) {
  (void)unused;
  return child_read();
}

int main (void) {
  printf("| page event (4 KiB) | us per page |\n|---|---:|\n");
  printf("| first write to fresh memory | %.2f |\n", per_page_us(first_write, 0));
  printf("| first write to fresh memory, huge pages | %.2f |\n",
         per_page_us(first_write, 1));
  printf("| a child's first read of an inherited page | %.2f |\n",
         per_page_us(read_wrap, 0));
  printf("| parent's write to a page a live child shares | %.2f |\n",
         per_page_us(parent_write, 1));
  printf("| parent's write to a page after the child exited | %.2f |\n",
         per_page_us(parent_write, 0));
  return 0;
}
