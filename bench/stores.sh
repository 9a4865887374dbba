#!/bin/bash
# Stores and cache, side by side on one corpus: for the filesystem and the SQLite store,
# the first push (fresh repository, fresh cache), a no-change push with the cache and with
# -no-cache (wall, user+sys, peak RSS, files opened for reading), a full pull, the repository
# size and the cache size.
#   bench/stores.sh CORPUS_DIR [OUT_DIR]
# CORPUS_DIR: any tree, e.g. one made by ../shared/bench/corpus.sh (corpus-small, corpus-sys).
# Env: PLAKAR (default build/cli/plakar), BENCH_DIR (default /tmp/plakar-bench).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PLAKAR=$(realpath "${PLAKAR:-$HERE/../build/cli/plakar}")
SRC=$(realpath "$1")
B=${BENCH_DIR:-/tmp/plakar-bench}
OUT=${2:-$B/stores}
export PLAKAR_PASSPHRASE=bench-password
export XDG_CACHE_HOME=$OUT/cache
mkdir -p "$OUT"
# Restores go to a journaled ext4 (see ../shared/bench/README.md: on this machine kind's root
# filesystem, mass file creation after mass deletion is O(n^2) and would falsify pull times).
SETUP=$HERE/../../shared/bench/setup_target.sh
[[ -x $SETUP ]] && "$SETUP" >/dev/null && RESTORE=$B/tgt/stores-restore || RESTORE=$OUT/restore

files=$(find "$SRC" -type f | wc -l)
bytes=$(find "$SRC" -type f -printf '%s\n' | awk '{s+=$1} END {printf "%.0f", s}')
echo "corpus $SRC: $files files, $bytes bytes"
warm() { tar cf - -C "$(dirname "$SRC")" "$(basename "$SRC")" | cat >/dev/null; }

# step NAME COMMAND...: prints wall, user+sys, peak RSS, and the files opened read-only.
step() {
	local name=$1; shift
	sync
	local tf; tf=$(mktemp)
	# Files read are counted in a separate run under strace (which slows what it traces), with
	# --seccomp-bpf so that only openat stops the process. Timings come from an untraced run.
	local opened=-
	if [[ $name != pull ]] && command -v strace >/dev/null; then
		strace -f -qq --seccomp-bpf -e trace=openat -e status=successful -o "$tf.trace" "$@" >/dev/null
		opened=$(grep -c "O_RDONLY|O_NOFOLLOW" "$tf.trace" || true)
		[[ $name == "first push" ]] && { rm -rf "$OUT/repo" "$OUT/plakar.db"* "$XDG_CACHE_HOME"; "$PLAKAR" on "$R" create >/dev/null; }
		warm
	fi
	/usr/bin/time -f '%e %U %S %M' -o "$tf" "$@" >/dev/null
	read -r w u s m < "$tf"
	printf '%-8s %-22s wall %7.2f s  cpu %7.2f s  rss %5d MiB  files read %s\n' \
		"$store" "$name" "$w" "$(echo "$u + $s" | bc)" "$((m / 1024))" "$opened"
	rm -f "$tf" "$tf.trace"
}

for store in fs sqlite; do
	rm -rf "$OUT/repo" "$OUT/plakar.db"* "$XDG_CACHE_HOME" "$RESTORE"
	case $store in
		fs) R=$OUT/repo ;;
		sqlite) R=sqlite://$OUT/plakar.db ;;
	esac
	"$PLAKAR" on "$R" create >/dev/null
	warm; step "first push" "$PLAKAR" on "$R" push "$SRC"
	warm; step "no-change, cache" "$PLAKAR" on "$R" push "$SRC"
	warm; step "no-change, -no-cache" "$PLAKAR" -no-cache on "$R" push "$SRC"
	snap=$("$PLAKAR" on "$R" ls | head -1 | awk '{print $2}')
	step "pull" "$PLAKAR" on "$R" pull -to "$RESTORE" "$snap"
	size=$(du -sbc "$OUT/repo" "$OUT"/plakar.db* 2>/dev/null | awk '$2 == "total" {print $1}' || true)
	cache=$(du -sb "$XDG_CACHE_HOME" | cut -f1)
	printf '%-8s repository %d bytes (%.1f %% of the corpus), cache %d bytes (%.0f bytes per file)\n' \
		"$store" "$size" "$(echo "100 * $size / $bytes" | bc -l)" "$cache" "$(echo "$cache / $files" | bc -l)"
	rm -rf "$RESTORE"
done
