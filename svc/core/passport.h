/*
 * passport.h - a product's passport in its stored form: one line a field,
 * the same text in Redis, on the change stream, in the replica and in the
 * audit log, read by people as it is:
 *
 *   standard GB 4943.1-2022
 *   report NUMBER<TAB>LABORATORY<TAB>ISSUED_UNIX<TAB>URL<TAB>SHA256
 *   image URL<TAB>SHA256<TAB>ALT
 *   description TEXT
 *   origin TEXT
 *
 * Fields hold no control characters (the API refuses them), so tabs and
 * newlines only ever separate. Pure: no allocation, no I/O.
 */
#ifndef TC_PASSPORT_H
#define TC_PASSPORT_H

#include <stddef.h>
#include <stdint.h>

#define PASSPORT_STANDARDS_MAX 16
#define PASSPORT_REPORTS_MAX 16
#define PASSPORT_IMAGES_MAX 8

typedef struct passport_report {
    const char *number, *laboratory, *url, *sha256;
    int64_t issued_unix;
} passport_report;

typedef struct passport_image {
    const char *url, *sha256, *alt;
} passport_image;

typedef struct passport {
    const char *standards[PASSPORT_STANDARDS_MAX];
    passport_report reports[PASSPORT_REPORTS_MAX];
    passport_image images[PASSPORT_IMAGES_MAX];
    size_t nstandards, nreports, nimages;
    const char *description, *origin; /* "" when not given */
} passport;

/* Read text (the caller's copy: separators become NULs; p points into it).
 * 0, or -1 for a line that is not one of the forms or more of a field than
 * the bounds (p then holds what came before). */
int passport_parse(char *text, passport *p);

/* p's stored form into out (cap bytes, terminated when cap > 0); the
 * length it needs, as snprintf. */
size_t passport_format(const passport *p, char *out, size_t cap);

#endif
