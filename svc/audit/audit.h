/*
 * audit.h - the node's part in the audit log (docs/AUDIT.md).
 *
 * Every node appends entries (the write scripts do, in the same step as
 * their change; this thread adds the per-platform verification counts of
 * each minute). One node at a time holds the sequencing lease in Redis:
 * it reads the entries past the tree's size, hashes them into the tree,
 * stores the new subtree hashes and a head signed with its active Ed25519
 * key, in one fenced step, every AUDIT_TICK_MS while the log grows. When
 * it stops or dies the lease lapses and another node carries on from the
 * stored tree.
 */
#ifndef TC_AUDIT_H
#define TC_AUDIT_H

#include "node.h"

#include <stddef.h>
#include <stdint.h>

#define AUDIT_TICK_MS 200
#define AUDIT_LEASE_MS 2000
#define AUDIT_IDLE_HEAD_S 60 /* a fresh head this often even when idle */
#define AUDIT_PLATFORMS 256  /* platforms counted per minute per node */

typedef struct audit_log audit_log;

/* Start the thread for node s; node_id names this node in entries. */
audit_log *audit_start(svc *s, const char *node_id, char *err, size_t errcap);
/* Flush this minute's counts, give up the lease, stop the thread. */
void audit_stop(audit_log *a);

/* Count verdicts given to platform (k[v]: how many of verdict v). Hot
 * path: a hash probe and relaxed atomic adds. */
void audit_count(audit_log *a, const char *platform, const uint32_t k[TC_VERDICT_SLOTS]);
void audit_count_one(audit_log *a, const char *platform, int verdict);

/* The audit module's metrics (svc_module.metrics): the forgery signal's
 * gauges per platform, the tree size, whether this node sequences. */
size_t audit_metrics(const svc *s, char *buf, size_t cap, size_t n);

/* The tree size this node last saw and whether it is the sequencer. */
uint64_t audit_tree_size(const audit_log *a);
int audit_sequencing(const audit_log *a);

/* Record the node's active keys; a change since the last node recorded
 * them is a key rotation entry. */
store_err audit_note_keys(svc *s, const char *node_id, char *err, size_t errcap);

#endif
