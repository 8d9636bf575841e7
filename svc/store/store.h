/*
 * store.h - Redis, the source of truth (hiredis is seen only in svc/store/).
 *
 * Every change is one Lua script run: the record's hash, the registry
 * revision counter ({tc}:rev, INCR) and an entry on the change stream
 * ({tc}:changes) carrying the record's full new contents, all in one
 * atomic step. Nodes load a snapshot and then tail the stream into their
 * replica (store_tail). All keys share the hash tag {tc}, so the registry
 * can move to one Redis Cluster slot as it is.
 *
 * Writes use a small pool of blocking connections (one per calling thread
 * at a time); each call is one round trip, bounded by a timeout.
 *
 * hiredis writes to sockets with write(2): the process must ignore SIGPIPE
 * (tracesvc does), or a Redis that goes away kills it.
 */
#ifndef TC_STORE_H
#define TC_STORE_H

#include "replica.h"

#include <stddef.h>
#include <stdint.h>

struct event_base;

typedef enum store_err {
    STORE_OK = 0,
    STORE_ERR_UNAVAILABLE = 1,  /* Redis unreachable or timed out */
    STORE_ERR_PRECONDITION = 2, /* refused by a rule (status, scope, holder) */
    STORE_ERR_NOTFOUND = 3,
    STORE_ERR_DENIED = 4, /* the record belongs to someone else */
    STORE_ERR_ARG = 5,
    STORE_ERR_PROTOCOL = 6, /* Redis answered something unexpected */
    STORE_ERR_NOMEM = 7,
    STORE_ERR_RANGE = 8,   /* a cursor outside what is retained */
    STORE_ERR_TIMEOUT = 9, /* no answer in time: a write may or may not be done */
    STORE_ERR_EXISTS = 10, /* a request id already used for another request */
    STORE_ERR_LIMIT = 11,  /* a rate kept in Redis is spent (the message says until when) */
} store_err;

#define STORE_ERR_MAX 256
#define STORE_STREAM_MAXLEN 1000000 /* change stream entries kept (approximate) */
#define STORE_NOTICE_LISTINGS 10000 /* listing ids in one delisting notice */
#define STORE_NOTICE_LISTINGS_STR "10000"
#define STORE_NOTICE_RETENTION_MS (7LL * 24 * 3600 * 1000) /* default */

typedef struct store store;

/*
 * Connect to url: redis://[user:password@]host:port[/db], unix:/path[?db=N]
 * or redis-sentinel://[user:password@]host:port[,host:port...]/name[?db=N]
 * [&sentinel_password=...]. With Sentinels the store asks them where the
 * primary is, follows it when they switch (a thread of its own), and every
 * connection - pool, reader, tail - is dialled to the primary as now known.
 * Fails with STORE_ERR_UNAVAILABLE (and a message) when Redis cannot be
 * reached now (try again later), STORE_ERR_DENIED when it refuses the
 * credentials, STORE_ERR_ARG for a url it cannot use. Caller frees with
 * store_free.
 */
store_err store_open(const char *url, store **out, char *err, size_t errcap);
/* The Redis client library's version ("hiredis 0.14.1"), for build info. */
const char *store_client_version(void);
void store_free(store *s);
/* How long delisting notices stay on a platform's stream (ms; <= 0 means
 * the default, STORE_NOTICE_RETENTION_MS). Set before serving. */
void store_set_notice_retention(store *s, int64_t ms);
/* Acknowledge a write only once WAIT confirms it on this many replicas
 * (0: on the primary alone), waiting at most wait_ms (<= 0: 2000). A write
 * that is not confirmed in time fails UNAVAILABLE, saying it may stand and
 * to retry with the same request id. Set before serving. */
void store_set_replicas(store *s, int replicas, int wait_ms);
/* The primary as now known: "host:port" or the socket path. */
void store_primary(store *s, char *out, size_t cap);
/* Changes whenever the primary may have moved (thread-safe). */
unsigned store_generation(store *s);
/* 1 when the primary takes writes now: answers and is not a replica. */
int store_writable(store *s, char *err, size_t errcap);
store_err store_ping(store *s, char *err, size_t errcap);

