/*
 * services.c - gRPC's own protocols: health checking, and server
 * reflection answered from the descriptor set embedded at build time
 * (tracecode.v1 plus the health and reflection protos), so grpcurl and
 * other clients can list and call services without our .proto files.
 */
#include "rpc.h"
#include "rpc_int.h"
#include "fastpb.h"

#include "grpc/health/v1/health.pb-c.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "grpc/reflection/v1alpha/reflection.pb-c.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

extern const unsigned char tc_descriptor_set[];
extern const size_t tc_descriptor_set_len;

/* --- health ---------------------------------------------------------------- */

typedef Grpc__Health__V1__HealthCheckResponse__ServingStatus serving;
#define SERVING GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
#define NOT_SERVING GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING

/*
 * What each service needs: the writing services (RegistryService,
 * IssuerService) serve while the primary takes writes; the others (and ""
 * for the whole node) while the node verifies, which it does from its
 * replica whether or not Redis answers. /readyz says the same.
 */
static serving status_of(const svc *s, const char *service)
{
    int writes = strcmp(service, "tracecode.v1.RegistryService") == 0 ||
                 strcmp(service, "tracecode.v1.IssuerService") == 0;

    return (writes ? svc_can_write(s) : svc_can_verify(s)) ? SERVING : NOT_SERVING;
}

static int known_service(const char *service)
{
    size_t i;

    if (!service[0] || strcmp(service, "grpc.health.v1.Health") == 0)
        return 1;
    for (i = 0; i < rpc_nmethods; i++) {
        const char *p = rpc_methods[i].path + 1, *slash = strchr(p, '/');
        if (slash && strlen(service) == (size_t)(slash - p) &&
            memcmp(p, service, (size_t)(slash - p)) == 0)
            return 1;
    }
    return 0;
}

svc_code rpc_health_check(svc_ctx *c, const void *req, void *resp, svc_status *st)
{
    const Grpc__Health__V1__HealthCheckRequest *q = req;
    Grpc__Health__V1__HealthCheckResponse *out = resp;

    if (!known_service(q->service))
        return svc_fail(st, SVC_NOT_FOUND, "service %.200s is not served here", q->service);
    out->status = status_of(c->svc, q->service);
    return SVC_OK;
}

/*
 * Watch: the status now, then again each time it changes. The watchers
 * wait without a thread, on one list per process (one server per
 * process); rpc_health_changed wakes them.
 */
typedef struct health_watch {
    struct health_watch *next, *prev;
    const svc *svc;
    char service[200];
    int sent; /* the status last sent; -1: none yet */
    int waiting;
    void (*wake)(void *call, uint64_t gen, svc_code code, const char *msg);
    void *wake_call;
    uint64_t wake_gen;
} health_watch;

static pthread_mutex_t watch_mu = PTHREAD_MUTEX_INITIALIZER;
static health_watch *watchers;

svc_code rpc_health_watch_open(svc_ctx *c, const void *req, void **state, svc_status *st)
{
    const Grpc__Health__V1__HealthCheckRequest *q = req;
    health_watch *w;

    if (strlen(q->service) >= sizeof(w->service))
        return svc_fail(st, SVC_INVALID_ARGUMENT, "service name longer than %zu bytes",
                        sizeof(w->service) - 1);
    w = svc_alloc(c, sizeof(*w));
    if (!w)
        return svc_fail(st, SVC_RESOURCE_EXHAUSTED, "out of call memory");
    memset(w, 0, sizeof(*w));
    memcpy(w->service, q->service, strlen(q->service) + 1);
    w->svc = c->svc;
    w->sent = -1;
    w->wake = c->wake;
    w->wake_call = c->wake_call;
    w->wake_gen = c->wake_gen;
    pthread_mutex_lock(&watch_mu);
    w->next = watchers;
    if (watchers)
        watchers->prev = w;
    watchers = w;
    pthread_mutex_unlock(&watch_mu);
    *state = w;
    return SVC_OK;
}

