/*
 * replica.h - the in-memory copy of the registry that every verification
 * reads: manufacturers, certificates, products, batches, recalls.
 *
 * One writer (the applier thread, fed by the Redis change stream) and many
 * readers (gRPC worker threads). Readers take no lock and allocate
 * nothing:
 *
 *   - records never move and are never freed while the replica lives; a
 *     record's changeable part is an immutable *version* behind an atomic
 *     pointer, replaced whole (copy-on-write) by the writer;
 *   - batches are found by id in a two-level radix index (ids are assigned
 *     sequentially by the service), two loads per lookup;
 *   - a replaced version is freed only once every reader that could have
 *     seen it has left its read section (quiescent-state epochs: one fenced
 *     store when a reader enters, one store when it leaves).
 *
 * String-keyed lookups (certificate by number, ...) are for the write and
 * admin paths and take a mutex; the verify path follows pointers from the
 * batch instead.
 */
#ifndef TC_REPLICA_H
#define TC_REPLICA_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Bounds on every stored string (bytes, without terminator). */
#define REP_CREDIT_MAX 32
#define REP_NUMBER_MAX 64
#define REP_NAME_MAX 200
#define REP_CATEGORY_MAX 32
#define REP_CATEGORIES_MAX 64
#define REP_BRAND_MAX 100
#define REP_MODEL_MAX 100
#define REP_GTIN_MAX 14
#define REP_PRODUCT_ID_MAX 32
#define REP_PASSPORT_MAX 32768 /* a passport's stored form (svc/core/passport.h) */
#define REP_REASON_MAX 500
#define REP_RECALLS_MAX 4096                  /* recalled ranges per batch */
#define REP_READERS_MAX 64                    /* reader threads */
#define REP_BATCH_ID_MAX UINT64_C(0xffffffff) /* the radix index covers 32 bits */

/* Status numbers are those of tracecode.v1 (types.proto). */
enum {
    REP_CERT_VALID = 1,
    REP_CERT_SUSPENDED = 2,
    REP_CERT_REVOKED = 3,
    REP_CERT_EXPIRED = 4,
    REP_CERT_CANCELLED = 5, /* 注销: given up by its holder */
    REP_CERT_LAST = REP_CERT_CANCELLED
};
enum { REP_KIND_CCC = 1, REP_KIND_LICENCE = 2 };
enum { REP_MFR_ACTIVE = 1, REP_MFR_SUSPENDED = 2 };
enum { REP_PROFILE_MAC = 1, REP_PROFILE_SIG = 2 };

typedef enum rep_err {
    REP_OK = 0,
    REP_ERR_NOMEM = 1,
    REP_ERR_ARG = 2,      /* a field out of its bounds */
    REP_ERR_NOTFOUND = 3, /* a referenced record is missing */
    REP_ERR_EXISTS = 4,   /* an immutable record already exists, differently */
} rep_err;

const char *rep_strerror(rep_err err);

/* --- records ------------------------------------------------------------ */

/*
 * What verification reads is kept to three dependent memory accesses per
 * code: the batch record (which carries its certificate and manufacturer
 * pointers), one atomic status word in the certificate, one in the
 * manufacturer. Versions (names, reasons, scopes) are read only for
 * failure details and the FULL view.
 */

typedef struct rep_mfr_v {
    int status;
    char name[]; /* up to REP_NAME_MAX bytes */
} rep_mfr_v;

typedef struct rep_mfr {
    char credit_code[REP_CREDIT_MAX + 1];
    _Atomic int status; /* the hot copy of v->status */
    _Atomic(const rep_mfr_v *) v;
} rep_mfr;

typedef struct rep_cert_v {
    int kind;
    int status;
    int64_t valid_until; /* unix seconds, 0 = none */
    int64_t updated;
    char holder[REP_CREDIT_MAX + 1];
    const char *reason; /* in the same allocation, after cat */
    size_t ncat;
    char cat[][REP_CATEGORY_MAX + 1];
} rep_cert_v;

/* The hot word of a certificate: status in the top 8 bits, valid_until
 * (unix seconds, 0 = none) in the low 56. */
#define REP_HOT_STATUS(h) ((int)((h) >> 56))
#define REP_HOT_VALID_UNTIL(h) ((int64_t)((h) & ((UINT64_C(1) << 56) - 1)))

typedef struct rep_cert {
    char number[REP_NUMBER_MAX + 1];
    _Atomic uint64_t hot;
    _Atomic(const rep_cert_v *) v;
} rep_cert;

/* A product never changes once registered; its strings live in the same
 * allocation. */
typedef struct rep_product {
    const char *product_id, *category, *brand, *model, *gtin;
    rep_cert *cert;
    rep_mfr *mfr;
    int64_t registered;
    /* Its passport's stored form (svc/core/passport.h), replaced whole by
     * rep_put_passport; NULL for none. Read it inside a read section and
     * copy what outlives it. */
    _Atomic(const char *) passport;
} rep_product;

/* What a writer gives to register a product (borrowed). */
typedef struct rep_product_fields {
    const char *product_id, *category, *brand, *model, *gtin;
    int64_t registered;
} rep_product_fields;

typedef struct rep_range {
    uint32_t first, last; /* inclusive */
    const char *reason;   /* points into the same allocation */
} rep_range;