/* --- idempotent writes ----------------------------------------------------- */

/*
 * A write's idempotency key: the caller's request id, scoped to the caller,
 * and the fingerprint of the request it names. Every write below takes one
 * (NULL, or an empty request_id: none). Inside the write's own atomic step
 * the script looks the key up: unused, it makes the change and records its
 * outcome under the key (kept STORE_IDEM_TTL_S); used by the same request
 * (same fingerprint), it changes nothing and returns the recorded outcome
 * (replayed = 1); used by another request, STORE_ERR_EXISTS. A write that
 * is refused (an error) records nothing: the id stays unused.
 */
typedef struct store_idem {
    const char *scope;      /* the caller, "role:subject" (borrowed) */
    const char *request_id; /* up to STORE_REQUEST_ID_MAX bytes (borrowed) */
    uint8_t fp[32];         /* SHA-256 of what the request asks */
    int replayed;           /* out */
} store_idem;

#define STORE_REQUEST_ID_MAX 64
#define STORE_IDEM_TTL_S (24 * 3600)

/* --- writes: each returns the registry revision it produced ----------- */
/* Each also appends what it changed to the audit log in the same atomic
 * step (audit.h); actor is the caller as "role:subject". */

store_err store_put_mfr(store *s, store_idem *idem, const char *actor, const char *credit_code,
                        const char *name, int status, uint64_t *rev, char *err, size_t errcap);
/*
 * Certificate writes. When the status goes to SUSPENDED, REVOKED or CANCELLED, or back
 * to VALID from one of them, the same atomic step writes one delisting
 * notice per platform with listings under the certificate onto
 * {tc}:notices:<platform> (listing ids split at STORE_NOTICE_LISTINGS a
 * notice); *notices (may be NULL) receives how many.
 */
store_err store_put_cert(store *s, store_idem *idem, const char *actor, const rep_cert_fields *f,
                         uint64_t *rev, uint32_t *notices, char *err, size_t errcap);
/* Status change of an existing certificate (STORE_ERR_NOTFOUND if none). */
store_err store_set_cert_status(store *s, store_idem *idem, const char *actor, const char *number,
                                int status, const char *reason, int64_t now, uint64_t *rev,
                                uint32_t *notices, char *err, size_t errcap);

typedef struct store_product_req {
    const char *caller; /* manufacturer credit code */
    const char *cert_number, *category, *brand, *model, *gtin;
    const char *passport; /* its stored form (svc/core/passport.h), "" for none */
    const char *actor;    /* "role:subject", for the audit entry */
    int64_t now;
} store_product_req;

/* Checks in Redis, atomically with the write: the certificate exists, is
 * VALID and unexpired, is held by caller, covers category; the caller is
 * an active manufacturer. product_id receives the new id and *registered
 * its time (the first call's, when replayed). */
store_err store_register_product(store *s, store_idem *idem, const store_product_req *q,
                                 char product_id[REP_PRODUCT_ID_MAX + 1], int64_t *registered,
                                 uint64_t *rev, char *err, size_t errcap);

/* Reserve the next batch id (ids are never reused; a reserved id that is
 * not used stays a gap). */
/* Replace the passport of caller's product (lua/product_update.lua):
 * STORE_ERR_NOTFOUND, STORE_ERR_DENIED (another maker's); logged in the
 * audit log under the product id. */
store_err store_update_passport(store *s, store_idem *idem, const char *actor, const char *caller,
                                const char *product_id, const char *passport, uint64_t *rev,
                                char *err, size_t errcap);

store_err store_next_batch_id(store *s, uint64_t *id, char *err, size_t errcap);

