/*
** lines_fuzz.c: libFuzzer target for core.lines' record scanner (src/lines.c).
**
** The first byte picks the separator (its low bit: NUL or newline) and the
** size of the pieces the rest is fed in, as read(2) would deliver it.  The
** records taken after each piece, then at the end of input, joined again
** with the separator (and one after the last, when the input ended with
** one) must give back the input exactly; no record may hold a separator.
**
**   clang -g -O1 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -I/usr/include/lua5.4 \
**     fuzz/lines_fuzz.c src/lines.c -llua5.4 -o fuzz/lines_fuzz
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/lines.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void check (int ok, const char *what) {
  if (!ok) {
    fprintf(stderr, "lines_fuzz: %s\n", what);
    abort();
  }
}

/* Take every whole record of b, appending it and its separator to out. */
static size_t take (LineBuf *b, char sep, int eof, char *out, size_t n) {
  const char *rec;
  size_t len;
  while (lines_next(b, sep, eof, &rec, &len)) {
    check(memchr(rec, sep, len) == NULL, "a record holds its separator");
    memcpy(out + n, rec, len);
    n += len;
    out[n++] = sep;
  }
  return n;
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size) {
  LineBuf b;
  char sep, *out;
  size_t piece, i, n = 0;
  if (size < 1) return 0;
  sep = (data[0] & 1) ? '\n' : '\0';
  piece = (size_t)(data[0] >> 1) + 1;
  data++, size--;
  memset(&b, 0, sizeof b);
  out = (char *)malloc(size + 1);
  check(out != NULL, "malloc");
  for (i = 0; i < size; i += piece) {
    size_t k = size - i < piece ? size - i : piece;
    char *dst = lines_reserve(&b, k);
    check(dst != NULL, "reserve");
    memcpy(dst, data + i, k);
    lines_commit(&b, k);
    n = take(&b, sep, 0, out, n);
  }
  n = take(&b, sep, 1, out, n);
  /* the last record had no separator of its own: drop the one take added */
  if (size > 0 && (char)data[size - 1] != sep) n--;
  check(n == size && memcmp(out, data, size) == 0, "records do not give back the input");
  check(b.len == 0, "bytes left over");
  lines_free(&b);
  free(out);
  return 0;
}
