/*
 * passport.c - see passport.h.
 */
#include "passport.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The next field of a tab-separated line: cut at the tab, *s moves on. */
static char *field(char **s)
{
    char *f = *s, *tab = f ? strchr(f, '\t') : NULL;

    if (tab) {
        *tab = '\0';
        *s = tab + 1;
    } else {
        *s = NULL;
    }
    return f ? f : (char *)"";
}

static int starts(const char *line, const char *word, char **rest)
{
    size_t n = strlen(word);

    if (strncmp(line, word, n) != 0 || line[n] != ' ')
        return 0;
    *rest = (char *)line + n + 1;
    return 1;
}

int passport_parse(char *text, passport *p)
{
    char *line = text, *rest;

    memset(p, 0, sizeof(*p));
    p->description = p->origin = "";
    while (line && *line) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        if (starts(line, "standard", &rest)) {
            if (p->nstandards == PASSPORT_STANDARDS_MAX)
                return -1;
            p->standards[p->nstandards++] = rest;
        } else if (starts(line, "report", &rest)) {
            passport_report *r;
            if (p->nreports == PASSPORT_REPORTS_MAX)
                return -1;
            r = &p->reports[p->nreports++];
            r->number = field(&rest);
            r->laboratory = field(&rest);
            r->issued_unix = strtoll(field(&rest), NULL, 10);
            r->url = field(&rest);
            r->sha256 = field(&rest);
        } else if (starts(line, "image", &rest)) {
            passport_image *im;
            if (p->nimages == PASSPORT_IMAGES_MAX)
                return -1;
            im = &p->images[p->nimages++];
            im->url = field(&rest);
            im->sha256 = field(&rest);
            im->alt = field(&rest);
        } else if (starts(line, "description", &rest)) {
            p->description = rest;
        } else if (starts(line, "origin", &rest)) {
            p->origin = rest;
        } else {
            return -1;
        }
        line = nl ? nl + 1 : NULL;
    }
    return 0;
}

/* printf at out + n within cap; the length so far, past cap too. */
static size_t put(char *out, size_t cap, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static size_t put(char *out, size_t cap, size_t n, const char *fmt, ...)
{
    va_list ap;
    int k;

    va_start(ap, fmt);
    k = vsnprintf(n < cap ? out + n : NULL, n < cap ? cap - n : 0, fmt, ap);
    va_end(ap);
    return k > 0 ? n + (size_t)k : n;
}

size_t passport_format(const passport *p, char *out, size_t cap)
{
    size_t n = 0, i;

    if (cap)
        out[0] = '\0';
    for (i = 0; i < p->nstandards; i++)
        n = put(out, cap, n, "standard %s\n", p->standards[i]);
    for (i = 0; i < p->nreports; i++) {
        const passport_report *r = &p->reports[i];
        n = put(out, cap, n, "report %s\t%s\t%" PRId64 "\t%s\t%s\n", r->number, r->laboratory,
                r->issued_unix, r->url ? r->url : "", r->sha256 ? r->sha256 : "");
    }
    for (i = 0; i < p->nimages; i++)
        n = put(out, cap, n, "image %s\t%s\t%s\n", p->images[i].url, p->images[i].sha256,
                p->images[i].alt);
    if (p->description && *p->description)
        n = put(out, cap, n, "description %s\n", p->description);
    if (p->origin && *p->origin)
        n = put(out, cap, n, "origin %s\n", p->origin);
    return n;
}