typedef struct store_batch {
    uint64_t id;
    char product_id[REP_PRODUCT_ID_MAX + 1];
    char issuer[REP_CREDIT_MAX + 1];
    char cert_number[REP_NUMBER_MAX + 1];
    uint32_t quantity;
    unsigned key_id;
    int profile;
    int64_t issued;
    unsigned manifest_key_id;
    char request_id[65];
    char production_date[11]; /* YYYY-MM-DD or "" */
    char lot[33];             /* or "" */
    size_t manifest_len;
    char manifest[1024];
    uint8_t signature[64];
} store_batch;

/*
 * Store batch b (id from store_next_batch_id). Replayed (idem), *b is
 * replaced by the batch the first request stored. Checks the product is
 * the caller's, its certificate VALID and the manufacturer active,
 * atomically with the write. *rev is the revision of the batch.
 */
store_err store_create_batch(store *s, store_idem *idem, store_batch *b, uint64_t *rev, char *err,
                             size_t errcap);
store_err store_get_batch(store *s, uint64_t id, store_batch *b, char *err, size_t errcap);

/* Recall serials first..last of the caller's batch; in the same step one
 * delisting notice per platform whose listings carry recalled serials
 * (*notices, may be NULL, receives how many). *affected is kept with the
 * outcome: the caller's count of serials newly recalled, which a replay
 * returns as the first call counted it. */
store_err store_recall(store *s, store_idem *idem, const char *caller, uint64_t batch_id,
                       uint32_t first, uint32_t last, const char *reason, int64_t now,
                       uint64_t *affected, uint64_t *rev, uint32_t *notices, char *err,
                       size_t errcap);

/* --- listings (platforms) ------------------------------------------------ */

/* One listing to bind: the code's batch and certificate come from the
 * caller's verification of it. */
typedef struct store_binding {
    const char *listing_id;
    const char *code; /* canonical text */
    uint64_t batch;
    const char *cert_number;
    uint32_t serial;
    /* out: other listings bound to the same code (any platform), and the
     * number of distinct other platforms among them */
    uint32_t other_listings, other_platforms;
} store_binding;

#define STORE_BINDINGS_MAX 10000

/*
 * Bind listings of platform to codes, all in one atomic step: re-binding a
 * listing to the same code changes nothing, to another code moves it. Kept
 * for delisting: certificate -> platforms, (certificate, platform) ->
 * listings, (batch, platform) -> listings; and code -> listings for copy
 * detection.
 */
store_err store_bind_listings(store *s, store_idem *idem, const char *platform, store_binding *b,
                              size_t n, char *err, size_t errcap);

/* --- delisting notices (notices.c) ---------------------------------------- */

/*
 * Per platform P, all written by the scripts above in the same step as the
 * change that caused them:
 *   {tc}:notices:P        stream of notices; the entry id ("ms-seq") is the
 *                         notice id and the watcher's cursor; trimmed to
 *                         the retention window
 *   {tc}:notice-log:P     sorted set id -> ms: every notice ever sent (the
 *                         compliance record, never trimmed)
 *   {tc}:notice-state:P   hash id -> "listings acked complete_ms delisted"
 */

#define STORE_CURSOR_MAX 41 /* "ms-seq", two 20-digit numbers */
#define STORE_PLATFORM_MAX 64

/* A notice as stored. One allocation: free() it. */
typedef struct store_notice {
    char id[STORE_CURSOR_MAX + 1];
    uint64_t id_ms, id_seq;
    char platform[STORE_PLATFORM_MAX + 1];
    char cert[REP_NUMBER_MAX + 1];
    uint64_t batch; /* recalls; 0 otherwise */
    int status;     /* the certificate's status after the change */
    int64_t effective;
    uint64_t rev;
    const char *reason;
    size_t nlistings;
    char **listings;
    size_t bytes; /* the allocation's size */
} store_notice;

/* Parse a cursor "ms-seq" strictly (decimal, no sign). 0 when it is one. */
int store_cursor_parse(const char *s, uint64_t *ms, uint64_t *seq);

/* Up to max notices of platform after cursor ("" = the oldest retained),
 * oldest first; *out is a malloc'd array (free each, then it). */
