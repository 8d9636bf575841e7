/*
 * config.c - tracesvc's flags as one table: the usage text (--help), the
 * manual page (--man), the TRACESVC_* environment names, parsing and range
 * errors, --version.
 */
#include "config.h"
#include "codec.h"
#include "commit_gen.h"
#include "delist.h"
#include "http.h"
#include "rpc.h"
#include "store.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * Every flag, once: its name (the environment's is TRACESVC_ and the name
 * upper-cased, '-' as '_'), its argument, where it goes, its range and
 * default, and its line of help. The usage text, the environment, parsing
 * and range errors all come from this table.
 */
enum { F_STR, F_NUM, F_SWITCH, F_LIST };
typedef struct flag {
    const char *name, *arg;
    int kind;
    size_t off;
    long min, max, def;
    const char *unit, *help;
} flag;

#define STR(n, field, a, h)                                                                        \
    {                                                                                              \
        n, a, F_STR, offsetof(config, field), 0, 0, 0, NULL, h                                     \
    }
#define NUM(n, field, a, lo, hi, d, u, h)                                                          \
    {                                                                                              \
        n, a, F_NUM, offsetof(config, field), lo, hi, d, u, h                                      \
    }
static const flag flags[] = {
    STR("redis", redis, "URL", "Redis: redis://, rediss://, unix: or redis-sentinel:// (required)"),
    STR("grpc", grpc, "ADDR:PORT", "the gRPC listener (required; port 0: the kernel picks)"),
    STR("keys", keys, "DIR", "the keyring directory (required)"),
    STR("http", http, "ADDR:PORT", "the consumers' listener: scan pages, their JSON, QR images"),
    STR("access-log", access_log, "FILE",
        "a logfmt line per gRPC call and HTTP request (- for standard error; codes cut to 6 "
        "symbols, no secrets)"),
    STR("admin", admin, "ADDR:PORT",
        "the operators' listener: /metrics, /healthz, /readyz (default 127.0.0.1:0: "
        "loopback, the port printed at start)"),
    {"insecure", NULL, F_SWITCH, offsetof(config, insecure), 0, 0, 0, NULL,
     "plaintext gRPC with the caller's role in metadata; loopback only"},
    {"keys-allow-group-read", NULL, F_SWITCH, offsetof(config, keys_group_read), 0, 0, 0, NULL,
     "take a keyring mounted as a Kubernetes Secret: key files may be links inside --keys and "
     "readable by their group (an fsGroup), never by others"},
    STR("tls-cert", tls_cert, "FILE", "the server's certificate (mTLS)"),
    STR("tls-key", tls_key, "FILE", "its key"),
    STR("client-ca", client_ca, "FILE", "the CA of callers' certificates"),
    STR("client-crl", client_crl, "FILE", "revoked callers' certificates (reloaded on change)"),
    STR("complaint-hotline", hotline, "NUMBER",
        "whom the scan page tells consumers to call about a suspect product (default 12315, "
        "China's market-regulation hotline)"),
    STR("image-origins", image_origins, "ORIGIN[,ORIGIN...]",
        "https origins the scan page shows product images from (its Content-Security-Policy); "
        "images elsewhere are links"),
    STR("base-url", base_url, "URL",
        "the scan pages' public address (default https://tc.example.com)"),
    NUM("threads", threads, "N", 1, 64, 0, "", "gRPC workers (default: one per core)"),
    NUM("write-threads", write_threads, "N", 1, 64, 4, "", "workers for calls that wait on Redis"),
    NUM("max-staleness", max_staleness, "SECONDS", 1, 86400, 5, "seconds",
        "answers are flagged stale past this replica age"),
    NUM("ready-staleness", ready_staleness, "SECONDS", 1, 7L * 86400, 600, "seconds",
        "not ready past this replica age"),
    NUM("notice-retention", retention_s, "SECONDS", 60, 3650L * 86400, 7L * 86400, "seconds",
        "delisting notices kept on the streams"),
    NUM("heartbeat", heartbeat_ms, "MS", 50, 600000, DELIST_HEARTBEAT_MS, "ms",
        "an idle delisting watcher's heartbeat"),
    NUM("watch-buffer", watch_buffer_mib, "MIB", 1, 4096, (long)(DELIST_BUFFER_BYTES >> 20), "MiB",
        "a live watcher's queue bound"),
    NUM("copy-devices", copy_devices, "N", 1, 1000000, 10, "", "devices that make a copied code"),
    NUM("copy-regions", copy_regions, "N", 1, 64, 3, "", "regions that make a copied code"),
    NUM("copy-window", copy_window, "SECONDS", 0, 30L * 86400, 7200, "seconds",
        "how fast a move between provinces is suspect"),
    NUM("sale-undo-window", sale_undo_window, "SECONDS", 0, 365L * 86400, 30L * 86400, "seconds",
        "how long after a sale its platform may undo it (a return)"),
    NUM("scan-ttl", scan_ttl, "SECONDS", 60, 3650L * 86400, 90L * 86400, "seconds",
        "a code's scan history lives this long past its last scan"),
    NUM("http-max-connections", http_max_conns, "N", 1, 1000000, 1024, "",
        "open HTTP connections at most"),
    STR("trusted-proxy", trusted_proxy, "CIDR[,CIDR...]",
        "reverse proxies whose X-Forwarded-For is believed"),
    STR("node-id", node_id, "NAME", "this node's name (default host:port)"),
    STR("limits", limits_file, "FILE", "fair shares and rates"),
    {"limit", "SCOPE:NAME=VALUE", F_LIST, offsetof(config, limit), 0, 0, 0, NULL,
     "one limit, again for more (no environment variable)"},
    NUM("forgery-percent", forgery_percent, "P", 0, 100, 50, "percent",
        "FORGED and MALFORMED share that flags a platform (0: off)"),
    NUM("forgery-min", forgery_min, "N", 1, 1000000000, 1000, "codes",
        "codes over the window before a share counts"),
    NUM("forgery-window", forgery_window, "SECONDS", 1, 600, 60, "seconds",
        "the forgery signal's window"),
    NUM("forgery-throttle", forgery_throttle, "CODES_PER_S", 0, 1000000000, 0, "codes/s",
        "a flagged platform's verification rate on this node (0: none)"),
    NUM("redis-replicas", redis_replicas, "N", 0, 16, 0, "",
        "replicas a write must reach (WAIT) before it is acknowledged"),
    NUM("redis-replicas-wait", redis_replicas_wait, "MS", 10, 60000, 2000, "ms",
        "how long a write waits for them"),
    NUM("redis-start-timeout", redis_start_timeout, "SECONDS", 0, 7L * 86400, 0, "seconds",
        "how long to wait for Redis at start (0: as long as it takes)"),
};
#undef STR
#undef NUM
#define NFLAGS (sizeof(flags) / sizeof(flags[0]))

