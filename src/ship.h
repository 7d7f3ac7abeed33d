/*
** ship.h: values for processes that did not fork from the caller's present
** state (par.pool's workers): codec's values, plus Lua functions (bytecode
** and upvalues), the globals table, and what the caller reaches through
** package.loaded, sent as its path.  The wire format is codec's, extended:
** see the tags at the top of codec.c.
*/
#ifndef PAR_SHIP_H
#define PAR_SHIP_H

#include <stddef.h>
#include <lua.h>

#include "buf.h"

/*
** Encode the value at idx as codec_encode does, and also: a Lua function
** as its bytecode (not stripped) and its upvalues, each encoded so; a
** function or table met twice, or a cycle, as a back-reference; two
** closures that share a variable share it on arrival too; the globals table,
** and any upvalue named _ENV, as a tag ("the receiver's globals"); a value reachable through
** package.loaded (a module, or a field of one: string.format, io.stdout)
** as that path, which wins over copying.  Anything else that cannot be
** copied (a C function or userdata with no path, a coroutine, a light
** userdata) is an error naming it: "cannot send upvalue 'conn' of fn (a
** userdata)", "cannot send upvalue 'cfg' of fn (a userdata at
** cfg.handle)", "cannot send argument #2 (a coroutine)", where 'root'
** ("fn", "argument #2") names the value.  Returns 0, or -1 with the message
** in err.  The stack is left as it was; raises only on memory errors.
*/
int ship_encode (lua_State *L, int idx, Buf *b, const char *root,
                 char *err, size_t errsz);

/*
** Decode one value as codec_decode does, and push it: functions are loaded
** (lua_load, mode "b": the bytes must come from ship_encode) and given
** their upvalues; the globals tag is this state's globals; a path is
** package.loaded[module], or require(module) if absent, then its field.  A
** path that does not resolve is -1 with "cannot resolve 'cjson.encode' in
** the worker: ..." in err.  Needs no collection to run.
*/
int ship_decode (lua_State *L, const char *p, size_t n, size_t *used,
                 char *err, size_t errsz);

/*
** The same without functions, for input that is not trusted (the fuzz
** target): a function is "a function, where none may be".
*/
int ship_decode_nofuncs (lua_State *L, const char *p, size_t n,
                         size_t *used, char *err, size_t errsz);

/*
** A function's bytecode once, its upvalues with every call:
**   ship_dump appends the bare bytecode of the Lua function at idx (a C
**     function: -1, "cannot send fn (a C function)"; check ship_path
**     first); ship_load pushes the function such bytes hold.
**   ship_upvalues appends a block of the upvalues of the Lua function at
**     idx (count, then each as ship_encode sends values), with messages
**     "cannot send upvalue 'conn' of ROOT (a userdata)".
**   ship_setupvalues decodes such a block, p[0..n) exactly, onto the
**     function at idx, loaded from the same bytecode.  On -1, some
**     upvalues may be set already.
*/
int ship_dump (lua_State *L, int idx, Buf *b, char *err, size_t errsz);
int ship_load (lua_State *L, const char *p, size_t n, char *err,
               size_t errsz);
int ship_upvalues (lua_State *L, int idx, Buf *b, const char *root,
                   char *err, size_t errsz);
int ship_setupvalues (lua_State *L, int idx, const char *p, size_t n,
                      char *err, size_t errsz);

/*
** If the value at idx is reachable through package.loaded, push its path
** ("string.format", "_G.print", "par.util") and return 1; else push
** nothing and return 0.  The globals table has no path (it is a tag).
*/
int ship_path (lua_State *L, int idx);

#endif
