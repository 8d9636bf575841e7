/*
 * tls.c - the TLS bridge to Redis (see tls.h). One acceptor thread; one
 * thread per connection, which dials Redis, verifies it, and copies bytes
 * both ways until either side closes. Redis never stops reading a client
 * because the client is slow to read its replies (it buffers them), so a
 * blocking copy in each direction cannot deadlock against it.
 */
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define DIAL_MS 2000
#define STALL_MS 60000 /* longer than any reply timeout of the store */
#define BUF 16384

typedef struct bridge_link bridge_link;

struct st_tls {
    _Atomic int stopping;
    int lfd;
    pthread_t acceptor;
    SSL_CTX *ctx;
    char host[256], name[256];
    int port;
    char dir[64], path[108];
    pthread_mutex_t mu; /* last, refused, links, active */
    pthread_cond_t idle;
    char last[1024];
    int refused;
    bridge_link *links; /* open connections */
    int active;         /* connection threads not yet ended */
};

struct bridge_link {
    st_tls *t;
    int plain; /* hiredis's end */
    int tcp;   /* Redis's, once dialled; -1 before */
    bridge_link *next, **prev;
};

/* Under t->mu: wake a connection's thread out of any wait (stopping). */
static void cut(bridge_link *l)
{
    shutdown(l->plain, SHUT_RDWR);
    if (l->tcp >= 0)
        shutdown(l->tcp, SHUT_RDWR);
}

/* what NULL: the last connection worked. */
static void set_last(st_tls *t, int refused, const char *what, const char *why)
{
    pthread_mutex_lock(&t->mu);
    if (what)
        snprintf(t->last, sizeof(t->last), "TLS to %s:%d: %s%s%s", t->host, t->port, what,
                 why && *why ? ": " : "", why ? why : "");
    else
        t->last[0] = '\0';
    t->refused = refused;
    pthread_mutex_unlock(&t->mu);
}

int st_tls_last_error(st_tls *t, char *out, size_t cap)
{
    int refused;

    pthread_mutex_lock(&t->mu);
    snprintf(out, cap, "%s", t->last);
    refused = t->refused;
    pthread_mutex_unlock(&t->mu);
    return refused;
}

/* The newest OpenSSL error as text ("" when none). */
static const char *ssl_why(char *buf, size_t cap)
{
    unsigned long e = ERR_peek_last_error();

    buf[0] = '\0';
    if (e)
        ERR_error_string_n(e, buf, cap);
    ERR_clear_error();
    return buf;
}

