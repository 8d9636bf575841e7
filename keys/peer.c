/*
 * peer.c - see peer.h.
 */
#include "peer.h"

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct keys_crl {
    X509_CRL *crl;
};

static int say(char *why, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int say(char *why, size_t cap, const char *fmt, ...)
{
    va_list ap;

    if (why && cap) {
        va_start(ap, fmt);
        vsnprintf(why, cap, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static X509 *parse_cert(const char *pem, size_t len)
{
    BIO *b;
    X509 *x;

    if (len > (size_t)INT32_MAX)
        return NULL;
    b = BIO_new_mem_buf(pem, (int)len);
    if (!b)
        return NULL;
    x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    return x;
}

/* The one value of attribute nid in name, as UTF-8 into out. */
static int one_field(const X509_NAME *name, int nid, const char *label, char *out, size_t outcap,
                     char *why, size_t cap)
{
    int at = X509_NAME_get_index_by_NID(name, nid, -1), n;
    unsigned char *utf8 = NULL;
    const ASN1_STRING *v;

    if (at < 0)
        return say(why, cap, "the client certificate's subject has no %s", label);
    if (X509_NAME_get_index_by_NID(name, nid, at) >= 0)
        return say(why, cap,
                   "the client certificate's subject has more than one %s; it must name "
                   "exactly one",
                   label);
    v = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, at));
    n = ASN1_STRING_to_UTF8(&utf8, v);
    if (n < 0)
        return say(why, cap, "the client certificate's %s is not readable text", label);
    if (n == 0 || (size_t)n >= outcap || memchr(utf8, '\0', (size_t)n)) {
        OPENSSL_free(utf8);
        return say(why, cap,
                   "the client certificate's %s is empty, longer than %zu bytes or holds a "
                   "NUL byte",
                   label, outcap - 1);
    }
    memcpy(out, utf8, (size_t)n);
    out[n] = '\0';
    OPENSSL_free(utf8);
    return 0;
}

int keys_peer_identity(const char *pem, size_t len, keys_peer_id *id, char *why, size_t cap)
{
    X509 *x = parse_cert(pem, len);
    const X509_NAME *name;
    int rc;

    memset(id, 0, sizeof(*id));
    if (!x)
        return say(why, cap, "the client certificate could not be read");
    name = X509_get_subject_name(x);
    rc = one_field(name, NID_organizationalUnitName, "OU (the role)", id->ou, sizeof(id->ou), why,
                   cap);
    if (rc == 0)
        rc = one_field(name, NID_commonName, "CN (the subject)", id->cn, sizeof(id->cn), why, cap);
    X509_free(x);
    return rc;
}

keys_crl *keys_crl_load(const char *crl_path, const char *ca_path, char *err, size_t cap)
{
    X509_CRL *crl = NULL;
    X509 *ca = NULL;
    keys_crl *out = NULL;
    FILE *f;

    f = fopen(crl_path, "rb");
    if (!f) {
        say(err, cap, "cannot open the CRL %s", crl_path);
        return NULL;
    }
    crl = PEM_read_X509_CRL(f, NULL, NULL, NULL);
    if (!crl) {
        rewind(f);
        crl = d2i_X509_CRL_fp(f, NULL);
    }
    fclose(f);
    if (!crl) {
        say(err, cap, "%s is not a CRL (PEM or DER)", crl_path);
        goto out;
    }
    f = fopen(ca_path, "rb");
    if (!f) {
        say(err, cap, "cannot open the client CA %s", ca_path);
        goto out;
    }
    ca = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (!ca) {
        say(err, cap, "%s is not a PEM certificate", ca_path);
        goto out;
    }
    if (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(ca)) != 0) {
        say(err, cap, "the CRL %s was not issued by the client CA %s", crl_path, ca_path);
        goto out;
    }
    if (X509_CRL_verify(crl, X509_get0_pubkey(ca)) != 1) {
        say(err, cap, "the signature of the CRL %s does not verify with the client CA", crl_path);
        goto out;
    }
    out = OPENSSL_zalloc(sizeof(*out));
    if (!out) {
        say(err, cap, "out of memory");
        goto out;
    }
    out->crl = crl;
    crl = NULL;
out:
    X509_CRL_free(crl);
    X509_free(ca);
    return out;
}

void keys_crl_free(keys_crl *crl)
{
    if (!crl)
        return;
    X509_CRL_free(crl->crl);
    OPENSSL_free(crl);
}

size_t keys_crl_count(const keys_crl *crl)
{
    STACK_OF(X509_REVOKED) *r = X509_CRL_get_REVOKED(crl->crl);

    return r ? (size_t)sk_X509_REVOKED_num(r) : 0;
}

int keys_crl_revoked(const keys_crl *crl, const char *pem, size_t len)
{
    X509 *x = parse_cert(pem, len);
    X509_REVOKED *entry = NULL;
    int hit;

    if (!x)
        return -1;
    /* Matches issuer and serial (and the entry's certificate issuer, for
     * indirect CRLs). */
    hit = X509_CRL_get0_by_cert(crl->crl, &entry, x) == 1;
    X509_free(x);
    return hit;
}
