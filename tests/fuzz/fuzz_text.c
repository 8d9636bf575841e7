/*
 * fuzz_text.c - the strict text decoder and the lenient human path.
 * Asserts: whatever decodes re-encodes to exactly the input (one text per
 * code); whatever the human path accepts has a canonical text that decodes
 * strictly to the same bytes, and its printed form (with the check
 * symbol) reads back to the same code while any one symbol of it changed
 * never reads as a code; every error can be described.
 */
#include "codec.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The printed form of an accepted code reads back to it; one symbol of it
 * changed (each position in turn, to a value picked from the code) is
 * refused: the check symbol catches every single substitution. */
static void printed_holds(const char *canon, const codec_code *c)
{
    static const char symbols[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ*~$=U";
    char printed[CODEC_PRINTED_MAX + 1];
    size_t n = codec_text_printed(canon, strlen(canon), printed, sizeof(printed));
    codec_code d;

    if (n == 0 || codec_parse_human(printed, n, &d, NULL, NULL) != CODEC_OK || d.len != c->len ||
        memcmp(d.bin, c->bin, c->len))
        abort();
    for (size_t i = 0; i < n; i++) {
        char keep = printed[i];
        if (keep == '-')
            continue;
        printed[i] = symbols[(c->bin[i % c->len] + i) % 37];
        if (printed[i] == keep)
            printed[i] = symbols[(c->bin[i % c->len] + i + 1) % 37];
        if (codec_parse_human(printed, n, &d, NULL, NULL) == CODEC_OK)
            abort();
        printed[i] = keep;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    char out[CODEC_MAX_TEXT_LEN + 1], canon[CODEC_MAX_TEXT_LEN + 1], msg[512];
    codec_errinfo ei;
    codec_code c, d;
    codec_err err;

    memset(&ei, 0, sizeof(ei));
    err = codec_parse(s, size, &c, &ei);
    if (err == CODEC_OK) {
        if (codec_text_encode(c.bin, c.len, out, sizeof(out)) != size || memcmp(out, s, size))
            abort();
    } else {
        if (ei.code != err)
            abort();
        if (codec_describe(&ei, s, size, msg, sizeof(msg)) == 0)
            abort();
    }

    memset(&ei, 0, sizeof(ei));
    err = codec_parse_human(s, size, &c, canon, &ei);
    if (err == CODEC_OK) {
        if (codec_parse(canon, strlen(canon), &d, NULL) != CODEC_OK)
            abort();
        if (d.len != c.len || memcmp(d.bin, c.bin, c.len))
            abort();
        printed_holds(canon, &c);
    } else if (codec_describe(&ei, s, size, msg, sizeof(msg)) == 0) {
        abort();
    }
    return 0;
}
