/*
 * keys_api.c - the node's keyring in force, reloaded without dropping a
 * call, and the deployment's keys: RegistryService.ListKeys, ActivateKey,
 * CompromiseKey.
 *
 * A rolling rotation (docs/OPERATIONS.md): `tracekeys stage` adds a key as
 * verify-only; every node gets the file and reloads (SIGHUP, or by itself
 * when the directory changes); ActivateKey makes it the deployment's
 * issuing key, refused while a live node does not hold it. No node ever
 * issues under a key another live node cannot verify.
 */
#include "api.h"
#include "check.h"

#include "tracecode/v1/registry.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RING_GRACE_MS 60000 /* far longer than any call holds a ring */
#define REFRESH_EVERY_MS 1000

typedef Tracecode__V1__Key Key;

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

    if (keys_open(s->keys_dir, &ring, err, errcap) != KEYS_OK)
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
    fprintf(stderr, "tracesvc: keyring %s reloaded (%s): keys %s; active mac %u, ed25519 %u\n",
            s->keys_dir, why, ids, keys_active(ring, KEYS_KIND_MAC),
            keys_active(ring, KEYS_KIND_ED25519));
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
        fprintf(stderr, "tracesvc: keyring %s read again (%s): unchanged\n", s->keys_dir, why);
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
        fprintf(stderr, "tracesvc: keyring %s not reloaded: %s\n", s->keys_dir, err);
    return svc_ring(s) != seen &&
           (keys_mac(svc_ring(s), kid) || keys_ed25519_public(svc_ring(s), kid));
}

unsigned svc_issuing_key(svc_ctx *c, int profile, svc_status *st)
{
    const codec_profile_info *pi = codec_profile_numbered(profile);
    int kind = pi->key_kind;
    const char *name = pi->key;
    const keys_ring *ring = svc_ring(c->svc);
    unsigned kid = rep_key_issuing(c->svc->replica, kind);
    int64_t since;

    if (!kid && rep_key_managed(c->svc->replica, kind)) {
        svc_fail(st, SVC_FAILED_PRECONDITION,
                 "the deployment has no issuing %s key: the last one was declared compromised; a "
                 "regulator activates another (tracectl keys activate KID)",
                 name);
        return 0;
    }
    if (!kid)
        kid = keys_active(ring, (keys_kind)kind); /* the same numbers (common.c) */
    if (!kid) {
        svc_fail(st, SVC_FAILED_PRECONDITION, "the service has no active %s key", name);
        return 0;
    }
    since = rep_key_compromised(c->svc->replica, kid);
    if (since) {
        svc_fail(st, SVC_FAILED_PRECONDITION,
                 "the %s key %u is compromised: nothing is issued under it (a regulator "
                 "activates another: tracectl keys activate KID)",
                 name, kid);
        return 0;
    }
    if ((kind == REP_KEY_MAC ? !keys_mac(ring, kid) : !keys_ed25519_public(ring, kid)) &&
        !svc_keys_refresh(c->svc, ring, kid)) {
        svc_fail(st, SVC_FAILED_PRECONDITION,
                 "the deployment issues %s codes under key %u, which node %s does not hold: "
                 "copy key-%03u to its keyring and reload it (SIGHUP)",
                 name, kid, c->svc->node_id ? c->svc->node_id : "?", kid);
        return 0;
    }
    return kid;
}

/* --- RegistryService ----------------------------------------------------- */

/* A Key message for kid in the arena; nodes_holding from nodes, named by
 * names (their ids in the arena; both may be NULL when nn is 0). */
