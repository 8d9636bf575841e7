/*
 * replica.c - the registry replica: stable records, copy-on-write versions,
 * a radix index of batches, quiescent-state reclamation.
 */
#include "replica.h"

#include <pthread.h>
#include <sys/mman.h>
#include <stdlib.h>
#include <string.h>

#define RADIX_BITS 16
#define RADIX_SIZE (1u << RADIX_BITS)

typedef _Atomic(rep_batch *) batch_slot;

/* String key -> record; open addressing, linear probing, grown at 70 %. */
typedef struct smap {
    const char **keys; /* point into the records */
    void **vals;
    size_t cap, n;
} smap;

typedef struct garbage {
    void *p;
    uint64_t epoch; /* free once every active reader is past this */
    struct garbage *next;
} garbage;

typedef struct reader {
    _Atomic uint64_t epoch; /* 0: not reading */
    char pad[64 - sizeof(uint64_t)];
} reader;

struct rep {
    reader readers[REP_READERS_MAX];
    _Atomic int nreaders;
    _Atomic uint64_t epoch;
    _Atomic uint64_t revision;
    _Atomic size_t nbatches;
    _Atomic(batch_slot *) top[RADIX_SIZE];
    _Atomic int64_t key_since[256];  /* compromised since (unix s), 0 = not */
    _Atomic unsigned key_issuing[3]; /* by kind: the deployment's issuing key */
    _Atomic int64_t key_activated[256];
    _Atomic int key_managed[3]; /* by kind: the deployment has activated a key */
    pthread_mutex_t mu;         /* guards the maps and record allocation */
    smap certs, mfrs, products;
    garbage *trash;            /* writer only */
    struct pool_block *blocks; /* the record pool, writer only */
    char *pool_cur, *pool_end;
};

/*
 * Records that live as long as the replica (batches, index chunks,
 * certificates, manufacturers, products) come from 2 MiB blocks, aligned
 * and marked for transparent huge pages where the kernel allows it: a
 * large registry spans hundreds of MB, and with 4 KiB pages nearly every
 * lookup also missed the TLB. Versions, which are replaced and freed, stay
 * on malloc.
 */
#define POOL_BLOCK (2u << 20)

typedef struct pool_block {
    struct pool_block *next;
    void *mem;
} pool_block;

static void *pool_alloc(rep *r, size_t size)
{
    size = (size + 15) & ~(size_t)15;
    if (size > POOL_BLOCK)
        return NULL;
    if ((size_t)(r->pool_end - r->pool_cur) < size) {
        pool_block *b = malloc(sizeof(*b));
        void *mem = b ? aligned_alloc(POOL_BLOCK, POOL_BLOCK) : NULL;
        if (!mem) {
            free(b);
            return NULL;
        }
        (void)madvise(mem, POOL_BLOCK, MADV_HUGEPAGE); /* a hint; fine if refused */
        b->mem = mem;
        b->next = r->blocks;
        r->blocks = b;
        r->pool_cur = mem;
        r->pool_end = (char *)mem + POOL_BLOCK;
    }
    r->pool_cur += size;
    return r->pool_cur - size;
}

const char *rep_strerror(rep_err err)
{
    switch (err) {
    case REP_OK:
        return "ok";
    case REP_ERR_NOMEM:
        return "out of memory";
    case REP_ERR_ARG:
        return "field out of bounds";
    case REP_ERR_NOTFOUND:
        return "referenced record not found";
    case REP_ERR_EXISTS:
        return "record exists with other contents";
    }
    return "unknown error";
}

/* --- string map --------------------------------------------------------- */

static uint64_t hash_str(const char *s)
{
    uint64_t h = UINT64_C(1469598103934665603);

    while (*s)
        h = (h ^ (unsigned char)*s++) * UINT64_C(1099511628211);
    return h;
}

