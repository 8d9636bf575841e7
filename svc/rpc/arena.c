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

/*
 * Return everything. A call that needed several chunks leaves behind one
 * chunk as large as all of them (up to RETAIN_MAX), so the next call of
 * that size allocates nothing: freeing and re-mapping large chunks on every
 * call cost page faults.
 */
#define RETAIN_MAX (16u << 20)

void arena_reset(arena *a)
{
    size_t total = 0, keep_size;
    arena_chunk *c;

    for (c = a->head; c; c = c->next)
        total += c->size;
    if (a->head && !a->head->next) { /* one chunk: keep it as it is */
        a->cur = a->head->data;
        a->end = a->head->data + a->head->size;
        a->used = 0;
        return;
    }
    while (a->head) {
        c = a->head;
        a->head = c->next;
        free(c);
    }
    a->cur = a->end = NULL;
    a->used = 0;
    keep_size = total > RETAIN_MAX ? RETAIN_MAX : total;
    if (keep_size) {
        c = malloc(sizeof(*c) + keep_size);
        if (c) {
            c->size = keep_size;
            c->next = NULL;
            a->head = c;
            a->cur = c->data;
            a->end = c->data + keep_size;
        }
    }
}

void arena_release(arena *a)
{
    while (a->head) {
        arena_chunk *c = a->head;
        a->head = c->next;
        free(c);
    }
    arena_init(a, a->max);
}
