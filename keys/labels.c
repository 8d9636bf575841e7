/*
 * labels.c - see labels.h.
 */
#include "labels.h"
#include "codec.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define URL_CAP (CODEC_BASE_URL_MAX + 4 + CODEC_MAX_TEXT_LEN)
_Static_assert(URL_CAP > CODEC_DL_MAX, "a Digital Link fits a label's URL");
#define SVG_CAP (1 << 20)

struct labels {
    char prefix[4096];
    char base[CODEC_BASE_URL_MAX + 1];
    char gtin[CODEC_GTIN_LEN + 1]; /* "" : no Digital Links */
    unsigned page;
    size_t n;
    char url[CODEC_SHEET_LABELS][URL_CAP];
    char text[CODEC_SHEET_LABELS][CODEC_MAX_TEXT_LEN + 1];
    char svg[SVG_CAP];
};

labels *labels_new(const char *prefix, const char *base_url, const char *gtin, char *err,
                   size_t errcap)
{
    labels *l;
    char probe[URL_CAP];
    size_t need;

    if (strlen(prefix) >= sizeof(l->prefix) - 16 || strlen(base_url) > CODEC_BASE_URL_MAX ||
        codec_url_format(base_url, "0", 1, probe, sizeof(probe), &need, NULL) != CODEC_OK) {
        snprintf(err, errcap,
                 "base url '%s' cannot go in a QR code (letters, digits and . - / : only, at "
                 "most %d characters)",
                 base_url, CODEC_BASE_URL_MAX);
        return NULL;
    }
    if (gtin && *gtin && !codec_gtin14(gtin, strlen(gtin), NULL)) {
        snprintf(err, errcap, "gtin '%.20s' is not 8 to 14 digits with a valid check digit", gtin);
        return NULL;
    }
    l = calloc(1, sizeof(*l));
    if (!l) {
        snprintf(err, errcap, "out of memory");
        return NULL;
    }
    if (gtin && *gtin)
        codec_gtin14(gtin, strlen(gtin), l->gtin);
    memcpy(l->prefix, prefix, strlen(prefix) + 1);
    memcpy(l->base, base_url, strlen(base_url) + 1);
    return l;
}

static int flush(labels *l, char *err, size_t errcap)
{
    codec_label lab[CODEC_SHEET_LABELS];
    char path[sizeof(l->prefix) + 32];
    size_t need, i;
    codec_err e;
    FILE *f;
    int ok;

    if (!l->n)
        return 0;
    for (i = 0; i < l->n; i++) {
        lab[i].url = l->url[i];
        lab[i].text = l->text[i];
    }
    e = codec_sheet_svg(lab, l->n, CODEC_ECC_M, l->svg, sizeof(l->svg), &need);
    if (e) {
        snprintf(err, errcap, "cannot render a label sheet: %s", codec_strerror(e));
        return -1;
    }
    snprintf(path, sizeof(path), "%s-%03u.svg", l->prefix, ++l->page);
    f = fopen(path, "wb");
    ok = f && fwrite(l->svg, 1, need - 1, f) == need - 1;
    if (f && fclose(f) != 0)
        ok = 0;
    if (!ok) {
        snprintf(err, errcap, "cannot write '%s': %s", path, strerror(errno));
        return -1;
    }
    l->n = 0;
    return 0;
}

int labels_add(labels *l, const char *text, size_t len, char *err, size_t errcap)
{
    size_t ulen;

    int dl = l->gtin[0] && len == CODEC_MAC_TEXT_LEN;

    if (len > CODEC_MAX_TEXT_LEN ||
        (dl ? codec_dl_format(l->base, l->gtin, text, len, l->url[l->n], URL_CAP, &ulen, NULL)
            : codec_url_format(l->base, text, len, l->url[l->n], URL_CAP, &ulen, NULL)) !=
            CODEC_OK) {
        snprintf(err, errcap, "code '%.*s' cannot go on a label", (int)(len > 40 ? 40 : len), text);
        return -1;
    }
    memcpy(l->text[l->n], text, len);
    l->text[l->n][len] = '\0';
    if (++l->n == CODEC_SHEET_LABELS)
        return flush(l, err, errcap);
    return 0;
}

int labels_finish(labels *l, unsigned *pages, char *err, size_t errcap)
{
    int rc = flush(l, err, errcap);

    if (pages)
        *pages = l->page;
    return rc;
}

void labels_free(labels *l)
{
    free(l);
}
