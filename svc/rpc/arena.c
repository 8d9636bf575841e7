/*
 * arena.c - see arena.h.
 */
#include "arena.h"

#include <stdint.h>
#include <stdlib.h>

#define CHUNK_MIN (64 * 1024)

struct arena_chunk {
    arena_chunk *next;
    size_t size;
    _Alignas(16) char data[];
};

void arena_init(arena *a, size_t max)
{
    a->head = NULL;
    a->cur = a->end = NULL;
    a->used = 0;
    a->max = max;
}

void *arena_alloc(arena *a, size_t size)
{
    size_t need = (size + 15) & ~(size_t)15;
    arena_chunk *c;
    char *p;

    if (need < size || a->used + need > a->max)
        return NULL;
    if ((size_t)(a->end - a->cur) < need) {
        size_t sz = need > CHUNK_MIN ? need : CHUNK_MIN;
        c = malloc(sizeof(*c) + sz);
        if (!c)
            return NULL;
        c->size = sz;
        c->next = a->head;
        a->head = c;
        a->cur = c->data;
        a->end = c->data + sz;
    }
    p = a->cur;
    a->cur += need;
    a->used += need;
    return p;
}

void arena_reset(arena *a)
{
    arena_chunk *keep = NULL;

    while (a->head) {
        arena_chunk *c = a->head;
        a->head = c->next;
        if (!a->head && c->size == CHUNK_MIN) {
            keep = c; /* the usual first chunk: reuse it */
        } else {
            free(c);
        }
    }
    a->head = keep;
    if (keep) {
        keep->next = NULL;
        a->cur = keep->data;
        a->end = keep->data + keep->size;
    } else {
        a->cur = a->end = NULL;
    }
    a->used = 0;
}

void arena_release(arena *a)
{
    arena_reset(a);
    free(a->head);
    arena_init(a, a->max);
}
