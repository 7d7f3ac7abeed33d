/*
** arena.c: the allocator of a par.map worker (see arena.h).
**
** A worker's collector is stopped, so it frees little, and it exits soon.
** glibc's malloc would carve its blocks out of the free chunks scattered
** over the inherited heap, and every small block would copy a whole page
** shared with the caller: the worker would dirty far more than it
** allocates, a fault and a copy per page (bench/map_bench.lua, case e,
** maps items that make garbage beside a big heap).  So the
** worker allocates from regions of fresh memory of its own, which copy
** nothing and ask for huge pages (MADV_HUGEPAGE) so that their page faults
** are few.  Blocks that came from the caller's heap are never freed here:
** that would write to shared pages, and the worker's exit returns all
** memory anyway.
**
** What Lua does free without a collection (the old array of a table that
** grew, the buffer of a string being built) goes on free lists: small
** blocks by exact size, bigger ones by power of two, split when reused.
** Lua passes the size of every block it frees, so blocks need no header.
** The budget counts the memory taken from regions, which is what the
** worker dirties; reused blocks do not count again.
*/
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "arena.h"
#include "sys.h"

/*
** Regions start at one huge page and double up to ARENA_REGION, so that a
** worker's address space grows with what it uses.  Mapped with
** MAP_NORESERVE, a region costs no memory until it is touched, but it does
** count against RLIMIT_AS (ulimit -v): a caller holding most of its limit
** could not start a worker that asked for 64 MiB up front.  When a region
** cannot be had, a smaller one just big enough for the block is tried,
** so that a worker near its limit fails only the allocation that does not
** fit.  Regions are aligned to ARENA_HUGE, as only aligned huge pages can
** back them.
*/
#define ARENA_HUGE    ((size_t)2 << 20)    /* the first region: a huge page */
#define ARENA_REGION  ((size_t)64 << 20)   /* regions grow up to this */
#define ARENA_UNIT    ((size_t)64 << 10)   /* a region for one block, at least */
#define ARENA_SCAN    8              /* blocks looked at in a large list */

static size_t arena_round (size_t n, size_t to) {
  return (n + to - 1) & ~(to - 1);
}

