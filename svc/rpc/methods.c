/*
 * methods.c - every method tracesvc serves, as data: path, kind, who may
 * call it, message types, handler, how many request slots to arm, and for
 * the hot path the hand-written codecs. Methods of the contract not listed
 * here answer UNIMPLEMENTED.
 */
#include "rpc_int.h"
#include "audit_api.h"
#include "fastpb.h"
#include "limit.h"

#include "grpc/health/v1/health.pb-c.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "grpc/reflection/v1alpha/reflection.pb-c.h"
#include "tracecode/v1/audit.pb-c.h"
#include "tracecode/v1/consumer.pb-c.h"
#include "tracecode/v1/issuer.pb-c.h"
#include "tracecode/v1/registry.pb-c.h"
#include "tracecode/v1/verifier.pb-c.h"

#define REGISTRY (SVC_ROLE_REGULATOR | SVC_ROLE_CERTIFIER)
#define LIMIT(n) (1 + (n))
#define D(name) &tracecode__v1__##name##__descriptor
/* A unary method answered from memory (the replica, the keyring). */
#define UNARY(p, role, i, o, h, n)                                                                 \
    {                                                                                              \
        .path = p, .kind = RPC_UNARY, .roles = role, .in = i, .out = o, .unary = h, .slots = n     \
    }
/* A unary method whose handler waits on Redis: the write workers serve it. */
#define UNARY_REDIS(p, role, i, o, h, n)                                                           \
    {                                                                                              \
        .path = p, .kind = RPC_UNARY, .roles = role, .in = i, .out = o, .unary = h, .slots = n,    \
        .blocking = 1                                                                              \
    }