static void *smap_get(const smap *m, const char *key)
{
    size_t i;

    if (!m->cap)
        return NULL;
    for (i = hash_str(key) & (m->cap - 1); m->keys[i]; i = (i + 1) & (m->cap - 1))
        if (strcmp(m->keys[i], key) == 0)
            return m->vals[i];
    return NULL;
}

static int smap_grow(smap *m)
{
    size_t cap = m->cap ? m->cap * 2 : 64, i, j;
    const char **keys = calloc(cap, sizeof(*keys));
    void **vals = calloc(cap, sizeof(*vals));

    if (!keys || !vals) {
        free(keys);
        free(vals);
        return -1;
    }
    for (i = 0; i < m->cap; i++) {
        if (!m->keys[i])
            continue;
        for (j = hash_str(m->keys[i]) & (cap - 1); keys[j]; j = (j + 1) & (cap - 1))
            ;
        keys[j] = m->keys[i];
        vals[j] = m->vals[i];
    }
    free(m->keys);
    free(m->vals);
    m->keys = keys;
    m->vals = vals;
    m->cap = cap;
    return 0;
}

/* key must live as long as the map (it points into the record). */
static int smap_put(smap *m, const char *key, void *val)
{
    size_t i;

    if ((m->n + 1) * 10 > m->cap * 7 && smap_grow(m) != 0)
        return -1;
    for (i = hash_str(key) & (m->cap - 1); m->keys[i]; i = (i + 1) & (m->cap - 1))
        ;
    m->keys[i] = key;
    m->vals[i] = val;
    m->n++;
    return 0;
}

static void smap_release(smap *m)
{
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof(*m));
}

/* --- lifecycle, readers, reclamation ----------------------------------- */

rep *rep_new(void)
{
    rep *r = calloc(1, sizeof(*r));

    if (!r)
        return NULL;
    if (pthread_mutex_init(&r->mu, NULL) != 0) {
        free(r);
        return NULL;
    }
    atomic_store(&r->epoch, 1);
    return r;
}

static void free_versions(rep *r)
{
    size_t i;

    for (i = 0; i < r->certs.cap; i++)
        if (r->certs.keys[i])
            free((void *)atomic_load(&((rep_cert *)r->certs.vals[i])->v));
    for (i = 0; i < r->mfrs.cap; i++)
        if (r->mfrs.keys[i])
            free((void *)atomic_load(&((rep_mfr *)r->mfrs.vals[i])->v));
    for (i = 0; i < r->products.cap; i++)
        if (r->products.keys[i])
            free((void *)atomic_load(&((rep_product *)r->products.vals[i])->passport));
}