static void usage_to(FILE *f)
{
    fputs("usage: tracesvc --redis URL --grpc ADDR:PORT --keys DIR [options]\n", f);
    for (size_t i = 0; i < NFLAGS; i++) {
        const flag *g = &flags[i];
        char left[64];
        snprintf(left, sizeof(left), "--%s%s%s", g->name, g->arg ? " " : "", g->arg ? g->arg : "");
        fprintf(f, "  %-34s %s", left, g->help);
        if (g->kind == F_NUM)
            fprintf(f, " [%ld..%ld%s%s]", g->min, g->max, *g->unit ? " " : "", g->unit);
        if (g->kind == F_NUM && g->def)
            fprintf(f, " (default %ld)", g->def);
        fputc('\n', f);
    }
    fputs("  --help, -h                         this text\n"
          "  --version                          the version and build\n"
          "  --man                              the manual page (roff)\n"
          "Every flag but --limit may come from the environment: TRACESVC_ and its name\n"
          "upper-cased, '-' as '_' (TRACESVC_REDIS, TRACESVC_MAX_STALENESS, ...); a flag\n"
          "wins over its variable.\n",
          f);
}

static int usage(void)
{
    usage_to(stderr);
    return 2;
}

/* The variable a flag reads: TRACESVC_ and its name upper-cased. */
static const char *env_name(const flag *g, char *var, size_t cap)
{
    snprintf(var, cap, "TRACESVC_%s", g->name);
    for (size_t k = 9; var[k]; k++)
        var[k] = var[k] == '-' ? '_' : (char)toupper((unsigned char)var[k]);
    return var;
}

/* s as roff text, sliced so no escape is cut. */
static void roff(FILE *f, const char *s)
{
    char buf[CODEC_ROFF_ESCAPED_MAX(256) + 1];

    for (size_t n = strlen(s), k; n; s += k, n -= k) {
        k = n < 256 ? n : 256;
        codec_roff_escape(s, k, buf, sizeof(buf));
        fputs(buf, f);
    }
}

