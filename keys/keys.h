/*
 * keys.h - the keyring: MAC secrets and Ed25519 signing keys by key id.
 *
 * A keyring is a directory with one file per key, `key-NNN` (NNN = key id,
 * 1..255), mode 0600. Each key has a kind (mac or ed25519) and a state:
 *
 *   active       mints new codes / signs; at most one per kind is used
 *   verify-only  still verifies what it minted or signed
 *   retired      verifies nothing; its secret is erased; the file stays as a
 *                tombstone so the id is never handed out again
 *
 * Files that are group- or world-readable are refused. Secrets live in
 * memory only inside the keys_ring and are wiped with OPENSSL_cleanse when
 * it is freed. Links codec and OpenSSL only.
 */
#ifndef TC_KEYS_H
#define TC_KEYS_H

#include "codec.h"

#include <stddef.h>
#include <stdint.h>

/* Error codes. 0 is success; values are never renumbered. */
typedef enum keys_err {
    KEYS_OK = 0,
    KEYS_ERR_IO = 1,     /* a file could not be read, written or listed */
    KEYS_ERR_PERM = 2,   /* a key file readable by group or others */
    KEYS_ERR_FORMAT = 3, /* a key file does not parse */
    KEYS_ERR_SIZE = 4,   /* a key file or secret of the wrong size */
    KEYS_ERR_NOKEY = 5,  /* no such key id, or none active of a kind */
    KEYS_ERR_EXISTS = 6, /* the keyring already exists / id taken */
    KEYS_ERR_FULL = 7,   /* all 255 key ids are used */
    KEYS_ERR_CRYPTO = 8, /* randomness or Ed25519 failed */
    KEYS_ERR_NOMEM = 9,
    KEYS_ERR_STATE = 10, /* the change is not allowed in the key's state */
    KEYS_ERR_ARG = 11,   /* an argument out of range */
} keys_err;

typedef enum keys_kind { KEYS_KIND_MAC = 1, KEYS_KIND_ED25519 = 2 } keys_kind;
typedef enum keys_state { KEYS_ACTIVE = 1, KEYS_VERIFY_ONLY = 2, KEYS_RETIRED = 3 } keys_state;

const char *keys_kind_name(keys_kind kind);
/* The crypto library's version (OpenSSL), for --version and build info. */
const char *keys_crypto_version(void);
const char *keys_state_name(keys_state state);

#define KEYS_FILE_MAX 1024 /* a key file is far smaller; anything larger is refused */

/*
 * One key file, parsed. The text form is canonical, fixed order, one
 * field per line, lower-case hex, and a secret line unless retired:
 *
 *   tracecode-key v1
 *   kid 1
 *   kind mac
 *   state active
 *   created 1763720000
 *   secret 64 hex digits
 */
typedef struct keys_record {
    unsigned kid;
    keys_kind kind;
    keys_state state;
    int64_t created;                 /* unix seconds */
    uint8_t secret[CODEC_KEY_BYTES]; /* MAC secret or Ed25519 seed; zero when retired */
} keys_record;

/*
 * Parse one key file's bytes. Pure: no I/O. On failure a message naming
 * the line and what was wrong goes to errbuf (may be NULL). Secrets in *r
 * are the caller's to wipe.
 */
keys_err keys_record_parse(const char *buf, size_t len, keys_record *r, char *errbuf,
                           size_t errcap);

/* The canonical text of r; returns its length, or 0 when cap is too small
 * or r is out of range. */
size_t keys_record_format(const keys_record *r, char *buf, size_t cap);

/* What a caller may know of a key without its secret. */
typedef struct keys_info {
    unsigned kid;
    keys_kind kind;
    keys_state state;
    int64_t created;
    uint8_t pub[CODEC_PUB_BYTES]; /* Ed25519 public key; zero for mac or retired */
} keys_info;

typedef struct keys_ring keys_ring;

/*
 * Create a keyring in dir (made 0700 if missing): key 1, an active MAC
 * key, and key 2, the active Ed25519 signing key. KEYS_ERR_EXISTS when dir
 * already holds key files.
 */
keys_err keys_init_dir(const char *dir, char *errbuf, size_t errcap);

/*
 * Load every key-NNN file of dir. Refuses a group- or world-readable file,
 * a malformed one, or one whose name and kid differ. When two keys of a
 * kind are active (a rotation interrupted between its two writes), the
 * higher id is the active one and the other verifies only.
 * Caller frees with keys_free.
 */
