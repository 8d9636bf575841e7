/*
 * qr.c - QR symbols for code URLs: libqrencode in alphanumeric mode (bytes
 * for what that mode lacks), drawn
 * as SVG paths or 1-bit PNG, and an A4 sheet of labels.
 *
 * libqrencode allocates the symbol; it is freed before returning. libpng
 * allocates its own state; its output goes straight into the caller's
 * buffer through a counting write callback.
 */
#include "codec.h"
#include "codec_int.h"

#include <png.h>
#include <qrencode.h>
#include <string.h>

#define QR_TEXT_MAX 2048 /* far above any code URL; below QR's 4296 */
#define PNG_MAX_PX 8192

/* QR alphanumeric mode: 0-9 A-Z space $ % * + - . / : */
static int qr_an(unsigned char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'A' && ch <= 'Z') || ch == ' ' || ch == '$' ||
           ch == '%' || ch == '*' || ch == '+' || ch == '-' || ch == '.' || ch == '/' || ch == ':';
}

codec_err codec_qrm_encode(const char *text, size_t len, int ecc, codec_qrm *m)
{
    static const QRecLevel levels[] = {QR_ECLEVEL_L, QR_ECLEVEL_M, QR_ECLEVEL_Q, QR_ECLEVEL_H};
    QRinput *in;
    QRcode *qr;

    if (ecc < CODEC_ECC_L || ecc > CODEC_ECC_H || len == 0 || len > QR_TEXT_MAX)
        return CODEC_ERR_ARG;
    in = QRinput_new2(0, levels[ecc]);
    if (!in)
        return CODEC_ERR_QR;
    /* Runs of the alphanumeric set in its mode (5.5 bits a character),
     * anything else (a Digital Link's lower-case scheme) as bytes. */
    for (size_t i = 0, n; i < len; i += n) {
        int an = qr_an((unsigned char)text[i]);
        for (n = 1; i + n < len && qr_an((unsigned char)text[i + n]) == an; n++)
            ;
        if (QRinput_append(in, an ? QR_MODE_AN : QR_MODE_8, (int)n,
                           (const unsigned char *)text + i) != 0) {
            QRinput_free(in);
            return CODEC_ERR_QR;
        }
    }
    qr = QRcode_encodeInput(in);
    QRinput_free(in);
    if (!qr)
        return CODEC_ERR_QR;
    m->width = (unsigned)qr->width;
    m->data = qr->data;
    m->owner = qr;
    return CODEC_OK;
}

void codec_qrm_release(codec_qrm *m)
{
    if (m->owner)
        QRcode_free(m->owner);
    m->owner = NULL;
    m->data = NULL;
}

static int valid_opts(const codec_qr_opts *o)
{
    return o->module >= 1 && o->module <= 32 && o->margin <= 16;
}

/* Dark modules as one path: a rectangle per horizontal run. */
static void svg_path(codec_sb *sb, const codec_qrm *m, unsigned margin)
{
    unsigned x, y, w = m->width;

    for (y = 0; y < w; y++) {
        const unsigned char *row = m->data + (size_t)y * w;
        for (x = 0; x < w;) {
            unsigned run = 0;
            while (x + run < w && (row[x + run] & 1))
                run++;
            if (run) {
                codec_sb_printf(sb, "M%u %uh%uv1h-%uz", x + margin, y + margin, run, run);
                x += run;
            } else {
                x++;
            }
        }
    }
}

