/*
 * tracekeys - manage a keyring, and mint and check codes from it locally.
 *
 *   tracekeys init          --dir DIR
 *   tracekeys stage         --dir DIR [--kind mac|ed25519]   (prints the new key id)
 *   tracekeys rotate        --dir DIR [--kind mac|ed25519]
 *   tracekeys retire        --dir DIR --kid N
 *   tracekeys list          --dir DIR
 *   tracekeys export-public --dir DIR
 *   tracekeys mint          --dir DIR --batch B --count N [--first S] [--profile mac|sig]
 *                           [--base-url URL] [--gtin G] [--urls] [--sheet PREFIX] [--png DIR]
 *   tracekeys check         --dir DIR [CODE|URL ...]   (else one per line on stdin)
 *
 * Exit status: 0 success (check: every code genuine), 1 check found a code
 * that is not, 2 usage or keyring error.
 */
#include "codec.h"
#include "keys.h"
#include "labels.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define MINT_MAX 10000000UL /* codes per mint call */
#define PNG_MAX 10000UL     /* PNG files per mint call */
#define DEFAULT_BASE_URL "HTTPS://TC.EXAMPLE.COM"

typedef struct opts {
    const char *dir, *kind, *profile, *base_url, *sheet, *png, *gtin;
    unsigned long kid, count;
    unsigned long long batch, first;
    int urls, have_batch, have_count, have_kid;
    const char *given[32]; /* the options given, for the command to check */
    int ngiven;
} opts;

/* A command, its usage and the options it takes (others are refused). */
typedef struct command {
    const char *name, *usage, *opts;
} command;

static const command cmds[] = {
    {"init", "init --dir DIR                   a new keyring: one MAC, one Ed25519 key", "dir"},
    {"stage",
     "stage --dir DIR [--kind mac|ed25519]\n"
     "        a new verify-only key (rolling rotation: reload every node, then\n"
     "        tracectl keys activate KID)",
     "dir kind"},
    {"rotate",
     "rotate --dir DIR [--kind mac|ed25519]\n"
     "        a new active key; the old one verifies only (stage + activate on one\n"
     "        node's own keyring)",
     "dir kind"},
    {"retire", "retire --dir DIR --kid N         erase a verify-only key's secret", "dir kid"},
    {"list", "list --dir DIR                   the keys, their kinds and states", "dir"},
    {"export-public", "export-public --dir DIR          the public keys, as JSON", "dir"},
    {"mint",
     "mint --dir DIR --batch B --count N [--first S] [--profile mac|sig]\n"
     "        [--base-url URL] [--gtin G] [--urls] [--sheet PREFIX] [--png DIR]\n"
     "        (--gtin: MAC codes' URLs, QRs and labels as GS1 Digital Links)",
     "dir batch count first profile base-url gtin urls sheet png"},
    {"check", "check --dir DIR [CODE|URL ...]   reads stdin when none given", "dir"},
};
#define NCMDS (sizeof(cmds) / sizeof(cmds[0]))

static void usage_to(FILE *f)
{
    fputs("usage: tracekeys COMMAND --dir DIR [options]\n", f);
    for (size_t i = 0; i < NCMDS; i++)
        fprintf(f, "  %s\n", cmds[i].usage);
    fputs("  help [COMMAND]                   a command's usage\n"
          "  --help, -h, --version, --man (the manual page, roff)\n"
          "Exit status: 0 done (check: every code verifies), 1 some code does not verify,\n"
          "2 usage or keyring error.\n",
          f);
}

