/*
 * keyring.c - a directory of key files, loaded into a table indexed by key
 * id so that a verify finds its key with one array access.
 */
#include "keys.h"
#include "keys_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PATH_CAP 4096

typedef struct slot {
    keys_record rec;              /* rec.kid == 0: no key with this id */
    codec_mac_key mac;            /* mac keys that may verify */
    uint8_t pub[CODEC_PUB_BYTES]; /* ed25519 keys that may verify */
} slot;

struct keys_ring {
    char dir[PATH_CAP];
    unsigned active[3]; /* by keys_kind */
    slot slots[CODEC_KID_MAX + 1];
};

static int key_path(char *out, size_t cap, const char *dir, const char *prefix, unsigned kid)
{
    int n = snprintf(out, cap, "%s/%skey-%03u", dir, prefix, kid);
    return n > 0 && (size_t)n < cap;
}

int keys_dir_has(const char *dir, unsigned kid)
{
    char path[4096];
    struct stat sb;

    return kid >= 1 && kid <= CODEC_KID_MAX && key_path(path, sizeof(path), dir, "", kid) &&
           stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* "key-NNN" exactly; returns NNN or 0. */
static unsigned name_kid(const char *name)
{
    unsigned v = 0;
    int i;

    if (strncmp(name, "key-", 4) != 0 || strlen(name) != 7)
        return 0;
    for (i = 4; i < 7; i++) {
        if (name[i] < '0' || name[i] > '9')
            return 0;
        v = v * 10 + (unsigned)(name[i] - '0');
    }
    return v <= CODEC_KID_MAX ? v : 0;
}

/* 1 when the file open on fd is inside the directory whose real path is
 * real_dir (what a link led to, read back from the descriptor: no window
 * between a check and the open). */
static int fd_inside(int fd, const char *real_dir)
{
    char proc[64], where[PATH_CAP];
    size_t n = strlen(real_dir);
    ssize_t k;

    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    k = readlink(proc, where, sizeof(where) - 1);
    if (k <= 0)
        return 0;
    where[k] = '\0';
    return strncmp(where, real_dir, n) == 0 && where[n] == '/';
}

static keys_err read_key_file(const char *path, const char *real_dir, unsigned flags,
                              keys_record *r, char *errbuf, size_t errcap)
{
    char buf[KEYS_FILE_MAX + 1], why[256];
    struct stat st;
    ssize_t got;
    size_t len = 0;
    keys_err err;
    int secret = (flags & KEYS_OPEN_SECRET_VOLUME) != 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | (secret ? 0 : O_NOFOLLOW));

    if (fd < 0 && errno == ELOOP && !secret)
        return keys_fail(KEYS_ERR_PERM, errbuf, errcap,
                         "key file '%s' is a symbolic link (a Kubernetes Secret volume?); the "
                         "keyring takes regular files unless told to follow links inside its "
                         "directory",
                         path);
    if (fd < 0)
        return keys_fail(KEYS_ERR_IO, errbuf, errcap, "cannot open key file '%s': %s", path,
                         strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return keys_fail(KEYS_ERR_IO, errbuf, errcap, "key file '%s' is not a regular file", path);
    }
    if (secret && !fd_inside(fd, real_dir)) {
        close(fd);
        return keys_fail(KEYS_ERR_PERM, errbuf, errcap,
                         "key file '%s' leads outside the keyring directory '%s'", path, real_dir);
    }
    if (st.st_mode & (secret ? 037 : 077)) {
        close(fd);
        return keys_fail(KEYS_ERR_PERM, errbuf, errcap,
                         secret ? "key file '%s' is writable by its group or readable by others "
                                  "(mode %04o); chmod 640 it at most"
                                : "key file '%s' is readable by group or others (mode %04o); "
                                  "chmod 600 it",
                         path, (unsigned)(st.st_mode & 07777));
    }
    while (len < sizeof(buf)) {
        got = read(fd, buf + len, sizeof(buf) - len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            close(fd);
            OPENSSL_cleanse(buf, sizeof(buf));
            return keys_fail(KEYS_ERR_IO, errbuf, errcap, "cannot read key file '%s': %s", path,
                             strerror(errno));
        }
        if (got == 0)
            break;
        len += (size_t)got;
    }
    close(fd);
    err = keys_record_parse(buf, len, r, why, sizeof(why));
    OPENSSL_cleanse(buf, sizeof(buf));
    if (err)
        return keys_fail(err, errbuf, errcap, "key file '%s': %s", path, why);
    return KEYS_OK;
}

