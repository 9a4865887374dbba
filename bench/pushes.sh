#!/bin/bash
# Many small pushes into one filesystem repository, then gc: what the pack fan-out looks like
# before and after (packs, files in the fullest packs/XX directory, repository size), and what
# the gc merging the small packs costs (wall, user+sys, peak RSS).
#   bench/pushes.sh [PUSHES]          (default 10000)
# Env: PLAKAR (default build/cli/plakar), BENCH_DIR (default /tmp/plakar-bench).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PLAKAR=$(realpath "${PLAKAR:-$HERE/../build/cli/plakar}")
N=${1:-10000}
B=${BENCH_DIR:-/tmp/plakar-bench}/pushes
rm -rf "$B"
mkdir -p "$B/src"
export PLAKAR_PASSPHRASE=bench-password XDG_CACHE_HOME=$B/cache
R=$B/repo
"$PLAKAR" on "$R" create -kdf-log2-n 10 >/dev/null

fanout() { # packs, files in the fullest packs/XX, repository bytes
	local packs fullest size
	packs=$(find "$R/packs" -type f | wc -l)
	fullest=$(for d in "$R"/packs/*/; do find "$d" -type f | wc -l; done | sort -n | tail -1)
	size=$(du -sb "$R" | cut -f1)
	echo "packs $packs, fullest packs/XX: ${fullest:-0} files, repository $size bytes"
}

t0=$(date +%s.%N)
for i in $(seq 1 "$N"); do
	head -c 2000 /dev/urandom >"$B/src/f$((i % 500))"
	"$PLAKAR" on "$R" push "$B/src" >/dev/null
done
t1=$(date +%s.%N)
echo "$N pushes: $(echo "$t1 - $t0" | bc) s"
echo "before gc: $(fanout)"
/usr/bin/time -f "gc: %e s wall, %U+%S s cpu, %M KiB peak RSS" "$PLAKAR" on "$R" gc | grep -E "merged|packs "
echo "after gc:  $(fanout)"
"$PLAKAR" on "$R" check | tail -1
