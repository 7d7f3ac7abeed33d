/*
** buf.h: a growable byte buffer.
** Plain C, no Lua: worker threads use it to collect a command's output,
** and par.map's processes to pass results.
*/
#ifndef PAR_BUF_H
#define PAR_BUF_H

#include <stddef.h>

typedef struct Buf {
  char *data;
  size_t len;
  size_t cap;
  int mapped;           /* bytes in a mapping of its own (buf_mapped) */
} Buf;

#define BUF_INIT {NULL, 0, 0, 0}

/* Keep the bytes of an empty buffer in a private mapping of its own, left
** out of later forks, rather than in the malloc heap (see buf.c). */
void buf_mapped (Buf *b);
int buf_reserve (Buf *b, size_t extra);     /* 0, or ENOMEM */
int buf_add (Buf *b, const void *p, size_t n);
void buf_free (Buf *b);

#endif