/* 'size' bytes of fresh memory, aligned to ARENA_HUGE if 'align' (a
** mapping ARENA_HUGE longer, trimmed at both ends); NULL if none. */
static char *arena_map (size_t size, int align) {
  size_t pad = align ? ARENA_HUGE : 0, head;
  char *p = (char *)mmap(NULL, size + pad, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return NULL;
  if (!align) return p;
  head = arena_round((uintptr_t)p, ARENA_HUGE) - (uintptr_t)p;
  if (head > 0) munmap(p, head);
  if (pad > head) munmap(p + head + size, pad - head);
  return p + head;
}

static int arena_region (Arena *a, size_t n) {
  size_t want = a->grow < ARENA_HUGE ? ARENA_HUGE : a->grow;
  size_t size = n > want ? arena_round(n, ARENA_HUGE) : want;
  char *p = arena_map(size, 1);
  if (p == NULL) p = arena_map(size, 0);
  if (p == NULL && arena_round(n, ARENA_UNIT) < size)
    p = arena_map(size = arena_round(n, ARENA_UNIT), 0);
  if (p == NULL) return -1;
  sys_hugepages(p, size);
  a->top = p;
  a->end = p + size;
  a->last = NULL;
  a->grow = want < ARENA_REGION ? 2 * want : ARENA_REGION;
  if (a->nregion < ARENA_NREGION) {  /* beyond: blocks are not reused */
    a->region[a->nregion].lo = p;
    a->region[a->nregion++].hi = p + size;
  }
  return 0;
}

static int arena_owns (Arena *a, const char *p) {
  int k;
  for (k = a->nregion - 1; k >= 0; k--)
    if (p >= a->region[k].lo && p < a->region[k].hi) return 1;
  return 0;
}

static int floor_log2 (size_t n) {
  int k = 0;
  while (n >>= 1) k++;
  return k;
}

/* Put a block (size: a multiple of ARENA_ALIGN) on its free list. */
static void arena_put (Arena *a, void *p, size_t size) {
  Free *f = (Free *)p;
  Free **list = size <= ARENA_SMALL ? &a->small[size / ARENA_ALIGN]
                                    : &a->large[floor_log2(size)];
  f->size = size;
  f->next = *list;
  *list = f;
}

/* A free block of at least n bytes (rounded), or NULL.  The list of n's
** own power of two may hold smaller blocks, so a few there are looked at;
** any block of a list above is big enough.  The rest of a block too big
** goes back on a list. */
static void *arena_reuse (Arena *a, size_t n) {
  Free **pf, *f = NULL;
  int k, scan;
  if (n <= ARENA_SMALL) {
    if ((f = a->small[n / ARENA_ALIGN]) != NULL) a->small[n / ARENA_ALIGN] = f->next;
    return f;
  }
  k = floor_log2(n);
  for (pf = &a->large[k], scan = 0; *pf != NULL && scan < ARENA_SCAN;
       pf = &(*pf)->next, scan++)
    if ((*pf)->size >= n) break;
  if (*pf == NULL || (*pf)->size < n) {
    for (pf = NULL, k++; k < ARENA_NLARGE && pf == NULL; k++)
      if (a->large[k] != NULL) pf = &a->large[k];
    if (pf == NULL) return NULL;
  }
  f = *pf;
  *pf = f->next;
  if (f->size - n >= ARENA_ALIGN) arena_put(a, (char *)f + n, f->size - n);
  return f;
}

static void *arena_new (Arena *a, size_t n) {
  void *p;
  n = arena_round(n, ARENA_ALIGN);
  if ((p = arena_reuse(a, n)) != NULL) return p;
  if ((size_t)(a->end - a->top) < n && arena_region(a, n) != 0)
    return NULL;     /* (the old region's end stays untouched: not dirty) */
  a->last = a->top;
  a->top += n;
  a->used += n;
  return a->last;
}

/* The last block gives its room back to the region; other blocks of the
** arena go on the free lists; blocks of the caller's heap stay as they
** are. */
static void arena_free (Arena *a, void *ptr, size_t size) {
  if (ptr == a->last) {
    a->used -= (size_t)(a->top - a->last);
    a->top = a->last;
    a->last = NULL;
  }
  else if (arena_owns(a, (char *)ptr))
    arena_put(a, ptr, arena_round(size, ARENA_ALIGN));
}

/* A block shrinks where it is (Lua's allocator may not fail to shrink);
** the room it no longer needs goes back as a free would.  Every block of
** the arena spans exactly its size rounded up, so the tail is ours. */
static void arena_shrink (Arena *a, char *ptr, size_t osize, size_t nsize) {
  size_t keep = arena_round(nsize, ARENA_ALIGN);
  size_t had = arena_round(osize, ARENA_ALIGN);
  if (ptr == a->last) {
    a->used -= (size_t)(a->top - (ptr + keep));
    a->top = ptr + keep;
  }
  else if (had > keep && arena_owns(a, ptr))
    arena_put(a, ptr + keep, had - keep);
}

void *arena_alloc (void *ud, void *ptr, size_t osize, size_t nsize) {
  Arena *a = (Arena *)ud;
  void *q;
  if (nsize > (size_t)-1 - ARENA_REGION) return NULL;   /* no overflow */
  if (ptr == NULL) return nsize > 0 ? arena_new(a, nsize) : NULL;
  if (nsize == 0) {
    arena_free(a, ptr, osize);
    return NULL;
  }
  if (nsize <= osize) {
    arena_shrink(a, (char *)ptr, osize, nsize);
    return ptr;
  }
  if (ptr == a->last &&
      arena_round(nsize, ARENA_ALIGN) <= (size_t)(a->end - a->last)) {
    char *top = a->last + arena_round(nsize, ARENA_ALIGN);
    a->used += (size_t)(top - a->top);
    a->top = top;
    return ptr;
  }
  q = arena_new(a, nsize);
  if (q == NULL) return NULL;
  memcpy(q, ptr, osize);
  arena_free(a, ptr, osize);
  return q;
}

void arena_release (Arena *a) {
  int k;
  for (k = 0; k < a->nregion; k++)
    munmap(a->region[k].lo, (size_t)(a->region[k].hi - a->region[k].lo));
  memset(a, 0, sizeof *a);
}
