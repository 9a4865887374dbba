#!/bin/bash
# plakar server on loopback, two measures:
#  1. overhead: the first push and a full pull of CORPUS_DIR straight to a filesystem store,
#     then the same through `plakar server` (privilege-separated) on 127.0.0.1 serving a store
#     of its own (wall, user+sys of the client, the client's peak RSS);
#  2. load: CLIENTS processes at once, each pushing its own small tree and pulling it back,
#     over and over, for SECONDS: commands per second, p50 / p99 latency of each command, the
#     server's peak RSS (its three processes, summed), errors (must be 0), then `check
#     -read-data` of the served repository.
#   bench/server.sh CORPUS_DIR [CLIENTS] [SECONDS]
# Env: PLAKAR (default build/cli/plakar), PLAKAR_FLAGS (e.g. "-cpu 2"), BENCH_DIR,
#      TLS=1 (the servers use a certificate made by `plakar tls-cert`, clients plakar+tls://
#      with its pin). Steps through the server also report the server's own CPU time (its
#      three processes, from /proc).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PLAKAR=$(realpath "${PLAKAR:-$HERE/../build/cli/plakar}")
P="$PLAKAR ${PLAKAR_FLAGS:-}"
SRC=$(realpath "$1")
CLIENTS=${2:-50}
SECONDS_RUN=${3:-60}
B=${BENCH_DIR:-/tmp/plakar-bench}
OUT=$B/server
rm -rf "$OUT"
mkdir -p "$OUT"
export PLAKAR_PASSPHRASE=bench-password XDG_CACHE_HOME=$OUT/cache
SETUP=$HERE/../../shared/bench/setup_target.sh
[[ -x $SETUP ]] && "$SETUP" >/dev/null && RESTORE=$B/tgt/server-restore || RESTORE=$OUT/restore

