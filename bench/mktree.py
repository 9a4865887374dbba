#!/usr/bin/env python3
"""Generates a tree of N files spread over D directories (default 1,000,000 files in 100,000
directories, 10 files each), deterministic: the same arguments give the same names, sizes
and contents. Files are small (0 to 200 bytes) so the tree tests the filesystem view, not
the data path.
    mktree.py ROOT [FILES] [DIRS]
Directories nest three levels deep: ROOT/dNN/dNNNN/dNNNNNN/fNN."""
import os
import sys


def main():
    root = sys.argv[1]
    files = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
    dirs = int(sys.argv[3]) if len(sys.argv) > 3 else 100_000
    per_dir = max(1, files // dirs)
    made = 0
    for d in range(dirs):
        path = os.path.join(root, "d%02d" % (d % 100), "d%04d" % (d % 10000 // 100 * 100 + d % 97),
                            "d%06d" % d)
        os.makedirs(path, exist_ok=True)
        for f in range(per_dir):
            if made == files:
                return
            size = (d * 31 + f * 7) % 201
            with open(os.path.join(path, "f%02d" % f), "wb") as out:
                out.write(b"%06d-%02d\n" % (d, f) * (size // 10) + b"x" * (size % 10))
            made += 1


if __name__ == "__main__":
    main()
