#!/usr/bin/env python3
"""Summarise compare.sh's results.tsv: medians per tool, corpus and step, and the ratios plakar/peer.
Usage: summarize.py RESULTS.tsv      MB/s = corpus bytes / median wall seconds (MB = 10^6 bytes)."""
import sys, statistics as st
from collections import defaultdict

rows, sizes, corpus_bytes = defaultdict(list), defaultdict(list), {}
for line in open(sys.argv[1]):
    f = line.rstrip("\n").split("\t")
    tool, corpus, op = f[0], f[1], f[2]
    if op == "size":
        sizes[(tool, corpus)].append(int(f[4]))
        continue
    rows[(tool, corpus, op)].append((float(f[4]), float(f[5]) + float(f[6]), int(f[7]) / 1024, f[8]))
    corpus_bytes[corpus] = int(f[9])

tools = sorted({k[0] for k in rows}, key=lambda t: (t != "plakar", t))
ops = ["first", "nochange", "mod", "restore", "check", "checkdata"]
for corpus in sorted(corpus_bytes):
    print("\n== corpus %s (%.2f GB) — median wall s | cpu s | peak RSS MiB | MB/s" % (corpus, corpus_bytes[corpus] / 1e9))
    print("%-10s" % "step" + "".join("%-34s" % t for t in tools) + "".join("plakar/%-9s" % t for t in tools if t != "plakar"))
    for op in ops:
        cells, walls = [], {}
        for t in tools:
            r = rows.get((t, corpus, op))
            if not r:
                cells.append("%-34s" % "-")
                continue
            w = st.median(x[0] for x in r)
            walls[t] = w
            bad = "" if all(x[3] == "0" for x in r) else " rc!=0"
            cells.append("%-34s" % ("%.2f | %.2f | %.0f | %.0f%s" % (w, st.median(x[1] for x in r), st.median(x[2] for x in r),
                                                              corpus_bytes[corpus] / w / 1e6 if w else 0, bad)))
        ratios = ["%-16s" % ("%.2f" % (walls["plakar"] / walls[t]) if "plakar" in walls and t in walls and walls[t] else "-")
                  for t in tools if t != "plakar"]
        print("%-10s" % op + "".join(cells) + "".join(ratios))
    line = "%-10s" % "repo size"
    for t in tools:
        z = sizes.get((t, corpus))
        line += "%-34s" % ("%.3f GB (%.0f%%)" % (st.median(z) / 1e9, 100 * st.median(z) / corpus_bytes[corpus]) if z else "-")
    print(line)

# The goals of the performance issue: plakar's median wall over restic's (and borg's: never
# slower), peak RSS over restic's on every step, repository size over restic's.
GOALS = {  # corpus -> step -> max ratio plakar/restic
    "sys": {"first": 0.45, "nochange": 0.25, "mod": 0.30, "restore": 0.50, "checkdata": 0.50},
    "small": {"first": 0.40, "nochange": 0.25, "mod": 0.30, "restore": 0.70, "checkdata": 0.50},
    "big": {"first": 0.50, "nochange": 0.50, "mod": 0.50, "restore": 0.60, "checkdata": 0.60},
}
med = lambda k, i: st.median(x[i] for x in rows[k]) if rows.get(k) else None
print("\n== goals (ratio plakar/peer, median wall unless said; ok = goal met)")
for corpus in sorted(corpus_bytes):
    for op in ops:
        p = med(("plakar", corpus, op), 0)
        if p is None:
            continue
        parts = []
        r = med(("restic", corpus, op), 0)
        goal = GOALS.get(corpus, {}).get(op)
        if r and goal:
            parts.append("vs restic %.2f (goal <= %.2f: %s)" % (p / r, goal, "ok" if p / r <= goal else "MISSED"))
        b = med(("borg", corpus, op), 0)
        if b:
            parts.append("vs borg %.2f (%s)" % (p / b, "ok" if p <= b else "SLOWER"))
        c = med(("cp", corpus, "restore"), 0)
        if op == "restore" and c:
            parts.append("vs cp -a %.2f%s" % (p / c, (" (goal <= 1.25: %s)" % ("ok" if p / c <= 1.25 else "MISSED"))
                                                      if corpus == "sys" else ""))
        pr, rr = med(("plakar", corpus, op), 2), med(("restic", corpus, op), 2)
        if pr and rr:
            parts.append("RSS %.0f/%.0f MiB = %.2f (goal <= 0.50: %s)" % (pr, rr, pr / rr, "ok" if pr / rr <= 0.5 else "MISSED"))
        print("%-6s %-10s %s" % (corpus, op, "; ".join(parts)))
    zp, zr = sizes.get(("plakar", corpus)), sizes.get(("restic", corpus))
    if zp and zr:
        q = st.median(zp) / st.median(zr)
        print("%-6s %-10s vs restic %.3f (goal <= 1.00: %s)" % (corpus, "repo size", q, "ok" if q <= 1.0 else "MISSED"))
print("\nratios < 1 mean plakar is faster. Times are whole processes under /usr/bin/time; quote medians.")