store_err store_notices_after(store *s, const char *platform, const char *cursor, size_t max,
                              store_notice ***out, size_t *n, char *err, size_t errcap);

/* STORE_OK when every notice after cursor is still retained; otherwise
 * STORE_ERR_RANGE with the cursor that is (oldest) in a message. */
store_err store_notices_check(store *s, const char *platform, const char *cursor, char *err,
                              size_t errcap);

typedef struct store_ack {
    uint32_t listings, acked; /* of the notice, and acknowledged so far */
    int complete;
} store_ack;

/* Acknowledge listings of a notice of platform (n = 0: all of them). Ids
 * must be the notice's; acknowledging again changes nothing. */
store_err store_ack_notice(store *s, store_idem *idem, const char *platform, const char *notice_id,
                           const char *const *listings, size_t n, int64_t delisted_unix,
                           store_ack *res, char *err, size_t errcap);

typedef struct store_compliance {
    uint64_t notices, acked, listings;
    double p50_s, p99_s; /* notice written -> acknowledged in full */
    char (*unacked)[STORE_CURSOR_MAX + 1];
    size_t nunacked;
} store_compliance;

/* Over the notices platform was sent in [from_unix, to_unix] (to 0: now);
 * at most max_unacked ids listed. Free with store_compliance_free. */
store_err store_compliance_get(store *s, const char *platform, int64_t from_unix, int64_t to_unix,
                               size_t max_unacked, store_compliance *out, char *err, size_t errcap);
void store_compliance_free(store_compliance *c);

/*
 * Sold codes (sales.c, docs/SALES.md). A code's sale record lives under
 * the code's own hash tag (tc:{CODE}:sale), not in the registry's slot.
 * store_sale_report: the sale of code by platform under order_hash (a
 * salted hash the caller made); state STORE_SALE_FIRST when recorded now,
 * STORE_SALE_SAME when this platform's own sale of this order again
 * (nothing changes), STORE_SALE_AGAIN when sold before (on any platform or
 * under another order: kept once among the code's other sales);
 * platform and sold_unix are the first sale's, others the other sales.
 * store_sale_undo: the seller's return within window_s of the recording
 * (STORE_ERR_DENIED for another platform, STORE_ERR_PRECONDITION past
 * the window, STORE_ERR_NOTFOUND when not sold; the same request_id
 * again answers as the first time). A scan reads the sale in its own
 * step (store_scan.sale: state STORE_SALE_SOLD, or 0 when not sold).
 */
enum { STORE_SALE_SAME = 0, STORE_SALE_FIRST = 1, STORE_SALE_AGAIN = 2, STORE_SALE_SOLD = 3 };
typedef struct store_sale {
    int state;
    char platform[STORE_PLATFORM_MAX + 1];
    int64_t sold_unix;
    uint32_t others;
    int written; /* this report changed the record (not a repeat) */
} store_sale;
store_err store_sale_report(store *s, const char *code, const char *platform,
                            const char *order_hash, int64_t sold_unix, store_sale *out, char *err,
                            size_t errcap);
store_err store_sale_undo(store *s, const char *code, const char *platform, const char *request_id,
                          int64_t window_s, int *replayed, char *err, size_t errcap);
/* The deployment's salt for order references: made by the first node
 * that asks ({tc}:sale-salt, SET NX), the same for every node after. */
#define STORE_SALT_HEX 64
store_err store_sale_salt(store *s, char out[STORE_SALT_HEX + 1], char *err, size_t errcap);
/* Claim idem's request id for a request whose writes are not one script
 * (ReportSales: one per code): STORE_OK the first time and for the same
 * request again (its writes are idempotent on their own),
 * STORE_ERR_EXISTS for another request under the id. */
store_err store_idem_claim(store *s, const store_idem *idem, char *err, size_t errcap);

/*
 * Consumers' problem reports (reports.c), in the registry's slot. add: the
 * report under a new id, unless the device or the code spent its rate
 * (STORE_ERR_LIMIT, nothing written); *on_code the code's reports so far.
 * query: up to max reports of an index ("{tc}:reports", or
 * "{tc}:reports:code:C", ...:batch:B, ...:product:P, ...:mfr:M) with ids
 * after after, oldest first.
 */
