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

#endif
