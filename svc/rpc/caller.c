/*
 * caller.c - who calls: the role and subject from the client certificate
 * (TLS) or from metadata (--insecure, loopback only), a cache of client
 * certificates already read, and whether the role may call the method.
 */
#include "server_int.h"
#include "check.h"

#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <stdio.h>
#include <string.h>

static int md_value(const grpc_metadata_array *md, const char *key, const char **v, size_t *n)
{
    size_t i;

    for (i = 0; i < md->count; i++)
        if (grpc_slice_str_cmp(md->metadata[i].key, key) == 0) {
            *v = (const char *)GRPC_SLICE_START_PTR(md->metadata[i].value);
            *n = GRPC_SLICE_LENGTH(md->metadata[i].value);
            return 1;
        }
    return 0;
}

#define ROLES "manufacturer, platform, regulator, certifier"

/* Take role and subject as sent (source names where they came from), or
 * say in s->idwhy what is wrong with them: nothing is cut or guessed. */
static void set_identity(slot *s, const char *role, size_t rn, const char *subj, size_t sn,
                         const char *rsrc, const char *ssrc)
{
    svc_status st;
    char tmp[SVC_SUBJECT_MAX + 1];

    if (!role) {
        snprintf(s->idwhy, sizeof(s->idwhy), "no identity: %s is missing (one of " ROLES ")", rsrc);
        return;
    }
    s->ctx.role = svc_role_parse(role, rn);
    if (s->ctx.role == SVC_ROLE_NONE) {
        snprintf(s->idwhy, sizeof(s->idwhy), "unknown role '%.*s' in %s; valid roles: " ROLES,
                 (int)(rn > 32 ? 32 : rn), role, rsrc);
        return;
    }
    if (!subj || sn == 0) {
        snprintf(s->idwhy, sizeof(s->idwhy),
                 "no identity: %s is missing or empty (it names the caller: credit code, "
                 "platform id or body id)",
                 ssrc);
        s->ctx.role = SVC_ROLE_NONE;
        return;
    }
    if (sn > SVC_SUBJECT_MAX || memchr(subj, '\0', sn)) {
        snprintf(s->idwhy, sizeof(s->idwhy), "%s is longer than %d bytes or holds a NUL byte", ssrc,
                 SVC_SUBJECT_MAX);
        s->ctx.role = SVC_ROLE_NONE;
        return;
    }
    memcpy(tmp, subj, sn);
    tmp[sn] = '\0';
    if (!check_id(&st, ssrc, tmp, SVC_SUBJECT_MAX)) {
        snprintf(s->idwhy, sizeof(s->idwhy), "%.*s", (int)sizeof(s->idwhy) - 1, st.msg);
        s->ctx.role = SVC_ROLE_NONE;
        return;
    }
    memcpy(s->ctx.subject, tmp, sn + 1);
}

static uint64_t fnv1a(const char *p, size_t n)
{
    uint64_t h = 14695981039346656037ULL;

    while (n--) {
        h ^= (unsigned char)*p++;
        h *= 1099511628211ULL;
    }
    return h;
}

/* Read pem into e (identity, and revocation under the CRL of gen). */
static void peer_read(rpc_server *r, const char *pem, size_t len, uint64_t gen, peer_entry *e)
{
    e->ok = keys_peer_identity(pem, len, &e->id, e->why, sizeof(e->why)) == 0;
    e->revoked = 0;
    if (e->ok && gen) {
        pthread_rwlock_rdlock(&r->crl_lock);
        e->revoked = r->crl && keys_crl_revoked(r->crl, pem, len) != 0;
        gen = atomic_load(&r->crl_gen);
        pthread_rwlock_unlock(&r->crl_lock);
    }
    e->crl_gen = gen;
}

/* TLS: the client certificate's subject attributes, read with the X509_NAME
 * API (keys/peer.c): exactly one OU, the role, and one CN, the subject;
 * refused when its certificate is on the CRL. */
