#!/bin/bash
# The filesystem view at scale: a snapshot of 1,000,000 files in 100,000 directories
# (bench/mktree.py), then ls of one deep directory, cat of one small file, locate of one
# name, diff of two snapshots that differ in 10 files, and a tarball of the whole snapshot.
# Each step: wall time, peak RSS, and bytes read from the store (sum of the repository's
# pread()s, traced with strace --seccomp-bpf), with the local cache warm and with -no-cache.
#   bench/browse.sh [FILES] [DIRS]       (defaults 1000000 100000)
# Env: PLAKAR (default build/cli/plakar), BENCH_DIR (default /tmp/plakar-bench),
# KEEP=1 to reuse the repository of a previous run (no new pushes; the cache is kept).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PLAKAR=$(realpath "${PLAKAR:-$HERE/../build/cli/plakar}")
FILES=${1:-1000000}
DIRS=${2:-100000}
B=${BENCH_DIR:-/tmp/plakar-bench}
OUT=$B/browse
SRC=$B/corpus-tree-$FILES
export PLAKAR_PASSPHRASE=bench-password
export XDG_CACHE_HOME=$OUT/cache
R=$OUT/repo

if [[ ! -d $SRC ]]; then
	echo "generating $FILES files in $DIRS directories under $SRC"
	python3 "$HERE/mktree.py" "$SRC.tmp" "$FILES" "$DIRS" && mv "$SRC.tmp" "$SRC"
fi
if [[ ${KEEP:-0} != 1 || ! -d $R ]]; then
	KEEP=0
	rm -rf "$OUT"; mkdir -p "$OUT"
	"$PLAKAR" on "$R" create >/dev/null
fi

t() { # NAME COMMAND...: wall and peak RSS of an untraced run, store bytes from a traced one
	local name=$1; shift
	local tf; tf=$(mktemp)
	# -y names each descriptor's file: only reads of the repository count (not the cache's).
	strace -f -qq -y --seccomp-bpf -e trace=pread64,read -o "$tf.trace" "$@" >/dev/null 2>&1 || true
	local read; read=$(grep -F "<$R/" "$tf.trace" | awk -F'= ' '{s += $NF} END {print s + 0}')
	/usr/bin/time -f '%e %M' -o "$tf" "$@" >/dev/null
	read -r w m < "$tf"
	printf '%-34s wall %8.3f s  rss %6d MiB  store bytes read %s\n' "$name" "$w" "$((m / 1024))" "$read"
	rm -f "$tf" "$tf.trace"
}

if [[ $KEEP == 0 ]]; then
	/usr/bin/time -f 'first push: %e s, %M KB' "$PLAKAR" on "$R" push "$SRC" >/dev/null
	# Ten files change, then a second snapshot.
	for i in 1 2 3 4 5 6 7 8 9 10; do
		f=$(find "$SRC/d$(printf %02d $((i * 7)))" -name f00 -type f -print -quit)
		echo "changed $i" >> "$f"
	done
	/usr/bin/time -f 'second push (10 changed): %e s, %M KB' "$PLAKAR" on "$R" push "$SRC" >/dev/null
fi
S1=$("$PLAKAR" on "$R" ls | awk 'NR==1 {print $2}')
S2=$("$PLAKAR" on "$R" ls | awk 'NR==2 {print $2}')
DEEP=$(find "$SRC" -mindepth 3 -maxdepth 3 -type d | sort | sed -n 5000p)
FILE=$DEEP/f03
"$PLAKAR" on "$R" info | sed -n '/Snapshots/,$p'

for mode in cache no-cache; do
	flags=()
	[[ $mode == no-cache ]] && flags=(-no-cache)
	echo "--- $mode"
	t "open + list snapshots (the floor)" "$PLAKAR" "${flags[@]}" on "$R" ls
	t "ls of one deep directory" "$PLAKAR" "${flags[@]}" on "$R" ls "$S1:$DEEP"
	t "cat of one small file" "$PLAKAR" "${flags[@]}" on "$R" cat "$S1:$FILE"
	t "locate one name (2 snapshots)" "$PLAKAR" "${flags[@]}" on "$R" locate "$(basename "$DEEP")"
	t "diff (10 files changed)" "$PLAKAR" "${flags[@]}" on "$R" diff "$S1" "$S2"
done
# The CLI in a shell with a key agent: the key derivation is paid once, by the first command.
eval "$("$PLAKAR" agent -timeout 600)" >/dev/null
"$PLAKAR" on "$R" ls >/dev/null
echo "--- cache, with a key agent (PLAKAR_PASSPHRASE unset)"
(
	unset PLAKAR_PASSPHRASE
	t "open + list snapshots (the floor)" "$PLAKAR" on "$R" ls
	t "ls of one deep directory" "$PLAKAR" on "$R" ls "$S1:$DEEP"
	t "cat of one small file" "$PLAKAR" on "$R" cat "$S1:$FILE"
	t "diff (10 files changed)" "$PLAKAR" on "$R" diff "$S1" "$S2"
)
"$PLAKAR" agent -stop >/dev/null
unset PLAKAR_AGENT

# The same ls and cat through one long-lived handle (Python over the C ABI): the key
# derivation is paid once, at open, and the operations themselves are timed.
MORE=$(find "$SRC" -mindepth 3 -maxdepth 3 -type d | sort | awk 'NR % 5003 == 17' | head -20 | sed 's|$|/f01|')
echo "--- one handle (bench/handle.py)"
# shellcheck disable=SC2086
PYTHONPATH=$HERE/../build/bindings/python /usr/bin/time -f 'handle.py peak rss: %M KB' \
	python3 "$HERE/handle.py" "$R" "$S1" "$DEEP" "$FILE" $MORE
# Untraced: a trace of 1.2 million files takes far longer than the archive, and every byte
# of the repository is read anyway.
/usr/bin/time -f 'tarball of the whole snapshot: %e s, %M KB' "$PLAKAR" on "$R" tarball -o "$OUT/all.tar" "$S1"
echo "tarball: $(stat -c %s "$OUT/all.tar") bytes"
