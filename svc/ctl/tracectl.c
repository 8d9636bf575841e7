/*
 * tracectl - a client of tracesvc for every role.
 *
 *   tracectl [connection] [--json] COMMAND ...
 *
 *   manufacturer put CREDIT NAME [--suspended]
 *   cert put NUMBER --holder CREDIT --categories C1,C2 [--kind ccc|licence]
 *                   [--valid-until UNIX] [--status S] [--reason TEXT]
 *   cert get NUMBER
 *   cert status NUMBER valid|suspended|revoked|expired [--reason TEXT]
 *   cert import FILE.csv          (- for stdin)
 *   product register --certificate N --category C --brand B --model M [--gtin G]
 *   issue PRODUCT_ID --quantity N [--profile mac|sig] [--request-id ID] [--chunk N]
 *                    [--out FILE] [--sheet PREFIX] [--base-url URL]
 *   batch get BATCH_ID
 *   recall BATCH_ID FIRST LAST --reason TEXT
 *   verify [CODE ...] [--file F] [--full] [--listing-category C] [--listing-brand B]
 *          [--listing-model M]      (stdin when no code and no file)
 *   listings register FILE.csv     (header listing_id,code; - for stdin)
 *   watch [--cursor-file F] [--exec CMD] [--count N]     (platform)
 *   ack NOTICE_ID [LISTING_ID ...] [--delisted UNIX]      (platform)
 *   compliance PLATFORM_ID [--from UNIX] [--to UNIX]      (regulator)
 *   audit head [--out FILE]                               (regulator, certifier)
 *   audit query [SUBJECT] [--kind K] [--from UNIX] [--to UNIX] [--count N]
 *   audit verify --public-keys FILE [--since HEADFILE] [--out HEADFILE]
 *                [--index N]
 *
 * Writes (manufacturer put, cert put/status/import, product register, issue,
 * recall, listings register, ack) take --request-id ID: sent again with the
 * same ID, the request returns its first outcome and writes nothing more
 * (listings register sends ID.0, ID.1, ... one per call of its file).
 *
 * Connection: --addr HOST:PORT (TRACECTL_ADDR, default 127.0.0.1:50051) and
 * either --insecure --role R --subject S (TRACECTL_INSECURE, _ROLE,
 * _SUBJECT) or --ca F --cert F --key F (TRACECTL_CA, _CERT, _KEY).
 *
 * Exit status (ctl.h): 0 done (verify: every code GENUINE); 1 answered no
 * (a code not genuine; a request refused for what it asks); 2 usage; 3 no
 * answer, try again later (unreachable, timed out, busy); 4 a local
 * failure (a file, a --exec hook).
 */
#include "ctl.h"
#include "commit_gen.h"

#include <getopt.h>

static void usage_to(FILE *f)
{
    fputs("usage: tracectl [--addr HOST:PORT] [--insecure --role R --subject S | --ca F --cert F "
          "--key F]\n"
          "                [--json] COMMAND ...\n"
          "  manufacturer put CREDIT NAME [--suspended]\n"
          "  cert put NUMBER --holder CREDIT --categories C1,C2 [--kind ccc|licence]\n"
          "           [--valid-until UNIX] [--status S] [--reason TEXT]\n"
          "  cert get NUMBER | cert status NUMBER STATUS [--reason TEXT] | cert import FILE.csv\n"
          "  product register --certificate N --category C --brand B --model M [--gtin G]\n"
          "  product show PRODUCT_ID | product update PRODUCT_ID --file PASSPORT\n"
          "  issue PRODUCT_ID --quantity N [--profile mac|sig] [--request-id ID] [--out FILE]\n"
          "        [--sheet PREFIX] [--base-url URL] [--chunk N] [--production-date D] [--lot L]\n"
          "  batch get BATCH_ID | recall BATCH_ID FIRST LAST --reason TEXT\n"
          "  verify [CODE ...] [--file F] [--full] [--listing-category C] [--listing-brand B]\n"
          "         [--listing-model M]\n"
          "  listings register FILE.csv     (header: listing_id,code)\n"
          "  watch [--cursor-file F] [--exec CMD] [--count N]\n"
          "  ack NOTICE_ID [LISTING_ID ...] [--delisted UNIX]\n"
          "  sales report CODE ORDER_REF [CODE ORDER_REF ...] | sales undo CODE\n"
          "  reports [code CODE | batch BATCH_ID | product PRODUCT_ID] [--from] [--to] [--count]\n"
          "  compliance PLATFORM_ID [--from UNIX] [--to UNIX]\n"
          "  audit head [--out FILE]\n"
          "  audit query [SUBJECT] [--kind K] [--from UNIX] [--to UNIX] [--count N]\n"
          "  audit verify --public-keys FILE [--since HEADFILE] [--out HEADFILE] [--index N]\n"
          "  keys list | keys activate KID | keys compromise KID --since UNIX --reason TEXT\n"
          "  help [COMMAND]                 a command's usage and its options\n"
          "  --help, -h | --version | --man (the manual page, roff)\n"
          "Writes take --request-id ID: the same ID again returns the first outcome and\n"
          "writes nothing more. An option a command does not take is refused.\n"
          "Exit status: 0 done (every code genuine); 1 answered no, asking again will\n"
          "not change it (a code not genuine, a listing not bound, an audit that does not\n"
          "verify, a request refused for what it asks); 2 usage; 3 no answer, try again\n"
          "later (unreachable, timed out, busy, failed); 4 a local failure (a file, a\n"
          "--exec hook, memory).\n",
          f);
}

