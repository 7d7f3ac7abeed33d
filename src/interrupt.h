/*
** interrupt.h: SIGINT, SIGTERM, SIGHUP, SIGQUIT (and SIGPIPE, where the
** host leaves it fatal) while a par call is live.
*/
#ifndef PAR_INTERRUPT_H
#define PAR_INTERRUPT_H

#include <lua.h>

/* Install handlers for those signals, saving the host's, and return a
** descriptor that becomes readable when one arrives (-1 and errno on
** failure).  Nested calls are counted; only the outermost installs.  L
** (and its main thread) become hook targets: a signal that arrives while
** Lua code runs there raises "interrupted" in that code (see .c). */
int intr_begin (lua_State *L);

/* Undo one intr_begin(L); the outermost restores the host's handlers, and
** re-raises under them a signal that no one acted upon. */
void intr_end (lua_State *L);

/* The signal that arrived since the outermost intr_begin, or 0. */
int intr_pending (void);

/* How many of them arrived since the outermost intr_begin. */
int intr_count (void);

/* par's own loop acted on every signal so far: no hook raises for them. */
void intr_ack (void);

/* The last signal that arrived, ever (the par command exits 128 + it). */
int intr_last (void);

/* In a forked child that goes on running Lua: start afresh (see .c). */
void intr_afterfork (void);

/* core.trap(): par's handlers for as long as the returned value is open
** (the par command holds one for its whole run); core.lastsignal(). */
void intr_open (lua_State *L);

#endif
