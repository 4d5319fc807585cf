#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# 1 vs 2 single-threaded CPU workers through the `nerpipe` program, made to survive a shared machine.
#
#   bench/pipeline/worker_scaling.sh NERPIPE_BINARY MODEL_DIR [CORPUS_JSONL] [COPIES]
#
# Environment: ROUNDS (default 5) rounds, each running 1 and 2 workers back to back (the order
# alternates between rounds, so a load change hits both alike); MAX_LOAD: before each round, wait
# (at most WAIT_S seconds, default 300) until the 1-minute load average is below it;
# AUTOGROUP_NICE (e.g. -20): run each measured command in a session of its own with this autogroup
# nice value. Where the kernel groups processes by session (/proc/sys/kernel/sched_autogroup_enabled),
# plain `nice` only ranks a session's own processes and every busy session gets an equal share of
# the cores, so on a shared machine 2 workers get no more than 1 worker; this gives the benchmark
# the cores for the seconds it runs (needs permission to lower nice values, e.g. root).
#
# Per run it prints wall, user and sys seconds, CPU milliseconds per document and the cores the
# run kept busy ((user + sys) / wall), with the load average at its start. The summary gives the
# median of the per-round speed-ups, the speed-up of the best (least disturbed) runs, and CPU time
# per document for 1 and 2 workers: when that is the same for both, the workers do not slow each
# other down (no lock contention, no oversubscription), and a speed-up below 2 comes from cores
# taken by other processes or from serial work (model loading, reading, writing).
set -euo pipefail
usage="usage: worker_scaling.sh NERPIPE_BINARY MODEL_DIR [CORPUS_JSONL] [COPIES]"
BIN=${1:?$usage}
MODEL=${2:?$usage}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SRC=${3:-$ROOT/tests/data/ewt/train.jsonl}
COPIES=${4:-4}
ROUNDS=${ROUNDS:-5}
MAX_LOAD=${MAX_LOAD:-}
WAIT_S=${WAIT_S:-300}
AUTOGROUP_NICE=${AUTOGROUP_NICE:-}
TIME=/usr/bin/time
[ -x "$TIME" ] || { echo "worker_scaling: needs $TIME (GNU time) for user and sys seconds" >&2; exit 1; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
for _ in $(seq "$COPIES"); do cat "$SRC"; done >"$TMP/corpus.jsonl"
docs=$(grep -c . "$TMP/corpus.jsonl")
load1() { cut -d' ' -f1 /proc/loadavg; }

wait_for_quiet() {
  [ -n "$MAX_LOAD" ] || return 0
  local waited=0
  while awk -v l="$(load1)" -v m="$MAX_LOAD" 'BEGIN { exit !(l >= m) }'; do
    [ "$waited" -ge "$WAIT_S" ] && { echo "# load still $(load1) after ${WAIT_S}s; measuring anyway"; return 0; }
    sleep 5
    waited=$((waited + 5))
  done
}

run_once() {  # workers round
  local w=$1 r=$2 load
  load=$(load1)
  local cmd=("$TIME" -f "%e %U %S" -o "$TMP/time"
    "$BIN" run --model "$MODEL" --input "$TMP/corpus.jsonl" --output /dev/null --quiet --workers "$w" --threads 1)
  if [ -n "$AUTOGROUP_NICE" ]; then
    setsid --wait bash -c 'echo "$0" >/proc/self/autogroup && exec "$@"' "$AUTOGROUP_NICE" "${cmd[@]}"
  else
    "${cmd[@]}"
  fi
  read -r wall user sys <"$TMP/time"
  echo "$r $w $wall $user $sys $load" >>"$TMP/runs"
  awk -v r="$r" -v w="$w" -v e="$wall" -v u="$user" -v s="$sys" -v d="$docs" -v l="$load" 'BEGIN {
    printf "%5d %7d %7.2f %7.2f %6.2f %10.3f %6.2f %6.2f\n", r, w, e, u, s, 1000 * (u + s) / d, (u + s) / e, l }'
}

echo "# $BIN, model $MODEL: $docs documents ($COPIES copies of $SRC), $(nproc) cores, $ROUNDS rounds${AUTOGROUP_NICE:+, autogroup nice $AUTOGROUP_NICE}"
echo "round workers  wall_s  user_s  sys_s  cpu_ms/doc  cores   load"
: >"$TMP/runs"
for r in $(seq "$ROUNDS"); do
  wait_for_quiet
  if [ $((r % 2)) -eq 1 ]; then order="1 2"; else order="2 1"; fi
  for w in $order; do run_once "$w" "$r"; done
done

# Summary: medians over rounds; per-round speed-up = wall(1) / wall(2) of the same round.
awk -v d="$docs" '
  function median(a, n,   i, j, t) {
    for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  { wall[$1, $2] = $3; cpu[$2, ++n[$2]] = 1000 * ($4 + $5) / d; load[++nl] = $6
    if (!($2 in best) || $3 < best[$2]) best[$2] = $3 }
  END {
    for (r = 1; (r, 1) in wall; r++) if ((r, 2) in wall) ratio[++nr] = wall[r, 1] / wall[r, 2]
    for (i = 1; i <= n[1]; i++) c1[i] = cpu[1, i]
    for (i = 1; i <= n[2]; i++) c2[i] = cpu[2, i]
    m1 = median(c1, n[1]); m2 = median(c2, n[2])
    printf "speed-up 2 vs 1 workers: median %.2fx over %d rounds; best runs %.2fx (%.2f s vs %.2f s)\n",
           median(ratio, nr), nr, best[1] / best[2], best[1], best[2]
    printf "CPU per document (user+sys): 1 worker %.3f ms, 2 workers %.3f ms (2 workers cost %+.1f%%)\n",
           m1, m2, 100 * (m2 / m1 - 1)
    printf "load average at the start of the runs: median %.2f\n", median(load, nl)
  }' "$TMP/runs"