/* tracesvc(8), written from the flag table (the package installs it). */
static void man_to(FILE *f)
{
    char var[64];

    fprintf(f, ".TH TRACESVC 8 \"\" \"tracecode %s\" \"tracecode\"\n", TC_VERSION);
    fputs(".SH NAME\ntracesvc \\- the tracecode service: issue, verify and delist signed product "
          "trace codes\n"
          ".SH SYNOPSIS\n.B tracesvc\n\\fB\\-\\-redis\\fR \\fIURL\\fR \\fB\\-\\-grpc\\fR "
          "\\fIADDR:PORT\\fR \\fB\\-\\-keys\\fR \\fIDIR\\fR [\\fIoptions\\fR]\n"
          ".SH DESCRIPTION\n"
          "tracesvc serves the tracecode gRPC API to manufacturers (issuing codes), platforms "
          "(verifying them and watching for delisting notices), regulators and certifiers; the "
          "consumers' scan pages on \\fB\\-\\-http\\fR; and /metrics, /healthz and /readyz on "
          "\\fB\\-\\-admin\\fR. Redis holds the registry and certificate status; every node "
          "keeps a replica in memory and answers verifications from it. It logs one logfmt line "
          "per event on standard error.\n"
          ".SH OPTIONS\n",
          f);
    for (size_t i = 0; i < NFLAGS; i++) {
        const flag *g = &flags[i];
        fputs(".TP\n\\fB", f);
        roff(f, "--");
        roff(f, g->name);
        fputs("\\fR", f);
        if (g->arg) {
            fputs(" \\fI", f);
            roff(f, g->arg);
            fputs("\\fR", f);
        }
        fputc('\n', f);
        roff(f, g->help);
        if (g->kind == F_NUM)
            fprintf(f, " Range %ld to %ld%s%s", g->min, g->max, *g->unit ? " " : "", g->unit);
        if (g->kind == F_NUM && g->def)
            fprintf(f, "; default %ld", g->def);
        fputs(g->kind == F_NUM ? ".\n" : "\n", f);
    }
    fputs(".TP\n\\fB\\-\\-help\\fR, \\fB\\-h\\fR\nThe options, on standard output.\n"
          ".TP\n\\fB\\-\\-version\\fR\nThe version, the commit and the libraries built with.\n"
          ".TP\n\\fB\\-\\-man\\fR\nThis page (roff).\n"
          ".SH ENVIRONMENT\nEvery option but \\fB\\-\\-limit\\fR may come from a variable; an "
          "option given wins over its variable. A switch is on unless its variable is 0 or "
          "false.\n",
          f);
    for (size_t i = 0; i < NFLAGS; i++)
        if (flags[i].kind != F_LIST) {
            fputs(".TP\n.B ", f);
            roff(f, env_name(&flags[i], var, sizeof(var)));
            fputs("\n", f);
            roff(f, "--");
            roff(f, flags[i].name);
            fputc('\n', f);
        }
    fputs(".SH SIGNALS\n"
          ".TP\n.B SIGHUP\nRead the keyring directory and \\fB\\-\\-client\\-crl\\fR again (both "
          "are also read again when they change).\n"
          ".TP\n.BR SIGTERM \", \" SIGINT\nDrain: /readyz answers 503, calls in progress finish "
          "(up to 10 s), then stop.\n"
          ".SH FILES\n"
          ".TP\n.I /etc/default/tracecode\nThe variables the packaged systemd unit "
          "(tracesvc.service) starts tracesvc with.\n"
          ".TP\n.I /etc/tracecode/keys\nThe keyring the package's defaults name; owned by the "
          "tracecode user, mode 0700 (see tracekeys(1)).\n"
          ".SH EXIT STATUS\n0 stopped after a signal; 1 could not start or serve (said in the "
          "log); 2 a usage or range error.\n"
          ".SH SEE ALSO\ntracectl(1), tracekeys(1), "
          "/usr/share/doc/tracecode/OPERATIONS.md\n",
          f);
}

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return 0;
    *out = v;
    return 1;
}

/* Set flag g from s (given as shown: "--name" or the variable). 0, or 2
 * after saying why. */
static int set_flag(config *c, const flag *g, const char *s, const char *shown)
{
    void *at = (char *)c + g->off;

    switch (g->kind) {
    case F_STR:
        *(const char **)at = s;
        return 0;
    case F_SWITCH:
        *(int *)at = s == NULL || (strcmp(s, "0") != 0 && strcmp(s, "false") != 0);
        return 0;
    case F_LIST:
        if (c->nlimit == (int)(sizeof(c->limit) / sizeof(c->limit[0]))) {
            fprintf(stderr, "tracesvc: at most 64 --limit flags; use --limits FILE\n");
            return 2;
        }
        c->limit[c->nlimit++] = s;
        return 0;
    case F_NUM:
        if (!parse_long(s, g->min, g->max, (long *)at)) {
            fprintf(stderr, "tracesvc: %s '%s' must be %ld..%ld%s%s\n", shown, s, g->min, g->max,
                    *g->unit ? " " : "", g->unit);
            return 2;
        }
        return 0;
    }
    return 2;
}

/* https://HOST[:PORT][,https://HOST[:PORT]...]: at most 8, 512 bytes. */
static int origins_ok(const char *s)
{
    size_t n = 0;

    if (strlen(s) > 512)
        return 0;
    while (*s) {
        size_t k = strcspn(s, ",");
        if (++n > 8 || k <= 8 || strncmp(s, "https://", 8) != 0)
            return 0;
        for (size_t i = 8; i < k; i++)
            if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '-' && s[i] != ':')
                return 0;
        s += k + (s[k] == ',');
    }
    return n > 0;
}

