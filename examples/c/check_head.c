/*
 * check_head.c - an outside auditor's own check of saved tree heads,
 * linking only tracecode's auditor library (auditor/, on codec/ and
 * OpenSSL's libcrypto): is each head file signed by a key of the
 * deployment, and does each later head keep the size of the one before?
 *
 *   check_head KEYS.json HEAD...
 *
 * KEYS.json is `tracekeys export-public`; a HEAD is what `tracectl audit
 * head --out FILE` (or `audit verify --out FILE`) saved. Exit 0 when every
 * head is signed and none is smaller than the one before it, 1 when one
 * is not, 2 on a usage or file error. (Consistency between two sizes needs
 * a proof from the log: `tracectl audit verify --since HEAD` fetches it.)
 *
 * Build beside tracecode: cmake builds it as examples/c/check_head; or
 *   cc check_head.c -I auditor -I codec libauditor.a libcodec.a -lcrypto
 */
#include "auditor.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEYS_MAX (1 << 20)

static char *slurp(const char *path, size_t max)
{
    FILE *f = fopen(path, "rb");
    char *buf = f ? malloc(max + 1) : NULL;
    size_t n;

    if (buf) {
        n = fread(buf, 1, max + 1, f);
        if (n > max || ferror(f)) {
            free(buf);
            buf = NULL;
        } else {
            buf[n] = '\0';
        }
    }
    if (f)
        fclose(f);
    return buf;
}

int main(int argc, char **argv)
{
    auditor_head h, prev;
    char *keys, *text, why[256];
    int i, rc = 0;

    memset(&prev, 0, sizeof(prev));

    if (argc < 3) {
        fprintf(stderr, "usage: check_head KEYS.json HEAD...\n");
        return 2;
    }
    if (!(keys = slurp(argv[1], KEYS_MAX))) {
        fprintf(stderr, "check_head: cannot read %s\n", argv[1]);
        return 2;
    }
    for (i = 2; i < argc; i++) {
        if (!(text = slurp(argv[i], AUDITOR_HEAD_FILE_MAX))) {
            fprintf(stderr, "check_head: cannot read %s\n", argv[i]);
            free(keys);
            return 2;
        }
        if (auditor_head_parse(text, &h) != 0) {
            printf("%s: not a tree head\n", argv[i]);
            rc = 1;
        } else if (auditor_head_check(keys, &h, argv[i], why, sizeof(why)) != 0) {
            printf("%s\n", why);
            rc = 1;
        } else if (i > 2 && h.size < prev.size) {
            printf("%s: the log shrank from %" PRIu64 " to %" PRIu64 " entries\n", argv[i],
                   prev.size, h.size);
            rc = 1;
        } else {
            printf("%s: size %" PRIu64 ", signed at %" PRId64 " by key %u: ok\n", argv[i], h.size,
                   h.time, h.kid);
        }
        prev = h;
        free(text);
    }
    free(keys);
    return rc;
}