codec_err codec_qr_svg(const char *text, size_t len, const codec_qr_opts *o, char *out, size_t cap,
                       size_t *need, unsigned *width)
{
    codec_qrm m;
    codec_sb sb;
    codec_err err;
    unsigned n;

    if (!valid_opts(o))
        return CODEC_ERR_ARG;
    err = codec_qrm_encode(text, len, o->ecc, &m);
    if (err)
        return err;
    n = m.width + 2 * o->margin;
    codec_sb_init(&sb, out, cap);
    codec_sb_printf(&sb,
                    "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%u\" height=\"%u\" "
                    "viewBox=\"0 0 %u %u\" shape-rendering=\"crispEdges\">",
                    n * o->module, n * o->module, n, n);
    codec_sb_printf(&sb, "<rect width=\"%u\" height=\"%u\" fill=\"#fff\"/><path fill=\"#000\" d=\"",
                    n, n);
    svg_path(&sb, &m, o->margin);
    codec_sb_puts(&sb, "\"/></svg>\n");
    if (width)
        *width = m.width;
    codec_qrm_release(&m);
    if (need)
        *need = sb.len + 1;
    return sb.len < cap ? CODEC_OK : CODEC_ERR_SPACE;
}

typedef struct png_sink {
    uint8_t *out;
    size_t cap;
    size_t len;
} png_sink;

static void png_write_cb(png_structp p, png_bytep data, size_t n)
{
    png_sink *s = png_get_io_ptr(p);

    if (s->len + n <= s->cap)
        memcpy(s->out + s->len, data, n);
    s->len += n;
}

static void png_flush_cb(png_structp p)
{
    (void)p;
}

/* Writes the image; separate from codec_qr_png so that setjmp's frame
 * holds no variable that changes after it. */
static codec_err png_write(const codec_qrm *m, const codec_qr_opts *o, png_sink *sink)
{
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    uint8_t row[PNG_MAX_PX / 8];
    unsigned n = m->width + 2 * o->margin, px = n * o->module, y;

    if (!png || !info) {
        png_destroy_write_struct(&png, &info);
        return CODEC_ERR_PNG;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return CODEC_ERR_PNG;
    }
    png_set_write_fn(png, sink, png_write_cb, png_flush_cb);
    png_set_IHDR(png, info, px, px, 1, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_set_filter(png, 0, PNG_FILTER_NONE);
    png_write_info(png, info);
    for (y = 0; y < px; y++) {
        unsigned my = y / o->module, x;
        memset(row, 0xff, (px + 7) / 8);
        if (my >= o->margin && my < o->margin + m->width) {
            const unsigned char *mr = m->data + (size_t)(my - o->margin) * m->width;
            for (x = 0; x < px; x++) {
                unsigned mx = x / o->module;
                if (mx >= o->margin && mx < o->margin + m->width && (mr[mx - o->margin] & 1))
                    row[x >> 3] &= (uint8_t) ~(0x80u >> (x & 7));
            }
        }
        png_write_row(png, row);
    }
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return CODEC_OK;
}

codec_err codec_qr_png(const char *text, size_t len, const codec_qr_opts *o, uint8_t *out,
                       size_t cap, size_t *need, unsigned *width)
{
    png_sink sink = {out, cap, 0};
    codec_qrm m;
    codec_err err;

    if (!valid_opts(o))
        return CODEC_ERR_ARG;
    err = codec_qrm_encode(text, len, o->ecc, &m);
    if (err)
        return err;
    if ((m.width + 2 * o->margin) * o->module > PNG_MAX_PX) {
        codec_qrm_release(&m);
        return CODEC_ERR_ARG;
    }
    err = png_write(&m, o, &sink);
    if (width)
        *width = m.width;
    codec_qrm_release(&m);
    if (err)
        return err;
    if (need)
        *need = sink.len;
    return sink.len <= cap ? CODEC_OK : CODEC_ERR_SPACE;
}

static void xml_escaped(codec_sb *sb, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&':
            codec_sb_puts(sb, "&amp;");
            break;
        case '<':
            codec_sb_puts(sb, "&lt;");
            break;
        case '>':
            codec_sb_puts(sb, "&gt;");
            break;
        case '"':
            codec_sb_puts(sb, "&quot;");
            break;
        default:
            codec_sb_put(sb, s, 1);
        }
    }
}

/* Label geometry, millimetres. */
#define CELL_W 70.0
#define CELL_H 37.125
#define QR_MM 31.0
#define TEXT_X 35.0
#define GROUP 4
#define GROUPS_PER_LINE 3

