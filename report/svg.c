/* svg.c — the line-chart writer behind `mixlm report` (see svg.h): axis ranges and ticks
 * (1-2-5 steps on linear axes, powers of 2 or 10 on log axes), series paths, markers, legend.
 * Not general: sizes and fonts are chosen for a report page, text widths are estimated from
 * the character count (no font metrics), and nothing is clipped because nothing leaves the axes. */
#include "report/svg.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#define SVG_TICKS_MAX 64
#define SVG_CHAR_W 6.8 /* estimated mean advance of one character at font-size 12, px */
#define SVG_ROW_H 18   /* legend row height, px */
#define SVG_PAD 10     /* inner padding so markers at the range ends stay off the frame, px */

struct svg_tick {
    double v;
    int label; /* 1: draw the value, 0: grid line only */
    int major; /* 1: darker grid line */
};

struct svg_axis {
    enum svg_scale scale;
    double lo, hi; /* the range, in data units */
    double step;   /* linear: tick spacing (for the label's decimals) */
    struct svg_tick t[SVG_TICKS_MAX];
    int nt;
    double p0, p1; /* pixel positions of lo and hi */
};

void svg_escape(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '&':
            fputs("&amp;", f);
            break;
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        case '\'':
            fputs("&#39;", f);
            break;
        default:
            /* Control characters other than tab/newline are not allowed in XML 1.0. */
            if ((unsigned char)*s < 0x20 && *s != '\t' && *s != '\n')
                fputc('?', f);
            else
                fputc(*s, f);
        }
    }
}

const char *svg_color(int i)
{
    static const char *const pal[12] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
                                        "#e377c2", "#17becf", "#bcbd22", "#393b79", "#000000", "#843c39"};
    return i < 0 ? "#888888" : pal[i % 12];
}

static int drawable(double v, enum svg_scale s)
{
    return isfinite(v) && (s == SVG_LINEAR || v > 0);
}

static double tr(enum svg_scale s, double v)
{
    return s == SVG_LOG2 ? log2(v) : s == SVG_LOG10 ? log10(v) : v;
}

static double axis_px(const struct svg_axis *a, double v)
{
    double t0 = tr(a->scale, a->lo), t1 = tr(a->scale, a->hi);
    return a->p0 + (tr(a->scale, v) - t0) / (t1 - t0) * (a->p1 - a->p0);
}

static void add_tick(struct svg_axis *a, double v, int label, int major)
{
    if (a->nt < SVG_TICKS_MAX)
        a->t[a->nt++] = (struct svg_tick){v, label, major};
}