const rpc_method rpc_methods[] = {
    /* VerifierService: the hot path gets the most slots and lean codecs. */
    {.path = "/tracecode.v1.VerifierService/VerifyCode",
     .kind = RPC_UNARY,
     .roles = SVC_ROLE_PLATFORM,
     .in = D(verify_code_request),
     .out = D(verify_code_response),
     .unary = api_verify_code,
     .limit = LIMIT(LIMIT_VERIFY_SHARE),
     .slots = 64,
     .decode = fastpb_decode_verify_code_request,
     .encoded_size = fastpb_size_verify_code_response,
     .encode = fastpb_encode_verify_code_response},
    {.path = "/tracecode.v1.VerifierService/VerifyBatch",
     .kind = RPC_UNARY,
     .roles = SVC_ROLE_PLATFORM,
     .in = D(verify_batch_request),
     .out = D(verify_batch_response),
     .unary = api_verify_batch,
     .limit = LIMIT(LIMIT_VERIFY_SHARE),
     .slots = 32,
     .decode = fastpb_decode_verify_batch_request,
     .encoded_size = fastpb_size_verify_batch_response,
     .encode = fastpb_encode_verify_batch_response},
    {.path = "/tracecode.v1.VerifierService/VerifyStream",
     .kind = RPC_BIDI,
     .roles = SVC_ROLE_PLATFORM,
     .in = D(verify_stream_request),
     .out = D(verify_stream_response),
     .unary = api_verify_code, /* same fields and layout as VerifyCode */
     .limit = LIMIT(LIMIT_VERIFY_SHARE),
     .slots = 16,
     .decode = fastpb_decode_verify_stream_request,
     .encoded_size = fastpb_size_verify_code_response,
     .encode = fastpb_encode_verify_code_response},

    UNARY_REDIS("/tracecode.v1.VerifierService/RegisterListings", SVC_ROLE_PLATFORM,
                D(register_listings_request), D(register_listings_response), api_register_listings,
                4),
    /* Watchers are long-lived and mostly idle: many slots, each parked
     * without a thread while it waits (see delist.h). */
    {.path = "/tracecode.v1.VerifierService/WatchDelistings",
     .kind = RPC_SERVER_STREAM,
     .roles = SVC_ROLE_PLATFORM,
     .in = D(watch_delistings_request),
     .out = D(watch_delistings_response),
     .open = api_watch_open,
     .next = api_watch_next,
     .close = api_watch_close,
     .limit = LIMIT(LIMIT_WATCH_STREAMS),
     .slots = 64,
     .blocking = 1},
    UNARY_REDIS("/tracecode.v1.VerifierService/AckDelisting", SVC_ROLE_PLATFORM,
                D(ack_delisting_request), D(ack_delisting_response), api_ack_delisting, 8),
    UNARY_REDIS("/tracecode.v1.VerifierService/ReportSales", SVC_ROLE_PLATFORM,
                D(report_sales_request), D(report_sales_response), api_report_sales, 8),
    UNARY_REDIS("/tracecode.v1.VerifierService/UndoSale", SVC_ROLE_PLATFORM, D(undo_sale_request),
                D(undo_sale_response), api_undo_sale, 4),

    /* IssuerService */
    UNARY_REDIS("/tracecode.v1.IssuerService/RegisterProduct", SVC_ROLE_MANUFACTURER,
                D(register_product_request), D(register_product_response), api_register_product, 4),
    {.path = "/tracecode.v1.IssuerService/IssueCodes",
     .kind = RPC_SERVER_STREAM,
     .roles = SVC_ROLE_MANUFACTURER,
     .in = D(issue_codes_request),
     .out = D(issue_codes_response),
     .open = api_issue_open,
     .next = api_issue_next,
     .limit = LIMIT(LIMIT_ISSUE_STREAMS),
     .slots = 4,
     .blocking = 1},
    UNARY_REDIS("/tracecode.v1.IssuerService/GetBatch", SVC_ROLE_MANUFACTURER, D(get_batch_request),
                D(get_batch_response), api_get_batch, 4),
    UNARY_REDIS("/tracecode.v1.IssuerService/UpdateProduct", SVC_ROLE_MANUFACTURER,
                D(update_product_request), D(update_product_response), api_update_product, 4),
    UNARY("/tracecode.v1.IssuerService/GetProduct", SVC_ROLE_MANUFACTURER, D(get_product_request),
          D(get_product_response), api_get_product, 4),
    UNARY_REDIS("/tracecode.v1.IssuerService/RecallBatch", SVC_ROLE_MANUFACTURER,
                D(recall_batch_request), D(recall_batch_response), api_recall_batch, 4),

    /* RegistryService */
    UNARY_REDIS("/tracecode.v1.RegistryService/UpsertManufacturer", REGISTRY,
                D(upsert_manufacturer_request), D(upsert_manufacturer_response),
                api_upsert_manufacturer, 4),
    UNARY_REDIS("/tracecode.v1.RegistryService/UpsertCertificate", REGISTRY,
                D(upsert_certificate_request), D(upsert_certificate_response),
                api_upsert_certificate, 4),
    UNARY_REDIS("/tracecode.v1.RegistryService/SetCertificateStatus", REGISTRY,
                D(set_certificate_status_request), D(set_certificate_status_response),
                api_set_certificate_status, 4),
    UNARY("/tracecode.v1.RegistryService/GetCertificate", REGISTRY, D(get_certificate_request),
          D(get_certificate_response), api_get_certificate, 4),
    {.path = "/tracecode.v1.RegistryService/ImportCertificates",
     .kind = RPC_CLIENT_STREAM,
     .roles = REGISTRY,
     .in = D(import_certificates_request),
     .out = D(import_certificates_response),
     .push = api_import_push,
     .finish = api_import_finish,
     .slots = 2,
     .blocking = 1},

    /* The deployment's keys: regulators only. */
    UNARY_REDIS("/tracecode.v1.RegistryService/ListKeys", SVC_ROLE_REGULATOR, D(list_keys_request),
                D(list_keys_response), api_list_keys, 2),
    UNARY_REDIS("/tracecode.v1.RegistryService/ActivateKey", SVC_ROLE_REGULATOR,
                D(activate_key_request), D(activate_key_response), api_activate_key, 2),
    UNARY_REDIS("/tracecode.v1.RegistryService/CompromiseKey", SVC_ROLE_REGULATOR,
                D(compromise_key_request), D(compromise_key_response), api_compromise_key, 2),

    /* ConsumerService: platform-hosted scan pages (any platform). */
    UNARY_REDIS("/tracecode.v1.ConsumerService/Scan", SVC_ROLE_PLATFORM, D(scan_request),
                D(scan_response), api_scan, 16),
    UNARY_REDIS("/tracecode.v1.ConsumerService/ReportProblem", SVC_ROLE_PLATFORM,
                D(report_problem_request), D(report_problem_response), api_report_problem, 4),

    /* AuditService: QueryAudit for regulators; heads and proofs (hashes
     * only) for regulators and certification bodies. */
    {.path = "/tracecode.v1.AuditService/QueryAudit",
     .kind = RPC_SERVER_STREAM,
     .roles = SVC_ROLE_REGULATOR,
     .in = D(query_audit_request),
     .out = D(query_audit_response),
     .open = api_query_audit_open,
     .next = api_query_audit_next,
     .slots = 2,
     .blocking = 1},
    {.path = "/tracecode.v1.AuditService/QueryReports",
     .kind = RPC_SERVER_STREAM,
     .roles = SVC_ROLE_REGULATOR | SVC_ROLE_MANUFACTURER,
     .in = D(query_reports_request),
     .out = D(query_reports_response),
     .open = api_query_reports_open,
     .next = api_query_reports_next,
     .slots = 2,
     .blocking = 1},
    UNARY_REDIS("/tracecode.v1.AuditService/GetTreeHead", REGISTRY, D(get_tree_head_request),
                D(get_tree_head_response), api_get_tree_head, 2),
    UNARY_REDIS("/tracecode.v1.AuditService/GetInclusionProof", REGISTRY,
                D(get_inclusion_proof_request), D(get_inclusion_proof_response),
                api_get_inclusion_proof, 2),
    UNARY_REDIS("/tracecode.v1.AuditService/GetConsistencyProof", REGISTRY,
                D(get_consistency_proof_request), D(get_consistency_proof_response),
                api_get_consistency_proof, 2),
    UNARY_REDIS("/tracecode.v1.AuditService/GetDelistingCompliance", REGISTRY,
                D(get_delisting_compliance_request), D(get_delisting_compliance_response),
                api_delisting_compliance, 2),

    /* gRPC protocol services, for everyone. */
    UNARY("/grpc.health.v1.Health/Check", SVC_ROLE_ANY,
          &grpc__health__v1__health_check_request__descriptor,
          &grpc__health__v1__health_check_response__descriptor, rpc_health_check, 4),
    {.path = "/grpc.health.v1.Health/Watch",
     .kind = RPC_SERVER_STREAM,
     .roles = SVC_ROLE_ANY,
     .in = &grpc__health__v1__health_check_request__descriptor,
     .out = &grpc__health__v1__health_check_response__descriptor,
     .open = rpc_health_watch_open,
     .next = rpc_health_watch_next,
     .close = rpc_health_watch_close,
     .slots = 8},
    {.path = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
     .kind = RPC_BIDI,
     .roles = SVC_ROLE_ANY,
     .in = &grpc__reflection__v1alpha__server_reflection_request__descriptor,
     .out = &grpc__reflection__v1alpha__server_reflection_response__descriptor,
     .unary = rpc_reflect_v1alpha,
     .slots = 2},
    {.path = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
     .kind = RPC_BIDI,
     .roles = SVC_ROLE_ANY,
     .in = &grpc__reflection__v1__server_reflection_request__descriptor,
     .out = &grpc__reflection__v1__server_reflection_response__descriptor,
     .unary = rpc_reflect_v1,
     .slots = 2},
};

const size_t rpc_nmethods = sizeof(rpc_methods) / sizeof(rpc_methods[0]);