server_ticks() { # user+sys clock ticks of the server and its children so far
	local t=0 pid
	for pid in $SERVER $(cat /proc/$SERVER/task/$SERVER/children 2>/dev/null); do
		# utime, stime, cutime, cstime: fields 14-17, counted after the "(comm)" (which has spaces)
		t=$((t + $(sed 's/.*) //' /proc/$pid/stat 2>/dev/null | awk '{print $12 + $13 + $14 + $15}' || echo 0)))
	done
	echo $t
}
step() { # NAME COMMAND...: wall s, user+sys s, peak RSS MiB of the command (and the server's CPU)
	local name=$1; shift
	local t0; t0=$(server_ticks)
	/usr/bin/time -f "%e %U %S %M" -o "$OUT/time" "$@" >/dev/null 2>"$OUT/err" || { cat "$OUT/err"; exit 1; }
	local t1; t1=$(server_ticks)
	read -r wall user sys rss <"$OUT/time"
	local srv=""
	[[ $* == *plakar*://* ]] && srv=$(printf "   server %.2f s" "$(echo "($t1 - $t0) / $(getconf CLK_TCK)" | bc -l)")
	printf "%-28s %8.2f s %8.2f s %6d MiB%s\n" "$name" "$wall" "$(echo "$user + $sys" | bc)" $((rss / 1024)) "$srv"
}
warm() { tar cf - -C "$(dirname "$SRC")" "$(basename "$SRC")" | cat >/dev/null; }

$PLAKAR token -tokens "$OUT/tokens" bench 2>/dev/null >"$OUT/client-token"
export PLAKAR_TOKEN=$(cat "$OUT/client-token")
SERVERS=()
trap 'kill "${SERVERS[@]}" 2>/dev/null || true' EXIT
TLS_ARGS=()
if [[ ${TLS:-0} == 1 ]]; then
	$PLAKAR tls-cert -name 127.0.0.1 "$OUT/cert.pem" "$OUT/key.pem" 2>/dev/null >"$OUT/pin"
	TLS_ARGS=(-tls-cert "$OUT/cert.pem" -tls-key "$OUT/key.pem")
fi
start_server() { # STORE LOG: starts a server; sets URI and SERVER
	$PLAKAR on "$1" server -tokens "$OUT/tokens" -listen 127.0.0.1:0 "${TLS_ARGS[@]}" 2>"$2" &
	SERVER=$!
	SERVERS+=("$SERVER")
	for _ in $(seq 100); do grep -q serving "$2" && break; sleep 0.05; done
	local addr; addr=$(sed -n 's/.* on \(127[^ ,]*\).*$/\1/p' "$2" | head -1)
	if [[ ${TLS:-0} == 1 ]]; then URI="plakar+tls://$addr?pin=$(cat "$OUT/pin")"; else URI=plakar://$addr; fi
}
start_server "$OUT/served" "$OUT/server.log"
echo "server: $URI"
echo "== overhead: $SRC"
printf "%-28s %10s %10s %10s\n" step wall user+sys rss
$P on "$OUT/direct" create -kdf-log2-n 16 >/dev/null
$P on "$URI" create -kdf-log2-n 16 >/dev/null
warm; step "push direct" $P on "$OUT/direct" push "$SRC"
warm; step "push through the server" $P on "$URI" push "$SRC"
for where in direct server; do
	repo=$OUT/direct; [[ $where == server ]] && repo=$URI
	snap=$($P on "$repo" ls | awk 'NR==1 {print $2}')
	rm -rf "$RESTORE"; sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
	step "pull $where" $P on "$repo" pull -to "$RESTORE" "$snap"
done
rm -rf "$RESTORE"

echo "== load: $CLIENTS clients for $SECONDS_RUN s"
start_server "$OUT/served-load" "$OUT/server-load.log"
LOAD=$URI
$P on "$LOAD" create -kdf-log2-n 10 >/dev/null
client() { # N: push and pull its own tree until the deadline; one "CMD SECONDS RC" line each
	local n=$1 src=$OUT/tree$1 end=$(( $(date +%s) + SECONDS_RUN ))
	export XDG_CACHE_HOME=$OUT/cache$n # a cache of its own, as on a host of its own
	mkdir -p "$src"
	head -c 300000 /dev/urandom >"$src/a"
	seq 1 2000 >"$src/b"
	while (( $(date +%s) < end )); do
		head -c 20000 /dev/urandom >"$src/c"
		local t0=$(date +%s.%N) snap rc=0
		snap=$($PLAKAR on "$LOAD" push "$src" 2>>"$OUT/errors") || rc=$?
		echo "push $(echo "$(date +%s.%N) - $t0" | bc) $rc"
		[[ $rc == 0 ]] || continue
		t0=$(date +%s.%N); rc=0
		$PLAKAR on "$LOAD" pull -to "$OUT/out$n" "$snap" 2>>"$OUT/errors" || rc=$?
		echo "pull $(echo "$(date +%s.%N) - $t0" | bc) $rc"
		rm -rf "$OUT/out$n"
	done
}
: >"$OUT/errors"
PIDS=()
for n in $(seq "$CLIENTS"); do
	client "$n" >"$OUT/load$n" &
	PIDS+=($!)
done
peak=0
alive() { local p; for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && return 0; done; return 1; }
while alive; do
	rss=0
	for pid in $SERVER $(cat /proc/$SERVER/task/$SERVER/children 2>/dev/null); do
		kb=$(awk '/VmHWM/ {print $2}' /proc/$pid/status 2>/dev/null || echo 0)
		rss=$((rss + ${kb:-0}))
	done
	(( rss > peak )) && peak=$rss
	sleep 1
done
wait "${PIDS[@]}" || true
cat "$OUT"/load* | python3 -c '
import sys
rows = [l.split() for l in sys.stdin if l.strip()]
secs = float(sys.argv[1])
print("commands: %d in %.0f s (%.1f per second), errors: %d" % (len(rows), secs, len(rows) / secs,
      sum(1 for r in rows if r[2] != "0")))
for cmd in ("push", "pull"):
    t = sorted(float(r[1]) for r in rows if r[0] == cmd and r[2] == "0")
    if t:
        print("%s: %d, p50 %.3f s, p99 %.3f s" % (cmd, len(t), t[len(t) // 2], t[min(len(t) - 1, int(len(t) * 0.99))]))
' "$SECONDS_RUN"
echo "server peak RSS (three processes): $((peak / 1024)) MiB"
[[ -s $OUT/errors ]] && { echo "client errors:"; sort "$OUT/errors" | uniq -c | head; }
$P on "$LOAD" check -read-data | tail -1