void rep_free(rep *r)
{
    size_t t, i;

    if (!r)
        return;
    while (r->trash) {
        garbage *g = r->trash;
        r->trash = g->next;
        free(g->p);
        free(g);
    }
    for (t = 0; t < RADIX_SIZE; t++) {
        batch_slot *chunk = atomic_load(&r->top[t]);
        if (!chunk)
            continue;
        for (i = 0; i < RADIX_SIZE; i++) {
            rep_batch *b = atomic_load(&chunk[i]);
            if (b)
                free((void *)atomic_load(&b->recalls));
        }
    }
    free_versions(r); /* reached through records in the pool: first */
    while (r->blocks) {
        pool_block *b = r->blocks;
        r->blocks = b->next;
        free(b->mem);
        free(b);
    }
    smap_release(&r->certs);
    smap_release(&r->mfrs);
    smap_release(&r->products);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

int rep_reader_register(rep *r)
{
    int slot = atomic_fetch_add(&r->nreaders, 1);

    return slot < REP_READERS_MAX ? slot : -1;
}

void rep_read_begin(rep *r, int slot)
{
    atomic_store(&r->readers[slot].epoch, atomic_load(&r->epoch));
    /* The epoch must be visible before any pointer this reader loads. */
    atomic_thread_fence(memory_order_seq_cst);
}

void rep_read_end(rep *r, int slot)
{
    atomic_store_explicit(&r->readers[slot].epoch, 0, memory_order_release);
}

/* The writer hands over a replaced version: it may still be read by
 * readers whose epoch is not past the current one. */
static void retire(rep *r, const void *p)
{
    garbage *g;

    if (!p)
        return;
    g = malloc(sizeof(*g));
    if (!g) {
        /* Cannot defer: leak rather than free under a reader. */
        return;
    }
    g->p = (void *)p;
    g->epoch = atomic_fetch_add(&r->epoch, 1);
    g->next = r->trash;
    r->trash = g;
}

void rep_reclaim(rep *r)
{
    uint64_t min = UINT64_MAX;
    garbage **pp = &r->trash;
    int i, n = atomic_load(&r->nreaders);

    if (!r->trash)
        return;
    atomic_thread_fence(memory_order_seq_cst);
    if (n > REP_READERS_MAX)
        n = REP_READERS_MAX;
    for (i = 0; i < n; i++) {
        uint64_t e = atomic_load(&r->readers[i].epoch);
        if (e && e < min)
            min = e;
    }
    while (*pp) {
        garbage *g = *pp;
        if (g->epoch < min) {
            *pp = g->next;
            free(g->p);
            free(g);
        } else {
            pp = &g->next;
        }
    }
}

uint64_t rep_revision(const rep *r)
{
    return atomic_load_explicit(&r->revision, memory_order_acquire);
}

void rep_set_revision(rep *r, uint64_t revision)
{
    atomic_store_explicit(&r->revision, revision, memory_order_release);
}

/* --- deployment keys ----------------------------------------------------- */

rep_err rep_put_key(rep *r, unsigned kid, int kind, int state, int64_t activated, int64_t since)
{
    unsigned k;

    if (kid == 0 || kid > 255 || (kind != REP_KEY_MAC && kind != REP_KEY_ED25519) ||
        state < REP_KEY_ACTIVE || state > REP_KEY_COMPROMISED ||
        (state == REP_KEY_COMPROMISED && since <= 0))
        return REP_ERR_ARG;
    atomic_store_explicit(&r->key_activated[kid], activated, memory_order_relaxed);
    if (activated)
        atomic_store_explicit(&r->key_managed[kind], 1, memory_order_release);
    atomic_store_explicit(&r->key_since[kid], state == REP_KEY_COMPROMISED ? since : 0,
                          memory_order_release);
    k = atomic_load_explicit(&r->key_issuing[kind], memory_order_relaxed);
    if (state == REP_KEY_ACTIVE)
        atomic_store_explicit(&r->key_issuing[kind], kid, memory_order_release);
    else if (k == kid)
        atomic_store_explicit(&r->key_issuing[kind], 0u, memory_order_release);
    return REP_OK;
}

int64_t rep_key_compromised(const rep *r, unsigned kid)
{
    return kid < 256 ? atomic_load_explicit(&r->key_since[kid], memory_order_acquire) : 0;
}

unsigned rep_key_issuing(const rep *r, int kind)
{
    return kind == REP_KEY_MAC || kind == REP_KEY_ED25519
               ? atomic_load_explicit(&r->key_issuing[kind], memory_order_acquire)
               : 0;
}

int rep_key_managed(const rep *r, int kind)
{
    return (kind == REP_KEY_MAC || kind == REP_KEY_ED25519) &&
           atomic_load_explicit(&r->key_managed[kind], memory_order_acquire);
}

int64_t rep_key_activated(const rep *r, unsigned kid)
{
    return kid < 256 ? atomic_load_explicit(&r->key_activated[kid], memory_order_relaxed) : 0;
}

size_t rep_count_batches_key(rep *r, unsigned kid, int64_t since)
{
    size_t n = atomic_load_explicit(&r->nbatches, memory_order_acquire), found = 0;
    uint64_t id, seen = 0;

    /* ids are assigned in sequence from 1: walk until every batch is seen */
    for (id = 1; seen < n && id <= REP_BATCH_ID_MAX; id++) {
        const rep_batch *b = rep_batch_get(r, id);
        if (!b)
            continue;
        seen++;
        if (b->key_id == kid && b->issued >= since)
            found++;
    }
    return found;
}

/* --- batches ------------------------------------------------------------ */

const rep_batch *rep_batch_get(const rep *r, uint64_t id)
{
    batch_slot *chunk;

    if (id > REP_BATCH_ID_MAX)
        return NULL;
    chunk = atomic_load_explicit(&((rep *)r)->top[id >> RADIX_BITS], memory_order_acquire);
    if (!chunk)
        return NULL;
    return atomic_load_explicit(&chunk[id & (RADIX_SIZE - 1)], memory_order_acquire);
}

void rep_batch_prefetch(const rep *r, uint64_t id)
{
    batch_slot *chunk;

    if (id > REP_BATCH_ID_MAX)
        return;
    chunk = atomic_load_explicit(&((rep *)r)->top[id >> RADIX_BITS], memory_order_acquire);
    if (chunk)
        __builtin_prefetch(&chunk[id & (RADIX_SIZE - 1)]);
}

size_t rep_count_batches(const rep *r)
{
    return atomic_load(&((rep *)r)->nbatches);
}

/* --- lookups by key ----------------------------------------------------- */

static void *locked_get(rep *r, const smap *m, const char *key)
{
    void *v;

    pthread_mutex_lock(&r->mu);
    v = smap_get(m, key);
    pthread_mutex_unlock(&r->mu);
    return v;
}

rep_cert *rep_cert_find(rep *r, const char *number)
{
    return locked_get(r, &r->certs, number);
}

rep_mfr *rep_mfr_find(rep *r, const char *credit_code)
{
    return locked_get(r, &r->mfrs, credit_code);
}

rep_product *rep_product_find(rep *r, const char *product_id)
{
    return locked_get(r, &r->products, product_id);
}

/* --- the writer --------------------------------------------------------- */

static int fits(const char *s, size_t max)
{
    return s && strnlen(s, max + 1) <= max;
}

static void copy_str(char *dst, const char *src)
{
    size_t n = strlen(src);

    memcpy(dst, src, n + 1);
}

rep_err rep_put_mfr(rep *r, const char *credit_code, const char *name, int status)
{
    rep_mfr_v *v;
    rep_mfr *m;
    size_t nlen;

    if (!fits(credit_code, REP_CREDIT_MAX) || !*credit_code || !fits(name, REP_NAME_MAX) ||
        (status != REP_MFR_ACTIVE && status != REP_MFR_SUSPENDED))
        return REP_ERR_ARG;
    nlen = strlen(name);
    v = malloc(sizeof(*v) + nlen + 1);
    if (!v)
        return REP_ERR_NOMEM;
    v->status = status;
    memcpy(v->name, name, nlen + 1);
    pthread_mutex_lock(&r->mu);
    m = smap_get(&r->mfrs, credit_code);
    if (!m) {
        m = pool_alloc(r, sizeof(*m));
        if (m) {
            memset(m, 0, sizeof(*m));
            copy_str(m->credit_code, credit_code);
        }
        if (!m || smap_put(&r->mfrs, m->credit_code, m)) {
            pthread_mutex_unlock(&r->mu);
            free(v);
            return REP_ERR_NOMEM;
        }
    }
    pthread_mutex_unlock(&r->mu);
    retire(r, atomic_exchange(&m->v, v));
    atomic_store_explicit(&m->status, status, memory_order_release);
    return REP_OK;
}

rep_err rep_put_cert(rep *r, const rep_cert_fields *f)
{
    rep_cert_v *v;
    rep_cert *c;
    size_t i;

    if (!fits(f->number, REP_NUMBER_MAX) || !*f->number || !fits(f->holder, REP_CREDIT_MAX) ||
        !fits(f->reason, REP_REASON_MAX) || f->ncat > REP_CATEGORIES_MAX ||
        f->status < REP_CERT_VALID || f->status > REP_CERT_LAST)
        return REP_ERR_ARG;
    for (i = 0; i < f->ncat; i++)
        if (!fits(f->cat[i], REP_CATEGORY_MAX))
            return REP_ERR_ARG;
    if (f->valid_until < 0 || f->valid_until >= (INT64_C(1) << 56))
        return REP_ERR_ARG;
    v = calloc(1, sizeof(*v) + f->ncat * sizeof(v->cat[0]) + strlen(f->reason) + 1);
    if (!v)
        return REP_ERR_NOMEM;
    v->kind = f->kind;
    v->status = f->status;
    v->valid_until = f->valid_until;
    v->updated = f->updated;
    copy_str(v->holder, f->holder);
    v->reason = (const char *)&v->cat[f->ncat];
    copy_str((char *)&v->cat[f->ncat], f->reason);
    v->ncat = f->ncat;
    for (i = 0; i < f->ncat; i++)
        copy_str(v->cat[i], f->cat[i]);
    pthread_mutex_lock(&r->mu);
    c = smap_get(&r->certs, f->number);
    if (!c) {
        c = pool_alloc(r, sizeof(*c));
        if (c) {
            memset(c, 0, sizeof(*c));
            copy_str(c->number, f->number);
        }
        if (!c || smap_put(&r->certs, c->number, c)) {
            pthread_mutex_unlock(&r->mu);
            free(v);
            return REP_ERR_NOMEM;
        }
    }
    pthread_mutex_unlock(&r->mu);
    retire(r, atomic_exchange(&c->v, v));
    atomic_store_explicit(&c->hot, (uint64_t)v->status << 56 | (uint64_t)v->valid_until,
                          memory_order_release);
    return REP_OK;
}

rep_err rep_set_batch_made(rep *r, uint64_t id, const char *production_date, const char *lot)
{
    rep_batch *b = (rep_batch *)rep_batch_get(r, id);
    char made[64], *copy;
    const char *old;

    if (!production_date)
        production_date = "";
    if (!lot)
        lot = "";
    if (!b)
        return REP_ERR_NOTFOUND;
    if (!*production_date && !*lot)
        return REP_OK;
    if (strlen(production_date) > 10 || strlen(lot) > 32 || strchr(lot, '\t'))
        return REP_ERR_ARG;
    snprintf(made, sizeof(made), "%s\t%s", production_date, lot);
    if ((old = atomic_load_explicit(&b->made, memory_order_acquire)) != NULL)
        return strcmp(old, made) == 0 ? REP_OK : REP_ERR_EXISTS;
    pthread_mutex_lock(&r->mu);
    copy = pool_alloc(r, strlen(made) + 1); /* never freed: a batch never changes */
    pthread_mutex_unlock(&r->mu);
    if (!copy)
        return REP_ERR_NOMEM;
    memcpy(copy, made, strlen(made) + 1);
    atomic_store_explicit(&b->made, copy, memory_order_release);
    return REP_OK;
}

rep_err rep_put_passport(rep *r, const char *product_id, const char *passport)
{
    rep_product *p;
    char *copy = NULL;
    const char *old;

    if (passport && strlen(passport) > REP_PASSPORT_MAX)
        return REP_ERR_ARG;
    pthread_mutex_lock(&r->mu);
    p = smap_get(&r->products, product_id);
    pthread_mutex_unlock(&r->mu);
    if (!p)
        return REP_ERR_NOTFOUND;
    old = atomic_load_explicit(&p->passport, memory_order_acquire);
    if ((!passport || !*passport) ? !old : (old && strcmp(old, passport) == 0))
        return REP_OK; /* the same again (a snapshot, an echo of our own write) */
    if (passport && *passport && !(copy = strdup(passport)))
        return REP_ERR_NOMEM;
    retire(r, atomic_exchange(&p->passport, copy));
    return REP_OK;
}

static int same(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

rep_err rep_put_product(rep *r, const rep_product_fields *p, const char *cert_number,
                        const char *credit_code)
{
    const char *src[5] = {p->product_id, p->category, p->brand, p->model, p->gtin};
    static const size_t max[5] = {REP_PRODUCT_ID_MAX, REP_CATEGORY_MAX, REP_BRAND_MAX,
                                  REP_MODEL_MAX, REP_GTIN_MAX};
    const char **dst[5];
    rep_product *np, *old;
    size_t len[5], total = 0, i;
    rep_cert *c;
    rep_mfr *m;
    char *s;

    for (i = 0; i < 5; i++) {
        if (!fits(src[i] ? src[i] : "", max[i]))
            return REP_ERR_ARG;
        len[i] = src[i] ? strlen(src[i]) : 0;
        total += len[i] + 1;
    }
    if (!len[0])
        return REP_ERR_ARG;
    pthread_mutex_lock(&r->mu);
    c = smap_get(&r->certs, cert_number);
    m = smap_get(&r->mfrs, credit_code);
    old = smap_get(&r->products, p->product_id);
    pthread_mutex_unlock(&r->mu);
    if (!c || !m)
        return REP_ERR_NOTFOUND;
    if (old)
        return old->cert == c && old->mfr == m && same(old->category, p->category) &&
                       same(old->brand, p->brand) && same(old->model, p->model)
                   ? REP_OK
                   : REP_ERR_EXISTS;
    pthread_mutex_lock(&r->mu);
    np = pool_alloc(r, sizeof(*np) + total);
    pthread_mutex_unlock(&r->mu);
    if (!np)
        return REP_ERR_NOMEM;
    dst[0] = &np->product_id;
    dst[1] = &np->category;
    dst[2] = &np->brand;
    dst[3] = &np->model;
    dst[4] = &np->gtin;
    s = (char *)(np + 1);
    for (i = 0; i < 5; i++) {
        if (len[i])
            memcpy(s, src[i], len[i]);
        s[len[i]] = '\0';
        *dst[i] = s;
        s += len[i] + 1;
    }
    np->cert = c;
    np->mfr = m;
    np->registered = p->registered;
    atomic_init(&np->passport, NULL);
    pthread_mutex_lock(&r->mu);
    if (smap_put(&r->products, np->product_id, np) != 0) {
        pthread_mutex_unlock(&r->mu);
        return REP_ERR_NOMEM; /* the pool keeps the bytes; nothing refers to them */
    }
    pthread_mutex_unlock(&r->mu);
    return REP_OK;
}

rep_err rep_put_batch(rep *r, uint64_t id, const char *product_id, uint32_t quantity,
                      unsigned key_id, int profile, int64_t issued)
{
    batch_slot *chunk;
    rep_batch *b, *old;
    rep_product *p;

    if (id == 0 || id > REP_BATCH_ID_MAX || quantity == 0 || key_id > 255 ||
        (profile != REP_PROFILE_MAC && profile != REP_PROFILE_SIG))
        return REP_ERR_ARG;
    p = rep_product_find(r, product_id);
    if (!p)
        return REP_ERR_NOTFOUND;
    old = (rep_batch *)rep_batch_get(r, id);
    if (old)
        return (old->product == p && old->quantity == quantity && old->key_id == key_id &&
                old->profile == profile)
                   ? REP_OK
                   : REP_ERR_EXISTS;
    chunk = atomic_load(&r->top[id >> RADIX_BITS]);
    if (!chunk) {
        size_t i;
        chunk = pool_alloc(r, RADIX_SIZE * sizeof(*chunk));
        if (!chunk)
            return REP_ERR_NOMEM;
        for (i = 0; i < RADIX_SIZE; i++)
            atomic_init(&chunk[i], NULL);
        atomic_store_explicit(&r->top[id >> RADIX_BITS], chunk, memory_order_release);
    }
    b = pool_alloc(r, sizeof(*b));
    if (!b)
        return REP_ERR_NOMEM;
    b->id = id;
    b->product = p;
    b->cert = p->cert;
    b->mfr = p->mfr;
    b->quantity = quantity;
    b->key_id = (uint8_t)key_id;
    b->profile = (uint8_t)profile;
    b->issued = issued;
    atomic_init(&b->recalls, NULL);
    atomic_init(&b->made, NULL);
    atomic_store_explicit(&chunk[id & (RADIX_SIZE - 1)], b, memory_order_release);
    atomic_fetch_add(&r->nbatches, 1);
    return REP_OK;
}

const rep_range *rep_recalled(const rep_recalls *rc, uint32_t serial)
{
    size_t lo = 0, hi;

    if (!rc)
        return NULL;
    hi = rc->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (rc->r[mid].last < serial)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < rc->n && rc->r[lo].first <= serial ? &rc->r[lo] : NULL;
}

/*
 * A new recall set: old ranges plus [first, last]. Serials already recalled
 * keep their first reason; the new range fills only the gaps. All reasons
 * are copied into the one allocation, after the ranges.
 */
rep_err rep_put_recall(rep *r, uint64_t batch_id, uint32_t first, uint32_t last, const char *reason)
{
    const rep_batch *b = rep_batch_get(r, batch_id);
    const rep_recalls *old;
    rep_range tmp[2 * REP_RECALLS_MAX + 1];
    size_t n = 0, i, strbytes = 0, cap;
    rep_recalls *nr;
    char *s;
    uint32_t cur = first;
    int done = 0;

    if (!b)
        return REP_ERR_NOTFOUND;
    if (first > last || last >= b->quantity || !fits(reason, REP_REASON_MAX))
        return REP_ERR_ARG;
    old = atomic_load(&b->recalls);
    for (i = 0; old && i < old->n; i++) {
        const rep_range *o = &old->r[i];
        if (!done && o->first > cur) { /* a gap before o */
            uint32_t end = o->first - 1 < last ? o->first - 1 : last;
            tmp[n++] = (rep_range){cur, end, reason};
            if (end == last)
                done = 1;
            else
                cur = end + 1;
        }
        tmp[n++] = *o;
        if (!done && o->last >= cur) {
            if (o->last >= last)
                done = 1;
            else
                cur = o->last + 1;
        }
    }
    if (!done)
        tmp[n++] = (rep_range){cur, last, reason};
    /* Merge neighbours that touch and share a reason, so sets stay small. */
    cap = 0;
    for (i = 0; i < n; i++) {
        if (cap && tmp[cap - 1].last + 1 == tmp[i].first &&
            strcmp(tmp[cap - 1].reason, tmp[i].reason) == 0)
            tmp[cap - 1].last = tmp[i].last;
        else
            tmp[cap++] = tmp[i];
    }
    n = cap;
    if (n > REP_RECALLS_MAX)
        return REP_ERR_ARG;
    for (i = 0; i < n; i++)
        strbytes += strlen(tmp[i].reason) + 1;
    nr = malloc(sizeof(*nr) + n * sizeof(rep_range) + strbytes);
    if (!nr)
        return REP_ERR_NOMEM;
    nr->n = n;
    s = (char *)&nr->r[n];
    for (i = 0; i < n; i++) {
        size_t len = strlen(tmp[i].reason) + 1;
        memcpy(s, tmp[i].reason, len);
        nr->r[i] = (rep_range){tmp[i].first, tmp[i].last, s};
        s += len;
    }
    retire(r, atomic_exchange(&((rep_batch *)b)->recalls, nr));
    return REP_OK;
}
