/*
** arena_fuzz.c: libFuzzer target for a par.map worker's allocator
** (src/arena.c).
**
** Each input is a program of operations on up to 64 live blocks, run as
** Lua would call a lua_Alloc: allocate, free, grow, shrink, and free a
** block the arena did not make (a block of the caller's heap, which the
** arena must leave alone).  Every block is filled with a pattern of its
** own: after each operation the first and last bytes of every live block
** must still hold it, and all of a block's bytes when it is freed or
** moved: a block handed out twice, or one overlapping a free list's
** bookkeeping or the bump region, breaks some pattern.  Blocks must be
** 16-byte aligned, a shrink must not move a block, and the count the
** budget reads must never wrap below zero.  Any broken promise aborts.
**
**   clang -g -O1 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
**     fuzz/arena_fuzz.c src/arena.c -o build/fuzz/arena_fuzz
**   build/fuzz/arena_fuzz -max_total_time=60 NEWDIR fuzz/arena_corpus   (or: make fuzz)
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/arena.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

#define SLOTS 64

typedef struct Block {
  unsigned char *p;      /* NULL: an empty slot */
  size_t size;           /* as Lua would know it */
  unsigned char seed;
  int foreign;           /* made by malloc, not by the arena */
} Block;

static void check (int ok, const char *what) {
  if (!ok) {
    fprintf(stderr, "arena_fuzz: %s\n", what);
    abort();
  }
}

static void fill (Block *b) {
  size_t i;
  for (i = 0; i < b->size; i++) b->p[i] = (unsigned char)(b->seed + i * 7);
}

static void verify_range (const Block *b, size_t from, size_t to) {
  size_t i;
  for (i = from; i < to && i < b->size; i++)
    check(b->p[i] == (unsigned char)(b->seed + i * 7),
          "a live block lost its contents");
}

static void verify (const Block *b, size_t n) {
  verify_range(b, 0, n);
}

/* The ends of a block: an overlap that does not hide inside the block
** shows there; one that does shows when the block is freed or moved. */
static void verify_ends (const Block *b) {
  verify_range(b, 0, 64);
  verify_range(b, b->size > 64 ? b->size - 64 : 0, b->size);
}

/* Sizes: mostly small, some across the 1 KiB class boundary, a few big
** enough to split and to span regions' ends. */
static size_t pick_size (unsigned v, unsigned kind) {
  switch (kind % 4) {
    case 0: return 1 + v % 64;
    case 1: return 1 + v % 2048;
    case 2: return 1 + v * 7 % 40000;
    default: return 1 + (size_t)v * 613 % (3u << 20);
  }
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size) {
  Arena a;
  Block blocks[SLOTS];
  unsigned char seed = 1;
  size_t k, i;
  memset(&a, 0, sizeof a);
  memset(blocks, 0, sizeof blocks);
  for (k = 0; k + 4 <= size && k < 4 * 2000; k += 4) {
    unsigned op = data[k], v = (unsigned)data[k + 2] | (unsigned)data[k + 3] << 8;
    Block *b = &blocks[data[k + 1] % SLOTS];
    size_t n = pick_size(v, op >> 3);
    unsigned char *q;
    switch (op % 5) {
      case 0:                                   /* allocate */
      case 1:
        if (b->p != NULL) break;
        b->p = arena_alloc(&a, NULL, 4, n);     /* osize: an object type */
        check(b->p != NULL, "allocation failed");
        check(((uintptr_t)b->p & 15) == 0, "block not 16-byte aligned");
        b->size = n;
        b->seed = seed++;
        b->foreign = 0;
        fill(b);
        break;
      case 2:                                   /* free */
        if (b->p == NULL) break;
        verify(b, b->size);
        check(arena_alloc(&a, b->p, b->size, 0) == NULL, "free returned a block");
        if (b->foreign) free(b->p);
        b->p = NULL;
        break;
      case 3:                                   /* grow or shrink */
        if (b->p == NULL) break;
        q = arena_alloc(&a, b->p, b->size, n);
        check(q != NULL, "reallocation failed");
        check(n > b->size || q == b->p, "a shrink moved the block");
        check(((uintptr_t)q & 15) == 0, "block not 16-byte aligned");
        if (b->foreign && q != b->p) {          /* the arena copied it out */
          free(b->p);
          b->foreign = 0;
        }
        b->p = q;
        verify(b, n < b->size ? n : b->size);
        b->size = n;
        fill(b);
        break;
      default:                                  /* a block of the caller's */
        if (b->p != NULL) break;
        b->p = malloc(n);
        check(b->p != NULL, "malloc failed");
        b->size = n;
        b->seed = seed++;
        b->foreign = 1;
        fill(b);
        break;
    }
    check(a.used < (size_t)1 << 48, "the budget's count wrapped");
    for (i = 0; i < SLOTS; i++)
      if (blocks[i].p != NULL) verify_ends(&blocks[i]);
  }
  for (i = 0; i < SLOTS; i++) {
    if (blocks[i].p != NULL) verify(&blocks[i], blocks[i].size);
    if (blocks[i].foreign) free(blocks[i].p);
  }
  arena_release(&a);
  return 0;
}