int usage(void)
{
    usage_to(stderr);
    return 2;
}

/* --- main ---------------------------------------------------------------------- */

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static void man_to(FILE *f);

static int parse_opts(int argc, char **argv, opts *o)
{
    enum {
        O_ADDR = 256,
        O_INSECURE,
        O_ROLE,
        O_SUBJECT,
        O_CA,
        O_CERT,
        O_KEY,
        O_JSON,
        O_TIMEOUT,
        O_HOLDER,
        O_CATEGORIES,
        O_KIND,
        O_VALID,
        O_STATUS,
        O_REASON,
        O_CERTIFICATE,
        O_CATEGORY,
        O_BRAND,
        O_MODEL,
        O_GTIN,
        O_QUANTITY,
        O_PROFILE,
        O_REQUEST,
        O_OUT,
        O_SHEET,
        O_BASE,
        O_CHUNK,
        O_PRODUCTION_DATE,
        O_LOT,
        O_FILE,
        O_FULL,
        O_LCAT,
        O_LBRAND,
        O_LMODEL,
        O_SUSPENDED,
        O_CURSOR_FILE,
        O_EXEC,
        O_COUNT,
        O_DELISTED,
        O_FROM,
        O_TO,
        O_PUBKEYS,
        O_SINCE,
        O_INDEX,
    };
    static const struct option lo[] = {
        {"addr", 1, 0, O_ADDR},
        {"insecure", 0, 0, O_INSECURE},
        {"role", 1, 0, O_ROLE},
        {"subject", 1, 0, O_SUBJECT},
        {"ca", 1, 0, O_CA},
        {"cert", 1, 0, O_CERT},
        {"key", 1, 0, O_KEY},
        {"json", 0, 0, O_JSON},
        {"timeout", 1, 0, O_TIMEOUT},
        {"holder", 1, 0, O_HOLDER},
        {"categories", 1, 0, O_CATEGORIES},
        {"kind", 1, 0, O_KIND},
        {"valid-until", 1, 0, O_VALID},
        {"status", 1, 0, O_STATUS},
        {"reason", 1, 0, O_REASON},
        {"certificate", 1, 0, O_CERTIFICATE},
        {"category", 1, 0, O_CATEGORY},
        {"brand", 1, 0, O_BRAND},
        {"model", 1, 0, O_MODEL},
        {"gtin", 1, 0, O_GTIN},
        {"quantity", 1, 0, O_QUANTITY},
        {"profile", 1, 0, O_PROFILE},
        {"request-id", 1, 0, O_REQUEST},
        {"out", 1, 0, O_OUT},
        {"sheet", 1, 0, O_SHEET},
        {"base-url", 1, 0, O_BASE},
        {"chunk", 1, 0, O_CHUNK},
        {"production-date", 1, 0, O_PRODUCTION_DATE},
        {"lot", 1, 0, O_LOT},
        {"file", 1, 0, O_FILE},
        {"full", 0, 0, O_FULL},
        {"listing-category", 1, 0, O_LCAT},
        {"listing-brand", 1, 0, O_LBRAND},
        {"listing-model", 1, 0, O_LMODEL},
        {"suspended", 0, 0, O_SUSPENDED},
        {"cursor-file", 1, 0, O_CURSOR_FILE},
        {"exec", 1, 0, O_EXEC},
        {"count", 1, 0, O_COUNT},
        {"delisted", 1, 0, O_DELISTED},
        {"from", 1, 0, O_FROM},
        {"to", 1, 0, O_TO},
        {"public-keys", 1, 0, O_PUBKEYS},
        {"since", 1, 0, O_SINCE},
        {"index", 1, 0, O_INDEX},
        {"help", 0, 0, 'h'},
        {"version", 0, 0, 'V'},
        {"man", 0, 0, 'M'},
        {0, 0, 0, 0},
    };
    unsigned long long v;
    const char *ins = env("TRACECTL_INSECURE");
    int c, li = 0;

    memset(o, 0, sizeof(*o));
    o->index = -1;
    o->conn.addr = env("TRACECTL_ADDR") ? env("TRACECTL_ADDR") : "127.0.0.1:50051";
    o->conn.insecure = ins && strcmp(ins, "0") != 0;
    o->conn.role = env("TRACECTL_ROLE");
    o->conn.subject = env("TRACECTL_SUBJECT");
    o->conn.ca = env("TRACECTL_CA");
    o->conn.cert = env("TRACECTL_CERT");
    o->conn.key = env("TRACECTL_KEY");
    o->conn.timeout_s = 120;
    while ((c = getopt_long(argc, argv, "h", lo, &li)) != -1) {
        if (c >= O_ADDR) {
            if (o->ngiven == (int)(sizeof(o->given) / sizeof(o->given[0])))
                return fail("at most %d options", o->ngiven);
            o->given[o->ngiven++] = lo[li].name;
        }
        switch (c) {
        case O_ADDR:
            o->conn.addr = optarg;
            break;
        case O_INSECURE:
            o->conn.insecure = 1;
            break;
        case O_ROLE:
            o->conn.role = optarg;
            break;
        case O_SUBJECT:
            o->conn.subject = optarg;
            break;
        case O_CA:
            o->conn.ca = optarg;
            break;
        case O_CERT:
            o->conn.cert = optarg;
            break;
        case O_KEY:
            o->conn.key = optarg;
            break;
        case O_JSON:
            o->json = 1;
            break;
        case O_HOLDER:
            o->holder = optarg;
            break;
        case O_CATEGORIES:
            o->categories = optarg;
            break;
        case O_KIND:
            o->kind = optarg;
            break;
        case O_STATUS:
            o->status = optarg;
            break;
        case O_REASON:
            o->reason = optarg;
            break;
        case O_CERTIFICATE:
            o->certificate = optarg;
            break;
        case O_CATEGORY:
            o->category = optarg;
            break;
        case O_BRAND:
            o->brand = optarg;
            break;
        case O_MODEL:
            o->model = optarg;
            break;
        case O_GTIN:
            o->gtin = optarg;
            break;
        case O_PROFILE:
            o->profile = optarg;
            break;
        case O_REQUEST:
            o->request_id = optarg;
            break;
        case O_OUT:
            o->out = optarg;
            break;
        case O_SHEET:
            o->sheet = optarg;
            break;
        case O_BASE:
            o->base_url = optarg;
            break;
        case O_FILE:
            o->file = optarg;
            break;
        case O_FULL:
            o->full = 1;
            break;
        case O_LCAT:
            o->l_category = optarg;
            break;
        case O_LBRAND:
            o->l_brand = optarg;
            break;
        case O_LMODEL:
            o->l_model = optarg;
            break;
        case O_SUSPENDED:
            o->suspended = 1;
            break;
        case O_CURSOR_FILE:
            o->cursor_file = optarg;
            break;
        case O_EXEC:
            o->exec = optarg;
            break;
        case O_COUNT:
            if (!parse_u64(optarg, 1000000000, &v) || !v)
                return fail("--count '%s' must be 1..1000000000", optarg);
            o->count = (unsigned long)v;
            break;
        case O_DELISTED:
        case O_FROM:
        case O_TO:
            if (!parse_u64(optarg, INT64_MAX, &v))
                return fail("--%s '%s' must be unix seconds",
                            c == O_DELISTED ? "delisted"
                            : c == O_FROM   ? "from"
                                            : "to",
                            optarg);
            *(c == O_DELISTED ? &o->delisted : c == O_FROM ? &o->from : &o->to) = (long long)v;
            break;
        case O_PUBKEYS:
            o->public_keys = optarg;
            break;
        case O_SINCE:
            o->since = optarg;
            break;
        case O_INDEX:
            if (!parse_u64(optarg, INT64_MAX, &v))
                return fail("--index '%s' must be an entry index", optarg);
            o->index = (long long)v;
            break;
        case O_TIMEOUT:
            if (!parse_u64(optarg, 86400, &v) || !v)
                return fail("--timeout '%s' must be 1..86400 seconds", optarg);
            o->conn.timeout_s = (int)v;
            break;
        case O_VALID:
            if (!parse_u64(optarg, INT64_MAX, &v))
                return fail("--valid-until '%s' must be unix seconds", optarg);
            o->valid_until = (long long)v;
            o->have_valid_until = 1;
            break;
        case O_QUANTITY:
            if (!parse_u64(optarg, 10000000, &v) || !v)
                return fail("--quantity '%s' must be 1..10000000", optarg);
            o->quantity = (unsigned long)v;
            break;
        case O_PRODUCTION_DATE:
            o->production_date = optarg;
            break;
        case O_LOT:
            o->lot = optarg;
            break;
        case O_CHUNK:
            if (!parse_u64(optarg, 65536, &v))
                return fail("--chunk '%s' must be 0..65536", optarg);
            o->chunk = (unsigned long)v;
            break;
        case 'h':
            usage_to(stdout);
            return -1; /* done: exit 0 */
        case 'M':
            man_to(stdout);
            return -1;
        case 'V':
            printf("tracectl %s (commit %s; gRPC core %s)\n", TC_VERSION, TC_COMMIT,
                   rpc_client_grpc_version());
            return -1;
        default:
            return usage();
        }
    }
    return 0;
}

