/*
** opt.h: reading an options table that the Lua layer has already checked
** (par/options.lua), with its messages: par.core can be required directly,
** so it checks again, and a bad value reads the same whichever layer saw
** it first ("bad argument #2 to 'runner' (option 'jobs': must be >= 1,
** got 0)").  The table is at stack index 'idx', which is also its argument
** number.  The values checked are at the stack top, so luaL_check* would
** blame argument #-1: these raise through opt_error instead.
*/
#ifndef PAR_OPT_H
#define PAR_OPT_H

#include <stddef.h>
#include "par.h"

/* Raise "bad argument #idx to 'f' (option 'k': msg)". */
int opt_error (lua_State *L, int idx, const char *k, const char *msg);

/* The value at i as a message shows a bad one (util.shown): a string in
** quotes with NUL bytes as \0 (a message stops at a NUL), else its type. */
const char *opt_shown (lua_State *L, int i);

/* Push opts[k], which must be nil or of type t; returns its type. */
int opt_field (lua_State *L, int idx, const char *k, int t);

/* A finite number >= 0, or > 0 if 'positive'; 'def' if nil. */
double opt_num (lua_State *L, int idx, const char *k, double def, int positive);

/* An integer >= min (a float with an integer value counts), clamped to
** 'max'; 'def' if nil. */
lua_Integer opt_int (lua_State *L, int idx, const char *k, lua_Integer def,
                     lua_Integer min, lua_Integer max);

/* A boolean; 'def' if nil. */
int opt_flag (lua_State *L, int idx, const char *k, int def);

/* A malloc'd copy of opts[k], or NULL if nil; 'text' refuses NUL bytes. */
char *opt_str (lua_State *L, int idx, const char *k, size_t *len, int text);

/* The index in 'words' (NULL-terminated) of opts[k]; 'def' if nil. */
int opt_word (lua_State *L, int idx, const char *k, const char *const words[],
              int def);

/* Push opts[k], which must be nil or a function. */
void opt_func (lua_State *L, int idx, const char *k);

#endif
