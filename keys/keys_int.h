/*
 * keys_int.h - private to keys/: the message helper shared by the parser
 * and the keyring.
 */
#ifndef TC_KEYS_INT_H
#define TC_KEYS_INT_H

#include "keys.h"

#include <stddef.h>

/* Format a message into errbuf (may be NULL) and return err. */
keys_err keys_fail(keys_err err, char *errbuf, size_t errcap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
