/*
** live.c: the list of live runners and pools (see live.h).
**
** Like the signal state in interrupt.c, this is process-wide by nature:
** exit() gives its handlers no context.  The list is short (one entry per
** par call in progress) and only the threads that run Lua touch it, hence
** one mutex.  The exit handler must never run code that lua_close has
** unloaded (glibc runs a library's own handlers at dlclose, but the
** sanitizers' atexit does not, and other libcs differ): so before it is
** registered, par.core pins itself in memory (RTLD_NODELETE), and without
** the pin there is no handler.
*/
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "live.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static Live head = {&head, &head, 0, NULL};
static int registered = 0;

/* exit() from a callback (os.exit, which does not close the Lua state):
** kill and reap what this process started, one entry at a time, off the
** list before its stop runs so that its own live_remove finds nothing. */
static void live_atexit (void) {
  pid_t self = getpid();
  for (;;) {
    Live *e;
    pthread_mutex_lock(&mu);
    for (e = head.next; e != &head && e->owner != self; e = e->next) ;
    if (e != &head) {
      e->prev->next = e->next;
      e->next->prev = e->prev;
      e->prev = e->next = e;
    }
    pthread_mutex_unlock(&mu);
    if (e == &head) return;
    e->stop(e, LIVE_EXIT);
  }
}

/* Keep this shared object mapped until the process ends. */
static int pin (void) {
  Dl_info info;
  if (dladdr((void *)live_atexit, &info) == 0 || info.dli_fname == NULL)
    return 0;
  return dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE) != NULL;
}

void live_add (Live *e, void (*stop) (Live *, int)) {
  e->owner = getpid();
  e->stop = stop;
  pthread_mutex_lock(&mu);
  if (!registered && pin() && atexit(live_atexit) == 0) registered = 1;
  e->next = &head;
  e->prev = head.prev;
  head.prev->next = e;
  head.prev = e;
  pthread_mutex_unlock(&mu);
}

void live_remove (Live *e) {
  if (e->next == NULL || e->owner != getpid())
    return;                             /* never added, or the parent's */
  pthread_mutex_lock(&mu);
  e->prev->next = e->next;
  e->next->prev = e->prev;
  pthread_mutex_unlock(&mu);
  e->prev = e->next = e;                /* removing again changes nothing */
}

void live_interrupt (void) {
  pid_t self = getpid();
  Live *e;
  pthread_mutex_lock(&mu);
  for (e = head.next; e != &head; e = e->next)
    if (e->owner == self) e->stop(e, LIVE_INTR);
  pthread_mutex_unlock(&mu);
}

/* The parent's entries belong to the parent, and its lock may have been
** held by another thread at the fork. */
void live_afterfork (void) {
  pthread_mutex_init(&mu, NULL);
  head.prev = head.next = &head;
}