#define STORE_REPORT_TEXT_MAX 500
typedef struct store_report {
    const char *code, *product_id, *issuer, *text, *region, *via, *device;
    uint64_t batch_id;
    int reason;
} store_report;
typedef struct store_report_rates {
    uint32_t per_device, per_code;
    int64_t device_window_s, code_window_s;
} store_report_rates;
typedef struct store_report_row {
    uint64_t id, batch_id;
    char code[128], product_id[64], issuer[64], region[16], via[80];
    char text[STORE_REPORT_TEXT_MAX + 1];
    int reason;
    int64_t created_unix;
} store_report_row;
store_err store_report_add(store *s, const store_report *r, const store_report_rates *rates,
                           uint64_t *id, uint32_t *on_code, char *err, size_t errcap);
store_err store_reports_query(store *s, const char *index, uint64_t after, size_t max,
                              store_report_row *out, size_t *n, char *err, size_t errcap);

/*
 * The delisting notices no platform has acknowledged in full yet: how many
 * in all, and of the oldest max (by age), per platform its oldest notice's
 * time and how many of those max it holds, oldest platform first. A
 * platform with no notice among the max oldest has none older than the
 * last of them. At most nrows platforms; *nrows says how many.
 */
typedef struct store_unacked_row {
    char platform[STORE_PLATFORM_MAX + 1];
    int64_t oldest_ms;
    uint32_t count;
} store_unacked_row;
store_err store_unacked(store *s, size_t max, store_unacked_row *rows, size_t *nrows,
                        uint64_t *total, char *err, size_t errcap);

/*
 * A dedicated connection that waits for new notices (XREAD BLOCK) on the
 * streams of several platforms at once; one thread uses it. Reconnects by
 * itself on the next wait after a failure.
 */
typedef struct store_reader store_reader;

/* A reader with its own connection, dialled from s (and again to the new
 * primary after a failover); s outlives it. */
store_err store_reader_open(store *s, store_reader **out, char *err, size_t errcap);
void store_reader_free(store_reader *rd);
/* Wait up to block_ms (< 2000) for notices after after[i] on platforms[i];
 * *out as for store_notices_after (NULL, 0 on timeout or interrupt). */
store_err store_reader_wait(store_reader *rd, const char *const *platforms,
                            const char *const *after, size_t n, int block_ms, store_notice ***out,
                            size_t *nout, char *err, size_t errcap);
/* Any thread: end a wait in progress now (CLIENT UNBLOCK). 1 if one was. */
int store_reader_interrupt(store *s, store_reader *rd);

/* --- the audit log (audit.c) ------------------------------------------------ */

/*
 * Entries are appended by the write scripts above and by store_audit_append
 * (any node); one node at a time, holding the lease, sequences them into
 * the Merkle tree: it stores the hash of every complete subtree (level L,
 * index i) and the signed tree head. See docs/AUDIT.md.
 */
#define STORE_AUDIT_FIELD_MAX 128  /* kind, actor, subject */
#define STORE_AUDIT_BODY_MAX 65536 /* bodies written by store_audit_append */

typedef struct store_audit_entry {
    uint64_t index;
    int64_t time_ms;
    char kind[STORE_AUDIT_FIELD_MAX + 1];
    char actor[STORE_AUDIT_FIELD_MAX + 1];
    char subject[STORE_AUDIT_FIELD_MAX + 1];
    const char *body; /* within text */
    size_t body_len;
    char *text; /* the canonical entry, as hashed (malloc'd) */
    size_t len;
} store_audit_entry;

/* Parse a canonical entry (fields point into or copy from text). 0 when it
 * is one; text must stay alive while body is used. */
int store_audit_parse(const char *text, size_t len, store_audit_entry *e);
void store_audit_entries_free(store_audit_entry *e, size_t n);