/* Options every command takes: how to reach the service and print. */
static const char global_opts[] =
    "addr insecure role subject ca cert key json timeout help version";

/* A command: its usage lines and the options it takes (git's
 * parse-options in spirit: an option not its own is refused by name). */
typedef struct command {
    const char *name;
    int (*fn)(rpc_client *, const opts *, int, char **);
    const char *usage;
    const char *opts;
} command;

static const command cmds[] = {
    {"manufacturer", cmd_manufacturer, "manufacturer put CREDIT NAME [--suspended]",
     "suspended request-id"},
    {"cert", cmd_cert,
     "cert put NUMBER --holder CREDIT --categories C1,C2 [--kind ccc|licence]\n"
     "         [--valid-until UNIX] [--status S] [--reason TEXT]\n"
     "cert get NUMBER | cert status NUMBER STATUS [--reason TEXT] | cert import FILE.csv",
     "holder categories kind valid-until status reason request-id"},
    {"product", cmd_product,
     "product register --certificate N --category C --brand B --model M [--gtin G]\n"
     "product show PRODUCT_ID | product update PRODUCT_ID --file PASSPORT   (manufacturer)",
     "certificate category brand model gtin request-id file"},
    {"issue", cmd_issue,
     "issue PRODUCT_ID --quantity N [--profile mac|sig] [--request-id ID] [--out FILE]\n"
     "      [--sheet PREFIX] [--base-url URL] [--chunk N] [--production-date YYYY-MM-DD]\n"
     "      [--lot LOT]",
     "quantity profile request-id out sheet base-url chunk production-date lot"},
    {"batch", cmd_batch, "batch get BATCH_ID", ""},
    {"recall", cmd_recall, "recall BATCH_ID FIRST LAST --reason TEXT", "reason request-id"},
    {"verify", cmd_verify,
     "verify [CODE ...] [--file F] [--full] [--listing-category C] [--listing-brand B]\n"
     "       [--listing-model M]",
     "file full listing-category listing-brand listing-model"},
    {"listings", cmd_listings, "listings register FILE.csv     (header: listing_id,code)",
     "request-id"},
    {"watch", cmd_watch, "watch [--cursor-file F] [--exec CMD] [--count N]",
     "cursor-file exec count"},
    {"ack", cmd_ack, "ack NOTICE_ID [LISTING_ID ...] [--delisted UNIX]", "delisted request-id"},
    {"sales", cmd_sales,
     "sales report CODE ORDER_REF [CODE ORDER_REF ...]   (platform: units shipped)\n"
     "sales undo CODE                                    (the seller's return)",
     "request-id"},
    {"reports", cmd_reports,
     "reports [code CODE | batch BATCH_ID | product PRODUCT_ID] [--from UNIX] [--to UNIX]\n"
     "        [--count N]   (consumers' problem reports: regulator; a maker's own)",
     "from to count"},
    {"compliance", cmd_compliance, "compliance PLATFORM_ID [--from UNIX] [--to UNIX]", "from to"},
    {"audit", cmd_audit,
     "audit head [--out FILE]\n"
     "audit query [SUBJECT] [--kind K] [--from UNIX] [--to UNIX] [--count N]\n"
     "audit verify --public-keys FILE [--since HEADFILE] [--out HEADFILE] [--index N]",
     "out kind from to count public-keys since index"},
    {"keys", cmd_keys,
     "keys list | keys activate KID | keys compromise KID --since UNIX --reason TEXT",
     "since reason request-id"},
};
#define NCMDS (sizeof(cmds) / sizeof(cmds[0]))

