/*
 * delist.h - the node's delisting watchers and their hub (svc/delist/hub.c;
 * WatchDelistings in svc/api/delist_api.c).
 *
 * A watcher first reads its platform's notice stream from its cursor, a
 * page at a time, on the worker thread that sends them (one Redis round
 * trip per page, paced by the client). When it has caught up it goes live:
 * the hub thread waits on Redis for new notices of every platform with a
 * live watcher on this node (one XREAD BLOCK), signs each notice once and
 * queues it for that platform's watchers, waking the idle ones. A watcher
 * whose queue passes its bound is ended with ABORTED and the cursor to
 * resume from; nothing waits on it. Idle watchers get a heartbeat.
 */
#ifndef TC_DELIST_H
#define TC_DELIST_H

#include "node.h"

#include <stddef.h>
#include <stdint.h>

typedef struct delist_config {
    int64_t heartbeat_ms; /* an idle watcher gets a heartbeat this often */
    size_t buffer_bytes;  /* a live watcher's queue bound */
} delist_config;

#define DELIST_HEARTBEAT_MS 15000
#define DELIST_BUFFER_BYTES ((size_t)64 << 20)

typedef struct delist_hub delist_hub;

/* Start the hub thread for node s (which must outlive it). */
delist_hub *delist_hub_start(svc *s, const delist_config *cfg, char *err, size_t errcap);
/* End every watcher (UNAVAILABLE, with the cursor to resume from) and stop
 * the hub thread. Calls still closing may use the hub until it is freed. */
void delist_hub_stop(delist_hub *h);
/* After the RPC server has stopped. */
void delist_hub_free(delist_hub *h);

/* A watcher of platform's notices after cursor (checked by the caller),
 * woken through c's wake hook; NULL with st set when the node is draining
 * or out of memory. */
typedef struct delist_watcher delist_watcher;
delist_watcher *delist_watch(delist_hub *h, const char *platform, const char *cursor,
                             const svc_ctx *c, svc_status *st);
void delist_unwatch(delist_watcher *w);

/* What a watcher sends next: a notice (kept by the watcher until the next
 * call), a heartbeat, or nothing yet (wait: it is woken when there is). */
typedef struct delist_event {
    const store_notice *notice;
    unsigned kid;
    const uint8_t *sig; /* CODEC_SIG_BYTES */
    int heartbeat;
    int wait;
} delist_event;
/* SVC_OK with ev filled, or the code (and st) that ends the stream. Reads
 * the stream itself while catching up (one Redis round trip a page). */
svc_code delist_next(svc_ctx *c, delist_watcher *w, delist_event *ev, svc_status *st);

/* The hub's metrics (svc_module.metrics): watchers open, platforms live. */
size_t delist_metrics(const svc *s, char *buf, size_t cap, size_t n);

/* The canonical text a notice's signature covers (see docs/ARCHITECTURE.md);
 * returns its length, 0 if cap is too small. buf NULL: the length needed. */
size_t delist_notice_text(const store_notice *n, unsigned kid, char *buf, size_t cap);

#endif