/* Range and ticks from the data range [mn, mx] (mn > mx: no data). */
static void axis_setup(struct svg_axis *a, enum svg_scale s, double mn, double mx, int zero)
{
    memset(a, 0, sizeof *a);
    a->scale = s;
    if (s == SVG_LINEAR) {
        if (mn > mx)
            mn = 0, mx = 1;
        if (zero)
            mn = fmin(mn, 0), mx = fmax(mx, 0);
        if (mx - mn < 1e-12 * fmax(1, fabs(mx))) {
            double d = fabs(mx) > 0 ? fabs(mx) * 0.1 : 1;
            mn -= d, mx += d;
        }
        /* A 1-2-5 step giving about five intervals. */
        double raw = (mx - mn) / 5, p = pow(10, floor(log10(raw))), m = raw / p;
        double step = (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
        long i0 = (long)floor(mn / step + 1e-9), i1 = (long)ceil(mx / step - 1e-9);
        a->lo = (double)i0 * step, a->hi = (double)i1 * step, a->step = step;
        for (long i = i0; i <= i1; i++)
            add_tick(a, (double)i * step, 1, 1);
        return;
    }
    double b = s == SVG_LOG2 ? 2 : 10;
    if (mn > mx)
        mn = 1, mx = b;
    int e0 = (int)floor(tr(s, mn) + 1e-9), e1 = (int)ceil(tr(s, mx) - 1e-9);
    if (e0 == e1)
        e0--, e1++;
    a->lo = pow(b, e0), a->hi = pow(b, e1);
    if (s == SVG_LOG10) {
        /* Tighten to the nearest 1-2-5 values around the data, so a mostly empty decade at
         * either end does not squeeze the data (the minor grid still marks every step). */
        static const double m125[3] = {1, 2, 5};
        for (int k = 2; k >= 0; k--)
            if (m125[k] * a->lo <= mn * (1 + 1e-12)) {
                a->lo = m125[k] * a->lo;
                break;
            }
        for (int k = 0; k < 3; k++)
            if (m125[k] * pow(10, e1 - 1) >= mx * (1 - 1e-12) && m125[k] * pow(10, e1 - 1) > a->lo) {
                a->hi = m125[k] * pow(10, e1 - 1);
                break;
            }
    }
    int every = (e1 - e0 + 8) / 9; /* at most ~9 labelled powers */
    for (int e = e0; e <= e1; e++) {
        double v = pow(b, e);
        if (v >= a->lo * (1 - 1e-12) && v <= a->hi * (1 + 1e-12))
            add_tick(a, v, (e - e0) % every == 0, 1);
        /* Minor grid at 2..9 x 10^e; over at most two decades 2x and 5x get labels too. */
        if (s == SVG_LOG10 && e < e1)
            for (int m = 2; m <= 9; m++) {
                double w = m * v;
                if (w >= a->lo * (1 - 1e-12) && w <= a->hi * (1 + 1e-12))
                    add_tick(a, w, e1 - e0 <= 2 && (m == 2 || m == 5), 0);
            }
    }
}

static void fmt_num(char *buf, size_t n, double v)
{
    snprintf(buf, n, "%.4g", v);
}

/* A tick label: K/M suffixes for powers of two, superscript exponents for far powers of ten. */
static void tick_label(char *buf, size_t n, const struct svg_axis *a, double v)
{
    if (a->scale == SVG_LINEAR) {
        int dec = a->step >= 1 ? 0 : (int)ceil(-log10(a->step) - 1e-9);
        snprintf(buf, n, "%.*f", dec, fabs(v) < 1e-12 * a->step ? 0.0 : v);
    } else if (a->scale == SVG_LOG2) {
        if (v >= 1048576 && fmod(v, 1048576) == 0)
            snprintf(buf, n, "%.0fM", v / 1048576);
        else if (v >= 1024 && fmod(v, 1024) == 0)
            snprintf(buf, n, "%.0fK", v / 1024);
        else
            snprintf(buf, n, "%g", v);
    } else {
        int e = (int)floor(log10(v) + 1e-9);
        double m = v / pow(10, e);
        if (e > -3 && e < 5) {
            snprintf(buf, n, "%g", v);
        } else {
            static const char *const sup[10] = {"⁰", "¹", "²", "³", "⁴", "⁵", "⁶", "⁷", "⁸", "⁹"};
            char ex[48] = "";
            char digits[16];
            snprintf(digits, sizeof digits, "%d", e < 0 ? -e : e);
            if (e < 0)
                strcat(ex, "⁻");
            for (char *d = digits; *d; d++)
                strcat(ex, sup[*d - '0']);
            if (fabs(m - 1) < 1e-9)
                snprintf(buf, n, "10%s", ex);
            else
                snprintf(buf, n, "%.0f×10%s", m, ex);
        }
    }
}

static void marker(FILE *f, int shape, double x, double y, const char *color, const char *tip)
{
    const double r = 3.6;
    fprintf(f, "<g class=\"marker\" fill=\"%s\" stroke=\"#ffffff\" stroke-width=\"1\">", color);
    if (tip) {
        fputs("<title>", f);
        svg_escape(f, tip);
        fputs("</title>", f);
    }
    switch (((shape % 5) + 5) % 5) {
    case 0:
        fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\"/>", x, y, r);
        break;
    case 1:
        fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/>", x - r, y - r, 2 * r,
                2 * r);
        break;
    case 2:
        fprintf(f, "<path d=\"M%.1f %.1fL%.1f %.1fL%.1f %.1fZ\"/>", x, y - 1.3 * r, x + 1.2 * r, y + 0.9 * r,
                x - 1.2 * r, y + 0.9 * r);
        break;
    case 3:
        fprintf(f, "<path d=\"M%.1f %.1fL%.1f %.1fL%.1f %.1fL%.1f %.1fZ\"/>", x, y - 1.35 * r, x + 1.35 * r,
                y, x, y + 1.35 * r, x - 1.35 * r, y);
        break;
    default:
        fprintf(f, "<path d=\"M%.1f %.1fL%.1f %.1fL%.1f %.1fZ\"/>", x, y + 1.3 * r, x + 1.2 * r, y - 0.9 * r,
                x - 1.2 * r, y - 0.9 * r);
        break;
    }
    fputs("</g>", f);
}

