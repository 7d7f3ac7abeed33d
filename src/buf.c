/*
** buf.c: a growable byte buffer (see buf.h).
*/
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "buf.h"
#include "sys.h"

/*
** Mapped buffers are for processes that fork.  After a fork, the first
** write to each page the process held before it faults (and copies the
** page, with a TLB shootdown, while a child still shares it), however
** long ago the fork was (bench/faults.c measures what such a fault costs
** on this machine).  A buffer carved from the malloc heap, whose free chunks were
** all there at the fork, pays that on every page it fills, on every use.
** A mapping made for the buffer is private from the start and is left
** out of later forks (MADV_DONTFORK), which never need it.  It does not
** ask for huge pages: with the kernel's default THP defrag policy, a huge
** page for an madvised region may be compacted for first, a stall that
** grows with the memory around it (the caller's heap), on every buffer.
*/
#define MAP_UNIT  ((size_t)64 << 10)

void buf_mapped (Buf *b) {
  b->mapped = 1;
}

static char *map_grow (Buf *b, size_t cap) {
  char *p;
  if (b->data == NULL)
    p = mmap(NULL, cap, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  else
    p = mremap(b->data, b->cap, cap, MREMAP_MAYMOVE);
  if (p == MAP_FAILED) return NULL;
  sys_nofork(p, cap, 1);               /* advice: failure is harmless */
  return p;
}

/* Make room for 'extra' more bytes, growing by half again each time so that
** appending n bytes in small pieces costs O(n). */
int buf_reserve (Buf *b, size_t extra) {
  size_t need, cap;
  char *p;
  if (extra > (size_t)-1 - b->len) return ENOMEM;
  need = b->len + extra;
  if (need <= b->cap) return 0;
  cap = b->cap < 256 ? 256 : b->cap;
  while (cap < need)
    cap = cap > (size_t)-1 / 3 * 2 ? need : cap + cap / 2;
  if (b->mapped) {
    if (cap > (size_t)-1 - MAP_UNIT) return ENOMEM;
    cap = (cap + MAP_UNIT - 1) & ~(MAP_UNIT - 1);
    p = map_grow(b, cap);
  }
  else p = realloc(b->data, cap);
  if (p == NULL) return ENOMEM;
  b->data = p;
  b->cap = cap;
  return 0;
}

int buf_add (Buf *b, const void *p, size_t n) {
  int e;
  if (n == 0) return 0;
  if ((e = buf_reserve(b, n)) != 0) return e;
  memcpy(b->data + b->len, p, n);
  b->len += n;
  return 0;
}

void buf_free (Buf *b) {
  if (!b->mapped) free(b->data);
  else if (b->data != NULL) munmap(b->data, b->cap);
  b->data = NULL;
  b->len = b->cap = 0;
}
