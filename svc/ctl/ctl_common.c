/*
 * ctl_common.c - tracectl's helpers: messages, JSON strings, names of
 * enum values, parsing numbers and lists.
 */
#include "ctl.h"

static void say(const char *fmt, va_list ap)
{
    fputs("tracectl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

int fail(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    say(fmt, ap);
    va_end(ap);
    return CTL_USAGE;
}

int fail_local(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    say(fmt, ap);
    va_end(ap);
    return CTL_LOCAL;
}

int rpc_failed(const rpc_result *r)
{
    fprintf(stderr, "tracectl: %s: %s\n", rpc_code_name(r->code), r->msg);
    switch (r->code) {
    case 3:  /* INVALID_ARGUMENT */
    case 5:  /* NOT_FOUND */
    case 6:  /* ALREADY_EXISTS */
    case 7:  /* PERMISSION_DENIED */
    case 9:  /* FAILED_PRECONDITION */
    case 11: /* OUT_OF_RANGE */
    case 16: /* UNAUTHENTICATED */
        return CTL_NO;
    default:
        return CTL_SERVER;
    }
}

/* JSON string with escapes. */
void jstr(const char *s)
{
    char out[CODEC_JSON_ESCAPED_MAX(64) + 1];
    size_t n = s ? strlen(s) : 0, i, k;

    putchar('"');
    for (i = 0; i < n; i += k) { /* 64 bytes at a time: always fits */
        k = n - i < 64 ? n - i : 64;
        fwrite(out, 1, codec_json_escape(s + i, k, out, sizeof(out)), stdout);
    }
    putchar('"');
}

/* An enum value's name without its enum's prefix ("GENUINE", "VALID"):
 * tracectl's own output, text and JSON, keeps the short names. */
const char *enum_name(const ProtobufCEnumDescriptor *d, int v, const char *prefix)
{
    const ProtobufCEnumValue *e = protobuf_c_enum_descriptor_get_value(d, v);
    size_t n = strlen(prefix);

    if (!e)
        return "UNSPECIFIED";
    return strncmp(e->name, prefix, n) == 0 ? e->name + n : e->name;
}

const char *verdict_name(int v)
{
    return enum_name(&tracecode__v1__verdict__descriptor, v, "VERDICT_");
}

const char *cert_status_name(int v)
{
    return enum_name(&tracecode__v1__certificate_status__descriptor, v, "CERTIFICATE_STATUS_");
}

const char *problem_reason_name(int v)
{
    return enum_name(&tracecode__v1__problem_reason__descriptor, v, "PROBLEM_REASON_");
}

int parse_status(const char *s)
{
    if (!s)
        return 0;
    if (!strcmp(s, "valid") || !strcmp(s, "VALID"))
        return TRACECODE__V1__CERTIFICATE_STATUS__CERTIFICATE_STATUS_VALID;
    if (!strcmp(s, "suspended") || !strcmp(s, "SUSPENDED"))
        return TRACECODE__V1__CERTIFICATE_STATUS__CERTIFICATE_STATUS_SUSPENDED;
    if (!strcmp(s, "revoked") || !strcmp(s, "REVOKED"))
        return TRACECODE__V1__CERTIFICATE_STATUS__CERTIFICATE_STATUS_REVOKED;
    if (!strcmp(s, "expired") || !strcmp(s, "EXPIRED"))
        return TRACECODE__V1__CERTIFICATE_STATUS__CERTIFICATE_STATUS_EXPIRED;
    if (!strcmp(s, "cancelled") || !strcmp(s, "CANCELLED"))
        return TRACECODE__V1__CERTIFICATE_STATUS__CERTIFICATE_STATUS_CANCELLED;
    return -1;
}

int parse_kind(const char *s)
{
    if (!s || !strcmp(s, "ccc") || !strcmp(s, "CCC"))
        return TRACECODE__V1__CERTIFICATE_KIND__CERTIFICATE_KIND_CCC;
    if (!strcmp(s, "licence") || !strcmp(s, "PRODUCTION_LICENCE"))
        return TRACECODE__V1__CERTIFICATE_KIND__CERTIFICATE_KIND_PRODUCTION_LICENCE;
    return -1;
}

int parse_u64(const char *s, unsigned long long max, unsigned long long *out)
{
    char *end;
    unsigned long long v;

    if (!s || !*s || *s == '-' || *s == '+')
        return 0;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || *end || v > max)
        return 0;
    *out = v;
    return 1;
}

/* Split "a,b,c" in place into up to max pieces. */
size_t split(char *s, char sep, char **out, size_t max)
{
    size_t n = 0;

    while (s && *s && n < max) {
        char *e = strchr(s, sep);
        if (e)
            *e = '\0';
        if (*s)
            out[n++] = s;
        s = e ? e + 1 : NULL;
    }
    return n;
}

void print_cert(const opts *o, const Tracecode__V1__Certificate *c)
{
    size_t i;

    if (o->json) {
        printf("{\"number\":");
        jstr(c->number);
        printf(",\"holder_credit_code\":");
        jstr(c->holder_credit_code);
        printf(",\"status\":\"%s\",\"status_reason\":", cert_status_name(c->status));
        jstr(c->status_reason);
        printf(",\"category_codes\":[");
        for (i = 0; i < c->n_category_codes; i++) {
            if (i)
                putchar(',');
            jstr(c->category_codes[i]);
        }
        printf("],\"valid_until_unix\":%" PRId64 "}\n", c->valid_until_unix);
        return;
    }
    printf("certificate %s held by %s: %s%s%s, categories", c->number, c->holder_credit_code,
           cert_status_name(c->status), c->status_reason[0] ? " - " : "", c->status_reason);
    for (i = 0; i < c->n_category_codes; i++)
        printf("%s%s", i ? "," : " ", c->category_codes[i]);
    putchar('\n');
}

/* Split one CSV line (RFC 4180 quoting) in place. Returns the field count
 * or -1 for an unterminated quote. */
int csv_fields(char *line, char **f, int max)
{
    int n = 0;
    char *p = line, *w;

    for (;;) {
        if (n == max)
            return n;
        if (*p == '"') {
            f[n++] = w = ++p;
            for (;;) {
                if (!*p)
                    return -1;
                if (*p == '"' && p[1] == '"') {
                    *w++ = '"';
                    p += 2;
                } else if (*p == '"') {
                    p++;
                    break;
                } else {
                    *w++ = *p++;
                }
            }
            *w = '\0';
            if (*p != ',' && *p)
                return -1;
        } else {
            f[n++] = p;
            p += strcspn(p, ",");
        }
        if (!*p)
            return n;
        *p++ = '\0';
    }
}
