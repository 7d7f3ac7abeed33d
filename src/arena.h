/*
** arena.h: the allocator of a par.map worker (see arena.c).
** Plain C, no Lua header: arena_alloc has lua_Alloc's signature and
** contract, and fuzz/arena_fuzz.c drives it directly.
*/
#ifndef PAR_ARENA_H
#define PAR_ARENA_H

#include <stddef.h>

#define ARENA_ALIGN   ((size_t)16)
#define ARENA_SMALL   1024           /* exact free lists up to this size */
#define ARENA_NSMALL  (ARENA_SMALL / ARENA_ALIGN)
#define ARENA_NLARGE  64             /* free lists of [2^k, 2^(k+1)) bytes */
#define ARENA_NREGION 64             /* regions whose blocks can be reused */

typedef struct Free {                /* a block on a free list */
  struct Free *next;
  size_t size;
} Free;

typedef struct Arena {
  char *top, *end;       /* the free part of the current region */
  char *last;            /* the block handed out last: it can grow or go */
  size_t used;           /* bytes taken from regions: what the budget counts */
  size_t grow;           /* size of the next region; 0: the first one's */
  int nregion;
  struct { char *lo, *hi; } region[ARENA_NREGION];
  Free *small[ARENA_NSMALL + 1];     /* by size / ARENA_ALIGN */
  Free *large[ARENA_NLARGE];         /* by floor(log2(size)) */
} Arena;

/* A zeroed Arena is an empty one.  'ud' is the Arena. */
void *arena_alloc (void *ud, void *ptr, size_t osize, size_t nsize);

/* Unmap every region (for tests: a worker just exits). */
void arena_release (Arena *a);

#endif
