/*
 * arena.h - per-call bump allocation: alloc is a pointer bump, free is a
 * no-op, reset returns everything at once (keeping the first chunk for the
 * next call). A hard maximum bounds what one call may take.
 */
#ifndef TC_ARENA_H
#define TC_ARENA_H

#include <stddef.h>

typedef struct arena_chunk arena_chunk;

typedef struct arena {
    arena_chunk *head; /* newest first; the last one is kept on reset */
    char *cur, *end;
    size_t used, max;
} arena;

void arena_init(arena *a, size_t max);
/* 16-byte aligned; NULL when the call would pass its maximum. */
void *arena_alloc(arena *a, size_t size);
void arena_reset(arena *a);
void arena_release(arena *a);

#endif