int configure(int argc, char **argv, config *c)
{
    struct option lo[NFLAGS + 4];
    char var[64];
    size_t i;
    int o, li, rc;

    memset(c, 0, sizeof(*c));
    for (i = 0; i < NFLAGS; i++) {
        const flag *g = &flags[i];
        const char *v;

        lo[i] = (struct option){g->name, g->arg ? required_argument : no_argument, 0, (int)i};
        if (g->kind == F_NUM)
            *(long *)((char *)c + g->off) = g->def;
        if (g->kind == F_LIST)
            continue;
        if ((v = env(env_name(g, var, sizeof(var)))) != NULL && (rc = set_flag(c, g, v, var)) != 0)
            return rc;
    }
    lo[NFLAGS] = (struct option){"help", no_argument, 0, 'h'};
    lo[NFLAGS + 1] = (struct option){"version", no_argument, 0, 'V'};
    lo[NFLAGS + 2] = (struct option){"man", no_argument, 0, 'M'};
    lo[NFLAGS + 3] = (struct option){0, 0, 0, 0};
    while ((o = getopt_long(argc, argv, "h", lo, &li)) != -1) {
        if (o == 'h') {
            usage_to(stdout);
            return -1;
        }
        if (o == 'M') {
            man_to(stdout);
            return -1;
        }
        if (o == 'V') {
            printf("tracesvc %s (commit %s; gRPC core %s, OpenSSL %s, %s)\n", TC_VERSION, TC_COMMIT,
                   rpc_grpc_version(), keys_crypto_version(), store_client_version());
            return -1;
        }
        if (o < 0 || (size_t)o >= NFLAGS)
            return usage();
        snprintf(var, sizeof(var), "--%s", flags[o].name);
        if ((rc = set_flag(c, &flags[o], optarg, var)) != 0)
            return rc;
    }
    if (optind < argc || !c->redis || !c->grpc || !c->keys) {
        fputs("tracesvc: --redis, --grpc and --keys are required\n", stderr);
        return usage();
    }
    if (!c->threads) {
        c->threads = sysconf(_SC_NPROCESSORS_ONLN);
        if (c->threads < 1)
            c->threads = 1;
        if (c->threads > 64)
            c->threads = 64;
    }
    if (c->insecure && !rpc_addr_is_loopback(c->grpc)) {
        fprintf(stderr,
                "tracesvc: --insecure serves plaintext and binds loopback only; '%s' is not "
                "loopback (use 127.0.0.1:PORT, or TLS)\n",
                c->grpc);
        return 2;
    }
    if (!c->node_id) { /* host:port, the same across restarts */
        char host[64] = "node";
        const char *port = c->grpc ? strrchr(c->grpc, ':') : NULL;
        gethostname(host, sizeof(host) - 1);
        host[sizeof(host) - 1] = '\0';
        if (port && strcmp(port, ":0") != 0)
            snprintf(c->node_buf, sizeof(c->node_buf), "%s%s", host, port);
        else /* a port picked at start names nothing: the process does */
            snprintf(c->node_buf, sizeof(c->node_buf), "%s-%ld", host, (long)getpid());
        c->node_id = c->node_buf;
    }
    if (!*c->node_id || strlen(c->node_id) > 64 || strpbrk(c->node_id, " \t\r\n")) {
        fprintf(stderr, "tracesvc: --node-id must be 1..64 characters without spaces\n");
        return 2;
    }
    if (c->ready_staleness < c->max_staleness) {
        fprintf(stderr,
                "tracesvc: --ready-staleness (%ld s) must not be below --max-staleness "
                "(%ld s): answers are flagged stale before the node stops being ready\n",
                c->ready_staleness, c->max_staleness);
        return 2;
    }
    if (!c->base_url)
        c->base_url = "https://tc.example.com";
    if (!c->hotline)
        c->hotline = "12315";
    if (c->image_origins && !origins_ok(c->image_origins)) {
        fprintf(stderr,
                "tracesvc: --image-origins '%.80s' must be https://HOST[:PORT] origins, comma "
                "separated, at most 8 and 512 characters (no path)\n",
                c->image_origins);
        return 2;
    }
    if (strlen(c->hotline) > 32 || strspn(c->hotline, "0123456789+- ") != strlen(c->hotline)) {
        fprintf(stderr,
                "tracesvc: --complaint-hotline '%.40s' must be a phone number: digits, "
                "+, - and spaces, at most 32\n",
                c->hotline);
        return 2;
    }
    if (!c->admin)
        c->admin = "127.0.0.1:0";
    c->shared_cq = env("TRACESVC_SHARED_CQ") != NULL;
    return 0;
}
