/*
 * ctl_delist.c - watch delisting notices (with a cursor file and a hook), ack, compliance.
 */
#include "ctl.h"

/* --- delisting: watch, ack, compliance ------------------------------------------- */

typedef struct watching {
    const opts *o;
    char cursor[64];
    unsigned long seen;
    int failed; /* the --exec hook failed: stop, cursor not advanced */
} watching;

static int read_cursor(const char *path, char *out, size_t cap)
{
    FILE *f = fopen(path, "r");
    size_t n;

    out[0] = '\0';
    if (!f)
        return errno == ENOENT ? 0 : -1;
    n = fread(out, 1, cap - 1, f);
    fclose(f);
    out[n] = '\0';
    out[strcspn(out, " \r\n")] = '\0';
    return 0;
}

/* Write the cursor durably: a temp file, fsync, rename over the old one. */
static int save_cursor(const char *path, const char *cursor)
{
    char tmp[4096];
    FILE *f;
    int ok;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return -1;
    f = fopen(tmp, "w");
    if (!f)
        return -1;
    ok = fprintf(f, "%s\n", cursor) > 0 && fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = fclose(f) == 0 && ok;
    return ok && rename(tmp, path) == 0 ? 0 : -1;
}

static void print_notice(const opts *o, const Tracecode__V1__DelistingNotice *m)
{
    size_t i;

    if (o->json) {
        printf("{\"notice_id\":\"%s\",\"platform_id\":", m->notice_id);
        jstr(m->platform_id);
        printf(",\"certificate_number\":");
        jstr(m->certificate_number);
        printf(",\"batch_id\":%" PRIu64 ",\"new_status\":\"%s\",\"reason\":", m->batch_id,
               cert_status_name(m->new_status));
        jstr(m->reason);
        printf(",\"effective_unix\":%" PRId64 ",\"key_id\":%u,\"signature\":\"", m->effective_unix,
               m->key_id);
        for (i = 0; i < m->signature.len; i++)
            printf("%02x", m->signature.data[i]);
        printf("\",\"listing_ids\":[");
        for (i = 0; i < m->n_listing_ids; i++) {
            printf(i ? "," : "");
            jstr(m->listing_ids[i]);
        }
        printf("]}\n");
    } else {
        printf("notice %s  %s  certificate %s", m->notice_id, cert_status_name(m->new_status),
               m->certificate_number);
        if (m->batch_id)
            printf("  batch %" PRIu64, m->batch_id);
        printf("  %zu listing%s  reason: %s\n ", m->n_listing_ids, m->n_listing_ids == 1 ? "" : "s",
               m->reason);
        for (i = 0; i < m->n_listing_ids; i++)
            printf(" %s", m->listing_ids[i]);
        putchar('\n');
    }
    fflush(stdout);
}

/* --exec: sh -c CMD with the notice in TC_* variables and its listing ids
 * on standard input, one a line. 0 when it exits 0. The environment is
 * built before fork: a child of a threaded process may only exec. */
static int run_hook(const char *cmd, const Tracecode__V1__DelistingNotice *m)
{
    extern char **environ;
    char vars[8][640], *sh[] = {"sh", "-c", (char *)cmd, NULL}, **envp;
    size_t i, n = 0, nenv = 0;
    pid_t pid;
    int fd[2], st, rc = -1;
    FILE *in;

    snprintf(vars[0], sizeof(vars[0]), "TC_NOTICE_ID=%s", m->notice_id);
    snprintf(vars[1], sizeof(vars[1]), "TC_PLATFORM=%s", m->platform_id);
    snprintf(vars[2], sizeof(vars[2]), "TC_CERTIFICATE=%s", m->certificate_number);
    snprintf(vars[3], sizeof(vars[3]), "TC_BATCH=%" PRIu64, m->batch_id);
    snprintf(vars[4], sizeof(vars[4]), "TC_STATUS=%s", cert_status_name(m->new_status));
    snprintf(vars[5], sizeof(vars[5]), "TC_REASON=%s", m->reason);
    snprintf(vars[6], sizeof(vars[6]), "TC_EFFECTIVE=%" PRId64, m->effective_unix);
    snprintf(vars[7], sizeof(vars[7]), "TC_LISTINGS=%zu", m->n_listing_ids);
    while (environ[nenv])
        nenv++;
    envp = malloc((nenv + 9) * sizeof(*envp));
    if (!envp || pipe(fd) != 0) {
        free(envp);
        return -1;
    }
    for (i = 0; i < nenv; i++)
        if (strncmp(environ[i], "TC_", 3) != 0)
            envp[n++] = environ[i];
    for (i = 0; i < 8; i++)
        envp[n++] = vars[i];
    envp[n] = NULL;
    pid = fork();
    if (pid == 0) {
        dup2(fd[0], 0);
        close(fd[0]);
        close(fd[1]);
        execve("/bin/sh", sh, envp);
        _exit(127);
    }
    close(fd[0]);
    free(envp);
    if (pid < 0) {
        close(fd[1]);
        return -1;
    }
    in = fdopen(fd[1], "w");
    for (i = 0; in && i < m->n_listing_ids; i++)
        if (fprintf(in, "%s\n", m->listing_ids[i]) < 0)
            break; /* the hook need not read them all */
    if (in)
        fclose(in);
    else
        close(fd[1]);
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        rc = 0;
    return rc;
}

