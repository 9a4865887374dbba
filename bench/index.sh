#!/bin/bash
# The blob index at scale, on a synthetic index (bench/index_bench.cc): filling it the way one
# long push does, then small pushes on top (each loads the index, adds its entries, flushes and
# merges what its segment fills), and the cost of one whole-index rewrite, which every
# compaction was before tiered merging.
#
#   bench/index.sh [BLOBS...]        default: 1000000 10000000
#
# PUSHES (default 100) small pushes of PER_PUSH (default 1000) entries each. Writes under
# $BENCH_DIR (default /tmp/plakar-bench); results also in $BENCH_DIR/index.tsv.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
BENCH_DIR=${BENCH_DIR:-/tmp/plakar-bench}
PUSHES=${PUSHES:-100}
PER_PUSH=${PER_PUSH:-1000}
mkdir -p "$BENCH_DIR"
cmake --build --preset default --target plakar_index_bench >/dev/null
bin="$here/build/bench/plakar_index_bench"
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1000000 10000000)
for n in "${sizes[@]}"; do
	echo "== $n blobs"
	"$bin" "$BENCH_DIR/index-$n" "$n" "$PUSHES" "$PER_PUSH" | tee -a "$BENCH_DIR/index.tsv"
done
