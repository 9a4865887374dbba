#!/bin/bash
# check beside restic and borg, on one corpus, in one run: each tool backs the corpus up into
# a fresh repository, then each check depth runs RUNS times (median printed): plakar check
# -fast SNAP, check SNAP (reads everything), check (the whole repository), check -read-data;
# restic check and check --read-data; borg check --repository-only and check --verify-data.
# Wall, user+sys and peak RSS from /usr/bin/time. The page cache is left warm for all.
#   bench/check.sh [CORPUS_DIR] [RUNS]     (defaults: $BENCH_DIR/corpus-small, 3)
# Env: PLAKAR (default build/cli/plakar), BENCH_DIR (default /tmp/plakar-bench).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PLAKAR=$(realpath "${PLAKAR:-$HERE/../build/cli/plakar}")
B=${BENCH_DIR:-/tmp/plakar-bench}
SRC=${1:-$B/corpus-small}
RUNS=${2:-3}
OUT=$B/check
command -v restic >/dev/null && command -v borg >/dev/null || { echo "needs restic and borg (apt-get install restic borgbackup)"; exit 2; }
rm -rf "$OUT"; mkdir -p "$OUT"
export PLAKAR_PASSPHRASE=bench-password RESTIC_PASSWORD=bench-password BORG_PASSPHRASE=bench-password
export XDG_CACHE_HOME=$OUT/cache BORG_BASE_DIR=$OUT/borgbase RESTIC_CACHE_DIR=$OUT/restic-cache
export BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
export BORG_CHECK_I_KNOW_WHAT_I_AM_DOING=YES

run() { # LABEL COMMAND...: RUNS runs, median wall, user+sys, peak RSS
	local label=$1; shift
	local rows=()
	for _ in $(seq 1 "$RUNS"); do
		/usr/bin/time -f '%e %U %S %M' -o "$OUT/t" "$@" >/dev/null 2>"$OUT/err" || { cat "$OUT/err"; echo "$label failed"; exit 1; }
		rows+=("$(cat "$OUT/t")")
	done
	printf '%s\n' "${rows[@]}" | sort -n | sed -n "$(((RUNS + 1) / 2))p" |
		awk -v l="$label" '{printf "%-36s wall %7.2f s  user+sys %7.2f s  rss %6d MiB\n", l, $1, $2 + $3, $4 / 1024}'
}

echo "corpus: $SRC ($(du -sh "$SRC" | cut -f1), $(find "$SRC" -type f | wc -l) files)"
"$PLAKAR" on "$OUT/plakar" create >/dev/null
/usr/bin/time -f 'plakar push: %e s' "$PLAKAR" on "$OUT/plakar" push "$SRC" >/dev/null
S=$("$PLAKAR" on "$OUT/plakar" ls | awk 'NR==1 {print $2}')
restic -q init -r "$OUT/restic" >/dev/null
/usr/bin/time -f 'restic backup: %e s' restic -q -r "$OUT/restic" backup "$SRC" >/dev/null
borg init -e repokey-blake2 "$OUT/borg" >/dev/null 2>&1
/usr/bin/time -f 'borg create: %e s' borg create "$OUT/borg::a" "$SRC" >/dev/null

run "plakar check -fast SNAP" "$PLAKAR" on "$OUT/plakar" check -fast "$S"
run "plakar check (repository)" "$PLAKAR" on "$OUT/plakar" check
run "restic check" restic -q -r "$OUT/restic" check
run "borg check --repository-only" borg check --repository-only "$OUT/borg"
run "plakar check SNAP (reads all)" "$PLAKAR" on "$OUT/plakar" check "$S"
run "plakar check -read-data" "$PLAKAR" on "$OUT/plakar" check -read-data
run "restic check --read-data" restic -q -r "$OUT/restic" check --read-data
run "borg check --verify-data" borg check --verify-data "$OUT/borg"
