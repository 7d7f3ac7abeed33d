/*
** frame.h: the frame format on par.map's sockets, one format for both
** directions (parent to worker: tasks; worker to parent: results):
**
**   frame = kind (1 byte) .. length (4 bytes LE; 0xffffffff: 8 more) .. body
**
** A reader splits its byte stream into frames with frame_next, which
** checks every length against the bytes it has.  Plain C, no Lua header:
** fuzz/frame_fuzz.c drives the decoder alone.
*/
#ifndef PAR_FRAME_H
#define PAR_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Kinds, parent to worker (upper case): tasks.  A worker that meets a kind
** it does not know exits (a protocol error). */
#define F_RANGE       'R'   /* body: a, b (8 bytes LE each): run items a..b */
#define F_ITEMS       'I'   /* body: a (8 bytes LE), then encoded items (codec.h)
                               that did not exist at the fork (an iterator's):
                               run them as items a, a + 1... */

/* par.pool's tasks (its workers were forked once, so what they run
** travels): bodies begin with 8-byte LE integers, read with frame_get64. */
#define F_DEFINE      'D'   /* id, then 'b' and a function's bytecode, or 's'
                               and a function shipped whole (ship.h: a path) */
#define F_CALL        'C'   /* call id, fn id, 1, upvalues (length, then
                               ship_upvalues's bytes; FRAME_SAME: as the last
                               task's, of the same call), argument count, the
                               arguments (ship_encode): one unit, fn(...) */
#define F_CHUNK       'M'   /* as F_CALL, with the first item's index for the
                               1, and the items (ship_encode) for the
                               arguments: one unit each, fn(item, i) */

/* Kinds, worker to parent (lower case) */
#define F_RESULT      'r'   /* body: encoded results of consecutive items */
#define F_ERROR       'e'   /* body: encoded error value, encoded traceback */
#define F_UNSENT      'u'   /* body: text saying why the result can't travel */
#define F_RETIRE      'q'   /* no body: over budget; the rest of the range is
                               given back and the worker exits */
#define F_INITERR     'i'   /* body: as F_ERROR, for opts.init */
#define F_NOMEM       'm'   /* no body: out of memory where no other frame
                               could be built; the worker exits */
#define F_READY       'k'   /* no body: a par.pool worker ran opts.init */

#define FRAME_SAME    UINT64_MAX

#define FRAME_SHORT   5     /* header: kind, 4-byte length */
#define FRAME_LONG    13    /* header: kind, escape, 8-byte length */
#define FRAME_ESCAPE  0xffffffffu
#define FRAME_RANGE   (FRAME_SHORT + 16)   /* a whole F_RANGE frame */

typedef struct Frame {
  int kind;
  const char *body;
  size_t len;            /* of the body */
  size_t size;           /* of the whole frame: header and body */
} Frame;

/* The header at p[0..avail): its length (FRAME_SHORT or FRAME_LONG) with
** the body's length in *len, or 0 if the header is not all there. */
size_t frame_header (const unsigned char *p, size_t avail, uint64_t *len);

/* The frame at the start of p[0..avail): 1 with *f set if all of it is
** there, else 0 (read more and call again). */
int frame_next (const char *p, size_t avail, Frame *f);

/* Write the header of a frame of 'kind' with a body of 'len' bytes at h
** (room for FRAME_LONG bytes); returns its length. */
size_t frame_puthead (unsigned char *h, int kind, uint64_t len);

/* Building a frame in a buffer: frame_begin leaves room for a short
** header and says where the frame starts; append the body; frame_end
** writes the header (moving the body for a long one).  0, or ENOMEM:
** then the caller drops the frame (b->len = at). */
int frame_begin (Buf *b, size_t *at);
int frame_end (Buf *b, size_t at, int kind);

/* A whole frame with body s[0..n) appended to b: 0, or ENOMEM with b as
** it was. */
int frame_add (Buf *b, int kind, const void *s, size_t n);

/* An F_RANGE frame for items a..b, in FRAME_RANGE bytes at out. */
void frame_putrange (unsigned char *out, int64_t a, int64_t b);

/* 8-byte little-endian integers, as in task bodies */
void frame_put64 (unsigned char *p, uint64_t v);
uint64_t frame_get64 (const char *p);

/* The items of an F_RANGE frame: 0, or -1 if its body is not 16 bytes. */
int frame_getrange (const Frame *f, int64_t *a, int64_t *b);

/* Start an F_ITEMS frame for items from 'first' on in b (frame_begin,
** then the index): append the encoded items, then frame_end(b, *at,
** F_ITEMS).  0, or ENOMEM with b as it was. */
int frame_beginitems (Buf *b, size_t *at, int64_t first);

/* The first index of an F_ITEMS frame and its encoded items: 0, or -1 if
** its body is shorter than the index. */
int frame_getitems (const Frame *f, int64_t *first, const char **items,
                    size_t *len);

#endif
