/*
 * services.c - gRPC's own protocols: health checking, and server
 * reflection answered from the descriptor set embedded at build time
 * (tracecode.v1 plus the health and reflection protos), so grpcurl and
 * other clients can list and call services without our .proto files.
 */
#include "rpc_int.h"
#include "fastpb.h"

#include "grpc/health/v1/health.pb-c.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "grpc/reflection/v1alpha/reflection.pb-c.h"

#include <string.h>

extern const unsigned char tc_descriptor_set[];
extern const size_t tc_descriptor_set_len;

svc_code rpc_health_check(svc_ctx *c, const void *req, void *resp, svc_status *st)
{
    const Grpc__Health__V1__HealthCheckRequest *q = req;
    Grpc__Health__V1__HealthCheckResponse *out = resp;
    size_t i;

    (void)c;
    if (q->service[0]) {
        for (i = 0; i < rpc_nmethods; i++) {
            const char *p = rpc_methods[i].path + 1, *slash = strchr(p, '/');
            if (slash && strlen(q->service) == (size_t)(slash - p) &&
                memcmp(p, q->service, (size_t)(slash - p)) == 0)
                break;
        }
        if (i == rpc_nmethods)
            return svc_fail(st, SVC_NOT_FOUND, "service %.200s is not served here", q->service);
    }
    out->status = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
    return SVC_OK;
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