static int on_notice(void *arg, const ProtobufCMessage *msg)
{
    const Tracecode__V1__WatchDelistingsResponse *ev = (const void *)msg;
    const Tracecode__V1__DelistingNotice *m = ev->notice;
    watching *w = arg;

    if (ev->event_case != TRACECODE__V1__WATCH_DELISTINGS_RESPONSE__EVENT_NOTICE || !m)
        return 0; /* a heartbeat */
    print_notice(w->o, m);
    if (w->o->exec && run_hook(w->o->exec, m) != 0) {
        fprintf(stderr, "tracectl: --exec failed for notice %s; cursor stays at \"%s\"\n",
                m->notice_id, w->cursor);
        w->failed = 1;
        return 1;
    }
    snprintf(w->cursor, sizeof(w->cursor), "%s", m->notice_id);
    if (w->o->cursor_file && save_cursor(w->o->cursor_file, w->cursor) != 0) {
        fprintf(stderr, "tracectl: cannot save the cursor to %s: %s\n", w->o->cursor_file,
                strerror(errno));
        w->failed = 1;
        return 1;
    }
    return w->o->count && ++w->seen >= w->o->count;
}

int cmd_watch(rpc_client *cl, const opts *o, int argc, char **argv)
{
    Tracecode__V1__WatchDelistingsRequest q = TRACECODE__V1__WATCH_DELISTINGS_REQUEST__INIT;
    unsigned backoff = 1;
    watching w;
    rpc_result r;

    (void)argv;
    if (argc != 0)
        return fail("usage: watch [--cursor-file F] [--exec CMD] [--count N]");
    memset(&w, 0, sizeof(w));
    w.o = o;
    if (o->cursor_file && read_cursor(o->cursor_file, w.cursor, sizeof(w.cursor)) != 0)
        return fail_local("cannot read cursor file %s: %s", o->cursor_file, strerror(errno));
    rpc_client_set_timeout(cl, 0);
    for (;;) {
        q.cursor = w.cursor;
        rpc_call_server_stream(cl, "/tracecode.v1.VerifierService/WatchDelistings", &q.base,
                               &tracecode__v1__watch_delistings_response__descriptor, on_notice, &w,
                               &r);
        if (w.failed)
            return CTL_LOCAL; /* the hook or the cursor file */
        if (o->count && w.seen >= o->count)
            return 0;
        /* Ended by the node (draining, the watcher fell behind, Redis away):
         * resume from the cursor. Anything else is the caller's to fix. */
        if (r.code != 10 && r.code != 14 && r.code != 0)
            return rpc_failed(&r);
        fprintf(stderr, "tracectl: watch ended (%s: %s); resuming from \"%s\" in %u s\n",
                rpc_code_name(r.code), r.msg, w.cursor, backoff);
        sleep(backoff);
        backoff = backoff * 2 > 30 ? 30 : backoff * 2;
    }
}

int cmd_ack(rpc_client *cl, const opts *o, int argc, char **argv)
{
    Tracecode__V1__AckDelistingRequest q = TRACECODE__V1__ACK_DELISTING_REQUEST__INIT;
    ProtobufCMessage *resp;
    rpc_result r;

    if (argc < 1)
        return fail("usage: ack NOTICE_ID [LISTING_ID ...] [--delisted UNIX]");
    q.notice_id = argv[0];
    q.listing_ids = argv + 1;
    q.n_listing_ids = (size_t)(argc - 1);
    q.delisted_unix = o->delisted;
    q.request_id = (char *)(o->request_id ? o->request_id : "");
    if (rpc_call_unary(cl, "/tracecode.v1.VerifierService/AckDelisting", &q.base,
                       &tracecode__v1__ack_delisting_response__descriptor, &resp, &r))
        return rpc_failed(&r);
    rpc_msg_free(resp);
    if (o->json)
        printf("{\"acknowledged\":\"%s\",\"listings\":%d}\n", q.notice_id, argc - 1);
    else if (argc > 1)
        printf("acknowledged %d listing%s of notice %s\n", argc - 1, argc == 2 ? "" : "s",
               q.notice_id);
    else
        printf("acknowledged notice %s\n", q.notice_id);
    return 0;
}

int cmd_compliance(rpc_client *cl, const opts *o, int argc, char **argv)
{
    Tracecode__V1__GetDelistingComplianceRequest q =
        TRACECODE__V1__GET_DELISTING_COMPLIANCE_REQUEST__INIT;
    Tracecode__V1__GetDelistingComplianceResponse *c;
    ProtobufCMessage *resp;
    rpc_result r;
    size_t i;

    if (argc != 1)
        return fail("usage: compliance PLATFORM_ID [--from UNIX] [--to UNIX]");
    q.platform_id = argv[0];
    q.from_unix = o->from;
    q.to_unix = o->to;
    if (rpc_call_unary(cl, "/tracecode.v1.AuditService/GetDelistingCompliance", &q.base,
                       &tracecode__v1__get_delisting_compliance_response__descriptor, &resp, &r))
        return rpc_failed(&r);
    c = (void *)resp;
    if (o->json) {
        printf("{\"platform_id\":");
        jstr(q.platform_id);
        printf(",\"notices\":%" PRIu64 ",\"acked\":%" PRIu64 ",\"listings\":%" PRIu64
               ",\"p50_seconds\":%.3f,\"p99_seconds\":%.3f,\"unacked\":[",
               c->notices, c->acked, c->listings, c->p50_seconds, c->p99_seconds);
        for (i = 0; i < c->n_unacked; i++)
            printf("%s\"%s\"", i ? "," : "", c->unacked[i]);
        printf("]}\n");
    } else {
        printf("platform %s: %" PRIu64 " notices (%" PRIu64 " listings), %" PRIu64
               " acknowledged; effective -> acknowledged p50 %.3f s, p99 %.3f s\n",
               q.platform_id, c->notices, c->listings, c->acked, c->p50_seconds, c->p99_seconds);
        for (i = 0; i < c->n_unacked; i++)
            printf("  unacknowledged: %s\n", c->unacked[i]);
    }
    rpc_msg_free(resp);
    return 0;
}
