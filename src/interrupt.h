/*
** interrupt.h: SIGINT and SIGTERM while par waits for its children.
** Plain C; no Lua.
*/
#ifndef PAR_INTERRUPT_H
#define PAR_INTERRUPT_H

/* Install handlers for SIGINT and SIGTERM, saving the host's, and return a
** descriptor that becomes readable when one arrives (-1 and errno on
** failure).  Nested calls are counted; only the outermost installs. */
int intr_begin (void);

/* Undo one intr_begin; the outermost restores the host's handlers. */
void intr_end (void);

/* The signal that arrived since the outermost intr_begin, or 0. */
int intr_pending (void);

/* How many of them arrived since the outermost intr_begin. */
int intr_count (void);

/* In a forked child that goes on running Lua: start afresh (see .c). */
void intr_afterfork (void);

#endif