store_err store_audit_append(store *s, const char *kind, const char *actor, const char *subject,
                             const char *body, size_t len, uint64_t *index, char *err,
                             size_t errcap);

/* Record the node's public keys; when they differ from the last recorded,
 * a "key" entry (a rotation) is appended. */
store_err store_audit_keys(store *s, const char *actor, const char *keys, size_t len, char *err,
                           size_t errcap);

typedef struct store_audit_query {
    const char *subject, *kind; /* "" = any */
    int64_t from_ms, to_ms;     /* inclusive; 0 = open */
    uint64_t start;             /* first index to consider (the page token) */
    uint32_t limit;
} store_audit_query;

/* Entries matching q, oldest first (*out malloc'd: store_audit_entries_free);
 * *next is the index to continue from, or UINT64_MAX when done. */
store_err store_audit_query_run(store *s, const store_audit_query *q, store_audit_entry **out,
                                size_t *n, uint64_t *next, char *err, size_t errcap);

/* Entries [from, from + count) as stored, for the sequencer. */
store_err store_audit_read(store *s, uint64_t from, size_t count, store_audit_entry **out,
                           size_t *n, char *err, size_t errcap);
/* How many entries have been appended. */
store_err store_audit_count(store *s, uint64_t *n, char *err, size_t errcap);

typedef struct store_tree_head {
    uint64_t size;
    uint8_t root[32];
    int64_t time_unix;
    uint32_t kid;
    uint8_t sig[64];
} store_tree_head;

/* The latest signed head (size 0 and nothing else when there is none). */
store_err store_audit_head(store *s, store_tree_head *h, char *err, size_t errcap);

/* Hashes of complete subtrees: levels[i], indexes[i] -> out + 32 * i. */
store_err store_audit_hashes(store *s, const unsigned *levels, const uint64_t *indexes, size_t n,
                             uint8_t *out, char *err, size_t errcap);

/* Take or keep the sequencing lease for ttl_ms: *held = 1 when token has it. */
store_err store_audit_lease(store *s, const char *token, int64_t ttl_ms, int *held, char *err,
                            size_t errcap);
/* Give it up, if token holds it. */
store_err store_audit_release(store *s, const char *token, char *err, size_t errcap);

/* Grow the tree from old_size to h->size: level[L] holds the new complete
 * subtree hashes of level L (len[L] bytes, in index order), nlevels of
 * them, and h the new signed head. Only while token holds the lease
 * (STORE_ERR_DENIED otherwise) and the stored head is at old_size
 * (STORE_ERR_PRECONDITION otherwise). */
store_err store_audit_commit(store *s, const char *token, uint64_t old_size,
                             const store_tree_head *h, const uint8_t *const *level,
                             const size_t *len, unsigned nlevels, char *err, size_t errcap);

/* --- rate limits ------------------------------------------------------------ */

/*
 * One event against the GCRA bucket at key (generic cell rate algorithm,
 * as Let's Encrypt's Boulder keeps it): one event per interval_us, up to
 * tolerance_us ahead of time. Decided in one script with Redis' clock, so
 * every node shares the bucket. *retry_us: 0 when allowed (and counted),
 * else how long until it would be.
 */
store_err store_gcra(store *s, const char *key, int64_t interval_us, int64_t tolerance_us,
                     int64_t *retry_us, char *err, size_t errcap);

/* --- consumer scans (scans.c) ----------------------------------------------- */

#define STORE_REGION_MAX 12

/*
 * Per scanned code, at most: a hash of 7 small fields, a HyperLogLog of
 * devices (sparse, a few hundred bytes, until it holds many; 12 KB dense at
 * most) and a set of up to 64 region codes: about 14 KB in the worst case,
 * under 1 KB for a code scanned by a few devices. Every key expires ttl_ms
 * after the code's last recorded scan.
 */
#define STORE_SCAN_TTL_MS (90LL * 86400 * 1000)  /* default idle life of a code's scans */
#define STORE_TRAVEL_AGE_MS (7LL * 86400 * 1000) /* default life of travel evidence */