static int usage(void)
{
    usage_to(stderr);
    return 2;
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

/* tracekeys(1), its commands from the command table. */
static void man_to(FILE *f)
{
    fprintf(f, ".TH TRACEKEYS 1 \"\" \"tracecode %s\" \"tracecode\"\n", TC_VERSION);
    fputs(".SH NAME\ntracekeys \\- manage a tracecode keyring; mint and check codes from it "
          "locally\n"
          ".SH SYNOPSIS\n.B tracekeys\n\\fICOMMAND\\fR \\fB\\-\\-dir\\fR \\fIDIR\\fR "
          "[\\fIoptions\\fR]\n"
          ".SH DESCRIPTION\nA keyring is a directory of key files, one per key, each readable by "
          "its owner only; tracesvc reads it at start, on SIGHUP and when it changes. Run "
          "tracekeys as the user tracesvc runs as (the package's is tracecode: "
          "\\fBrunuser \\-u tracecode \\-\\- tracekeys init \\-\\-dir /etc/tracecode/keys\\fR).\n"
          ".SH COMMANDS\n",
          f);
    for (size_t i = 0; i < NCMDS; i++) {
        fputs(".TP\n.B ", f);
        roff(f, cmds[i].name);
        fputs("\n.nf\n", f);
        roff(f, cmds[i].usage);
        fputs("\n.fi\n", f);
    }
    fputs(".TP\n.B help\n[\\fICOMMAND\\fR]: a command's usage. \\fB\\-\\-help\\fR, "
          "\\fB\\-h\\fR, \\fB\\-\\-version\\fR and \\fB\\-\\-man\\fR print the usage, the "
          "version and this page.\n"
          ".SH EXIT STATUS\n0 done (check: every code verifies); 1 some code does not verify; 2 "
          "a usage or keyring error.\n"
          ".SH SEE ALSO\ntracesvc(8), tracectl(1)\n",
          f);
}

/* 1 when word is one of the space-separated words of list. */
static int listed(const char *list, const char *word)
{
    size_t n = strlen(word);

    for (const char *p = list; (p = strstr(p, word)) != NULL; p += n)
        if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
            return 1;
    return 0;
}

static int die(const char *fmt, const char *a, const char *b)
{
    fputs("tracekeys: ", stderr);
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
    return 2;
}

static int parse_ull(const char *s, unsigned long long max, unsigned long long *out)
{
    char *end;
    unsigned long long v;

    if (!*s || *s == '-' || *s == '+')
        return 0;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || *end || v > max)
        return 0;
    *out = v;
    return 1;
}

static int parse_opts(int argc, char **argv, opts *o)
{
    static const struct option lo[] = {
        {"dir", required_argument, 0, 'd'},
        {"kind", required_argument, 0, 'k'},
        {"kid", required_argument, 0, 'i'},
        {"batch", required_argument, 0, 'b'},
        {"count", required_argument, 0, 'n'},
        {"first", required_argument, 0, 'f'},
        {"profile", required_argument, 0, 'p'},
        {"base-url", required_argument, 0, 'u'},
        {"urls", no_argument, 0, 'U'},
        {"sheet", required_argument, 0, 's'},
        {"png", required_argument, 0, 'P'},
        {"gtin", required_argument, 0, 'g'},
        {0, 0, 0, 0},
    };
    unsigned long long v;
    int c, li = 0;

    memset(o, 0, sizeof(*o));
    o->kind = "mac";
    o->profile = "mac";
    o->base_url = DEFAULT_BASE_URL;
    while ((c = getopt_long(argc, argv, "", lo, &li)) != -1) {
        if (c != '?') {
            if (o->ngiven == (int)(sizeof(o->given) / sizeof(o->given[0])))
                return die("at most %s options%s", "32", "");
            o->given[o->ngiven++] = lo[li].name;
        }
        switch (c) {
        case 'd':
            o->dir = optarg;
            break;
        case 'k':
            o->kind = optarg;
            break;
        case 'p':
            o->profile = optarg;
            break;
        case 'u':
            o->base_url = optarg;
            break;
        case 'g':
            o->gtin = optarg;
            break;
        case 'U':
            o->urls = 1;
            break;
        case 's':
            o->sheet = optarg;
            break;
        case 'P':
            o->png = optarg;
            break;
        case 'i':
            if (!parse_ull(optarg, CODEC_KID_MAX, &v) || v == 0)
                return die("--kid '%s' must be 1..255%s", optarg, "");
            o->kid = (unsigned long)v;
            o->have_kid = 1;
            break;
        case 'b':
            if (!parse_ull(optarg, CODEC_BATCH_MAX, &o->batch))
                return die("--batch '%s' must be 0..%s", optarg, "1099511627775");
            o->have_batch = 1;
            break;
        case 'n':
            if (!parse_ull(optarg, MINT_MAX, &v) || v == 0)
                return die("--count '%s' must be 1..%s", optarg, "10000000");
            o->count = (unsigned long)v;
            o->have_count = 1;
            break;
        case 'f':
            if (!parse_ull(optarg, UINT32_MAX, &o->first))
                return die("--first '%s' must be 0..%s", optarg, "4294967295");
            break;
        default:
            return usage();
        }
    }
    if (!o->dir)
        return die("%s%s", "--dir DIR is required", "");
    return 0;
}

