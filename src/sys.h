/*
** sys.h: system helpers behind one small function each, so that a port has
** one place to go.  Plain C: no Lua header.
*/
#ifndef PAR_SYS_H
#define PAR_SYS_H

#include <sys/types.h>

/* SIGKILL every descendant of 'root' (and 'root' itself unless it is the
** calling process), and wait up to 'wait' seconds for the descendants to
** be gone (dead, or zombies); the caller reaps 'root'.  Descendants are
** frozen with SIGSTOP as they are found, so that none can fork behind the
** walk.  Returns how many processes it killed. */
int sys_killtree (pid_t root, double wait);

/* Make the calling process adopt its orphaned descendants (Linux's child
** subreaper), so that sys_killtree finds them: a daemon started by a
** command run inside a par.map worker stays a descendant of the worker. */
void sys_subreaper (void);

/* In a process about to exit: kill what it still has running (its
** children and theirs, adopted orphans included) and reap them. */
void sys_reapall (void);

#endif
