#!/usr/bin/env python3
"""ls and cat through one long-lived handle (what an embedding program or a script sees):
the repository is opened once, so the key derivation (scrypt, about 0.5 s by design) is paid
once and reported apart. Prints the open time, then the wall time of each ls and cat, and the
process's RSS before and after.

    handle.py REPO SNAPSHOT DIR FILE [MORE_FILES...]

Env: PLAKAR_PASSPHRASE. The plakar package must be importable (PYTHONPATH=build/bindings/python).
"""
import os
import statistics
import sys
import time

import plakar


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main() -> int:
    repo_uri, snap_id, directory, first, *more = sys.argv[1:]
    before = rss_mib()
    t0 = time.perf_counter()
    repo = plakar.open(repo_uri, os.environ.get("PLAKAR_PASSPHRASE"))
    snap = repo.snapshot(snap_id)
    print(f"open (key derivation) + snapshot   {time.perf_counter() - t0:8.3f} s  "
          f"rss {before:.0f} -> {rss_mib():.0f} MiB")
    t0 = time.perf_counter()
    entries = snap.ls(directory)
    print(f"ls of one deep directory           {(time.perf_counter() - t0) * 1000:8.1f} ms  "
          f"({len(entries)} entries)")
    t0 = time.perf_counter()
    data = snap.cat(first)
    print(f"cat of one small file              {(time.perf_counter() - t0) * 1000:8.1f} ms  "
          f"({len(data)} bytes)")
    times = []
    for path in more:
        t0 = time.perf_counter()
        snap.cat(path)
        times.append((time.perf_counter() - t0) * 1000)
    if times:
        print(f"cat of {len(times)} files in other directories median {statistics.median(times):.1f} ms, "
              f"max {max(times):.1f} ms")
    print(f"rss after: {rss_mib():.0f} MiB")
    repo.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