svc_code rpc_health_watch_next(svc_ctx *c, void *state, void *resp, int *done, svc_status *st)
{
    health_watch *w = state;
    Grpc__Health__V1__HealthCheckResponse *out = resp;
    int now;

    (void)c;
    (void)st;
    /* Read under the lock that rpc_health_changed takes: a change made
     * after this read finds the watcher waiting and wakes it. An unknown
     * service is SERVICE_UNKNOWN and the call goes on (the protocol: it
     * may appear later). */
    pthread_mutex_lock(&watch_mu);
    now = known_service(w->service)
              ? (int)status_of(w->svc, w->service)
              : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN;
    w->waiting = now == w->sent;
    w->sent = now;
    pthread_mutex_unlock(&watch_mu);
    if (w->waiting) {
        *done = SVC_STREAM_WAIT;
        return SVC_OK;
    }
    out->status = (serving)now;
    return SVC_OK;
}

void rpc_health_watch_close(svc_ctx *c, void *state)
{
    health_watch *w = state;

    (void)c;
    pthread_mutex_lock(&watch_mu);
    if (w->prev)
        w->prev->next = w->next;
    else
        watchers = w->next;
    if (w->next)
        w->next->prev = w->prev;
    pthread_mutex_unlock(&watch_mu);
}

void rpc_health_changed(void)
{
    struct wake {
        void (*fn)(void *call, uint64_t gen, svc_code code, const char *msg);
        void *call;
        uint64_t gen;
    } *v = NULL;
    size_t n = 0, cap = 0, i;
    health_watch *w;

    /* Collected under the lock, woken after it: a worker holds its call's
     * lock while next() takes this one, so waking under it could deadlock.
     * A call that ends meanwhile is left alone by its generation. */
    pthread_mutex_lock(&watch_mu);
    for (w = watchers; w; w = w->next) {
        if (!w->waiting)
            continue;
        if (n == cap) {
            struct wake *nv = realloc(v, (cap ? cap * 2 : 16) * sizeof(*v));
            if (!nv)
                break; /* the rest learn at their next change */
            v = nv;
            cap = cap ? cap * 2 : 16;
        }
        w->waiting = 0;
        v[n].fn = w->wake;
        v[n].call = w->wake_call;
        v[n++].gen = w->wake_gen;
    }
    pthread_mutex_unlock(&watch_mu);
    for (i = 0; i < n; i++)
        v[i].fn(v[i].call, v[i].gen, SVC_OK, NULL);
    free(v);
}

/* --- the descriptor set, read with fastpb's wire reader ------------------ */

/* The next length-delimited field (the only kind read here). */
static int next_field(fastpb_rd *w, unsigned *num, const uint8_t **data, size_t *len)
{
    fastpb_rd sub;
    unsigned wt;
    uint64_t v;

    while (fastpb_next(w, num, &wt, &sub, &v)) {
        if (wt == 2) {
            *data = sub.p;
            *len = (size_t)(sub.end - sub.p);
            return 1;
        }
    }
    return 0;
}

#define FILES_MAX 16

/* One file of the set: its bytes, name, package and services. */
typedef struct dfile {
    const uint8_t *bytes;
    size_t len;
    const char *name, *pkg; /* not terminated */
    size_t name_len, pkg_len;
} dfile;

static size_t files(dfile *f)
{
    fastpb_rd w = {tc_descriptor_set, tc_descriptor_set + tc_descriptor_set_len};
    const uint8_t *d;
    size_t len, n = 0;
    unsigned num;

    while (n < FILES_MAX && next_field(&w, &num, &d, &len)) {
        fastpb_rd fw = {d, d + len};
        const uint8_t *fd;
        size_t fl;
        unsigned fn;
        if (num != 1)
            continue;
        memset(&f[n], 0, sizeof(f[n]));
        f[n].bytes = d;
        f[n].len = len;
        while (next_field(&fw, &fn, &fd, &fl)) {
            if (fn == 1) {
                f[n].name = (const char *)fd;
                f[n].name_len = fl;
            } else if (fn == 2) {
                f[n].pkg = (const char *)fd;
                f[n].pkg_len = fl;
            }
        }
        n++;
    }
    return n;
}

