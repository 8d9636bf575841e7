/*
 * fuzz_keyfile.c - the key file parser. Asserts: a file that parses is
 * canonical, i.e. formatting the record gives back exactly its bytes, and
 * a rejection always says why.
 */
#include "keys.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char out[KEYS_FILE_MAX + 1], err[256];
    keys_record r;
    size_t n;

    err[0] = '\0';
    if (keys_record_parse((const char *)data, size, &r, err, sizeof(err)) != KEYS_OK) {
        if (err[0] == '\0')
            abort();
        return 0;
    }
    n = keys_record_format(&r, out, sizeof(out));
    if (n != size || memcmp(out, data, size))
        abort();
    OPENSSL_cleanse(&r, sizeof(r));
    return 0;
}
