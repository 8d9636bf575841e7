/*
 * ctl.h - what tracectl's files share: the options, the helpers that print
 * and parse, and one function per command (tracectl.c dispatches).
 */
#ifndef TC_CTL_H
#define TC_CTL_H

#include "auditor.h"
#include "client.h"
#include "codec.h"
#include "labels.h"
#include "merkle.h"
#include "tracecode/v1/audit.pb-c.h"
#include "tracecode/v1/issuer.pb-c.h"
#include "tracecode/v1/registry.pb-c.h"
#include "tracecode/v1/verifier.pb-c.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define VERIFY_CHUNK 1000
#define CSV_LINE_MAX 8192
#define CSV_FIELDS_MAX 16

typedef struct opts {
    rpc_client_opts conn;
    int json, suspended, full;
    const char *holder, *categories, *kind, *status, *reason, *certificate, *category, *brand;
    const char *model, *gtin, *profile, *request_id, *out, *sheet, *base_url, *file;
    const char *l_category, *l_brand, *l_model, *cursor_file, *exec, *public_keys, *since;
    const char *production_date, *lot;
    long long index;
    unsigned long count;
    long long delisted, from, to;
    long long valid_until;
    unsigned long quantity, chunk;
    int have_valid_until;
    const char *given[64]; /* the long options given, for the command to check */
    int ngiven;
} opts;

/*
 * Exit statuses, so a script can tell a negative answer from a broken one
 * (tracectl help, docs/OPERATIONS.md):
 */
enum {
    CTL_OK = 0,     /* done; every code genuine, the log verified */
    CTL_NO = 1,     /* answered no, and asking again will not change it: a code
                     * not genuine, a listing not bound, an audit that does not
                     * verify, a request the service refuses for what it asks
                     * (NOT_FOUND, ALREADY_EXISTS, FAILED_PRECONDITION,
                     * INVALID_ARGUMENT, OUT_OF_RANGE, PERMISSION_DENIED,
                     * UNAUTHENTICATED) */
    CTL_USAGE = 2,  /* the command, an option or an input file is wrong */
    CTL_SERVER = 3, /* no answer, try again later: the server cannot be reached
                     * or timed out, is busy (RESOURCE_EXHAUSTED, ABORTED) or
                     * failed (INTERNAL, UNKNOWN, ...) */
    CTL_LOCAL = 4,  /* a local file cannot be read or written, a --exec hook
                     * failed, out of memory */
};

/* The usage on stderr; returns CTL_USAGE. */
int usage(void);
/* "tracectl: " and the message on stderr; returns CTL_USAGE. */
int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same for a local failure (a file, memory); returns CTL_LOCAL. */
int fail_local(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The call's status on stderr; returns CTL_NO or CTL_SERVER by its code. */
int rpc_failed(const rpc_result *r);
void jstr(const char *s);
const char *enum_name(const ProtobufCEnumDescriptor *d, int v, const char *prefix);
const char *verdict_name(int v);
const char *cert_status_name(int v);
const char *problem_reason_name(int v);
int parse_status(const char *s);
int parse_kind(const char *s);
int parse_u64(const char *s, unsigned long long max, unsigned long long *out);
size_t split(char *s, char sep, char **out, size_t max);
/* Split one CSV line (RFC 4180 quoting) in place: the field count, or -1
 * for an unterminated quote. */
int csv_fields(char *line, char **f, int max);
void print_cert(const opts *o, const Tracecode__V1__Certificate *c);

/* The commands: argc/argv after the command's name. */
int cmd_manufacturer(rpc_client *cl, const opts *o, int argc, char **argv);
int cmd_cert(rpc_client *cl, const opts *o, int argc, char **argv);
int cmd_product(rpc_client *cl, const opts *o, int argc, char **argv);
int cmd_keys(rpc_client *cl, const opts *o, int argc, char **argv);
int cmd_issue(rpc_client *cl, const opts *o, int argc, char **argv);
int cmd_batch(rpc_client *cl, const opts *o, int argc, char **argv);
int cmd_recall(rpc_client *cl, const opts *o, int argc, char **argv);
int cmd_verify(rpc_client *cl, const opts *o, int argc, char **argv);
int cmd_listings(rpc_client *cl, const opts *o, int argc, char **argv);
int cmd_watch(rpc_client *cl, const opts *o, int argc, char **argv);
int cmd_ack(rpc_client *cl, const opts *o, int argc, char **argv);
int cmd_compliance(rpc_client *cl, const opts *o, int argc, char **argv);
int cmd_audit(rpc_client *cl, const opts *o, int argc, char **argv);
int cmd_sales(rpc_client *cl, const opts *o, int argc, char **argv);
int cmd_reports(rpc_client *cl, const opts *o, int argc, char **argv);
/* A product (ctl_product.c): show it, replace its passport from a file. */
int product_show(rpc_client *cl, const opts *o, const char *id);
int product_update(rpc_client *cl, const opts *o, const char *id);

#endif
