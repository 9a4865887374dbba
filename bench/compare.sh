#!/bin/bash
# Side-by-side benchmark: plakar vs restic vs borg, same corpus, same steps, same run.
# Usage: compare.sh [-n RUNS] [-t "plakar restic borg cp"] CORPUS...   (CORPUS: sys small big; see corpus.sh)
# Env:   PLAKAR=path/to/plakar (default: build/cli/plakar of this tree, else `plakar` on PATH)
#        PLAKAR_FLAGS="-cpu 2" (global flags for every plakar call; default none: -cpu's default)
#        BENCH_DIR (default /tmp/plakar-bench)
# The tool "cp" is `cp -a` of the corpus to the restore target: the floor of a restore.
# Steps per tool and corpus: init; first backup (fresh repo, fresh cache) x RUNS; no-change backup x RUNS;
# full restore of the first snapshot x RUNS (to the journaled target, see setup_target.sh); check (structure) and
# check reading all data x RUNS; plakar only: check of every snapshot (`check ID...`, which reads every blob they
# reference: compared with the peers' checkdata) x RUNS; backup after changing 1% of files x RUNS (mod.py;
# reverted at the end).
# The corpus is read through the page cache before every backup (warm). Every step runs under /usr/bin/time.
# Output: $BENCH_DIR/results.tsv (appended) and the summary table printed by summarize.py at the end.
set -uo pipefail
N=3; TOOLS="plakar restic borg cp"
while getopts "n:t:" o; do case $o in n) N=$OPTARG;; t) TOOLS=$OPTARG;; *) exit 2;; esac; done
shift $((OPTIND - 1))
[[ $# -gt 0 ]] || { echo "usage: compare.sh [-n RUNS] [-t TOOLS] CORPUS..." >&2; exit 2; }
B=${BENCH_DIR:-/tmp/plakar-bench}
HERE=$(cd "$(dirname "$0")" && pwd)
if [[ -z ${PLAKAR:-} ]]; then
  PLAKAR=plakar
  [[ -x $HERE/../build/cli/plakar ]] && PLAKAR=$HERE/../build/cli/plakar
fi
PLAKAR="$PLAKAR ${PLAKAR_FLAGS:-}"
RES=$B/results.tsv; LOG=$B/logs; mkdir -p "$LOG"
export RESTIC_PASSWORD=bench-password BORG_PASSPHRASE=bench-password PLAKAR_PASSPHRASE=bench-password
export BORG_RELOCATED_REPO_ACCESS_IS_OK=yes BORG_DISPLAY_PASSPHRASE=no

need() { command -v "$1" >/dev/null || { echo "installing $2"; apt-get install -y -qq --no-install-recommends "$2" >/dev/null; }; }
for t in $TOOLS; do case $t in restic) need restic restic;; borg*) need borg borgbackup;; esac; done
"$HERE/setup_target.sh" >/dev/null