/* Write r to a fresh temporary file, synced; the caller links or renames it. */
static keys_err write_tmp(const char *tmp, const keys_record *r, char *errbuf, size_t errcap)
{
    char buf[KEYS_FILE_MAX];
    size_t n = keys_record_format(r, buf, sizeof(buf)), off = 0;
    keys_err err = KEYS_OK;
    int fd;

    if (n == 0)
        return keys_fail(KEYS_ERR_ARG, errbuf, errcap, "key %u cannot be written", r->kid);
    (void)unlink(tmp); /* a leftover of an interrupted write */
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        err =
            keys_fail(KEYS_ERR_IO, errbuf, errcap, "cannot create '%s': %s", tmp, strerror(errno));
        goto out;
    }
    while (off < n) {
        ssize_t w = write(fd, buf + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            err = keys_fail(KEYS_ERR_IO, errbuf, errcap, "cannot write '%s': %s", tmp,
                            strerror(errno));
            break;
        }
        off += (size_t)w;
    }
    if (!err && fsync(fd) != 0)
        err = keys_fail(KEYS_ERR_IO, errbuf, errcap, "cannot sync '%s': %s", tmp, strerror(errno));
    if (close(fd) != 0 && !err)
        err = keys_fail(KEYS_ERR_IO, errbuf, errcap, "cannot close '%s': %s", tmp, strerror(errno));
    if (err)
        (void)unlink(tmp);
out:
    OPENSSL_cleanse(buf, sizeof(buf));
    return err;
}

static void sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

/*
 * Put r's file in place through a synced temporary file. A new key is
 * link()ed, which fails if the id is taken, so ids are never reused; a
 * state change of an existing key is rename()d over the old file.
 */
static keys_err install_key_file(const char *dir, const keys_record *r, int is_new, char *errbuf,
                                 size_t errcap)
{
    char tmp[PATH_CAP], path[PATH_CAP];
    keys_err err;
    int e;

    if (!key_path(tmp, sizeof(tmp), dir, ".tmp-", r->kid) ||
        !key_path(path, sizeof(path), dir, "", r->kid))
        return keys_fail(KEYS_ERR_ARG, errbuf, errcap, "keyring path '%s' is too long", dir);
    err = write_tmp(tmp, r, errbuf, errcap);
    if (err)
        return err;
    if ((is_new ? link(tmp, path) : rename(tmp, path)) != 0) {
        e = errno;
        (void)unlink(tmp);
        if (is_new && e == EEXIST)
            return keys_fail(KEYS_ERR_EXISTS, errbuf, errcap, "key id %u is taken ('%s' exists)",
                             r->kid, path);
        return keys_fail(KEYS_ERR_IO, errbuf, errcap, "cannot install '%s': %s", path, strerror(e));
    }
    if (is_new)
        (void)unlink(tmp);
    sync_dir(dir);
    return KEYS_OK;
}

static keys_err new_record(keys_record *r, unsigned kid, keys_kind kind)
{
    memset(r, 0, sizeof(*r));
    r->kid = kid;
    r->kind = kind;
    r->state = KEYS_ACTIVE;
    r->created = (int64_t)time(NULL);
    if (RAND_priv_bytes(r->secret, sizeof(r->secret)) != 1)
        return KEYS_ERR_CRYPTO;
    return KEYS_OK;
}

static int dir_has_keys(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int found = 0;

    if (!d)
        return 0;
    while (!found && (e = readdir(d)) != NULL)
        found = name_kid(e->d_name) != 0;
    closedir(d);
    return found;
}

keys_err keys_init_dir(const char *dir, char *errbuf, size_t errcap)
{
    keys_record r;
    keys_err err;
    unsigned kid;

    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return keys_fail(KEYS_ERR_IO, errbuf, errcap, "cannot create keyring '%s': %s", dir,
                         strerror(errno));
    if (dir_has_keys(dir))
        return keys_fail(KEYS_ERR_EXISTS, errbuf, errcap,
                         "keyring '%s' already holds keys; use 'tracekeys rotate'", dir);
    for (kid = 1; kid <= 2; kid++) {
        err = new_record(&r, kid, kid == 1 ? KEYS_KIND_MAC : KEYS_KIND_ED25519);
        if (err)
            err = keys_fail(err, errbuf, errcap, "no randomness for a new key");
        else
            err = install_key_file(dir, &r, 1, errbuf, errcap);
        OPENSSL_cleanse(&r, sizeof(r));
        if (err)
            return err;
    }
    return KEYS_OK;
}

