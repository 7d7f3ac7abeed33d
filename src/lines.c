/*
** lines.c: core.lines(file [, sep]), a reader of records (lines, or items
** ending with NUL) from a Lua file handle that never blocks, so that the par
** command can wait on its descriptor together with its jobs.  It reads the
** descriptor with read(2), never through the FILE: stdio's buffer would
** hold bytes poll() cannot see.  Memory is bounded by the longest record
** in flight plus one read.
*/
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "par.h"
#include "lines.h"

#define LINES_MT "par.lines"
#define LINES_CHUNK 65536        /* one read(2); a pipe holds 64 KiB by default */

/* {======================================================================
** The scanner (no Lua)
** ======================================================================= */

char *lines_reserve (LineBuf *b, size_t want) {
  if (b->cap - b->start - b->len >= want) return b->buf + b->start + b->len;
  if (b->start > 0) {            /* slide the unread bytes down first */
    memmove(b->buf, b->buf + b->start, b->len);
    b->start = 0;
  }
  if (b->cap - b->len < want) {
    size_t cap = b->cap ? b->cap : LINES_CHUNK;
    char *p;
    while (cap - b->len < want) {
      if (cap > ((size_t)-1) / 2) return NULL;
      cap *= 2;
    }
    p = (char *)realloc(b->buf, cap);
    if (p == NULL) return NULL;
    b->buf = p;
    b->cap = cap;
  }
  return b->buf + b->len;
}

void lines_commit (LineBuf *b, size_t n) {
  b->len += n;
}

int lines_next (LineBuf *b, char sep, int eof, const char **rec, size_t *len) {
  const char *p, *hit;
  size_t n;
  if (b->len == 0) return 0;     /* and buf may still be NULL */
  p = b->buf + b->start;
  hit = b->len > b->scanned
    ? (const char *)memchr(p + b->scanned, sep, b->len - b->scanned) : NULL;
  if (hit == NULL) {
    b->scanned = b->len;         /* a long record is scanned once, not per read */
    if (!eof) return 0;
    *rec = p;
    *len = b->len;
    b->start = b->len = b->scanned = 0;
    return 1;
  }
  n = (size_t)(hit - p);
  *rec = p;
  *len = n;
  b->start += n + 1;
  b->len -= n + 1;
  b->scanned = 0;
  if (b->len == 0) b->start = 0;
  return 1;
}

void lines_free (LineBuf *b) {
  free(b->buf);
  b->buf = NULL;
  b->start = b->len = b->cap = b->scanned = 0;
}

/* }====================================================================== */

/* {======================================================================
** The reader userdata
** ======================================================================= */

typedef struct Lines {
  LineBuf b;
  int fd;                    /* -1 once closed */
  int eof;
  char sep;
} Lines;

static Lines *checklines (lua_State *L) {
  Lines *r = (Lines *)luaL_checkudata(L, 1, LINES_MT);
  if (r->fd < 0) luaL_error(L, "attempt to use a closed reader");
  return r;
}

static int lines_gc (lua_State *L) {          /* __gc, __close and :close() */
  Lines *r = (Lines *)luaL_checkudata(L, 1, LINES_MT);
  lines_free(&r->b);
  r->fd = -1;                /* the file is the caller's: not closed here */
  return 0;
}

static int pushrecord (lua_State *L, Lines *r) {
  const char *rec;
  size_t len;
  if (!lines_next(&r->b, r->sep, r->eof, &rec, &len)) return 0;
  lua_pushlstring(L, rec, len);
  return 1;
}

static int pusherrno (lua_State *L, const char *what, int en) {
  luaL_pushfail(L);
  lua_pushfstring(L, "%s: %s", what, strerror(en));
  lua_pushinteger(L, en);
  return 3;
}