static Key *key_out(svc_ctx *c, unsigned kid, const keys_info *info, const store_node *nodes,
                    char **names, size_t nn, svc_status *st)
{
    Key *k = svc_alloc(c, sizeof(*k));
    const rep *r = c->svc->replica;
    int kind = info ? (int)info->kind : 0;
    size_t i, h = 0;

    if (!k) {
        svc_fail(st, SVC_RESOURCE_EXHAUSTED, "response exceeds the call's memory bound");
        return NULL;
    }
    tracecode__v1__key__init(k);
    k->key_id = kid;
    if (kind) {
        k->kind = kind == KEYS_KIND_MAC ? "mac" : "ed25519";
        k->algorithm = kind == KEYS_KIND_MAC ? "HMAC-SHA-256" : "Ed25519";
    }
    k->activated_unix = rep_key_activated(r, kid);
    k->compromised_since_unix = rep_key_compromised(r, kid);
    if (k->compromised_since_unix)
        k->state = TRACECODE__V1__KEY_STATE__KEY_STATE_COMPROMISED;
    else if (kind && rep_key_issuing(r, kind) == kid)
        k->state = TRACECODE__V1__KEY_STATE__KEY_STATE_ACTIVE;
    else if (kind && !rep_key_issuing(r, kind) && info && info->state == KEYS_ACTIVE)
        k->state = TRACECODE__V1__KEY_STATE__KEY_STATE_ACTIVE; /* no deployment choice yet */
    else if (k->activated_unix || (info && info->state == KEYS_ACTIVE))
        k->state = TRACECODE__V1__KEY_STATE__KEY_STATE_VERIFY_ONLY;
    else
        k->state = TRACECODE__V1__KEY_STATE__KEY_STATE_STAGED;
    if (nn) {
        k->nodes_holding = svc_alloc(c, nn * sizeof(char *));
        if (!k->nodes_holding) {
            svc_fail(st, SVC_RESOURCE_EXHAUSTED, "response exceeds the call's memory bound");
            return NULL;
        }
        for (i = 0; i < nn; i++)
            if (store_node_holds(&nodes[i], kid))
                k->nodes_holding[h++] = names[i];
        k->n_nodes_holding = h;
    }
    return k;
}

/* The keys of this node's keyring (retired ones left out). */
static size_t ring_keys(const keys_ring *ring, keys_info *info)
{
    size_t n = keys_list(ring, info, CODEC_KID_MAX), i, o = 0;

    for (i = 0; i < n && i < CODEC_KID_MAX; i++)
        if (info[i].state != KEYS_RETIRED)
            info[o++] = info[i];
    return o;
}

static const keys_info *find_info(const keys_info *info, size_t n, unsigned kid)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (info[i].kid == kid)
            return &info[i];
    return NULL;
}

svc_code api_list_keys(svc_ctx *c, const void *req, void *resp, svc_status *st)
{
    Tracecode__V1__ListKeysResponse *out = resp;
    keys_info info[CODEC_KID_MAX];
    char err[STORE_ERR_MAX];
    store_node *nodes = NULL;
    size_t nn = 0, ni, i, k = 0;
    unsigned kid;
    store_err e;

    (void)req;
    e = store_nodes(c->svc->store, &nodes, &nn, err, sizeof(err));
    if (e)
        return svc_store_fail(st, e, err);
    ni = ring_keys(svc_ring(c->svc), info);
    out->keys = svc_alloc(c, CODEC_KID_MAX * sizeof(*out->keys));
    out->nodes = svc_alloc(c, (nn + 1) * sizeof(*out->nodes));
    for (i = 0; out->nodes && i < nn; i++)
        if ((out->nodes[i] = svc_strdup(c, nodes[i].id)) == NULL)
            break;
    if (!out->keys || !out->nodes || i < nn) {
        free(nodes);
        return svc_fail(st, SVC_RESOURCE_EXHAUSTED, "response exceeds the call's memory bound");
    }
    out->n_nodes = nn;
    /* Every key this node holds, any node holds, or the deployment knows. */
    for (kid = 1; kid <= CODEC_KID_MAX; kid++) {
        int held = find_info(info, ni, kid) != NULL;
        for (i = 0; i < nn && !held; i++)
            held = store_node_holds(&nodes[i], kid);
        if (!held && !rep_key_activated(c->svc->replica, kid) &&
            !rep_key_compromised(c->svc->replica, kid))
            continue;
        out->keys[k] = key_out(c, kid, find_info(info, ni, kid), nodes, out->nodes, nn, st);
        if (!out->keys[k])
            break;
        if (out->keys[k]->compromised_since_unix) {
            char reason[REP_REASON_MAX + 1];
            e = store_key_reason(c->svc->store, kid, reason, sizeof(reason), err, sizeof(err));
            if (e) {
                svc_store_fail(st, e, err);
                break;
            }
            out->keys[k]->compromise_reason = svc_strdup(c, reason);
            if (!out->keys[k]->compromise_reason) {
                svc_fail(st, SVC_RESOURCE_EXHAUSTED, "response exceeds the call's memory bound");
                break;
            }
        }
        k++;
    }
    free(nodes);
    if (kid <= CODEC_KID_MAX)
        return st->code;
    out->n_keys = k;
    return SVC_OK;
}

/* The kind of kid as this node's keyring knows it; 0 with st set when the
 * node does not hold it. */
