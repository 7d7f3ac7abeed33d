/*
** slot.h: the page par.map's parent shares with its workers (MAP_SHARED),
** one Slot per worker: the item the worker runs, and since when if items
** have a timeout.  That costs the worker a store per item, not a syscall,
** and it tells the parent exactly which item a dead worker held, and
** which worker ran past its deadline.  Plain C: no Lua header.
*/
#ifndef PAR_SLOT_H
#define PAR_SLOT_H

#include <stdint.h>

#include "sys.h"

/* Padded to a cache line, so that two workers never write the same line.
** The worker writes, the parent reads.  'cur' is the item it started last
** (SLOT_SETUP until the worker has set itself up, SLOT_INIT while it runs
** opts.init, 0 before its first item).  With timeouts, 't0' is when 'cur'
** started (sys_monons) and 0 while no item runs; it doubles as a sequence
** lock: the parent trusts 'cur' only if 't0' read the same around it. */
typedef struct Slot {
  int64_t cur;
  int64_t t0;
  char pad[64 - 2 * sizeof(int64_t)];
} Slot;

#define SLOT_SETUP    (-2)
#define SLOT_INIT     (-1)

/* The worker's stage before its items: SLOT_SETUP, SLOT_INIT or 0. */
static inline void slot_stage (Slot *s, int64_t stage) {
  __atomic_store_n(&s->cur, stage, __ATOMIC_SEQ_CST);
}

/* What the worker last set: a stage or an item. */
static inline int64_t slot_cur (Slot *s) {
  return __atomic_load_n(&s->cur, __ATOMIC_SEQ_CST);
}

static inline void slot_start (Slot *s, int64_t i, int timed) {
  if (!timed) {
    __atomic_store_n(&s->cur, i, __ATOMIC_RELAXED);
    return;
  }
  __atomic_store_n(&s->t0, 0, __ATOMIC_SEQ_CST);
  __atomic_store_n(&s->cur, i, __ATOMIC_SEQ_CST);
  __atomic_store_n(&s->t0, sys_monons(), __ATOMIC_SEQ_CST);
}

static inline void slot_stop (Slot *s) {
  __atomic_store_n(&s->t0, 0, __ATOMIC_SEQ_CST);
}

/* The item a worker is running and since when; 0 if none or unsure. */
static inline int64_t slot_running (Slot *s, int64_t *t0) {
  int64_t t1 = __atomic_load_n(&s->t0, __ATOMIC_SEQ_CST);
  int64_t i = __atomic_load_n(&s->cur, __ATOMIC_SEQ_CST);
  if (t1 == 0 || __atomic_load_n(&s->t0, __ATOMIC_SEQ_CST) != t1) return 0;
  *t0 = t1;
  return i;
}

#endif
