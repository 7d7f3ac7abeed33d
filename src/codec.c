/*
** codec.c: par's value encoder and decoder (see codec.h).
**
** One tag byte per value:
**   0x00 nil   0x01 false   0x02 true
**   0x03 integer: zig-zag varint       0x04 float: 8 bytes, little-endian
**   0x05 string: varint length, bytes
**   0x06 table: varint narr, varint nhash, the values of keys 1..narr,
**        then nhash key/value pairs
**   0x07 back-reference: varint id of a table (or function) already
**        begun; ids number 0x06 and 0x08 tags in the order they appear,
**        from 0
**   0x40+n string of n bytes (n < 64), bytes follow
**   0x80+n integer n (0 <= n < 128)
** Varints are LEB128: 7 bits a byte, low group first, at most 10 bytes.
** The two short forms make the typical small result a byte or a few.
**
** ship.c's extension (ship.h, CodecExt below) adds four tags, which plain
** codec_decode refuses as bad tags:
**   0x08 function: varint length, its bytecode (lua_dump, not stripped),
**        varint nups, then each upvalue: a value, or a 0x0b join.  It takes
**        the next id, as a table does, before its upvalues: cycles
**   0x09 the globals table (of the decoding state: LUA_RIDX_GLOBALS);
**        sent for the globals table and for any upvalue named _ENV
**   0x0a path: varint length, module name, varint length, field name
**        (empty: the module itself): package.loaded[module][field], the
**        module required if need be
**   0x0b join, only in place of an upvalue: varint id of a function,
**        varint n: this upvalue is that function's n-th (the sender's two
**        closures shared the variable: lua_upvalueid, lua_upvaluejoin)
** Paths and the globals tag take no id.
*/
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "par.h"
#include "codec.h"

enum {
  T_NIL, T_FALSE, T_TRUE, T_INT, T_FLOAT, T_STRING, T_TABLE, T_REF,
  T_FUNC, T_GLOBALS, T_PATH, T_JOIN,    /* ship's: see above */
  T_SHORTSTR = 0x40,            /* up to 0x7f */
  T_SMALLINT = 0x80             /* up to 0xff */
};

#define SHORTSTR_MAX 0x3f
#define SMALLINT_MAX 0x7f
#define VARINT_MAX 10           /* bytes of a 64-bit varint */

#define STR(x) #x
#define XSTR(x) STR(x)


static unsigned char *put_varint (unsigned char *q, uint64_t u) {
  while (u >= 0x80) {
    *q++ = (unsigned char)(u | 0x80);
    u >>= 7;
  }
  *q++ = (unsigned char)u;
  return q;
}

/* Zig-zag keeps small negative numbers short: 0,-1,1,-2... -> 0,1,2,3... */
static uint64_t zigzag (lua_Integer i) {
  uint64_t u = (uint64_t)i;
  return (u << 1) ^ (i < 0 ? ~(uint64_t)0 : 0);
}

static lua_Integer unzigzag (uint64_t u) {
  uint64_t v = (u >> 1) ^ (~(u & 1) + 1);    /* no signed overflow */
  lua_Integer i;
  memcpy(&i, &v, sizeof i);
  return i;
}


/*
** {======================================================
** Encoder
** =======================================================
*/

/* How the value being encoded hangs from the table 'depth' levels up;
** kept so that an error can name its path, read off the keys that are
** still on the stack at that moment. */
enum { STEP_INDEX, STEP_KEY, STEP_INKEY, STEP_UPVAL };

typedef struct Step {
  int kind;             /* value of t[i], value of t[key], the key, or an
                        ** upvalue of a function */
  int key;              /* stack index of the key, for STEP_KEY/INKEY */
  lua_Integer i;        /* array index, for STEP_INDEX */
  const char *name;     /* the upvalue's, for STEP_UPVAL */
} Step;

/* An upvalue met (lua_upvalueid), as the id of its function * 256 + its
** number (a function has at most 255). */
typedef struct Cell {
  void *id;
  lua_Integer at;
} Cell;

#define CELLS 16        /* the first ones: no table for a plain closure */

typedef struct Enc {
  lua_State *L;
  Buf *b;
  const char *root;
  char *err;
  size_t errsz;
  int rootidx;          /* stack index of the value being sent */
  int seen;             /* stack index of the table -> id map (or nil) */
  int hasseen;          /* whether that map exists yet */
  lua_Integer nobjs;    /* ids given: tables and functions */
  const CodecExt *x;    /* ship's extension, or NULL: codec alone */
  int paths;            /* ship: stack index of the path map */
  int fresh;            /* ship: whether x->fresh has run */
  int restart;          /* ship: the path map changed, start again */
  int ncells;           /* ship: upvalues met; after CELLS, in e->seen */
  Cell cells[CELLS];
  int depth;            /* tables we are inside: path[0..depth) */
  Step path[CODEC_MAXDEPTH];
} Enc;

#define PATHMAX 160     /* longer paths lose their middle */
#define STEPMAX 48      /* longer keys are cut */

