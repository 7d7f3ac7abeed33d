/*
** buf.h: a growable byte buffer.
** Plain C, no Lua: worker threads use it to collect a command's output.
*/
#ifndef PAR_BUF_H
#define PAR_BUF_H

#include <stddef.h>

typedef struct Buf {
  char *data;
  size_t len;
  size_t cap;
} Buf;

#define BUF_INIT {NULL, 0, 0}

int buf_reserve (Buf *b, size_t extra);     /* 0, or ENOMEM */
int buf_add (Buf *b, const void *p, size_t n);
void buf_free (Buf *b);

#endif