keys_err keys_open(const char *dir, keys_ring **out, char *errbuf, size_t errcap);
/*
 * keys_open with options. KEYS_OPEN_SECRET_VOLUME takes a keyring mounted
 * as a Kubernetes Secret: key-NNN may be a symbolic link (to ..data/key-NNN)
 * when the file it leads to is inside dir, and may be readable by its group
 * (an fsGroup); never by others, never writable but by its owner. Without
 * it, a link or a group-readable file is refused (KEYS_ERR_PERM) saying so.
 */
#define KEYS_OPEN_SECRET_VOLUME 1u
keys_err keys_open_ex(const char *dir, unsigned flags, keys_ring **out, char *errbuf,
                      size_t errcap);
void keys_free(keys_ring *ring);

/*
 * A new active key of kind with the next unused id; the previous active
 * key of that kind becomes verify-only. The new file is written before the
 * old one is demoted and is linked, never renamed, into place, so an
 * interrupted or concurrent rotation never reuses an id.
 */
keys_err keys_rotate(keys_ring *ring, keys_kind kind, unsigned *kid, char *errbuf, size_t errcap);

/*
 * Stage a new key of kind with the next unused id: verify-only, so every
 * node that loads it verifies its codes before any node issues under it.
 * The first step of a rolling rotation; the deployment makes it the
 * issuing key afterwards (tracectl keys activate). keys_rotate is stage
 * and activate in one, for a single node.
 */
keys_err keys_stage(keys_ring *ring, keys_kind kind, unsigned *kid, char *errbuf, size_t errcap);

/* Retire kid: its secret is erased from the file and from memory. The
 * active key of a kind cannot be retired (rotate first). */
keys_err keys_retire(keys_ring *ring, unsigned kid, char *errbuf, size_t errcap);

/* 1 when dir holds the file of key kid (whether it loads is keys_open's
 * say): a cheap look before loading a whole directory again. */
int keys_dir_has(const char *dir, unsigned kid);

/* Keys in id order: fills up to cap entries, returns how many exist. */
size_t keys_list(const keys_ring *ring, keys_info *out, size_t cap);

/* The active key id of kind, 0 if none. */
unsigned keys_active(const keys_ring *ring, keys_kind kind);

/* The MAC key of kid if it is a mac key that may verify (active or
 * verify-only), else NULL. Borrowed; valid until keys_free. */
const codec_mac_key *keys_mac(const keys_ring *ring, unsigned kid);

/* The Ed25519 public key of kid if it may verify, else NULL. Borrowed. */
const uint8_t *keys_ed25519_public(const keys_ring *ring, unsigned kid);

/* Sign msg with the active Ed25519 key; *kid (may be NULL) names it. */
keys_err keys_sign(const keys_ring *ring, const uint8_t *msg, size_t len,
                   uint8_t sig[CODEC_SIG_BYTES], unsigned *kid);

/*
 * Mint a code for f->batch / f->serial with f->profile. f->kid = 0 uses
 * the active key of the matching kind (and sets f->kid); a non-zero f->kid
 * names the key, which must be of that kind and not retired (re-delivering
 * a batch issued before a rotation). code needs CODEC_MAX_BYTES; *len
 * receives 21 or 75. KEYS_ERR_NOKEY when the key is missing.
 */
keys_err keys_mint(const keys_ring *ring, codec_fields *f, uint8_t *code, size_t *len);

/*
 * Check a decoded code against the ring: CODEC_OK when genuine;
 * CODEC_ERR_TAG / CODEC_ERR_SIGNATURE when forged; *known (may be NULL) is
 * set to 0 when the kid names no key that may verify (also reported as
 * forged: nobody holding our keys made it).
 */
codec_err keys_check(const keys_ring *ring, const codec_code *c, int *known);

/*
 * The public document for offline verifiers, JSON:
 * {"format":"tracecode-public-keys/v1","keys":[{"kid":2,"kind":"ed25519",
 *  "state":"active","created":...,"public":"hex"}, {"kid":1,"kind":"mac",...}]}
 * MAC keys are listed by id and state only. Returns the length needed
 * (without terminator); the text is complete only when that is < cap.
 */
size_t keys_export_public(const keys_ring *ring, char *buf, size_t cap);

#endif
