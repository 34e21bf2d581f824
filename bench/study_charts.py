#!/usr/bin/env python3
"""study_charts.py — the charts of a study's report.html as standalone SVG files, for README.
Each inline <svg> of the page (they carry their own xmlns, styles as attributes and a <title>)
is written to OUTDIR/<slug of its title>.svg; prints the files written.
usage: bench/study_charts.py DIR [OUTDIR]   (DIR holds report.html; OUTDIR defaults to DIR/charts)"""
import os
import re
import sys
import xml.dom.minidom


def slug(title):
    s = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    return s[:80] or "chart"


def main():
    if len(sys.argv) not in (2, 3) or sys.argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        sys.exit(0 if len(sys.argv) > 1 and sys.argv[1] in ("-h", "--help") else 2)
    src = os.path.join(sys.argv[1], "report.html")
    out = sys.argv[2] if len(sys.argv) == 3 else os.path.join(sys.argv[1], "charts")
    try:
        page = open(src, encoding="utf-8").read()
    except OSError as e:
        sys.exit(f"study_charts.py: cannot read {src}: {e.strerror}")
    charts = re.findall(r"<svg .*?</svg>", page, re.S)
    if not charts:
        sys.exit(f"study_charts.py: {src} has no inline SVG chart")
    os.makedirs(out, exist_ok=True)
    seen = set()
    for svg in charts:
        t = re.search(r"<title>(.*?)</title>", svg, re.S)
        name = slug(t.group(1) if t else "chart")
        base, n = name, 2
        while name in seen:
            name, n = f"{base}-{n}", n + 1
        seen.add(name)
        xml.dom.minidom.parseString(svg)  # well-formed, or this raises and names nothing half-written
        path = os.path.join(out, name + ".svg")
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write('<?xml version="1.0" encoding="UTF-8"?>\n' + svg + "\n")
        os.replace(tmp, path)
        print(path)


if __name__ == "__main__":
    main()