/* Calls fn(name) for each "package.Service" of file f. */
static size_t services_of(svc_ctx *c, const dfile *f, char **out, size_t cap)
{
    fastpb_rd w = {f->bytes, f->bytes + f->len};
    const uint8_t *d;
    size_t len, n = 0;
    unsigned num;

    while (n < cap && next_field(&w, &num, &d, &len)) {
        fastpb_rd sw = {d, d + len};
        const uint8_t *sd;
        size_t sl;
        unsigned sn;
        if (num != 6)
            continue;
        while (next_field(&sw, &sn, &sd, &sl)) {
            if (sn == 1) {
                char *name = c->alloc(c->arena, f->pkg_len + 1 + sl + 1);
                if (!name)
                    return n;
                memcpy(name, f->pkg, f->pkg_len);
                name[f->pkg_len] = '.';
                memcpy(name + f->pkg_len + 1, sd, sl);
                name[f->pkg_len + 1 + sl] = '\0';
                out[n++] = name;
                break;
            }
        }
    }
    return n;
}

/* What to answer, independent of the reflection version. */
typedef struct answer {
    int kind; /* 1 files, 2 services, 3 error */
    size_t n;
    ProtobufCBinaryData file[FILES_MAX];
    char *service[32];
    int err_code;
    const char *err_msg;
} answer;

static int same(const char *a, size_t alen, const char *b)
{
    return strlen(b) == alen && memcmp(a, b, alen) == 0;
}

/* Files of a package are answered together (they import each other). */
static void add_package(answer *a, const dfile *f, size_t nf, const char *pkg, size_t pkg_len)
{
    size_t i;

    for (i = 0; i < nf && a->n < FILES_MAX; i++)
        if (f[i].pkg_len == pkg_len && memcmp(f[i].pkg, pkg, pkg_len) == 0) {
            a->file[a->n].data = (uint8_t *)f[i].bytes;
            a->file[a->n++].len = f[i].len;
        }
}

static void reflect(svc_ctx *c, const char *by_file, const char *symbol, int list, answer *a)
{
    dfile f[FILES_MAX];
    size_t nf = files(f), i;

    memset(a, 0, sizeof(*a));
    if (list) {
        a->kind = 2;
        for (i = 0; i < nf; i++)
            a->n += services_of(c, &f[i], a->service + a->n, 32 - a->n);
        return;
    }
    for (i = 0; i < nf; i++) {
        if (by_file && same(f[i].name, f[i].name_len, by_file)) {
            add_package(a, f, nf, f[i].pkg, f[i].pkg_len);
            break;
        }
        if (symbol && strlen(symbol) > f[i].pkg_len &&
            memcmp(symbol, f[i].pkg, f[i].pkg_len) == 0 && symbol[f[i].pkg_len] == '.') {
            add_package(a, f, nf, f[i].pkg, f[i].pkg_len);
            break;
        }
    }
    if (a->n) {
        a->kind = 1;
        return;
    }
    a->kind = 3;
    a->err_code = 5; /* NOT_FOUND */
    a->err_msg = by_file ? "file not found" : symbol ? "symbol not found" : "not supported";
}

