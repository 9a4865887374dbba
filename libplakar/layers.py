#!/usr/bin/env python3
"""The engine's layering, checked at every build (libplakar/CMakeLists.txt): each folder of
libplakar/ is one concept and may include only the folders listed for it here, so an include
that points up the graph fails the build with one line naming the file, the line and the rule.

    base
     |- crypto, compression, chunking, privsep
     |- storage            (crypto: object names and sizes only)
     |- net                (storage: the remote store is a Store; privsep: the server)
     |- agent              (the key agent: a socket protocol for master keys)
     |- repository         (storage, agent; keys, packs, index, locks)
     '- snapshot           (repository; trees, push, pull, check, gc)

Usage: layers.py LIBPLAKAR_DIR [STAMP]   (exit 1 and one line per violation)
"""
import os
import re
import sys

ALLOWED = {
    "base": set(),
    "crypto": {"base"},
    "compression": {"base"},
    "chunking": {"base"},
    "privsep": {"base"},
    "storage": {"base", "crypto"},
    "net": {"base", "crypto", "storage", "privsep"},
    "agent": {"base", "crypto"},
    "repository": {"base", "crypto", "compression", "chunking", "storage", "agent"},
    "snapshot": {"base", "crypto", "compression", "chunking", "storage", "repository"},
}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([a-z_]+)/')


def main():
    root = sys.argv[1]
    bad = []
    for layer in sorted(os.listdir(root)):
        path = os.path.join(root, layer)
        if not os.path.isdir(path):
            continue
        if layer not in ALLOWED:
            bad.append(f"{path}: folder not in libplakar/layers.py (say what it may include)")
            continue
        for dirpath, _, files in os.walk(path):
            for f in sorted(files):
                if not f.endswith((".h", ".cc")):
                    continue
                p = os.path.join(dirpath, f)
                with open(p, encoding="utf-8") as src:
                    for n, line in enumerate(src, 1):
                        m = INCLUDE.match(line)
                        if not m:
                            continue
                        to = m.group(1)
                        if to != layer and to in ALLOWED and to not in ALLOWED[layer]:
                            bad.append(f"{p}:{n}: {layer}/ may not include {to}/ (libplakar/layers.py)")
    for b in bad:
        print(b, file=sys.stderr)
    if bad:
        return 1
    if len(sys.argv) > 2:
        with open(sys.argv[2], "w") as stamp:
            stamp.write("ok\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
