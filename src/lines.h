/*
** lines.h: the record scanner of core.lines (lines.c), plain C so that a
** fuzz target can drive it without Lua: bytes in, whole records out.
*/
#ifndef PAR_LINES_H
#define PAR_LINES_H

#include <stddef.h>

typedef struct LineBuf {
  char *buf;
  size_t start;              /* first unread byte */
  size_t len;                /* unread bytes from start */
  size_t cap;
  size_t scanned;            /* bytes from start known to hold no separator */
} LineBuf;

/* Room for at least 'want' more bytes after the unread ones; returns where
** to write them, or NULL when memory runs out (the buffer is unchanged). */
char *lines_reserve (LineBuf *b, size_t want);

/* 'n' bytes were written where lines_reserve said. */
void lines_commit (LineBuf *b, size_t n);

/* The next whole record (without 'sep') in *rec, *len; returns 0 when no
** whole record is buffered.  'eof': the rest counts as the last record.
** The record stays valid until the next call on b. */
int lines_next (LineBuf *b, char sep, int eof, const char **rec, size_t *len);

void lines_free (LineBuf *b);

#endif
