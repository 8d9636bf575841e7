/*
 * tls.h - TLS to Redis for a hiredis without TLS (Debian 12's 0.14): a
 * bridge in the process. It listens on a Unix socket in a private
 * directory; each connection made to it is carried over its own TLS
 * connection to Redis (server certificate verified against the CA and the
 * host name, client certificate when given). hiredis, blocking and async
 * alike, dials the socket as it would a local Redis. OpenSSL only; no
 * hiredis here.
 */
#ifndef TC_STORE_TLS_H
#define TC_STORE_TLS_H

#include <stddef.h>

typedef struct st_tls st_tls;

typedef struct st_tls_opts {
    const char *ca;   /* PEM file of the CAs to trust; NULL: the system's */
    const char *cert; /* client certificate (PEM), or NULL */
    const char *key;  /* its private key (PEM), or NULL */
    const char *sni;  /* name to expect in the server's certificate; NULL: host */
} st_tls_opts;

/* A bridge to host:port. The socket's path into path (cap >= 108). -1
 * with err set when the CA, certificate or key cannot be used or the
 * socket cannot be made. */
int st_tls_start(const char *host, int port, const st_tls_opts *o, st_tls **out, char *path,
                 size_t cap, char *err, size_t errcap);
/* Why the last connection through the bridge failed ("" when the last one
 * did not): 1 when Redis or its certificate was refused (waiting will not
 * mend it), else 0. */
int st_tls_last_error(st_tls *t, char *out, size_t cap);
/* Stop accepting, remove the socket, end the connections still open and
 * wait for their threads. */
void st_tls_free(st_tls *t);

#endif
