/*
 * fuzz_text.c - the strict text decoder and the lenient human path.
 * Asserts: whatever decodes re-encodes to exactly the input (one text per
 * code); whatever the human path accepts has a canonical text that decodes
 * strictly to the same bytes; every error can be described.
 */
#include "codec.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
    } else if (codec_describe(&ei, s, size, msg, sizeof(msg)) == 0) {
        abort();
    }
    return 0;
}