static int kind_of(svc_ctx *c, unsigned kid, svc_status *st)
{
    const keys_ring *ring = svc_ring(c->svc);

    if (kid == 0 || kid > CODEC_KID_MAX) {
        svc_fail(st, SVC_INVALID_ARGUMENT, "key_id must be 1..%d, not %u", CODEC_KID_MAX, kid);
        return 0;
    }
    if (!keys_mac(ring, kid) && !keys_ed25519_public(ring, kid) &&
        !svc_keys_refresh(c->svc, ring, kid)) {
        svc_fail(st, SVC_FAILED_PRECONDITION,
                 "node %s does not hold key %u (or it is retired): stage it on every node's "
                 "keyring first (tracekeys stage), then reload them",
                 c->svc->node_id ? c->svc->node_id : "?", kid);
        return 0;
    }
    return keys_mac(svc_ring(c->svc), kid) ? REP_KEY_MAC : REP_KEY_ED25519;
}

svc_code api_activate_key(svc_ctx *c, const void *req, void *resp, svc_status *st)
{
    const Tracecode__V1__ActivateKeyRequest *q = req;
    Tracecode__V1__ActivateKeyResponse *out = resp;
    char err[STORE_ERR_MAX], actor[SVC_ACTOR_MAX], lacking[512] = "";
    keys_info info[CODEC_KID_MAX];
    store_node *nodes = NULL;
    size_t nn = 0, i, o = 0, missing = 0;
    store_idem idem;
    uint64_t rev;
    store_err e;
    int kind;

    if (!svc_idem(c, q->request_id, &idem, actor, st))
        return st->code;
    kind = kind_of(c, q->key_id, st);
    if (!kind)
        return st->code;
    e = store_nodes(c->svc->store, &nodes, &nn, err, sizeof(err));
    if (e)
        return svc_store_fail(st, e, err);
    for (i = 0; i < nn; i++) {
        if (store_node_holds(&nodes[i], q->key_id))
            continue;
        missing++;
        if (o < sizeof(lacking))
            o += (size_t)snprintf(lacking + o, sizeof(lacking) - o, "%s%s", o ? ", " : "",
                                  nodes[i].id);
    }
    if (missing) {
        free(nodes);
        return svc_fail(st, SVC_FAILED_PRECONDITION,
                        "key %u is not on every live node: %zu of %zu lack it (%s); copy key-%03u "
                        "to their keyrings and reload them (SIGHUP), then activate again",
                        q->key_id, missing, nn, lacking, q->key_id);
    }
    free(nodes);
    e = store_key_activate(c->svc->store, &idem, actor, q->key_id, kind, svc_now_unix(), &rev, err,
                           sizeof(err));
    if (e)
        return svc_store_fail(st, e, err);
    svc_settle(c, rev);
    i = ring_keys(svc_ring(c->svc), info);
    out->key = key_out(c, q->key_id, find_info(info, i, q->key_id), NULL, NULL, 0, st);
    return out->key ? SVC_OK : st->code;
}

svc_code api_compromise_key(svc_ctx *c, const void *req, void *resp, svc_status *st)
{
    const Tracecode__V1__CompromiseKeyRequest *q = req;
    Tracecode__V1__CompromiseKeyResponse *out = resp;
    char err[STORE_ERR_MAX], actor[SVC_ACTOR_MAX];
    keys_info info[CODEC_KID_MAX];
    store_idem idem;
    uint64_t rev;
    store_err e;
    size_t n;
    int kind;

    if (q->since_unix <= 0 || q->since_unix > svc_now_unix())
        return svc_fail(st, SVC_INVALID_ARGUMENT,
                        "since_unix must be a past time in unix seconds (the moment from which "
                        "the key may have leaked), not %lld",
                        (long long)q->since_unix);
    if (!check_text(st, "reason", q->reason, REP_REASON_MAX, 0) ||
        !svc_idem(c, q->request_id, &idem, actor, st))
        return st->code;
    kind = kind_of(c, q->key_id, st);
    if (!kind)
        return st->code;
    e = store_key_compromise(c->svc->store, &idem, actor, q->key_id, kind, q->since_unix, q->reason,
                             svc_now_unix(), &rev, err, sizeof(err));
    if (e)
        return svc_store_fail(st, e, err);
    svc_settle(c, rev);
    n = ring_keys(svc_ring(c->svc), info);
    out->key = key_out(c, q->key_id, find_info(info, n, q->key_id), NULL, NULL, 0, st);
    if (!out->key)
        return st->code;
    out->key->compromise_reason = (char *)q->reason; /* lives as long as the call */
    out->batches_affected =
        (uint32_t)rep_count_batches_key(c->svc->replica, q->key_id, q->since_unix);
    return SVC_OK;
}