#define REFLECT_IMPL(V, T, E)                                                                      \
    svc_code rpc_reflect_##V(svc_ctx *c, const void *req, void *resp, svc_status *st)              \
    {                                                                                              \
        const T##ServerReflectionRequest *q = req;                                                 \
        T##ServerReflectionResponse *out = resp;                                                   \
        answer a;                                                                                  \
        size_t i;                                                                                  \
                                                                                                   \
        reflect(c, q->message_request_case == E##FILE_BY_FILENAME ? q->file_by_filename : NULL,    \
                q->message_request_case == E##FILE_CONTAINING_SYMBOL ? q->file_containing_symbol   \
                                                                     : NULL,                       \
                q->message_request_case == E##LIST_SERVICES, &a);                                  \
        out->valid_host = q->host;                                                                 \
        out->original_request = (T##ServerReflectionRequest *)q;                                   \
        if (a.kind == 1) {                                                                         \
            T##FileDescriptorResponse *fr = svc_alloc(c, sizeof(*fr));                             \
            ProtobufCBinaryData *bd = svc_alloc(c, a.n * sizeof(*bd));                             \
            if (!fr || !bd)                                                                        \
                return svc_fail(st, SVC_RESOURCE_EXHAUSTED, "out of call memory");                 \
            V##_file_init(fr);                                                                     \
            memcpy(bd, a.file, a.n * sizeof(*bd));                                                 \
            fr->n_file_descriptor_proto = a.n;                                                     \
            fr->file_descriptor_proto = bd;                                                        \
            out->message_response_case = V##_CASE_FILES;                                           \
            out->file_descriptor_response = fr;                                                    \
        } else if (a.kind == 2) {                                                                  \
            T##ListServiceResponse *lr = svc_alloc(c, sizeof(*lr));                                \
            T##ServiceResponse **sv = svc_alloc(c, (a.n + 1) * sizeof(*sv));                       \
            if (!lr || !sv)                                                                        \
                return svc_fail(st, SVC_RESOURCE_EXHAUSTED, "out of call memory");                 \
            V##_list_init(lr);                                                                     \
            for (i = 0; i < a.n; i++) {                                                            \
                sv[i] = svc_alloc(c, sizeof(**sv));                                                \
                if (!sv[i])                                                                        \
                    return svc_fail(st, SVC_RESOURCE_EXHAUSTED, "out of call memory");             \
                V##_service_init(sv[i]);                                                           \
                sv[i]->name = a.service[i];                                                        \
            }                                                                                      \
            lr->n_service = a.n;                                                                   \
            lr->service = sv;                                                                      \
            out->message_response_case = V##_CASE_LIST;                                            \
            out->list_services_response = lr;                                                      \
        } else {                                                                                   \
            T##ErrorResponse *er = svc_alloc(c, sizeof(*er));                                      \
            if (!er)                                                                               \
                return svc_fail(st, SVC_RESOURCE_EXHAUSTED, "out of call memory");                 \
            V##_error_init(er);                                                                    \
            er->error_code = a.err_code;                                                           \
            er->error_message = (char *)a.err_msg;                                                 \
            out->message_response_case = V##_CASE_ERROR;                                           \
            out->error_response = er;                                                              \
        }                                                                                          \
        return SVC_OK;                                                                             \
    }

#define v1alpha_file_init grpc__reflection__v1alpha__file_descriptor_response__init
#define v1alpha_list_init grpc__reflection__v1alpha__list_service_response__init
#define v1alpha_service_init grpc__reflection__v1alpha__service_response__init
#define v1alpha_error_init grpc__reflection__v1alpha__error_response__init
#define v1alpha_CASE_FILES                                                                         \
    GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE
#define v1alpha_CASE_LIST                                                                          \
    GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE
#define v1alpha_CASE_ERROR                                                                         \
    GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE
REFLECT_IMPL(v1alpha, Grpc__Reflection__V1alpha__,
             GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_)

#define v1_file_init grpc__reflection__v1__file_descriptor_response__init
#define v1_list_init grpc__reflection__v1__list_service_response__init
#define v1_service_init grpc__reflection__v1__service_response__init
#define v1_error_init grpc__reflection__v1__error_response__init
#define v1_CASE_FILES                                                                              \
    GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE
#define v1_CASE_LIST                                                                               \
    GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE
#define v1_CASE_ERROR                                                                              \
    GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE
REFLECT_IMPL(v1, Grpc__Reflection__V1__,
             GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_)