/* Legend text of at most maxc characters (UTF-8 aware), with an ellipsis when cut. */
static void legend_text(char *buf, size_t n, const char *s, int maxc)
{
    size_t i = 0;
    int chars = 0;
    while (s[i] && chars < maxc) {
        i++;
        while (s[i] && ((unsigned char)s[i] & 0xC0) == 0x80)
            i++;
        chars++;
    }
    if (!s[i]) {
        snprintf(buf, n, "%s", s);
        return;
    }
    /* Cut one character earlier to make room for the ellipsis. */
    size_t j = i;
    do
        j--;
    while (j > 0 && ((unsigned char)s[j] & 0xC0) == 0x80);
    snprintf(buf, n, "%.*s…", (int)j, s);
}

static int utf8_len(const char *s)
{
    int c = 0;
    for (; *s; s++)
        c += ((unsigned char)*s & 0xC0) != 0x80;
    return c;
}

void svg_chart_write(FILE *f, const struct svg_chart *c, const struct svg_series *s, int n)
{
    /* Data range over the drawable points. */
    double xmn = INFINITY, xmx = -INFINITY, ymn = INFINITY, ymx = -INFINITY;
    int nleg = 0, maxc = 0;
    for (int k = 0; k < n; k++) {
        for (size_t i = 0; i < s[k].n; i++) {
            if (!drawable(s[k].x[i], c->xscale) || !drawable(s[k].y[i], c->yscale))
                continue;
            xmn = fmin(xmn, s[k].x[i]), xmx = fmax(xmx, s[k].x[i]);
            ymn = fmin(ymn, s[k].y[i]), ymx = fmax(ymx, s[k].y[i]);
        }
        if (!(s[k].flags & SVG_NO_LEGEND) && s[k].label) {
            nleg++;
            int l = utf8_len(s[k].label);
            maxc = l > maxc ? l : maxc;
        }
    }
    int have_data = xmn <= xmx;

    /* Layout: title block, plot, legend column at the right. */
    const int max_legend_chars = 40;
    int legc = maxc < max_legend_chars ? maxc : max_legend_chars;
    double legend_w = nleg ? 44 + legc * SVG_CHAR_W : 0;
    double W = c->width, top = 16 + (c->title ? 22 : 0) + (c->subtitle ? 18 : 0);
    double left = 72, right_pad = 16, bottom = 52;
    double H = c->height;
    double need_h = top + nleg * SVG_ROW_H + 30 + bottom;
    if (H < need_h)
        H = need_h;
    double pl = left, pr = W - right_pad - legend_w, pt = top, pb = H - bottom;

    struct svg_axis ax, ay;
    axis_setup(&ax, c->xscale, xmn, xmx, c->x_zero);
    axis_setup(&ay, c->yscale, ymn, ymx, c->y_zero);
    ax.p0 = pl + SVG_PAD, ax.p1 = pr - SVG_PAD;
    ay.p0 = pb - SVG_PAD, ay.p1 = pt + SVG_PAD;

    fprintf(f,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"%.0f\" height=\"%.0f\" "
            "viewBox=\"0 0 %.0f %.0f\" font-family=\"system-ui, -apple-system, 'Segoe UI', Roboto, "
            "'Helvetica Neue', Arial, sans-serif\" font-size=\"12\" role=\"img\"",
            W, H, W, H);
    if (c->id) {
        fputs(" id=\"", f);
        svg_escape(f, c->id);
        fputc('"', f);
    }
    fputs(">\n<title>", f);
    svg_escape(f, c->title ? c->title : "chart");
    fputs("</title>\n", f);
    fprintf(f, "<rect x=\"0\" y=\"0\" width=\"%.0f\" height=\"%.0f\" fill=\"#ffffff\"/>\n", W, H);
    if (c->title) {
        fprintf(f, "<text x=\"%.1f\" y=\"24\" font-size=\"15\" font-weight=\"600\" fill=\"#222222\">", pl);
        svg_escape(f, c->title);
        fputs("</text>\n", f);
    }
    if (c->subtitle) {
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" font-size=\"12\" fill=\"#666666\">", pl, c->title ? 42 : 24);
        svg_escape(f, c->subtitle);
        fputs("</text>\n", f);
    }

    /* Grid and tick labels. */
    char buf[64];
    fputs("<g class=\"grid\">\n", f);
    for (int i = 0; i < ax.nt; i++) {
        double x = axis_px(&ax, ax.t[i].v);
        fprintf(f,
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"1\"/>\n",
                x, pt, x, pb, ax.t[i].major ? "#e3e3e3" : "#f2f2f2");
    }
    for (int i = 0; i < ay.nt; i++) {
        double y = axis_px(&ay, ay.t[i].v);
        fprintf(f,
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"1\"/>\n",
                pl, y, pr, y, ay.t[i].major ? "#e3e3e3" : "#f2f2f2");
    }
    fputs("</g>\n", f);
    fprintf(f,
            "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#9a9a9a\"/>\n",
            pl, pt, pr - pl, pb - pt);
    fputs("<g class=\"ticks\" fill=\"#444444\">\n", f);
    for (int i = 0; i < ax.nt; i++) {
        if (!ax.t[i].label)
            continue;
        double x = axis_px(&ax, ax.t[i].v);
        tick_label(buf, sizeof buf, &ax, ax.t[i].v);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#9a9a9a\"/>", x, pb, x,
                pb + 4);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", x, pb + 17);
        svg_escape(f, buf);
        fputs("</text>\n", f);
    }
    for (int i = 0; i < ay.nt; i++) {
        if (!ay.t[i].label)
            continue;
        double y = axis_px(&ay, ay.t[i].v);
        tick_label(buf, sizeof buf, &ay, ay.t[i].v);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#9a9a9a\"/>", pl - 4, y,
                pl, y);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">", pl - 7, y + 4);
        svg_escape(f, buf);
        fputs("</text>\n", f);
    }
    fputs("</g>\n", f);
    if (c->xlabel) {
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"#222222\">", (pl + pr) / 2,
                pb + 38);
        svg_escape(f, c->xlabel);
        fputs("</text>\n", f);
    }
    if (c->ylabel) {
        double cy = (pt + pb) / 2;
        fprintf(f,
                "<text x=\"18\" y=\"%.1f\" text-anchor=\"middle\" fill=\"#222222\" transform=\"rotate(-90 18 "
                "%.1f)\">",
                cy, cy);
        svg_escape(f, c->ylabel);
        fputs("</text>\n", f);
    }
    if (!have_data) {
        fprintf(f,
                "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"#888888\" font-size=\"14\">no "
                "data</text>\n",
                (pl + pr) / 2, (pt + pb) / 2);
    }

    /* Series: the path (broken at undrawable points), then the markers with tooltips. */
    for (int k = 0; k < n; k++) {
        const struct svg_series *q = &s[k];
        const char *col = svg_color(q->color);
        if (q->n == 0)
            continue;
        fputs("<g class=\"series", f);
        if (q->kind) {
            fputc(' ', f);
            svg_escape(f, q->kind);
        }
        fputc('"', f);
        if (q->key) {
            fputs(" data-series=\"", f);
            svg_escape(f, q->key);
            fputc('"', f);
        }
        fputs(">\n", f);
        if (!(q->flags & SVG_NO_LINE)) {
            fprintf(f,
                    "<path fill=\"none\" stroke=\"%s\" stroke-width=\"1.8\" stroke-linejoin=\"round\"%s d=\"",
                    col, q->flags & SVG_DASHED ? " stroke-dasharray=\"6 4\"" : "");
            int pen = 0;
            for (size_t i = 0; i < q->n; i++) {
                if (!drawable(q->x[i], c->xscale) || !drawable(q->y[i], c->yscale)) {
                    pen = 0;
                    continue;
                }
                fprintf(f, "%s%.1f %.1f", pen ? "L" : "M", axis_px(&ax, q->x[i]), axis_px(&ay, q->y[i]));
                pen = 1;
            }
            fputs("\">", f);
            if (q->label) {
                fputs("<title>", f);
                svg_escape(f, q->label);
                fputs("</title>", f);
            }
            fputs("</path>\n", f);
        }
        if (q->flags & (SVG_MARKERS | SVG_NO_LINE)) {
            for (size_t i = 0; i < q->n; i++) {
                if (!drawable(q->x[i], c->xscale) || !drawable(q->y[i], c->yscale))
                    continue;
                char tip[1024], xs[32], ys[32];
                fmt_num(xs, sizeof xs, q->x[i]);
                fmt_num(ys, sizeof ys, q->y[i]);
                snprintf(tip, sizeof tip, "%s\n%s %s%s%s, %s %s%s%s", q->label ? q->label : "",
                         c->xlabel ? c->xlabel : "x", xs, c->x_unit ? " " : "", c->x_unit ? c->x_unit : "",
                         c->ylabel ? c->ylabel : "y", ys, c->y_unit ? " " : "", c->y_unit ? c->y_unit : "");
                marker(f, q->marker, axis_px(&ax, q->x[i]), axis_px(&ay, q->y[i]), col, tip);
            }
            fputc('\n', f);
        }
        fputs("</g>\n", f);
    }

    /* Legend. */
    if (nleg) {
        double lx = W - right_pad - legend_w + 14, ly = pt + 8;
        int gap = 0;
        fputs("<g class=\"legend\">\n", f);
        for (int k = 0; k < n; k++) {
            const struct svg_series *q = &s[k];
            if ((q->flags & SVG_NO_LEGEND) || !q->label)
                continue;
            const char *col = svg_color(q->color);
            char txt[512];
            if (q->n == 0 && !gap) /* a little space between the series and the style key */
                ly += 6, gap = 1;
            legend_text(txt, sizeof txt, q->label, legc);
            fputs("<g class=\"legend-entry\"", f);
            if (q->key) {
                fputs(" data-series=\"", f);
                svg_escape(f, q->key);
                fputc('"', f);
            }
            fputs("><title>", f);
            svg_escape(f, q->label);
            fputs("</title>", f);
            if (!(q->flags & SVG_NO_LINE))
                fprintf(f,
                        "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                        "stroke-width=\"2\"%s/>",
                        lx, ly, lx + 24, ly, col, q->flags & SVG_DASHED ? " stroke-dasharray=\"6 4\"" : "");
            if (q->flags & (SVG_MARKERS | SVG_NO_LINE))
                marker(f, q->marker, lx + 12, ly, col, NULL);
            fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" fill=\"#222222\">", lx + 31, ly + 4);
            svg_escape(f, txt);
            fputs("</text></g>\n", f);
            ly += SVG_ROW_H;
        }
        fputs("</g>\n", f);
    }
    fputs("</svg>\n", f);
}