static int is_name (const char *s, size_t len) {
  size_t i;
  if (len == 0 || len > STEPMAX - 2 || !(s[0] == '_' ||
      (s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
    return 0;
  for (i = 1; i < len; i++) {
    char c = s[i];
    if (!(c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9')))
      return 0;
  }
  return 1;
}

/* ["..."], escaped roughly as %q does, cut with "..." to fit STEPMAX. */
static void quote_key (const char *s, size_t len, char *out) {
  size_t i, n = 0;
  out[n++] = '[';
  out[n++] = '"';
  for (i = 0; i < len && n < STEPMAX - 10; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      out[n++] = '\\';
      out[n++] = (char)c;
    }
    else if (c == '\n') {
      out[n++] = '\\';
      out[n++] = 'n';
    }
    else if (c < 32 || c == 127) {   /* \ddd when a digit follows, as %q */
      int digit = i + 1 < len && s[i + 1] >= '0' && s[i + 1] <= '9';
      n += (size_t)snprintf(out + n, 5, digit ? "\\%03d" : "\\%d", c);
    }
    else
      out[n++] = (char)c;
  }
  if (i < len) {
    memcpy(out + n, "...", 3);
    n += 3;
  }
  memcpy(out + n, "\"]", 3);
}

static void render_key (lua_State *L, int k, char *out) {
  size_t len;
  const char *s;
  switch (lua_type(L, k)) {
    case LUA_TSTRING:
      s = lua_tolstring(L, k, &len);
      if (is_name(s, len))
        snprintf(out, STEPMAX, ".%s", s);
      else
        quote_key(s, len, out);
      break;
    case LUA_TNUMBER:
      if (lua_isinteger(L, k))
        snprintf(out, STEPMAX, "[" LUA_INTEGER_FMT "]", lua_tointeger(L, k));
      else
        snprintf(out, STEPMAX, "[%.14g]", (double)lua_tonumber(L, k));
      break;
    case LUA_TBOOLEAN:
      snprintf(out, STEPMAX, "[%s]", lua_toboolean(L, k) ? "true" : "false");
      break;
    default:            /* a table: it has no name */
      snprintf(out, STEPMAX, "[%s]", luaL_typename(L, k));
      break;
  }
}

static size_t render_step (Enc *e, int i, char *out) {
  const Step *s = &e->path[i];
  if (s->kind == STEP_INDEX)
    snprintf(out, STEPMAX, "[" LUA_INTEGER_FMT "]", s->i);
  else if (s->kind == STEP_KEY)
    render_key(e->L, s->key, out);
  else if (s->kind == STEP_UPVAL)
    snprintf(out, STEPMAX, ".%s", s->name);
  else
    snprintf(out, STEPMAX, "{key}");
  return strlen(out);
}

static size_t add_step (Enc *e, int i, char *out, size_t n) {
  char s[STEPMAX];
  size_t len = render_step(e, i, s);
  memcpy(out + n, s, len + 1);
  return n + len;
}

/* 'name', then steps [from, to); if that is too long, its first and last
** steps around a "...". */
static void render_path (Enc *e, const char *name, int from, int to,
                         char *out) {
  char s[STEPMAX];
  size_t n, total = 0, tail = 0;
  int i, head, tailfrom;
  n = (size_t)snprintf(out, STEPMAX, "%s", name);
  if (n >= STEPMAX) n = STEPMAX - 1;
  for (i = from; i < to; i++)
    total += render_step(e, i, s);
  if (n + total <= PATHMAX) {
    for (i = from; i < to; i++)
      n = add_step(e, i, out, n);
    return;
  }
  for (head = from; head < to && n + render_step(e, head, s) <= PATHMAX / 2;
       head++)
    n = add_step(e, head, out, n);
  for (tailfrom = to; tailfrom > head; tailfrom--) {
    size_t len = render_step(e, tailfrom - 1, s);
    if (n + 3 + tail + len > PATHMAX) break;
    tail += len;
  }
  memcpy(out + n, "...", 4);
  n += 3;
  for (i = tailfrom; i < to; i++)
    n = add_step(e, i, out, n);
}

/* ship names the innermost upvalue the value hangs from, if any, and the
** value's path from there: "cannot send upvalue 'cfg' of fn (a userdata
** at cfg.handle)", "cannot send argument #2 (a coroutine)". */
static int enc_fail_ship (Enc *e, const char *what) {
  char fn[PATHMAX + 1], at[PATHMAX + 1], subject[PATHMAX + STEPMAX + 16];
  int u = e->depth;
  while (u > 0 && e->path[u - 1].kind != STEP_UPVAL) u--;
  if (u == 0) {
    snprintf(subject, sizeof subject, "%s", e->root);
    render_path(e, e->root, 0, e->depth, at);
  }
  else {
    render_path(e, e->root, 0, u - 1, fn);
    snprintf(subject, sizeof subject, "upvalue '%s' of %s",
             e->path[u - 1].name, fn);
    render_path(e, e->path[u - 1].name, u, e->depth, at);
  }
  if (u == e->depth)
    snprintf(e->err, e->errsz, "cannot send %s (a %s)", subject, what);
  else
    snprintf(e->err, e->errsz, "cannot send %s (a %s at %s)", subject, what,
             at);
  return -1;
}

static int enc_fail (Enc *e, const char *what) {
  char path[PATHMAX + 1];
  if (e->x != NULL) return enc_fail_ship(e, what);
  render_path(e, e->root, 0, e->depth, path);
  snprintf(e->err, e->errsz, "cannot send a %s (at %s)", what, path);
  return -1;
}

static int enc_nomem (Enc *e) {
  snprintf(e->err, e->errsz, "not enough memory");
  return -1;
}

/* Room for n more bytes; returns where they go, or NULL.  (The test
** before the call: a million small results mostly fit.) */
static unsigned char *enc_room (Enc *e, size_t n) {
  if (e->b->cap - e->b->len < n && buf_reserve(e->b, n) != 0) return NULL;
  return (unsigned char *)e->b->data + e->b->len;
}

static void enc_done (Enc *e, unsigned char *q) {
  e->b->len = (size_t)(q - (unsigned char *)e->b->data);
}

static int enc_byte (Enc *e, int c) {
  unsigned char *q = enc_room(e, 1);
  if (q == NULL) return enc_nomem(e);
  *q++ = (unsigned char)c;
  enc_done(e, q);
  return 0;
}

/* A tag and a varint. */
static int enc_tagged (Enc *e, int tag, uint64_t u) {
  unsigned char *q = enc_room(e, 1 + VARINT_MAX);
  if (q == NULL) return enc_nomem(e);
  *q++ = (unsigned char)tag;
  enc_done(e, put_varint(q, u));
  return 0;
}

static int enc_varint (Enc *e, uint64_t u) {
  unsigned char *q = enc_room(e, VARINT_MAX);
  if (q == NULL) return enc_nomem(e);
  enc_done(e, put_varint(q, u));
  return 0;
}

static int enc_bytes (Enc *e, const char *s, size_t len) {
  unsigned char *q = enc_room(e, len);
  if (q == NULL) return enc_nomem(e);
  memcpy(q, s, len);
  enc_done(e, q + len);
  return 0;
}

static int enc_integer (Enc *e, lua_Integer i) {
  if (i >= 0 && i <= SMALLINT_MAX)
    return enc_byte(e, T_SMALLINT + (int)i);
  return enc_tagged(e, T_INT, zigzag(i));
}

/* The raw bits, so that -0.0, infinities and NaN payloads survive. */
static int enc_float (Enc *e, lua_Number x) {
  double d = (double)x;
  uint64_t u;
  int i;
  unsigned char *q = enc_room(e, 9);
  if (q == NULL) return enc_nomem(e);
  memcpy(&u, &d, sizeof u);
  *q++ = T_FLOAT;
  for (i = 0; i < 8; i++, u >>= 8)
    *q++ = (unsigned char)u;
  enc_done(e, q);
  return 0;
}

static int enc_string (Enc *e, const char *s, size_t len) {
  unsigned char *q = enc_room(e, 1 + VARINT_MAX + len);
  if (q == NULL) return enc_nomem(e);
  if (len <= SHORTSTR_MAX)
    *q++ = (unsigned char)(T_SHORTSTR + len);
  else {
    *q++ = T_STRING;
    q = put_varint(q, len);
  }
  memcpy(q, s, len);
  enc_done(e, q + len);
  return 0;
}

static int enc_header (Enc *e, lua_Integer narr, lua_Integer nhash) {
  unsigned char *q = enc_room(e, 1 + 2 * VARINT_MAX);
  if (q == NULL) return enc_nomem(e);
  *q++ = T_TABLE;
  q = put_varint(q, (uint64_t)narr);
  enc_done(e, put_varint(q, (uint64_t)nhash));
  return 0;
}

static int enc_value (Enc *e, int idx);

/* The longest run t[1], t[2]... of non-nil values. */
static lua_Integer array_prefix (lua_State *L, int t) {
  lua_Integer n = 0;
  while (lua_rawgeti(L, t, n + 1) != LUA_TNIL) {
    lua_pop(L, 1);
    n++;
  }
  lua_pop(L, 1);
  return n;
}

static int in_array (lua_State *L, int k, lua_Integer narr) {
  lua_Integer i;
  if (narr == 0 || !lua_isinteger(L, k)) return 0;
  i = lua_tointeger(L, k);
  return i >= 1 && i <= narr;
}

/* Keys 1..narr go in the array part.  A border (lua_rawlen) alone may
** hide holes, so it is used only when every key up to it is present;
** otherwise the run of present keys from 1. */
static void table_counts (lua_State *L, int t, lua_Integer *narr,
                          lua_Integer *nhash) {
  lua_Integer n = (lua_Integer)lua_rawlen(L, t), inarr = 0, total = 0;
  lua_pushnil(L);
  while (lua_next(L, t)) {
    lua_pop(L, 1);
    total++;
    inarr += in_array(L, -1, n);
  }
  if (inarr != n) n = array_prefix(L, t);
  *narr = n;
  *nhash = total - n;
}

/* The table -> id map, made when a second table turns up: most results
** are scalars or flat tables, and a table costs an allocation. */
static void enc_makeseen (Enc *e) {
  lua_State *L = e->L;
  lua_createtable(L, 0, 4);
  lua_pushvalue(L, e->rootidx);
  lua_pushinteger(L, 0);
  lua_rawset(L, -3);
  lua_replace(L, e->seen);
  e->hasseen = 1;
}

/* Writes a back-reference and returns 1 if 't' (a table or function) was
** seen before; else gives it the next id, in *id, and returns 0. */
static int enc_seen (Enc *e, int t, lua_Integer *id) {
  lua_State *L = e->L;
  if (e->nobjs == 0) {            /* the root: id 0, mapped if need be */
    e->nobjs = 1;
    *id = 0;
    return 0;
  }
  if (!e->hasseen) {
    if (lua_rawequal(L, t, e->rootidx))
      return enc_tagged(e, T_REF, 0) == 0 ? 1 : -1;
    enc_makeseen(e);
  }
  lua_pushvalue(L, t);
  if (lua_rawget(L, e->seen) == LUA_TNUMBER) {
    lua_Integer ref = lua_tointeger(L, -1);
    lua_pop(L, 1);
    return enc_tagged(e, T_REF, (uint64_t)ref) == 0 ? 1 : -1;
  }
  lua_pop(L, 1);
  lua_pushvalue(L, t);
  lua_pushinteger(L, *id = e->nobjs++);
  lua_rawset(L, e->seen);
  return 0;
}

static int enc_array (Enc *e, int t, lua_Integer narr) {
  Step *s = &e->path[e->depth - 1];
  lua_Integer i;
  s->kind = STEP_INDEX;
  for (i = 1; i <= narr; i++) {
    s->i = i;
    lua_rawgeti(e->L, t, i);
    if (enc_value(e, lua_gettop(e->L)) != 0) return -1;
    lua_pop(e->L, 1);
  }
  return 0;
}

static int enc_hash (Enc *e, int t, lua_Integer narr) {
  lua_State *L = e->L;
  Step *s = &e->path[e->depth - 1];
  lua_pushnil(L);
  while (lua_next(L, t)) {        /* key, value */
    int k = lua_gettop(L) - 1;
    if (!in_array(L, k, narr)) {
      s->key = k;
      s->kind = STEP_INKEY;
      if (enc_value(e, k) != 0) return -1;
      s->kind = STEP_KEY;
      if (enc_value(e, k + 1) != 0) return -1;
    }
    lua_pop(L, 1);
  }
  return 0;
}

/* On error the caller's lua_settop drops whatever is left pushed. */
static int enc_table (Enc *e, int t) {
  lua_Integer narr, nhash, id;
  int r;
  luaL_checkstack(e->L, 4, "par.encode");   /* for enc_seen, then a pair */
  r = enc_seen(e, t, &id);
  if (r != 0) return r < 0 ? -1 : 0;
  if (e->depth >= CODEC_MAXDEPTH)
    return enc_fail(e, "table nested deeper than " XSTR(CODEC_MAXDEPTH)
                       " levels");
  table_counts(e->L, t, &narr, &nhash);
  if (enc_header(e, narr, nhash) != 0) return -1;
  e->depth++;
  if (enc_array(e, t, narr) != 0 || enc_hash(e, t, narr) != 0) return -1;
  e->depth--;
  return 0;
}

/* {------ ship's values (e->x set) ------ */

static int count_upvalues (lua_State *L, int f) {
  lua_Debug ar;
  lua_pushvalue(L, f);
  lua_getinfo(L, ">u", &ar);
  return ar.nups;
}

/* Where upvalue 'cell' was met before (id * 256 + n), or -1.  Past the
** first CELLS, upvalue ids go in the seen map as light userdata, which no
** copied value can be. */
static lua_Integer cell_find (Enc *e, void *cell) {
  lua_State *L = e->L;
  lua_Integer at = -1;
  int i, n = e->ncells < CELLS ? e->ncells : CELLS;
  for (i = 0; i < n; i++)
    if (e->cells[i].id == cell) return e->cells[i].at;
  if (e->ncells > CELLS) {
    lua_pushlightuserdata(L, cell);
    if (lua_rawget(L, e->seen) == LUA_TNUMBER) at = lua_tointeger(L, -1);
    lua_pop(L, 1);
  }
  return at;
}

static void cell_add (Enc *e, void *cell, lua_Integer at) {
  lua_State *L = e->L;
  if (e->ncells < CELLS) {
    e->cells[e->ncells].id = cell;
    e->cells[e->ncells].at = at;
  }
  else {
    if (!e->hasseen) enc_makeseen(e);
    lua_pushlightuserdata(L, cell);
    lua_pushinteger(L, at);
    lua_rawset(L, e->seen);
  }
  e->ncells++;
}

/* Writes a join and returns 1 if upvalue i of f (id 'id') is a variable
** met before, as an upvalue of another closure; else notes it and returns
** 0. */
static int enc_cell (Enc *e, int f, int i, lua_Integer id) {
  void *cell = lua_upvalueid(e->L, f, i);
  lua_Integer at = cell_find(e, cell);
  if (at >= 0) {
    if (enc_tagged(e, T_JOIN, (uint64_t)(at >> 8)) != 0 ||
        enc_varint(e, (uint64_t)(at & 0xff)) != 0)
      return -1;
    return 1;
  }
  cell_add(e, cell, id * 256 + i);
  return 0;
}

/* The count, then each upvalue of the Lua function at f, whose id is 'id'.
** An _ENV is the receiver's globals whatever it is here: a sandbox's
** proxy (busted runs specs in one, with __index = _G) copied without its
** metatable would leave the function no globals at all. */
static int enc_upvalues (Enc *e, int f, lua_Integer id) {
  lua_State *L = e->L;
  Step *s;
  int i, n = count_upvalues(L, f), r;
  if (e->depth >= CODEC_MAXDEPTH)
    return enc_fail(e, "function nested deeper than " XSTR(CODEC_MAXDEPTH)
                       " levels");
  if (enc_varint(e, (uint64_t)n) != 0) return -1;
  s = &e->path[e->depth++];
  s->kind = STEP_UPVAL;
  for (i = 1; i <= n; i++) {
    s->name = lua_getupvalue(L, f, i);     /* pushes its value */
    r = enc_cell(e, f, i, id);
    if (r == 0 && strcmp(s->name, "_ENV") == 0)
      r = enc_byte(e, T_GLOBALS);
    else if (r == 0)
      r = enc_value(e, lua_gettop(L));
    if (r < 0) return -1;
    lua_pop(L, 1);
  }
  e->depth--;
  return 0;
}

static int enc_writer (lua_State *L, const void *p, size_t sz, void *ud) {
  (void)L;
  return buf_add((Buf *)ud, p, sz);
}

/* The length goes before the bytecode but is known only after it: dump,
** then move the bytecode up by the length's size. */
static int enc_bytecode (Enc *e, int f) {
  Buf *b = e->b;
  unsigned char v[VARINT_MAX];
  size_t start, len, k;
  if (enc_byte(e, T_FUNC) != 0) return -1;
  start = b->len;
  if (codec_dump(e->L, f, b) != 0) return enc_nomem(e);
  len = b->len - start;
  k = (size_t)(put_varint(v, len) - v);
  if (buf_reserve(b, k) != 0) return enc_nomem(e);
  memmove(b->data + start + k, b->data + start, len);
  memcpy(b->data + start, v, k);
  b->len += k;
  return 0;
}

static int enc_function (Enc *e, int f) {
  lua_Integer id;
  int r;
  luaL_checkstack(e->L, 4, "par.ship");    /* for enc_seen, then enc_cell */
  r = enc_seen(e, f, &id);
  if (r != 0) return r < 0 ? -1 : 0;
  if (enc_bytecode(e, f) != 0) return -1;
  return enc_upvalues(e, f, id);
}

static const char *ship_typename (lua_State *L, int type) {
  switch (type) {
    case LUA_TFUNCTION: return "C function";
    case LUA_TTHREAD: return "coroutine";
    case LUA_TLIGHTUSERDATA: return "light userdata";
    default: return lua_typename(L, type);
  }
}

/* A value in the path map goes as the bytes there: a path, or the globals
** tag. */
static int enc_path (Enc *e, int idx) {
  lua_State *L = e->L;
  lua_pushvalue(L, idx);
  if (lua_rawget(L, e->paths) == LUA_TSTRING) {
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    int r = enc_bytes(e, s, len);
    lua_pop(L, 1);
    return r == 0 ? 1 : -1;
  }
  lua_pop(L, 1);
  return 0;
}

/* A value with a path goes as its path.  Otherwise a table is copied, a
** Lua function sent as bytecode and upvalues, anything else refused.  The
** map may be out of date (ship.c checks it only when asked, since that
** costs a walk of package.loaded): so before the first function or
** userdata of an encoding that it lacks is sent another way, it is made
** current, and if it changed the encoding starts again (enc_run), as a
** table copied so far may now have a path.  Tables alone never ask. */
static int enc_shipped (Enc *e, int idx, int type) {
  int r = enc_path(e, idx);
  if (r != 0) return r < 0 ? -1 : 0;
  if (type == LUA_TTABLE) return enc_table(e, idx);
  if (!e->fresh) {
    e->fresh = 1;
    if (e->x->fresh(e->L, e->paths)) {
      e->restart = 1;
      return -1;
    }
  }
  if (type == LUA_TFUNCTION && !lua_iscfunction(e->L, idx))
    return enc_function(e, idx);
  return enc_fail(e, ship_typename(e->L, type));
}

void codec_pushpath (lua_State *L, const char *mod, size_t modlen,
                     const char *field, size_t fieldlen) {
  luaL_Buffer lb;
  unsigned char v[VARINT_MAX];
  luaL_buffinit(L, &lb);
  luaL_addchar(&lb, (char)(mod == NULL ? T_GLOBALS : T_PATH));
  if (mod != NULL) {
    luaL_addlstring(&lb, (char *)v, (size_t)(put_varint(v, modlen) - v));
    luaL_addlstring(&lb, mod, modlen);
    luaL_addlstring(&lb, (char *)v, (size_t)(put_varint(v, fieldlen) - v));
    luaL_addlstring(&lb, field, fieldlen);
  }
  luaL_pushresult(&lb);
}

/* }------ */

static int enc_typed (Enc *e, int idx, int type) {
  lua_State *L = e->L;
  size_t len;
  const char *s;
  switch (type) {
    case LUA_TNIL: return enc_byte(e, T_NIL);
    case LUA_TBOOLEAN:
      return enc_byte(e, lua_toboolean(L, idx) ? T_TRUE : T_FALSE);
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx)) return enc_integer(e, lua_tointeger(L, idx));
      return enc_float(e, lua_tonumber(L, idx));
    case LUA_TSTRING:
      s = lua_tolstring(L, idx, &len);
      return enc_string(e, s, len);
    default:
      if (e->x != NULL) return enc_shipped(e, idx, type);
      if (type == LUA_TTABLE) return enc_table(e, idx);
      return enc_fail(e, luaL_typename(L, idx));
  }
}

static int enc_value (Enc *e, int idx) {
  return enc_typed(e, idx, lua_type(e->L, idx));
}

static int is_plain (int type) {
  return type == LUA_TNIL || type == LUA_TBOOLEAN || type == LUA_TNUMBER ||
         type == LUA_TSTRING;
}

static void enc_init (Enc *e, lua_State *L, Buf *b, const char *root,
                      char *err, size_t errsz, const CodecExt *x) {
  e->L = L;
  e->b = b;
  e->root = root;
  e->err = err;
  e->errsz = errsz;
  e->rootidx = e->seen = e->hasseen = 0;
  e->nobjs = 0;
  e->x = x;
  e->paths = 0;
  e->fresh = e->restart = 0;
  e->ncells = 0;
  e->depth = 0;                 /* e->path is filled as tables are entered */
}

typedef int (*EncRoot) (Enc *e, int idx);

/* Runs 'enc' on the value at idx with ship's path map (if any) and the
** slot for the seen map pushed, from the start again if the path map
** changed on the way; pops them. */
static int enc_run (Enc *e, int idx, EncRoot enc) {
  lua_State *L = e->L;
  size_t start = e->b->len;
  int top0 = lua_gettop(L), top = top0, r;
  luaL_checkstack(L, 2, "par.encode");
  if (e->x != NULL) {
    e->x->pushpaths(L);
    e->paths = ++top;
  }
  for (;;) {
    lua_pushnil(L);     /* the slot for the seen map */
    e->rootidx = idx;
    e->seen = top + 1;
    r = enc(e, idx);
    if (r == 0 || !e->restart) {
      lua_settop(L, top0);
      return r;
    }
    lua_settop(L, top);
    e->b->len = start;
    e->hasseen = 0;
    e->nobjs = 0;
    e->ncells = 0;
    e->depth = 0;
    e->restart = 0;     /* e->fresh stays set: once only */
  }
}


int codec_encode_ext (lua_State *L, int idx, Buf *b, const char *root,
                      char *err, size_t errsz, const CodecExt *x) {
  Enc e;
  int type = lua_type(L, idx);
  enc_init(&e, L, b, root, err, errsz, x);
  /* par.map sends a million small results: keep their path to a few API
  ** calls (each costs a few ns across the shared-library boundary). */
  if (is_plain(type) || (type != LUA_TTABLE && x == NULL))
    return enc_typed(&e, idx, type);
  return enc_run(&e, lua_absindex(L, idx), enc_value);
}

int codec_encode (lua_State *L, int idx, Buf *b, const char *root,
                  char *err, size_t errsz) {
  return codec_encode_ext(L, idx, b, root, err, errsz, NULL);
}

/* The root function of an upvalue block has id 0, as a root value has. */
static int enc_root_upvalues (Enc *e, int f) {
  e->nobjs = 1;
  return enc_upvalues(e, f, 0);
}

int codec_upvalues (lua_State *L, int f, Buf *b, const char *root,
                    char *err, size_t errsz, const CodecExt *x) {
  Enc e;
  enc_init(&e, L, b, root, err, errsz, x);
  if (lua_type(L, f) != LUA_TFUNCTION || lua_iscfunction(L, f))
    return enc_fail(&e, ship_typename(L, lua_type(L, f)));
  return enc_run(&e, lua_absindex(L, f), enc_root_upvalues);
}

int codec_dump (lua_State *L, int f, Buf *b) {
  int r;
  lua_pushvalue(L, f);  /* lua_dump takes the function at the top */
  r = lua_dump(L, enc_writer, b, 0);
  lua_pop(L, 1);
  return r == 0 ? 0 : ENOMEM;
}

/* }====================================================== */


/*
** {======================================================
** Decoder
** =======================================================
*/

typedef struct Dec {
  lua_State *L;
  const unsigned char *p, *end;
  /* One byte for each value and key that open tables still expect:
  ** those bytes are not free for the current value, so a crafted count
  ** is caught before it is allocated, summed over all open tables.
  ** Invariant: owed <= end - p. */
  size_t owed;
  int depth;
  int list;             /* stack index of the id+1 -> object list, or 0 */
  lua_Integer nobjs;    /* tables and functions begun */
  const CodecExt *x;    /* ship's extension, or NULL */
  char *err;
  size_t errsz;
} Dec;

static int dec_fail (Dec *d, const char *msg) {
  snprintf(d->err, d->errsz, "%s", msg);
  return -1;
}

static size_t dec_avail (Dec *d) {
  return (size_t)(d->end - d->p) - d->owed;
}

static int dec_varint (Dec *d, uint64_t *u) {
  size_t avail = dec_avail(d);
  uint64_t v = 0;
  int shift;
  for (shift = 0; ; shift += 7) {
    unsigned c;
    if (avail-- == 0) return dec_fail(d, "truncated input");
    c = *d->p++;
    if (shift == 63 && c > 1) return dec_fail(d, "bad varint");
    v |= (uint64_t)(c & 0x7f) << shift;
    if (c < 0x80) break;
  }
  *u = v;
  return 0;
}

static int dec_string (Dec *d, uint64_t len) {
  if (len > dec_avail(d)) return dec_fail(d, "truncated input");
  lua_pushlstring(d->L, (const char *)d->p, (size_t)len);
  d->p += len;
  return 0;
}

static int dec_float (Dec *d) {
  uint64_t u = 0;
  double x;
  int i;
  if (dec_avail(d) < 8) return dec_fail(d, "truncated input");
  for (i = 7; i >= 0; i--)
    u = (u << 8) | d->p[i];
  d->p += 8;
  memcpy(&x, &u, sizeof x);
  lua_pushnumber(d->L, (lua_Number)x);
  return 0;
}

static int dec_ref (Dec *d) {
  uint64_t id;
  if (dec_varint(d, &id) != 0) return -1;
  if (id >= (uint64_t)d->nobjs) return dec_fail(d, "bad back-reference");
  lua_rawgeti(d->L, d->list, (lua_Integer)id + 1);
  return 0;
}

static int dec_value (Dec *d);
static int dec_shipped (Dec *d, unsigned tag);

/* Each pending value or key owes a byte (see Dec). */
static int dec_owed (Dec *d) {
  d->owed--;
  return dec_value(d);
}

static int dec_key (Dec *d) {
  lua_State *L = d->L;
  lua_Number x;
  if (dec_owed(d) != 0) return -1;
  if (lua_isnil(L, -1)) return dec_fail(d, "bad key (nil)");
  if (lua_type(L, -1) == LUA_TNUMBER && !lua_isinteger(L, -1)) {
    x = lua_tonumber(L, -1);
    if (x != x) return dec_fail(d, "bad key (NaN)");
  }
  return 0;
}

static int clamp_int (uint64_t n) {
  return n > INT_MAX ? INT_MAX : (int)n;
}

static int dec_fill (Dec *d, int t, uint64_t narr, uint64_t nhash) {
  lua_State *L = d->L;
  uint64_t i;
  for (i = 1; i <= narr; i++) {
    if (dec_owed(d) != 0) return -1;
    lua_rawseti(L, t, (lua_Integer)i);
  }
  for (i = 0; i < nhash; i++) {
    if (dec_key(d) != 0 || dec_owed(d) != 0) return -1;
    lua_rawset(L, t);
  }
  return 0;
}

static int dec_table (Dec *d) {
  lua_State *L = d->L;
  uint64_t narr, nhash;
  size_t avail;
  if (d->depth >= CODEC_MAXDEPTH) return dec_fail(d, "nested too deep");
  if (dec_varint(d, &narr) != 0 || dec_varint(d, &nhash) != 0) return -1;
  avail = dec_avail(d);    /* each value needs a byte, each pair two */
  if (narr > avail || nhash > (avail - narr) / 2)
    return dec_fail(d, "truncated input");
  if (!lua_checkstack(L, 4)) return dec_fail(d, "stack overflow");
  lua_createtable(L, clamp_int(narr), clamp_int(nhash));
  lua_pushvalue(L, -1);
  lua_rawseti(L, d->list, ++d->nobjs);    /* before its contents: cycles */
  d->owed += (size_t)(narr + 2 * nhash);
  d->depth++;
  if (dec_fill(d, lua_gettop(L), narr, nhash) != 0) return -1;
  d->depth--;
  return 0;
}

/* {------ ship's values (d->x set) ------ */

/* A length, then that many bytes, left in place: *s points at them. */
static int dec_bytes (Dec *d, const char **s, size_t *len) {
  uint64_t u;
  if (dec_varint(d, &u) != 0) return -1;
  if (u > dec_avail(d)) return dec_fail(d, "truncated input");
  *s = (const char *)d->p;
  *len = (size_t)u;
  d->p += u;
  return 0;
}

static int dec_path (Dec *d) {
  const char *mod, *field;
  size_t modlen, fieldlen;
  if (dec_bytes(d, &mod, &modlen) != 0 || dec_bytes(d, &field, &fieldlen) != 0)
    return -1;
  return d->x->resolve(d->L, mod, modlen, field, fieldlen, d->err, d->errsz);
}

/* Upvalue i of the function at f becomes upvalue m of function 'id'. */
static int dec_join (Dec *d, int f, int i) {
  lua_State *L = d->L;
  uint64_t id, m;
  int g;
  if (dec_varint(d, &id) != 0 || dec_varint(d, &m) != 0) return -1;
  if (id >= (uint64_t)d->nobjs) return dec_fail(d, "bad join");
  lua_rawgeti(L, d->list, (lua_Integer)id + 1);
  g = lua_gettop(L);
  if (lua_type(L, g) != LUA_TFUNCTION || lua_iscfunction(L, g) || m < 1 ||
      m > 255 || lua_getupvalue(L, g, (int)m) == NULL) {
    lua_pop(L, 1);
    return dec_fail(d, "bad join");
  }
  lua_pop(L, 1);
  lua_upvaluejoin(L, f, i, g, (int)m);
  lua_pop(L, 1);
  return 0;
}

/* The count, then each upvalue of the Lua function at f (each owes a
** byte, as a table's values do). */
static int dec_upvalues (Dec *d, int f) {
  lua_State *L = d->L;
  uint64_t n;
  int i, r;
  if (dec_varint(d, &n) != 0) return -1;
  if (n != (uint64_t)count_upvalues(L, f))
    return dec_fail(d, "bad upvalue count");
  if (n > dec_avail(d)) return dec_fail(d, "truncated input");
  d->owed += (size_t)n;
  for (i = 1; i <= (int)n; i++) {
    d->owed--;                  /* so a byte is there for the peek */
    if (*d->p == T_JOIN) {
      d->p++;
      r = dec_join(d, f, i);
    }
    else if ((r = dec_value(d)) == 0 && lua_setupvalue(L, f, i) == NULL)
      lua_pop(L, 1);            /* not reached: i <= n */
    if (r != 0) return -1;
  }
  return 0;
}

static int dec_function (Dec *d) {
  lua_State *L = d->L;
  const char *s;
  size_t len;
  if (!d->x->funcs) return dec_fail(d, "a function, where none may be");
  if (d->depth >= CODEC_MAXDEPTH) return dec_fail(d, "nested too deep");
  if (dec_bytes(d, &s, &len) != 0) return -1;
  if (!lua_checkstack(L, 4)) return dec_fail(d, "stack overflow");
  if (codec_load(L, s, len, d->err, d->errsz) != 0) return -1;
  lua_pushvalue(L, -1);
  lua_rawseti(L, d->list, ++d->nobjs);    /* before its upvalues: cycles */
  d->depth++;
  if (dec_upvalues(d, lua_gettop(L)) != 0) return -1;
  d->depth--;
  return 0;
}

static int dec_shipped (Dec *d, unsigned tag) {
  switch (tag) {
    case T_GLOBALS:
      lua_rawgeti(d->L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
      return 0;
    case T_PATH: return dec_path(d);
    default: return dec_function(d);
  }
}

typedef struct Chunk {
  const char *p;
  size_t n;
} Chunk;

static const char *dec_reader (lua_State *L, void *ud, size_t *size) {
  Chunk *c = (Chunk *)ud;
  (void)L;
  *size = c->n;
  c->n = 0;
  return *size > 0 ? c->p : NULL;
}

int codec_load (lua_State *L, const char *p, size_t n, char *err,
                size_t errsz) {
  Chunk c;
  c.p = p;
  c.n = n;
  if (lua_load(L, dec_reader, &c, "=(par.ship)", "b") != LUA_OK) {
    snprintf(err, errsz, "bad function: %s", lua_tostring(L, -1));
    lua_pop(L, 1);
    return -1;
  }
  return 0;
}

/* }------ */

static int dec_value (Dec *d) {
  lua_State *L = d->L;
  uint64_t u;
  unsigned tag;
  if (dec_avail(d) == 0) return dec_fail(d, "truncated input");
  tag = *d->p++;
  if (tag >= T_SMALLINT) {
    lua_pushinteger(L, (lua_Integer)(tag - T_SMALLINT));
    return 0;
  }
  if (tag >= T_SHORTSTR) return dec_string(d, tag - T_SHORTSTR);
  switch (tag) {
    case T_NIL: lua_pushnil(L); return 0;
    case T_FALSE: lua_pushboolean(L, 0); return 0;
    case T_TRUE: lua_pushboolean(L, 1); return 0;
    case T_INT:
      if (dec_varint(d, &u) != 0) return -1;
      lua_pushinteger(L, unzigzag(u));
      return 0;
    case T_FLOAT: return dec_float(d);
    case T_STRING:
      if (dec_varint(d, &u) != 0) return -1;
      return dec_string(d, u);
    case T_TABLE: return dec_table(d);
    case T_REF: return dec_ref(d);
    default:
      if (d->x != NULL && tag >= T_FUNC && tag <= T_PATH)
        return dec_shipped(d, tag);
      snprintf(d->err, d->errsz, "bad tag 0x%02x", tag);
      return -1;
  }
}

/* Only a table or function can hold tables, so only then is the id list
** needed. */
static int dec_root_list (Dec *d) {
  lua_State *L = d->L;
  int top = lua_gettop(L);
  lua_newtable(L);
  d->list = top + 1;
  if (dec_value(d) != 0) {
    lua_settop(L, top);
    return -1;
  }
  lua_remove(L, d->list);
  return 0;
}

static void dec_init (Dec *d, lua_State *L, const char *p, size_t n,
                      char *err, size_t errsz, const CodecExt *x) {
  d->L = L;
  d->p = (const unsigned char *)p;
  d->end = d->p + n;
  d->owed = 0;
  d->depth = 0;
  d->list = 0;
  d->nobjs = 0;
  d->x = x;
  d->err = err;
  d->errsz = errsz;
}

/* One whole value, from a clean state: d->p is at a value's tag. */
static int dec_root (Dec *d) {
  d->nobjs = 0;
  if (d->p < d->end && (d->p[0] == T_TABLE ||
                        (d->x != NULL && d->p[0] == T_FUNC)))
    return dec_root_list(d);
  return dec_value(d);  /* a scalar is pushed only once it is whole */
}

int codec_decode_ext (lua_State *L, const char *p, size_t n, size_t *used,
                      char *err, size_t errsz, const CodecExt *x) {
  Dec d;
  dec_init(&d, L, p, n, err, errsz, x);
  if (!lua_checkstack(L, 3)) return dec_fail(&d, "stack overflow");
  if (dec_root(&d) != 0) return -1;
  *used = (size_t)((const char *)d.p - p);
  return 0;
}

int codec_decode (lua_State *L, const char *p, size_t n, size_t *used,
                  char *err, size_t errsz) {
  return codec_decode_ext(L, p, n, used, err, errsz, NULL);
}

/* The function at f is id 0, as the root of an encoding is. */
int codec_setupvalues (lua_State *L, int f, const char *p, size_t n,
                       char *err, size_t errsz, const CodecExt *x) {
  Dec d;
  int top = lua_gettop(L);
  f = lua_absindex(L, f);
  dec_init(&d, L, p, n, err, errsz, x);
  if (lua_type(L, f) != LUA_TFUNCTION || lua_iscfunction(L, f))
    return dec_fail(&d, "not a Lua function");
  if (!lua_checkstack(L, 4)) return dec_fail(&d, "stack overflow");
  lua_createtable(L, 1, 0);
  d.list = top + 1;
  lua_pushvalue(L, f);
  lua_rawseti(L, d.list, ++d.nobjs);
  if (dec_upvalues(&d, f) != 0) {
    lua_settop(L, top);
    return -1;
  }
  lua_settop(L, top);
  if (d.p != d.end) return dec_fail(&d, "trailing garbage");
  return 0;
}

lua_Integer codec_decode_into (lua_State *L, int t, lua_Integer i,
                               lua_Integer max, const char *p, size_t n,
                               char *err, size_t errsz) {
  Dec d;
  lua_Integer k;
  dec_init(&d, L, p, n, err, errsz, NULL);
  t = lua_absindex(L, t);
  if (!lua_checkstack(L, 3)) return dec_fail(&d, "stack overflow");
  for (k = 0; d.p < d.end; k++) {
    if (k == max) return dec_fail(&d, "more values than expected");
    if (dec_root(&d) != 0) return -1;
    lua_rawseti(L, t, i + k);
  }
  return k;
}

lua_Integer codec_decode_some (lua_State *L, int t, lua_Integer i,
                               lua_Integer max, const char *p, size_t n,
                               size_t *used, char *err, size_t errsz) {
  Dec d;
  lua_Integer k;
  dec_init(&d, L, p, n, err, errsz, NULL);
  t = lua_absindex(L, t);
  if (!lua_checkstack(L, 3)) return dec_fail(&d, "stack overflow");
  for (k = 0; k < max && d.p < d.end; k++) {
    if (dec_root(&d) != 0) return -1;
    lua_rawseti(L, t, i + k);
  }
  *used = (size_t)((const char *)d.p - p);
  return k;
}

/* }====================================================== */


/*
** {======================================================
** Lua functions
** =======================================================
*/

#define BUF_MT "par.buf"

/* encode's buffer lives in a userdata, so an error (out of memory, stack
** overflow) between filling it and freeing it does not leak it. */
static int buf_gc (lua_State *L) {
  buf_free((Buf *)luaL_checkudata(L, 1, BUF_MT));
  return 0;
}

Buf *codec_newbuf (lua_State *L) {
  Buf *b = (Buf *)lua_newuserdatauv(L, sizeof(Buf), 0);
  b->data = NULL;
  b->len = b->cap = 0;
  b->mapped = 0;
  luaL_setmetatable(L, BUF_MT);
  return b;
}

static int codec_lencode (lua_State *L) {
  const char *root = luaL_optstring(L, 2, "value");
  char err[256];
  Buf *b;
  luaL_checkany(L, 1);
  b = codec_newbuf(L);
  if (codec_encode(L, 1, b, root, err, sizeof err) != 0) {
    buf_free(b);
    return luaL_error(L, "%s", err);
  }
  lua_pushlstring(L, b->data, b->len);
  buf_free(b);
  return 1;
}

static int codec_ldecode (lua_State *L) {
  size_t n, used;
  char err[128];
  const char *s = luaL_checklstring(L, 1, &n);
  if (codec_decode(L, s, n, &used, err, sizeof err) != 0)
    return luaL_error(L, "par.decode: %s", err);
  if (used != n)
    return luaL_error(L, "par.decode: trailing garbage");
  return 1;
}

static const luaL_Reg codec_funcs[] = {
  {"encode", codec_lencode},
  {"decode", codec_ldecode},
  {NULL, NULL}
};

void codec_open (lua_State *L) {
  luaL_newmetatable(L, BUF_MT);
  lua_pushcfunction(L, buf_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  luaL_setfuncs(L, codec_funcs, 0);
}

/* }====================================================== */
