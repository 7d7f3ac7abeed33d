/*
** codec.c: par's value encoder and decoder (see codec.h).
**
** One tag byte per value:
**   0x00 nil   0x01 false   0x02 true
**   0x03 integer: zig-zag varint       0x04 float: 8 bytes, little-endian
**   0x05 string: varint length, bytes
**   0x06 table: varint narr, varint nhash, the values of keys 1..narr,
**        then nhash key/value pairs
**   0x07 back-reference: varint id of a table already begun; ids number
**        0x06 tags in the order they appear, from 0
**   0x40+n string of n bytes (n < 64), bytes follow
**   0x80+n integer n (0 <= n < 128)
** Varints are LEB128: 7 bits a byte, low group first, at most 10 bytes.
** The two short forms make the typical small result a byte or a few.
*/
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "par.h"
#include "codec.h"

enum {
  T_NIL, T_FALSE, T_TRUE, T_INT, T_FLOAT, T_STRING, T_TABLE, T_REF,
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
enum { STEP_INDEX, STEP_KEY, STEP_INKEY };

typedef struct Step {
  int kind;             /* value of t[i], value of t[key], or the key */
  int key;              /* stack index of the key, for STEP_KEY/INKEY */
  lua_Integer i;        /* array index, for STEP_INDEX */
} Step;

typedef struct Enc {
  lua_State *L;
  Buf *b;
  const char *root;
  char *err;
  size_t errsz;
  int rootidx;          /* stack index of the value being sent */
  int seen;             /* stack index of the table -> id map (or nil) */
  int hasseen;          /* whether that map exists yet */
  lua_Integer ntables;
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

/* root, then each step; if that is too long, its first and last steps
** around a "...". */
static void render_path (Enc *e, char *out) {
  char s[STEPMAX];
  size_t n, total = 0, tail = 0;
  int i, head, from;
  n = (size_t)snprintf(out, STEPMAX, "%s", e->root);
  if (n >= STEPMAX) n = STEPMAX - 1;
  for (i = 0; i < e->depth; i++)
    total += render_step(e, i, s);
  if (n + total <= PATHMAX) {
    for (i = 0; i < e->depth; i++)
      n = add_step(e, i, out, n);
    return;
  }
  for (head = 0; head < e->depth && n + render_step(e, head, s) <= PATHMAX / 2;
       head++)
    n = add_step(e, head, out, n);
  for (from = e->depth; from > head; from--) {
    size_t len = render_step(e, from - 1, s);
    if (n + 3 + tail + len > PATHMAX) break;
    tail += len;
  }
  memcpy(out + n, "...", 4);
  n += 3;
  for (i = from; i < e->depth; i++)
    n = add_step(e, i, out, n);
}

static int enc_fail (Enc *e, const char *what) {
  char path[PATHMAX + 1];
  render_path(e, path);
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

/* Writes a back-reference and returns 1 if 't' was seen before; else
** gives it the next id and returns 0. */
static int enc_seen (Enc *e, int t) {
  lua_State *L = e->L;
  if (e->ntables == 0) {          /* the root: id 0, mapped if need be */
    e->ntables = 1;
    return 0;
  }
  if (!e->hasseen) {
    if (lua_rawequal(L, t, e->rootidx))
      return enc_tagged(e, T_REF, 0) == 0 ? 1 : -1;
    enc_makeseen(e);
  }
  lua_pushvalue(L, t);
  if (lua_rawget(L, e->seen) == LUA_TNUMBER) {
    lua_Integer id = lua_tointeger(L, -1);
    lua_pop(L, 1);
    return enc_tagged(e, T_REF, (uint64_t)id) == 0 ? 1 : -1;
  }
  lua_pop(L, 1);
  lua_pushvalue(L, t);
  lua_pushinteger(L, e->ntables++);
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
  lua_Integer narr, nhash;
  int r;
  luaL_checkstack(e->L, 4, "par.encode");   /* for enc_seen, then a pair */
  r = enc_seen(e, t);
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
    case LUA_TTABLE: return enc_table(e, idx);
    default: return enc_fail(e, luaL_typename(L, idx));
  }
}

static int enc_value (Enc *e, int idx) {
  return enc_typed(e, idx, lua_type(e->L, idx));
}

int codec_encode (lua_State *L, int idx, Buf *b, const char *root,
                  char *err, size_t errsz) {
  Enc e;                /* e.path is filled as tables are entered */
  int type = lua_type(L, idx), top, r;
  e.L = L;
  e.b = b;
  e.root = root;
  e.err = err;
  e.errsz = errsz;
  e.rootidx = e.seen = e.hasseen = 0;
  e.ntables = 0;
  e.depth = 0;
  /* par.map sends a million small results: keep their path to a few API
  ** calls (each costs a few ns across the shared-library boundary). */
  if (type != LUA_TTABLE)
    return enc_typed(&e, idx, type);
  top = lua_gettop(L);
  idx = lua_absindex(L, idx);
  luaL_checkstack(L, 1, "par.encode");
  lua_pushnil(L);       /* the slot for the seen map */
  e.rootidx = idx;
  e.seen = top + 1;
  r = enc_table(&e, idx);
  lua_settop(L, top);
  return r;
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
  int list;             /* stack index of the id+1 -> table list, or 0 */
  lua_Integer ntables;
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
  if (id >= (uint64_t)d->ntables) return dec_fail(d, "bad back-reference");
  lua_rawgeti(d->L, d->list, (lua_Integer)id + 1);
  return 0;
}

static int dec_value (Dec *d);

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
  lua_rawseti(L, d->list, ++d->ntables);  /* before its contents: cycles */
  d->owed += (size_t)(narr + 2 * nhash);
  d->depth++;
  if (dec_fill(d, lua_gettop(L), narr, nhash) != 0) return -1;
  d->depth--;
  return 0;
}

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
      snprintf(d->err, d->errsz, "bad tag 0x%02x", tag);
      return -1;
  }
}

/* Only a table can hold tables, so only then is the id list needed. */
static int dec_root_table (Dec *d) {
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
                      char *err, size_t errsz) {
  d->L = L;
  d->p = (const unsigned char *)p;
  d->end = d->p + n;
  d->owed = 0;
  d->depth = 0;
  d->list = 0;
  d->ntables = 0;
  d->err = err;
  d->errsz = errsz;
}

/* One whole value, from a clean state: d->p is at a value's tag. */
static int dec_root (Dec *d) {
  d->ntables = 0;
  if (d->p < d->end && d->p[0] == T_TABLE) return dec_root_table(d);
  return dec_value(d);  /* a scalar is pushed only once it is whole */
}

int codec_decode (lua_State *L, const char *p, size_t n, size_t *used,
                  char *err, size_t errsz) {
  Dec d;
  dec_init(&d, L, p, n, err, errsz);
  if (!lua_checkstack(L, 3)) return dec_fail(&d, "stack overflow");
  if (dec_root(&d) != 0) return -1;
  *used = (size_t)((const char *)d.p - p);
  return 0;
}

lua_Integer codec_decode_into (lua_State *L, int t, lua_Integer i,
                               lua_Integer max, const char *p, size_t n,
                               char *err, size_t errsz) {
  Dec d;
  lua_Integer k;
  dec_init(&d, L, p, n, err, errsz);
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
  dec_init(&d, L, p, n, err, errsz);
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

static Buf *newbuf (lua_State *L) {
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
  b = newbuf(L);
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