for CORPUS in "$@"; do
  SRC=$B/corpus-$CORPUS
  [[ -d $SRC ]] || "$HERE/corpus.sh" "$CORPUS"
  BYTES=$(find "$SRC" -type f -printf '%s\n' | awk '{s+=$1} END {printf "%.0f", s}')
  for TOOL in $TOOLS; do
    R=$B/repo-$TOOL-$CORPUS; T=$B/tgt/restore-$TOOL-$CORPUS
    case $TOOL in
      plakar) t_init() { $PLAKAR on $R create; }
              t_backup() { $PLAKAR on $R push $SRC; }
              t_first_id() { $PLAKAR on $R ls | awk 'NR==1 {print $2}'; }
              t_restore() { $PLAKAR on $R pull -to $T $1; }
              t_check() { $PLAKAR on $R check; }
              t_checkd() { $PLAKAR on $R check -read-data; }
              t_checkall() { $PLAKAR on $R check $($PLAKAR on $R ls | awk '{print $2}'); }
              t_clean() { rm -rf ~/.cache/plakar; } ;;
      restic) t_init() { restic -q -r $R init; }
              t_backup() { restic -q -r $R backup $SRC; }
              t_first_id() { restic -r $R snapshots --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["short_id"])'; }
              t_restore() { restic -q -r $R restore $1 --target $T; }
              t_check() { restic -q -r $R check; }
              t_checkd() { restic -q -r $R check --read-data; }
              t_clean() { rm -rf ~/.cache/restic; } ;;
      borg)   t_init() { borg init -e repokey $R; }
              t_backup() { borg create $R::b$(date +%s%N) $SRC; }
              t_first_id() { borg list --short $R | head -1; }
              t_restore() { (cd $T && borg extract $R::$1); }
              t_check() { borg check --repository-only $R; }
              t_checkd() { borg check --verify-data $R; }
              t_clean() { rm -rf ~/.cache/borg ~/.config/borg/security; } ;;
      cp)     t_restore() { cp -a "$SRC/." "$T/"; } ;;
      *) echo "unknown tool $TOOL" >&2; exit 2 ;;
    esac
    warm() { tar cf - -C "$B" corpus-$CORPUS | cat > /dev/null; }
    timed() { # op run command...
      local op=$1 run=$2; shift 2; sync
      local tf; tf=$(mktemp)
      /usr/bin/time -f '%e %U %S %M %x' -o "$tf" "$@" >> "$LOG/$TOOL-$CORPUS-$op.log" 2>&1
      read -r w u s m rc < <(tail -1 "$tf"); rm -f "$tf"
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$TOOL" "$CORPUS" "$op" "$run" "$w" "$u" "$s" "$m" "$rc" "$BYTES" >> "$RES"
      echo "$TOOL $CORPUS $op #$run wall=${w}s cpu=$(echo "$u + $s" | bc)s rss=$((m / 1024))MiB rc=$rc"
    }
    export -f t_init t_backup t_restore t_check t_checkd 2>/dev/null
    [[ $TOOL == plakar ]] && export -f t_checkall
    export R T SRC PLAKAR
    if [[ $TOOL == cp ]]; then
      for i in $(seq 1 "$N"); do
        rm -rf "$T"; mkdir -p "$T"; sync
        timed restore "$i" bash -c "t_restore"
        rm -rf "$T"
      done
      continue
    fi
    for i in $(seq 1 "$N"); do
      rm -rf "$R"; t_clean
      timed init "$i" bash -c t_init
      warm; timed first "$i" bash -c t_backup
      printf '%s\t%s\tsize\t%s\t%s\n' "$TOOL" "$CORPUS" "$i" "$(du -sb "$R" | cut -f1)" >> "$RES"
    done
    for i in $(seq 1 "$N"); do warm; timed nochange "$i" bash -c t_backup; done
    SNAP=$(t_first_id)
    for i in $(seq 1 "$N"); do
      rm -rf "$T"; mkdir -p "$T"; sync
      timed restore "$i" bash -c "t_restore $SNAP"
      if [[ $i == 1 ]]; then
        got=$(find "$T" -type f -printf '%s\n' | awk '{n++; s+=$1} END {printf "%d files %.0f bytes", n, s}')
        want=$(find "$SRC" -type f -printf '%s\n' | awk '{n++; s+=$1} END {printf "%d files %.0f bytes", n, s}')
        [[ $got == "$want" ]] || echo "WARNING: $TOOL restore has $got, corpus has $want"
      fi
      rm -rf "$T"
    done
    for i in $(seq 1 "$N"); do timed check "$i" bash -c t_check; done
    for i in $(seq 1 "$N"); do timed checkdata "$i" bash -c t_checkd; done
    if [[ $TOOL == plakar ]]; then
      for i in $(seq 1 "$N"); do timed checkall "$i" bash -c t_checkall; done
    fi
    for i in $(seq 1 "$N"); do python3 "$HERE/mod.py" apply "$SRC" "$i" >/dev/null; warm; timed mod "$i" bash -c t_backup; done
    python3 "$HERE/mod.py" revert "$SRC" >/dev/null
    rm -rf "$R"; t_clean
  done
done
python3 "$HERE/summarize.py" "$RES"