static int open_ring(const char *dir, keys_ring **ring)
{
    char err[512];

    if (keys_open(dir, ring, err, sizeof(err)) != KEYS_OK)
        return die("%s%s", err, "");
    return 0;
}

static int cmd_init(const opts *o)
{
    char err[512];

    if (keys_init_dir(o->dir, err, sizeof(err)) != KEYS_OK)
        return die("%s%s", err, "");
    printf("created keyring %s: key 1 (mac, active), key 2 (ed25519, active)\n", o->dir);
    return 0;
}

/* rotate (stage = 0): a new active key, for a single node; stage: a new
 * verify-only key, the first step of a rolling rotation. */
static int cmd_rotate(const opts *o, keys_ring *ring, int stage)
{
    char err[512];
    keys_kind kind;
    unsigned kid;

    if (strcmp(o->kind, "mac") == 0)
        kind = KEYS_KIND_MAC;
    else if (strcmp(o->kind, "ed25519") == 0)
        kind = KEYS_KIND_ED25519;
    else
        return die("--kind '%s' must be mac or ed25519%s", o->kind, "");
    if ((stage ? keys_stage : keys_rotate)(ring, kind, &kid, err, sizeof(err)) != KEYS_OK)
        return die("%s%s", err, "");
    if (stage)
        printf("%u\n", kid);
    else
        printf("key %u (%s) is now active\n", kid, keys_kind_name(kind));
    if (stage)
        fprintf(stderr,
                "tracekeys: key %u (%s) staged, verify-only: copy key-%03u to every node's "
                "keyring, reload them (SIGHUP), then 'tracectl keys activate %u'\n",
                kid, keys_kind_name(kind), kid, kid);
    return 0;
}

static int cmd_retire(const opts *o, keys_ring *ring)
{
    char err[512];

    if (!o->have_kid)
        return die("%s%s", "retire needs --kid N", "");
    if (keys_retire(ring, (unsigned)o->kid, err, sizeof(err)) != KEYS_OK)
        return die("%s%s", err, "");
    printf("key %lu retired\n", o->kid);
    return 0;
}

static int cmd_list(keys_ring *ring)
{
    keys_info info[CODEC_KID_MAX];
    size_t n = keys_list(ring, info, CODEC_KID_MAX), i;

    printf("%-4s %-8s %-12s %-20s %s\n", "KID", "KIND", "STATE", "CREATED", "PUBLIC");
    for (i = 0; i < n; i++) {
        char when[32] = "?", pub[2 * CODEC_PUB_BYTES + 1] = "-";
        time_t t = (time_t)info[i].created;
        struct tm tm;
        int j;

        if (gmtime_r(&t, &tm))
            strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
        if (info[i].kind == KEYS_KIND_ED25519 && info[i].state != KEYS_RETIRED)
            for (j = 0; j < CODEC_PUB_BYTES; j++)
                snprintf(pub + 2 * j, 3, "%02x", info[i].pub[j]);
        printf("%-4u %-8s %-12s %-20s %s\n", info[i].kid, keys_kind_name(info[i].kind),
               keys_state_name(info[i].state), when, pub);
    }
    return 0;
}

static int cmd_export(keys_ring *ring)
{
    char *buf;
    size_t need = keys_export_public(ring, NULL, 0);

    buf = malloc(need + 1);
    if (!buf)
        return die("%s%s", "out of memory", "");
    keys_export_public(ring, buf, need + 1);
    fputs(buf, stdout);
    free(buf);
    return 0;
}

static int write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    int ok;

    if (!f)
        return 0;
    ok = fwrite(data, 1, len, f) == len;
    ok = (fclose(f) == 0) && ok;
    return ok;
}

