/*
 * methods.c - every method tracesvc serves, as data: path, kind, who may
 * call it, message types, handler, and how many request slots to arm.
 * Methods of the contract not listed here answer UNIMPLEMENTED.
 */
#include "rpc_int.h"

#include "grpc/health/v1/health.pb-c.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "grpc/reflection/v1alpha/reflection.pb-c.h"
#include "tracecode/v1/issuer.pb-c.h"
#include "tracecode/v1/registry.pb-c.h"
#include "tracecode/v1/verifier.pb-c.h"

#define REGISTRY (SVC_ROLE_REGULATOR | SVC_ROLE_CERTIFIER)
#define ISSUER SVC_ROLE_MANUFACTURER
#define VERIFIER SVC_ROLE_PLATFORM
#define D(name) &tracecode__v1__##name##__descriptor

const rpc_method rpc_methods[] = {
    /* VerifierService: the hot path gets the most slots. */
    {"/tracecode.v1.VerifierService/VerifyCode", RPC_UNARY, VERIFIER, D(verify_request),
     D(verify_response), api_verify_code, NULL, NULL, NULL, NULL, 64},
    {"/tracecode.v1.VerifierService/VerifyBatch", RPC_UNARY, VERIFIER, D(verify_batch_request),
     D(verify_batch_response), api_verify_batch, NULL, NULL, NULL, NULL, 32},
    {"/tracecode.v1.VerifierService/VerifyStream", RPC_BIDI, VERIFIER, D(verify_request),
     D(verify_response), api_verify_code, NULL, NULL, NULL, NULL, 16},

    /* IssuerService */
    {"/tracecode.v1.IssuerService/RegisterProduct", RPC_UNARY, ISSUER,
     D(register_product_request), D(product), api_register_product, NULL, NULL, NULL, NULL, 4},
    {"/tracecode.v1.IssuerService/IssueCodes", RPC_SERVER_STREAM, ISSUER,
     D(issue_codes_request), D(issue_codes_response), NULL, api_issue_open, api_issue_next, NULL,
     NULL, 4},
    {"/tracecode.v1.IssuerService/GetBatch", RPC_UNARY, ISSUER, D(get_batch_request), D(batch),
     api_get_batch, NULL, NULL, NULL, NULL, 4},
    {"/tracecode.v1.IssuerService/RecallBatch", RPC_UNARY, ISSUER, D(recall_batch_request),
     D(recall_batch_response), api_recall_batch, NULL, NULL, NULL, NULL, 4},

    /* RegistryService */
    {"/tracecode.v1.RegistryService/UpsertManufacturer", RPC_UNARY, REGISTRY, D(manufacturer),
     D(manufacturer), api_upsert_manufacturer, NULL, NULL, NULL, NULL, 4},
    {"/tracecode.v1.RegistryService/UpsertCertificate", RPC_UNARY, REGISTRY, D(certificate),
     D(certificate), api_upsert_certificate, NULL, NULL, NULL, NULL, 4},
    {"/tracecode.v1.RegistryService/SetCertificateStatus", RPC_UNARY, REGISTRY,
     D(set_certificate_status_request), D(set_certificate_status_response),
     api_set_certificate_status, NULL, NULL, NULL, NULL, 4},
    {"/tracecode.v1.RegistryService/GetCertificate", RPC_UNARY, REGISTRY,
     D(get_certificate_request), D(certificate), api_get_certificate, NULL, NULL, NULL, NULL, 4},
    {"/tracecode.v1.RegistryService/ImportCertificates", RPC_CLIENT_STREAM, REGISTRY,
     D(certificate), D(import_certificates_response), NULL, NULL, NULL, api_import_push,
     api_import_finish, 2},

    /* gRPC protocol services, for everyone. */
    {"/grpc.health.v1.Health/Check", RPC_UNARY, SVC_ROLE_ANY,
     &grpc__health__v1__health_check_request__descriptor,
     &grpc__health__v1__health_check_response__descriptor, rpc_health_check, NULL, NULL, NULL,
     NULL, 4},
    {"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", RPC_BIDI, SVC_ROLE_ANY,
     &grpc__reflection__v1alpha__server_reflection_request__descriptor,
     &grpc__reflection__v1alpha__server_reflection_response__descriptor, rpc_reflect_v1alpha,
     NULL, NULL, NULL, NULL, 2},
    {"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", RPC_BIDI, SVC_ROLE_ANY,
     &grpc__reflection__v1__server_reflection_request__descriptor,
     &grpc__reflection__v1__server_reflection_response__descriptor, rpc_reflect_v1, NULL, NULL,
     NULL, NULL, 2},
};

const size_t rpc_nmethods = sizeof(rpc_methods) / sizeof(rpc_methods[0]);
