/*
 * auditor.c - see auditor.h.
 */
#include "auditor.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int unhex(const char *s, size_t slen, uint8_t *out, size_t n)
{
    if (slen != 2 * n)
        return -1;
    for (size_t i = 0; i < 2 * n; i++) {
        int c = s[i], v = c >= '0' && c <= '9'   ? c - '0'
                          : c >= 'a' && c <= 'f' ? c - 'a' + 10
                          : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                 : -1;
        if (v < 0)
            return -1;
        if (i % 2)
            out[i / 2] |= (uint8_t)v;
        else
            out[i / 2] = (uint8_t)(v << 4);
    }
    return 0;
}

static size_t hex(const uint8_t *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
    return 2 * n;
}

/* An unsigned decimal at p, as written (no sign, no space, no leading
 * zero), up to max: its value and end. */
static const char *decimal(const char *p, uint64_t max, uint64_t *v)
{
    const char *start = p;

    *v = 0;
    if (p[0] == '0' && p[1] >= '0' && p[1] <= '9')
        return NULL;
    while (*p >= '0' && *p <= '9') {
        if (*v > (max - (uint64_t)(*p - '0')) / 10)
            return NULL;
        *v = *v * 10 + (uint64_t)(*p++ - '0');
    }
    return p == start ? NULL : p;
}

int auditor_public_key(const char *keys_json, unsigned kid, uint8_t pub[CODEC_PUB_BYTES])
{
    const char *p = keys_json;

    /* Each key is one flat object: its fields end at the next '}'. */
    while ((p = strstr(p, "\"kid\":")) != NULL) {
        const char *end = strchr(p, '}'), *k;
        uint64_t id;
        p += 6;
        if (!end || !decimal(p, UINT32_MAX, &id))
            return -1;
        if (id != kid)
            continue;
        k = strstr(p, "\"public\":\"");
        if (!k || k > end)
            return -1; /* a MAC key: no public half */
        k += 10;
        return unhex(k, strcspn(k, "\""), pub, CODEC_PUB_BYTES);
    }
    return -1;
}

int auditor_head_check(const char *keys_json, const auditor_head *h, const char *what, char *why,
                       size_t whycap)
{
    uint8_t pub[CODEC_PUB_BYTES];
    char text[MERKLE_HEAD_TEXT_MAX];
    size_t len = merkle_head_text(h->size, h->root, h->time, h->kid, text, sizeof(text));

    if (len >= sizeof(text)) {
        snprintf(why, whycap, "%s cannot be written as a head (size %" PRIu64 ")", what, h->size);
        return -1;
    }
    if (auditor_public_key(keys_json, h->kid, pub) != 0) {
        snprintf(why, whycap, "%s is signed by key %u, which is not in the public keys", what,
                 h->kid);
        return -1;
    }
    if (codec_ed25519_verify(pub, (const uint8_t *)text, len, h->sig) != CODEC_OK) {
        snprintf(why, whycap, "the signature of %s (size %" PRIu64 ") does not verify with key %u",
                 what, h->size, h->kid);
        return -1;
    }
    return 0;
}

size_t auditor_head_format(const auditor_head *h, char *buf, size_t cap)
{
    char text[MERKLE_HEAD_TEXT_MAX], sig[2 * CODEC_SIG_BYTES + 1];
    int n;

    merkle_head_text(h->size, h->root, h->time, h->kid, text, sizeof(text));
    hex(h->sig, sizeof(h->sig), sig);
    n = snprintf(buf, cap, "%ssignature %s\n", text, sig);
    return n < 0 ? 0 : (size_t)n;
}

/* "<word> " at *p: past it, or NULL. */
static const char *word(const char *p, const char *w)
{
    size_t n = strlen(w);

    return strncmp(p, w, n) == 0 && p[n] == ' ' ? p + n + 1 : NULL;
}

int auditor_head_parse(const char *text, auditor_head *h)
{
    static const char magic[] = "tracecode-tree-head v1\n";
    const char *p = text, *q;
    uint64_t v;
    size_t n;

    memset(h, 0, sizeof(*h));
    if (strncmp(p, magic, sizeof(magic) - 1) != 0)
        return -1;
    p += sizeof(magic) - 1;
    if (!(p = word(p, "key")) || !(p = decimal(p, UINT32_MAX, &v)) || *p++ != '\n')
        return -1;
    h->kid = (unsigned)v;
    if (!(p = word(p, "size")) || !(p = decimal(p, UINT64_MAX, &h->size)) || *p++ != '\n')
        return -1;
    if (!(p = word(p, "root")) || (n = strcspn(p, "\n")) != 2 * MERKLE_HASH_BYTES || p[n] != '\n' ||
        unhex(p, n, h->root, sizeof(h->root)) != 0)
        return -1;
    p += n + 1;
    if (!(p = word(p, "time")) || !(q = decimal(p, INT64_MAX, &v)) || *q != '\n')
        return -1;
    h->time = (int64_t)v;
    p = q + 1;
    if (!(p = word(p, "signature")) || (n = strcspn(p, "\n")) != 2 * CODEC_SIG_BYTES ||
        unhex(p, n, h->sig, sizeof(h->sig)) != 0)
        return -1;
    return 0;
}

int auditor_consistent(const auditor_head *old, const auditor_head *now, const merkle_hash *proof,
                       size_t n, char *why, size_t whycap)
{
    int ok;

    if (old->size > now->size) {
        snprintf(why, whycap, "the log shrank from %" PRIu64 " to %" PRIu64 " entries", old->size,
                 now->size);
        return -1;
    }
    if (old->size == 0) { /* every log extends the empty one, whose root is SHA-256("") */
        merkle_frontier empty;
        merkle_hash root;
        memset(&empty, 0, sizeof(empty));
        merkle_frontier_root(&empty, root);
        ok = memcmp(root, old->root, sizeof(root)) == 0;
    } else {
        ok = merkle_verify_consistency(old->size, now->size, old->root, now->root, proof, n);
    }
    if (!ok) {
        snprintf(why, whycap,
                 "the log of %" PRIu64 " entries is not an extension of the saved head of %" PRIu64
                 " entries: its history was rewritten",
                 now->size, old->size);
        return -1;
    }
    return 0;
}

int auditor_included(const auditor_head *h, uint64_t index, const merkle_hash leaf,
                     const merkle_hash *proof, size_t n)
{
    return merkle_verify_inclusion(leaf, index, h->size, proof, n, h->root);
}

void auditor_log_init(auditor_log *l)
{
    memset(l, 0, sizeof(*l));
}

int auditor_log_add(auditor_log *l, uint64_t index, const void *body, size_t len, merkle_hash leaf,
                    char *why, size_t whycap)
{
    merkle_hash h;

    if (index != l->next) {
        if (index > l->next)
            snprintf(why, whycap, "entry %" PRIu64 " is missing (the log skips to %" PRIu64 ")",
                     l->next, index);
        else
            snprintf(why, whycap,
                     "entry %" PRIu64 " came again after entry %" PRIu64
                     " (the log is not in order)",
                     index, l->next - 1);
        return -1;
    }
    merkle_leaf_hash(body, len, h);
    merkle_frontier_add(&l->f, h, NULL, NULL);
    l->next++;
    if (leaf)
        memcpy(leaf, h, sizeof(h));
    return 0;
}

int auditor_log_matches(const auditor_log *l, const auditor_head *h)
{
    merkle_hash root;

    if (l->next != h->size)
        return 0;
    merkle_frontier_root(&l->f, root);
    return memcmp(root, h->root, sizeof(root)) == 0;
}
