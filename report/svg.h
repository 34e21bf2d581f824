/* svg.h — a small SVG line-chart writer for `mixlm report`: one chart per call with linear or
 * logarithmic axes and labelled ticks, one path per series (solid or dashed, optional point
 * markers with <title> tooltips), a legend at the right, and every piece of text XML-escaped.
 * It is not a plotting library: no bars, no layout engine, no scripting, no external fonts. */
#ifndef MIXLM_SVG_H
#define MIXLM_SVG_H

#include <stddef.h>
#include <stdio.h>

enum svg_scale { SVG_LINEAR, SVG_LOG2, SVG_LOG10 };

#define SVG_DASHED 1u    /* dashed line */
#define SVG_MARKERS 2u   /* a marker at every point */
#define SVG_NO_LINE 4u   /* markers only */
#define SVG_NO_LEGEND 8u /* plotted, but no legend entry (e.g. a run's validation points) */

struct svg_series {
    const char *label; /* legend text; also the tooltip of the path */
    const char *key;   /* value of the data-series attribute (a run or a mixer), or NULL */
    const char *kind;  /* extra CSS class ("train", "val", "time", ...), or NULL */
    const double *x;   /* (n) */
    const double *y;   /* (n); non-finite points, and points <= 0 on a log axis, break the line */
    size_t n;          /* 0: a legend-only entry (a style key such as "dashed = validation") */
    int color;         /* palette index (any int >= 0; cycles), or -1 for neutral grey */
    int marker;        /* marker shape index (cycles over 5 shapes) */
    unsigned flags;    /* SVG_* */
};

struct svg_chart {
    const char *title;    /* drawn above the plot; NULL for none */
    const char *subtitle; /* smaller line under the title; NULL for none */
    const char *xlabel, *ylabel;
    const char *x_unit, *y_unit; /* appended to tooltip values ("ms"); NULL for none */
    enum svg_scale xscale, yscale;
    int x_zero, y_zero; /* linear axes: extend the range to include 0 */
    int width, height;  /* overall size in px (the height grows when the legend needs it) */
    const char *id;     /* id attribute of the <svg>, or NULL */
};

/* Write s to f with & < > " ' replaced by XML entities (valid in HTML text, attributes and SVG). */
void svg_escape(FILE *f, const char *s);
/* Palette colour i as "#rrggbb": 12 well-separated hues that cycle; i < 0 gives grey. */
const char *svg_color(int i);
/* Write one self-contained <svg> element (with its xmlns) charting the n series. Points that
 * cannot be drawn are skipped (see struct svg_series); when no series has a drawable point the
 * chart shows empty axes and the note "no data". Never fails: writes through stdio only. */
void svg_chart_write(FILE *f, const struct svg_chart *c, const struct svg_series *s, int n);

#endif
