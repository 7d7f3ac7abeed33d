/*
** live.h: what par has running in this process (runners and map pools),
** for the two moments that reach them other than their own userdata: an
** interrupt while Lua code runs, and an exit of the process (os.exit from a
** callback) that never closes the Lua state.  Plain C: no Lua header.
*/
#ifndef PAR_LIVE_H
#define PAR_LIVE_H

#include <sys/types.h>

enum { LIVE_INTR, LIVE_EXIT };

typedef struct Live {
  struct Live *prev, *next;
  pid_t owner;               /* a forked worker's copy is not its own */
  /* LIVE_INTR: stop gently, as par's loop would on a signal; LIVE_EXIT:
  ** kill and reap everything now, without Lua (the state is not closed,
  ** but no Lua may run).  The entry is already off the list for EXIT. */
  void (*stop) (struct Live *e, int why);
} Live;

/* Put e on the list (owner: this process); the first call also registers
** the exit handler. */
void live_add (Live *e, void (*stop) (Live *, int));

/* Take e off the list; harmless if it is not on it. */
void live_remove (Live *e);

/* A signal arrived while Lua code ran: stop(e, LIVE_INTR) for each. */
void live_interrupt (void);

/* In a forked child: the list is the parent's; forget it. */
void live_afterfork (void);

#endif