/* A TCP connection to host:port within DIAL_MS, blocking; -1 with why. */
static int dial(const char *host, int port, char *why, size_t cap)
{
    struct addrinfo hints = {0}, *res = NULL, *ai;
    char sport[16];
    int fd = -1, rc;

    hints.ai_socktype = SOCK_STREAM;
    snprintf(sport, sizeof(sport), "%d", port);
    if ((rc = getaddrinfo(host, sport, &hints, &res)) != 0) {
        snprintf(why, cap, "%s", gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        struct pollfd p;
        int err = 0;
        socklen_t len = sizeof(err);

        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
            snprintf(why, cap, "%s", strerror(errno));
        } else {
            p = (struct pollfd){fd, POLLOUT, 0};
            if (poll(&p, 1, DIAL_MS) == 1 &&
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) {
                fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
                break;
            }
            snprintf(why, cap, "%s", err ? strerror(err) : "connect timed out");
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

static void set_timeouts(int fd, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* A verified TLS connection to the bridge's Redis, or NULL (last set). */
static SSL *tls_dial(bridge_link *l, int *fdp)
{
    st_tls *t = l->t;
    char why[256];
    int fd = dial(t->host, t->port, why, sizeof(why));
    unsigned char ip[16];
    SSL *ssl;

    *fdp = fd;
    pthread_mutex_lock(&t->mu);
    l->tcp = fd;
    if (fd >= 0 && atomic_load(&t->stopping))
        shutdown(fd, SHUT_RDWR);
    pthread_mutex_unlock(&t->mu);
    if (fd < 0) {
        set_last(t, 0, "cannot connect", why);
        return NULL;
    }
    set_timeouts(fd, DIAL_MS); /* the handshake */
    if (!(ssl = SSL_new(t->ctx)) || SSL_set_fd(ssl, fd) != 1) {
        set_last(t, 0, "cannot start", ssl_why(why, sizeof(why)));
        SSL_free(ssl);
        return NULL;
    }
    if (inet_pton(AF_INET, t->name, ip) == 1 || inet_pton(AF_INET6, t->name, ip) == 1) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), t->name);
    } else {
        SSL_set_tlsext_host_name(ssl, t->name);
        SSL_set1_host(ssl, t->name);
    }
    if (SSL_connect(ssl) != 1) {
        long v = SSL_get_verify_result(ssl);
        if (v != X509_V_OK)
            set_last(t, 1, "the server's certificate was refused",
                     X509_verify_cert_error_string(v));
        else
            set_last(t, 1, "handshake failed", ssl_why(why, sizeof(why)));
        SSL_free(ssl);
        return NULL;
    }
    /* Waits for the next record are in poll() and may be long (XREAD
     * BLOCK); these bound only a record that stops half-way or a write
     * Redis stops taking (SIGSTOPped, hung): the link then ends and
     * hiredis sees the connection lost. */
    set_timeouts(fd, STALL_MS);
    set_last(t, 0, NULL, NULL);
    return ssl;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* All of p[0..n) onto ssl; a record to read first (a key update) is read
 * by the retry. */
/* All of p[0..n) onto ssl. A retry reads a record first (a key update)
 * or waits once more after a stalled write; a few of those and the link
 * ends (STALL_MS each). */
static int tls_write(SSL *ssl, const char *p, size_t n)
{
    for (int tries = 0; tries < 4; tries++) {
        int w = SSL_write(ssl, p, (int)n);
        if (w == (int)n)
            return 0;
        if (w <= 0) {
            int e = SSL_get_error(ssl, w);
            if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
                return -1;
        }
    }
    return -1;
}

static void note_refusal(st_tls *t)
{
    char why[256];

    set_last(t, 1, "redis ended the connection", ssl_why(why, sizeof(why)));
}

/* A write failed: if Redis closed the connection with an alert (it refused
 * us), the alert is still to be read - record it. */
static void refused_why(st_tls *t, SSL *ssl)
{
    char c;
    int n = SSL_read(ssl, &c, 1);

    if (n <= 0 && SSL_get_error(ssl, n) == SSL_ERROR_SSL)
        note_refusal(t);
    ERR_clear_error();
}

/* Copy both ways until either side closes. SSL_has_pending, not
 * SSL_pending: a record OpenSSL has read from the socket but not yet
 * processed (behind a session ticket, say) is invisible to poll(); then
 * poll() only looks (timeout 0), so hiredis closing its end is still seen
 * while a half record waits. Redis refusing the connection after the
 * handshake (TLS 1.3 checks the client's certificate then) is recorded
 * before hiredis's side is closed, so the dialler can say why. */
static void pump(st_tls *t, int plain, SSL *ssl, int fd)
{
    char *buf = malloc(BUF);

    while (buf) {
        struct pollfd p[2] = {{plain, POLLIN, 0}, {fd, POLLIN, 0}};
        int pending = SSL_has_pending(ssl);

        if (poll(p, 2, pending ? 0 : -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[0].revents) {
            ssize_t n = recv(plain, buf, BUF, 0);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            if (tls_write(ssl, buf, (size_t)n) != 0) {
                refused_why(t, ssl); /* Redis may have closed with an alert */
                break;
            }
        }
        if (pending || p[1].revents) {
            int n = SSL_read(ssl, buf, BUF);
            if (n <= 0) {
                int e = SSL_get_error(ssl, n);
                /* a record that was not data (a session ticket), or one
                 * stalled half-way past STALL_MS: look again */
                if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                    continue;
                if (e == SSL_ERROR_SSL)
                    note_refusal(t);
                break;
            }
            if (write_all(plain, buf, (size_t)n) != 0)
                break;
        }
    }
    free(buf);
}

static void *link_main(void *arg)
{
    bridge_link *l = arg;
    st_tls *t = l->t;
    int fd = -1;
    SSL *ssl = tls_dial(l, &fd);

    if (ssl) {
        pump(t, l->plain, ssl, fd);
        SSL_shutdown(ssl);
        SSL_free(ssl);
    }
    pthread_mutex_lock(&t->mu); /* off the list before its descriptors close */
    if ((*l->prev = l->next))
        l->next->prev = l->prev;
    pthread_mutex_unlock(&t->mu);
    if (fd >= 0)
        close(fd);
    close(l->plain);
    free(l);
    /* OpenSSL's state of this thread (its error queue: a refused
     * certificate leaves entries with their strings) is freed now, not by
     * a destructor after the thread is counted out: st_tls_free waits for
     * this count, and a process that stops right after must not race it. */
    OPENSSL_thread_stop();
    pthread_mutex_lock(&t->mu);
    if (--t->active == 0)
        pthread_cond_broadcast(&t->idle);
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

static void *accept_main(void *arg)
{
    st_tls *t = arg;

    for (;;) {
        int c = accept(t->lfd, NULL, NULL);
        pthread_attr_t at;
        pthread_t th;
        bridge_link *l;

        if (atomic_load(&t->stopping)) {
            if (c >= 0)
                close(c);
            return NULL;
        }
        if (c < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            /* out of descriptors: the dialler sees its own error */
            nanosleep(&(struct timespec){0, 100000000}, NULL);
            continue;
        }
        fcntl(c, F_SETFD, FD_CLOEXEC);
        if (!(l = malloc(sizeof(*l)))) {
            close(c);
            continue;
        }
        l->t = t;
        l->plain = c;
        l->tcp = -1;
        pthread_mutex_lock(&t->mu);
        if ((l->next = t->links))
            t->links->prev = &l->next;
        l->prev = &t->links;
        t->links = l;
        t->active++;
        pthread_mutex_unlock(&t->mu);
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&th, &at, link_main, l) != 0) {
            set_last(t, 0, "cannot start a thread", strerror(errno));
            pthread_mutex_lock(&t->mu);
            if ((*l->prev = l->next))
                l->next->prev = l->prev;
            t->active--;
            pthread_mutex_unlock(&t->mu);
            close(c);
            free(l);
        }
        pthread_attr_destroy(&at);
    }
}

static SSL_CTX *make_ctx(const st_tls_opts *o, char *err, size_t cap)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    char why[256];
    const char *what = NULL;

    if (!ctx)
        what = "cannot make a TLS context";
    else if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1)
        what = "cannot require TLS 1.2";
    else if (o->ca ? SSL_CTX_load_verify_locations(ctx, o->ca, NULL) != 1
                   : SSL_CTX_set_default_verify_paths(ctx) != 1)
        what = o->ca ? "cannot read the CA file" : "cannot load the system's CAs";
    else if (!o->cert != !o->key)
        what = "a client certificate needs its key, and a key its certificate";
    else if (o->cert && SSL_CTX_use_certificate_chain_file(ctx, o->cert) != 1)
        what = "cannot read the client certificate";
    else if (o->key && (SSL_CTX_use_PrivateKey_file(ctx, o->key, SSL_FILETYPE_PEM) != 1 ||
                        SSL_CTX_check_private_key(ctx) != 1))
        what = "cannot use the client key (unreadable, or not the certificate's)";
    if (what) {
        snprintf(err, cap, "redis TLS: %s%s%s", what, *ssl_why(why, sizeof(why)) ? ": " : "", why);
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    /* A record that is not data (TLS 1.3 sends session tickets after the
     * handshake) must not make SSL_read block for the next one on our
     * blocking socket: the next one may only come once we forward what
     * hiredis wrote. SSL_read returns WANT_READ instead, and pump polls. */
    SSL_CTX_clear_mode(ctx, SSL_MODE_AUTO_RETRY);
    return ctx;
}

int st_tls_start(const char *host, int port, const st_tls_opts *o, st_tls **out, char *path,
                 size_t cap, char *err, size_t errcap)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    const char *tmp = getenv("TMPDIR");
    st_tls *t = calloc(1, sizeof(*t));

    *out = NULL;
    if (!t) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    if (!(t->ctx = make_ctx(o, err, errcap))) {
        free(t);
        return -1;
    }
    atomic_init(&t->stopping, 0);
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->idle, NULL);
    snprintf(t->host, sizeof(t->host), "%s", host);
    snprintf(t->name, sizeof(t->name), "%s", o->sni ? o->sni : host);
    t->port = port;
    /* A directory only this user can enter: nobody else may use the bridge. */
    snprintf(t->dir, sizeof(t->dir), "%s/tracesvc-tls-XXXXXX",
             tmp && *tmp && strlen(tmp) < 40 ? tmp : "/tmp");
    t->lfd = -1;
    if (!mkdtemp(t->dir)) {
        snprintf(err, errcap, "redis TLS: cannot make a private directory in %s: %s", t->dir,
                 strerror(errno));
        goto fail;
    }
    snprintf(t->path, sizeof(t->path), "%s/redis.sock", t->dir);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", t->path);
    t->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (t->lfd < 0 || bind(t->lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        listen(t->lfd, 64) != 0) {
        snprintf(err, errcap, "redis TLS: cannot listen on %s: %s", t->path, strerror(errno));
        goto fail;
    }
    if (pthread_create(&t->acceptor, NULL, accept_main, t) != 0) {
        snprintf(err, errcap, "redis TLS: cannot start a thread");
        goto fail;
    }
    snprintf(path, cap, "%s", t->path);
    *out = t;
    return 0;
fail:
    if (t->lfd >= 0)
        close(t->lfd);
    unlink(t->path);
    rmdir(t->dir);
    SSL_CTX_free(t->ctx);
    pthread_cond_destroy(&t->idle);
    pthread_mutex_destroy(&t->mu);
    free(t);
    return -1;
}

void st_tls_free(st_tls *t)
{
    bridge_link *l;

    if (!t)
        return;
    atomic_store(&t->stopping, 1);
    shutdown(t->lfd, SHUT_RDWR); /* wakes accept() */
    pthread_join(t->acceptor, NULL);
    close(t->lfd);
    unlink(t->path);
    rmdir(t->dir);
    /* Connections hiredis has not closed (a tail or hub still open) end
     * now: their threads must be gone before OpenSSL is. */
    pthread_mutex_lock(&t->mu);
    for (l = t->links; l; l = l->next)
        cut(l);
    while (t->active)
        pthread_cond_wait(&t->idle, &t->mu);
    pthread_mutex_unlock(&t->mu);
    SSL_CTX_free(t->ctx);
    pthread_cond_destroy(&t->idle);
    pthread_mutex_destroy(&t->mu);
    free(t);
}