static int cmd_mint(const opts *o, keys_ring *ring)
{
    char text[CODEC_MAX_TEXT_LEN + 1], url[CODEC_BASE_URL_MAX + 4 + CODEC_MAX_TEXT_LEN];
    _Static_assert(sizeof(url) > CODEC_DL_MAX, "a Digital Link fits");
    static uint8_t png[1 << 16];
    labels *sh = NULL;
    char lerr[512];
    codec_fields f;
    codec_errinfo ei;
    unsigned long i;
    int rc = 0;

    if (!o->have_batch || !o->have_count)
        return die("%s%s", "mint needs --batch B and --count N", "");
    if (o->first + o->count - 1 > UINT32_MAX)
        return die("--first + --count %s past serial %s", "runs", "4294967295");
    if (o->png && o->count > PNG_MAX)
        return die("--png renders at most %s files; got more%s", "10000", "");
    memset(&f, 0, sizeof(f));
    if (strcmp(o->profile, "mac") == 0)
        f.profile = CODEC_PROFILE_MAC;
    else if (strcmp(o->profile, "sig") == 0)
        f.profile = CODEC_PROFILE_SIG;
    else
        return die("--profile '%s' must be mac or sig%s", o->profile, "");
    if (o->png && mkdir(o->png, 0755) != 0 && errno != EEXIST)
        return die("cannot create '%s': %s", o->png, strerror(errno));
    if (o->gtin && !codec_gtin14(o->gtin, strlen(o->gtin), NULL))
        return die("--gtin '%.20s' is not 8 to 14 digits with a valid check digit%s", o->gtin, "");
    if (o->sheet && !(sh = labels_new(o->sheet, o->base_url, o->gtin, lerr, sizeof(lerr))))
        return die("%s%s", lerr, "");
    f.batch = o->batch;
    for (i = 0; i < o->count && rc == 0; i++) {
        uint8_t code[CODEC_MAX_BYTES];
        size_t len, tlen, ulen;

        f.serial = (uint32_t)(o->first + i);
        if (keys_mint(ring, &f, code, &len) != KEYS_OK) {
            rc = die("cannot mint: no active %s key in '%s'", codec_profile_of(f.profile)->key,
                     o->dir);
            break;
        }
        tlen = codec_text_encode(code, len, text, sizeof(text));
        if (o->urls || sh || o->png) {
            if (o->gtin && tlen == CODEC_MAC_TEXT_LEN
                    ? codec_dl_format(o->base_url, o->gtin, text, tlen, url, sizeof(url), &ulen,
                                      &ei)
                    : codec_url_format(o->base_url, text, tlen, url, sizeof(url), &ulen, &ei)) {
                rc = die("--base-url '%s' cannot go in a QR (use letters, digits, %s)", o->base_url,
                         "'.-/:$%*+')");
                break;
            }
        }
        puts(o->urls ? url : text);
        if (o->png) {
            char path[4096];
            size_t need;
            codec_qr_opts qo = {CODEC_ECC_M, 8, 4};
            if (codec_qr_png(url, ulen, &qo, png, sizeof(png), &need, NULL) != CODEC_OK) {
                rc = die("cannot render a QR for '%s'%s", url, "");
                break;
            }
            snprintf(path, sizeof(path), "%s/%s.png", o->png, text);
            if (!write_file(path, png, need))
                rc = die("cannot write '%s': %s", path, strerror(errno));
        }
        if (sh && labels_add(sh, text, tlen, lerr, sizeof(lerr)) != 0)
            rc = die("%s%s", lerr, "");
    }
    if (sh) {
        unsigned pages = 0;
        if (rc == 0 && labels_finish(sh, &pages, lerr, sizeof(lerr)) != 0)
            rc = die("%s%s", lerr, "");
        if (rc == 0)
            fprintf(stderr, "tracekeys: wrote %u label sheet(s) %s-001.svg ...\n", pages, o->sheet);
        labels_free(sh);
    }
    if (fflush(stdout) != 0 && rc == 0)
        rc = die("cannot write codes: %s%s", strerror(errno), "");
    return rc;
}

