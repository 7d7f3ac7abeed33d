/*
** buf.c: a growable byte buffer (see buf.h).
*/
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

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
  p = realloc(b->data, cap);
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
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}