/* 1 when word is one of the space-separated words of list. */
static int listed(const char *list, const char *word)
{
    size_t n = strlen(word);

    for (const char *p = list; (p = strstr(p, word)) != NULL; p += n)
        if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
            return 1;
    return 0;
}

/* The command's options as "--a, --b" into buf. */
static const char *options_of(const command *cmd, char *buf, size_t cap)
{
    const char *p = cmd->opts;
    size_t o = 0;

    buf[0] = '\0';
    while (*p && o + 1 < cap) {
        size_t n = strcspn(p, " ");
        int k = snprintf(buf + o, cap - o, "%s--%.*s", o ? ", " : "", (int)n, p);
        if (k < 0 || (size_t)k >= cap - o)
            break;
        o += (size_t)k;
        p += n;
        p += *p == ' ';
    }
    return o ? buf : "none of its own";
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

/* tracectl(1), its commands from the command table. */
static void man_to(FILE *f)
{
    char buf[512];

    fprintf(f, ".TH TRACECTL 1 \"\" \"tracecode %s\" \"tracecode\"\n", TC_VERSION);
    fputs(".SH NAME\ntracectl \\- ask a tracecode service: register, issue, verify, watch, "
          "audit\n"
          ".SH SYNOPSIS\n.B tracectl\n[\\fIconnection options\\fR] [\\fB\\-\\-json\\fR] "
          "\\fICOMMAND\\fR ...\n.br\n.B tracectl help\n[\\fICOMMAND\\fR]\n"
          ".SH DESCRIPTION\ntracectl calls tracesvc's gRPC API as one of the four roles: a "
          "certifier registers manufacturers and certificates, a manufacturer registers products "
          "and issues codes, a platform verifies codes, registers listings and watches for "
          "delisting notices, a regulator queries and verifies the audit log. Writes take "
          "\\fB\\-\\-request\\-id\\fR \\fIID\\fR: the same ID again returns the first "
          "outcome and writes nothing more. An option a command does not take is refused.\n"
          ".SH COMMANDS\n",
          f);
    for (size_t i = 0; i < NCMDS; i++) {
        fputs(".TP\n.B ", f);
        roff(f, cmds[i].name);
        fputs("\n.nf\n", f);
        roff(f, cmds[i].usage);
        fputs("\n.fi\nIts options: ", f);
        roff(f, options_of(&cmds[i], buf, sizeof(buf)));
        fputs(".\n", f);
    }
    fputs(".SH CONNECTION OPTIONS\n"
          ".TP\n\\fB\\-\\-addr\\fR \\fIHOST:PORT\\fR\nThe service (default 127.0.0.1:50051).\n"
          ".TP\n\\fB\\-\\-ca\\fR \\fIFILE\\fR \\fB\\-\\-cert\\fR \\fIFILE\\fR "
          "\\fB\\-\\-key\\fR \\fIFILE\\fR\nmTLS: the service's CA, this caller's certificate "
          "(its role and subject are in it) and key.\n"
          ".TP\n\\fB\\-\\-insecure\\fR \\fB\\-\\-role\\fR \\fIR\\fR \\fB\\-\\-subject\\fR "
          "\\fIS\\fR\nPlaintext to a loopback service started with \\-\\-insecure, the role "
          "(manufacturer, platform, regulator, certifier) and subject in metadata.\n"
          ".TP\n\\fB\\-\\-timeout\\fR \\fISECONDS\\fR\nHow long a call may take.\n"
          ".TP\n\\fB\\-\\-json\\fR\nAnswers as JSON, one object per line.\n"
          ".TP\n\\fB\\-\\-help\\fR, \\fB\\-h\\fR, \\fB\\-\\-version\\fR, \\fB\\-\\-man\\fR\n"
          "The usage, the version, this page.\n"
          ".SH ENVIRONMENT\n"
          ".BR TRACECTL_ADDR ,\n.BR TRACECTL_INSECURE ,\n.BR TRACECTL_ROLE ,\n"
          ".BR TRACECTL_SUBJECT ,\n.BR TRACECTL_CA ,\n.BR TRACECTL_CERT ,\n.B TRACECTL_KEY\n"
          "stand for the connection options of their names; an option given wins.\n"
          ".SH EXIT STATUS\n"
          ".TP\n.B 0\nDone (verify: every code genuine).\n"
          ".TP\n.B 1\nAnswered no, and asking again will not change it: a code not genuine, a "
          "listing not bound, an audit that does not verify, a request refused for what it asks "
          "(not found, already exists, not allowed, invalid).\n"
          ".TP\n.B 2\nUsage: the command, an option or an input file is wrong.\n"
          ".TP\n.B 3\nNo answer, try again later: unreachable, timed out, busy, failed.\n"
          ".TP\n.B 4\nA local failure: a file, a \\-\\-exec hook, memory.\n"
          ".SH SEE ALSO\ntracesvc(8), tracekeys(1)\n",
          f);
}

static int help(const char *name)
{
    char buf[512];

    for (size_t i = 0; i < NCMDS; i++)
        if (strcmp(cmds[i].name, name) == 0) {
            printf("usage: tracectl [connection options] %s\n", cmds[i].usage);
            printf("options of %s: %s\n", name, options_of(&cmds[i], buf, sizeof(buf)));
            printf("connection options: --addr HOST:PORT, --insecure --role R --subject S, "
                   "--ca F --cert F --key F, --timeout S, --json\n");
            return 0;
        }
    return fail("help: no command '%s' (tracectl help lists them)", name);
}

int main(int argc, char **argv)
{
    char err[512];
    const command *cmd = NULL;
    rpc_client *cl;
    opts o;
    size_t i;
    int rc;

    signal(SIGPIPE, SIG_IGN); /* an --exec hook may stop reading early */
    if ((rc = parse_opts(argc, argv, &o)) != 0)
        return rc < 0 ? CTL_OK : rc; /* -1: --help or --version */
    if (optind >= argc)
        return usage();
    if (strcmp(argv[optind], "help") == 0) {
        if (optind + 1 >= argc) {
            usage_to(stdout);
            return 0;
        }
        return help(argv[optind + 1]);
    }
    for (i = 0; i < NCMDS; i++)
        if (strcmp(argv[optind], cmds[i].name) == 0)
            cmd = &cmds[i];
    if (!cmd)
        return usage();
    for (int g = 0; g < o.ngiven; g++)
        if (!listed(global_opts, o.given[g]) && !listed(cmd->opts, o.given[g]))
            return fail("--%s is not an option of '%s'; its options: %s (tracectl help %s)",
                        o.given[g], cmd->name, options_of(cmd, err, sizeof(err)), cmd->name);
    if (o.conn.insecure && (!o.conn.role || !o.conn.subject))
        return fail("--insecure needs --role (manufacturer, platform, regulator, certifier) and "
                    "--subject (or TRACECTL_ROLE, TRACECTL_SUBJECT)");
    cl = rpc_client_new(&o.conn, err, sizeof(err));
    if (!cl)
        return fail("%s", err);
    rc = cmd->fn(cl, &o, argc - optind - 1, argv + optind + 1);
    if (fflush(stdout) != 0 && rc == 0)
        rc = fail_local("cannot write output: %s", strerror(errno));
    rpc_client_free(cl);
    return rc;
}
