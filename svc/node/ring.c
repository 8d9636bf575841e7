/*
 * ring.c - the node's keyring in force, reloaded without dropping a call:
 * on SIGHUP, when the directory changes, or when a code names a key id
 * this node does not hold yet. A replaced ring is freed a grace period
 * later. The deployment's keys (ListKeys, ActivateKey, CompromiseKey) are
 * svc/api/keys_api.c.
 */
#include "node.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RING_GRACE_MS 60000 /* far longer than any call holds a ring */
#define REFRESH_EVERY_MS 1000

size_t svc_key_ids(const keys_ring *ring, char *buf, size_t cap)
{
    keys_info info[CODEC_KID_MAX];
    size_t n = keys_list(ring, info, CODEC_KID_MAX), i, o = 0;

    if (cap)
        buf[0] = '\0';
    for (i = 0; i < n && i < CODEC_KID_MAX; i++) {
        int k;
        if (info[i].state == KEYS_RETIRED)
            continue;
        k = snprintf(buf + o, cap - o, "%s%u", o ? "," : "", info[i].kid);
        if (k < 0 || (size_t)k >= cap - o)
            break;
        o += (size_t)k;
    }
    return o;
}

void svc_keys_reap(svc *s, int all)
{
    int64_t now = svc_now_ms();
    size_t i;

    pthread_mutex_lock(&s->keys_mu);
    for (i = 0; i < sizeof(s->old_rings) / sizeof(s->old_rings[0]); i++) {
        if (s->old_rings[i].ring && (all || now - s->old_rings[i].at > RING_GRACE_MS)) {
            keys_free(s->old_rings[i].ring);
            s->old_rings[i].ring = NULL;
        }
    }
    pthread_mutex_unlock(&s->keys_mu);
}

/* The same keys in the same states (secrets aside: a file whose secret
 * changed under the same id is refused by nobody, but would be a new key
 * under an old id, which keys/ never writes). */
static int same_keys(const keys_ring *a, const keys_ring *b)
{
    keys_info x[CODEC_KID_MAX], y[CODEC_KID_MAX];
    size_t n = keys_list(a, x, CODEC_KID_MAX), i;

    if (n != keys_list(b, y, CODEC_KID_MAX))
        return 0;
    for (i = 0; i < n && i < CODEC_KID_MAX; i++)
        if (x[i].kid != y[i].kid || x[i].kind != y[i].kind || x[i].state != y[i].state ||
            x[i].created != y[i].created || memcmp(x[i].pub, y[i].pub, sizeof(x[i].pub)) != 0)
            return 0;
    return 1;
}

/* Under keys_mu: 0 when a changed keyring is now in force, 1 when the
 * directory holds what is in force already (nothing swapped), -1 with err
 * when it does not load (the ring in force stays). Only a change takes a
 * grace slot, so a flood of codes naming unknown key ids cannot fill them
 * and block a real reload. */
static int reload_locked(svc *s, const char *why, char *err, size_t errcap)
{
    keys_ring *ring, *old;
    size_t i, slot = SIZE_MAX;
    int64_t now = svc_now_ms();
    char ids[512];

    if (keys_open_ex(s->keys_dir, s->keys_flags, &ring, err, errcap) != KEYS_OK)
        return -1;
    if (same_keys(ring, svc_ring(s))) {
        keys_free(ring);
        return 1;
    }
    for (i = 0; i < sizeof(s->old_rings) / sizeof(s->old_rings[0]); i++) {
        if (s->old_rings[i].ring && now - s->old_rings[i].at > RING_GRACE_MS) {
            keys_free(s->old_rings[i].ring);
            s->old_rings[i].ring = NULL;
        }
        if (!s->old_rings[i].ring && slot == SIZE_MAX)
            slot = i;
    }
    if (slot == SIZE_MAX) {
        keys_free(ring);
        snprintf(err, errcap, "changed %zu times within %d s: try again shortly", i,
                 RING_GRACE_MS / 1000);
        return -1;
    }
    old = atomic_exchange_explicit(&s->ring, ring, memory_order_acq_rel);
    s->old_rings[slot].ring = old;
    s->old_rings[slot].at = now;
    svc_key_ids(ring, ids, sizeof(ids));
    tclog(TCLOG_INFO, "keyring %s reloaded (%s): keys %s; active mac %u, ed25519 %u", s->keys_dir,
          why, ids, keys_active(ring, KEYS_KIND_MAC), keys_active(ring, KEYS_KIND_ED25519));
    return 0;
}

/* reload_locked, marked for callers that may wait for it. */
static int reload(svc *s, const char *why, char *err, size_t errcap)
{
    int rc;

    pthread_mutex_lock(&s->keys_mu);
    atomic_store(&s->keys_reloading, 1);
    rc = reload_locked(s, why, err, errcap);
    atomic_store(&s->keys_reloading, 0);
    pthread_mutex_unlock(&s->keys_mu);
    return rc;
}

int svc_keys_reload(svc *s, const char *why, char *err, size_t errcap)
{
    int rc = reload(s, why, err, errcap);

    if (rc == 1)
        tclog(TCLOG_INFO, "keyring %s read again (%s): unchanged", s->keys_dir, why);
    return rc < 0 ? -1 : 0;
}

int svc_keys_refresh(svc *s, const keys_ring *seen, unsigned kid)
{
    int64_t now = svc_now_ms(), last;
    char err[512], why[64];
    int rc;

    if (!s->keys_dir || kid == 0 || kid > CODEC_KID_MAX)
        return 0;
    if (svc_ring(s) != seen)
        return 1; /* reloaded meanwhile */
    last = atomic_load(&s->keys_looked_ms[kid]);
    if (now - last < REFRESH_EVERY_MS ||
        !atomic_compare_exchange_strong(&s->keys_looked_ms[kid], &last, now)) {
        /* another call looks for this id: wait for a reload it started */
        if (atomic_load(&s->keys_reloading)) {
            pthread_mutex_lock(&s->keys_mu);
            pthread_mutex_unlock(&s->keys_mu);
        }
        return svc_ring(s) != seen;
    }
    if (!keys_dir_has(s->keys_dir, kid))
        return 0; /* no such key here: a forger's id, or not copied yet */
    snprintf(why, sizeof(why), "a code named key id %u, not loaded yet", kid);
    rc = reload(s, why, err, sizeof(err));
    if (rc < 0)
        tclog(TCLOG_WARN, "keyring %s not reloaded: %s", s->keys_dir, err);
    return svc_ring(s) != seen &&
           (keys_mac(svc_ring(s), kid) || keys_ed25519_public(svc_ring(s), kid));
}