/* One verdict line for one input; returns 1 when genuine. */
static int check_one(keys_ring *ring, const char *in, size_t len)
{
    char msg[256];
    codec_code c;
    codec_errinfo ei;
    codec_err err;
    int known;

    memset(&ei, 0, sizeof(ei));
    err = codec_parse_any(in, len, &c, &ei); /* text, printed, URL or Digital Link */
    if (err) {
        codec_describe(&ei, in, len, msg, sizeof(msg));
        printf("%.*s\tMALFORMED\t%s\n", (int)(len > 200 ? 200 : len), in, msg);
        return 0;
    }
    err = keys_check(ring, &c, &known);
    if (err == CODEC_OK) {
        printf("%.*s\tGENUINE\tbatch=%llu serial=%u kid=%u profile=%s\n", (int)len, in,
               (unsigned long long)c.f.batch, c.f.serial, c.f.kid,
               codec_profile_of(c.f.profile)->name);
        return 1;
    }
    if (!known)
        printf("%.*s\tFORGED\tunknown or retired key id %u\n", (int)len, in, c.f.kid);
    else
        printf("%.*s\tFORGED\t%s\n", (int)len, in, codec_strerror(err));
    return 0;
}

static int cmd_check(keys_ring *ring, int argc, char **argv)
{
    int all = 1, i;

    if (optind < argc) {
        for (i = optind; i < argc; i++)
            all &= check_one(ring, argv[i], strlen(argv[i]));
    } else {
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        while ((n = getline(&line, &cap, stdin)) > 0) {
            while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
                n--;
            if (n == 0)
                continue;
            all &= check_one(ring, line, (size_t)n);
        }
        free(line);
    }
    return all ? 0 : 1;
}

int main(int argc, char **argv)
{
    const command *cmd = NULL;
    const char *name;
    keys_ring *ring = NULL;
    opts o;
    size_t i;
    int rc;

    if (argc < 2)
        return usage();
    name = argv[1];
    if (strcmp(name, "-h") == 0 || strcmp(name, "--help") == 0 ||
        (strcmp(name, "help") == 0 && argc == 2)) {
        usage_to(stdout);
        return 0;
    }
    if (strcmp(name, "--man") == 0) {
        man_to(stdout);
        return 0;
    }
    if (strcmp(name, "--version") == 0) {
        printf("tracekeys %s (OpenSSL %s)\n", TC_VERSION, keys_crypto_version());
        return 0;
    }
    if (strcmp(name, "help") == 0) {
        for (i = 0; i < NCMDS; i++)
            if (strcmp(cmds[i].name, argv[2]) == 0) {
                printf("usage: tracekeys %s\n", cmds[i].usage);
                return 0;
            }
        return die("help: no command '%s'%s", argv[2], "");
    }
    for (i = 0; i < NCMDS; i++)
        if (strcmp(name, cmds[i].name) == 0)
            cmd = &cmds[i];
    if (!cmd)
        return usage();
    argc--;
    argv++;
    rc = parse_opts(argc, argv, &o);
    if (rc)
        return rc;
    for (int g = 0; g < o.ngiven; g++)
        if (!listed(cmd->opts, o.given[g])) {
            fprintf(stderr, "tracekeys: --%s is not an option of '%s'; usage: tracekeys %s\n",
                    o.given[g], cmd->name, cmd->usage);
            return 2;
        }
    if (strcmp(name, "init") == 0)
        return cmd_init(&o);
    rc = open_ring(o.dir, &ring);
    if (rc)
        return rc;
    if (strcmp(name, "rotate") == 0 || strcmp(name, "stage") == 0)
        rc = cmd_rotate(&o, ring, strcmp(name, "stage") == 0);
    else if (strcmp(name, "retire") == 0)
        rc = cmd_retire(&o, ring);
    else if (strcmp(name, "list") == 0)
        rc = cmd_list(ring);
    else if (strcmp(name, "export-public") == 0)
        rc = cmd_export(ring);
    else if (strcmp(name, "mint") == 0)
        rc = cmd_mint(&o, ring);
    else
        rc = cmd_check(ring, argc, argv);
    keys_free(ring);
    return rc;
}