static codec_err sheet_label(codec_sb *sb, const codec_label *l, int ecc, unsigned col,
                             unsigned row)
{
    char grouped[2 * CODEC_HUMAN_MAX_LEN];
    size_t tlen = strlen(l->text), glen, line = GROUP * GROUPS_PER_LINE + GROUPS_PER_LINE, nl;
    double x0 = col * CELL_W, y0 = row * CELL_H, scale, font;
    codec_qrm m;
    codec_err err;
    size_t i;

    if (tlen > CODEC_HUMAN_MAX_LEN)
        return CODEC_ERR_ARG;
    err = codec_qrm_encode(l->url, strlen(l->url), ecc, &m);
    if (err)
        return err;
    scale = QR_MM / (m.width + 8);
    codec_sb_printf(sb, "<path fill=\"#000\" transform=\"translate(%.3f %.3f) scale(%.5f)\" d=\"",
                    x0 + 2.0, y0 + (CELL_H - QR_MM) / 2, scale);
    svg_path(sb, &m, 4);
    codec_sb_puts(sb, "\"/>");
    codec_qrm_release(&m);

    /* A code's printed form (with its check symbol); other text grouped. */
    glen = codec_text_printed(l->text, tlen, grouped, sizeof(grouped));
    if (!glen)
        glen = codec_text_group(l->text, tlen, GROUP, '-', grouped, sizeof(grouped));
    nl = glen ? (glen + line - 1) / line : 0;
    font = nl > 5 ? 15.0 / nl : 3.2;
    codec_sb_printf(sb, "<text x=\"%.3f\" y=\"%.3f\" font-family=\"monospace\" font-size=\"%.2f\">",
                    x0 + TEXT_X, y0 + (CELL_H - nl * font * 1.25) / 2 + font, font);
    for (i = 0; i < nl; i++) {
        char piece[64];
        size_t off = i * line, n = glen - off < line ? glen - off : line;
        if (n && i + 1 < nl && grouped[off + n - 1] == '-')
            n--;
        memcpy(piece, grouped + off, n);
        piece[n] = '\0';
        codec_sb_printf(sb, "<tspan x=\"%.3f\" dy=\"%s\">", x0 + TEXT_X, i ? "1.25em" : "0");
        xml_escaped(sb, piece);
        codec_sb_puts(sb, "</tspan>");
    }
    codec_sb_puts(sb, "</text>");
    return CODEC_OK;
}

codec_err codec_sheet_svg(const codec_label *labels, size_t n, int ecc, char *out, size_t cap,
                          size_t *need)
{
    codec_sb sb;
    codec_err err;
    size_t i;

    if (n > CODEC_SHEET_LABELS)
        return CODEC_ERR_ARG;
    codec_sb_init(&sb, out, cap);
    codec_sb_puts(&sb, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"210mm\" height=\"297mm\" "
                       "viewBox=\"0 0 210 297\" shape-rendering=\"crispEdges\">"
                       "<rect width=\"210\" height=\"297\" fill=\"#fff\"/>"
                       "<g fill=\"none\" stroke=\"#ccc\" stroke-width=\"0.1\">");
    for (i = 0; i < n; i++)
        codec_sb_printf(&sb, "<rect x=\"%.3f\" y=\"%.3f\" width=\"%.3f\" height=\"%.3f\"/>",
                        (i % CODEC_SHEET_COLS) * CELL_W, (i / CODEC_SHEET_COLS) * CELL_H, CELL_W,
                        CELL_H);
    codec_sb_puts(&sb, "</g>");
    for (i = 0; i < n; i++) {
        err = sheet_label(&sb, &labels[i], ecc, (unsigned)(i % CODEC_SHEET_COLS),
                          (unsigned)(i / CODEC_SHEET_COLS));
        if (err)
            return err;
    }
    codec_sb_puts(&sb, "</svg>\n");
    if (need)
        *need = sb.len + 1;
    return sb.len < cap ? CODEC_OK : CODEC_ERR_SPACE;
}