/* Fill the derived material of a slot from its record. */
static keys_err slot_load(slot *s, const keys_record *r)
{
    s->rec = *r;
    if (r->state == KEYS_RETIRED)
        return KEYS_OK;
    if (r->kind == KEYS_KIND_MAC)
        return codec_mac_key_init(&s->mac, r->secret, sizeof(r->secret)) ? KEYS_ERR_CRYPTO
                                                                         : KEYS_OK;
    return codec_ed25519_public(r->secret, s->pub) ? KEYS_ERR_CRYPTO : KEYS_OK;
}

static void slot_wipe(slot *s)
{
    OPENSSL_cleanse(s, sizeof(*s));
}

static void pick_active(keys_ring *ring)
{
    unsigned kid;

    ring->active[KEYS_KIND_MAC] = ring->active[KEYS_KIND_ED25519] = 0;
    for (kid = 1; kid <= CODEC_KID_MAX; kid++) {
        const keys_record *r = &ring->slots[kid].rec;
        if (r->kid && r->state == KEYS_ACTIVE)
            ring->active[r->kind] = kid; /* the highest wins */
    }
}

keys_err keys_open(const char *dir, keys_ring **out, char *errbuf, size_t errcap)
{
    return keys_open_ex(dir, 0, out, errbuf, errcap);
}

keys_err keys_open_ex(const char *dir, unsigned flags, keys_ring **out, char *errbuf, size_t errcap)
{
    keys_ring *ring;
    DIR *d;
    struct dirent *e;
    keys_err err = KEYS_OK;
    size_t dlen = strlen(dir);
    char real_dir[PATH_CAP] = "";

    *out = NULL;
    if (dlen >= PATH_CAP - 16)
        return keys_fail(KEYS_ERR_ARG, errbuf, errcap, "keyring path '%s' is too long", dir);
    if ((flags & KEYS_OPEN_SECRET_VOLUME) && !realpath(dir, real_dir))
        return keys_fail(KEYS_ERR_IO, errbuf, errcap, "cannot open keyring '%s': %s", dir,
                         strerror(errno));
    d = opendir(dir);
    if (!d)
        return keys_fail(KEYS_ERR_IO, errbuf, errcap, "cannot open keyring '%s': %s", dir,
                         strerror(errno));
    ring = calloc(1, sizeof(*ring));
    if (!ring) {
        closedir(d);
        return keys_fail(KEYS_ERR_NOMEM, errbuf, errcap, "out of memory loading keyring '%s'", dir);
    }
    memcpy(ring->dir, dir, dlen + 1);
    while (!err && (e = readdir(d)) != NULL) {
        unsigned kid = name_kid(e->d_name);
        char path[PATH_CAP];
        keys_record r;

        if (!kid)
            continue;
        if (!key_path(path, sizeof(path), dir, "", kid)) {
            err = keys_fail(KEYS_ERR_ARG, errbuf, errcap, "keyring path '%s' is too long", dir);
            break;
        }
        err = read_key_file(path, real_dir, flags, &r, errbuf, errcap);
        if (!err && r.kid != kid)
            err = keys_fail(KEYS_ERR_FORMAT, errbuf, errcap, "key file '%s' holds kid %u", path,
                            r.kid);
        if (!err && slot_load(&ring->slots[kid], &r))
            err = keys_fail(KEYS_ERR_CRYPTO, errbuf, errcap, "key file '%s': cannot derive the key",
                            path);
        OPENSSL_cleanse(&r, sizeof(r));
    }
    closedir(d);
    if (err) {
        keys_free(ring);
        return err;
    }
    pick_active(ring);
    *out = ring;
    return KEYS_OK;
}

void keys_free(keys_ring *ring)
{
    if (!ring)
        return;
    OPENSSL_cleanse(ring, sizeof(*ring));
    free(ring);
}

/* A new key of kind in state, with the next unused id. */
static keys_err add_key(keys_ring *ring, keys_kind kind, keys_state state, unsigned *kid,
                        char *errbuf, size_t errcap)
{
    unsigned next = 0, k;
    keys_record r;
    keys_err err;

    if (kind != KEYS_KIND_MAC && kind != KEYS_KIND_ED25519)
        return keys_fail(KEYS_ERR_ARG, errbuf, errcap, "unknown key kind %d", (int)kind);
    for (k = 1; k <= CODEC_KID_MAX; k++)
        if (ring->slots[k].rec.kid)
            next = k;
    if (next == CODEC_KID_MAX)
        return keys_fail(KEYS_ERR_FULL, errbuf, errcap, "keyring '%s' has used all %d key ids",
                         ring->dir, CODEC_KID_MAX);
    next++;
    if (new_record(&r, next, kind))
        return keys_fail(KEYS_ERR_CRYPTO, errbuf, errcap, "no randomness for a new key");
    r.state = state;
    err = install_key_file(ring->dir, &r, 1, errbuf, errcap);
    if (!err && slot_load(&ring->slots[next], &r))
        err = keys_fail(KEYS_ERR_CRYPTO, errbuf, errcap, "cannot derive key %u", next);
    OPENSSL_cleanse(&r, sizeof(r));
    if (!err)
        *kid = next;
    return err;
}

