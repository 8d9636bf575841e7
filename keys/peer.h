/*
 * peer.h - client certificates: who the caller is, and whether its
 * certificate was revoked. OpenSSL only; the gRPC layer hands over the
 * peer's certificate in PEM and asks.
 *
 * The identity is read from the certificate's subject attributes with the
 * X509_NAME API, never from its printed string: an attribute value may
 * hold ',' '=' or '+' (escaped in RFC 2253 text), and a printed string
 * split on commas would let `O="Shop A,OU=regulator"` pose as a role.
 */
#ifndef TC_KEYS_PEER_H
#define TC_KEYS_PEER_H

#include <stddef.h>
#include <stdint.h>

#define KEYS_PEER_FIELD_MAX 64 /* bytes of OU or CN; longer is refused, never cut */
#define KEYS_PEER_WHY_MAX 160

typedef struct keys_peer_id {
    char ou[KEYS_PEER_FIELD_MAX + 1]; /* the role, as written */
    char cn[KEYS_PEER_FIELD_MAX + 1]; /* the subject */
} keys_peer_id;

/*
 * The OU and CN of the subject of the certificate in pem (len bytes):
 * exactly one of each, each valid UTF-8 of 1..KEYS_PEER_FIELD_MAX bytes
 * without NUL. 0 on success; -1 with a sentence in why (cap bytes, for an
 * UNAUTHENTICATED answer) otherwise. Costs a PEM decode and an X.509
 * parse: callers cache by certificate.
 */
int keys_peer_identity(const char *pem, size_t len, keys_peer_id *id, char *why, size_t cap);

/*
 * A certificate revocation list, its signature verified against the CA
 * certificate that issued it (the server's client CA). Opaque; free with
 * keys_crl_free (NULL is a no-op).
 */
typedef struct keys_crl keys_crl;

/* Load crl_path (PEM or DER) issued by the CA in ca_path (PEM). NULL with
 * a message in err when it cannot be read, does not parse, was not issued
 * by that CA or its signature does not verify. */
keys_crl *keys_crl_load(const char *crl_path, const char *ca_path, char *err, size_t cap);
void keys_crl_free(keys_crl *crl);
/* Entries on the list. */
size_t keys_crl_count(const keys_crl *crl);

/* 1 when the certificate in pem is on the list (same issuer, same serial),
 * 0 when it is not, -1 when pem is not a certificate. */
int keys_crl_revoked(const keys_crl *crl, const char *pem, size_t len);

#endif