/* Recalled serials of a batch: ranges sorted by first, not overlapping. */
typedef struct rep_recalls {
    size_t n;
    rep_range r[];
} rep_recalls;

/* 56 bytes, from the record pool: 10 M batches take ~0.6 GB with the index. */
typedef struct rep_batch {
    uint64_t id;
    rep_cert *cert; /* the product's, copied so that verify skips the product */
    rep_mfr *mfr;
    rep_product *product;
    uint32_t quantity;
    uint8_t key_id;
    uint8_t profile;
    int64_t issued;
    _Atomic(const rep_recalls *) recalls; /* NULL: none */
    /* "YYYY-MM-DD\tLOT" as its maker gave them (either may be empty), set
     * once after the batch (rep_set_batch_made); NULL: none given. */
    _Atomic(const char *) made;
} rep_batch;

/* --- the replica -------------------------------------------------------- */

typedef struct rep rep;

rep *rep_new(void);
void rep_free(rep *r);

/* Reader sections. A reader thread takes a slot once (0 .. REP_READERS_MAX-1,
 * or -1 when all are taken) and brackets each request with begin/end; what
 * it reads between them stays valid until end. */
int rep_reader_register(rep *r);
void rep_read_begin(rep *r, int slot);
void rep_read_end(rep *r, int slot);

/* Lookups for readers (inside a read section). */
const rep_batch *rep_batch_get(const rep *r, uint64_t id);
uint64_t rep_revision(const rep *r);
/* Start fetching the index slot of batch id into the cache (for callers
 * that verify many codes: their cache misses then overlap). */
void rep_batch_prefetch(const rep *r, uint64_t id);

/* Lookups for the write/admin path (any thread; takes a mutex). Records
 * returned are stable for the replica's life; read their versions inside a
 * read section. */
rep_cert *rep_cert_find(rep *r, const char *number);
rep_mfr *rep_mfr_find(rep *r, const char *credit_code);
rep_product *rep_product_find(rep *r, const char *product_id);
size_t rep_count_batches(const rep *r);

/* --- the writer (one thread) -------------------------------------------- */

typedef struct rep_cert_fields {
    const char *number;
    int kind;
    const char *holder;
    const char *const *cat;
    size_t ncat;
    int status;
    const char *reason;
    int64_t valid_until;
    int64_t updated;
} rep_cert_fields;

rep_err rep_put_mfr(rep *r, const char *credit_code, const char *name, int status);
rep_err rep_put_cert(rep *r, const rep_cert_fields *f);
/* A product or batch already present with the same id is left as it is
 * (changes are replayed after a snapshot); a different one is REP_ERR_EXISTS. */
/* Put passport (its stored form; NULL or "" for none) in force for
 * product_id; the one it replaces is freed after the readers moved on. */
rep_err rep_put_passport(rep *r, const char *product_id, const char *passport);
/* A batch's production date and lot (NULL or "" each: not given). Once: a
 * batch never changes, so the same again is REP_OK and another REP_ERR_EXISTS. */
rep_err rep_set_batch_made(rep *r, uint64_t id, const char *production_date, const char *lot);
rep_err rep_put_product(rep *r, const rep_product_fields *p, const char *cert_number,
                        const char *credit_code);
rep_err rep_put_batch(rep *r, uint64_t id, const char *product_id, uint32_t quantity,
                      unsigned key_id, int profile, int64_t issued);
/* Recall serials first..last of a batch, merging with what is recalled. */
rep_err rep_put_recall(rep *r, uint64_t batch_id, uint32_t first, uint32_t last,
                       const char *reason);

/* The writer marks each applied change; readers report it as as_of. */
void rep_set_revision(rep *r, uint64_t revision);

/*
 * The deployment's keys (RegistryService.ActivateKey / CompromiseKey):
 * which key id issues codes of each kind, and which keys are compromised
 * since when. A key the deployment never activated has no record here (it
 * is only on the nodes' keyrings). Written by the applier; read lock-free.
 */
enum { REP_KEY_MAC = 1, REP_KEY_ED25519 = 2 };
enum { REP_KEY_ACTIVE = 2, REP_KEY_VERIFY_ONLY = 3, REP_KEY_COMPROMISED = 4 }; /* KeyState */

rep_err rep_put_key(rep *r, unsigned kid, int kind, int state, int64_t activated, int64_t since);
/* Unix seconds from which batches under kid verify KEY_COMPROMISED; 0 = not. */
int64_t rep_key_compromised(const rep *r, unsigned kid);
/* The deployment's issuing key of kind, 0 when none was activated (each
 * node then issues under its keyring's active key). */
unsigned rep_key_issuing(const rep *r, int kind);
int64_t rep_key_activated(const rep *r, unsigned kid);
/* The deployment has activated a key of kind: the nodes' keyring files no
 * longer choose the issuing key (not even when the deployment's issuing
 * key was declared compromised and none replaced it yet). */
int rep_key_managed(const rep *r, int kind);
/* Batches under kid issued at or after since (a walk of the index: admin
 * path only). */
size_t rep_count_batches_key(rep *r, unsigned kid, int64_t since);

/* Free replaced versions no reader can still see. Called by the writer
 * after applying changes; cheap when there is nothing to free. */
void rep_reclaim(rep *r);

/* The recall range holding serial, or NULL. Binary search; no lock. */
const rep_range *rep_recalled(const rep_recalls *rc, uint32_t serial);

#endif
