/*
 * scripts.h - the Lua scripts of svc/store/lua/, embedded at build time
 * (lua/lua2c.cmake): each one's exact text and the SHA-1 EVALSHA names it
 * by. No hiredis here: the generated file includes only this.
 */
#ifndef TC_SCRIPTS_H
#define TC_SCRIPTS_H

#include <stddef.h>

typedef struct st_lua {
    const char *name; /* the file's name without .lua */
    const char *sha;  /* 40 hex digits */
    const char *text; /* what Redis runs: shared pieces, script, wrapper */
    size_t len;
} st_lua;

#include "scripts_gen.h" /* st_lua_NAME for each script */

extern const st_lua *const st_lua_all[];
extern const size_t st_lua_count;

/* The script whose SHA-1 is sha (40 hex digits), NULL if none is. */
const st_lua *st_lua_find(const char *sha, size_t len);

#endif
