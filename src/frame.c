/*
** frame.c: the frame format of par.map's sockets (see frame.h): encoding
** headers, decoding them, and splitting a byte stream into frames.  Its
** input comes from another process: every length is checked against the
** bytes at hand before any is used.  Plain C, no Lua.
*/
#include <errno.h>
#include <string.h>

#include "frame.h"

static void put_le (unsigned char *p, uint64_t v, int n) {
  int k;
  for (k = 0; k < n; k++) p[k] = (unsigned char)(v >> (8 * k));
}

static uint64_t get_le (const unsigned char *p, int n) {
  uint64_t v = 0;
  while (n-- > 0) v = (v << 8) | p[n];
  return v;
}

void frame_put64 (unsigned char *p, uint64_t v) {
  put_le(p, v, 8);
}

uint64_t frame_get64 (const char *p) {
  return get_le((const unsigned char *)p, 8);
}

size_t frame_header (const unsigned char *p, size_t avail, uint64_t *len) {
  if (avail < FRAME_SHORT) return 0;
  *len = get_le(p + 1, 4);
  if (*len != FRAME_ESCAPE) return FRAME_SHORT;
  if (avail < FRAME_LONG) return 0;
  *len = get_le(p + FRAME_SHORT, 8);
  return FRAME_LONG;
}

/* 'len' is compared with what is left after the header, never added to
** anything: a length near 2^64 cannot wrap around. */
int frame_next (const char *p, size_t avail, Frame *f) {
  uint64_t len;
  size_t hl = frame_header((const unsigned char *)p, avail, &len);
  if (hl == 0 || len > (uint64_t)(avail - hl)) return 0;
  f->kind = (unsigned char)p[0];
  f->body = p + hl;
  f->len = (size_t)len;
  f->size = hl + (size_t)len;
  return 1;
}

size_t frame_puthead (unsigned char *h, int kind, uint64_t len) {
  h[0] = (unsigned char)kind;
  if (len < FRAME_ESCAPE) {
    put_le(h + 1, len, 4);
    return FRAME_SHORT;
  }
  put_le(h + 1, FRAME_ESCAPE, 4);
  put_le(h + FRAME_SHORT, len, 8);
  return FRAME_LONG;
}

/* Room for the longest header, so that frame_end seldom has to grow b. */
int frame_begin (Buf *b, size_t *at) {
  if (buf_reserve(b, FRAME_LONG) != 0) return ENOMEM;
  *at = b->len;
  b->len += FRAME_SHORT;
  return 0;
}

/* A body of 4 GiB or more takes the long header: 8 more bytes before it. */
int frame_end (Buf *b, size_t at, int kind) {
  uint64_t len = b->len - at - FRAME_SHORT;
  if (len >= FRAME_ESCAPE) {
    unsigned char *h;
    if (buf_reserve(b, FRAME_LONG - FRAME_SHORT) != 0) return ENOMEM;
    h = (unsigned char *)b->data + at;
    memmove(h + FRAME_LONG, h + FRAME_SHORT, (size_t)len);
    b->len += FRAME_LONG - FRAME_SHORT;
  }
  frame_puthead((unsigned char *)b->data + at, kind, len);
  return 0;
}

/* On failure b is as it was: no half frame is left in the stream. */
int frame_add (Buf *b, int kind, const void *s, size_t n) {
  size_t at;
  if (frame_begin(b, &at) != 0) return ENOMEM;
  if (buf_add(b, s, n) != 0 || frame_end(b, at, kind) != 0) {
    b->len = at;
    return ENOMEM;
  }
  return 0;
}

void frame_putrange (unsigned char *out, int64_t a, int64_t b) {
  frame_puthead(out, F_RANGE, 16);
  put_le(out + FRAME_SHORT, (uint64_t)a, 8);
  put_le(out + FRAME_SHORT + 8, (uint64_t)b, 8);
}

int frame_getrange (const Frame *f, int64_t *a, int64_t *b) {
  const unsigned char *p = (const unsigned char *)f->body;
  if (f->len != 16) return -1;
  *a = (int64_t)get_le(p, 8);
  *b = (int64_t)get_le(p + 8, 8);
  return 0;
}

int frame_beginitems (Buf *b, size_t *at, int64_t first) {
  if (frame_begin(b, at) != 0 || buf_reserve(b, 8) != 0) {
    b->len = *at;
    return ENOMEM;
  }
  put_le((unsigned char *)b->data + b->len, (uint64_t)first, 8);
  b->len += 8;
  return 0;
}

int frame_getitems (const Frame *f, int64_t *first, const char **items,
                    size_t *len) {
  if (f->len < 8) return -1;
  *first = (int64_t)get_le((const unsigned char *)f->body, 8);
  *items = f->body + 8;
  *len = f->len - 8;
  return 0;
}