static void identity_tls(slot *s)
{
    grpc_auth_context *ac = grpc_call_auth_context(s->call);
    rpc_worker *w = s->w;
    rpc_server *r = w->srv;
    const grpc_auth_property *p = NULL;
    grpc_auth_property_iterator it;
    peer_entry *e, one;
    uint64_t h, gen = atomic_load(&r->crl_gen);
    int ok, revoked;
    keys_peer_id id;

    if (ac) {
        it = grpc_auth_context_find_properties_by_name(ac, GRPC_X509_PEM_CERT_PROPERTY_NAME);
        p = grpc_auth_property_iterator_next(&it);
    }
    if (!p || !p->value_length) {
        snprintf(s->idwhy, sizeof(s->idwhy),
                 "no identity: present a client certificate naming role (OU) and subject (CN)");
        goto out;
    }
    h = fnv1a(p->value, p->value_length);
    e = &w->peers[h % PEER_CACHE];
    pthread_mutex_lock(&w->peer_mu);
    if (p->value_length > PEER_PEM_MAX) {
        e = &one;
        peer_read(r, p->value, p->value_length, gen, e);
    } else if (e->hash != h || e->len != p->value_length ||
               memcmp(e->pem, p->value, p->value_length) != 0) {
        e->hash = h;
        e->len = p->value_length;
        memcpy(e->pem, p->value, p->value_length);
        peer_read(r, p->value, p->value_length, gen, e);
    } else if (e->ok && e->crl_gen != gen) {
        peer_read(r, p->value, p->value_length, gen, e); /* a new list is in force */
    }
    ok = e->ok;
    revoked = e->revoked;
    id = e->id;
    if (!ok)
        snprintf(s->idwhy, sizeof(s->idwhy), "%s", e->why);
    pthread_mutex_unlock(&w->peer_mu);
    if (ok && revoked)
        snprintf(s->idwhy, sizeof(s->idwhy),
                 "the client certificate (OU=%.32s, CN=%.64s) is revoked (--client-crl)", id.ou,
                 id.cn);
    else if (ok)
        set_identity(s, id.ou, strlen(id.ou), id.cn, strlen(id.cn), "the client certificate's OU",
                     "the client certificate's CN");
out:
    if (ac)
        grpc_auth_context_release(ac);
}

void rpc_identify(slot *s)
{
    const char *role = NULL, *subj = NULL;
    size_t rn = 0, sn = 0;

    s->ctx.role = SVC_ROLE_NONE;
    s->ctx.subject[0] = '\0';
    s->idwhy[0] = '\0';
    if (!s->w->srv->cfg.insecure) {
        identity_tls(s);
        return;
    }
    if (!md_value(&s->md, "tc-role", &role, &rn))
        role = NULL;
    if (!md_value(&s->md, "tc-subject", &subj, &sn))
        subj = NULL;
    set_identity(s, role, rn, subj, sn, "metadata tc-role", "metadata tc-subject");
}

/* The service part of "/pkg.Service/Method", for messages. */
static void service_of(const char *path, char *out, size_t cap)
{
    const char *p = path + 1, *slash = strchr(p, '/');
    size_t n = slash ? (size_t)(slash - p) : strlen(p);

    if (n >= cap)
        n = cap - 1;
    memcpy(out, p, n);
    out[n] = '\0';
}

svc_code rpc_authorize(slot *s, svc_status *st)
{
    char service[96];

    if (s->m->roles == SVC_ROLE_ANY)
        return SVC_OK;
    service_of(s->m->path, service, sizeof(service));
    if (s->ctx.role == SVC_ROLE_NONE)
        return svc_fail(st, SVC_UNAUTHENTICATED, "%s", s->idwhy);
    if (!(s->m->roles & s->ctx.role))
        return svc_fail(st, SVC_PERMISSION_DENIED, "role %s may not call %s",
                        svc_role_name(s->ctx.role), service);
    return SVC_OK;
}