keys_err keys_stage(keys_ring *ring, keys_kind kind, unsigned *kid, char *errbuf, size_t errcap)
{
    unsigned next;
    keys_err err = add_key(ring, kind, KEYS_VERIFY_ONLY, &next, errbuf, errcap);

    if (!err && kid)
        *kid = next;
    return err;
}

keys_err keys_rotate(keys_ring *ring, keys_kind kind, unsigned *kid, char *errbuf, size_t errcap)
{
    unsigned next, old;
    keys_err err = add_key(ring, kind, KEYS_ACTIVE, &next, errbuf, errcap);

    if (err)
        return err;
    old = ring->active[kind];
    if (old) {
        keys_record d = ring->slots[old].rec;
        d.state = KEYS_VERIFY_ONLY;
        err = install_key_file(ring->dir, &d, 0, errbuf, errcap);
        OPENSSL_cleanse(&d, sizeof(d));
        if (err)
            return err; /* on disk both are active; the higher id wins on load */
        ring->slots[old].rec.state = KEYS_VERIFY_ONLY;
    }
    pick_active(ring);
    if (kid)
        *kid = next;
    return KEYS_OK;
}

keys_err keys_retire(keys_ring *ring, unsigned kid, char *errbuf, size_t errcap)
{
    keys_record r;
    keys_err err;

    if (kid == 0 || kid > CODEC_KID_MAX || ring->slots[kid].rec.kid == 0)
        return keys_fail(KEYS_ERR_NOKEY, errbuf, errcap, "keyring '%s' has no key %u", ring->dir,
                         kid);
    r = ring->slots[kid].rec;
    if (r.state == KEYS_ACTIVE) {
        OPENSSL_cleanse(&r, sizeof(r));
        return keys_fail(KEYS_ERR_STATE, errbuf, errcap,
                         "key %u is the active %s key; rotate before retiring it", kid,
                         keys_kind_name(r.kind));
    }
    if (r.state == KEYS_RETIRED)
        return KEYS_OK;
    r.state = KEYS_RETIRED;
    OPENSSL_cleanse(r.secret, sizeof(r.secret));
    err = install_key_file(ring->dir, &r, 0, errbuf, errcap);
    if (!err) {
        slot_wipe(&ring->slots[kid]);
        ring->slots[kid].rec = r;
    }
    return err;
}

size_t keys_list(const keys_ring *ring, keys_info *out, size_t cap)
{
    size_t n = 0;
    unsigned kid;

    for (kid = 1; kid <= CODEC_KID_MAX; kid++) {
        const slot *s = &ring->slots[kid];
        if (!s->rec.kid)
            continue;
        if (n < cap) {
            keys_info *i = &out[n];
            memset(i, 0, sizeof(*i));
            i->kid = kid;
            i->kind = s->rec.kind;
            i->state = s->rec.state;
            i->created = s->rec.created;
            if (s->rec.kind == KEYS_KIND_ED25519 && s->rec.state != KEYS_RETIRED)
                memcpy(i->pub, s->pub, sizeof(i->pub));
        }
        n++;
    }
    return n;
}

unsigned keys_active(const keys_ring *ring, keys_kind kind)
{
    if (kind != KEYS_KIND_MAC && kind != KEYS_KIND_ED25519)
        return 0;
    return ring->active[kind];
}

static const slot *usable(const keys_ring *ring, unsigned kid, keys_kind kind)
{
    const slot *s;

    if (kid == 0 || kid > CODEC_KID_MAX)
        return NULL;
    s = &ring->slots[kid];
    if (s->rec.kid == 0 || s->rec.kind != kind || s->rec.state == KEYS_RETIRED)
        return NULL;
    return s;
}

const codec_mac_key *keys_mac(const keys_ring *ring, unsigned kid)
{
    const slot *s = usable(ring, kid, KEYS_KIND_MAC);
    return s ? &s->mac : NULL;
}

