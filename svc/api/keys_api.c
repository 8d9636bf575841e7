/*
 * keys_api.c - the deployment's keys: RegistryService.ListKeys,
 * ActivateKey, CompromiseKey; the issuing key of a profile on this node.
 * The keyring in force and its reloads are svc/node/ring.c.
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

typedef Tracecode__V1__Key Key;

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
