/*
** codec.h: par's value encoder and decoder (par.map results travel with it).
** The decoder treats its input as untrusted.
*/
#ifndef PAR_CODEC_H
#define PAR_CODEC_H

#include <stddef.h>
#include <lua.h>

#include "buf.h"

#define CODEC_MAXDEPTH 200      /* tables nested deeper cannot be sent */

/*
** Append the encoding of the value at stack index 'idx' to 'b'.  Returns 0,
** or -1 with a message in 'err' such as "cannot send a function (at
** result.handler)", where 'root' ("result") names the value in paths.
** The Lua stack is left as it was.  May raise only on memory errors.
*/
int codec_encode (lua_State *L, int idx, Buf *b, const char *root,
                  char *err, size_t errsz);

/*
** Decode one value from p[0..n) and push it.  Returns 0 and sets *used to
** the bytes consumed, or returns -1, pushes nothing and puts a message in
** 'err' ("truncated input", "bad tag 0x..", "bad back-reference"...).
*/
int codec_decode (lua_State *L, const char *p, size_t n, size_t *used,
                  char *err, size_t errsz);

/*
** Decode the values that fill p[0..n), at most 'max' of them, into
** t[i], t[i + 1]... of the table at stack index 't', without pushing
** them: par.map's results arrive so, a million in a few frames.  Returns
** how many were stored, or -1 with a message in 'err' (then some slots
** may be set already).
*/
lua_Integer codec_decode_into (lua_State *L, int t, lua_Integer i,
                               lua_Integer max, const char *p, size_t n,
                               char *err, size_t errsz);

/*
** As codec_decode_into, but stopping after 'max' values with more left:
** *used says how many bytes the stored ones took.
*/
lua_Integer codec_decode_some (lua_State *L, int t, lua_Integer i,
                               lua_Integer max, const char *p, size_t n,
                               size_t *used, char *err, size_t errsz);

/*
** {======================================================
** The same encoder and decoder, extended by ship.c (ship.h): functions,
** paths into package.loaded and the globals table (tags 0x08..0x0b in
** codec.c).  codec_encode and codec_decode are these with x == NULL.
** =======================================================
*/

typedef struct CodecExt {
  /* Encoder: push the path map, value -> the bytes to send in its place
  ** (a path, or the globals tag), which ship.c builds.  Called once an
  ** encoding, when it meets a value that is not nil, boolean, number or
  ** string. */
  void (*pushpaths) (lua_State *L);
  /* Encoder: make the map at stack index 'paths' current (replacing it
  ** there); 1 if it changed, and then the encoding starts again, since a
  ** table copied so far may now have a path. */
  int (*fresh) (lua_State *L, int paths);
  /* Decoder: push package.loaded[mod][field] (field empty: the module), or
  ** return -1 with a message in err. */
  int (*resolve) (lua_State *L, const char *mod, size_t modlen,
                  const char *field, size_t fieldlen, char *err,
                  size_t errsz);
  /* Decoder: whether functions (bytecode, for lua_load) are accepted; 0
  ** for input that is not trusted. */
  int funcs;
} CodecExt;

int codec_encode_ext (lua_State *L, int idx, Buf *b, const char *root,
                      char *err, size_t errsz, const CodecExt *x);
int codec_decode_ext (lua_State *L, const char *p, size_t n, size_t *used,
                      char *err, size_t errsz, const CodecExt *x);

/* The upvalues of the Lua function at f: varint count, then each as a
** function's are (a value or a join); f itself has id 0, so a function
** that refers to itself is a back-reference.  Messages say "upvalue 'x' of
** ROOT". */
int codec_upvalues (lua_State *L, int f, Buf *b, const char *root,
                    char *err, size_t errsz, const CodecExt *x);

/* Decode such a block, p[0..n) exactly, onto the Lua function at f. */
int codec_setupvalues (lua_State *L, int f, const char *p, size_t n,
                       char *err, size_t errsz, const CodecExt *x);

/* Append the bytecode of the Lua function at f (not stripped): 0 or
** ENOMEM.  codec_load pushes the function that p[0..n) holds (mode "b"),
** or returns -1 with a message. */
int codec_dump (lua_State *L, int f, Buf *b);
int codec_load (lua_State *L, const char *p, size_t n, char *err,
                size_t errsz);

/* Push the bytes codec sends for package.loaded[mod][field] (fieldlen 0:
** the module itself), or with mod NULL, for the globals table: ship.c's
** path map holds them. */
void codec_pushpath (lua_State *L, const char *mod, size_t modlen,
                     const char *field, size_t fieldlen);

/* A Buf in a userdata that frees it when collected: nothing leaks if a
** memory error raises between filling and freeing it. */
Buf *codec_newbuf (lua_State *L);

/* }====================================================== */

#endif
