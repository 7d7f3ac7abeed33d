/*
** frame_fuzz.c: libFuzzer target for par.map's frame decoder (src/frame.c).
**
** Each input is a byte stream as a socket would deliver it, whole frames
** and a partial one perhaps at the end.  It is split into frames at once,
** and again fed in pieces to a reader that splits what it has after each
** piece, as pool.c and worker.c read their sockets (the first byte picks
** the size of the pieces).  Both splits must give the same frames and
** leave the same bytes over.  Every frame must lie inside the input; a
** header shorter than the bytes at hand must say so; a short header must
** be the one frame_puthead writes for its kind and length; an F_RANGE
** frame must decode exactly when its body is 16 bytes, and encode again
** to the same body; an F_ITEMS frame exactly when its body holds the
** index, and build again the same.  The frames built again with frame_add
** and with frame_begin/frame_end must split back to the same kinds and
** bodies.
** Any broken promise aborts.
**
**   clang -g -O1 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
**     fuzz/frame_fuzz.c src/frame.c src/buf.c -o fuzz/frame_fuzz
**   fuzz/frame_fuzz -max_total_time=60 NEWDIR fuzz/frame_corpus
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/frame.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

typedef struct Split {
  Frame *f;
  size_t n, cap;
  size_t used;           /* bytes the frames take */
} Split;

static void check (int ok, const char *what) {
  if (!ok) {
    fprintf(stderr, "frame_fuzz: %s\n", what);
    abort();
  }
}

static void split_add (Split *s, const Frame *f) {
  if (s->n == s->cap) {
    s->cap = s->cap ? 2 * s->cap : 16;
    s->f = (Frame *)realloc(s->f, s->cap * sizeof *s->f);
    check(s->f != NULL, "out of memory");
  }
  s->f[s->n++] = *f;
}

/* A header must not claim more than the bytes given, nor disagree with
** itself as more bytes come. */
static void check_prefixes (const unsigned char *p, size_t size) {
  uint64_t len, full = 0;
  size_t avail, hl, fullhl = frame_header(p, size, &full);
  for (avail = 0; avail <= size && avail <= FRAME_LONG; avail++) {
    hl = frame_header(p, avail, &len);
    check(hl <= avail, "header longer than its bytes");
    check(hl == 0 || (hl == fullhl && len == full), "header changed with more bytes");
  }
}

/* An F_ITEMS body is its first index and the items after it: accepted
** exactly when the index is all there, and built again the same. */
static void check_items (const Frame *f) {
  const char *items;
  size_t len;
  int64_t first;
  Buf b = BUF_INIT;
  size_t at;
  Frame g;
  int ok = frame_getitems(f, &first, &items, &len) == 0;
  check(ok == (f->len >= 8), "items body accepted wrongly");
  if (!ok) return;
  check(items == f->body + 8 && len == f->len - 8, "items beside their index");
  check(frame_beginitems(&b, &at, first) == 0 && buf_add(&b, items, len) == 0 &&
        frame_end(&b, at, F_ITEMS) == 0, "frame_beginitems");
  check(frame_next(b.data, b.len, &g) && g.len == f->len &&
        memcmp(g.body, f->body, f->len) == 0, "items do not encode back");
  buf_free(&b);
}

static void check_frame (const char *p, size_t avail, const Frame *f) {
  const unsigned char *h = (const unsigned char *)p;
  unsigned char again[FRAME_LONG];
  size_t hl = f->size - f->len;
  int64_t a, b;
  check(f->size <= avail && f->len <= f->size, "frame beyond its bytes");
  check(f->body == p + hl, "body not after its header");
  check(f->kind == h[0], "kind is not the first byte");
  check(hl == FRAME_SHORT || hl == FRAME_LONG, "bad header length");
  if (hl == FRAME_SHORT)
    check(frame_puthead(again, f->kind, f->len) == FRAME_SHORT &&
          memcmp(again, p, FRAME_SHORT) == 0, "short header does not encode back");
  else
    check(h[1] == 0xff && h[2] == 0xff && h[3] == 0xff && h[4] == 0xff,
          "long header without the escape");
  if (f->kind == F_ITEMS) check_items(f);
  if (f->kind != F_RANGE) return;
  check((frame_getrange(f, &a, &b) == 0) == (f->len == 16), "range body accepted wrongly");
  if (f->len == 16) {
    unsigned char r[FRAME_RANGE];
    frame_putrange(r, a, b);
    check(memcmp(r + FRAME_SHORT, f->body, 16) == 0, "range does not encode back");
  }
}

/* All at once, as a reader holding the whole stream. */
static void split_whole (const char *p, size_t size, Split *s) {
  Frame f;
  while (frame_next(p + s->used, size - s->used, &f)) {
    check_prefixes((const unsigned char *)p + s->used, size - s->used);
    check_frame(p + s->used, size - s->used, &f);
    split_add(s, &f);
    s->used += f.size;
  }
  check_prefixes((const unsigned char *)p + s->used, size - s->used);
}

static int same_frame (const Frame *x, const Frame *y) {
  return x->kind == y->kind && x->len == y->len && x->size == y->size &&
         memcmp(x->body, y->body, x->len) == 0;
}

/* In pieces of 'step' bytes, consuming each frame as soon as it is whole. */
static void split_pieces (const char *p, size_t size, size_t step,
                          const Split *s) {
  Buf in = BUF_INIT;
  size_t off = 0, k = 0;
  Frame f;
  while (off < size) {
    size_t n = size - off < step ? size - off : step, used = 0;
    check(buf_add(&in, p + off, n) == 0, "out of memory");
    off += n;
    while (frame_next(in.data + used, in.len - used, &f)) {
      check(k < s->n && same_frame(&f, &s->f[k]), "pieces split otherwise");
      k++;
      used += f.size;
    }
    memmove(in.data, in.data + used, in.len - used);
    in.len -= used;
  }
  check(k == s->n, "pieces gave fewer frames");
  check(in.len == size - s->used, "pieces left other bytes over");
  buf_free(&in);
}

/* Each frame built again, both ways; then split. */
static void rebuild (const Split *s) {
  Buf b1 = BUF_INIT, b2 = BUF_INIT;
  size_t i, at, off = 0;
  Frame f;
  for (i = 0; i < s->n; i++) {
    check(frame_add(&b1, s->f[i].kind, s->f[i].body, s->f[i].len) == 0, "frame_add");
    check(frame_begin(&b2, &at) == 0 && buf_add(&b2, s->f[i].body, s->f[i].len) == 0 &&
          frame_end(&b2, at, s->f[i].kind) == 0, "frame_begin/frame_end");
  }
  check(b1.len == b2.len && (b1.len == 0 || memcmp(b1.data, b2.data, b1.len) == 0),
        "frame_add and frame_begin/end disagree");
  for (i = 0; i < s->n; i++) {
    check(frame_next(b1.data + off, b1.len - off, &f), "a built frame does not split");
    check(f.kind == s->f[i].kind && f.len == s->f[i].len &&
          memcmp(f.body, s->f[i].body, f.len) == 0, "a built frame splits otherwise");
    off += f.size;
  }
  check(off == b1.len, "built frames leave bytes over");
  buf_free(&b1);
  buf_free(&b2);
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size) {
  Split s = {NULL, 0, 0, 0};
  const char *p = (const char *)data;
  size_t step;
  if (size == 0) return 0;
  step = 1 + data[0] % 32;
  split_whole(p, size, &s);
  split_pieces(p, size, step, &s);
  rebuild(&s);
  free(s.f);
  return 0;
}