typedef struct store_scan_rules {
    int64_t window_ms;     /* two provinces within this: travel evidence */
    int64_t ttl_ms;        /* 0: STORE_SCAN_TTL_MS */
    int64_t travel_age_ms; /* 0: STORE_TRAVEL_AGE_MS */
} store_scan_rules;

typedef struct store_scan {
    uint64_t devices; /* distinct devices (HyperLogLog estimate) */
    uint64_t scans;   /* every scan, devices or not */
    int64_t first_ms; /* unix ms of the first scan */
    char first_region[STORE_REGION_MAX + 1];
    uint32_t regions;  /* distinct regions (up to 64 kept) */
    uint32_t listings; /* listings bound to the code, any platform */
    int fast_move;     /* two provinces within the window, in the last travel_age_ms */
    store_sale sale;   /* its sale, read in the same step (state STORE_SALE_SOLD or 0) */
} store_scan;

/* Record one scan of code (canonical text) when record is set, and read
 * what is known of its scans (record 0: read only, nothing written).
 * region and device may be "". */
store_err store_scan_record(store *s, const char *code, const char *region, const char *device,
                            int record, int64_t now_ms, const store_scan_rules *rules,
                            store_scan *out, char *err, size_t errcap);

/* --- replication -------------------------------------------------------- */

/*
 * Load every record into r (which the caller's thread then writes; it must
 * be the replica's only writer) and note where the change stream stood
 * before the load, so that tailing from there misses nothing (changes
 * made during the load are applied twice, which is harmless).
 */
store_err store_snapshot(store *s, rep *r, char *stream_id, size_t idcap, uint64_t *rev, char *err,
                         size_t errcap);

typedef struct store_tail store_tail;

/*
 * Tail the change stream from stream_id on base's loop (which must run on
 * the replica's writer thread): XREAD BLOCK, apply each entry, repeat;
 * reconnect with backoff (100 ms doubling to 5 s) and carry on from the
 * last applied entry. A gap (entries trimmed away while disconnected)
 * triggers a fresh snapshot. Caller frees with store_tail_free on the
 * loop's thread.
 */
store_tail *store_tail_new(store *s, rep *r, struct event_base *base, const char *stream_id,
                           uint64_t rev);
void store_tail_free(store_tail *t);
/* Milliseconds since the tail last heard from Redis (thread-safe). */
int64_t store_tail_lag_ms(const store_tail *t);
int store_tail_connected(const store_tail *t);

/* --- the deployment's keys (keys.c) ---------------------------------------- */

/* Make kid (kind: REP_KEY_MAC or REP_KEY_ED25519) the deployment's issuing
 * key of its kind; the previous one verifies only. STORE_ERR_PRECONDITION
 * for a compromised key. Logged in the audit log (kind "key"). */
store_err store_key_activate(store *s, store_idem *idem, const char *actor, unsigned kid, int kind,
                             int64_t now, uint64_t *rev, char *err, size_t errcap);
/* Declare kid compromised from since (unix seconds) on; it stops issuing. */
store_err store_key_compromise(store *s, store_idem *idem, const char *actor, unsigned kid,
                               int kind, int64_t since, const char *reason, int64_t now,
                               uint64_t *rev, char *err, size_t errcap);
/* The reason given when kid was declared compromised ("" if none). */
store_err store_key_reason(store *s, unsigned kid, char *reason, size_t cap, char *err,
                           size_t errcap);

/* A live node and the key ids it can verify ("1,2,4"). */
typedef struct store_node {
    char id[65];
    char kids[1024];
} store_node;

/* This node is live for ttl_s seconds and holds kids. */
store_err store_node_beat(store *s, const char *node_id, const char *kids, int ttl_s, char *err,
                          size_t errcap);
/* Every live node; *out is the caller's to free. */
store_err store_nodes(store *s, store_node **out, size_t *n, char *err, size_t errcap);
int store_node_holds(const store_node *node, unsigned kid);

#endif
