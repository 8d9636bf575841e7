/*
 * labels.h - print-ready label sheets as files, for the command-line tools
 * (tracekeys mint, tracectl issue): codes go in one at a time, every 24
 * make an A4 page PREFIX-001.svg, PREFIX-002.svg, ...
 */
#ifndef TC_LABELS_H
#define TC_LABELS_H

#include <stddef.h>

typedef struct labels labels;

/* base_url goes into every QR (codec_url_format rules). With a gtin (NULL
 * or "": none), MAC codes go in as GS1 Digital Links (codec_dl_format: the
 * product's GTIN, the code in AI 10 and 21); SIG codes, which have no
 * Digital Link form, and codes without a gtin as the tracecode URL. Caller
 * frees with labels_free. NULL with a message in err on failure. */
labels *labels_new(const char *prefix, const char *base_url, const char *gtin, char *err,
                   size_t errcap);
/* Add one code's text; writes a page when it fills. 0 on success. */
int labels_add(labels *l, const char *text, size_t len, char *err, size_t errcap);
/* Write the last, partial page; *pages (may be NULL) gets the page count. */
int labels_finish(labels *l, unsigned *pages, char *err, size_t errcap);
void labels_free(labels *l);

#endif
