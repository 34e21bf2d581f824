#!/usr/bin/env python3
"""recall_runs.py — one recall length across several study/recall runs: a markdown table with
each run's accuracy per mixer, the spread (max - min) and how many runs put the mixer above the
in-sequence guess by more than the gate. Runs differ in machine, budget and seed-independent
timing, so the spread is run-to-run variation, not a seed study.
usage: bench/recall_runs.py [--T 256] [--gate 0.05] DIR [DIR ...]   (each DIR holds recall.csv,
and machine.txt when the run wrote one)"""
import argparse
import csv
import os
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--T", type=int, default=256)
    ap.add_argument("--gate", type=float, default=0.05)
    ap.add_argument("dirs", nargs="+")
    a = ap.parse_args()
    runs, order = [], []
    for d in a.dirs:
        path = os.path.join(d, "recall.csv")
        try:
            rows = list(csv.DictReader(open(path, newline="")))
        except OSError as e:
            sys.exit(f"recall_runs.py: cannot read {path}: {e.strerror}")
        acc = {}
        for r in rows:
            if int(r["T"]) != a.T or not r.get("accuracy"):
                continue
            name = r["spec"].split(":")[0]
            acc[name] = (float(r["accuracy"]), float(r["in_seq_guess"]), r.get("budget_s", ""))
            if name not in order:
                order.append(name)
        if not acc:
            sys.exit(f"recall_runs.py: {path} has no trained row at T={a.T}")
        runs.append((os.path.basename(os.path.normpath(d)), acc))
    head = ["mixer"] + [f"{n} ({next(iter(acc.values()))[2]} s)" for n, acc in runs] + ["spread", f"runs above guess + {a.gate}"]
    print("| " + " | ".join(head) + " |")
    print("|---" + "|---:" * (len(head) - 1) + "|")
    for m in order:
        vals = [acc.get(m) for _, acc in runs]
        got = [v for v in vals if v]
        cells = [f"{v[0]:.3f}" if v else "—" for v in vals]
        spread = max(v[0] for v in got) - min(v[0] for v in got) if len(got) > 1 else 0.0
        above = sum(1 for v in got if v[0] > v[1] + a.gate)
        print(f"| {m} | " + " | ".join(cells) + f" | {spread:.3f} | {above} of {len(got)} |")


if __name__ == "__main__":
    main()