const uint8_t *keys_ed25519_public(const keys_ring *ring, unsigned kid)
{
    const slot *s = usable(ring, kid, KEYS_KIND_ED25519);
    return s ? s->pub : NULL;
}

keys_err keys_sign(const keys_ring *ring, const uint8_t *msg, size_t len,
                   uint8_t sig[CODEC_SIG_BYTES], unsigned *kid)
{
    unsigned k = ring->active[KEYS_KIND_ED25519];

    if (!k)
        return KEYS_ERR_NOKEY;
    if (codec_ed25519_sign(ring->slots[k].rec.secret, msg, len, sig))
        return KEYS_ERR_CRYPTO;
    if (kid)
        *kid = k;
    return KEYS_OK;
}

keys_err keys_mint(const keys_ring *ring, codec_fields *f, uint8_t *code, size_t *len)
{
    keys_kind kind;
    const slot *s;

    if (f->profile == CODEC_PROFILE_MAC)
        kind = KEYS_KIND_MAC;
    else if (f->profile == CODEC_PROFILE_SIG)
        kind = KEYS_KIND_ED25519;
    else
        return KEYS_ERR_ARG;
    if (f->kid == 0)
        f->kid = ring->active[kind];
    s = usable(ring, f->kid, kind);
    if (!s)
        return KEYS_ERR_NOKEY;
    f->version = CODEC_VERSION;
    if (kind == KEYS_KIND_MAC) {
        if (codec_mac_mint(&s->mac, f, code))
            return KEYS_ERR_ARG;
        *len = CODEC_MAC_BYTES;
        return KEYS_OK;
    }
    switch (codec_sig_mint(s->rec.secret, f, code)) {
    case CODEC_OK:
        *len = CODEC_SIGCODE_BYTES;
        return KEYS_OK;
    case CODEC_ERR_RANGE:
        return KEYS_ERR_ARG;
    default:
        return KEYS_ERR_CRYPTO;
    }
}

codec_err keys_check(const keys_ring *ring, const codec_code *c, int *known)
{
    if (known)
        *known = 1;
    if (c->f.profile == CODEC_PROFILE_MAC) {
        const codec_mac_key *k = keys_mac(ring, c->f.kid);
        if (k)
            return codec_mac_check(k, c->bin);
        if (known)
            *known = 0;
        return CODEC_ERR_TAG;
    }
    if (c->f.profile == CODEC_PROFILE_SIG) {
        const uint8_t *pub = keys_ed25519_public(ring, c->f.kid);
        if (pub)
            return codec_sig_check(pub, c->bin);
        if (known)
            *known = 0;
        return CODEC_ERR_SIGNATURE;
    }
    return CODEC_ERR_PROFILE;
}

size_t keys_export_public(const keys_ring *ring, char *buf, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    size_t len = 0;
    unsigned kid;
    int first = 1;

#define EMIT(...)                                                                                  \
    do {                                                                                           \
        int n_ = snprintf(len < cap ? buf + len : NULL, len < cap ? cap - len : 0, __VA_ARGS__);   \
        if (n_ > 0)                                                                                \
            len += (size_t)n_;                                                                     \
    } while (0)

    EMIT("{\"format\":\"tracecode-public-keys/v1\",\"keys\":[");
    for (kid = 1; kid <= CODEC_KID_MAX; kid++) {
        const slot *s = &ring->slots[kid];
        if (!s->rec.kid)
            continue;
        EMIT("%s{\"kid\":%u,\"kind\":\"%s\",\"state\":\"%s\",\"created\":%lld", first ? "" : ",",
             kid, keys_kind_name(s->rec.kind), keys_state_name(s->rec.state),
             (long long)s->rec.created);
        first = 0;
        if (s->rec.kind == KEYS_KIND_ED25519 && s->rec.state != KEYS_RETIRED) {
            char h[2 * CODEC_PUB_BYTES + 1];
            int i;
            for (i = 0; i < CODEC_PUB_BYTES; i++) {
                h[2 * i] = hex[s->pub[i] >> 4];
                h[2 * i + 1] = hex[s->pub[i] & 15];
            }
            h[2 * CODEC_PUB_BYTES] = '\0';
            EMIT(",\"alg\":\"Ed25519\",\"public\":\"%s\"", h);
        }
        EMIT("}");
    }
    EMIT("]}\n");
#undef EMIT
    return len;
}

const char *keys_crypto_version(void)
{
    return OpenSSL_version(OPENSSL_VERSION_STRING);
}