/* One read(2) if poll says the descriptor has something (data, EOF or an
** error): 1 read, 0 nothing there, -1 an error in errno. */
static int fill (Lines *r) {
  struct pollfd p;
  ssize_t n;
  char *dst;
  p.fd = r->fd;
  p.events = POLLIN;
  p.revents = 0;
  if (poll(&p, 1, 0) < 0) return errno == EINTR ? 0 : -1;
  if (p.revents == 0) return 0;
  dst = lines_reserve(&r->b, LINES_CHUNK);
  if (dst == NULL) { errno = ENOMEM; return -1; }
  n = read(r->fd, dst, LINES_CHUNK);
  if (n < 0) return (errno == EINTR || errno == EAGAIN) ? 0 : -1;
  if (n == 0) r->eof = 1;
  lines_commit(&r->b, (size_t)n);
  return 1;
}

/* reader:read(): the next record, without its separator; nil at the end;
** false when no whole record is there yet (at most one read, never a
** wait); nil, msg, errno on a read error. */
static int lines_read (lua_State *L) {
  Lines *r = checklines(L);
  int got;
  if (pushrecord(L, r)) return 1;
  if (r->eof) { lua_pushnil(L); return 1; }
  got = fill(r);
  if (got < 0) {
    if (errno == ENOMEM) return par_nomem(L);
    return pusherrno(L, "read", errno);
  }
  if (pushrecord(L, r)) return 1;
  if (r->eof) lua_pushnil(L);
  else lua_pushboolean(L, 0);
  return 1;
}

/* reader:fd(): the descriptor to wait on after read() gave false. */
static int lines_fd (lua_State *L) {
  lua_pushinteger(L, checklines(L)->fd);
  return 1;
}

/* reader:wait([secs]): block until the descriptor has something to read,
** at most 'secs' (default: no limit); true when it has, false on the
** timeout or a signal.  For the callers that have nothing else to wait on. */
static int lines_wait (lua_State *L) {
  Lines *r = checklines(L);
  lua_Number secs = luaL_optnumber(L, 2, -1);
  struct pollfd p;
  int ms = secs < 0 ? -1 : secs > 2e6 ? 2000000000 : (int)(secs * 1000);
  p.fd = r->fd;
  p.events = POLLIN;
  p.revents = 0;
  /* what is buffered after a false from read() is a partial record: wait */
  if (r->eof) { lua_pushboolean(L, 1); return 1; }
  if (poll(&p, 1, ms) < 0 && errno != EINTR) return pusherrno(L, "poll", errno);
  lua_pushboolean(L, p.revents != 0);
  return 1;
}

/* core.lines(file [, sep]): a reader of file's records; sep is one byte,
** "\n" by default (the par command's -d and -0 give others).  The reader
** holds the file (user value) so that it stays open while the reader lives,
** and never closes it. */
static int par_lines (lua_State *L) {
  luaL_Stream *s = (luaL_Stream *)luaL_checkudata(L, 1, LUA_FILEHANDLE);
  size_t seplen;
  const char *sep = luaL_optlstring(L, 2, "\n", &seplen);
  Lines *r;
  luaL_argcheck(L, s->closef != NULL, 1, "attempt to use a closed file");
  luaL_argcheck(L, seplen == 1, 2, "separator must be one byte");
  r = (Lines *)lua_newuserdatauv(L, sizeof(Lines), 1);
  memset(&r->b, 0, sizeof r->b);
  r->fd = -1;                /* closed until set up: safe to collect */
  r->eof = 0;
  r->sep = sep[0];
  luaL_setmetatable(L, LINES_MT);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  r->fd = fileno(s->f);
  return 1;
}

static const luaL_Reg lines_meth[] = {
  {"read", lines_read},
  {"fd", lines_fd},
  {"wait", lines_wait},
  {"close", lines_gc},
  {NULL, NULL}
};

void lines_open (lua_State *L) {
  if (luaL_newmetatable(L, LINES_MT)) {
    luaL_newlib(L, lines_meth);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, lines_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, lines_gc);
    lua_setfield(L, -2, "__close");
  }
  lua_pop(L, 1);
  lua_pushcfunction(L, par_lines);
  lua_setfield(L, -2, "lines");
}

/* }====================================================================== */
