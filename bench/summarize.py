#!/usr/bin/env python3
"""Summarise compare.sh's results.tsv: medians per tool, corpus and step, and the ratios plakar/peer.
Usage: summarize.py RESULTS.tsv      MB/s = corpus bytes / median wall seconds (MB = 10^6 bytes).
CPU % = (user + sys) / (wall x the cores this machine has): 100 % is every core busy for the whole step."""
import os, sys, statistics as st
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
ops = ["first", "nochange", "mod", "restore", "check", "checkdata", "checkall"]
# checkall is plakar's check of every snapshot (each blob they reference read once); the peers'
# counterpart is their check reading all data.
PEER_OP = {"checkall": "checkdata"}
CORES = os.cpu_count() or 1
W = 40
for corpus in sorted(corpus_bytes):
    print("\n== corpus %s (%.2f GB) — median wall s | cpu s (CPU %% of %d cores) | peak RSS MiB | MB/s"
          % (corpus, corpus_bytes[corpus] / 1e9, CORES))
    print("%-10s" % "step" + "".join("%-*s" % (W, t) for t in tools) + "".join("plakar/%-9s" % t for t in tools if t != "plakar"))
    for op in ops:
        cells, walls = [], {}
        for t in tools:
            r = rows.get((t, corpus, op if t == "plakar" else PEER_OP.get(op, op)))
            if not r:
                cells.append("%-*s" % (W, "-"))
                continue
            w = st.median(x[0] for x in r)
            c = st.median(x[1] for x in r)
            walls[t] = w
            bad = "" if all(x[3] == "0" for x in r) else " rc!=0"
            cells.append("%-*s" % (W, "%.2f | %.2f (%.0f%%) | %.0f | %.0f%s" % (
                w, c, 100 * c / (w * CORES) if w else 0, st.median(x[2] for x in r),
                corpus_bytes[corpus] / w / 1e6 if w else 0, bad)))
        ratios = ["%-16s" % ("%.2f" % (walls["plakar"] / walls[t]) if "plakar" in walls and t in walls and walls[t] else "-")
                  for t in tools if t != "plakar"]
        print("%-10s" % op + "".join(cells) + "".join(ratios))
    line = "%-10s" % "repo size"
    for t in tools:
        z = sizes.get((t, corpus))
        line += "%-*s" % (W, "%.3f GB (%.0f%%)" % (st.median(z) / 1e9, 100 * st.median(z) / corpus_bytes[corpus]) if z else "-")
    print(line)

# The goals of the performance issue (second round): plakar's median wall over restic's (and
# borg's: never slower; restore within 1.10x of cp -a), repository size over restic's. Peak RSS
# is printed beside them (its goal is against plakar's own earlier runs).
ROUND2 = {"first": 0.40, "nochange": 0.20, "mod": 0.25, "restore": 0.35, "check": 0.50, "checkdata": 0.50,
          "checkall": 0.50}
GOALS = {"sys": ROUND2, "small": ROUND2, "big": ROUND2}  # corpus -> step -> max ratio plakar/restic
med = lambda k, i: st.median(x[i] for x in rows[k]) if rows.get(k) else None
print("\n== goals (ratio plakar/peer, median wall unless said; ok = goal met)")
for corpus in sorted(corpus_bytes):
    for op in ops:
        p = med(("plakar", corpus, op), 0)
        if p is None:
            continue
        parts = []
        r = med(("restic", corpus, PEER_OP.get(op, op)), 0)
        goal = GOALS.get(corpus, {}).get(op)
        if r and goal:
            parts.append("vs restic %.2f (goal <= %.2f: %s)" % (p / r, goal, "ok" if p / r <= goal else "MISSED"))
        b = med(("borg", corpus, PEER_OP.get(op, op)), 0)
        if b:
            parts.append("vs borg %.2f (%s)" % (p / b, "ok" if p <= b else "SLOWER"))
        c = med(("cp", corpus, "restore"), 0)
        if op == "restore" and c:
            parts.append("vs cp -a %.2f (goal <= 1.10: %s)" % (p / c, "ok" if p / c <= 1.10 else "MISSED"))
        pr, rr = med(("plakar", corpus, op), 2), med(("restic", corpus, PEER_OP.get(op, op)), 2)
        if pr and rr:
            parts.append("peak RSS %.0f/%.0f MiB" % (pr, rr))
        print("%-6s %-10s %s" % (corpus, op, "; ".join(parts)))
    zp, zr = sizes.get(("plakar", corpus)), sizes.get(("restic", corpus))
    if zp and zr:
        q = st.median(zp) / st.median(zr)
        print("%-6s %-10s vs restic %.3f (goal <= 1.00: %s)" % (corpus, "repo size", q, "ok" if q <= 1.0 else "MISSED"))
print("\nratios < 1 mean plakar is faster. Times are whole processes under /usr/bin/time; quote medians.")
